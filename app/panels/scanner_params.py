"""The scanner's parameter form: presets for the seed plans and every ``ScanParams`` field with its unit.

Events (Qt signals):
    changed(): the user edited a parameter or picked a preset (the panel debounces and re-scans).

The "Market filter" box is the scan's entry gate (:meth:`ScanParamsForm.market_filter`, a
``spx_core.analytics.filters.MarketFilter``; unticked = no gate). Presets leave it as it is.

:meth:`ScanParamsForm.params` builds a validated ``ScanParams`` (``ValueError`` says what is wrong);
:meth:`ScanParamsForm.set_params` shows one. Percent fields are shown in % and stored as fractions.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from spx_core.analytics.filters import IVRankSource, MarketFilter
from spx_core.strategies.scanner_params import (
    PRESETS,
    STRUCTURE_DEFAULTS,
    ScanParams,
    ScanStructure,
    ScoreWeights,
)

__all__ = ["CUSTOM", "ScanParamsForm", "parse_widths"]

CUSTOM = "(custom)"
_WIDTHS = re.compile(r"^\s*\d+(\.\d+)?(\s*,\s*\d+(\.\d+)?)*\s*$")


def parse_widths(text: str) -> tuple[float, ...]:
    """"5, 10,25" -> (5.0, 10.0, 25.0); ValueError with how to write it otherwise."""
    if not _WIDTHS.match(text):
        raise ValueError(f"widths {text!r}: write strike widths in points separated by commas, e.g. 10,25,50")
    return tuple(float(w) for w in text.split(","))


def _spin(lo: float, hi: float, step: float, decimals: int, suffix: str, tip: str,
          off: bool = False) -> QDoubleSpinBox:
    """A spin box in a unit; ``off``: its lowest value reads "off" (the filter is not applied)."""
    box = QDoubleSpinBox()
    if off:
        box.setSpecialValueText("off")
    box.setRange(lo, hi)
    box.setSingleStep(step)
    box.setDecimals(decimals)
    box.setSuffix(suffix)
    box.setToolTip(tip)
    box.setKeyboardTracking(False)  # typing "0.25" is one change, not three
    return box


def _int_spin(lo: int, hi: int, suffix: str, tip: str) -> QSpinBox:
    box = QSpinBox()
    box.setRange(lo, hi)
    box.setSuffix(suffix)
    box.setToolTip(tip)
    box.setKeyboardTracking(False)
    return box


class ScanParamsForm(QWidget):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("scan_params")
        self._loading = False
        self.preset = QComboBox()
        self.preset.addItems([CUSTOM, *PRESETS])
        self.preset.setToolTip("Seed-plan defaults; editing any field makes the set (custom)")
        # the preset names are long: the closed box shows their start (full name in the tooltip and the
        # open list), so the form stays ~300 px wide and the results get the screen
        self.preset.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.preset.setMinimumContentsLength(20)
        self.preset.view().setMinimumWidth(self.preset.view().sizeHintForColumn(0) + 24)
        self.preset.currentTextChanged.connect(self.preset.setToolTip)
        self.structure = QComboBox()
        for s in ScanStructure:
            self.structure.addItem(s.value, s)
        self.delta_lo = _spin(0.01, 0.99, 0.01, 2, "", "Short leg |delta|: the target, or the low end of a range")
        self.delta_hi = _spin(0.01, 0.99, 0.01, 2, "", "High end of the short-delta range")
        self.delta_range = QCheckBox("range")
        self.delta_range.setToolTip("Off: per expiry, the short strike nearest the target delta. "
                                    "On: every short strike with |delta| in the range")
        self.widths = QLineEdit()
        self.widths.setToolTip("Strike widths in index points, comma separated (e.g. 10,25,50)")
        self.dte_lo = _int_spin(0, 3650, " d", "Fewest calendar days to expiry (0 = 0DTE)")
        self.dte_hi = _int_spin(0, 3650, " d", "Most calendar days to expiry")
        self.dte_days = QLineEdit()
        self.dte_days.setPlaceholderText("any in the range")
        self.dte_days.setToolTip("Only these exact days to expiry within the range, comma separated (e.g. 3,5,7)")
        self.min_cpw = _spin(0.0, 100.0, 1.0, 1, " %", "Minimum mid credit as a share of the width", off=True)
        self.min_pop = _spin(0.0, 100.0, 1.0, 1, " %", "Minimum probability of profit (risk-neutral density)",
                             off=True)
        self.max_leg = _spin(0.0, 100.0, 0.05, 2, " pts", "Widest bid/ask allowed on any leg", off=True)
        self.max_pkg = _spin(0.0, 200.0, 0.05, 2, " pts", "Widest natural bid/ask allowed for the whole package "
                             "(sum of |ratio| x leg spread)", off=True)
        self.min_oi = _int_spin(0, 10_000_000, "", "Minimum open interest on every leg (contracts; 0 = off)")
        self.allow_flagged = QCheckBox("allow flagged quotes")
        self.allow_flagged.setToolTip("Include legs whose quote is flagged (crossed, stale, wide...)")
        self.top = _int_spin(1, 5000, "", "How many candidates to list (best score first)")
        self.weights = {f.name: _spin(-100.0, 100.0, 0.01, 3, "", _WEIGHT_TIPS.get(f.name, f.name))
                        for f in dataclasses.fields(ScoreWeights)}
        self._base = ScanParams()  # fields the form does not show (roots, skips, fill...) come from here
        self._build_gate()
        self._build()
        self._connect()
        first = next(iter(PRESETS))
        self.set_params(PRESETS[first], preset=first)

    def _build(self) -> None:
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Preset", self.preset)
        form.addRow("Structure", self.structure)
        delta = QHBoxLayout()
        for w in (self.delta_lo, QLabel("–"), self.delta_hi, self.delta_range):
            delta.addWidget(w)
        form.addRow("Short |Δ|", delta)
        form.addRow("Widths (pts)", self.widths)
        dte = QHBoxLayout()
        for w in (self.dte_lo, QLabel("–"), self.dte_hi):
            dte.addWidget(w)
        form.addRow("DTE", dte)
        form.addRow("Exact DTEs", self.dte_days)
        form.addRow("Min credit/width", self.min_cpw)
        form.addRow("Min POP", self.min_pop)
        form.addRow("Max leg spread", self.max_leg)
        form.addRow("Max package spread", self.max_pkg)
        form.addRow("Min open interest", self.min_oi)
        form.addRow("", self.allow_flagged)
        form.addRow("Show top", self.top)
        weights = QGroupBox("Score weights")
        weights.setToolTip("The total score is the weighted sum of the normalised scores")
        wform = QFormLayout(weights)
        for name, box in self.weights.items():
            wform.addRow(_WEIGHT_LABELS.get(name, name.replace("_", " ")), box)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(form)
        layout.addWidget(weights)
        layout.addWidget(self.gate)
        layout.addStretch(1)

    def _connect(self) -> None:
        self.preset.currentTextChanged.connect(self._on_preset)
        self.structure.currentIndexChanged.connect(self._on_structure)
        self.delta_range.toggled.connect(self._on_range)
        self.widths.editingFinished.connect(self._edited)
        self.dte_days.editingFinished.connect(self._edited)
        for box in (self.delta_lo, self.delta_hi, self.dte_lo, self.dte_hi, self.min_cpw, self.min_pop,
                    self.max_leg, self.max_pkg, self.min_oi, self.top, *self.weights.values()):
            box.valueChanged.connect(self._edited)
        self.allow_flagged.toggled.connect(self._edited)
        # the gate is not part of a preset: editing it re-scans but keeps the preset's name
        self.gate.toggled.connect(self.changed)
        for box in (self.iv_rank_min, self.vix_min, self.vix_max):
            box.valueChanged.connect(self.changed)
        self.iv_rank_source.currentIndexChanged.connect(self.changed)
        self.regimes.editingFinished.connect(self.changed)
        self.missing_passes.toggled.connect(self.changed)

    def _build_gate(self) -> None:
        self.gate = QGroupBox("Market filter (entry gate)")
        self.gate.setCheckable(True)
        self.gate.setChecked(False)
        self.gate.setToolTip("Scan only while the market state (Market panel) passes these conditions")
        self.iv_rank_min = _spin(0.0, 100.0, 5.0, 0, " %", "Least IV rank (0-100)", off=True)
        self.iv_rank_source = QComboBox()
        for source in IVRankSource:
            self.iv_rank_source.addItem(source.label, source)
        self.vix_min = _spin(0.0, 200.0, 1.0, 1, "", "Least VIX close (index points)", off=True)
        self.vix_max = _spin(0.0, 200.0, 1.0, 1, "", "Most VIX close (index points)", off=True)
        self.regimes = QLineEdit()
        self.regimes.setPlaceholderText("any")
        self.regimes.setToolTip("Allowed regimes, comma separated (trend, mixture or VIX bucket names, "
                                "e.g. uptrend, calm)")
        self.missing_passes = QCheckBox("a missing figure passes")
        self.missing_passes.setToolTip("Off (safer): a condition whose input is missing blocks the scan")
        form = QFormLayout(self.gate)
        form.addRow("Min IV rank", self.iv_rank_min)
        form.addRow("IV rank of", self.iv_rank_source)
        vix = QHBoxLayout()
        for w in (self.vix_min, QLabel("–"), self.vix_max):
            vix.addWidget(w)
        form.addRow("VIX", vix)
        form.addRow("Regimes", self.regimes)
        form.addRow("", self.missing_passes)

    def market_filter(self) -> MarketFilter | None:
        """The entry gate (None when the box is unticked); ``ValueError`` names a bad condition."""
        if not self.gate.isChecked():
            return None
        names = frozenset(r.strip() for r in self.regimes.text().split(",") if r.strip())
        return MarketFilter(iv_rank_min=_off(self.iv_rank_min), iv_rank_source=self.iv_rank_source.currentData(),
                            regimes=names or None, vix_min=_off(self.vix_min), vix_max=_off(self.vix_max),
                            missing_passes=self.missing_passes.isChecked())

    # --- params <-> widgets -------------------------------------------------------------------------------
    def params(self) -> ScanParams:
        """The parameters shown (``ValueError`` names the bad field and how to fix it)."""
        lo, hi = self.delta_lo.value(), self.delta_hi.value()
        short_delta: float | tuple[float, float] = (lo, hi) if self.delta_range.isChecked() else lo
        weights = ScoreWeights(**{name: box.value() for name, box in self.weights.items()})
        days = self.dte_days.text().strip()
        return dataclasses.replace(
            self._base, structure=self.structure.currentData(), short_delta=short_delta,
            widths=parse_widths(self.widths.text()), dte=(self.dte_lo.value(), self.dte_hi.value()),
            dte_days=tuple(int(d) for d in parse_widths(days)) if days else (),
            min_credit_per_width=_off(self.min_cpw, 100.0), min_pop=_off(self.min_pop, 100.0),
            max_leg_spread=_off(self.max_leg), max_package_spread=_off(self.max_pkg),
            min_open_interest=self.min_oi.value(), allow_flagged=self.allow_flagged.isChecked(),
            weights=weights, top=self.top.value())

    def set_params(self, params: ScanParams, *, preset: str = CUSTOM) -> None:
        """Show ``params`` (no ``changed`` signal); ``preset`` names the preset they came from."""
        self._loading = True
        self._base = params
        try:
            self.preset.setCurrentText(preset)
            self.structure.setCurrentIndex(self.structure.findData(params.structure))
            ranged = isinstance(params.short_delta, tuple)
            lo, hi = params.short_delta if ranged else (params.short_delta, params.short_delta)
            self.delta_range.setChecked(ranged)
            self.delta_lo.setValue(lo)
            self.delta_hi.setValue(hi)
            self.delta_hi.setEnabled(ranged)
            self.widths.setText(",".join(f"{w:g}" for w in params.widths))
            self.dte_lo.setValue(params.dte[0])
            self.dte_hi.setValue(params.dte[1])
            self.dte_days.setText(",".join(str(d) for d in params.dte_days))
            for box, value, scale in ((self.min_cpw, params.min_credit_per_width, 100.0),
                                      (self.min_pop, params.min_pop, 100.0),
                                      (self.max_leg, params.max_leg_spread, 1.0),
                                      (self.max_pkg, params.max_package_spread, 1.0)):
                box.setValue(box.minimum() if value is None else value * scale)
            self.min_oi.setValue(int(params.min_open_interest))
            self.allow_flagged.setChecked(params.allow_flagged)
            self.top.setValue(params.top)
            for name, box in self.weights.items():
                box.setValue(getattr(params.weights, name))
        finally:
            self._loading = False

    def _on_preset(self, name: str) -> None:
        if self._loading or name not in PRESETS:
            return
        self.set_params(PRESETS[name], preset=name)
        self.changed.emit()

    def _on_structure(self, _index: int) -> None:
        """A new structure starts from its usual short delta and widths (an iron fly sells the 0.50 delta,
        a put credit vertical the 0.20): keeping the last structure's 0.10 would find nothing useful."""
        if self._loading:
            return
        delta, widths = STRUCTURE_DEFAULTS[self.structure.currentData()]
        self._loading = True
        try:
            ranged = isinstance(delta, tuple)
            lo, hi = delta if ranged else (delta, delta)
            self.delta_range.setChecked(ranged)
            self.delta_lo.setValue(lo)
            self.delta_hi.setValue(hi)
            self.delta_hi.setEnabled(ranged)
            self.widths.setText(",".join(f"{w:g}" for w in widths))
        finally:
            self._loading = False
        self._edited()

    def _on_range(self, on: bool) -> None:
        self.delta_hi.setEnabled(on)
        self._edited()

    def _edited(self, *_: Any) -> None:
        if self._loading:
            return
        self._loading = True
        self.preset.setCurrentText(CUSTOM)  # the shown set is no longer the preset
        self._loading = False
        self.changed.emit()


def _off(box: QDoubleSpinBox, scale: float = 1.0) -> float | None:
    """The box's value in the params' unit, None when it reads "off" (its minimum)."""
    return None if box.value() == box.minimum() else box.value() / scale


_WEIGHT_LABELS = {"ev": "EV (pts)", "ev_per_max_loss": "EV / max loss", "pop": "POP",
                  "credit_per_width": "Credit / width", "edge_usd": "Edge ($)", "edge_volpts": "Edge (vol pts)"}
_WEIGHT_TIPS = {
    "ev_per_max_loss": "Score per unit of expected value / max loss (fraction)",
    "pop": "Score per unit of probability of profit (fraction 0..1)",
    "credit_per_width": "Score per unit of mid credit / width (fraction; negative for debits)",
    "edge_volpts": "Score per vol point of richness of what is sold vs the fitted surface",
}
