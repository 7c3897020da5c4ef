"""Where the files in ``resources/`` are, from a source checkout and from a PyInstaller bundle.

From source the folder sits next to the ``app`` package (``<repo>/resources``). In a frozen
one-dir bundle PyInstaller unpacks data files under ``sys._MEIPASS``; ``build.spec`` copies the
folder there as ``resources``.
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["resources_dir", "resource_path", "style_path", "icon_path", "ResourceMissingError"]

APP_ICON = "spx_terminal.svg"


class ResourceMissingError(FileNotFoundError):
    """A file the app ships with is not where it should be (broken checkout or bundle)."""


def resources_dir() -> Path:
    """The ``resources`` folder: ``sys._MEIPASS/resources`` when frozen, else ``<repo>/resources``."""
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle is not None:
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def resource_path(*parts: str) -> Path:
    """Path of a shipped file, e.g. ``resource_path("styles", "dark.qss")``.

    Raises:
        ResourceMissingError: when the file is absent, naming where it was looked for.
    """
    path = resources_dir().joinpath(*parts)
    if not path.exists():
        raise ResourceMissingError(
            f"resource {'/'.join(parts)!r} not found at {path}; reinstall the app or, from source, "
            f"restore the resources/ folder (git checkout -- resources)")
    return path


def style_path(theme: str) -> Path:
    """The Qt style sheet of a theme (``dark`` or ``light``)."""
    return resource_path("styles", f"{theme}.qss")


def icon_path(name: str = APP_ICON) -> Path:
    return resource_path("icons", name)
