"""Every expected failure of the real ``spx-data`` is one line on stderr with exit 1 or 2, never a traceback."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from spx_core.cli.main import main
from spx_core.storage import Store
from tests.cli.conftest import SPX_DATA, run_spx_data

START = "2024-03-05T10:00"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    """A database holding one simulated session of two snapshots (ids 1 and 2)."""
    db = tmp_path_factory.mktemp("recorded") / "sim.sqlite"
    done = run_spx_data("simulate", "--db", db, "--seed", 5, "--minutes", 2, "--start", START)
    assert done.returncode == 0, done.stderr
    return db


def _damaged_copy(src: Path, dst: Path) -> Path:
    """``src`` with the start of every page after the first overwritten: SQLite reports it malformed."""
    data = bytearray(src.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    for offset in range(page, len(data), page):
        data[offset:offset + 64] = b"\xff" * 64
    dst.write_bytes(bytes(data))
    return dst


# --- --db and SPX_TERMINAL_HOME paths ------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [
    ["snapshots"],
    ["simulate", "--seed", "1", "--minutes", "1", "--start", START],
    ["import", "--format", "cboe-delayed", "no_such_file.csv"],
    ["greeks", "--snapshot", "1", "--csv", "-"],
])
def test_db_whose_parent_is_a_file(tmp_path, argv):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    line = run_spx_data(*argv, "--db", blocker / "sub" / "x.sqlite").assert_one_line_failure()
    assert f"{blocker} is a file, not a folder" in line and "--db" in line


def test_db_whose_folder_cannot_be_created(read_only_dir):
    line = run_spx_data("simulate", "--db", read_only_dir / "new" / "x.sqlite", "--seed", 1, "--minutes", 1,
                        "--start", START).assert_one_line_failure()
    assert "not writable" in line or "cannot be created" in line
    assert "--db" in line


@pytest.mark.parametrize("argv", [["orders"], ["positions", "--json"], ["snapshots"],
                                  ["simulate", "--seed", "1", "--minutes", "1", "--start", START]])
@pytest.mark.parametrize("empty", ["", "  "])
def test_an_empty_db_is_refused_not_taken_for_the_default(tmp_path, monkeypatch, capsys, argv, empty):
    """``--db "$UNSET_VAR"`` must not quietly open (or fill) the default database."""
    monkeypatch.setenv("SPX_TERMINAL_HOME", str(tmp_path / "home"))
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--db", empty])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "argument --db: is empty: give the SQLite file's path, or leave --db out" in err
    assert "Traceback" not in err and not (tmp_path / "home").exists()


def test_spx_backtest_refuses_an_empty_db_too(tmp_path, monkeypatch, capsys):
    from spx_core.cli.backtest_main import main as backtest_main

    monkeypatch.setenv("SPX_TERMINAL_HOME", str(tmp_path / "home"))
    with pytest.raises(SystemExit) as exc:
        backtest_main(["runs", "--db", ""])
    assert exc.value.code == 2 and "argument --db: is empty" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["snapshots", "export", "greeks", "surface"])
def test_read_commands_refuse_a_missing_database_and_create_nothing(tmp_path, command):
    typo = tmp_path / "typo" / "spx.sqlite"
    extra = {"snapshots": [], "export": ["--snapshot", 1, "--csv", tmp_path / "o.csv"],
             "greeks": ["--snapshot", 1, "--csv", tmp_path / "o.csv"], "surface": ["--snapshot", 1, "--json"]}
    line = run_spx_data(command, "--db", typo, *extra[command]).assert_one_line_failure()
    assert f"--db {typo}: no such database" in line
    assert not typo.parent.exists() and not (tmp_path / "o.csv").exists()


def test_read_command_refuses_a_missing_default_database(tmp_path):
    home = tmp_path / "home"
    line = run_spx_data("snapshots", env={"SPX_TERMINAL_HOME": str(home)}).assert_one_line_failure()
    assert "no such database" in line and "SPX_TERMINAL_HOME" in line
    assert not (home / "spx_terminal.sqlite").exists()


@pytest.mark.parametrize("argv", [["snapshots"], ["simulate", "--seed", "1", "--minutes", "1", "--start", START]])
def test_home_that_is_a_file(tmp_path, argv):
    home = tmp_path / "home_file"
    home.write_text("x")
    line = run_spx_data(*argv, env={"SPX_TERMINAL_HOME": str(home)}).assert_one_line_failure()
    assert line.endswith(f"SPX_TERMINAL_HOME {home} is a file, not a folder; "
                         f"set SPX_TERMINAL_HOME to a folder you can write, or unset it")


def test_home_that_is_not_writable(read_only_dir):
    line = run_spx_data("simulate", "--seed", 1, "--minutes", 1, "--start", START,
                        env={"SPX_TERMINAL_HOME": str(read_only_dir / "home")}).assert_one_line_failure()
    assert "SPX_TERMINAL_HOME" in line and "not writable" in line


# --- files that are not (good) databases ----------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["text", "folder", "damaged", "empty_sqlite_header"])
@pytest.mark.parametrize("command", ["greeks", "surface"])
def test_numerics_on_a_file_that_is_not_a_good_database(tmp_path, recorded, kind, command):
    target = tmp_path / f"{kind}.sqlite"
    if kind == "text":
        target.write_text("root,expiry,strike\nSPX,2024-03-15,5000\n")
    elif kind == "folder":
        target.mkdir()
    elif kind == "damaged":
        _damaged_copy(recorded, target)
    else:
        target.write_bytes(b"SQLite format 3\x00" + b"\x00" * 84)  # a header and nothing else
    out = ["--csv", tmp_path / "g.csv"] if command == "greeks" else ["--json"]
    line = run_spx_data(command, "--db", target, "--snapshot", 1, *out).assert_one_line_failure()
    assert str(target) in line
    # the wording is the store's when it names the failure itself (StorageError), else the CLI's
    assert any(word in line for word in ("not an spx-terminal database", "not an SQLite database", "is a folder",
                                         "damaged", "corrupt")), line
    assert not (tmp_path / "g.csv").exists()


# --- pipes, disks and outputs ------------------------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("head") is None, reason="needs the Unix `head` command")
def test_greeks_into_head_stops_quietly(recorded):
    producer = subprocess.Popen([str(SPX_DATA), "greeks", "--db", str(recorded), "--snapshot", "1", "--csv", "-"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    head = subprocess.run(["head", "-1"], stdin=producer.stdout, capture_output=True, timeout=180)
    producer.stdout.close()
    err = producer.stderr.read().decode()
    producer.stderr.close()
    code = producer.wait(timeout=180)
    assert head.stdout.decode().startswith("root,expiry,strike,right,bid,ask,forward")
    assert err == "" and code == 1  # several MB of CSV: head's exit always breaks the pipe


def test_simulate_on_a_full_disk_says_how_much_was_recorded(small_disk):
    db = small_disk / "full.sqlite"
    done = run_spx_data("simulate", "--db", db, "--seed", 2, "--minutes", 60, "--start", START)
    line = done.assert_one_line_failure(codes=(1,))
    assert line.startswith(f"spx-data simulate: disk full while writing {db}")
    assert "of 60 snapshots of session" in line and "--replace" in line


def test_export_to_a_full_disk_leaves_no_file(small_disk, recorded):
    (small_disk / "ballast").write_bytes(b"\x00" * (1024 * 1024 - 64 * 1024))  # leave ~64 KiB free
    target = small_disk / "chain.csv"
    done = run_spx_data("export", "--db", recorded, "--snapshot", 1, "--csv", target)
    line = done.assert_one_line_failure(codes=(1,))
    assert line == f"spx-data export: cannot write --csv {target}: disk full; free some space, or write to another disk"
    assert sorted(p.name for p in small_disk.iterdir()) == ["ballast"]


# --- simulate: one session per seed and start -------------------------------------------------------------------
def test_simulate_again_refuses_to_duplicate_the_session(tmp_path):
    db = tmp_path / "sim.sqlite"
    first = run_spx_data("simulate", "--db", db, "--seed", 9, "--minutes", 2, "--start", START)
    assert first.returncode == 0, first.stderr
    again = run_spx_data("simulate", "--db", db, "--seed", 9, "--minutes", 2, "--start", START)
    line = again.assert_one_line_failure(codes=(1,))
    session = "simulated:seed=9:2024-03-05T15:00:00+00:00"
    assert line == (f"spx-data simulate: session {session!r} already recorded (2 snapshots); "
                    f"use --session NAME to record another, or --replace to record it again")
    with Store.open(db) as store:
        assert [(s.name, s.n_snapshots) for s in store.list_sessions()] == [(session, 4)]  # 2 SPX + 2 SPY


def test_simulate_replace_and_session(tmp_path, capsys):
    db = tmp_path / "sim.sqlite"
    def simulate(minutes: int, *extra: str) -> int:
        return main(["simulate", "--db", str(db), "--seed", "9", "--minutes", str(minutes), "--start", START, *extra])

    assert simulate(2) == 0
    with Store.open(db) as store:
        before = [i.checksum for i in store.list_snapshots(underlying="SPX")]
    assert simulate(3, "--replace") == 0
    assert simulate(2, "--session", "second take") == 0
    capsys.readouterr()
    with Store.open(db) as store:
        sessions = {s.name: s.n_snapshots for s in store.list_sessions()}
        replaced = [i.checksum for i in store.list_snapshots(session="simulated:seed=9:2024-03-05T15:00:00+00:00",
                                                             underlying="SPX")]
    assert sessions == {"simulated:seed=9:2024-03-05T15:00:00+00:00": 6, "second take": 4}  # SPX + SPY each step
    assert replaced[:2] == before  # deterministic: the same seed and start record the same snapshots


# --- the same failures injected in-process (they run without root) ---------------------------------------------
def _disk_full() -> Exception:
    import sqlite3

    from sqlalchemy.exc import OperationalError

    orig = sqlite3.OperationalError("database or disk is full")
    orig.sqlite_errorname = "SQLITE_FULL"  # what sqlite3 sets on a real SQLITE_FULL
    return OperationalError("INSERT INTO snapshots ...", {}, orig)


def _one_stderr_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line.rsplit("\r", 1)[-1].strip() for line in err.split("\n")]
    lines = [line for line in lines if line]
    assert "Traceback" not in err and len(lines) == 1, err
    return lines[0]


def test_simulate_disk_full_injected(tmp_path, monkeypatch, capsys):
    """ENOSPC faked by patching Store.save_snapshots (the real-disk test above needs root to mount a tmpfs);
    simulate writes each step (SPX and its SPY companion) in one save_snapshots transaction."""
    real_save = Store.save_snapshots
    calls = []

    def save_until_full(self, snaps, **kw):
        calls.append(1)
        if len(calls) > 2:
            raise _disk_full()
        return real_save(self, snaps, **kw)

    monkeypatch.setattr(Store, "save_snapshots", save_until_full)
    db = tmp_path / "sim.sqlite"
    assert main(["simulate", "--db", str(db), "--seed", "4", "--minutes", "5", "--start", START]) == 1
    line = _one_stderr_line(capsys)
    assert line == (f"spx-data simulate: disk full while writing {db}; free some space, or pass a --db on another "
                    f"disk (2 of 5 snapshots of session 'simulated:seed=4:2024-03-05T15:00:00+00:00' were recorded; "
                    f"rerun with --replace to record it whole)")


@pytest.mark.parametrize("command", ["export", "greeks"])
def test_failed_csv_output_leaves_no_file_and_keeps_the_old_one(recorded, tmp_path, monkeypatch, capsys, command):
    import errno

    import pandas as pd

    def write_then_fail(self, out, **kw):
        out.write("root,expiry\nSPX,2024-03-15\n")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", write_then_fail)
    fresh, kept = tmp_path / "fresh.csv", tmp_path / "kept.csv"
    kept.write_text("previous export\n")
    for target in (fresh, kept):
        assert main([command, "--db", str(recorded), "--snapshot", "1", "--csv", str(target)]) == 1
        assert _one_stderr_line(capsys) == (f"spx-data {command}: cannot write --csv {target}: disk full; "
                                            f"free some space, or write to another disk")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.csv"]
    assert kept.read_text() == "previous export\n"


def test_export_output_is_complete_and_readable_by_others(recorded, tmp_path, capsys):
    target = tmp_path / "chain.csv"
    assert main(["export", "--db", str(recorded), "--snapshot", "1", "--csv", str(target)]) == 0
    capsys.readouterr()
    assert target.read_text().startswith("root,expiry,settlement,strike")
    assert target.stat().st_mode & 0o044  # not mkstemp's private 0600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chain.csv"]


def test_a_bug_is_one_line_for_the_user_and_a_traceback_in_the_log(recorded, monkeypatch, capsys, _isolated_home):
    from spx_core.cli import numerics_commands

    def broken(_civ):
        return 1 / 0

    monkeypatch.setattr(numerics_commands, "greeks_frame", broken)
    assert main(["greeks", "--db", str(recorded), "--snapshot", "1", "--csv", "-"]) == 1
    log = _isolated_home / "logs" / "spx-data.log"
    assert _one_stderr_line(capsys) == (f"spx-data greeks: internal error (a bug, please report it): "
                                        f"ZeroDivisionError: division by zero; traceback in {log}")
    text = log.read_text()
    assert "Traceback" in text and "return 1 / 0" in text


@pytest.mark.parametrize("where", ["folder", "missing_folder", "read_only"])
def test_csv_target_that_cannot_be_written(recorded, tmp_path, request, capsys, where):
    target = {"folder": lambda: tmp_path,
              "missing_folder": lambda: tmp_path / "no" / "such" / "out.csv",
              "read_only": lambda: request.getfixturevalue("read_only_dir") / "out.csv"}[where]()
    assert main(["export", "--db", str(recorded), "--snapshot", "1", "--csv", str(target)]) == 1
    line = _one_stderr_line(capsys)
    assert line.startswith(f"spx-data export: ") and str(target) in line
    assert {"folder": "is a folder; name a file", "missing_folder": "does not exist; create it first",
            "read_only": "cannot write --csv"}[where] in line


def test_csv_to_a_device_is_written_in_place(recorded, capsys):
    assert main(["export", "--db", str(recorded), "--snapshot", "1", "--csv", "/dev/null"]) == 0
    assert "to /dev/null" in capsys.readouterr().err


def test_a_base_exception_from_native_code_is_still_one_line(recorded, monkeypatch, capsys):
    from spx_core.cli import numerics_commands

    class PanicException(BaseException):  # what pyo3 raises for a Rust panic
        pass

    def panics(_civ):
        raise PanicException("called `Option::unwrap()` on a `None` value")

    monkeypatch.setattr(numerics_commands, "greeks_frame", panics)
    assert main(["greeks", "--db", str(recorded), "--snapshot", "1", "--csv", "-"]) == 1
    assert "internal error (a bug, please report it): PanicException: called" in _one_stderr_line(capsys)


def test_readers_ask_the_store_not_to_create_the_file(recorded, monkeypatch, capsys):
    """Once ``Store.open`` takes ``create``, readers pass ``create=False`` (no race between check and open)."""
    real_open = Store.open.__func__
    seen = []

    def open_with_create(cls, path=None, *, create=True, **kw):
        seen.append(create)
        return real_open(cls, path, **kw)

    monkeypatch.setattr(Store, "open", classmethod(open_with_create))
    assert main(["snapshots", "--db", str(recorded)]) == 0
    assert main(["surface", "--db", str(recorded), "--snapshot", "1", "--json"]) == 0
    capsys.readouterr()
    assert seen == [False, False]
