"""Every chart as a table and as a sentence: the keyboard and screen-reader route to its data.

A chart is a picture that a mouse can click; these give the same content to everyone else.
``chart_table`` reads the figure itself (the points, their counts and the device-list filter
each point carries as ``customdata``), so the table's links are exactly the links a click on
the chart opens, and the table can never disagree with the picture. ``chart_summary`` is the
chart's text alternative. Pure functions: figure in, Dash components or text out.
"""

from __future__ import annotations

from dataclasses import dataclass

import plotly.graph_objects as go
from dash import dcc, html

from .links import devices_url_from_fragment

SUMMARY_POINTS = 12  # points named in the text alternative; the table has them all


@dataclass(frozen=True)
class Point:
    category: str
    series: str
    value: float
    fragment: str | None  # the device-list filter a click opens, when the mark is a link


def _listed(values) -> list:
    return [] if values is None else list(values)


def points(fig: go.Figure) -> list[Point]:
    """The figure's marks in reading order (top to bottom for horizontal bars)."""
    out: list[Point] = []
    for trace in fig.data:
        kind = trace.type
        if kind == "pie":
            categories, values = _listed(trace.labels), _listed(trace.values)
        elif kind == "funnel" or (kind == "bar" and trace.orientation == "h"):
            categories, values = _listed(trace.y), _listed(trace.x)
        else:
            categories, values = _listed(trace.x), _listed(trace.y)
        fragments = _listed(trace.customdata)
        series = trace.name or ""
        for index, (category, value) in enumerate(zip(categories, values, strict=False)):
            fragment = fragments[index] if index < len(fragments) else None
            if isinstance(fragment, list | tuple):
                fragment = fragment[0] if fragment else None
            out.append(
                Point(str(category), series, value, fragment if isinstance(fragment, str) else None)
            )
    order = _category_order(fig)
    if order:
        rank = {category: index for index, category in enumerate(order)}
        out.sort(key=lambda p: rank.get(p.category, len(rank)))
    return out


def _category_order(fig: go.Figure) -> list[str]:
    """Top-to-bottom order of a horizontal bar chart's categories (plotly draws the
    ``categoryarray`` bottom up), else none."""
    axis = fig.layout.yaxis
    if (
        axis is not None
        and axis.categoryarray is not None
        and any(getattr(trace, "orientation", None) == "h" for trace in fig.data)
    ):
        return [str(c) for c in reversed(axis.categoryarray)]
    return []


def _number(value) -> str:
    if value is None or value != value:  # missing, NaN
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def empty_message(fig: go.Figure) -> str | None:
    meta = fig.layout.meta
    return meta.get("empty") if isinstance(meta, dict) else None


def chart_summary(fig: go.Figure, title: str) -> str:
    """The chart in one sentence: its title and its largest points (or why it is empty)."""
    empty = empty_message(fig)
    marks = points(fig)
    if empty or not marks:
        return f"{title}: {empty or 'no data'}."
    several = len({p.series for p in marks}) > 1
    named = [
        f"{p.category}{f' ({p.series})' if several and p.series else ''} {_number(p.value)}"
        for p in marks[:SUMMARY_POINTS]
    ]
    more = len(marks) - SUMMARY_POINTS
    tail = f"; and {more} more in the table view" if more > 0 else ""
    return f"{title}: " + "; ".join(named) + tail + "."


def _cell(point: Point | None, site: str | None, collection: str | None, link: bool):
    if point is None:
        return html.Td("-", className="text-end text-secondary")
    text = _number(point.value)
    url = (
        devices_url_from_fragment(point.fragment, site, collection)
        if link and point.fragment and point.value
        else None
    )
    if url is None:
        return html.Td(text, className="text-end")
    return html.Td(dcc.Link(text, href=url, className="chart-table-link"), className="text-end")


def has_table(fig: go.Figure) -> bool:
    """Whether the chart has marks to list (an empty chart offers no table view)."""
    return not empty_message(fig) and bool(points(fig))


def data_table(
    fig: go.Figure,
    title: str,
    table_id: str,
    site: str | None = None,
    collection: str | None = None,
    link: bool = True,
    category_header: str = "Category",
):
    """The chart's data as a table (``table_id``), each count a link to its devices; None
    when the chart is empty.

    One series: a row per category. Several series sharing categories (stacked bars, lines
    over days): a row per category and a column per series. Several series that never share
    a category (bars coloured by family): a row per category with its series named.
    """
    marks = points(fig)
    if empty_message(fig) or not marks:
        return None
    series = list(dict.fromkeys(p.series for p in marks))
    categories = list(dict.fromkeys(p.category for p in marks))
    shared = len(series) > 1 and len(marks) > len(categories)
    if shared:
        grid = {(p.category, p.series): p for p in marks}
        head = [
            html.Th(category_header, scope="col"),
            *[html.Th(name, scope="col", className="text-end") for name in series],
        ]
        rows = [
            html.Tr(
                [
                    html.Th(category, scope="row", className="fw-normal"),
                    *[_cell(grid.get((category, name)), site, collection, link) for name in series],
                ]
            )
            for category in categories
        ]
    else:
        grouped = len(series) > 1
        head = [
            html.Th(category_header, scope="col"),
            html.Th("Group", scope="col") if grouped else None,
            html.Th("Devices", scope="col", className="text-end"),
        ]
        rows = [
            html.Tr(
                [
                    html.Th(p.category, scope="row", className="fw-normal"),
                    html.Td(p.series) if grouped else None,
                    _cell(p, site, collection, link),
                ]
            )
            for p in marks
        ]
    return html.Table(
        [
            html.Caption(
                title + (" (each count opens its device list)" if link else ""),
                className="small text-secondary",
            ),
            html.Thead(html.Tr(head)),
            html.Tbody(rows),
        ],
        className="table table-sm mb-0 chart-table caption-top",
        id=table_id,
    )


def chart_table(
    fig: go.Figure,
    title: str,
    table_id: str,
    site: str | None = None,
    collection: str | None = None,
    link: bool = True,
    category_header: str = "Category",
):
    """A "View as table" disclosure with the chart's data (see ``data_table``); None when
    the chart is empty."""
    table = data_table(fig, title, table_id, site, collection, link, category_header)
    if table is None:
        return None
    return html.Details(
        [
            html.Summary("View as table", className="small chart-table-toggle"),
            html.Div(table, className="table-responsive chart-table-scroll"),
        ],
        className="chart-table-view mt-1",
    )


LOADING_TABLE = "Loading the table ..."


def loading_body():
    """What a table view holds until its table arrives."""
    return html.Div(LOADING_TABLE, className="small text-secondary")


def table_view(view_id: str, body=None, hidden: bool = False):
    """A "View as table" disclosure whose table is sent when it is first opened.

    Every row of every table is a component the browser's Dash renderer must track, and a
    page full of closed tables slowed the first draw by seconds; so the page sends only the
    toggle (``<view_id>-toggle``, whose ``n_clicks`` a click or Enter raises) and the
    server fills ``<view_id>-body`` with ``data_table`` on the first opening.
    """
    return html.Details(
        [
            html.Summary(
                "View as table", className="small chart-table-toggle", id=f"{view_id}-toggle"
            ),
            html.Div(
                body if body is not None else loading_body(),
                id=f"{view_id}-body",
                className="table-responsive chart-table-scroll",
            ),
        ],
        className="chart-table-view mt-1",
        id=view_id,
        hidden=hidden,
    )


def chart_alternative(
    fig: go.Figure,
    title: str,
    table_id: str,
    site: str | None = None,
    collection: str | None = None,
    link: bool = True,
    category_header: str = "Category",
) -> list:
    """The text alternative (read by screen readers, hidden on screen) and the table view."""
    return [
        html.P(chart_summary(fig, title), className="visually-hidden chart-summary"),
        chart_table(fig, title, table_id, site, collection, link, category_header),
    ]
