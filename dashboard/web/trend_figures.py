"""Plotly line charts of the trends page: pure functions, trend series in, ``go.Figure`` out.

The input is ``model.trends.trend_series`` (one row per snapshot day). Colours come from
``figures.COLORS`` (one colour per meaning across the dashboard); every line also has its own
dash pattern and marker symbol, so lines are told apart without colour, and the legend names
them. Hover texts give the day, the value and what it is a share of.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from ..labels import FUNNEL_LABELS, WORKLOAD_LABELS
from ..model.attention import RULES
from ..settings import WORKLOADS
from . import figures
from .figures import COLORS

NO_HISTORY = (
    "No history yet: a snapshot is recorded at each data refresh and by "
    "`comanage-dashboard snapshot`"
)
HISTORY_OFF = 'History is off (history_url = "off")'
NO_DAYS = "No snapshot in this date range"
WORKLOADS_HEADING = (
    "Workloads moved to Intune",  # the trends page's and the report's
    "Per workload: Intune and Pilot Intune, as a share of co-managed devices",
)

FUNNEL_STYLE = {  # stage -> (colour, dash, marker)
    "eligible": (COLORS["ink"], "dot", "circle-open"),
    "scheduled": (COLORS["pilot"], "dash", "square"),
    "initiated": (COLORS["configmgr"], "dashdot", "diamond"),
    "enrolled": (COLORS["success"], "solid", "circle"),
}
WORKLOAD_STYLE = {  # workload -> (colour, dash, marker)
    "compliance_policies": (COLORS["intune"], "solid", "circle"),
    "office_click_to_run_apps": (COLORS["pilot"], "dash", "square"),
    "client_apps": (COLORS["success"], "dot", "diamond"),
    "windows_update_policies": (COLORS["configmgr"], "dashdot", "triangle-up"),
    "device_configuration": (COLORS["failure"], "longdash", "x"),
    "endpoint_protection": (COLORS["pending"], "longdashdot", "star"),
    "resource_access_policies": (COLORS["neutral"], "solid", "cross"),
}
RULE_STYLE = (
    ("dot", "circle-open"),
    ("dash", "square-open"),
    ("dashdot", "diamond-open"),
    ("longdash", "triangle-up-open"),
    ("longdashdot", "x"),
    ("solid", "star-open"),
)


def _days(series: pd.DataFrame) -> list[str]:
    return [pd.Timestamp(day).strftime("%Y-%m-%d") for day in series.index]


def _layout(traces: list[dict], y_title: str, percent: bool = False, **extra) -> go.Figure:
    yaxis = {
        "title": {"text": y_title},
        "rangemode": "tozero",
        "automargin": True,
        "separatethousands": True,
    }
    if percent:
        yaxis.update(range=[0, 100], ticksuffix=" %")
    layout = {
        "hovermode": "x unified",
        "xaxis": {
            "type": "date",
            "tickformat": "%d %b\n%Y",
            "automargin": True,
            "hoverformat": "%Y-%m-%d",
        },
        "yaxis": yaxis,
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0},
        "margin": {"l": 8, "r": 16, "t": 32, "b": 8},
    }
    return figures.chart(traces, **(layout | extra))


def _line(
    name: str,
    days: list[str],
    values,
    color: str,
    dash: str,
    symbol: str,
    hover: list[str],
    visible=True,
    width: float = 2.2,
) -> dict:
    return dict(
        type="scatter",
        x=days,
        y=list(values),
        name=name,
        mode="lines+markers",
        visible=visible,
        line={"color": color, "dash": dash, "width": width},
        marker={"symbol": symbol, "size": 6, "color": color, "line": {"color": color, "width": 1}},
        hovertext=hover,
        hovertemplate="%{hovertext}<extra></extra>",
    )


def _percent(value: float) -> str:
    return "-" if value != value else f"{100 * value:.1f} %"


def share_figure(series: pd.DataFrame) -> go.Figure:
    """Co-managed devices as a share of all devices in the view, per day."""
    days = _days(series)
    hover = [
        f"Co-managed: {_percent(s)} ({int(c):,} of {int(d):,} devices)"
        for s, c, d in zip(
            series["comanaged_share"], series["comanaged"], series["devices"], strict=True
        )
    ]
    line = _line(
        "Co-managed share",
        days,
        100 * series["comanaged_share"],
        COLORS["success"],
        "solid",
        "circle",
        hover,
        width=2.6,
    )
    return _layout(
        [line],
        "% of devices",
        percent=True,
        showlegend=False,
        margin={"l": 8, "r": 16, "t": 12, "b": 8},
    )


def funnel_figure(series: pd.DataFrame) -> go.Figure:
    """The co-management status funnel's four stages, in devices, per day."""
    days = _days(series)
    traces = []
    for stage, label in FUNNEL_LABELS.items():
        color, dash, symbol = FUNNEL_STYLE[stage]
        values = series[f"funnel_{stage}"]
        hover = [f"{label}: {int(v):,} devices" for v in values]
        traces.append(_line(label, days, values, color, dash, symbol, hover))
    return _layout(traces, "devices")


def workloads_figure(series: pd.DataFrame) -> go.Figure:
    """Per workload, the share of co-managed devices whose authority is Intune or Pilot
    Intune. Workloads that never moved are left out (named in the title)."""
    days = _days(series)
    traces = []
    never = []
    latest = {key: series[f"intune_share_{key}"].fillna(0).iloc[-1] for key in WORKLOADS}
    for key in sorted(WORKLOADS, key=lambda k: -latest[k]):  # the legend reads like the lines
        shares = series[f"intune_share_{key}"]
        if not (series[f"intune_{key}"] > 0).any():
            never.append(WORKLOAD_LABELS[key])
            continue
        color, dash, symbol = WORKLOAD_STYLE[key]
        hover = [
            f"{WORKLOAD_LABELS[key]}: {_percent(s)} ({int(m):,} of {int(c):,} co-managed)"
            for s, m, c in zip(shares, series[f"intune_{key}"], series["comanaged"], strict=True)
        ]
        traces.append(_line(WORKLOAD_LABELS[key], days, 100 * shares, color, dash, symbol, hover))
    if not traces:
        return figures.empty_figure("No workload has moved to Intune in these snapshots")
    return _layout(
        traces,
        "% of co-managed devices",
        percent=True,
        **({"meta": {"never_moved": never}} if never else {}),
    )


def failures_figure(series: pd.DataFrame) -> go.Figure:
    """Enrollment failures, devices pending user sign in and stuck enrollments, per day."""
    days = _days(series)
    traces = []
    lines = (
        ("failures", "Enrollment failures", COLORS["failure"], "solid", "circle"),
        ("attention_pending-sign-in", "Pending user sign in", COLORS["pending"], "dash", "square"),
        ("attention_stuck", "Enrollment stuck", COLORS["ink"], "dot", "diamond"),
    )
    for column, label, color, dash, symbol in lines:
        values = series[column]
        traces.append(
            _line(
                label,
                days,
                values,
                color,
                dash,
                symbol,
                [f"{label}: {int(v):,} devices" for v in values],
            )
        )
    return _layout(traces, "devices")


SEVERITY_COLORS = {"high": COLORS["failure"], "medium": COLORS["pending"], "low": COLORS["pilot"]}


def attention_figure(series: pd.DataFrame) -> go.Figure:
    """Devices needing attention (any rule) and each attention rule's count, per day."""
    days = _days(series)
    traces = [
        _line(
            "Need attention (any rule)",
            days,
            series["attention_devices"],
            COLORS["ink"],
            "solid",
            "circle",
            [f"Need attention: {int(v):,} devices" for v in series["attention_devices"]],
            width=3,
        )
    ]
    ranked = sorted(
        enumerate(RULES), key=lambda item: ("high", "medium", "low").index(item[1].severity)
    )
    for index, rule in ranked:
        if f"attention_{rule.id}" not in series.columns:  # an Intune rule, without Intune
            continue
        dash, symbol = RULE_STYLE[index % len(RULE_STYLE)]
        values = series[f"attention_{rule.id}"]
        traces.append(
            _line(
                f"{rule.title} ({rule.severity})",
                days,
                values,
                SEVERITY_COLORS[rule.severity],
                dash,
                symbol,
                [f"{rule.title}: {int(v):,}" for v in values],
                width=1.8,
            )
        )
    return _layout(
        traces,
        "devices",
        legend={"orientation": "v", "x": 1.01, "y": 1, "yanchor": "top", "xanchor": "left"},
        margin={"l": 8, "r": 8, "t": 12, "b": 8},
    )


FIGURES = {  # component id -> builder
    "trd-share": share_figure,
    "trd-funnel": funnel_figure,
    "trd-workloads": workloads_figure,
    "trd-failures": failures_figure,
    "trd-attention": attention_figure,
}
