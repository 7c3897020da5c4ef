"""Is real OpenGL available for pyqtgraph.opengl? Asked once, safely, before any GL widget exists.

Offscreen and minimal Qt platforms have no OpenGL; Xvfb with Mesa llvmpipe and real desktops do.
Creating a GL widget where there is no GL aborts or logs Qt warnings (which fail our tests), so we
probe with an offscreen surface first and fall back to a 2D heat map when the probe fails.
"""

from __future__ import annotations

import os

from PySide6.QtGui import QGuiApplication, QOffscreenSurface, QOpenGLContext

__all__ = ["opengl_available"]

_NO_GL_PLATFORMS = {"offscreen", "minimal", "vnc", "linuxfb"}


def opengl_available() -> tuple[bool, str]:
    """(available, why): try a real context on an offscreen surface; needs a QGuiApplication."""
    if os.environ.get("SPX_TERMINAL_NO_GL"):
        return False, "OpenGL disabled by SPX_TERMINAL_NO_GL"
    app = QGuiApplication.instance()
    if app is None:
        return False, "no QGuiApplication yet"
    platform = QGuiApplication.platformName()
    if platform in _NO_GL_PLATFORMS:
        return False, f"Qt platform '{platform}' has no OpenGL"
    try:
        import OpenGL.GL  # noqa: F401  (PyOpenGL: pyqtgraph.opengl draws through it)
    except ImportError as exc:
        return False, f"PyOpenGL is not importable: {exc}"
    context = QOpenGLContext()
    if not context.create():
        return False, "could not create an OpenGL context"
    surface = QOffscreenSurface()
    surface.setFormat(context.format())
    surface.create()
    try:
        if not surface.isValid() or not context.makeCurrent(surface):
            return False, "could not make an OpenGL context current"
        fmt = context.format()
        version = f"{fmt.majorVersion()}.{fmt.minorVersion()}"
        context.doneCurrent()
    finally:
        surface.destroy()
    return True, f"OpenGL {version} on '{platform}'"

