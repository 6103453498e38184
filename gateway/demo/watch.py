"""The demo's subscriber: paho-mqtt, MQTT 5, QoS 1, on ``<prefix>/v1/#``.

It runs on the demo's own thread (:meth:`Watcher.pump` between the demo's other checks), not
in a paho thread: printing, counting and stopping then never race, and no thread is alive
when the demo starts its child processes. It subscribes before the gateway starts, so it
receives every event the gateway publishes.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.subscribeoptions import SubscribeOptions

from gateway.demo.errors import DemoError

if TYPE_CHECKING:
    from paho.mqtt.properties import Properties
    from paho.mqtt.reasoncodes import ReasonCode

SUBSCRIBE_LIMIT_S: Final = 10.0
"""How long connecting and subscribing may take before the demo gives up."""
KEEPALIVE_S: Final = 30

Handler = Callable[[str, bytes], None]


class Watcher:
    """A subscription to ``topic`` on the broker at 127.0.0.1:``port``.

    ``handler(topic, payload)`` is called for each message, on the thread that calls
    :meth:`pump`.
    """

    def __init__(self, port: int, topic: str, handler: Handler) -> None:
        self.port = port
        self.topic = topic
        self.last_message: float | None = None
        """``time.monotonic()`` of the last message received."""
        self._handler = handler
        self._subscribed = False
        self._refused: str | None = None
        self._connected = False
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"beacon-gateway-demo-{uuid.uuid4().hex[:8]}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._client.on_disconnect = self._on_disconnect

    @property
    def connected(self) -> bool:
        """Whether the subscriber is connected (and so receiving)."""
        return self._connected

    def start(self, interrupted: Callable[[], bool] = lambda: False) -> None:
        """Connect and wait until the subscription is granted (DemoError if it is not)."""
        try:
            self._client.connect("127.0.0.1", self.port, keepalive=KEEPALIVE_S)
        except OSError as exc:
            msg = f"the subscriber cannot connect to the broker on port {self.port}: {exc}"
            raise DemoError(msg) from None
        deadline = time.monotonic() + SUBSCRIBE_LIMIT_S
        while not self._subscribed and not interrupted():
            self.pump(0.05)
            if self._refused is not None:
                msg = f"the broker refused the subscriber: {self._refused}"
                raise DemoError(msg)
            if time.monotonic() > deadline:
                msg = f"the subscription to {self.topic} was not granted in {SUBSCRIBE_LIMIT_S} s"
                raise DemoError(msg)

    def pump(self, timeout_s: float) -> None:
        """Handle network traffic for up to ``timeout_s`` (messages go to the handler)."""
        if self._client.loop(timeout_s) is not MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._connected = False
            time.sleep(timeout_s)  # not connected: do not spin

    def stop(self) -> None:
        """Disconnect (idempotent)."""
        if self._connected:
            self._client.disconnect()
            self._client.loop(0.1)
        self._connected = False

    def _on_connect(
        self,
        client: paho.Client,
        _userdata: object,
        _flags: paho.ConnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            self._refused = str(reason_code)
            return
        self._connected = True
        client.subscribe(self.topic, options=SubscribeOptions(qos=1))

    def _on_subscribe(
        self,
        _client: paho.Client,
        _userdata: object,
        _mid: int,
        reason_codes: list[ReasonCode],
        _properties: Properties | None,
    ) -> None:
        refused = [code for code in reason_codes if code.is_failure]
        if refused:
            self._refused = str(refused[0])
        else:
            self._subscribed = True

    def _on_message(
        self, _client: paho.Client, _userdata: object, message: paho.MQTTMessage
    ) -> None:
        self.last_message = time.monotonic()
        self._handler(message.topic, bytes(message.payload))

    def _on_disconnect(
        self,
        _client: paho.Client,
        _userdata: object,
        _flags: paho.DisconnectFlags,
        _reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        self._connected = False
