"""The chain as text: column labels and help, cell formats, the widest text per column, TSV and CSV.

No Qt here. :class:`~app.models.chain_model.ChainModel` formats cells with :func:`formatter`; the panel
sizes columns from :func:`widest_texts` (so a bid of 1,234.50 is never cut to "1,2…"), copies the
selection with :func:`tsv` and exports the shown chain with :func:`write_csv`.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from app.models.chain_data import CALL, FIELD_DECIMALS, ChainField, ExpiryBlock

__all__ = ["STRIKE", "FIELD_LABELS", "FIELD_HELP", "Columns", "strike_text", "formatter", "fmt", "header_text",
           "served_text", "reason_text", "widest_texts", "tsv", "csv_header", "csv_rows", "write_csv"]

STRIKE = 2  # the "side" of the strike column
Columns = Sequence[tuple[int, ChainField | None]]

FIELD_LABELS: dict[ChainField, str] = {
    ChainField.BID: "Bid", ChainField.MID: "Mid", ChainField.ASK: "Ask", ChainField.IV: "IV",
    ChainField.DELTA: "Delta", ChainField.GAMMA: "Gamma", ChainField.THETA: "Theta", ChainField.VEGA: "Vega",
    ChainField.VOLUME: "Volume", ChainField.OI: "OI", ChainField.BID_SIZE: "Bid sz", ChainField.ASK_SIZE: "Ask sz",
    ChainField.THETA_CLOSE: "Θ close"}
FIELD_HELP: dict[ChainField, str] = {
    ChainField.BID: "bid (index points)", ChainField.MID: "mid = (bid + ask) / 2 (index points)",
    ChainField.ASK: "ask (index points)",
    ChainField.IV: "implied vol of the mid, forward implied per expiry; italic = taken from the OTM side or "
                   "the fitted smile where the quote pins no time value",
    ChainField.DELTA: "delta per 1 index point", ChainField.GAMMA: "gamma: delta change per 1 index point",
    ChainField.THETA: "theta per calendar day (index points)", ChainField.VEGA: "vega per 1 vol point",
    ChainField.VOLUME: "volume today (contracts)", ChainField.OI: "open interest (contracts)",
    ChainField.BID_SIZE: "bid size (contracts)", ChainField.ASK_SIZE: "ask size (contracts)",
    ChainField.THETA_CLOSE: "theta to the close: value change from now to today's 16:00 ET close at a fixed "
                            "forward and IV (index points; a 0DTE option goes to intrinsic)"}
_SIDE_NAME = {CALL: "call", 1: "put"}
_FORMATS: dict[ChainField, str] = {
    ChainField.VOLUME: "{:,.0f}", ChainField.OI: "{:,.0f}", ChainField.IV: "{:.2%}", ChainField.DELTA: "{:+.3f}",
    ChainField.GAMMA: "{:.4f}", ChainField.IV_BID: "{:.2%}", ChainField.IV_ASK: "{:.2%}",
    ChainField.BID_SIZE: "{:,.0f}", ChainField.ASK_SIZE: "{:,.0f}"}
NA = "–"


def strike_text(k: float) -> str:
    return f"{k:,.0f}" if k == int(k) else f"{k:,.2f}"


def fmt(field: ChainField, v: float) -> str:
    return NA if v != v else _FORMATS.get(field, "{:,.2f}").format(v)


def formatter(field: ChainField | None) -> Callable[[float], str]:
    """The cell formatter of a column (``None`` = the strike column)."""
    if field is None:
        return strike_text
    pattern = _FORMATS.get(field, "{:,.2f}").format
    if field is ChainField.DELTA:  # a delta rounded to zero has no sign (a put showing "+0.000" reads wrong)
        return lambda v: NA if v != v else pattern(v) if v else "0.000"
    return lambda v: NA if v != v else pattern(v)


def served_text(side: int, source: int, why: int, reason: int) -> str:
    """One tooltip line saying where a quote's IV comes from ("" for its own solved IV)."""
    # Imported lazily (scipy-heavy package): only needed once a tooltip is shown.
    from spx_core.surface.served import SUBSTITUTION_TEXT, IVSource, Substitution

    if source == IVSource.QUOTE:
        return ""
    because = SUBSTITUTION_TEXT.get(Substitution(why), "") if why else ""
    if source == IVSource.NONE:
        return f"no IV: {because or reason_text(reason)}"
    other = "put" if side == CALL else "call"
    head = f"IV from the {other} at the same strike" if source == IVSource.OTM_SIDE else "IV from fitted surface"
    return f"{head}: {because}" if because else head


def reason_text(code: int) -> str:
    # Imported lazily: the pricing package is only needed once a tooltip is shown.
    from spx_core.pricing.iv import IVReason

    try:
        return IVReason(code).name.lower().replace("_", " ")
    except ValueError:
        return f"reason code {code}"


def header_text(field: ChainField | None) -> str:
    return "Strike" if field is None else FIELD_LABELS[field]


def widest_texts(block: ExpiryBlock | None, columns: Columns, lo: int = 0, hi: int | None = None) -> list[list[str]]:
    """Per column, the formatted values that can be its widest text over strikes ``[lo, hi)``.

    Text length grows with magnitude, so the widest value is the largest or the smallest one (the
    sign counts); with "–" for n/a that is three candidates per column, from two vectorized passes.
    """
    if block is None or not len(block.strikes):
        return [[NA] for _ in columns]
    v = block.values[:, lo:hi, :]
    high, low = np.fmax.reduce(v, axis=1), np.fmin.reduce(v, axis=1)  # (2, fields), NaN only if all NaN
    strikes = block.strikes[lo:hi]
    out = []
    for side, field in columns:
        f = formatter(field)
        if field is None:
            out.append([f(float(strikes.max())), f(float(strikes.min()))] if len(strikes) else [NA])
        else:
            out.append([f(float(high[side, field])), f(float(low[side, field])), NA])
    return out


def tsv(cells: list[list[str]]) -> str:
    """Rows of cell texts as tab-separated lines (what spreadsheets paste as a block)."""
    return "\n".join("\t".join(row) for row in cells)


def csv_header(columns: Columns) -> list[str]:
    """Machine-readable column names: ``call_bid``, ``strike``, ``put_iv``..."""
    names = ["root", "expiry"]
    for side, field in columns:
        names.append("strike" if field is None else f"{_SIDE_NAME[side]}_{field.name.lower()}")
    names += ["call_iv_source", "put_iv_source"]
    return names


def csv_rows(block: ExpiryBlock, columns: Columns, lo: int, hi: int) -> list[list[str]]:
    """Strikes ``[lo, hi)`` of the block as CSV rows: plain numbers at the shown precision (IV as a fraction)."""
    from spx_core.surface.served import IVSource

    rows = []
    for k in range(lo, hi):
        row = [block.root.value, block.expiry.isoformat()]
        for side, field in columns:
            v = float(block.strikes[k]) if field is None else float(block.values[side, k, field])
            decimals = 2 if field is None else FIELD_DECIMALS[field]
            row.append("" if v != v else f"{v:.{decimals}f}")
        row += [IVSource(int(block.source[s, k])).name.lower() for s in (0, 1)]
        rows.append(row)
    return rows


def write_csv(path: str | Path, header: list[str], rows: list[list[str]]) -> None:
    """Write atomically: a failed export leaves the old file (or none), never a truncated one.

    Raises:
        OSError: the folder cannot be written (the message names the path).
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            writer.writerows(rows)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
