"""The settings dialog's "Costs" group: the paper broker's commission and fee schedule, one spin box per figure
(dollars per contract; the order minimum per order), each with its source in the tooltip, and a "Restore
defaults" button that puts back :data:`~spx_core.execution.fees.DEFAULT_FEES`.

Two figures a row keep the group short: the dialog has to fit a 1280x720 screen beside the alerts group.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QDate
from PySide6.QtWidgets import (
    QDateEdit,
    QDoubleSpinBox,
    QGridLayout,
    QGroupBox,
    QLabel,
    QPushButton,
    QWidget,
)

from app.settings import COST_FIGURES, MAX_COST, AppSettings

__all__ = ["CostSettingsForm"]

#: Decimals shown: ORF and CAT rates are quoted to fractions of a cent (e.g. $0.00295).
DECIMALS = 5


class CostSettingsForm(QGroupBox):
    """Edits the cost fields of :class:`AppSettings`; :meth:`changes` returns them for ``with_changes``.

    Attributes:
        spins: one spin box per :data:`~app.settings.COST_FIGURES` field.
        orf_date: the date the ORF figure was taken (``orf_as_of``).
    """

    def __init__(self, settings: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__("Costs ($ per contract)", parent)
        self.setObjectName("cost_settings")
        grid = QGridLayout(self)
        self.spins: dict[str, QDoubleSpinBox] = {}
        for i, (name, (label, source)) in enumerate(COST_FIGURES.items()):
            spin = QDoubleSpinBox()
            spin.setObjectName(f"cost_{name}")
            spin.setRange(0.0, MAX_COST)
            spin.setDecimals(DECIMALS)
            spin.setSingleStep(0.01)
            spin.setPrefix("$")
            spin.setToolTip(source)
            self.spins[name] = spin
            text = QLabel(label)
            text.setToolTip(source)
            row, col = divmod(i, 2)
            grid.addWidget(text, row, 2 * col)
            grid.addWidget(spin, row, 2 * col + 1)
        self.orf_date = QDateEdit()
        self.orf_date.setObjectName("cost_orf_as_of")
        self.orf_date.setCalendarPopup(True)
        self.orf_date.setDisplayFormat("yyyy-MM-dd")
        self.orf_date.dateChanged.connect(self._date_tip)
        row, col = divmod(len(COST_FIGURES), 2)
        grid.addWidget(QLabel("ORF as of"), row, 2 * col)
        grid.addWidget(self.orf_date, row, 2 * col + 1)
        self.restore_button = QPushButton("Restore defaults")
        self.restore_button.setToolTip("the IBKR Pro tiered schedule the app ships with")
        self.restore_button.clicked.connect(self.restore_defaults)
        grid.addWidget(self.restore_button, row + 1, 0, 1, 4)
        self.show_settings(settings)

    def show_settings(self, settings: AppSettings) -> None:
        for name, spin in self.spins.items():
            spin.setValue(float(getattr(settings, name)))
        self.orf_date.setDate(QDate.fromString(settings.orf_as_of, "yyyy-MM-dd"))
        self._date_tip()

    def restore_defaults(self) -> None:
        """Every figure back to the shipped schedule (applied when the dialog is accepted)."""
        self.show_settings(AppSettings())

    def _date_tip(self, *_: Any) -> None:
        # the ORF changes several times a year: its tooltip says which revision the figure is
        as_of = self.orf_date.date().toString("yyyy-MM-dd")
        self.spins["orf_fee"].setToolTip(f"{COST_FIGURES['orf_fee'][1]}; as of {as_of}")
        self.orf_date.setToolTip(f"the date the ORF figure was taken ({as_of}); update both when the rate changes")

    def changes(self) -> dict[str, Any]:
        """The edited figures (rounded to the digits shown: no binary-float dust in the INI file)."""
        out: dict[str, Any] = {name: round(spin.value(), DECIMALS) for name, spin in self.spins.items()}
        out["orf_as_of"] = self.orf_date.date().toString("yyyy-MM-dd")
        return out
