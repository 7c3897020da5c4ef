"""The installed IB client library: ``ib_insync``, or its maintained fork ``ib_async`` when ib_insync is absent."""

from __future__ import annotations

import importlib
from types import ModuleType

CLIENT_LIBRARIES = ("ib_insync", "ib_async")


def ib_module() -> ModuleType:
    """The client library module (``ib_insync`` first); raises ImportError naming both when neither is there."""
    for name in CLIENT_LIBRARIES:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError("neither ib_insync nor ib_async is installed: pip install ib_insync (or ib_async)")


def logger_names() -> tuple[str, ...]:
    """Root logger names of the client libraries (their decoder, wrapper, client and ib loggers live below)."""
    return CLIENT_LIBRARIES
