"""``spx-data scan``: the spread scanner over one stored snapshot.

Interface (scripts depend on it; keep it exactly):
    spx-data scan --db PATH --snapshot ID --structure {put-credit-vertical,call-credit-vertical,iron-condor,
        put-debit-vertical,call-debit-vertical,iron-butterfly,butterfly,bwb,calendar}
        [--short-delta X | A-B] [--width W[,W...]] [--dte A-B] [--top N] [--json]
    ``--short-delta 0.20`` takes, per expiry, the short strike nearest that absolute delta; ``0.10-0.30``
    every short strike in the range. ``--json`` prints one object:
    {"snapshot": id, "checksum": "...", "candidates": [{"structure", "expiry", "legs": [{"root", "expiry",
     "strike", "right", "ratio"}], "credit_mid", "credit_natural", "width", "max_loss", "pop", "ev",
     "edge_volpts", "score", ...}], ...}
    prices in index points per 1 unit (x100 for dollars), ratio negative for short legs, credits positive
    (a debit is a negative credit); numbers that are unknown are null. Extra keys may be added, never removed.
Optional filters: --min-pop P, --min-credit-per-width X, --max-leg-spread PTS, --max-package-spread PTS,
--min-open-interest N, --allow-flagged.
Market gate (the seed plans' entry filters, on the market state at the snapshot from the index bars stored in the
same database, as the Market panel computes it): --iv-rank-min X [--iv-rank-source vix|atm],
--regime NAME[,NAME...], --vix A-B. A closed gate scans nothing: exit 1, the reason on stderr and, with --json,
``"market": {"ok": false, "reason": ...}`` with no candidates. Missing data (no VIX bars) closes the gate.

Exit codes: 0 candidates found, 1 none found (the one-line reason on stderr says which filter removed
them; with --json the object is still printed, its "reason" saying the same) or the snapshot could not be
read, 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from spx_core.cli.helpers import (
    DbAccess,
    UsageError,
    add_db_option,
    add_snapshot_option,
    command,
    open_store,
)

__all__ = ["cmd_scan", "format_table", "parse_days", "parse_delta", "parse_widths", "register"]

_STRUCTURES = ("put-credit-vertical", "call-credit-vertical", "iron-condor", "put-debit-vertical",
               "call-debit-vertical", "iron-butterfly", "butterfly", "bwb", "calendar")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("scan", help="scan a stored snapshot for spreads, scored under the fitted surface")
    add_db_option(p)
    add_snapshot_option(p)
    p.add_argument("--structure", required=True, choices=_STRUCTURES, help="what to build")
    p.add_argument("--short-delta", metavar="X|A-B",
                   help="absolute delta of the short leg: X = the nearest strike per expiry, A-B = every strike "
                        "in the range (default per structure, e.g. 0.20 for verticals)")
    p.add_argument("--width", metavar="W[,W...]", help="wing widths in index points (default 25)")
    p.add_argument("--dte", metavar="A-B", help="days to expiry from the snapshot's date, inclusive (default 0-45)")
    p.add_argument("--top", type=int, default=10, metavar="N", help="best N candidates to show (default 10)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--min-pop", type=float, metavar="P", help="least probability of profit (0..1)")
    p.add_argument("--min-credit-per-width", type=float, metavar="X", help="least mid credit / width")
    p.add_argument("--max-leg-spread", type=float, metavar="PTS", help="widest bid/ask on any leg (points)")
    p.add_argument("--max-package-spread", type=float, metavar="PTS", help="widest package bid/ask (points)")
    p.add_argument("--min-open-interest", type=int, metavar="N", help="least open interest on every leg")
    p.add_argument("--allow-flagged", action="store_true", help="keep legs whose quotes carry quality flags")
    gate = p.add_argument_group("market gate", "scan only when the market state at the snapshot passes "
                                "(index bars from `spx-data import sp500.csv.gz vix.csv.gz`)")
    gate.add_argument("--iv-rank-min", type=float, metavar="X", help="least IV rank (percent, 0-100)")
    gate.add_argument("--iv-rank-source", choices=("vix", "atm"), default="vix",
                      help="IV rank of the VIX history (default) or of our stored 30-day ATM IVs")
    gate.add_argument("--regime", metavar="NAME[,NAME...]",
                      help="allowed regimes, e.g. uptrend,range,calm (trend, VIX bucket, mixture state names)")
    gate.add_argument("--vix", metavar="A-B", help="VIX close between A and B (index points)")
    p.set_defaults(func=cmd_scan)


# --- option parsing (one-line usage errors) ------------------------------------------------------------------
def _number(text: str, option: str, example: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{option} {text!r} is not a number (e.g. {example})") from None
    if not math.isfinite(value):
        raise UsageError(f"{option} {text!r} must be a finite number (e.g. {example})")
    return value


def _split_range(text: str, option: str, example: str) -> tuple[str, str] | None:
    parts = text.strip().split("-")
    if len(parts) == 1:
        return None
    if len(parts) != 2 or not all(parts):
        raise UsageError(f"{option} {text!r} must be a number or a range A-B (e.g. {example})")
    return parts[0], parts[1]


def parse_delta(text: str | None) -> float | tuple[float, float] | None:
    """``0.20`` -> 0.2; ``0.10-0.30`` -> (0.1, 0.3); validated as absolute deltas."""
    if text is None:
        return None
    pair = _split_range(text, "--short-delta", "0.20 or 0.10-0.30")
    if pair is None:
        x = _number(text, "--short-delta", "0.20")
        if not 0 < x < 1:
            raise UsageError(f"--short-delta {text} must be an absolute delta between 0 and 1 (e.g. 0.20)")
        return x
    lo, hi = (_number(p, "--short-delta", "0.10-0.30") for p in pair)
    if not 0 < lo <= hi < 1:
        raise UsageError(f"--short-delta {text}: the range must satisfy 0 < A <= B < 1 (e.g. 0.10-0.30)")
    return (lo, hi)


def parse_widths(text: str | None) -> tuple[float, ...] | None:
    """``25`` or ``5,10,25`` -> widths in index points (each > 0)."""
    if text is None:
        return None
    widths = tuple(_number(p, "--width", "25 or 10,25") for p in text.split(","))
    if any(w <= 0 for w in widths):
        raise UsageError(f"--width {text}: every width must be positive index points (e.g. 25 or 10,25)")
    return widths


def parse_days(text: str | None) -> tuple[int, int] | None:
    """``3-7`` -> (3, 7); ``5`` -> (5, 5); whole days >= 0."""
    if text is None:
        return None
    pair = _split_range(text, "--dte", "0-45") or (text, text)
    days = []
    for p in pair:
        x = _number(p, "--dte", "0-45")
        if x != int(x) or x < 0:
            raise UsageError(f"--dte {text}: days must be whole numbers >= 0 (e.g. 0-45)")
        days.append(int(x))
    if days[0] > days[1]:
        raise UsageError(f"--dte {text}: the range must be low-high (e.g. 7-45)")
    return days[0], days[1]


def _params(args: argparse.Namespace):
    from spx_core.strategies.scanner_params import ScanParamsError, params_for

    if args.top < 1:
        raise UsageError(f"--top {args.top} must be 1 or more")
    try:
        return params_for(args.structure, short_delta=parse_delta(args.short_delta), widths=parse_widths(args.width),
                          dte=parse_days(args.dte), top=args.top, min_pop=args.min_pop,
                          min_credit_per_width=args.min_credit_per_width, max_leg_spread=args.max_leg_spread,
                          max_package_spread=args.max_package_spread, min_open_interest=args.min_open_interest,
                          allow_flagged=args.allow_flagged or None)
    except ScanParamsError as exc:
        raise UsageError(str(exc)) from None


def market_filter(args: argparse.Namespace):
    """The market gate the options ask for, or None when none of them is given."""
    if args.iv_rank_min is None and args.regime is None and args.vix is None:
        return None
    from spx_core.analytics.filters import IVRankSource, MarketFilter

    vix = None
    if args.vix is not None:
        pair = _split_range(args.vix, "--vix", "15-30")
        if pair is None:
            raise UsageError(f"--vix {args.vix!r} must be a range A-B of VIX levels (e.g. 15-30)")
        vix = tuple(_number(x, "--vix", "15-30") for x in pair)
    regimes = None if args.regime is None else frozenset(r.strip() for r in args.regime.split(",") if r.strip())
    try:
        return MarketFilter(iv_rank_min=args.iv_rank_min, iv_rank_source=IVRankSource(args.iv_rank_source),
                            regimes=regimes, vix_min=vix[0] if vix else None, vix_max=vix[1] if vix else None)
    except ValueError as exc:
        raise UsageError(f"market gate: {exc}") from None


def _market_gate(gate, store, snap, civ, surface) -> tuple[bool, str]:
    """(open, why) of ``gate`` on the market state at ``snap`` (bars stored before the snapshot's session)."""
    from spx_core.analytics.filters import IVRankSource
    from spx_core.analytics.iv_rank import stored_atm_iv_history
    from spx_core.analytics.market_state import market_state

    history = stored_atm_iv_history(store, snap.underlying) if gate.iv_rank_source is IVRankSource.ATM else None
    state = market_state(store.load_bars("SPX"), store.load_bars("VIX"), surface, civ=civ,
                         atm_iv_history=history)
    ok, why = gate.check(state)
    if why and state.notes:  # e.g. stale bars: the figure is from an earlier date, say which
        why = f"{why} ({'; '.join(state.notes)})"
    return ok, why


# --- the command -------------------------------------------------------------------------------------------
def _scan(args: argparse.Namespace) -> int:
    params = _params(args)  # usage errors before the database is opened
    gate = market_filter(args)
    from spx_core.strategies.scanner import scan
    from spx_core.surface import chain_iv, fit_surface

    store = open_store(args.db_path, create=False)
    try:
        snap = store.load_snapshot(args.snapshot)
        civ = chain_iv(snap)
        surface = fit_surface(civ)
        is_open, why = _market_gate(gate, store, snap, civ, surface) if gate is not None else (True, "")
    finally:
        store.close()
    if not is_open:
        if args.json:
            json.dump({"snapshot": args.snapshot, "checksum": snap.checksum, "candidates": [],
                       "market": {"ok": False, "reason": why}}, sys.stdout, indent=1, allow_nan=False)
            sys.stdout.write("\n")
        print(f"spx-data scan: market gate closed for snapshot {args.snapshot}: {why}", file=sys.stderr)
        return 1
    result = scan(snap, civ, surface, params)
    if args.json:
        json.dump(result.to_json(args.snapshot), sys.stdout, indent=1, allow_nan=False)
        sys.stdout.write("\n")
    else:
        print(format_table(result, args.snapshot, snap))
    if not result.candidates:
        print(f"spx-data scan: no {params.structure.value} candidates in snapshot {args.snapshot}: {result.reason}",
              file=sys.stderr)
        return 1
    return 0


def format_table(result, snapshot_id: int, snap) -> str:
    """The human-readable answer: a header line, then one row per candidate with units in the header."""
    from spx_core.domain.calendar import ET

    when = snap.time.astimezone(ET).strftime("%Y-%m-%d %H:%M ET")
    # minute-bar imports (Lean) carry no index price: say so as `spx-data snapshots` does, not "nan"
    price = f"{snap.underlying_price:.2f}" if math.isfinite(snap.underlying_price) else "index price n/a"
    head = (f"snapshot {snapshot_id} ({snap.underlying} {when}, {price}; checksum "
            f"{result.snapshot_checksum[:12]}): {result.params.structure.value}, {result.n_passed} of "
            f"{result.n_considered} candidates passed over {result.n_expiries} expiries")
    if not result.candidates:
        return head
    cols = ("#", "structure", "DTE", "credit mid", "natural", "width", "max loss", "POP %", "EV", "edge $",
            "edge vp", "score")
    rows = [cols]
    for i, c in enumerate(result.candidates, 1):
        rows.append((str(i), c.structure.name, str(c.dte), _f(c.credit_mid), _f(c.credit_natural), _f(c.width, 0),
                     _f(c.max_loss), _f(100 * c.pop, 1), _f(c.ev), _f(c.edge_usd, 0), _f(c.edge_volpts, 2),
                     _f(c.score, 4)))
    widths = [max(len(r[j]) for r in rows) for j in range(len(cols))]
    lines = ["  ".join(v.ljust(w) if j == 1 else v.rjust(w) for j, (v, w) in enumerate(zip(r, widths, strict=True)))
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    note = "prices, width, max loss and EV in index points per 1 unit (x100 = $); credits positive, debits negative"
    return "\n".join([head, *lines, note])


def _f(x: float, digits: int = 2) -> str:
    return "-" if not math.isfinite(x) else f"{x:.{digits}f}"


cmd_scan = command(_scan, db=DbAccess.READ)
