"""A real mosquitto for the MQTT tests, a test PKI, and a subscriber that records what arrives.

:class:`Mosquitto` writes its own config into a fresh directory, listens on 127.0.0.1 on free
ports (a plain listener, and a TLS one when given :class:`Certificates`), persists to that
directory, and can be stopped (SIGTERM), killed (SIGKILL) and restarted on the same ports.
Use it as a context manager: it always stops its process and removes its directory.

The permission pitfall (../shared/docs/platform-notes.md 3.4): started as root, mosquitto drops
to the ``mosquitto`` user, which then cannot write a root-owned persistence directory; it says
so only in its log ("Error saving in-memory database") and loses messages it has PUBACKed. So
the broker's directory is made with ``tempfile.mkdtemp`` (pytest's tmp_path sits below a 0700
root directory the ``mosquitto`` user cannot traverse) and handed to ``mosquitto`` with every
file the broker reads; :meth:`Mosquitto.close` fails the test if the log shows a persistence
error.

:func:`make_test_ca` issues a CA, a server certificate (for ``localhost`` only, so connecting
to 127.0.0.1 is a host name mismatch) and a client certificate with ``cryptography``.

:class:`Subscriber` is a paho client with a persistent MQTT 5 session (``clean_start=False``,
Session Expiry one hour) and QoS 1 subscriptions renewed on every connect, so it survives
broker restarts; it collects messages in a thread-safe list.

Tests skip (with the reason) when the mosquitto binary is absent; scripts/system-deps.sh
installs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import ipaddress
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Self

import paho.mqtt.client as paho
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
    from types import TracebackType

    from paho.mqtt.reasoncodes import ReasonCode

BINARY_CANDIDATES = ("mosquitto", "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
INSTALL_HINT = "mosquitto is not installed (Debian: apt-get install mosquitto mosquitto-clients)"
WAIT_S = 20.0
"""Every wait in here gives up (and fails the test) after this long; never a timing claim."""
PERSISTENCE_ERRORS = ("Error saving in-memory database", "Permission denied")


def mosquitto_binary() -> str | None:
    """The mosquitto executable, or None."""
    for candidate in BINARY_CANDIDATES:
        found = shutil.which(candidate)
        if found is not None:
            return found
    return None


def require_mosquitto() -> str:
    """The mosquitto executable; skips the calling test when there is none."""
    binary = mosquitto_binary()
    if binary is None:
        pytest.skip(INSTALL_HINT)
    return binary


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until(predicate: Callable[[], bool], what: str, *, limit_s: float = WAIT_S) -> None:
    """Poll ``predicate`` until true; fail the test after ``limit_s``."""
    deadline = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {limit_s} s waiting for {what}")
        time.sleep(0.01)


async def until(predicate: Callable[[], bool], what: str, *, limit_s: float = WAIT_S) -> None:
    """Poll ``predicate`` on the event loop until true; fail the test after ``limit_s``."""
    try:
        async with asyncio.timeout(limit_s):
            while not predicate():  # noqa: ASYNC110 - polls state owned by other threads
                await asyncio.sleep(0.01)
    except TimeoutError:
        pytest.fail(f"gave up after {limit_s} s waiting for {what}")


# --------------------------------------------------------------------------- test PKI


@dataclass(frozen=True, slots=True)
class Certificates:
    """PEM files of a test CA, a server certificate (``localhost``) and a client certificate."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_test_ca(
    directory: Path, *, server_names: Iterable[str] = ("localhost",), name: str = "test CA"
) -> Certificates:
    """Issue a throwaway CA and its server and client certificates into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"beacon-gateway {name}")])
    ca_cert = (
        _builder(ca_name, ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    names: list[x509.GeneralName] = []
    for entry in server_names:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(entry)))
        except ValueError:
            names.append(x509.DNSName(entry))
    server_key, server_cert = _leaf(
        ca_key, ca_cert, "mosquitto", ExtendedKeyUsageOID.SERVER_AUTH, names
    )
    client_key, client_cert = _leaf(ca_key, ca_cert, "gateway", ExtendedKeyUsageOID.CLIENT_AUTH)
    files = Certificates(
        ca_cert=directory / "ca.crt",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
        client_cert=directory / "client.crt",
        client_key=directory / "client.key",
    )
    for path, cert in ((files.ca_cert, ca_cert), (files.server_cert, server_cert)):
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.client_cert.write_bytes(client_cert.public_bytes(serialization.Encoding.PEM))
    for path, key in ((files.server_key, server_key), (files.client_key, client_key)):
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return files


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
    )


def _leaf(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    common_name: str,
    usage: x509.ObjectIdentifier,
    names: Sequence[x509.GeneralName] = (),
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        _builder(subject, ca_cert.subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


# --------------------------------------------------------------------------- the broker


class Mosquitto:
    """One mosquitto process with its own config, directory and ports (see the module doc).

    ``users`` (name -> password) turns anonymous access off; ``acl`` is the text of an ACL
    file; ``tls`` adds a TLS listener (:attr:`tls_port`) that requires a client certificate
    signed by the same CA; ``max_inflight_messages`` is what MQTT 5 clients see as Receive
    Maximum; ``extra`` lines go into the config as they are.
    """

    def __init__(
        self,
        *,
        users: Mapping[str, str] | None = None,
        acl: str | None = None,
        tls: Certificates | None = None,
        max_inflight_messages: int | None = None,
        extra: Sequence[str] = (),
    ) -> None:
        self.binary = require_mosquitto()
        self.directory = Path(tempfile.mkdtemp(prefix="gw-mosquitto-"))
        self.port = free_port()
        self.tls_port = free_port() if tls is not None else None
        self.log_path = self.directory / "mosquitto.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        lines = [
            "persistence true",
            f"persistence_location {self.directory}/",
            "log_dest stderr",
            *(f"log_type {kind}" for kind in ("error", "warning", "notice", "information")),
            "max_queued_messages 100000",
            f"allow_anonymous {'false' if users else 'true'}",
        ]
        if users:
            lines.append(f"password_file {self._password_file(users)}")
        if acl is not None:
            acl_path = self.directory / "acl"
            acl_path.write_text(acl)
            lines.append(f"acl_file {acl_path}")
        if max_inflight_messages is not None:
            lines.append(f"max_inflight_messages {max_inflight_messages}")
        lines += list(extra)
        lines.append(f"listener {self.port} 127.0.0.1")
        if tls is not None:
            lines += [f"listener {self.tls_port} 127.0.0.1", *self._tls_lines(tls)]
        self.config_path = self.directory / "mosquitto.conf"
        self.config_path.write_text("\n".join(lines) + "\n")
        self._hand_to_broker_user()

    def _password_file(self, users: Mapping[str, str]) -> Path:
        path = self.directory / "passwd"
        tool = shutil.which("mosquitto_passwd")
        if tool is None:
            pytest.skip("mosquitto_passwd is not installed (apt-get install mosquitto)")
        for index, (user, password) in enumerate(users.items()):
            create = ["-c"] if index == 0 else []
            subprocess.run(
                [tool, "-b", *create, str(path), user, password], check=True, capture_output=True
            )
        return path

    def _tls_lines(self, tls: Certificates) -> list[str]:
        copies = {}
        for name in ("ca_cert", "server_cert", "server_key"):
            source: Path = getattr(tls, name)
            copies[name] = self.directory / source.name
            shutil.copyfile(source, copies[name])
        return [
            f"cafile {copies['ca_cert']}",
            f"certfile {copies['server_cert']}",
            f"keyfile {copies['server_key']}",
            "require_certificate true",
        ]

    def _hand_to_broker_user(self) -> None:
        """As root, give the directory and its files to the user mosquitto runs as."""
        if os.geteuid() != 0:
            return
        try:
            account = pwd.getpwnam("mosquitto")
        except KeyError:
            return  # no such user: mosquitto stays root and can write anyway
        for path in (self.directory, *self.directory.iterdir()):
            os.chown(path, account.pw_uid, account.pw_gid)

    # ----------------------------------------------------------------------- process

    @property
    def running(self) -> bool:
        """Whether the broker process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> Self:
        """Start the broker and wait until every listener accepts connections."""
        if self.running:
            return self
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [self.binary, "-c", str(self.config_path)], stdout=self._log, stderr=subprocess.STDOUT
        )
        for port in (self.port, self.tls_port):
            if port is not None:
                wait_until(functools.partial(self._accepts, port), f"mosquitto on port {port}")
        return self

    def _accepts(self, port: int) -> bool:
        process = self._process
        if process is None or process.poll() is not None:
            pytest.fail(f"mosquitto exited at start-up:\n{self.log_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    def pause(self) -> None:
        """SIGSTOP: the broker freezes with its sockets open (clients keep sending, unanswered)."""
        assert self._process is not None, "mosquitto is not running"
        self._process.send_signal(signal.SIGSTOP)

    def save(self) -> None:
        """SIGUSR1: mosquitto writes its persistence database now; wait until it has.

        What a later SIGKILL then keeps: sessions and subscriptions as of now (mosquitto's
        persistence is a snapshot: SIGTERM, SIGUSR1 or every ``autosave_interval``).
        """
        process = self._process
        assert process is not None, "mosquitto is not running"
        database = self.directory / "mosquitto.db"

        def stamp() -> int | None:
            return database.stat().st_mtime_ns if database.exists() else None

        before = stamp()
        process.send_signal(signal.SIGUSR1)
        wait_until(lambda: stamp() not in {None, before}, "mosquitto to save its database")

    def stop(self) -> None:
        """SIGTERM (mosquitto saves its database) and wait for the process to end."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: a crash; what mosquitto had not saved is gone."""
        self._end(signal.SIGKILL)

    def restart(self, *, kill: bool = False) -> None:
        """Stop (or kill) and start again on the same ports."""
        self._end(signal.SIGKILL if kill else signal.SIGTERM)
        self.start()

    def _end(self, how: signal.Signals) -> None:
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.send_signal(how)
                process.send_signal(signal.SIGCONT)  # a paused broker acts on SIGTERM too
            try:
                process.wait(WAIT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(WAIT_S)
                pytest.fail(f"mosquitto ignored {how.name}; killed")
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_text(self) -> str:
        """Everything the broker logged so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def close(self) -> None:
        """Stop the broker, check it could persist, remove its directory."""
        try:
            self.stop()
            problems = [
                line
                for line in self.log_text().splitlines()
                if any(error in line for error in PERSISTENCE_ERRORS)
            ]
            assert not problems, f"mosquitto could not persist: {problems}"
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# --------------------------------------------------------------------------- a subscriber


@dataclass(frozen=True, slots=True)
class Received:
    """One message as the subscriber got it."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    user_properties: dict[str, str]


class Subscriber:
    """A paho MQTT 5 subscriber with a persistent session, collecting what arrives.

    paho's own reconnect brings it back after a broker restart (the session, saved by
    mosquitto on SIGTERM, keeps what was queued meanwhile); it subscribes again on every
    connect in case the session was lost (SIGKILL). Retained messages keep their retain flag
    (Retain As Published).
    """

    def __init__(self, port: int, topics: Sequence[str], *, client_id: str | None = None) -> None:
        self.port = port
        self.topics = list(topics)
        self._lock = threading.Lock()
        self._messages: list[Received] = []
        self._subscribed = threading.Event()
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"test-sub-{uuid.uuid4().hex[:8]}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self._client.reconnect_delay_set(1, 1)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    def start(self) -> Self:
        """Connect and wait until the subscriptions are granted."""
        session = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        session.SessionExpiryInterval = 3600
        self._client.connect_async(
            "127.0.0.1", self.port, keepalive=10, clean_start=False, properties=session
        )
        self._client.loop_start()
        wait_until(self._subscribed.is_set, f"the subscription to {self.topics}")
        return self

    def stop(self) -> None:
        """Disconnect and end paho's thread."""
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def messages(self, topic_prefix: str = "") -> list[Received]:
        """A copy of what arrived so far (on topics starting with ``topic_prefix``)."""
        with self._lock:
            return [m for m in self._messages if m.topic.startswith(topic_prefix)]

    async def until(self, predicate: Callable[[list[Received]], bool], what: str) -> list[Received]:
        """Wait (on the event loop) until ``predicate(messages)``; the messages then."""
        await until(lambda: predicate(self.messages()), what)
        return self.messages()

    def _on_connect(
        self,
        client: paho.Client,
        _userdata: object,
        _flags: paho.ConnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if not reason_code.is_failure:
            options = SubscribeOptions(qos=1, retainAsPublished=True)
            client.subscribe([(topic, options) for topic in self.topics])

    def _on_subscribe(
        self,
        _client: paho.Client,
        _userdata: object,
        _mid: int,
        _reason_codes: list[ReasonCode],
        _properties: Properties | None,
    ) -> None:
        self._subscribed.set()

    def _on_message(
        self, _client: paho.Client, _userdata: object, message: paho.MQTTMessage
    ) -> None:
        props = getattr(message, "properties", None)
        pairs = getattr(props, "UserProperty", None) or []
        received = Received(
            topic=message.topic,
            payload=bytes(message.payload),
            qos=message.qos,
            retain=bool(message.retain),
            user_properties=dict(pairs),
        )
        with self._lock:
            self._messages.append(received)


@contextlib.contextmanager
def subscribed(port: int, topics: Sequence[str]) -> Iterator[Subscriber]:
    """A started :class:`Subscriber`, always stopped afterwards."""
    subscriber = Subscriber(port, topics)
    try:
        yield subscriber.start()
    finally:
        subscriber.stop()
