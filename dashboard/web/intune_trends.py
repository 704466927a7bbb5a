"""The trends page's Intune charts: reconciliation and compliance counts per snapshot day.

Drawn from the history's ``intune.reconciliation.<state>`` and ``intune.compliance.<state>``
metrics (a day that lacks one counts zero, as for every metric), shown only when the
estate has an Intune source. Each chart has the same text alternative and table view as
the page's other charts.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output

from ..intune_labels import COMPLIANCE_LABELS, INTUNE_STATE_LABELS
from ..model.intune import COMPLIANCE_STATES, RECONCILIATION_STATES
from . import chart_tables, figures
from .intune_tiles import COMPLIANCE_COLORS, TILE_ACCENT, has_intune
from .trend_figures import RULE_STYLE, _days, _layout, _line

CARDS = {
    "trd-intune": (
        "ConfigMgr and Intune over time",
        "ConfigMgr records per reconciliation state with Intune's records",
    ),
    "trd-compliance": (
        "Intune compliance over time",
        "Co-managed devices per Intune compliance state",
    ),
}
GRAPHS = tuple(CARDS)
OUTPUTS = (*GRAPHS, *(f"{graph_id}-alt" for graph_id in GRAPHS))


def _counts(frame: pd.DataFrame, prefix: str, keys) -> pd.DataFrame:
    return pd.DataFrame(
        {
            key: (
                frame[f"{prefix}{key}"].astype("float64").fillna(0)
                if f"{prefix}{key}" in frame.columns
                else pd.Series(0.0, index=frame.index)
            )
            for key in keys
        },
        index=frame.index,
    )


def _figure(counts: pd.DataFrame, labels: dict, colors: dict) -> go.Figure:
    days = _days(counts)
    traces = []
    for index, key in enumerate(counts.columns):
        dash, symbol = RULE_STYLE[index % len(RULE_STYLE)]
        label = labels[key]
        values = counts[key]
        traces.append(
            _line(
                label,
                days,
                values,
                colors[key],
                dash,
                symbol,
                [f"{label}: {int(v):,} devices" for v in values],
            )
        )
    return _layout(traces, "devices")


def reconciliation_figure(frame: pd.DataFrame) -> go.Figure:
    """ConfigMgr records per reconciliation state, per day."""
    counts = _counts(frame, "intune.reconciliation.", RECONCILIATION_STATES)
    return _figure(counts, INTUNE_STATE_LABELS, TILE_ACCENT)


def compliance_figure(frame: pd.DataFrame) -> go.Figure:
    """Co-managed devices per Intune compliance state, per day."""
    counts = _counts(frame, "intune.compliance.", COMPLIANCE_STATES)
    return _figure(counts, COMPLIANCE_LABELS, COMPLIANCE_COLORS)


BUILDERS = {"trd-intune": reconciliation_figure, "trd-compliance": compliance_figure}


def cards(store, card):
    """The two charts' cards (``card(graph_id, settings)`` is the page's), or None."""
    if not has_intune(store):
        return None
    settings = store.settings
    return dbc.Row(
        [dbc.Col(card(graph_id, settings), lg=6) for graph_id in GRAPHS],
        className="g-3 mb-3",
        id="trd-intune-row",
    )


def render(trend_frame, store, settings, site, collection, start, end) -> tuple:
    """(figures, then their alternatives) for the trends page's filter; ``trend_frame``:
    the page's own reading of the history for a filter (one reading for every chart)."""
    frame, message, *_rest = trend_frame(store, settings, site, collection, start, end)
    out = {
        graph_id: figures.empty_figure(message) if frame is None else build(frame)
        for graph_id, build in BUILDERS.items()
    }
    for graph_id in GRAPHS:
        out[f"{graph_id}-alt"] = chart_tables.chart_alternative(
            out[graph_id],
            CARDS[graph_id][0],
            f"{graph_id}-table",
            link=False,
            category_header="Day",
        )
    return tuple(out[key] for key in OUTPUTS)


def register(app, store, settings, trend_frame) -> dict:
    """The charts' callback (it fires only when the cards are on the page)."""

    @app.callback(
        *[Output(graph_id, "figure") for graph_id in GRAPHS],
        *[Output(f"{graph_id}-alt", "children") for graph_id in GRAPHS],
        Input("trd-site", "value"),
        Input("trd-collection", "value"),
        Input("trd-range", "start_date"),
        Input("trd-range", "end_date"),
        Input("data-version", "data"),
    )
    def _intune_trends(site, collection, start, end, _version):
        return render(trend_frame, store, settings, site, collection, start, end)

    return {"intune_trends": _intune_trends}
