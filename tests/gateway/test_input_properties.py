"""The gateway's parsers of outside input are total: any input gives a result or a clear error."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gateway.decode import Decoder
from gateway.errors import ConfigError, Problem
from gateway.registry import KeyRegistry

REGISTRY = KeyRegistry.from_document(
    {
        "version": 1,
        "beacons": [
            {
                "id": "radius",
                "identity_key": "0102030405060708090a111213141516",
                "rotation_exponent": 10,
                "clock_offset": -1767223600,
            }
        ],
    }
)

hex_chunks = st.text(alphabet="0123456789abcdefABCDEF :-", max_size=80)
times = st.one_of(
    st.integers(min_value=-10, max_value=1 << 40).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.datetimes().map(lambda moment: moment.isoformat()),
    st.text(max_size=12),
)
lines = st.one_of(
    st.text(max_size=120),
    hex_chunks,
    st.tuples(times, hex_chunks).map(lambda parts: f"@{parts[0]} {parts[1]}"),
    st.binary(max_size=40).map(lambda data: "aafe" + data.hex()),
    st.binary(max_size=40).map(lambda data: "30" + data.hex()),
    st.binary(max_size=40).map(lambda data: "2001" + data.hex()),
)


@given(st.lists(lines, max_size=8))
def test_decode_never_raises(batch: list[str]) -> None:
    decoder = Decoder(REGISTRY, 1767225600.0)
    for number, line in enumerate(batch, start=1):
        decoded = decoder.decode_line(number, line)
        if decoded is not None:
            assert decoded.number == number
            assert decoded.ok or decoded.text.startswith("error: ")


toml_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False),
        st.text(max_size=40),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=12), children, max_size=4),
    ),
    max_leaves=12,
)
beacon_like = st.fixed_dictionaries(
    {},
    optional={
        "id": toml_values,
        "identity_key": st.one_of(toml_values, st.binary(max_size=20).map(bytes.hex)),
        "rotation_exponent": st.one_of(toml_values, st.integers(-2, 20)),
        "clock_offset": st.one_of(toml_values, st.integers()),
    },
)


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "version": st.one_of(toml_values, st.just(1)),
            "beacons": st.one_of(toml_values, st.lists(beacon_like, max_size=4)),
        },
    )
)
def test_registry_documents_load_or_give_config_error(document: dict[str, Any]) -> None:
    problems: tuple[Problem, ...] = ()
    try:
        registry = KeyRegistry.from_document(document)
    except ConfigError as error:
        problems = error.problems
    else:
        assert len(registry) == len(document.get("beacons", []))
        return
    assert problems
    for problem in problems:
        assert problem.path
        if "identity_key" in problem.path:
            assert problem.value is None
