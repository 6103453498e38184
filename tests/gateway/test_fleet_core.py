"""The fleet's pure stages (gateway/core/fleet.py): report, resolve centrally, arbitrate."""

from __future__ import annotations

import random
import zlib
from collections import Counter
from dataclasses import dataclass
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

import eid
from eid import frames
from gateway.assemble import assemble
from gateway.config import parse_config
from gateway.core.fleet import BatchResolver, Reporter, observed_sightings, shard_of, split
from gateway.core.identity import EidKey, Identified, Identifier, Outcome, Telemetry
from gateway.core.presence import ChangeKind, PresenceChange
from gateway.core.sighting import Sighting
from gateway.core.wire import (
    Batch,
    BatchKind,
    HeardRecord,
    ObservedRecord,
    TelemetryValues,
    decode,
    encode,
)

START_MS = 1_767_225_600_000
"""2026-01-01T00:00:00Z, the time the test registry's clock offsets are set for."""
ADDRESS = "C0:00:00:00:00:01"


@dataclass(frozen=True, slots=True)
class Beacon:
    """An EID beacon as the firmware runs it: counter = unix time + clock offset."""

    beacon_id: str
    identity_key: bytes
    exponent: int
    clock_offset: int
    tx_power: int = -4

    def counter(self, at: float) -> int:
        return int(at) + self.clock_offset

    def eid_frame(self, at: float) -> bytes:
        eid8 = eid.compute_eid(self.identity_key, self.exponent, self.counter(at))
        return frames.encode(frames.EidFrame(self.tx_power, eid8))

    def etlm_frame(self, at: float, tlm: frames.TlmFrame, salt: bytes = b"\x5a\xa5") -> bytes:
        counter = self.counter(at)
        return eid.encrypt_etlm(self.identity_key, self.exponent, counter, salt, tlm.telemetry)

    def register(self, resolver: eid.Resolver) -> None:
        resolver.register(self.beacon_id, self.identity_key, self.exponent, self.clock_offset)


# Published test keys (configs/test-registry.toml). LOYALTY rotates at START + 48 s.
LOYALTY = Beacon(
    "loyalty-0001", bytes.fromhex("0102030405060708090a111213141516"), 10, -1_767_223_600
)
BAG = Beacon("bag-tag-0002", bytes.fromhex("00112233445566778899aabbccddeeff"), 12, -249_144_654, 0)
STRANGER = Beacon("stranger", bytes.fromhex("f0e1d2c3b4a5968778695a4b3c2d1e0f"), 10, 1_000)
"""Never registered."""
READING = frames.TlmFrame(battery_mv=3012, temperature_c=-7.5, adv_count=123_456, uptime_ds=98_765)
UID_FRAME = frames.encode(frames.UidFrame(-12, bytes(10), bytes.fromhex("0102030405ff")))


def at_s(ms: int) -> float:
    return ms / 1000


def heard(
    ms: int, frame: bytes, rssi: int = -60, address: str = ADDRESS, gateway: str = "gw-1"
) -> Sighting:
    return Sighting(address=address, rssi=rssi, service_data=frame, at=at_s(ms), gateway=gateway)


def registered() -> tuple[eid.Resolver, dict[str, EidKey]]:
    resolver = eid.Resolver()
    LOYALTY.register(resolver)
    BAG.register(resolver)
    keys = {b.beacon_id: EidKey(b.identity_key, b.exponent) for b in (LOYALTY, BAG)}
    return resolver, keys


def batch_resolver() -> BatchResolver:
    resolver, keys = registered()
    return BatchResolver(resolver=resolver, eid_keys=keys)


def over_the_wire(batch: Batch) -> Batch:
    decoded = decode(encode(batch))
    assert decoded == batch
    return decoded


# ------------------------------------------------------------------------------------ Reporter


def play(reporter: Reporter, sightings: list[Sighting]) -> list[tuple[Sighting, Batch]]:
    """Each batch with the sighting whose arrival completed it (the last one: a flush)."""
    out = [(sighting, batch) for sighting in sightings for batch in reporter.process(sighting)]
    return out + [(sightings[-1], batch) for batch in reporter.flush()]


def test_keyless_reporter_filters_and_paces_one_address() -> None:
    rng = random.Random(7)
    times = [START_MS + 1000 + 100 * i for i in range(51)]  # 10 Hz for 5 s, both ends heard
    sightings = [heard(ms, LOYALTY.eid_frame(at_s(ms)), rng.randint(-80, -55)) for ms in times]
    reporter = Reporter("gw-1", 42)
    played = play(reporter, sightings)
    batches = [batch for _, batch in played]

    assert [b.seq for b in batches] == list(range(1, len(batches) + 1))
    assert {(b.kind, b.gateway, b.boot) for b in batches} == {(BatchKind.SIGHTINGS, "gw-1", 42)}
    assert reporter.flush() == []
    records = [r for b in batches for r in b.records]
    assert all(isinstance(r, HeardRecord) for r in records)
    heard_records = [r for r in records if isinstance(r, HeardRecord)]
    # Once a second: at once when the address is new, then every report_interval_s.
    assert [r.at_ms for r in heard_records] == [START_MS + 1000 * s for s in range(1, 7)]
    assert [r.adverts for r in heard_records] == [1, 10, 10, 10, 10, 10]
    assert sum(r.adverts for r in heard_records) == len(sightings)
    for record in heard_records:
        assert record.frame == LOYALTY.eid_frame(at_s(START_MS))
        assert record.paired == b""
        inputs = [s.rssi for s in sightings if round(s.at * 1000) <= record.at_ms]
        assert min(inputs) <= record.rssi <= max(inputs)
    assert heard_records[0].rssi == sightings[0].rssi  # the filter starts at its first sample
    # Cut by batch_interval_s of sighting time: one report a batch, sent half a second later.
    for sighting, batch in played[:-1]:
        assert len(batch.records) == 1
        assert round(sighting.at * 1000) - batch.records[0].at_ms == 500
    assert played[-1][1].records == (heard_records[-1],)
    assert reporter.links == 1


def test_keyless_reporter_batches_many_addresses() -> None:
    rng = random.Random(11)
    beacons = [LOYALTY, BAG, STRANGER]
    sightings = sorted(
        (
            heard(
                START_MS + phase + 100 * i,
                beacon.eid_frame(at_s(START_MS + phase + 100 * i)),
                rng.randint(-90, -50),
                address=f"C0:00:00:00:00:{n:02X}",
            )
            for n, (beacon, phase) in enumerate(zip(beacons, (0, 33, 71), strict=True))
            for i in range(40)
        ),
        key=lambda s: s.at,
    )
    reporter = Reporter("gw-2", 1, report_interval_s=0.3, batch_interval_s=0.5)
    played = play(reporter, sightings)
    assert [b.seq for _, b in played] == list(range(1, len(played) + 1))
    reported: dict[bytes, list[int]] = {}
    for sighting, batch in played:
        times = [r.at_ms for r in batch.records]
        assert times == sorted(times)
        assert times[-1] - times[0] < 500  # a batch waits at most batch_interval_s
        if (sighting, batch) != played[-1]:
            assert round(sighting.at * 1000) - times[0] >= 500
            assert round(sighting.at * 1000) > times[-1]
        for record in batch.records:
            assert isinstance(record, HeardRecord)
            reported.setdefault(record.frame, []).append(record.at_ms)
    assert max(len(b.records) for _, b in played) > 1
    assert len(reported) == len(beacons)
    for at_ms in reported.values():
        assert all(later - earlier >= 300 for earlier, later in pairwise(at_ms))
    assert reporter.sightings == len(sightings)
    assert reporter.links == len(beacons)


def test_keyless_reporter_cuts_at_max_records() -> None:
    sightings = [
        heard(START_MS + i, LOYALTY.eid_frame(at_s(START_MS)), address=f"A{i}") for i in range(7)
    ]
    reporter = Reporter("gw-1", 1, max_records=3)
    played = play(reporter, sightings)
    assert [len(b.records) for _, b in played] == [3, 3, 1]
    assert [s.address for s, _ in played[:2]] == ["A2", "A5"]


def test_keyless_reporter_reports_a_new_frame_at_once_and_pairs_telemetry() -> None:
    rotation = START_MS + 48_000  # LOYALTY's EID changes here
    before, after = LOYALTY.eid_frame(at_s(rotation - 1)), LOYALTY.eid_frame(at_s(rotation))
    assert before != after
    etlm = LOYALTY.etlm_frame(at_s(rotation), READING)
    tlm = frames.encode(READING)
    reporter = Reporter("gw-1", 9)
    sightings = [
        heard(rotation - 500, before, -60),  # new address: reported
        heard(rotation - 300, etlm, -66),  # telemetry: reported as heard, paired with `before`
        heard(rotation - 200, before, -61),  # not due
        heard(rotation, after, -62),  # a new EID from the same address: reported at once
        heard(rotation + 100, etlm, -70),  # paired with the new EID
        heard(rotation + 150, tlm, -71, address="D0:00:00:00:00:09"),  # an address never heard
        heard(rotation + 200, b"", -50),  # no frame: dropped
        heard(rotation + 250, bytes(32), -50),  # longer than any frame: dropped
    ]
    batches = [b for s in sightings for b in reporter.process(s)] + reporter.flush()
    records = [r for b in batches for r in b.records]
    assert records == [
        HeardRecord(rotation - 500, -60, 1, before),
        HeardRecord(rotation - 300, -66, 1, etlm, before),
        HeardRecord(rotation, records[2].rssi, 2, after),
        HeardRecord(rotation + 100, -70, 1, etlm, after),
        HeardRecord(rotation + 150, -71, 1, tlm, b""),
    ]
    assert -62 <= records[2].rssi <= -60
    assert reporter.dropped == Counter({"malformed": 2})
    assert reporter.sightings == len(sightings)


def test_edge_reporter_reports_observations_of_beacons() -> None:
    resolver, keys = registered()
    reporter = Reporter("gw-edge", 5, identifier=Identifier(resolver=resolver, eid_keys=keys))
    assert reporter.kind is BatchKind.OBSERVATIONS
    ms = [START_MS + 2000 + 250 * i for i in range(9)]  # 4 Hz for 2 s
    sightings = [heard(t, LOYALTY.eid_frame(at_s(t))) for t in ms]
    sightings.insert(3, heard(ms[2] + 10, LOYALTY.etlm_frame(at_s(ms[2]), READING), -75))
    sightings.append(heard(ms[-1] + 10, STRANGER.eid_frame(at_s(ms[-1])), address="X"))
    records = [r for s in sightings for b in reporter.process(s) for r in b.records]
    records += [r for b in reporter.flush() for r in b.records]
    values = TelemetryValues(3012, -7.5, 123_456, 98_765, encrypted=True)
    assert records == [
        ObservedRecord(ms[0], -60, 1, LOYALTY.tx_power, LOYALTY.beacon_id),
        ObservedRecord(ms[2] + 10, -75, 1, LOYALTY.tx_power, LOYALTY.beacon_id, values),
        ObservedRecord(ms[4], -60, 4, LOYALTY.tx_power, LOYALTY.beacon_id),
        ObservedRecord(ms[8], -60, 4, LOYALTY.tx_power, LOYALTY.beacon_id),
    ]


# ------------------------------------------------------------------------------- BatchResolver


def sightings_batch(*records: HeardRecord, seq: int = 1) -> Batch:
    return over_the_wire(Batch(BatchKind.SIGHTINGS, "gw-1", 77, seq, records))


def test_batch_resolver_resolves_registered_eids_and_counts_the_rest() -> None:
    t = START_MS + 5000
    batch = sightings_batch(
        HeardRecord(t, -61, 3, LOYALTY.eid_frame(at_s(t))),
        HeardRecord(t + 1, -62, 1, STRANGER.eid_frame(at_s(t))),
        HeardRecord(t + 2, -63, 7, BAG.eid_frame(at_s(t))),
        HeardRecord(t + 3, -64, 1, b"\x30\x00\x01"),  # an EID frame too short
        HeardRecord(t + 4, -65, 1, UID_FRAME),  # not on any allow-list
        HeardRecord(t + 5, -66, 1, frames.encode(READING)),  # telemetry, nothing paired
    )
    worker = batch_resolver()
    out = worker.resolve(batch)
    assert out.kind is BatchKind.OBSERVATIONS
    assert out.key == batch.key
    assert out.records == (
        ObservedRecord(t, -61, 3, LOYALTY.tx_power, LOYALTY.beacon_id),
        ObservedRecord(t + 2, -63, 7, BAG.tx_power, BAG.beacon_id),
    )
    assert worker.counts == Counter(
        {Outcome.IDENTIFIED: 2, Outcome.UNKNOWN: 2, Outcome.MALFORMED: 1, Outcome.UNPAIRED: 1}
    )
    assert over_the_wire(out) == out


def test_batch_resolver_without_keys_knows_uid_and_url_allow_lists() -> None:
    url = frames.encode(frames.UrlFrame(-20, "https://example.com/"))
    worker = BatchResolver(
        uid_beacons={bytes(10) + bytes.fromhex("0102030405ff"): "shelf-1"},
        url_beacons={"https://example.com/": "poster-1"},
    )
    t = START_MS
    out = worker.resolve(
        sightings_batch(
            HeardRecord(t, -50, 1, UID_FRAME),
            HeardRecord(t + 1, -51, 1, frames.encode(READING), UID_FRAME),
            HeardRecord(t + 2, -52, 1, url),
            HeardRecord(t + 3, -53, 1, LOYALTY.eid_frame(at_s(t))),  # no resolver: unknown
        )
    )
    plain = TelemetryValues(3012, -7.5, 123_456, 98_765, encrypted=False)
    assert out.records == (
        ObservedRecord(t, -50, 1, -12, "shelf-1"),
        ObservedRecord(t + 1, -51, 1, -12, "shelf-1", plain),
        ObservedRecord(t + 2, -52, 1, -20, "poster-1"),
    )
    assert worker.counts == Counter(
        {Outcome.IDENTIFIED: 2, Outcome.TELEMETRY: 1, Outcome.UNKNOWN: 1}
    )


@pytest.mark.parametrize("sent_ms", [5_000, 47_999, 48_000, 48_500])
def test_batch_resolver_decrypts_etlm_paired_with_its_beacons_eid(sent_ms: int) -> None:
    # Around LOYALTY's rotation (START + 48 s) the eTLM may be of the period after its EID's.
    t = START_MS + sent_ms
    paired = LOYALTY.eid_frame(at_s(t - 400))
    etlm = LOYALTY.etlm_frame(at_s(t), READING)
    worker = batch_resolver()
    out = worker.resolve(sightings_batch(HeardRecord(t, -72, 1, etlm, paired)))
    values = TelemetryValues(
        battery_mv=READING.battery_mv,
        temperature_c=READING.temperature_c,
        adv_count=READING.adv_count,
        uptime_ds=READING.uptime_ds,
        encrypted=True,
    )
    assert out.records == (ObservedRecord(t, -72, 1, LOYALTY.tx_power, LOYALTY.beacon_id, values),)
    assert worker.counts == Counter({Outcome.TELEMETRY: 1})
    assert over_the_wire(out) == out


def test_a_reading_without_a_temperature_stays_without() -> None:
    t = START_MS + 9000
    reading = frames.TlmFrame(battery_mv=0, temperature_c=None, adv_count=1, uptime_ds=2)
    etlm = LOYALTY.etlm_frame(at_s(t), reading)
    out = batch_resolver().resolve(
        sightings_batch(HeardRecord(t, -72, 1, etlm, LOYALTY.eid_frame(at_s(t))))
    )
    assert out.records == (
        ObservedRecord(
            t,
            -72,
            1,
            LOYALTY.tx_power,
            LOYALTY.beacon_id,
            TelemetryValues(0, None, 1, 2, encrypted=True),
        ),
    )


@pytest.mark.parametrize(
    ("paired", "keys", "outcome"),
    [
        (STRANGER.eid_frame(at_s(START_MS)), True, Outcome.UNKNOWN),
        (BAG.eid_frame(at_s(START_MS)), True, Outcome.FORGED),  # BAG's key does not verify
        (BAG.eid_frame(at_s(START_MS)), False, Outcome.UNPAIRED),  # no key to try
        (UID_FRAME, True, Outcome.UNKNOWN),  # no allow-list
        (frames.encode(READING), True, Outcome.UNPAIRED),  # telemetry pairs with an ID frame
        (b"", True, Outcome.UNPAIRED),
        (b"\xff\x00", True, Outcome.UNPAIRED),
    ],
    ids=["unknown-eid", "other-beacon", "no-key", "uid", "tlm", "none", "garbage"],
)
def test_etlm_with_a_wrong_pairing_gives_nothing(
    paired: bytes, keys: bool, outcome: Outcome
) -> None:
    resolver, eid_keys = registered()
    worker = BatchResolver(resolver=resolver, eid_keys=eid_keys if keys else {})
    etlm = LOYALTY.etlm_frame(at_s(START_MS), READING)
    out = worker.resolve(sightings_batch(HeardRecord(START_MS, -70, 1, etlm, paired)))
    assert out.records == ()
    assert out.key == ("gw-1", 77, 1)
    assert worker.counts == Counter({outcome: 1})


def test_a_record_no_resolver_can_date_is_dropped_not_raised() -> None:
    # decode() refuses such a time (> wire.MAX_AT_MS), so build the Batch directly.
    frame = LOYALTY.eid_frame(at_s(START_MS))
    batch = Batch(
        BatchKind.SIGHTINGS, "gw-1", 1, 1, (HeardRecord((1 << 48) * 1000, -60, 1, frame),)
    )
    worker = batch_resolver()
    assert worker.resolve(batch).records == ()
    assert worker.counts == Counter({Outcome.MALFORMED: 1})


def test_batch_resolver_takes_sightings_batches_only() -> None:
    with pytest.raises(ValueError, match="expected a sightings batch"):
        batch_resolver().resolve(Batch(BatchKind.OBSERVATIONS, "gw-1", 1, 1))


def fleet_traffic() -> list[Batch]:
    """A minute of two keyless gateways, across LOYALTY's rotation, as the wire delivers it."""
    rng = random.Random(5)
    reading = frames.TlmFrame(battery_mv=2900, temperature_c=21.5, adv_count=10, uptime_ds=500)
    sightings: list[Sighting] = []
    for i in range(600):  # 10 Hz from START + 20 s
        ms = START_MS + 20_000 + 100 * i
        at = at_s(ms)
        sightings.append(heard(ms, LOYALTY.eid_frame(at), rng.randint(-85, -55), "A1"))
        sightings.append(heard(ms + 13, BAG.eid_frame(at), rng.randint(-85, -55), "B1"))
        sightings.append(heard(ms + 29, STRANGER.eid_frame(at), rng.randint(-85, -55), "S1"))
        if i % 50 == 7:
            etlm = LOYALTY.etlm_frame(at, reading, rng.randbytes(2))
            sightings.append(heard(ms + 41, etlm, -70, "A1"))
            sightings.append(heard(ms + 43, frames.encode(reading), -71, "B1"))
            sightings.append(heard(ms + 47, etlm, -72, "S1"))  # paired with an unknown EID
    batches: list[Batch] = []
    for gateway, boot in (("gw-1", 1), ("gw-2", 2)):
        reporter = Reporter(gateway, boot)
        for sighting in sightings:
            batches += reporter.process(sighting)
        batches += reporter.flush()
    return [over_the_wire(batch) for batch in batches]


def test_workers_agree_whatever_batches_they_get_in_whatever_order() -> None:
    batches = fleet_traffic()
    assert len({b.key for b in batches}) == len(batches)
    reference = batch_resolver()
    expected = {batch.key: reference.resolve(batch) for batch in batches}
    observed = [r for b in expected.values() for r in b.records if isinstance(r, ObservedRecord)]
    assert len(observed) == sum(len(b.records) for b in expected.values())
    assert {r.beacon_id for r in observed} == {LOYALTY.beacon_id, BAG.beacon_id}
    # Twelve times, each gateway reports an eTLM (A1) and a TLM (B1) that resolve.
    assert sum(r.telemetry is not None for r in observed) == 12 * 2 * 2
    assert reference.counts[Outcome.UNKNOWN] > 0

    shuffled = list(batches)
    random.Random(1).shuffle(shuffled)
    one = batch_resolver()
    assert {batch.key: one.resolve(batch) for batch in shuffled} == expected
    assert one.counts == reference.counts

    # A shared subscription: two workers take turns, each in its own (here reversed) order.
    first, second = batch_resolver(), batch_resolver()
    got: dict[tuple[str, int, int], Batch] = {}
    for batch in reversed(shuffled[::2]):
        got[batch.key] = first.resolve(batch)
    for batch in reversed(shuffled[1::2]):
        got[batch.key] = second.resolve(batch)
    assert got == expected
    assert first.counts + second.counts == reference.counts
    # A redelivered batch resolves to the same again.
    assert first.resolve(shuffled[0]) == expected[shuffled[0].key]


# --------------------------------------------------------------------------------- shards


def test_shard_of_is_stable() -> None:
    # CRC-32 (zlib's, the IEEE polynomial) of the UTF-8 id, modulo the shards.
    assert zlib.crc32(b"loyalty-0001") == 69_362_469
    assert shard_of("loyalty-0001", 16) == 69_362_469 % 16 == 5
    assert shard_of("bag-tag-0002", 16) == 2_227_794_387 % 16 == 3
    assert shard_of("bag-tag-ü", 7) == zlib.crc32("bag-tag-ü".encode()) % 7 == 2
    assert shard_of("anything", 1) == 0


observed_records = st.builds(
    ObservedRecord,
    at_ms=st.integers(0, 10_000),
    rssi=st.integers(-128, 127),
    adverts=st.integers(0, 255),
    tx_power=st.integers(-128, 127),
    beacon_id=st.sampled_from(["loyalty-0001", "bag-tag-0002", "a", "b", "c", "ü", "x" * 255]),
)


@given(st.lists(observed_records, max_size=30), st.integers(1, 40))
def test_split_keeps_every_record_once(records: list[ObservedRecord], shards: int) -> None:
    batch = Batch(BatchKind.OBSERVATIONS, "resolver", 3, 4, tuple(records))
    parts = split(batch, shards)
    assert list(parts) == sorted(parts)
    assert all(0 <= shard < shards for shard in parts)
    for shard, part in parts.items():
        assert part.key == batch.key
        assert part.kind is BatchKind.OBSERVATIONS
        assert part.records
        assert all(
            isinstance(r, ObservedRecord) and shard_of(r.beacon_id, shards) == shard
            for r in part.records
        )
        # Each part keeps the batch's order.
        assert list(part.records) == [r for r in records if shard_of(r.beacon_id, shards) == shard]
    assert sum(len(part.records) for part in parts.values()) == len(records)
    assert Counter(r for p in parts.values() for r in p.records) == Counter(records)


# ---------------------------------------------------------------------- observed_sightings


def test_observed_sightings_carry_what_was_resolved() -> None:
    values = TelemetryValues(3012, None, 5, 6, encrypted=True)
    batch = Batch(
        BatchKind.OBSERVATIONS,
        "gw-3",
        1,
        2,
        (
            ObservedRecord(START_MS + 1500, -66, 4, -4, "loyalty-0001"),
            ObservedRecord(START_MS + 1700, -70, 1, -4, "loyalty-0001", values),
        ),
    )
    first, second = observed_sightings(batch, source="fleet")
    assert (first.gateway, first.rssi, first.at, first.tx_power, first.source) == (
        "gw-3",
        -66,
        at_s(START_MS + 1500),
        -4,
        "fleet",
    )
    assert first.resolved == Identified("loyalty-0001", -4, "upstream")
    assert second.at == at_s(START_MS + 1700)
    assert second.resolved == Telemetry(
        beacon_id="loyalty-0001",
        at=at_s(START_MS + 1700),
        tx_power=-4,
        battery_mv=3012,
        temperature_c=None,
        adv_count=5,
        uptime_ds=6,
        encrypted=True,
    )
    with pytest.raises(ValueError, match="expected an observations batch"):
        list(observed_sightings(Batch(BatchKind.SIGHTINGS, "gw-3", 1, 2)))


def test_the_arbiter_enters_a_beacon_one_gateway_of_a_zone_reports() -> None:
    config = parse_config(
        {
            "site": "store-1",
            "gateway_id": "arbiter",
            "gateways": [{"id": "gw-1"}, {"id": "gw-2"}, {"id": "gw-3"}],
            "zones": [
                {"id": "hall", "gateways": ["gw-1", "gw-2"]},
                {"id": "back", "gateways": ["gw-3"]},
            ],
        }
    )
    pipeline = assemble(config).pipeline  # no key registry: the workers hold the keys
    reporter, worker = Reporter("gw-1", 8), batch_resolver()
    outputs = []
    for i in range(150):  # 15 s at 10 Hz, heard by gw-1 only
        ms = START_MS + 30_000 + 100 * i
        for batch in reporter.process(heard(ms, LOYALTY.eid_frame(at_s(ms)), -58)):
            observations = over_the_wire(worker.resolve(over_the_wire(batch)))
            for part in split(observations, 4).values():
                for sighting in observed_sightings(over_the_wire(part)):
                    assert isinstance(sighting.resolved, Identified)
                    outputs += pipeline.process(sighting)
    changes = [o for o in outputs if isinstance(o, PresenceChange)]
    assert [(c.kind, c.beacon_id, c.zone, c.gateway) for c in changes] == [
        (ChangeKind.ENTER, LOYALTY.beacon_id, "hall", "gw-1")
    ]
    counts = pipeline.counts()
    assert counts.identity == {"identified": counts.sightings}
    assert counts.sightings >= 14
