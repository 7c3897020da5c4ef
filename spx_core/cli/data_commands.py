"""``spx-data`` data commands: import, snapshots, export (``simulate`` is in :mod:`.simulate_command`).

Scripts depend on these interfaces; keep them exactly::

    spx-data import --format {cboe-datashop,cboe-delayed,lean-minute,databento,daily-bars,historical-option-data}
        --db PATH [--json] FILE...
    spx-data snapshots --db PATH [--json]
    spx-data export --db PATH --snapshot ID --csv OUT
    spx-data simulate --db PATH --seed N --minutes M [--start ISO]

``--db`` may be left out: ``$SPX_TERMINAL_DB``, then the user data folder's database is used. Read
commands (snapshots, export) refuse a database file that does not exist.
``snapshots`` lists every stored snapshot, a simulated session's SPY companions included; when several
underlyings are stored it also says how many of each on stderr (stdout's table keeps its columns; the
``--json`` rows name their ``underlying``).
``import`` also takes ``--root {SPX,SPXW}`` (cboe-datashop only; see that importer's docstring) and
``--time ISO`` (cboe-delayed only: the snapshot time when the file's "Date:" line is missing or unreadable)
and ``--symbol SYM`` (daily-bars only). Without ``--format``, files whose header is a daily OHLCV one
(a date and a close column) import as daily-bars, files whose header is the vendors' end-of-day option
layout (underlying_last, optionroot, quotedate, ...) as historical-option-data; any other file needs ``--format``.
Exit codes: 0 success (every file imported or was a duplicate), 1 a file failed or a command could not
complete, 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, TextIO

from spx_core.cli.helpers import (
    DbAccess,
    UsageError,
    add_db_option,
    add_snapshot_option,
    command,
    open_store,
    output_file,
    parse_iso_time,
)

__all__ = ["register", "cmd_import", "cmd_snapshots", "cmd_export", "snapshot_frame"]

_FORMATS = ("cboe-datashop", "cboe-delayed", "lean-minute", "databento", "daily-bars", "historical-option-data")
_SHOWN_REJECTIONS = 20
_EXPORT_COLUMNS = ("root", "expiry", "settlement", "strike", "right", "bid", "ask", "last", "bid_size",
                   "ask_size", "volume", "open_interest", "quote_time", "vendor_iv", "vendor_delta",
                   "flags", "flag_names")


def register(subparsers: Any) -> None:
    """Add the data commands to the ``spx-data`` parser."""
    p = subparsers.add_parser("import", help="import market data files into the database",
                              description="Import files (each atomic: staged, then published in one commit; "
                                          "already-imported files are skipped as duplicates).")
    p.add_argument("--format", choices=_FORMATS, dest="fmt",
                   help="file format (may be left out for daily OHLCV and historical-option-data CSVs: "
                        "detected from the header)")
    add_db_option(p)
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout instead of the report")
    p.add_argument("--root", choices=("SPX", "SPXW"),
                   help="cboe-datashop only: the root of every row (default: root column, file name, expiry rule)")
    p.add_argument("--time", metavar="ISO", help="cboe-delayed only: the snapshot time when the file's Date line is "
                                                 "missing or unreadable, e.g. 2025-10-01T16:15 (naive = US/Eastern)")
    p.add_argument("--symbol", help="daily-bars only: store the bars under this symbol (default: from the "
                                    "file name, sp500 -> SPX, vix -> VIX)")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(func=cmd_import)

    p = subparsers.add_parser("snapshots", help="list stored chain snapshots")
    add_db_option(p)
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cmd_snapshots)

    p = subparsers.add_parser("export", help="write one snapshot's quotes (with flags) as CSV")
    add_db_option(p)
    add_snapshot_option(p)
    p.add_argument("--csv", required=True, metavar="OUT", help="output CSV file ('-' for stdout)")
    p.set_defaults(func=cmd_export)


# --- import ------------------------------------------------------------------------------------------
def _detect_format(args: argparse.Namespace) -> None:
    """Without --format: daily OHLCV and historical-option-data CSVs are recognised by their header (all the
    files must be of one of them); anything else must say its format."""
    if args.fmt is not None:
        return
    from spx_core.marketdata.importers.daily_bars import looks_like_daily_bars
    from spx_core.marketdata.importers.historical_option_data import looks_like_historical_option_data

    for fmt, looks_like in (("historical-option-data", looks_like_historical_option_data),
                            ("daily-bars", looks_like_daily_bars)):
        if all(looks_like(f) for f in args.files):
            args.fmt = fmt
            return
    odd = next((f for f in args.files if not looks_like_daily_bars(f) and not looks_like_historical_option_data(f)),
               None)
    what = f"{odd} is not a readable daily OHLCV or historical-option-data CSV" if odd else \
        "the files mix daily OHLCV and historical-option-data CSVs (import each kind separately)"
    raise UsageError(f"--format is required: {what} (choose one of {', '.join(_FORMATS)})")


def _import_options(args: argparse.Namespace) -> Any:
    _detect_format(args)
    if args.symbol is not None:
        if args.fmt != "daily-bars":
            raise UsageError(f"--symbol applies to --format daily-bars only (the {args.fmt} files name their "
                             f"underlying)")
        if not args.symbol.strip():
            raise UsageError("--symbol must not be empty")
        from spx_core.marketdata.importers.daily_bars import DailyBarsOptions

        return DailyBarsOptions(symbol=args.symbol)
    if args.root is not None and args.fmt != "cboe-datashop":
        raise UsageError(f"--root applies to --format cboe-datashop only (the {args.fmt} files name their root)")
    if args.time is not None:
        if args.fmt != "cboe-delayed":
            raise UsageError(f"--time applies to --format cboe-delayed only (the {args.fmt} files carry their times)")
        from spx_core.marketdata.importers.cboe_delayed import DelayedOptions

        return DelayedOptions(time=parse_iso_time(args.time, option="--time"))
    if args.root is None:
        return None
    from spx_core.marketdata.importers.cboe_datashop import DataShopOptions

    return DataShopOptions(root=args.root)


def _import(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from spx_core.marketdata.importers import import_files

    options = _import_options(args)
    store = open_store(args.db_path, create=True)
    sizes = {str(Path(f)): _size(f) for f in args.files}
    try:
        with tqdm(total=sum(sizes.values()), unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
                  desc="import", leave=False) as bar:
            done: dict[str, int] = {}

            def progress(path: str, n: int, total: int) -> None:
                bar.update(n - done.get(path, 0))
                done[path] = n
                bar.set_postfix_str(Path(path).name, refresh=False)

            reports = import_files(store, args.files, args.fmt, progress=progress, options=options)
    finally:
        store.close()
    if args.json:
        json.dump({"files": [r.to_dict() for r in reports]}, sys.stdout)
        sys.stdout.write("\n")
    else:
        _print_import_report(reports, sys.stdout)
    return 0 if all(r.status.value in ("imported", "duplicate") for r in reports) else 1


def _size(path: str) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0


def _print_import_report(reports: list, out: TextIO) -> None:
    for r in reports:
        name = r.path
        if r.status.value == "imported":
            extra = "".join(f", {n} {what}" for n, what in ((r.bars, "bars"), (r.instruments, "instruments")) if n)
            out.write(f"imported   {name}: {r.rows_read} rows read, {r.quotes_stored} quotes in "
                      f"{r.snapshots} snapshot{'s' if r.snapshots != 1 else ''}{extra}, "
                      f"{len(r.rejected)} rejected\n")
        elif r.status.value == "duplicate":
            out.write(f"duplicate  {name}: already imported (sha256 {r.sha256[:16]}...); nothing done\n")
        else:
            out.write(f"failed     {name}: {r.error}\n")
        out.writelines(f"    {name}:{rej.line}: {rej.reason}\n" for rej in r.rejected[:_SHOWN_REJECTIONS])
        if len(r.rejected) > _SHOWN_REJECTIONS:
            out.write(f"    ... and {len(r.rejected) - _SHOWN_REJECTIONS} more rejected rows (use --json for all)\n")
    counts = {s: sum(r.status.value == s for r in reports) for s in ("imported", "duplicate", "failed")}
    out.write(f"{len(reports)} file{'s' if len(reports) != 1 else ''}: {counts['imported']} imported, "
              f"{counts['duplicate']} duplicate, {counts['failed']} failed\n")


# --- snapshots ---------------------------------------------------------------------------------------
def _snapshots(args: argparse.Namespace) -> int:
    store = open_store(args.db_path, create=False)
    try:
        infos = store.list_snapshots()
    finally:
        store.close()
    if args.json:
        rows = [{"id": i.id, "time": i.time.isoformat(), "underlying": i.underlying,
                 "underlying_price": _json_float(i.underlying_price), "expiries": i.n_expiries,
                 "quotes": i.n_quotes, "checksum": i.checksum, "source": i.source, "session": i.session}
                for i in infos]
        json.dump({"snapshots": rows}, sys.stdout)
        sys.stdout.write("\n")
        return 0
    if not infos:
        print("no snapshots stored (import files with `spx-data import` or record with `spx-data simulate`)")
        return 0
    from spx_core.domain.calendar import ET

    header = ("id", "time (ET)", "underlying", "expiries", "quotes", "checksum")
    rows = [(str(i.id), i.time.astimezone(ET).strftime("%Y-%m-%d %H:%M:%S"), _fmt_price(i.underlying_price),
             str(i.n_expiries), str(i.n_quotes), i.checksum) for i in infos]
    widths = [max(len(r[k]) for r in [header, *rows]) for k in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(c.rjust(w) if k in (0, 2, 3, 4) else c.ljust(w) for k, (c, w) in
                        enumerate(zip(r, widths, strict=True))).rstrip())
    _per_underlying(infos)
    return 0


def _per_underlying(infos: list[Any]) -> None:
    """With several underlyings stored (a simulated session's SPY companions), say how many of each on
    stderr: the table on stdout keeps its columns (its "underlying" is the price), scripts parse it."""
    counts: dict[str, int] = {}
    for i in infos:
        counts[i.underlying] = counts.get(i.underlying, 0) + 1
    if len(counts) > 1:
        per = ", ".join(f"{name} {n}" for name, n in sorted(counts.items()))
        print(f"{len(infos)} snapshots by underlying: {per} (--json names each row's underlying)",
              file=sys.stderr)


def _json_float(x: float) -> float | None:
    return None if not math.isfinite(x) else x


def _fmt_price(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.2f}"


# --- export ------------------------------------------------------------------------------------------
def _export(args: argparse.Namespace) -> int:
    store = open_store(args.db_path, create=False)
    try:
        snap = store.load_snapshot(args.snapshot)
    finally:
        store.close()
    frame = snapshot_frame(snap)
    with output_file(args.csv) as out:
        frame.to_csv(out, index=False, na_rep="")
    if args.csv != "-":
        print(f"wrote {len(frame)} quotes of snapshot {args.snapshot} ({snap.time.isoformat()}, "
              f"checksum {snap.checksum}) to {args.csv}", file=sys.stderr)
    return 0


def snapshot_frame(snap: Any):
    """One row per quote: contract, market columns, quote time (ISO, UTC), flag bits and flag names."""
    import numpy as np
    import pandas as pd

    from spx_core.domain import describe_flags
    from spx_core.domain.contracts import ROOTS, settlement_for_root

    c = snap.columns
    roots = np.array([r.value for r in ROOTS], dtype=object)[c["root"]]
    settle = np.array([settlement_for_root(r).value for r in ROOTS], dtype=object)[c["root"]]
    names = {int(f): describe_flags(int(f)) for f in np.unique(c["flags"])}
    frame = pd.DataFrame({
        "root": roots, "expiry": np.datetime_as_string(c["expiry"], unit="D"), "settlement": settle,
        "strike": c["strike"], "right": np.where(c["is_call"], "C", "P"),
        "bid": c["bid"], "ask": c["ask"], "last": c["last"], "bid_size": c["bid_size"], "ask_size": c["ask_size"],
        "volume": c["volume"], "open_interest": c["open_interest"],
        "quote_time": pd.to_datetime(c["quote_time"], unit="ns", utc=True).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "vendor_iv": c["vendor_iv"], "vendor_delta": c["vendor_delta"], "flags": c["flags"].astype(np.int64),
        "flag_names": [names[int(f)] for f in c["flags"]],
    })
    return frame[list(_EXPORT_COLUMNS)]


cmd_import = command(_import, db=DbAccess.WRITE)
cmd_snapshots = command(_snapshots, db=DbAccess.READ)
cmd_export = command(_export, db=DbAccess.READ)
