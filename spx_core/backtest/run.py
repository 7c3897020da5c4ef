"""What a backtest run gives back: trades, decisions, the equity curve, the marks it chose, and its provenance.

The result checksum is the SHA-256 of a canonical JSON of the trades, the decisions and the equity curve (floats
rounded to 1e-6): the same inputs (config, data, code) always give the same checksum.
"""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from spx_core.portfolio.decisions import TradeDecision

__all__ = ["BacktestResult", "TradeRecord", "code_version", "result_checksum"]


@dataclass(frozen=True, slots=True)
class TradeRecord:
    """One trade of the run (prices in index points per unit, opening convention, credits positive; dollars for
    ``pnl`` (realized, net of costs as the ledger books it) and ``fees`` (commissions + fees)).

    ``exit_reason``: the monitor's rule (take_profit, stop_loss, regime, dte, time), ``expiry`` when settled,
    ``open`` when still open at the end of the run."""

    trade_id: int
    strategy: str
    entry_ns: int
    exit_ns: int | None
    exit_reason: str
    legs: tuple[tuple[str, str, float, str, int], ...]  # (root, expiry ISO, strike, "C"/"P", ratio)
    side: str
    entry_price: float
    exit_price: float
    quantity: int
    pnl: float
    fees: float


@dataclass(frozen=True)
class BacktestResult:
    """A run's outcome.

    Attributes:
        trades: every trade opened, in opening order.
        decisions: every decision recorded (entries with SKIP reasons, exits, hedges), in order.
        equity: net liquidation (dollars) at each step, indexed by tz-aware UTC timestamps.
        margin: the maintenance margin of the open trades (dollars) at the same stamps (``compute_metrics``'s
            ``margin``).
        marks: held-leg marks per choice: ``{"clean", "skip", "surface", "raw"}`` -> count.
        config_hash: SHA-256 of the run's whole configuration (strategies, fills, fees, profile, range, choice).
        strategy_hashes: strategy name -> its ``StrategyConfig.config_hash``.
        snapshots_read: ``(snapshot id, checksum)`` of every snapshot decoded, in reading order.
        data_checksum: SHA-256 over ``snapshots_read``'s checksums.
        code_version: ``"<package version>+<git describe>"`` or ``"<package version>+unknown"``.
        result_checksum: see the module docstring.
        cancelled: the run was stopped by ``cancel`` before its end (a partial result).
        steps: steps run / steps planned.
        notes: what the run wants the reader to know (marks that were not clean, per choice).
        starting_cash: the account before the first step (dollars; the returns' base).
        factors: trade position (in ``trades``) -> its entry factors (:func:`~spx_core.backtest.factors.entry_factors`).
        breaker_trips: the circuit breaker's trips during the run, in order.
    """

    trades: tuple[TradeRecord, ...]
    decisions: tuple[TradeDecision, ...]
    equity: pd.Series
    margin: pd.Series
    marks: dict[str, int]
    config_hash: str
    strategy_hashes: dict[str, str]
    snapshots_read: tuple[tuple[int, str], ...]
    data_checksum: str
    code_version: str
    result_checksum: str
    cancelled: bool = False
    steps: tuple[int, int] = (0, 0)
    notes: tuple[str, ...] = field(default=())
    starting_cash: float = 100_000.0
    factors: dict[int, dict[str, float]] = field(default_factory=dict)
    breaker_trips: tuple[Any, ...] = field(default=())

    @property
    def fees(self) -> float:
        return float(sum(t.fees for t in self.trades))

    def metrics(self, *, risk_free: float = 0.0) -> Any:
        """The run's :class:`~spx_core.backtest.metrics.Metrics` (margin use included)."""
        from spx_core.backtest.metrics import compute_metrics

        return compute_metrics(self.equity, self.trades, starting_cash=self.starting_cash, risk_free=risk_free,
                               margin=self.margin)

    def factor_attribution(self) -> dict[str, float]:
        """Mean entry factor of the winners minus the losers', per factor (the Quantor plan)."""
        from spx_core.backtest.metrics import factor_attribution

        return factor_attribution(self.trades, self.factors)


def _r(x: float | None) -> Any:
    if x is None:
        return None
    x = float(x)
    return "nan" if math.isnan(x) else round(x, 6)


def result_checksum(trades: Sequence[TradeRecord], decisions: Sequence[TradeDecision], equity: pd.Series) -> str:
    doc = {
        "trades": [[t.trade_id, t.strategy, t.entry_ns, t.exit_ns, t.exit_reason, [list(leg) for leg in t.legs],
                    t.side, _r(t.entry_price), _r(t.exit_price), t.quantity, _r(t.pnl), _r(t.fees)] for t in trades],
        "decisions": [[d.time_ns, d.strategy, str(d.action), list(d.reasons), d.order_ref, d.config_hash,
                       d.snapshot_checksum] for d in decisions],
        "equity": [[int(ts.value), _r(v)] for ts, v in equity.items()],
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def data_checksum(read: Sequence[tuple[int, str]]) -> str:
    return hashlib.sha256("\n".join(c for _, c in read).encode()).hexdigest()


def code_version() -> str:
    """The package version and ``git describe`` of the source tree when it is a git checkout, else "unknown"."""
    from spx_core import __version__

    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty", "--tags"],
                             capture_output=True, text=True, timeout=5, check=False)
        described = out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"
    except (OSError, subprocess.SubprocessError):
        described = "unknown"
    return f"{__version__}+{described}"
