"""Simulated advertisements per second, in virtual time, for the shipped scenes.

    .venv/bin/python benchmarks/sim_bench.py [--duration SECONDS]

"Heard" counts adverts received by a gateway (one advert heard by six gateways counts six):
what a capture holds and what the gateway pipeline consumes. "Sent" counts adverts the beacons
transmitted. Target (issue 4): >= 200,000 heard adverts/s for the airport scene on one core.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from common import pin_to_one_core

from firmware_sim.run import prepare
from firmware_sim.scene import load_scene

if TYPE_CHECKING:
    from collections.abc import Sequence

SCENES = Path(__file__).resolve().parents[1] / "configs" / "scenes"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, help="override the scenes' durations (s)")
    args = parser.parse_args(argv)
    print(f"simulator benchmark: Python {platform.python_version()}, {pin_to_one_core()}")
    for name in ("airport", "store"):
        scene = load_scene(SCENES / f"{name}.toml")
        if args.duration is not None:
            scene = scene.model_copy(update={"duration_s": args.duration})
        began = time.perf_counter()
        run = prepare(scene)
        heard = sum(1 for _ in run.adverts())
        elapsed = time.perf_counter() - began
        sent = sum(beacon.pdus for beacon in run.beacons.values())
        print(
            f"{name:<8} {len(run.subjects):>5} subjects {len(scene.gateways)} gateways "
            f"{scene.duration_s:>6.0f} s simulated in {elapsed:5.1f} s: "
            f"{heard / elapsed:>9,.0f} heard adverts/s, {sent / elapsed:>8,.0f} sent/s, "
            f"{scene.duration_s / elapsed:,.0f}x real time"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
