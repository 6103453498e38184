"""``beacon-gateway`` sensing commands: check-config, schemas, run, score."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

from gateway.assemble import assemble, check_fleet
from gateway.asyncapi import ASYNCAPI_FILE, asyncapi_text
from gateway.config import Config, load_config, parse_config
from gateway.config_env import apply_environment, name_overrides
from gateway.core.baseline import NaiveBaseline
from gateway.core.pipeline import Pipeline
from gateway.core.presence import PresenceChange
from gateway.daemon_setup import mqtt_settings, serve
from gateway.errors import ConfigError, Problem
from gateway.events import EventBuilder, json_schemas
from gateway.ops import logs
from gateway.registry import KeyRegistry
from gateway.scoring import Change, Score, score
from gateway.sealed_file import find_sealing_key
from gateway.subjects_file import load_subjects
from gateway.topics import FleetTopics

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterable

    from gateway.core.pipeline import Output
    from gateway.core.sighting import Sighting
    from gateway.sources.base import SightingSource

EXIT_OK: Final = 0
EXIT_DIFFERS: Final = 1
SCHEMAS_DIR: Final = Path("schemas")


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the sensing commands to the top-level parser."""
    check = commands.add_parser("check-config", help="check a configuration and its files")
    check.add_argument("config", type=Path)
    check.add_argument("--registry-key-file", type=Path)

    schemas = commands.add_parser("schemas", help="write (or --check) the events' JSON Schemas")
    schemas.add_argument("--out", type=Path, default=SCHEMAS_DIR, help="directory (schemas/)")
    schemas.add_argument("--check", action="store_true", help="fail if the files differ")

    run = commands.add_parser(
        "run",
        help="sense from a source and publish events to MQTT (or print them as JSON lines)",
    )
    run.add_argument("--config", type=Path, help="gateway configuration (a scene's own if none)")
    run.add_argument("--registry-key-file", type=Path)
    sources = run.add_mutually_exclusive_group(required=True)
    sources.add_argument("--replay", type=Path, metavar="CAPTURE", help="a JSONL capture")
    sources.add_argument("--scene", type=Path, help="a simulator scene, played in-process")
    sources.add_argument("--bleak", action="store_true", help="the Bluetooth adapter")
    sources.add_argument(
        "--observations",
        action="store_true",
        help="arbitrate: the fleet's observations from the broker (docs/fleet.md)",
    )
    run.add_argument(
        "--shard",
        type=int,
        action="append",
        help="with --observations: arbitrate this shard (repeatable; default: all)",
    )
    run.add_argument("--adapter", help="Bluetooth adapter (hci0)")
    run.add_argument("--seed", type=int, help="scene seed")
    run.add_argument("--realtime", action="store_true", help="pace a scene or capture")
    run.add_argument("--speed", type=float, default=1.0, help="realtime speed factor")
    run.add_argument(
        "--stdout", action="store_true", help="print events as JSON lines even with [mqtt]"
    )

    score_cmd = commands.add_parser(
        "score", help="score presence on a simulator scene against its ground truth"
    )
    score_cmd.add_argument("scene", type=Path)
    score_cmd.add_argument("--seed", type=int)
    score_cmd.add_argument(
        "--config", type=Path, help="gateway configuration (the scene's own if none)"
    )
    score_cmd.add_argument("--filter", choices=["kalman", "median"], help="RSSI filter to use")
    score_cmd.add_argument("--no-floor-plan", action="store_true", help="zones by gateway only")
    score_cmd.add_argument("--json", action="store_true", help="print JSON")


def _registry(config: Config, key_file: Path | None) -> KeyRegistry | None:
    if config.key_registry is None:
        return None
    return KeyRegistry.load(config.key_registry, sealing_key=find_sealing_key(key_file))


def _check_config(args: argparse.Namespace, out: TextIO) -> int:
    config = load_config(args.config)
    registry = _registry(config, args.registry_key_file)
    subjects = None if config.subjects is None else load_subjects(config.subjects)
    assemble(config, registry, subjects)
    plan = "floor plan" if config.floor_plan() is not None else "gateway zones"
    out.write(
        f"{args.config}: ok: site {config.site!r}, {len(config.gateways)} gateway(s), "
        f"{len(config.zone_specs())} zone(s) ({plan}), "
        f"{0 if registry is None else len(registry)} EID beacon(s), "
        f"{0 if subjects is None else len(subjects)} subject(s), "
        f"{len(config.triggers)} trigger rule(s)\n"
    )
    return EXIT_OK


def _schemas(args: argparse.Namespace, out: TextIO) -> int:
    wanted = {**json_schemas(), ASYNCAPI_FILE: asyncapi_text()}
    if args.check:
        differs = [
            name
            for name, text in wanted.items()
            if not (args.out / name).is_file() or (args.out / name).read_text("utf-8") != text
        ]
        stray = (
            sorted(p.name for p in args.out.glob("*.schema.json") if p.name not in wanted)
            if args.out.is_dir()
            else []
        )
        out.writelines(
            f"{args.out / name}: out of date (run 'beacon-gateway schemas')\n"
            for name in [*differs, *stray]
        )
        return EXIT_DIFFERS if differs or stray else EXIT_OK
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in wanted.items():
        (args.out / name).write_text(text, encoding="utf-8")
        out.write(f"wrote {args.out / name}\n")
    return EXIT_OK


def _emit(assembly_events: EventBuilder, outputs: Iterable[Output], out: TextIO) -> None:
    out.writelines(assembly_events.build(output).model_dump_json() + "\n" for output in outputs)


async def _drain(
    source: SightingSource, pipeline: Pipeline, events: EventBuilder, out: TextIO
) -> float | None:
    last: float | None = None
    async for sighting in source.sightings():
        last = sighting.at
        _emit(events, pipeline.process(sighting), out)
    return last


def _run(args: argparse.Namespace, out: TextIO) -> int:
    source: SightingSource
    scene_subjects = None
    if args.scene is not None:
        from gateway.sources.sim import SimScene, SimSource  # noqa: PLC0415 - only when asked

        scene = SimScene(args.scene, args.seed)
        config = load_config(args.config) if args.config else _scene_config(scene.config_document())
        registry = (
            scene.registry()
            if config.key_registry is None
            else _registry(config, args.registry_key_file)
        )
        source = SimSource(scene, realtime=args.realtime, speed=args.speed)
        scene_subjects = scene.subjects() if config.subjects is None else None
    else:
        if args.config is None:
            out.write("beacon-gateway run: --config is needed with --replay and --bleak\n")
            return 2
        config = load_config(args.config)
        registry = _registry(config, args.registry_key_file)
        if args.replay is not None:
            from gateway.sources.replay import ReplaySource  # noqa: PLC0415

            source = ReplaySource(args.replay, realtime=args.realtime, speed=args.speed)
        elif args.observations:
            source = _observation_source(config, args)
        else:
            _check_radio_zoned(config, str(args.config))
            from gateway.sources.bleak_scanner import BleakSource, log_event  # noqa: PLC0415

            source = BleakSource(
                gateway=config.gateway_id, adapter=args.adapter, on_event=log_event
            )
    subjects = scene_subjects if config.subjects is None else load_subjects(config.subjects)
    check_fleet(config, str(args.config or args.scene))
    if config.fleet.mode != "off" and args.stdout:
        raise ConfigError(
            str(args.config), [Problem("fleet.mode", "publishes batches: --stdout prints events")]
        )
    assembly = assemble(config, registry, subjects)
    # The recording's end settles what its silence decides (exits, unseen rules).
    horizon = config.presence.max_exit_timeout_s + max(
        (t.unseen_s or 0.0 for t in config.triggers), default=0.0
    )
    if config.mqtt is not None and not args.stdout:
        settings = mqtt_settings(config, str(args.config or args.scene))
        logs.configure(config.logging.level, config.logging.format, gateway_id=config.gateway_id)
        asyncio.run(
            serve(
                config,
                settings,
                assembly,
                source,
                finite=not (args.bleak or args.observations),
                horizon_s=horizon,
                speed=args.speed if args.realtime else 1.0,
            )
        )
        return EXIT_OK
    last = asyncio.run(_drain(source, assembly.pipeline, assembly.events, out))
    if last is not None and args.bleak is False:
        _emit(assembly.events, assembly.pipeline.tick(last + horizon + 1), out)
    return EXIT_OK


def _observation_source(config: Config, args: argparse.Namespace) -> SightingSource:
    """The arbiter's source: the site's observations, of ``--shard`` shards or all."""
    from gateway.fleet.observations import ObservationSource  # noqa: PLC0415 - only when asked

    shards: list[int] | None = args.shard
    problems = [
        Problem("--shard", f"must be 0 to {config.fleet.shards - 1} (fleet.shards)", str(shard))
        for shard in shards or []
        if not 0 <= shard < config.fleet.shards
    ]
    if config.mqtt is None:
        problems.append(Problem("mqtt", "is needed to read observations"))
    if problems:
        raise ConfigError(str(args.config), problems)
    settings = mqtt_settings(config, str(args.config))
    assert config.mqtt is not None  # noqa: S101 - checked above
    return ObservationSource(settings, FleetTopics(config.mqtt.topic_prefix, config.site), shards)


def _check_radio_zoned(config: Config, source: str) -> None:
    """The radio's sightings carry ``gateway_id``: a gateway in no zone would place nobody."""
    zoned = {gateway for spec in config.zone_specs() for gateway in spec.gateways}
    if config.gateway_id not in zoned:
        problem = Problem(
            "gateway_id",
            "is in no zone, so this radio's sightings would place nobody: list it in "
            "[[gateways]] and in a zone's gateways (or leave [[zones]] out)",
            repr(config.gateway_id),
        )
        raise ConfigError(source, [problem])


def _scene_config(document: dict[str, Any], **presence: Any) -> Config:  # noqa: ANN401
    """A scene's own configuration, with the environment's overrides (as for a file)."""
    if presence:
        document = {**document, "presence": {**document.get("presence", {}), **presence}}
    document, applied = apply_environment(document, os.environ, "<scene config>")
    try:
        return parse_config(document, "<scene config>")
    except ConfigError as exc:
        raise name_overrides(exc, applied) from None


def score_scene(
    sightings: Iterable[Sighting], truth: dict[str, Any], pipelines: dict[str, Pipeline]
) -> dict[str, Score]:
    """Run every pipeline over the same sightings and score each against the truth."""
    changes: dict[str, list[Change]] = {name: [] for name in pipelines}

    def note(name: str, outputs: list[Output]) -> None:
        changes[name].extend(
            Change(o.beacon_id, o.zone, o.kind.value, o.at)
            for o in outputs
            if isinstance(o, PresenceChange)
        )

    for sighting in sightings:
        for name, pipeline in pipelines.items():
            note(name, pipeline.process(sighting))
    end = float(truth["end"])
    for name, pipeline in pipelines.items():
        note(name, pipeline.tick(end + 600))
    return {name: score(truth, found) for name, found in changes.items()}


def _score(args: argparse.Namespace, out: TextIO) -> int:
    from gateway.sources.sim import SimScene  # noqa: PLC0415 - only when asked

    scene = SimScene(args.scene, args.seed)
    document = scene.config_document()
    if args.config is not None:
        config = load_config(args.config)
    else:
        if args.no_floor_plan:
            document = {
                **document,
                "zones": [{k: v for k, v in z.items() if k != "rect"} for z in document["zones"]],
            }
        config = _scene_config(document, **({"filter": args.filter} if args.filter else {}))
    registry = scene.registry()
    ours = assemble(config, registry).pipeline
    zone_of = {g: spec.id for spec in config.zone_specs() for g in spec.gateways}
    naive = Pipeline(
        ours.identifier.__class__(resolver=registry.resolver()), NaiveBaseline(zone_of)
    )
    scores = score_scene(
        scene.sightings(), scene.truth(), {"beacon-gateway": ours, "naive baseline": naive}
    )
    if args.json:
        out.write(json.dumps({name: _score_json(s) for name, s in scores.items()}, indent=2) + "\n")
        return EXIT_OK
    out.write(f"scene {scene.name} (seed {scene.run.seed}), {config.presence.filter} filter, "
              f"{'floor plan' if config.floor_plan() else 'gateway zones'}\n")  # fmt: skip
    out.write(f"{'pipeline':<16}{'F1':>7}{'enter':>7}{'exit':>7}{'prec':>7}{'recall':>7}"
              f"{'zone IoU':>10}{'spurious exits/subject-h':>26}\n")  # fmt: skip
    out.writelines(
        f"{name:<16}{s.f1:>7.3f}{s.enter_f1:>7.3f}{s.exit_f1:>7.3f}{s.precision:>7.3f}"
        f"{s.recall:>7.3f}{s.zone_iou:>10.3f}{s.spurious_exits_per_subject_hour:>26.2f}\n"
        for name, s in scores.items()
    )
    return EXIT_OK


def _score_json(s: Score) -> dict[str, float]:
    return {
        "f1": s.f1, "enter_f1": s.enter_f1, "exit_f1": s.exit_f1, "precision": s.precision,
        "recall": s.recall, "zone_iou": s.zone_iou, "hits": s.hits,
        "false_events": s.false_events, "misses": s.misses,
        "spurious_exits_per_subject_hour": s.spurious_exits_per_subject_hour,
        "subject_hours": s.subject_hours,
    }  # fmt: skip


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Run one of the sensing commands."""
    commands = {"check-config": _check_config, "schemas": _schemas, "run": _run, "score": _score}
    return commands[args.command](args, out)
