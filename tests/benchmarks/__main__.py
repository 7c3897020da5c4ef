"""``python -m tests.benchmarks [--only GROUP ...] [--json bench.json]``: run every benchmark module.

Each ``tests/benchmarks/bench_*.py`` module defines ``run(report: Report) -> None`` and adds its
figures (with targets and in-process reference figures for ratios). Prints one table, writes JSON.
Modules that launch the app in subprocesses: ``startup`` (first paint) and ``app_cpu`` (cores used at 1x).
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import tempfile
import traceback
from pathlib import Path

from tests.benchmarks.report import Report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks")
    parser.add_argument("--only", nargs="*", default=None, help="benchmark module names (e.g. storage pricing)")
    parser.add_argument("--json", default="bench.json", help="where to write every figure (default bench.json)")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("SPX_TERMINAL_HOME", tempfile.mkdtemp(prefix="spx_bench_"))
    here = Path(__file__).resolve().parent
    names = sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    if args.only:
        names = [n for n in names if n in args.only]
    report = Report()
    failed = []
    for name in names:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        try:
            importlib.import_module(f"tests.benchmarks.bench_{name}").run(report)
        except Exception:
            traceback.print_exc()
            failed.append(name)
    print(report.table())
    report.write_json(Path(args.json))
    print(f"\nwrote {args.json}" + (f"; failed modules: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
