"""The PyInstaller bundle: build ``build.spec`` once per session, then run the frozen app's ``--self-test``.

The build goes to temporary folders (never ``dist/``) and takes ~50 s on 2 cores; every test here shares it.
Offscreen the surface panel shows its heat map; under Xvfb + Mesa the frozen app must draw the 3D view, which
is what proves the pyqtgraph.opengl / PyOpenGL hidden imports in ``build.spec`` are complete.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NAME = "spx-terminal"
pytestmark = pytest.mark.slow

SELF_TEST_CHECKS = ("PASS window", "PASS feed: Simulated", "PASS chain", "PASS surface", "PASS errors",
                    "PASS backtest: ran", "self-test passed")  # the frozen app runs a backtest in its panel
# Qt parts build.spec trims; if one comes back, the trimming broke (or the app started using it: update both).
TRIMMED = ("libQt6Quick", "libQt6Qml", "libQt6WebEngine", "libQt6Pdf", "libQt6Multimedia", "libQt6Network",
           "libQt63D", "libqgtk3", "libgtk-3", "libcairo", "libllvmlite")
MAX_BUNDLE_MB = 400  # 320 MiB measured; numba/llvmlite (+180 MB) or untrimmed Qt would cross this


@pytest.fixture(scope="session")
def bundle(tmp_path_factory) -> Path:
    """Build the one-dir bundle with this interpreter's PyInstaller; returns the bundle folder."""
    if importlib.util.find_spec("PyInstaller") is None:
        pytest.skip("PyInstaller is not installed (pip install -e '.[test]' installs it)")
    root = tmp_path_factory.mktemp("bundle")
    env = dict(os.environ)
    env.pop("SPX_BUNDLE_NUMBA", None)  # test the default, shipped configuration
    cmd = [sys.executable, "-m", "PyInstaller", str(REPO / "build.spec"), "--noconfirm",
           "--distpath", str(root / "dist"), "--workpath", str(root / "work")]
    result = subprocess.run(cmd, check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"PyInstaller failed (exit {result.returncode}):\n{result.stderr[-5000:]}"
    folder = root / "dist" / NAME
    assert (folder / NAME).is_file(), f"no executable in {folder}: {sorted(p.name for p in folder.iterdir())}"
    return folder


def _run_self_test(bundle: Path, home: Path, **env_overrides: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "SPX_TERMINAL_HOME": str(home), **env_overrides}
    for leaked in ("SPX_NO_NUMBA", "SPX_TERMINAL_NO_GL", "SPX_TERMINAL_REPORT_PAINT", "PYTHONPATH"):
        env.pop(leaked, None)
    return subprocess.run([str(bundle / NAME), "--seed", "5", "--self-test", "60"], check=False, cwd=home,
                          env=env, capture_output=True, text=True, timeout=240)


def _assert_passed(result: subprocess.CompletedProcess[str]) -> None:
    out = result.stdout
    assert result.returncode == 0, f"exit {result.returncode}\n{out}\n{result.stderr[-4000:]}"
    for check in SELF_TEST_CHECKS:
        assert check in out, f"{check!r} missing from the frozen self-test output:\n{out}\n{result.stderr[-2000:]}"


def test_frozen_app_passes_its_self_test_offscreen(bundle, tmp_path):
    # with a local sweep: its two worker processes are the frozen executable itself (multiprocessing spawn)
    result = _run_self_test(bundle, tmp_path, SPX_SELF_TEST_SWEEP="1")
    _assert_passed(result)
    assert "PASS backtest: sweep" in result.stdout, result.stdout[-3000:]
    assert "heat map view" in result.stdout  # offscreen Qt has no OpenGL: the fallback must be used
    log = tmp_path / "logs" / "spx-terminal.log"
    assert log.exists(), "the frozen app wrote no log file"
    # e.g. "numba unavailable" if the runtime hook did not select the numpy path, a missing resource, a
    # module that failed to import lazily: the self-test survives those, the log shows them
    lines = log.read_text(encoding="utf-8").splitlines()
    problems = [line for line in lines if " WARNING " in line or " ERROR " in line]
    assert not problems, "\n".join(problems)


def test_bundle_has_resources_and_icu_and_is_trimmed(bundle):
    internal = bundle / "_internal"
    for rel in ("resources/styles/dark.qss", "resources/styles/light.qss", "resources/icons/spx_terminal.svg"):
        assert (internal / rel).is_file(), f"{rel} is not in the bundle (build.spec datas)"
    files = [p for p in bundle.rglob("*") if p.is_file() and not p.is_symlink()]  # PyInstaller links libs
    names = [p.name for p in files]
    assert any(n.startswith("libicudata") for n in names), "libicu* was trimmed, but QtCore links it"
    assert any(n.startswith("libqxcb") for n in names), "the xcb platform plugin is missing (desktop Linux)"
    present = sorted({n for n in names if n.startswith(TRIMMED)})
    assert not present, f"trimmed libraries are back in the bundle: {present}"
    assert not any("translations" in p.parts for p in files), "Qt translations should be trimmed"
    size_mb = sum(p.stat().st_size for p in files) / 2**20
    assert size_mb < MAX_BUNDLE_MB, f"bundle is {size_mb:.0f} MB (> {MAX_BUNDLE_MB}): what was added?"


@pytest.mark.xvfb
def test_frozen_app_draws_the_3d_surface_under_xvfb(bundle, tmp_path, xvfb_display):
    result = _run_self_test(bundle, tmp_path, QT_QPA_PLATFORM="xcb", DISPLAY=xvfb_display)
    _assert_passed(result)
    log = (tmp_path / "logs" / "spx-terminal.log").read_text(encoding="utf-8")
    assert "3D view" in result.stdout, (
        f"expected pyqtgraph.opengl's 3D view in the bundle under Xvfb+Mesa:\n{result.stdout}\n{log[-3000:]}")
