"""spx_core must import and work with no Qt module loaded (principle 1)."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

PROBE = r"""
import importlib, pkgutil, sys
import spx_core
blocked = ("PySide6", "pyqtgraph", "qasync", "shiboken6", "app")
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ImportError(f"spx_core imported {name}")
sys.meta_path.insert(0, Block())
names = [m.name for m in pkgutil.walk_packages(spx_core.__path__, "spx_core.")]
for name in names:
    importlib.import_module(name)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in blocked)
print(len(names), loaded)
assert not loaded, loaded
"""


def test_every_spx_core_module_imports_without_qt():
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]


def test_import_linter_contract_holds():
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    result = subprocess.run([str(lint), "--no-cache"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
