"""``beacon-gateway keys``: create and manage the key registry, and diagnose EIDs.

    keys init REGISTRY [--test-keys]          a new registry with a fresh service key pair
    keys register REGISTRY --record FILE      add a beacon from a registration record (JSON)
    keys register REGISTRY --id ID --beacon-public-key HEX --exponent K --initial-clock T
                           --initial-eid HEX [--registered-at TIME]
    keys add REGISTRY --id ID --identity-key-file FILE --exponent K
                      (--clock-offset N | --initial-clock T [--registered-at TIME])
                      [--initial-eid HEX]     the shared-identity-key variant
    keys list REGISTRY                        ids, exponents, offsets; no secrets
    keys remove REGISTRY ID
    keys resolve REGISTRY EIDHEX [--at TIME]  which beacon shows this EID, or why none does
    keys new-registry-key                     a key to encrypt a registry at rest

Every command that reads a registry takes ``--registry-key-file`` (or the environment variable /
systemd credential of gateway/sealed_file.py); a registry written with a key is encrypted.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import eid
from gateway.decode import InputError, parse_time
from gateway.errors import GatewayError
from gateway.registry import BeaconKey, KeyRegistry, RegistryError
from gateway.sealed_file import SealingKey, find_sealing_key, new_sealing_key

if TYPE_CHECKING:
    import argparse
    from typing import TextIO

_RECORD_FIELDS: Final = frozenset(
    {
        "beacon_id", "beacon_public_key", "rotation_exponent", "initial_clock", "initial_eid",
        "registered_at", "service_public_key",
    }
)  # fmt: skip


class UsageError(GatewayError, ValueError):
    """A keys command was given something it cannot use; the message says what."""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``keys`` command and its sub-commands."""
    keys = commands.add_parser(
        "keys",
        help="create and manage the key registry; diagnose EIDs",
        description="Create and manage the key registry (docs/key-registry.md).",
    )
    actions = keys.add_subparsers(dest="action", required=True, metavar="ACTION")

    def registry_command(name: str, text: str) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=text, description=text)
        sub.add_argument("registry", type=Path, metavar="REGISTRY")
        sub.add_argument(
            "--registry-key-file", type=Path, help="key of an encrypted registry (Fernet)"
        )
        return sub

    init = registry_command("init", "create a registry with a fresh service key pair")
    init.add_argument(
        "--test-keys", action="store_true", help="mark it as holding published test keys only"
    )
    register = registry_command("register", "add a beacon from its registration record")
    register.add_argument("--record", type=Path, help="registration record, JSON")
    register.add_argument("--id", dest="beacon_id")
    register.add_argument("--beacon-public-key", help="X25519, 64 hex digits")
    register.add_argument("--exponent", type=int, help="rotation exponent K")
    register.add_argument("--initial-clock", type=int, help="beacon clock when provisioned")
    register.add_argument("--initial-eid", help="the EID it showed then, 16 hex digits")
    register.add_argument("--registered-at", help="when (unix seconds or ISO 8601; default now)")
    register.add_argument("--replace", action="store_true", help="replace a beacon of this id")
    add = registry_command("add", "add a beacon by its identity key (shared-key variant)")
    add.add_argument("--id", dest="beacon_id", required=True)
    add.add_argument("--identity-key-file", type=Path, required=True, help="32 hex digits")
    add.add_argument("--exponent", type=int, required=True, help="rotation exponent K")
    add.add_argument("--clock-offset", type=int, help="beacon counter minus unix time")
    add.add_argument("--initial-clock", type=int, help="beacon clock at --registered-at")
    add.add_argument("--registered-at", help="unix seconds or ISO 8601 (default now)")
    add.add_argument("--initial-eid", help="check it: the EID at the initial clock")
    add.add_argument("--replace", action="store_true", help="replace a beacon of this id")
    registry_command("list", "list the beacons (no secrets)")
    remove = registry_command("remove", "remove a beacon")
    remove.add_argument("beacon_id", metavar="ID")
    resolve = registry_command("resolve", "which beacon shows an EID, or why none does")
    resolve.add_argument("eid", metavar="EIDHEX")
    resolve.add_argument("--at", help="time it was seen (unix seconds or ISO 8601; default now)")
    registry_command("service-key", "print the service public key (hex), for provisioning")
    actions.add_parser(
        "new-registry-key",
        help="print a fresh key to encrypt a registry at rest",
        description="Print a fresh Fernet key; keep it apart from the registry.",
    )


def _hex(text: object, name: str, size: int) -> bytes:
    if not isinstance(text, str):
        msg = f"{name} must be {2 * size} hex digits"
        raise UsageError(msg)
    try:
        value = bytes.fromhex(text)
    except ValueError:
        value = b""
    if len(value) != size:
        try:  # registration records from the Proximity Beacon API carry base64
            value = base64.b64decode(text, validate=True)
        except ValueError:
            value = b""
    if len(value) != size:
        msg = f"{name} must be {2 * size} hex digits (or base64 of {size} bytes)"
        raise UsageError(msg)
    return value


def _time(text: object, name: str) -> float:
    if text is None:
        return time.time()
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        msg = f"{name} must be unix seconds or ISO 8601"
        raise UsageError(msg)
    try:
        return parse_time(str(text))
    except InputError as exc:
        msg = f"{name}: {exc}"
        raise UsageError(msg) from None


def _record(args: argparse.Namespace) -> dict[str, Any]:
    record: dict[str, Any] = {}
    if args.record is not None:
        try:
            loaded = json.loads(args.record.read_text(encoding="utf-8"))
        except OSError as exc:
            msg = f"cannot read {args.record}: {exc.strerror}"
            raise UsageError(msg) from None
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep
            msg = f"{args.record} is not a JSON registration record"
            raise UsageError(msg) from None
        if not isinstance(loaded, dict):
            msg = f"{args.record} must hold a JSON object"
            raise UsageError(msg)
        unknown = sorted(set(loaded) - _RECORD_FIELDS)
        if unknown:
            msg = f"{args.record}: unknown fields {', '.join(unknown)}"
            raise UsageError(msg)
        record.update(loaded)
    flags = {
        "beacon_id": args.beacon_id,
        "beacon_public_key": args.beacon_public_key,
        "rotation_exponent": args.exponent,
        "initial_clock": args.initial_clock,
        "initial_eid": args.initial_eid,
        "registered_at": args.registered_at,
    }
    record.update({name: value for name, value in flags.items() if value is not None})
    missing = [
        name
        for name in (
            "beacon_id",
            "beacon_public_key",
            "rotation_exponent",
            "initial_clock",
            "initial_eid",
        )
        if name not in record
    ]
    if missing:
        msg = f"the registration record lacks {', '.join(missing)}"
        raise UsageError(msg)
    return record


def _load(args: argparse.Namespace) -> tuple[KeyRegistry, SealingKey | None]:
    sealing_key = find_sealing_key(args.registry_key_file)
    return KeyRegistry.load(args.registry, sealing_key=sealing_key), sealing_key


def _init(args: argparse.Namespace, out: TextIO) -> None:
    if args.registry.exists():
        msg = f"{args.registry} exists already: not overwritten"
        raise UsageError(msg)
    registry = KeyRegistry.create(test_keys=args.test_keys)
    sealing_key = find_sealing_key(args.registry_key_file)
    registry.save(args.registry, sealing_key=sealing_key)
    public = registry.service_public_key
    assert public is not None  # noqa: S101 - create() makes one
    encrypted = "encrypted" if sealing_key is not None else "not encrypted"
    out.write(f"created {args.registry} ({encrypted}, mode 0600)\n")
    out.write(f"service public key (hex):    {public.hex()}\n")
    out.write(f"service public key (base64): {base64.b64encode(public).decode()}\n")


def _register(args: argparse.Namespace, out: TextIO) -> None:
    record = _record(args)
    registry, sealing_key = _load(args)
    beacon_id = str(record["beacon_id"])
    if args.replace:
        registry.remove(beacon_id)
    exponent = record["rotation_exponent"]
    clock = record["initial_clock"]
    if type(exponent) is not int or type(clock) is not int:
        msg = "rotation_exponent and initial_clock must be integers"
        raise UsageError(msg)
    service_public = record.get("service_public_key")
    key = registry.register_ecdh(
        beacon_id,
        beacon_public_key=_hex(record["beacon_public_key"], "beacon_public_key", 32),
        rotation_exponent=exponent,
        initial_clock=clock,
        initial_eid=_hex(record["initial_eid"], "initial_eid", 8),
        registered_at=_time(record.get("registered_at"), "registered_at"),
        service_public_key=None
        if service_public is None
        else _hex(service_public, "service_public_key", 32),
    )
    registry.save(args.registry, sealing_key=sealing_key)
    out.write(
        f"registered {key.beacon_id}: exponent {key.rotation_exponent}, "
        f"clock offset {key.clock_offset}\n"
    )


def _add(args: argparse.Namespace, out: TextIO) -> None:
    try:
        identity_key = _hex(
            args.identity_key_file.read_text(encoding="utf-8").strip(), "identity key", 16
        )
    except OSError as exc:
        msg = f"cannot read {args.identity_key_file}: {exc.strerror}"
        raise UsageError(msg) from None
    registered_at = _time(args.registered_at, "--registered-at")
    if (args.clock_offset is None) == (args.initial_clock is None):
        msg = "give exactly one of --clock-offset and --initial-clock"
        raise UsageError(msg)
    clock = args.initial_clock
    if clock is None:
        clock = int(registered_at) + args.clock_offset
    registered = eid.register_identity_key(
        identity_key=identity_key,
        exponent=args.exponent,
        initial_clock=clock,
        registered_at=registered_at,
        initial_eid=None
        if args.initial_eid is None
        else _hex(args.initial_eid, "--initial-eid", 8),
    )
    registry, sealing_key = _load(args)
    key = BeaconKey(
        args.beacon_id,
        registered.identity_key,
        registered.exponent,
        registered.clock_offset,
        registered_at=registered_at,
        initial_clock=clock,
    )
    registry.add(key, replace_existing=args.replace)
    registry.save(args.registry, sealing_key=sealing_key)
    out.write(f"added {key.beacon_id}: exponent {key.rotation_exponent}, ")
    out.write(f"clock offset {key.clock_offset}\n")


def _list(args: argparse.Namespace, out: TextIO) -> None:
    registry, _ = _load(args)
    public = registry.service_public_key
    out.write(f"service public key: {public.hex() if public else '(none)'}\n")
    out.write(f"{'beacon id':<28} {'K':>2} {'clock offset':>13}  {'kind':<10} registered at\n")
    for key in registry:
        when = (
            "-"
            if key.registered_at is None
            else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(key.registered_at))
        )
        out.write(
            f"{key.beacon_id:<28} {key.rotation_exponent:>2} {key.clock_offset:>13}  "
            f"{key.kind:<10} {when}\n"
        )
    out.write(f"{len(registry)} beacon(s)\n")


def _remove(args: argparse.Namespace, out: TextIO) -> None:
    registry, sealing_key = _load(args)
    if not registry.remove(args.beacon_id):
        msg = f"no beacon {args.beacon_id!r} in {args.registry}"
        raise UsageError(msg)
    registry.save(args.registry, sealing_key=sealing_key)
    out.write(f"removed {args.beacon_id}\n")


def _resolve(args: argparse.Namespace, out: TextIO) -> bool:
    registry, _ = _load(args)
    eid8 = _hex(args.eid, "EIDHEX", 8)
    at = _time(args.at, "--at")
    result = registry.resolver().lookup(eid8, at)
    if result.match is not None:
        match = result.match
        out.write(
            f"{match.beacon_id}: rotation period starting at beacon time {match.counter} "
            f"(offset {match.period_offset:+d} from the expected period)\n"
        )
        return True
    if result.reason is eid.ResolutionReason.UNKNOWN:
        found = _search_history(registry, eid8, at)
        if found is not None:
            out.write(f"not resolved: stale: {found}\n")
            return False
    reasons = {
        eid.ResolutionReason.UNKNOWN: "no registered beacon shows this EID within its window",
        eid.ResolutionReason.STALE: "an old EID of a registered beacon (a replay)",
        eid.ResolutionReason.AMBIGUOUS: "several beacons show this EID",
    }
    named = f" ({', '.join(result.beacon_ids)})" if result.beacon_ids else ""
    out.write(f"not resolved: {result.reason.value}: {reasons[result.reason]}{named}\n")
    return False


_SEARCH_SPAN: Final = 86_400
"""Diagnostics look for an unresolved EID a day either side of each beacon's expected time."""
_SEARCH_BUDGET: Final = 2_000_000
"""EIDs computed at most by one diagnostic search (a few seconds)."""


def _search_history(registry: KeyRegistry, eid8: bytes, at: float) -> str | None:
    """Which beacon showed ``eid8`` within a day of ``at``, outside its window (a diagnosis)."""
    budget = _SEARCH_BUDGET
    for key in registry:
        exponent = key.rotation_exponent
        expected = (int(at) + key.clock_offset) >> exponent
        span = min(_SEARCH_SPAN >> exponent, budget // 2)
        budget -= 2 * span + 1
        generator = eid.EidGenerator(key.identity_key)
        for period in range(max(expected - span, 0), expected + span + 1):
            counter = period << exponent
            if counter >= 1 << 32:
                break
            if generator.eid(exponent, counter) == eid8:
                distance = period - expected
                side = "before" if distance < 0 else "after"
                cause = (
                    "a replay, or a beacon clock that lags"
                    if distance < 0
                    else ("a beacon clock that runs ahead")
                )
                return (
                    f"an EID of {key.beacon_id} from {abs(distance)} rotation period(s) {side} "
                    f"the expected one (beacon time {counter}): {cause}"
                )
        if budget <= 0:
            return None
    return None


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Run a keys sub-command; return the exit status (1: the EID did not resolve)."""
    action = args.action
    if action == "new-registry-key":
        out.write(new_sealing_key().decode("ascii") + "\n")
        return 0
    if action == "service-key":
        registry, _ = _load(args)
        public = registry.service_public_key
        if public is None:
            msg = f"{args.registry} has no service key pair: create it with 'keys init'"
            raise UsageError(msg)
        out.write(public.hex() + "\n")
        return 0
    if action == "resolve":
        return 0 if _resolve(args, out) else 1
    handlers = {
        "init": _init,
        "register": _register,
        "add": _add,
        "list": _list,
        "remove": _remove,
    }
    handlers[action](args, out)
    return 0


__all__ = ["RegistryError", "UsageError", "add_parser", "run"]
