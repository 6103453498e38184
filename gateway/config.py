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
from gateway.core.fleet import BATCH_INTERVAL_S, REPORT_INTERVAL_S
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
    # Attribute docstrings are the fields' descriptions: docs/config-reference.md is
    # generated from them (gateway/config_reference.py).
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class GatewayConfig(_Model):
    """A radio whose sightings this pipeline reads (its id as the source stamps it)."""

    id: Identifier
    """The id its sightings carry; the radio of ``run --bleak`` stamps the top-level
    ``gateway_id``, so list that one here."""
    position: tuple[Finite, Finite] | None = None
    """``[x, y]`` in metres; every gateway needs one when the zones have ``rect`` (a floor
    plan)."""
    rssi_offset_db: Finite = 0.0
    """dB added to this gateway's RSSI: antenna gain, enclosure, mounting."""


class ZoneConfig(_Model):
    """A zone: one or more gateways; a rectangle on a floor plan, or a radius around them."""

    id: Identifier
    """The zone's id, as events and trigger rules name it."""
    gateways: Annotated[list[Identifier], Field(min_length=1)]
    """Ids of ``[[gateways]]`` whose sightings score this zone; a gateway is in one zone at
    most."""
    radius_m: Positive | None = None
    """Without a floor plan: in the zone only within this estimated distance (m) of its
    strongest gateway; none: at any distance."""
    rect: tuple[Finite, Finite, Finite, Finite] | None = None
    """``[x0, y0, x1, y1]`` in metres (x0 < x1, y0 < y1): a floor-plan zone; every zone has
    one or none does."""

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
    """The beacon id events and the subjects file use for it."""
    namespace: Annotated[Hex, Field(min_length=20, max_length=20)]
    """The 10-byte namespace of its UID frames, 20 hex digits."""
    instance: Annotated[Hex, Field(min_length=12, max_length=12)]
    """The 6-byte instance of its UID frames, 12 hex digits."""


class UrlBeacon(_Model):
    """A URL beacon on the allow-list."""

    id: Identifier
    """The beacon id events and the subjects file use for it."""
    url: Annotated[str, Field(min_length=1, max_length=256)]
    """The URL its URL frames carry, decoded (``https://www.example.com/``)."""


class ProximityConfig(_Model):
    """Proximity band edges (m) and their hysteresis."""

    immediate_m: Positive = _BANDS.immediate_m
    """Closer than this (m) is ``immediate``; must be less than ``near_m``."""
    near_m: Positive = _BANDS.near_m
    """Closer than this (m) is ``near``, farther ``far``."""
    hysteresis: Annotated[float, Field(ge=0, lt=1)] = _BANDS.hysteresis
    """A band changes only once the distance is this share past the edge (0.2: 20 %)."""

    @pydantic.model_validator(mode="after")
    def _ordered(self) -> ProximityConfig:
        if self.immediate_m >= self.near_m:
            msg = "immediate_m must be less than near_m"
            raise ValueError(msg)
        return self


class PresenceConfig(_Model):
    """Presence tuning (gateway.core.presence explains each knob)."""

    filter: presence_defaults.FilterKind = "kalman"
    """The RSSI filter of each beacon-gateway link."""
    enter_debounce_s: NonNegative = presence_defaults.ENTER_DEBOUNCE_S
    """A zone must lead this long (s) before it is entered."""
    enter_min_sightings: Annotated[int, Field(ge=1)] = presence_defaults.ENTER_MIN_SIGHTINGS
    """An enter also needs this many sightings of the leading zone."""
    switch_margin_db: NonNegative = presence_defaults.SWITCH_MARGIN_DB
    """Another zone must be this much stronger (dB) to take over (zones by gateway)."""
    fit_margin_db: NonNegative = presence_defaults.FIT_MARGIN_DB
    """The same margin on the zones' misfit (RMS dB) with a floor plan."""
    switch_evidence_db_s: Positive = presence_defaults.SWITCH_EVIDENCE_DB_S
    """A zone change needs the lead past the margin, summed over time, to reach this (dB s)."""
    min_stay_s: NonNegative = presence_defaults.MIN_STAY_S
    """...and the beacon to have stayed this long (s) in its zone: no flicker between two."""
    radius_hysteresis: NonNegative = presence_defaults.RADIUS_HYSTERESIS
    """Once inside, a zone's ``radius_m`` stretches by this share before the beacon is out."""
    exit_intervals: Positive = presence_defaults.EXIT_INTERVALS
    """Silence of this many of the beacon's advertising intervals is an exit."""
    min_exit_timeout_s: Positive = presence_defaults.MIN_EXIT_TIMEOUT_S
    """The exit timeout is never shorter than this (s)."""
    max_exit_timeout_s: Positive = presence_defaults.MAX_EXIT_TIMEOUT_S
    """The exit timeout is never longer than this (s); at least ``min_exit_timeout_s``."""
    dwell_thresholds_s: list[Positive] = Field(
        default_factory=lambda: list(presence_defaults.DWELL_THRESHOLDS_S)
    )
    """Moments after an enter (s) reported as "dwelled N s" events."""
    dwell_interval_s: NonNegative = presence_defaults.DWELL_INTERVAL_S
    """A periodic dwell event this often (s) while present; 0 turns them off."""
    path_loss_exponent: Annotated[float, Field(ge=1, le=6)] = DEFAULT_PATH_LOSS_EXPONENT
    """The log-distance model's exponent, for distances and the floor plan (2: free space)."""
    proximity: ProximityConfig = Field(default_factory=ProximityConfig)
    """Proximity bands."""

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
    """A beacon's telemetry (TLM, eTLM) is published at most this often (s)."""


class TriggerConfig(_Model):
    """A trigger rule (gateway.core.triggers)."""

    id: Identifier
    """The rule's id: its events' ``rule``."""
    on: Literal["enter", "dwell", "exit", "unseen"]
    """The change it reacts to; ``unseen``: not heard anywhere for ``unseen_s`` after an exit
    by silence."""
    action: Identifier
    """Its events' ``action`` (``offer``, ``notify``, ``alert``...)."""
    zone: Identifier | None = None
    """Only changes in this zone; none: any zone."""
    min_dwell_s: Positive | None = None
    """``dwell`` rules only: fire once per stay, when the dwell reaches this (s)."""
    unseen_s: Positive | None = None
    """``unseen`` rules only, and required there: how long (s) unheard after the exit."""
    proximity: list[Proximity] | None = None
    """Only changes in these proximity bands; none: any."""
    subject_kind: Literal["customer", "bag"] | None = None
    """Only beacons with a subject of this kind; none: any beacon."""
    where: dict[Identifier, list[str | int | float | bool]] = Field(default_factory=dict)
    """Subject attribute -> the values it may have (``segment = ["gold"]``): all must match."""
    cooldown_s: NonNegative = 0.0
    """Fires at most once per this many seconds per beacon."""

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


class FleetConfig(_Model):
    """This gateway's part in a fleet (docs/fleet.md)."""

    mode: Literal["off", "edge", "keyless"] = "off"
    """"off": publish events. "edge": resolve here and publish observations for the site's
    arbiter. "keyless": publish unresolved sightings for the resolver workers (no keys here)."""
    shards: Annotated[int, Field(ge=1, le=1024)] = 1
    """Arbiter shards: observations of a beacon go to ``.../fleet/observations/<shard>``."""
    share_group: Identifier = "resolvers"
    """The MQTT 5 shared subscription group of the resolver workers."""
    report_interval_s: Positive = REPORT_INTERVAL_S
    """Each address's (or beacon's) filtered RSSI is reported at most this often (s)."""
    batch_interval_s: Positive = BATCH_INTERVAL_S
    """Reports wait at most this long (s) for their batch."""


class Config(_Model):
    """The whole gateway configuration."""

    site: Identifier
    """The site (store, airport hall): events' ``site`` and a topic level."""
    gateway_id: Identifier
    """This gateway: events' ``gateway_id``, a topic level, the default MQTT client id, and
    the id the radio of ``run --bleak`` stamps on its sightings."""
    key_registry: Path | None = None
    """The key registry of the EID beacons (relative: to this file); none: EIDs unresolved."""
    subjects: Path | None = None
    """The subjects file: customers and bags behind the beacons (relative: to this file)."""
    gateways: Annotated[list[GatewayConfig], Field(min_length=1)]
    """The radios whose sightings this pipeline reads; ids unique."""
    zones: list[ZoneConfig] = Field(default_factory=list)
    """Zones; without any, every gateway is a zone of its own, named like it."""
    uid_beacons: list[UidBeacon] = Field(default_factory=list)
    """The UID beacons on the allow-list; other UID frames are ignored."""
    url_beacons: list[UrlBeacon] = Field(default_factory=list)
    """The URL beacons on the allow-list; other URL frames are ignored."""
    beacon_calibration_db: dict[Identifier, Finite] = Field(default_factory=dict)
    """Beacon id -> dB added to that beacon's RSSI (its own calibration error)."""
    presence: PresenceConfig = Field(default_factory=PresenceConfig)
    """Presence tuning."""
    publish: PublishConfig = Field(default_factory=PublishConfig)
    """What events may carry."""
    triggers: list[TriggerConfig] = Field(default_factory=list)
    """Trigger rules; ids unique."""
    mqtt: MqttConfig | None = None
    """Without it, ``run`` writes events to standard output as JSON lines."""
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    """The durable outbox events wait in until the broker acknowledges them."""
    http: HttpConfig = Field(default_factory=HttpConfig)
    """``/metrics``, ``/healthz`` and the live view."""
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    """Logs."""
    fleet: FleetConfig = Field(default_factory=FleetConfig)
    """Many gateways, one arbiter; central resolution by resolver workers."""

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
            min_stay_s=p.min_stay_s,
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
