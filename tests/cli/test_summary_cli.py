"""``spx-data summary``: the real console script on a real SQLite file with stored daily summaries."""

from __future__ import annotations

import json
import math
from datetime import date, datetime

import pytest

from spx_core.automation.summary import DailySummary, summaries_from_csv
from spx_core.domain.calendar import ET, to_ns
from spx_core.storage import Store
from spx_core.storage.summary_repo import SummaryRepository
from tests.cli.conftest import run_spx_data

KEYS = ["day", "strategy", "trades_opened", "trades_closed", "wins", "losses", "win_rate", "realized_pnl", "fees",
        "skips", "time"]


def _row(day: date, strategy: str, **figures) -> DailySummary:
    return DailySummary(day=day, strategy=strategy, time_ns=to_ns(datetime(day.year, day.month, day.day, 16, 0,
                                                                           tzinfo=ET)), **figures)


ROWS = [
    _row(date(2024, 3, 13), "", trades_opened=2, trades_closed=2, wins=1, losses=1, realized_pnl=-37.25, fees=5.32,
         skips=1),
    _row(date(2024, 3, 13), "credit verticals 3/5/7 DTE", trades_opened=2, trades_closed=2, wins=1, losses=1,
         realized_pnl=-37.25, fees=5.32),
    _row(date(2024, 3, 13), "iron condor (regime filter)", skips=1),
    _row(date(2024, 3, 14), "", trades_opened=1, trades_closed=1, wins=1, realized_pnl=62.34, fees=2.66),
    _row(date(2024, 3, 14), "credit verticals 3/5/7 DTE", trades_opened=1, trades_closed=1, wins=1,
         realized_pnl=62.34, fees=2.66),
]


@pytest.fixture(scope="module")
def summary_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("summary_cli") / "summary.sqlite"
    with Store.open(path) as store:
        SummaryRepository(store).save(ROWS)
    return path


def test_summary_json_lists_every_stored_row_by_day_then_strategy(summary_db):
    done = run_spx_data("summary", "--db", summary_db, "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["summaries"]
    assert [list(r) for r in rows] == [KEYS] * len(ROWS)
    assert rows[0] == {"day": "2024-03-13", "strategy": "", "trades_opened": 2, "trades_closed": 2, "wins": 1,
                       "losses": 1, "win_rate": 0.5, "realized_pnl": -37.25, "fees": 5.32, "skips": 1,
                       "time": "2024-03-13T20:00:00Z"}
    assert rows[2]["strategy"] == "iron condor (regime filter)" and rows[2]["win_rate"] is None  # none closed
    assert [(r["day"], r["strategy"]) for r in rows] == [(r.day.isoformat(), r.strategy) for r in ROWS]


def test_summary_csv_reads_back_to_the_stored_rows(summary_db):
    done = run_spx_data("summary", "--db", summary_db, "--csv")
    assert done.returncode == 0, done.stderr
    back = summaries_from_csv(done.stdout)
    assert back == ROWS and math.isnan(back[2].win_rate)


def test_summary_table_since_and_one_strategy(summary_db):
    header, *lines = run_spx_data("summary", "--db", summary_db).stdout.splitlines()
    assert header.split()[:5] == ["day", "strategy", "opened", "closed", "wins"] and len(lines) == len(ROWS)
    assert lines[0].startswith("2024-03-13  (account)") and lines[0].split()[-4:] == ["50%", "-37.25", "5.32", "1"]
    assert lines[2].split()[-4:] == ["-", "0.00", "0.00", "1"]
    since = json.loads(run_spx_data("summary", "--db", summary_db, "--json", "--since", "2024-03-14").stdout)
    assert [r["day"] for r in since["summaries"]] == ["2024-03-14", "2024-03-14"]
    account = json.loads(run_spx_data("summary", "--db", summary_db, "--json", "--strategy", "").stdout)
    assert [(r["day"], r["realized_pnl"]) for r in account["summaries"]] == [("2024-03-13", -37.25),
                                                                              ("2024-03-14", 62.34)]


def test_summary_usage_errors_and_an_empty_or_missing_database(summary_db, tmp_path):
    bad = run_spx_data("summary", "--db", summary_db, "--since", "March 3")
    assert "YYYY-MM-DD" in bad.assert_one_line_failure(codes=(2,))
    both = run_spx_data("summary", "--db", summary_db, "--json", "--csv")
    assert "pass one of them" in both.assert_one_line_failure(codes=(2,))
    empty = tmp_path / "empty.sqlite"
    Store.open(empty).close()
    assert run_spx_data("summary", "--db", empty).stdout.startswith("no daily summaries stored")
    assert json.loads(run_spx_data("summary", "--db", empty, "--json").stdout) == {"summaries": []}
    line = run_spx_data("summary", "--db", tmp_path / "nope.sqlite").assert_one_line_failure(codes=(1,))
    assert "nope.sqlite: no such database" in line and not (tmp_path / "nope.sqlite").exists()
