"""QuoteBook: the listed rows of one underlying's simulated chain and the market makers' quotes on them.

The book is what SPX and SPY share: given theoretical prices, liquidity and days to expiry per row (each
underlying prices its own way), it lists (jittered widths, sizes, open interest carried across relistings),
requotes (a quote the theo left always moves; a good one moves when its maker refreshes), prints random
trades (one by one; per row, in the same law, when a step holds more trades than the chain has rows: a bulk
recording's steps of hours would otherwise draw ~10^5 trades each), drops expired rows and emits :class:`~spx_core.marketdata.source.QuoteBatch` es. All randomness
comes from the book's own generator, in a fixed order, so a seeded run is reproducible and one underlying's
draws never shift another's.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from spx_core.domain.snapshot import ChainSnapshot
from spx_core.marketdata.simulator import quoting
from spx_core.marketdata.simulator.chain import ChainLayout
from spx_core.marketdata.simulator.config import QuotingParams
from spx_core.marketdata.source import QuoteBatch

__all__ = ["QuoteBook", "MAX_QUOTE_AGE_SECONDS"]

#: a live quote is re-stamped at least this often even when its price did not move (seconds), so
#: the snapshot's STALE flag (60 s by default) marks only what a real feed would leave stale
MAX_QUOTE_AGE_SECONDS = 45.0

#: (theo, days, jitter, params) -> target width before tick rounding; (theo, width) -> (bid, ask)
WidthFn = Callable[..., np.ndarray]
QuoteFn = Callable[..., tuple[np.ndarray, np.ndarray]]


class QuoteBook:
    """One underlying's rows and quotes. Not thread-safe; owned by :class:`SimulatedMarket`.

    Args:
        underlying: symbol written into snapshots ("SPX", "SPY").
        quoting: widths, refresh and trade rates.
        rng: the book's own generator.
        width: target width per row (default: the SPX width table, :func:`quoting.quote_width`).
        quotes: bid/ask on the tick grid (default: SPX ticks, :func:`quoting.make_quotes`).
    """

    def __init__(self, *, underlying: str, quoting_params: QuotingParams, rng: np.random.Generator,
                 width: WidthFn = quoting.quote_width, quotes: QuoteFn = quoting.make_quotes) -> None:
        self.underlying = underlying
        self._q = quoting_params
        self._rng = rng
        self._width_fn, self._quotes_fn = width, quotes
        self.layout: ChainLayout | None = None
        self.snap: ChainSnapshot | None = None
        self.log_k = np.zeros(0)
        self._jitter = np.zeros(0)
        self._cols: dict[str, np.ndarray] = {}
        self._pending = False
        self._seq = 0

    def _width(self, theo: np.ndarray, days: np.ndarray) -> np.ndarray:
        return self._width_fn(theo=theo, days=days, jitter=self._jitter, params=self._q)

    def list_rows(self, layout: ChainLayout) -> None:
        """Take a new layout (call :meth:`relist` with its prices next); draws the width jitter."""
        self.layout = layout
        self.log_k = np.log(layout.strike)
        self._jitter = self._rng.lognormal(0.0, self._q.width_jitter, size=len(layout))

    def relist(self, *, now_ns: int, theo: np.ndarray, liq: np.ndarray, days: np.ndarray,
               previous: ChainLayout | None) -> None:
        """Fresh quotes, sizes and open interest for the rows of :meth:`list_rows`."""
        layout, n = self.layout, len(self.layout)
        bid, ask = self._quotes_fn(theo=theo, width=self._width(theo, days))
        bid_size, ask_size = quoting.draw_sizes(liq=liq, theo=theo, params=self._q, rng=self._rng)
        oi = quoting.initial_open_interest(liq=liq, roundness=layout.roundness, days=days, rng=self._rng)
        last = np.full(n, np.nan)
        if previous is not None:  # contracts that stay listed keep their open interest (+ part of the volume)
            pos, found = _match(layout.key, previous.key)
            old = self._cols
            oi = np.where(found, old["open_interest"][pos] + old["volume"][pos] // 4, oi).astype(np.int32)
            last = np.where(found, old["last"][pos], last)
        self._cols = {"bid": bid, "ask": ask, "bid_size": np.where(bid > 0, bid_size, 0).astype(np.int32),
                      "ask_size": ask_size, "last": last, "volume": np.zeros(n, np.int32), "open_interest": oi,
                      "quote_time": np.full(n, now_ns, np.int64)}
        self._pending = True

    def has_expired(self, now_ns: int) -> bool:
        return bool((self.layout.exp_instant_ns <= now_ns).any())

    def drop_expired(self, now_ns: int) -> None:
        lay = self.layout
        keep_exp = lay.exp_instant_ns > now_ns
        keep = keep_exp[lay.exp_index]
        new_index = np.cumsum(keep_exp) - 1
        counts = (lay.exp_stop - lay.exp_start)[keep_exp]
        stops = np.cumsum(counts)
        self.layout = ChainLayout(
            exp_root=lay.exp_root[keep_exp], exp_date=lay.exp_date[keep_exp],
            exp_instant_ns=lay.exp_instant_ns[keep_exp], exp_start=stops - counts, exp_stop=stops,
            root=lay.root[keep], expiry=lay.expiry[keep], strike=lay.strike[keep], is_call=lay.is_call[keep],
            exp_index=new_index[lay.exp_index[keep]], roundness=lay.roundness[keep], key=lay.key[keep],
            listed_ns=lay.listed_ns)
        self.log_k = self.log_k[keep]
        self._jitter = self._jitter[keep]
        self._cols = {k: v[keep] for k, v in self._cols.items()}
        self._pending = True

    def requote(self, *, dt: float, now_ns: int, theo: np.ndarray, liq: np.ndarray,
                days: np.ndarray) -> np.ndarray:
        """Requote after the clock moved ``dt`` seconds to ``now_ns``; returns the changed rows."""
        if dt <= 0:
            return np.zeros(0, np.int64)
        cfg, rng, old = self._q, self._rng, self._cols
        n = len(theo)
        refresh = rng.random(n) < -np.expm1(-cfg.refresh_rate * dt * np.minimum(liq, 1.0))
        n_ref = int(refresh.sum())
        if n_ref:
            self._jitter = self._jitter.copy()
            self._jitter[refresh] = rng.lognormal(0.0, cfg.width_jitter, size=n_ref)
        bid, ask = self._quotes_fn(theo=theo, width=self._width(theo, days))
        moved = (bid != old["bid"]) | (ask != old["ask"])
        off_market = (theo < old["bid"]) | (theo > old["ask"])
        aged = (now_ns - old["quote_time"]) > MAX_QUOTE_AGE_SECONDS * 1e9
        # a quote the theo left must move; a quote still good moves only when its maker refreshes
        update = off_market | aged | refresh
        new = dict(old)
        new["bid"] = np.where(update, bid, old["bid"])
        new["ask"] = np.where(update, ask, old["ask"])
        resize = update & (moved | refresh)
        if resize.any():
            bsz, asz = quoting.draw_sizes(liq=liq[resize], theo=theo[resize], params=cfg, rng=rng)
            new["bid_size"] = old["bid_size"].copy()
            new["ask_size"] = old["ask_size"].copy()
            new["bid_size"][resize] = np.where(new["bid"][resize] > 0, bsz, 0)
            new["ask_size"][resize] = asz
        traded = self._trade(new, liq, dt)
        new["quote_time"] = np.where(update, now_ns, old["quote_time"])
        self._cols = new
        return np.flatnonzero(update | traded)

    def _trade(self, cols: dict[str, np.ndarray], liq: np.ndarray, dt: float) -> np.ndarray:
        """Random trades at the bid or ask, weighted by liquidity; updates last and volume in ``cols``."""
        rng, n = self._rng, len(liq)
        traded = np.zeros(n, dtype=bool)
        n_trades = int(rng.poisson(self._q.trade_rate * dt))
        if n_trades == 0 or n == 0:
            return traded
        if n_trades > n:  # a long step (a bulk recording's hours): per row, not per trade
            return self._trade_rows(cols, liq, n_trades)
        cum = np.cumsum(liq)
        rows = np.minimum(np.searchsorted(cum, rng.random(n_trades) * cum[-1]), n - 1)
        sizes = rng.geometric(0.2, size=n_trades).astype(np.int32)
        at_ask = (rng.random(n_trades) < 0.5) | ~(cols["bid"][rows] > 0)
        volume = cols["volume"].copy()
        np.add.at(volume, rows, sizes)
        last = cols["last"].copy()
        last[rows] = np.where(at_ask, cols["ask"][rows], cols["bid"][rows])
        cols["volume"], cols["last"] = volume, last
        traded[rows] = True
        return traded

    def _trade_rows(self, cols: dict[str, np.ndarray], liq: np.ndarray, n_trades: int) -> np.ndarray:
        """:meth:`_trade` drawn per row, in the same law: the trades per row are multinomial in the liquidity
        weights, a row's ``k`` geometric(0.2) sizes sum to ``k`` plus a negative binomial(k, 0.2), and its last
        trade is at the ask or the bid with even odds (the ask when there is no bid)."""
        rng = self._rng
        counts = rng.multinomial(n_trades, liq / liq.sum())
        rows = np.flatnonzero(counts)
        k = counts[rows]
        sizes = k + rng.negative_binomial(k, 0.2)
        at_ask = (rng.random(len(rows)) < 0.5) | ~(cols["bid"][rows] > 0)
        volume = cols["volume"].copy()
        volume[rows] += sizes.astype(volume.dtype)
        last = cols["last"].copy()
        last[rows] = np.where(at_ask, cols["ask"][rows], cols["bid"][rows])
        cols["volume"], cols["last"] = volume, last
        traded = np.zeros(len(liq), dtype=bool)
        traded[rows] = True
        return traded

    def emit(self, changed: np.ndarray, *, now_ns: int, price: float) -> QuoteBatch:
        """The batch of what changed since the last emit (all rows after a relisting or expiry)."""
        if self._pending:
            if self.snap is None or self.snap.time_ns != now_ns or len(self.snap) != len(self.layout) or self._seq:
                self.snap = self.full_snapshot(now_ns=now_ns, price=price)
            changed = np.arange(len(self.layout), dtype=np.int64)
        elif len(changed) or now_ns != self.snap.time_ns:
            self.snap = self.snap.replace_quotes(time=now_ns, underlying_price=price, **self._cols)
        batch = QuoteBatch(snapshot=self.snap, changed=np.asarray(changed, dtype=np.int64),
                           layout_changed=self._pending, sequence=self._seq)
        self._pending = False
        self._seq += 1
        return batch

    def full_snapshot(self, *, now_ns: int, price: float) -> ChainSnapshot:
        lay = self.layout
        return ChainSnapshot.from_columns(
            underlying=self.underlying, time=now_ns, underlying_price=price, root=lay.root, expiry=lay.expiry,
            strike=lay.strike, is_call=lay.is_call, assume_sorted=True, **self._cols)


def _match(keys: np.ndarray, old_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of ``keys`` in ``old_keys`` and whether each was found."""
    if len(old_keys) == 0:
        return np.zeros(len(keys), np.int64), np.zeros(len(keys), bool)
    order = np.argsort(old_keys)
    pos = np.minimum(np.searchsorted(old_keys, keys, sorter=order), len(old_keys) - 1)
    pos = order[pos]
    return pos, old_keys[pos] == keys
