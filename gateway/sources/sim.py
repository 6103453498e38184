"""The ``sim`` source: a firmware_sim scene played in-process, in virtual or wall time.

This adapter and :mod:`gateway.sources.replay` are the only gateway modules that import
``firmware_sim`` (an import-linter contract holds the rest of the gateway to that). Besides the
sightings, a scene gives what the scoring tool needs: its ground truth, the key registry of its
enrolled beacons (test keys), the subjects behind them, and a gateway configuration of its floor
(zones, gateways and their positions, the floor's path-loss exponent, the scene's triggers).
"""

from __future__ import annotations

import tomllib
from typing import TYPE_CHECKING, Any, Unpack

from firmware_sim.run import SceneRun, prepare
from firmware_sim.scene import SceneError, load_scene
from gateway.registry import KeyRegistry
from gateway.sources.base import (
    Pacing,
    PlayedSource,
    SourceError,
    SourceErrorReason,
    eddystone_sighting,
)
from gateway.subjects_file import parse_subjects

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from firmware_sim.scene import Scene
    from gateway.core.sighting import Sighting
    from gateway.core.subjects import SubjectDirectory


class SimScene:
    """A scene ready to run: its sightings, truth, registry and a matching gateway config."""

    def __init__(
        self, path: Path, seed: int | None = None, *, duration_s: float | None = None
    ) -> None:
        """Load the scene at ``path``; ``duration_s`` plays that much of it instead of its own."""
        try:
            scene = load_scene(path)
            if duration_s is not None:
                scene = scene.with_duration(duration_s)
        except SceneError as exc:
            raise SourceError(SourceErrorReason.BAD_SCENE, str(exc)) from None
        self.run: SceneRun = prepare(scene, seed)

    @classmethod
    def from_scene(cls, scene: Scene, seed: int | None = None) -> SimScene:
        """A scene already loaded (a test's variant of a scene file, say)."""
        sim = cls.__new__(cls)
        sim.run = prepare(scene, seed)
        return sim

    @property
    def name(self) -> str:
        """The scene's name."""
        return self.run.scene.name

    def sightings(self) -> Iterator[Sighting]:
        """Every advert any gateway hears, in time order, as sightings (virtual time)."""
        source = f"sim:{self.name}"
        for advert in self.run.adverts():
            sighting = eddystone_sighting(
                advert.address, advert.rssi, advert.service_data, advert.at, advert.gateway,
                advert.tx_power, source,
            )  # fmt: skip
            if sighting is not None:
                yield sighting

    def truth(self) -> dict[str, Any]:
        """Who was in which zone, when (the scoring tool's reference)."""
        return self.run.ground_truth()

    def registry(self) -> KeyRegistry:
        """The enrolled beacons' keys (simulated test keys)."""
        return KeyRegistry.from_document(
            tomllib.loads(self.run.registry_toml()), source=f"scene {self.name!r}"
        )

    def subjects(self) -> SubjectDirectory:
        """The customers and bags behind the enrolled beacons (invented; none if not described)."""
        return parse_subjects(
            tomllib.loads(self.run.subjects_toml()), source=f"scene {self.name!r} subjects"
        )

    def config_document(self) -> dict[str, Any]:
        """A gateway configuration of the scene's floor: a floor plan of its zones.

        The scene's ``[gateway]`` settings are merged in (tables key by key, the rest replaced).
        """
        scene = self.run.scene
        zones: dict[str, list[str]] = {zone.id: [] for zone in scene.zones}
        for gateway in scene.gateways:
            zones[gateway.zone].append(gateway.id)
        document: dict[str, Any] = {
            "site": scene.name,
            "gateway_id": f"{scene.name}-sim",
            "gateways": [
                {"id": g.id, "position": list(g.position), "rssi_offset_db": -g.rssi_offset_db}
                for g in scene.gateways
            ],
            "zones": [
                {"id": zone.id, "gateways": zones[zone.id], "rect": list(zone.rect)}
                for zone in scene.zones
                if zones[zone.id]
            ],
            "presence": {"path_loss_exponent": scene.radio.path_loss_exponent},
        }
        for key, value in scene.gateway.items():
            current = document.get(key)
            if isinstance(current, dict) and isinstance(value, dict):
                document[key] = {**current, **value}
            else:
                document[key] = value
        return document


class SimSource(PlayedSource):
    """The scene's sightings as an async source; ``realtime`` paces them by the wall clock."""

    def __init__(self, scene: SimScene, **pacing: Unpack[Pacing]) -> None:
        super().__init__(f"sim:{scene.name}", scene.sightings, **pacing)
