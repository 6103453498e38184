"""Hostile radio: an attacker replays, forges, floods and garbles; the gateway shrugs it off.

configs/scenes/store-hostile.toml is the store scene plus an attacker (firmware_sim.attacker).
The scene is played through the code ``beacon-gateway run --scene ... --stdout`` uses (the sim
source, the scene's own configuration, ``assemble``, the CLI's drain and final settling), once
with the attacker and once without it (in a second process, in parallel), and the test holds:

- the events are identical, line for line (ids, times, contents): no attacker frame made one,
  and none moved a shopper's;
- the gateway's outcome counts moved by exactly what the gateways heard of each attack: replays
  of enrolled beacons' EIDs all stale, forged eTLM all forged or unpaired, the flood and replays
  of unenrolled beacons unknown, malformed frames malformed; nothing else changed;
- every per-address table stays bounded: the pairing table and the eTLM readings no larger than
  without the attacker, the bleak source's duplicate table (fed what one gateway hears) within
  the flood's rate times its window, and none growing with the run's length;
- traced memory (tracemalloc, from after warm-up, in both runs) is flat: with the attacker it
  exceeds the run without it, moment by moment, by a small fraction of what keeping one burst's
  flood addresses would take, and by no more in the last flood cycle than in the first.

The short mode plays the scene as shipped and traces two flood cycles; the long mode
(``BEACON_GATEWAY_LONG_FAULTS=1``) plays it four times as long and traces from warm-up to the end.
"""

from __future__ import annotations

import asyncio
import gc
import math
import pickle
import tracemalloc
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pytest
from bleak.backends.scanner import BaseBleakScanner

from firmware_sim import attacker as attack
from firmware_sim.bleak_output import to_bleak
from firmware_sim.capture import EDDYSTONE_UUID, CapturedAdvert
from firmware_sim.scene import Scene, load_scene
from gateway.assemble import assemble
from gateway.core.identity import Outcome
from gateway.sensing_cli import _drain, _emit, _scene_config
from gateway.sources.bleak_scanner import DUPLICATE_WINDOW_S, BleakSource
from gateway.sources.sim import SimScene, SimSource
from tests.faults.report import long_mode

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from gateway.core.pipeline import Pipeline
    from gateway.core.sighting import Sighting
    from gateway.sources.base import SightingSource
    from tests.faults.report import FaultReport, Figure

SCENE: Final = Path(__file__).resolve().parents[2] / "configs" / "scenes" / "store-hostile.toml"
SAMPLE_EVERY_S: Final = 10.0
"""Table sizes are read every 10 s of scene time."""
WARM_UP_S: Final = 1800.0
"""Tracing starts after half an hour: the store has filled, the tables are at working size."""
SHORT_TRACED_CYCLES: Final = 2
"""Flood cycles traced in the short mode (the long mode traces to the end)."""
LONG_FACTOR: Final = 4
"""The long mode plays the scene this many times as long."""
SHORT_TIMEOUT_S: Final = 600
LONG_TIMEOUT_S: Final = 3 * 3600
"""Hang guards, not timing assertions: the long mode traces hours of scene time."""
SAMPLE_SLACK: Final = 4
"""Entries a table may differ by between the runs: a sample is read at the first sighting
after its moment, and the attacker's sightings land it a few legitimate sightings earlier."""
RETAINED_PER_FLOOD_ADDRESS: Final = 32
"""Bytes of traced memory a flood address may leave behind at most. Keeping an address
anywhere (a 17-character string and a dict slot) takes well over 100."""
BLEAK_GATEWAY: Final = "gw-aisle-3"
"""The gateway nearest the attacker, whose sightings also go through a bleak source."""
ATTACKER: Final = str(Path(attack.__file__).resolve())
TABLES: Final = ("paired", "readings", "tracks", "telemetry_notes", "bleak_recent")


# ----------------------------------------------------------------------------- playing a scene


@dataclass(frozen=True, slots=True)
class Sample:
    """Sizes of the per-address and per-beacon tables at one moment of scene time."""

    at: float
    paired: int
    readings: int
    tracks: int
    telemetry_notes: int
    bleak_recent: int
    traced: int | None
    """Traced memory (tracemalloc) but the simulated attacker's own, while tracing."""
    attacker_traced: int | None


@dataclass(frozen=True, slots=True)
class Played:
    """What a run printed and counted."""

    lines: list[str]
    counts: dict[str, int]
    attack: dict[str, int] | None
    sightings: int
    registered: int
    samples: list[Sample]


class _NoRadio(BaseBleakScanner):
    """A bleak backend that never scans: the test calls the source's callback itself."""

    def __init__(self, detection_callback: Any, service_uuids: Any, *_: Any, **__: Any) -> None:
        super().__init__(detection_callback, service_uuids)

    async def start(self) -> None:
        """Nothing to start."""

    async def stop(self) -> None:
        """Nothing to stop."""


class Watched:
    """The sim source, read between sightings: table sizes, traced memory, a bleak source.

    Each sighting of :data:`BLEAK_GATEWAY` is also handed to a bleak source's detection
    callback as bleak would deliver it, on a clock that is the scene's, so its duplicate table
    sees what that gateway hears.
    """

    def __init__(
        self, source: SightingSource, pipeline: Pipeline, start: float, trace: tuple[float, float]
    ) -> None:
        self.name = source.name
        self._source = source
        self._pipeline = pipeline
        self._now = start
        self._next = start  # the next moment of the sampling grid
        self._trace_from, self._trace_until = trace
        self.samples: list[Sample] = []
        self.bleak = BleakSource(
            gateway=BLEAK_GATEWAY,
            backend=_NoRadio,
            clock=lambda: self._now,
            monotonic=lambda: self._now,
        )

    async def sightings(self) -> AsyncIterator[Sighting]:
        """The source's sightings; the state is read before each one goes on."""
        bleak = self.bleak
        async for sighting in self._source.sightings():
            self._now = sighting.at
            if sighting.at >= self._next:
                self._sample(sighting.at)
            if sighting.gateway == BLEAK_GATEWAY:
                advert = CapturedAdvert(
                    sighting.at,
                    sighting.gateway,
                    sighting.address,
                    sighting.rssi,
                    {EDDYSTONE_UUID: sighting.service_data},
                )
                bleak._on_advert(*to_bleak(advert))
                queue = bleak._queue
                while not queue.empty():  # read, as the daemon would: it never overflows
                    queue.get_nowait()
            yield sighting
        if tracemalloc.is_tracing():
            self._sample(self._now)
            tracemalloc.stop()

    def _sample(self, at: float) -> None:
        while self._next <= at:
            self._next += SAMPLE_EVERY_S
        at = self._next - SAMPLE_EVERY_S  # the moment sampled (the sighting is just after it)
        if self._trace_from <= at < self._trace_until and not tracemalloc.is_tracing():
            tracemalloc.start()
        traced = attacker_traced = None
        if tracemalloc.is_tracing():
            traced, attacker_traced = _traced()
        if at >= self._trace_until and tracemalloc.is_tracing():
            tracemalloc.stop()
        pipeline = self._pipeline
        self.samples.append(
            Sample(
                at=at,
                paired=pipeline.identifier.paired,
                readings=pipeline.identifier.readings,
                tracks=len(pipeline.presence),
                telemetry_notes=len(pipeline._telemetry_at),
                bleak_recent=len(self.bleak._recent),
                traced=traced,
                attacker_traced=attacker_traced,
            )
        )


def _traced() -> tuple[int, int]:
    """Traced memory but the simulated attacker's, and the attacker's.

    Unreachable cycles are collected first: when the collector last ran depends on how much
    was allocated, which the attack changes, and garbage is not memory kept.
    """
    gc.collect()
    snapshot = tracemalloc.take_snapshot()
    total = sum(stat.size for stat in snapshot.statistics("filename"))
    own = snapshot.filter_traces([tracemalloc.Filter(inclusive=True, filename_pattern=ATTACKER)])
    attacker = sum(stat.size for stat in own.statistics("filename"))
    return total - attacker, attacker


def play(
    scene: Scene, out_path: Path, *, trace: tuple[float, float] = (math.inf, math.inf)
) -> Played:
    """Run the scene as ``beacon-gateway run --scene SCENE --stdout > out_path`` does.

    The scene's own configuration and registry, the sim source in virtual time, the CLI's
    drain and its final settling of the recording's silence; the events go to a file, as the
    command's standard output would. Tracing runs over ``trace`` (scene seconds).
    """
    sim = SimScene.from_scene(scene)
    config = _scene_config(sim.config_document())
    assembly = assemble(config, sim.registry())
    watched = Watched(SimSource(sim), assembly.pipeline, scene.start, trace)
    with out_path.open("w", encoding="utf-8") as out:
        last = asyncio.run(_drain(watched, assembly.pipeline, assembly.events, out))
        horizon = config.presence.max_exit_timeout_s + max(
            (t.unseen_s or 0.0 for t in config.triggers), default=0.0
        )
        assert last is not None
        _emit(assembly.events, assembly.pipeline.tick(last + horizon + 1), out)
    counts = assembly.pipeline.counts()
    return Played(
        lines=out_path.read_text(encoding="utf-8").splitlines(),
        counts=counts.identity,
        attack=None if sim.run.attack is None else sim.run.attack.as_dict(),
        sightings=counts.sightings,
        registered=len(sim.run.keys),
        samples=watched.samples,
    )


def play_without_attacker(
    scene: Scene, out_path: Path, result_path: Path, trace: tuple[float, float]
) -> None:
    """The same scene, the attacker taken out, its result pickled to ``result_path``.

    The second process runs this; the result goes through a file read once both runs are done,
    so that nothing arrives in the traced process while it traces.
    """
    played = play(scene.model_copy(update={"attacker": None}), out_path, trace=trace)
    result_path.write_bytes(pickle.dumps(played))


# ----------------------------------------------------------------------------------- the test


def _scene() -> Scene:
    scene = load_scene(SCENE)
    if long_mode():
        scene = scene.model_copy(update={"duration_s": scene.duration_s * LONG_FACTOR})
    return scene


def _delta(hostile: Played, clean: Played, *outcomes: Outcome) -> int:
    return sum(hostile.counts.get(o.value, 0) - clean.counts.get(o.value, 0) for o in outcomes)


def _largest(
    samples: list[Sample], table: str, since: float = -math.inf, until: float = math.inf
) -> int:
    return max(int(getattr(s, table)) for s in samples if since <= s.at < until)


def check_counts(hostile: Played, clean: Played) -> dict[str, Figure]:
    """The outcome counts moved by exactly what the gateways heard of each attack, no other."""
    assert hostile.attack is not None
    heard = {kind: hostile.attack[f"heard_{kind}"] for kind in attack.KINDS}
    assert all(heard[kind] > 0 for kind in attack.KINDS), heard  # every attack was heard
    stale = _delta(hostile, clean, Outcome.STALE)
    forged = _delta(hostile, clean, Outcome.FORGED)
    rejected_etlm = _delta(hostile, clean, Outcome.FORGED, Outcome.UNPAIRED)
    unknown = _delta(hostile, clean, Outcome.UNKNOWN)
    malformed = _delta(hostile, clean, Outcome.MALFORMED)
    assert stale == heard[attack.REPLAY]
    assert unknown == heard[attack.FLOOD] + heard[attack.REPLAY_UNREGISTERED]
    assert rejected_etlm == heard[attack.FORGED_SPOOFED] + heard[attack.FORGED_RANDOM]
    assert 0 < forged <= heard[attack.FORGED_SPOOFED]  # only a paired address gets that far
    assert malformed == heard[attack.MALFORMED]
    for outcome in (Outcome.IDENTIFIED, Outcome.TELEMETRY, Outcome.AMBIGUOUS):
        assert _delta(hostile, clean, outcome) == 0, outcome
    attacker_sightings = sum(heard.values())
    assert hostile.sightings - clean.sightings == attacker_sightings
    return {
        "frames_sent": sum(hostile.attack[f"sent_{kind}"] for kind in attack.KINDS),
        "attacker_sightings": attacker_sightings,
        "replays": heard[attack.REPLAY],
        "replays_rejected": stale,
        "replays_unenrolled_unknown": heard[attack.REPLAY_UNREGISTERED],
        "forged": heard[attack.FORGED_SPOOFED] + heard[attack.FORGED_RANDOM],
        "forged_rejected": rejected_etlm,
        "forged_counted_forged": forged,
        "forged_counted_unpaired": rejected_etlm - forged,
        "flood_addresses": hostile.attack["flood_addresses"],
        "flood_unknown": heard[attack.FLOOD],
        "malformed": heard[attack.MALFORMED],
        "malformed_rejected": malformed,
    }


def check_tables(scene: Scene, hostile: Played, clean: Played) -> dict[str, Figure]:
    """Per-address and per-beacon tables stay bounded and do not grow with the run."""
    settings = scene.attacker
    assert settings is not None
    largest = {table: _largest(hostile.samples, table) for table in TABLES}
    # The attack adds nothing to the pipeline's tables.
    for table in ("paired", "readings", "tracks", "telemetry_notes"):
        assert largest[table] <= _largest(clean.samples, table) + SAMPLE_SLACK, table
    assert largest["readings"] <= hostile.registered
    # The bleak source's duplicate table holds the addresses heard within its window: the
    # flood's (each for its frames' span plus the window) on top of the shoppers'.
    span_s = DUPLICATE_WINDOW_S + (settings.flood_frames_per_address - 1) * (
        settings.flood_frame_interval_s
    )
    rate = settings.flood_addresses_per_minute / 60
    bleak_bound = _largest(clean.samples, "bleak_recent") + 2 * rate * span_s
    assert largest["bleak_recent"] <= bleak_bound, (largest["bleak_recent"], bleak_bound)
    # None grows with the run: the second half's largest is the first half's, give or take.
    half = scene.start + scene.duration_s / 2
    for table in TABLES:
        early = _largest(hostile.samples, table, until=half)
        late = _largest(hostile.samples, table, since=half)
        assert late <= early * 1.25 + SAMPLE_SLACK, (table, early, late)
    return {
        "max_pairing_entries": largest["paired"],
        "max_etlm_readings": largest["readings"],
        "max_presence_tracks": largest["tracks"],
        "max_telemetry_notes": largest["telemetry_notes"],
        "max_bleak_duplicate_entries": largest["bleak_recent"],
        "bleak_duplicate_bound": round(bleak_bound),
    }


def check_memory(scene: Scene, hostile: Played, clean: Played) -> dict[str, Figure]:
    """What the attack makes the process keep, after warm-up, stays small and flat.

    Traced memory with the attacker minus without it, moment by moment (the simulated
    attacker's own memory left out: its recordings are not the gateway's): a small fraction
    of what keeping one burst's flood addresses would take, and no more in the last flood cycle
    than in the first.
    """
    settings = scene.attacker
    assert settings is not None
    assert settings.flood_burst_s is not None
    cycle = settings.flood_every_s
    clean_traced = {s.at: s.traced for s in clean.samples if s.traced is not None}
    extra = [
        (s.at, s.traced - clean_traced[s.at])
        for s in hostile.samples
        if s.traced is not None and clean_traced.get(s.at) is not None
    ]
    traced_s = extra[-1][0] - extra[0][0]
    assert traced_s >= SHORT_TRACED_CYCLES * cycle - 2 * SAMPLE_EVERY_S
    per_burst = settings.flood_addresses_per_minute / 60 * settings.flood_burst_s
    limit = RETAINED_PER_FLOOD_ADDRESS * per_burst
    most = max(size for _, size in extra)
    assert most <= limit, (most, limit)
    first_cycle = max(size for at, size in extra if at < extra[0][0] + cycle)
    last_cycle = max(size for at, size in extra if at >= extra[-1][0] - cycle)
    assert last_cycle <= first_cycle + limit / 4, (first_cycle, last_cycle, limit)
    attacker_own = max(s.attacker_traced or 0 for s in hostile.samples)
    return {
        "traced_minutes": round(traced_s / 60),
        "attack_kept_kib_max": round(most / 1024),
        "attack_kept_kib_first_cycle": round(first_cycle / 1024),
        "attack_kept_kib_last_cycle": round(last_cycle / 1024),
        "attack_kept_limit_kib": round(limit / 1024),
        "simulated_attacker_kib": round(attacker_own / 1024),
    }


@pytest.mark.timeout(LONG_TIMEOUT_S if long_mode() else SHORT_TIMEOUT_S)
def test_the_gateway_shrugs_off_a_hostile_radio(fault_report: FaultReport, tmp_path: Path) -> None:
    scene = _scene()
    settings = scene.attacker
    assert settings is not None
    trace_from = scene.start + WARM_UP_S
    trace_until = (
        scene.start + scene.duration_s
        if long_mode()
        else trace_from + SHORT_TRACED_CYCLES * settings.flood_every_s
    )
    trace = (trace_from, trace_until)
    result = tmp_path / "clean.pickle"
    second = get_context("spawn").Process(
        target=play_without_attacker, args=(scene, tmp_path / "clean.jsonl", result, trace)
    )
    second.start()
    try:
        hostile = play(scene, tmp_path / "hostile.jsonl", trace=trace)
    finally:
        second.join()
    assert second.exitcode == 0, "the run without the attacker failed (its traceback is above)"
    clean = pickle.loads(result.read_bytes())  # noqa: S301 - written by this test
    assert isinstance(clean, Played)

    # The events are the same, line for line: ids, times, contents and order.
    assert len(clean.lines) > 1000
    assert hostile.lines == clean.lines

    figures = check_counts(hostile, clean)
    figures |= {"legit_events": len(clean.lines), "legit_events_same": hostile.lines == clean.lines}
    figures |= check_tables(scene, hostile, clean)
    figures |= check_memory(scene, hostile, clean)
    fault_report.record(
        "hostile radio",
        f"store scene + attacker for {scene.duration_s / 60:.0f} min, run with and without it: "
        f"EIDs replayed {settings.replay_delay_s:.0f} s late, forged eTLM, "
        f"{settings.flood_addresses_per_minute:,.0f} addresses/min flood bursts, malformed",
        **figures,
    )
