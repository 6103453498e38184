"""A simulated beacon's adverts: interleaving, counters, eTLM, EID switching, drift, power loss."""

from __future__ import annotations

import itertools
import random

import pytest

import eid
from eid import frames
from firmware_sim.beacon import ADV_DELAY_MAX, Quirks, SimulatedBeacon
from firmware_sim.config_service import EidState, Firmware, Slot

T0 = 1_767_225_600.0
IK = bytes.fromhex("0102030405060708090a111213141516")
NAMESPACE = bytes.fromhex("8b0ca750095477cb3e77")


def firmware(*kinds: str, exponent: int = 4, interval_ms: int = 1000) -> Firmware:
    slots = []
    for kind in kinds:
        slot = Slot(kind=kind)
        if kind == "uid":
            slot.data = NAMESPACE + bytes(6)
        elif kind == "url":
            slot.data = bytes.fromhex("01676f6f676c6500")
        elif kind == "eid":
            slot.eid = EidState(IK, exponent, 100_000, T0, None)
        slots.append(slot)
    return Firmware(lock_code=bytes(16), slots=slots, interval_ms=interval_ms)


def beacon(*kinds: str, seed: int = 1, **options: object) -> SimulatedBeacon:
    exponent = options.pop("exponent", 4)
    assert isinstance(exponent, int)
    return SimulatedBeacon(
        firmware(*kinds, exponent=exponent),
        rng=random.Random(seed),
        powered_at=T0,
        **options,  # type: ignore[arg-type]
    )


def test_same_seed_same_adverts_and_other_seed_others() -> None:
    first = list(beacon("uid", "eid", "tlm", seed=5).adverts(T0 + 300))
    again = list(beacon("uid", "eid", "tlm", seed=5).adverts(T0 + 300))
    other = list(beacon("uid", "eid", "tlm", seed=6).adverts(T0 + 300))
    assert first == again
    assert first != other


def test_frames_interleave_in_slot_order_at_the_interval() -> None:
    sent = list(beacon("uid", "url", "tlm").adverts(T0 + 60))
    kinds = [frames.parse(advert.service_data) for advert in sent]
    assert [type(frame).__name__ for frame in kinds[:6]] == [
        "UidFrame", "UrlFrame", "TlmFrame", "UidFrame", "UrlFrame", "TlmFrame",
    ]  # fmt: skip
    gaps = [b.at - a.at for a, b in itertools.pairwise(sent)]
    assert all(1.0 <= gap <= 1.0 + ADV_DELAY_MAX for gap in gaps)
    assert 58 <= len(sent) <= 60
    assert len({advert.address for advert in sent}) == 1  # no EID: one address


def test_tlm_counts_pdus_and_uptime() -> None:
    sent = list(beacon("uid", "tlm").adverts(T0 + 100))
    for position, advert in enumerate(sent):
        frame = frames.parse(advert.service_data)
        if isinstance(frame, frames.TlmFrame):
            assert frame.adv_count == position  # PDUs sent before this one
            assert frame.uptime_ds == int((advert.at - T0) * 10)
            assert frame.battery_mv == 3000
            assert frame.temperature_c is not None
            assert 21 < frame.temperature_c < 23


def test_etlm_goes_out_with_an_eid_slot_and_decrypts_with_the_resolved_eid() -> None:
    simulated = beacon("eid", "tlm", exponent=4)
    resolver = eid.Resolver()
    resolver.register("bag", IK, 4, 100_000 - int(T0))
    last_match: eid.Match | None = None
    decrypted = 0
    for advert in simulated.adverts(T0 + 120):
        frame = frames.parse(advert.service_data)
        if isinstance(frame, frames.EidFrame):
            last_match = resolver.resolve(frame.eid, advert.at)
            assert last_match is not None
        elif isinstance(frame, frames.EtlmFrame):
            assert last_match is not None
            # as a gateway does: the paired EID's period, then its neighbours
            for shift in (0, -1, 1):
                try:
                    telemetry = eid.decrypt_etlm(IK, 4, last_match.counter + shift * 16, frame)
                except eid.IntegrityError:
                    continue
                tlm = frames.TlmFrame.from_telemetry(telemetry)
                assert tlm.adv_count > 0
                decrypted += 1
                break
    assert decrypted >= 50


def test_the_eid_switches_late_and_the_address_rotates_with_it() -> None:
    simulated = beacon("eid", exponent=4, seed=3)
    resolver = eid.Resolver(track_drift=False)
    resolver.register("bag", IK, 4, 100_000 - int(T0))
    offsets = set()
    by_eid: dict[bytes, set[str]] = {}
    for advert in simulated.adverts(T0 + 600):
        frame = frames.parse(advert.service_data)
        assert isinstance(frame, frames.EidFrame)
        match = resolver.resolve(frame.eid, advert.at)
        assert match is not None
        offsets.add(match.period_offset)
        by_eid.setdefault(frame.eid, set()).add(advert.address)
    assert offsets <= {-1, 0}
    assert -1 in offsets  # the switch comes after the boundary
    assert len(by_eid) >= 36
    assert all(len(addresses) == 1 for addresses in by_eid.values())
    addresses = [next(iter(a)) for a in by_eid.values()]
    assert len(set(addresses)) == len(addresses)  # every EID had its own address


@pytest.mark.parametrize("ppm", [150.0, -150.0])
def test_the_eid_clock_drifts(ppm: float) -> None:
    simulated = beacon("eid", exponent=4, drift_ppm=ppm)
    list(simulated.adverts(T0 + 1))
    state = simulated.firmware.slots[0].eid
    assert state is not None
    day = 86_400
    assert state.counter_at(T0 + 100 * day) - (100_000 + 100 * day) == pytest.approx(
        ppm * 1e-6 * 100 * day, abs=1
    )


def test_power_loss_restores_the_clock_from_its_last_save_and_resets_counters() -> None:
    simulated = beacon("eid", "tlm", exponent=0, clock_save_interval=3600.0)
    simulated.power_loss(T0 + 5400, 600)  # 30 min after the 3600 s save, off for 10 min
    sent = list(simulated.adverts(T0 + 7200))
    assert not [advert for advert in sent if T0 + 5400 <= advert.at < T0 + 6000]
    state = simulated.firmware.slots[0].eid
    assert state is not None
    # restored at T0 + 6000 with the counter saved at T0 + 3600: 2400 s behind
    assert state.counter_at(T0 + 6000) == 100_000 + 3600
    after = [frames.parse(a.service_data) for a in sent if a.at >= T0 + 6000]
    assert not any(isinstance(frame, frames.TlmFrame) for frame in after)  # still eTLM
    resolver = eid.Resolver(track_drift=False)
    resolver.register("bag", IK, 0, 100_000 - int(T0))
    late = next(a for a in sent if a.at >= T0 + 6000)
    frame = frames.parse(late.service_data)
    assert isinstance(frame, frames.EidFrame)
    assert resolver.resolve(frame.eid, late.at) is None  # 2400 periods behind: not resolvable


def test_quirks_make_18_byte_eid_and_19_byte_etlm_frames_that_parse() -> None:
    simulated = beacon("eid", "tlm", quirks=Quirks(eid_frame_18_bytes=True, etlm_19_bytes=True))
    sizes = set()
    for advert in simulated.adverts(T0 + 20):
        sizes.add(len(advert.service_data))
        frames.parse(advert.service_data)
    assert sizes == {18, 19}


def test_an_empty_firmware_sends_nothing() -> None:
    empty = Firmware(lock_code=bytes(16), slots=[Slot(), Slot()])
    simulated = SimulatedBeacon(empty, rng=random.Random(1), powered_at=T0)
    assert list(simulated.adverts(T0 + 30)) == []
    assert "pdus=0" in repr(simulated)
