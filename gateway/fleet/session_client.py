"""The paho client a fleet consumer runs: MQTT 5, a persistent session, acknowledged by hand.

Resolver workers and the arbiter's source both consume at QoS 1 from a session the broker keeps
while they are away (``clean_start=False``, the configured Session Expiry), and acknowledge a
message only once what it caused is safe (``manual_ack``). Credentials and TLS are those of
``[mqtt]``; paho reconnects on its own (``loop_start``), with the configured backoff.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import TYPE_CHECKING, Final

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes

from gateway.delivery.mqtt_client import PAHO_LOGGER, properties
from gateway.delivery.mqtt_tls import build_ssl_context

if TYPE_CHECKING:
    from gateway.delivery.mqtt_settings import MqttSettings

MAX_RECONNECT_DELAY_S = 30
RECEIVE_MAXIMUM: Final = 100
"""The most unacknowledged messages the broker may send us (MQTT 5 Receive Maximum): a backlog
waits in the session at the broker, and 100 batches keep a consumer busy."""
INBOX_LIMIT: Final = 100
"""The most messages handed over by paho's thread and not yet taken (:class:`InboxLimit`)."""
ADMIT_POLL_S: Final = 0.2


def session_client(settings: MqttSettings, client_id: str) -> paho.Client:
    """A configured client, its connection recorded (not opened: ``loop_start`` does that)."""
    s = settings
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=MQTTProtocolVersion.MQTTv5,
        manual_ack=True,
    )
    client.enable_logger(PAHO_LOGGER)
    client.connect_timeout = s.connect_timeout_s
    client.max_inflight_messages_set(s.max_inflight)
    client.reconnect_delay_set(
        min_delay=max(1, round(s.backoff_base_s)), max_delay=MAX_RECONNECT_DELAY_S
    )
    if s.username is not None:
        client.username_pw_set(s.username, s.password)
    if s.tls is not None:
        client.tls_set_context(build_ssl_context(s.tls))
        if s.tls.insecure:
            client.tls_insecure_set(value=True)
    set_no_delay(client)
    session = properties(PacketTypes.CONNECT)
    session.SessionExpiryInterval = s.session_expiry_s
    session.ReceiveMaximum = RECEIVE_MAXIMUM
    client.connect_async(s.host, s.port, s.keepalive_s, clean_start=False, properties=session)
    return client


def set_no_delay(client: paho.Client) -> None:
    """Turn Nagle's algorithm off on every connection the client opens, reconnections too.

    A fleet consumer's PUBACKs and outputs are small writes: with Nagle on, one can wait for
    the peer's delayed ACK (up to 40 ms on Linux), which set the fleet's p99 latency
    (docs/scaling.md). As :meth:`gateway.delivery.mqtt_client.MqttClient._open` does.
    """

    def no_delay(_client: paho.Client, _userdata: object, sock: object) -> None:
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    client.on_socket_open = no_delay


def release(client: paho.Client) -> None:
    """Stop paho's thread and close the socket pair ``loop_start`` made (paho #627)."""
    client.loop_stop()
    reset = getattr(client, "_reset_sockets", None)  # see MqttClient.release_socketpair
    if callable(reset):
        reset(sockpair_only=True)


class InboxLimit:
    """At most ``size`` messages handed over by paho's thread and not yet taken by the consumer.

    A consumer acknowledges a batch only once what it caused is safe, so whatever the broker
    sends ahead waits in the consumer's memory. The broker's flow control is not enough:
    mosquitto 2.0.11 sends past the Receive Maximum once acknowledgements flow (mosquitto
    #2301), and a busy arbiter was sent its whole backlog, gigabytes of it. So paho's thread
    waits here while the inbox is full: it stops reading, TCP pushes back, and the rest waits
    at the broker. The consumer frees a place as it takes a message, never by waiting on
    paho's thread, so the two cannot deadlock. (A consumer stalled for longer than one and a
    half keepalives is disconnected by the broker; its session keeps the rest.)
    """

    def __init__(self, size: int = INBOX_LIMIT) -> None:
        self._free = threading.Semaphore(size)
        self._closed = threading.Event()
        self._held = 0
        self._lock = threading.Lock()
        self.peak = 0
        """The most messages the inbox ever held."""

    def admit(self) -> bool:
        """In paho's thread, before handing a message over: wait for a place.

        False once closed: the message is then dropped unacknowledged, and the broker sends
        it again in the session's next connection.
        """
        while not self._free.acquire(timeout=ADMIT_POLL_S):
            if self._closed.is_set():
                return False
        with self._lock:
            self._held += 1
            self.peak = max(self.peak, self._held)
        return True

    def taken(self) -> None:
        """In the consumer, for each message it takes from the inbox."""
        with self._lock:
            self._held -= 1
        self._free.release()

    def close(self) -> None:
        """Let paho's thread go (before stopping it): it admits nothing more."""
        self._closed.set()
