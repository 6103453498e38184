"""The TLS context the MQTT publisher hands to paho, built here rather than by ``tls_set``.

Building the :class:`ssl.SSLContext` ourselves keeps the policy in one readable place:
TLS 1.2 or newer, the broker's certificate verified against the configured CA (or the system
trust store) and its host name checked by the context itself, an optional client certificate,
and an explicit, logged ``insecure`` switch for labs. File problems surface at start-up as
:class:`~gateway.delivery.mqtt_settings.MqttConfigError` naming the setting, never later as a
reconnect loop. A passphrase-protected key is refused rather than letting OpenSSL prompt on a
terminal the daemon does not have.

One more thing the context does: paho wraps the TCP socket and runs the handshake itself, and
when the handshake fails (untrusted CA, wrong host name) it drops the socket without closing
it. Its file descriptor then lingers until the garbage collector finds it (and Python warns).
:class:`ClosingSSLSocket`, installed as the context's ``sslsocket_class``, closes the socket
when its handshake fails.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

import structlog

from gateway.delivery.mqtt_settings import MqttConfigError

if TYPE_CHECKING:
    from pathlib import Path

    from gateway.delivery.mqtt_settings import MqttTls

log = structlog.get_logger(__name__)


class ClosingSSLSocket(ssl.SSLSocket):
    """An :class:`ssl.SSLSocket` that closes itself when its handshake fails."""

    def do_handshake(self, block: bool = False) -> None:  # noqa: FBT001, FBT002 - ssl's signature
        """Run the handshake; on any failure close the socket, then re-raise."""
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


class _EncryptedKeyError(Exception):
    """Raised from the passphrase callback: the key needs a passphrase we do not have."""


def _no_passphrase() -> str:
    raise _EncryptedKeyError


def build_ssl_context(tls: MqttTls) -> ssl.SSLContext:
    """The client context for ``tls``: TLS >= 1.2, verification on unless ``tls.insecure``.

    Raises:
        MqttConfigError: a file is missing, unreadable, not PEM, or the key is encrypted.
    """
    context = _trusting_context(tls.ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls.cert_file is not None:
        _load_client_certificate(context, tls.cert_file, tls.key_file)
    if tls.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        log.warning(
            "mqtt_tls_insecure",
            detail="broker certificate and host name are NOT verified (mqtt.tls.insecure)",
        )
    context.sslsocket_class = ClosingSSLSocket
    return context


def _trusting_context(ca_file: Path | None) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=None if ca_file is None else str(ca_file)
        )
    except OSError as exc:  # FileNotFoundError, PermissionError, ssl.SSLError (not PEM)
        msg = f"mqtt.tls.ca_file {ca_file}: {_reason(exc)}"
        raise MqttConfigError(msg) from exc


def _load_client_certificate(context: ssl.SSLContext, cert: Path, key: Path | None) -> None:
    where = f"mqtt.tls.cert_file {cert}" + ("" if key is None else f" / key_file {key}")
    try:
        context.load_cert_chain(cert, key, password=_no_passphrase)
    except _EncryptedKeyError:
        msg = f"{where}: the key is passphrase-protected; give the gateway an unencrypted key"
        raise MqttConfigError(msg) from None
    except OSError as exc:
        msg = f"{where}: {_reason(exc)} (PEM certificate and matching private key expected)"
        raise MqttConfigError(msg) from exc


def _reason(exc: OSError) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    return exc.strerror or type(exc).__name__
