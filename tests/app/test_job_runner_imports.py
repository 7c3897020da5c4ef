"""Workers that start together must never see a partially initialised core module.

Panels' workers (chain, surface, scanner, ticket) each run their first job in their own thread, and
their first jobs import ``spx_core.surface`` / ``spx_core.strategies`` at the same moment. Those packages
import each other; Python resolves such a cycle between threads by handing one thread a partially
initialised module. Without ``job_runner._load_core`` this script fails in about half of fresh
interpreters ("cannot import name ... from partially initialized module").
"""

from __future__ import annotations

import os
import subprocess
import sys

from tests.app.screenshot_driver import REPO

SCRIPT = r"""
import threading
from app.widgets.job_runner import _run

errors = []

def first_job(module):
    def job():
        import importlib
        importlib.import_module(module)
        from spx_core.surface import ExpiryFit  # noqa: F401
        from spx_core.strategies import value_structure  # noqa: F401
    try:
        _run(job)
    except Exception as exc:
        errors.append(repr(exc))

threads = [threading.Thread(target=first_job, args=(m,)) for m in
           ("spx_core.surface.surface", "spx_core.strategies.valuation", "spx_core.surface")]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(errors[0] if errors else "ok")
"""


def test_first_jobs_of_several_workers_import_the_core_safely():
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(REPO)}
    outcomes = [subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env,
                               timeout=120).stdout.strip() for _ in range(6)]
    assert outcomes == ["ok"] * 6, outcomes
