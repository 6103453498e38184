"""The one place that talks to paho: one client for the publisher's life, callbacks forwarded.

:class:`MqttClient` owns the ``paho.mqtt.client.Client`` (VERSION2 callbacks, MQTT 5 or 3.1.1,
TLS context, credentials, the retained ``offline`` will) and exposes what the publisher needs:
one connect attempt off the event loop, paho's network thread per connection, publishing an
event or a status, and a clean disconnect. It keeps the same paho client across reconnects, so
paho re-sends its unacknowledged QoS 1 messages after one.

Threads: paho calls back on its network thread; each callback only hands its arguments to the
event loop with ``call_soon_threadsafe`` (:class:`LinkHandler` runs there). Everything else is
called on the event loop, except the connect itself, which runs in a worker thread because it
resolves the name, opens TCP and shakes hands with TLS (all blocking). Nothing here takes a lock
that paho's callbacks could wait on.

Things paho 2.2.0 does that shape this code (verified):

* ``max_inflight_messages_set`` raises RuntimeError on an open connection, on_connect included,
  so the broker's Receive Maximum cannot become paho's cap; the publisher counts itself.
* ``loop_start()`` makes a socket pair that ``loop_stop()`` leaves open (paho #627): closed here.
* paho wraps the socket for TLS and drops it unclosed when the handshake fails: the context's
  socket class closes it (see :mod:`gateway.delivery.mqtt_tls`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from typing import TYPE_CHECKING, Final, Protocol

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.delivery.mqtt_tls import build_ssl_context

if TYPE_CHECKING:
    from collections.abc import Callable

    from paho.mqtt.reasoncodes import ReasonCode

    from gateway.delivery.message import Message
    from gateway.delivery.mqtt_settings import MqttSettings

RECEIVE_MAXIMUM_ABSENT: Final = 65535
"""MQTT 5: a CONNACK without Receive Maximum means 65,535."""

EVENT_ID_PROPERTY: Final = "event_id"
"""The MQTT 5 user property carrying the consumers' dedup key."""
SEQ_PROPERTY: Final = "seq"
"""MQTT 5 user property: the outbox's sequence number, which only grows per outbox file, so a
consumer sees a gap where the outbox policy dropped events and a repeat where one was re-sent."""

_PAHO_RESET_SOCKETS: Final = "_reset_sockets"
"""paho's private method that closes the loop_start() socket pair (see release_socketpair)."""


class _NormalLoopEndFilter(logging.Filter):
    """Drops paho's ERROR "Client is not connected", logged whenever its loop ends normally.

    paho 2.2.0 logs it at ERROR after every DISCONNECT and every lost connection, when its
    network loop looks at the socket it has just closed; our own events say what happened.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            isinstance(record.msg, str) and record.msg.startswith("Client is not connected")
        )


PAHO_LOGGER: Final = logging.getLogger(f"{__name__}.paho")
"""Where paho's own log lines go (stdlib logging, rendered by the app's structlog setup)."""
PAHO_LOGGER.addFilter(_NormalLoopEndFilter())


class LinkHandler(Protocol):
    """What the client reports, always on the event loop."""

    def on_connack(
        self,
        session_present: bool,  # noqa: FBT001 - forwarded positionally by call_soon_threadsafe
        code: int,
        name: str,
        window: int,
        max_packet: int | None,
    ) -> None:
        """CONNACK arrived: ``code`` < 0x80 accepted us with this window, else refused us."""

    def on_closed(self, from_broker: bool, code: int, name: str) -> None:  # noqa: FBT001
        """The connection ended (``from_broker``: the broker sent DISCONNECT)."""

    def on_puback(self, mid: int, code: int, name: str) -> None:
        """The broker acknowledged message ``mid`` with reason ``code``."""


def properties(packet_type: int) -> Properties:
    """Empty MQTT 5 properties for one packet type (paho's constructor is untyped)."""
    return Properties(packet_type)  # type: ignore[no-untyped-call]


class MqttClient:
    """One paho client, configured from :class:`MqttSettings`, reporting to a handler.

    Raises (from the constructor):
        MqttConfigError: a TLS file is missing or unusable.
    """

    def __init__(self, settings: MqttSettings, *, clock: Callable[[], float]) -> None:
        self._settings = settings
        self._clock = clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handler: LinkHandler | None = None
        self._paho = self._make_paho()

    def bind(self, loop: asyncio.AbstractEventLoop, handler: LinkHandler) -> None:
        """Forward callbacks to ``handler`` on ``loop`` from now on."""
        self._loop = loop
        self._handler = handler

    # ----------------------------------------------------------------------- connection

    async def connect(self) -> None:
        """Resolve, connect, shake hands and send CONNECT, in a worker thread.

        CONNACK comes later, through :meth:`LinkHandler.on_connack`, once :meth:`start_network`
        runs paho's thread.

        Raises:
            OSError: DNS, TCP or TLS failed (``ssl.SSLError``, ``socket.gaierror``, ...), or
                CONNECT could not be sent (``ConnectionError``).
            ValueError: paho refused the host or port.
        """
        rc = await asyncio.to_thread(self._open)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:  # paho has closed the socket already
            msg = f"cannot send CONNECT ({rc.name})"
            raise ConnectionError(msg)

    def _open(self) -> MQTTErrorCode:
        """Connect with paho, then set TCP_NODELAY (worker thread, before paho's thread runs).

        paho leaves Nagle's algorithm on, so a small PUBLISH written while an earlier segment
        is unacknowledged can wait for the peer's delayed ACK (up to 40 ms on Linux). The same
        stall on the broker's side is the big one: mosquitto's default ``set_tcp_nodelay
        false`` put p50 accept-to-PUBACK at ~11 ms instead of ~1.7 ms on loopback
        (benchmarks/delivery_bench.py); this side made no measurable throughput difference
        and trimmed the tail.
        """
        rc = self._paho.reconnect()
        sock = self._paho.socket()
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return rc

    def start_network(self) -> None:
        """Start paho's network thread for the connection :meth:`connect` opened."""
        self._paho.loop_start()

    async def join_network(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Wait (in a worker thread) for paho's thread to end; whether it did within ``timeout``.

        paho's thread ends by itself when its connection ends (automatic reconnect is off).
        """
        joining = asyncio.ensure_future(asyncio.to_thread(self._paho.loop_stop))
        await asyncio.wait({joining}, timeout=timeout)
        if not joining.done():
            return False
        self.release_socketpair()
        return True

    def disconnect(self) -> None:
        """Send DISCONNECT (normal: the broker drops the will); v5 also ends the session now."""
        ending = None
        if self._settings.is_v5 and self._settings.session_expiry_s > 0:
            ending = properties(PacketTypes.DISCONNECT)
            ending.SessionExpiryInterval = 0
        self._paho.disconnect(properties=ending)

    def release_socketpair(self) -> None:
        """Close the socket pair loop_start() made, once paho's thread is gone.

        loop_start() creates a fresh pair every time and loop_stop() never closes it
        (paho.mqtt.python #627, open), so each reconnect would leave two descriptors to the
        garbage collector. The method is private to paho; should it go away, the pair is
        left to the collector as before.
        """
        reset = getattr(self._paho, _PAHO_RESET_SOCKETS, None)
        thread = getattr(self._paho, "_thread", None)
        if callable(reset) and thread is None:
            reset(sockpair_only=True)

    # ----------------------------------------------------------------------- publishing

    def publish_event(self, message: Message, seq: int) -> int | None:
        """Hand outbox row ``seq`` to paho; its message id, or None if paho's queue is full.

        Raises:
            ValueError: paho refused the topic or the payload size.
        """
        extra = None
        if self._settings.is_v5:
            extra = properties(PacketTypes.PUBLISH)
            extra.UserProperty = [(EVENT_ID_PROPERTY, message.event_id), (SEQ_PROPERTY, str(seq))]
        info = self._paho.publish(
            message.topic,
            message.payload,
            qos=max(message.qos, 1),  # an outbox row is at-least-once by definition
            retain=message.retain,
            properties=extra,
        )
        if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            return None
        return info.mid  # NO_CONN is fine: paho keeps QoS 1 and sends it after a reconnect

    def publish_status(self, payload: bytes) -> int:
        """Publish a retained status (QoS 1); its message id."""
        return self._paho.publish(self._settings.status_topic, payload, qos=1, retain=True).mid

    def status_payload(self, status: str, *, reason: str | None, stamped: bool = True) -> bytes:
        """``{"status": ..., "gateway": client id, "at": unix time, "reason": ...}`` as JSON.

        The will is not ``stamped``: it is registered long before the broker sends it.
        """
        body: dict[str, object] = {"status": status, "gateway": self._settings.client_id}
        if stamped:
            body["at"] = round(self._clock(), 3)
        if reason is not None:
            body["reason"] = reason
        return json.dumps(body, separators=(",", ":")).encode()

    # ----------------------------------------------------------------------- paho's side

    def _make_paho(self) -> paho.Client:
        s = self._settings
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if s.is_v5 else MQTTProtocolVersion.MQTTv311,
            reconnect_on_failure=False,
        )
        client.enable_logger(PAHO_LOGGER)
        client.connect_timeout = s.connect_timeout_s
        # A safety net only: the publisher keeps its own, smaller or equal, window.
        client.max_inflight_messages_set(s.max_inflight)
        if s.username is not None:
            client.username_pw_set(s.username, s.password)
        if s.tls is not None:
            client.tls_set_context(build_ssl_context(s.tls))
            if s.tls.insecure:
                client.tls_insecure_set(value=True)  # also stops paho's own host name match
        will = None
        if s.is_v5 and s.effective_will_delay_s > 0:
            will = properties(PacketTypes.WILLMESSAGE)
            will.WillDelayInterval = s.effective_will_delay_s
        offline = self.status_payload("offline", reason="connection_lost", stamped=False)
        client.will_set(s.status_topic, offline, qos=1, retain=True, properties=will)
        session = None
        if s.is_v5 and s.session_expiry_s > 0:
            session = properties(PacketTypes.CONNECT)
            session.SessionExpiryInterval = s.session_expiry_s
        # Records where to connect (clean start on the first connect only); nothing blocks.
        client.connect_async(s.host, s.port, s.keepalive_s, properties=session)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        return client

    def _window_for(self, connack: Properties | None) -> int:
        """min(max_inflight, the broker's Receive Maximum); max_inflight for MQTT 3.1.1."""
        if not self._settings.is_v5 or connack is None:
            return self._settings.max_inflight
        receive_maximum = int(getattr(connack, "ReceiveMaximum", RECEIVE_MAXIMUM_ABSENT))
        return max(1, min(self._settings.max_inflight, receive_maximum))

    def _on_connect(
        self,
        _client: paho.Client,
        _userdata: object,
        flags: paho.ConnectFlags,
        reason_code: ReasonCode,
        connack: Properties | None,
    ) -> None:
        max_packet = getattr(connack, "MaximumPacketSize", None)
        handler = self._handler
        if handler is not None:
            self._post(
                handler.on_connack,
                flags.session_present,
                reason_code.value,
                reason_code.getName(),
                self._window_for(connack),
                None if max_packet is None else int(max_packet),
            )

    def _on_disconnect(
        self,
        _client: paho.Client,
        _userdata: object,
        flags: paho.DisconnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        handler = self._handler
        if handler is not None:
            self._post(
                handler.on_closed,
                flags.is_disconnect_packet_from_server,
                reason_code.value,
                reason_code.getName(),
            )

    def _on_publish(
        self,
        _client: paho.Client,
        _userdata: object,
        mid: int,
        reason_code: ReasonCode,
        _properties: Properties,
    ) -> None:
        handler = self._handler
        if handler is not None:
            self._post(handler.on_puback, mid, reason_code.value, reason_code.getName())

    def _post(self, callback: Callable[..., None], *args: object) -> None:
        """Run ``callback(*args)`` on the event loop: all a paho callback does."""
        loop = self._loop
        if loop is None:
            return
        # A closed loop means the process is going down: the rows stay in the outbox.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(callback, *args)
