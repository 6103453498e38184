"""The world of a scene: who arrives when, where they walk and stay, and the ground truth.

Each flow's subjects arrive as a Poisson process (plus ``initial`` ones present at the start).
A subject walks from a random point of one step's zone to a random point of the next at its own
speed, dwells there, and leaves after its last step (unless a step keeps it until the end: a bag
left behind). A step may send it to another zone instead (a misrouted bag). Its path is piecewise
linear in time, so its position, and the zone it is in, are known at any moment: that is the
ground truth the gateway's presence events are scored against.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import random

    from firmware_sim.scene import Flow, Scene, Step, Zone

TRUTH_RESOLUTION_S: Final = 1.0
"""Ground-truth zone membership is sampled every second."""
BEHIND_ANGLE: Final = math.radians(120)
"""A gateway more than 120 degrees from the carrier's heading is behind the body."""


@dataclass(frozen=True, slots=True)
class Waypoint:
    """The subject is at (x, y) at time ``at``; between waypoints it moves in a straight line."""

    at: float
    x: float
    y: float


@dataclass(frozen=True, slots=True)
class Stay:
    """A ground-truth interval: the subject was in ``zone`` from ``enter`` to ``exit``."""

    zone: str
    enter: float
    exit: float


@dataclass(frozen=True, slots=True)
class Subject:
    """A person or bag carrying one beacon through the scene."""

    id: str
    flow: Flow
    enrolled: bool
    on_body: bool  # carried on the body: the body can block the radio path
    waypoints: tuple[Waypoint, ...]

    @property
    def arrive(self) -> float:
        """When it appears."""
        return self.waypoints[0].at

    @property
    def leave(self) -> float:
        """When it leaves (or the scene's end)."""
        return self.waypoints[-1].at

    def _segment(self, at: float) -> int:
        times = [waypoint.at for waypoint in self.waypoints]
        return max(min(bisect.bisect_right(times, at) - 1, len(self.waypoints) - 2), 0)

    def position(self, at: float) -> tuple[float, float]:
        """Where it is at ``at`` (clamped to its first and last waypoints)."""
        if len(self.waypoints) == 1:
            return self.waypoints[0].x, self.waypoints[0].y
        index = self._segment(at)
        a, b = self.waypoints[index], self.waypoints[index + 1]
        span = b.at - a.at
        share = 0.0 if span <= 0 else min(max((at - a.at) / span, 0.0), 1.0)
        return a.x + (b.x - a.x) * share, a.y + (b.y - a.y) * share

    def heading(self, at: float) -> float:
        """The direction it faces (radians): of its last movement."""
        index = self._segment(at)
        while index >= 0:
            a, b = self.waypoints[index], self.waypoints[index + 1]
            if (a.x, a.y) != (b.x, b.y):
                return math.atan2(b.y - a.y, b.x - a.x)
            index -= 1
        return 0.0

    def stays(self, zones: list[Zone]) -> list[Stay]:
        """Ground truth: the zones it was in, and when (sampled every second)."""
        stays: list[Stay] = []
        current: str | None = None
        entered = self.arrive
        steps = max(math.ceil((self.leave - self.arrive) / TRUTH_RESOLUTION_S), 0)
        for index in range(steps + 1):
            at = min(self.arrive + index * TRUTH_RESOLUTION_S, self.leave)
            x, y = self.position(at)
            zone = next((zone.id for zone in zones if zone.contains(x, y)), None)
            if zone != current:
                if current is not None:
                    stays.append(Stay(current, entered, at))
                current, entered = zone, at
        if current is not None:
            stays.append(Stay(current, entered, self.leave))
        return stays


def body_blocks_from(
    position: tuple[float, float], heading: float, gateway: tuple[float, float]
) -> bool:
    """Whether a gateway lies behind a carrier at ``position`` facing ``heading``."""
    towards = math.atan2(gateway[1] - position[1], gateway[0] - position[0])
    difference = abs((towards - heading + math.pi) % (2 * math.pi) - math.pi)
    return difference > BEHIND_ANGLE


def _point_in(zone: Zone, rng: random.Random) -> tuple[float, float]:
    x0, y0, x1, y1 = zone.rect
    margin_x, margin_y = (x1 - x0) * 0.1, (y1 - y0) * 0.1
    return rng.uniform(x0 + margin_x, x1 - margin_x), rng.uniform(y0 + margin_y, y1 - margin_y)


def _choose_zone(scene: Scene, step: Step, rng: random.Random) -> Zone:
    if step.misroute and rng.random() < step.misroute:
        return scene.zone(rng.choice(step.misroute_to))
    return scene.zone(rng.choices(step.zones, weights=step.weights)[0])


def _itinerary(scene: Scene, flow: Flow, arrive: float, rng: random.Random) -> list[Waypoint]:
    end = scene.start + scene.duration_s
    speed = rng.uniform(*flow.speed_mps)
    waypoints: list[Waypoint] = []
    at = arrive
    for step in flow.steps:
        for _ in range(rng.randint(*step.repeat)):
            x, y = _point_in(_choose_zone(scene, step, rng), rng)
            if waypoints:
                last = waypoints[-1]
                at += math.hypot(x - last.x, y - last.y) / speed
            waypoints.append(Waypoint(min(at, end), x, y))
            if at >= end:
                return waypoints
            stay_forever = step.stay and rng.random() < step.stay
            at = end if stay_forever else at + rng.uniform(*step.dwell_s)
            waypoints.append(Waypoint(min(at, end), x, y))
            if at >= end:
                return waypoints
    return waypoints


def plan_subjects(scene: Scene, rng: random.Random) -> list[Subject]:
    """Every subject of the scene, in order of arrival."""
    subjects: list[Subject] = []
    end = scene.start + scene.duration_s
    for flow in scene.flows:
        arrivals = [scene.start] * flow.initial
        at = scene.start
        while True:
            at += rng.expovariate(flow.arrivals_per_minute / 60)
            if at >= end:
                break
            arrivals.append(at)
        for number, arrive in enumerate(arrivals):
            subjects.append(
                Subject(
                    id=f"{flow.id}-{number:05d}",
                    flow=flow,
                    enrolled=rng.random() < flow.enrolled,
                    on_body=rng.random() < flow.body_blocking,
                    waypoints=tuple(_itinerary(scene, flow, arrive, rng)),
                )
            )
    subjects.sort(key=lambda subject: (subject.arrive, subject.id))
    return subjects
