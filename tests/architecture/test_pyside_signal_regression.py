"""PySide6 6.12.0 aborts CPython 3.11 (``Fatal Python error: bool_dealloc``) after ~600-2,000
``Signal.emit()`` calls; we pin 6.11.x. This emits 10,000 signals in a subprocess so an abort cannot
take the test runner down with it."""

import os
import subprocess
import sys

PROBE = r"""
from PySide6.QtCore import QCoreApplication, QObject, Signal

class Emitter(QObject):
    fired = Signal(bool)
    moved = Signal(int, float, str)

app = QCoreApplication([])
e = Emitter()
seen = []
e.fired.connect(lambda flag: seen.append(flag))
e.moved.connect(lambda i, x, s: seen.append(i))
for i in range(10_000):
    e.fired.emit(i % 2 == 0)
    e.moved.emit(i, 0.5, "x")
print(len(seen))
"""


def test_ten_thousand_signal_emits_do_not_abort():
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr[-2000:]}"
    assert result.stdout.split()[-1] == "20000"


def test_installed_pyside6_is_not_the_aborting_release():
    import PySide6

    assert not PySide6.__version__.startswith("6.12.0"), "PySide6 6.12.0 aborts CPython 3.11; pin 6.11.x"
