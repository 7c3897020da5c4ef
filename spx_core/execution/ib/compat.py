"""Which IB client library runs: ``ib_insync`` (the project's dependency) or its maintained fork ``ib_async``.

Both expose the same ``IB`` / ``Contract`` / ``Order`` API for everything the adapter uses; the differences that
matter (ambiguous contracts, which error codes are warnings) are handled where they occur, not by branching on
the library. This module is the only place that imports either library.
"""

from __future__ import annotations

import importlib
from functools import cache
from types import ModuleType

__all__ = ["UNSET_DOUBLE", "IbUnavailable", "ib_module", "unset_to_nan"]

#: IB's "no value" double (``sys.float_info.max``) in both libraries.
UNSET_DOUBLE = 1.7976931348623157e308


class IbUnavailable(ImportError):
    """Neither ib_insync nor ib_async is installed."""


@cache
def ib_module() -> ModuleType:
    """``ib_insync`` when installed, else ``ib_async``; raises :class:`IbUnavailable` naming how to fix it."""
    for name in ("ib_insync", "ib_async"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise IbUnavailable("no Interactive Brokers client library: pip install ib_insync (or ib_async)")


def unset_to_nan(value: object) -> float:
    """A float from an IB number or numeric string; NaN for IB's unset marker, empty or unparsable values."""
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")
    return float("nan") if abs(out) >= UNSET_DOUBLE * 0.5 else out
