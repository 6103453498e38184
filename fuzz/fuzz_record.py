"""Fuzz registration records: ``beacon-gateway keys register --record`` (gateway/keys_cli.py).

Input: the record file's bytes (JSON, as a configuration app or ``beacon-sim provision`` writes
it), registered into a registry whose service key the seed records were provisioned against.
Allowed: :class:`UsageError` (not a record), :class:`RegistryError` (refused by the registry),
:class:`eid.EidError` (a registration check failed, e.g. the initial EID does not verify).
Property: a registry that took the record still loads, with the beacon in it.

    .venv/bin/python fuzz/fuzz_record.py -runs=100000 fuzz/corpus/record
"""

from __future__ import annotations

import argparse
import io
from typing import Final

from contract import ContractError, instrumented, main, scratch_file, total

with instrumented("json"):
    import eid
    from gateway import keys_cli
    from gateway.keys_cli import UsageError
    from gateway.registry import KeyRegistry, RegistryError

SERVICE_PRIVATE: Final = bytes(range(1, 33))
"""The service key the seed records were provisioned against (``beacon-sim provision``)."""
REGISTRY: Final = KeyRegistry([], service_private=SERVICE_PRIVATE, test_keys=True).to_toml()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="beacon-gateway", exit_on_error=False)
    keys_cli.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser


PARSER: Final = _parser()


def check(data: bytes) -> None:
    """One record, registered into a fresh registry."""
    with scratch_file("record.json", data) as record:
        registry = record.parent / "registry.toml"
        registry.write_text(REGISTRY, encoding="utf-8")
        args = PARSER.parse_args(["keys", "register", str(registry), "--record", str(record)])
        keys_cli.run(args, io.StringIO())
        loaded = KeyRegistry.load(registry)
        if len(loaded) != 1:
            msg = "a registered record is not in the registry"
            raise ContractError(msg)


if __name__ == "__main__":
    main(
        total(check, (UsageError, RegistryError, eid.EidError)),
        max_len=1024,
        dictionaries=("json", "record"),
    )
