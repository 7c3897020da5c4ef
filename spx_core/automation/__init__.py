"""Strategy automation (issue 10 §5): strategy configs and presets, the entry schedule, the decision engine.

Nothing here reads the wall clock or imports Qt: the app and the backtester pass the market clock in.
Submodules are imported where used (``from spx_core.automation.engine import DecisionEngine``); this package
imports none of them, so loading one part never pulls the scanner or the surface fit.
"""
