"""What the benchmark scripts share."""

from __future__ import annotations

import os


def pin_to_one_core() -> str:
    """Run on a single CPU so the figures are per core; say which."""
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    return "not pinned (no sched_setaffinity)"
