"""Run the fuzz harnesses for a while each, a few at a time, and print their figures.

    .venv/bin/python fuzz/run.py --seconds 600 --jobs 2 [TARGET ...]

Each harness starts from its seed corpus (``fuzz/corpus/<target>``, read only) and keeps what
it finds in ``build/fuzz/<target>/corpus``, so a second run goes on from the first. A crash is
written to ``build/fuzz/<target>/crash-*`` (docs/fuzzing.md says how it becomes a regression
test). The exit status is 1 if any harness crashed.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final

FUZZ: Final = Path(__file__).resolve().parent
TARGETS: Final = tuple(sorted(path.stem.removeprefix("fuzz_") for path in FUZZ.glob("fuzz_*.py")))
_PULSE: Final = re.compile(r"^#(\d+)\s+(?:DONE|pulse|NEW|REDUCE|INITED)\s+cov: (\d+) ft: (\d+)")
_STAT: Final = re.compile(r"^stat::(\w+):\s+(\d+)")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one harness did."""

    target: str
    runs: int
    coverage: int
    features: int
    seconds: int
    crashes: tuple[Path, ...]


def fuzz(target: str, seconds: int, work: Path) -> Outcome:
    """Run one harness for ``seconds``; its output goes to ``work/<target>/log``."""
    directory = work / target
    corpus = directory / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        str(FUZZ / f"fuzz_{target}.py"),
        f"-max_total_time={seconds}",
        "-print_final_stats=1",
        f"-artifact_prefix={directory}/",
        str(corpus),
        str(FUZZ / "corpus" / target),
    ]
    log = directory / "log"
    with log.open("w") as output:
        subprocess.run(command, stdout=output, stderr=subprocess.STDOUT, check=False)  # noqa: S603 - our own harness
    runs = coverage = features = elapsed = 0
    for line in log.read_text(errors="replace").splitlines():
        if pulse := _PULSE.match(line):
            runs, coverage, features = (int(group) for group in pulse.groups())
        elif (stat := _STAT.match(line)) and stat.group(1) == "number_of_executed_units":
            runs = int(stat.group(2))
        elif line.startswith("Done ") and " runs in " in line:
            elapsed = int(line.split(" runs in ")[1].split()[0])
    crashes = tuple(sorted(directory.glob("crash-*")) + sorted(directory.glob("timeout-*")))
    return Outcome(target, runs, coverage, features, elapsed, crashes)


def main() -> int:
    """Fuzz the chosen targets; print one line per target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", metavar="TARGET", help=f"of {', '.join(TARGETS)}")
    parser.add_argument("--seconds", type=int, default=600, help="per harness (default 600)")
    parser.add_argument("--jobs", type=int, default=2, help="harnesses at once (default 2)")
    parser.add_argument("--work", type=Path, default=FUZZ.parent / "build" / "fuzz")
    args = parser.parse_args()
    targets = args.targets or list(TARGETS)
    unknown = sorted(set(targets) - set(TARGETS))
    if unknown:
        parser.error(f"no harness for {', '.join(unknown)}")
    print(f"fuzzing {', '.join(targets)}: {args.seconds} s each, {args.jobs} at a time")
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        outcomes = list(pool.map(lambda t: fuzz(t, args.seconds, args.work), targets))
    print(f"{'target':<10} {'runs':>10} {'exec/s':>7} {'cov':>5} {'ft':>6}  crashes")
    for o in outcomes:
        rate = o.runs // max(o.seconds, 1)
        found = ", ".join(str(path) for path in o.crashes) or "none"
        print(f"{o.target:<10} {o.runs:>10} {rate:>7} {o.coverage:>5} {o.features:>6}  {found}")
    return 1 if any(o.crashes for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
