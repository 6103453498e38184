"""The demo's error: something it needs is missing or failed; the message says what to do."""

from __future__ import annotations

from gateway.errors import GatewayError


class DemoError(GatewayError):
    """The demo cannot go on; ``str()`` is the message for the user (with the fix, if any)."""
