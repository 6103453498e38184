"""``beacon-sim scenes`` and ``beacon-sim run``: list scenes, run one to a capture.

    beacon-sim scenes [--dir configs/scenes]
    beacon-sim run configs/scenes/store.toml --out capture.jsonl [--truth truth.json]
        [--registry registry.toml] [--subjects subjects.toml] [--seed N] [--duration SECONDS]
        [--progress]

``run`` plays the scene in virtual time (as fast as the machine goes) and writes what every
gateway heard as a JSONL capture (docs/capture-format.md), the ground truth (which subject was in
which zone, when), a test-key registry of the enrolled beacons for ``beacon-gateway`` and the
subjects file of the people and bags behind them.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final

from firmware_sim.attacker import KINDS
from firmware_sim.capture import CaptureWriter
from firmware_sim.run import prepare
from firmware_sim.scene import load_scene

if TYPE_CHECKING:
    import argparse
    from typing import TextIO

DEFAULT_SCENES: Final = Path("configs/scenes")
_BAR_WIDTH: Final = 30


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``scenes`` and ``run``."""
    scenes = commands.add_parser("scenes", help="list the scene files", description="List scenes.")
    scenes.add_argument("--dir", type=Path, default=DEFAULT_SCENES, help="scene directory")
    run = commands.add_parser(
        "run",
        help="run a scene to a JSONL capture",
        description="Run a scene in virtual time; write the capture, ground truth and registry.",
    )
    run.add_argument("scene", type=Path, metavar="SCENE")
    run.add_argument("--out", type=Path, required=True, help="the capture (JSONL)")
    run.add_argument("--truth", type=Path, help="ground truth (JSON)")
    run.add_argument("--registry", type=Path, help="key registry of the enrolled beacons (TOML)")
    run.add_argument(
        "--subjects", type=Path, help="who carries the enrolled beacons (subjects file, TOML)"
    )
    run.add_argument("--seed", type=int, help="override the scene's seed")
    run.add_argument("--duration", type=float, help="override the scene's duration (seconds)")
    run.add_argument("--progress", action="store_true", help="show progress even without a TTY")


def list_scenes(args: argparse.Namespace, out: TextIO) -> None:
    """Run ``beacon-sim scenes``."""
    paths = sorted(args.dir.glob("*.toml"))
    if not paths:
        out.write(f"no scene files in {args.dir}\n")
    for path in paths:
        scene = load_scene(path)
        minutes = scene.duration_s / 60
        out.write(
            f"{path}  {scene.name}: {scene.description} ({minutes:.0f} min, "
            f"{len(scene.gateways)} gateways, {len(scene.zones)} zones)\n"
        )


def _progress(done: float, total: float, heard: int, err: TextIO) -> None:
    share = min(max(done / total, 0.0), 1.0) if total > 0 else 1.0
    filled = round(share * _BAR_WIDTH)
    bar = "#" * filled + "." * (_BAR_WIDTH - filled)
    err.write(f"\r[{bar}] {share:6.1%}  {heard:,} adverts heard")
    err.flush()


def run_scene(args: argparse.Namespace, out: TextIO, err: TextIO) -> None:
    """Run ``beacon-sim run``."""
    scene = load_scene(args.scene)
    if args.duration is not None:
        scene = scene.with_duration(args.duration)
    run = prepare(scene, args.seed)
    show = args.progress or err.isatty()
    began = time.perf_counter()
    step = scene.duration_s / 100
    next_report = scene.start
    with args.out.open("w", encoding="utf-8") as stream:
        writer = CaptureWriter(
            stream,
            {
                "scene": scene.name,
                "seed": run.seed,
                "start": scene.start,
                "end": run.end,
                "gateways": [gateway.model_dump() for gateway in scene.gateways],
                "zones": [zone.model_dump() for zone in scene.zones],
            },
        )
        for advert in run.adverts():
            writer.write(advert)
            if show and advert.at >= next_report:
                _progress(advert.at - scene.start, scene.duration_s, writer.count, err)
                next_report += step
    if show:
        _progress(scene.duration_s, scene.duration_s, writer.count, err)
        err.write("\n")
    if args.truth is not None:
        args.truth.write_text(json.dumps(run.ground_truth(), indent=1) + "\n", encoding="utf-8")
    if args.registry is not None:
        handle = os.open(args.registry, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(run.registry_toml())
    if args.subjects is not None:  # personal data, though invented: not for everyone to read
        handle = os.open(args.subjects, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(run.subjects_toml())
    elapsed = time.perf_counter() - began
    out.write(
        f"{scene.name}: {len(run.subjects)} subjects, {writer.count:,} adverts heard in "
        f"{scene.duration_s:.0f} simulated seconds ({elapsed:.1f} s); capture in {args.out}\n"
    )
    if run.attack is not None:
        sent, heard = run.attack.sent, run.attack.heard
        kinds = ", ".join(f"{sent[kind]:,} {kind}" for kind in KINDS if sent[kind])
        out.write(
            f"attacker: {sum(sent.values()):,} frames sent ({kinds}), "
            f"{sum(heard.values()):,} heard by the gateways\n"
        )
