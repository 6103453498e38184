"""beacon-gateway: the receiver.

Sources (bleak, simulator, replay) feed sightings through the pipeline (frame parsing, identity,
signal filtering, presence) to events, a durable outbox and MQTT. ``gateway.core`` is pure; the
adapters do the I/O.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("beacon-gateway")
except PackageNotFoundError:  # pragma: no cover - running from a source tree that is not installed
    __version__ = "0+unknown"
