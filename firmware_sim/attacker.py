"""A hostile transmitter in a scene: replays, forged eTLM, an address flood, malformed frames.

The attacker sits at one position and transmits through the same radio model as the beacons.
What it does, each behaviour switched on or off in the scene's ``[attacker]`` table:

- **replay**: it records each EID frame the legitimate beacons send (those within its listening
  range) and re-sends it ``replay_delay_s`` later, ``replay_repeats`` times, from a random
  address of its own: an EID that old is outside the resolver's window (a stale replay);
- **forged eTLM**: encrypted-telemetry frames with random ciphertext, salt and MIC, from random
  addresses and (``spoof_share`` of them) from an address a real beacon used moments ago, so the
  gateway pairs them with that beacon and must reject them on their MIC;
- **flood**: ``flood_addresses_per_minute`` fresh random addresses, each sending a few random
  UID- or EID-looking frames (a crowd of beacons nobody registered);
- **malformed**: truncated frames, reserved or unknown frame types and unknown TLM versions,
  every one of which a parser must reject.

Everything random comes from the attacker's own streams (one per behaviour, seeded by the scene
seed), never from the beacons' or their radio links': a scene with and without the attacker
sends the same legitimate traffic. :class:`AttackCounts` says what was sent, and how many
sightings of each kind the gateways heard, so a test can hold the gateway's counts against it.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from eid import frames

if TYPE_CHECKING:
    from collections.abc import Collection

    from firmware_sim.scene import AttackerSettings

REPLAY: Final = "replay"
"""A replayed EID of an enrolled beacon (the gateway should count it stale)."""
REPLAY_UNREGISTERED: Final = "replay_unregistered"
"""A replayed EID of a beacon nobody enrolled (the gateway cannot tell it from unknown)."""
FORGED_SPOOFED: Final = "forged_etlm_spoofed"
"""Forged eTLM from the address a real beacon used moments ago."""
FORGED_RANDOM: Final = "forged_etlm_random"
"""Forged eTLM from a random address."""
FLOOD: Final = "flood"
MALFORMED: Final = "malformed"
KINDS: Final = (REPLAY, REPLAY_UNREGISTERED, FORGED_SPOOFED, FORGED_RANDOM, FLOOD, MALFORMED)

_FLOOD_ARRIVAL: Final = "flood-arrival"
_FORGE: Final = "forge"
_MALFORM: Final = "malform"
_FIRST: Final = "first"  # marks a flood address's first frame
_EID_TYPE: Final = frames.FrameType.EID.value
_UID_TYPE: Final = frames.FrameType.UID.value
_TLM_TYPE: Final = frames.FrameType.TLM.value
_ETLM_SIZE: Final = 18
_STATIC_BITS: Final = 0xC0 << 40
_UNKNOWN_TYPES: Final = tuple(range(0x40, 0x100, 0x10))
"""High nibbles Eddystone does not define (UID 0x00, URL 0x10, TLM 0x20, EID 0x30)."""
_RESERVED_BITS: Final = tuple(
    kind | low for kind in (0x00, 0x10, 0x20, 0x30) for low in range(1, 16)
)
"""Defined frame types with reserved low bits set."""


def random_address(rng: random.Random) -> str:
    """A random static device address (the two top bits set), as beacons use."""
    text = f"{rng.getrandbits(48) | _STATIC_BITS:012X}"
    return f"{text[:2]}:{text[2:4]}:{text[4:6]}:{text[6:8]}:{text[8:10]}:{text[10:]}"


def _truncated_uid(rng: random.Random) -> bytes:
    return bytes((_UID_TYPE,)) + rng.randbytes(rng.choice((*range(17), 18)))  # not 18 or 20


def _truncated_eid(rng: random.Random) -> bytes:
    size = rng.choice((*range(1, 10), *range(11, 18)))  # not 10 or 18
    return bytes((_EID_TYPE,)) + rng.randbytes(size - 1)


def _truncated_etlm(rng: random.Random) -> bytes:
    return bytes((_TLM_TYPE, frames.TLM_ENCRYPTED)) + rng.randbytes(rng.randrange(16))  # 2..17


def _unknown_tlm_version(rng: random.Random) -> bytes:
    return bytes((_TLM_TYPE, rng.randrange(2, 256))) + rng.randbytes(12)


def _unknown_frame_type(rng: random.Random) -> bytes:
    return bytes((rng.choice(_UNKNOWN_TYPES),)) + rng.randbytes(rng.randrange(20))


def _reserved_bits(rng: random.Random) -> bytes:
    return bytes((rng.choice(_RESERVED_BITS),)) + rng.randbytes(rng.randrange(20))


_MALFORMED: Final = (
    _truncated_uid,
    _truncated_eid,
    _truncated_etlm,
    _unknown_tlm_version,
    _unknown_frame_type,
    _reserved_bits,
)


def malformed_frame(rng: random.Random) -> bytes:
    """Service data no Eddystone parser may accept (never empty: that is no frame at all)."""
    return rng.choice(_MALFORMED)(rng)


@dataclass(frozen=True, slots=True)
class Transmission:
    """One frame the attacker sends: when, from which address, what, and which attack."""

    at: float
    address: str
    service_data: bytes = field(repr=False)
    kind: str
    origin: str | None = None
    """The subject whose frame a replay repeats."""


@dataclass(slots=True)
class AttackCounts:
    """What the attacker sent (frames by kind) and what the gateways heard (sightings by kind)."""

    sent: Counter[str] = field(default_factory=Counter)
    heard: Counter[str] = field(default_factory=Counter)
    recorded_eids: int = 0
    """Distinct EID frames recorded for replay (each sent ``replay_repeats`` times, if due
    before the scene ends)."""
    flood_addresses: int = 0
    heard_addresses_max: int = 0
    """The most addresses the attacker remembered for spoofing at once (its own memory)."""
    pending_replays_max: int = 0
    """The most frames waiting for their replay time at once (its own memory)."""

    def as_dict(self) -> dict[str, int]:
        """Flat figures for reports."""
        figures = {f"sent_{kind}": self.sent[kind] for kind in KINDS}
        figures |= {f"heard_{kind}": self.heard[kind] for kind in KINDS}
        figures |= {
            "recorded_eids": self.recorded_eids,
            "flood_addresses": self.flood_addresses,
            "heard_addresses_max": self.heard_addresses_max,
            "pending_replays_max": self.pending_replays_max,
        }
        return figures


class Attacker:
    """The attacker's schedule: it hears the beacons' frames and sends its own, in time order.

    :meth:`hear` feeds it the beacons' frames; :meth:`next_at` and :meth:`pop` give its own.
    Causal: a frame due at ``t`` uses only what was heard before ``t``, so the caller pops every
    frame due at or before a beacon frame's time before letting the attacker hear that frame.
    """

    def __init__(
        self,
        settings: AttackerSettings,
        *,
        seed: int,
        start: float,
        enrolled: Collection[str] = frozenset(),
    ) -> None:
        """``enrolled`` (subject ids) only labels the counts: the attacker cannot know it."""
        self.settings = settings
        self._enrolled = enrolled
        self.position = settings.position
        self.counts = AttackCounts()
        self._flood_rng = random.Random(f"{seed}:attacker:flood")
        self._forge_rng = random.Random(f"{seed}:attacker:forge")
        self._replay_rng = random.Random(f"{seed}:attacker:replay")
        self._malform_rng = random.Random(f"{seed}:attacker:malform")
        self._queue: list[tuple[float, int, str, str, bytes, str | None]] = []
        self._sequence = 0
        self._pending_replays = 0
        self._recorded: dict[bytes, int] = {}  # EID frame -> its replays still to send
        self._heard: OrderedDict[str, float] = OrderedDict()  # beacon address -> last heard
        self._listen = settings.replay or (settings.forged_etlm and settings.spoof_share > 0)
        range_m = settings.listen_range_m
        self._range2 = math.inf if range_m is None else range_m * range_m
        self._start = start
        if settings.flood:
            self._push(self._next_flood(start), _FLOOD_ARRIVAL, "", b"")
        if settings.forged_etlm:
            rate = settings.forged_etlm_per_minute / 60
            self._push(start + self._forge_rng.expovariate(rate), _FORGE, "", b"")
        if settings.malformed:
            rate = settings.malformed_per_minute / 60
            self._push(start + self._malform_rng.expovariate(rate), _MALFORM, "", b"")

    def _push(
        self, at: float, kind: str, address: str, data: bytes, origin: str | None = None
    ) -> None:
        self._sequence += 1
        heapq.heappush(self._queue, (at, self._sequence, kind, address, data, origin))

    # ------------------------------------------------------------------------------ listening

    def hear(
        self, at: float, origin: str, position: tuple[float, float], address: str, data: bytes
    ) -> None:
        """A beacon's frame sent at ``at`` from ``position`` (it hears it if within range)."""
        if not self._listen:
            return
        dx, dy = position[0] - self.position[0], position[1] - self.position[1]
        if dx * dx + dy * dy > self._range2:
            return
        heard = self._heard
        heard[address] = at
        heard.move_to_end(address)
        cutoff = at - self.settings.spoof_memory_s
        while heard:
            oldest = next(iter(heard))
            if heard[oldest] >= cutoff:
                break
            del heard[oldest]
        counts = self.counts
        counts.heard_addresses_max = max(counts.heard_addresses_max, len(heard))
        if not (self.settings.replay and data and data[0] == _EID_TYPE):
            return
        recorded = self._recorded
        if data in recorded:
            return
        settings = self.settings
        data = bytes(bytearray(data))  # its own copy, as its own radio received it
        recorded[data] = settings.replay_repeats
        counts.recorded_eids += 1
        own = random_address(self._replay_rng)
        send_at = at + settings.replay_delay_s
        kind = REPLAY if origin in self._enrolled else REPLAY_UNREGISTERED
        for repeat in range(settings.replay_repeats):
            self._push(send_at + repeat * settings.replay_interval_s, kind, own, data, origin)
        self._pending_replays += settings.replay_repeats
        counts.pending_replays_max = max(counts.pending_replays_max, self._pending_replays)

    # ----------------------------------------------------------------------------- sending

    def next_at(self) -> float:
        """When the next frame is due (infinity when nothing is scheduled)."""
        queue = self._queue
        while queue and queue[0][2] in {_FLOOD_ARRIVAL, _FORGE, _MALFORM}:
            self._expand(heapq.heappop(queue))
        return queue[0][0] if queue else math.inf

    def pop(self) -> Transmission:
        """The next frame (call :meth:`next_at` first: it must not be infinity)."""
        self.next_at()
        at, _, kind, address, data, origin = heapq.heappop(self._queue)
        if kind in {REPLAY, REPLAY_UNREGISTERED}:
            self._pending_replays -= 1
            left = self._recorded[data] - 1
            if left:
                self._recorded[data] = left
            else:
                del self._recorded[data]
        elif origin == _FIRST:
            self.counts.flood_addresses += 1
            origin = None
        self.counts.sent[kind] += 1
        return Transmission(at, address, data, kind, origin)

    def _next_flood(self, after: float) -> float:
        """When the next flood address appears: a Poisson process, in bursts if asked."""
        settings = self.settings
        at = after + self._flood_rng.expovariate(settings.flood_addresses_per_minute / 60)
        burst = settings.flood_burst_s
        if burst is not None:
            phase = (at - self._start) % settings.flood_every_s
            if phase >= burst:  # between bursts: the process goes on when the next one starts
                at += settings.flood_every_s - phase
        return at

    def _expand(self, event: tuple[float, int, str, str, bytes, str | None]) -> None:
        """Turn a schedule tick into frames, and schedule the next tick."""
        at, _, kind, _, _, _ = event
        settings = self.settings
        if kind == _FLOOD_ARRIVAL:
            rng = self._flood_rng
            address = random_address(rng)
            eid_like = rng.random() < settings.flood_eid_share
            power = settings.tx_power & 0xFF
            for number in range(settings.flood_frames_per_address):
                if eid_like:
                    data = bytes((_EID_TYPE, power)) + rng.randbytes(8)
                else:
                    data = bytes((_UID_TYPE, power)) + rng.randbytes(16) + b"\x00\x00"
                first = _FIRST if number == 0 else None  # the address is counted when sent
                self._push(
                    at + number * settings.flood_frame_interval_s, FLOOD, address, data, first
                )
            self._push(self._next_flood(at), _FLOOD_ARRIVAL, "", b"")
        elif kind == _FORGE:
            rng = self._forge_rng
            data = bytes((_TLM_TYPE, frames.TLM_ENCRYPTED)) + rng.randbytes(_ETLM_SIZE - 2)
            spoof = rng.random() < settings.spoof_share
            heard = self._heard
            cutoff = at - settings.spoof_memory_s
            while heard and heard[next(iter(heard))] < cutoff:
                del heard[next(iter(heard))]
            if spoof and heard:
                address = list(heard)[rng.randrange(len(heard))]
                self._push(at, FORGED_SPOOFED, address, data)
            else:
                self._push(at, FORGED_RANDOM, random_address(rng), data)
            rate = settings.forged_etlm_per_minute / 60
            self._push(at + rng.expovariate(rate), _FORGE, "", b"")
        else:
            rng = self._malform_rng
            self._push(at, MALFORMED, random_address(rng), malformed_frame(rng))
            rate = settings.malformed_per_minute / 60
            self._push(at + rng.expovariate(rate), _MALFORM, "", b"")
