"""A receiving gateway for the harnesses whose input becomes sightings (advert, capture).

The example configuration (configs/gateway.example.toml) with the test key registry, a UID and
a URL beacon on the allow-list and a subject for the trigger rule, so that sightings reach
identity, presence, triggers and the events the daemon publishes. Import it inside
``contract.instrumented()``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final

from gateway.assemble import assemble
from gateway.config import parse_config
from gateway.registry import KeyRegistry
from gateway.subjects_file import parse_subjects
from gateway.topics import Topics
from gateway.validation import read_toml

if TYPE_CHECKING:
    from collections.abc import Iterable

    from gateway.core.pipeline import Output
    from gateway.core.sighting import Sighting

CONFIGS: Final = Path(__file__).resolve().parent.parent / "configs"
START: Final = 1_767_225_600.0
"""2026-01-01T00:00:00Z: the test registry's EIDs (configs/samples/mixed.txt) are due then."""
UID_BEACON: Final = {"id": "uid-1", "namespace": "8b0ca750095477cb3e77", "instance": "000000000001"}
URL_BEACON: Final = {"id": "url-1", "url": "https://www.google.com/"}
SUBJECTS: Final = {
    "version": 1,
    "customers": [{"id": "c-1", "beacon": "loyalty-0001", "segment": "gold", "consent": True}],
    "bags": [{"tag": "0125123456", "beacon": "bag-tag-0002", "flight": "BA117"}],
}


def _config_document() -> dict[str, object]:
    document = read_toml(CONFIGS / "gateway.example.toml")
    document.update(uid_beacons=[UID_BEACON], url_beacons=[URL_BEACON])
    del document["key_registry"]
    return document


CONFIG: Final = parse_config(_config_document())
REGISTRY: Final = KeyRegistry.load(CONFIGS / "test-registry.toml")
SECRETS: Final = tuple(key.identity_key for key in REGISTRY)
GATEWAYS: Final = tuple(gateway.id for gateway in CONFIG.gateways)
HORIZON_S: Final = CONFIG.presence.max_exit_timeout_s


def receive(sightings: Iterable[Sighting]) -> list[str]:
    """Sightings through a fresh pipeline into published events: ``topic payload`` lines."""
    assembly = assemble(CONFIG, REGISTRY, parse_subjects(SUBJECTS))
    topics = Topics(CONFIG.mqtt.topic_prefix if CONFIG.mqtt else "", CONFIG.site, CONFIG.gateway_id)
    published: list[str] = []

    def publish(outputs: list[Output]) -> None:
        for output in outputs:
            event = assembly.events.build(output)
            published.append(f"{topics.for_event(event)} {event.model_dump_json()}")

    last: float | None = None
    for sighting in sightings:
        publish(assembly.pipeline.process(sighting))
        last = sighting.at if last is None else max(last, sighting.at)
    if last is not None:
        publish(assembly.pipeline.tick(last + HORIZON_S + 1))
    return published
