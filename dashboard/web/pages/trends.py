"""Trends (``/trends``): the history store's snapshots over time, filterable like the overview.

The filters live in the URL (``/trends?site=PS1&collection=CAS00101&from=2026-06-01&to=
2026-11-23``) and are validated: an unknown site or collection, or a date that is not a
``YYYY-MM-DD`` day, is ignored with a visible note. Two callbacks, plain functions below:

- ``sync_filters``: the URL and the controls kept equal (either side may change);
- ``render``: the four charts for the filter, from ``store.trend`` (the history's daily
  aggregates, summed over sites) through ``model.trends.trend_series``.
"""

from __future__ import annotations

from datetime import date

import dash_bootstrap_components as dbc
from dash import Input, Output, State, ctx, dcc, html, no_update

from ...model.trends import trend_series
from .. import chart_tables, figures, intune_trends, trend_figures
from ..links import TRENDS_PATH, first, parse_query, trends_search
from ..scope import shown_value as _shown
from .overview import (
    checked_filters,
    collection_label,
    filter_note,
    one_site,
    options_for,
    page_heading,
    scope_dropdowns,
)

PATH = TRENDS_PATH
NAV_LABEL = "Trends"
GRAPH_HEIGHT = 340
CARDS = {  # graph id -> (title, subtitle)
    **intune_trends.CARDS,
    "trd-share": ("Co-managed share", "Co-managed devices as a share of all devices in view"),
    "trd-funnel": (
        "Co-management status over time",
        "Devices at each stage of the funnel on each snapshot day",
    ),
    "trd-workloads": trend_figures.WORKLOADS_HEADING,
    "trd-failures": (
        "Failures and stuck enrollments",
        "Failed enrollments, devices waiting for a user to sign in, and "
        "enrollments under way for more than {stuck_days} days",
    ),
    "trd-attention": (
        "Devices that need attention",
        "Devices at least one rule flags, and each rule's count (click a "
        "legend entry to hide or show it)",
    ),
}


# -- filters ---------------------------------------------------------------------------------


def parse_day(value) -> date | None:
    """A ``YYYY-MM-DD`` day (a date picker may add a time: ignored), else None."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def checked_range(start, end) -> tuple[date | None, date | None, list[str]]:
    """(from, to, notes): unreadable days dropped, a reversed range ignored, with a note."""
    notes = []
    parsed = []
    for name, value in (("from", start), ("to", end)):
        day = parse_day(value) if value not in (None, "") else None
        if value not in (None, "") and day is None:
            notes.append(f'Unknown {name} date "{_shown(value)}" ignored (expected YYYY-MM-DD).')
        parsed.append(day)
    start_day, end_day = parsed
    if start_day and end_day and start_day > end_day:
        notes.append(f"From {start_day} is after to {end_day}: showing every day.")
        start_day = end_day = None
    return start_day, end_day, notes


def checked(store, settings, site, collection, start, end, notes=()):
    site, collection, more = checked_filters(store, settings, site, collection)
    start, end, dates = checked_range(start, end)
    return site, collection, start, end, [*notes, *more, *dates]


def checked_query(store, settings, query: dict):
    """``checked`` for a parsed URL query (a repeated site refused with a note)."""
    site, notes = one_site(query)
    return checked(
        store,
        settings,
        site,
        first(query, "collection"),
        first(query, "from"),
        first(query, "to"),
        notes,
    )


def sync_filters(
    store,
    settings,
    trigger: str | None,
    search: str | None,
    site,
    collection,
    start,
    end,
    pathname: str | None = PATH,
):
    """(URL search, site, collection, from, to, note) for whichever side changed; outputs
    that would not change are ``no_update``."""
    if pathname != PATH:  # leaving the page: the router takes over
        return (no_update,) * 6
    if trigger in ("trd-site", "trd-collection", "trd-range"):
        site, collection, start, end, notes = checked(store, settings, site, collection, start, end)
        new_search = trends_search(site, collection, start, end)
        return (
            new_search if new_search != (search or "") else no_update,
            no_update,
            no_update,
            no_update,
            no_update,
            filter_note(notes, "trd"),
        )
    url = checked_query(store, settings, parse_query(search))
    current = (site, collection, parse_day(start), parse_day(end))
    out = [
        value if value != now else no_update for value, now in zip(url[:4], current, strict=True)
    ]
    out[2:4] = [v.isoformat() if isinstance(v, date) else v for v in out[2:4]]
    return (no_update, *out, filter_note(url[4], "trd"))


# -- the page ----------------------------------------------------------------------------------


def _card(graph_id: str, settings, height: int = GRAPH_HEIGHT):
    title, subtitle = CARDS[graph_id]
    subtitle = subtitle.replace("{stuck_days}", str(settings.stuck_days))
    return dbc.Card(
        [
            dbc.CardHeader(
                [
                    html.H2(title, className="h6 mb-0 fw-semibold"),
                    html.Div(subtitle, className="small text-secondary"),
                ],
                className="bg-white border-bottom-0 pb-0",
            ),
            dbc.CardBody(
                html.Div(
                    [
                        dcc.Graph(
                            id=graph_id,
                            config=figures.GRAPH_CONFIG,
                            responsive=True,
                            style={"height": f"{height}px"},
                            className="trd-graph",
                            figure=figures.empty_figure("Loading ..."),
                        ),
                        html.Div(id=f"{graph_id}-alt"),  # text alternative and "View as table"
                    ],
                    role="figure",
                    **{"aria-label": title},
                ),
                className="pt-2",
            ),
        ],
        className="h-100 shadow-sm",
    )


def _bounds(store) -> tuple[str | None, str | None]:
    frame = store.trend()
    if frame is None or frame.empty:
        return None, None
    return str(frame.index.min()), str(frame.index.max())


def layout(store, settings, pathname: str, query: dict):
    site, collection, start, end, notes = checked_query(store, settings, query)
    oldest, newest = _bounds(store)
    controls = html.Div(
        [
            *scope_dropdowns("trd", store, settings, site, collection),
            html.Div(
                [
                    dbc.Label(
                        "Snapshot days",
                        html_for="trd-range",
                        className="small text-secondary mb-0 d-block",
                    ),
                    dcc.DatePickerRange(
                        id="trd-range",
                        start_date=start.isoformat() if start else None,
                        end_date=end.isoformat() if end else None,
                        display_format="YYYY-MM-DD",
                        start_date_placeholder_text="From",
                        end_date_placeholder_text="To",
                        # not clearable: Dash's clear "button" is a link without href that no
                        # keyboard can reach (and axe refuses); emptying the fields clears the range
                        min_date_allowed=oldest,
                        max_date_allowed=newest,
                        clearable=False,
                        first_day_of_week=1,
                        initial_visible_month=newest,
                        start_date_id="trd-from",
                        end_date_id="trd-to",
                    ),
                ],
                className="filter-range",
            ),
        ],
        className="d-flex flex-wrap gap-3 align-items-end",
    )
    return html.Div(
        [
            dcc.Location(id="trd-url", refresh="callback-nav"),
            *page_heading("trd", "Trends", controls, notes),
            dbc.Row(
                [
                    dbc.Col(_card("trd-share", settings), lg=6),
                    dbc.Col(_card("trd-funnel", settings), lg=6),
                ],
                className="g-3 mb-3",
            ),
            dbc.Row(
                [
                    dbc.Col(_card("trd-workloads", settings), lg=6),
                    dbc.Col(_card("trd-failures", settings), lg=6),
                ],
                className="g-3 mb-3",
            ),
            dbc.Row(
                [dbc.Col(_card("trd-attention", settings, height=380), width=12)],
                className="g-3 mb-3",
            ),
            intune_trends.cards(store, _card),  # None without an Intune source
        ],
        id="trends",
    )


# -- rendering ---------------------------------------------------------------------------------

ALT_OUTPUTS = tuple(f"{graph_id}-alt" for graph_id in trend_figures.FIGURES)
RENDER_OUTPUTS = (*trend_figures.FIGURES, "trd-scope", *ALT_OUTPUTS)


def _alternatives(out: dict) -> dict:
    """Each chart's text alternative and table view (days down, series across)."""
    return {
        f"{graph_id}-alt": chart_tables.chart_alternative(
            out[graph_id],
            CARDS[graph_id][0],
            f"{graph_id}-table",
            link=False,
            category_header="Day",
        )
        for graph_id in trend_figures.FIGURES
    }


def scope_text(store, frame, site, collection, start, end) -> str:
    parts = [
        f"site {site}" if site else "all sites",
        f"collection {collection_label(store, collection)}" if collection else "all collections",
    ]
    if frame is not None and not frame.empty:
        days = len(frame)
        first_day, last_day = frame.index.min(), frame.index.max()
        parts.insert(0, f"{days} snapshot{'s' if days != 1 else ''} from {first_day} to {last_day}")
        if "sites" in frame.columns and frame["sites"].nunique() > 1:
            parts.append("some days lack a site's snapshot")
    elif start or end:
        parts.insert(0, f"from {start or 'the first snapshot'} to {end or 'the last'}")
    return " · ".join(parts)


def trend_frame(store, settings, site, collection, start, end):
    """(history frame of the checked filter's days, or None; the message shown instead of
    the charts, or None; site; collection; start; end)."""
    site, collection, start, end, _notes = checked(store, settings, site, collection, start, end)
    frame = store.trend(site, collection)
    message = None
    if store.history is None:
        message = trend_figures.HISTORY_OFF
    elif frame is None or frame.empty:
        message = trend_figures.NO_HISTORY
    else:
        if start is not None:
            frame = frame[[day >= start for day in frame.index]]
        if end is not None:
            frame = frame[[day <= end for day in frame.index]]
        if frame.empty:
            message = trend_figures.NO_DAYS
    return (None if message else frame), message, site, collection, start, end


def render(store, settings, site, collection, start, end) -> dict:
    """Every output of the page for a filter, by component id (see ``RENDER_OUTPUTS``)."""
    frame, message, site, collection, start, end = trend_frame(
        store, settings, site, collection, start, end
    )
    out: dict = {
        "trd-scope": scope_text(store, None if message else frame, site, collection, start, end)
    }
    if message:
        for graph_id in trend_figures.FIGURES:
            out[graph_id] = figures.empty_figure(message)
        return out | _alternatives(out)
    series = trend_series(frame)
    for graph_id, build in trend_figures.FIGURES.items():
        out[graph_id] = build(series)
    return out | _alternatives(out)


def register_callbacks(app, store, settings) -> dict:
    @app.callback(
        Output("trd-url", "search"),
        Output("trd-site", "value"),
        Output("trd-collection", "value"),
        Output("trd-range", "start_date"),
        Output("trd-range", "end_date"),
        Output("trd-filter-note", "children"),
        Input("trd-url", "search"),
        Input("trd-site", "value"),
        Input("trd-collection", "value"),
        Input("trd-range", "start_date"),
        Input("trd-range", "end_date"),
        State("trd-url", "pathname"),
    )
    def _sync(search, site, collection, start, end, pathname):
        return sync_filters(
            store, settings, ctx.triggered_id, search, site, collection, start, end, pathname
        )

    @app.callback(
        *[Output(graph_id, "figure") for graph_id in trend_figures.FIGURES],
        Output("trd-scope", "children"),
        *[Output(alt_id, "children") for alt_id in ALT_OUTPUTS],
        Input("trd-site", "value"),
        Input("trd-collection", "value"),
        Input("trd-range", "start_date"),
        Input("trd-range", "end_date"),
        Input("data-version", "data"),
    )
    def _render(site, collection, start, end, _version):
        out = render(store, settings, site, collection, start, end)
        return tuple(out[key] for key in RENDER_OUTPUTS)

    @app.callback(
        Output("trd-site", "options"),
        Output("trd-collection", "options"),
        Output("trd-collection", "placeholder"),
        Input("data-version", "data"),
        Input("trd-site", "value"),
        State("trd-collection", "value"),
        prevent_initial_call=True,
    )
    def _options(_version, site, collection):
        return options_for(store, settings, site, collection)

    return {
        "sync": _sync,
        "render": _render,
        "options": _options,
        **intune_trends.register(app, store, settings, trend_frame),
    }
