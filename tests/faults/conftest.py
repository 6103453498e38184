"""Fixtures of the fault suite: the report every test adds its counted figures to."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.faults.report import FaultReport

if TYPE_CHECKING:
    from _pytest.terminal import TerminalReporter

_REPORT = pytest.StashKey[FaultReport]()


def _report(config: pytest.Config) -> FaultReport:
    report = config.stash.get(_REPORT, None)
    if report is None:
        report = config.stash[_REPORT] = FaultReport()
    return report


@pytest.fixture
def fault_report(request: pytest.FixtureRequest) -> FaultReport:
    """Where a fault test records what it did and what it counted."""
    return _report(request.config)


def pytest_terminal_summary(terminalreporter: TerminalReporter, config: pytest.Config) -> None:
    """Print every recorded fault with its figures (docs/reliability.md copies these)."""
    report = config.stash.get(_REPORT, None)
    if report is None or not report.rows:
        return
    terminalreporter.section("fault suite: counted results")
    for row in report.rows:
        terminalreporter.write_line(row.line())
