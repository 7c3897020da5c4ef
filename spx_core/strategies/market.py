"""The market a structure is valued against: per underlying, a chain snapshot, its IVs and optionally a surface.

:class:`Market` is what every structure-level computation takes (valuation, payoff, probability), so a
structure spanning SPX and SPY legs finds each leg's quote in its own chain. :func:`locate` finds the
snapshot rows of a batch of contracts in one vectorized ``searchsorted`` over a packed integer key of the
canonical row order (expiry, root, strike, call before put); the keys are built once per snapshot and
cached by its checksum.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from spx_core.domain.contracts import ROOTS, OptionContract
from spx_core.domain.snapshot import ChainSnapshot

if TYPE_CHECKING:  # the surface layer loads scipy; naming a structure must not (the app imports this at start-up)
    from spx_core.surface.chain_iv import ChainIV
    from spx_core.surface.surface import VolSurface

__all__ = ["Market", "MarketChain", "MarketError", "locate"]

_ROOT_CODE = {r: i for i, r in enumerate(ROOTS)}
_KEY_CACHE: OrderedDict[str, tuple[np.ndarray, np.ndarray | None]] = OrderedDict()
_KEY_CACHE_SIZE = 16
_KEY_LOCK = threading.Lock()


class MarketError(KeyError):
    """The market has no chain for an underlying a structure needs."""

    def __str__(self) -> str:  # KeyError quotes its message; say it plainly
        return str(self.args[0])


@dataclass(frozen=True, slots=True, eq=False)
class MarketChain:
    """One underlying's market: ``civ`` solved on ``snapshot`` (same rows), and a fitted ``surface`` if any."""

    snapshot: ChainSnapshot
    civ: ChainIV
    surface: VolSurface | None = None

    def __post_init__(self) -> None:
        if self.civ.snapshot is not self.snapshot and self.civ.snapshot.checksum != self.snapshot.checksum:
            raise ValueError(f"ChainIV was solved on snapshot {self.civ.snapshot.checksum[:12]}, not on "
                             f"{self.snapshot.checksum[:12]}; pass chain_iv(snapshot) of the same snapshot")


@dataclass(frozen=True, slots=True, eq=False)
class Market:
    """Underlying symbol ("SPX", "SPY") -> its :class:`MarketChain`. Build with :meth:`of`."""

    chains: Mapping[str, MarketChain] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "chains", MappingProxyType(dict(self.chains)))

    @classmethod
    def of(cls, *civs: ChainIV, surfaces: Mapping[str, VolSurface] | None = None) -> Market:
        """A market from ChainIVs (each carries its snapshot), keyed by their snapshots' underlying."""
        surfaces = surfaces or {}
        chains: dict[str, MarketChain] = {}
        for c in civs:
            u = c.snapshot.underlying
            if u in chains:
                raise ValueError(f"two {u} chains given to Market.of; pass one ChainIV per underlying")
            chains[u] = MarketChain(c.snapshot, c, surfaces.get(u))
        unused = set(surfaces) - set(chains)
        if unused:
            raise ValueError(f"surfaces given for {sorted(unused)} without a chain; pass their ChainIVs too")
        return cls(chains)

    def __getitem__(self, underlying: str) -> MarketChain:
        try:
            return self.chains[underlying]
        except KeyError:
            have = ", ".join(self.chains) or "none"
            raise MarketError(f"no {underlying} chain in the market (have: {have}); "
                              f"add Market.of(chain_iv({underlying.lower()}_snapshot), ...)") from None

    def __contains__(self, underlying: object) -> bool:
        return underlying in self.chains

    @property
    def checksums(self) -> dict[str, str]:
        """Underlying -> checksum of the snapshot used (record it with any decision made from this market)."""
        return {u: c.snapshot.checksum for u, c in self.chains.items()}


def _pack(expiry_days: np.ndarray, root: np.ndarray, strike_milli: np.ndarray, is_put: np.ndarray) -> np.ndarray:
    # Ascending in the canonical order: expiry, root, strike, then calls (0) before puts (1).
    return ((expiry_days.astype(np.int64) * 4 + root.astype(np.int64)) << 32 | strike_milli.astype(np.int64)) << 1 \
        | is_put.astype(np.int64)


def _snapshot_keys(snapshot: ChainSnapshot) -> tuple[np.ndarray, np.ndarray | None]:
    with _KEY_LOCK:
        hit = _KEY_CACHE.get(snapshot.checksum)
        if hit is not None:
            _KEY_CACHE.move_to_end(snapshot.checksum)
            return hit
    c = snapshot.columns
    keys = _pack(c["expiry"].astype(np.int64), c["root"], np.round(c["strike"] * 1000), ~c["is_call"])
    # Canonical snapshots are sorted already; a stable argsort covers any that are not.
    order = None if len(keys) < 2 or bool(np.all(keys[1:] > keys[:-1])) else np.argsort(keys, kind="stable")
    entry = (keys if order is None else keys[order], order)
    with _KEY_LOCK:
        _KEY_CACHE[snapshot.checksum] = entry
        while len(_KEY_CACHE) > _KEY_CACHE_SIZE:
            _KEY_CACHE.popitem(last=False)
    return entry


def locate(snapshot: ChainSnapshot, contracts: Sequence[OptionContract]) -> np.ndarray:
    """Row index of each contract in ``snapshot`` (int64; -1 where it is not listed)."""
    if not contracts:
        return np.zeros(0, dtype=np.int64)
    keys, order = _snapshot_keys(snapshot)
    want = _pack(np.array([np.datetime64(c.expiry, "D").astype(np.int64) for c in contracts]),
                 np.array([_ROOT_CODE[c.root] for c in contracts]),
                 np.array([round(c.strike * 1000) for c in contracts]),
                 np.array([not c.is_call for c in contracts]))
    pos = np.searchsorted(keys, want)
    found = (pos < len(keys)) & (keys[np.minimum(pos, len(keys) - 1)] == want) if len(keys) else \
        np.zeros(len(want), dtype=bool)
    rows = pos if order is None else order[np.minimum(pos, len(keys) - 1)]
    return np.where(found, rows, -1).astype(np.int64)
