"""Historical option data (vendors' end-of-day layout) importer: hand-made hostile fixture, roots, times,
grouping by quote date, idempotence, bounded memory, and the real ``spx-data`` on a real SQLite file."""

from __future__ import annotations

import json
import tracemalloc
from collections import Counter
from datetime import date, datetime

import numpy as np
import pytest

from spx_core.domain import ET, Root
from spx_core.domain.quotes import QuoteFlag
from spx_core.marketdata.importers import ImportStatus, import_files
from spx_core.marketdata.importers import historical_option_data as hod
from spx_core.marketdata.importers.historical_option_data import (
    looks_like_historical_option_data,
)
from tests.cli.conftest import run_spx_data
from tests.marketdata.import_helpers import FIXTURES, snapshots

FMT = "historical-option-data"
FIXTURE = FIXTURES / "historical_option_data_spx.csv"
HEADER = ("underlying,underlying_last,exchange,optionroot,optionext,type,expiration,quotedate,strike,last,bid,ask,"
          "volume,openinterest,impliedvol,delta,gamma,theta,vega,optionalias")
EXPECTED_REJECTIONS = [
    (8, "quotedate '13/45/2015' is not a date (M/D/YYYY or YYYY-MM-DD, optionally with a time)"),
    (9, "strike '-2020' is negative"),
    (10, "bid 'abc' is not a number"),
    (11, "has 14 fields, the header has 20"),
    (12, "SPXW 2015-01-09 2060C is already quoted on line 4; kept that one"),
    (13, "expiration 2014-12-31 is before quotedate 2015-01-02 (expired series)"),
    (14, "optionroot 'XSP150109C00206000' is not an SPX or SPXW option (this importer stores SPX-family chains)"),
    (18, "quotedate '2015-01-05 25:00' has no valid time of day"),
    (21, "underlying 'SPY' is not SPX (this importer stores SPX-family chains)"),
]


def _row(day: date, expiry: date, strike: float, right: str = "call", *, root: str = "SPXW", bid: float = 1.0,
         ask: float = 1.2, under: float = 2000.0) -> str:
    occ = f"{root}{expiry:%y%m%d}{right[0].upper()}{int(strike * 1000):08d}"
    return (f"SPX,{under},*,{occ},,{right},{expiry.month}/{expiry.day}/{expiry.year},{day.month}/{day.day}/{day.year},"
            f"{strike:g},{bid},{bid},{ask},1,2,0.2,0.5,0.01,-1,1,{occ}")


def _by_date(store) -> dict[date, object]:
    return {s.time.astimezone(ET).date(): s for s in snapshots(store)}


def test_hostile_fixture_imports_one_snapshot_per_quote_date_and_names_every_bad_line(store):
    [report] = import_files(store, [FIXTURE], FMT)

    assert report.status is ImportStatus.IMPORTED and report.error is None
    assert (report.rows_read, report.quotes_stored, report.snapshots) == (20, 11, 3)
    assert sorted((r.line, r.reason) for r in report.rejected) == EXPECTED_REJECTIONS
    assert report.rows_read == report.quotes_stored + len(report.rejected)  # every row stored or rejected
    days = _by_date(store)
    assert sorted(days) == [date(2015, 1, 2), date(2015, 1, 5), date(2015, 1, 6)]
    assert [days[d].underlying_price for d in sorted(days)] == [2058.2, 2020.58, 2002.61]


def test_snapshot_time_is_the_1615_close_or_the_latest_time_written_in_the_file(store):
    import_files(store, [FIXTURE], FMT)
    days = _by_date(store)
    assert days[date(2015, 1, 2)].time == datetime(2015, 1, 2, 16, 15, tzinfo=ET)
    assert days[date(2015, 1, 5)].time == datetime(2015, 1, 5, 16, 15, tzinfo=ET)
    # 1/6/2015 rows say 4:00:00 PM and 3:45:00 PM: the latest is the chain's time
    assert days[date(2015, 1, 6)].time == datetime(2015, 1, 6, 16, 0, tzinfo=ET)


def test_early_close_and_midnight_times_use_the_index_option_close(store, tmp_path):
    path = tmp_path / "early.csv"
    path.write_text("\n".join([HEADER, _row(date(2015, 11, 27), date(2015, 12, 4), 2000).replace(
        "11/27/2015", "2015-11-27 00:00:00")]) + "\n")
    [report] = import_files(store, [path], FMT)
    assert report.status is ImportStatus.IMPORTED, report.error
    [snap] = snapshots(store)  # the day after Thanksgiving closes at 13:00; index options at 13:15
    assert snap.time == datetime(2015, 11, 27, 13, 15, tzinfo=ET)


def test_roots_from_optionroot_or_alias_and_the_monthly_am_rule(store):
    import_files(store, [FIXTURE], FMT)
    days = _by_date(store)
    frame = days[date(2015, 1, 2)].to_frame()
    spx = frame[frame["root"] == Root.SPX.value]
    # OCC's Saturday 1/17/2015 is the monthly expiry Friday 1/16/2015, AM-settled SPX
    assert set(spx["expiry"].dt.date) == {date(2015, 1, 16)} and len(spx) == 2
    assert set(frame[frame["root"] == Root.SPXW.value]["expiry"].dt.date) == {date(2015, 1, 9)}
    later = days[date(2015, 1, 5)].to_frame().set_index("expiry")["root"]
    assert later[np.datetime64("2015-01-09")] == Root.SPXW.value  # optionroot "SPX", alias SPXW...: SPXW
    assert later[np.datetime64("2015-01-30")] == Root.SPXW.value  # "SPX" on a non-monthly day is PM
    assert later[np.datetime64("2015-01-16")] == Root.SPX.value


def test_bad_quotes_are_stored_and_flagged_not_dropped(store):
    import_files(store, [FIXTURE], FMT)
    frame = _by_date(store)[date(2015, 1, 2)].to_frame().set_index(["strike", "is_call"])
    assert frame.loc[(2060.0, False), "flags"] & QuoteFlag.ZERO_BID        # bid 0, ask 0.5
    assert frame.loc[(2100.0, True), "flags"] & QuoteFlag.NO_QUOTE         # bid = ask = 0
    assert frame.loc[(2000.0, False), "flags"] & QuoteFlag.CROSSED          # bid 3.2 > ask 3.0
    assert frame.loc[(2060.0, True), "flags"] == 0 and frame.loc[(2060.0, True), "bid"] == 12.1  # first row kept
    assert np.isnan(frame.loc[(2060.0, False), "vendor_iv"])  # IV 0 = not computed
    assert frame.loc[(2060.0, True), "vendor_iv"] == 0.1302 and frame.loc[(2060.0, True), "open_interest"] == 800


def test_reimport_is_a_duplicate_and_stores_nothing_more(store, tmp_path):
    first, again = import_files(store, [FIXTURE, FIXTURE], FMT)
    copy = tmp_path / "renamed.csv"
    copy.write_bytes(FIXTURE.read_bytes())
    [renamed] = import_files(store, [copy], FMT)
    assert first.status is ImportStatus.IMPORTED
    assert (again.status, renamed.status) == (ImportStatus.DUPLICATE, ImportStatus.DUPLICATE)
    assert len(store.list_snapshots()) == 3


def test_vendor_header_spellings_case_and_spaces_import_the_same_chains(store, tmp_path):
    lines = FIXTURE.read_text().split("\n")
    lines[0] = (" UnderlyingSymbol,UnderlyingPrice,Exchange,OptionSymbol,OptionExt,Type,Expiration,DataDate,Strike,"
                "Last,Bid,Ask,Volume,OpenInterest,IV,Delta,Gamma,Theta,Vega,AKA ")
    vendor = tmp_path / "vendor_names.csv"
    vendor.write_text("\n".join(lines))
    a, b = import_files(store, [FIXTURE, vendor], FMT)
    assert (a.status, b.status) == (ImportStatus.IMPORTED, ImportStatus.IMPORTED)
    assert [r.line for r in b.rejected] == [r.line for r in a.rejected]
    sums = Counter(s.checksum for s in snapshots(store))
    assert len(sums) == 3 and set(sums.values()) == {2}  # each chain twice, bit-identical


def test_a_header_without_required_columns_fails_the_file_in_one_line(store, tmp_path):
    path = tmp_path / "no_bid.csv"
    path.write_text(HEADER.replace(",bid,", ",bidd,") + "\n" + _row(date(2015, 1, 2), date(2015, 1, 9), 2000))
    [report] = import_files(store, [path], FMT)
    assert report.status is ImportStatus.FAILED and "\n" not in report.error
    assert "header lacks bid" in report.error and "check --format" in report.error
    assert store.list_snapshots() == []


def test_rows_of_a_quote_date_already_written_are_rejected_as_unsorted(store, tmp_path, monkeypatch):
    monkeypatch.setattr(hod, "_CHUNK_ROWS", 2)
    d1, d2, exp = date(2015, 1, 2), date(2015, 1, 5), date(2015, 1, 9)
    rows = [_row(d1, exp, 2000), _row(d1, exp, 2010), _row(d2, exp, 2000), _row(d2, exp, 2010),
            _row(d1, exp, 2020)]
    path = tmp_path / "unsorted.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    [report] = import_files(store, [path], FMT)
    assert report.status is ImportStatus.IMPORTED
    assert [(r.line, r.reason) for r in report.rejected] == [
        (6, ("quotedate 2015-01-02 appears again after other dates (its snapshot is already written); "
             "sort the file by quotedate"))]
    assert sorted(len(s) for s in snapshots(store)) == [2, 2]


def _write_days(path, n_days: int, per_day: int) -> None:
    days = np.arange(np.datetime64("2010-01-04"), np.datetime64("2010-01-04") + 3 * n_days, dtype="datetime64[D]")
    days = [d for d in days.tolist() if d.weekday() < 5][:n_days]
    with open(path, "w") as fh:
        fh.write(HEADER + "\n")
        for d in days:
            exp = date.fromordinal(d.toordinal() + 30)
            fh.write("\n".join(_row(d, exp, 1000 + 5 * k, "call" if k % 2 else "put") for k in range(per_day)) + "\n")


def _peak_bytes(tmp_path, store, name: str, n_days: int) -> int:
    path = tmp_path / name
    _write_days(path, n_days, per_day=400)
    tracemalloc.start()
    try:
        [report] = import_files(store, [path], FMT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.status is ImportStatus.IMPORTED and report.snapshots == n_days, report.error
    return peak


def test_many_quote_dates_stream_with_bounded_memory(store, tmp_path, monkeypatch):
    """Peak Python memory is set by the read block, the chunk and one date's rows, not by the number of
    dates in the file. Block and chunk are shrunk so that a small test file spans many of each."""
    from spx_core.marketdata.importers import parsing

    monkeypatch.setattr(hod, "_CHUNK_ROWS", 200)
    monkeypatch.setattr(parsing, "_BLOCK_CHARS", 1 << 14)
    import_files(store, [FIXTURE], FMT)  # one-time allocations (calendar, lazy imports) out of the way
    small = _peak_bytes(tmp_path, store, "small.csv", 20)
    large = _peak_bytes(tmp_path, store, "large.csv", 80)
    assert large < 1.3 * small, (small, large)  # 4x the dates and rows, about the same peak


def test_the_real_spx_data_imports_detects_the_format_and_reports_lines(tmp_path):
    db = tmp_path / "data.sqlite"
    done = run_spx_data("import", "--format", FMT, "--db", db, "--json", FIXTURE)
    assert done.returncode == 0, done.stderr
    [report] = json.loads(done.stdout)["files"]
    assert (report["status"], report["snapshots"], report["quotes_stored"]) == ("imported", 3, 11)
    assert sorted((r["line"], r["reason"]) for r in report["rejected"]) == EXPECTED_REJECTIONS
    copy = tmp_path / "no_format.csv"
    copy.write_bytes(FIXTURE.read_bytes())
    again = run_spx_data("import", "--db", db, "--json", FIXTURE, copy)  # no --format: detected from the header
    assert again.returncode == 0, again.stderr
    assert [f["status"] for f in json.loads(again.stdout)["files"]] == ["duplicate", "duplicate"]
    listed = run_spx_data("snapshots", "--db", db, "--json")
    assert listed.returncode == 0 and len(json.loads(listed.stdout)["snapshots"]) == 3


def _quotes_in(store) -> int:
    return sum(info.n_quotes for info in store.list_snapshots())


def test_mutated_files_are_stored_or_rejected_line_by_line(store, tmp_path):
    """The other importers' fuzz (byte flips, truncation, repeated/deleted lines, stray quotes, garbage fields)
    on the fixture: never raises; a failed file stores nothing and says why in words; an imported one accounts
    for every row (a stored quote or a rejection with its own line)."""
    import random

    from tests.marketdata.test_import_fuzz import _UNEXPLAINED, mutate

    rng = random.Random("20261203:historical-option-data")
    source = FIXTURE.read_bytes()
    outcomes = set()
    for k in range(120):
        path = tmp_path / f"case{k:03d}.csv"
        path.write_bytes(mutate(rng, source))
        before = _quotes_in(store)
        [report] = import_files(store, [path], FMT)
        outcomes.add(report.status)
        stored = _quotes_in(store) - before
        context = f"{path.name}: {report.status} {report.error} {report.rejected[:3]}"
        if report.status is ImportStatus.DUPLICATE:
            continue
        if report.status is not ImportStatus.IMPORTED:
            assert stored == 0 and report.error and "\n" not in report.error, context
            assert not _UNEXPLAINED.match(report.error, len(str(path))), context
            continue
        rows_rejected = sum(1 for r in report.rejected if r.line > 0)
        assert stored == report.quotes_stored, context
        assert report.quotes_stored + rows_rejected == report.rows_read, context
    assert {ImportStatus.IMPORTED, ImportStatus.FAILED} <= outcomes, outcomes


def test_without_format_a_mix_of_detectable_kinds_is_refused_in_one_line(tmp_path, capsys):
    from spx_core.cli.main import main

    db = tmp_path / "mix.sqlite"
    with pytest.raises(SystemExit) as exc:
        main(["import", "--db", str(db), str(FIXTURE), str(FIXTURES / "daily" / "vix.csv")])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and "\n" not in err
    assert "the files mix daily OHLCV and historical-option-data CSVs (import each kind separately)" in err
    assert not looks_like_historical_option_data(FIXTURES / "spxw20190626_cut.csv")
    assert not looks_like_historical_option_data(tmp_path / "missing.csv")
