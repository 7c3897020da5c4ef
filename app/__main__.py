"""``python -m app`` and the PyInstaller entry script (``build.spec`` analyses this file)."""

from app.main import main

raise SystemExit(main())
