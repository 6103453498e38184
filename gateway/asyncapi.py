"""The AsyncAPI 3.0 document of the MQTT contract, generated from the event models.

``beacon-gateway schemas`` writes it to ``schemas/asyncapi.json`` next to the events' JSON
Schemas (and ``--check`` fails when it is stale), so the contract a consumer codes against is
the one the gateway publishes. docs/mqtt.md explains it in prose.
"""

from __future__ import annotations

import json
from typing import Any, Final

from gateway.events import EVENT_MODELS, SCHEMA_VERSION
from gateway.topics import CONTRACT_VERSION

ASYNCAPI_FILE: Final = "asyncapi.json"
_KIND_MODEL: Final = {
    "presence": "presence-event",
    "trigger": "trigger-event",
    "telemetry": "telemetry-event",
}
_KIND_SUMMARY: Final = {
    "presence": "A subject entered, dwelled in or left a zone.",
    "trigger": "A trigger rule fired (an offer, a notification, an alert).",
    "telemetry": "A beacon's telemetry (decrypted when it came as eTLM).",
}
_PARAMETERS: Final = {
    "prefix": {"description": "mqtt.topic_prefix (default beacon-gateway)."},
    "site": {"description": "The site of the gateway (config site)."},
    "gateway": {"description": "The gateway's id (config gateway_id)."},
    "subject": {
        "description": (
            "The subject's id when events may show it, else its beacon id when that may be "
            "shown, else '-'. Topic-unsafe characters are replaced by '_'."
        )
    },
}
_STATUS_SCHEMA: Final = {
    "type": "object",
    "required": ["status", "gateway"],
    "properties": {
        "status": {"type": "string", "enum": ["online", "offline"]},
        "gateway": {"type": "string"},
        "at": {"type": "number", "description": "Unix time of the change (not in the will)."},
        "reason": {
            "type": "string",
            "enum": ["stopped", "connection_lost"],
            "description": (
                "Why offline: 'stopped' (a clean stop) or 'connection_lost' (the will, sent by "
                "the broker). Absent from 'online'."
            ),
        },
    },
}


def _schema(name: str) -> dict[str, Any]:
    """The model's JSON Schema with its local $defs references rewritten for AsyncAPI."""
    schema = EVENT_MODELS[name].model_json_schema(ref_template="#/components/schemas/{model}")
    return {key: value for key, value in schema.items() if key != "$defs"}


def _definitions() -> dict[str, Any]:
    definitions: dict[str, Any] = {}
    for model in EVENT_MODELS.values():
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        definitions.update(schema.get("$defs", {}))
    return definitions


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document (a dict, ready for JSON)."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = _definitions()
    qos1 = {"mqtt": {"qos": 1, "retain": False, "bindingVersion": "0.2.0"}}
    for kind, model_name in _KIND_MODEL.items():
        message_name = f"{kind}Event"
        schemas[model_name] = _schema(model_name)
        messages[message_name] = {
            "name": message_name,
            "title": model_name,
            "summary": _KIND_SUMMARY[kind],
            "contentType": "application/json",
            "payload": {"$ref": f"#/components/schemas/{model_name}"},
            "correlationId": {
                "description": (
                    "The event's stable id (dedup key), also an MQTT 5 user property; "
                    "the user property seq is the gateway's outbox sequence number."
                ),
                "location": "$message.payload#/event_id",
            },
            "bindings": qos1,
        }
        channels[kind] = {
            "address": f"{{prefix}}/{CONTRACT_VERSION}/{{site}}/{{gateway}}/{kind}/{{subject}}",
            "parameters": {
                name: {"$ref": f"#/components/parameters/{name}"} for name in _PARAMETERS
            },
            "messages": {message_name: {"$ref": f"#/components/messages/{message_name}"}},
        }
        operations[f"publish{kind.capitalize()}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{kind}"},
            "messages": [{"$ref": f"#/channels/{kind}/messages/{message_name}"}],
            "bindings": qos1,
        }
    messages["status"] = {
        "name": "status",
        "summary": "Retained online/offline status; 'offline' is also the gateway's MQTT will.",
        "contentType": "application/json",
        "payload": _STATUS_SCHEMA,
        "bindings": {"mqtt": {"qos": 1, "retain": True, "bindingVersion": "0.2.0"}},
    }
    channels["status"] = {
        "address": f"{{prefix}}/{CONTRACT_VERSION}/{{site}}/{{gateway}}/status",
        "parameters": {
            name: {"$ref": f"#/components/parameters/{name}"}
            for name in ("prefix", "site", "gateway")
        },
        "messages": {"status": {"$ref": "#/components/messages/status"}},
    }
    operations["publishStatus"] = {
        "action": "send",
        "channel": {"$ref": "#/channels/status"},
        "messages": [{"$ref": "#/channels/status/messages/status"}],
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "beacon-gateway MQTT contract",
            "version": f"{CONTRACT_VERSION}.{SCHEMA_VERSION}",
            "description": (
                "Presence, trigger and telemetry events published by beacon-gateway "
                "at QoS 1 (at least once: deduplicate by event_id). "
                "See docs/mqtt.md."
            ),
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": schemas,
            "messages": messages,
            "parameters": _PARAMETERS,
        },
    }


def asyncapi_text() -> str:
    """The document as the text ``schemas/asyncapi.json`` holds."""
    return json.dumps(asyncapi_document(), indent=2, sort_keys=True) + "\n"
