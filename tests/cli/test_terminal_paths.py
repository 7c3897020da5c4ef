"""``spx-terminal`` startup paths: a bad ``--db``, ``$SPX_TERMINAL_HOME``, ``$SPX_TERMINAL_DB`` or settings path
gives one line (exit 2, or a fall-back that says so), never a traceback. (Here beside the CLI tests because
they share the real-process and read-only-folder fixtures.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.main import startup_db
from app.settings import AppSettings, SettingsError, load_settings_with_notes, save_settings
from tests.cli.conftest import Finished

SPX_TERMINAL = Path(sys.executable).parent / "spx-terminal"


def run_terminal(*args: object, home: Path, env: dict[str, str] | None = None, timeout: float = 180) -> Finished:
    proc = subprocess.run([str(SPX_TERMINAL), *map(str, args)], capture_output=True, timeout=timeout,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen", "SPX_TERMINAL_HOME": str(home),
                               **(env or {})})
    return Finished(proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"))


@pytest.fixture
def blocker(tmp_path) -> Path:
    """A file where a folder is expected."""
    path = tmp_path / "a_file"
    path.write_text("x")
    return path


@pytest.mark.parametrize("case", ["db_under_a_file", "db_is_a_folder", "home_is_a_file", "env_db_under_a_file"])
def test_bad_startup_path_is_one_line_and_exit_2(tmp_path, blocker, case):
    home, args, env = tmp_path / "home", [], {}
    if case == "db_under_a_file":
        args = ["--db", blocker / "x.sqlite"]
    elif case == "db_is_a_folder":
        args = ["--db", tmp_path]
    elif case == "home_is_a_file":
        home = blocker
    else:
        env = {"SPX_TERMINAL_DB": str(blocker / "x.sqlite")}
    line = run_terminal(*args, "--self-test", 30, home=home, env=env).assert_one_line_failure(codes=(2,))
    expected = {"db_under_a_file": f"spx-terminal: --db {blocker / 'x.sqlite'}: folder {blocker} is a file",
                "db_is_a_folder": f"spx-terminal: --db {tmp_path} is a folder, not a database file",
                "home_is_a_file": f"spx-terminal: SPX_TERMINAL_HOME {blocker} is a file, not a folder",
                "env_db_under_a_file": f"spx-terminal: SPX_TERMINAL_DB {blocker / 'x.sqlite'}: folder {blocker} "
                                       f"is a file"}[case]
    assert line.startswith(expected), line


def test_an_empty_db_is_refused_before_the_window_opens(capsys):
    from app.main import parse_args

    with pytest.raises(SystemExit) as exc:
        parse_args(["--db", ""])
    assert exc.value.code == 2
    assert "spx-terminal: error: argument --db: is empty: give the SQLite file's path" in capsys.readouterr().err


def test_unwritable_home_is_one_line_and_exit_2(read_only_dir):
    line = run_terminal("--self-test", 30, home=read_only_dir / "home").assert_one_line_failure(codes=(2,))
    assert line.startswith(f"spx-terminal: SPX_TERMINAL_HOME {read_only_dir / 'home'}: {read_only_dir} is not "
                           f"writable") or "cannot be created" in line, line


def test_bad_settings_db_path_falls_back_to_the_default_and_says_so(tmp_path, blocker):
    home = tmp_path / "home"
    home.mkdir()
    bad = blocker / "spx.sqlite"
    (home / "settings.ini").write_text(f"[settings]\ndb_path={bad}\nseed=5\n")
    done = run_terminal("--self-test", 60, home=home)  # returns as soon as all checks pass
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "self-test passed" in done.stdout
    [warning] = [line for line in done.stderr.splitlines() if "settings database path" in line]
    assert f"settings database path {bad}: folder {blocker} is a file" in warning
    assert warning.endswith("using the default database this time")
    assert (home / "spx_terminal.sqlite").is_file()


# --- the validation functions main() uses ----------------------------------------------------------------------
def test_settings_refuse_an_unusable_db_path_and_the_loader_keeps_the_rest(blocker, tmp_path):
    with pytest.raises(SettingsError, match=f"settings database path {blocker / 'x.sqlite'}: folder {blocker} is "
                                            f"a file, not a folder"):
        AppSettings(db_path=str(blocker / "x.sqlite"))
    with pytest.raises(SettingsError, match="is a folder, not a database file"):
        AppSettings(db_path=str(tmp_path))
    assert AppSettings(db_path=str(tmp_path / "new" / "spx.sqlite")).db_path  # a folder still to be made is fine

    save_settings(AppSettings(seed=12, theme="light", db_path=str(tmp_path / "spx.sqlite")))
    tmp_path.joinpath("spx.sqlite").mkdir()  # the stored path went bad after it was saved
    settings, notes = load_settings_with_notes()
    assert (settings.seed, settings.theme, settings.db_path) == (12, "light", "")
    [note] = notes
    assert note.startswith(f"settings database path {tmp_path / 'spx.sqlite'} is a folder")


def test_startup_db_prefers_the_flag_then_the_settings_then_the_default(tmp_path, _isolated_home):
    assert startup_db(str(tmp_path / "flag.sqlite"), str(tmp_path / "set.sqlite")) == tmp_path / "flag.sqlite"
    assert startup_db(None, str(tmp_path / "set.sqlite")) == tmp_path / "set.sqlite"
    assert startup_db(None, "") == _isolated_home / "spx_terminal.sqlite"
