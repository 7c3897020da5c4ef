"""Stream an end-of-day vendor file that holds many quote dates into one snapshot per date.

Both end-of-day layouts (Cboe DataShop and the vendors' historical-option-data CSV) are read the same way: CSV
chunks -> the format's own parse of a chunk -> rows grouped by quote date in a :class:`ChainBuffer` -> a date's
snapshot written as soon as a chunk ends on a later date (memory holds about one date's rows). Files must be
grouped by quote date (either order); rows of a date whose snapshot is already written are rejected with their line.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import date
from typing import Any

import numpy as np

from spx_core.marketdata.importers.base import FileSink
from spx_core.marketdata.importers.chains import ChainBuffer
from spx_core.marketdata.importers.parsing import RowErrors, read_csv_chunks

__all__ = ["stream_by_quote_date"]

#: ``parse(text, lines) -> (columns, quote dates (datetime64[D]), the format's extra per-row data, errors)``
ParseChunk = Callable[[Any, np.ndarray], tuple[dict[str, np.ndarray], np.ndarray, Any, RowErrors]]


def stream_by_quote_date(sink: FileSink, stream: io.TextIOBase, *, ncols: int, chunk_rows: int, parse: ParseChunk,
                         collect: Callable[[date, Any, np.ndarray], None],
                         flush: Callable[[ChainBuffer, date], None], again: Callable[[date], str]) -> None:
    """Read ``stream`` (positioned after the header) chunk by chunk; see the module docstring.

    Args:
        parse: the format's parse of one chunk (rows it rejects are marked in the returned ``RowErrors``).
        collect: ``collect(day, extra, selected)`` keeps the format's per-date extras (e.g. underlying prices)
            of the rows ``selected`` (a boolean mask over the chunk).
        flush: ``flush(buffer, day)`` writes ``day``'s snapshot (``buffer.pop(day, ...)``).
        again: the reject reason for a row of a date already written.
    """
    buffer = ChainBuffer()

    def bad_line(line: int, reason: str) -> None:
        sink.count_rows(1)
        sink.reject(line, reason)

    for lines, text in read_csv_chunks(stream, ncols=ncols, chunk_rows=chunk_rows, first_line=2,
                                       on_reject=bad_line, fields_hint=f"the header has {ncols}"):
        sink.count_rows(len(lines))
        cols, qdate, extra, errors = parse(text, lines)
        for qd in np.unique(qdate[~errors.bad]).tolist():
            if buffer.is_closed(qd):
                errors.mark(qdate == np.datetime64(qd, "D"), lambda i, qd=qd: again(qd))
        for line, reason in errors.rejections():
            sink.reject(line, reason)
        good = ~errors.bad
        last_date = qdate[good][-1] if good.any() else None
        for qd in np.unique(qdate[good]):
            sel = good & (qdate == qd)
            key = qd.astype(object)
            buffer.add(key, {k: v[sel] for k, v in cols.items()}, lines[sel])
            collect(key, extra, sel)
        for key in buffer.keys():
            if last_date is not None and np.datetime64(key, "D") != last_date:
                flush(buffer, key)
    for key in buffer.keys():
        flush(buffer, key)
