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

from spx_core.automation.presets import PRESETS
from spx_core.backtest.config import NO_PROFILE, BacktestSpec, load_spec
from spx_core.backtest.engine import BacktestError
from spx_core.backtest.marks import BadQuote
from spx_core.backtest.metrics import Metrics
from spx_core.backtest.run import BacktestResult
from spx_core.domain.calendar import ET
from spx_core.execution.fees import DEFAULT_FEES, FeeSchedule
from spx_core.execution.fill_model import FillMode, FillModel
from spx_core.storage.errors import StorageError

__all__ = ["DEFAULT_FEES_PER_CONTRACT", "PROGRESS_EVERY_S", "BacktestOutcome", "BacktestRequest", "RunControl",
           "StoredData", "data_range", "fees_per_contract",
           "run_backtest", "session_text", "spot_at"]

log = logging.getLogger(__name__)

#: Least wall seconds between two progress signals (the last step always reports).
PROGRESS_EVERY_S = 0.1


def fees_per_contract(schedule: FeeSchedule) -> float:
    """``schedule``'s third-party fees per SPX contract at a premium of $1 or more (exchange + clearing +
    regulatory): the flat ``[costs] fees_per_contract`` of a backtest charged like the paper broker (bar the FINRA
    TAF, which only sales pay: a flat figure has no sides)."""
    return round(schedule.cboe_fee + schedule.occ_fee + schedule.orf_fee + schedule.cat_fee, 6)


#: :func:`fees_per_contract` of the shipped schedule.
DEFAULT_FEES_PER_CONTRACT = fees_per_contract(DEFAULT_FEES)


@dataclass(frozen=True, slots=True)
class BacktestRequest:
    """One run as the form asks it; :attr:`spec` is the same run as an ``spx-backtest`` TOML config
    (:func:`~spx_core.backtest.config.load_spec`), so a stored run reproduces with ``spx-backtest run``.

    Attributes:
        db_path: the SQLite file holding the snapshots (the worker opens its own connection on it).
        preset: the :data:`~spx_core.automation.presets.PRESETS` name the strategy starts from.
        take_profit_pct / stop_loss_pct: the exits, percent of the entry credit (None: the preset's; 0: none).
        session: a stored session's name, or None for the ``start``/``end`` dates (US/Eastern, inclusive).
        fill: the paper broker's fill model (mode and spread fraction ``offset``).
        commission / fees: dollars per contract (``[costs] commission_per_contract`` / ``fees_per_contract``:
            exchange + clearing + regulatory).
        profile: the limit profile's name, or None for no limits.
        bad_quote: "skip" | "surface" | "raw" (marks from untrustworthy leg quotes).
        starting_cash: dollars.
        name: the run's name in the stored runs list ("" = preset and data).
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
    fees: float = DEFAULT_FEES_PER_CONTRACT
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

    def config(self) -> dict[str, Any]:
        """The run as the TOML config's mapping (sections -> keys)."""
        data = {"session": self.session} if self.session is not None else \
            {"start": self.start.isoformat(), "end": self.end.isoformat()}
        exits = {key: (pct / 100.0 if pct else False) for key, pct in
                 (("take_profit", self.take_profit_pct), ("stop_loss", self.stop_loss_pct)) if pct is not None}
        return {"name": self.describe(), "data": data, "strategy": {"preset": self.preset}, "exits": exits,
                "fills": {"model": _FILL_NAMES[self.fill.mode], "spread_fraction": self.fill.offset,
                          "bad_quote": self.bad_quote},
                "costs": {"commission_per_contract": self.commission, "fees_per_contract": self.fees},
                "risk": {"profile": self.profile or NO_PROFILE, "starting_cash": self.starting_cash}}

    @property
    def spec(self) -> BacktestSpec:
        """The validated config (``BacktestConfigError``, one line naming the key, when a value is refused)."""
        return load_spec(self.config())

    def describe(self) -> str:
        """A short name for lists: the preset and the data."""
        where = self.session if self.session is not None else f"{self.start}..{self.end}"
        return self.name or f"{self.preset} · {where}"


#: The fill model's modes as the TOML config names them.
_FILL_NAMES = {FillMode.MID: "mid", FillMode.MID_OFFSET: "spread-fraction", FillMode.NATURAL: "natural"}


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


def run_backtest(request: BacktestRequest, control: RunControl | None = None, *,
                 store_run: bool = True) -> BacktestOutcome:
    """Worker thread: run ``request`` on its own connection to ``request.db_path``; metrics of what ran.

    ``store_run``: save the run (a cancelled one as a partial run) with its config's canonical TOML through
    :class:`~spx_core.storage.backtest_repo.BacktestRepository`, on the same connection. A config the spec refuses,
    a run that cannot start or a database that cannot be opened is an outcome with ``error`` set (one line)."""
    from spx_core.storage.backtest_repo import BacktestRepository
    from spx_core.storage.store import Store

    t0 = time.perf_counter()
    try:
        spec = request.spec
    except ValueError as exc:  # BacktestConfigError: "[costs] fees_per_contract: ..."
        return BacktestOutcome(request, error=str(exc))
    try:
        store = Store.open(request.db_path, create=False)
    except StorageError as exc:
        return BacktestOutcome(request, error=f"cannot open the database: {exc}")
    try:
        progress = control.progress if control is not None else None
        cancel = control.should_stop if control is not None else None
        try:
            result = spec.backtest(store).run(progress, cancel)
        except (BacktestError, ValueError) as exc:  # one-line reasons (no snapshots in the range, ...)
            return BacktestOutcome(request, error=str(exc), seconds=time.perf_counter() - t0)
        metrics = result.metrics() if len(result.equity) else None
        run_id = None
        if store_run:
            run_id = BacktestRepository(store).save_run(result, config_toml=spec.source_toml, name=spec.name,
                                                        metrics=metrics)
        return BacktestOutcome(request, result, metrics, run_id, seconds=time.perf_counter() - t0)
    finally:
        store.close()


@dataclass(frozen=True, slots=True)
class StoredData:
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


def data_range(store: Any) -> StoredData:
    """The stored sessions and their span (one grouped query)."""
    sessions = tuple(store.list_sessions())
    if not sessions:
        return StoredData((), 0, None, None)
    return StoredData(sessions, sum(s.n_snapshots for s in sessions), min(s.start for s in sessions),
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
