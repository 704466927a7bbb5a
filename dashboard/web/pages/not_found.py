"""The page for any path no page serves (the router's fallback, not in ``PAGES``)."""

from __future__ import annotations

from dash import dcc, html

PATH = None  # never matched: app.route falls back to it


def layout(store, settings, pathname, query):
    return html.Div(
        [
            html.H1("Page not found", className="h3"),
            html.P(["There is no page at ", html.Code(pathname), "."]),
            dcc.Link("Go to the overview", href="/", className="btn btn-primary btn-sm"),
        ],
        className="py-5 text-center",
        id="not-found",
    )


def register_callbacks(app, store, settings) -> dict:
    return {}
