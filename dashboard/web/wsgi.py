"""WSGI entry point for any WSGI server: ``waitress-serve dashboard.web.wsgi:server``.

The app is built on first access to ``server`` (or ``app``), from ``load_settings()``:
``$COMANAGE_CONFIG`` or the bundled sample. Importing this module loads nothing; the store
starts loading in the background when the app is built, after the start-up checks
``serve`` runs (``auth.preflight``). The address the WSGI server binds is not known here: the
app itself answers only loopback peers when ``auth = "none"`` and ``allow_anonymous`` is off.
"""

from __future__ import annotations

import logging
import threading

from ..settings import load_settings
from .app import create_app
from .auth import preflight

log = logging.getLogger("dashboard.web.wsgi")

_lock = threading.Lock()
_app = None


def get_app():
    """The process-wide app, built once."""
    global _app
    with _lock:
        if _app is None:
            settings = load_settings()
            # The checks `serve` runs: a set-up that must not serve raises here, so the WSGI
            # server fails to start with the reason instead of serving it.
            for note in preflight(settings, settings.allow_anonymous, bound=False):
                log.warning("%s", note)
            _app = create_app(settings)
        return _app


def __getattr__(name: str):
    if name == "server":
        return get_app().server
    if name == "app":
        return get_app()
    raise AttributeError(name)
