"""bluetoothd's view of one adapter, read from bleak's BlueZ manager cache (no D-Bus traffic).

bleak's BlueZ backend keeps every ``org.bluez`` object's properties in one ``BlueZManager`` per
event loop, updated from ``InterfacesAdded``, ``InterfacesRemoved`` and ``PropertiesChanged``
(bleak 3.1 ``backends/bluezdbus/manager.py``). That cache is the cheapest way to notice that the
adapter was powered off, removed, or stopped discovering: a dictionary lookup, no round trip,
no extra bus connection. bleak has no public accessor for adapter properties, so this module
is the one place that reads its private attributes; if a later bleak changes them, every
reading is :attr:`AdapterState.UNKNOWN` and the source falls back to its silence watchdog
(tests/gateway/test_bleak_source.py pins the readings against bleak's real backend).

What the cache cannot show: a bluetoothd that crashed. Its objects stay in the cache, looking
powered and discovering, until a new bluetoothd exports new ones (bleak does not watch
``NameOwnerChanged``); only the silence watchdog catches that.
"""

from __future__ import annotations

import asyncio
import enum
from typing import Any, Final

ADAPTER_INTERFACE: Final = "org.bluez.Adapter1"


class AdapterState(enum.StrEnum):
    """One adapter as bluetoothd last described it."""

    OK = "ok"
    """Present and powered (and discovering, when that was asked about)."""
    POWERED_OFF = "powered-off"
    """Present with ``Powered`` false: ``bluetoothctl power off``, rfkill, a reset under way."""
    MISSING = "adapter-missing"
    """Not among bluetoothd's objects: unplugged, mid-reset, or bluetoothd stopped cleanly."""
    NOT_DISCOVERING = "discovery-stopped"
    """Powered, but ``Discovering`` is false: our discovery session is gone."""
    UNKNOWN = "unknown"
    """No view of bluetoothd (another backend, no manager on this loop yet, a bleak change)."""


DOWN_STATES: Final = frozenset(
    {AdapterState.POWERED_OFF, AdapterState.MISSING, AdapterState.NOT_DISCOVERING}
)
"""States in which the scanner hears nothing until it is started again."""

UNUSABLE_STATES: Final = frozenset({AdapterState.POWERED_OFF, AdapterState.MISSING})
"""States in which starting the scanner cannot work: wait for the adapter to come back."""


def _manager() -> Any:  # noqa: ANN401 - bleak's BlueZManager, reached through private names
    from bleak.backends.bluezdbus import manager as bluez_manager  # noqa: PLC0415 - Linux only

    instances: dict[asyncio.AbstractEventLoop, Any] = getattr(
        bluez_manager, "_global_instances", {}
    )
    return instances.get(asyncio.get_running_loop())


def adapter_path(adapter: str | None) -> str | None:
    """The D-Bus path bleak scans with: ``/org/bluez/<adapter>``, or its default adapter's.

    For the default adapter (``None``) this asks bleak which one it would pick now, so call it
    right after a successful start; None when it cannot tell.
    """
    if adapter:
        return f"/org/bluez/{adapter}"
    try:
        manager = _manager()
        if manager is None:
            return None
        path = manager.get_default_adapter()
    except Exception:  # noqa: BLE001 - no adapter, no manager, a bleak change: cannot tell
        return None
    return path if isinstance(path, str) else None


def adapter_state(path: str | None, *, discovering: bool) -> AdapterState:
    """The adapter at ``path`` as bleak's cache describes it; ``discovering`` also checks that.

    Call it on the event loop the scanner runs on (bleak keeps one manager per loop). ``path``
    None (a default adapter bleak has not picked yet) reads :attr:`AdapterState.UNKNOWN`.
    """
    if path is None:
        return AdapterState.UNKNOWN
    try:
        manager = _manager()
        if manager is None or getattr(manager, "_bus", None) is None:
            return AdapterState.UNKNOWN
        objects: dict[str, dict[str, dict[str, Any]]] = manager._properties  # noqa: SLF001
        properties = objects.get(path, {}).get(ADAPTER_INTERFACE)
    except Exception:  # noqa: BLE001 - a bleak change: fall back to the silence watchdog
        return AdapterState.UNKNOWN
    return state_of(properties, discovering=discovering)


def state_of(properties: dict[str, Any] | None, *, discovering: bool) -> AdapterState:
    """The state an ``org.bluez.Adapter1`` property set shows (None: no such adapter)."""
    if properties is None:
        return AdapterState.MISSING
    if not properties.get("Powered", False):
        return AdapterState.POWERED_OFF
    if discovering and not properties.get("Discovering", False):
        return AdapterState.NOT_DISCOVERING
    return AdapterState.OK
