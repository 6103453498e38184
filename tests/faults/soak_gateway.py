"""The gateway process of the soak test: ``beacon-gateway run``, sampled once a virtual hour.

``python -m tests.faults.soak_gateway SAMPLES START PERIOD -- <beacon-gateway arguments>`` runs
``gateway.cli.main`` unchanged (configuration, assembly, ``serve``, the daemon and its tasks),
with two hooks on :class:`gateway.daemon.Daemon`:

- when a sighting's time crosses ``START + n * PERIOD`` (a virtual hour of the source's clock),
  before it is accepted, the outbox's backlog is noted and delivered (the replay runs unpaced,
  far faster than a radio), garbage is collected, and one JSON line goes to ``SAMPLES``: the
  backlog, this process's resident memory and
  open file descriptors, Python's object count, the daemon's counters, the outbox depth, the
  sizes of the tables that follow the crowd (beacons tracked by presence, addresses paired for
  telemetry, telemetry notes) and of the bounded memories that fill during a gateway's first
  day by design (retired EIDs remembered by the resolver, cached eTLM ciphers, the floor-plan
  fitter's cached models, last eTLM readings);
- after the daemon's shutdown (flush, offline status), a last line with ``"final": true``.

Sampling reads state that is there anyway and appends to the file (opened and closed each
time, so it holds no descriptor); the test process does everything else.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import json
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eid import telemetry
from eid.telemetry import EtlmCipher
from gateway import cli
from gateway.daemon import Daemon
from tests.faults.measure import open_fds, rss_kib

DRAIN_LIMIT_S = 60.0
"""The longest a sample waits for the replay's backlog to be delivered (a hang guard)."""

if TYPE_CHECKING:
    from collections.abc import Sequence

    from gateway.core.pipeline import Output
    from gateway.core.wire import Batch


def _size(value: object) -> int:
    """``len(value)``, or -1 when the table is not there (a refactored part)."""
    try:
        return len(value)  # type: ignore[arg-type]
    except TypeError:
        return -1


def _cache_size(name: str) -> tuple[int, int]:
    """Entries and capacity of ``eid.telemetry``'s cipher cache (-1 when it is not there)."""
    cached = getattr(telemetry, name, None)
    if not isinstance(cached, functools._lru_cache_wrapper):
        return -1, -1
    info = cached.cache_info()
    return info.currsize, info.maxsize or -1


def objects_per_cipher() -> float:
    """Python objects one :class:`EtlmCipher` holds (its AES contexts and bound methods)."""
    EtlmCipher(bytes(16))  # the first one also sets up what every later one shares
    gc.collect()
    before = len(gc.get_objects())
    ciphers = [EtlmCipher(bytes([n]) * 16) for n in range(1, 65)]
    per = (len(gc.get_objects()) - before - 1) / len(ciphers)  # the list itself is one
    del ciphers
    return per


def sample(daemon: Daemon, hour: int) -> dict[str, Any]:
    """What the gateway holds now (memory first, before anything here allocates)."""
    pid = os.getpid()
    figures: dict[str, Any] = {"hour": hour, "rss_kib": rss_kib(pid), "fds": open_fds(pid)}
    pipeline = daemon.assembly.pipeline
    identifier = pipeline.identifier
    directory = getattr(identifier, "_directory", None)  # the BeaconDirectory naming beacons
    retired = getattr(getattr(directory, "_resolver", None), "_retired", None)
    retired_map = getattr(getattr(retired, "_map", None), "_keys", None)
    fitter = getattr(pipeline.presence, "_fitter", None)
    ciphers, cipher_cap = _cache_size("_cipher")
    gc.collect()  # garbage awaiting the collector is not memory kept
    figures |= {
        "gc_objects": len(gc.get_objects()),
        "sightings": daemon.counts.sightings,
        "events": sum(daemon.counts.events.values()),
        "outbox_depth": daemon.outbox.stats().depth,
        "acked": daemon.publisher.stats().acked,
        "beacons_tracked": len(pipeline.presence),
        "paired_addresses": _size(getattr(identifier, "_paired", None)),
        "telemetry_notes": _size(getattr(pipeline, "_telemetry_at", None)),
        "retired_eids": _size(retired),
        "retired_map_slots": -1 if retired_map is None else int(retired_map.size),
        "etlm_ciphers": ciphers,
        "etlm_cipher_cap": cipher_cap,
        "fitter_cache_bytes": int(getattr(fitter, "_cache_bytes", 0)),
        "fitter_cache_cap": int(getattr(fitter, "_cache_limit", 0)),
        "readings": _size(getattr(identifier, "_readings", None)),
        "tasks": len(asyncio.all_tasks()),
        "threads": threading.active_count(),
    }
    return figures


def _write(path: Path, figures: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(figures) + "\n")


def install(samples: Path, start: float, period: float) -> None:
    """Hook the daemon: a sample at each ``period`` of source time, and one after shutdown."""
    accept = Daemon._accept
    shutdown = Daemon._shutdown
    due = {"hour": 0, "at": start + period}
    per_cipher = objects_per_cipher()

    async def sampled_accept(self: Daemon, at: float, outputs: Sequence[Output | Batch]) -> None:
        while at >= due["at"]:
            due["hour"] += 1
            due["at"] += period
            # The backlog an unpaced replay has built up is noted, then delivered before the
            # sample: what it holds in flight (messages, paho's packets) is traffic, not memory
            # kept, and would make the object count follow the replay's speed.
            backlog = self.outbox.stats().depth
            await self.outbox.flush()
            await self.publisher.flush(DRAIN_LIMIT_S)
            figures = sample(self, int(due["hour"]))
            _write(samples, {**figures, "backlog": backlog, "objects_per_cipher": per_cipher})
        await accept(self, at, outputs)

    async def sampled_shutdown(self: Daemon) -> None:
        await shutdown(self)
        figures = sample(self, int(due["hour"]))
        _write(samples, {"final": True, **figures, "objects_per_cipher": per_cipher})

    Daemon._accept = sampled_accept  # type: ignore[method-assign]
    Daemon._shutdown = sampled_shutdown  # type: ignore[method-assign]


def main(argv: Sequence[str]) -> int:
    """``SAMPLES START PERIOD -- <beacon-gateway arguments>``."""
    samples, start, period, separator, *gateway_args = argv
    if separator != "--":
        sys.stderr.write(__doc__ or "")
        return 2
    install(Path(samples), float(start), float(period))
    return cli.main(gateway_args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
