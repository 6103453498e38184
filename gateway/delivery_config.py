"""The delivery and operations sections of the configuration: mqtt, outbox, http, logging.

Secrets are never written in the file: the broker password comes from ``mqtt.password_file``,
the ``BEACON_GATEWAY_MQTT_PASSWORD`` environment variable or the systemd credential
``mqtt-password`` (``LoadCredential=``), in that order (:func:`find_mqtt_password`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Final, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from gateway.sealed_file import SecretFileError, find_secret

PASSWORD_ENVIRONMENT: Final = "BEACON_GATEWAY_MQTT_PASSWORD"  # noqa: S105 - a name, not a password
PASSWORD_CREDENTIAL: Final = "mqtt-password"  # noqa: S105 - a name, not a password
DEFAULT_OUTBOX_NAME: Final = "outbox.sqlite3"
STATE_DIRECTORY_ENVIRONMENT: Final = "STATE_DIRECTORY"
"""systemd's ``StateDirectory=`` exports the directory's path in this variable."""
DEFAULT_STATE_DIRECTORY: Final = "/var/lib/beacon-gateway"

Port = Annotated[int, Field(ge=1, le=65535)]
Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]
TopicSegment = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")]


class _Section(BaseModel):
    # Attribute docstrings are the fields' descriptions (docs/config-reference.md).
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class TlsConfig(_Section):
    """TLS to the broker: the CA that signed its certificate, and a client certificate if asked."""

    ca_file: Path | None = None
    """PEM CA bundle; none: the system's trust store."""
    cert_file: Path | None = None
    """PEM client certificate, for a broker that asks for one (with ``key_file``)."""
    key_file: Path | None = None
    """The client certificate's PEM private key, unencrypted (with ``cert_file``)."""
    insecure: bool = False
    """Turn certificate and host name verification off (a test bench only; logged loudly)."""

    @pydantic.model_validator(mode="after")
    def _pair(self) -> TlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            msg = "cert_file and key_file go together (a client certificate and its key)"
            raise ValueError(msg)
        return self


class MqttConfig(_Section):
    """The broker and how to publish to it."""

    host: Annotated[str, Field(min_length=1, max_length=253)]
    """The broker's host name or address (with TLS: a name its certificate was issued for)."""
    port: Port | None = None
    """Default 1883, or 8883 with TLS."""
    protocol: Literal["5", "3.1.1"] = "5"
    """MQTT version; refused publishes (PUBACK reason codes) are only visible over MQTT 5."""
    client_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    """Default ``beacon-gateway-<gateway_id>``: stable, so the broker keeps the session."""
    username: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    """The broker user name; none: connect anonymously."""
    password_file: Path | None = None
    """A file holding the password; else ``BEACON_GATEWAY_MQTT_PASSWORD`` or the systemd
    credential ``mqtt-password``."""
    tls: TlsConfig | None = None
    """TLS to the broker; none: plain TCP."""
    topic_prefix: TopicSegment = "beacon-gateway"
    """The first level of every topic (docs/mqtt.md)."""
    keepalive_s: Annotated[int, Field(ge=5, le=65535)] = 30
    """MQTT keep-alive (s); also how soon the broker notices a dead gateway (1.5 x)."""
    session_expiry_s: Annotated[int, Field(ge=0)] = 3600
    """MQTT 5: how long (s) the broker keeps the session after a disconnect."""
    will_delay_s: Annotated[int, Field(ge=0)] = 5
    """MQTT 5: the broker waits this long before publishing the will (``offline``), so a quick
    reconnect does not flap the status (capped at ``session_expiry_s``)."""
    max_inflight: Annotated[int, Field(ge=1, le=65535)] = 20
    """The most unacknowledged publishes; the broker's Receive Maximum lowers it."""
    backoff_base_s: Seconds = 1.0
    """Reconnect backoff (full jitter): the first delay's ceiling (s)."""
    backoff_cap_s: Seconds = 60.0
    """Reconnect backoff: the longest delay's ceiling (s); at least ``backoff_base_s``."""
    connect_timeout_s: Seconds = 10.0
    """Bound (s) on a connection attempt, and again on the wait for CONNACK."""
    on_refused: Literal["retry", "park"] = "retry"
    """What to do when the broker refuses a publish (PUBACK reason >= 0x80)."""
    max_attempts: Annotated[int, Field(ge=1)] = 10
    """A refused publish is parked after this many attempts, whatever ``on_refused`` says."""

    @pydantic.model_validator(mode="after")
    def _backoff(self) -> MqttConfig:
        if self.backoff_base_s > self.backoff_cap_s:
            msg = "backoff_base_s must not exceed backoff_cap_s"
            raise ValueError(msg)
        return self

    @property
    def effective_port(self) -> int:
        """The port to connect to."""
        if self.port is not None:
            return self.port
        return 1883 if self.tls is None else 8883


class OutboxConfig(_Section):
    """The durable outbox: where, how big, and what to do when full."""

    path: Path | None = None
    """Default: ``$STATE_DIRECTORY/outbox.sqlite3`` under systemd, else
    /var/lib/beacon-gateway/outbox.sqlite3."""
    max_events: Annotated[int, Field(ge=1)] = 1_000_000
    """The outbox holds at most this many events."""
    max_mb: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    """A bound on the events' payloads too (MiB); none: only ``max_events``."""
    when_full: Literal["drop-oldest", "drop-newest"] = "drop-oldest"
    """Which events are dropped when full (counted and logged either way)."""
    synchronous: Literal["full", "normal"] = "full"
    """``full`` survives power loss; ``normal`` survives crashes and spares SD cards."""

    def resolved_path(self) -> Path:
        """The outbox file (the default follows systemd's StateDirectory)."""
        if self.path is not None:
            return self.path
        state = os.environ.get(STATE_DIRECTORY_ENVIRONMENT, "").split(":")[0]
        return Path(state or DEFAULT_STATE_DIRECTORY) / DEFAULT_OUTBOX_NAME


class HttpConfig(_Section):
    """``/metrics`` (Prometheus), ``/healthz`` and the live view (``/``), on loopback by default."""

    enabled: bool = True
    """Serve ``/metrics``, ``/healthz`` and the live view (while ``run`` publishes to MQTT)."""
    host: Annotated[str, Field(min_length=1)] = "127.0.0.1"
    """Address to listen on; loopback keeps metrics off the network."""
    port: Annotated[int, Field(ge=0, le=65535)] = 9464
    """The port; 0 picks a free one (tests)."""


class LoggingConfig(_Section):
    """structlog output."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    """The lowest level logged."""
    format: Literal["auto", "json", "console"] = "auto"
    """``auto``: console on a terminal, JSON lines otherwise (journald)."""


def find_mqtt_password(config: MqttConfig) -> str | None:
    """The broker password: ``password_file``, the environment, or the systemd credential.

    Raises :class:`~gateway.sealed_file.SecretFileError` when the file cannot be read or is
    not UTF-8 text (the message never holds the password).
    """
    found = find_secret(
        config.password_file, PASSWORD_ENVIRONMENT, PASSWORD_CREDENTIAL, "MQTT password"
    )
    if found is None:
        return None
    raw, source = found
    try:
        return raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        msg = f"the MQTT password from {source} is not UTF-8 text"
        raise SecretFileError(msg) from None
