"""``beacon-gateway resolve``: a resolver worker of central resolution (docs/fleet.md)."""

from __future__ import annotations

import dataclasses
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Final, TextIO

from gateway.config import load_config
from gateway.core.fleet import BatchResolver
from gateway.core.identity import EidKey
from gateway.daemon_setup import mqtt_settings
from gateway.errors import ConfigError, Problem
from gateway.fleet.resolve_worker import CLIENT_ID_PREFIX, ResolveWorker
from gateway.ops import logs
from gateway.registry import KeyRegistry
from gateway.sealed_file import find_sealing_key
from gateway.topics import FleetTopics

if TYPE_CHECKING:
    import argparse

    from gateway.config import Config

EXIT_OK: Final = 0
FLEET_STOP_SIGNALS: Final = (signal.SIGTERM, signal.SIGHUP)
"""Stop ``fleet`` as Ctrl-C does: everything it started is stopped (SIGINT already does)."""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``resolve`` to the top-level parser."""
    resolve = commands.add_parser(
        "resolve",
        help="resolve keyless gateways' sightings from the broker (a central resolver worker)",
        description=(
            "Consume the sightings batches keyless gateways publish, through the MQTT 5 shared "
            "subscription of fleet.share_group, resolve their EIDs with the key registry, and "
            "publish observations for the site's arbiter (run --observations). Start as many "
            "as the load needs, each with its own stable --worker-id."
        ),
    )
    resolve.add_argument("--config", type=Path, required=True, help="the site's configuration")
    resolve.add_argument(
        "--worker-id",
        required=True,
        help="this worker's stable name (its MQTT session: a restarted worker resumes it)",
    )
    resolve.add_argument("--registry-key-file", type=Path)
    resolve.add_argument(
        "--leave",
        action="store_true",
        help="on stop, also end the MQTT session (the worker is retired, not restarted)",
    )


def add_fleet_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``fleet`` to the top-level parser."""
    fleet = commands.add_parser(
        "fleet",
        help="run a scene's whole fleet here: keyless gateways, resolver workers, an arbiter",
        description=(
            "Play a simulator scene's gateways as keyless gateways into a private mosquitto, "
            "resolve their sightings with --workers resolver workers, arbitrate with one "
            "arbiter, and score the arbiter's events against the scene's ground truth "
            "(docs/fleet.md)."
        ),
    )
    fleet.add_argument("--scene", type=Path, required=True, help="a simulator scene file")
    fleet.add_argument("--seed", type=int, help="scene seed (the scene's own if none)")
    fleet.add_argument("--workers", type=int, default=2, help="resolver workers (2)")
    fleet.add_argument(
        "--shards", type=int, default=1, help="observation shards, an arbiter each (1)"
    )
    fleet.add_argument("--speed", type=float, default=10.0, help="scene time per second (10)")
    fleet.add_argument(
        "--duration", type=float, help="play this many seconds of the scene (its own if none)"
    )
    fleet.add_argument("--mosquitto", help="the mosquitto binary (found on PATH if none)")


def run_fleet_command(args: argparse.Namespace, out: TextIO) -> int:
    """Run ``fleet``."""
    from gateway.fleet.run import FleetOptions, run_fleet  # noqa: PLC0415 - only when asked
    from gateway.sources.sim import SimScene  # noqa: PLC0415 - plays the scene

    problems = [
        Problem(name, "must be at least 1", str(value))
        for name, value in (("--workers", args.workers), ("--shards", args.shards))
        if value < 1
    ]
    for name, value in (("--speed", args.speed), ("--duration", args.duration)):
        if value is not None and not value > 0:
            problems.append(Problem(name, "must be more than 0", str(value)))
    if problems:
        command = "beacon-gateway fleet"
        raise ConfigError(command, problems)
    options = FleetOptions(
        workers=args.workers, shards=args.shards, speed=args.speed, mosquitto=args.mosquitto
    )
    scene = SimScene(args.scene, args.seed, duration_s=args.duration)
    stopped_by: list[int] = []

    def interrupt(signum: int, _frame: object) -> None:
        stopped_by.append(signum)
        raise KeyboardInterrupt  # unwinds through run_fleet, which stops all it started

    previous = {signum: signal.signal(signum, interrupt) for signum in FLEET_STOP_SIGNALS}
    try:
        return run_fleet(scene, options, out)
    except KeyboardInterrupt:
        signum = stopped_by[0] if stopped_by else signal.SIGINT
        out.write(f"fleet: stopped by {signal.Signals(signum).name}; its processes too\n")
        return 128 + signum
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def batch_resolver(config: Config, registry: KeyRegistry) -> BatchResolver:
    """The resolver of a worker: the registry's EID beacons and the config's allow-lists."""
    return BatchResolver(
        resolver=registry.resolver(),
        eid_keys={k.beacon_id: EidKey(k.identity_key, k.rotation_exponent) for k in registry},
        uid_beacons={bytes.fromhex(b.namespace + b.instance): b.id for b in config.uid_beacons},
        url_beacons={b.url: b.id for b in config.url_beacons},
    )


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Run one worker until SIGTERM or SIGINT."""
    config = load_config(args.config)
    source = str(args.config)
    if config.key_registry is None:
        raise ConfigError(source, [Problem("key_registry", "is needed to resolve EIDs")])
    if config.mqtt is None:
        raise ConfigError(source, [Problem("mqtt", "is needed to read sightings")])
    registry = KeyRegistry.load(
        config.key_registry, sealing_key=find_sealing_key(args.registry_key_file)
    )
    worker_id = str(args.worker_id)
    settings = dataclasses.replace(
        mqtt_settings(config, source), client_id=f"{CLIENT_ID_PREFIX}{worker_id}"
    )
    logs.configure(config.logging.level, config.logging.format, worker_id=worker_id)
    worker = ResolveWorker(
        settings,
        FleetTopics(config.mqtt.topic_prefix, config.site),
        batch_resolver(config, registry),
        group=config.fleet.share_group,
        shards=config.fleet.shards,
        leave=args.leave,
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    counts = worker.run(stop)
    out.write(
        f"resolver {worker_id}: {counts.batches} batches, {counts.records} records, "
        f"{counts.observations} observations, {counts.acknowledged} acknowledged\n"
    )
    return EXIT_OK
