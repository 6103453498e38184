"""Who is behind a beacon: customers and bags, and what of them an event may carry.

A subject is joined to exactly one beacon id (the key registry's id, or a UID/URL allow-list
entry). Customers carry consent: without it a customer's events name no personal field and no
trigger rule fires for them (personalization needs consent). Bags are operational data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

SubjectKind = Literal["customer", "bag"]
AttributeValue = str | int | float | bool
CUSTOMER_FIELDS: Final = ("alias", "segment")
"""Profile fields a customer may have (besides id and consent)."""
BAG_FIELDS: Final = ("tag", "flight", "owner_alias", "destination")
"""Profile fields a bag may have (besides id)."""


@dataclass(frozen=True, slots=True)
class Subject:
    """A customer or a bag, joined to one beacon."""

    id: str
    kind: SubjectKind
    beacon: str
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    consent: bool = True

    def view(self, allowed: frozenset[str]) -> dict[str, AttributeValue]:
        """The fields an event may carry: ``kind`` always; ``id`` and attributes if allowed.

        A customer without consent shows only its kind.
        """
        shown: dict[str, AttributeValue] = {"kind": self.kind}
        if self.kind == "customer" and not self.consent:
            return shown
        if "id" in allowed:
            shown["id"] = self.id
        shown.update({name: v for name, v in self.attributes.items() if name in allowed})
        return shown


class SubjectDirectory:
    """Subjects by beacon id."""

    def __init__(self, subjects: Iterable[Subject] = ()) -> None:
        self._by_beacon: dict[str, Subject] = {}
        for subject in subjects:
            self.add(subject)

    def add(self, subject: Subject) -> None:
        """Add a subject; a beacon belongs to one subject only."""
        other = self._by_beacon.get(subject.beacon)
        if other is not None:
            msg = f"beacon {subject.beacon!r} belongs to {other.id!r} and {subject.id!r}"
            raise ValueError(msg)
        self._by_beacon[subject.beacon] = subject

    def __len__(self) -> int:
        return len(self._by_beacon)

    def for_beacon(self, beacon_id: str) -> Subject | None:
        """The subject carrying ``beacon_id``, if one is registered."""
        return self._by_beacon.get(beacon_id)
