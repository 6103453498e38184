"""The ``replay`` source: a JSONL capture (docs/capture-format.md) played back as sightings.

Captures are recorded by ``beacon-sim run --capture`` (or from a radio); reading goes through
the capture format's own total reader, so a bad line stops the replay with
:class:`SourceError` naming the line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Unpack

from firmware_sim.capture import CaptureError, read_capture
from gateway.sources.base import (
    Pacing,
    PlayedSource,
    SourceError,
    SourceErrorReason,
    eddystone_sighting,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from gateway.core.sighting import Sighting


def read_sightings(path: Path) -> Iterator[Sighting]:
    """The capture's Eddystone sightings, in file order (other adverts are skipped)."""
    source = f"replay:{path.name}"
    try:
        with path.open(encoding="utf-8") as handle:
            _, adverts = read_capture(handle)
            for advert in adverts:
                sighting = eddystone_sighting(
                    advert.address, advert.rssi, advert.service_data, advert.at,
                    advert.gateway, advert.tx_power, source,
                )  # fmt: skip
                if sighting is not None:
                    yield sighting
    except CaptureError as exc:
        raise SourceError(SourceErrorReason.BAD_CAPTURE, f"{path}: {exc}") from None
    except UnicodeDecodeError:
        raise SourceError(SourceErrorReason.BAD_CAPTURE, f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise SourceError(SourceErrorReason.BAD_CAPTURE, f"{path}: {exc.strerror}") from None


class ReplaySource(PlayedSource):
    """A capture as an async source; ``realtime`` keeps the recorded pace (times ``speed``)."""

    def __init__(self, path: Path, **pacing: Unpack[Pacing]) -> None:
        super().__init__(f"replay:{path.name}", lambda: read_sightings(path), **pacing)
