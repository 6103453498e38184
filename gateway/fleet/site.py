"""A site configuration for a fleet run of a scene: its floor, the broker, the fleet's settings.

``beacon-gateway fleet`` (and the fleet tests) write one for the resolver workers and the
arbiter they start: the scene's gateways and zones, ``[mqtt]`` on the private broker, the key
registry, events that show subjects and beacons (so they can be scored), and no HTTP port.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

ARBITER_ID = "arbiter"


def _toml(value: object) -> str:
    return json.dumps(value)  # TOML's basic strings, numbers and arrays read like JSON's


@dataclass(frozen=True, slots=True)
class SiteFiles:
    """The files of a fleet run's site."""

    config: Path
    registry: Path


def write_site(
    document: dict[str, Any],
    registry_toml: str,
    directory: Path,
    port: int,
    *,
    shards: int = 1,
    prefix: str = "fleet",
) -> SiteFiles:
    """Write ``site.toml`` and ``registry.toml`` for a scene's config ``document``."""
    registry = directory / "registry.toml"
    registry.write_text(registry_toml)
    registry.chmod(0o600)
    lines = [
        f"site = {_toml(document['site'])}",
        f"gateway_id = {_toml(ARBITER_ID)}",
        f"key_registry = {_toml(str(registry))}",
    ]
    lines += [
        f"[[gateways]]\nid = {_toml(g['id'])}\nposition = {_toml(g['position'])}\n"
        f"rssi_offset_db = {_toml(g['rssi_offset_db'])}"
        for g in document["gateways"]
    ]
    lines += [
        f"[[zones]]\nid = {_toml(z['id'])}\ngateways = {_toml(z['gateways'])}\n"
        f"rect = {_toml(z['rect'])}"
        for z in document["zones"]
    ]
    presence = document.get("presence", {})
    lines += [
        f"[presence]\npath_loss_exponent = {_toml(presence.get('path_loss_exponent', 2.0))}",
        f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\ntopic_prefix = {_toml(prefix)}',
        f"[fleet]\nshards = {shards}",
        f"[outbox]\npath = {_toml(str(directory / 'outbox.sqlite'))}",
        "[http]\nenabled = false",
        '[publish]\nsubject_fields = ["id", "beacon"]',
        '[logging]\nformat = "json"',
    ]
    config = directory / "site.toml"
    config.write_text("\n\n".join(lines) + "\n")
    return SiteFiles(config, registry)
