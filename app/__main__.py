"""``python -m app`` and the PyInstaller entry script (``build.spec`` analyses this file).

``freeze_support()`` first: the Backtest panel's local sweeps run in worker processes (spawn), and in the frozen
bundle a worker is this same executable started with multiprocessing's arguments: it must become the worker,
not open a second window.
"""

import multiprocessing

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from app.main import main

    raise SystemExit(main())
