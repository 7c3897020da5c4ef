"""Panels: one file per panel, each a :class:`app.panels.base.LivePanel` registered in ``app.main_window.PANELS``."""
