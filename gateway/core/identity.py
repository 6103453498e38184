"""Who sent a sighting: UID and URL beacons by allow-list, EIDs by resolution, eTLM by pairing.

An EID beacon sends its encrypted telemetry (eTLM) from the same private address as its EIDs,
so a telemetry frame is attributed to the beacon whose EID was resolved most recently from that
address (within :data:`PAIRING_WINDOW_S`), and decrypted with that beacon's identity key. Plain
TLM frames are paired the same way (with UID, URL or EID beacons). A frame from a beacon nobody
registered is counted by reason and dropped: it never reaches presence or the broker.

Hostile radio (docs/sensing.md, "Identity"). Pairings expire: entries older than the pairing
window are swept once a window, so the table holds what was identified within the last two
windows, whatever the traffic; a cap (oldest address first out) backs that up. eTLM's MIC is only
16 bits, so a random frame from a paired address verifies about 3 times in 65,536 (three periods
are tried) and decrypts to noise. A reading that verifies must therefore also agree with its
beacon's recent readings (its uptime advanced with the time between them, or it restarted):
with the last reading that two frames agreed on, or else with the last one that verified. A
forgery agrees with neither, so it is counted forged; until two of a beacon's frames have
agreed (its first seconds in range), a reading is taken as it comes.
"""

from __future__ import annotations

import enum
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import eid
from eid import frames

if TYPE_CHECKING:
    from collections.abc import Mapping

    from gateway.core.sighting import Sighting

PAIRING_WINDOW_S: Final = 60.0
"""A beacon interleaves TLM with its ID frame every few seconds; a minute covers packet loss."""
MAX_PAIRED_ADDRESSES: Final = 200_000
"""Addresses remembered for pairing: far more than one radio hears within the window."""
UPTIME_SLACK_S: Final = 10.0
"""A reading's uptime may differ this much from its beacon's last one plus the time between
them (reception times, tenths rounded, an advert delayed)."""
UPTIME_RATE_TOLERANCE: Final = 0.01
"""...plus this share of the time between them: beacon oscillators are off by up to 1 %."""
READING_MEMORY_S: Final = 600.0
"""A beacon's recent readings are kept ten minutes: one in range sends a reading every few
seconds; one back after longer starts afresh."""
_UPTIME_MODULUS: Final = 1 << 32
_ETLM_PERIOD_TRIES: Final = (0, -1, 1)
"""Periods tried for eTLM: the paired EID's first, then its neighbours (spec sections 6, 10)."""


class Outcome(enum.StrEnum):
    """What became of a sighting; stable values, fit for metric labels."""

    IDENTIFIED = "identified"
    TELEMETRY = "telemetry"
    MALFORMED = "malformed"
    UNKNOWN = "unknown"
    """An EID no registered beacon shows, or a UID/URL not on the allow-list."""
    AMBIGUOUS = "ambiguous"
    STALE = "stale"
    """A registered beacon's EID from outside its window: a replay, or far too late."""
    UNPAIRED = "unpaired"
    """Telemetry from an address with no recently identified beacon."""
    FORGED = "forged"
    """eTLM whose MIC does not verify with the paired beacon's key."""


@dataclass(frozen=True, slots=True)
class Identified:
    """A sighting attributed to a beacon. ``tx_power`` is the frame's 0 m power (dBm)."""

    beacon_id: str
    tx_power: int
    frame_kind: str
    eid: bytes | None = field(default=None, repr=False)
    """The raw EID of an EID frame (privacy-sensitive: published only for debugging)."""


@dataclass(frozen=True, slots=True)
class Telemetry:
    """Telemetry attributed to a beacon, heard at ``at``; ``encrypted`` when it came as eTLM.

    ``tx_power`` is the 0 m power of the beacon's paired ID frame (telemetry carries none).
    """

    beacon_id: str
    at: float
    tx_power: int
    battery_mv: int
    temperature_c: float | None
    adv_count: int
    uptime_ds: int
    encrypted: bool


@dataclass(frozen=True, slots=True, repr=False)
class EidKey:
    """What decrypting a beacon's eTLM needs. The repr hides the key."""

    identity_key: bytes
    exponent: int

    def __repr__(self) -> str:
        return f"EidKey(identity_key=<hidden>, exponent={self.exponent})"


@dataclass(slots=True)
class _Pairing:
    beacon_id: str
    counter: int | None  # the EID's period start; None for UID/URL beacons
    tx_power: int
    at: float


@dataclass(frozen=True, slots=True)
class _Reading:
    at: float
    uptime_ds: int
    frame: bytes  # the eTLM frame it came in: one frame heard twice does not vouch for itself

    def agrees(self, at: float, uptime_ds: int) -> bool:
        """Whether a reading at ``at`` can follow this one from the same beacon.

        Its uptime advanced with time (within the slack and the oscillator tolerance), or the
        beacon restarted in between (an uptime no longer than the time since this reading).
        """
        elapsed_ds = (at - self.at) * 10
        tolerance = 10 * UPTIME_SLACK_S + UPTIME_RATE_TOLERANCE * abs(elapsed_ds)
        difference = (uptime_ds - self.uptime_ds - round(elapsed_ds)) % _UPTIME_MODULUS
        if min(difference, _UPTIME_MODULUS - difference) <= tolerance:
            return True
        return uptime_ds <= elapsed_ds + 10 * UPTIME_SLACK_S


@dataclass(frozen=True, slots=True)
class _Readings:
    confirmed: _Reading | None  # the last reading two frames agreed on
    last: _Reading  # the last reading that verified


@dataclass(frozen=True, slots=True)
class Claim:
    """The beacon an ID frame names, and ``counter``: its EID period's start (EID frames)."""

    beacon_id: str
    tx_power: int
    frame_kind: str
    counter: int | None = None


IdFrame = frames.EidFrame | frames.UidFrame | frames.UrlFrame


class BeaconDirectory:
    """Who an ID frame belongs to: EIDs by the resolver, UIDs and URLs by their allow-lists.

    Shared by the gateway's :class:`Identifier` and the fleet's resolver workers
    (:class:`gateway.core.fleet.BatchResolver`), so both name beacons, and count what they
    cannot name, the same way.
    """

    __slots__ = ("_resolver", "_uid", "_url")

    def __init__(
        self,
        resolver: eid.Resolver | None,
        uid_beacons: Mapping[bytes, str] | None,
        url_beacons: Mapping[str, str] | None,
    ) -> None:
        self._resolver = resolver
        self._uid = dict(uid_beacons or {})
        self._url = dict(url_beacons or {})

    def claim(self, frame: IdFrame, at: float, counts: Counter[Outcome]) -> Claim | None:
        """The beacon ``frame`` names at ``at``, or None, counted in ``counts`` by why."""
        if isinstance(frame, frames.EidFrame):
            resolver = self._resolver
            if resolver is None:
                counts[Outcome.UNKNOWN] += 1
                return None
            try:
                match = resolver.resolve(frame.eid, at)
                if match is None:
                    counts[Outcome(resolver.lookup(frame.eid, at).reason.value)] += 1
                    return None
            except eid.EidError:  # a time the resolver cannot take
                counts[Outcome.MALFORMED] += 1
                return None
            return Claim(match.beacon_id, frame.tx_power, "eid", match.counter)
        if isinstance(frame, frames.UidFrame):
            beacon_id = self._uid.get(frame.namespace + frame.instance)
            kind = "uid"
        else:
            beacon_id = self._url.get(frame.url)
            kind = "url"
        if beacon_id is None:
            counts[Outcome.UNKNOWN] += 1
            return None
        return Claim(beacon_id, frame.tx_power, kind)


class Identifier:
    """Attributes sightings to beacons; keeps per-outcome counters in :attr:`counts`."""

    def __init__(
        self,
        *,
        resolver: eid.Resolver | None = None,
        eid_keys: Mapping[str, EidKey] | None = None,
        uid_beacons: Mapping[bytes, str] | None = None,
        url_beacons: Mapping[str, str] | None = None,
        pairing_window_s: float = PAIRING_WINDOW_S,
        max_paired: int = MAX_PAIRED_ADDRESSES,
    ) -> None:
        """``uid_beacons`` maps the 16-byte namespace + instance to a beacon id."""
        self._directory = BeaconDirectory(resolver, uid_beacons, url_beacons)
        self._eid_keys = dict(eid_keys or {})
        self._window = pairing_window_s
        self._max_paired = max_paired
        self._paired: dict[str, _Pairing] = {}
        self._readings: dict[str, _Readings] = {}  # beacon -> its recent eTLM readings
        self._newest = -math.inf  # the latest sighting time seen
        self._next_sweep = -math.inf
        self.counts: Counter[Outcome] = Counter()

    @property
    def paired(self) -> int:
        """Addresses remembered for pairing telemetry (bounded by time and by a cap)."""
        return len(self._paired)

    @property
    def readings(self) -> int:
        """Beacons whose recent eTLM readings are remembered (at most the registered ones)."""
        return len(self._readings)

    def note_upstream(self, found: Identified | Telemetry) -> None:
        """Count what an upstream stage identified (a resolver worker, an edge gateway)."""
        self.counts[Outcome.IDENTIFIED if isinstance(found, Identified) else Outcome.TELEMETRY] += 1

    def identify(self, sighting: Sighting) -> Identified | Telemetry | None:
        """The beacon behind ``sighting``, its telemetry, or None (counted in :attr:`counts`)."""
        at = sighting.at
        if at > self._newest:
            self._newest = at
            if at >= self._next_sweep:
                self._sweep(at)
        try:
            frame = frames.parse(sighting.service_data)
        except eid.FrameError:
            self.counts[Outcome.MALFORMED] += 1
            return None
        if isinstance(frame, frames.TlmFrame | frames.EtlmFrame):
            return self._telemetry(frame, sighting)
        claim = self._directory.claim(frame, at, self.counts)
        if claim is None:
            return None
        self._pair(sighting, claim.beacon_id, claim.counter, claim.tx_power)
        self.counts[Outcome.IDENTIFIED] += 1
        raw = frame.eid if isinstance(frame, frames.EidFrame) else None
        return Identified(claim.beacon_id, claim.tx_power, claim.frame_kind, raw)

    def _pair(self, sighting: Sighting, beacon_id: str, counter: int | None, power: int) -> None:
        paired = self._paired
        entry = paired.get(sighting.address)
        if entry is not None:
            entry.beacon_id, entry.counter, entry.tx_power = beacon_id, counter, power
            entry.at = max(entry.at, sighting.at)
            return
        if len(paired) >= self._max_paired:
            self._evict(sighting.at)
        paired[sighting.address] = _Pairing(beacon_id, counter, power, sighting.at)

    def _sweep(self, now: float) -> None:
        """Forget pairings older than the window, and readings older than their memory."""
        self._next_sweep = now + self._window
        window = self._window
        self._paired = {a: e for a, e in self._paired.items() if now - e.at <= window}
        memory = READING_MEMORY_S
        self._readings = {b: r for b, r in self._readings.items() if now - r.last.at <= memory}

    def _evict(self, now: float) -> None:
        """Forget pairings older than the window; if none are, the oldest-added one."""
        paired = self._paired
        expired = [address for address, entry in paired.items() if now - entry.at > self._window]
        for address in expired:
            del paired[address]
        if len(paired) >= self._max_paired:
            del paired[next(iter(paired))]

    def _telemetry(
        self, frame: frames.TlmFrame | frames.EtlmFrame, sighting: Sighting
    ) -> Telemetry | None:
        entry = self._paired.get(sighting.address)
        if entry is None or abs(sighting.at - entry.at) > self._window:
            self.counts[Outcome.UNPAIRED] += 1
            return None
        if isinstance(frame, frames.TlmFrame):
            self.counts[Outcome.TELEMETRY] += 1
            return _reading(entry, sighting.at, frame, encrypted=False)
        key = self._eid_keys.get(entry.beacon_id)
        if key is None or entry.counter is None:
            self.counts[Outcome.UNPAIRED] += 1
            return None
        tlm = decrypt_paired_etlm(key.identity_key, key.exponent, entry.counter, frame)
        if tlm is None or not self._plausible(entry.beacon_id, sighting, tlm.uptime_ds):
            self.counts[Outcome.FORGED] += 1
            return None
        self.counts[Outcome.TELEMETRY] += 1
        return _reading(entry, sighting.at, tlm, encrypted=True)

    def _plausible(self, beacon_id: str, sighting: Sighting, uptime_ds: int) -> bool:
        """Whether a verified reading agrees with the beacon's recent ones (and note it).

        A MIC that verified by chance (2**-16 a try) decrypts to noise: an uptime that follows
        neither the reading two frames last agreed on nor the last one that verified.
        """
        reading = _Reading(sighting.at, uptime_ds, sighting.service_data)
        known = self._readings.get(beacon_id)
        if known is None:
            self._readings[beacon_id] = _Readings(None, reading)
            return True
        confirmed, last = known.confirmed, known.last
        agrees = (confirmed is not None and confirmed.agrees(reading.at, uptime_ds)) or (
            last.frame != reading.frame and last.agrees(reading.at, uptime_ds)
        )
        if not (agrees or confirmed is None):
            self._readings[beacon_id] = _Readings(confirmed, reading)
            return False
        newer = reading if reading.at >= last.at else last
        self._readings[beacon_id] = _Readings(reading if agrees else confirmed, newer)
        return True


def decrypt_paired_etlm(
    identity_key: bytes, exponent: int, counter: int, frame: frames.EtlmFrame
) -> frames.TlmFrame | None:
    """The telemetry of an eTLM frame paired with an EID of period ``counter``, or None.

    The beacon may have moved to the next period (or the EID be from the next one) between the
    two frames, so the neighbouring periods are tried too; None when no MIC verifies.
    """
    period = 1 << exponent
    for shift in _ETLM_PERIOD_TRIES:
        tried = counter + shift * period
        if not 0 <= tried < 1 << 32:
            continue
        try:
            data = eid.decrypt_etlm(identity_key, exponent, tried, frame)
        except eid.IntegrityError:
            continue
        return frames.TlmFrame.from_telemetry(data)
    return None


def _reading(entry: _Pairing, at: float, tlm: frames.TlmFrame, *, encrypted: bool) -> Telemetry:
    return Telemetry(
        beacon_id=entry.beacon_id,
        at=at,
        tx_power=entry.tx_power,
        battery_mv=tlm.battery_mv,
        temperature_c=tlm.temperature_c,
        adv_count=tlm.adv_count,
        uptime_ds=tlm.uptime_ds,
        encrypted=encrypted,
    )
