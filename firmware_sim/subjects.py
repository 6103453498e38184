"""The back office of a scene: who carries each enrolled beacon (a gateway subjects file).

A store's loyalty database knows the customer behind a loyalty beacon, an airline's departure
control system the bag behind a tag. A scene flow with a ``[flows.subjects]`` table plays that
part: every enrolled subject of the flow gets a record. Its details are drawn from a random stream
of its own (the scene seed and the subject's id); customer ids and tag numbers count the scene's
subjects in order of arrival, so they are unique in the scene and the same for every run of it.
Unenrolled beacons get no record: the back office does not know them either.

The text is the gateway's subjects file format (``gateway/subjects_file.py``); names and
numbers are invented.
"""

from __future__ import annotations

import json
import random
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from firmware_sim.run import SceneRun
    from firmware_sim.scene import SubjectSettings
    from firmware_sim.world import Subject

FIRST_NAMES: Final = (
    "Ana", "Ben", "Chloe", "Dev", "Elif", "Femi", "Grace", "Hugo", "Ines", "Jon", "Kai", "Lena",
    "Mateo", "Nora", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tess", "Uma", "Viktor", "Wen",
    "Yara", "Zoe",
)  # fmt: skip
SURNAMES: Final = (
    "Adams", "Bauer", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ito",
    "Jensen", "Kowalski", "Lopez", "Moreau", "Nakamura", "Okafor", "Petrov", "Rossi", "Silva",
    "Tanaka", "Usman", "Varga", "Weber", "Young", "Zhang",
)  # fmt: skip
ISSUER_PREFIX: Final = "0125"
"""Bag tag numbers are ten digits: a leading digit and the issuing airline's three-digit code,
then a serial (the IATA licence plate)."""


def subjects_toml(run: SceneRun) -> str:
    """The subjects file of the scene's enrolled subjects, for flows that describe them."""
    customers: list[str] = []
    bags: list[str] = []
    for number, subject in enumerate(run.subjects, start=1):
        settings = subject.flow.subjects
        if settings is None or subject.id not in run.keys:
            continue
        rng = random.Random(f"{run.seed}:subject:{subject.id}")
        if settings.kind == "customer":
            customers += ["", "[[customers]]", *_customer(subject, number, settings, rng)]
        else:
            bags += ["", "[[bags]]", *_bag(subject, number, settings, rng)]
    header = [
        f"# Subjects of scene {run.scene.name!r}, seed {run.seed}: invented people and bags.",
        "version = 1",
    ]
    return "\n".join(header + customers + bags) + "\n"


def _customer(
    subject: Subject, number: int, settings: SubjectSettings, rng: random.Random
) -> list[str]:
    lines = [
        f'id = "cust-{number:05d}"',
        f"beacon = {json.dumps(subject.id)}",
        f'alias = "{rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)[0]}."',
    ]
    if settings.segments:
        names = list(settings.segments)
        segment = rng.choices(names, weights=[settings.segments[n] for n in names])[0]
        lines.append(f"segment = {json.dumps(segment)}")
    lines.append(f"consent = {'true' if rng.random() < settings.consent else 'false'}")
    return lines


def _bag(subject: Subject, number: int, settings: SubjectSettings, rng: random.Random) -> list[str]:
    lines = [
        f'tag = "{ISSUER_PREFIX}{number:06d}"',
        f"beacon = {json.dumps(subject.id)}",
        f'owner_alias = "{rng.choice(FIRST_NAMES)[0]}. {rng.choice(SURNAMES)}"',
    ]
    if settings.flights:
        flight = rng.choice(sorted(settings.flights))
        lines += [
            f"flight = {json.dumps(flight)}",
            f"destination = {json.dumps(settings.flights[flight])}",
        ]
    return lines
