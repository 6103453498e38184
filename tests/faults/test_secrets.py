"""Secrets never leak: the whole system at debug level, searched for every secret in every encoding.

What is searched for (:mod:`tests.faults.secret_search` lists the encodings):

- every identity key of the scene's beacons (enrolled or not: the simulator draws them), every
  raw EID they transmitted during the run (enumerated from the simulator, which knows what it
  sent), the MQTT password;
- in the key flow: the registry's service private key, the registry (sealing) key, a beacon's
  lock code, the identity key the beacon derived, its initial EID, a shared identity key and the
  EIDs the provisioned beacon shows.

Where: everything the gateway writes while it plays a scene into a real mosquitto with debug
logging (stdout, stderr, every MQTT topic, payload and user property including the retained
status, every ``/metrics`` and ``/healthz`` scrape, the outbox files), the output of
``beacon-sim provision`` and of every ``beacon-gateway keys`` command, the error paths that raise
with text (wrong registry key, corrupted sealed registry, bad values in secret fields, a wrong
lock code, malformed registration records), and the reprs of the objects that hold secrets.

The scene's beacons use the published default lock code (16 zero bytes), which is no secret; a
random lock code is used where provisioning is exercised. A positive control runs the gateway
with ``publish.raw_eids = true``: the raw EIDs are then found in the payloads, so the search
works on real output. TLS verification against a wrong CA is tested with a live broker in
tests/gateway/test_mqtt_publisher.py (``test_certificate_problems_are_clear_tls_errors``); here,
only that it is on by default.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import random
import secrets
import ssl
import stat
import subprocess
import sys
import time
import tomllib
import traceback
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, NamedTuple

import pytest
import structlog
from cryptography.fernet import Fernet

import eid
from eid import frames
from eid.telemetry import EtlmCipher
from firmware_sim.cli import main as sim_main
from firmware_sim.config_service import ConfigurationService, Firmware, GattError
from firmware_sim.provisioning import provision_eid
from firmware_sim.run import prepare
from firmware_sim.scene import load_scene
from gateway.assemble import assemble
from gateway.cli import main as gateway_main
from gateway.config import load_config, parse_config
from gateway.core.identity import EidKey, Identifier
from gateway.daemon_setup import mqtt_settings
from gateway.delivery.mqtt_settings import MqttConfigError, MqttSettings, MqttTls
from gateway.delivery.mqtt_tls import build_ssl_context
from gateway.delivery_config import MqttConfig, TlsConfig
from gateway.errors import ConfigError
from gateway.ops import logs
from gateway.registry import KeyRegistry
from gateway.sealed_file import SealingKey, SecretFileError
from gateway.sources.base import eddystone_sighting
from gateway.sources.sim import SimScene
from tests.faults.secret_search import ENCODINGS, find_leaks, needles, scanned_bytes
from tests.mosquitto import Mosquitto, Subscriber, free_port, wait_until
from tests.saved_logging import saved_logging

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from pathlib import Path

    from firmware_sim.run import SceneRun
    from tests.faults.report import FaultReport
    from tests.mosquitto import Received

RUN_TIMEOUT_S: Final = 120
"""A hung child fails the test after this long; never a timing claim."""
SPEED: Final = 60.0
"""The scene plays 60 times faster than real time: about 4 s, time to scrape the ops endpoints."""
T0: Final = 1_767_225_600  # 2026-01-01T00:00:00Z
TOPICS: Final = "beacon-gateway/v1/secrets/secrets-sim"
AUDITOR: Final = ("auditor", "auditor-password")
"""The subscriber's own account on the broker (not a secret of the gateway)."""

SCENE: Final = """
name = "secrets"
duration_s = 240
seed = 7
[[zones]]
id = "left"
rect = [0.0, 0.0, 8.0, 8.0]
[[zones]]
id = "right"
rect = [8.0, 0.0, 16.0, 8.0]
[[gateways]]
id = "gw-left"
position = [4.0, 4.0]
zone = "left"
[[gateways]]
id = "gw-right"
position = [12.0, 4.0]
zone = "right"
[[flows]]                      # EIDs every 16 s; some beacons are not enrolled (unknown EIDs)
id = "bag"
arrivals_per_minute = 2.0
initial = 3
enrolled = 0.7
rotation_exponent = 4
[[flows.steps]]
zones = ["left"]
dwell_s = [40.0, 60.0]
[[flows.steps]]
zones = ["right"]
dwell_s = [40.0, 60.0]
[[flows]]                      # firmware quirks: 18-byte EID frames, 19-byte eTLM frames
id = "quirky"
arrivals_per_minute = 1.0
initial = 1
rotation_exponent = 5
eid_frame_18_bytes = true
etlm_19_bytes = true
[[flows.steps]]
zones = ["right"]
dwell_s = [60.0, 90.0]
"""


def _clean_environ(**extra: str) -> dict[str, str]:
    """This process's environment without any gateway setting or secret, plus ``extra``."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.upper().startswith("BEACON_GATEWAY") and name != "CREDENTIALS_DIRECTORY"
    }
    return {**inherited, **extra}


def _owner_only_file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    path.chmod(0o600)
    return path


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --------------------------------------------------------------------------- the scene's secrets


@dataclass(frozen=True, slots=True)
class SceneSecrets:
    """A scene file and what its beacons hold and send."""

    path: Path
    identity_keys: dict[str, bytes]
    """Every EID beacon's identity key, by subject (enrolled or not)."""
    enrolled: frozenset[str]
    raw_eids: dict[bytes, str]
    """Every EID any beacon transmitted during the scene, with its subject."""

    def secrets(self) -> dict[str, bytes]:
        """Names and values, for :func:`find_leaks`."""
        found = {f"identity key of {sid}": key for sid, key in self.identity_keys.items()}
        found.update(
            {f"raw EID #{n} of {sid}": eid8 for n, (eid8, sid) in enumerate(self.raw_eids.items())}
        )
        return found


def _transmitted_eids(run: SceneRun) -> dict[bytes, str]:
    """Every EID each beacon sends from arrival to departure (heard by a gateway or not)."""
    sent: dict[bytes, str] = {}
    for subject in run.subjects:
        beacon = run.beacons[subject.id]
        for advert in beacon.adverts(min(subject.leave, run.end)):
            frame = frames.parse(advert.service_data)
            if isinstance(frame, frames.EidFrame):
                sent.setdefault(frame.eid, subject.id)
    return sent


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> SceneSecrets:
    path = tmp_path_factory.mktemp("scene") / "secrets.toml"
    path.write_text(SCENE, encoding="utf-8")
    run = prepare(load_scene(path))
    keys = {
        sid: slot.eid.identity_key
        for sid, beacon in run.beacons.items()
        for slot in beacon.firmware.slots
        if slot.eid is not None
    }
    return SceneSecrets(
        path=path,
        identity_keys=keys,
        enrolled=frozenset(run.keys),
        raw_eids=_transmitted_eids(prepare(load_scene(path))),  # a fresh run: adverts consume it
    )


# --------------------------------------------------------------------------- find_leaks itself

SAMPLE: Final = bytes.fromhex("fbffbf27225c0a41428f00fefbefbefa")
"""A secret with hex letters, quotes, a backslash, a newline and base64 '+' and '/' in it."""
OTHER: Final = bytes.fromhex("0123456789abcdef0123456789abcdef")

ENCODERS: Final[dict[str, Callable[[bytes], str]]] = {
    "hex": lambda s: "key=" + (b"\x01" + s + b"\x02").hex(),
    "HEX": lambda s: f"KEY={s.hex().upper()}!",
    "hex:": lambda s: (b"\x01" + s).hex(":"),
    "HEX:": lambda s: (s + b"\x01").hex(":").upper(),
    "hex ": lambda s: (b"\x01" + s).hex(" "),
    "HEX ": lambda s: s.hex(" ").upper(),
    "base64": lambda s: base64.b64encode(b"ab" + s + b"c").decode(),
    "base64url": lambda s: base64.urlsafe_b64encode(b"a" + s).decode().rstrip("="),
    "bytes repr": lambda s: repr(("key", b"pre" + s)),
    "bytes repr (JSON-escaped)": lambda s: json.dumps({"event": repr(s)}),
    "decimal list": lambda s: str(list(b"\x07" + s)),
    "int": lambda s: f"n={int.from_bytes(s, 'big')};",
    "raw": lambda s: "pre " + (b"\x00" + s).decode("latin-1") + " post",
}


def test_the_sample_secret_exercises_every_encoding() -> None:
    assert set(ENCODERS) == set(ENCODINGS)
    middles = [n for n, e in needles(SAMPLE).items() if e == "base64"]
    assert len(middles) == 3
    assert all("+" in m or "/" in m for m in middles)  # so base64url differs at every alignment
    assert SAMPLE.hex() != SAMPLE.hex().upper()


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_find_leaks_catches_each_encoding(encoding: str) -> None:
    text = ENCODERS[encoding](SAMPLE)
    leaks = find_leaks({"sample": text}, {"the secret": SAMPLE, "another": OTHER})
    assert leaks, f"{encoding} not found in {text!r}"
    assert {leak.split(" in sample")[0] for leak in leaks} == {f"the secret as {encoding}"}
    # Without the secret in it, the same encoding of another value is no leak.
    assert find_leaks({"sample": ENCODERS[encoding](OTHER)}, {"the secret": SAMPLE}) == []


@pytest.mark.parametrize("urlsafe", [False, True])
def test_base64_is_found_at_every_alignment_padded_or_not(urlsafe: bool) -> None:
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    found = 0
    for before in range(3):
        for after in range(3):
            data = bytes(range(1, before + 1)) + SAMPLE + bytes(range(9, 9 + after))
            padded = encode(data).decode()
            for text in (padded, padded.rstrip("=")):
                leaks = find_leaks({"text": f"<{text}>"}, {"s": SAMPLE})
                assert leaks, (before, after, text)
                found += 1
    assert found == 18


def test_find_leaks_reports_nothing_in_clean_text() -> None:
    clean = {
        "log": json.dumps({"event": "x", "key": OTHER.hex(), "b": repr(OTHER)}),
        "b64": base64.b64encode(OTHER * 3).decode(),
        "empty": "",
    }
    assert find_leaks(clean, {"sample": SAMPLE}) == []


# --------------------------------------------------------------------------- the full system


class AuthSubscriber(Subscriber):
    """The test subscriber, logging in to a broker that refuses anonymous clients."""

    def __init__(self, port: int, topics: list[str], account: tuple[str, str]) -> None:
        super().__init__(port, topics)
        self._client.username_pw_set(*account)


@dataclass(slots=True)
class GatewayRun:
    """What one ``beacon-gateway run`` produced, as text."""

    returncode: int
    stdout: str
    stderr: str
    scrapes: dict[str, list[str]] = field(default_factory=dict)
    modes: dict[str, set[int]] = field(default_factory=dict)


def _scrape(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:  # noqa: S310 - http on loopback
            return bytes(reply.read()).decode("latin-1")
    except OSError:
        return None  # not listening yet, or already gone


def _note_modes(run: GatewayRun, outbox: Path) -> None:
    files = [outbox.with_name(outbox.name + suffix) for suffix in ("", "-wal", "-shm", ".lock")]
    for path in (outbox.parent, *files):
        with contextlib.suppress(FileNotFoundError):
            run.modes.setdefault(path.name, set()).add(_mode(path))


def _run_gateway(
    scene: Path, environ: dict[str, str], *extra: str, outbox: Path, http_port: int | None
) -> GatewayRun:
    """Run the gateway as a child (umask 0: the code alone decides file modes)."""
    logs_dir = outbox.parent.parent
    out_path, err_path = (
        logs_dir / f"{outbox.parent.name}.out",
        logs_dir / f"{outbox.parent.name}.err",
    )
    command = [sys.executable, "-m", "gateway", "run", "--scene", str(scene), *extra]
    with out_path.open("wb") as out, err_path.open("wb") as err:
        child = subprocess.Popen(command, env=environ, stdout=out, stderr=err, umask=0)
        run = GatewayRun(0, "", "", {"/metrics": [], "/healthz": []})
        try:
            deadline = time.monotonic() + RUN_TIMEOUT_S
            while child.poll() is None and time.monotonic() < deadline:
                _note_modes(run, outbox)
                if http_port is not None:
                    for path, scraped in run.scrapes.items():
                        text = _scrape(f"http://127.0.0.1:{http_port}{path}")
                        if text is not None:
                            scraped.append(text)
                time.sleep(0.05)
            run.returncode = child.wait(timeout=5)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    run.stdout = out_path.read_bytes().decode("latin-1")
    run.stderr = err_path.read_bytes().decode("latin-1")
    return run


def _gateway_environ(
    broker: Mosquitto, outbox: Path, http_port: int | None, **extra: str
) -> dict[str, str]:
    return _clean_environ(
        BEACON_GATEWAY__MQTT__HOST="127.0.0.1",
        BEACON_GATEWAY__MQTT__PORT=str(broker.port),
        BEACON_GATEWAY__OUTBOX__PATH=str(outbox),
        BEACON_GATEWAY__HTTP__ENABLED="true" if http_port is not None else "false",
        BEACON_GATEWAY__HTTP__PORT=str(http_port or 0),
        BEACON_GATEWAY__LOGGING__LEVEL="debug",
        BEACON_GATEWAY__LOGGING__FORMAT="json",
        BEACON_GATEWAY__PUBLISH__TELEMETRY_INTERVAL_S="20",
        **extra,
    )


def _message_text(message: Received) -> str:
    properties = "".join(f"\n{k}={v}" for k, v in message.user_properties.items())
    return f"{message.topic}{properties}\n{message.payload.decode('latin-1')}"


def _offline(messages: list[Received]) -> bool:
    status = [m for m in messages if m.topic.endswith("/status")]
    return bool(status) and json.loads(status[-1].payload)["status"] == "offline"


def test_a_full_run_at_debug_level_leaks_no_secret(
    scene: SceneSecrets, tmp_path: Path, fault_report: FaultReport
) -> None:
    password = "pw-" + secrets.token_urlsafe(18)
    password_file = _owner_only_file(tmp_path / "mqtt-password", password.encode())
    outbox = tmp_path / "state" / "outbox.sqlite3"  # the gateway makes the directory
    http_port = free_port()
    with (
        Mosquitto(users={"gateway": password, AUDITOR[0]: AUDITOR[1]}) as broker,
        AuthSubscriber(broker.port, ["#"], AUDITOR) as subscriber,
    ):
        environ = _gateway_environ(
            broker,
            outbox,
            http_port,
            BEACON_GATEWAY__MQTT__USERNAME="gateway",
            BEACON_GATEWAY__MQTT__PASSWORD_FILE=str(password_file),
        )
        run = _run_gateway(
            scene.path,
            environ,
            "--realtime",
            "--speed",
            str(SPEED),
            outbox=outbox,
            http_port=http_port,
        )
        assert run.returncode == 0, run.stderr[-4000:]
        wait_until(lambda: _offline(subscriber.messages()), "the retained offline status")
        received = subscriber.messages()
        # A late subscriber gets what the broker retained.
        with AuthSubscriber(broker.port, ["#"], AUDITOR) as late:
            wait_until(lambda: bool(late.messages()), "the retained status")
            retained = late.messages()
        outbox_files = {p.name: p.read_bytes().decode("latin-1") for p in outbox.parent.iterdir()}

    # The run did what it should: events of every kind, eTLM decrypted, status, scrapes.
    kinds = {json.loads(m.payload).get("type") for m in received if "/status" not in m.topic}
    assert {"enter", "exit", "telemetry"} <= kinds
    assert any(json.loads(m.payload).get("encrypted") for m in received if "/telemetry/" in m.topic)
    assert retained
    assert all(m.retain and m.topic == f"{TOPICS}/status" for m in retained)
    assert run.scrapes["/metrics"]
    assert run.scrapes["/healthz"]
    assert '"level": "debug"' in run.stderr  # debug logging was on
    # File modes, as the gateway made them under umask 0.
    assert run.modes.pop("state") == {0o700}
    assert {"outbox.sqlite3", "outbox.sqlite3-wal", "outbox.sqlite3-shm"} <= set(run.modes)
    assert all(modes == {0o600} for modes in run.modes.values()), run.modes

    texts = {"gateway stdout": run.stdout, "gateway stderr": run.stderr}
    for path, scraped in run.scrapes.items():
        texts.update({f"{path} scrape {i}": text for i, text in enumerate(scraped)})
    texts.update({f"mqtt message {i}": _message_text(m) for i, m in enumerate(received)})
    texts.update({f"retained {i}": _message_text(m) for i, m in enumerate(retained)})
    texts.update({f"outbox file {name}": data for name, data in outbox_files.items()})
    searched = {**scene.secrets(), "MQTT password": password.encode()}
    leaks = find_leaks(texts, searched)
    fault_report.record(
        "secrets",
        "full run at debug level (scene, real mosquitto with a password, ops scrapes, outbox)",
        texts_scanned=len(texts),
        bytes_scanned=scanned_bytes(texts),
        secrets_searched=len(searched),
        identity_keys=len(scene.identity_keys),
        enrolled=len(scene.enrolled),
        raw_eids=len(scene.raw_eids),
        mqtt_messages=len(received) + len(retained),
        scrapes=sum(len(s) for s in run.scrapes.values()),
        encodings=len(ENCODINGS),
        leaks=len(leaks),
    )
    assert leaks == []


def test_raw_eids_are_published_when_asked_positive_control(
    scene: SceneSecrets, tmp_path: Path, fault_report: FaultReport
) -> None:
    outbox = tmp_path / "state" / "outbox.sqlite3"
    with Mosquitto() as broker, Subscriber(broker.port, ["#"]) as subscriber:
        environ = _gateway_environ(broker, outbox, None, BEACON_GATEWAY__PUBLISH__RAW_EIDS="true")
        run = _run_gateway(scene.path, environ, outbox=outbox, http_port=None)
        assert run.returncode == 0, run.stderr[-4000:]
        wait_until(lambda: _offline(subscriber.messages()), "the retained offline status")
        received = subscriber.messages()
    payloads = {f"payload {i}": m.payload.decode("latin-1") for i, m in enumerate(received)}
    published = {
        bytes.fromhex(str(event["raw_eid"]))
        for event in map(json.loads, payloads.values())
        if event.get("raw_eid")
    }
    # Every EID the gateway published is one the simulator says it sent.
    assert published
    assert published <= set(scene.raw_eids)
    leaks = find_leaks(payloads, scene.secrets())
    found = {leak.split(" as ")[0] for leak in leaks}
    fault_report.record(
        "secrets",
        "positive control: publish.raw_eids = true puts raw EIDs in payloads",
        texts_scanned=len(payloads),
        bytes_scanned=scanned_bytes(payloads),
        raw_eids_published=len(published),
        raw_eids_found_by_search=sum(1 for name in found if name.startswith("raw EID")),
        identity_keys_found=sum(1 for name in found if name.startswith("identity key")),
    )
    assert all(" as hex in payload " in leak for leak in leaks)
    assert sum(1 for name in found if name.startswith("raw EID")) == len(published)
    assert not any(name.startswith("identity key") for name in found)


# --------------------------------------------------------------------------- the command lines


@contextlib.contextmanager
def _environment(environ: Mapping[str, str]) -> Iterator[None]:
    """This process's environment replaced by ``environ`` for a while."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


class Refusal(NamedTuple):
    """A command that must be refused (exit 2) with ``expected`` in what it prints."""

    tool: str
    argv: tuple[object, ...]
    expected: str
    environ: dict[str, str] = {}  # noqa: RUF012 - never mutated


@dataclass(slots=True)
class Transcript:
    """Runs the command lines and keeps what they print.

    As child processes with umask 0 (:meth:`run`: file modes are the code's alone), or in this
    process (:meth:`call`: ``main()`` prints exactly what the command prints) for refusals.
    """

    environ: dict[str, str]
    texts: dict[str, str] = field(default_factory=dict)
    commands: int = 0

    def run(
        self,
        tool: str,
        *argv: object,
        expect: int = 0,
        keep_stdout: bool = True,
        environ: Mapping[str, str] | None = None,
    ) -> tuple[str, str]:
        """Run ``python -m tool argv``; check its exit status; return its stdout and stderr.

        ``keep_stdout=False``: the output is not kept for the search (it holds a secret by
        design, as ``beacon-sim frames`` prints EIDs); its stderr is.
        """
        words = [str(arg) for arg in argv]
        done = subprocess.run(
            [sys.executable, "-m", tool, *words],
            env={**self.environ, **(environ or {})},
            capture_output=True,
            timeout=RUN_TIMEOUT_S,
            umask=0,
            check=False,
        )
        out, err = done.stdout.decode("latin-1"), done.stderr.decode("latin-1")
        assert done.returncode == expect, f"{tool} {words}: exit {done.returncode}\n{err}"
        self._keep(tool, words, out if keep_stdout else None, err)
        return out, err

    def call(
        self, tool: str, *argv: object, expect: int, environ: Mapping[str, str] | None = None
    ) -> tuple[str, str]:
        """Run the command line in this process (quicker: for refusals, which write nothing)."""
        words = [str(arg) for arg in argv]
        out, err = io.StringIO(), io.StringIO()
        with (
            _environment({**self.environ, **(environ or {})}),
            saved_logging(),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            status = (gateway_main if tool == "gateway" else sim_main)(words)
        assert status == expect, f"{tool} {words}: exit {status}\n{err.getvalue()}"
        self._keep(tool, words, out.getvalue(), err.getvalue())
        return out.getvalue(), err.getvalue()

    def _keep(self, tool: str, words: list[str], out: str | None, err: str) -> None:
        self.commands += 1
        name = f"{tool} {' '.join(words[:2])} #{self.commands}"
        if out is not None:
            self.texts[f"{name} stdout"] = out
        self.texts[f"{name} stderr"] = err

    def gateway(
        self, *argv: object, expect: int = 0, environ: Mapping[str, str] | None = None
    ) -> str:
        """``beacon-gateway argv``; its stdout."""
        return self.run("gateway", *argv, expect=expect, environ=environ)[0]

    def sim(self, *argv: object, keep_stdout: bool = True) -> str:
        """``beacon-sim argv``; its stdout."""
        return self.run("firmware_sim", *argv, keep_stdout=keep_stdout)[0]


def _service_private_key(registry: KeyRegistry) -> bytes:
    """A registry's service private key (the only public way to it: the file's text)."""
    return bytes.fromhex(tomllib.loads(registry.to_toml())["service"]["private_key"])


def test_key_and_provisioning_commands_leak_no_secret(  # noqa: PLR0915 - one flow, many steps
    tmp_path: Path, scene: SceneSecrets, fault_report: FaultReport
) -> None:
    tx = Transcript(_clean_environ(BEACON_GATEWAY__LOGGING__LEVEL="debug"))
    # keys new-registry-key prints the key: its output is the secret, by design.
    registry_key = tx.gateway("keys", "new-registry-key").strip().encode()
    tx.texts.clear()
    key_file = _owner_only_file(tmp_path / "registry.key", registry_key)
    other_key = Fernet.generate_key()
    other_key_file = _owner_only_file(tmp_path / "other.key", other_key)
    sealing = SealingKey(registry_key, "test")
    registry = tmp_path / "registry.toml"
    modes: dict[str, int] = {}

    out = tx.gateway("keys", "init", registry, "--registry-key-file", key_file)
    modes["keys init"] = _mode(registry)
    assert registry.read_bytes().startswith(b"beacon-gateway-sealed: fernet\n")
    service_private = _service_private_key(KeyRegistry.load(registry, sealing_key=sealing))
    service_public = eid.public_key(service_private)
    assert service_public.hex() in out

    lock_code = secrets.token_bytes(16)
    lock_file = _owner_only_file(tmp_path / "lock.hex", lock_code.hex().encode())
    record, beacon = tmp_path / "record.json", tmp_path / "beacon.json"
    tx.sim(
        "provision", "--service-public-key", service_public.hex(), "--beacon-id", "bag-7",
        "--exponent", "4", "--lock-code-file", lock_file, "--at", T0, "--seed", "5",
        "--record-out", record, "--beacon-out", beacon,
    )  # fmt: skip
    modes["provision --record-out"] = _mode(record)
    modes["provision --beacon-out"] = _mode(beacon)
    derived_key = bytes.fromhex(json.loads(beacon.read_text())["identity_key"])
    record_json = json.loads(record.read_text())
    initial_eid = bytes.fromhex(record_json["initial_eid"])

    tx.gateway("keys", "register", registry, "--record", record, "--registry-key-file", key_file)
    modes["keys register"] = _mode(registry)
    shared_key = secrets.token_bytes(16)
    shared_file = _owner_only_file(tmp_path / "shared.hex", shared_key.hex().encode())
    tx.gateway(
        "keys", "add", registry, "--id", "tag-1", "--identity-key-file", shared_file,
        "--exponent", "5", "--initial-clock", "5000", "--registered-at", T0,
        "--registry-key-file", key_file,
    )  # fmt: skip
    modes["keys add"] = _mode(registry)
    from_environment = {"BEACON_GATEWAY_REGISTRY_KEY": registry_key.decode()}
    listed = tx.gateway("keys", "list", registry, environ=from_environment)
    assert "bag-7" in listed
    assert "tag-1" in listed

    # What the provisioned beacon shows: printing EIDs is beacon-sim frames' job.
    shown_at = T0 + 600
    shown = tx.sim(
        "frames", "--beacon", beacon, "--from", shown_at, "--count", "4", "--every", "16",
        keep_stdout=False,
    )  # fmt: skip
    frames_output = {"beacon-sim frames stdout": shown}
    eids = [frames.parse(bytes.fromhex(line.split()[1])) for line in shown.splitlines()]
    shown_eids = [frame.eid for frame in eids if isinstance(frame, frames.EidFrame)]
    assert len(shown_eids) == 4
    frames_file = tmp_path / "frames.txt"
    frames_file.write_text(shown)

    with_key = ("--registry-key-file", key_file)
    resolved = tx.gateway(
        "keys", "resolve", registry, shown_eids[0].hex(), "--at", shown_at, *with_key
    )
    assert resolved.startswith("bag-7:")
    stale = tx.gateway(
        "keys",
        "resolve",
        registry,
        shown_eids[0].hex(),
        "--at",
        shown_at + 3600,
        *with_key,
        expect=1,
    )
    assert "stale: an EID of bag-7" in stale
    tx.gateway(
        "keys", "resolve", registry, secrets.token_hex(8), "--at", shown_at, *with_key, expect=1
    )
    decoded = tx.gateway("decode", frames_file, "--registry", registry, *with_key)
    assert decoded.count("-> beacon bag-7") == 4
    tx.gateway("keys", "service-key", registry, *with_key)
    tx.gateway("keys", "remove", registry, "tag-1", *with_key)
    modes["keys remove"] = _mode(registry)
    password = "pw-" + secrets.token_urlsafe(18)
    password_file = _owner_only_file(tmp_path / "mqtt-password", password.encode())
    site = tmp_path / "site.toml"
    site_text = (
        'site = "s"\ngateway_id = "g"\nkey_registry = "registry.toml"\n'
        '[[gateways]]\nid = "gw"\n[mqtt]\nhost = "127.0.0.1"\nusername = "gateway"\n'
    )
    site.write_text(site_text + f'password_file = "{password_file.name}"\n')
    tx.gateway("check-config", site, *with_key)

    # ---- error paths: each is refused (exit 2) with its reason --------------------------------
    not_a_key = _owner_only_file(tmp_path / "not-a-key", shared_key.hex().encode())
    sealed = bytearray(registry.read_bytes())
    sealed[len(sealed) // 2] ^= 0x01
    corrupted = _owner_only_file(tmp_path / "corrupted.toml", bytes(sealed))
    truncated = _owner_only_file(tmp_path / "truncated.toml", bytes(sealed[: len(sealed) // 2]))
    bad_fields = _owner_only_file(
        tmp_path / "bad-fields.toml",
        (
            f'version = 1\n[service]\nprivate_key = "{service_private.hex()[:-1]}"\n'
            f'privat_key = "{service_private.hex()}"\n'
            f'[[beacons]]\nid = "a"\nidentity_key = "{shared_key.hex()}0"\n'
            f'identity_keys = "{derived_key.hex()}"\nrotation_exponent = 16\nclock_offset = 0\n'
            f'initial_eid = "{initial_eid.hex()}zz"\n'
        ).encode(),
    )
    bad_shapes = _owner_only_file(
        tmp_path / "bad-shapes.toml",
        (
            f'version = 1\nservice = "{service_private.hex()}"\n'
            f'beacons = ["{shared_key.hex()}", {list(derived_key)}]\n'
        ).encode(),
    )
    beacon_entry = f'identity_key = "{shared_key.hex()}"\nrotation_exponent = 4\nclock_offset = 0\n'
    duplicate = _owner_only_file(
        tmp_path / "duplicate.toml",
        f'version = 1\n[[beacons]]\nid = "b1"\n{beacon_entry}[[beacons]]\nid = "b2"\n{beacon_entry}'
        .encode(),
    )  # fmt: skip
    no_registry = site_text.replace("key_registry", "# key_registry")
    with_password = tmp_path / "with-password.toml"
    with_password.write_text(no_registry + f'password = "{password}"\n')
    not_utf8 = _owner_only_file(tmp_path / "latin1-password", password.encode() + b"\xff")
    bad_password_site = tmp_path / "bad-password.toml"
    bad_password_site.write_text(no_registry + f'password_file = "{not_utf8.name}"\n')
    long_key = _owner_only_file(tmp_path / "long.hex", (shared_key.hex() + "0").encode())
    short_lock = _owner_only_file(tmp_path / "short-lock.hex", lock_code.hex()[:-1].encode())
    broken_beacon = tmp_path / "broken-beacon.json"
    broken_beacon.write_text(json.dumps({"identity_key": derived_key.hex() + "0", "exponent": 4}))
    other_public = eid.public_key(secrets.token_bytes(32))
    malformed = {
        "does not match": {**record_json, "initial_eid": shown_eids[2].hex()},  # another period
        "unknown fields identity_key": {**record_json, "identity_key": derived_key.hex()},
        "initial_eid must be": {**record_json, "initial_eid": initial_eid.hex() + "zz"},
        "initial_eid must be 16": {**record_json, "initial_eid": list(initial_eid)},
        "not this resolver's": {**record_json, "service_public_key": other_public.hex()},
        "does not match the EID": {  # base64, as the Proximity Beacon API writes it
            **record_json,
            "initial_eid": base64.b64encode(shown_eids[3]).decode(),
            "beacon_id": "bag-8",
        },
    }
    records = []
    for number, (expected, document) in enumerate(malformed.items()):
        path = tmp_path / f"record-{number}.json"
        path.write_text(json.dumps(document))
        argv = ("keys", "register", registry, "--record", path, *with_key)
        records.append(Refusal("gateway", argv, expected))
    not_json = tmp_path / "not-json.json"
    not_json.write_text(f"{service_private.hex()} {{")
    refusals = [
        Refusal(
            "gateway",
            ("keys", "list", registry, "--registry-key-file", other_key_file),
            "does not decrypt",
        ),
        Refusal(
            "gateway",
            ("keys", "list", registry, "--registry-key-file", not_a_key),
            "not a Fernet key",
        ),
        Refusal(
            "gateway", ("keys", "list", corrupted, *with_key), "wrong key, or the file was altered"
        ),
        Refusal(
            "gateway", ("keys", "list", truncated, *with_key), "wrong key, or the file was altered"
        ),
        Refusal("gateway", ("keys", "list", bad_fields), "6 problem(s)"),
        Refusal("gateway", ("keys", "list", bad_shapes), "problem(s)"),
        Refusal("gateway", ("keys", "list", duplicate), "same identity key"),
        Refusal("gateway", ("check-config", with_password), "mqtt.password"),
        Refusal(
            "gateway",
            ("check-config", site, *with_key),
            "BEACON_GATEWAY__MQTT__PASSWORD",
            {"BEACON_GATEWAY__MQTT__PASSWORD": password},
        ),
        Refusal(
            "gateway", ("run", "--scene", scene.path, "--config", bad_password_site), "not UTF-8"
        ),
        Refusal(
            "gateway",
            (
                "keys",
                "add",
                registry,
                "--id",
                "x",
                "--identity-key-file",
                long_key,
                "--exponent",
                "4",
                "--clock-offset",
                "0",
                *with_key,
            ),
            "identity key must be",
        ),
        Refusal(
            "gateway",
            (
                "keys",
                "add",
                registry,
                "--id",
                "y",
                "--identity-key-file",
                shared_file,
                "--exponent",
                "5",
                "--initial-clock",
                "5000",
                "--registered-at",
                T0,
                "--initial-eid",
                shown_eids[1].hex(),
                *with_key,
            ),
            "does not match",
        ),
        *records,
        Refusal(
            "gateway", ("keys", "register", registry, "--record", not_json, *with_key), "not a JSON"
        ),
        Refusal(
            "firmware_sim",
            (
                "provision",
                "--service-public-key",
                service_public.hex(),
                "--beacon-id",
                "bag-9",
                "--lock-code-file",
                short_lock,
                "--record-out",
                tmp_path / "r9.json",
                "--beacon-out",
                tmp_path / "b9.json",
            ),
            "lock code must be",
        ),
        Refusal("firmware_sim", ("frames", "--beacon", broken_beacon), "not a beacon file"),
        Refusal(
            "firmware_sim",
            ("encode", "eid", "--identity-key-file", long_key, "--exponent", "4", "--counter", "0"),
            "must hold 32 hex digits",
        ),
    ]
    refused = [tx.call(r.tool, *r.argv, expect=2, environ=r.environ) for r in refusals]
    for refusal, (_, err) in zip(refusals, refused, strict=True):
        assert refusal.expected in err, (refusal.argv, err)
        if bad_fields in refusal.argv:
            assert "(got 16)" in err  # harmless values are still shown

    # The sealed registry at rest holds no key in any encoding either.
    texts = {**tx.texts, "sealed registry file": registry.read_bytes().decode("latin-1")}
    searched = {
        "registry key": registry_key,
        "registry key (decoded)": base64.urlsafe_b64decode(registry_key),
        "other registry key": other_key,
        "other registry key (decoded)": base64.urlsafe_b64decode(other_key),
        "service private key": service_private,
        "lock code": lock_code,
        "lock code (first 15 bytes)": lock_code[:15],
        "derived identity key": derived_key,
        "shared identity key": shared_key,
        "initial EID": initial_eid,
        "MQTT password": password.encode(),
        **{f"shown EID {i}": value for i, value in enumerate(shown_eids)},
    }
    leaks = find_leaks(texts, searched)
    not_eids = {k: v for k, v in searched.items() if not k.startswith(("shown EID", "initial EID"))}
    leaks += find_leaks(frames_output, not_eids)
    fault_report.record(
        "secrets",
        "keys init/register/add/list/resolve/remove, beacon-sim provision/frames, decode, "
        "check-config and their error paths (debug logging)",
        commands=tx.commands,
        refusals=len(refusals),
        texts_scanned=len(texts) + len(frames_output),
        bytes_scanned=scanned_bytes(texts) + scanned_bytes(frames_output),
        secrets_searched=len(searched),
        encodings=len(ENCODINGS),
        leaks=len(leaks),
    )
    assert leaks == []
    assert modes == dict.fromkeys(modes, 0o600), modes


# --------------------------------------------------------------------------- objects and errors


@contextlib.contextmanager
def _logging_to(stream: io.StringIO, fmt: logs.Format) -> Iterator[structlog.stdlib.BoundLogger]:
    """The gateway's logging set up to write into ``stream`` for a while."""
    with saved_logging():
        logs.configure("debug", fmt, stream)
        yield structlog.get_logger("tests.secrets")


def _raise_with_key_in_a_frame(identity_key: bytes) -> None:
    cipher = EtlmCipher(identity_key)  # locals holding the key, as a resolver frame would
    msg = f"failed with {cipher!r}"
    raise RuntimeError(msg)


def _texts_of(name: str, thing: object) -> dict[str, str]:
    return {f"repr({name})": repr(thing), f"str({name})": str(thing)}


def _exception_texts(name: str, exc: BaseException) -> dict[str, str]:
    return {
        f"str({name})": str(exc),
        f"repr({name})": repr(exc),
        f"traceback({name})": "".join(traceback.format_exception(exc)),
    }


def test_reprs_errors_and_log_lines_of_secret_holders_leak_no_secret(  # noqa: PLR0915
    tmp_path: Path, scene: SceneSecrets, fault_report: FaultReport
) -> None:
    texts: dict[str, str] = {}
    rng = random.Random(11)
    lock_code, wrong_lock = rng.randbytes(16), rng.randbytes(16)
    registry = KeyRegistry.create()
    service_private = _service_private_key(registry)
    service_public = registry.service_public_key
    assert service_public is not None

    # Provisioning in-process: the GATT service, its firmware, the record; then a wrong lock code.
    firmware = Firmware(lock_code=lock_code)
    service = ConfigurationService(firmware, rng)
    record = provision_eid(
        service, beacon_id="bag-7", lock_code=lock_code, service_public_key=service_public,
        exponent=4, now=float(T0),
    )  # fmt: skip
    state = firmware.slots[0].eid
    assert state is not None
    derived_key = state.identity_key
    key = registry.register_ecdh(
        "bag-7", beacon_public_key=record.beacon_public_key, rotation_exponent=4,
        initial_clock=record.initial_clock, initial_eid=record.initial_eid, registered_at=T0,
    )  # fmt: skip
    for name, thing in {
        "Firmware": firmware, "ConfigurationService": service, "Slot list": firmware.slots,
        "EidState": state, "RegistrationRecord": record, "KeyRegistry": registry,
        "BeaconKey": key, "resolver": registry.resolver(), "EidKey": EidKey(derived_key, 4),
        "EidGenerator": eid.EidGenerator(derived_key), "EtlmCipher": EtlmCipher(derived_key),
        "RegisteredBeacon": eid.register_identity_key(
            identity_key=derived_key, exponent=4, initial_clock=record.initial_clock,
            registered_at=T0,
        ),
    }.items():  # fmt: skip
        texts.update(_texts_of(name, thing))
    locked = Firmware(lock_code=lock_code)
    with pytest.raises(GattError) as wrong:
        provision_eid(
            ConfigurationService(locked, rng), beacon_id="bag-8", lock_code=wrong_lock,
            service_public_key=service_public, exponent=4, now=float(T0),
        )  # fmt: skip
    texts.update(_exception_texts("wrong lock code", wrong.value))
    texts.update(_texts_of("locked Firmware", locked))
    with pytest.raises(eid.RegistrationError) as mismatch:
        registry.register_ecdh(
            "bag-9", beacon_public_key=record.beacon_public_key, rotation_exponent=4,
            initial_clock=record.initial_clock + 16, initial_eid=record.initial_eid,
            registered_at=T0,
        )  # fmt: skip
    texts.update(_exception_texts("registration mismatch", mismatch.value))

    # The registry sealed, loaded back with the right key, and refused with a wrong one.
    sealing = SealingKey(Fernet.generate_key(), "test")
    path = tmp_path / "registry.toml"
    registry.save(path, sealing_key=sealing)
    loaded = KeyRegistry.load(path, sealing_key=sealing)
    texts.update(_texts_of("SealingKey", sealing))
    texts.update(_texts_of("loaded KeyRegistry", loaded))
    texts.update(_texts_of("loaded BeaconKey list", list(loaded)))
    wrong_key = SealingKey(Fernet.generate_key(), "wrong")
    with pytest.raises(SecretFileError) as refused:
        KeyRegistry.load(path, sealing_key=wrong_key)
    texts.update(_exception_texts("wrong registry key", refused.value))
    with pytest.raises(ConfigError) as bad:
        KeyRegistry.from_document(
            {
                "version": 1,
                "service": service_private.hex(),
                "beacons": [
                    {
                        "id": "x",
                        "identity_key": list(derived_key),
                        "identity_keys": derived_key.hex(),
                    }
                ],
            }
        )
    texts.update(_exception_texts("bad registry", bad.value))

    # The configuration with a password file, the MQTT settings, the publisher's TLS settings.
    password = "pw-" + secrets.token_urlsafe(18)
    _owner_only_file(tmp_path / "mqtt-password", password.encode())
    site = tmp_path / "site.toml"
    site.write_text(
        'site = "s"\ngateway_id = "g"\n[[gateways]]\nid = "gw-left"\n'
        '[mqtt]\nhost = "127.0.0.1"\nusername = "gateway"\npassword_file = "mqtt-password"\n'
    )
    config = load_config(site, {})
    settings = mqtt_settings(config, str(site))
    assert settings.password == password
    texts.update(_texts_of("Config", config))
    texts.update(_texts_of("MqttConfig", config.mqtt))
    texts["Config JSON"] = config.model_dump_json()
    texts.update(_texts_of("MqttSettings", settings))
    texts.update(_texts_of("MqttTls", MqttTls(insecure=True)))
    with pytest.raises(MqttConfigError) as no_user:
        MqttSettings(host="h", client_id="c", status_topic="s", password=password)
    texts.update(_exception_texts("password without username", no_user.value))
    with pytest.raises(ConfigError) as in_file:
        parse_config({**_minimal_config(), "mqtt": {"host": "h", "password": password}})
    texts.update(_exception_texts("password in the config", in_file.value))

    # The scene: its run, beacons, adverts as sightings, and the gateway assembled on it.
    sim = SimScene(scene.path)
    run = sim.run
    texts.update(_texts_of("SimScene", sim))
    texts.update(_texts_of("SceneRun", run))
    texts.update(_texts_of("SimulatedBeacon list", list(run.beacons.values())))
    texts.update(_texts_of("Firmware list", [b.firmware for b in run.beacons.values()]))
    adverts = list(zip(range(40), run.adverts(), strict=False))
    texts.update(_texts_of("CapturedAdvert list", [a for _, a in adverts]))
    sightings = [
        eddystone_sighting(a.address, a.rssi, a.service_data, a.at, a.gateway) for _, a in adverts
    ]
    texts.update(_texts_of("Sighting list", sightings))
    assembly = assemble(parse_config(sim.config_document()), sim.registry())
    identifier: Identifier = assembly.pipeline.identifier
    found = [identifier.identify(s) for s in sightings if s is not None]
    texts.update(_texts_of("Identified list", found))
    texts.update(_texts_of("Assembly", assembly))
    texts.update(_texts_of("scene registry", sim.registry()))
    texts.update(_texts_of("scene BeaconKey list", list(sim.registry())))

    # Log lines with those objects in them, and an exception raised where a key is a local.
    formats: tuple[logs.Format, ...] = ("json", "console")
    for fmt in formats:
        stream = io.StringIO()
        with _logging_to(stream, fmt) as log:
            log.debug("objects", key=key, record=record, firmware=firmware, settings=settings)
            log.debug("sightings", sightings=sightings, found=found)
            try:
                _raise_with_key_in_a_frame(derived_key)
            except RuntimeError:
                log.exception("failed")
        texts[f"{fmt} log"] = stream.getvalue()
        assert "failed" in texts[f"{fmt} log"]
        assert "RuntimeError" in texts[f"{fmt} log"]

    searched = {
        **scene.secrets(),
        "lock code": lock_code,
        "wrong lock code": wrong_lock,
        "service private key": service_private,
        "derived identity key": derived_key,
        "initial EID": record.initial_eid,
        "registry key": sealing.key,
        "wrong registry key": wrong_key.key,
        "MQTT password": password.encode(),
    }
    leaks = find_leaks(texts, searched)
    fault_report.record(
        "secrets",
        "reprs/str of key, registry, resolver, config, MQTT settings and simulator objects; "
        "exceptions with tracebacks; json and console log lines",
        texts_scanned=len(texts),
        bytes_scanned=scanned_bytes(texts),
        secrets_searched=len(searched),
        encodings=len(ENCODINGS),
        leaks=len(leaks),
    )
    assert leaks == []


def _minimal_config() -> dict[str, object]:
    return {"site": "s", "gateway_id": "g", "gateways": [{"id": "gw"}]}


# --------------------------------------------------------------------------- regression tests


@pytest.mark.parametrize(
    "document",
    [
        {"mqtt": {"host": "h", "password": "SECRET"}},
        {"mqtt": {"host": "h", "tls": {"key": "SECRET"}}},
    ],
)
def test_an_unknown_config_key_never_echoes_its_value(document: dict[str, object]) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({**_minimal_config(), **document})
    assert "Extra inputs are not permitted" in str(caught.value)
    assert "SECRET" not in str(caught.value)


def test_a_password_set_by_an_environment_override_is_not_echoed(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text('site = "s"\ngateway_id = "g"\n[[gateways]]\nid = "gw"\n[mqtt]\nhost = "h"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(site, {"BEACON_GATEWAY__MQTT__PASSWORD": "SECRET-from-env"})
    assert "BEACON_GATEWAY__MQTT__PASSWORD" in str(caught.value)
    assert "SECRET" not in str(caught.value)


@pytest.mark.parametrize(
    "document",
    [
        {
            "beacons": [
                {"id": "a", "identity_keys": "SECRET", "rotation_exponent": 4, "clock_offset": 0}
            ]
        },
        {"service": {"privat_key": "SECRET"}},
        {"service": "SECRET"},
        {"beacons": ["SECRET"]},
        {
            "beacons": [
                {"id": "a", "identity_key": ["SECRET"], "rotation_exponent": 4, "clock_offset": 0}
            ]
        },
    ],
)
def test_a_registry_error_shows_no_value_of_a_field_that_may_hold_a_key(
    document: dict[str, object],
) -> None:
    with pytest.raises(ConfigError) as caught:
        KeyRegistry.from_document({"version": 1, **document})
    assert "SECRET" not in str(caught.value)


def test_a_registry_error_still_shows_harmless_values() -> None:
    with pytest.raises(ConfigError) as caught:
        KeyRegistry.from_document(
            {
                "version": 1,
                "beacons": [
                    {
                        "id": "a b",
                        "identity_key": "00" * 16,
                        "rotation_exponent": 16,
                        "clock_offset": 0,
                    }
                ],
            }
        )
    assert "(got 16)" in str(caught.value)
    assert "(got 'a b')" in str(caught.value)


def test_a_scene_runs_repr_hides_the_identity_keys(scene: SceneSecrets) -> None:
    run = prepare(load_scene(scene.path))
    assert run.keys
    shown = repr(run)
    assert find_leaks({"repr": shown}, scene.secrets()) == []


def test_console_logs_render_exceptions_without_frame_locals() -> None:
    identity_key = bytes.fromhex(SAMPLE.hex())
    stream = io.StringIO()
    with _logging_to(stream, "console") as log:
        try:
            _raise_with_key_in_a_frame(identity_key)
        except RuntimeError:
            log.exception("failed")
    text = stream.getvalue()
    assert "Traceback" in text
    assert "_raise_with_key_in_a_frame" in text
    assert find_leaks({"console": text}, {"identity key": identity_key}) == []


def test_the_registration_record_is_written_owner_only(tmp_path: Path) -> None:
    record, beacon = tmp_path / "record.json", tmp_path / "beacon.json"
    done = subprocess.run(
        [
            sys.executable, "-m", "firmware_sim", "provision", "--service-public-key",
            eid.public_key(bytes(range(32))).hex(), "--beacon-id", "b", "--at", str(T0),
            "--record-out", str(record), "--beacon-out", str(beacon),
        ],
        capture_output=True, timeout=RUN_TIMEOUT_S, umask=0o022, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert _mode(record) == 0o600  # it holds the initial EID
    assert _mode(beacon) == 0o600  # it holds the identity key


def test_tls_verification_is_on_by_default() -> None:
    """The defaults verify the broker; a wrong CA is refused (test_mqtt_publisher.py, live)."""
    assert TlsConfig().insecure is False
    assert MqttConfig(host="h", tls=TlsConfig()).tls == TlsConfig(insecure=False)
    assert MqttTls().insecure is False
    context = build_ssl_context(MqttTls())
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
