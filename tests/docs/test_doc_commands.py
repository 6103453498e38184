"""The commands in the docs work as written.

A fenced ``sh`` block right after the line ``<!-- doc-test -->`` in README.md or docs/*.md is
run as a user in a clone would run it, after ``make demo`` or ``make test`` made ``.venv``:

- in a fresh copy of the repository (sources, configs, docs, schemas; no caches, no .git),
  whose ``.venv`` is a link to this checkout's, so ``.venv/bin/beacon-gateway`` and the bare
  ``beacon-gateway`` (``.venv/bin`` comes first on PATH) both work;
- by ``bash -euo pipefail``: any failing command fails the test, naming the file and line;
- with a HOME of its own, and neither ``BEACON_GATEWAY*`` variables nor systemd's from the
  test's environment.

``<!-- doc-test continue -->`` runs its block in the directory of the block before it (same
file), after it: a walk-through split into steps keeps its files (not its shell variables).
Blocks that need hardware, root, a daemon or a network are simply not marked.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv"
MARKER = re.compile(r"^\s*<!--\s*doc-test(?:\s+(?P<continue>continue))?\s*-->\s*$")
FENCE = re.compile(r"^(?P<indent>\s*)```(?:sh|bash)\s*$")
BLOCK_TIMEOUT_S = 120
BASH = shutil.which("bash")
SYSTEMD_VARIABLES = frozenset(
    {"CREDENTIALS_DIRECTORY", "STATE_DIRECTORY", "NOTIFY_SOCKET", "WATCHDOG_USEC"}
)
"""Variables a gateway reads when systemd runs it: a block must not inherit the test's."""
COPY_IGNORE = shutil.ignore_patterns(
    ".git",
    ".venv",
    ".*cache",
    ".hypothesis",
    ".coverage",
    "build",
    "dist",
    "__pycache__",
    "*.egg-info",
)


@dataclass(frozen=True, slots=True)
class Block:
    """One runnable block: where it is and its text."""

    doc: str
    line: int
    text: str

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"


@dataclass(slots=True)
class Walk:
    """Blocks that run one after the other in one directory (a block and its continuations)."""

    blocks: list[Block] = field(default_factory=list)


def _documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _parse(path: Path, doc: str) -> tuple[list[Walk], list[str]]:
    """The walks of one document (named ``doc``), and the markers not followed by a block."""
    lines = path.read_text("utf-8").splitlines()
    walks: list[Walk] = []
    problems: list[str] = []
    index = 0
    while index < len(lines):
        marker = MARKER.match(lines[index])
        index += 1
        if marker is None:
            continue
        fence = FENCE.match(lines[index]) if index < len(lines) else None
        if fence is None:
            problems.append(f"{doc}:{index}: doc-test marker not followed by a ```sh block")
            continue
        indent = len(fence["indent"])  # a block inside a list item: its lines are indented
        start = index + 1
        end = start
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        text = "\n".join(line[indent:] for line in lines[start:end]) + "\n"
        block = Block(doc, start + 1, text)
        if marker["continue"]:
            if not walks:
                problems.append(f"{doc}:{index}: 'doc-test continue' with no block before it")
                continue
            walks[-1].blocks.append(block)
        else:
            walks.append(Walk([block]))
        index = end + 1
    return walks, problems


def _all() -> tuple[list[Walk], list[str]]:
    walks: list[Walk] = []
    problems: list[str] = []
    for path in _documents():
        found, wrong = _parse(path, str(path.relative_to(ROOT)))
        walks += found
        problems += wrong
    return walks, problems


WALKS, PROBLEMS = _all()


def test_markers_mark_shell_blocks() -> None:
    assert PROBLEMS == []


def test_the_docs_have_runnable_blocks() -> None:
    docs = {walk.blocks[0].doc for walk in WALKS}
    assert {"README.md", "docs/provisioning.md", "docs/raspberry-pi.md"} <= docs


def _clone(tmp_path: Path) -> Path:
    clone = tmp_path / "clone"
    shutil.copytree(ROOT, clone, ignore=COPY_IGNORE, symlinks=True)
    (clone / ".venv").symlink_to(VENV, target_is_directory=True)
    return clone


def _environment(home: Path) -> dict[str, str]:
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("BEACON_GATEWAY") and name not in SYSTEMD_VARIABLES
    }
    environment.update(
        HOME=str(home),
        PATH=f"{VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
        LC_ALL="C.UTF-8",
    )
    environment.pop("VIRTUAL_ENV", None)
    return environment


def _run(walk: Walk, tmp_path: Path) -> str | None:
    """Run a walk's blocks in order in a fresh clone; what failed, or None."""
    assert BASH is not None
    clone = _clone(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    environment = _environment(home)
    for block in walk.blocks:
        done = subprocess.run(
            [BASH, "-euo", "pipefail", "-c", block.text],
            cwd=clone,
            env=environment,
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT_S,
            check=False,
        )
        if done.returncode != 0:
            return (
                f"{block.where}: exit status {done.returncode}\n"
                f"--- block\n{block.text}--- stdout\n{done.stdout}--- stderr\n{done.stderr}"
            )
    return None


NEEDS_VENV = pytest.mark.skipif(
    BASH is None or not (VENV / "bin" / "beacon-gateway").exists(),
    reason="needs bash and .venv (make test makes it)",
)


@NEEDS_VENV
@pytest.mark.parametrize("walk", WALKS, ids=[walk.blocks[0].where for walk in WALKS])
def test_doc_block_runs_as_written(walk: Walk, tmp_path: Path) -> None:
    failure = _run(walk, tmp_path)
    assert failure is None, failure


def test_markers_indents_and_continuations_are_read(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(
        "# t\n\n<!-- doc-test -->\n```sh\necho one\n```\n\n```sh\nnot marked\n```\n"
        "- item\n\n  <!-- doc-test continue -->\n  ```sh\n  echo two\n    indented\n  ```\n"
        "<!-- doc-test -->\n```python\nprint()\n```\n",
        "utf-8",
    )
    walks, problems = _parse(doc, "doc.md")
    assert [[(b.line, b.text) for b in w.blocks] for w in walks] == [
        [(5, "echo one\n"), (15, "echo two\n  indented\n")]
    ]
    assert problems == ["doc.md:18: doc-test marker not followed by a ```sh block"]


@NEEDS_VENV
def test_a_failing_command_fails_its_block(tmp_path: Path) -> None:
    walk = Walk([Block("doc.md", 3, "test -f configs/gateway.example.toml\nfalse\necho no\n")])
    failure = _run(walk, tmp_path)
    assert failure is not None
    assert failure.startswith("doc.md:3: exit status 1\n")
    assert "--- stdout\n--- stderr" in failure
