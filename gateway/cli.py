"""The ``beacon-gateway`` command line."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final, TextIO

import eid
from gateway import __version__, config_reference, fleet_cli, keys_cli, sensing_cli
from gateway.decode import Decoder, parse_time
from gateway.demo import command as demo_command
from gateway.errors import ConfigError, GatewayError
from gateway.registry import KeyRegistry
from gateway.sealed_file import find_sealing_key

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

EXIT_OK: Final = 0
EXIT_BAD_INPUT: Final = 1
"""Some input lines could not be decoded (each is reported)."""
EXIT_USAGE: Final = 2
"""The command line, a file or the registry is wrong; nothing was decoded."""
EXIT_READER_GONE: Final = 128 + signal.SIGPIPE
"""As a tool killed by SIGPIPE: whoever read the output closed it (``decode | head``)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="beacon-gateway",
        description="BLE proximity gateway: Eddystone-EID resolution and presence events.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    decode = commands.add_parser(
        "decode",
        help="decode hex advertisements and resolve their EIDs",
        description=(
            "Read advertisements as hex (Eddystone service data or whole AD payloads), one per "
            "line, and print each decoded frame; EID frames are resolved against --registry. "
            "A line may start with @TIME (unix seconds or ISO 8601); a bare @TIME line sets the "
            "time for the lines after it."
        ),
    )
    decode.add_argument(
        "files", nargs="*", type=Path, metavar="FILE", help="input files ('-' or none: stdin)"
    )
    decode.add_argument("--registry", type=Path, help="key registry TOML file for EID resolution")
    decode.add_argument("--at", metavar="TIME", help="time of lines without @TIME (default: now)")
    decode.add_argument(
        "--registry-key-file", type=Path, help="key of an encrypted registry (Fernet)"
    )
    keys_cli.add_parser(commands)
    sensing_cli.add_parsers(commands)
    fleet_cli.add_parser(commands)
    fleet_cli.add_fleet_parser(commands)
    demo_command.add_parser(commands)
    config_reference.add_parser(commands)
    return parser


def _inputs(files: Sequence[Path], stdin: TextIO) -> Iterable[tuple[str, TextIO]]:
    if not files:
        yield "<stdin>", stdin
        return
    for path in files:
        if str(path) == "-":
            yield "<stdin>", stdin
        else:
            with path.open(encoding="utf-8") as handle:
                yield str(path), handle


def _decode(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    registry = (
        KeyRegistry.load(args.registry, sealing_key=find_sealing_key(args.registry_key_file))
        if args.registry is not None
        else None
    )
    default_time = parse_time(args.at) if args.at is not None else time.time()
    decoder = Decoder(registry, default_time)
    status = EXIT_OK
    for name, handle in _inputs(args.files, sys.stdin):
        for number, line in enumerate(handle, start=1):
            decoded = decoder.decode_line(number, line)
            if decoded is None:
                continue
            out.write(f"{name}:{decoded.number}  {decoded.text}\n")
            if not decoded.ok:
                status = EXIT_BAD_INPUT
    if status != EXIT_OK:
        err.write("beacon-gateway decode: some lines could not be decoded (see 'error:' lines)\n")
    return status


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
        if args.command == "demo":
            return demo_command.run(args)
        commands = {
            "keys": keys_cli.run,
            "resolve": fleet_cli.run,
            "fleet": fleet_cli.run_fleet_command,
            "config-reference": config_reference.run,
        }
        if args.command in commands:
            return commands[args.command](args, sys.stdout)
        if args.command != "decode":
            return sensing_cli.run(args, sys.stdout)
        return _decode(args, sys.stdout, sys.stderr)
    except ConfigError as exc:
        print(f"beacon-gateway: invalid {exc}", file=sys.stderr)
    except (GatewayError, eid.EidError) as exc:
        # Refusals with their reason: bad input, a secret file's permissions or key, a registry
        # change, a registration record failing a check. Messages never carry secrets.
        print(f"beacon-gateway: {exc}", file=sys.stderr)
    except BrokenPipeError:
        raise  # the output's reader, not an input: see main
    except OSError as exc:
        print(f"beacon-gateway: cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
    except UnicodeDecodeError:
        print("beacon-gateway: input is not UTF-8 text", file=sys.stderr)
    return EXIT_USAGE
