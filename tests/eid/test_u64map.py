"""The compact multimap under the resolver, against a dict-of-lists model."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from eid.u64map import EMPTY, U64MultiMap

keys = st.one_of(st.integers(0, 40), st.integers(0, 2**64 - 1))  # clustered and spread keys
values = st.integers(0, EMPTY - 1)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("insert"), keys, values),
        st.tuples(st.just("remove"), keys, values),
        st.tuples(st.just("bulk"), st.lists(st.tuples(keys, values), max_size=30), st.none()),
    ),
    max_size=120,
)


@given(operations)
def test_behaves_like_a_dict_of_lists(ops: list[tuple[object, ...]]) -> None:
    table = U64MultiMap()
    model: dict[int, list[int]] = {}
    for op in ops:
        if op[0] == "insert":
            _, key, value = op
            assert isinstance(key, int)
            assert isinstance(value, int)
            table.insert(key, value)
            model.setdefault(key, []).append(value)
        elif op[0] == "remove":
            _, key, value = op
            assert isinstance(key, int)
            assert isinstance(value, int)
            present = value in model.get(key, [])
            assert table.remove(key, value) is present
            if present:
                model[key].remove(value)
        else:
            pairs = op[1]
            assert isinstance(pairs, list)
            table.insert_many(
                np.array([k for k, _ in pairs], dtype=np.uint64),
                np.array([v for _, v in pairs], dtype=np.uint64),
            )
            for key, value in pairs:
                model.setdefault(key, []).append(value)
    for key, stored in model.items():
        assert sorted(table.find(key)) == sorted(stored)
    assert len(table) == sum(len(stored) for stored in model.values())
    found_keys, found_values = table.items()
    assert len(found_keys) == len(found_values) == len(table)


def test_sizing_for_an_expected_count() -> None:
    table = U64MultiMap(expected=1000)
    assert table.capacity >= 1000 / 0.75
    assert table.capacity & (table.capacity - 1) == 0
    assert table.nbytes == table.capacity * 16
    table.insert_many(np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.uint64))
    assert len(table) == 0
    assert table.find(7) == []
