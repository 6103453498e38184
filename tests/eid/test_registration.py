"""Registration records (eddystone-spec.md 7.1 and 8.1), checked against the spec vectors."""

from __future__ import annotations

import pytest

import eid
from eid import RegisteredBeacon, RegistrationCheck, RegistrationError
from tests.eid.oracle import compute_eid

T0 = 1_767_225_600
h = bytes.fromhex

# Section 7.1, second set [3P]: resolver side, with EID(K=0, t=0).
SERVICE_PRIVATE = h("4041414141414141414141414141414141414141414141414141414141414141")
SERVICE_PUBLIC = h("7a1a4e709bf085ac494aba0469b9b1eda0ab1f78b16aabb79ffeda90623e8522")
BEACON_PUBLIC = h("5f2ff6357762b9c188343259a9bd899a9a667d170143c0bc1ae905e877914a0e")
IDENTITY_KEY = h("7c91330e61dfea4606b5b3ecb4457d76")
INITIAL_EID = h("436bfe57d5a09505")

# Section 7.1, first set [3P], and the key one gets with the salt order swapped [CALC].
RADIUS_SERVICE_PRIVATE = h("61136adab1bf302f1c49e860196aeefd8fbaa41518b4c226372d6cc469c47278")
RADIUS_BEACON_PUBLIC = h("c63e6f89aab47552c8d621a59c81d0af203f6570a4bd7a267a08a17561c8bc2b")
RADIUS_IDENTITY_KEY = h("f40d6f18e5882260e847e99ca33ac44f")
SWAPPED_SALT_KEY = h("b0cfcfed5acbf11b6a090fec8b71c9d7")


def ecdh(**overrides: object) -> RegisteredBeacon:
    record: dict[str, object] = {
        "service_private": SERVICE_PRIVATE,
        "beacon_public": BEACON_PUBLIC,
        "exponent": 0,
        "initial_clock": 0,
        "initial_eid": INITIAL_EID,
        "registered_at": T0,
    }
    record.update(overrides)
    return eid.register_ecdh(**record)  # type: ignore[arg-type]


def failed_check(**overrides: object) -> RegistrationError:
    with pytest.raises(RegistrationError) as caught:
        ecdh(**overrides)
    return caught.value


def test_spec_record_gives_the_spec_identity_key_and_the_offset() -> None:
    registered = ecdh(service_public=SERVICE_PUBLIC)
    assert registered == RegisteredBeacon(IDENTITY_KEY, 0, -T0)


def test_record_with_a_later_clock_and_exponent() -> None:
    clock = 3_000_000
    initial = compute_eid(RADIUS_IDENTITY_KEY, 10, clock)
    registered = eid.register_ecdh(
        service_private=RADIUS_SERVICE_PRIVATE,
        beacon_public=RADIUS_BEACON_PUBLIC,
        exponent=10,
        initial_clock=clock,
        initial_eid=initial,
        registered_at=T0 + 0.75,
    )
    assert registered == RegisteredBeacon(RADIUS_IDENTITY_KEY, 10, clock - T0)
    resolver = eid.Resolver()
    resolver.register("bag", registered.identity_key, 10, registered.clock_offset)
    assert resolver.resolve(initial, T0 + 1) == eid.Match("bag", (clock >> 10) << 10, 0)


def test_wrong_exponent_is_named() -> None:
    error = failed_check(exponent=5)
    assert error.check is RegistrationCheck.INITIAL_EID
    assert "matches rotation exponent 0" in str(error)


def test_clock_read_a_period_late_is_named() -> None:
    clock = 5 * 1024 + 17
    initial = compute_eid(IDENTITY_KEY, 10, clock - 1024)
    error = failed_check(exponent=10, initial_clock=clock, initial_eid=initial)
    assert "previous rotation period" in str(error)


def test_swapped_salt_order_is_named() -> None:
    initial = compute_eid(SWAPPED_SALT_KEY, 10, 4096)
    with pytest.raises(RegistrationError, match="beacon-then-service order") as caught:
        eid.register_ecdh(
            service_private=RADIUS_SERVICE_PRIVATE,
            beacon_public=RADIUS_BEACON_PUBLIC,
            exponent=10,
            initial_clock=4096,
            initial_eid=initial,
            registered_at=T0,
        )
    assert caught.value.check is RegistrationCheck.INITIAL_EID


def test_unexplained_mismatch() -> None:
    error = failed_check(initial_eid=bytes(8))
    assert error.check is RegistrationCheck.INITIAL_EID
    assert str(error).endswith("with exponent 0")


@pytest.mark.parametrize(
    ("overrides", "check"),
    [
        ({"service_public": BEACON_PUBLIC}, RegistrationCheck.SERVICE_KEY),
        ({"service_private": bytes(31)}, RegistrationCheck.SERVICE_KEY),
        ({"beacon_public": bytes(32)}, RegistrationCheck.BEACON_KEY),
        ({"beacon_public": b"\x01" + bytes(31)}, RegistrationCheck.BEACON_KEY),
        ({"exponent": 16}, RegistrationCheck.EXPONENT),
        ({"exponent": True}, RegistrationCheck.EXPONENT),
        ({"initial_clock": -1}, RegistrationCheck.INITIAL_CLOCK),
        ({"initial_clock": 2**32}, RegistrationCheck.INITIAL_CLOCK),
        ({"initial_eid": INITIAL_EID[:7]}, RegistrationCheck.INITIAL_EID),
        ({"registered_at": float("nan")}, RegistrationCheck.REGISTERED_AT),
        ({"registered_at": -1}, RegistrationCheck.REGISTERED_AT),
    ],
)
def test_each_check_is_named(overrides: dict[str, object], check: RegistrationCheck) -> None:
    error = failed_check(**overrides)
    assert error.check is check
    assert isinstance(error, eid.EidError)


def test_secrets_stay_out_of_errors_and_reprs() -> None:
    registered = ecdh()
    assert IDENTITY_KEY.hex() not in repr(registered)
    assert "<hidden>" in repr(registered)
    for overrides in (
        {"exponent": 5},
        {"initial_eid": bytes(8)},
        {"service_public": BEACON_PUBLIC},
    ):
        text = str(failed_check(**overrides))
        for secret in (IDENTITY_KEY, SERVICE_PRIVATE):
            assert secret.hex() not in text


def test_shared_identity_key_variant() -> None:
    assert eid.register_identity_key(
        identity_key=IDENTITY_KEY, exponent=0, initial_clock=0, registered_at=T0,
        initial_eid=INITIAL_EID,
    ) == RegisteredBeacon(IDENTITY_KEY, 0, -T0)  # fmt: skip
    assert eid.register_identity_key(
        identity_key=IDENTITY_KEY, exponent=4, initial_clock=100, registered_at=T0 + 10
    ) == RegisteredBeacon(IDENTITY_KEY, 4, 100 - T0 - 10)
    with pytest.raises(RegistrationError) as caught:
        eid.register_identity_key(
            identity_key=IDENTITY_KEY[:15], exponent=0, initial_clock=0, registered_at=T0
        )
    assert caught.value.check is RegistrationCheck.IDENTITY_KEY
    with pytest.raises(RegistrationError, match="matches rotation exponent 0"):
        eid.register_identity_key(
            identity_key=IDENTITY_KEY, exponent=3, initial_clock=0, registered_at=T0,
            initial_eid=INITIAL_EID,
        )  # fmt: skip
