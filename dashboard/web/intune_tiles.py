"""The overview's Intune side: the "ConfigMgr and Intune" tile and the compliance donut.

Shown only when the estate has an Intune source. Every number comes from the summary's
``intune`` object (the same one ``summary --format json`` prints), and every count is a
link to the records behind it: the device list filtered by ``intune`` or ``compliance``
in the overview's scope, or ``/intune-only`` (which describes the whole Intune source, so
it carries no scope). The donut has the same "View as table" and text alternative as the
other charts (``chart_tables``), so each segment is reachable from the keyboard.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import Input, Output, State, dcc, html, no_update

from ..intune_labels import (
    COMPLIANCE_LABELS,
    INTUNE_ONLY_EXPLANATION,
    INTUNE_ONLY_LABEL,
    INTUNE_STATE_EXPLANATIONS,
    INTUNE_STATE_LABELS,
)
from ..model.device_query import COMPLIANCE_STATES, INTUNE_STATES
from . import chart_tables, figures
from .encode_once import drawn_once
from .links import devices_url, devices_url_from_fragment, filter_fragment
from .scope import checked_filters

INTUNE_ONLY_PATH = "/intune-only"
GRAPH_ID = "ovw-intune-compliance"
GRAPH_TITLE = "Intune compliance of co-managed devices"
GRAPH_HEIGHT = 300
COMPLIANCE_COLORS = {
    "compliant": figures.COLORS["success"],
    "noncompliant": figures.COLORS["failure"],
    "inGracePeriod": figures.COLORS["enrolling"],
    "conflict": figures.COLORS["pending"],
    "error": "#882255",  # wine: apart from vermillion for colour-blind readers
    "unknown": figures.COLORS["neutral"],
    "configManager": figures.COLORS["configmgr"],
    "no_record": figures.COLORS["light"],
}
TILE_ACCENT = {
    "agree": figures.COLORS["success"],
    "missing": figures.COLORS["failure"],
    "stale": figures.COLORS["enrolling"],
    "not-comanaged-in-intune": figures.COLORS["pending"],
    "intune-ahead": figures.COLORS["intune"],
}
HELP_TEXT = (
    "ConfigMgr records are matched to Intune's by Entra device ID, or by name when a record "
    "has no ID and its name is unique. The compliance authority check is inferred, not read: "
    "Intune's documented compliance state 'configManager' (shown as See ConfigMgr) is taken "
    "to mean ConfigMgr evaluates compliance, which should agree with the compliance "
    "workload's setting; neither console states it directly."
)


def has_intune(store) -> bool:
    """Whether the loaded estate has Intune records to show."""
    estate = store.estate
    return estate is not None and estate.intune is not None


def stale_banner(estate):
    """ "Intune data stale: <error>" when the last Intune read failed (the ConfigMgr side
    still serves); None otherwise."""
    error = None if estate is None else estate.intune_error
    if not error:
        return None
    shown = "the last good Intune records" if estate.intune is not None else "no Intune records"
    return dbc.Alert(
        f"Intune data stale: {error} (showing {shown}).",
        color="warning",
        id="intune-stale-banner",
        className="py-2 mb-2",
    )


def section(
    store,
    settings,
    site: str | None = None,
    collection: str | None = None,
    pathname: str = "/",
    search: str = "",
):
    """The overview's Intune card drawn for a scope (``render`` redraws it on changes), or
    None without an Intune source."""
    if not has_intune(store):
        return None
    tile, source, figure, alternative = render(store, settings, site, collection)
    # Every location prop given: the Location does not write the URL back on mount (one
    # more round trip and page update on a first visit).
    nav = dcc.Location(
        id="ovw-intune-nav",
        refresh="callback-nav",
        pathname=pathname,
        search=search,
        hash="",
        href=pathname + search,
    )
    return dbc.Card(
        [
            dbc.CardHeader(
                [
                    html.H2("ConfigMgr and Intune", className="h6 mb-0 fw-semibold"),
                    html.Div(
                        "Each ConfigMgr record against Intune's record of it, and the "
                        "compliance Intune reports for co-managed devices",
                        className="small text-secondary",
                    ),
                ],
                className="bg-white border-bottom-0 pb-0",
            ),
            dbc.CardBody(
                [
                    nav,
                    dbc.Row(
                        [
                            dbc.Col(
                                [
                                    html.Div(
                                        tile,
                                        id="ovw-intune-tile",
                                        className="row row-cols-2 row-cols-md-3 g-2",
                                    ),
                                    html.Div(
                                        source, id="ovw-intune-source", className="small mt-2"
                                    ),
                                ],
                                lg=6,
                            ),
                            dbc.Col(
                                html.Div(
                                    [
                                        html.H3(GRAPH_TITLE, className="h6 small fw-semibold"),
                                        dcc.Graph(
                                            id=GRAPH_ID,
                                            config=figures.GRAPH_CONFIG,
                                            responsive=True,
                                            style={"height": f"{GRAPH_HEIGHT}px"},
                                            className="ovw-graph clickable-graph",
                                            figure=figure,
                                        ),
                                        html.Div(alternative, id=f"{GRAPH_ID}-alt"),
                                    ],
                                    role="figure",
                                    **{"aria-label": GRAPH_TITLE},
                                ),
                                lg=6,
                            ),
                        ],
                        className="g-3",
                    ),
                    html.P(HELP_TEXT, className="small text-secondary mb-0 mt-2", id="intune-help"),
                ],
                className="pt-2",
            ),
        ],
        className="shadow-sm mb-3",
        id="ovw-intune",
    )


def _count_tile(key: str, label: str, number, href: str, title: str, accent: str):
    return html.Div(
        dcc.Link(
            dbc.Card(
                dbc.CardBody(
                    [
                        html.Div(label, className="small text-secondary"),
                        html.Div(
                            "-" if number is None else f"{number:,}",
                            id=f"intune-count-{key}",
                            className="fs-4 fw-semibold",
                            **{"data-count": "" if number is None else str(number)},
                        ),
                    ],
                    className="py-2 px-3",
                ),
                className="h-100 kpi-card",
                style={"borderLeft": f"4px solid {accent}"},
            ),
            href=href,
            className="text-reset text-decoration-none intune-link",
            title=f"{title}: open the list",
        ),
        className="col",
    )


def tile(intune: dict | None, site: str | None, collection: str | None) -> list:
    """The six counts: the reconciliation states, then the Intune-only records."""
    reconciliation = (intune or {}).get("reconciliation", {})
    tiles = [
        _count_tile(
            state,
            INTUNE_STATE_LABELS[state],
            reconciliation.get(state) if intune else None,
            devices_url({"intune": state}, site, collection),
            INTUNE_STATE_EXPLANATIONS[state],
            TILE_ACCENT[state],
        )
        for state in INTUNE_STATES
    ]
    tiles.append(
        _count_tile(
            "intune-only",
            INTUNE_ONLY_LABEL,
            intune.get("intune_only") if intune else None,
            INTUNE_ONLY_PATH,
            INTUNE_ONLY_EXPLANATION,
            figures.COLORS["ink"],
        )
    )
    return tiles


def source_line(intune: dict | None, site: str | None, collection: str | None):
    """What the figures rest on: records read, kept and dropped; matches (by name); the
    authority mismatches, linked to their devices."""
    if not intune:
        return None

    def number(key: str) -> html.Strong:
        return html.Strong(
            f"{intune[key]:,}", id=f"intune-{key}", **{"data-count": str(intune[key])}
        )

    return html.Div(
        [
            html.Span(
                [
                    "Intune: ",
                    number("records"),
                    " records read, ",
                    number("windows"),
                    " Windows records kept, ",
                    number("dropped"),
                    " dropped. ",
                ]
            ),
            html.Span(
                [
                    number("matched"),
                    " ConfigMgr records in this view matched (",
                    number("matched_by_name"),
                    " by name). ",
                ]
            ),
            dcc.Link(
                [number("authority_mismatch"), " compliance authority mismatches"],
                href=devices_url({"attention": "authority-mismatch"}, site, collection),
                id="intune-authority-link",
            ),
            ".",
        ],
        className="text-secondary",
    )


def compliance_figure(intune: dict | None):
    """Donut of the co-managed devices' Intune compliance; zero slices left out."""
    if not intune:
        return figures.empty_figure("No Intune data")
    counts = intune["compliance"]
    keys = [key for key in COMPLIANCE_STATES if counts.get(key)]
    if not keys:
        return figures.empty_figure("No co-managed device in this view")
    total = sum(counts[key] for key in keys)
    return figures.chart(
        [
            {
                "type": "pie",
                "labels": [COMPLIANCE_LABELS[key] for key in keys],
                "values": [counts[key] for key in keys],
                "customdata": [filter_fragment({"compliance": key}) for key in keys],
                "marker": {
                    "colors": [COMPLIANCE_COLORS[key] for key in keys],
                    "line": {"color": "white", "width": 1.5},
                },
                "insidetextfont": {
                    "color": [figures.text_on(COMPLIANCE_COLORS[key]) for key in keys]
                },
                "hole": 0.55,
                "sort": False,
                "direction": "clockwise",
                "text": figures._slice_text([counts[key] for key in keys]),
                "textinfo": "text",
                "textposition": "inside",
                "insidetextorientation": "horizontal",
                "hovertext": [
                    f"{COMPLIANCE_LABELS[key]}<br>{counts[key]:,} devices "
                    f"({figures.pct(counts[key], total)} of co-managed)"
                    for key in keys
                ],
                "hovertemplate": figures.CLICK_HOVER,
                "name": "Intune compliance",
            }
        ],
        [{"text": f"<b>{total:,}</b><br>co-managed", "showarrow": False, "font": {"size": 13}}],
        legend={"orientation": "v", "x": 1.0, "y": 0.5, "yanchor": "middle"},
    )


def render(store, settings, site, collection) -> tuple:
    """(tile, source line, donut, donut's alternative) for the overview's filter: the same
    for everyone until the data changes, so drawn once per loaded estate and scope."""
    site, collection, _notes = checked_filters(store, settings, site, collection)
    return drawn_once(
        store, ("intune-tiles", site, collection), lambda: _render_scope(store, site, collection)
    )


def _render_scope(store, site, collection) -> tuple:
    summary = store.summary(site, collection)
    intune = None if summary is None else summary.get("intune")
    fig = compliance_figure(intune)
    alternative = chart_tables.chart_alternative(
        fig,
        GRAPH_TITLE,
        f"{GRAPH_ID}-table",
        site,
        collection,
        category_header="Compliance",
    )
    return tile(intune, site, collection), source_line(intune, site, collection), fig, alternative


def navigate(click_data, site, collection, store, settings):
    """The device list of a clicked donut segment, or no_update."""
    try:
        fragment = click_data["points"][0]["customdata"]
    except (TypeError, KeyError, IndexError):
        return no_update
    if isinstance(fragment, list):
        fragment = fragment[0] if fragment else None
    site, collection, _notes = checked_filters(store, settings, site, collection)
    url = devices_url_from_fragment(fragment, site, collection)
    return url if url is not None else no_update


def register(app, store, settings) -> dict:
    """The section's callbacks (they fire only when the section is on the page)."""

    @app.callback(
        Output("ovw-intune-tile", "children"),
        Output("ovw-intune-source", "children"),
        Output(GRAPH_ID, "figure"),
        Output(f"{GRAPH_ID}-alt", "children"),
        Input("ovw-site", "value"),
        Input("ovw-collection", "value"),
        Input("data-version", "data"),
        prevent_initial_call=True,  # the layout draws the first scope
    )
    def _intune_render(site, collection, _version):
        return render(store, settings, site, collection)

    @app.callback(
        Output("ovw-intune-nav", "href"),
        Input(GRAPH_ID, "clickData"),
        State("ovw-site", "value"),
        State("ovw-collection", "value"),
        prevent_initial_call=True,
    )
    def _intune_navigate(click_data, site, collection):
        return navigate(click_data, site, collection, store, settings)

    return {"intune_render": _intune_render, "intune_navigate": _intune_navigate}
