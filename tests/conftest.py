"""Hypothesis profiles ("ci", the default, and "long", chosen with HYPOTHESIS_PROFILE), and the
private system bus the bleak tests and the BlueZ fault tests share."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings

from tests.gateway.fake_bluez import dbus_daemon_path, start_private_bus

if TYPE_CHECKING:
    from collections.abc import Iterator

# No example database: the suite writes nothing outside the test run (failures print a reproducer).
settings.register_profile("ci", max_examples=200, deadline=None, database=None, print_blob=True)
settings.register_profile("long", max_examples=5000, deadline=None, database=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def system_bus(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A private dbus-daemon that bleak takes for the system bus."""
    executable = dbus_daemon_path()
    if executable is None:
        pytest.skip("dbus-daemon is not installed (Debian: apt-get install dbus-daemon)")
    # tmp_path_factory: a short directory, since a unix socket path must fit in ~107 bytes
    bus = start_private_bus(tmp_path_factory.mktemp("bus"), executable)
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", bus.address)
    monkeypatch.delenv("BLEAK_DBUS_AUTH_UID", raising=False)
    try:
        yield bus.address
    finally:
        bus.stop()
