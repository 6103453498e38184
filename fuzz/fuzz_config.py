"""Fuzz the gateway configuration: the TOML file and its environment overrides.

Input: a configuration file's bytes; after a line ``#%env`` (if any), environment variables as
``NAME=VALUE`` lines, each name prefixed with ``BEACON_GATEWAY__`` unless it has the prefix.
:func:`gateway.config.load_config` reads the file with those overrides (gateway/config_env.py),
which covers the mqtt, outbox, http and logging sections (gateway/delivery_config.py). Allowed:
:class:`ConfigError`, naming each problem's field path. Property: a configuration that loads
assembles into a pipeline (what ``check-config`` and ``run`` do next) without raising: what the
checks let through, the gateway can run.

    .venv/bin/python fuzz/fuzz_config.py -runs=100000 fuzz/corpus/config
"""

from __future__ import annotations

from typing import Final

from contract import instrumented, main, scratch_file, total

with instrumented("tomllib"):
    from gateway.assemble import assemble
    from gateway.config import load_config
    from gateway.config_env import PREFIX
    from gateway.errors import ConfigError

ENV_MARKER: Final = b"\n#%env\n"


def _environment(text: bytes) -> dict[str, str]:
    environ = {}
    for line in text.decode("utf-8", "replace").splitlines():
        name, _, value = line.partition("=")
        if "\x00" in line or not name:
            continue  # an environment has no NUL and no empty name
        environ[name if name.upper().startswith(PREFIX) else PREFIX + name] = value
    return environ


def check(data: bytes) -> None:
    """One configuration file with its environment."""
    content, _, env = data.partition(ENV_MARKER)
    with scratch_file("gateway.toml", content) as path:
        config = load_config(path, _environment(env))
    assemble(config)


if __name__ == "__main__":
    main(total(check, (ConfigError,)), max_len=4096, dictionaries=("toml", "config"))
