"""``comanage-dashboard serve``: the app on waitress (or Flask's debug server with --debug)."""

from __future__ import annotations

import logging
import sys

import waitress.server

from ..data.history import open_history
from ..service.store import EstateStore
from ..settings import Settings
from .app import create_app
from .auth import AuthError, is_loopback, preflight
from .gate import MAX_BODY_BYTES

THREADS = 8


def display_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    shown = f"[{shown}]" if ":" in shown and not shown.startswith("[") else shown
    if host == "::":
        shown = "[::1]"
    return f"http://{shown}:{port}/"


def serve(
    settings: Settings,
    debug: bool = False,
    quiet: bool = False,
    out=None,
    allow_anonymous: bool = False,
) -> None:
    """Start the background refresh, then serve until interrupted (blocks).

    Binding errors (port in use, bad address) raise ``OSError`` before anything is served.
    Refreshes are logged (INFO) unless ``quiet``; failures are always logged. A non-loopback
    address without authentication raises ``AuthError`` unless ``allow_anonymous``.
    """
    out = out or sys.stdout
    if allow_anonymous:  # the app itself refuses other computers unless this is set
        settings = settings.with_values(allow_anonymous=True)
    notes = preflight(settings, settings.allow_anonymous)  # before anything starts
    if debug and not is_loopback(settings.host):
        raise AuthError("--debug runs Flask's development server: loopback addresses only")
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
    )

    host, port = settings.host, settings.port

    store = EstateStore(settings, use_cache=True, history=open_history(settings))
    app = create_app(settings, store)
    if debug:
        store.start()
        print(
            f"serving {display_url(host, port)} (Flask debug server: not for production)",
            file=out,
            flush=True,
        )
        for note in notes:
            print(note, file=out, flush=True)
        # Dash's dev tools, but never Werkzeug's interactive debugger: its /console runs
        # Python for whoever reaches the port, PIN or not.
        app.run(
            host=host,
            port=port,
            debug=True,
            use_reloader=False,
            use_debugger=False,
            dev_tools_disable_version_check=True,
        )  # no call to plotly.com
        return

    server = waitress.server.create_server(
        app.server,
        host=host,
        port=port,
        threads=THREADS,
        ident="comanage-dashboard",
        max_request_body_size=MAX_BODY_BYTES,
    )
    store.start()
    print(
        f"serving {display_url(host, port)} (data loads in the background; Ctrl+C stops)",
        file=out,
        flush=True,
    )
    for note in notes:
        print(note, file=out, flush=True)
    try:
        server.run()
    finally:
        store.stop()
        server.close()
