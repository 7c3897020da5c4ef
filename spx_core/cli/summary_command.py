"""``spx-data summary``: the automation's stored daily summaries (trades, P&L, win rate, skips per day and strategy).

Interface (scripts depend on it; keep it exactly)::

    spx-data summary --db PATH [--json | --csv] [--since YYYY-MM-DD] [--strategy NAME]

Lists the rows of the database's ``daily_summaries`` (the app stores each market day's rows while the automation
runs and at the close), by day then strategy; strategy ``""`` is the whole account (shown as ``(account)`` in the
table). ``--json`` prints one object::

    {"summaries": [{"day": "YYYY-MM-DD", "strategy", "trades_opened", "trades_closed", "wins", "losses",
                    "win_rate": 0..1 | null, "realized_pnl": $, "fees": $, "skips", "time": ISO UTC}]}

``win_rate`` is wins / trades closed (null when none closed); ``realized_pnl`` is dollars net of commissions and
fees of the trades closed that day (``fees`` the part of it they cost); ``time`` is the latest event counted.
``--csv`` prints the same rows as :func:`spx_core.automation.summary.summaries_csv` writes them (the Automation
panel's "Export CSV…"). ``--since`` keeps days on or after that date; ``--strategy`` one strategy ("" = the account).

Exit codes: 0 listed (possibly nothing), 1 the database failed (one line on stderr), 2 bad usage.
"""

from __future__ import annotations

import argparse
import math
import sys
from datetime import date
from typing import Any

from spx_core.cli.helpers import (
    DbAccess,
    UsageError,
    add_db_option,
    command,
    dump_json,
    fmt_num,
    iso_utc,
    json_num,
    open_store,
    print_table,
)

__all__ = ["cmd_summary", "register", "summary_payload"]

ACCOUNT = "(account)"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("summary", help="the automation's stored daily summaries (trades, P&L, win rate)")
    add_db_option(p)
    # not an argparse exclusive group: its error prints the usage too; ours is one line
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--csv", action="store_true", help="print the rows as CSV (as the panel's Export CSV); not with "
                                                      "--json")
    p.add_argument("--since", metavar="YYYY-MM-DD", help="only days on or after this (US/Eastern) date")
    p.add_argument("--strategy", metavar="NAME", help='only this strategy ("" = the whole account)')
    p.set_defaults(func=cmd_summary)


def summary_payload(rows: list[Any]) -> dict[str, Any]:
    """The ``summary --json`` document (see the module docstring)."""
    return {"summaries": [{
        "day": r.day.isoformat(), "strategy": r.strategy, "trades_opened": r.trades_opened,
        "trades_closed": r.trades_closed, "wins": r.wins, "losses": r.losses, "win_rate": json_num(r.win_rate),
        "realized_pnl": json_num(r.realized_pnl), "fees": json_num(r.fees), "skips": r.skips,
        "time": iso_utc(r.time_ns),
    } for r in rows]}


def _since(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--since {text!r} is not a date; write it as YYYY-MM-DD (e.g. 2024-03-04)") from None


def _summary(args: argparse.Namespace) -> int:
    from spx_core.automation.summary import summaries_csv
    from spx_core.storage.summary_repo import SummaryRepository

    if args.json and args.csv:
        raise UsageError("--json and --csv are two output formats; pass one of them (or neither for a table)")
    since = _since(args.since)
    store = open_store(args.db_path, create=False)
    try:
        rows = SummaryRepository(store).list(since=since, strategy=args.strategy)
    finally:
        store.close()
    if args.json:
        dump_json(summary_payload(rows))
        return 0
    if args.csv:
        sys.stdout.write(summaries_csv(rows))
        return 0
    if not rows:
        print("no daily summaries stored" + (f" since {args.since}" if args.since else "")
              + " (the app stores each market day's while the automation runs)")
        return 0
    head = ("day", "strategy", "opened", "closed", "wins", "losses", "win rate", "realized P&L", "fees", "skips")
    table = [(r.day.isoformat(), r.strategy or ACCOUNT, str(r.trades_opened), str(r.trades_closed), str(r.wins),
              str(r.losses), "-" if math.isnan(r.win_rate) else f"{r.win_rate:.0%}", fmt_num(r.realized_pnl, ",.2f"),
              fmt_num(r.fees, ",.2f"), str(r.skips)) for r in rows]
    print_table(head, table, right=set(range(2, 10)))
    return 0


cmd_summary = command(_summary, db=DbAccess.READ)
