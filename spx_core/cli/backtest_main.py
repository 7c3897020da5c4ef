"""``spx-backtest``: run a backtest from a TOML config, list and show the stored runs, sweep (issue 11 §4).

Interface (scripts depend on it; keep it exactly)::

    spx-backtest run --db PATH --config FILE.toml [--json] [--out DIR] [--name NAME]
    spx-backtest runs --db PATH [--json]
    spx-backtest show RUN_ID --db PATH [--json]
    spx-backtest sweep --db PATH --config FILE.toml --grid "..." [...]     (spx_core/cli/backtest_sweep.py)

``run`` validates the config (``resources/backtest/example.toml`` documents every key), runs it over the stored
snapshots with a progress bar on stderr, stores the run (trades, equity, decisions; one transaction) and prints
its summary and run id, or with ``--json`` exactly the document of :func:`spx_core.backtest.outputs.run_json`.
``--out DIR`` also writes the run's files there. Ctrl-C stops the run at the next step and stores nothing (exit
130); a second Ctrl-C interrupts at once.

Exit codes: 0 success; 1 the command failed (no stored snapshots in the config's range, no such run, a database
error); 2 bad usage, a bad config included (one line naming the key and the fix); 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from spx_core.cli import backtest_sweep
from spx_core.cli.helpers import (
    CommandFailed,
    DbAccess,
    UsageError,
    add_db_option,
    command,
    dump_json,
    fmt_num,
    iso_utc,
    open_store,
    print_table,
    run_cli,
)

__all__ = ["PROG", "build_parser", "interruptible", "main"]

PROG = "spx-backtest"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="SPX Terminal backtests: the live strategy code over "
                                                            "stored snapshots")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug output to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _register(sub)
    backtest_sweep.register(sub)  # sweep (spx_core/cli/backtest_sweep.py)
    return parser


def _register(sub: Any) -> None:
    p = sub.add_parser("run", help="run a backtest from a TOML config and store it")
    add_db_option(p)
    p.add_argument("--config", required=True, metavar="FILE.toml",
                   help="the backtest config (resources/backtest/example.toml documents every key)")
    p.add_argument("--json", action="store_true", help="print the run as JSON (run id, checksums, metrics, trades, "
                                                       "decisions)")
    p.add_argument("--out", metavar="DIR", help="also write trades.csv, equity.csv, decisions.csv, metrics.json, "
                                                "config.toml and summary.txt into DIR (created if missing)")
    p.add_argument("--name", metavar="NAME", help="the stored run's name (default: the config's top-level name)")
    p.set_defaults(func=command(cmd_run, db=DbAccess.READ, tool=PROG))

    p = sub.add_parser("runs", help="list the stored backtest runs")
    add_db_option(p)
    p.add_argument("--json", action="store_true", help="print the runs as JSON")
    p.set_defaults(func=command(cmd_runs, db=DbAccess.READ, tool=PROG))

    p = sub.add_parser("show", help="show one stored backtest run")
    p.add_argument("run_id", type=int, metavar="RUN_ID", help="the run's id (see `spx-backtest runs`)")
    add_db_option(p)
    p.add_argument("--json", action="store_true", help="print the run as JSON (the shape of `run --json`, with "
                                                       "its stored config and provenance)")
    p.set_defaults(func=command(cmd_show, db=DbAccess.READ, tool=PROG))


# --- run ----------------------------------------------------------------------------------------------------------
def load_config(path: str) -> Any:
    """The validated spec of ``--config``; any problem is one UsageError line (exit 2)."""
    from spx_core.backtest.config import BacktestConfigError, load_spec

    file = Path(path).expanduser()
    if not file.is_file():
        raise UsageError(f"--config {path}: no such file; give the path of a TOML config "
                         f"(resources/backtest/example.toml is one)")
    try:
        return load_spec(file)
    except BacktestConfigError as exc:
        raise UsageError(f"{file}: {exc}") from None


def cmd_run(args: argparse.Namespace) -> int:
    from spx_core.backtest.config import BacktestConfigError
    from spx_core.backtest.engine import BacktestError
    from spx_core.backtest.outputs import run_json, summary_text, write_outputs
    from spx_core.storage.backtest_repo import BacktestRepository

    spec = load_config(args.config)
    if args.out is not None and Path(args.out).expanduser().exists() and not Path(args.out).expanduser().is_dir():
        raise UsageError(f"--out {args.out} is a file; name a folder (it is created if missing)")
    store = open_store(args.db_path, create=False)
    try:
        try:
            backtest = spec.backtest(store)
            with interruptible() as stop:
                result = _run(backtest, stop)
        except (BacktestConfigError, BacktestError) as exc:
            raise CommandFailed(f"{args.config}: {exc}") from None
        if result.cancelled:
            print(f"{PROG} run: interrupted after {result.steps[0]} of {result.steps[1]} steps; nothing stored",
                  file=sys.stderr)
            return 130
        metrics = result.metrics()
        name = args.name if args.name is not None else spec.name
        run_id = BacktestRepository(store).save_run(result, config_toml=spec.source_toml, name=name,
                                                    metrics=metrics)
    finally:
        store.close()
    written = write_outputs(args.out, result, metrics, spec) if args.out is not None else []
    if args.json:
        dump_json(run_json(result, metrics, run_id))
    else:
        sys.stdout.write(summary_text(result, metrics, spec, run_id))
        if written:
            print(f"wrote {', '.join(p.name for p in written)} to {written[0].parent}")
        print(f"run_id {run_id}")
    return 0


def _run(backtest: Any, stop: Callable[[], bool]) -> Any:
    """Run with a progress bar on stderr (as ``spx-data simulate`` shows one)."""
    from tqdm import tqdm

    with tqdm(desc="backtest", unit="step", file=sys.stderr, leave=False) as bar:
        def progress(done: int, total: int) -> None:
            if bar.total != total:
                bar.total = total
            bar.update(done - bar.n)

        return backtest.run(progress=progress, cancel=stop)


@contextlib.contextmanager
def interruptible() -> Iterator[Callable[[], bool]]:
    """Ctrl-C asks the run to stop at its next step (a clean, partial result that is not stored); a second one
    raises KeyboardInterrupt at once. Outside the main thread signals cannot be caught: never stopped."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    asked = threading.Event()
    previous = signal.getsignal(signal.SIGINT)

    def on_interrupt(signum: int, frame: Any) -> None:
        asked.set()
        signal.signal(signal.SIGINT, previous)

    signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield asked.is_set
    finally:
        signal.signal(signal.SIGINT, previous)


# --- runs / show ----------------------------------------------------------------------------------------------------
def _info_json(info: Any) -> dict[str, Any]:
    from spx_core.backtest.outputs import json_safe

    return {"run_id": info.id, "name": info.name, "created": iso_utc(info.created_ns),
            "config_sha256": info.config_sha256, "data_checksum": info.data_checksum,
            "result_checksum": info.result_checksum, "code_version": info.code_version,
            "starting_cash": info.starting_cash, "cancelled": info.cancelled, "steps": list(info.steps),
            "sweep_id": info.sweep_id, "params": json_safe(info.params), "metrics": json_safe(info.metrics)}


def cmd_runs(args: argparse.Namespace) -> int:
    from spx_core.storage.backtest_repo import BacktestRepository

    store = open_store(args.db_path, create=False)
    try:
        runs = BacktestRepository(store).list_runs()
    finally:
        store.close()
    if args.json:
        dump_json({"runs": [_info_json(r) for r in runs]})
        return 0
    if not runs:
        print(f"no backtest runs stored in {args.db_path}; run one with {PROG} run --config FILE.toml")
        return 0
    rows = [[str(r.id), r.name or "-", iso_utc(r.created_ns), str(_figure(r.metrics, "n_trades", "d")),
             _figure(r.metrics, "total_return", ".2%"), _figure(r.metrics, "sharpe", ".2f"),
             _figure(r.metrics, "max_drawdown", ".2%"), "" if r.sweep_id is None else str(r.sweep_id),
             r.result_checksum[:12]] for r in runs]
    print_table(["id", "name", "created", "trades", "return", "sharpe", "max dd", "sweep", "result"], rows,
                right={0, 3, 4, 5, 6, 7})
    return 0


def _figure(metrics: dict[str, Any], key: str, spec: str) -> str:
    value = metrics.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "-"
    return fmt_num(float(value), spec) if spec != "d" else str(int(value))


#: the figures `show` prints: label, metric, format
_SHOWN = (("total return", "total_return", ".2%"), ("Sharpe", "sharpe", ".2f"),
          ("max drawdown", "max_drawdown", ".2%"), ("win rate", "win_rate", ".1%"), ("fees $", "fees_paid", ",.2f"),
          ("ending equity $", "ending_equity", ",.2f"))


def cmd_show(args: argparse.Namespace) -> int:
    from spx_core.backtest.outputs import decision_json, json_safe, trade_json
    from spx_core.storage.backtest_repo import BacktestRepository

    store = open_store(args.db_path, create=False)
    try:
        run = BacktestRepository(store).load_run(args.run_id)
    except KeyError as exc:
        raise CommandFailed(str(exc.args[0]) if exc.args else f"no backtest run {args.run_id}") from None
    finally:
        store.close()
    info = run.info
    if args.json:
        dump_json({**_info_json(info), "trades": [trade_json(t) for t in run.trades],
                   "decisions": [decision_json(d) for d in run.decisions], "marks": dict(run.marks),
                   "notes": list(run.notes), "factors": json_safe({str(k): v for k, v in run.factors.items()}),
                   "config_toml": run.config_toml})
        return 0
    print(f"run {info.id} {info.name!r}, stored {iso_utc(info.created_ns)}, code {info.code_version}"
          f"{', CANCELLED' if info.cancelled else ''}")
    print(f"  steps {info.steps[0]}/{info.steps[1]}, trades {len(run.trades)}, decisions {len(run.decisions)}, "
          f"equity stamps {len(run.equity)}")
    print(f"  config {info.config_sha256[:12]}, data {info.data_checksum[:12]}, result {info.result_checksum}")
    print("  " + ", ".join(f"{label} {_figure(info.metrics, key, spec)}" for label, key, spec in _SHOWN))
    if run.trades:
        rows = [[str(i + 1), iso_utc(t.entry_ns), iso_utc(t.exit_ns) if t.exit_ns is not None else "-", t.exit_reason,
                 str(t.quantity), fmt_num(t.entry_price), fmt_num(t.exit_price), fmt_num(t.pnl), fmt_num(t.fees)]
                for i, t in enumerate(run.trades)]
        print_table(["#", "entry", "exit", "reason", "qty", "entry px", "exit px", "pnl $", "fees $"], rows,
                    right={0, 4, 5, 6, 7, 8})
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(build_parser(), argv, interrupted=f"{PROG}: interrupted")


if __name__ == "__main__":
    sys.exit(main())
