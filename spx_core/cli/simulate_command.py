"""``spx-data simulate``: record simulated snapshots, minute by minute or whole trading days in bulk.

Interface (scripts depend on it; keep it exactly)::

    spx-data simulate --db PATH --seed N (--minutes M | --days D --interval 1m|5m|eod)
                      [--start ISO] [--session NAME] [--replace]

``--minutes M`` records M steps, one per simulated minute from ``--start`` (inside the session, or the next
open), each step in its own transaction so a reader (the GUI's replay) sees the session grow.

``--days D --interval 1m|5m|eod`` records D whole trading days of the exchange calendar (holidays skipped,
early closes at 13:00 ET), the first being the session of ``--start`` (or the next one), in bulk
(:func:`~spx_core.marketdata.simulator.recorder.record_history`, whose docstring is the full description):

* ``1m`` / ``5m``: the open, every 1 or 5 minutes, and the close;
* ``eod``: one chain per day at 15:45 ET (15 minutes before the close: 12:45 on early closes), the Cboe
  end-of-day convention: 252 chains a year, like a real end-of-day file. Daily SPX and SPY bars (stamped 16:00 ET)
  carry each day's open and close, from which the backtester settles expiries (AM SPX on the open, SPXW and SPY
  on the close), as it does on imported end-of-day data with imported daily bars.

Each day relists the chain at the open with that day's live expiries (SPXW dailies incl. 0DTE, weeklies, SPX AM
monthlies), so expiries roll with the calendar. The path is the simulator's Bates model: stochastic variance
(volatility regimes, leverage effect) and Poisson crash jumps (parameters:
:class:`~spx_core.marketdata.simulator.config.ProcessParams`). Snapshots are written in batches (one
transaction each; SPX never without its SPY companion), progress by day on stderr.

The session is named ``simulated:seed=N:<first snapshot time>`` (with ``--days``:
``simulated:seed=N:<interval>:<first snapshot time>``) unless ``--session`` names it. The simulator is
deterministic, so re-running the same seed and start would only duplicate the session: a session that already
holds snapshots is refused (exit 1) unless ``--replace`` asks to record it again (its old snapshots are deleted
first) or ``--session`` gives the new recording another name.

Each step also records the simulator's SPY companion snapshot (``QuoteBatch.companions``: same
instant, ``underlying = "SPY"``) in the same session, so a replay of the session carries SPY beside SPX
(:class:`~spx_core.marketdata.replay.ReplaySource` plays SPX and attaches SPY as the companion). The
printed count is of steps (SPX snapshots); the companions are counted after it.

Bars (``underlying_bars``): with ``--minutes`` and the 1m / 5m intervals, the underlyings' OHLC bars of the
step's width (``SPX`` and ``SPY``), built from the snapshots' underlying prices (see
:class:`~spx_core.marketdata.simulator.bars.MinuteBars`), so the analytics (realized vol, indicators) run on
simulated sessions. With ``--days``, also a daily ``VIX`` bar per day (the simulator's 30-day ATM implied vol)
and, with ``eod``, a daily ``SPX`` bar (high and low over the session's 5-minute path), so the regime filter,
the VIX rank and the VaR read a history. Record into a database of its own: a simulated bar replaces a stored
bar of the same symbol and time.

Exit codes: 0 recorded, 1 the session exists or the database failed (e.g. a full disk: the message
says how many snapshots, or whole days, were recorded), 2 bad usage.
"""

from __future__ import annotations

import argparse
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

__all__ = ["cmd_simulate", "record_days", "record_session", "register"]  # MinuteBars: see __getattr__

_INTERVALS = ("1m", "5m", "eod")


def __getattr__(name: str) -> Any:
    # moved to the simulator package; imported on first use so the CLI starts without numpy
    if name == "MinuteBars":
        from spx_core.marketdata.simulator.bars import MinuteBars

        return MinuteBars
    raise AttributeError(name)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("simulate", help="record simulated snapshots: minute by minute, or whole trading "
                                               "days at 1m, 5m or end-of-day intervals")
    add_db_option(p)
    p.add_argument("--seed", required=True, type=int, metavar="N", help="simulator seed (>= 0)")
    span = p.add_mutually_exclusive_group(required=True)
    span.add_argument("--minutes", type=int, metavar="M", help="simulated minutes to record (>= 1)")
    span.add_argument("--days", type=int, metavar="D",
                      help="trading days to record (>= 1), at --interval, from the session of --start")
    p.add_argument("--interval", choices=_INTERVALS, metavar="1m|5m|eod",
                   help="with --days: a chain every minute, every 5 minutes, or end-of-day (15:45 ET, plus the "
                        "close and the AM-settlement open the backtester settles expiries on)")
    p.add_argument("--start", metavar="ISO", help="simulated start, e.g. 2024-03-04T09:30 (naive = US/Eastern); "
                                                  "default now; outside market hours it moves to the next open")
    p.add_argument("--session", metavar="NAME",
                   help="session name (default: simulated:seed=N:<first snapshot time>; with --days: "
                        "simulated:seed=N:<interval>:<first snapshot time>)")
    p.add_argument("--replace", action="store_true",
                   help="if the session already holds snapshots, delete them and record it again")
    p.set_defaults(func=cmd_simulate)


def _simulate(args: argparse.Namespace) -> int:
    from spx_core.marketdata.simulator import (
        SimulatedMarket,
        SimulatorConfig,
        SimulatorConfigError,
    )

    if args.days is not None:
        return _simulate_days(args)
    if args.interval is not None:
        raise UsageError("--interval goes with --days (--minutes records one snapshot per minute)")
    if args.minutes < 1:
        raise UsageError(f"--minutes {args.minutes} must be >= 1")
    _check_common(args)
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


def _check_common(args: argparse.Namespace) -> None:
    if args.seed < 0:
        raise UsageError(f"--seed {args.seed} must be >= 0")
    if args.session is not None and not args.session.strip():
        raise UsageError("--session NAME must not be empty")


def _simulate_days(args: argparse.Namespace) -> int:
    from spx_core.marketdata.simulator import SimulatorConfig, SimulatorConfigError

    if args.interval is None:
        raise UsageError("--days needs --interval 1m, 5m or eod")
    if args.days < 1:
        raise UsageError(f"--days {args.days} must be >= 1")
    _check_common(args)
    start = parse_iso_time(args.start, option="--start")
    try:
        config = SimulatorConfig(seed=args.seed, start=start)
    except SimulatorConfigError as exc:
        raise UsageError(str(exc)) from None
    store = open_store(args.db_path, create=True)
    try:
        session, ids = record_days(store, config, args.session, days=args.days, interval=args.interval,
                                   replace=args.replace)
    finally:
        store.close()
    spx = len(ids) // 2 if config.spy is not None else len(ids)
    companions = f", with {len(ids) - spx} SPY companion snapshots" if len(ids) > spx else ""
    print(f"recorded {args.days} trading days at {args.interval}: {spx} simulated snapshots (ids "
          f"{min(ids)}..{max(ids)}{companions}) in session {session!r} of {args.db_path}")
    return 0


def record_days(store: Any, config: Any, session: str | None, *, days: int, interval: str,
                replace: bool) -> tuple[str, list[int]]:
    """``--days``: :func:`record_history` with a progress bar by day on stderr; returns (session, snapshot ids).

    Raises:
        CommandFailed: the session already holds snapshots and ``replace`` is False; or a write failed (a full
            disk, a busy or damaged database): the message says how many whole days were kept.
    """
    from tqdm import tqdm

    from spx_core.domain.calendar import default_calendar, from_ns
    from spx_core.marketdata.simulator.clock import wall_start
    from spx_core.marketdata.simulator.recorder import (
        RecordingFailed,
        SessionExistsError,
        print_instants,
        record_history,
        recording_days,
    )

    cal = default_calendar()
    config = config if config.start is not None else _with_start(config, wall_start(None))
    first_day = recording_days(cal, config.start, 1)[0]
    first = from_ns(print_instants(cal, first_day, interval)[0])
    session = session or f"simulated:seed={config.seed}:{interval}:{first.isoformat()}"
    with tqdm(total=days, desc="simulate", unit="day", file=sys.stderr, leave=False) as bar:
        try:
            ids = record_history(store, config, session, days=days, interval=interval, replace=replace,
                                 calendar=cal, progress=lambda done, total: bar.update(1))
        except SessionExistsError as exc:
            raise CommandFailed(str(exc)) from None
        except RecordingFailed as exc:
            cause = exc.__cause__ if exc.__cause__ is not None else exc
            reason = describe_failure(cause, getattr(store, "path", None))
            if reason is None:
                raise cause from None  # a bug: the command wrapper logs it
            raise CommandFailed(f"{reason} ({exc.days_done} of {days} days of session {session!r} were "
                                f"recorded; rerun with --replace to record it whole)") from exc
    return session, ids


def _with_start(config: Any, start: Any) -> Any:
    import dataclasses

    return dataclasses.replace(config, start=start)


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

    from spx_core.marketdata.simulator.bars import MinuteBars

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


cmd_simulate = command(_simulate, db=DbAccess.WRITE)
