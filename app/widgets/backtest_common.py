"""What the backtest charts share: PNG export, ET time axes, dollar axes, cleaning of non-finite input, formats.

Times: a run's stamps are UTC; the charts show US/Eastern wall-clock time (the session's), so each stamp is
turned into "ET wall-clock seconds as if it were UTC" and drawn on a ``DateAxisItem(utcOffset=0)``. That
keeps daylight-saving changes right (a fixed ``utcOffset`` would be an hour off for half the year).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyqtgraph as pg
from pyqtgraph.graphicsItems import DateAxisItem as _dates
from PySide6.QtWidgets import QWidget

__all__ = [
    "NO_DATA",
    "SESSION_TZ",
    "DollarAxis",
    "PercentAxis",
    "PngExport",
    "et_axis",
    "et_seconds",
    "finite_series",
    "fmt_money",
    "fmt_pct",
]

SESSION_TZ = "America/New_York"
NO_DATA = "no data"
_MONTH_DAY_ZOOM = 5 * 86_400  # DateAxisItem.zoomLevels key of its month/day ticks


class PngExport:
    """Mixin for a QWidget: :meth:`export_png` writes what the widget shows (the panel's "Export PNG")."""

    def export_png(self, path: str | Path) -> Path:
        """Render the widget to ``path`` (PNG) and return the path; ``OSError`` (one line) when it cannot be
        written. Works for a widget in a hidden tab too (``QWidget.grab`` renders it off screen)."""
        assert isinstance(self, QWidget)
        target = Path(path)
        if target.suffix.lower() != ".png":
            target = target.with_suffix(target.suffix + ".png") if target.suffix else target.with_suffix(".png")
        if not target.parent.is_dir():
            raise OSError(f"cannot write {target}: folder {target.parent} does not exist; pick another folder")
        if not self.grab().save(str(target), "PNG"):
            raise OSError(f"cannot write {target}: check the folder is writable and the disk is not full")
        return target


def et_seconds(index: pd.Index) -> np.ndarray:
    """Stamps (tz-aware, or naive read as UTC) -> ET wall-clock seconds for :func:`et_axis` (float64)."""
    idx = pd.DatetimeIndex(index)
    idx = idx.tz_localize("UTC") if idx.tz is None else idx
    local = idx.tz_convert(SESSION_TZ).tz_localize(None).as_unit("ns")
    return local.asi8.astype(np.float64) / 1e9


def et_axis() -> pg.DateAxisItem:
    """A bottom date axis for :func:`et_seconds` values (ticks read as ET dates/times)."""
    axis = pg.DateAxisItem(orientation="bottom", utcOffset=0)
    # pyqtgraph's day ticks read "08": a month-long intraday run has no month tick in view, so say "Jan 08"
    month, day = _dates.MONTH_DAY_ZOOM_LEVEL.tickSpecs
    axis.zoomLevels[_MONTH_DAY_ZOOM] = _dates.ZoomLevel(
        [month, _dates.TickSpec(day.spacing, day.step, "%b %d", autoSkip=day.autoSkip)], "MMM 00")
    return axis


def finite_series(series: pd.Series | None) -> tuple[pd.Series, int]:
    """``series`` as float on a sorted, UTC, de-duplicated index with non-finite values dropped, and how many
    were dropped (a run's NaN or inf equity stamps cannot be drawn or measured)."""
    if series is None or len(series) == 0:
        return pd.Series([], index=pd.DatetimeIndex([], tz="UTC"), dtype=np.float64), 0
    idx = pd.DatetimeIndex(series.index)
    idx = idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
    values = pd.to_numeric(pd.Series(np.asarray(series, dtype=object)), errors="coerce").to_numpy(np.float64)
    out = pd.Series(values, index=idx.as_unit("ns")).sort_index(kind="stable")
    out = out[~out.index.duplicated(keep="last")]
    keep = np.isfinite(out.to_numpy())
    return out[keep], int((~keep).sum())


def fmt_money(value: float, *, sign: bool = False) -> str:
    """Dollars with thousands separators ("$101,250", "-$1,250", "+$40" with ``sign``); "n/a" if not finite."""
    if not math.isfinite(value):
        return "n/a"
    if value < 0:
        return f"-${abs(value):,.0f}"
    return f"{'+' if sign else ''}${value:,.0f}"


def fmt_pct(fraction: float, *, sign: bool = True, digits: int = 1) -> str:
    """A fraction in percent ("+1.2%", "1.2%" without ``sign``); NaN "n/a"; an infinity "+∞" / "-∞"."""
    if math.isnan(fraction):
        return "n/a"
    if math.isinf(fraction):
        return "+\u221e" if fraction > 0 else "-\u221e"
    return f"{fraction * 100.0 + 0.0:{'+' if sign else ''}.{digits}f}%"


class DollarAxis(pg.AxisItem):
    """A value axis in dollars with thousands separators (the default prints 101250 or 1.0125e+05)."""

    def __init__(self, orientation: str = "left", **kwargs) -> None:
        super().__init__(orientation, **kwargs)
        self.enableAutoSIPrefix(False)

    def tickStrings(self, values, scale, spacing):
        return [fmt_money(float(v) * scale) for v in values]


class PercentAxis(pg.AxisItem):
    """A value axis whose values are already percent: "-5%", "-12.5%"."""

    def __init__(self, orientation: str = "left", **kwargs) -> None:
        super().__init__(orientation, **kwargs)
        self.enableAutoSIPrefix(False)

    def tickStrings(self, values, scale, spacing):
        digits = 0 if spacing >= 1 else (1 if spacing >= 0.1 else 2)
        return [f"{float(v) * scale + 0.0:.{digits}f}%" for v in values]
