"""import_files machinery: hashing, duplicates, failures, progress, the JSON report form."""

from __future__ import annotations

import hashlib

import pytest

from spx_core.marketdata.importers import ImportStatus, import_files, sha256_file
from tests.marketdata.import_helpers import DATASHOP_CUT, DELAYED_CUT


def test_sha256_streams_files_larger_than_one_block(tmp_path):
    data = bytes(range(256)) * 9000  # ~2.3 MB, more than two 1 MiB blocks
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_unknown_format_is_a_value_error(store):
    with pytest.raises(ValueError, match="unknown import format 'csv'; choose one of cboe-datashop"):
        import_files(store, [DATASHOP_CUT], "csv")


def test_duplicate_by_content_not_by_name(store, tmp_path):
    copy = tmp_path / "spxw_renamed_copy.csv"
    copy.write_bytes(DATASHOP_CUT.read_bytes())
    first, second = import_files(store, [DATASHOP_CUT, copy], "cboe-datashop")
    assert (first.status, second.status) == (ImportStatus.IMPORTED, ImportStatus.DUPLICATE)
    assert (second.quotes_stored, second.snapshots, second.error) == (0, 0, None)
    assert len(store.list_snapshots()) == 1


def test_a_missing_file_fails_and_the_others_still_import(store, tmp_path):
    missing = tmp_path / "nope.csv"
    a, b = import_files(store, [missing, DATASHOP_CUT], "cboe-datashop")
    assert a.status is ImportStatus.FAILED and "cannot read" in a.error and "No such file" in a.error
    assert b.status is ImportStatus.IMPORTED


def test_a_failed_file_can_be_imported_after_it_is_fixed(store, tmp_path):
    path = tmp_path / "spxw_fixme.csv"
    path.write_text("not,a,datashop,file\n")
    assert import_files(store, [path], "cboe-datashop")[0].status is ImportStatus.FAILED
    path.write_bytes(DATASHOP_CUT.read_bytes())
    assert import_files(store, [path], "cboe-datashop")[0].status is ImportStatus.IMPORTED
    assert [r.status for r in store.import_log()] == ["failed", "imported"]


def test_progress_reaches_the_file_size(store):
    seen = []
    import_files(store, [DELAYED_CUT], "cboe-delayed", progress=lambda p, n, total: seen.append((p, n, total)))
    size = DELAYED_CUT.stat().st_size
    assert seen and seen[-1] == (str(DELAYED_CUT), size, size)
    assert [n for _, n, _ in seen] == sorted(n for _, n, _ in seen)


def test_report_dict_has_exactly_the_cli_contract_keys(store, tmp_path):
    bad = tmp_path / "spxw_bad.csv"
    bad.write_bytes(DATASHOP_CUT.read_bytes().replace(b",65.8,", b",x,"))
    [report] = import_files(store, [bad], "cboe-datashop")
    d = report.to_dict()
    assert list(d) == ["path", "sha256", "status", "rows_read", "quotes_stored", "snapshots", "rejected", "error"]
    assert d["status"] == "imported" and d["rejected"] == [{"line": 2, "reason": "bid_1545 'x' is not a number"}]
    assert d["sha256"] == hashlib.sha256(bad.read_bytes()).hexdigest()


def test_the_import_log_matches_the_report(store, tmp_path):
    bad = tmp_path / "spxw_bad.csv"
    bad.write_bytes(DATASHOP_CUT.read_bytes().replace(b",65.8,", b",x,"))
    [report] = import_files(store, [bad], "cboe-datashop")
    [record] = store.import_log()
    assert (record.status, record.sha256, record.rows_read, record.quotes_stored, record.snapshots) == (
        "imported", report.sha256, report.rows_read, report.quotes_stored, report.snapshots)
    assert record.rejected == [(r.line, r.reason) for r in report.rejected]


# --- what is not a file: refused by type, never opened -----------------------------------------------
@pytest.mark.parametrize("fmt", ["cboe-datashop", "cboe-delayed", "lean-minute", "databento"])
def test_a_device_is_refused_instead_of_read_forever(store, fmt):
    [report] = import_files(store, ["/dev/zero"], fmt)
    assert report.status is ImportStatus.FAILED
    assert report.error == "/dev/zero is a device, not a regular file; save the data to a file and import that"


def test_a_fifo_is_refused_instead_of_waiting_for_a_writer(tmp_path):
    import os
    import subprocess
    import sys

    fifo = tmp_path / "quotes.csv"
    os.mkfifo(fifo)
    code = ("import sys; from spx_core.cli.main import main; "
            "sys.exit(main(['import', '--format', sys.argv[1], '--db', sys.argv[2], sys.argv[3]]))")
    for fmt in ("cboe-datashop", "databento"):  # databento opens files early to order them: not this one
        out = subprocess.run([sys.executable, "-c", code, fmt, str(tmp_path / "db.sqlite"), str(fifo)],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 1, out.stderr
        assert f"{fifo} is a FIFO (named pipe), not a regular file" in out.stdout
        assert "Traceback" not in out.stdout + out.stderr


def test_a_folder_is_refused_with_a_hint(store, tmp_path):
    [report] = import_files(store, [tmp_path], "cboe-datashop")
    assert report.status is ImportStatus.FAILED and report.error == f"{tmp_path} is a folder; pass the files inside it"


# --- the one row reader: a physical line is a record, whatever the block boundaries -----------------
_TEXT = 'a,1\r\nb,2\rc,3\n\n"d",4\r\n"e,5\r\nf,"6"x\n  ,  \ng,7,,\nh\ni,8'


@pytest.mark.parametrize("block", [1, 2, 3, 5, 8, 1 << 20])
def test_rows_and_line_numbers_do_not_depend_on_how_the_text_is_read(monkeypatch, block):
    import io

    import spx_core.marketdata.importers.parsing as parsing

    monkeypatch.setattr(parsing, "_BLOCK_CHARS", block)
    rejected = []
    chunks = list(parsing.read_csv_chunks(io.StringIO(_TEXT, newline=""), ncols=2, chunk_rows=2, first_line=10,
                                          on_reject=lambda line, reason: rejected.append((line, reason))))
    rows = [(int(n), [str(c[i]) for c in cols]) for lines, cols in chunks for i, n in enumerate(lines)]
    assert all(len(lines) <= 2 for lines, _ in chunks)
    # line 13 is blank (skipped); 17 has the right field count, so the conversions judge its empty cells
    assert rows == [(10, ["a", "1"]), (11, ["b", "2"]), (12, ["c", "3"]), (14, ["d", "4"]), (17, ["  ", "  "]),
                    (18, ["g", "7"]), (20, ["i", "8"])]
    assert [line for line, _ in rejected] == [15, 16, 19]
    assert "bad quoting" in rejected[0][1] and "bad quoting" in rejected[1][1]
    assert rejected[2][1] == "has 1 fields, expected 2"


def test_an_overlong_line_is_rejected_alone(monkeypatch):
    import io

    import spx_core.marketdata.importers.parsing as parsing

    monkeypatch.setattr(parsing, "MAX_LINE_CHARS", 16)
    monkeypatch.setattr(parsing, "_BLOCK_CHARS", 5)
    text = "a,1\n" + "x" * 50 + "\nb,2\n" + "y" * 17 + "\r\nc,3"
    rejected = []
    chunks = list(parsing.read_csv_chunks(io.StringIO(text, newline=""), ncols=2, chunk_rows=10, first_line=1,
                                          on_reject=lambda line, reason: rejected.append(line)))
    assert [int(n) for lines, _ in chunks for n in lines] == [1, 3, 5]
    assert rejected == [2, 4]
