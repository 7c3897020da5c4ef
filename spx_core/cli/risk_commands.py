"""``spx-data risk`` and ``spx-data decisions``: the stored book's risk, and the automation's decisions.

Interface (scripts depend on it; keep it exactly)::

    spx-data risk --db PATH [--json] [--starting-cash USD]
    spx-data decisions --db PATH [--json] [--since YYYY-MM-DD]

``risk`` values the stored open positions on the latest stored snapshot of each underlying (the valuation
instant ``as_of`` is the latest of them; nothing reads the wall clock). ``risk --json`` prints one object::

    {"as_of": ISO UTC | null,
     "snapshots": [{"underlying", "id", "time", "checksum"}],
     "positions": [{"root", "expiry", "strike", "right", "quantity"}],          # the legs valued
     "greeks": {"total": GREEKS, "by_expiry": [{"expiry", **GREEKS}]},
     "limits": {"profile": name, "usage": [{"name", "label", "value", "limit", "pct", "unit"}]},
     "var": {"history": text | null,
             "historical": {"var95", "es95", "var99", "es99", "n"} | null,
             "parametric": {"var95", "es95", "var99", "es99", "n"} | null},
     "stress": [{"name", "pnl"}],
     "vix": points | null,
     "notes": [text]}

GREEKS = ``{"delta", "delta_usd_pt", "delta_usd_1pct", "gamma_usd_1pct", "vega_usd_volpt", "theta_usd_day"}``
(SPX-equivalent contracts; dollars per SPX point, per 1% move, of gamma P&L per 1% move, per vol point, per day:
:mod:`spx_core.risk.greeks`). Limit use is the active limit profile's (:mod:`spx_core.risk.usage`); its %-of-net-
liquidation figures need the account, which needs ``--starting-cash`` (the paper account's cash before any
trade): without it they are null. VaR/ES are 1-day dollars, positive = loss (:mod:`spx_core.risk.var`), from
the daily history up to ``as_of`` (null with a note when there is too little). ``stress`` lists each named
scenario's P&L in dollars (:func:`spx_core.risk.scenarios.named_scenarios`). A number that cannot be computed is
null. A held contract its latest snapshot does not list is left out of every figure and named in ``notes``.

``decisions --json`` prints ``{"decisions": [{"time", "strategy", "action", "reasons", "snapshot_id",
"snapshot_checksum", "config_hash", "limit_profile", "order_ref"}]}``, oldest first; ``time`` ISO 8601 UTC,
``action`` "TRADE" | "SKIP", ``reasons`` a list of sentences; ``--since`` keeps those at or after midnight
US/Eastern of that date.

Exit codes: 0 reported (possibly nothing), 1 the database failed (one line on stderr), 2 bad usage.
"""

from __future__ import annotations

import argparse
import math
from datetime import date, datetime, time
from typing import Any

from spx_core.cli.helpers import (
    DbAccess,
    LatestSnapshots,
    UsageError,
    add_db_option,
    command,
    contract_keys,
    dump_json,
    fmt_num,
    iso_utc,
    json_num,
    open_store,
    print_table,
)

__all__ = ["cmd_decisions", "cmd_risk", "decisions_payload", "register", "risk_payload"]

GREEKS = ("delta", "delta_usd_pt", "delta_usd_1pct", "gamma_usd_1pct", "vega_usd_volpt", "theta_usd_day")
_FIGURES = ("var95", "es95", "var99", "es99")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("risk", help="the stored book's greeks, limit use, VaR/ES and named stresses")
    add_db_option(p)
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--starting-cash", type=float, metavar="USD", default=None,
                   help="the paper account's cash before any trade (for the %%-of-net-liq limits)")
    p.set_defaults(func=cmd_risk)

    p = subparsers.add_parser("decisions", help="the automation's trade decisions with their reasons")
    add_db_option(p)
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--since", metavar="YYYY-MM-DD", help="only decisions on or after this (US/Eastern) date")
    p.set_defaults(func=cmd_decisions)


# --- risk ---------------------------------------------------------------------------------------------------
def _valued_book(store: Any, view: LatestSnapshots, positions: list[Any], cache: dict) -> tuple[list, Any, list]:
    """(legs listed in their latest snapshot, the Market of those snapshots, notes on the legs left out)."""
    from spx_core.risk.greeks import book_of
    from spx_core.risk.limits import view_market
    from spx_core.strategies.market import Market, locate
    from spx_core.strategies.structure import underlying_of

    book = book_of(positions)
    underlyings = sorted({underlying_of(c.root) for c, _ in book} | ({"SPX"} if view.snapshot("SPX") else set()))
    have = {u for u in underlyings if view.snapshot(u) is not None}
    market = view_market(view, have, cache) if have else Market()
    legs, notes = [], []
    for c, q in book:
        u = underlying_of(c.root)
        if u not in have:
            notes.append(f"{q:+d} {c}: no stored {u} snapshot; left out of the greeks, VaR and stresses, "
                         f"and the limits' book figures are unknown")
        elif locate(view.snapshot(u), [c])[0] < 0:
            notes.append(f"{q:+d} {c}: not listed in the latest {u} snapshot; left out of the greeks, VaR and "
                         f"stresses, and the limits' book figures are unknown")
        else:
            legs.append((c, q))
    return legs, _with_surfaces(market, legs, notes), notes


def _with_surfaces(market: Any, legs: list, notes: list[str]) -> Any:
    """The market with a fitted surface for each underlying where a held leg's mid IV did not solve (a zero bid,
    a crossed quote), so that leg is valued on the surface instead of making every figure NaN."""
    import numpy as np

    from spx_core.strategies.market import Market, locate
    from spx_core.strategies.structure import underlying_of
    from spx_core.surface import fit_surface

    surfaces = {}
    for u, chain in market.chains.items():
        held = [c for c, _ in legs if underlying_of(c.root) == u]
        if held and not np.isfinite(chain.civ.iv_mid[locate(chain.snapshot, held)]).all():
            try:
                surfaces[u] = fit_surface(chain.civ)
            except ValueError as exc:
                notes.append(f"no {u} surface for the legs without a mid IV: {exc}")
    if not surfaces:
        return market
    return Market.of(*(ch.civ for ch in market.chains.values()), surfaces=surfaces)


def _limits(store: Any, repo: Any, view: LatestSnapshots, starting_cash: float | None, now_ns: int, cache: dict
            ) -> tuple[Any, list[Any], list[str]]:
    from spx_core.risk.state import portfolio_state
    from spx_core.risk.usage import limit_usage
    from spx_core.storage.orders_repo import et_day_start_ns
    from spx_core.storage.risk_repo import RiskRepository

    profile = RiskRepository(store).active_profile()
    day_start = et_day_start_ns(now_ns)
    trades = repo.trades(since_ns=day_start)
    account, notes = None, []
    if starting_cash is not None:
        from spx_core.portfolio.account import account_summary

        account = account_summary(starting_cash, repo.positions(closed_since_ns=0), trades, view, day_start)
    else:
        notes.append("no --starting-cash: net liquidation unknown, %-of-net-liq limits not computed")
    state = portfolio_state(repo, account=account, day_start_ns=day_start, trades=trades)
    return profile, limit_usage(profile, state, view, cache=cache), notes


def _risk(args: argparse.Namespace) -> int:
    from spx_core.risk.history import HistoryError, return_history
    from spx_core.risk.report import risk_report
    from spx_core.storage.orders_repo import OrderRepository

    if args.starting_cash is not None and not (math.isfinite(args.starting_cash) and args.starting_cash > 0):
        raise UsageError(f"--starting-cash {args.starting_cash!r} must be a positive number of dollars")
    store = open_store(args.db_path, create=False)
    try:
        repo = OrderRepository(store)
        view = LatestSnapshots(store)
        cache: dict = {}
        open_positions = [p for p in repo.positions() if p.is_open]
        legs, market, notes = _valued_book(store, view, open_positions, cache)
        now_ns = view.now_ns()
        history = None
        try:
            history = return_history(store, end_ns=now_ns or None)
        except HistoryError as exc:
            notes.append(f"VaR/ES not computed: {exc}")
        profile, usage, limit_notes = _limits(store, repo, view, args.starting_cash, now_ns, cache)
        report = risk_report(legs, market, history)
        snaps = [(view.infos[u], view.snapshot(u).time_ns) for u in sorted(market.chains)]
    finally:
        store.close()
    own = [n for n in report.notes if not n.startswith(("no daily history", "history: "))]
    payload = risk_payload(report, legs, snaps, profile, usage, history, now_ns, [*notes, *limit_notes, *own])
    if args.json:
        dump_json(payload)
    else:
        _print_risk(payload)
    return 0


def _greeks(g: Any) -> dict[str, float | None]:
    return {k: json_num(getattr(g, k)) for k in GREEKS}


def _var(v: Any) -> dict[str, Any] | None:
    return None if v is None else {**{k: json_num(getattr(v, k)) for k in _FIGURES}, "n": v.n}


def risk_payload(report: Any, legs: list, snaps: list, profile: Any, usage: list, history: Any, now_ns: int,
                 notes: list[str]) -> dict[str, Any]:
    """The ``risk --json`` document (see the module docstring)."""
    return {
        "as_of": iso_utc(now_ns) if now_ns else None,
        "snapshots": [{"underlying": s.underlying, "id": s.id, "time": iso_utc(t), "checksum": s.checksum}
                      for s, t in snaps],
        "positions": [{**contract_keys(c), "quantity": q} for c, q in legs],
        "greeks": {"total": _greeks(report.greeks.total),
                   "by_expiry": [{"expiry": e.isoformat(), **_greeks(g)} for e, g in report.greeks.by_expiry.items()]},
        "limits": {"profile": profile.name,
                   "usage": [{"name": u.name, "label": u.label, "value": json_num(u.value), "limit": json_num(u.limit),
                              "pct": json_num(u.pct), "unit": u.unit} for u in usage]},
        "var": {"history": None if history is None else history.source,
                "historical": _var(report.historical), "parametric": _var(report.parametric)},
        "stress": [{"name": k, "pnl": json_num(v)} for k, v in report.named.items()],
        "vix": json_num(report.vix),
        "notes": list(notes),
    }


def _print_risk(p: dict[str, Any]) -> None:
    print(f"book of {len(p['positions'])} leg(s) valued at {p['as_of'] or 'n/a (no stored snapshot)'}")
    head = ("expiry", "delta", "delta $/pt", "delta $/1%", "gamma $/1%", "vega $/pt", "theta $/day")
    rows = [(r["expiry"], *(fmt_num(r[k]) for k in GREEKS)) for r in p["greeks"]["by_expiry"]]
    rows.append(("total", *(fmt_num(p["greeks"]["total"][k]) for k in GREEKS)))
    print_table(head, rows, right=set(range(1, 7)))
    print(f"\nlimits (profile {p['limits']['profile']!r})")
    print_table(("limit", "what", "value", "limit", "use %"),
           [(u["name"], u["label"], fmt_num(u["value"]), fmt_num(u["limit"], "g"), fmt_num(u["pct"], ".1f"))
            for u in p["limits"]["usage"]], right={2, 3, 4})
    print("\n1-day VaR / ES, dollars of loss" + (f" ({p['var']['history']})" if p["var"]["history"] else ""))
    print_table(("method", "VaR 95", "ES 95", "VaR 99", "ES 99", "days"),
           [(name, *(fmt_num(v[k]) for k in _FIGURES), str(v["n"])) for name, v in
            (("historical", p["var"]["historical"]), ("parametric", p["var"]["parametric"])) if v is not None]
           or [("n/a", "-", "-", "-", "-", "-")], right={1, 2, 3, 4, 5})
    print("\nnamed stresses, P&L $" + (f" (VIX {p['vix']:.2f})" if p["vix"] is not None else ""))
    print_table(("scenario", "P&L $"), [(s["name"], fmt_num(s["pnl"])) for s in p["stress"]], right={1})
    for note in p["notes"]:
        print(f"note: {note}")


cmd_risk = command(_risk, db=DbAccess.READ)


# --- decisions ----------------------------------------------------------------------------------------------
def _since_ns(text: str | None) -> int | None:
    if text is None:
        return None
    from spx_core.domain.calendar import ET, to_ns

    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--since {text!r} is not a date; write it as YYYY-MM-DD (e.g. 2024-03-04)") from None
    return to_ns(datetime.combine(day, time(0), tzinfo=ET))


def decisions_payload(decisions: list[Any]) -> dict[str, Any]:
    """The ``decisions --json`` document (see the module docstring)."""
    return {"decisions": [{
        "time": iso_utc(d.time_ns), "strategy": d.strategy, "action": d.action, "reasons": list(d.reasons),
        "snapshot_id": d.snapshot_id, "snapshot_checksum": d.snapshot_checksum, "config_hash": d.config_hash or None,
        "limit_profile": d.limit_profile or None, "order_ref": d.order_ref,
    } for d in decisions]}


def _decisions(args: argparse.Namespace) -> int:
    from spx_core.storage.orders_repo import OrderRepository

    since = _since_ns(args.since)
    store = open_store(args.db_path, create=False)
    try:
        decisions = OrderRepository(store).decisions(since_ns=since)
    finally:
        store.close()
    if args.json:
        dump_json(decisions_payload(decisions))
        return 0
    if not decisions:
        print("no trade decisions stored" + (f" since {args.since}" if args.since else "")
              + " (the automation records one per strategy run)")
        return 0
    head = ("time", "strategy", "action", "profile", "snapshot", "checksum", "config", "order", "reasons")
    rows = [(iso_utc(d.time_ns), d.strategy, d.action, d.limit_profile or "-",
             "-" if d.snapshot_id is None else str(d.snapshot_id), (d.snapshot_checksum or "-")[:12],
             (d.config_hash or "-")[:12], d.order_ref or "-", "; ".join(d.reasons)) for d in decisions]
    print_table(head, rows, right={4})
    return 0


cmd_decisions = command(_decisions, db=DbAccess.READ)
