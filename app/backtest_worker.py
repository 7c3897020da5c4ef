"""The Backtest panel's worker side: what a run is asked (:class:`BacktestRequest`), the run itself in a worker
thread on its own Store connection (:func:`run_backtest`), and the stored data a form offers (:func:`data_range`).

The worker opens the database file again (``Store.open(path, create=False)``): a SQLAlchemy connection must not be
shared across threads, and the engine only reads snapshots (its orders go to a temporary file of its own). What it
gives back (:class:`BacktestOutcome`) is plain data the GUI thread shows; a run that cannot start (no snapshots in
the range, a missing file) comes back as one line in ``error``, never as a traceback.

Progress and cancel: :class:`RunControl` is the thread-safe link between the panel and a running worker: the engine
calls ``progress(done, total)`` once a step (the control re-emits at most every :data:`PROGRESS_EVERY_S`, so a fast
run does not flood the GUI thread with queued signals) and polls ``cancel()`` (a ``threading.Event``).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
from PySide6.QtCore import QObject, Signal

from spx_core.automation.config import StrategyConfig
from spx_core.automation.presets import PRESETS
from spx_core.backtest.engine import Backtest, BacktestError
from spx_core.backtest.marks import BadQuote
from spx_core.backtest.metrics import Metrics, compute_metrics
from spx_core.backtest.run import BacktestResult
from spx_core.domain.calendar import ET, to_ns
from spx_core.execution.fees import DEFAULT_FEES
from spx_core.execution.fill_model import FillMode, FillModel
from spx_core.storage.errors import StorageError

__all__ = ["PROGRESS_EVERY_S", "BacktestOutcome", "BacktestRequest", "DataRange", "RunControl", "data_range",
           "run_backtest", "session_text", "spot_at"]

log = logging.getLogger(__name__)

#: Least wall seconds between two progress signals (the last step always reports).
PROGRESS_EVERY_S = 0.1


@dataclass(frozen=True, slots=True)
class BacktestRequest:
    """One run as the form asks it.

    Attributes:
        db_path: the SQLite file holding the snapshots (the worker opens its own connection on it).
        preset: the :data:`~spx_core.automation.presets.PRESETS` name the strategy starts from.
        take_profit_pct / stop_loss_pct: the exits, percent of the entry credit (None: the preset's; 0: none).
        session: a stored session's name, or None for the ``start``/``end`` dates (US/Eastern, inclusive).
        fill: the paper broker's fill model (mode and spread fraction ``offset``).
        commission / exchange_fee: dollars per contract (the fee schedule's commission and Cboe fee; OCC, ORF
            and CAT as the paper broker's schedule).
        profile: the limit profile's name, or None for no limits.
        bad_quote: "skip" | "surface" | "raw" (marks from untrustworthy leg quotes).
        starting_cash: dollars.
        name: the run's name in the stored runs list.
    """

    db_path: str
    preset: str
    take_profit_pct: float | None = None
    stop_loss_pct: float | None = None
    session: str | None = None
    start: date | None = None
    end: date | None = None
    fill: FillModel = field(default_factory=lambda: FillModel(mode=FillMode.MID_OFFSET))
    commission: float = DEFAULT_FEES.commission
    exchange_fee: float = DEFAULT_FEES.cboe_fee
    profile: str | None = "credit verticals"
    bad_quote: str = BadQuote.SKIP.value
    starting_cash: float = 100_000.0
    name: str = ""

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"no strategy preset {self.preset!r}; choose one of: {', '.join(PRESETS)}")
        if self.session is None and (self.start is None or self.end is None):
            raise ValueError("pick a stored session or both a start and an end date")
        if self.session is None and self.end < self.start:
            raise ValueError(f"the end date {self.end} is before the start date {self.start}")
        if not (math.isfinite(self.starting_cash) and self.starting_cash > 0):
            raise ValueError(f"starting cash must be a positive number of dollars, got {self.starting_cash}")
        if self.commission < 0 or self.exchange_fee < 0:
            raise ValueError("commission and fees are dollars per contract, at least 0")
        BadQuote(self.bad_quote)  # one line naming the choices when wrong

    @property
    def strategy(self) -> StrategyConfig:
        """The preset with the form's exits (0 turns an exit off)."""
        config = PRESETS[self.preset]
        exits = config.exits
        if self.take_profit_pct is not None:
            exits = dataclasses.replace(exits, take_profit_pct=self.take_profit_pct or None)
        if self.stop_loss_pct is not None:
            exits = dataclasses.replace(exits, stop_loss_pct=self.stop_loss_pct or None)
        return dataclasses.replace(config, exits=exits)

    @property
    def fees(self) -> Any:
        return dataclasses.replace(DEFAULT_FEES, commission=self.commission, cboe_fee=self.exchange_fee)

    def range_ns(self) -> tuple[int | None, int | None]:
        """(start_ns, end_ns) of the dates: from 00:00 ET of ``start`` to the last instant of ``end`` (ET)."""
        if self.session is not None:
            return None, None
        first = to_ns(datetime.combine(self.start, datetime.min.time(), ET))
        last = to_ns(datetime.combine(self.end + timedelta(days=1), datetime.min.time(), ET)) - 1
        return first, last

    def backtest(self, store: Any) -> Backtest:
        start_ns, end_ns = self.range_ns()
        return Backtest(store, [self.strategy], start_ns=start_ns, end_ns=end_ns, session=self.session,
                        fill=self.fill, fees=self.fees, profile=self.profile, bad_quote=self.bad_quote,
                        starting_cash=self.starting_cash)

    def config_toml(self) -> str:
        """The run's config as given, in the ``spx-backtest`` TOML layout (``[data]``, ``[strategy]``, ...)."""
        data = (f'session = "{self.session}"' if self.session is not None
                else f'start = "{self.start.isoformat()}"\nend = "{self.end.isoformat()}"')
        profile = f'profile = "{self.profile}"' if self.profile is not None else "# no limit profile"
        return (f'name = "{_escape(self.name)}"\n\n[data]\n{data}\n\n[strategy]\npreset = "{_escape(self.preset)}"\n\n'
                f'[exits]\n{self._exits_toml()}\n'
                f'[fills]\nmodel = "{_FILL_NAMES[self.fill.mode]}"\nspread_fraction = {self.fill.offset!r}\n'
                f'bad_quote = "{self.bad_quote}"\n\n[costs]\ncommission_per_contract = {self.commission!r}\n'
                f'fees_per_contract = {self.exchange_fee!r}\n\n[risk]\n{profile}\n'
                f'starting_cash = {self.starting_cash!r}\n')

    def _exits_toml(self) -> str:
        """take_profit / stop_loss as fractions of the entry credit (the TOML unit); the preset's when not set."""
        exits = self.strategy.exits
        lines = [f"{key} = {pct / 100.0!r}" if pct else f"# no {key}"
                 for key, pct in (("take_profit", exits.take_profit_pct), ("stop_loss", exits.stop_loss_pct))]
        return "\n".join(lines) + "\n"

    def describe(self) -> str:
        """A short name for lists: the preset and the data."""
        where = self.session if self.session is not None else f"{self.start}..{self.end}"
        return self.name or f"{self.preset} · {where}"


#: The fill model's modes as the TOML config names them.
_FILL_NAMES = {FillMode.MID: "mid", FillMode.MID_OFFSET: "spread-fraction", FillMode.NATURAL: "natural"}


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


@dataclass(frozen=True)
class BacktestOutcome:
    """What the worker gives back: the result and its metrics, or one line saying why there is none.

    ``run_id``: the stored run's id (None when it was not stored); ``seconds``: worker wall time."""

    request: BacktestRequest
    result: BacktestResult | None = None
    metrics: Metrics | None = None
    run_id: int | None = None
    error: str = ""
    seconds: float = float("nan")

    @property
    def ok(self) -> bool:
        return self.result is not None and not self.error


class RunControl(QObject):
    """Progress out of, and cancel into, one running backtest (thread-safe; see the module docstring).

    Events (Qt signals, queued to the GUI thread):
        progressed(int, int): steps done, steps planned.
    """

    progressed = Signal(int, int)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._cancel = threading.Event()
        self._last = -math.inf
        self.started = time.monotonic()

    def progress(self, done: int, total: int) -> None:
        """Worker thread: report a step (rate-limited; the last step always goes out)."""
        now = time.monotonic()
        if done >= total or now - self._last >= PROGRESS_EVERY_S:
            self._last = now
            try:
                self.progressed.emit(done, total)
            except RuntimeError:  # the panel was deleted while the run went on
                self._cancel.set()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def should_stop(self) -> bool:
        return self._cancel.is_set()


def run_backtest(request: BacktestRequest, control: RunControl | None = None,
                 save: Any | None = None) -> BacktestOutcome:
    """Worker thread: run ``request`` on its own connection to ``request.db_path``; metrics of what ran.

    ``save(store, outcome) -> run id`` stores the run (same connection; None: not stored). A run that cannot start
    or a database that cannot be opened is an outcome with ``error`` set (one line)."""
    from spx_core.storage.store import Store

    t0 = time.perf_counter()
    try:
        store = Store.open(request.db_path, create=False)
    except StorageError as exc:
        return BacktestOutcome(request, error=f"cannot open the database: {exc}")
    try:
        progress = control.progress if control is not None else None
        cancel = control.should_stop if control is not None else None
        try:
            result = request.backtest(store).run(progress, cancel)
        except (BacktestError, ValueError) as exc:  # the engine's one-line reasons (no snapshots, bad range)
            return BacktestOutcome(request, error=str(exc), seconds=time.perf_counter() - t0)
        metrics = None
        if len(result.equity):
            metrics = compute_metrics(result.equity, result.trades, starting_cash=request.starting_cash,
                                      margin=result.margin)
        outcome = BacktestOutcome(request, result, metrics, seconds=time.perf_counter() - t0)
        if save is not None and metrics is not None:
            outcome = dataclasses.replace(outcome, run_id=save(store, outcome))
        return outcome
    finally:
        store.close()


@dataclass(frozen=True, slots=True)
class DataRange:
    """What the store holds for a backtest: its sessions (name, snapshots, first and last instant) and the span."""

    sessions: tuple[Any, ...]
    n_snapshots: int
    first: datetime | None
    last: datetime | None

    @property
    def empty(self) -> bool:
        return self.n_snapshots == 0

    def text(self) -> str:
        if self.empty:
            return "no stored snapshots: record some with spx-data simulate, or import data (spx-data import)"
        first, last = (d.astimezone(ET) for d in (self.first, self.last))
        n = len(self.sessions)
        return (f"{self.n_snapshots:,} snapshots stored, {first:%Y-%m-%d} to {last:%Y-%m-%d} ET"
                f" ({n} session{'s' * (n != 1)})")


def data_range(store: Any) -> DataRange:
    """The stored sessions and their span (one grouped query)."""
    sessions = tuple(store.list_sessions())
    if not sessions:
        return DataRange((), 0, None, None)
    return DataRange(sessions, sum(s.n_snapshots for s in sessions), min(s.start for s in sessions),
                     max(s.end for s in sessions))


def snapshots_between(store: Any, start: date, end: date) -> int:
    """How many SPX snapshot instants the dates (ET, inclusive) hold."""
    first = datetime.combine(start, datetime.min.time(), ET)
    last = datetime.combine(end + timedelta(days=1), datetime.min.time(), ET) - timedelta(microseconds=1)
    return len(store.list_snapshots(underlying="SPX", start=first, end=last))


def spot_at(store: Any, underlying: str, ns: int) -> float:
    """The ``underlying``'s level in the snapshot stored at ``ns`` (NaN when none is)."""
    infos = store.list_snapshots(underlying=underlying, start=int(ns), end=int(ns))
    return float(infos[-1].underlying_price) if infos else math.nan


def session_text(session: Any) -> str:
    """"NAME: 1,120 snapshots, 2024-03-04 to 2024-04-29 ET"."""
    first, last = (d.astimezone(ET) for d in (session.start, session.end))
    return f"{session.name}: {session.n_snapshots:,} snapshots, {first:%Y-%m-%d} to {last:%Y-%m-%d} ET"


def equity_frame(result: BacktestResult) -> pd.DataFrame:
    """The equity and margin columns (dollars) by UTC time, for the CSV export."""
    return pd.DataFrame({"equity": result.equity, "margin": result.margin}).rename_axis("time_utc")


def metrics_dict(metrics: Metrics | Mapping[str, Any] | None) -> dict[str, Any]:
    if metrics is None:
        return {}
    return dict(metrics) if isinstance(metrics, Mapping) else metrics.as_dict()
