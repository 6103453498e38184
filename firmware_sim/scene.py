"""Scene files: a floor of zones, gateways in them, and flows of people or bags with beacons.

A scene is TOML (configs/scenes/*.toml; docs/simulator.md has the format)::

    name = "store"
    duration_s = 1800
    seed = 1

    [[zones]]                      # rectangles, metres
    id = "entrance"
    rect = [0.0, 0.0, 6.0, 4.0]    # x0, y0, x1, y1

    [[gateways]]
    id = "gw-entrance"
    position = [3.0, 2.0]
    zone = "entrance"

    [[flows]]                      # subjects arriving at random (Poisson) and walking steps
    id = "shoppers"
    arrivals_per_minute = 3.0
    enrolled = 0.8                 # share whose beacon is registered with the gateway
    [[flows.steps]]
    zones = ["entrance"]
    dwell_s = [5.0, 15.0]

    [attacker]                     # optional: a hostile transmitter (firmware_sim.attacker)
    position = [11.0, 19.0]

Loading checks the whole file and reports every problem with its field path and value.
"""

from __future__ import annotations

import tomllib
from dataclasses import fields
from typing import TYPE_CHECKING, Annotated, Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from firmware_sim.capture import TIME_LIMIT
from firmware_sim.radio import RadioModel

if TYPE_CHECKING:
    from pathlib import Path

Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Probability = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
FlightNumber = Annotated[str, Field(pattern=r"^[A-Z0-9]{2,3}[0-9]{1,4}[A-Z]?$")]
AirportCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


_RADIO_DEFAULTS: dict[str, Any] = {field.name: field.default for field in fields(RadioModel)}
"""One source of truth: a scene's radio settings default to the radio model's."""


class SceneError(ValueError):
    """A scene file is not valid; the message lists every problem with its field path."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Zone(_Model):
    """A rectangular area of the floor (metres)."""

    id: Identifier
    rect: tuple[Finite, Finite, Finite, Finite]

    @pydantic.field_validator("rect")
    @classmethod
    def _ordered(cls, rect: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        x0, y0, x1, y1 = rect
        if not (x0 < x1 and y0 < y1):
            msg = "must be [x0, y0, x1, y1] with x0 < x1 and y0 < y1"
            raise ValueError(msg)
        return rect

    def contains(self, x: float, y: float) -> bool:
        """Whether the point lies in the zone."""
        x0, y0, x1, y1 = self.rect
        return x0 <= x <= x1 and y0 <= y <= y1


class Gateway(_Model):
    """A receiver at a fixed position, serving a zone."""

    id: Identifier
    position: tuple[Finite, Finite]
    zone: Identifier
    rssi_offset_db: Finite = 0.0


class Step(_Model):
    """One stop of an itinerary: go to one of ``zones`` and stay ``dwell_s`` there."""

    zones: Annotated[list[Identifier], Field(min_length=1)]
    weights: list[NonNegative] | None = None
    dwell_s: tuple[NonNegative, NonNegative] = (0.0, 0.0)
    repeat: tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]] = (1, 1)
    misroute: Probability = 0.0
    """Chance of going to another of the scene's zones in ``misroute_to`` instead."""
    misroute_to: list[Identifier] = Field(default_factory=list)
    stay: Probability = 0.0
    """Chance of never leaving this step (left behind) until the scene ends."""

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> Step:
        if self.weights is not None and len(self.weights) != len(self.zones):
            msg = "weights must have one weight per zone"
            raise ValueError(msg)
        if self.dwell_s[0] > self.dwell_s[1] or self.repeat[0] > self.repeat[1]:
            msg = "ranges must be [low, high] with low <= high"
            raise ValueError(msg)
        if self.misroute > 0 and not self.misroute_to:
            msg = "misroute needs misroute_to zones"
            raise ValueError(msg)
        return self


class SubjectSettings(_Model):
    """The back office's records of a flow's enrolled subjects (firmware_sim.subjects).

    Customers get an alias, a segment drawn by ``segments`` weights and consent with
    probability ``consent``; bags a tag number, an owner and one of ``flights`` with its
    destination.
    """

    kind: Literal["customer", "bag"]
    segments: dict[Identifier, NonNegative] = Field(default_factory=dict)
    consent: Probability = 1.0
    flights: dict[FlightNumber, AirportCode] = Field(default_factory=dict)
    """Flight number -> destination airport; each bag is on one of them, drawn evenly."""

    @pydantic.model_validator(mode="after")
    def _for_kind(self) -> SubjectSettings:
        if self.kind == "customer" and self.flights:
            msg = "flights are for bags"
            raise ValueError(msg)
        if self.kind == "bag" and self.segments:
            msg = "segments are for customers"
            raise ValueError(msg)
        if self.segments and sum(self.segments.values()) <= 0:
            msg = "segments need a positive weight"
            raise ValueError(msg)
        return self


class Flow(_Model):
    """Subjects that arrive at random and follow the steps, carrying one beacon each."""

    id: Identifier
    arrivals_per_minute: Positive
    initial: Annotated[int, Field(ge=0)] = 0
    """Subjects already present when the scene starts."""
    enrolled: Probability = 1.0
    beacon: Literal["eid", "uid"] = "eid"
    rotation_exponent: Annotated[int, Field(ge=0, le=15)] = 10
    interval_ms: Annotated[int, Field(ge=100, le=10_240)] = 1000
    tx_power: Annotated[int, Field(ge=-100, le=20)] = -12
    drift_ppm: Annotated[float, Field(ge=-500, le=500)] = 0.0
    eid_frame_18_bytes: bool = False
    """Firmware quirk: mbed's 18-byte EID frames."""
    etlm_19_bytes: bool = False
    """Firmware quirk: early Nordic firmware's 19-byte eTLM frames."""
    speed_mps: tuple[Positive, Positive] = (0.8, 1.4)
    body_blocking: Probability = 0.3
    """Share of subjects carrying the beacon on the body (in a pocket): the body then blocks
    gateways behind them."""
    steps: Annotated[list[Step], Field(min_length=1)]
    subjects: SubjectSettings | None = None
    """Who carries the enrolled beacons, for the gateway's subjects file (none: anonymous)."""


class RadioSettings(_Model):
    """Overrides of :class:`firmware_sim.radio.RadioModel`'s defaults."""

    path_loss_exponent: Positive = _RADIO_DEFAULTS["path_loss_exponent"]
    shadowing_sigma_db: NonNegative = _RADIO_DEFAULTS["shadowing_sigma_db"]
    shadowing_tau_s: NonNegative = _RADIO_DEFAULTS["shadowing_tau_s"]
    fading: bool = _RADIO_DEFAULTS["fading"]
    body_loss_db: NonNegative = _RADIO_DEFAULTS["body_loss_db"]
    loss_probability: Probability = _RADIO_DEFAULTS["loss_probability"]
    sensitivity_dbm: Finite = _RADIO_DEFAULTS["sensitivity_dbm"]
    beacon_calibration_sigma_db: NonNegative = 1.5
    """Each beacon's Tx power is off by a normal error of this spread (units differ)."""
    gateway_calibration_sigma_db: NonNegative = 1.5
    """Each gateway's receiver is off by a normal error of this spread (antennas, mounting)."""


class AttackerSettings(_Model):
    """A hostile transmitter (docs/simulator.md, "Attacker"); every behaviour is on by default.

    It listens to the legitimate beacons within ``listen_range_m`` of its position (the whole
    floor when unset) and transmits from ``position`` at ``tx_power`` (dBm at 0 m), through the
    same radio model as the beacons.
    """

    position: tuple[Finite, Finite]
    tx_power: Annotated[int, Field(ge=-100, le=20)] = 0
    listen_range_m: Positive | None = None
    replay: bool = True
    """Re-send each EID it heard ``replay_delay_s`` later, from an address of its own."""
    replay_delay_s: Positive = 3600.0
    replay_repeats: Annotated[int, Field(ge=1, le=100)] = 3
    replay_interval_s: Positive = 1.0
    forged_etlm: bool = True
    """eTLM frames with random ciphertext, salt and MIC."""
    forged_etlm_per_minute: Positive = 120.0
    spoof_share: Probability = 0.5
    """Share of forged eTLM sent from an address a real beacon used in the last
    ``spoof_memory_s`` (the rest, and all when it heard none, from random addresses)."""
    spoof_memory_s: Positive = 10.0
    flood: bool = True
    """Fresh random addresses, each sending a few random UID- or EID-looking frames."""
    flood_addresses_per_minute: Positive = 10_000.0
    flood_frames_per_address: Annotated[int, Field(ge=1, le=100)] = 3
    flood_frame_interval_s: Positive = 0.1
    flood_eid_share: Probability = 0.5
    flood_burst_s: Positive | None = None
    """Flood in bursts this long, one starting every ``flood_every_s`` (unset: all the time)."""
    flood_every_s: Positive = 600.0
    malformed: bool = True
    """Truncated frames, reserved or unknown frame types, unknown TLM versions."""
    malformed_per_minute: Positive = 120.0

    @pydantic.model_validator(mode="after")
    def _bursts(self) -> AttackerSettings:
        if self.flood_burst_s is not None and self.flood_burst_s > self.flood_every_s:
            msg = "flood_burst_s must not be longer than flood_every_s"
            raise ValueError(msg)
        return self


class Scene(_Model):
    """A whole scene: floor, gateways, flows, radio, duration and seed."""

    name: Identifier
    description: str = ""
    duration_s: Positive
    start: NonNegative = 1_767_225_600.0
    """Unix time the scene starts at (2026-01-01T00:00:00Z by default)."""
    seed: int = 1
    radio: RadioSettings = Field(default_factory=RadioSettings)
    zones: Annotated[list[Zone], Field(min_length=1)]
    gateways: Annotated[list[Gateway], Field(min_length=1)]
    flows: Annotated[list[Flow], Field(min_length=1)]
    attacker: AttackerSettings | None = None
    """A hostile transmitter; none in a scene without an ``[attacker]`` table."""
    gateway: dict[Identifier, Any] = Field(default_factory=dict)
    """Gateway settings for this floor (``[gateway.publish]``, ``[[gateway.triggers]]``...),
    merged into the configuration the gateway derives from the scene; the gateway checks them."""

    @pydantic.model_validator(mode="after")
    def _references(self) -> Scene:
        zone_ids = [zone.id for zone in self.zones]
        known = set(zone_ids)
        problems = []
        if len(known) != len(zone_ids):
            problems.append("zone ids must be unique")
        if len({gateway.id for gateway in self.gateways}) != len(self.gateways):
            problems.append("gateway ids must be unique")
        if not self.start + self.duration_s < TIME_LIMIT:
            problems.append("the scene must end before year 10000 (start + duration_s)")
        problems += [
            f"gateway {gateway.id!r} names unknown zone {gateway.zone!r}"
            for gateway in self.gateways
            if gateway.zone not in known
        ]
        for flow in self.flows:
            for step in flow.steps:
                problems += [
                    f"flow {flow.id!r} names unknown zone {zone!r}"
                    for zone in [*step.zones, *step.misroute_to]
                    if zone not in known
                ]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def with_duration(self, duration_s: float) -> Scene:
        """This scene, lasting ``duration_s`` instead (checked: :class:`SceneError` if not)."""
        document = self.model_dump()
        document["duration_s"] = duration_s
        return parse_scene(document, f"scene {self.name!r} with duration_s {duration_s!r}")

    def zone(self, zone_id: str) -> Zone:
        """The zone with this id."""
        return next(zone for zone in self.zones if zone.id == zone_id)


def _location(location: tuple[int | str, ...]) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "<scene>"


def parse_scene(document: dict[str, Any], source: str = "<scene>") -> Scene:
    """Check a parsed scene document; :class:`SceneError` lists every problem."""
    try:
        return Scene.model_validate(document)
    except pydantic.ValidationError as exc:
        lines = [
            f"  {_location(tuple(item['loc']))}: {item['msg'].removeprefix('Value error, ')}"
            + ("" if isinstance(item["input"], dict) else f" (got {item['input']!r})")
            for item in exc.errors(include_url=False)
        ]
        msg = f"{source}: {len(lines)} problem(s)\n" + "\n".join(lines)
        raise SceneError(msg) from None


def load_scene(path: Path) -> Scene:
    """Read and check a scene file."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        msg = f"{path}: cannot read: {exc.strerror}"
        raise SceneError(msg) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        msg = f"{path}: not valid TOML: {exc}"
        raise SceneError(msg) from None
    except RecursionError:
        msg = f"{path}: not valid TOML: nested too deep"
        raise SceneError(msg) from None
    return parse_scene(document, str(path))
