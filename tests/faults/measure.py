"""What a process holds, read from /proc: resident memory and open file descriptors."""

from __future__ import annotations

from pathlib import Path


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    msg = f"no VmRSS for pid {pid}"
    raise LookupError(msg)


def open_fds(pid: int) -> int:
    """How many file descriptors ``pid`` has open."""
    return sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir())
