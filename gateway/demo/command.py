"""``beacon-gateway demo``: the command line of the whole-system demo (see the package doc)."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final, TextIO

from gateway.demo.broker import Broker, find_mosquitto, free_port
from gateway.demo.errors import DemoError
from gateway.demo.gateway_child import GatewayChild, GatewayOptions, environment
from gateway.demo.reference import Reference, load_reference
from gateway.demo.scenes import find_scene
from gateway.demo.session import Outcome, Session, Stop, remove, work_directories
from gateway.errors import ConfigError

if TYPE_CHECKING:
    import argparse
    from collections.abc import Mapping

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
"""Something the demo needs is missing (mosquitto) or failed (the broker, the gateway)."""
EXIT_USAGE: Final = 2
"""The command line names no scene, or the scene or the configuration is invalid."""
DEFAULT_SPEED: Final = 30.0
"""The store's 30 minutes in about one; the airport's hour in two (as fast as one core plays
it: a slower machine simply runs behind, the events stay the same)."""
PREFIX: Final = "beacon-gateway"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``demo`` to the top-level parser."""
    demo = commands.add_parser(
        "demo",
        help="run the whole system: a scene, the gateway, a broker and a subscriber",
        description=(
            "Start a private mosquitto on a free loopback port, play a simulator scene through "
            "the real gateway (beacon-gateway run, as on hardware) and print the events as a "
            "subscriber receives them, then a summary scored against the scene's ground truth. "
            "Ctrl-C stops everything it started."
        ),
    )
    demo.add_argument(
        "--scene",
        default="store",
        help="a shipped scene (store, airport) or a scene file (default: store)",
    )
    demo.add_argument(
        "--speed",
        type=float,
        default=DEFAULT_SPEED,
        help=f"times real time (default {DEFAULT_SPEED:g}: the store scene in about a minute)",
    )
    demo.add_argument("--seed", type=int, help="scene seed (default: the scene's own)")
    demo.add_argument("--mosquitto", metavar="PATH", help="the mosquitto program to run")
    demo.add_argument(
        "--quiet", action="store_true", help="print no events as they arrive, only the summary"
    )


def _colour(out: TextIO, environ: Mapping[str, str]) -> bool:
    """Colour on a terminal, unless NO_COLOR is set (https://no-color.org) or TERM is dumb."""
    return out.isatty() and "NO_COLOR" not in environ and environ.get("TERM") != "dumb"


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def banner(reference: Reference, options: GatewayOptions) -> list[str]:
    """What the demo is about to do, and how to look at it from elsewhere."""
    minutes = reference.duration_s / 60
    wall = reference.duration_s / options.speed
    wall_text = f"{wall / 60:.0f} min" if wall >= 60 else f"{wall:.0f} s"  # noqa: PLR2004
    port = options.broker_port
    about = f": {reference.description}" if reference.description else ""
    return [
        f"beacon-gateway demo: the {reference.name} scene{about}",
        (
            f"  {minutes:.0f} min of scene time at {options.speed:g}x real time: about "
            f"{wall_text}. Ctrl-C stops everything early."
        ),
        f"  broker     a private mosquitto on 127.0.0.1:{port} (removed at the end)",
        (
            f"  gateway    beacon-gateway run --scene {_shown(options.scene)} --realtime "
            f"--speed {options.speed:g}"
        ),
        f"  live view  http://127.0.0.1:{options.http_port}/",
        f"  subscribe  mosquitto_sub -h 127.0.0.1 -p {port} -t '{options.topic_prefix}/v1/#' -v",
    ]


def run(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Run the demo; the exit status (128 + the signal's number when stopped by one)."""
    with Stop() as stop:
        try:
            return _run(args, stop, out, err)
        except DemoError as exc:
            err.write(f"beacon-gateway demo: {exc}\n")
            return EXIT_FAILED
        except BrokenPipeError:
            # Whoever read the output went away (`beacon-gateway demo | head`). Everything the
            # demo started is stopped by now (finally blocks); keep Python quiet at exit.
            if out is sys.stdout:
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_FAILED


def _prepare(args: argparse.Namespace, directory: Path) -> tuple[Reference, GatewayOptions]:
    if not args.speed > 0:
        msg = f"--speed must be more than 0 (got {args.speed:g})"
        raise DemoError(msg)
    scene = find_scene(args.scene)
    options = GatewayOptions(
        scene=scene,
        speed=args.speed,
        seed=args.seed,
        broker_port=free_port(),
        http_port=free_port(),
        directory=directory,
        topic_prefix=PREFIX,
    )
    reference = load_reference(scene, args.seed, environment(options, os.environ))
    return reference, options


def _run(args: argparse.Namespace, stop: Stop, out: TextIO, err: TextIO) -> int:
    mosquitto = find_mosquitto(args.mosquitto)
    directory, broker_dir = work_directories()
    try:
        try:
            reference, options = _prepare(args, directory)
        except (DemoError, ConfigError) as exc:
            err.write(f"beacon-gateway demo: {exc}\n")
            return EXIT_USAGE
        if stop.requested:
            name = signal.Signals(stop.signals[0]).name
            err.write(f"beacon-gateway demo: stopped by {name} before anything started\n")
            return 128 + stop.signals[0]
        session = Session(
            reference,
            Broker(mosquitto, broker_dir, options.broker_port),
            GatewayChild(options, os.environ),
            out,
            quiet=args.quiet,
            colour=_colour(out, os.environ),
        )
        try:
            outcome = session.run(stop, banner(reference, options))
        except DemoError as exc:
            err.write(f"beacon-gateway demo: {exc}\n")
            return EXIT_FAILED
        return _report(session, outcome, out, err)
    finally:
        remove(directory, broker_dir)


def _report(session: Session, outcome: Outcome, out: TextIO, err: TextIO) -> int:
    out.write("\n" + "\n".join(session.summary(outcome)) + "\n")
    out.flush()
    err.writelines(f"beacon-gateway demo: {problem}\n" for problem in outcome.problems)
    if outcome.interrupted is not None:
        name = signal.Signals(outcome.interrupted).name
        err.write(f"beacon-gateway demo: stopped by {name}; everything it started is stopped\n")
        return 128 + outcome.interrupted
    if outcome.gateway_status != 0:
        err.write(
            f"beacon-gateway demo: the gateway exited with status {outcome.gateway_status}; "
            f"the end of its log:\n{outcome.gateway_log}\n"
        )
        return EXIT_FAILED
    return EXIT_FAILED if outcome.problems else EXIT_OK
