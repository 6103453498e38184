"""Why the publisher is not connected, sorted for an operator: DNS, TCP, TLS, auth, broker.

A gateway that cannot reach its broker keeps retrying (the broker may be fixed later), so the
failure must be visible without reading tracebacks: each one becomes an :class:`MqttProblem`
with a :class:`ProblemKind` (for /healthz, metrics and alerts) and a message that names the
broker and says what to check. Messages carry the broker's reason code names and the ssl
module's verification text, never a password or a payload.

What mosquitto 2.0.11 answers (verified): a wrong password and an unknown user both get
CONNACK 0x87 "Not authorized" (v5) or 5 (3.1.1, which paho reports as 0x87), not 0x86.
"""

from __future__ import annotations

import enum
import socket
import ssl
from dataclasses import dataclass
from typing import Final


class ProblemKind(enum.StrEnum):
    """What kind of failure kept or took the publisher off the broker."""

    DNS_FAILED = "dns_failed"
    CONNECTION_REFUSED = "connection_refused"
    TIMEOUT = "timeout"
    NETWORK_ERROR = "network_error"
    TLS_VERIFY_FAILED = "tls_verify_failed"
    TLS_ERROR = "tls_error"
    BAD_CREDENTIALS = "bad_credentials"
    NOT_AUTHORIZED = "not_authorized"
    BROKER_REFUSED = "broker_refused"
    CONNECTION_LOST = "connection_lost"


@dataclass(frozen=True, slots=True)
class MqttProblem:
    """One failure: its kind, a message for the operator, and when it happened (unix time)."""

    kind: ProblemKind
    message: str
    at: float

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


_BAD_CREDENTIALS: Final = 0x86
_NOT_AUTHORIZED: Final = 0x87
_SESSION_TAKEN_OVER: Final = 0x8E

_CONNACK_HINTS: Final = {
    _BAD_CREDENTIALS: "check mqtt.username and mqtt.password",
    _NOT_AUTHORIZED: (
        "the broker refused these credentials or this client id; check mqtt.username, "
        "mqtt.password and the broker's ACL (mosquitto answers 0x87 to a wrong password too)"
    ),
    0x84: "the broker does not speak this protocol version; try mqtt.protocol '3.1.1'",
    0x85: "the broker rejected mqtt.client_id",
    0x8A: "this client is banned by the broker",
    0x8C: "the broker wants another authentication method",
    0x88: "the broker is unavailable; it may be starting or overloaded",
    0x89: "the broker is busy",
    0x9F: "the broker limits the connection rate; the backoff will space attempts out",
}
"""CONNACK reason codes (MQTT 5; 3.1.1 codes arrive mapped by paho) and what to check."""


def connection_problem(exc: BaseException, *, host: str, port: int, at: float) -> MqttProblem:
    """The problem behind an exception from a connect attempt (DNS, TCP, TLS)."""
    where = f"{host}:{port}"
    if isinstance(exc, socket.gaierror):
        return MqttProblem(
            ProblemKind.DNS_FAILED,
            f"cannot resolve {host!r}: {exc.strerror or exc}; check mqtt.host and DNS",
            at,
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return MqttProblem(
            ProblemKind.TLS_VERIFY_FAILED,
            f"TLS certificate of {where} not accepted: {exc.verify_message or exc.reason} "
            f"(verify code {exc.verify_code}); check mqtt.tls.ca_file and that mqtt.host is a "
            "name the certificate was issued for",
            at,
        )
    if isinstance(exc, ssl.SSLError):
        return MqttProblem(
            ProblemKind.TLS_ERROR,
            f"TLS handshake with {where} failed: {exc.reason or exc}; is it a TLS listener, "
            "and does it want a client certificate (mqtt.tls.cert_file)?",
            at,
        )
    if isinstance(exc, ConnectionRefusedError):
        return MqttProblem(
            ProblemKind.CONNECTION_REFUSED,
            f"connection to {where} refused: is the broker running and listening there?",
            at,
        )
    if isinstance(exc, TimeoutError):
        return MqttProblem(ProblemKind.TIMEOUT, f"connecting to {where} timed out", at)
    detail = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
    return MqttProblem(
        ProblemKind.NETWORK_ERROR,
        f"cannot connect to {where}: {type(exc).__name__}: {detail}",
        at,
    )


def connack_problem(code: int, name: str, *, host: str, port: int, at: float) -> MqttProblem:
    """The problem behind a CONNACK refusal (reason code >= 0x80)."""
    kind = {
        _BAD_CREDENTIALS: ProblemKind.BAD_CREDENTIALS,
        _NOT_AUTHORIZED: ProblemKind.NOT_AUTHORIZED,
    }.get(code, ProblemKind.BROKER_REFUSED)
    hint = _CONNACK_HINTS.get(code, "see the broker's log")
    return MqttProblem(
        kind, f"broker {host}:{port} refused the connection: {name} (0x{code:02X}); {hint}", at
    )


def connack_timeout_problem(*, host: str, port: int, seconds: float, at: float) -> MqttProblem:
    """The problem of a broker that accepted the connection but never answered CONNECT."""
    return MqttProblem(
        ProblemKind.TIMEOUT,
        f"no CONNACK from {host}:{port} within {seconds:g} s (is it an MQTT listener?)",
        at,
    )


def closed_before_connack_problem(
    name: str, *, host: str, port: int, tls: bool, at: float
) -> MqttProblem:
    """The problem of a connection the broker closed before it answered CONNECT."""
    hint = (
        "is it a TLS listener that wants a client certificate?"
        if tls
        else "is it a TLS listener (set mqtt.tls) or not an MQTT port?"
    )
    return MqttProblem(
        ProblemKind.CONNECTION_LOST,
        f"{host}:{port} closed the connection before CONNACK ({name}); {hint}",
        at,
    )


def disconnect_problem(
    code: int, name: str, *, from_broker: bool, client_id: str, at: float
) -> MqttProblem:
    """The problem of a connection that was up and went down."""
    if not from_broker:
        return MqttProblem(ProblemKind.CONNECTION_LOST, f"connection lost ({name})", at)
    message = f"broker closed the connection: {name} (0x{code:02X})"
    if code == _SESSION_TAKEN_OVER:
        message += f"; another client connected with client id {client_id!r}"
    return MqttProblem(ProblemKind.CONNECTION_LOST, message, at)
