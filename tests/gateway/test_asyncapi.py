"""The AsyncAPI document: every reference resolves, every event model and topic is in it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gateway.asyncapi import ASYNCAPI_FILE, asyncapi_document, asyncapi_text
from gateway.delivery.mqtt_client import MqttClient
from gateway.delivery.mqtt_settings import MqttSettings
from gateway.events import EVENT_MODELS

ROOT = Path(__file__).resolve().parents[2]


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_every_reference_resolves_inside_the_document() -> None:
    document = asyncapi_document()
    refs = _refs(document)
    assert refs
    for ref in refs:
        assert _resolve(document, ref) is not None


def test_the_document_covers_every_event_model_and_the_status_topic() -> None:
    document = asyncapi_document()
    assert document["asyncapi"] == "3.0.0"
    assert set(EVENT_MODELS) <= set(document["components"]["schemas"])
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert "{prefix}/v1/{site}/{gateway}/presence/{subject}" in addresses
    assert "{prefix}/v1/{site}/{gateway}/status" in addresses
    for channel in document["channels"].values():
        parameters = set(channel.get("parameters", {}))
        assert parameters == {
            part[1:-1] for part in channel["address"].split("/") if part.startswith("{")
        }


def test_the_checked_in_document_is_current() -> None:
    checked_in = (ROOT / "schemas" / ASYNCAPI_FILE).read_text("utf-8")
    assert json.loads(checked_in) == json.loads(asyncapi_text())


def _conforms(payload: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """What in a flat JSON object breaks a flat object schema (types, enums, required keys)."""
    kinds: dict[str, type | tuple[type, ...]] = {"string": str, "number": (int, float)}
    properties = schema["properties"]
    problems = [f"{key} missing" for key in schema["required"] if key not in payload]
    for key, value in payload.items():
        rule = properties.get(key)
        if rule is None:
            problems.append(f"{key} not in the schema")
        elif not isinstance(value, kinds[rule["type"]]):
            problems.append(f"{key}: {value!r} is not a {rule['type']}")
        elif "enum" in rule and value not in rule["enum"]:
            problems.append(f"{key}: {value!r} not one of {rule['enum']}")
    return problems


def test_every_status_the_gateway_publishes_fits_the_documented_schema() -> None:
    schema = asyncapi_document()["components"]["messages"]["status"]["payload"]
    client = MqttClient(
        MqttSettings(host="127.0.0.1", port=1883, client_id="gw-1", status_topic="s"),
        clock=lambda: 1_700_000_000.25,
    )
    payloads = [
        client.status_payload("online", reason=None),
        client.status_payload("offline", reason="stopped"),
        client.status_payload("offline", reason="connection_lost", stamped=False),  # the will
    ]
    for payload in payloads:
        assert _conforms(json.loads(payload), schema) == [], payload
    assert _conforms({"status": "offline", "gateway": "g", "reason": "nap"}, schema)
