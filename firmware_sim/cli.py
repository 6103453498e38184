"""The ``beacon-sim`` command line: what a beacon transmits, frame by frame."""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final

import eid
from eid import frames
from eid.advertising import advertisement
from firmware_sim import provision_cli, scene_cli
from firmware_sim.config_service import GattError
from firmware_sim.provisioning import ProvisioningError
from firmware_sim.scene import SceneError

if TYPE_CHECKING:
    from collections.abc import Sequence

EXIT_USAGE: Final = 2
EXIT_READER_GONE: Final = 128 + signal.SIGPIPE
"""As a tool killed by SIGPIPE: whoever read the output closed it (``frames | head``)."""
DEFAULT_TX_POWER: Final = -18
"""Calibrated Tx power at 0 m of a typical beacon at 0 dBm radio power (0xEE)."""


def _read_key(path: Path) -> bytes:
    """A 16-byte identity key stored as hex text in a file (keys never go on the command line)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"cannot read identity key file {path}: {exc.__class__.__name__}"
        raise eid.EidError(msg) from None
    try:
        key = bytes.fromhex("".join(text.split()))
    except ValueError:
        key = b""
    if len(key) != 16:  # noqa: PLR2004 - AES-128
        msg = f"identity key file {path} must hold 32 hex digits"
        raise eid.EidError(msg)
    return key


def _hex_bytes(text: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        msg = f"{text!r} is not hex"
        raise argparse.ArgumentTypeError(msg) from None


def _tlm(args: argparse.Namespace) -> frames.TlmFrame:
    return frames.TlmFrame(
        battery_mv=args.battery_mv,
        temperature_c=args.temperature,
        adv_count=args.adv_count,
        uptime_ds=args.uptime_ds,
    )


def _encode(args: argparse.Namespace) -> bytes:
    kind = args.frame
    if kind == "uid":
        return frames.encode(frames.UidFrame(args.tx_power, args.namespace, args.instance))
    if kind == "url":
        return frames.encode(frames.UrlFrame(args.tx_power, args.url))
    if kind == "tlm":
        return frames.encode(_tlm(args))
    key = _read_key(args.identity_key_file)
    if kind == "eid":
        eid8 = eid.compute_eid(key, args.exponent, args.counter)
        return frames.encode(frames.EidFrame(args.tx_power, eid8))
    salt = args.salt if args.salt is not None else secrets.token_bytes(2)
    return eid.encrypt_etlm(key, args.exponent, args.counter, salt, _tlm(args).telemetry)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="beacon-sim", description="Simulated Eddystone beacons: what they transmit."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    encode = commands.add_parser(
        "encode",
        help="print the service data (hex) of one frame",
        description="Print one frame's service data as hex, ready for 'beacon-gateway decode'.",
    )
    encode.add_argument(
        "--advertisement", action="store_true", help="print the whole AD payload instead"
    )
    kinds = encode.add_subparsers(dest="frame", required=True, metavar="FRAME")
    provision_cli.add_parsers(commands)
    scene_cli.add_parsers(commands)

    def with_tx(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--tx-power", type=int, default=DEFAULT_TX_POWER, help="dBm at 0 m")

    def with_time(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--identity-key-file", type=Path, required=True)
        sub.add_argument("--exponent", type=int, required=True, help="rotation exponent K")
        sub.add_argument("--counter", type=int, required=True, help="beacon time counter t")

    def with_telemetry(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--battery-mv", type=int, default=3000)
        sub.add_argument("--temperature", type=float, default=None, help="degC (default: none)")
        sub.add_argument("--adv-count", type=int, default=0)
        sub.add_argument("--uptime-ds", type=int, default=0, help="tenths of a second")

    uid = kinds.add_parser("uid", help="Eddystone-UID")
    with_tx(uid)
    uid.add_argument("--namespace", type=_hex_bytes, required=True, help="10 bytes, hex")
    uid.add_argument("--instance", type=_hex_bytes, required=True, help="6 bytes, hex")
    url = kinds.add_parser("url", help="Eddystone-URL")
    with_tx(url)
    url.add_argument("url")
    with_telemetry(kinds.add_parser("tlm", help="plain telemetry"))
    eid_parser = kinds.add_parser("eid", help="Eddystone-EID")
    with_tx(eid_parser)
    with_time(eid_parser)
    etlm = kinds.add_parser("etlm", help="encrypted telemetry")
    with_time(etlm)
    with_telemetry(etlm)
    etlm.add_argument("--salt", type=_hex_bytes, help="2 bytes, hex (default: random)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit status."""
    try:
        status = _main(argv)
        sys.stdout.flush()  # now, not at exit: a reader gone away is then handled here
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python quiet at exit
        return EXIT_READER_GONE
    return status


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "provision":
            provision_cli.provision(args, sys.stdout)
        elif args.command == "frames":
            provision_cli.frames_over_time(args, sys.stdout)
        elif args.command == "scenes":
            scene_cli.list_scenes(args, sys.stdout)
        elif args.command == "run":
            scene_cli.run_scene(args, sys.stdout, sys.stderr)
        else:
            data = _encode(args)
            print((advertisement(data) if args.advertisement else data).hex())
    except (eid.EidError, GattError, ProvisioningError, SceneError) as exc:
        print(f"beacon-sim: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return 0
