"""What the MQTT publisher needs to know: broker, identity, TLS, status topic and tuning.

:class:`MqttSettings` is a frozen dataclass the daemon builds from the pydantic config; it checks
its own values so that a bad one fails at start-up with the field's name, before anything
touches the broker. The password never appears in its repr (nor anywhere else the publisher
writes: logs, errors, stats).

The defaults are the named constants below; each says why it has the value it has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal

from gateway.errors import GatewayError

if TYPE_CHECKING:
    from pathlib import Path

MqttProtocol = Literal["5", "3.1.1"]
"""MQTT protocol version: 5 (default: reason codes, Receive Maximum, user properties) or 3.1.1."""

OnRefused = Literal["retry", "park"]
"""What to do with a publish the broker refuses: retry it with backoff, or park it at once."""


class MqttConfigError(GatewayError, ValueError):
    """An MQTT setting is invalid or a file it names is unusable; the message names the field."""


# --------------------------------------------------------------------------- defaults

PORT: Final = 1883
"""IANA's MQTT port; TLS listeners conventionally use 8883 (set it explicitly)."""

KEEPALIVE_S: Final = 60
"""PINGREQ interval; a silent broker is noticed within 1.5 x this, a dead gateway likewise."""

SESSION_EXPIRY_S: Final = 300
"""Broker keeps our v5 session 5 min after a drop: a reconnect within it resumes (no will flap)."""

WILL_DELAY_S: Final = 5
"""v5 WillDelayInterval: a gateway back within 5 s (restart, blip) never shows "offline".

Capped at ``session_expiry_s`` (see :attr:`MqttSettings.effective_will_delay_s`).
"""

MAX_INFLIGHT: Final = 20
"""Unacknowledged publishes at once; mosquitto's default Receive Maximum, caps duplicates too."""

BACKOFF_BASE_S: Final = 1.0
"""First reconnect ceiling: a broker restart is usually over within a second or two."""

BACKOFF_CAP_S: Final = 60.0
"""Longest reconnect ceiling: a fixed broker is found within a minute, a fleet never stampedes."""

MAX_ATTEMPTS: Final = 10
"""Refusals retried before a row is parked: with the 60 s cap, minutes for an operator to fix."""

CONNECT_TIMEOUT_S: Final = 10.0
"""TCP connect, TLS handshake and CONNACK each: a slow cellular link still makes it."""

_MAX_TOPIC_BYTES: Final = 65535
"""MQTT strings carry a 16-bit length."""

_MAX_CLIENT_ID_BYTES: Final = 65535
"""MQTT strings carry a 16-bit length (brokers may allow fewer; mosquitto allows this many)."""

_MAX_KEEPALIVE_S: Final = 65535
"""CONNECT's Keep Alive is a 16-bit field."""

_MAX_UINT32: Final = 2**32 - 1
"""Session Expiry and Will Delay are four-byte integers."""

_MAX_RECEIVE_MAXIMUM: Final = 65535
"""Receive Maximum is a 16-bit field; more in flight than that is meaningless."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MqttTls:
    """TLS towards the broker.

    ``ca_file`` is the PEM bundle that signs the broker's certificate (``None``: the system's
    trust store). ``cert_file`` (with ``key_file``, unless the key is inside it) is the client
    certificate for brokers that ask for one. ``insecure`` turns certificate *and* host name
    verification off: for a lab only; the publisher logs a warning when it is set.
    """

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure: bool = False

    def __post_init__(self) -> None:
        if self.key_file is not None and self.cert_file is None:
            msg = "mqtt.tls.key_file is set but mqtt.tls.cert_file is not: give both"
            raise MqttConfigError(msg)


@dataclass(frozen=True, slots=True, kw_only=True)
class MqttSettings:
    """How the publisher reaches the broker and how it behaves there.

    ``client_id`` must be stable per gateway (the broker keys the session and the will on it)
    and unique in the fleet (a second client with the same id takes the session over).
    ``status_topic`` carries the retained ``online``/``offline`` status. ``will_delay_s`` and
    ``session_expiry_s`` only apply to MQTT 5; the will delay actually sent is capped at the
    session expiry (:attr:`effective_will_delay_s`). ``on_refused`` says what happens to a publish
    the broker refuses (PUBACK reason code >= 0x80): "retry" with backoff until it has been
    retried ``max_attempts`` times, then park it; "park" at once.
    """

    host: str
    client_id: str
    status_topic: str
    port: int = PORT
    protocol: MqttProtocol = "5"
    keepalive_s: int = KEEPALIVE_S
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: MqttTls | None = None
    session_expiry_s: int = SESSION_EXPIRY_S
    will_delay_s: int = WILL_DELAY_S
    max_inflight: int = MAX_INFLIGHT
    backoff_base_s: float = BACKOFF_BASE_S
    backoff_cap_s: float = BACKOFF_CAP_S
    on_refused: OnRefused = "retry"
    max_attempts: int = MAX_ATTEMPTS
    connect_timeout_s: float = CONNECT_TIMEOUT_S

    def __post_init__(self) -> None:
        problems = [
            *self._identity_problems(),
            *self._session_problems(),
            *self._tuning_problems(),
        ]
        if problems:
            msg = "invalid MQTT settings: " + "; ".join(problems)
            raise MqttConfigError(msg)

    @property
    def is_v5(self) -> bool:
        """Whether the publisher speaks MQTT 5."""
        return self.protocol == "5"

    @property
    def effective_will_delay_s(self) -> int:
        """The Will Delay Interval sent: ``min(will_delay_s, session_expiry_s)``.

        MQTT 5 publishes the will when the delay passes or the session ends, whichever comes
        first, so the cap changes nothing on a broker that follows the spec. mosquitto 2.0.11
        does not: it waits out the whole delay even when the session ended before (verified:
        Will Delay 3 s with Session Expiry 0 sent the will after 3 s, not at once).
        """
        return min(self.will_delay_s, self.session_expiry_s)

    def _identity_problems(self) -> list[str]:
        problems = []
        if not self.host:
            problems.append("mqtt.host must not be empty")
        if not 0 < self.port <= 65535:  # noqa: PLR2004 - the TCP port range
            problems.append(f"mqtt.port must be 1-65535 (got {self.port})")
        if self.protocol not in {"5", "3.1.1"}:
            problems.append(f"mqtt.protocol must be '5' or '3.1.1' (got {self.protocol!r})")
        if not self.client_id or len(self.client_id.encode()) > _MAX_CLIENT_ID_BYTES:
            problems.append("mqtt.client_id must be 1-65535 bytes (a stable id per gateway)")
        topic_problem = topic_name_problem(self.status_topic)
        if topic_problem is not None:
            problems.append(f"mqtt.status_topic {topic_problem}")
        if self.password is not None and self.username is None:
            problems.append("mqtt.password is set but mqtt.username is not")
        return problems

    def _session_problems(self) -> list[str]:
        problems = []
        if not 0 <= self.keepalive_s <= _MAX_KEEPALIVE_S:
            problems.append(f"mqtt.keepalive_s must be 0-65535 (got {self.keepalive_s})")
        for name, value in (
            ("session_expiry_s", self.session_expiry_s),
            ("will_delay_s", self.will_delay_s),
        ):
            if not 0 <= value <= _MAX_UINT32:
                problems.append(f"mqtt.{name} must be 0-{_MAX_UINT32} (got {value})")
        return problems

    def _tuning_problems(self) -> list[str]:
        problems = []
        if not 1 <= self.max_inflight <= _MAX_RECEIVE_MAXIMUM:
            problems.append(f"mqtt.max_inflight must be 1-65535 (got {self.max_inflight})")
        for name, seconds in (
            ("backoff_base_s", self.backoff_base_s),
            ("backoff_cap_s", self.backoff_cap_s),
            ("connect_timeout_s", self.connect_timeout_s),
        ):
            if not seconds > 0:
                problems.append(f"mqtt.{name} must be positive (got {seconds})")
        if self.backoff_cap_s < self.backoff_base_s:
            problems.append("mqtt.backoff_cap_s must not be below mqtt.backoff_base_s")
        if self.on_refused not in {"retry", "park"}:
            problems.append(f"mqtt.on_refused must be 'retry' or 'park' (got {self.on_refused!r})")
        if self.max_attempts < 0:
            problems.append(f"mqtt.max_attempts must not be negative (got {self.max_attempts})")
        return problems


def topic_name_problem(topic: str) -> str | None:
    """Why ``topic`` cannot be published to (as "must ..." text), or None when it can.

    A topic name is 1-65535 bytes of UTF-8 without wildcards (``+``, ``#``) or NUL (MQTT 5
    section 4.7). paho checks wildcards only, and a v5 broker answers an empty topic by
    closing the connection, so a bad row would be re-sent after every reconnect: it is
    checked here and parked instead.
    """
    if not topic:
        return "must not be empty"
    if "+" in topic or "#" in topic:
        return "must not contain the wildcards '+' or '#'"
    if "\x00" in topic:
        return "must not contain NUL"
    try:
        size = len(topic.encode())
    except UnicodeEncodeError:
        return "must be valid UTF-8 (it contains a lone surrogate)"
    if size > _MAX_TOPIC_BYTES:
        return f"must be at most {_MAX_TOPIC_BYTES} bytes (got {size})"
    return None
