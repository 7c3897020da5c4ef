"""Cboe delayed-quotes importer: header values, mixed roots, vendor IV/delta, expired series, variants."""

from __future__ import annotations

import csv
from datetime import datetime

import numpy as np
import pytest

from spx_core.domain import ET, Root
from spx_core.marketdata.importers import ImportStatus, import_files
from spx_core.marketdata.importers.cboe_delayed import DelayedOptions
from tests.marketdata.import_helpers import DATASHOP_CUT, DELAYED_CUT, edit_line, snapshots

FMT = "cboe-delayed"


def test_cut_fixture_header_values_and_mixed_roots(store):
    [report] = import_files(store, [DELAYED_CUT], FMT)

    assert report.status is ImportStatus.IMPORTED and report.rejected == []
    assert (report.rows_read, report.quotes_stored, report.snapshots) == (10, 20, 1)
    [snap] = snapshots(store)
    assert snap.time == datetime(2025, 10, 1, 18, 3, tzinfo=ET)  # "Date: October 1, 2025 at 6:03 PM EDT"
    assert snap.underlying_price == 6711.2002  # Last, not the after-hours bid/ask
    assert (snap.underlying_bid, snap.underlying_ask) == (6661.1099, 6743.9702)
    groups = [(e.root, e.expiry.isoformat(), e.stop - e.start) for e in snap.expiries()]
    assert groups == [(Root.SPX, "2026-06-18", 10), (Root.SPXW, "2026-06-30", 10)]


def test_wide_rows_become_call_and_put_quotes_with_vendor_iv_and_delta(store):
    import_files(store, [DELAYED_CUT], FMT)
    frame = snapshots(store)[0].to_frame().set_index(["root", "strike", "is_call"])
    with open(DELAYED_CUT, newline="") as fh:
        rows = list(csv.reader(fh))[4:]
    for row in rows:
        root = "SPXW" if row[1].startswith("SPXW") else "SPX"
        call = frame.loc[(root, float(row[11]), True)]
        put = frame.loc[(root, float(row[11]), False)]
        assert (call["bid"], call["ask"], call["volume"], call["open_interest"]) == (
            float(row[4]), float(row[5]), int(row[6]), int(row[10]))
        assert (call["vendor_iv"], call["vendor_delta"]) == (float(row[7]), float(row[8]))
        assert (put["bid"], put["ask"], put["vendor_iv"], put["vendor_delta"]) == (
            float(row[15]), float(row[16]), float(row[18]), float(row[19]))


def test_expired_expiries_are_rejected_and_the_quote_day_expiry_is_kept(store, tmp_path):
    text = DELAYED_CUT.read_text()
    rows = text.rstrip("\n").split("\n")
    expired = rows[4].replace("Thu Jun 18 2026", "Tue Sep 30 2025").replace("SPX260618", "SPX250930")
    today = rows[5].replace("Thu Jun 18 2026", "Wed Oct 01 2025").replace("SPX260618", "SPXW251001")
    path = tmp_path / "with_expired.csv"
    path.write_text("\n".join([*rows[:4], expired, today]) + "\n")
    [report] = import_files(store, [path], FMT)

    assert [(r.line, r.reason) for r in report.rejected] == [
        (5, "call expiry 2025-09-30 is before the quote date 2025-10-01 (expired series)"),
        (5, "put expiry 2025-09-30 is before the quote date 2025-10-01 (expired series)")]
    [snap] = snapshots(store)
    assert [(e.root, e.expiry.isoformat()) for e in snap.expiries()] == [(Root.SPXW, "2025-10-01")]


def test_a_bad_call_field_rejects_only_the_call_side(store, tmp_path):
    bad = edit_line(DELAYED_CUT, tmp_path / "bad.csv", 6, ",524.8,", ",abc,")
    [report] = import_files(store, [bad], FMT)
    assert [(r.line, r.reason) for r in report.rejected] == [(6, "call bid 'abc' is not a number")]
    assert report.quotes_stored == 19
    frame = snapshots(store)[0].to_frame()
    at_6600 = frame[(frame.strike == 6600) & (frame.root == "SPX")]
    assert list(at_6600.is_call) == [False]


@pytest.mark.parametrize(("old", "new", "reason"), [
    ("SPX260618C06600000", "SPX260618C06650000",
     "call symbol 'SPX260618C06650000' has strike 6650, the row says 6600"),
    ("SPX260618C06600000", "SPX260619C06600000",
     "call symbol 'SPX260619C06600000' has expiry 2026-06-19, the row says 2026-06-18"),
    ("SPX260618C06600000", "QQQ260618C06600000",
     "call symbol 'QQQ260618C06600000' is not an SPX/SPXW option symbol (like SPXW271217C03500000)"),
    ("Thu Jun 18 2026", "Jun 18", "Expiration Date 'Jun 18' is not a date like 'Fri Dec 17 2027'"),
])
def test_contract_cells_must_agree_with_the_row(store, tmp_path, old, new, reason):
    bad = edit_line(DELAYED_CUT, tmp_path / "bad.csv", 6, old, new)
    [report] = import_files(store, [bad], FMT)
    assert (6, reason) in [(r.line, r.reason) for r in report.rejected]


def test_zero_vendor_iv_and_zero_last_mean_none(store, tmp_path):
    bad = edit_line(DELAYED_CUT, tmp_path / "zero.csv", 5, "535.1,0,596.6,598.8,0,0.1816", "0,0,596.6,598.8,0,0")
    import_files(store, [bad], FMT)
    snap = snapshots(store)[0]
    assert np.isnan(snap.vendor_iv[0]) and np.isnan(snap.last[0]) and snap.bid[0] == 596.6


def test_the_older_layout_with_contracts_in_one_cell_imports(store, tmp_path):
    path = tmp_path / "old_layout.csv"
    path.write_text(
        "SPX (S&P 500 INDEX),4181.17,-6.45,\n"
        "Apr 23 2021 @ 13:45 ET,Bid,4180.95,Ask,4181.75,Size,1x1,Vol,0,\n"
        "Calls,Last Sale,Net,Bid,Ask,Vol,IV,Delta,Gamma,Open Int,"
        "Puts,Last Sale,Net,Bid,Ask,Vol,IV,Delta,Gamma,Open Int,\n"
        "21 Apr 23 4180.00 (SPXW2123D4180),3.1,0.5,3.0,3.3,812,0.12,0.52,0.03,100,"
        "21 Apr 23 4180.00 (SPXW2123P4180),2.5,-0.4,2.4,2.6,950,0.11,-0.48,0.03,120,\n"
        "21 May 21 4200.00 (SPX2121E4200),40.1,1.2,39.5,40.5,12,0.15,0.45,0.002,5000,"
        "21 May 21 4200.00 (SPX2121Q4200),55.0,-2.0,54.6,55.8,30,0.16,-0.55,0.002,6000,\n")
    [report] = import_files(store, [path], FMT)
    assert report.status is ImportStatus.IMPORTED and report.rejected == []
    [snap] = snapshots(store)
    assert snap.time == datetime(2021, 4, 23, 13, 45, tzinfo=ET) and snap.underlying_price == 4181.17
    assert (snap.underlying_bid, snap.underlying_ask) == (4180.95, 4181.75)
    assert [(e.root, e.expiry.isoformat()) for e in snap.expiries()] == [
        (Root.SPXW, "2021-04-23"), (Root.SPX, "2021-05-21")]
    assert list(snap.bid) == [3.0, 2.4, 39.5, 54.6]


@pytest.mark.parametrize(("line", "old", "new", "message"), [
    (3, "Date: October 1, 2025 at 6:03 PM EDT", "Updated", "lacks the 'Date: ...' line"),
    (2, "Last: 6711.2002", "Price 6711.2002", "lacks the index 'Last: ...' value"),
    (4, "Calls", "Call", "no column header with 'Calls' and 'Puts'"),
])
def test_a_file_without_its_header_fails(store, tmp_path, line, old, new, message):
    bad = edit_line(DELAYED_CUT, tmp_path / "no_header.csv", line, old, new)
    [report] = import_files(store, [bad], FMT)
    assert report.status is ImportStatus.FAILED and message in report.error
    assert store.list_snapshots() == []


def test_a_datashop_file_is_not_taken_for_delayed_quotes(store):
    [report] = import_files(store, [DATASHOP_CUT], FMT)
    assert report.status is ImportStatus.FAILED and "not a Cboe delayed-quotes CSV" in report.error


@pytest.mark.shared_data
def test_every_real_sample_file_imports_without_rejections(store, shared_data):
    files = sorted((shared_data / "cboe_delayed_quotes").glob("*.csv"))
    assert len(files) == 11
    reports = import_files(store, files, FMT)
    assert all(r.status is ImportStatus.IMPORTED and r.rejected == [] for r in reports)
    assert all(r.quotes_stored == 2 * r.rows_read for r in reports)
    roots = {Root(e.root) for s in snapshots(store) for e in s.expiries()}
    assert roots == {Root.SPX, Root.SPXW}
    assert {s.underlying_price for s in snapshots(store)} == {6711.2002}


# --- header variants: years, browser locales, padding ------------------------------------------------
_REAL_DATE = '"Date: October 1, 2025 at 6:03 PM EDT"'


def _with_date_line(tmp_path, date_cell: str, *, pad: int = 0):
    lines = DELAYED_CUT.read_text().rstrip("\n").split("\n")
    assert lines[2].startswith(_REAL_DATE)
    lines[2] = lines[2].replace(_REAL_DATE, date_cell)
    lines = [line + "," * pad for line in lines]
    path = tmp_path / "variant.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(("cell", "expected"), [
    ('"Date: October 1, 2025 at 6:03 PM EDT"', datetime(2025, 10, 1, 18, 3, tzinfo=ET)),
    ('"Date: October 1 2025 at 6:03 PM EDT"', datetime(2025, 10, 1, 18, 3, tzinfo=ET)),
    ('"Date: October 1, 2025, 6:03 PM EDT"', datetime(2025, 10, 1, 18, 3, tzinfo=ET)),
    ("Date: October 1, 2025 at 6:03 PM EDT", datetime(2025, 10, 1, 18, 3, tzinfo=ET)),  # unquoted: split cell
    ('"Date: Jan 6, 2025 at 4:15 PM EST"', datetime(2025, 1, 6, 16, 15, tzinfo=ET)),
    ('"Date: October 1, 2025 at 5:03 PM GMT-5"', datetime(2025, 10, 1, 18, 3, tzinfo=ET)),
    ('"Date: 1. Oktober 2025 um 18:03 GMT-4"', datetime(2025, 10, 1, 18, 3, tzinfo=ET)),
    ('"Date: 1 octobre 2025 à 18:03 UTC\u22124"', datetime(2025, 10, 1, 18, 3, tzinfo=ET)),
    ('"Date: 1 de octubre de 2025, 6:03 p. m. GMT-4"', datetime(2025, 10, 1, 18, 3, tzinfo=ET)),
    ('"Date: 2 févr. 2025, 16:15"', datetime(2025, 2, 2, 16, 15, tzinfo=ET)),  # no zone: ET
    ("Oct 01 2025 @ 18:03 ET", datetime(2025, 10, 1, 18, 3, tzinfo=ET)),
])
def test_date_line_variants_are_read(store, tmp_path, cell, expected):
    [report] = import_files(store, [_with_date_line(tmp_path, cell)], FMT)
    assert report.status is ImportStatus.IMPORTED, report.error
    assert report.rejected == [] and report.quotes_stored == 20
    assert snapshots(store)[0].time == expected


def test_lines_padded_with_trailing_commas_import_like_unpadded(store, tmp_path):
    [report] = import_files(store, [_with_date_line(tmp_path, _REAL_DATE, pad=6)], FMT)
    assert report.status is ImportStatus.IMPORTED, report.error
    assert (report.rows_read, report.quotes_stored, report.rejected) == (10, 20, [])


@pytest.mark.parametrize("cell", ['"Date: sometime on October 1, 2025"', '"Date: October 1, 2025 at 6:03 PM AEST"',
                                  '"Date: 10/1/2025 6:03 PM"'])
def test_an_unreadable_time_fails_naming_the_line_and_the_time_option(store, tmp_path, cell):
    [report] = import_files(store, [_with_date_line(tmp_path, cell)], FMT)
    assert report.status is ImportStatus.FAILED
    assert "line 3: cannot read the date and time in" in report.error and "pass --time ISO" in report.error
    assert store.list_snapshots() == []


def test_the_time_option_supplies_an_unreadable_time(store, tmp_path):
    path = _with_date_line(tmp_path, '"Date: sometime on October 1, 2025"')
    [report] = import_files(store, [path], FMT, options=DelayedOptions(time=datetime(2025, 10, 1, 16, 15)))
    assert report.status is ImportStatus.IMPORTED and report.rejected == []
    assert snapshots(store)[0].time == datetime(2025, 10, 1, 16, 15, tzinfo=ET)  # naive = ET


def test_the_time_option_supplies_a_missing_date_line(store, tmp_path):
    bad = edit_line(DELAYED_CUT, tmp_path / "no_date.csv", 3, "Date: October 1, 2025 at 6:03 PM EDT", "Updated")
    [failed] = import_files(store, [bad], FMT)
    assert failed.status is ImportStatus.FAILED and "pass --time ISO" in failed.error
    when = datetime(2025, 10, 1, 20, 15, tzinfo=ET)
    [report] = import_files(store, [bad], FMT, options=DelayedOptions(time=when))
    assert report.status is ImportStatus.IMPORTED and snapshots(store)[0].time == when


@pytest.mark.parametrize(("line", "old", "new", "message"), [
    (2, "Last: 6711.2002", "Last: 0", "line 2: the index Last 0 is not a plausible index level"),
    (2, "Last: 6711.2002", "Last: -6711.2", "line 2: the index Last -6711.2 is not a plausible index level"),
    (2, "Last: 6711.2002", "Last: inf", "line 2: the index Last inf is not a plausible index level"),
    (3, "October 1, 2025", "January 1, 1970", "the snapshot time 1970-01-01T18:03:00-04:00 is not a plausible"),
    (4, "Gamma,Open Interest,Strike", "Gamma,IV,Strike", "the call columns name iv more than once ('iv', 'iv')"),
])
def test_implausible_header_values_fail_the_file(store, tmp_path, line, old, new, message):
    bad = edit_line(DELAYED_CUT, tmp_path / "bad_header.csv", line, old, new)
    [report] = import_files(store, [bad], FMT)
    assert report.status is ImportStatus.FAILED and message in report.error, report.error
    assert store.list_snapshots() == []


def test_an_implausible_index_bid_is_stored_as_unknown_and_reported(store, tmp_path):
    bad = edit_line(DELAYED_CUT, tmp_path / "bad_bid.csv", 3, "Bid: 6661.1099", "Bid: -1")
    [report] = import_files(store, [bad], FMT)
    assert report.status is ImportStatus.IMPORTED and report.quotes_stored == 20
    assert [(r.line, r.reason) for r in report.rejected] == [
        (3, "the index Bid -1 is not a plausible index level (0 < level <= 1,000,000); stored as unknown")]
    assert np.isnan(snapshots(store)[0].underlying_bid)


@pytest.mark.parametrize(("old", "new", "reason"), [
    (",6600.00,", ",0,", "Strike '0' is not a plausible strike"),
    (",6600.00,", ",1e308,", "Strike '1e308' is not a plausible strike"),
    (",524.8,", ",1e308,", "call bid '1e308' is not a plausible price"),
])
def test_implausible_row_values_are_rejected(store, tmp_path, old, new, reason):
    bad = edit_line(DELAYED_CUT, tmp_path / "bad_row.csv", 6, old, new)
    [report] = import_files(store, [bad], FMT)
    assert [r.line for r in report.rejected] in ([6], [6, 6]) and reason in report.rejected[0].reason


def test_a_row_without_contracts_is_rejected_not_skipped(store, tmp_path):
    rows = DELAYED_CUT.read_text().rstrip("\n").split("\n")
    cells = rows[5].split(",")
    cells[1] = cells[12] = ""
    path = tmp_path / "no_contracts.csv"
    path.write_text("\n".join([*rows[:5], ",".join(cells), *rows[6:]]) + "\n")
    [report] = import_files(store, [path], FMT)
    assert [(r.line, r.reason) for r in report.rejected] == [(6, "lists neither a call nor a put contract")]
    assert report.quotes_stored == 18


def test_a_stray_quote_rejects_only_its_line(store, tmp_path):
    bad = edit_line(DELAYED_CUT, tmp_path / "quote.csv", 6, ",524.8,", ',"524.8,')
    [report] = import_files(store, [bad], FMT)
    assert [r.line for r in report.rejected] == [6] and "bad quoting" in report.rejected[0].reason
    assert (report.rows_read, report.quotes_stored) == (10, 18)


def test_the_cli_names_the_line_then_accepts_time(tmp_path, capsys):
    from spx_core.cli.main import main

    path = _with_date_line(tmp_path, '"Date: sometime on October 1, 2025"')
    db = str(tmp_path / "cli.sqlite")
    assert main(["import", "--format", FMT, "--db", db, str(path)]) == 1
    out = capsys.readouterr().out
    assert "line 3: cannot read the date and time in 'Date: sometime on October 1, 2025'; pass --time ISO" in out
    assert main(["import", "--format", FMT, "--db", db, "--time", "2025-10-01T16:15", str(path)]) == 0
    assert "imported   " in capsys.readouterr().out
    for fmt, when, message in ((FMT, "10/01/2025", "--time '10/01/2025' is not an ISO date-time"),
                               ("cboe-datashop", "2025-10-01T16:15", "--time applies to --format cboe-delayed only")):
        with pytest.raises(SystemExit) as usage:
            main(["import", "--format", fmt, "--db", db, "--time", when, str(path)])
        assert usage.value.code == 2 and message in capsys.readouterr().err


def test_a_field_only_one_side_names_is_unknown_on_the_other(store, tmp_path):
    lines = DELAYED_CUT.read_text().split("\n")
    head = lines[3].split(",")
    assert head[17] == "Volume"  # the put side's Volume
    head[17] = "Vol."
    lines[3] = ",".join(head)
    path = tmp_path / "put_volume_renamed.csv"
    path.write_text("\n".join(lines))
    [report] = import_files(store, [path], FMT)
    assert report.status is ImportStatus.IMPORTED and report.quotes_stored == 20, report.error
    snap = snapshots(store)[0]
    assert (snap.volume[~snap.is_call] == 0).all() and (snap.volume[snap.is_call] > 0).any()
