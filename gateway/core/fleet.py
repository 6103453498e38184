"""The fleet's three stages, pure: report what a gateway hears, resolve it centrally, arbitrate.

- :class:`Reporter` (on each gateway): turns sightings into wire batches. Per advertising
  address (keyless: *sightings* batches) or per resolved beacon (edge: *observations* batches)
  it keeps a filtered RSSI and reports it at most every ``report_interval_s``, at once when the
  address or its frame is new; telemetry is reported as heard, with the ID frame last heard from
  its address (``paired``). Records are cut into batches every ``batch_interval_s`` of
  sighting time, or at ``max_records``.
- :class:`BatchResolver` (in each resolver worker): a sightings batch in, the observations
  batch of the same name out. Each record is resolved on its own, with no memory of other
  batches beyond the resolver's tables: any worker gives the same answer for it.
- :func:`observed_sightings` (in the arbiter): an observations batch as sightings the pipeline
  takes as already identified; the arbiter's presence engine then makes one zone decision per
  beacon from every gateway's reports.
"""

from __future__ import annotations

import math
import zlib
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import eid
from eid import frames
from gateway.core.identity import (
    BeaconDirectory,
    EidKey,
    Identified,
    Identifier,
    Outcome,
    Telemetry,
    decrypt_paired_etlm,
)
from gateway.core.sighting import Sighting
from gateway.core.signal import KalmanRssi
from gateway.core.wire import (
    MAX_FRAME_BYTES,
    Batch,
    BatchKind,
    HeardRecord,
    ObservedRecord,
    TelemetryValues,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

REPORT_INTERVAL_S: Final = 1.0
"""Each address's filtered RSSI is reported at most once a second: presence decides on seconds,
and a busy hall's gateway so sends a few hundred reports a second, not thousands of adverts."""
BATCH_INTERVAL_S: Final = 0.5
"""Reports wait at most half a second for their batch: the latency a fleet adds."""
MAX_BATCH_RECORDS: Final = 500
"""...or until this many are waiting (a batch of EID reports is then about 10 kB)."""
FORGET_S: Final = 60.0
"""An address unheard this long is forgotten (its filter, its pairing for telemetry)."""
_TELEMETRY_TYPE: Final = 0x20
_RSSI_RANGE: Final = (-128, 127)


@dataclass(slots=True)
class _Link:
    rssi: KalmanRssi
    frame: bytes
    last_at: float
    reported_at: float
    adverts: int = 0
    tx_power: int = 0


def _rssi(value: float) -> int:
    low, high = _RSSI_RANGE
    return min(max(round(value), low), high)


def _ms(at: float) -> int:
    return max(round(at * 1000), 0)


class Reporter:
    """A gateway's sightings as wire batches (see the module docstring).

    With an ``identifier`` (an edge gateway: keys on board) it reports observations of
    beacons; without one (keyless) it reports the frames it heard. ``boot`` names this run
    of the reporter in every batch: draw it at random when the process starts.
    """

    def __init__(
        self,
        gateway: str,
        boot: int,
        *,
        identifier: Identifier | None = None,
        report_interval_s: float = REPORT_INTERVAL_S,
        batch_interval_s: float = BATCH_INTERVAL_S,
        max_records: int = MAX_BATCH_RECORDS,
    ) -> None:
        self.gateway = gateway
        self.boot = boot
        self.identifier = identifier
        self.kind = BatchKind.SIGHTINGS if identifier is None else BatchKind.OBSERVATIONS
        self._report_interval = report_interval_s
        self._batch_interval = batch_interval_s
        self._max_records = max_records
        self._links: dict[str, _Link] = {}
        self._pending: list[HeardRecord | ObservedRecord] = []
        self._pending_since = math.inf
        self._seq = 0
        self._next_forget = -math.inf
        self.sightings = 0
        self.dropped: Counter[str] = Counter()

    @property
    def links(self) -> int:
        """Addresses (or beacons) whose RSSI is being filtered."""
        return len(self._links)

    def process(self, sighting: Sighting) -> list[Batch]:
        """One sighting in; the batches it completes (often none)."""
        self.sightings += 1
        at = sighting.at
        batches = self.tick(at)
        record = self._heard(sighting) if self.identifier is None else self._observed(sighting)
        if record is not None:
            if not self._pending:
                self._pending_since = at
            self._pending.append(record)
            if len(self._pending) >= self._max_records:
                batches.append(self._cut())
        return batches

    def tick(self, now: float) -> list[Batch]:
        """The batch whose time is up at ``now``, if any; forget long-silent addresses."""
        if now >= self._next_forget:
            self._next_forget = now + FORGET_S
            self._links = {k: v for k, v in self._links.items() if now - v.last_at <= FORGET_S}
        if self._pending and now - self._pending_since >= self._batch_interval:
            return [self._cut()]
        return []

    def flush(self) -> list[Batch]:
        """Whatever is pending, as a batch (at the end of a recording, or on shutdown)."""
        return [self._cut()] if self._pending else []

    def _cut(self) -> Batch:
        records = tuple(self._pending)
        self._pending = []
        self._pending_since = math.inf
        self._seq = (self._seq + 1) & 0xFFFF_FFFF
        return Batch(self.kind, self.gateway, self.boot, self._seq, records)  # type: ignore[arg-type]

    def _due(self, key: str, frame: bytes, rssi: float, at: float) -> tuple[int, int] | None:
        """Filter ``rssi`` on ``key``'s link; if a report is due now, its RSSI and adverts."""
        link = self._links.get(key)
        if link is None:
            link = self._links[key] = _Link(KalmanRssi(), frame, at, -math.inf)
        elif link.frame != frame:  # the beacon rotated its EID: report the new one at once
            link.frame, link.reported_at = frame, -math.inf
        link.rssi.update(rssi, at)
        link.last_at = max(link.last_at, at)
        link.adverts += 1
        if at - link.reported_at < self._report_interval:
            return None
        link.reported_at = at
        value = link.rssi.value
        adverts, link.adverts = link.adverts, 0
        return _rssi(rssi if value is None else value), min(adverts, 255)

    def _heard(self, sighting: Sighting) -> HeardRecord | None:
        frame = sighting.service_data
        if not 1 <= len(frame) <= MAX_FRAME_BYTES:
            self.dropped["malformed"] += 1
            return None
        if frame[0] & 0xF0 == _TELEMETRY_TYPE:
            link = self._links.get(sighting.address)
            paired = b"" if link is None else link.frame
            return HeardRecord(_ms(sighting.at), _rssi(sighting.rssi), 1, frame, paired)
        report = self._due(sighting.address, frame, sighting.rssi, sighting.at)
        if report is None:
            return None
        rssi, adverts = report
        return HeardRecord(_ms(sighting.at), rssi, adverts, frame)

    def _observed(self, sighting: Sighting) -> ObservedRecord | None:
        identifier = self.identifier
        assert identifier is not None  # noqa: S101 - the caller checked
        found = identifier.identify(sighting)
        if found is None:
            return None
        if isinstance(found, Telemetry):
            return _telemetry_record(found, sighting.rssi)
        report = self._due(found.beacon_id, found.beacon_id.encode(), sighting.rssi, sighting.at)
        if report is None:
            return None
        rssi, adverts = report
        return ObservedRecord(_ms(sighting.at), rssi, adverts, found.tx_power, found.beacon_id)


def _telemetry_record(found: Telemetry, rssi: float) -> ObservedRecord:
    return ObservedRecord(
        _ms(found.at),
        _rssi(rssi),
        1,
        found.tx_power,
        found.beacon_id,
        TelemetryValues(
            battery_mv=found.battery_mv,
            temperature_c=found.temperature_c,
            adv_count=found.adv_count,
            uptime_ds=found.uptime_ds,
            encrypted=found.encrypted,
        ),
    )


class BatchResolver:
    """Resolves sightings batches into observations batches (see the module docstring).

    Records no beacon claims are counted in :attr:`counts` by :class:`Outcome` and left out.
    """

    def __init__(
        self,
        *,
        resolver: eid.Resolver | None = None,
        eid_keys: Mapping[str, EidKey] | None = None,
        uid_beacons: Mapping[bytes, str] | None = None,
        url_beacons: Mapping[str, str] | None = None,
    ) -> None:
        self._directory = BeaconDirectory(resolver, uid_beacons, url_beacons)
        self._eid_keys = dict(eid_keys or {})
        self.counts: Counter[Outcome] = Counter()

    def resolve(self, batch: Batch) -> Batch:
        """The observations batch of ``batch`` (same gateway, boot and seq)."""
        if batch.kind is not BatchKind.SIGHTINGS:
            msg = f"expected a sightings batch, got {batch.kind.name.lower()}"
            raise ValueError(msg)
        records: list[ObservedRecord] = []
        for record in batch.records:
            assert isinstance(record, HeardRecord)  # noqa: S101 - decode() guarantees it
            found = self._record(record)
            if found is not None:
                records.append(found)
        return Batch(BatchKind.OBSERVATIONS, batch.gateway, batch.boot, batch.seq, tuple(records))

    def _record(self, record: HeardRecord) -> ObservedRecord | None:
        at = record.at_ms / 1000
        try:
            frame = frames.parse(record.frame)
        except eid.FrameError:
            self.counts[Outcome.MALFORMED] += 1
            return None
        if isinstance(frame, frames.TlmFrame | frames.EtlmFrame):
            return self._telemetry(frame, record, at)
        claim = self._directory.claim(frame, at, self.counts)
        if claim is None:
            return None
        self.counts[Outcome.IDENTIFIED] += 1
        return ObservedRecord(
            record.at_ms, record.rssi, record.adverts, claim.tx_power, claim.beacon_id
        )

    def _telemetry(
        self, frame: frames.TlmFrame | frames.EtlmFrame, record: HeardRecord, at: float
    ) -> ObservedRecord | None:
        try:
            paired = frames.parse(record.paired)
        except eid.FrameError:
            self.counts[Outcome.UNPAIRED] += 1
            return None
        if isinstance(paired, frames.TlmFrame | frames.EtlmFrame):
            self.counts[Outcome.UNPAIRED] += 1
            return None
        claim = self._directory.claim(paired, at, self.counts)
        if claim is None:
            return None
        beacon_id, tx_power, counter = claim.beacon_id, claim.tx_power, claim.counter
        tlm: frames.TlmFrame | None
        if isinstance(frame, frames.TlmFrame):
            tlm = frame
        else:
            key = self._eid_keys.get(beacon_id)
            if key is None or counter is None:
                self.counts[Outcome.UNPAIRED] += 1
                return None
            tlm = decrypt_paired_etlm(key.identity_key, key.exponent, counter, frame)
            if tlm is None:
                self.counts[Outcome.FORGED] += 1
                return None
        self.counts[Outcome.TELEMETRY] += 1
        values = TelemetryValues(
            battery_mv=tlm.battery_mv,
            temperature_c=tlm.temperature_c,
            adv_count=tlm.adv_count,
            uptime_ds=tlm.uptime_ds,
            encrypted=isinstance(frame, frames.EtlmFrame),
        )
        return ObservedRecord(record.at_ms, record.rssi, 1, tx_power, beacon_id, values)


def shard_of(beacon_id: str, shards: int) -> int:
    """The arbiter shard a beacon's observations go to: stable across processes and versions."""
    return zlib.crc32(beacon_id.encode("utf-8")) % shards


def split(batch: Batch, shards: int) -> dict[int, Batch]:
    """An observations batch cut by shard (each part keeps the batch's name); empty: none."""
    parts: dict[int, list[ObservedRecord]] = {}
    for record in batch.records:
        assert isinstance(record, ObservedRecord)  # noqa: S101 - observations only
        parts.setdefault(shard_of(record.beacon_id, shards), []).append(record)
    return {
        shard: Batch(batch.kind, batch.gateway, batch.boot, batch.seq, tuple(records))
        for shard, records in sorted(parts.items())
    }


def observed_sightings(batch: Batch, source: str = "") -> Iterator[Sighting]:
    """An observations batch as sightings, already identified, in the batch's order."""
    if batch.kind is not BatchKind.OBSERVATIONS:
        msg = f"expected an observations batch, got {batch.kind.name.lower()}"
        raise ValueError(msg)
    for record in batch.records:
        assert isinstance(record, ObservedRecord)  # noqa: S101 - decode() guarantees it
        at = record.at_ms / 1000
        values = record.telemetry
        resolved: Identified | Telemetry
        if values is None:
            resolved = Identified(record.beacon_id, record.tx_power, "upstream")
        else:
            resolved = Telemetry(
                beacon_id=record.beacon_id,
                at=at,
                tx_power=record.tx_power,
                battery_mv=values.battery_mv,
                temperature_c=values.temperature_c,
                adv_count=values.adv_count,
                uptime_ds=values.uptime_ds,
                encrypted=values.encrypted,
            )
        yield Sighting(
            address="",
            rssi=record.rssi,
            service_data=b"",
            at=at,
            gateway=batch.gateway,
            tx_power=record.tx_power,
            source=source,
            resolved=resolved,
        )
