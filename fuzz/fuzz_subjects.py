"""Fuzz the subjects file: customers and bags behind the beacons (gateway/subjects_file.py).

Input: a subjects file's bytes, read by :func:`gateway.subjects_file.load_subjects`. Allowed:
:class:`ConfigError`, naming each problem's field path. Property: every subject loaded is found
by its beacon.

    .venv/bin/python fuzz/fuzz_subjects.py -runs=100000 fuzz/corpus/subjects
"""

from __future__ import annotations

from contract import ContractError, instrumented, main, scratch_file, total

with instrumented("tomllib"):
    import tomllib

    from gateway.errors import ConfigError
    from gateway.subjects_file import load_subjects


def check(data: bytes) -> None:
    """One subjects file."""
    with scratch_file("subjects.toml", data) as path:
        directory = load_subjects(path)
    document = tomllib.loads(data.decode("utf-8"))
    for kind in ("customers", "bags"):
        for entry in document.get(kind, []):
            if directory.for_beacon(entry["beacon"]) is None:
                msg = f"a loaded subject is not found by its beacon {entry['beacon']!r}"
                raise ContractError(msg)


if __name__ == "__main__":
    main(total(check, (ConfigError,)), max_len=4096, dictionaries=("toml", "subjects"))
