"""What the demo knows of a scene before it runs: its ground truth and whom events will name.

The truth is the simulator's (who was in which zone, when). Scoring the received events needs
each presence event's beacon (``subject.beacon``), and events show it only when the scene's
``publish.subject_fields`` allow it and the subject allows it: a customer without consent
shows only their kind. So the reference scores the enrolled subjects whose events name their
beacon, decided by the gateway's own :class:`~gateway.events.EventBuilder` on the same
configuration the child derives from the scene (the same ``BEACON_GATEWAY__*`` overrides), and
counts the others apart rather than as misses.

This module imports the sim source adapter (and so firmware_sim): pyproject's import-linter
contract lists the edge, as for ``score``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway.config import Config, parse_config
from gateway.config_env import apply_environment, name_overrides
from gateway.demo.errors import DemoError
from gateway.errors import ConfigError
from gateway.events import EventBuilder
from gateway.scoring import MATCH_TOLERANCE_S
from gateway.sources.base import SourceError
from gateway.subjects_file import load_subjects

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path


@dataclass(frozen=True, slots=True)
class Reference:
    """A scene's truth and the facts about it the summary needs."""

    name: str
    description: str
    seed: int
    start: float
    end: float
    truth: Mapping[str, Any]
    named: frozenset[str]
    """Enrolled beacons whose events show ``subject.beacon``: the subjects that are scored."""
    enrolled: int
    settle_s: float
    """How long after a change the gateway may report it (the longest exit timeout) plus the
    scorer's tolerance: a run stopped early is scored up to this long before its last event."""

    @property
    def duration_s(self) -> float:
        """The scene's length in scene time."""
        return self.end - self.start


def load_reference(scene_path: Path, seed: int | None, environ: Mapping[str, str]) -> Reference:
    """The reference of a scene file, seen through the configuration ``environ`` gives."""
    from gateway.sources.sim import SimScene  # noqa: PLC0415 - loads firmware_sim, only here

    try:
        scene = SimScene(scene_path, seed)
    except SourceError as exc:
        msg = f"cannot load scene {scene_path}: {exc}"
        raise DemoError(msg) from None
    config = scene_config(scene.config_document(), environ)
    subjects = scene.subjects() if config.subjects is None else load_subjects(config.subjects)
    events = EventBuilder(
        site=config.site,
        gateway_id=config.gateway_id,
        subjects=subjects,
        subject_fields=frozenset(config.publish.subject_fields),
    )
    truth = scene.truth()
    enrolled = [str(s["id"]) for s in truth["subjects"] if s["enrolled"]]
    named = frozenset(b for b in enrolled if events.subject(b).beacon is not None)
    return Reference(
        name=scene.name,
        description=scene.run.scene.description,
        seed=scene.run.seed,
        start=float(truth["start"]),
        end=float(truth["end"]),
        truth=truth,
        named=named,
        enrolled=len(enrolled),
        settle_s=config.presence.max_exit_timeout_s + MATCH_TOLERANCE_S,
    )


def scene_config(document: dict[str, Any], environ: Mapping[str, str]) -> Config:
    """The configuration ``run --scene`` derives: the scene's own, with ``environ``'s overrides."""
    document, applied = apply_environment(document, environ, "<scene config>")
    try:
        return parse_config(document, "<scene config>")
    except ConfigError as exc:
        raise name_overrides(exc, applied) from None
