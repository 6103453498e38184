"""Counted results of the fault suite, printed as one table at the end of the run.

Each fault test calls the ``fault_report`` fixture with what it did and what it counted
(events produced, received, lost, duplicated, peak memory, ...). ``pytest_terminal_summary``
prints every row, so the figures in docs/reliability.md are copied from a run, never typed in.
``BEACON_GATEWAY_FAULT_REPORT=path`` also writes the rows there as JSON lines.

``BEACON_GATEWAY_LONG_FAULTS=1`` (``make faults``) selects the long mode: more cycles, longer
outages and the full 24-hour soak. The default is the short mode the test command runs.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Final, TypeAlias

LONG_ENV: Final = "BEACON_GATEWAY_LONG_FAULTS"
REPORT_ENV: Final = "BEACON_GATEWAY_FAULT_REPORT"

Figure: TypeAlias = int | float | str


def long_mode() -> bool:
    """Whether the long (manual) mode of the fault suite was asked for."""
    return os.environ.get(LONG_ENV, "") not in {"", "0"}


def mode() -> str:
    """``long`` or ``short``, for the report."""
    return "long" if long_mode() else "short"


@dataclass(frozen=True, slots=True)
class FaultRow:
    """One fault, what was done, and what was counted."""

    fault: str
    action: str
    figures: dict[str, Figure] = field(default_factory=dict)
    mode: str = field(default_factory=mode)

    def line(self) -> str:
        """The row as one line of text."""
        counted = "  ".join(f"{name}={value}" for name, value in self.figures.items())
        return f"[{self.mode}] {self.fault}: {self.action}\n    {counted}"


@dataclass(slots=True)
class FaultReport:
    """The rows recorded in this run."""

    rows: list[FaultRow] = field(default_factory=list)

    def record(self, fault: str, action: str, **figures: Figure) -> FaultRow:
        """Add a row (and write it to ``$BEACON_GATEWAY_FAULT_REPORT`` when set)."""
        row = FaultRow(fault, action, dict(figures))
        self.rows.append(row)
        target = os.environ.get(REPORT_ENV)
        if target:
            with Path(target).open("a", encoding="utf-8") as out:
                out.write(json.dumps(asdict(row)) + "\n")
        return row
