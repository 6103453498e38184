"""Starting the demo's child processes so that they never outlive it.

Each child runs in a session of its own, so the terminal's Ctrl-C reaches the demo only and
the demo stops its children in order (gateway/demo/session.py). The price is that a demo
killed outright (SIGKILL, the OOM killer) would leave them running: so on Linux each child also
asks the kernel for SIGTERM when its parent dies (``PR_SET_PDEATHSIG``), and exits at once if
the parent is already gone. The demo starts no thread before its children (its subscriber runs
on the main thread), which is what makes ``preexec_fn`` safe here.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
from typing import IO, TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

PR_SET_PDEATHSIG: Final = 1
"""linux/prctl.h."""


def _die_with(parent: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` that ties the child's life to ``parent`` (Linux only, else None)."""
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    libc = ctypes.CDLL(name, use_errno=True)

    def tie() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl: nobody would stop us
            os._exit(1)

    return tie


def start(
    argv: Sequence[str],
    log: IO[bytes],
    env: Mapping[str, str] | None = None,
    *,
    account: tuple[int, int] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session, output to ``log``, stopped if the demo dies.

    ``account`` (uid, gid) runs it as another user (the demo as root): subprocess changes the
    credentials before ``preexec_fn`` runs, so the death signal set there survives.
    """
    uid, gid = (None, None) if account is None else account
    return subprocess.Popen(  # noqa: S603 - the demo's own commands
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=None if env is None else dict(env),
        start_new_session=True,
        user=uid,
        group=gid,
        extra_groups=None if account is None else [],
        preexec_fn=_die_with(os.getpid()),  # noqa: PLW1509 - no threads yet (module doc)
    )
