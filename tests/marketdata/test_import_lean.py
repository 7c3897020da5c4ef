"""LEAN minute importer: option quote zips -> per-minute snapshots; index trade zip -> bars (1 h quirk)."""

from __future__ import annotations

import zipfile
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from spx_core.domain import ET, Root
from spx_core.marketdata.importers import ImportStatus, import_files
from spx_core.marketdata.importers.lean_minute import LeanOptions
from tests.marketdata.import_helpers import LEAN_INDEX, LEAN_QUOTES, snapshots

FMT = "lean-minute"
CALL_3700 = "20210104_spxw_minute_quote_european_call_37000000_20210104.csv"
INDEX_MEMBER = "20210104_spx_minute_trade.csv"


def _bars_et(store) -> pd.DataFrame:
    bars = store.load_bars("SPX")
    return bars.assign(time=bars["time"].dt.tz_convert(ET))


def _rewrite(src, dst, member, edit):
    """Copy zip ``src`` to ``dst`` with ``edit(text) -> text`` applied to ``member``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            text = zin.read(name).decode()
            zout.writestr(name, edit(text) if name == member else text)
    return dst


def test_index_bars_are_shifted_one_hour_to_eastern_time(store):
    [report] = import_files(store, [LEAN_INDEX], FMT)
    assert report.status is ImportStatus.IMPORTED and report.bars == 15 and report.snapshots == 0
    bars = _bars_et(store)
    # Raw times start at 08:30 (30600000 ms); SPX opened 2021-01-04 at 3764.61 at 09:30 ET and
    # closed at 3700.65: after the shift those prints sit at 09:30 and in the 16:00 ET bar.
    first = bars.iloc[0]
    assert first["time"] == pd.Timestamp(datetime(2021, 1, 4, 9, 30, tzinfo=ET))
    assert first["open"] == 3764.61
    close_bar = bars[bars["time"] == pd.Timestamp(datetime(2021, 1, 4, 16, 0, tzinfo=ET))].iloc[0]
    assert close_bar["close"] == 3700.65


def test_the_index_shift_can_be_turned_off_explicitly(store):
    import_files(store, [LEAN_INDEX], FMT, options=LeanOptions(index_shift_minutes=0))
    assert _bars_et(store).iloc[0]["time"] == pd.Timestamp(datetime(2021, 1, 4, 8, 30, tzinfo=ET))


def test_an_index_file_already_on_eastern_time_is_not_shifted_and_x10000_prices_are_scaled(store, tmp_path):
    def to_et_x10000(text: str) -> str:
        out = []
        for line in text.strip().split("\n"):
            ms, *px, vol = line.split(",")
            out.append(",".join([str(int(ms) + 3_600_000), *(str(round(float(p) * 10_000)) for p in px), vol]))
        return "\n".join(out) + "\n"

    path = _rewrite(LEAN_INDEX, tmp_path / "20210104_trade.zip", INDEX_MEMBER, to_et_x10000)
    import_files(store, [path], FMT)
    first = _bars_et(store).iloc[0]
    assert first["time"] == pd.Timestamp(datetime(2021, 1, 4, 9, 30, tzinfo=ET)) and first["open"] == 3764.61


def test_quote_zip_gives_one_snapshot_per_minute_priced_by_the_index_in_the_same_call(store):
    quotes, index = import_files(store, [LEAN_QUOTES, LEAN_INDEX], FMT)  # index is imported first anyway

    assert quotes.status is ImportStatus.IMPORTED and index.status is ImportStatus.IMPORTED
    assert (quotes.rows_read, quotes.quotes_stored, quotes.snapshots) == (40, 40, 10)
    snaps = snapshots(store)
    # the 09:30 bar's close is known at 09:31: that is the snapshot time
    assert [s.time.astimezone(ET).strftime("%H:%M") for s in snaps] == [f"09:{m}" for m in range(31, 41)]
    first = snaps[0]
    assert first.underlying_price == 3766.63  # close of the 09:30 index bar
    assert {e.root for e in first.expiries()} == {Root.SPXW}
    row = np.flatnonzero((first.strike == 3700) & first.is_call)[0]
    # 34200000,...,649000 (bid close),48,...,679000 (ask close),15
    assert (first.bid[row], first.ask[row], first.bid_size[row], first.ask_size[row]) == (64.9, 67.9, 48, 15)
    assert first.quote_time[row] == first.time_ns


def test_without_index_bars_the_underlying_is_nan(store):
    import_files(store, [LEAN_QUOTES], FMT)
    assert all(np.isnan(s.underlying_price) for s in snapshots(store))


def test_index_bars_already_in_the_store_price_a_later_import(store):
    import_files(store, [LEAN_INDEX], FMT)
    import_files(store, [LEAN_QUOTES], FMT)
    assert snapshots(store)[1].underlying_price == 3766.13  # close of the 09:31 bar


def test_a_malformed_row_is_rejected_with_member_and_line(store, tmp_path):
    def break_row(text: str) -> str:
        lines = text.split("\n")
        lines[2] = lines[2].replace(",620000,", ",x,", 1)
        return "\n".join(lines)

    path = _rewrite(LEAN_QUOTES, tmp_path / "20210104_quote_european.zip", CALL_3700, break_row)
    [report] = import_files(store, [path], FMT)
    assert [(r.line, r.reason) for r in report.rejected] == [(3, f"{CALL_3700} line 3: bid close 'x' is not a number")]
    assert report.quotes_stored == 39


def test_unknown_members_are_reported_and_skipped(store, tmp_path):
    path = tmp_path / "20210104_quote_european.zip"
    with zipfile.ZipFile(LEAN_QUOTES) as zin, zipfile.ZipFile(path, "w") as zout:
        for name in zin.namelist():
            zout.writestr(name, zin.read(name))
        zout.writestr("readme.txt", "hello")
    [report] = import_files(store, [path], FMT)
    assert report.status is ImportStatus.IMPORTED and report.quotes_stored == 40
    assert [(r.line, r.reason) for r in report.rejected] == [
        (0, "readme.txt: not a LEAN SPX/SPXW minute quote or SPX minute trade CSV; skipped")]


def test_a_file_that_is_not_a_zip_fails(store, tmp_path):
    path = tmp_path / "20210104_quote_european.zip"
    path.write_bytes(b"PK\x03\x04 but then nothing useful")
    [report] = import_files(store, [path], FMT)
    assert report.status is ImportStatus.FAILED and "not a zip archive" in report.error
    assert store.list_snapshots() == []


@pytest.mark.shared_data
def test_real_day_with_its_index(store, shared_data):
    quotes, index = import_files(store, [shared_data / "lean_minute/spxw/20210104_quote_european.zip",
                                         shared_data / "lean_minute/spx_index/20210104_trade.zip"], FMT)
    assert (quotes.status, index.status) == (ImportStatus.IMPORTED, ImportStatus.IMPORTED)
    assert (quotes.snapshots, quotes.quotes_stored, quotes.rejected) == (405, 4565, [])  # 09:31..16:15 ET
    infos = store.list_snapshots()
    at = {i.time.astimezone(ET).strftime("%H:%M"): i for i in infos}
    assert at["09:31"].underlying_price == 3766.63
    assert at["16:01"].underlying_price == 3700.65  # the closing print, in the 16:00 ET bar
    assert at["09:31"].n_expiries == 3


# --- zips as they come: mixed, corrupt, duplicated, implausible -------------------------------------
def _zip(path, members: dict[str, bytes]):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def _members(*zips) -> dict[str, bytes]:
    out = {}
    for src in zips:
        with zipfile.ZipFile(src) as z:
            out.update({n: z.read(n) for n in z.namelist()})
    return out


def test_a_zip_with_trade_and_quote_members_imports_both_even_with_bars_stored(store, tmp_path):
    import_files(store, [LEAN_INDEX], FMT)  # stored bars (tz-aware) meet this zip's own bars (int ns)
    mixed = _zip(tmp_path / "20210104_mixed.zip", _members(LEAN_QUOTES, LEAN_INDEX))
    [report] = import_files(store, [mixed], FMT)
    assert report.status is ImportStatus.IMPORTED, report.error
    assert (report.snapshots, report.quotes_stored, report.bars) == (10, 40, 15)
    assert snapshots(store)[0].underlying_price == 3766.63


def _corrupt_member(src, dst, member: str):
    """Copy a zip, flipping bytes in the middle of one member's compressed data (its CRC then fails)."""
    data = bytearray(src.read_bytes())
    with zipfile.ZipFile(src) as z:
        info = z.getinfo(member)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for k in range(start + info.compress_size // 3, start + info.compress_size // 3 + 4):
        data[k] ^= 0x5A
    dst.write_bytes(bytes(data))
    return dst


def test_a_corrupt_member_is_rejected_by_name_and_the_rest_imports(store, tmp_path):
    bad = _corrupt_member(LEAN_QUOTES, tmp_path / "20210104_quote_european.zip", CALL_3700)
    [report] = import_files(store, [bad], FMT)
    assert report.status is ImportStatus.IMPORTED, report.error
    [rejection] = report.rejected
    assert rejection.line == 0 and rejection.reason.startswith(f"{CALL_3700}: cannot be read (")
    assert "member skipped, the rest of the zip imports" in rejection.reason
    assert (report.rows_read, report.quotes_stored) == (30, 30)
    assert not any(s.strike[s.is_call].tolist().count(3700) for s in snapshots(store))


@pytest.mark.parametrize(("name", "reason"), [
    ("19700101_spxw_minute_quote_european_call_37000000_19700101.csv",
     "its day 1970-01-01 is not a plausible quote date"),
    ("20210104_spxw_minute_quote_european_call_37000000_20201231.csv",
     "it expires on 2020-12-31, before its quote day 2021-01-04 (expired series)"),
    ("20210104_spxw_minute_quote_european_call_37000000_20990101.csv",
     "it expires on 2099-01-01, more than 10 years after its quote day 2021-01-04"),
    ("20210104_spxw_minute_quote_european_call_0_20210104.csv", "its strike 0 is not a plausible strike"),
    ("20210104_spxw_minute_quote_european_call_37000000_20211332.csv", "its name does not hold valid dates"),
])
def test_members_whose_names_are_implausible_are_rejected_by_name(store, tmp_path, name, reason):
    members = _members(LEAN_QUOTES)
    members[name] = members[CALL_3700]
    [report] = import_files(store, [_zip(tmp_path / "20210104_quote_european.zip", members)], FMT)
    [rejection] = report.rejected
    assert rejection.line == 0 and rejection.reason.startswith(f"{name}: {reason}") and "skipped" in rejection.reason
    assert report.quotes_stored == 40


def test_a_repeated_minute_in_a_member_is_rejected_naming_the_kept_line(store, tmp_path):
    members = _members(LEAN_QUOTES)
    lines = members[CALL_3700].decode().rstrip("\n").split("\n")
    members[CALL_3700] = ("\n".join([*lines, lines[1]]) + "\n").encode()
    [report] = import_files(store, [_zip(tmp_path / "20210104_quote_european.zip", members)], FMT)
    assert [(r.line, r.reason) for r in report.rejected] == [
        (11, f"{CALL_3700} line 11: the minute 09:31 is already on line 2; kept that one")]
    assert (report.rows_read, report.quotes_stored) == (41, 40)


def test_a_repeated_index_bar_is_rejected_not_dropped_silently(store, tmp_path):
    members = _members(LEAN_INDEX)
    lines = members[INDEX_MEMBER].decode().rstrip("\n").split("\n")
    members[INDEX_MEMBER] = ("\n".join([*lines, lines[0].replace("3764.61", "3764.62", 1)]) + "\n").encode()
    [report] = import_files(store, [_zip(tmp_path / "20210104_trade.zip", members)], FMT)
    assert [(r.line, r.reason) for r in report.rejected] == [
        (16, f"{INDEX_MEMBER} line 16: the bar at raw time 08:30 is already on line 1; kept that one")]
    assert report.bars == 15 and _bars_et(store).iloc[0]["open"] == 3764.61


@pytest.mark.parametrize(("old", "new", "reason"), [
    (",3764.61,", ",0,", "open 0 is not a plausible index level"),
    (",3764.61,", ",-3764.61,", "open '-3764.61' is negative"),
    (",3764.61,", ",inf,", "open 'inf' is not a number"),
])
def test_implausible_index_levels_are_rejected(store, tmp_path, old, new, reason):
    members = _members(LEAN_INDEX)
    members[INDEX_MEMBER] = members[INDEX_MEMBER].replace(old.encode(), new.encode(), 1)
    [report] = import_files(store, [_zip(tmp_path / "20210104_trade.zip", members)], FMT)
    [rejection] = report.rejected
    assert rejection.line == 1 and rejection.reason.startswith(f"{INDEX_MEMBER} line 1: {reason}")
    assert report.bars == 14


def test_a_stray_quote_in_a_member_rejects_only_its_line(store, tmp_path):
    members = _members(LEAN_QUOTES)
    lines = members[CALL_3700].decode().split("\n")
    lines[3] = lines[3].replace(",", ',"', 1)
    members[CALL_3700] = "\n".join(lines).encode()
    [report] = import_files(store, [_zip(tmp_path / "20210104_quote_european.zip", members)], FMT)
    assert [r.line for r in report.rejected] == [4] and "bad quoting" in report.rejected[0].reason
    assert report.quotes_stored == 39


_MEMORY_PROBE = """
import resource, sys, zipfile
from pathlib import Path
from spx_core.marketdata.importers import import_files
from spx_core.storage import Store

path, db = Path(sys.argv[1]), Path(sys.argv[2])
row = ",1234000,1234000,1234000,1234000,10,1256000,1256000,1256000,1256000,12\\n"
member = "".join(f"{m * 60000}{row}" for m in range(1440)).encode()
with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
    for k in range(280):
        for right in ("call", "put"):
            z.writestr(f"20210104_spxw_minute_quote_european_{right}_{(3000 + 5 * k) * 10000}_20210115.csv", member)
inflated = sum(i.file_size for i in zipfile.ZipFile(path).infolist())
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with Store.open(db) as store:
    [report] = import_files(store, [path], "lean-minute")
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(report.status.value, report.quotes_stored, inflated, before // 1024, peak // 1024)
"""


@pytest.mark.slow
def test_a_zip_inflating_to_64_mb_imports_in_bounded_memory(tmp_path):
    import subprocess
    import sys

    # Through sh, which forks: a process exec'd straight from pytest would report pytest's own size,
    # because Linux keeps the larger of the old and new image's peak in ru_maxrss across exec.
    probe = [sys.executable, "-c", _MEMORY_PROBE, str(tmp_path / "20210104_quote_european.zip"),
             str(tmp_path / "mem.sqlite")]
    out = subprocess.run(["sh", "-c", '"$@"; exit $?', "sh", *probe], capture_output=True, text=True, timeout=240,
                         check=True)
    status, stored, inflated, before_mb, peak_mb = out.stdout.split()
    assert int(before_mb) < 200, out.stdout  # the probe's own size before the import (not pytest's)
    assert status == "imported" and int(stored) == 280 * 2 * 1440
    assert int(inflated) > 60 * 2**20
    assert int(peak_mb) < 300, f"peak RSS {peak_mb} MB importing a zip inflating to {int(inflated) >> 20} MB"


def test_a_zip_declaring_more_than_the_inflation_limit_is_refused(store, monkeypatch):
    monkeypatch.setattr("spx_core.marketdata.importers.lean_minute.MAX_INFLATED_BYTES", 1000)
    [report] = import_files(store, [LEAN_QUOTES], FMT)
    assert report.status is ImportStatus.FAILED
    assert "inflate to" in report.error and "split it into days" in report.error
