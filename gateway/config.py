"""The gateway configuration file: site, gateways, zones, beacons, presence tuning, triggers.

TOML (docs/configuration.md has every field)::

    site = "store-042"
    gateway_id = "gw-store-042"
    key_registry = "keys.toml"            # EID beacons (relative paths: to this file)
    subjects = "subjects.toml"            # customers and bags behind the beacons

    [[gateways]]
    id = "gw-entrance"
    position = [3.5, 5.0]                 # metres; with zone rects: a floor plan
    rssi_offset_db = 0.0

    [[zones]]
    id = "entrance"
    gateways = ["gw-entrance"]
    rect = [0.0, 0.0, 7.0, 10.0]          # or radius_m = 4.0 for "near these gateways"

    [[triggers]]
    id = "gold-electronics"
    on = "dwell"
    zone = "electronics"
    min_dwell_s = 30
    where = { segment = ["gold"] }
    cooldown_s = 3600
    action = "offer"

Loading checks the whole file and raises :class:`ConfigError` listing every problem with its
field path and value, before anything touches a radio or a broker. Defaults come from the named
constants of :mod:`gateway.core.presence` and :mod:`gateway.core.signal`.
"""

from __future__ import annotations

import os
from pathlib import Path  # noqa: TC003 - pydantic needs it at run time
from typing import TYPE_CHECKING, Annotated, Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from gateway.config_env import apply_environment, name_overrides
from gateway.core import presence as presence_defaults
from gateway.core.floorplan import MAX_CELLS, FloorPlan
from gateway.core.pipeline import TELEMETRY_INTERVAL_S
from gateway.core.presence import PresenceSettings, ZoneSpec
from gateway.core.signal import DEFAULT_PATH_LOSS_EXPONENT, Proximity, ProximityBands
from gateway.core.triggers import TriggerRule
from gateway.delivery_config import HttpConfig, LoggingConfig, MqttConfig, OutboxConfig
from gateway.errors import ConfigError, Problem
from gateway.validation import problems_from, read_toml

if TYPE_CHECKING:
    from collections.abc import Mapping

    from gateway.core.subjects import AttributeValue

Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Hex = Annotated[str, Field(pattern=r"^[0-9a-fA-F]*$")]
_BANDS = ProximityBands()
SUBJECT_FIELDS = ("id", "beacon", "alias", "segment", "tag", "flight", "owner_alias", "destination")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GatewayConfig(_Model):
    """A radio whose sightings this pipeline reads (its id as the source stamps it)."""

    id: Identifier
    position: tuple[Finite, Finite] | None = None
    rssi_offset_db: Finite = 0.0
    """dB added to this gateway's RSSI: antenna gain, enclosure, mounting."""


class ZoneConfig(_Model):
    """A zone: one or more gateways; a rectangle on a floor plan, or a radius around them."""

    id: Identifier
    gateways: Annotated[list[Identifier], Field(min_length=1)]
    radius_m: Positive | None = None
    rect: tuple[Finite, Finite, Finite, Finite] | None = None

    @pydantic.field_validator("rect")
    @classmethod
    def _ordered(
        cls, rect: tuple[float, float, float, float] | None
    ) -> tuple[float, float, float, float] | None:
        if rect is not None and not (rect[0] < rect[2] and rect[1] < rect[3]):
            msg = "must be [x0, y0, x1, y1] with x0 < x1 and y0 < y1"
            raise ValueError(msg)
        return rect


class UidBeacon(_Model):
    """A UID beacon on the allow-list."""

    id: Identifier
    namespace: Annotated[Hex, Field(min_length=20, max_length=20)]
    instance: Annotated[Hex, Field(min_length=12, max_length=12)]


class UrlBeacon(_Model):
    """A URL beacon on the allow-list."""

    id: Identifier
    url: Annotated[str, Field(min_length=1, max_length=256)]


class ProximityConfig(_Model):
    """Proximity band edges (m) and their hysteresis."""

    immediate_m: Positive = _BANDS.immediate_m
    near_m: Positive = _BANDS.near_m
    hysteresis: Annotated[float, Field(ge=0, lt=1)] = _BANDS.hysteresis

    @pydantic.model_validator(mode="after")
    def _ordered(self) -> ProximityConfig:
        if self.immediate_m >= self.near_m:
            msg = "immediate_m must be less than near_m"
            raise ValueError(msg)
        return self


class PresenceConfig(_Model):
    """Presence tuning (gateway.core.presence explains each knob)."""

    filter: presence_defaults.FilterKind = "kalman"
    enter_debounce_s: NonNegative = presence_defaults.ENTER_DEBOUNCE_S
    enter_min_sightings: Annotated[int, Field(ge=1)] = presence_defaults.ENTER_MIN_SIGHTINGS
    switch_margin_db: NonNegative = presence_defaults.SWITCH_MARGIN_DB
    fit_margin_db: NonNegative = presence_defaults.FIT_MARGIN_DB
    switch_evidence_db_s: Positive = presence_defaults.SWITCH_EVIDENCE_DB_S
    radius_hysteresis: NonNegative = presence_defaults.RADIUS_HYSTERESIS
    exit_intervals: Positive = presence_defaults.EXIT_INTERVALS
    min_exit_timeout_s: Positive = presence_defaults.MIN_EXIT_TIMEOUT_S
    max_exit_timeout_s: Positive = presence_defaults.MAX_EXIT_TIMEOUT_S
    dwell_thresholds_s: list[Positive] = Field(
        default_factory=lambda: list(presence_defaults.DWELL_THRESHOLDS_S)
    )
    dwell_interval_s: NonNegative = presence_defaults.DWELL_INTERVAL_S
    path_loss_exponent: Annotated[float, Field(ge=1, le=6)] = DEFAULT_PATH_LOSS_EXPONENT
    proximity: ProximityConfig = Field(default_factory=ProximityConfig)

    @pydantic.model_validator(mode="after")
    def _timeouts(self) -> PresenceConfig:
        if self.min_exit_timeout_s > self.max_exit_timeout_s:
            msg = "min_exit_timeout_s must not exceed max_exit_timeout_s"
            raise ValueError(msg)
        return self


class PublishConfig(_Model):
    """What events may carry."""

    subject_fields: list[Literal[SUBJECT_FIELDS]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: ["id"]
    )
    """Subject fields events carry (kind always; a customer without consent shows only that)."""
    raw_eids: bool = False
    """Debugging only: put the raw EID in events. Raw EIDs let anyone track a beacon."""
    telemetry_interval_s: NonNegative = TELEMETRY_INTERVAL_S


class TriggerConfig(_Model):
    """A trigger rule (gateway.core.triggers)."""

    id: Identifier
    on: Literal["enter", "dwell", "exit", "unseen"]
    action: Identifier
    zone: Identifier | None = None
    min_dwell_s: Positive | None = None
    unseen_s: Positive | None = None
    proximity: list[Proximity] | None = None
    subject_kind: Literal["customer", "bag"] | None = None
    where: dict[Identifier, list[str | int | float | bool]] = Field(default_factory=dict)
    cooldown_s: NonNegative = 0.0

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> TriggerConfig:
        if self.on == "unseen" and self.unseen_s is None:
            msg = "an 'unseen' rule needs unseen_s"
            raise ValueError(msg)
        if self.on != "unseen" and self.unseen_s is not None:
            msg = "unseen_s only applies to 'unseen' rules"
            raise ValueError(msg)
        if self.on != "dwell" and self.min_dwell_s is not None:
            msg = "min_dwell_s only applies to 'dwell' rules"
            raise ValueError(msg)
        return self


class Config(_Model):
    """The whole gateway configuration."""

    site: Identifier
    gateway_id: Identifier
    key_registry: Path | None = None
    subjects: Path | None = None
    gateways: Annotated[list[GatewayConfig], Field(min_length=1)]
    zones: list[ZoneConfig] = Field(default_factory=list)
    uid_beacons: list[UidBeacon] = Field(default_factory=list)
    url_beacons: list[UrlBeacon] = Field(default_factory=list)
    beacon_calibration_db: dict[Identifier, Finite] = Field(default_factory=dict)
    presence: PresenceConfig = Field(default_factory=PresenceConfig)
    publish: PublishConfig = Field(default_factory=PublishConfig)
    triggers: list[TriggerConfig] = Field(default_factory=list)
    mqtt: MqttConfig | None = None
    """Without it, ``run`` writes events to standard output as JSON lines."""
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)

    def zone_specs(self) -> list[ZoneSpec]:
        """The zones; without any, each gateway is a zone of its own (named like it)."""
        if not self.zones:
            return [ZoneSpec(g.id, frozenset({g.id})) for g in self.gateways]
        return [ZoneSpec(z.id, frozenset(z.gateways), z.radius_m) for z in self.zones]

    def floor_plan(self) -> FloorPlan | None:
        """The floor plan, when the zones have rectangles (and so the gateways positions)."""
        if not self.zones or any(zone.rect is None for zone in self.zones):
            return None
        return FloorPlan(
            gateways={g.id: g.position for g in self.gateways if g.position is not None},
            zones={z.id: z.rect for z in self.zones if z.rect is not None},
            path_loss_exponent=self.presence.path_loss_exponent,
        )

    def presence_settings(
        self, extra_thresholds: frozenset[float] = frozenset()
    ) -> PresenceSettings:
        """The presence engine's settings (plus dwell moments the trigger rules need)."""
        p = self.presence
        return PresenceSettings(
            filter=p.filter,
            enter_debounce_s=p.enter_debounce_s,
            enter_min_sightings=p.enter_min_sightings,
            switch_margin_db=p.switch_margin_db,
            fit_margin_db=p.fit_margin_db,
            switch_evidence_db_s=p.switch_evidence_db_s,
            radius_hysteresis=p.radius_hysteresis,
            exit_intervals=p.exit_intervals,
            min_exit_timeout_s=p.min_exit_timeout_s,
            max_exit_timeout_s=p.max_exit_timeout_s,
            dwell_thresholds_s=tuple(sorted({*p.dwell_thresholds_s, *extra_thresholds})),
            dwell_interval_s=p.dwell_interval_s,
            path_loss_exponent=p.path_loss_exponent,
            bands=ProximityBands(
                p.proximity.immediate_m, p.proximity.near_m, p.proximity.hysteresis
            ),
        )

    def trigger_rules(self) -> list[TriggerRule]:
        """The trigger rules."""
        rules = []
        for t in self.triggers:
            where: dict[str, frozenset[AttributeValue]] = {
                name: frozenset(values) for name, values in t.where.items()
            }
            rules.append(
                TriggerRule(
                    id=t.id,
                    on=t.on,
                    action=t.action,
                    zone=t.zone,
                    min_dwell_s=t.min_dwell_s,
                    unseen_s=t.unseen_s,
                    proximity=None if t.proximity is None else frozenset(t.proximity),
                    subject_kind=t.subject_kind,
                    where=where,
                    cooldown_s=t.cooldown_s,
                )
            )
        return rules


def _duplicates(kind: str, ids: list[str]) -> list[Problem]:
    problems = []
    first: dict[str, int] = {}
    for index, value in enumerate(ids):
        if value in first:
            message = f"duplicate, first at {kind}[{first[value]}]"
            problems.append(Problem(f"{kind}[{index}].id", message, repr(value)))
        first.setdefault(value, index)
    return problems


def _zone_problems(config: Config) -> list[Problem]:
    problems = []
    known = {g.id for g in config.gateways}
    seen: dict[str, str] = {}
    for zi, zone in enumerate(config.zones):
        for gi, gateway in enumerate(zone.gateways):
            where = f"zones[{zi}].gateways[{gi}]"
            if gateway not in known:
                problems.append(Problem(where, "names no gateway of [[gateways]]", repr(gateway)))
            elif gateway in seen:
                message = f"is already in zone {seen[gateway]!r}"
                problems.append(Problem(where, message, repr(gateway)))
            seen.setdefault(gateway, zone.id)
    rects = [zone.rect is not None for zone in config.zones]
    if any(rects) and not all(rects):
        problems.append(Problem("zones", "either every zone has a rect (a floor plan) or none"))
    if config.zones and all(rects):
        problems += [
            Problem(f"gateways[{gi}].position", "a floor plan needs every gateway's position")
            for gi, gateway in enumerate(config.gateways)
            if gateway.position is None
        ]
        plan = config.floor_plan()
        if plan is not None and plan.cells() > MAX_CELLS:
            x0, y0, x1, y1 = plan.extent()
            message = f"the floor plan spans {x1 - x0:.0f} x {y1 - y0:.0f} m: too large"
            problems.append(Problem("zones", f"{message} (over {MAX_CELLS} cells)"))
    return problems


def _references(config: Config) -> list[Problem]:
    """Cross-field checks pydantic cannot express per field."""
    problems: list[Problem] = []
    for kind in ("gateways", "zones", "triggers", "uid_beacons", "url_beacons"):
        problems += _duplicates(kind, [item.id for item in getattr(config, kind)])
    problems += _zone_problems(config)
    zones = {spec.id for spec in config.zone_specs()}
    problems += [
        Problem(f"triggers[{ti}].zone", "names no zone", repr(trigger.zone))
        for ti, trigger in enumerate(config.triggers)
        if trigger.zone is not None and trigger.zone not in zones
    ]
    return problems


def parse_config(
    document: dict[str, Any], source: str = "<config>", base: Path | None = None
) -> Config:
    """Check a parsed config document; relative file paths are taken from ``base``."""
    try:
        config = Config.model_validate(document)
    except pydantic.ValidationError as exc:
        raise ConfigError(source, problems_from(exc, document)) from None
    problems = _references(config)
    if problems:
        raise ConfigError(source, problems)
    if base is not None:
        config = _relative_to(config, base)
    return config


def _relative_to(config: Config, base: Path) -> Config:
    """Relative file paths of the configuration, taken from the file's directory."""

    def resolved(path: Path | None) -> Path | None:
        return None if path is None or path.is_absolute() else base / path

    updates: dict[str, Any] = {
        name: base / value
        for name in ("key_registry", "subjects")
        if (value := getattr(config, name)) is not None and not value.is_absolute()
    }
    if config.outbox.path is not None and not config.outbox.path.is_absolute():
        updates["outbox"] = config.outbox.model_copy(update={"path": base / config.outbox.path})
    mqtt = config.mqtt
    if mqtt is not None:
        mqtt_updates: dict[str, Any] = {}
        if (password := resolved(mqtt.password_file)) is not None:
            mqtt_updates["password_file"] = password
        if mqtt.tls is not None:
            tls_updates = {
                name: path
                for name in ("ca_file", "cert_file", "key_file")
                if (path := resolved(getattr(mqtt.tls, name))) is not None
            }
            if tls_updates:
                mqtt_updates["tls"] = mqtt.tls.model_copy(update=tls_updates)
        if mqtt_updates:
            updates["mqtt"] = mqtt.model_copy(update=mqtt_updates)
    return config.model_copy(update=updates)


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read and check a configuration file, with the environment's overrides (config_env)."""
    document, applied = apply_environment(
        read_toml(path), os.environ if environ is None else environ, str(path)
    )
    try:
        return parse_config(document, str(path), base=path.parent)
    except ConfigError as exc:
        raise name_overrides(exc, applied) from None
