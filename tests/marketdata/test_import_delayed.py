"""Cboe delayed-quotes importer: header values, mixed roots, vendor IV/delta, expired series, variants."""

from __future__ import annotations

import csv
from datetime import datetime

import numpy as np
import pytest

from spx_core.domain import ET, Root
from spx_core.marketdata.importers import ImportStatus, import_files
from tests.marketdata.import_helpers import DATASHOP_CUT, DELAYED_CUT, edit_line, snapshots, store  # noqa: F401

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
