"""The compiled-kernel cache: reused across processes, never stale after a helper edit, optional.

Each test runs the pricing code in a fresh interpreter (numba's cache only matters across processes)
with NUMBA_CACHE_DIR pointing at a temporary folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mpmath as mp
import pytest

pytest.importorskip("numba")

ROOT = Path(__file__).resolve().parents[2]
STRIKES = [4000.0, 5000.0, 5300.0]
_SCRIPT = f"""
import json, numpy as np
STRIKES = {STRIKES!r}
from spx_core.pricing import black76
from spx_core.pricing._compile import KERNELS
p = black76.price(forward=5000.0, strike=np.array(STRIKES), t=0.5, vol=0.2, discount=0.99, is_call=True)
k = KERNELS.get()
print(json.dumps({{"price": p.tolist(), "numba": k is not None,
                  "hits": sum(k.price_loop.stats.cache_hits.values()) if k else 0,
                  "path": k.price_loop.stats.cache_path if k else None}}))
"""


def _run(cache_dir: Path, source_root: Path = ROOT) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir), PYTHONPATH=str(source_root), SPX_NO_NUMBA="0")
    out = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, check=True, env=env,
                         cwd=source_root)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _reference() -> list[float]:
    mp.mp.dps = 30
    f, t, v, d = mp.mpf(5000), mp.mpf("0.5"), mp.mpf("0.2"), mp.mpf("0.99")
    s = v * mp.sqrt(t)
    out = []
    for k in STRIKES:
        d1 = mp.log(f / k) / s + s / 2
        out.append(float(d * (f * mp.ncdf(d1) - k * mp.ncdf(d1 - s))))
    return out


def test_second_process_loads_the_cache(tmp_path):
    first = _run(tmp_path)
    second = _run(tmp_path)
    assert first["numba"] and first["hits"] == 0
    assert second["hits"] == 1 and second["path"] == first["path"]
    assert Path(first["path"]).is_relative_to(tmp_path) and any(Path(first["path"]).glob("*.nbc"))
    assert second["price"] == first["price"]
    assert second["price"] == pytest.approx(_reference(), rel=1e-13)


def test_editing_a_helper_in_another_module_invalidates_the_cache(tmp_path):
    # The loop lives in _black.py; the edit is in _special.py. Plain numba caching would reload the
    # old machine code here, because it only checks the file of the top-level function.
    tree = tmp_path / "src"
    shutil.copytree(ROOT / "spx_core", tree / "spx_core", ignore=shutil.ignore_patterns("__pycache__"))
    before = _run(tmp_path / "cache", tree)
    special = tree / "spx_core" / "pricing" / "_special.py"
    text = special.read_text()
    line = "    return p * q2 * inv, dw * (p2 * dq - q2 * dp) * inv\n"  # erfcx differences on (0.46875, 4]
    assert text.count(line) == 1
    special.write_text(text.replace(line, line.replace("dw *", "2.0 * dw *")))
    after = _run(tmp_path / "cache", tree)
    assert after["hits"] == 0 and after["path"] != before["path"]
    assert after["price"] != before["price"]  # the edited helper really runs


def test_unwritable_cache_folder_compiles_in_memory(tmp_path):
    # A cache folder below a regular file can never be created (whatever the user's rights), like
    # a read-only install or a frozen app without a user cache folder.
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    result = _run(blocker / "cache")
    assert result["numba"] and result["hits"] == 0 and result["path"] is None
    assert result["price"] == pytest.approx(_reference(), rel=1e-13)
