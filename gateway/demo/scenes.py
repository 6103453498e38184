"""Finding a scene: a shipped name (``store``, ``airport``) or a path to a scene file."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from gateway.demo.errors import DemoError

SCENES_DIR: Final = Path("configs") / "scenes"
"""Where the shipped scenes live in a checkout (not in the wheel: the demo runs from one)."""
PACKAGE_ROOT: Final = Path(__file__).resolve().parents[2]
"""The checkout the package was installed from (``pip install --editable``, as make does)."""


def scene_dirs(cwd: Path | None = None) -> list[Path]:
    """Where shipped scenes are looked for: next to the package, then under the current dir."""
    here = Path.cwd() if cwd is None else cwd
    dirs = [PACKAGE_ROOT / SCENES_DIR, here / SCENES_DIR]
    return list(dict.fromkeys(d.resolve() for d in dirs))


def shipped_scenes(cwd: Path | None = None) -> list[str]:
    """The names of the shipped scenes found (``store``, ``airport``...)."""
    names = {path.stem for d in scene_dirs(cwd) if d.is_dir() for path in d.glob("*.toml")}
    return sorted(names)


def find_scene(value: str, cwd: Path | None = None) -> Path:
    """The scene file ``value`` names: a path to a file, or a shipped scene's name."""
    given = Path(value)
    if given.suffix == ".toml" or given.parent != Path():
        if given.is_file():
            return given
        msg = f"no scene file {value!r}"
        raise DemoError(msg)
    for directory in scene_dirs(cwd):
        candidate = directory / f"{value}.toml"
        if candidate.is_file():
            return candidate
    known = shipped_scenes(cwd)
    if not known:
        where = " or ".join(str(d) for d in scene_dirs(cwd))
        msg = (
            f"no scenes found (looked in {where}); run the demo from a beacon-gateway "
            "checkout, or pass --scene PATH to a scene file"
        )
    else:
        msg = f"no scene named {value!r}: pick one of {', '.join(known)} or pass a path"
    raise DemoError(msg)
