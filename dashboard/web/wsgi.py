"""WSGI entry point for any WSGI server: ``waitress-serve dashboard.web.wsgi:server``.

The app is built on first access to ``server`` (or ``app``), from ``load_settings()``:
``$COMANAGE_CONFIG`` or the bundled sample. Importing this module loads nothing; the store
starts loading in the background when the app is built.
"""

from __future__ import annotations

import threading

_lock = threading.Lock()
_app = None


def get_app():
    """The process-wide app, built once."""
    global _app
    with _lock:
        if _app is None:
            from ..settings import load_settings
            from .app import create_app

            _app = create_app(load_settings())
        return _app


def __getattr__(name: str):
    if name == "server":
        return get_app().server
    if name == "app":
        return get_app()
    raise AttributeError(name)
