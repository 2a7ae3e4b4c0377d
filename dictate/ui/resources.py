"""Icons and sounds shipped inside the package `dictate.resources` (the top-level resources/
folder, mapped into the wheel by setup.py), always read through importlib.resources so that a
wheel, a zip or an editable install all work."""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable

from dictate.errors import DictateError

STATES = ("idle", "loading", "listening", "transcribing", "note-recording", "error")
APP_ICON = "dictate"


def root() -> Traversable:
    try:
        return resources.files("dictate.resources")
    except ModuleNotFoundError:
        raise DictateError("dictate's icons and sounds are not installed (package dictate.resources); "
                           "reinstall with `pip install .`") from None


def icon(name: str) -> Traversable:
    """The SVG for a state name, or APP_ICON."""
    path = root() / "icons" / f"{name}.svg"
    if not path.is_file():
        raise DictateError(f"icon {name!r} is missing from dictate.resources")
    return path


def sound(name: str) -> Traversable:
    path = root() / "sounds" / f"{name}.wav"
    if not path.is_file():
        raise DictateError(f"sound {name!r} is missing from dictate.resources")
    return path
