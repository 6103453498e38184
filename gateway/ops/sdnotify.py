"""systemd's notification protocol (sd_notify): READY, WATCHDOG, STATUS, STOPPING.

One datagram to the AF_UNIX socket named by ``$NOTIFY_SOCKET`` (a leading ``@`` names the
abstract namespace). Without the variable (not under systemd, or ``Type=simple``) every call
is a no-op. A failed send is reported as False, never raised: the gateway must not stop sensing
because the notification socket went away.
"""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Mapping

NOTIFY_SOCKET: Final = "NOTIFY_SOCKET"
WATCHDOG_USEC: Final = "WATCHDOG_USEC"


class Notifier:
    """Sends sd_notify messages to the socket of ``environ`` (default: this process's)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        address = environ.get(NOTIFY_SOCKET, "")
        self._address = "\0" + address[1:] if address.startswith("@") else address
        usec = environ.get(WATCHDOG_USEC, "")
        self.watchdog_s: float | None = int(usec) / 1e6 if usec.isdigit() and int(usec) else None
        """The watchdog period systemd expects (ping at about half of it), or None."""

    @property
    def enabled(self) -> bool:
        """Whether a notification socket is configured."""
        return bool(self._address)

    def notify(self, **fields: str | int) -> bool:
        """Send ``KEY=value`` lines (``ready=1`` becomes ``READY=1``); True if sent."""
        if not self._address or not fields:
            return False
        message = "\n".join(f"{key.upper()}={value}" for key, value in fields.items())
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(message.encode(), self._address)
        except OSError:
            return False
        return True

    def ready(self, status: str) -> bool:
        """The service is up (``Type=notify``)."""
        return self.notify(ready=1, status=status)

    def watchdog(self) -> bool:
        """The service is healthy: reset systemd's watchdog timer."""
        return self.notify(watchdog=1)

    def status(self, status: str) -> bool:
        """A one-line human-readable state (``systemctl status``)."""
        return self.notify(status=status)

    def stopping(self) -> bool:
        """The service is shutting down."""
        return self.notify(stopping=1)
