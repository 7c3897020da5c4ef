"""One chain-IV solve and one surface fit per snapshot, however many consumers ask for it.

The surface, scanner, market and builder views each need the chain IVs and the fitted surface of the
snapshot they show. Fitting it once per view cost four fits per snapshot on a 2-core machine. A
:class:`FitMemo` is shared by them (the app keeps one per window): the first caller for a snapshot fits
it (warm-started from the newest surface of the same underlying), callers arriving meanwhile wait for
that fit instead of starting their own, and later callers get the stored result. Thread-safe; no globals.

Only the default forward configuration is memoized: a caller with its own ``ForwardConfig`` calls
:func:`~spx_core.surface.chain_iv.chain_iv` itself.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from spx_core.domain.snapshot import ChainSnapshot
from spx_core.surface.chain_iv import ChainIV, chain_iv
from spx_core.surface.surface import VolSurface, fit_surface

__all__ = ["FitMemo", "FittedChain", "fit_chain"]


@dataclass(frozen=True, slots=True, eq=False)
class FittedChain:
    """A snapshot's chain IVs and its fitted surface (``surface.snapshot_checksum == civ.snapshot.checksum``)."""

    civ: ChainIV
    surface: VolSurface


def fit_chain(snapshot: ChainSnapshot, previous: VolSurface | None = None) -> FittedChain:
    """Chain IVs and the surface fitted on them (warm-started from ``previous``)."""
    civ = chain_iv(snapshot)
    return FittedChain(civ, fit_surface(civ, previous=previous))


class _Pending:
    """A fit in progress: waiters block on ``done`` and then read ``result`` or re-raise ``error``."""

    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: FittedChain | None = None
        self.error: BaseException | None = None


class FitMemo:
    """Chain IVs + fitted surface per snapshot checksum, computed once (see the module docstring).

    Args:
        keep: how many snapshots' fits to keep (the newest; a view one or two snapshots behind still hits).
        fitter: ``fitter(snapshot, previous_surface_or_None) -> FittedChain`` (default: :func:`fit_chain`).
    """

    def __init__(self, keep: int = 4, fitter: Callable[[ChainSnapshot, VolSurface | None], FittedChain] | None = None
                 ) -> None:
        if keep < 1:
            raise ValueError(f"FitMemo keeps at least one fit, got keep={keep}")
        self._keep = keep
        self._fitter = fitter or fit_chain
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Pending] = OrderedDict()
        self._newest: dict[str, VolSurface] = {}  # per underlying: the warm start of the next fit
        self.fits = 0  # fits computed (for tests and the status line: hits = requests - fits)
        self.requests = 0

    def fit(self, snapshot: ChainSnapshot) -> FittedChain:
        """The chain IVs and fitted surface of ``snapshot``: computed here, waited for, or remembered.

        An exception of the fit is raised to every caller waiting on it; the next request fits again.
        """
        key = snapshot.checksum
        with self._lock:
            self.requests += 1
            pending = self._entries.get(key)
            owner = pending is None
            if owner:
                pending = self._entries[key] = _Pending()
                while len(self._entries) > self._keep:
                    self._entries.popitem(last=False)
                warm = self._newest.get(snapshot.underlying)
            else:
                self._entries.move_to_end(key)
        if not owner:
            pending.done.wait()
            if pending.error is not None:
                raise pending.error
            return pending.result
        try:
            fitted = self._fitter(snapshot, warm)
        except BaseException as exc:
            pending.error = exc
            with self._lock:
                if self._entries.get(key) is pending:
                    del self._entries[key]
            pending.done.set()
            raise
        pending.result = fitted
        with self._lock:
            self.fits += 1
            newest = self._newest.get(snapshot.underlying)
            if newest is None or newest.time_ns <= fitted.surface.time_ns:
                self._newest[snapshot.underlying] = fitted.surface
        pending.done.set()
        return fitted
