"""Import benchmarks: spxw20190626.csv (10,384 quotes) into a fresh SQLite store.

Target (issue 2): import the file <= 1 s. References measured in the same run on the same file:
plain ``pandas.read_csv`` (parsing only, no validation, no store) and the standard-library ``csv``
reader (the row source the importer uses). Also: the same import through ``spx-data import`` in a
subprocess (includes interpreter start and imports), and the LEAN day zip with its index.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from spx_core.marketdata.importers import import_files
from spx_core.storage import Store
from tests.benchmarks.report import Report, best_of

GROUP = "import"
DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
DATASHOP = DATA / "cboe_datashop" / "spxw20190626.csv"
LEAN = [DATA / "lean_minute" / "spxw" / "20210104_quote_european.zip",
        DATA / "lean_minute" / "spx_index" / "20210104_trade.zip"]


def _import_fresh(paths: list[Path], fmt: str) -> None:
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "bench.sqlite") as store:
        reports = import_files(store, paths, fmt)
        assert all(r.status.value == "imported" for r in reports), [r.error for r in reports]


def _csv_rows() -> int:
    with open(DATASHOP, encoding="utf-8-sig", newline="") as fh:
        return sum(1 for _ in csv.reader(fh))


def run(report: Report) -> None:
    if not DATASHOP.is_file():
        report.add(GROUP, "skipped", 0, "", note=f"{DATASHOP} is absent")
        return
    report.add(GROUP, "pandas.read_csv spxw20190626 (ref)", best_of(lambda: pd.read_csv(DATASHOP)) * 1e3, "ms")
    report.add(GROUP, "csv.reader rows spxw20190626 (ref)", best_of(_csv_rows) * 1e3, "ms")
    report.add(GROUP, "import spxw20190626.csv (10,384 quotes)",
               best_of(lambda: _import_fresh([DATASHOP], "cboe-datashop")) * 1e3, "ms", target=1000,
               reference="pandas.read_csv spxw20190626 (ref)",
               note="validate every field + snapshot + checksum + SQLite commit")
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [str(Path(sys.executable).parent / "spx-data"), "import", "--format", "cboe-datashop",
               "--db", str(Path(tmp) / "cli.sqlite"), "--json", str(DATASHOP)]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
        report.add(GROUP, "spx-data import spxw20190626 (subprocess)", (time.perf_counter() - t0) * 1e3, "ms",
                   note="incl. interpreter start + imports")
    if all(p.is_file() for p in LEAN):
        report.add(GROUP, "import LEAN 2021-01-04 quotes + index (405 snapshots)",
                   best_of(lambda: _import_fresh(LEAN, "lean-minute"), repeat=2) * 1e3, "ms")
