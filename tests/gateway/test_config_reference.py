"""docs/config-reference.md: generated from the configuration models, complete, current, stable."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import pytest
from pydantic import BaseModel

from gateway.cli import main
from gateway.config import Config
from gateway.config_env import apply_environment
from gateway.config_reference import (
    FieldDoc,
    config_sections,
    reference_text,
    subjects_sections,
)
from gateway.subjects_file import SubjectsFile

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "config-reference.md"


def _models(root: type[BaseModel]) -> list[type[BaseModel]]:
    """Every model reachable from ``root`` through its fields (an independent walk)."""
    found: list[type[BaseModel]] = []

    def visit(annotation: Any) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation not in found:
                found.append(annotation)
                for info in annotation.model_fields.values():
                    visit(info.annotation)
            return
        if get_origin(annotation) in {Annotated, Union, types.UnionType, list, dict, tuple}:
            for arg in get_args(annotation):
                visit(arg)

    visit(root)
    return found


def _rows(sections: list[Any]) -> list[FieldDoc]:
    return [row for section in sections for row in section.fields]


def _last(path: str) -> str:
    """The field name a row path or section title ends with."""
    path = path.strip("`").removesuffix(".<key>")
    return path.replace("[", "").replace("]", "").rsplit(".", 1)[-1]


@pytest.mark.parametrize(
    ("root", "sections"),
    [(Config, config_sections), (SubjectsFile, subjects_sections)],
    ids=["config", "subjects"],
)
def test_every_field_of_every_model_appears_once(root: type[BaseModel], sections: Any) -> None:
    made = sections()
    named = [_last(row.path) for row in _rows(made)] + [_last(s.title) for s in made[1:]]
    expected = [name for model in _models(root) for name in model.model_fields]
    assert sorted(named) == sorted(expected)
    text = reference_text()
    for row in _rows(made):
        assert f"| `{row.path}` |" in text


@pytest.mark.parametrize("root", [Config, SubjectsFile], ids=["config", "subjects"])
def test_every_field_has_a_description(root: type[BaseModel]) -> None:
    missing = [
        f"{model.__name__}.{name}"
        for model in _models(root)
        for name, info in model.model_fields.items()
        if not (info.description or "").strip()
    ]
    assert missing == [], "add an attribute docstring to each of these fields"


def _row(path: str) -> FieldDoc:
    return next(row for row in _rows(config_sections()) if row.path == path)


def test_rows_show_type_default_constraints_and_variable() -> None:
    row = _row("[[triggers]].min_dwell_s")
    assert (row.type, row.default, row.constraints) == ("number", "none", "> 0; finite")
    assert row.environment == "BEACON_GATEWAY__TRIGGERS__<n>__MIN_DWELL_S"
    assert row.description.startswith("`dwell` rules only")
    row = _row("mqtt.tls.ca_file")
    assert (row.type, row.default, row.environment) == (
        "path",
        "none",
        "BEACON_GATEWAY__MQTT__TLS__CA_FILE",
    )
    assert _row("mqtt.port").constraints == "1 to 65535"
    assert _row("mqtt.protocol").constraints == 'one of `"5"`, `"3.1.1"`'
    assert (_row("publish.raw_eids").type, _row("publish.raw_eids").default) == (
        "boolean",
        "`false`",
    )
    assert _row("presence.dwell_thresholds_s").default == "`[30.0, 60.0, 300.0]`"
    assert _row("site").default == "required"
    assert _row("beacon_calibration_db.<key>").environment == (
        "BEACON_GATEWAY__BEACON_CALIBRATION_DB__<key>"
    )
    assert "| `[[bags]].destination` | string | none | pattern `^[A-Z]{3}$` |" in reference_text()


def test_each_variable_overrides_the_field_its_row_names() -> None:
    for row in _rows(config_sections()):
        assert row.environment is not None
        variable = row.environment.replace("<n>", "0").replace("<key>", "k")
        expected = row.path.replace(".<key>", ".k")
        if expected.startswith("[["):
            table, rest = expected[2:].split("]].", 1)
            expected = f"{table}[0].{rest}"
        top = expected.split("[", 1)[0].split(".", 1)[0]
        document: dict[str, Any] = {top: [{}]} if "[0]" in expected else {}
        _, applied = apply_environment(document, {variable: "1"}, "<test>")
        assert applied == {expected: variable}


def test_the_reference_in_the_repository_is_current(capsys: pytest.CaptureFixture[str]) -> None:
    assert REFERENCE.read_text("utf-8") == reference_text(), "run beacon-gateway config-reference"
    assert main(["config-reference", "--check", "--out", str(REFERENCE)]) == 0
    assert capsys.readouterr().out == ""


def test_check_fails_on_a_stale_or_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "docs" / "config-reference.md"
    assert main(["config-reference", "--check", "--out", str(out)]) == 1
    assert "out of date" in capsys.readouterr().out
    assert main(["config-reference", "--out", str(out)]) == 0
    assert capsys.readouterr().out == f"wrote {out}\n"
    assert main(["config-reference", "--check", "--out", str(out)]) == 0
    out.write_text(out.read_text("utf-8").replace("mqtt.tls.ca_file", "mqtt.tls.ca"), "utf-8")
    assert main(["config-reference", "--check", "--out", str(out)]) == 1
    assert capsys.readouterr().out == (
        f"{out}: out of date (run 'beacon-gateway config-reference')\n"
    )


def test_output_is_deterministic(capsys: pytest.CaptureFixture[str]) -> None:
    text = reference_text()
    assert reference_text() == text
    assert main(["config-reference", "--out", "-"]) == 0
    assert capsys.readouterr().out == text
    for seed in ("1", "2"):
        printed = subprocess.run(
            [sys.executable, "-m", "gateway", "config-reference", "--out", "-"],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        assert printed.stdout == text
