"""Fuzz scene files (firmware_sim/scene.py) and the gateway configuration made from a scene.

Input: a scene file's bytes, read by :func:`firmware_sim.scene.load_scene`. Allowed:
:class:`SceneError` (every problem with its field path) from the scene, :class:`ConfigError`
from the configuration the ``sim`` source derives from it (``run --scene`` without
``--config``). Properties: a scene's numbers are finite (the world draws positions and times
from them), it ends on a date an event can carry, and its derived configuration assembles into
a pipeline. The scene is not played: a valid scene may ask for hours of simulation, and
playing is the simulator's tests' subject.

    .venv/bin/python fuzz/fuzz_scene.py -runs=100000 fuzz/corpus/scene
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from contract import ContractError, instrumented, main, scratch_file, total

with instrumented("tomllib"):
    from firmware_sim.run import SceneRun
    from firmware_sim.scene import Scene, SceneError, load_scene
    from gateway.assemble import assemble
    from gateway.config import parse_config
    from gateway.errors import ConfigError
    from gateway.sources.sim import SimScene


def _numbers(value: object) -> list[float]:
    if isinstance(value, dict):
        return [n for item in value.values() for n in _numbers(item)]
    if isinstance(value, list | tuple):
        return [n for item in value for n in _numbers(item)]
    return [value] if isinstance(value, float) else []


def _finite(scene: Scene) -> None:
    if not all(math.isfinite(number) for number in _numbers(scene.model_dump())):
        msg = "a scene loaded with a number that is not finite"
        raise ContractError(msg)
    datetime.fromtimestamp(scene.start + scene.duration_s, tz=UTC)  # its adverts can be dated


def _config_of(scene: Scene) -> None:
    sim = SimScene.__new__(SimScene)  # the scene's derived config, without planning its run
    sim.run = SceneRun(scene, scene.seed, [])
    assemble(parse_config(sim.config_document(), "<scene config>"))


def check(data: bytes) -> None:
    """One scene file, and the configuration the gateway derives from it."""
    with scratch_file("scene.toml", data) as path:
        scene = load_scene(path)
    _finite(scene)
    _config_of(scene)


if __name__ == "__main__":
    main(total(check, (SceneError, ConfigError)), max_len=4096, dictionaries=("toml", "scene"))
