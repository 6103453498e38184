"""A fake bluetoothd: ``org.bluez`` objects on a private dbus-daemon, for bleak's real backend.

bleak's BlueZ backend talks to the *system* bus; pointing ``DBUS_SYSTEM_BUS_ADDRESS`` at a
private ``dbus-daemon`` (started by :func:`start_private_bus`) and exporting these objects on it
runs bleak's real ``BleakScannerBlueZDBus`` and ``BlueZManager`` code: discovery filters,
StartDiscovery/StopDiscovery, advertisement monitors, error replies and bluetoothd restarts.

What bleak reads (bleak 3.1 ``backends/bluezdbus/manager.py``): ``GetManagedObjects`` on ``/``
(dbus-fast answers it for every exported object and sends ``InterfacesAdded``/``Removed`` on
export/unexport, which is all bleak's signal match rules need); ``Adapter1.Roles`` and
``Powered`` (only to pick a default adapter); ``Device1`` ``Address``, ``Alias``, ``Adapter``,
``RSSI``, ``UUIDs``, ``ServiceData``, ``ManufacturerData`` and the optional ``TxPower`` and
``Name``. The scanner never runs ``bluetoothctl --version`` (only ``BleakClient`` does).

The replies follow bluetoothd's (src/adapter.c): a powered-off adapter answers discovery calls
with ``org.bluez.Error.NotReady``, a second StartDiscovery with ``InProgress``, a StopDiscovery
without a session with ``Failed``.

No ``from __future__ import annotations`` here: dbus-fast reads the D-Bus signatures from the
annotations when the classes are created.
"""

import asyncio
import contextlib
import select
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Annotated, Any, Final, Self

from dbus_fast import BusType, DBusError, Message, MessageType, PropertyAccess, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import (
    DBusBool,
    DBusDict,
    DBusInt16,
    DBusObjectPath,
    DBusSignature,
    DBusStr,
)
from dbus_fast.service import ServiceInterface, dbus_method, dbus_property
from dbus_fast.unpack import unpack_variants

BLUEZ: Final = "org.bluez"
ADAPTER_INTERFACE: Final = "org.bluez.Adapter1"
DEVICE_INTERFACE: Final = "org.bluez.Device1"
MONITOR_MANAGER_INTERFACE: Final = "org.bluez.AdvertisementMonitorManager1"
MONITOR_INTERFACE: Final = "org.bluez.AdvertisementMonitor1"

IN_PROGRESS: Final = "org.bluez.Error.InProgress"
NOT_READY: Final = "org.bluez.Error.NotReady"
FAILED: Final = "org.bluez.Error.Failed"
ALREADY_EXISTS: Final = "org.bluez.Error.AlreadyExists"
DOES_NOT_EXIST: Final = "org.bluez.Error.DoesNotExist"

DBusStrList = Annotated[list[str], DBusSignature("as")]
DBusManufacturerData = Annotated[dict[int, Variant], DBusSignature("a{qv}")]

_BUS_CONFIG: Final = """<!DOCTYPE busconfig PUBLIC
 "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""
"""No service directories: an unowned name gives ServiceUnknown instead of an activation."""

_START_TIMEOUT_S: Final = 10.0


# --------------------------------------------------------------------------- the private bus


def dbus_daemon_path() -> str | None:
    """The ``dbus-daemon`` executable, or None when it is not installed."""
    return shutil.which("dbus-daemon")


@dataclass
class PrivateBus:
    """A ``dbus-daemon`` child process listening on a unix socket in a temporary directory."""

    address: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        """Terminate the daemon and reap it (kill it if it does not go)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()


def start_private_bus(directory: Path, executable: str) -> PrivateBus:
    """Start ``dbus-daemon`` with a permissive config and wait for its address.

    The socket lives in ``directory``; keep that path short (unix sockets allow ~107 bytes).
    """
    socket_path = directory / "bus"
    config = directory / "bus.conf"
    config.write_text(_BUS_CONFIG.format(socket=socket_path), encoding="utf-8")
    process = subprocess.Popen(
        [executable, f"--config-file={config}", "--nofork", "--print-address"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], _START_TIMEOUT_S)
    line = process.stdout.readline().decode().strip() if ready else ""
    if not line:
        PrivateBus("", process).stop()
        msg = f"dbus-daemon did not print its address within {_START_TIMEOUT_S} s"
        raise RuntimeError(msg)
    return PrivateBus(line, process)


# --------------------------------------------------------------------------- org.bluez objects


class FakeAdapter(ServiceInterface):
    """``org.bluez.Adapter1``: records discovery calls and can answer them with errors."""

    def __init__(
        self,
        name: str = "hci0",
        *,
        address: str = "00:1A:7D:DA:71:13",
        powered: bool = True,
        roles: tuple[str, ...] = ("central", "peripheral"),
    ) -> None:
        super().__init__(ADAPTER_INTERFACE)
        self.hci = name  # not ``name``: ServiceInterface.name is the interface name
        self.path = f"/org/bluez/{name}"
        self.calls: list[tuple[str, object]] = []
        self._address = address
        self._powered = powered
        self._roles = list(roles)
        self._discovering = False
        self._errors: defaultdict[str, list[tuple[str, str]]] = defaultdict(list)

    def fail_next(self, method: str, error: str, text: str = "", *, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with the D-Bus error ``error``."""
        self._errors[method].extend([(error, text or error)] * times)

    def count(self, method: str) -> int:
        """How many times ``method`` was called (failed calls included)."""
        return sum(1 for name, _ in self.calls if name == method)

    @property
    def powered(self) -> bool:
        """Whether the adapter is powered."""
        return self._powered

    @property
    def discovering(self) -> bool:
        """Whether a discovery session runs (what ``Discovering`` says)."""
        return self._discovering

    def set_powered(self, *, powered: bool) -> None:
        """Power the adapter on or off, as ``bluetoothctl power`` would.

        Powering off ends discovery (bluetoothd drops every client's session, so after power on
        nothing is discovering until a client starts again).
        """
        self._powered = powered
        changed: dict[str, Any] = {"Powered": powered}
        if not powered and self._discovering:
            self._discovering = False
            changed["Discovering"] = False
        self.emit_properties_changed(changed)

    def stop_discovering(self) -> None:
        """Discovery ends behind the client's back (a stalled or reset controller): only
        ``Discovering`` goes false, the adapter stays powered, and a StopDiscovery then fails."""
        self._discovering = False
        self.emit_properties_changed({"Discovering": False})

    def _enter(self, method: str, args: object = None) -> None:
        self.calls.append((method, args))
        if self._errors[method]:
            error, text = self._errors[method].pop(0)
            raise DBusError(error, text)
        if not self._powered:
            raise DBusError(NOT_READY, "Resource Not Ready")

    @dbus_property(PropertyAccess.READ, name="Address")
    def address_property(self) -> DBusStr:
        return self._address

    @dbus_property(PropertyAccess.READ, name="AddressType")
    def address_type_property(self) -> DBusStr:
        return "public"

    @dbus_property(PropertyAccess.READ, name="Name")
    def name_property(self) -> DBusStr:
        return "fake"

    @dbus_property(PropertyAccess.READ, name="Alias")
    def alias_property(self) -> DBusStr:
        return "fake"

    @dbus_property(PropertyAccess.READ, name="Powered")
    def powered_property(self) -> DBusBool:
        return self._powered

    @dbus_property(PropertyAccess.READ, name="Discovering")
    def discovering_property(self) -> DBusBool:
        return self._discovering

    @dbus_property(PropertyAccess.READ, name="Roles")
    def roles_property(self) -> DBusStrList:
        return self._roles

    @dbus_method(name="SetDiscoveryFilter")
    def set_discovery_filter(self, filters: DBusDict) -> None:
        self._enter("SetDiscoveryFilter", unpack_variants(filters))

    @dbus_method(name="StartDiscovery")
    def start_discovery(self) -> None:
        self._enter("StartDiscovery")
        if self._discovering:
            raise DBusError(IN_PROGRESS, "Operation already in progress")
        self._discovering = True
        self.emit_properties_changed({"Discovering": True})

    @dbus_method(name="StopDiscovery")
    def stop_discovery(self) -> None:
        self._enter("StopDiscovery")
        if not self._discovering:
            raise DBusError(FAILED, "No discovery started")
        self._discovering = False
        self.emit_properties_changed({"Discovering": False})


class FakeMonitorManager(ServiceInterface):
    """``org.bluez.AdvertisementMonitorManager1`` (BlueZ only exports it with Experimental)."""

    def __init__(self) -> None:
        super().__init__(MONITOR_MANAGER_INTERFACE)
        self.calls: list[tuple[str, str]] = []
        self.registered: dict[str, str] = {}
        """Application root path -> the unique bus name of the client that registered it."""
        self.caller = ""
        """Set by :class:`FakeBluez`'s message filter just before a method runs."""

    @dbus_property(PropertyAccess.READ, name="SupportedMonitorTypes")
    def supported_monitor_types(self) -> DBusStrList:
        return ["or_patterns"]

    @dbus_property(PropertyAccess.READ, name="SupportedFeatures")
    def supported_features(self) -> DBusStrList:
        return []

    @dbus_method(name="RegisterMonitor")
    def register_monitor(self, application: DBusObjectPath) -> None:
        self.calls.append(("RegisterMonitor", application))
        if application in self.registered:
            raise DBusError(ALREADY_EXISTS, "Already Exists")
        self.registered[application] = self.caller

    @dbus_method(name="UnregisterMonitor")
    def unregister_monitor(self, application: DBusObjectPath) -> None:
        self.calls.append(("UnregisterMonitor", application))
        if self.registered.pop(application, None) is None:
            raise DBusError(DOES_NOT_EXIST, "Does Not Exist")


class FakeDevice(ServiceInterface):
    """``org.bluez.Device1``: one remote device as bluetoothd caches it (no Name, no TxPower)."""

    def __init__(
        self,
        adapter_path: str,
        address: str,
        *,
        rssi: int,
        service_data: dict[str, bytes] | None = None,
        manufacturer_data: dict[int, bytes] | None = None,
        uuids: list[str] | None = None,
    ) -> None:
        super().__init__(DEVICE_INTERFACE)
        self.address = address
        self.adapter_path = adapter_path
        self.path = f"{adapter_path}/dev_{address.replace(':', '_')}"
        self.rssi = rssi
        self.service_data = dict(service_data or {})
        self.manufacturer_data = dict(manufacturer_data or {})
        self.uuids = list(uuids or [])
        self.connected = False

    def advertise(
        self, *, rssi: int | None = None, service_data: dict[str, bytes] | None = None
    ) -> None:
        """What bluetoothd signals for a new advert: the properties that changed.

        With ``DuplicateData=True`` bluetoothd re-sends ``ServiceData`` even when unchanged, so
        ``service_data`` is always included when given.
        """
        changed: dict[str, Any] = {}
        if rssi is not None:
            self.rssi = rssi
            changed["RSSI"] = rssi
        if service_data is not None:
            self.service_data = dict(service_data)
            changed["ServiceData"] = self._service_data_variants()
        self.emit_properties_changed(changed)

    def set_connected(self, *, connected: bool) -> None:
        """A non-advert property change: bleak re-sends the cached advert data for it."""
        self.connected = connected
        self.emit_properties_changed({"Connected": connected})

    def _service_data_variants(self) -> dict[str, Variant]:
        return {uuid: Variant("ay", data) for uuid, data in self.service_data.items()}

    @dbus_property(PropertyAccess.READ, name="Address")
    def address_property(self) -> DBusStr:
        return self.address

    @dbus_property(PropertyAccess.READ, name="AddressType")
    def address_type_property(self) -> DBusStr:
        return "random"

    @dbus_property(PropertyAccess.READ, name="Alias")
    def alias_property(self) -> DBusStr:
        # bluetoothd's alias for a nameless device; bleak turns it into name=None
        return self.address.replace(":", "-")

    @dbus_property(PropertyAccess.READ, name="Adapter")
    def adapter_property(self) -> DBusObjectPath:
        return self.adapter_path

    @dbus_property(PropertyAccess.READ, name="Paired")
    def paired_property(self) -> DBusBool:
        return False

    @dbus_property(PropertyAccess.READ, name="Connected")
    def connected_property(self) -> DBusBool:
        return self.connected

    @dbus_property(PropertyAccess.READ, name="RSSI")
    def rssi_property(self) -> DBusInt16:
        return self.rssi

    @dbus_property(PropertyAccess.READ, name="UUIDs")
    def uuids_property(self) -> DBusStrList:
        return self.uuids

    @dbus_property(PropertyAccess.READ, name="ServiceData")
    def service_data_property(self) -> DBusDict:
        return self._service_data_variants()

    @dbus_property(PropertyAccess.READ, name="ManufacturerData")
    def manufacturer_data_property(self) -> DBusManufacturerData:
        return {key: Variant("ay", data) for key, data in self.manufacturer_data.items()}


class FakeDeviceWithTxPower(FakeDevice):
    """A device whose advert carries the TX-power AD field (bluetoothd then exports TxPower)."""

    def __init__(self, adapter_path: str, address: str, *, tx_power: int, **kwargs: Any) -> None:
        super().__init__(adapter_path, address, **kwargs)
        self.tx_power = tx_power

    @dbus_property(PropertyAccess.READ, name="TxPower")
    def tx_power_property(self) -> DBusInt16:
        return self.tx_power


# --------------------------------------------------------------------------- the daemon


@dataclass
class _Connection:
    bus: MessageBus
    adapters: dict[str, FakeAdapter] = field(default_factory=dict)
    monitors: dict[str, FakeMonitorManager] = field(default_factory=dict)
    devices: list[FakeDevice] = field(default_factory=list)


class FakeBluez:
    """bluetoothd on a private bus: adapters, devices, and a way to crash and restart it.

    Use as ``async with FakeBluez(address) as bluez:``; :meth:`start` (called on entry unless
    ``start=False``) connects, exports the adapters and takes the ``org.bluez`` name.
    """

    def __init__(
        self,
        bus_address: str,
        *,
        adapters: tuple[str, ...] = ("hci0",),
        powered: bool = True,
        experimental: bool = True,
        start: bool = True,
    ) -> None:
        self._bus_address = bus_address
        self._adapter_names = adapters
        self._powered = powered
        self._experimental = experimental
        self._start_on_enter = start
        self._connection: _Connection | None = None
        self.generation = 0
        """How many times bluetoothd has started (each start makes new adapter objects)."""

    async def __aenter__(self) -> Self:
        if self._start_on_enter:
            await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def adapters(self) -> dict[str, FakeAdapter]:
        """The current bluetoothd's adapters by name (new objects after a restart)."""
        return self._live().adapters

    @property
    def monitor_managers(self) -> dict[str, FakeMonitorManager]:
        """The current bluetoothd's advertisement monitor managers by adapter name."""
        return self._live().monitors

    @property
    def running(self) -> bool:
        """Whether this bluetoothd currently holds the ``org.bluez`` name."""
        return self._connection is not None

    def _live(self) -> _Connection:
        if self._connection is None:
            msg = "the fake bluetoothd is not running"
            raise RuntimeError(msg)
        return self._connection

    async def start(self) -> None:
        """Connect, export one adapter object per name, then own ``org.bluez``."""
        if self._connection is not None:
            return
        bus = await MessageBus(bus_address=self._bus_address, bus_type=BusType.SYSTEM).connect()
        connection = _Connection(bus)
        bus.add_message_handler(self._note_caller)
        for name in self._adapter_names:
            adapter = FakeAdapter(name, powered=self._powered)
            bus.export(adapter.path, adapter)
            connection.adapters[name] = adapter
            if self._experimental:
                manager = FakeMonitorManager()
                bus.export(adapter.path, manager)
                connection.monitors[name] = manager
        await bus.request_name(BLUEZ)
        self._connection = connection
        self.generation += 1

    def _note_caller(self, message: Message) -> None:
        # dbus-fast does not pass the caller to methods; RegisterMonitor needs it.
        connection = self._connection
        if (
            connection is not None
            and message.message_type is MessageType.METHOD_CALL
            and message.interface == MONITOR_MANAGER_INTERFACE
        ):
            for name, manager in connection.monitors.items():
                if connection.adapters[name].path == message.path:
                    manager.caller = message.sender or ""

    async def stop(self, *, graceful: bool = True) -> None:
        """bluetoothd going away.

        ``graceful``: like a ``systemctl stop`` (objects removed with InterfacesRemoved, name
        released); otherwise like a crash (the connection just drops; clients get no
        InterfacesRemoved and keep stale objects, as bleak does).
        """
        connection, self._connection = self._connection, None
        if connection is None:
            return
        bus = connection.bus
        if graceful:
            for device in connection.devices:
                bus.unexport(device.path)
            for adapter in connection.adapters.values():
                bus.unexport(adapter.path)
            await bus.release_name(BLUEZ)
        bus.disconnect()
        disconnected: Callable[[], Awaitable[None]] = bus.wait_for_disconnect
        with contextlib.suppress(Exception):
            await disconnected()

    def add_device(
        self,
        address: str,
        *,
        rssi: int = -60,
        service_data: dict[str, bytes] | None = None,
        manufacturer_data: dict[int, bytes] | None = None,
        uuids: list[str] | None = None,
        tx_power: int | None = None,
        adapter: str = "hci0",
    ) -> FakeDevice:
        """A device discovered by ``adapter``: exported, which sends InterfacesAdded."""
        connection = self._live()
        adapter_path = connection.adapters[adapter].path
        device: FakeDevice
        if tx_power is None:
            device = FakeDevice(
                adapter_path,
                address,
                rssi=rssi,
                service_data=service_data,
                manufacturer_data=manufacturer_data,
                uuids=uuids,
            )
        else:
            device = FakeDeviceWithTxPower(
                adapter_path,
                address,
                tx_power=tx_power,
                rssi=rssi,
                service_data=service_data,
                manufacturer_data=manufacturer_data,
                uuids=uuids,
            )
        connection.bus.export(device.path, device)
        connection.devices.append(device)
        return device

    def add_adapter(self, name: str = "hci0") -> FakeAdapter:
        """An adapter (re)appearing, like a dongle plugged back in: new objects, InterfacesAdded.

        It comes powered as the daemon's ``powered`` setting says, not discovering.
        """
        connection = self._live()
        if name in connection.adapters:
            msg = f"adapter {name} is already there"
            raise RuntimeError(msg)
        adapter = FakeAdapter(name, powered=self._powered)
        connection.bus.export(adapter.path, adapter)
        connection.adapters[name] = adapter
        if self._experimental:
            manager = FakeMonitorManager()
            connection.bus.export(adapter.path, manager)
            connection.monitors[name] = manager
        return adapter

    def remove_adapter(self, name: str = "hci0") -> None:
        """An adapter vanishing (unplugged, reset): its devices and its objects are removed
        with InterfacesRemoved, as bluetoothd does."""
        connection = self._live()
        adapter = connection.adapters.pop(name)
        connection.monitors.pop(name, None)
        for device in [d for d in connection.devices if d.adapter_path == adapter.path]:
            self.remove_device(device)
        connection.bus.unexport(adapter.path)

    def listening(self, adapter: str = "hci0") -> bool:
        """Whether ``adapter`` would hear adverts now: bluetoothd running, the adapter present
        and powered, and a discovery session or an advertisement monitor active."""
        connection = self._connection
        if connection is None or adapter not in connection.adapters:
            return False
        fake = connection.adapters[adapter]
        monitors = connection.monitors.get(adapter)
        return fake.powered and (fake.discovering or bool(monitors and monitors.registered))

    def remove_device(self, device: FakeDevice) -> None:
        """bluetoothd dropping a device (TemporaryTimeout): InterfacesRemoved."""
        connection = self._live()
        connection.bus.unexport(device.path)
        connection.devices.remove(device)

    async def monitor_patterns(self, adapter: str = "hci0") -> list[tuple[int, int, bytes]]:
        """The or-patterns of every monitor registered on ``adapter``, read from the client.

        bluetoothd reads the client's ``org.bluez.AdvertisementMonitor1`` objects; this does the
        same with a Properties.Get on the registering connection.
        """
        connection = self._live()
        patterns: list[tuple[int, int, bytes]] = []
        for path, caller in connection.monitors[adapter].registered.items():
            reply = await connection.bus.call(
                Message(
                    destination=caller,
                    path=path,
                    interface="org.freedesktop.DBus.Properties",
                    member="Get",
                    signature="ss",
                    body=[MONITOR_INTERFACE, "Patterns"],
                )
            )
            assert reply is not None
            assert reply.message_type is MessageType.METHOD_RETURN, reply.body
            patterns.extend(
                (int(start), int(ad_type), bytes(content))
                for start, ad_type, content in reply.body[0].value
            )
        return patterns


async def wait_until(predicate: Callable[[], bool], *, limit_s: float = 5.0) -> None:
    """Poll ``predicate()`` (counters, call logs) until true; ``limit_s`` only guards a hang."""
    async with asyncio.timeout(limit_s):
        while not predicate():  # noqa: ASYNC110 - polls plain state that has no event to await
            await asyncio.sleep(0.01)
