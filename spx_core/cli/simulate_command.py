"""``spx-data simulate``: record simulated snapshots, one per simulated minute.

Interface (scripts depend on it; keep it exactly)::

    spx-data simulate --db PATH --seed N --minutes M [--start ISO] [--session NAME] [--replace]

The session is named ``simulated:seed=N:<first snapshot time>`` unless ``--session`` names it. The
simulator is deterministic, so re-running the same seed and start would only duplicate the session:
a session that already holds snapshots is refused (exit 1) unless ``--replace`` asks to record it
again (its old snapshots are deleted first) or ``--session`` gives the new recording another name.

Each step also records the simulator's SPY companion snapshot (``QuoteBatch.companions``: same
instant, ``underlying = "SPY"``) in the same session, so a replay of the session carries SPY beside SPX
(:class:`~spx_core.marketdata.replay.ReplaySource` plays SPX and attaches SPY as the companion). The
printed count is of steps (SPX snapshots); the companions are counted after it.

The simulated underlyings' 1-minute OHLC bars are recorded too (``underlying_bars``, symbol = the
snapshot's underlying: ``SPX`` and ``SPY``), built from the snapshots' underlying prices (see
:class:`MinuteBars`), so the analytics (realized vol, indicators) run on simulated sessions.

Exit codes: 0 recorded, 1 the session exists or the database failed (e.g. a full disk: the message
says how many snapshots were recorded), 2 bad usage.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from spx_core.cli.helpers import (
    CommandFailed,
    DbAccess,
    UsageError,
    add_db_option,
    command,
    describe_failure,
    open_store,
    parse_iso_time,
)

__all__ = ["register", "cmd_simulate", "record_session", "MinuteBars"]

_NS_PER_MINUTE = 60 * 10**9


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("simulate", help="record simulated snapshots, one per simulated minute")
    add_db_option(p)
    p.add_argument("--seed", required=True, type=int, metavar="N", help="simulator seed (>= 0)")
    p.add_argument("--minutes", required=True, type=int, metavar="M", help="simulated minutes to record (>= 1)")
    p.add_argument("--start", metavar="ISO", help="simulated start, e.g. 2024-03-04T09:30 (naive = US/Eastern); "
                                                  "default now; outside market hours it moves to the next open")
    p.add_argument("--session", metavar="NAME",
                   help="session name (default: simulated:seed=N:<start time>)")
    p.add_argument("--replace", action="store_true",
                   help="if the session already holds snapshots, delete them and record it again")
    p.set_defaults(func=cmd_simulate)


def _simulate(args: argparse.Namespace) -> int:
    from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig, SimulatorConfigError

    if args.minutes < 1:
        raise UsageError(f"--minutes {args.minutes} must be >= 1")
    if args.seed < 0:
        raise UsageError(f"--seed {args.seed} must be >= 0")
    if args.session is not None and not args.session.strip():
        raise UsageError("--session NAME must not be empty")
    start = parse_iso_time(args.start, option="--start")
    try:
        market = SimulatedMarket(SimulatorConfig(seed=args.seed, start=start))
    except SimulatorConfigError as exc:
        raise UsageError(str(exc)) from None
    session = args.session or f"simulated:seed={args.seed}:{market.snapshot().time.isoformat()}"
    store = open_store(args.db_path, create=True)
    try:
        ids = record_session(store, market, session, args.minutes, replace=args.replace)
    finally:
        store.close()
    n_steps = args.minutes
    extra = len(ids) - n_steps
    companions = f", with {extra} SPY companion snapshots" if extra else ""
    print(f"recorded {n_steps} simulated snapshots (ids {min(ids)}..{max(ids)}{companions}) in session "
          f"{session!r} of {args.db_path}")
    return 0


def record_session(store: Any, market: Any, session: str, minutes: int, *, replace: bool) -> list[int]:
    """Record ``minutes`` steps of ``market`` (one per simulated minute, one transaction each).

    A step is the batch of :meth:`SimulatedMarket.advance`: the index snapshot and, when the market
    lists SPY, the companion SPY snapshot of the same instant.
    Returns the ids of every snapshot recorded (index and companions), in recording order.

    Raises:
        CommandFailed: the session already holds snapshots and ``replace`` is False; or a write failed
            (a full disk, a busy or damaged database): the message says how many snapshots were kept.
    """
    from tqdm import tqdm

    existing = store.snapshot_ids(session)
    if existing and not replace:
        # counted as the recording counts them: steps (index snapshots), the SPY companions aside
        steps = len(store.list_snapshots(session=session, underlying=market.snapshot().underlying))
        raise CommandFailed(f"session {session!r} already recorded ({steps} snapshots); "
                            f"use --session NAME to record another, or --replace to record it again")
    if existing:
        store.delete_snapshots(existing)
    ids: list[int] = []
    done = 0  # steps recorded whole
    bars: dict[str, MinuteBars] = {}
    # each snapshot commits on its own so that a reader (the GUI's replay) sees the session grow
    for minute in tqdm(range(minutes), desc="simulate", unit="min", file=sys.stderr, leave=False):
        # the first step is advance(0.0), as the live source starts: it emits SPY's first snapshot too
        batch = market.advance(60.0 if minute else 0.0)
        try:
            snaps = [batch.snapshot, *(b.snapshot for b in batch.companions)]
            # one transaction per step: a reader never sees SPX without its SPY companion
            step_ids = store.save_snapshots(snaps, source="Simulated", session=session)
            done += 1
            ids.extend(step_ids)
            for snap in snaps:
                bar = bars.setdefault(snap.underlying, MinuteBars()).add(snap.time_ns, snap.underlying_price)
                if bar is not None:  # the bar this price extends, written whole each time (an upsert)
                    store.save_bars(snap.underlying, bar)
        except Exception as exc:
            reason = describe_failure(exc, getattr(store, "path", None))
            if reason is None:
                raise  # a bug: the command wrapper logs it
            raise CommandFailed(f"{reason} ({done} of {minutes} snapshots of session {session!r} were "
                                f"recorded; rerun with --replace to record it whole)") from exc
    return ids


class MinuteBars:
    """1-minute OHLC bars of one underlying, built from the prices of successive snapshots.

    Consecutive prices ``(t0, p0) -> (t1, p1)`` form a segment of the bar of the minute ``t0`` falls
    in (bars are stamped with their start, like the LEAN minute bars): its open is the first segment's
    ``p0``, its close the last segment's ``p1``, high and low the extremes of every price in between.
    With one snapshot a minute, on the minute, bar 10:00 thus opens at the 10:00 price and closes at
    the 10:01 one (its range is only as wide as the samples show). A gap longer than
    :attr:`max_gap_ns` (the night, a pause) starts afresh: no bar spans it. Volume is unknown (NaN).
    """

    def __init__(self, *, max_gap_ns: int = 5 * _NS_PER_MINUTE) -> None:
        self.max_gap_ns = int(max_gap_ns)
        self._last: tuple[int, float] | None = None
        self._bar: dict[str, float] | None = None

    def add(self, time_ns: int, price: float) -> Any:
        """Take the next price; returns the (one-row) bar it extended as a DataFrame, or None."""
        import pandas as pd

        last, self._last = self._last, (int(time_ns), float(price))
        if not math.isfinite(price):
            self._last = None
            return None
        if last is None or not 0 < time_ns - last[0] <= self.max_gap_ns:
            return None
        start = last[0] - last[0] % _NS_PER_MINUTE
        bar = self._bar
        if bar is None or bar["time"] != start:
            bar = self._bar = {"time": start, "open": last[1], "high": last[1], "low": last[1]}
        bar["high"], bar["low"], bar["close"] = max(bar["high"], price), min(bar["low"], price), float(price)
        return pd.DataFrame({**{k: [v] for k, v in bar.items()}, "volume": [math.nan]}).astype(
            {"time": "int64"})


cmd_simulate = command(_simulate, db=DbAccess.WRITE)
