"""The subjects file: customers and bags, each joined to a beacon id (docs/configuration.md).

::

    version = 1

    [[customers]]
    id = "cust-0001"
    beacon = "loyalty-0001"       # an id of the key registry or of the UID/URL allow-list
    alias = "Ana"
    segment = "gold"
    consent = true                # without consent: no personal field, no trigger

    [[bags]]
    tag = "0125123456"            # the bag tag number is the bag's id
    beacon = "bag-0001"
    flight = "BA117"
    owner_alias = "A. Smith"
    destination = "LHR"
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from gateway.core.subjects import Subject, SubjectDirectory
from gateway.errors import ConfigError, Problem
from gateway.validation import problems_from, read_toml

if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")]
Text = Annotated[str, Field(min_length=1, max_length=128)]


class _Model(BaseModel):
    # Attribute docstrings are the fields' descriptions (docs/config-reference.md).
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class _Customer(_Model):
    """A customer carrying a beacon (a loyalty tag, an app)."""

    id: Identifier
    """The customer's id (unique among customers)."""
    beacon: Identifier
    """The beacon id: of the key registry or of the UID/URL allow-list; one subject each."""
    alias: Text | None = None
    """A display name, shown in events when ``publish.subject_fields`` allows ``alias``."""
    segment: Identifier | None = None
    """A customer segment (``gold``), for trigger rules' ``where`` and events."""
    consent: bool
    """Without consent events name no personal field and no trigger rule fires."""


class _Bag(_Model):
    """A bag carrying a beacon (a bag tag)."""

    tag: Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,16}$")]
    """The bag tag number: the bag's id (unique among bags)."""
    beacon: Identifier
    """The beacon id: of the key registry or of the UID/URL allow-list; one subject each."""
    flight: Annotated[str, Field(pattern=r"^[A-Z0-9]{2,3}[0-9]{1,4}[A-Z]?$")] | None = None
    """The flight (``BA117``)."""
    owner_alias: Text | None = None
    """The owner's display name."""
    destination: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = None
    """The destination airport's IATA code (``LHR``)."""


class SubjectsFile(_Model):
    """The subjects file (the model :func:`parse_subjects` checks a document with)."""

    version: Literal[1]
    """The file format's version."""
    customers: list[_Customer] = Field(default_factory=list)
    """Customers."""
    bags: list[_Bag] = Field(default_factory=list)
    """Bags."""


def parse_subjects(document: dict[str, Any], source: str = "<subjects>") -> SubjectDirectory:
    """Check a parsed subjects document; :class:`ConfigError` lists every problem."""
    try:
        parsed = SubjectsFile.model_validate(document)
    except pydantic.ValidationError as exc:
        raise ConfigError(source, problems_from(exc, document)) from None
    subjects: list[tuple[str, Subject]] = []
    for index, customer in enumerate(parsed.customers):
        attributes = {
            name: value
            for name, value in (("alias", customer.alias), ("segment", customer.segment))
            if value is not None
        }
        subject = Subject(customer.id, "customer", customer.beacon, attributes, customer.consent)
        subjects.append((f"customers[{index}]", subject))
    for index, bag in enumerate(parsed.bags):
        fields = {"tag": bag.tag, "flight": bag.flight, "owner_alias": bag.owner_alias,
                  "destination": bag.destination}  # fmt: skip
        attributes = {name: value for name, value in fields.items() if value is not None}
        subjects.append((f"bags[{index}]", Subject(bag.tag, "bag", bag.beacon, attributes)))
    directory = SubjectDirectory()
    problems = []
    ids: dict[tuple[str, str], str] = {}
    for where, subject in subjects:
        first = ids.setdefault((subject.kind, subject.id), where)
        if first != where:
            problems.append(Problem(f"{where}", f"same id as {first}", repr(subject.id)))
            continue
        try:
            directory.add(subject)
        except ValueError as exc:
            problems.append(Problem(f"{where}.beacon", str(exc), repr(subject.beacon)))
    if problems:
        raise ConfigError(source, problems)
    return directory


def load_subjects(path: Path) -> SubjectDirectory:
    """Read and check a subjects file."""
    return parse_subjects(read_toml(path), str(path))
