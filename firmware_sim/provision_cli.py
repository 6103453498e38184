"""``beacon-sim provision`` and ``beacon-sim frames``: a simulated EID beacon, end to end.

    beacon-sim provision --service-public-key HEX --beacon-id bag-1 [--exponent 10] [--seed 1]
        [--lock-code-file FILE] [--at TIME] --record-out record.json --beacon-out beacon.json
    beacon-sim frames --beacon beacon.json [--from TIME] [--count 10] [--every 60]

``provision`` acts as the configuration app against a simulated beacon: it unlocks it, writes an
EID slot with the resolver's service public key (``beacon-gateway keys service-key REGISTRY``),
reads back the slot and the beacon's public key, and writes the registration record for
``beacon-gateway keys register --record`` (mode 0600: it holds the initial EID, which the
registry never shows). The beacon's state (its identity key and clock) goes to ``--beacon-out``
(mode 0600: it holds the key) so that ``frames`` can print what it transmits, as ``@TIME HEX``
lines that ``beacon-gateway decode`` reads.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import eid
from eid import frames
from firmware_sim.config_service import ConfigurationService, EidState, Firmware
from firmware_sim.provisioning import provision_eid

if TYPE_CHECKING:
    import argparse
    from typing import TextIO

DEFAULT_LOCK_CODE: Final = bytes(16)
"""What beacons shipped unlocked commonly use (Estimote: 16 zero bytes)."""
DEFAULT_TX_POWER: Final = -18


class SimUsageError(eid.EidError):
    """A provisioning or frames command was given something it cannot use."""


def parse_time(text: str) -> float:
    """Unix seconds from ``1767225600`` or ISO 8601 with a UTC offset."""
    try:
        value = float(text)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            msg = f"time {text!r} must be unix seconds or ISO 8601 with a UTC offset"
            raise SimUsageError(msg) from None
        value = moment.timestamp()
    if not math.isfinite(value) or value < 0:
        msg = f"time {text!r} must not be before 1970"
        raise SimUsageError(msg)
    return value


def _hex(text: str, name: str, size: int) -> bytes:
    try:
        value = bytes.fromhex("".join(text.split()))
    except ValueError:
        value = b""
    if len(value) != size:
        msg = f"{name} must be {2 * size} hex digits"
        raise SimUsageError(msg)
    return value


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``provision`` and ``frames``."""
    provision = commands.add_parser(
        "provision",
        help="provision a simulated EID beacon; write its registration record",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    provision.add_argument("--service-public-key", required=True, help="64 hex digits")
    provision.add_argument("--beacon-id", required=True)
    provision.add_argument("--exponent", type=int, default=10, help="rotation exponent K")
    provision.add_argument("--seed", type=int, default=1, help="the simulated beacon's randomness")
    provision.add_argument("--lock-code-file", type=Path, help="32 hex digits (default: zeros)")
    provision.add_argument("--at", help="when (unix seconds or ISO 8601; default now)")
    provision.add_argument("--record-out", type=Path, required=True)
    provision.add_argument("--beacon-out", type=Path, required=True)
    show = commands.add_parser(
        "frames",
        help="print a provisioned beacon's EID frames over time",
        description="Print '@TIME HEX' lines of the beacon's EID frames ('beacon-gateway decode').",
    )
    show.add_argument("--beacon", type=Path, required=True, help="written by provision")
    show.add_argument("--from", dest="start", help="first time (default: now)")
    show.add_argument("--count", type=int, default=10)
    show.add_argument("--every", type=float, default=60.0, help="seconds between frames")


def _write_secret_json(path: Path, document: dict[str, Any]) -> None:
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(handle, 0o600)  # an existing file keeps its mode on open: narrow it first
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        json.dump(document, stream, indent=2)
        stream.write("\n")


def provision(args: argparse.Namespace, out: TextIO) -> None:
    """Run ``beacon-sim provision``."""
    service_public = _hex(args.service_public_key, "--service-public-key", 32)
    lock_code = DEFAULT_LOCK_CODE
    if args.lock_code_file is not None:
        lock_code = _hex(args.lock_code_file.read_text(encoding="utf-8"), "lock code", 16)
    now = parse_time(args.at) if args.at is not None else time.time()
    firmware = Firmware(lock_code=lock_code)
    record = provision_eid(
        ConfigurationService(firmware, random.Random(args.seed)),
        beacon_id=args.beacon_id,
        lock_code=lock_code,
        service_public_key=service_public,
        exponent=args.exponent,
        now=now,
    )
    _write_secret_json(args.record_out, record.to_json())
    state = firmware.slots[0].eid
    assert state is not None  # noqa: S101 - provision_eid configured slot 0
    _write_secret_json(
        args.beacon_out,
        {
            "beacon_id": args.beacon_id,
            "identity_key": state.identity_key.hex(),
            "exponent": state.exponent,
            "clock_start": state.clock_start,
            "clock_epoch": state.clock_epoch,
            "tx_power": DEFAULT_TX_POWER,
        },
    )
    out.write(
        f"provisioned {args.beacon_id}: exponent {record.rotation_exponent}, "
        f"clock {record.initial_clock}; record in {args.record_out}, beacon in {args.beacon_out}\n"
    )


def frames_over_time(args: argparse.Namespace, out: TextIO) -> None:
    """Run ``beacon-sim frames``."""
    try:
        document = json.loads(args.beacon.read_text(encoding="utf-8"))
        state = EidState(
            identity_key=bytes.fromhex(document["identity_key"]),
            exponent=int(document["exponent"]),
            clock_start=int(document["clock_start"]),
            clock_epoch=float(document["clock_epoch"]),
            public_key=None,
        )
        tx_power = int(document.get("tx_power", DEFAULT_TX_POWER))
    except (OSError, ValueError, KeyError, TypeError):
        msg = f"{args.beacon} is not a beacon file written by 'beacon-sim provision'"
        raise SimUsageError(msg) from None
    start = parse_time(args.start) if args.start is not None else time.time()
    for index in range(args.count):
        now = start + index * args.every
        current = eid.compute_eid(state.identity_key, state.exponent, state.counter_at(now))
        frame = frames.encode(frames.EidFrame(tx_power, current))
        out.write(f"@{now:.0f} {frame.hex()}\n")
