"""Building the daemon from a checked configuration: MQTT settings, outbox, ops, logging.

Everything that can be wrong with the configuration or its secrets is found here, before the
radio or the broker is touched: :func:`mqtt_settings` raises :class:`ConfigError` naming the
field, and the outbox is opened before the source starts (waiting, with its reason on
``/healthz``, while its disk is full or read-only: :mod:`gateway.outbox_startup`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from prometheus_client import generate_latest

from gateway.daemon import Daemon
from gateway.delivery.mqtt import MqttPublisher
from gateway.delivery.mqtt_settings import MqttConfigError, MqttSettings, MqttTls
from gateway.delivery_config import find_mqtt_password
from gateway.errors import ConfigError, GatewayError, Problem
from gateway.ops.http import OpsServer
from gateway.ops.live import LiveState
from gateway.ops.metrics import LatencyHistogram, metrics_registry
from gateway.ops.sdnotify import Notifier
from gateway.outbox_startup import open_outbox
from gateway.sealed_file import SecretFileError
from gateway.topics import Topics

if TYPE_CHECKING:
    from gateway.assemble import Assembly
    from gateway.config import Config
    from gateway.delivery.outbox_async import AsyncOutbox
    from gateway.sources.base import SightingSource

CLIENT_ID_PREFIX: Final = "beacon-gateway-"


def mqtt_settings(config: Config, source: str) -> MqttSettings:
    """The publisher's settings from ``[mqtt]`` and the password's secret store."""
    mqtt = config.mqtt
    if mqtt is None:
        raise ConfigError(source, [Problem("mqtt", "is needed to publish")])
    try:
        password = find_mqtt_password(mqtt)
    except SecretFileError as exc:
        raise ConfigError(source, [Problem("mqtt.password_file", str(exc))]) from None
    topics = Topics(mqtt.topic_prefix, config.site, config.gateway_id)
    tls = (
        None
        if mqtt.tls is None
        else MqttTls(
            ca_file=mqtt.tls.ca_file,
            cert_file=mqtt.tls.cert_file,
            key_file=mqtt.tls.key_file,
            insecure=mqtt.tls.insecure,
        )
    )
    try:
        return MqttSettings(
            host=mqtt.host,
            port=mqtt.effective_port,
            protocol=mqtt.protocol,
            client_id=mqtt.client_id or f"{CLIENT_ID_PREFIX}{config.gateway_id}",
            status_topic=topics.status,
            keepalive_s=mqtt.keepalive_s,
            username=mqtt.username,
            password=password,
            tls=tls,
            session_expiry_s=mqtt.session_expiry_s,
            will_delay_s=mqtt.will_delay_s,
            max_inflight=mqtt.max_inflight,
            backoff_base_s=mqtt.backoff_base_s,
            backoff_cap_s=mqtt.backoff_cap_s,
            on_refused=mqtt.on_refused,
            max_attempts=mqtt.max_attempts,
            connect_timeout_s=mqtt.connect_timeout_s,
        )
    except MqttConfigError as exc:
        raise ConfigError(source, [Problem("mqtt", str(exc))]) from None


async def serve(
    config: Config,
    settings: MqttSettings,
    assembly: Assembly,
    source: SightingSource,
    *,
    finite: bool,
    horizon_s: float,
    speed: float = 1.0,
) -> None:
    """Open the outbox, connect, and run until stopped (or the finite source is done).

    The outbox is waited for while its disk is full or read-only (:mod:`gateway.outbox_startup`).
    """
    notifier = Notifier()
    outbox = await open_outbox(config, notifier)
    if outbox is None:
        return  # stopped while waiting for the outbox
    try:
        daemon = _build(
            config, settings, assembly, source, outbox, finite, horizon_s, speed, notifier
        )
    except BaseException:
        await outbox.aclose()
        raise
    try:
        await daemon.run()
    except ExceptionGroup as group:
        # A part failed for a reason we know (the outbox's disk, the source): say that, not
        # the task group's traceback.
        known = next((e for e in group.exceptions if isinstance(e, GatewayError)), None)
        if known is not None:
            raise known from None
        raise


def _build(  # noqa: PLR0917 - internal: the parts of serve()
    config: Config,
    settings: MqttSettings,
    assembly: Assembly,
    source: SightingSource,
    outbox: AsyncOutbox,
    finite: bool,  # noqa: FBT001
    horizon_s: float,
    speed: float,
    notifier: Notifier,
) -> Daemon:
    assert config.mqtt is not None  # noqa: S101 - mqtt_settings checked it
    latency = LatencyHistogram()
    publisher = MqttPublisher(settings, outbox, on_ack=latency.observe)
    ops = None
    live = None
    daemon: Daemon
    if config.http.enabled:
        live = LiveState(
            [zone.id for zone in config.zone_specs()],
            site=config.site,
            gateway_id=config.gateway_id,
        )
        # Late-bound: the daemon is built below and the server only calls these once it runs.
        ops = OpsServer(
            lambda: generate_latest(registry),
            lambda: daemon.health(),  # noqa: PLW0108
            lambda: daemon.live_view(),  # noqa: PLW0108
        )
    daemon = Daemon(
        assembly,
        source,
        Topics(config.mqtt.topic_prefix, config.site, config.gateway_id),
        outbox,
        publisher,
        finite=finite,
        horizon_s=horizon_s,
        ops=ops,
        ops_address=(config.http.host, config.http.port),
        speed=speed,
        notifier=notifier,
        live=live,
    )
    registry = metrics_registry(daemon, latency)
    bind_commit = getattr(source, "bind_commit", None)
    if callable(bind_commit):  # a source that acknowledges what it read once it is durable
        bind_commit(outbox.flush)
    return daemon
