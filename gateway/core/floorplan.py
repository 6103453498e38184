"""Which zone fits a beacon's RSSI best, given where the gateways and the zones are.

Where zones are areas of a floor (rectangles) rather than "near gateway X", the nearest gateway
is the wrong answer at the far end of a long aisle: the gateway of the next zone may be nearer.
With the gateways' positions known, the floor is cut into cells; for each cell the log-distance
model predicts every gateway's RSSI up to one unknown constant (the beacon's power and its
calibration error). A beacon's filtered RSSIs are compared with each cell's prediction, that
constant fitted away (the residuals' mean), and the cell's misfit is the residuals' RMS (dB).
A zone's score is minus the misfit of its best cell; cells in no zone (a corridor) score for
"no zone". Two gateways at least must hear the beacon: one RSSI fits every cell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Mapping

    import numpy.typing as npt

CELL_M: Final = 1.0
"""Cell size: finer than RSSI can tell positions apart, coarse enough to fit in microseconds."""
CELL_BUDGET: Final = 5_000
"""A floor larger than this many square metres gets cells larger than :data:`CELL_M`, so that
it is cut into about this many (a fit's cost is proportional): an airport hall of 180 m x 100 m
in 2 m cells. RSSI cannot tell 2 m apart either; narrow zones cap the growth
(:data:`ZONE_CELLS`)."""
ZONE_CELLS: Final = 2.5
"""Cells across a zone's narrower side, at least, when cells grow past :data:`CELL_M`."""
MAX_CELL_M: Final = 4.0
"""Cells grow no larger: coarser than this, a floor plan no longer tells zones apart (a floor
that would need larger cells is refused, :data:`MAX_CELLS`)."""
BORDER_M: Final = 2.0
"""The floor extends this far around zones and gateways (people stand at walls and doors)."""
MIN_DISTANCE_M: Final = 0.5
"""Below this the model's log distance would run away: antennas are not points."""
CACHE_BYTES: Final = 16 * 1024 * 1024
"""Memory for the centred models of the gateway sets beacons are heard by."""
MAX_CELLS: Final = 1_000_000
"""A square kilometre of 1 m cells: the fitter's model then takes 8 MB per gateway."""
NO_ZONE: Final = ""
"""The score key of cells in no zone."""
FIT_GATEWAYS: Final = 8
"""The strongest this many gateways are fitted; weaker ones add little but noise (a few dB of
path loss is many metres far away) and, at fleet size, every extra gateway makes the set of
gateways heard a new one: a new model to centre, and a larger one (docs/fleet.md)."""

Rect = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class FloorPlan:
    """Gateway positions and zone rectangles (metres), and the path-loss exponent of the floor."""

    gateways: Mapping[str, tuple[float, float]]
    zones: Mapping[str, Rect]
    path_loss_exponent: float = 2.0
    cell_m: float | None = None
    """The cells' side (metres); none: :data:`CELL_M`, or larger on a large floor
    (:data:`CELL_BUDGET`)."""

    def extent(self) -> Rect:
        """The floor: every zone and gateway, and a border around them (x0, y0, x1, y1)."""
        xs = [x for x, _ in self.gateways.values()]
        xs += [r[i] for r in self.zones.values() for i in (0, 2)]
        ys = [y for _, y in self.gateways.values()]
        ys += [r[i] for r in self.zones.values() for i in (1, 3)]
        return min(xs) - BORDER_M, min(ys) - BORDER_M, max(xs) + BORDER_M, max(ys) + BORDER_M

    def cell_size(self) -> float:
        """The cells' side (metres): ``cell_m``, or chosen by the floor's size (see the field)."""
        if self.cell_m is not None:
            return self.cell_m
        x0, y0, x1, y1 = self.extent()
        grown = math.sqrt((x1 - x0) * (y1 - y0) / CELL_BUDGET)
        narrowest = min((min(r[2] - r[0], r[3] - r[1]) for r in self.zones.values()), default=0.0)
        cap = narrowest / ZONE_CELLS
        return max(CELL_M, min(grown, cap, MAX_CELL_M))

    def cells(self) -> float:
        """About how many cells the floor is cut into (the fitter's model has a column per cell).

        A float: a floor spanning most of the float range is infinitely many cells.
        """
        x0, y0, x1, y1 = self.extent()
        step = self.cell_size()
        return (x1 - x0) / step * ((y1 - y0) / step)


class ZoneFitter:
    """Scores zones by how well their best cell explains a beacon's RSSIs (see module doc)."""

    def __init__(self, plan: FloorPlan, *, cache_bytes: int = CACHE_BYTES) -> None:
        self.plan = plan
        self._cache_limit = cache_bytes
        step = plan.cell_size()
        x0, y0, x1, y1 = plan.extent()
        cx = np.arange(x0 + step / 2, x1, step)
        cy = np.arange(y0 + step / 2, y1, step)
        gx, gy = np.meshgrid(cx, cy, indexing="ij")
        px, py = gx.ravel(), gy.ravel()
        names = list(plan.zones)
        zone_index = np.full(px.shape, len(names), dtype=np.int64)  # len(names): no zone
        for index, name in reversed(list(enumerate(names))):  # the first listed zone wins ties
            rx0, ry0, rx1, ry1 = plan.zones[name]
            inside = (px >= rx0) & (px <= rx1) & (py >= ry0) & (py <= ry1)
            zone_index[inside] = index
        order = np.argsort(zone_index, kind="stable")
        zone_index = zone_index[order]
        px, py = px[order], py[order]
        present, starts = np.unique(zone_index, return_index=True)
        self._labels = [names[i] if i < len(names) else NO_ZONE for i in present.tolist()]
        self._starts = starts
        self._columns = {gateway: i for i, gateway in enumerate(plan.gateways)}
        # A row per gateway: a set of gateways is a few contiguous rows (cheap to gather).
        model = np.empty((len(plan.gateways), px.size))
        for gateway, column in self._columns.items():
            gx0, gy0 = plan.gateways[gateway]
            distance = np.maximum(np.hypot(px - gx0, py - gy0), MIN_DISTANCE_M)
            model[column] = -10 * plan.path_loss_exponent * np.log10(distance)
        self._model: npt.NDArray[np.float64] = model
        self._cells = int(px.size)
        self._cache: dict[
            tuple[int, ...], tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]
        ] = {}
        self._cache_bytes = 0

    @property
    def cells(self) -> int:
        """How many cells the floor has."""
        return self._cells

    def knows(self, gateway: str) -> bool:
        """Whether the plan has this gateway's position."""
        return gateway in self._columns

    def scores(self, rssi: Mapping[str, float]) -> dict[str, float]:
        """Per zone (and :data:`NO_ZONE`), minus the RMS misfit (dB) of its best cell.

        ``rssi`` maps gateways (of the plan) to filtered RSSI; fewer than two give no scores.
        Only the :data:`FIT_GATEWAYS` strongest are fitted (ties broken by gateway order).
        """
        if len(rssi) < 2:  # noqa: PLR2004 - one RSSI fits every cell
            return {}
        heard = [(self._columns[gateway], value) for gateway, value in rssi.items()]
        if len(heard) > FIT_GATEWAYS:
            heard.sort(key=lambda item: (-item[1], item[0]))
            del heard[FIT_GATEWAYS:]
        # In column order: the same set of gateways is one cache entry, however it was heard.
        ordered = sorted(heard)
        columns = tuple(column for column, _ in ordered)
        rows, norms = self._rows(columns)
        values = [value for _, value in ordered]
        mean = sum(values) / len(values)
        centred = [value - mean for value in values]
        # |m - o|^2 with both sides centred (the constant fitted away) is
        # |m_c|^2 - 2 m.o_c + |o_c|^2: o_c sums to zero, so m need not be centred for the middle.
        misfit = norms - 2 * (np.array(centred) @ rows)
        best = np.minimum.reduceat(misfit, self._starts)
        offset = sum(value * value for value in centred)
        scale = 1 / len(values)
        return {
            label: -math.sqrt(max(value + offset, 0.0) * scale)
            for label, value in zip(self._labels, best.tolist(), strict=True)
        }

    def _rows(
        self, columns: tuple[int, ...]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """These gateways' rows of the model, and each cell's squared norm once centred.

        The model has a row per gateway and a column per cell. A centred squared norm is the
        sum of squares less the squared sum over the count.

        Cached per set of gateways (a beacon is heard by the same few for a while), within
        the fitter's cache budget (the oldest set goes first).
        """
        cached = self._cache.get(columns)
        if cached is not None:
            return cached
        model = self._model[list(columns)]
        sums = model.sum(axis=0)
        entry = (model, np.einsum("ij,ij->j", model, model) - sums * sums / len(columns))
        size = entry[0].nbytes + entry[1].nbytes
        while self._cache and self._cache_bytes + size > self._cache_limit:
            oldest = next(iter(self._cache))
            dropped = self._cache.pop(oldest)
            self._cache_bytes -= dropped[0].nbytes + dropped[1].nbytes
        self._cache[columns] = entry
        self._cache_bytes += size
        return entry
