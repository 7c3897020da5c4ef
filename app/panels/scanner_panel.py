"""Spread scanner panel: parameters (seed-plan presets) | candidates table | the selected candidate's payoff.

Feeding (:class:`~app.panels.base.LivePanel`): ``on_batch`` only buffers. At most once per
``rescan_seconds`` (1 s), and only when the data moved, a worker thread computes the chain IVs, the
surface (warm-started from the last one), the scan (``spx_core.strategies.scanner.scan``), and the
risk-neutral densities and expected moves of the listed expiries; the GUI thread only fills the
table and draws the payoff of the selected candidate (``payoff_grid``: well under a millisecond).
A parameter edit re-scans the latest snapshot after a short debounce.

Market gate: the form's "Market filter" box is a ``spx_core.analytics.filters.MarketFilter`` checked
against the latest ``MarketState`` the Market panel published (``AppContext.market_state_changed``);
when it says no (or no state has arrived: it fails closed), the scan is not run and the status line
says why. :meth:`ScannerPanel.set_market_gate` takes any other check ``(snapshot, surface) -> (ok, why)``.

Events: the panel publishes through the app context: ``select_structure`` when the user opens a
candidate in the builder, ``request_trade`` on "Trade" (enabled once an order ticket exists).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QItemSelection, Qt, QTimer
from PySide6.QtWidgets import (
    QHBoxLayout,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

# spx_core.strategies.scanner_params, not .scanner: no scipy on the start-up path (see _import_core)
from app.models.scanner_model import COLUMNS, ScannerTableModel
from app.panels.base import Job, LivePanel
from app.panels.scanner_params import ScanParamsForm
from app.shared_fits import SharedFits
from app.widgets.payoff_plot import PayoffPlot
from app.widgets.responsive_splitter import ResponsiveSplitter
from app.widgets.row_views import line_label, row_view
from spx_core.domain import ET, ChainSnapshot, Root
from spx_core.marketdata.source import QuoteBatch
from spx_core.strategies.scanner_params import ScanParams

if TYPE_CHECKING:
    from app.context import AppContext

__all__ = ["NO_TICKET_TIP", "ScanOutcome", "ScannerPanel", "compute_scan"]

NO_TICKET_TIP = "Order ticket arrives with the orders issue"
PARAM_DEBOUNCE_MS = 300  # typing a width or spinning a box re-scans once, after the user pauses
_GRID_POINTS = 400

#: (snapshot, surface) -> (ok, why): the optional market gate in front of every scan.
MarketGate = Callable[[ChainSnapshot, Any], tuple[bool, str]]


@dataclass(frozen=True, slots=True, eq=False)
class ScanOutcome:
    """One scan and what the payoff chart needs for its candidates (built in the worker)."""

    snapshot: ChainSnapshot
    params: ScanParams
    civ: Any  # ChainIV
    surface: Any  # VolSurface
    result: Any | None  # ScanResult; None when the market gate said no
    gate_reason: str
    densities: dict[tuple[Root, date], Any] = field(default_factory=dict)  # RiskNeutralDensity per expiry
    moves: dict[tuple[Root, date], Any] = field(default_factory=dict)  # ExpectedMove per expiry
    seconds: float = float("nan")

    @property
    def candidates(self) -> list[Any]:
        return list(self.result.candidates) if self.result is not None else []


def _key(candidate: Any) -> tuple[Root, date]:
    return candidate.structure.legs[0].contract.root, candidate.expiry


def _import_core() -> tuple[Any, Any, Any]:
    """Worker thread: the core the scan needs (scipy-heavy, so never on the start-up path).

    Import order matters: the surface and chain workers import ``spx_core.surface`` first, in parallel
    with this thread; taking the same package first keeps the module locks acyclic (importing the
    scanner first let the surface worker see a partially initialised ``spx_core.surface.surface``,
    about one start in six). The payoff module is loaded here too, off the GUI thread, before the GUI
    thread prices a selection with it.
    """
    import spx_core.surface  # noqa: F401, I001 (this order on purpose, see above)
    from spx_core.surface.density import expiry_density
    from spx_core.strategies import payoff  # noqa: F401
    from spx_core.strategies.probability import expected_moves
    from spx_core.strategies.scanner import scan

    return scan, expected_moves, expiry_density


def compute_scan(snapshot: ChainSnapshot, params: ScanParams, fits: SharedFits,
                 gate: MarketGate | None) -> ScanOutcome:
    """Worker-thread job: IVs and surface (shared with the other panels), the optional market gate, the scan,
    densities and moves."""
    scan, expected_moves, expiry_density = _import_core()
    t0 = time.perf_counter()
    fitted = fits.memo().fit(snapshot)
    civ, surface = fitted.civ, fitted.surface
    ok, why = gate(snapshot, surface) if gate is not None else (True, "")
    if not ok:
        return ScanOutcome(snapshot, params, civ, surface, None, why, seconds=time.perf_counter() - t0)
    result = scan(snapshot, civ, surface, params)
    keys = {_key(c) for c in result.candidates}
    # the densities the scan built (calendars) are reused; verticals and flies are priced from the
    # surface's closed-form CDF without one, so the chart's density is computed here (same surface)
    fits = {(f.root, f.expiry): f for f in surface.expiries}
    densities = {k: result.densities.get(k) or expiry_density(surface, fits[k]) for k in keys if k in fits}
    # straddle and ATM-IV moves of the chain, bands at forward +-1/2 x the ATM-IV move
    moves = {(m.root, m.expiry): m for m in expected_moves(civ, surface) if (m.root, m.expiry) in keys}
    return ScanOutcome(snapshot, params, civ, surface, result, "", densities, moves, time.perf_counter() - t0)


class ScannerPanel(LivePanel):
    """See the module docstring."""

    def __init__(self, parent: QWidget | None = None, *, rescan_seconds: float = 1.0) -> None:
        super().__init__(parent, job_name="spread scan", refresh_seconds=rescan_seconds)
        self.setObjectName("scanner_panel")
        self._outcome: ScanOutcome | None = None
        self._params: ScanParams | None = None
        self._gate: MarketGate | None = None
        self._filter: Any | None = None  # MarketFilter from the form (None: no gate)
        self._market_state: Any | None = None  # the latest MarketState published in the context
        self.jobs_started = 0
        self._rescan_seconds = rescan_seconds
        self._build_ui()
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(PARAM_DEBOUNCE_MS)
        self._debounce.timeout.connect(self._params_settled)
        self.form.changed.connect(self._debounce.start)
        self._read_params()

    # --- layout ---------------------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        self.form = ScanParamsForm()
        side = QScrollArea()
        side.setObjectName("scan_params_scroll")
        side.setWidget(self.form)
        side.setWidgetResizable(True)
        side.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        side_width = self.form.sizeHint().width() + side.verticalScrollBar().sizeHint().width() + 4
        self.model = ScannerTableModel(self)
        self.table = row_view(QTableView(), self.model, "scan_results")
        # no sort indicator: rows stay in the scanner's order (best score first) until a header is clicked
        self.table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.table.setSortingEnabled(True)
        self._score_beside_strikes()
        self.table.selectionModel().selectionChanged.connect(self._on_selection)
        self.table.doubleClicked.connect(lambda _i: self.open_in_builder())
        self.payoff = PayoffPlot()
        self.payoff.clear("run a scan: candidates appear above")
        self.trade_button = QPushButton("Trade")
        self.trade_button.setObjectName("scan_trade")
        self.trade_button.clicked.connect(self.trade)
        self.builder_button = QPushButton("Open in builder")
        self.builder_button.setToolTip("Send the selected candidate's legs to the strategy builder (double-click)")
        self.builder_button.clicked.connect(self.open_in_builder)
        self.status_label = line_label("waiting for market data…")
        buttons = QHBoxLayout()
        buttons.addWidget(self.status_label, 1)
        buttons.addWidget(self.builder_button)
        buttons.addWidget(self.trade_button)
        results = QSplitter(Qt.Orientation.Vertical)
        results.setObjectName("scan_results_split")
        results.addWidget(self.table)
        results.addWidget(self.payoff)
        results.setStretchFactor(0, 2)
        results.setStretchFactor(1, 3)
        results.setSizes([200, 300])  # ~2/5 table, 3/5 chart: the chart needs the height to read P&L
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(results, 1)
        right_layout.addLayout(buttons)
        # parameters beside the results when there is room, above them (scrolling) in a narrow dock
        split = ResponsiveSplitter(min_side_by_side=side_width + 560, side_px=(side_width, 170))
        split.setObjectName("scanner_split")
        split.addWidget(side)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(split)
        self._update_buttons()

    # --- context ----------------------------------------------------------------------------------------------
    def _score_beside_strikes(self) -> None:
        # The ranking next to the structure it ranks: past the prices it sat at the right edge of a 1280 px
        # screen, cut to "0.07" by the horizontal scroll (a view order only: the model's columns stay put)
        header = self.table.horizontalHeader()
        titles = [column.title for column in COLUMNS]
        header.moveSection(header.visualIndex(titles.index("Score")),
                           header.visualIndex(titles.index("Strikes\n(pts)")) + 1)

    def bind(self, context: AppContext) -> None:
        super().bind(context)
        context.ticket_changed.connect(lambda _on: self._update_buttons())
        context.market_state_changed.connect(self.set_market_state)
        self._market_state = context.market_state
        self._update_buttons()

    def set_market_state(self, state: Any) -> None:
        """The latest MarketState (the gate reads it on the next scan; a state alone does not re-scan)."""
        self._market_state = state

    def set_market_gate(self, gate: MarketGate | None) -> None:
        """Put a market check in front of every scan (None removes it) and re-scan."""
        self._gate = gate
        self.refresh(full=True)

    # --- parameters -------------------------------------------------------------------------------------------
    def _read_params(self) -> bool:
        try:
            self._params = self.form.params()
            self._filter = self.form.market_filter()
        except ValueError as exc:  # ScanParamsError too: one line that names the field
            self._params = None
            self.status_label.setText(f"parameters: {exc}")
            return False
        return True

    def _params_settled(self) -> None:
        if self._read_params():
            self.refresh(full=True)

    @property
    def params(self) -> ScanParams | None:
        return self._params

    # --- feeding (LivePanel hooks) -----------------------------------------------------------------------
    def job_spacing(self) -> float:
        # A scan (IVs + fit + scan: 0.3 s alone, 2 s on a busy 2-core machine) must not run back to back on a
        # live feed: new data re-scans at most once per ``rescan_seconds`` of wall time, and never more than
        # half the time (a 2 s scan waits 4 s), so the scanner takes at most half a core; a parameter change
        # (forced) still scans at once.
        last = self.last_compute_seconds if np.isfinite(self.last_compute_seconds) else 0.0
        return max(self._rescan_seconds, 2.0 * last)

    def job(self, batch: QuoteBatch) -> Job | None:
        if self._params is None:
            return None
        self.jobs_started += 1
        gate = self._gate or (_filter_gate(self._filter, self._market_state) if self._filter is not None else None)
        return Job(compute_scan, (batch.snapshot, self._params, self.shared_fits, gate))

    def status_message(self, text: str) -> None:
        self.status_label.setText(text)

    def show_result(self, outcome: ScanOutcome) -> None:
        selected = self.selected_candidate()
        self._outcome = outcome
        today = outcome.snapshot.time.astimezone(ET).date()
        self.model.set_candidates(outcome.candidates, today)
        row = self.model.row_of(selected.structure) if selected is not None else -1
        self.table.selectRow(max(row, 0))
        if not outcome.candidates:
            self.payoff.clear(_empty_reason(outcome))
        self._show_selected()  # the same candidate re-priced on the new snapshot
        self._update_buttons()
        stamp = outcome.snapshot.time.astimezone(ET)
        if not outcome.candidates:
            text = _empty_reason(outcome)
        else:
            text = (f"{len(outcome.candidates)} of {outcome.result.n_considered:,} · "
                    f"{outcome.seconds * 1000:.0f} ms · SPX {_price(outcome.snapshot.underlying_price)} · "
                    f"{stamp:%H:%M:%S} ET")
        self.status_label.setText(text)
        self.status_label.setToolTip(f"snapshot {outcome.snapshot.checksum[:12]}")

    # --- selection and payoff ------------------------------------------------------------------------------
    def selected_candidate(self) -> Any | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.candidate(rows[0].row()) if rows else None

    def _on_selection(self, _selected: QItemSelection, _deselected: QItemSelection) -> None:
        self._show_selected()
        self._update_buttons()

    def _show_selected(self) -> None:
        candidate, outcome = self.selected_candidate(), self._outcome
        if candidate is None or outcome is None:
            if outcome is not None and outcome.candidates:
                self.payoff.clear("select a candidate to see its payoff")
            return
        key = _key(candidate)
        spot = float(outcome.snapshot.underlying_price)
        moves = outcome.moves.get(key)
        density = outcome.densities.get(key)
        prices = _price_grid(candidate.structure, spot, moves, density)
        curves = _payoff(candidate, outcome, prices)
        self.payoff.set_underlying(candidate.structure.underlying)
        self.payoff.show_payoff(curves, spot=spot, breakevens=_breakevens(prices, curves.expiry),
                                density=density if density is not None and density.ok else None, moves=moves)

    # --- actions --------------------------------------------------------------------------------------------
    def _update_buttons(self) -> None:
        ticket = self.context is not None and self.context.ticket_available
        has = self.selected_candidate() is not None
        self.trade_button.setEnabled(ticket and has)
        self.trade_button.setToolTip("Send the selected candidate to the order ticket" if ticket
                                     else NO_TICKET_TIP)
        self.builder_button.setEnabled(has and self.context is not None)

    def trade(self) -> None:
        candidate = self.selected_candidate()
        if candidate is not None and self.context is not None and self.context.ticket_available:
            self.context.request_trade(candidate.structure)

    def open_in_builder(self) -> None:
        candidate = self.selected_candidate()
        if candidate is not None and self.context is not None:
            self.context.select_structure(candidate.structure)

    # --- API for the shell and tests ----------------------------------------------------------------------
    @property
    def outcome(self) -> ScanOutcome | None:
        return self._outcome

    def health(self) -> tuple[bool, str]:
        if self._outcome is None:
            return False, "scanner: no scan finished yet"
        if self._outcome.result is None:
            return True, f"scanner: gated by the market filter ({self._outcome.gate_reason})"
        return True, (f"scanner: {len(self._outcome.candidates)} candidates of "
                      f"{self._outcome.result.n_considered} considered")


def _payoff(candidate: Any, outcome: ScanOutcome, prices: np.ndarray) -> Any:
    """The candidate's ``PayoffCurves`` on ``prices`` (dollars per unit, value minus the mid cost)."""
    from spx_core.strategies.market import Market
    from spx_core.strategies.payoff import (
        payoff_grid,  # loaded by the worker (_import_core)
    )

    market = Market.of(outcome.civ, surfaces={outcome.snapshot.underlying: outcome.surface})
    return payoff_grid(candidate.structure, market, prices)


NO_MARKET_STATE = "no market state yet: show the Market panel (it needs SPX and VIX bars in the database)"


def _filter_gate(market_filter: Any, state: Any | None) -> MarketGate:
    """The form's MarketFilter as a gate over ``state`` (fails closed when no state has arrived)."""
    def gate(_snapshot: ChainSnapshot, _surface: Any) -> tuple[bool, str]:
        if state is None:
            return False, NO_MARKET_STATE
        return market_filter.check(state)
    return gate


def _price(points: float) -> str:
    return f"{points:,.2f}" if np.isfinite(points) else "n/a"  # minute-bar imports carry no index price


def _empty_reason(outcome: ScanOutcome) -> str:
    if outcome.result is None:
        return f"not scanned: market filter: {outcome.gate_reason}"
    return outcome.result.reason or "no candidate passes the filters"


def _price_grid(structure: Any, spot: float, moves: Any | None, density: Any | None = None) -> np.ndarray:
    """Prices the chart spans: the strikes, the spot, the +-2 SD move and the central 99% of the density,
    with a margin on each side."""
    strikes = structure.kinks()
    lo, hi = float(min(strikes.min(), spot)), float(max(strikes.max(), spot))
    if moves is not None and np.isfinite(moves.sd2_low) and np.isfinite(moves.sd2_high):
        lo, hi = min(lo, float(moves.sd2_low)), max(hi, float(moves.sd2_high))
    if density is not None and density.ok and len(density.cdf) > 1:
        q_lo, q_hi = np.interp([0.005, 0.995], density.cdf, density.price)
        lo, hi = min(lo, float(q_lo)), max(hi, float(q_hi))
    pad = max(0.15 * (hi - lo), 0.01 * spot)
    # the kinks are grid points, so the expiry P&L is linear between neighbours and breakevens are exact
    return np.union1d(np.linspace(lo - pad, hi + pad, _GRID_POINTS), strikes)


def _breakevens(prices: np.ndarray, pnl: np.ndarray) -> list[float]:
    """Prices where the expiry P&L crosses zero (exact: the grid holds every kink, see ``_price_grid``)."""
    s = np.sign(pnl)
    i = np.flatnonzero(s[:-1] * s[1:] < 0)
    return list(prices[i] - pnl[i] * (prices[i + 1] - prices[i]) / (pnl[i + 1] - pnl[i]))
