"""Building the pipeline and the event builder from a configuration, a registry and subjects."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.core.fleet import Reporter
from gateway.core.identity import EidKey, Identifier
from gateway.core.pipeline import Pipeline
from gateway.core.presence import PresenceEngine
from gateway.core.triggers import TriggerEngine
from gateway.errors import ConfigError, Problem
from gateway.events import EventBuilder
from gateway.fleet.reporting import ReportingPipeline
from gateway.topics import FleetTopics

if TYPE_CHECKING:
    from gateway.config import Config
    from gateway.core.subjects import SubjectDirectory
    from gateway.registry import KeyRegistry


@dataclass(frozen=True, slots=True)
class Assembly:
    """A pipeline and the builder of its events.

    ``reporting`` is set in a fleet gateway: the daemon runs it instead of ``pipeline``
    (docs/fleet.md).
    """

    pipeline: Pipeline
    events: EventBuilder
    reporting: ReportingPipeline | None = None


def assemble(
    config: Config,
    registry: KeyRegistry | None = None,
    subjects: SubjectDirectory | None = None,
) -> Assembly:
    """Wire identity, presence, triggers and events as the configuration says."""
    identifier = Identifier(
        resolver=None if registry is None else registry.resolver(),
        eid_keys=(
            {}
            if registry is None
            else {k.beacon_id: EidKey(k.identity_key, k.rotation_exponent) for k in registry}
        ),
        uid_beacons={bytes.fromhex(b.namespace + b.instance): b.id for b in config.uid_beacons},
        url_beacons={b.url: b.id for b in config.url_beacons},
    )
    triggers = TriggerEngine(config.trigger_rules(), subjects) if config.triggers else None
    presence = PresenceEngine(
        config.zone_specs(),
        config.presence_settings(triggers.dwell_thresholds() if triggers else frozenset()),
        gateway_offsets={g.id: g.rssi_offset_db for g in config.gateways},
        beacon_calibration=config.beacon_calibration_db,
        floor_plan=config.floor_plan(),
    )
    pipeline = Pipeline(
        identifier,
        presence,
        subjects=subjects,
        triggers=triggers,
        telemetry_interval_s=config.publish.telemetry_interval_s,
        keep_raw_eids=config.publish.raw_eids,
    )
    events = EventBuilder(
        site=config.site,
        gateway_id=config.gateway_id,
        subjects=subjects,
        subject_fields=frozenset(config.publish.subject_fields),
        raw_eid=pipeline.raw_eid if config.publish.raw_eids else None,
    )
    reporting = None
    if config.fleet.mode != "off":
        assert config.mqtt is not None  # noqa: S101 - check_fleet() ran first
        fleet = config.fleet
        edge = identifier if fleet.mode == "edge" else None

        def reporter(gateway: str) -> Reporter:
            return Reporter(
                gateway,
                int.from_bytes(os.urandom(4), "big"),  # this run's name: never reused
                identifier=edge,
                report_interval_s=fleet.report_interval_s,
                batch_interval_s=fleet.batch_interval_s,
            )

        topics = FleetTopics(config.mqtt.topic_prefix, config.site)
        reporting = ReportingPipeline(reporter, topics, fleet.shards, edge)
    return Assembly(pipeline, events, reporting)


def check_fleet(config: Config, source: str) -> None:
    """Refuse a fleet mode the rest of the configuration contradicts (naming the field)."""
    mode = config.fleet.mode
    if mode == "off":
        return
    problems = []
    if config.mqtt is None:
        problems.append(Problem("mqtt", f"is needed with fleet.mode {mode!r}"))
    if mode == "keyless" and config.key_registry is not None:
        problems.append(
            Problem(
                "key_registry",
                "must not be set with fleet.mode 'keyless': keys stay with the resolver workers",
                str(config.key_registry),
            )
        )
    if problems:
        raise ConfigError(source, problems)
