"""Market panel: regime, VIX, IV rank/percentile, realized vs implied, GARCH forecast, term slope, expected move.

Feeding (:class:`~app.panels.base.LivePanel`): ``on_batch`` only buffers. At most once a second, and only
when the market moved enough to change the state (the surface panel's refit rule), a worker thread fits
the snapshot's surface (warm-started from the previous fit), reads the daily bars from the store (re-read
every ``BARS_RELOAD_SECONDS``) and computes :func:`~spx_core.analytics.market_state.market_state`; the
GARCH and mixture fits are cached per bars' last date (:class:`~spx_core.analytics.market_state.BarsCache`),
so a snapshot stream pays only for the surface. The GUI thread only sets label texts and chart data.

A missing figure shows "n/a" with the reason and its fix in the tooltip; with no bars or no snapshot the
status line says what to do (e.g. "no SPX bars: import sp500.csv.gz with spx-data import").

On the simulated market a store short of SPX daily bars is not a gap: the loader reads the simulation's simulated
past instead (:mod:`app.sim_history`, in memory only), and the status line and the chart say so
("bars: simulated history (750 days, seed 7), not market data").

Events (Qt signals):
    state_changed(MarketState): a new market state is on screen (for the scanner's entry filters).
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as datetime_time
from typing import TYPE_CHECKING, Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QGridLayout,
    QLabel,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.panels.base import Job, LivePanel, data_moved
from app.panels.surface_panel import refit_due
from app.shared_fits import SharedFits
from app.widgets.plot_style import PALETTE, ThemedPlotWidget
from spx_core.analytics.market_state import BarsCache, MarketState
from spx_core.domain import ET, ChainSnapshot
from spx_core.marketdata.source import QuoteBatch

if TYPE_CHECKING:
    from app.context import AppContext
    from app.sim_history import SimBars, SimulatedPast
    from spx_core.storage import Store

__all__ = ["HISTORY_SESSIONS", "BarsLoader", "MarketPanel", "MarketResult", "compute_market"]

BARS_RELOAD_SECONDS = 60.0  # bars change by a daily import or a recorded session: a minute is fresh enough
HISTORY_SESSIONS = 252  # the chart shows a year of sessions
CHART_WINDOW = 20  # sessions of the charted realized vol (about a month)
NO_STORE = "no database open: open one in Settings (Data > database) or start the app with --db PATH"
#: what the chart says instead of empty axes when the store has neither SPX nor VIX bars
NO_BARS_CHART = "no SPX/VIX bars: import sp500.csv.gz / vix.csv.gz with spx-data import"
CHART_TITLE = "Realized vs implied"


@dataclass(frozen=True, slots=True)
class Bars:
    """What the panel reads from the store (frames as ``Store.load_bars`` returns them)."""

    spx: Any
    vix: Any
    atm_history: Any
    reason: str = ""  # why nothing could be read ("" when the store was read)
    label: str = ""  # "" for the store's bars; the simulated past's name when the frames are simulated
    caches: tuple[BarsCache, BarsCache] | None = None  # the simulated frames' own (None: the panel's)


class BarsLoader:
    """Reads SPX/VIX bars from the store at most every ``reload_seconds`` (wall), and our stored ATM IVs
    once per session (they are days *before* the session, and each stored day costs a snapshot read and
    an IV solve); :meth:`set_store` (GUI thread) re-reads both. :meth:`load` runs in the worker thread.
    With a :class:`~app.sim_history.SimulatedPast` (:meth:`set_past`) the simulated market's past replaces a
    store short of SPX bars; a source switch (its ``generation``) makes the bars read again at once.

    It holds the store, not the panel: a loader that called back into its panel would tie the widget into
    a reference cycle, which the garbage collector may then free on a worker thread (Qt objects must die
    on their own thread)."""

    def __init__(self, reload_seconds: float = BARS_RELOAD_SECONDS) -> None:
        self._store: Store | None = None
        self._reload = reload_seconds
        self._lock = threading.Lock()
        self._bars: Bars | None = None
        self._loaded_at = -math.inf
        self._atm: tuple[date, Any] | None = None  # (session, history before it)
        self._past: SimulatedPast | None = None
        self._generation: int | None = None  # the past's generation the cached bars were read under
        self._sim_caches: tuple[SimBars, tuple[BarsCache, BarsCache]] | None = None
        self.loads = 0
        self.atm_loads = 0

    def set_store(self, store: Store | None) -> None:
        """Read from ``store`` from now on (None: no database); forgets what was read."""
        with self._lock:
            self._store, self._bars, self._loaded_at, self._atm = store, None, -math.inf, None

    def set_past(self, past: SimulatedPast | None) -> None:
        """Read the simulated market's past from ``past`` when the store is short of bars (None: never)."""
        with self._lock:
            self._past, self._bars, self._loaded_at = past, None, -math.inf

    def load(self, session: date) -> Bars:
        """The bars and the ATM IV history of days before ``session`` (ET date)."""
        with self._lock:
            past = self._past
            generation = past.generation if past is not None else None
            fresh = (self._bars is not None and self._generation == generation
                     and time.monotonic() - self._loaded_at < self._reload)
            bars, atm, store = self._bars, self._atm, self._store
        if not fresh:
            bars = self._read(store, past, session)
            self.loads += 1
        if store is not None and (atm is None or atm[0] != session):
            atm = (session, _atm_history(store, session))
            self.atm_loads += 1
        with self._lock:
            if not fresh:
                self._bars, self._loaded_at, self._generation = bars, time.monotonic(), generation
            self._atm = atm
        return dataclasses.replace(bars, atm_history=atm[1] if atm is not None else None)

    def _read(self, store: Store | None, past: SimulatedPast | None, session: date) -> Bars:
        spx = store.load_bars("SPX") if store is not None else None
        sim = past.replacing(spx, session) if past is not None else None
        if sim is not None:
            return Bars(sim.spx, sim.vix, None, label=sim.label, caches=self._caches_of(sim))
        if store is None:
            return Bars(None, None, None, NO_STORE)
        return Bars(spx, store.load_bars("VIX"), None)

    def _caches_of(self, sim: SimBars) -> tuple[BarsCache, BarsCache]:
        """The simulated frames' own caches: two simulations (seeds) share the frames' lengths and last stamps,
        which is all a cache key reads, so each simulated past gets fresh ones."""
        if self._sim_caches is None or self._sim_caches[0] is not sim:
            self._sim_caches = (sim, (BarsCache(), BarsCache(size=2)))
        return self._sim_caches[1]


def _atm_history(store: Store, session: date) -> Any:
    from spx_core.analytics.iv_rank import stored_atm_iv_history

    # only days before the session: its own snapshots are the live ones
    end = datetime.combine(session, datetime_time(0), ET) - timedelta(microseconds=1)
    return stored_atm_iv_history(store, "SPX", end=end)


@dataclass(frozen=True, slots=True)
class History:
    """The chart's series over the last ``HISTORY_SESSIONS`` sessions before the snapshot's session."""

    spx_t: np.ndarray  # session close times (epoch seconds)
    rv_yz: np.ndarray  # Yang-Zhang realized vol over CHART_WINDOW sessions (percent)
    rv_cc: np.ndarray  # close-to-close, same window (percent)
    vix_t: np.ndarray
    vix: np.ndarray  # VIX closes (percent = index points)


@dataclass(frozen=True, slots=True, eq=False)
class MarketResult:
    snapshot: ChainSnapshot
    surface: Any  # spx_core.surface.VolSurface
    state: MarketState
    history: History
    reason: str  # why there is no data at all ("" when the store was read)
    seconds: float
    bars_label: str = ""  # the simulated past's name when the bars are simulated ("" for the store's)


def compute_market(snapshot: ChainSnapshot, fits: SharedFits, loader: BarsLoader, cache: BarsCache,
                   history_cache: BarsCache) -> MarketResult:
    """Worker-thread job: surface fit (shared with the other panels), bars, market state and the chart's history."""
    from spx_core.analytics.market_bars import session_cutoff
    from spx_core.analytics.market_state import market_state

    t0 = time.perf_counter()
    fitted = fits.memo().fit(snapshot)
    civ, surface = fitted.civ, fitted.surface
    session = session_cutoff(snapshot.time_ns)
    bars = loader.load(session)
    if bars.caches is not None:
        cache, history_cache = bars.caches
    state = market_state(bars.spx, bars.vix, surface, civ=civ, atm_iv_history=bars.atm_history, cache=cache,
                         session=session)
    if bars.label:  # whoever reads the state (scanner, automation) can tell a simulated past from market data
        state = dataclasses.replace(state, notes=(*state.notes, f"SPX/VIX bars: {bars.label}, not market data"))
    key = (_stamp(bars.spx), _stamp(bars.vix), session)
    history = history_cache.get(key, lambda: _history(bars.spx, bars.vix, session))
    return MarketResult(snapshot, surface, state, history, bars.reason, time.perf_counter() - t0, bars.label)


def _stamp(frame: Any) -> tuple:
    return (0, None) if frame is None or len(frame) == 0 else (len(frame), frame["time"].iloc[-1])


def _history(spx: Any, vix: Any, session: Any) -> History:
    from spx_core.analytics.market_bars import before_session
    from spx_core.analytics.volatility import close_to_close, yang_zhang

    empty = np.zeros(0)
    spx, vix = before_session(spx, session), before_session(vix, session)
    spx_t, rv_yz, rv_cc, vix_t, vix_c = empty, empty, empty, empty, empty
    if spx is not None:
        o, h, lo, c = (np.asarray(spx[k], dtype=np.float64) for k in ("open", "high", "low", "close"))
        tail = slice(-HISTORY_SESSIONS, None)
        spx_t = _epoch(spx["time"])[tail]
        rv_yz = np.asarray(yang_zhang(o, h, lo, c, CHART_WINDOW), dtype=np.float64)[tail] * 100.0
        rv_cc = np.asarray(close_to_close(c, CHART_WINDOW), dtype=np.float64)[tail] * 100.0
    if vix is not None:
        vix_t = _epoch(vix["time"])[-HISTORY_SESSIONS:]
        vix_c = np.asarray(vix["close"], dtype=np.float64)[-HISTORY_SESSIONS:]
    return History(spx_t, rv_yz, rv_cc, vix_t, vix_c)


def _epoch(times: Any) -> np.ndarray:
    return np.asarray(times.astype("int64"), dtype=np.float64) / 1e9


# --- what the panel shows ------------------------------------------------------------------------------
def _pct(v: float) -> str:
    return f"{v * 100:.1f}%"


def _vols(state: MarketState, names: tuple[str, ...]) -> str:
    return " / ".join("n/a" if not math.isfinite(getattr(state, n)) else _pct(getattr(state, n)) for n in names)


def _regime_text(state: MarketState) -> str:
    trend = _label(state.trend) or "trend n/a"
    mixture = (f"{state.mixture_regime} ({state.mixture_probability:.0%})" if state.mixture_regime
               else "mixture n/a")
    return f"{trend} · {mixture}"


def _label(value: Any) -> str:
    if value is None:
        return ""
    for attr in ("label", "value", "name"):
        text = getattr(value, attr, None)
        if isinstance(text, str):
            return text
    return str(value)


def _vix_text(state: MarketState) -> str:
    bucket = _label(state.vix_bucket)
    return f"{state.vix:.2f}" + (f" ({bucket})" if bucket else "") + f" · close {state.vix_as_of:%d %b %Y}"


def _garch_text(state: MarketState) -> str:
    return " · ".join(f"{h}d {_pct(v)}" for h, v in state.garch_vol)


def _move_text(state: MarketState) -> str:
    # one line in the value column: the two moves first, then which expiry (its root is in the tooltip)
    straddle = f" · straddle ±{state.straddle_move:.1f}" if math.isfinite(state.straddle_move) else ""
    return f"±{state.expected_move:.1f} pts{straddle} · {state.front_expiry:%d %b} ({state.front_days:.1f}d)"


#: (title, fields it shows (n/a when all are missing; the tooltip gives each missing one's reason), text, tooltip)
ROWS: tuple[tuple[str, tuple[str, ...], Callable[[MarketState], str], str], ...] = (
    ("Regime", ("trend", "mixture_regime"), _regime_text,
     "Trend from ADX + SMA on SPX daily bars; Gaussian-mixture regime on returns/vol features with its probability"),
    ("VIX", ("vix",), _vix_text, "Last VIX close before this session and its bucket"),
    ("IV rank / pct (VIX)", ("vix_rank",), lambda s: f"{s.vix_rank:.0f} / {s.vix_percentile:.0f}",
     "IV rank and IV percentile (0-100) of the last VIX close within a year of VIX closes"),
    ("IV rank / pct (ATM)", ("atm_iv_rank",), lambda s: f"{s.atm_iv_rank:.0f} / {s.atm_iv_percentile:.0f}",
     "IV rank and IV percentile (0-100) of the 30-day ATM IV within our stored ATM IVs"),
    ("ATM IV 30d", ("atm_iv_30d",), lambda s: _pct(s.atm_iv_30d),
     "ATM IV 30 calendar days out, interpolated in total variance on the fitted surface"),
    ("Realized YZ 10/20/30d", ("rv_yz_20d",), lambda s: _vols(s, ("rv_yz_10d", "rv_yz_20d", "rv_yz_30d")),
     "Yang-Zhang realized vol over 10, 20 and 30 sessions (annualized)"),
    ("Realized C-C 10/20/30d", ("rv_cc_20d",), lambda s: _vols(s, ("rv_cc_10d", "rv_cc_20d", "rv_cc_30d")),
     "Close-to-close realized vol over 10, 20 and 30 sessions (annualized)"),
    ("VRP (IV 30d - RV 21d)", ("vrp_volpts",), lambda s: f"{s.vrp_volpts:+.1f} vol pts",
     "Variance risk premium: 30-day ATM IV minus 21-session Yang-Zhang realized vol"),
    ("GARCH(1,1) forecast", ("garch_vol",), _garch_text,
     "GARCH(1,1) forecast of realized vol over the next 1, 5 and 21 sessions (annualized)"),
    ("Term slope (front - 30d)", ("term_slope_volpts",), lambda s: f"{s.term_slope_volpts:+.2f} vol pts",
     "Front expiry ATM IV minus 30-day ATM IV; positive = front inverted (stress)"),
    ("Expected move (1 SD)", ("expected_move",), _move_text,
     "Front expiry 1 SD move from its ATM IV (forward x IV x sqrt(t)) and its ATM straddle"),
)


class VolHistoryPlot(ThemedPlotWidget):
    """Realized vol (Yang-Zhang and close-to-close, 20 sessions) and VIX over a year of sessions, with the
    current 30-day ATM IV as a horizontal line (percent)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, axisItems={"bottom": pg.DateAxisItem()})
        self.setObjectName("vol_history_plot")
        plot = self.getPlotItem()
        plot.setLabel("left", "vol (%)")
        plot.setTitle(CHART_TITLE)
        self._source = ""
        plot.showGrid(x=True, y=True, alpha=0.15)
        self.legend = plot.addLegend(offset=(6, 6), labelTextSize="8pt")
        self.rv_yz = plot.plot(pen=pg.mkPen(PALETTE[0], width=2), name=f"realized YZ {CHART_WINDOW}d")
        self.rv_cc = plot.plot(pen=pg.mkPen(PALETTE[3], width=1), name=f"realized C-C {CHART_WINDOW}d")
        self.vix = plot.plot(pen=pg.mkPen(PALETTE[1], width=2), name="VIX")
        self.atm = pg.InfiniteLine(angle=0, movable=False, pen=pg.mkPen(PALETTE[2], width=2, style=Qt.PenStyle.DashLine),
                                   label="ATM IV 30d {value:.1f}",
                                   labelOpts={"position": 0.3, "color": PALETTE[2], "anchors": [(0.5, 1), (0.5, 1)]})
        plot.addItem(self.atm)
        self.atm.setVisible(False)

    def set_source(self, label: str) -> None:
        """Name simulated bars in the title ("" for the store's)."""
        if label != self._source:
            self._source = label
            self.getPlotItem().setTitle(f"{CHART_TITLE} · {label}" if label else CHART_TITLE)

    def has_history(self, history: History) -> bool:
        return len(history.spx_t) > 0 or len(history.vix_t) > 0

    def set_history(self, history: History, atm_iv_30d: float) -> None:
        self.rv_yz.setData(history.spx_t, history.rv_yz)
        self.rv_cc.setData(history.spx_t, history.rv_cc)
        self.vix.setData(history.vix_t, history.vix)
        self.atm.setVisible(math.isfinite(atm_iv_30d))
        if math.isfinite(atm_iv_30d):
            self.atm.setValue(atm_iv_30d * 100.0)


class MarketPanel(LivePanel):
    """The market state of the latest snapshot and the bars in the store (see the module docstring)."""

    state_changed = Signal(object)

    def __init__(self, parent: QWidget | None = None, *, refresh_seconds: float = 1.0,
                 reload_seconds: float = BARS_RELOAD_SECONDS) -> None:
        super().__init__(parent, job_name="market state", refresh_seconds=refresh_seconds)
        self.setObjectName("market_panel")
        self.loader = BarsLoader(reload_seconds)
        self.cache = BarsCache()
        self._history_cache = BarsCache(size=2)
        self._result: MarketResult | None = None
        self._min_interval = refresh_seconds
        self._build_ui()

    def _build_ui(self) -> None:
        grid = QGridLayout()
        grid.setHorizontalSpacing(12)
        grid.setVerticalSpacing(2)
        self.values: dict[str, QLabel] = {}
        for row, (title, _needs, _text, tip) in enumerate(ROWS):
            name = QLabel(title)
            name.setToolTip(tip)
            value = QLabel("–")
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            # a narrow dock wraps a long figure onto a second line instead of cutting it off
            value.setWordWrap(True)
            value.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            grid.addWidget(name, row, 0)
            grid.addWidget(value, row, 1)
            self.values[title] = value
        grid.setColumnStretch(1, 1)
        self.chart = VolHistoryPlot()
        # no bars: a sentence saying which files to import, not empty axes with a made-up date
        self.chart_empty = QLabel("waiting for market data")
        self.chart_empty.setObjectName("market_chart_empty")
        self.chart_empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.chart_empty.setWordWrap(True)
        self.chart_empty.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.chart_empty.setStyleSheet("color: #999999;")
        self.chart_stack = QStackedWidget()
        self.chart_stack.addWidget(self.chart_empty)
        self.chart_stack.addWidget(self.chart)
        self.status_label = QLabel("waiting for market data: start the simulator or a replay")
        self.status_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.status_label.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addLayout(grid)
        layout.addWidget(self.chart_stack, 1)
        layout.addWidget(self.status_label)

    def set_store(self, store: Store | None) -> None:
        """Read bars from ``store`` (the context's store when bound; tests and tools may set one)."""
        self.loader.set_store(store)
        self.refresh(full=True)

    @classmethod
    def create(cls, context: AppContext) -> MarketPanel:
        return cls()

    def bind(self, context: AppContext) -> None:
        super().bind(context)
        self.loader.set_store(context.store)
        self.loader.set_past(context.simulated_past)
        context.store_changed.connect(self.set_store)

    # --- feeding (LivePanel hooks) -----------------------------------------------------------------
    def job_spacing(self) -> float:
        return self._min_interval  # the state changes slowly: never refit back to back on a live feed

    def moved(self, previous: QuoteBatch, batch: QuoteBatch) -> bool:
        return data_moved(previous, batch) and refit_due(previous.snapshot, batch.snapshot)

    def job(self, batch: QuoteBatch) -> Job:
        return Job(compute_market, (batch.snapshot, self.shared_fits, self.loader, self.cache, self._history_cache))

    def status_message(self, text: str) -> None:
        self.status_label.setText(text)

    def show_result(self, result: MarketResult) -> None:
        self._result = result
        state = result.state
        for title, needs, text, tip in ROWS:
            label = self.values[title]
            missing = [n for n in needs if not state.has(n)]
            whys = list(dict.fromkeys(state.why(n) for n in missing))
            shown = len(missing) < len(needs)
            label.setText(text(state) if shown else "n/a")
            label.setToolTip("\n\n".join([tip, *(f"missing: {why}" for why in whys)]))
            label.setEnabled(shown)
        self._show_chart(result)
        self.status_label.setText(self._status(result))
        self.state_changed.emit(state)

    def _show_chart(self, result: MarketResult) -> None:
        self.chart.set_history(result.history, result.state.atm_iv_30d)
        self.chart.set_source(result.bars_label)
        if self.chart.has_history(result.history):
            self.chart_stack.setCurrentWidget(self.chart)
            return
        self.chart_empty.setText(NO_STORE if result.reason == NO_STORE else NO_BARS_CHART)
        self.chart_stack.setCurrentWidget(self.chart_empty)

    def _status(self, result: MarketResult) -> str:
        state = result.state
        self.status_label.setToolTip("\n".join(state.notes))
        if result.reason:
            return f"no data: {result.reason}"
        for name in ("rv_yz_20d", "vix"):  # no bars at all: the one fix that fills most of the panel
            if state.why(name).startswith("no "):
                return f"no data: {state.why(name)}"
        stamp = result.snapshot.time.astimezone(ET)
        text = f"SPX {state.spot:,.2f} · {stamp:%H:%M:%S} ET · {result.seconds * 1000:.0f} ms"
        if result.bars_label:
            text += f"\nbars: {result.bars_label}, not market data"
        stale = [f"{symbol} to {day:%Y-%m-%d}" for symbol, day in (("SPX", state.spx_as_of), ("VIX", state.vix_as_of))
                 if any(note.startswith(f"{symbol} bars end") for note in state.notes)]
        if stale:  # the full sentences (with the fix) are in the tooltip
            text += f"\nstale bars: {', '.join(stale)}; import recent bars (spx-data import)"
        return text

    # --- covered tab -------------------------------------------------------------------------------
    def on_screen(self) -> bool:
        # The market state is app-wide (the scanner's entry gate reads it), so a tab covered by the surface
        # or the builder keeps computing; a closed dock or a minimised window still computes nothing.
        return self.isVisible() and not self.window().isMinimized()

    def _on_timer(self) -> None:
        if self.on_screen() and self.visibleRegion().isEmpty():
            self.refresh()  # the base skips covered panels; this one still feeds the gate
            return
        super()._on_timer()

    # --- API for the shell and tests --------------------------------------------------------------
    @property
    def result(self) -> MarketResult | None:
        return self._result

    @property
    def state(self) -> MarketState | None:
        """The market state on screen (None before the first result)."""
        return self._result.state if self._result is not None else None

    def health(self) -> tuple[bool, str]:
        if self._result is None:
            return False, "market: no state computed yet"
        shown = sum(label.text() != "n/a" for label in self.values.values())
        return shown > 0, f"market: {shown}/{len(self.values)} figures shown"
