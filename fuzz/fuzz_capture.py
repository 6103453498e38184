"""Fuzz the JSONL capture readers: firmware_sim.capture and the replay source that uses it.

Input: a capture file's bytes, read by :func:`gateway.sources.replay.read_sightings` (which reads
with :func:`firmware_sim.capture.read_capture`). Allowed: :class:`SourceError` (reason
``bad-capture``, naming the line) from the replay source; :class:`CaptureError` from the reader
itself. Properties: every advert read writes back (``CaptureWriter``) and reads again equal; its
time can date an event; and its sightings go through the gateway's pipeline to published events
without raising (replayed one second apart: clock jumps are not this harness's subject).

    .venv/bin/python fuzz/fuzz_capture.py -runs=100000 fuzz/corpus/capture
"""

from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import UTC, datetime

from contract import ContractError, instrumented, main, scratch_file, total

with instrumented("json"):
    from receiver import START, receive

    from firmware_sim.capture import CaptureError, CaptureWriter, read_capture
    from gateway.sources.base import SourceError
    from gateway.sources.replay import read_sightings

MAX_PLAYED = 32
"""Sightings played through the pipeline per input (the reader sees them all)."""


def _round_trip(data: bytes) -> None:
    meta, adverts = read_capture(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    read = list(adverts)
    out = io.StringIO()
    writer = CaptureWriter(out, meta)
    for advert in read:
        datetime.fromtimestamp(advert.at, tz=UTC)  # an event can carry the advert's time
        writer.write(advert)
    again_meta, again = read_capture(io.StringIO(out.getvalue()))
    if json.dumps(again_meta) != json.dumps(meta) or list(again) != read:  # NaN != NaN
        msg = "a capture written back does not read the same"
        raise ContractError(msg)


def check(data: bytes) -> None:
    """One capture file through the replay source, the writer and the pipeline."""
    with scratch_file("capture.jsonl", data) as path:
        sightings = list(read_sightings(path))
    _round_trip(data)  # the replay source accepted it: so must the reader, and the writer
    played = [replace(s, at=START + i) for i, s in enumerate(sightings[:MAX_PLAYED])]
    receive(played)


if __name__ == "__main__":
    main(total(check, (SourceError, CaptureError)), max_len=4096, dictionaries=("json", "capture"))
