"""ChainModel: the option chain of one expiry as calls | strike | puts, over numpy arrays.

Rows are a window of N strikes around the money (re-centred on demand, not on every tick, so the
table does not jump under the trader's mouse). ``data()`` only looks values up and formats them; all
numeric work happens in :func:`~app.models.chain_data.build_block` when a chain is applied, which
the panel does at most 10 times a second. Each apply emits one ``dataChanged`` per contiguous run of
rows whose *displayed* text, flags or shading changed.

Roles: Display (formatted numbers), TextAlignment, Background (ITM shading, ATM row, bid/ask flash
that fades), Foreground (flag colours: crossed red, zero bid/no quote grey, wide amber; IV and greeks
taken from the OTM side or the fitted smile blue, none grey), Font (bold strike; italic IV and greeks
when not from the quote's own price), ToolTip (contract, sizes, bid/mid/ask IV, where the shown IV
comes from and why, e.g. "IV from fitted surface: bid is zero", quality flags).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QModelRoleDataSpan, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QFont

from app.models.chain_changes import QUOTE_FIELDS, dirty_cells, flash_cells
from app.models.chain_data import (
    CALL,
    FIELD_DECIMALS,
    PUT,
    SERVED_FIELDS,
    VISIBLE_FIELDS,
    ChainField,
    ExpiryBlock,
    atm_index,
    build_block,
    contiguous_ranges,
    window_bounds,
)
from app.models.chain_text import (FIELD_HELP, FIELD_LABELS, STRIKE, fmt, formatter, header_text, reason_text,
                                   served_text, strike_text)
from spx_core.domain import ChainSnapshot, OptionContract, QuoteFlag, describe_flags

if TYPE_CHECKING:
    from spx_core.surface.served import ServedChain

__all__ = ["ChainModel", "STRIKE", "column_layout", "FIELD_LABELS"]

FLASH_SECONDS = 0.8  # how long a changed bid/ask stays highlighted (a step, not a fade: a fade repaints
#                     every flashing cell on every refresh, which was ~40% of the app's CPU at 1x)
_FLASH_UP = QBrush(QColor(0, 190, 90, 80))  # bid/ask moved up
_FLASH_DOWN = QBrush(QColor(235, 70, 70, 80))  # moved down
_ROLE_DISPLAY = int(Qt.ItemDataRole.DisplayRole)
_ROLE_ALIGN = int(Qt.ItemDataRole.TextAlignmentRole)
_ROLE_BG = int(Qt.ItemDataRole.BackgroundRole)
_ROLE_FG = int(Qt.ItemDataRole.ForegroundRole)
_ROLE_FONT = int(Qt.ItemDataRole.FontRole)
_ROLE_TIP = int(Qt.ItemDataRole.ToolTipRole)
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_CENTER = Qt.AlignmentFlag.AlignCenter
_CELL_FLAGS = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
_NO_FLAGS = Qt.ItemFlag.NoItemFlags
_BAD_QUOTE = int(QuoteFlag.ZERO_BID | QuoteFlag.NO_QUOTE | QuoteFlag.STALE)
_CROSSED, _WIDE = int(QuoteFlag.CROSSED), int(QuoteFlag.WIDE)
# spx_core.surface.served.IVSource codes (not imported: scipy-heavy); sources above QUOTE are substitutes
_NO_SRC, _QUOTE_SRC = 0, 1


#: Quote columns in reading order on both sides (sizes beside their price).
_QUOTE_GROUP = (ChainField.BID_SIZE, ChainField.BID, ChainField.MID, ChainField.ASK, ChainField.ASK_SIZE)


def column_layout(fields: tuple[ChainField, ...] | list[ChainField]) -> list[tuple[int, ChainField | None]]:
    """(side, field) per column: calls mirrored (bid-mid-ask kept in reading order), strike, puts."""
    chosen = [f for f in VISIBLE_FIELDS if f in set(fields)]
    quote = [f for f in _QUOTE_GROUP if f in chosen]
    rest = [f for f in chosen if f not in _QUOTE_GROUP]
    calls = [(CALL, f) for f in reversed(rest)] + [(CALL, f) for f in quote]
    return calls + [(STRIKE, None)] + [(PUT, f) for f in quote + rest]


# What a column's colours depend on: 0 = quote (flags), 1 = served IV (its source), 2 = nothing.
def _kind(field: ChainField | None) -> int:
    return 0 if field in QUOTE_FIELDS else 1 if field in SERVED_FIELDS else 2


class ChainModel(QAbstractTableModel):
    """Calls | strike | puts for one expiry. Feed it with :meth:`set_chain` (from the GUI thread)."""

    def __init__(self, *, fields: tuple[ChainField, ...] | list[ChainField] = VISIBLE_FIELDS, window: int = 30,
                 parent: Any = None) -> None:
        super().__init__(parent)
        self._set_columns(fields)
        self._window_size = int(window)
        self._block: ExpiryBlock | None = None
        self._snapshot: ChainSnapshot | None = None
        self._lo = self._hi = self._center = self._atm = 0
        self._now = time.monotonic()
        self._flash: dict[tuple[int, int], tuple[float, bool]] = {}
        self._cells: list[list[float]] = []  # window rows x columns, python floats (fast lookups)
        self._row_bg: list[list[QBrush | None]] = []  # window rows x (call, put, strike)
        self._row_fg: list[list[QBrush | None]] = []  # window rows x (call quote, put quote, call IV, put IV)
        self._row_font: list[list[QFont | None]] = []  # window rows x (call, put) font of the IV/greek cells
        self._brush = {name: QBrush(color) for name, color in {
            "itm": QColor(70, 130, 255, 38), "atm": QColor(255, 176, 0, 48), "strike": QColor(128, 128, 128, 42),
            "atm_strike": QColor(255, 176, 0, 150), "crossed": QColor(235, 64, 64), "grey": QColor(140, 140, 140),
            "wide": QColor(230, 150, 20), "served": QColor(80, 160, 210)}.items()}
        self._bold = QFont()
        self._bold.setBold(True)
        self._italic = QFont()  # IV and greeks not from the quote's own price
        self._italic.setItalic(True)
        self._handlers = {_ROLE_DISPLAY: self._display, _ROLE_ALIGN: self._align, _ROLE_BG: self._background,
                          _ROLE_FG: self._foreground, _ROLE_FONT: self._font, _ROLE_TIP: self._tooltip}

    def _set_columns(self, fields: tuple[ChainField, ...] | list[ChainField]) -> None:
        # per-column lookup tables, so data() does no enum arithmetic while painting
        self._cols = column_layout(fields)
        self._col_side = [side for side, _ in self._cols]
        self._col_format = [formatter(field) for _, field in self._cols]
        # plain ints: an enum here costs a Python enum lookup in setData() for every painted cell
        self._col_align = [int(_CENTER.value if side == STRIKE else _RIGHT.value) for side, _ in self._cols]
        kinds = [_kind(field) for _, field in self._cols]
        self._col_fg = [side if kind == 0 else side + 2 if kind == 1 else -1
                        for (side, _), kind in zip(self._cols, kinds, strict=True)]
        # font slot: -1 strike (bold), 0/1 call/put served cells (italic when substituted), 2 none
        self._col_font = [-1 if side == STRIKE else side if kind == 1 else 2
                          for (side, _), kind in zip(self._cols, kinds, strict=True)]

    # --- Qt model interface ----------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self._hi - self._lo

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._cols)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = _ROLE_DISPLAY) -> Any:
        handler = self._handlers.get(role)
        if handler is None or not index.isValid():
            return None
        return handler(index.row(), index.column())

    def multiData(self, index: QModelIndex | QPersistentModelIndex, span: QModelRoleDataSpan) -> None:
        # Qt 6 item delegates ask for all their roles in one call: one Python call per painted cell
        # instead of seven (this halves the GUI-thread cost of a repaint). The delegate reuses one
        # role array for every cell it paints, so a role without a value must be cleared: leaving it
        # would paint the previous cell's background, colour or bold font into this one.
        # Roles this model never provides (check state, decoration, ...) are never set by it, so they
        # cannot hold a stale value and are skipped.
        valid = index.isValid()
        r, c = index.row(), index.column()
        get = self._handlers.get
        for i in range(len(span)):
            role_data = span[i]
            handler = get(role_data.role())
            if handler is None:
                continue
            value = handler(r, c) if valid else None
            if value is None:
                role_data.clearData()
            else:
                role_data.setData(value)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = _ROLE_DISPLAY) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(self._cols):
            if orientation == Qt.Orientation.Vertical and role == _ROLE_DISPLAY and 0 <= section < self.rowCount():
                return strike_text(float(self._block.strikes[self._lo + section]))
            return None
        side, field = self._cols[section]
        if role == _ROLE_DISPLAY:
            return header_text(field)
        if role == _ROLE_TIP:
            return "strike (index points)" if field is None else \
                f"{'call' if side == CALL else 'put'} {FIELD_HELP[field]}"
        if role == _ROLE_ALIGN:
            return _CENTER
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        return _CELL_FLAGS if index.isValid() else _NO_FLAGS

    # --- role handlers (lookups only) ----------------------------------------------------------
    def _display(self, r: int, c: int) -> str:
        return self._col_format[c](self._cells[r][c])

    def _align(self, r: int, c: int) -> Qt.AlignmentFlag:
        return self._col_align[c]

    def _background(self, r: int, c: int) -> QBrush | None:
        flash = self._flash.get((r, c))
        if flash is not None and self._now - flash[0] < FLASH_SECONDS:
            return _FLASH_UP if flash[1] else _FLASH_DOWN
        return self._row_bg[r][self._col_side[c]]

    def _foreground(self, r: int, c: int) -> QBrush | None:
        slot = self._col_fg[c]
        return None if slot < 0 else self._row_fg[r][slot]

    def _font(self, r: int, c: int) -> QFont | None:
        slot = self._col_font[c]
        return self._bold if slot < 0 else self._row_font[r][slot] if slot < 2 else None

    def _tooltip(self, r: int, c: int) -> str | None:
        side, field = self._cols[c]
        b = self._block
        k = self._lo + r
        if field is None:
            where = "ATM (nearest the forward)" if k == self._atm else ("below" if b.strikes[k] < b.money else "above")
            return f"strike {strike_text(float(b.strikes[k]))}: {where}; forward {b.money:,.2f}"
        row = int(b.rows[side, k])
        if row < 0:
            return "not listed"
        v = b.values[side, k]
        lines = [str(self._snapshot.contract(row)),
                 f"bid {fmt(ChainField.BID, v[ChainField.BID])} x {v[ChainField.BID_SIZE]:.0f}   "
                 f"ask {fmt(ChainField.ASK, v[ChainField.ASK])} x {v[ChainField.ASK_SIZE]:.0f}",
                 f"IV bid / mid / ask: {fmt(ChainField.IV, v[ChainField.IV_BID])} / "
                 f"{fmt(ChainField.IV, v[ChainField.IV])} / {fmt(ChainField.IV, v[ChainField.IV_ASK])}"]
        served = served_text(side, int(b.source[side, k]), int(b.why[side, k]), int(b.reason[side, k]))
        if served:
            lines.append(served)
        elif b.reason[side, k]:
            lines.append(f"IV not solved: {reason_text(int(b.reason[side, k]))}")
        flags = describe_flags(int(b.flags[side, k]))
        lines.append(f"quality: {flags}" if flags else "quality: clean two-sided quote")
        return "\n".join(lines)

    # --- feeding -------------------------------------------------------------------------------
    @property
    def block(self) -> ExpiryBlock | None:
        return self._block

    @property
    def snapshot(self) -> ChainSnapshot | None:
        return self._snapshot

    @property
    def atm_row(self) -> int | None:
        """Window row of the ATM strike, or None when it is outside the window."""
        return self._atm - self._lo if self._block is not None and self._lo <= self._atm < self._hi else None

    @property
    def atm_strike_index(self) -> int:
        """Index into ``block.strikes`` of the strike nearest the forward."""
        return self._atm

    def atm_iv(self) -> float:
        """Mean of the call and put mid IVs at the ATM strike (NaN when neither solved)."""
        if self._block is None:
            return float("nan")
        ivs = self._block.values[:, self._atm, ChainField.IV]
        return float(ivs[np.isfinite(ivs)].mean()) if np.isfinite(ivs).any() else float("nan")

    @property
    def columns(self) -> list[tuple[int, ChainField | None]]:
        return list(self._cols)

    @property
    def strike_window(self) -> int:
        return self._window_size

    def set_chain(self, snapshot: ChainSnapshot, served: ServedChain | None, *, changed: np.ndarray | None = None,
                  now: float | None = None) -> None:
        """Apply a one-expiry snapshot and its served IVs/greeks (``spx_core.surface.served.serve_expiry``).

        ``changed`` are the snapshot rows the source reported as re-quoted since the last apply
        (their bid/ask cells flash); None means "unknown": flash every bid/ask whose value moved.
        A different expiry or strike list resets the model and centres the window on the money.
        """
        self._now = time.monotonic() if now is None else now
        block = build_block(snapshot, served)
        old = self._block
        if not block.same_layout(old):
            self.beginResetModel()
            self._block, self._snapshot, self._flash = block, snapshot, {}
            self._atm = atm_index(block.strikes, block.money)
            self._center = self._atm
            self._lo, self._hi = window_bounds(len(block.strikes), self._center, self._window_size)
            self._rebuild_window()
            self.endResetModel()
            return
        self._block, self._snapshot = block, snapshot
        old_atm, self._atm = self._atm, atm_index(block.strikes, block.money)
        dirty = dirty_cells(old, block, lo=self._lo, hi=self._hi, columns=self._cols, old_atm=old_atm,
                            new_atm=self._atm)
        for r, c, up in flash_cells(old, block, snapshot, changed, lo=self._lo, hi=self._hi, columns=self._cols):
            self._flash[(r, c)] = (self._now, up)
        self._rebuild_window()
        self._emit_ranges(dirty)

    def advance_flash(self, now: float | None = None) -> int:
        """Move the clock to ``now`` (monotonic seconds); repaint only the cells whose flash just ended.

        Returns the cells repainted (0 on most refreshes: a flash costs two repaints, on and off)."""
        self._now = time.monotonic() if now is None else now
        expired = [key for key, (t0, _up) in self._flash.items() if self._now - t0 >= FLASH_SECONDS]
        if not expired:
            return 0
        mask = np.zeros((self.rowCount(), self.columnCount()), dtype=bool)
        for r, c in expired:
            del self._flash[(r, c)]
            if r < mask.shape[0]:
                mask[r, c] = True
        self._emit_ranges(mask, roles=[_ROLE_BG])
        return int(mask.sum())

    def _emit_ranges(self, mask: np.ndarray, roles: list[int] | None = None) -> None:
        """One dataChanged per contiguous block: runs of dirty rows, split into runs of dirty columns.

        Splitting by columns keeps the repaint to the cells that changed (e.g. the greeks that move
        with every tick) instead of the bounding box across the strike column.
        """
        for start, stop in contiguous_ranges(mask.any(axis=1)):
            for c0, c1 in contiguous_ranges(mask[start:stop].any(axis=0)):
                self.dataChanged.emit(self.index(start, c0), self.index(stop - 1, c1 - 1), roles or [])

    def _rebuild_window(self) -> None:
        b = self._block
        lo, hi = self._lo, self._hi
        w = hi - lo
        cells = np.empty((w, len(self._cols)))
        for c, (side, field) in enumerate(self._cols):
            # rounded to the shown precision (+ 0.0 turns -0.0 into 0.0): no "-0.00" thetas
            cells[:, c] = b.strikes[lo:hi] if field is None else \
                np.round(b.values[side, lo:hi, field], FIELD_DECIMALS[field]) + 0.0
        self._cells = cells.tolist()
        strikes = b.strikes[lo:hi]
        money = b.money
        source = b.source[:, lo:hi].T.tolist()  # (w, 2) IV source codes
        bg, fg, font = [], [], []
        for r in range(w):
            k = lo + r
            atm = k == self._atm
            call_itm, put_itm = strikes[r] < money, strikes[r] > money
            base = self._brush["atm"] if atm else None
            bg.append([self._brush["itm"] if call_itm else base, self._brush["itm"] if put_itm else base,
                       self._brush["atm_strike"] if atm else self._brush["strike"]])
            call_src, put_src = source[r]
            fg.append([self._quote_fg(int(b.flags[CALL, k])), self._quote_fg(int(b.flags[PUT, k])),
                       self._served_fg(call_src), self._served_fg(put_src)])
            font.append([self._italic if call_src > _QUOTE_SRC else None,
                         self._italic if put_src > _QUOTE_SRC else None])
        self._row_bg, self._row_fg, self._row_font = bg, fg, font

    def _served_fg(self, source: int) -> QBrush | None:
        if source == _QUOTE_SRC:
            return None
        return self._brush["grey"] if source == _NO_SRC else self._brush["served"]

    def _quote_fg(self, flags: int) -> QBrush | None:
        if flags & _CROSSED:
            return self._brush["crossed"]
        if flags & _BAD_QUOTE:
            return self._brush["grey"]
        if flags & _WIDE:
            return self._brush["wide"]
        return None

    # --- user actions --------------------------------------------------------------------------
    def recenter(self) -> None:
        """Centre the strike window on the current ATM strike."""
        if self._block is None:
            return
        self.beginResetModel()
        self._center = self._atm
        self._lo, self._hi = window_bounds(len(self._block.strikes), self._center, self._window_size)
        self._flash = {}
        self._rebuild_window()
        self.endResetModel()

    def set_strike_window(self, n: int) -> None:
        """Show ``n`` strikes around the money (re-centres)."""
        self._window_size = max(1, int(n))
        self.recenter()

    def set_fields(self, fields: tuple[ChainField, ...] | list[ChainField]) -> None:
        """Choose the visible per-side columns (strike is always shown)."""
        self.beginResetModel()
        self._set_columns(fields)
        self._flash = {}
        if self._block is not None:
            self._rebuild_window()
        self.endResetModel()

    def window(self) -> tuple[int, int]:
        """``[lo, hi)``: the block's strike indices shown as rows 0..hi-lo-1."""
        return self._lo, self._hi

    def texts(self, rows: list[int], columns: list[int]) -> list[list[str]]:
        """Displayed text of the cells ``rows`` x ``columns`` (what Ctrl+C copies)."""
        return [[self._col_format[c](self._cells[r][c]) for c in columns] for r in rows]

    def contract_at(self, index: QModelIndex | QPersistentModelIndex) -> OptionContract | None:
        """The option under a cell (None on the strike column or an unlisted side)."""
        if not index.isValid() or self._block is None:
            return None
        side = self._cols[index.column()][0]
        if side == STRIKE:
            return None
        row = int(self._block.rows[side, self._lo + index.row()])
        return None if row < 0 else self._snapshot.contract(row)

    def row_of_strike(self, strike: float) -> int | None:
        """Window row showing ``strike`` (None when outside the window)."""
        if self._block is None:
            return None
        k = int(np.searchsorted(self._block.strikes, strike))
        if k < len(self._block.strikes) and self._block.strikes[k] == strike and self._lo <= k < self._hi:
            return k - self._lo
        return None
