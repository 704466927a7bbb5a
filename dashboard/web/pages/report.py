"""The weekly report (``/report?week=2026-W48&site=PS1&collection=CAS00101``): one fixed-width,
print-friendly page that ``comanage-dashboard report`` photographs (PNG) and prints (PDF).

Not in the navbar. Everything is drawn at layout time (no callback), the charts are static
(``staticPlot``: no modebar, no hover, nothing to click) with fixed pixel sizes, and the
shell's navbar and status header are hidden on this page (``assets/70-report.css``), which
also holds the print rules (backgrounds printed, sections not split across pages).

The figures come from the report package (``report.figures.weekly_figures``, where the week's
semantics are described); they are also embedded as JSON text in ``#report-data`` so that a
report made from a running dashboard (``report --url``) writes its e-mail summary from exactly
the numbers on the page.
``#report[data-graphs]`` says how many charts the page draws (the command waits for them);
``#report[data-error]`` carries the reason when there is nothing to show. Every text from
the site database (collection names, error details) is rendered as text, never as markup.
"""

from __future__ import annotations

import json
from datetime import date

import plotly.graph_objects as go
from dash import dcc, html

from ... import __version__
from ...model.kpis import BY_ID
from ...model.trends import trend_series
from ...report import figures as weekly
from ...text import change_text
from .. import figures as charts
from .. import trend_figures
from ..links import attention_url, first
from ..panels import SEVERITY_LABELS
from ..week_changes import CHANGE_GOOD, change_line
from .overview import checked_filters, one_site

PATH = weekly.REPORT_PATH
WIDTH = 1200  # CSS pixels: the PNG's width; the PDF is scaled to fit its paper
PADDING = 32
CONTENT = WIDTH - 2 * PADDING
GAP = 16
CARD_INNER = 2 * 14 + 2  # a card's horizontal padding and border
HALF = (CONTENT - GAP) // 2 - CARD_INNER
FULL = CONTENT - CARD_INNER
STATIC = charts.STATIC_CONFIG  # the shared chart config, drawn static (nothing to click)


def _graph(graph_id: str, fig: go.Figure, width: int, height: int):
    fig.update_layout(
        width=width,
        height=height,
        autosize=False,
        clickmode="none",
        hovermode=False,
        transition={"duration": 0},
    )
    return dcc.Graph(
        id=graph_id,
        figure=fig,
        config=STATIC,
        responsive=False,
        style={"width": f"{width}px", "height": f"{height}px"},
        className="rpt-graph",
    )


def _card(title: str, subtitle: str, body, class_name: str = ""):
    return html.Div(
        [
            html.H3(title, className="rpt-card-title"),
            html.Div(subtitle, className="rpt-card-subtitle") if subtitle else None,
            body,
        ],
        className=f"rpt-card {class_name}".strip(),
    )


def _section(section_id: str, title: str, children, note: str | None = None):
    return html.Section(
        [
            html.H2(title, className="rpt-section-title"),
            html.Div(note, className="rpt-note") if note else None,
            *children,
        ],
        className="rpt-section",
        id=section_id,
    )


def _visible(fig: go.Figure) -> go.Figure:
    """A static chart cannot toggle legend entries: drop the lines hidden behind them."""
    fig.data = tuple(trace for trace in fig.data if trace.visible != "legendonly")
    return fig


# -- the parts -------------------------------------------------------------------------------


def _header(figures: dict):
    organisation = figures["organisation"]
    facts = [
        ("Scope", figures["scope"]["text"]),
        ("Data as of", weekly.time_text(figures["data_as_of"])),
        ("Report date", weekly.time_text(figures["generated_at"])),
        (
            "Compared with",
            "the snapshot of " + weekly.day_text(date.fromisoformat(figures["reference_day"]))
            if figures["reference_day"]
            else "no snapshot a week older",
        ),
    ]
    return html.Header(
        [
            html.Div(
                [
                    html.Div(
                        [
                            html.Div(
                                organisation, className="rpt-organisation", id="rpt-organisation"
                            )
                            if organisation
                            else None,
                            html.H1(figures["title"], className="rpt-title"),
                        ]
                    ),
                    html.Div(
                        [
                            html.Div(figures["week"], className="rpt-week", id="rpt-week"),
                            html.Div(figures["week_text"], className="rpt-week-text"),
                        ],
                        className="text-end",
                    ),
                ],
                className="rpt-header-top",
            ),
            html.Dl(
                [
                    item
                    for label, value in facts
                    for item in (
                        html.Dt(label),
                        html.Dd(value, id=f"rpt-{label.lower().replace(' ', '-')}"),
                    )
                ],
                className="rpt-facts",
            ),
        ],
        className="rpt-header",
    )


def _kpis(figures: dict):
    tiles = []
    for row in figures["kpis"]:
        change = None
        if row["delta"] is not None:
            change = {
                "delta": row["delta"],
                "previous": row["previous"],
                "day": date.fromisoformat(row["since"]),
            }
        color = charts.COLORS[BY_ID[row["id"]].accent]
        tiles.append(
            html.Div(
                [
                    html.Div(row["title"], className="rpt-kpi-title"),
                    html.Div(
                        f"{row['value']:,}",
                        className="rpt-kpi-value",
                        id=f"rpt-{row['id']}",
                        **{"data-value": str(row["value"])},
                    ),
                    html.Div(row["note"], className="rpt-kpi-note"),
                    change_line(row["id"], change)
                    if change
                    else html.Div("no week-ago snapshot", className="rpt-kpi-note"),
                ],
                className="rpt-kpi",
                style={"borderLeftColor": color},
            )
        )
    return html.Div(tiles, className="rpt-kpis")


def _changes(figures: dict):
    changes = figures["changes"]
    if changes is None:
        return html.Div(
            "No per-device snapshot a week or more before this one: changes "
            "appear once history covers a week.",
            className="rpt-note",
            id="rpt-no-changes",
        )
    items = []
    for item in changes["items"]:
        color = charts.COLORS["success"] if CHANGE_GOOD[item["kind"]] else charts.COLORS["failure"]
        items.append(
            html.Div(
                [
                    html.Div(item["label"], className="rpt-kpi-title"),
                    html.Div(
                        f"{item['count']:,}",
                        className="rpt-kpi-value",
                        id=f"rpt-chg-{item['kind']}",
                        **{"data-value": str(item["count"])},
                    ),
                ],
                className="rpt-kpi",
                style={"borderLeftColor": color},
            )
        )
    return html.Div(items, className="rpt-changes")


def _overview_charts(figures: dict, settings) -> list:
    summary = figures["summary"]
    return [
        html.Div(
            [
                _card(
                    *charts.HEADINGS["funnel"],
                    _graph("rpt-funnel", charts.funnel_figure(summary), HALF, 300),
                ),
                _card(
                    *charts.HEADINGS["status"],
                    _graph(
                        "rpt-status",
                        charts.enrollment_status_figure(summary, figures["status_labels"]),
                        HALF,
                        300,
                    ),
                ),
            ],
            className="rpt-row",
        ),
        _card(
            *charts.HEADINGS["workloads"],
            _graph("rpt-workloads", charts.workloads_figure(summary), FULL, 330),
        ),
    ]


def _trend_charts(store, figures: dict) -> tuple[list, str | None]:
    if store.history is None:
        return [], trend_figures.HISTORY_OFF
    frame = weekly.trend_frame(store, figures)
    if frame is None:
        return [], trend_figures.NO_HISTORY
    series = trend_series(frame)
    note = None
    if len(series) < 2:
        note = "Only one snapshot so far: the lines grow with each weekly snapshot."
    return [
        html.Div(
            [
                _card(
                    "Co-managed share",
                    "Co-managed devices as a share of all devices",
                    _graph("rpt-trend-share", trend_figures.share_figure(series), HALF, 280),
                ),
                _card(
                    "Failures and attention",
                    "Enrollment failures, devices needing attention and stuck enrollments",
                    _graph(
                        "rpt-trend-failures",
                        _visible(trend_figures.failures_figure(series)),
                        HALF,
                        280,
                    ),
                ),
            ],
            className="rpt-row",
        ),
        _card(
            *trend_figures.WORKLOADS_HEADING,
            _graph("rpt-trend-workloads", trend_figures.workloads_figure(series), FULL, 300),
        ),
    ], note


def _attention_table(figures: dict):
    rows = figures["attention"][: weekly.TOP_RULES]
    if not rows:
        return html.Div("No device needs attention.", className="rpt-note")
    devices = figures["summary"]["devices"]
    scope = figures["scope"]

    def fix(row: dict):
        if row["id"] != "enrollment-failed":
            return row["fix"]
        # each failed device's error and its fix are on its own page: link the devices
        href = attention_url(row["id"], scope.get("site"), scope.get("collection"))
        return [
            "Apply the fix for each device's error code (the enrollment errors below). ",
            html.A(f"The {row['count']:,} failed devices", href=href, **{"data-rule": row["id"]}),
            ", each with its error and fix on its page.",
        ]

    body = [
        html.Tr(
            [
                html.Td(
                    html.Span(
                        SEVERITY_LABELS[row["severity"]], className=f"badge sev-{row['severity']}"
                    )
                ),
                html.Td(
                    [
                        html.Div(row["title"], className="fw-semibold"),
                        html.Div(row["explanation"], className="rpt-small"),
                    ]
                ),
                html.Td(
                    f"{row['count']:,}", className="text-end rpt-num", **{"data-rule": row["id"]}
                ),
                html.Td(charts.pct(row["count"], devices), className="text-end rpt-num"),
                html.Td(fix(row), className="rpt-small"),
            ]
        )
        for row in rows
    ]
    head = html.Thead(
        html.Tr(
            [
                html.Th("Severity"),
                html.Th("Rule"),
                html.Th("Devices", className="text-end"),
                html.Th("% of devices", className="text-end"),
                html.Th("Fix"),
            ]
        )
    )
    return html.Table([head, html.Tbody(body)], className="rpt-table", id="rpt-attention")


def _intune_table(table_id: str, caption: str, rows: list[dict], since: str | None):
    head = html.Thead(
        html.Tr(
            [
                html.Th(caption),
                html.Th("Devices", className="text-end"),
                html.Th(
                    "Change in a week" if since else "Change",
                    className="text-end",
                    title=f"Since {since}" if since else "No week-ago day with Intune figures",
                ),
            ]
        )
    )
    body = [
        html.Tr(
            [
                html.Td(row["label"]),
                html.Td(
                    f"{row['count']:,}", className="text-end rpt-num", **{"data-id": row["id"]}
                ),
                html.Td(change_text(row["delta"]), className="text-end rpt-num"),
            ]
        )
        for row in rows
    ]
    return html.Table([head, html.Tbody(body)], className="rpt-table", id=table_id)


def _intune(figures: dict) -> list:
    """The ConfigMgr-and-Intune tables, or nothing without an Intune source."""
    intune = figures.get("intune")
    if not intune:
        return []
    since = figures["reference_day"]
    has_change = any(row["delta"] is not None for row in intune["reconciliation"])
    since = since if has_change else None
    return [
        html.Div(
            [
                _intune_table(
                    "rpt-intune",
                    "ConfigMgr record against Intune's",
                    [*intune["reconciliation"], intune["authority_mismatch"]],
                    since,
                ),
                _intune_table(
                    "rpt-compliance",
                    "Intune compliance (co-managed devices)",
                    intune["compliance"],
                    since,
                ),
            ],
            className="rpt-intune",
        )
    ]


def _errors_table(figures: dict):
    rows = figures["errors"][: weekly.TOP_ERRORS]
    if figures.get("errors_unavailable"):
        return html.Div(
            "Enrollment errors by code are kept in history for whole sites only.",
            className="rpt-note",
        )
    if not rows:
        return html.Div("No enrollment errors.", className="rpt-note")
    total = figures["errors_total"]
    body = [
        html.Tr(
            [
                html.Td(row["code"], className="font-monospace"),
                html.Td(f"{row['count']:,}", className="text-end rpt-num"),
                html.Td(charts.pct(row["count"], total), className="text-end rpt-num"),
                html.Td(row["description"]),
                html.Td(row["fix"], className="rpt-small"),
                html.Td("yes" if row["transient"] else "no", className="text-center"),
            ]
        )
        for row in rows
    ]
    head = html.Thead(
        html.Tr(
            [
                html.Th("Code"),
                html.Th("Devices", className="text-end"),
                html.Th("% of failures", className="text-end"),
                html.Th("Description"),
                html.Th("Fix"),
                html.Th("Transient", className="text-center"),
            ]
        )
    )
    more = len(figures["errors"]) - len(rows)
    return html.Div(
        [
            html.Table([head, html.Tbody(body)], className="rpt-table", id="rpt-errors"),
            html.Div(
                f"{more} more error code{'s' if more != 1 else ''} in the dashboard.",
                className="rpt-note mt-1",
            )
            if more > 0
            else None,
        ]
    )


def _footer(figures: dict):
    sources = figures["summary"].get("sources") or []
    text = ", ".join(
        f"{s['site']} ({s['kind'].upper()}, {s['rows']:,} rows"
        + (f", {s['dropped']:,} dropped" if s["dropped"] else "")
        + ")"
        for s in sources
    )
    return html.Footer(
        [
            *[html.Div(note, className="rpt-note") for note in figures["notes"]],
            html.Div(f"Sources: {text}" if text else None, className="rpt-note"),
            html.Div(
                f"comanage-dashboard {__version__} · generated "
                f"{weekly.time_text(figures['generated_at'])}",
                className="rpt-note",
            ),
        ],
        className="rpt-footer",
    )


def _error_page(message: str, notes: list[str]):
    return html.Div(
        [
            html.H1(weekly.TITLE, className="rpt-title"),
            *[html.Div(note, className="rpt-note") for note in notes],
            html.Div(message, className="alert alert-warning mt-3", id="rpt-error"),
        ],
        id="report",
        **{"data-graphs": "0", "data-error": message},
    )


# -- the page ----------------------------------------------------------------------------------


def build(
    store,
    settings,
    week: str | None,
    site: str | None,
    collection: str | None,
    notes: list[str] | None = None,
):
    """The report for validated filters (the command and the router both come here)."""
    notes = list(notes or [])
    if store.estate is None:
        return _error_page("No data loaded yet: try again in a moment.", notes)
    try:
        figures = weekly.weekly_figures(store, settings, week, site, collection)
    except weekly.ReportError as error:
        return _error_page(str(error), notes)
    figures["notes"] = notes + figures["notes"]
    trends, trend_note = _trend_charts(store, figures)
    overview = _overview_charts(figures, settings)
    graphs = 3 + (3 if trends else 0)
    return html.Div(
        [
            _header(figures),
            _section("rpt-sec-kpis", "This week", [_kpis(figures)]),
            _section(
                "rpt-sec-changes",
                "What changed this week",
                [_changes(figures)],
                note=(
                    "Devices compared with the snapshot of "
                    + weekly.day_text(date.fromisoformat(figures["changes"]["since"]))
                )
                if figures["changes"]
                else None,
            ),
            _section(
                "rpt-sec-overview",
                "Co-management now"
                if figures["source"] == "current"
                else "Co-management on " + weekly.day_text(date.fromisoformat(figures["day"])),
                overview,
            ),
            _section(
                "rpt-sec-intune",
                "ConfigMgr and Intune",
                _intune(figures),
                note="Each ConfigMgr record against Intune's record of it, and the compliance "
                "Intune reports for co-managed devices",
            )
            if figures.get("intune")
            else None,
            _section("rpt-sec-trends", "Trends", trends, note=trend_note),
            _section(
                "rpt-sec-attention",
                "Top attention rules",
                [_attention_table(figures)],
                note="Devices each rule flags (a device can match several rules)",
            ),
            _section(
                "rpt-sec-errors",
                "Top enrollment errors",
                [_errors_table(figures)],
                note="Failed enrollments by error code, with the fix",
            ),
            _footer(figures),
            html.Pre(
                json.dumps(figures, ensure_ascii=True, default=str),
                id="report-data",
                hidden=True,
                style={"display": "none"},
            ),
        ],
        id="report",
        **{"data-graphs": str(graphs), "data-week": figures["week"]},
    )


def layout(store, settings, pathname: str, query: dict):
    """An unknown site or collection is an error here (a report must not silently widen its
    scope); ``overview.checked_filters`` decides what is known."""
    asked_site, repeated = one_site(query)
    if repeated:
        return _error_page(
            repeated[0].replace(
                ": showing all sites.", ": a report covers one site or all of them."
            ),
            [],
        )
    asked_collection = first(query, "collection")
    site, collection, _notes = checked_filters(store, settings, asked_site, asked_collection)
    unknown = [
        f"unknown {name} {str(value)[:60]!r}"
        for name, value, kept in (
            ("site", asked_site, site),
            ("collection", asked_collection, collection),
        )
        if value and not kept
    ]
    if unknown:
        return _error_page("; ".join(unknown) + " (see the configuration)", [])
    week = first(query, "week")
    return build(store, settings, week if isinstance(week, str) else None, site, collection)


def register_callbacks(app, store, settings) -> dict:
    return {}  # drawn at layout time: nothing to update
