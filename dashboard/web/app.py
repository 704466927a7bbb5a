"""The Dash application: shell (navbar, data-status header), router and page registry.

``create_app(settings, store)`` builds one independent app; nothing here loads data at
import time. Pages are modules listed in ``PAGES`` (see ``dashboard.web.pages`` for the
contract a page follows). Data reaches pages only through the ``EstateStore``: it loads at
start and then every ``refresh_minutes`` in a background thread, "Refresh now" asks it to
load again, and while a load runs the previous estate stays on screen. A ``dcc.Interval``
polls the store; when its version changes, ``data-version`` changes and pages re-render.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import dash
import dash_bootstrap_components as dbc
import flask
from dash import Input, Output, State, dcc, html, no_update
from dash.exceptions import PreventUpdate

from ..data.history import open_history
from ..model.device_query import FilterTooLarge
from ..service.store import EstateStore
from ..settings import Settings
from . import auth, export, gate, intune_tiles, security
from .links import first, parse_query, query_string
from .pages import device, devices, intune_only, not_found, overview, trends
from .pages import report as report_page
from .pages.overview import scope_from_query

ASSETS = Path(__file__).resolve().parent / "assets"
TITLE = "Co-management"
POLL_MS = 15_000  # how often a page asks the store whether new data arrived
POLL_BUSY_MS = 2_000  # while a refresh runs (or was just requested)
PENDING_SECONDS = 120  # after "Refresh now", poll fast until the store reacts, at most this

# The router's registry, in navbar order. The lead adds pages here.
# report: not in the navbar; intune_only: there only with an Intune source (``nav_pages``)
PAGES = [overview, trends, devices, device, report_page, intune_only]


def find_page(pathname: str | None):
    """The page module serving ``pathname``, or None."""
    path = (pathname or "/").rstrip("/") or "/"
    for page in PAGES:
        matches = getattr(page, "matches", None)
        if matches is not None:
            if matches(path):
                return page
        elif path == page.PATH:
            return page
    return None


def route(store: EstateStore, settings: Settings, pathname: str | None, search: str | None):
    """The page content for a URL (the router callback, callable without Dash)."""
    page = find_page(pathname)
    query = parse_query(search)
    if page is None:
        return not_found.layout(store, settings, pathname or "/", query)
    return page.layout(store, settings, pathname or "/", query)


def location_key(pathname: str | None, search: str | None) -> str:
    """What identifies a drawn page: the path and the query string as the browser shows them."""
    return (pathname or "/") + (search or "")


def referring_location(request: flask.Request) -> tuple[str, str] | None:
    """The URL of the page that asked for the layout: ``(pathname, search)``, or None.

    The page's own script fetches ``/_dash-layout``, so the request's ``Referer`` is the URL
    the browser shows: sent in full to the same origin under our ``Referrer-Policy:
    same-origin``. Another host's (or a missing) Referer gives None: the router callback
    then draws the page, as after any navigation inside the app.
    """
    referer = request.headers.get("Referer")
    if not referer:
        return None
    try:
        parts = urlsplit(referer)
    except ValueError:
        return None
    if parts.netloc != request.host or not parts.path.startswith("/"):
        return None
    return parts.path, f"?{parts.query}" if parts.query else ""


# -- header: data as of, sources, dropped rows, stale data -----------------------------------


def format_time(value: str | datetime | None) -> str:
    """``2026-11-20 12:00 UTC`` from an ISO string or an aware datetime."""
    if value is None or value == "":
        return "unknown"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if value.tzinfo is not None and value.utcoffset().total_seconds() == 0:
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return value.strftime("%Y-%m-%d %H:%M %Z").strip()


def clock(value: float | datetime) -> str:
    """``04:31:05 UTC`` from epoch seconds or an aware datetime."""
    if not isinstance(value, datetime):
        value = datetime.fromtimestamp(value, UTC)
    return value.astimezone(UTC).strftime("%H:%M:%S UTC")


def status_token(store: EstateStore) -> str:
    """Changes whenever the header must change (new data, refreshing, a failure)."""
    status = store.status()
    old = old_data_warning(store) is not None
    return f"{store.version}|{status.refreshing}|{status.error}|{status.stale_since}|{old}"


def data_status(store: EstateStore):
    """The one-line status: data as of, sources, refreshing."""
    estate, status = store.estate, store.status()
    parts = []
    if estate is None:
        parts.append(
            html.Span(
                "Loading data ..." if status.error is None else "No data loaded",
                className="fw-semibold",
            )
        )
    else:
        parts.append(
            html.Span(["Data as of ", html.Strong(format_time(estate.data_as_of), id="data-as-of")])
        )
        if status.loaded_at is not None:
            parts.append(
                html.Span(
                    ["loaded ", html.Strong(format_time(status.loaded_at), id="data-loaded")],
                    title="When this data was read from the sources",
                )
            )
        if status.next_refresh is not None:
            due = status.next_refresh <= datetime.now(UTC)
            parts.append(
                html.Span(
                    [
                        "next refresh ",
                        html.Strong(
                            "due now" if due else format_time(status.next_refresh),
                            id="next-refresh",
                        ),
                    ],
                    className="text-secondary",
                )
            )
        for report in estate.sources:
            text = f"{report.site}: {report.kind.upper()}, {report.rows:,} rows"
            if report.dropped:
                text += f", {report.dropped:,} dropped"
            parts.append(
                html.Span(
                    text,
                    className="badge text-bg-light border source-badge"
                    + (" border-warning" if report.dropped else ""),
                )
            )
    if status.refreshing:
        parts.append(
            html.Span(
                [dbc.Spinner(size="sm", spinner_class_name="me-1"), "Refreshing ..."],
                className="text-secondary",
                id="refreshing",
            )
        )
    return parts


def data_alerts(store: EstateStore) -> list:
    """Warnings: rows dropped at load (with the reasons and first problems), stale data."""
    estate, status = store.estate, store.status()
    alerts = []
    if status.error:
        if estate is None:
            text = f"No data could be loaded: {status.error}"
        else:
            text = (
                f"Data is stale since {format_time(status.stale_since)} because the last "
                f"refresh failed: {status.error}. Showing the data loaded "
                f"{format_time(status.last_success)}."
            )
        alerts.append(dbc.Alert(text, color="danger", id="stale-banner", className="py-2 mb-2"))
    intune_banner = intune_tiles.stale_banner(estate)
    if intune_banner is not None:
        alerts.append(intune_banner)
    old = old_data_warning(store)
    if old:
        alerts.append(dbc.Alert(old, color="warning", id="old-data-warning", className="py-2 mb-2"))
    for report in estate.sources if estate is not None else []:
        if not report.dropped:
            continue
        reasons = ", ".join(f"{count:,} {why}" for why, count in sorted(report.reasons.items()))
        details = [html.Li(line) for line in report.problems]
        alerts.append(
            dbc.Alert(
                [
                    html.Div(
                        f"Site {report.site}: {report.dropped:,} of {report.rows:,} rows were "
                        f"dropped at load" + (f" ({reasons})" if reasons else "") + "."
                    ),
                    html.Details(
                        [
                            html.Summary("Details", className="small"),
                            html.Div(f"Source: {report.location}", className="small"),
                            html.Ul(details, className="small mb-0"),
                        ]
                    )
                    if details or report.location
                    else None,
                ],
                color="warning",
                className="py-2 mb-2 dropped-warning",
            )
        )
    return alerts


NAV_PAGES = [page for page in PAGES if getattr(page, "NAV_LABEL", None)]


def nav_pages(settings: Settings) -> list:
    """The navbar's pages for these settings (the Intune-only list with an Intune source)."""
    intune = settings.intune is not None
    return [p for p in NAV_PAGES if intune or not getattr(p, "NAV_NEEDS_INTUNE", False)]


def nav_id(page) -> str:
    return "nav-" + (page.PATH.strip("/") or "overview")


def nav_links(
    store: EstateStore, settings: Settings, pathname: str | None, search: str | None
) -> list[tuple[str, bool]]:
    """(href, active) per navbar link: each carries the site and collection in view, so
    moving between pages keeps the scope. On a device page the scope is the one of the
    list it was opened from (its own ``site`` is the device's, not a scope)."""
    path = (pathname or "/").rstrip("/") or "/"
    query = parse_query(search)
    if path.startswith(device.PREFIX):
        query = parse_query(first(query, "list") or "")
    site, collection, _notes = scope_from_query(store, settings, query)
    scope = query_string([("site", site or ""), ("collection", collection or "")])
    return [
        (
            page.PATH + (f"?{scope}" if scope and getattr(page, "NAV_SCOPED", True) else ""),
            path == page.PATH,
        )
        for page in nav_pages(settings)
    ]


def old_data_warning(store: EstateStore, now: datetime | None = None) -> str | None:
    """A sentence when the data on screen was loaded longer ago than ``stale_after_hours``."""
    loaded, limit = store.status().loaded_at, store.settings.stale_after_hours
    if store.estate is None or loaded is None or limit <= 0:
        return None
    hours = ((now or datetime.now(UTC)) - loaded).total_seconds() / 3600
    if hours <= limit:
        return None
    age = f"{hours:.0f} hours" if hours < 48 else f"{hours / 24:.0f} days"
    return (
        f"This data was loaded {age} ago ({format_time(loaded)}), longer ago than the "
        f"{limit} hours set in stale_after_hours: the scheduled refreshes are not "
        f"bringing new data."
    )


def navbar(settings: Settings):
    links = [
        dbc.NavItem(dbc.NavLink(page.NAV_LABEL, href=page.PATH, id=nav_id(page)))
        for page in nav_pages(settings)
    ]
    brand = TITLE + (f" · {settings.organisation}" if settings.organisation else "")
    return dbc.Navbar(
        dbc.Container(
            [
                dcc.Link(brand, href="/", className="navbar-brand fw-semibold"),
                dbc.Nav(links, navbar=True, className="me-auto"),
                auth.user_nav(),
            ],
            fluid=True,
            className="px-4 page-width",
        ),
        color="dark",
        dark=True,
        className="py-2",
    )


def shell(store: EstateStore, settings: Settings, location: tuple[str, str] | None = None):
    """The whole layout; with ``location`` (pathname, search), the page drawn for it.

    Drawn here, the page arrives with the layout: the first visit saves the router's round
    trip, and Dash's renderer mounts the page as part of the layout rather than as a callback's
    new children (each of which it announces to every mounted component: quadratic, about
    0.8 s for the overview's thousand components in Chromium on this machine's 2 cores).
    """
    try:
        page = route(store, settings, *location) if location else None
    except (gate.BadInput, FilterTooLarge):  # the router answers it: 400 with the reason,
        location, page = None, None  # under the header, not a layout that fails to load
    return html.Div(
        [
            dcc.Location(id="url", refresh="callback-nav"),
            dcc.Interval(
                id="poll",
                interval=POLL_BUSY_MS
                if store.estate is None or store.status().refreshing
                else POLL_MS,
            ),
            dcc.Store(id="data-version", data=store.version),
            dcc.Store(id="status-token", data=status_token(store)),
            dcc.Store(id="refresh-pending"),
            dcc.Store(id="page-for", data=location_key(*location) if location else None),
            navbar(settings),
            html.Header(
                dbc.Container(
                    [
                        html.Div(
                            [
                                html.Div(
                                    data_status(store),
                                    id="data-status",
                                    className="d-flex flex-wrap align-items-center gap-2 small",
                                ),
                                refresh_area(store),
                            ],
                            className="d-flex flex-wrap align-items-center gap-2 py-2",
                        ),
                        html.Div(data_alerts(store), id="data-alerts"),
                    ],
                    fluid=True,
                    className="px-4 page-width",
                ),
                className="bg-white border-bottom status-header",
            ),
            dbc.Container(
                page, id="page", fluid=True, className="px-4 py-3 page-width", tag="main"
            ),
        ]
    )


def refresh_area(store: EstateStore):
    note, disabled, title, _pending, _interval = refresh_control(store, False, None)
    return html.Div(
        [
            html.Span(
                note, id="refresh-note", className="small text-secondary me-2", role="status"
            ),
            dbc.Button(
                "Refresh now",
                id="refresh-button",
                size="sm",
                color="secondary",
                outline=True,
                disabled=disabled,
                title=title,
            ),
        ],
        className="d-flex align-items-center ms-auto",
    )


# -- callbacks (plain functions; the app binds them) ----------------------------------------


def poll(
    store: EstateStore,
    version: int | None,
    token: str | None,
    pending: dict | None = None,
    now: float | None = None,
):
    """(data-version, status-token, poll interval), no_update where nothing changed.

    Polls fast while a refresh runs, and after "Refresh now" until the store reacts
    (``pending`` holds the status token at the click; given up after ``PENDING_SECONDS``);
    while "Refresh now" waits for its throttle, polls again when the wait is over.
    """
    new_token = status_token(store)
    now = time.time() if now is None else now
    waiting = (
        bool(pending)
        and pending.get("token") == new_token
        and now - pending.get("at", 0) < PENDING_SECONDS
    )
    interval = POLL_BUSY_MS if store.status().refreshing or waiting else POLL_MS
    until = store.next_manual_refresh() - now
    if 0 < until < interval / 1000:
        interval = max(POLL_BUSY_MS, int(until * 1000) + 500)
    return (
        store.version if store.version != version else no_update,
        new_token if new_token != token else no_update,
        interval,
    )


def checked_pending(value) -> dict | None:
    """The page's ``refresh-pending`` store as this server wrote it, else None (it comes
    back from the browser: anything else is ignored)."""
    if not isinstance(value, dict) or not isinstance(value.get("token"), str):
        return None
    at = value.get("at")
    if isinstance(at, bool) or not isinstance(at, int | float) or at != at:
        return None
    if not isinstance(value.get("result", ""), str):
        return None
    return value


def _outcome(store: EstateStore, since: float) -> str | None:
    """How the refresh asked for at ``since`` ended (None while it has not)."""
    status = store.status()
    if status.refreshing:
        return None
    failed, succeeded = status.last_failure, status.last_success
    if (
        failed is not None
        and failed.timestamp() >= since
        and (succeeded is None or failed >= succeeded)
    ):
        return f"Refresh failed at {clock(failed)}: {status.error}."
    if succeeded is not None and succeeded.timestamp() >= since:
        count = 0 if store.estate is None else len(store.estate.devices)
        return f"Refreshed at {clock(succeeded)}: {count:,} devices."
    return None


def refresh_control(
    store: EstateStore, clicked: bool, pending: dict | None, now: float | None = None
):
    """The header's "Refresh now": (note, button disabled, button title, pending, poll
    interval) after a click (``clicked``) or on a status change or poll tick.

    ``pending`` remembers this page's accepted click: its time, the status token then, and
    once the store finished, the result shown until the next click. At most one manual
    refresh per ``store.manual_refresh_seconds`` for the deployment: meanwhile the button is
    disabled and says when the next one is possible.
    """
    now = time.time() if now is None else now
    interval = no_update
    note = ""
    if clicked:
        accepted, next_at = store.request_refresh(now)
        if accepted:
            pending = {"token": status_token(store), "at": now}
            interval = POLL_BUSY_MS
        else:
            note = f"Refreshed recently: the next manual refresh is possible at {clock(next_at)}."
    status = store.status()
    if pending and not note:
        if status.refreshing:
            note = "Refreshing ..."
        elif pending.get("result"):
            note = pending["result"]
        else:
            result = (
                _outcome(store, pending.get("at", now))
                if status_token(store) != pending.get("token")
                else None
            )
            if result is None and now - pending.get("at", 0) >= PENDING_SECONDS:
                result = "The refresh did not report back: see the server's log."
            if result is None:
                note = "Refresh requested ..."
            else:
                pending = {**pending, "result": result}
                note = result
    next_at = store.next_manual_refresh()
    throttled = next_at > now
    disabled = bool(status.refreshing or throttled)
    if throttled:
        title = f"Next manual refresh possible at {clock(next_at)}"
        if not note.startswith("Refreshed recently"):
            note = (
                note + " " if note else ""
            ) + f"Next manual refresh possible at {clock(next_at)}."
    elif status.refreshing:
        title = "A refresh is running"
    else:
        title = "Load the data from the sources now"
    return note, disabled, title, pending if pending else no_update, interval


# Dash's page with the language declared (screen readers pick their voice from it); the
# placeholders are Dash's own.
INDEX_STRING = """<!DOCTYPE html>
<html lang="en">
    <head>
        {%metas%}
        <title>{%title%}</title>
        {%favicon%}
        {%css%}
    </head>
    <body>
        {%app_entry%}
        <footer>
            {%config%}
            {%scripts%}
            {%renderer%}
        </footer>
    </body>
</html>"""


# Pages that draw plotly charts (the device list and the device page draw none).
CHART_PAGES = (overview, trends, report_page)
PLOTLY_JS = "_dash-component-suites/plotly/package_data/plotly.min.js"  # dash-renderer's URL
# plotly.js with only the traces drawn here (scripts/plotly_bundle/ builds it; see
# docs/development.md): 1.2 MB against the full bundle's 4.8 MB, a quarter of the download and
# of the time the browser takes to run it before the first chart is drawn.
PLOTLY_BUNDLE = Path(__file__).resolve().parent / "vendor" / "plotly-comanage.min.js"


def serve_plotly(app: dash.Dash) -> None:
    """Serve the partial plotly.js where Dash's charts fetch plotly.js (``PLOTLY_JS``): a
    fully static rule, which Werkzeug matches before Dash's component-suite rule, so every
    chart of every page uses it and the full bundle is never sent."""
    data = PLOTLY_BUNDLE.read_bytes()

    @app.server.route(app.config.routes_pathname_prefix + PLOTLY_JS)
    def _plotly():
        response = flask.Response(data, mimetype="text/javascript")
        response.add_etag()  # as Dash serves a file without a fingerprint: revalidated
        return response.make_conditional(flask.request)


class DashboardDash(dash.Dash):
    """Dash, with plotly.js fetched from the start on the pages that draw charts.

    Dash loads plotly.js (0.4 MB compressed) only once the first chart is in the page, that
    is after the layout and the router's round trips: the largest download of a first visit
    started last. A ``preload`` hint in the page's head fetches it beside the other scripts;
    the chart's own request for it then finds it in the browser's cache.
    """

    def interpolate_index(self, **kwargs):
        page = find_page(flask.request.path) if flask.has_request_context() else None
        if page in CHART_PAGES:
            href = self.config.requests_pathname_prefix + PLOTLY_JS
            kwargs["css"] = f'<link rel="preload" href="{href}" as="script">\n' + kwargs["css"]
        return super().interpolate_index(**kwargs)


# Compressed: the scripts and styles (plotly.js alone is 1.2 MB, 0.4 MB compressed) and the
# callbacks' JSON. Not HTML: the login page carries a form token, and compressing a secret
# beside text an attacker can influence is what BREACH exploits; the pages are small anyway.
COMPRESSED_TYPES = [
    "text/css",
    "text/javascript",
    "application/javascript",
    "application/x-javascript",
    "application/json",
    "image/svg+xml",
]


class StaticCompressionCache:
    """Flask-Compress's cache, for the static files only: they never change while the server
    runs, and compressing plotly.js again for every first visit costs 50-250 ms of CPU.

    Keyed by path (never the query string, which a client chooses), so it holds at most one
    entry per static file and encoding; data responses are never stored.
    """

    def __init__(self):
        self._items: dict[str, bytes] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(request) -> str:
        return request.path if request.path.startswith(security.STATIC_PREFIXES) else ""

    def get(self, key: str) -> bytes | None:
        return self._items.get(key)

    def set(self, key: str, value: bytes) -> None:
        if key.partition(";")[2]:  # "<encoding>;<path>"; an empty path is a data response
            with self._lock:
                self._items[key] = value


def compressing_server() -> flask.Flask:
    """The Flask server, configured before Dash enables Flask-Compress on it (which reads
    its settings once)."""
    server = flask.Flask(__name__)
    server.config["COMPRESS_MIMETYPES"] = COMPRESSED_TYPES
    server.config["COMPRESS_CACHE_BACKEND"] = StaticCompressionCache
    server.config["COMPRESS_CACHE_KEY"] = StaticCompressionCache.key
    return server


def create_app(settings: Settings, store: EstateStore | None = None) -> dash.Dash:
    """A new app for these settings; with no store, one is created and started."""
    if store is None:
        store = EstateStore(settings, use_cache=True, history=open_history(settings))
        store.start()
    app = DashboardDash(
        __name__,
        server=compressing_server(),
        compress=True,
        title=TITLE,
        update_title=None,
        assets_folder=str(ASSETS),
        serve_locally=True,
        suppress_callback_exceptions=True,
        use_pages=False,
        external_stylesheets=[],
        external_scripts=[],
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
        index_string=INDEX_STRING,
    )
    app.layout = lambda: shell(
        store, settings, referring_location(flask.request) if flask.has_request_context() else None
    )
    app.store = store  # for `serve` and tests

    @app.callback(
        Output("page", "children"),
        Output("page-for", "data"),
        Input("url", "pathname"),
        State("url", "search"),
        State("page-for", "data"),
    )
    def _route(pathname, search, drawn_for):
        key = location_key(pathname, search)
        if key == drawn_for:  # the layout came with this page drawn
            raise PreventUpdate
        return route(store, settings, pathname, search), key

    @app.callback(
        *[
            Output(nav_id(page), prop)
            for page in nav_pages(settings)
            for prop in ("href", "active")
        ],
        Input("url", "pathname"),
        Input("url", "search"),
    )
    def _nav(pathname, search):
        return tuple(
            value for link in nav_links(store, settings, pathname, search) for value in link
        )

    @app.callback(
        Output("data-version", "data"),
        Output("status-token", "data"),
        Output("poll", "interval"),
        Input("poll", "n_intervals"),
        State("data-version", "data"),
        State("status-token", "data"),
        State("refresh-pending", "data"),
        prevent_initial_call=True,
    )
    def _poll(_n, version, token, pending):
        return poll(store, version, token, checked_pending(pending))

    @app.callback(
        Output("data-status", "children"),
        Output("data-alerts", "children"),
        Input("status-token", "data"),
        prevent_initial_call=True,
    )
    def _header(_token):
        return data_status(store), data_alerts(store)

    @app.callback(
        Output("refresh-note", "children"),
        Output("refresh-button", "disabled"),
        Output("refresh-button", "title"),
        Output("refresh-pending", "data"),
        Output("poll", "interval", allow_duplicate=True),
        Input("refresh-button", "n_clicks"),
        Input("status-token", "data"),
        Input("poll", "n_intervals"),
        State("refresh-pending", "data"),
        prevent_initial_call=True,
    )
    def _refresh(n_clicks, _token, _tick, pending):
        clicked = dash.ctx.triggered_id == "refresh-button" and bool(n_clicks)
        return refresh_control(store, clicked, checked_pending(pending))

    for page in PAGES:
        page.register_callbacks(app, store, settings)
    serve_plotly(app)
    export.register(app.server, store)
    gate.install(app, settings)  # body size, Host, anonymous peers, malformed JSON: first
    security.install(app, settings)  # headers and CSP on every response, /healthz
    auth.install(app, settings)  # settings.auth: every route but /login, /healthz protected
    return app
