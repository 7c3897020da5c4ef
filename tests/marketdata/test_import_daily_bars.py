"""Daily OHLCV CSV import: the real S&P 500 and VIX files, their cuts, and hostile fixtures."""

from __future__ import annotations

import gzip
import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spx_core.cli.main import main
from spx_core.domain.calendar import ET
from spx_core.marketdata.importers import ImportStatus, import_files
from spx_core.marketdata.importers.daily_bars import (
    DailyBarsOptions,
    looks_like_daily_bars,
    symbol_from_name,
)
from tests.marketdata.import_helpers import FIXTURES

FMT = "daily-bars"
DAILY = FIXTURES / "daily"
SP500_CUT = DAILY / "sp500.csv.gz"
VIX_CUT = DAILY / "vix.csv"
HOSTILE = DAILY / "hostile_bars.csv"


def _reference(path: Path) -> pd.DataFrame:
    """pandas' own reading of the same file (an independent reader)."""
    return pd.read_csv(path, na_values=["."])


def _et_clock(frame: pd.DataFrame) -> set[str]:
    return set(frame["time"].dt.tz_convert(ET).dt.strftime("%H:%M"))


def test_sp500_cut_imports_every_row_as_spx(store):
    [report] = import_files(store, [SP500_CUT], FMT)
    assert report.status is ImportStatus.IMPORTED and report.rejected == []
    assert report.rows_read == report.bars == 30
    bars = store.load_bars("SPX")
    ref = _reference(SP500_CUT)
    np.testing.assert_array_equal(bars[["open", "high", "low", "close", "volume"]].to_numpy(),
                                  ref[["Open", "High", "Low", "Close", "Volume"]].to_numpy())
    assert bars["time"].iloc[0].tz_convert(ET) == datetime(1999, 1, 4, 16, 0, tzinfo=ET)
    assert _et_clock(bars) == {"16:00"}


def test_vix_cut_rejects_the_dot_row_with_its_line(store):
    [report] = import_files(store, [VIX_CUT], FMT)
    assert report.status is ImportStatus.IMPORTED
    # line 13 is "1/20/2014,." (Martin Luther King day): FRED's missing-value marker
    assert [(r.line, r.reason) for r in report.rejected] == [(13, "close is missing ('.': no value that day)")]
    bars = store.load_bars("VIX")
    assert len(bars) == report.bars == 14 and bars[["open", "high", "low", "volume"]].isna().all().all()
    np.testing.assert_array_equal(bars["close"], _reference(VIX_CUT)["vix"].dropna())


@pytest.mark.shared_data
def test_real_index_files(store, shared_data):
    sp500, vix = shared_data / "index_daily" / "sp500.csv.gz", shared_data / "index_daily" / "vix.csv.gz"
    if not (sp500.exists() and vix.exists()):
        pytest.skip(f"{sp500} or {vix} is absent")
    reports = import_files(store, [sp500, vix], FMT)
    assert [r.status for r in reports] == [ImportStatus.IMPORTED] * 2
    ref_sp, ref_vix = _reference(sp500), _reference(vix)
    assert reports[0].rejected == [] and reports[0].bars == len(ref_sp) == 5031
    dots = np.flatnonzero(ref_vix["vix"].isna().to_numpy()) + 2  # data rows start on line 2
    assert [r.line for r in reports[1].rejected] == dots.tolist() and len(dots) == 46
    spx, vx = store.load_bars("SPX"), store.load_bars("VIX")
    np.testing.assert_array_equal(spx["close"], ref_sp["Close"])
    np.testing.assert_array_equal(vx["close"], ref_vix["vix"].dropna())
    days = pd.to_datetime(ref_sp["Date"], format="%m/%d/%Y").dt.date
    assert (spx["time"].dt.tz_convert(ET).dt.date.to_numpy() == days.to_numpy()).all()


def test_hostile_file_rejects_bad_rows_by_line_and_imports_the_rest(store):
    [report] = import_files(store, [HOSTILE], FMT, options=DailyBarsOptions(symbol="spx"))
    assert report.status is ImportStatus.IMPORTED
    assert report.rows_read == 17 and report.bars == 4
    assert sorted((r.line, r.reason) for r in report.rejected) == [
        (4, "date '2020-13-01' is not a date (YYYY-MM-DD)"),
        (5, "close 'abc' is not a number"),
        (6, "high 99 is below low 100"),
        (7, "close 104 is outside the day's range [100, 103]"),
        (8, "date 2020-01-02 appears again (first on line 2); keep one row per day"),
        (9, "close is missing ('.': no value that day)"),
        (10, "open '-5' is negative"),
        (11, f"date 1850-01-02 is not a plausible day (1900-01-01 to {_latest()})"),
        (13, "has 7 fields, the header has 6"),
        (14, "bad quoting (unexpected end of data); a field that starts with \" must end with \" on the same line"),
        (16, "close is empty"),
        (17, f"date 2099-01-01 is not a plausible day (1900-01-01 to {_latest()})"),
        (18, "close '1e308' is not a plausible index level (0 < level <= 1,000,000)"),
    ]
    bars = store.load_bars("SPX")
    assert [t.tz_convert(ET).day for t in bars["time"]] == [2, 3, 15, 21]
    np.testing.assert_array_equal(bars["close"], [101, 102.5, 102, 102])
    assert np.isnan(bars["open"].iloc[2]) and np.isnan(bars["volume"]).all()  # no volume column


def _latest():
    from spx_core.marketdata.importers.plausible import latest_day

    return latest_day()


@pytest.mark.parametrize(("text", "fmt_rows"), [
    ("date,close\n31/12/2018,100\n02/01/2019,101\n", [(2018, 12, 31), (2019, 1, 2)]),  # day first: US cannot read
    ("date,close\n01/02/2019,100\n01/03/2019,101\n", [(2019, 1, 2), (2019, 1, 3)]),  # both can: US wins
    ("Day,Last\n20190102,100\n20190103,101\n", [(2019, 1, 2), (2019, 1, 3)]),
    ("Date,Price\n02.01.2019,100\n03.01.2019,101\n", [(2019, 1, 2), (2019, 1, 3)]),
    ("Date,Close\n02-Jan-2019,100\n03-Jan-2019,101\n", [(2019, 1, 2), (2019, 1, 3)]),
    ('Date,Close\n"Jan 2, 2019",100\n"Jan 3, 2019",101\n', [(2019, 1, 2), (2019, 1, 3)]),
    ("observation_date,VIXCLS\n2019-01-02,23.22\n2019-01-03,25.45\n", [(2019, 1, 2), (2019, 1, 3)]),
])
def test_date_formats_and_header_names(store, tmp_path, text, fmt_rows):
    path = tmp_path / "spx.csv"
    path.write_text(text)
    [report] = import_files(store, [path], FMT)
    assert report.status is ImportStatus.IMPORTED and report.rejected == [], report
    got = [(t.year, t.month, t.day) for t in store.load_bars("SPX")["time"].dt.tz_convert(ET)]
    assert got == fmt_rows


def test_plain_and_gzip_are_told_apart_by_content_not_name(store, tmp_path):
    plain_named_gz = tmp_path / "vix.csv.gz"
    shutil.copy(VIX_CUT, plain_named_gz)
    gz_named_csv = tmp_path / "sp500.csv"
    gz_named_csv.write_bytes(SP500_CUT.read_bytes())
    reports = import_files(store, [plain_named_gz, gz_named_csv], FMT)
    assert [(r.status, r.bars) for r in reports] == [(ImportStatus.IMPORTED, 14), (ImportStatus.IMPORTED, 30)]


def _corrupt_deflate() -> bytes:
    rows = b"".join(b"2019-01-%02d,%d\n" % (d, 100 + d) for d in range(1, 29))
    data = bytearray(gzip.compress(b"Date,Close\n" + rows, mtime=0))
    data[14:24] = b"\xff" * 10  # inside the deflate stream, past the 10-byte gzip header
    return bytes(data)


@pytest.mark.parametrize(("content", "message"), [
    (b"when,what\n2019-01-02,x\n", "not a daily OHLCV CSV: the header"),
    (b"Date,Close\nyesterday,100\n", "the dates are in no known format (first: 'yesterday')"),
    (gzip.compress(b"Date,Close\n2019-01-02,100\n", mtime=0)[:-12], "the gzip data is damaged"),  # cut short
    # a bad CRC (mtime=0 everywhere here: a parameter's id must not change with the clock, or xdist's workers
    # collect different tests and the run fails)
    (gzip.compress(b"Date,Close\n" + b"2019-01-02,100\n" * 50, mtime=0)[:-8] + b"\0" * 8, "the gzip data is damaged"),
    (_corrupt_deflate(), "the gzip data is damaged"),
    (b"\xff\xfeD\x00a\x00", "not UTF-8 text"),
])
def test_unusable_files_fail_with_one_clear_message(store, tmp_path, content, message):
    path = tmp_path / "spx.csv"
    path.write_bytes(content)
    [report] = import_files(store, [path], FMT)
    assert report.status is ImportStatus.FAILED and message in report.error, report.error
    assert store.load_bars("SPX").empty


def test_symbol_rule():
    assert symbol_from_name(Path("sp500.csv.gz")) == "SPX"
    assert symbol_from_name(Path("^GSPC.csv")) == "SPX"
    assert symbol_from_name(Path("VIX.csv")) == "VIX"
    assert symbol_from_name(Path("vixcls.txt")) == "VIX"
    assert symbol_from_name(Path("spy.csv")) == "SPY"
    assert symbol_from_name(Path("my prices (1).csv")) is None


def test_unknown_symbol_asks_for_symbol(store, tmp_path):
    path = tmp_path / "prices_2019.csv"
    path.write_text("Date,Close\n2019-01-02,100\n")
    [report] = import_files(store, [path], FMT)
    assert report.status is ImportStatus.FAILED and "pass --symbol" in report.error


def test_detection_and_cli(capsys, tmp_path):
    db = tmp_path / "cli.sqlite"
    assert looks_like_daily_bars(SP500_CUT) and looks_like_daily_bars(VIX_CUT) and looks_like_daily_bars(HOSTILE)
    assert not looks_like_daily_bars(FIXTURES / "spxw20190626_cut.csv")
    assert not looks_like_daily_bars(tmp_path / "missing.csv")
    # no --format: detected from the header
    assert main(["import", "--db", str(db), str(SP500_CUT), str(VIX_CUT)]) == 0
    out = capsys.readouterr().out
    assert f"imported   {SP500_CUT}: 30 rows read, 0 quotes in 0 snapshots, 30 bars, 0 rejected" in out
    assert f"    {VIX_CUT}:13: close is missing" in out
    assert main(["import", "--format", FMT, "--symbol", "xyz", "--db", str(db), str(HOSTILE)]) == 0
    from spx_core.storage import Store

    with Store.open(db) as store:
        assert len(store.load_bars("XYZ")) == 4
    for argv, says in ((["import", "--db", str(db), str(FIXTURES / "spxw20190626_cut.csv")], "--format is required"),
                       (["import", "--format", "cboe-delayed", "--symbol", "SPX", "--db", str(db), str(HOSTILE)],
                        "--symbol applies to --format daily-bars only")):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2 and says in capsys.readouterr().err


def test_mutated_files_are_stored_or_rejected_line_by_line(store, tmp_path):
    """The fuzz of the other importers (byte flips, truncation, repeated/deleted lines, stray quotes, garbage
    fields) on the daily cuts: never raises; a failed file stores nothing and says why; an imported one
    accounts for every row (a bar or a rejection with its own line)."""
    import random

    from tests.marketdata.test_import_fuzz import _UNEXPLAINED, mutate

    rng = random.Random("20261203:daily-bars")
    sources = [gzip.decompress(SP500_CUT.read_bytes()), VIX_CUT.read_bytes(), HOSTILE.read_bytes()]
    outcomes = set()
    for k in range(150):
        data = mutate(rng, rng.choice(sources))
        path = tmp_path / f"case{k:03d}.csv"
        path.write_bytes(gzip.compress(data) if k % 5 == 0 else data)
        symbol = f"C{k}"
        [report] = import_files(store, [path], FMT, options=DailyBarsOptions(symbol=symbol))
        outcomes.add(report.status)
        stored = len(store.load_bars(symbol))
        context = f"{path.name}: {report.status} {report.error} {report.rejected[:3]}"
        if report.status is ImportStatus.DUPLICATE:  # a mutation that left the bytes of an earlier case
            continue
        if report.status is not ImportStatus.IMPORTED:
            assert stored == 0 and report.error, context
            assert not _UNEXPLAINED.match(report.error, len(str(path))), context
            continue
        rows_rejected = sum(1 for r in report.rejected if r.line > 0)
        assert stored == report.bars and report.bars + rows_rejected == report.rows_read, context
    assert {ImportStatus.IMPORTED, ImportStatus.FAILED} <= outcomes
