"""The overview (``/``): the built-in Cloud Attach tiles, filterable and drillable.

Filters live in the URL (``/?site=PS1&collection=CAS00101``) so a view can be bookmarked and
the back button works. Three callbacks:

- ``sync_filters``: the URL and the dropdowns, kept equal in one callback (a dropdown change
  pushes a new URL; a URL change, e.g. the back button, sets the dropdowns);
- ``render``: every tile, chart and table for the dropdowns' filter and the current data;
- ``navigate``: a click on a chart point opens ``/devices?<its filter>&<site, collection>``.

Values from the URL or the browser are checked against the configuration before use:
unknown ones are ignored with a visible note and never reach the store.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import Input, Output, State, ctx, dcc, html, no_update

from ...model.device_query import ONE_SITE
from ...model.errors import describe
from ...model.kpis import KPIS, kpi_values
from ...service.store import EstateStore
from .. import chart_tables, figures, intune_tiles, panels, week_changes
from ..encode_once import drawn_once
from ..links import (
    devices_url,
    devices_url_from_fragment,
    first,
    overview_search,
    parse_query,
    query_string,
)
from ..scope import (
    checked_filters,
    collection_label,
    collection_options,
    collection_placeholder,
    options_for,
    shown_value,
    site_options,
)

PATH = "/"
NAV_LABEL = "Overview"

GRAPHS = {  # component id -> figure builder (summary, settings) -> go.Figure
    "ovw-os-groups": lambda s, _settings: figures.os_groups_figure(s, show_legend=False),
    "ovw-os-releases": lambda s, _settings: figures.os_releases_figure(s),
    "ovw-funnel": lambda s, _settings: figures.funnel_figure(s),
    "ovw-status": lambda s, settings: figures.enrollment_status_figure(s, settings.status_labels),
    "ovw-workloads": lambda s, _settings: figures.workloads_figure(s),
    "ovw-reasons": lambda s, _settings: figures.reasons_figure(s),
}
# Each chart's name for its figure landmark, table caption and text alternative.
GRAPH_TITLES = {
    "ovw-os-groups": "Client OS distribution by OS group",
    "ovw-os-releases": "Client OS distribution by release",
    "ovw-funnel": figures.HEADINGS["funnel"][0],
    "ovw-status": figures.HEADINGS["status"][0],
    "ovw-workloads": figures.HEADINGS["workloads"][0],
    "ovw-reasons": figures.HEADINGS["reasons"][0],
}
GRAPH_CATEGORY = {
    "ovw-os-groups": "OS group",
    "ovw-os-releases": "OS release",
    "ovw-funnel": "Stage",
    "ovw-status": "Enrollment status",
    "ovw-workloads": "Workload",
    "ovw-reasons": "Reason",
}
# Per chart: its text alternative, whether it offers a table view (not when empty), and the
# table view's content (sent only once the view was opened: see ``chart_tables.table_view``).
SUMMARY_OUTPUTS = tuple(f"{graph_id}-summary" for graph_id in GRAPHS)
VIEW_OUTPUTS = tuple(f"{graph_id}-view" for graph_id in GRAPHS)
BODY_OUTPUTS = tuple(f"{graph_id}-view-body" for graph_id in GRAPHS)
GRAPH_HEIGHT = 330


# -- filters ---------------------------------------------------------------------------------


def one_site(query: dict) -> tuple[str | None, list[str]]:
    """The URL's site and a note: a site given more than once (ignoring case) is refused,
    as on the device list and in the export, since these pages show one site at a time."""
    values = [v for v in query.get("site") or [] if isinstance(v, str) and v.strip()]
    if len({v.strip().casefold() for v in values}) > 1:
        shown = ", ".join(shown_value(v) for v in values[:5])
        return None, [f"A {ONE_SITE} ({shown}) is ignored: showing all sites."]
    return (values[0] if values else None), []


def scope_from_query(store: EstateStore, settings, query: dict):
    """(site, collection, notes) from a parsed URL query, checked."""
    site, notes = one_site(query)
    site, collection, more = checked_filters(store, settings, site, first(query, "collection"))
    return site, collection, notes + more


def filters_from_search(store: EstateStore, settings, search: str | None):
    return scope_from_query(store, settings, parse_query(search))


def filter_note(notes: list[str], prefix: str = "ovw"):
    """The ignored URL values, said (``<prefix>-filter-alert``); None when there are none."""
    if not notes:
        return None
    return dbc.Alert(
        [html.Div(note) for note in notes],
        color="info",
        dismissable=True,
        className="py-2 mb-3",
        id=f"{prefix}-filter-alert",
    )


def sync_filters(
    store: EstateStore,
    settings,
    trigger: str | None,
    search: str | None,
    site,
    collection,
    pathname: str | None = "/",
):
    """(URL search, site value, collection value, note) for whichever side changed.

    A dropdown change writes the URL; anything else (first render, back/forward) reads it
    and sets the dropdowns. Outputs that would not change are ``no_update``.
    """
    if pathname not in (None, "/", ""):  # leaving the page: let the router take over
        return no_update, no_update, no_update, no_update
    if trigger in ("ovw-site", "ovw-collection"):
        site, collection, notes = checked_filters(store, settings, site, collection)
        new_search = overview_search(site, collection)
        return (
            new_search if new_search != (search or "") else no_update,
            no_update,
            no_update,
            filter_note(notes),
        )
    url_site, url_collection, notes = filters_from_search(store, settings, search)
    return (
        no_update,
        url_site if url_site != site else no_update,
        url_collection if url_collection != collection else no_update,
        filter_note(notes),
    )


# -- the page ----------------------------------------------------------------------------------


def _card(title: str, subtitle: str, body, class_name: str = ""):
    return dbc.Card(
        [
            dbc.CardHeader(
                [
                    html.H2(title, className="h6 mb-0 fw-semibold"),
                    html.Div(subtitle, className="small text-secondary"),
                ],
                className="bg-white border-bottom-0 pb-0",
            ),
            dbc.CardBody(body, className="pt-2"),
        ],
        className=f"h-100 shadow-sm {class_name}",
    )


def _graph(graph_id: str, out: dict, height: int = GRAPH_HEIGHT):
    """A clickable chart inside a figure landmark, with its text alternative and its
    "View as table" (``<graph_id>-alt``), drawn from ``render``'s output ``out``."""
    return html.Div(
        [
            dcc.Graph(
                id=graph_id,
                config=figures.GRAPH_CONFIG,
                responsive=True,
                style=out.get(f"{graph_id}-style", {"height": f"{height}px"}),
                className="ovw-graph clickable-graph",
                figure=out[graph_id],
            ),
            html.Div(
                [
                    html.P(
                        out[f"{graph_id}-summary"],
                        id=f"{graph_id}-summary",
                        className="visually-hidden chart-summary",
                    ),
                    chart_tables.table_view(
                        f"{graph_id}-view",
                        out[f"{graph_id}-view-body"],
                        hidden=out[f"{graph_id}-view"],
                    ),
                ],
                id=f"{graph_id}-alt",
            ),
        ],
        role="figure",
        **{"aria-label": GRAPH_TITLES[graph_id]},
    )


def scope_dropdowns(prefix: str, store: EstateStore, settings, site, collection) -> list:
    """The site and collection dropdowns (ids ``<prefix>-site``, ``<prefix>-collection``),
    shared by the pages filtered like the overview."""
    return [
        html.Div(
            [
                dbc.Label("Site", html_for=f"{prefix}-site", className="small text-secondary mb-0"),
                dcc.Dropdown(
                    id=f"{prefix}-site",
                    options=site_options(store, settings),
                    value=site,
                    placeholder="All sites",
                    clearable=True,
                    searchable=False,
                ),
            ],
            className="filter-site",
        ),
        html.Div(
            [
                dbc.Label(
                    "Collection",
                    html_for=f"{prefix}-collection",
                    className="small text-secondary mb-0",
                ),
                dcc.Dropdown(
                    id=f"{prefix}-collection",
                    options=collection_options(store, settings, site, collection),
                    value=collection,
                    clearable=True,
                    placeholder=collection_placeholder(store, settings, site),
                ),
            ],
            className="filter-collection",
        ),
    ]


def page_heading(prefix: str, title: str, controls, notes: list[str], scope=None) -> list:
    """Title with its scope line (``<prefix>-scope``), the filter controls beside it, and the
    note about ignored URL values (``<prefix>-filter-note``) below."""
    return [
        html.Div(
            [
                html.Div(
                    [
                        html.H1(title, className="h4 mb-0"),
                        html.Div(scope, id=f"{prefix}-scope", className="small text-secondary"),
                    ]
                ),
                controls,
            ],
            className="d-flex flex-wrap justify-content-between align-items-end gap-3 mb-3",
        ),
        html.Div(filter_note(notes, prefix), id=f"{prefix}-filter-note"),
    ]


def layout(store: EstateStore, settings, pathname: str, query: dict):
    """The page, drawn for the URL's scope: the first visit needs no further round trip
    (the callbacks below run on changes only)."""
    site, collection, notes = scope_from_query(store, settings, query)
    out = render(store, settings, site, collection)
    text = query_string([(key, value) for key, values in query.items() for value in values])
    search = f"?{text}" if text else ""
    filters = html.Div(
        scope_dropdowns("ovw", store, settings, site, collection),
        className="d-flex flex-wrap gap-3 align-items-end",
    )
    return html.Div(
        [
            # With every location prop given, a Location does not write the browser's URL
            # back on mount (for ``ovw-url`` that ran ``_sync`` for nothing, the page being
            # drawn for that URL; each write is one more update of the whole page).
            *[
                dcc.Location(
                    id=location_id,
                    refresh="callback-nav",
                    pathname=pathname,
                    search=search,
                    hash="",
                    href=pathname + search,
                )
                for location_id in ("ovw-url", "ovw-nav")
            ],
            *page_heading("ovw", "Overview", filters, notes, out["ovw-scope"]),
            html.Div(
                out["ovw-kpis"],
                id="ovw-kpis",
                className="row row-cols-2 row-cols-md-3 row-cols-xl-5 g-3 mb-3",
            ),
            html.Div(  # week_changes: "What changed"
                week_changes.changes_panel(store, settings, site, collection),
                id="ovw-changes",
                className="mb-3",
            ),
            # None without an Intune source; drawn for the scope like the rest of the page
            intune_tiles.section(store, settings, site, collection, pathname, search),
            dbc.Row(
                [
                    dbc.Col(
                        _card(
                            "Needs attention",
                            "Devices each rule flags, by severity (what each rule means: below)",
                            html.Div(out["ovw-attention"], id="ovw-attention"),
                        ),
                        lg=6,
                    ),
                    dbc.Col(
                        _card(
                            "Co-management prerequisites",
                            "Each check in order, on the devices that passed the one before",
                            html.Div(out["ovw-readiness"], id="ovw-readiness"),
                        ),
                        lg=6,
                    ),
                ],
                className="g-3 mb-3",
            ),
            html.Div(panels.definitions_panel(settings, lazy=True), className="mb-3"),
            dbc.Row(
                [
                    dbc.Col(
                        _card(
                            *figures.HEADINGS["os"],
                            dbc.Row(
                                [
                                    dbc.Col(
                                        [
                                            _graph("ovw-os-groups", out, height=250),
                                            html.Div(
                                                out["ovw-os-table"],
                                                id="ovw-os-table",
                                                className="mt-2",
                                            ),
                                        ],
                                        lg=4,
                                    ),
                                    dbc.Col(_graph("ovw-os-releases", out), lg=8),
                                ],
                                className="g-3",
                            ),
                        ),
                        width=12,
                    ),
                ],
                className="g-3 mb-3",
            ),
            dbc.Row(
                [
                    dbc.Col(_card(*figures.HEADINGS["funnel"], _graph("ovw-funnel", out)), lg=6),
                    dbc.Col(_card(*figures.HEADINGS["status"], _graph("ovw-status", out)), lg=6),
                ],
                className="g-3 mb-3",
            ),
            dbc.Row(
                [
                    dbc.Col(
                        _card(*figures.HEADINGS["workloads"], _graph("ovw-workloads", out)), lg=7
                    ),
                    dbc.Col(_card(*figures.HEADINGS["reasons"], _graph("ovw-reasons", out)), lg=5),
                ],
                className="g-3 mb-3",
            ),
            dbc.Row(
                [
                    dbc.Col(
                        _card(
                            *figures.HEADINGS["errors"],
                            html.Div(out["ovw-errors"], id="ovw-errors"),
                        ),
                        width=12,
                    ),
                ],
                className="g-3 mb-3",
            ),
        ],
        id="overview",
    )


# -- rendering ---------------------------------------------------------------------------------


def kpi_tiles(
    summary: dict | None, site: str | None, collection: str | None, changes: dict | None = None
) -> list:
    """``changes``: tile id -> the change since the week-ago snapshot (``week_changes``)."""
    values = kpi_values(summary) if summary is not None else {}
    changes = changes or {}
    tiles = []
    for kpi in KPIS:
        tile_id = kpi.id
        number, note = values.get(tile_id, (None, ""))
        card = dbc.Card(
            dbc.CardBody(
                [
                    html.Div(kpi.label, className="small text-secondary kpi-title"),
                    html.Div(
                        "-" if number is None else f"{number:,}",
                        id=tile_id,
                        className="kpi-value fw-semibold",
                    ),
                    html.Div(note, className="small text-secondary"),
                    week_changes.change_line(tile_id, changes.get(tile_id)),
                ]
            ),
            className="h-100 shadow-sm kpi-card",
            style={"borderLeft": f"4px solid {figures.COLORS[kpi.accent]}"},
        )
        tiles.append(
            html.Div(
                dcc.Link(
                    card,
                    href=devices_url(dict(kpi.filters), site, collection),
                    className="text-reset text-decoration-none kpi-link",
                    title=f"{kpi.explanation}: open the device list",
                ),
                className="col",
            )
        )
    return tiles


def errors_table(summary: dict | None, site: str | None, collection: str | None):
    if summary is None:
        return html.Div("-", className="text-secondary")
    if not summary["devices"]:
        return html.Div(figures.NO_DEVICES, className="text-secondary py-4 text-center empty-note")
    errors = summary["enrollment_errors"]
    if not errors:
        return html.Div(
            "No enrollment errors", className="text-secondary py-4 text-center empty-note"
        )
    failures = sum(error["count"] for error in errors)
    rows = []
    for error in errors:
        info = describe(error["code"], error["description"])
        href = devices_url({"error": error["code"]}, site, collection)
        rows.append(
            html.Tr(
                [
                    html.Td(f"{error['count']:,}", className="text-end"),
                    html.Td(
                        figures.pct(error["count"], failures), className="text-end text-nowrap"
                    ),
                    html.Td(
                        dcc.Link(
                            error["code"],
                            href=href,
                            className="font-monospace stretched-link error-link",
                        )
                    ),
                    html.Td(error["description"]),
                    html.Td(info.fix),
                    html.Td(
                        dbc.Badge(
                            "yes" if info.transient else "no",
                            color="info" if info.transient else "light",
                            text_color="dark",
                            className="border",
                        )
                    ),
                ],
                className="error-row",
            )
        )
    head = html.Thead(
        html.Tr(
            [
                html.Th("Devices", className="text-end"),
                html.Th("% of failures", className="text-end"),
                html.Th("Code"),
                html.Th("Description"),
                html.Th("Fix"),
                html.Th("Transient", title="The client retries by itself"),
            ]
        )
    )
    return html.Div(
        dbc.Table(
            [head, html.Tbody(rows)],
            hover=True,
            size="sm",
            className="mb-0 align-middle errors-table",
            id="ovw-errors-table",
        ),
        className="table-responsive errors-scroll",
    )


def os_group_table(summary: dict | None, site: str | None, collection: str | None):
    """The donut's legend: every OS group with its colour, count and share of the client
    devices, a link to those devices, and the records left out (``without_client_note``)."""
    if summary is None or not summary["devices"]:
        return None
    clients = figures.client_devices(summary)
    rows = []
    for group, count in summary["os_groups"].items():
        swatch = html.Span(
            className="legend-swatch", style={"backgroundColor": figures.OS_GROUP_COLORS[group]}
        )
        href = devices_url({"os_group": group, **figures.CLIENT_FILTER}, site, collection)
        rows.append(
            html.Tr(
                [
                    html.Td(
                        [swatch, dcc.Link(group, href=href, className="stretched-link text-reset")]
                    ),
                    html.Td(f"{count:,}", className="text-end"),
                    html.Td(figures.pct(count, clients), className="text-end text-secondary"),
                ],
                className="os-group-row",
            )
        )
    return [
        dbc.Table(
            html.Tbody(rows),
            size="sm",
            borderless=True,
            hover=True,
            className="mb-0 os-group-table",
            id="ovw-os-group-table",
        ),
        without_client_note(summary, site, collection),
    ]


def without_client_note(summary: dict, site: str | None, collection: str | None):
    """How many records the OS figures leave out (no ConfigMgr client), linked to them."""
    without = int(summary.get("without_client") or 0)
    if not without:
        return html.Div(
            "Every record in this view has the ConfigMgr client.",
            className="small text-secondary mt-2",
            id="ovw-without-client",
            **{"data-count": "0"},
        )
    words = (
        f"{without:,} record{'s' if without != 1 else ''} without the ConfigMgr client "
        f"{'are' if without != 1 else 'is'} not counted"
    )
    return html.Div(
        dcc.Link(
            words, href=devices_url({"client": "0"}, site, collection), className="link-secondary"
        ),
        className="small mt-2",
        id="ovw-without-client",
        title="The console's OS tile counts client devices only",
        **{"data-count": str(without)},
    )


def scope_text(store: EstateStore, summary: dict | None, site, collection) -> str:
    if summary is None:
        return ""
    parts = [
        f"{summary['devices']:,} devices",
        f"site {site}" if site else "all sites",
        f"collection {collection_label(store, collection)}" if collection else "all collections",
    ]
    return " · ".join(parts)


RENDER_OUTPUTS = (
    "ovw-kpis",
    *GRAPHS,
    "ovw-os-releases-style",
    "ovw-os-table",
    "ovw-errors",
    "ovw-scope",
    "ovw-attention",
    "ovw-readiness",
    *SUMMARY_OUTPUTS,
    *VIEW_OUTPUTS,
    *BODY_OUTPUTS,
)


def view_table(fig, graph_id: str, site: str | None, collection: str | None):
    """A chart's "View as table" content: its data table, or why there is none."""
    table = chart_tables.data_table(
        fig,
        GRAPH_TITLES[graph_id],
        f"{graph_id}-table",
        site,
        collection,
        category_header=GRAPH_CATEGORY[graph_id],
    )
    if table is None:
        return html.Div(chart_tables.empty_message(fig) or "No data", className="small")
    return table


def render(store: EstateStore, settings, site, collection, opened=()) -> dict:
    """Every output of the page for a filter, by component id (see ``RENDER_OUTPUTS``).

    ``opened``: the charts whose table view was opened; their tables are drawn, the others
    are sent when first opened (``open_table``).
    """
    site, collection, _notes = checked_filters(store, settings, site, collection)
    # The same for everyone who looks at this scope until the data changes: drawn once per
    # loaded estate (each first visit and each change of filter would draw it again).
    out = dict(
        drawn_once(
            store,
            ("overview", site, collection),
            lambda: _render_scope(store, settings, site, collection),
        )
    )
    for graph_id in opened:
        out[f"{graph_id}-view-body"] = view_table(out[graph_id], graph_id, site, collection)
    return out


def _render_scope(store: EstateStore, settings, site, collection) -> dict:
    """``render`` with every table view closed."""
    summary = store.summary(site, collection)
    out: dict = {
        "ovw-kpis": kpi_tiles(
            summary, site, collection, week_changes.tile_changes(store, summary, site, collection)
        ),
        "ovw-os-table": os_group_table(summary, site, collection),
        "ovw-errors": errors_table(summary, site, collection),
        "ovw-scope": scope_text(store, summary, site, collection),
        "ovw-attention": panels.attention_panel(summary, site, collection),
        "ovw-readiness": panels.readiness_panel(summary, site, collection),
    }
    if summary is None:
        message = "No data loaded" if store.status().error else "Loading data ..."
        for graph_id in GRAPHS:
            out[graph_id] = figures.empty_figure(message)
        out["ovw-os-releases-style"] = {"height": f"{GRAPH_HEIGHT}px"}
    else:
        for graph_id, build in GRAPHS.items():
            out[graph_id] = build(summary, settings)
        height = (
            max(GRAPH_HEIGHT, figures.release_height(summary))
            if summary["devices"]
            else GRAPH_HEIGHT
        )
        out["ovw-os-releases-style"] = {"height": f"{height}px"}
    for graph_id in GRAPHS:
        fig = out[graph_id]
        out[f"{graph_id}-summary"] = chart_tables.chart_summary(fig, GRAPH_TITLES[graph_id])
        out[f"{graph_id}-view"] = not chart_tables.has_table(fig)
        out[f"{graph_id}-view-body"] = chart_tables.loading_body()
    return out


def open_table(store: EstateStore, settings, graph_id: str, site, collection):
    """The table view of one chart, sent when it is first opened."""
    site, collection, _notes = checked_filters(store, settings, site, collection)
    summary = store.summary(site, collection)
    if summary is None:
        return html.Div("No data loaded", className="small")
    return view_table(GRAPHS[graph_id](summary, settings), graph_id, site, collection)


def navigate(click_data, site, collection, store: EstateStore, settings):
    """The device-list URL for a clicked chart point, or no_update."""
    try:
        fragment = click_data["points"][0]["customdata"]
    except (TypeError, KeyError, IndexError):
        return no_update
    if isinstance(fragment, list):  # customdata given per point as a list
        fragment = fragment[0] if fragment else None
    site, collection, _notes = checked_filters(store, settings, site, collection)
    url = devices_url_from_fragment(fragment, site, collection)
    return url if url is not None else no_update


def opening(n_clicks) -> bool:
    """Whether a click on a closed-at-first disclosure's toggle opened it (odd clicks do).
    Its content is sent at every opening: a response Dash dropped for a quick second click
    is sent again at the next one."""
    return isinstance(n_clicks, int) and n_clicks % 2 == 1


def register_callbacks(app, store: EstateStore, settings) -> dict:
    @app.callback(
        Output("ovw-url", "search"),
        Output("ovw-site", "value"),
        Output("ovw-collection", "value"),
        Output("ovw-filter-note", "children"),
        Input("ovw-url", "search"),
        Input("ovw-site", "value"),
        Input("ovw-collection", "value"),
        State("ovw-url", "pathname"),
        prevent_initial_call=True,  # the layout holds the URL's values and note
    )
    def _sync(search, site, collection, pathname):
        return sync_filters(store, settings, ctx.triggered_id, search, site, collection, pathname)

    graph_ids = list(GRAPHS)

    @app.callback(
        Output("ovw-kpis", "children"),
        *[Output(graph_id, "figure") for graph_id in graph_ids],
        Output("ovw-os-releases", "style"),
        Output("ovw-os-table", "children"),
        Output("ovw-errors", "children"),
        Output("ovw-scope", "children"),
        Output("ovw-attention", "children"),
        Output("ovw-readiness", "children"),
        *[Output(summary_id, "children") for summary_id in SUMMARY_OUTPUTS],
        *[Output(view_id, "hidden") for view_id in VIEW_OUTPUTS],
        *[Output(body_id, "children") for body_id in BODY_OUTPUTS],
        Input("ovw-site", "value"),
        Input("ovw-collection", "value"),
        Input("data-version", "data"),
        *[State(f"{view_id}-toggle", "n_clicks") for view_id in VIEW_OUTPUTS],
        prevent_initial_call=True,  # the layout is drawn with the same outputs
    )
    def _render(site, collection, _version, *clicks):
        opened = [graph_id for graph_id, n in zip(graph_ids, clicks, strict=True) if n]
        out = render(store, settings, site, collection, opened)
        return tuple(out[key] for key in RENDER_OUTPUTS)

    def table_callback(graph_id: str):
        # One callback per chart: Dash drops a pending response when the same callback runs
        # again, so a shared one lost the tables opened in quick succession.
        @app.callback(
            Output(f"{graph_id}-view-body", "children", allow_duplicate=True),
            Input(f"{graph_id}-view-toggle", "n_clicks"),
            State("ovw-site", "value"),
            State("ovw-collection", "value"),
            prevent_initial_call=True,
        )
        def _open_table(n_clicks, site, collection):
            if not opening(n_clicks):
                return no_update
            return open_table(store, settings, graph_id, site, collection)

        return _open_table

    open_tables = {graph_id: table_callback(graph_id) for graph_id in graph_ids}

    @app.callback(
        Output("ovw-definitions-body", "children"),
        Input("ovw-definitions-toggle", "n_clicks"),
        prevent_initial_call=True,
    )
    def _definitions(n_clicks):
        return panels.definitions_body(settings) if opening(n_clicks) else no_update

    @app.callback(
        Output("ovw-nav", "href"),
        *[Input(graph_id, "clickData") for graph_id in graph_ids],
        State("ovw-site", "value"),
        State("ovw-collection", "value"),
        prevent_initial_call=True,
    )
    def _navigate(*args):
        clicks, (site, collection) = dict(zip(graph_ids, args[:-2], strict=True)), args[-2:]
        return navigate(clicks.get(ctx.triggered_id), site, collection, store, settings)

    @app.callback(
        Output("ovw-site", "options"),
        Output("ovw-collection", "options"),
        Output("ovw-collection", "placeholder"),
        Input("data-version", "data"),
        Input("ovw-site", "value"),
        State("ovw-collection", "value"),
        prevent_initial_call=True,
    )
    def _options(_version, site, collection):
        return options_for(store, settings, site, collection)

    return {
        "sync": _sync,
        "render": _render,
        "open_tables": open_tables,
        "definitions": _definitions,
        "navigate": _navigate,
        "options": _options,
        **week_changes.register(app, store, settings),
        **intune_tiles.register(app, store, settings),
    }
