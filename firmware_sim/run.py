"""Running a scene: every beacon's adverts, through the radio, to every gateway that hears them.

The run is deterministic for a seed: subjects are planned from the scene's random stream, each
beacon has its own stream, and each beacon-gateway channel its own (seeded by the scene seed and
both ids), so adding a gateway does not change what the others hear. Adverts come out in time
order across all gateways (virtual time: as fast as the machine goes). A scene's attacker
(firmware_sim.attacker) has streams of its own too: with or without it, the beacons' traffic is
the same.
"""

from __future__ import annotations

import heapq
import json
import math
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from firmware_sim.attacker import Attacker
from firmware_sim.beacon import Quirks, SimulatedBeacon
from firmware_sim.capture import EDDYSTONE_UUID, CapturedAdvert
from firmware_sim.config_service import EidState, Firmware, Slot
from firmware_sim.radio import Link, RadioModel
from firmware_sim.subjects import subjects_toml
from firmware_sim.world import Subject, body_blocks_from, plan_subjects

if TYPE_CHECKING:
    from collections.abc import Iterator

    from firmware_sim.attacker import AttackCounts, Transmission
    from firmware_sim.beacon import Advert
    from firmware_sim.scene import Scene


@dataclass(slots=True)
class SceneRun:
    """A scene's subjects, their beacons and keys, ready to produce adverts."""

    scene: Scene
    seed: int
    subjects: list[Subject]
    beacons: dict[str, SimulatedBeacon] = field(default_factory=dict)
    keys: dict[str, tuple[bytes, int, int]] = field(default_factory=dict, repr=False)
    """Enrolled EID subjects: identity key, exponent, clock offset (secrets: not in the repr)."""
    attack: AttackCounts | None = None
    """What the scene's attacker sent and the gateways heard (once :meth:`adverts` has run)."""

    @property
    def end(self) -> float:
        """When the scene ends (unix seconds)."""
        return self.scene.start + self.scene.duration_s

    def adverts(self) -> Iterator[CapturedAdvert]:
        """Every advert heard by any gateway, in time order (the attacker's too, if any)."""
        settings = self.scene.radio
        radio = RadioModel(
            **settings.model_dump(
                exclude={"beacon_calibration_sigma_db", "gateway_calibration_sigma_db"}
            )
        )
        # Calibration errors: each gateway's receiver and each beacon's transmitter are a little
        # off, drawn once per run from their own streams.
        gateways = self._receivers()
        beacon_error = {
            subject.id: random.Random(f"{self.seed}:calibration:{subject.id}").gauss(
                0.0, settings.beacon_calibration_sigma_db
            )
            for subject in self.subjects
        }
        links: dict[str, list[Link]] = {}  # by subject, one per gateway, while it sends

        def sent(subject: Subject) -> Iterator[tuple[float, str, Advert]]:
            beacon = self.beacons[subject.id]
            for advert in beacon.adverts(min(subject.leave, self.end)):
                yield advert.at, subject.id, advert
            links.pop(subject.id, None)  # gone: its channels are not needed again

        hostile = None
        if self.scene.attacker is not None:
            attacker = Attacker(
                self.scene.attacker,
                seed=self.seed,
                start=self.scene.start,
                enrolled=frozenset(self.keys),
            )
            self.attack = attacker.counts
            hostile = _HostileRadio(attacker, radio, gateways, self.seed)
        by_id = {subject.id: subject for subject in self.subjects}
        hypot = math.hypot
        for at, subject_id, advert in heapq.merge(*(sent(s) for s in self.subjects)):
            subject = by_id[subject_id]
            channels = links.get(subject_id)
            if channels is None:
                channels = links[subject_id] = [
                    Link(radio, random.Random(f"{self.seed}:{subject_id}:{gateway_id}"))
                    for gateway_id, _, _ in gateways
                ]
            x, y = subject.position(at)
            if hostile is not None:
                # The attacker's frames due by now go first; then it hears this one (causal).
                yield from hostile.due(at)
                hostile.attacker.hear(at, subject_id, (x, y), advert.address, advert.service_data)
            heading = subject.heading(at) if subject.on_body else 0.0
            tx_power = subject.flow.tx_power + beacon_error[subject_id]
            service_data = {EDDYSTONE_UUID: advert.service_data}
            for (gateway_id, position, offset), link in zip(gateways, channels, strict=True):
                blocked = subject.on_body and body_blocks_from((x, y), heading, position)
                distance = hypot(position[0] - x, position[1] - y)
                rssi = link.receive(at, tx_power + offset, distance, body_blocked=blocked)
                if rssi is not None:
                    yield CapturedAdvert(at, gateway_id, advert.address, rssi, service_data)
        if hostile is not None:
            yield from hostile.due(self.end, until_end=True)

    def _receivers(self) -> list[tuple[str, tuple[float, float], float]]:
        """Each gateway's id, position and receiver offset (its calibration error included)."""
        sigma = self.scene.radio.gateway_calibration_sigma_db
        receivers = []
        for gateway in self.scene.gateways:
            error = random.Random(f"{self.seed}:calibration:{gateway.id}").gauss(0.0, sigma)
            receivers.append((gateway.id, gateway.position, gateway.rssi_offset_db + error))
        return receivers

    def ground_truth(self) -> dict[str, Any]:
        """Which subject was in which zone, when; and which beacons are enrolled."""
        return {
            "scene": self.scene.name,
            "seed": self.seed,
            "start": self.scene.start,
            "end": self.end,
            "subjects": [
                {
                    "id": subject.id,
                    "flow": subject.flow.id,
                    "enrolled": subject.enrolled,
                    "arrive": subject.arrive,
                    "leave": subject.leave,
                    "stays": [
                        {"zone": stay.zone, "enter": stay.enter, "exit": stay.exit}
                        for stay in subject.stays(self.scene.zones)
                    ],
                }
                for subject in self.subjects
            ],
        }

    def subjects_toml(self) -> str:
        """A gateway subjects file: who carries the enrolled beacons (firmware_sim.subjects)."""
        return subjects_toml(self)

    def registry_toml(self) -> str:
        """A gateway key registry (test keys) with the enrolled subjects' beacons."""
        lines = [
            f"# Test keys of scene {self.scene.name!r}, seed {self.seed}: simulated beacons only.",
            "version = 1",
            "test_keys = true",
        ]
        for beacon_id, (key, exponent, offset) in self.keys.items():
            lines += [
                "",
                "[[beacons]]",
                f"id = {json.dumps(beacon_id)}",
                f'identity_key = "{key.hex()}"',
                f"rotation_exponent = {exponent}",
                f"clock_offset = {offset}",
            ]
        return "\n".join(lines) + "\n"


class _HostileRadio:
    """The attacker's frames as the gateways hear them.

    One radio link per gateway, with random streams of its own: the beacons' links never carry
    the attacker's frames, so they draw the same numbers with or without it.
    """

    __slots__ = ("_channels", "attacker")

    def __init__(
        self,
        attacker: Attacker,
        radio: RadioModel,
        gateways: list[tuple[str, tuple[float, float], float]],
        seed: int,
    ) -> None:
        self.attacker = attacker
        x, y = attacker.position
        power = attacker.settings.tx_power
        self._channels = [
            (
                gateway_id,
                Link(radio, random.Random(f"{seed}:attacker:{gateway_id}")),
                math.hypot(position[0] - x, position[1] - y),
                power + offset,
            )
            for gateway_id, position, offset in gateways
        ]

    def due(self, at: float, *, until_end: bool = False) -> Iterator[CapturedAdvert]:
        """What is heard of the frames due by ``at`` (before it, ``until_end``)."""
        attacker = self.attacker
        while (due := attacker.next_at()) < at or (due == at and not until_end):
            yield from self._transmit(attacker.pop())

    def _transmit(self, frame: Transmission) -> Iterator[CapturedAdvert]:
        kind = frame.kind
        heard = self.attacker.counts.heard
        service_data = {EDDYSTONE_UUID: frame.service_data}
        for gateway_id, link, distance, tx_power in self._channels:
            rssi = link.receive(frame.at, tx_power, distance)
            if rssi is not None:
                heard[kind] += 1
                yield CapturedAdvert(frame.at, gateway_id, frame.address, rssi, service_data)


def _beacon(subject: Subject, rng: random.Random) -> tuple[SimulatedBeacon, tuple[bytes, int, int]]:
    flow = subject.flow
    powered_at = subject.arrive
    if flow.beacon == "eid":
        identity_key = rng.randbytes(16)
        clock_start = rng.randrange(1 << 30)
        state = EidState(identity_key, flow.rotation_exponent, clock_start, powered_at, None)
        slots = [Slot(kind="eid", eid=state, radio_tx_power=flow.tx_power), Slot(kind="tlm")]
        key = (identity_key, flow.rotation_exponent, clock_start - math.floor(powered_at))
    else:
        slots = [Slot(kind="uid", data=rng.randbytes(16), radio_tx_power=flow.tx_power)]
        key = (b"", 0, 0)
    firmware = Firmware(lock_code=bytes(16), slots=slots, interval_ms=flow.interval_ms)
    quirks = Quirks(eid_frame_18_bytes=flow.eid_frame_18_bytes, etlm_19_bytes=flow.etlm_19_bytes)
    beacon = SimulatedBeacon(
        firmware, rng=rng, powered_at=powered_at, drift_ppm=flow.drift_ppm, quirks=quirks
    )
    return beacon, key


def prepare(scene: Scene, seed: int | None = None) -> SceneRun:
    """Plan the scene's subjects and build their beacons (nothing is sent yet)."""
    seed = scene.seed if seed is None else seed
    subjects = plan_subjects(scene, random.Random(f"{seed}:plan"))
    run = SceneRun(scene, seed, subjects)
    for subject in subjects:
        beacon, key = _beacon(subject, random.Random(f"{seed}:beacon:{subject.id}"))
        run.beacons[subject.id] = beacon
        if subject.flow.beacon == "eid" and subject.enrolled:
            run.keys[subject.id] = key
    return run
