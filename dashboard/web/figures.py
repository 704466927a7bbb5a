"""Plotly figures of the overview: pure functions, summary dict in, ``go.Figure`` out.

No Dash and no data access here, so each builder is unit-tested against a summary. Every
clickable point carries its device-list filter as ``customdata`` (a query fragment from
``links.filter_fragment``): the page turns a click into ``/devices?<fragment>&<scope>``.

One colour language for the whole dashboard (Okabe-Ito, safe for the common colour-vision
deficiencies): the same state has the same colour in every chart, and Microsoft Entra joined
(not hybrid) slices carry a hatch so they do not depend on colour alone.
"""

from __future__ import annotations

import plotly.graph_objects as go

from ..labels import (
    AUTHORITY_LABELS,
    FUNNEL_LABELS,
    REASON_EXPLANATIONS,
    REASON_LABELS,
    WORKLOAD_LABELS,
    enrollment_status_labels,
)
from ..model.states import MIN_BUILD, OS_GROUPS, WINDOWS10_RELEASES
from ..text import pct
from .links import filter_fragment

# Okabe-Ito, by meaning. Defined once: pages and the report use these names.
COLORS = {
    "intune": "#0072B2",  # blue
    "pilot": "#56B4E9",  # sky blue
    "configmgr": "#E69F00",  # orange
    "success": "#009E73",  # bluish green
    "failure": "#D55E00",  # vermillion
    "pending": "#CC79A7",  # reddish purple
    "enrolling": "#F0E442",  # yellow
    "neutral": "#7F7F7F",
    "light": "#C4C4C4",
    "ink": "#212529",
}
AUTHORITY_COLORS = {
    "configmgr": COLORS["configmgr"],
    "pilot_intune": COLORS["pilot"],
    "intune": COLORS["intune"],
}
STATUS_COLORS = {
    "success_hybrid": COLORS["success"],
    "success_aad": COLORS["success"],
    "enrolling_hybrid": COLORS["enrolling"],
    "enrolling_aad": COLORS["enrolling"],
    "failure_hybrid": COLORS["failure"],
    "failure_aad": COLORS["failure"],
    "pending_user_sign_in": COLORS["pending"],
}
OS_GROUP_COLORS = dict(
    zip(
        OS_GROUPS,
        (
            COLORS["intune"],
            COLORS["configmgr"],
            COLORS["failure"],
            COLORS["neutral"],
            COLORS["light"],
        ),
        strict=True,
    )
)
RELEASE_FAMILIES = {  # legend name -> colour (Windows 11 apart from Windows 10)
    "Windows 11": COLORS["intune"],
    "Windows 10": COLORS["pilot"],
    "Windows 10 before 1709": COLORS["configmgr"],
    "Other OS": COLORS["light"],
}
FUNNEL_COLORS = [COLORS["pilot"], COLORS["pilot"], COLORS["enrolling"], COLORS["success"]]
REASON_COLORS = {
    "server": COLORS["neutral"],
    "os-too-old": COLORS["configmgr"],
    "os-unknown": COLORS["light"],
    "no-client": COLORS["configmgr"],
    "not-joined": COLORS["configmgr"],
    "no-policy": COLORS["configmgr"],
    "failed": COLORS["failure"],
    "pending-sign-in": COLORS["pending"],
    "scheduled": COLORS["enrolling"],
    "enrolling": COLORS["enrolling"],
}
EDGE = "rgba(33, 37, 41, 0.55)"  # a thin dark outline keeps yellow visible on white

NO_DEVICES = "No devices match this filter"
# Each chart's heading and subtitle, the same on the overview and in the weekly report.
HEADINGS = {
    "os": (
        "Client OS distribution",
        "Devices with the ConfigMgr client, per OS group and per release",
    ),
    "funnel": ("Co-management status", "Eligible devices and how far they got"),
    "status": ("Co-management enrollment status", "Devices targeted with co-management policy"),
    "workloads": ("Workload transition", "Co-managed devices by authority for each workload"),
    "reasons": (
        "Why devices are not co-managed",
        "The first blocking reason for each device not co-managed",
    ),
    "errors": ("Enrollment errors", "Failed enrollments by error code, with the fix"),
}
FONT = (
    'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", "Noto Sans", '
    '"Liberation Sans", Arial, sans-serif'
)
# The one chart config every dcc.Graph uses (the report's static charts add ``staticPlot``).
# Device data must never leave the organisation through the interface: the toolbar holds
# "Download plot as a png" and nothing else (no "Share chart" / "Edit in Chart Studio", which
# post the chart's data to Plotly's cloud, no plotly logo link), so keyboard users also do not
# tab through two dozen toolbar buttons. No zoom by drag, scroll or double click: a drag on a
# chart whose marks are links was a surprise, not a feature.
GRAPH_CONFIG = {
    "displaylogo": False,
    "modeBarButtons": [["toImage"]],
    "showSendToCloud": False,
    "showEditInChartStudio": False,
    "showLink": False,
    "showTips": False,
    "scrollZoom": False,
    "doubleClick": False,
    "toImageButtonOptions": {"format": "png", "scale": 2},
}
STATIC_CONFIG = GRAPH_CONFIG | {"staticPlot": True, "displayModeBar": False, "responsive": False}
CLICK_HINT = "Click to list the devices"
# Hover text of a clickable mark: what it is, then what a click does.
CLICK_HOVER = f"%{{hovertext}}<br><i>{CLICK_HINT}</i><extra></extra>"


# A lean template of our own, given to every chart (``chart``): plotly's default template is
# large, and every figure copies its template.
_AXIS = {
    "gridcolor": "#EBF0F8",
    "linecolor": "#EBF0F8",
    "zerolinecolor": "#EBF0F8",
    "ticks": "",
    "automargin": True,
    "title": {"standoff": 12},
    "fixedrange": True,
}
TEMPLATE = {
    "layout": {
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "xaxis": _AXIS,
        "yaxis": _AXIS,
        "colorway": [
            COLORS[k]
            for k in (
                "intune",
                "configmgr",
                "success",
                "failure",
                "pilot",
                "pending",
                "enrolling",
                "neutral",
            )
        ],
        "hoverlabel": {"align": "left"},
    }
}


def _luminance(color: str) -> float:
    """WCAG relative luminance of a ``#RRGGBB`` colour."""
    channels = [int(color.lstrip("#")[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(first: str, second: str) -> float:
    """WCAG contrast ratio of two ``#RRGGBB`` colours (1 to 21)."""
    high, low = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def text_on(background: str) -> str:
    """White or black, whichever reads better on ``background``: one of them always reaches
    the 4.5:1 text needs (white on the orange slice was 2.3:1, on vermillion 3.9:1; black
    on them is 9.2:1 and 5.4:1)."""
    white, black = "#FFFFFF", "#000000"
    return white if contrast(white, background) >= contrast(black, background) else black


BASE_LAYOUT = {
    "font": {"family": FONT, "size": 12, "color": COLORS["ink"]},
    "margin": {"l": 8, "r": 8, "t": 8, "b": 8},
    "hoverlabel": {"font": {"family": FONT, "size": 12}},
    "legend": {"orientation": "h", "yanchor": "top", "y": -0.04, "x": 0},
    "clickmode": "event",
    "dragmode": False,
}


def chart(traces: list[dict], annotations: list[dict] | None = None, **extra) -> go.Figure:
    """A figure with the shared look from plain trace dicts (each with its ``type``);
    ``extra`` replaces a default layout key as a whole.

    Built without plotly's property-by-property validation (``_validate=False``), which
    cost 6-12 ms a chart: most of the overview's server time. The unit tests validate every
    builder's output instead."""
    layout = BASE_LAYOUT | {"template": TEMPLATE} | extra
    if annotations:
        layout["annotations"] = annotations
    return go.Figure(data=traces, layout=layout, _validate=False)


def _slice_text(values: list[int], minimum: float = 0.04) -> list[str]:
    """Percentages inside donut slices, left out where the slice is too thin to hold one."""
    total = sum(values)
    return [pct(v, total) if total and v / total >= minimum else "" for v in values]


def empty_figure(message: str = NO_DEVICES) -> go.Figure:
    """A message in place of empty axes."""
    return chart(
        [],
        [
            {
                "text": message,
                "showarrow": False,
                "x": 0.5,
                "y": 0.5,
                "xref": "paper",
                "yref": "paper",
                "font": {"size": 14, "color": COLORS["neutral"]},
            }
        ],
        xaxis={"visible": False},
        yaxis={"visible": False},
        meta={"empty": message},
    )


NO_CLIENTS = "No device in this view has the ConfigMgr client"
# The OS figures count client devices (the console's tile does): their links list those.
CLIENT_FILTER = {"client": "1"}


def client_devices(summary: dict) -> int:
    """The devices the OS figures count: those with the ConfigMgr client."""
    return summary["devices"] - int(summary.get("without_client") or 0)


def os_groups_figure(summary: dict, show_legend: bool = True) -> go.Figure:
    """Donut of the five OS groups over client devices (zero groups omitted).

    The overview draws its own legend (a table with counts and links): ``show_legend=False``.
    """
    if not summary["devices"]:
        return empty_figure()
    clients = client_devices(summary)
    if not clients:
        return empty_figure(NO_CLIENTS)
    groups = [(g, n) for g, n in summary["os_groups"].items() if n]
    return chart(
        [
            dict(
                type="pie",
                labels=[g for g, _ in groups],
                values=[n for _, n in groups],
                customdata=[filter_fragment({"os_group": g, **CLIENT_FILTER}) for g, _ in groups],
                marker={
                    "colors": [OS_GROUP_COLORS.get(g, COLORS["light"]) for g, _ in groups],
                    "line": {"color": "white", "width": 1.5},
                },
                insidetextfont={
                    "color": [text_on(OS_GROUP_COLORS.get(g, COLORS["light"])) for g, _ in groups]
                },
                hole=0.55,
                sort=False,
                direction="clockwise",
                text=_slice_text([n for _, n in groups]),
                textinfo="text",
                textposition="inside",
                insidetextorientation="horizontal",
                hovertext=[
                    f"{g}<br>{n:,} client devices ({pct(n, clients)} of client devices)"
                    for g, n in groups
                ],
                hovertemplate=CLICK_HOVER,
                name="OS group",
            )
        ],
        [
            {
                "text": f"<b>{clients:,}</b><br>client devices",
                "showarrow": False,
                "font": {"size": 13},
            }
        ],
        showlegend=show_legend,
        legend={"orientation": "v", "x": 1.0, "y": 0.5, "yanchor": "middle"},
    )


_WINDOWS10_BUILDS = {f"Windows 10 {name}": build for build, name in WINDOWS10_RELEASES.items()}


def release_family(label: str) -> str:
    """The legend group of an ``os_releases`` label."""
    if label.startswith("Windows 11 "):
        return "Windows 11"
    if label.startswith("Windows 10 "):
        return "Windows 10 before 1709" if _old_windows10(label) else "Windows 10"
    return "Other OS"


def _old_windows10(label: str) -> bool:
    """A Windows 10 release before 1709 (co-management needs 1709, build 16299)."""
    if label == "Windows 10 lower than 1709":
        return True
    if label in _WINDOWS10_BUILDS:
        return _WINDOWS10_BUILDS[label] < MIN_BUILD
    if label.startswith("Windows 10 build "):
        return int(label.rsplit(" ", 1)[1]) < MIN_BUILD
    return False


def release_height(summary: dict) -> int:
    """Pixels for the release bars: every label readable, however many releases there are."""
    return max(260, 64 + 17 * len(summary["os_releases"]))


def os_releases_figure(summary: dict) -> go.Figure:
    """Horizontal bars of OS releases over client devices, largest on top, one colour per
    Windows family."""
    if not summary["devices"]:
        return empty_figure()
    devices = client_devices(summary)
    releases = list(summary["os_releases"].items())  # already largest first
    if not devices or not releases:
        return empty_figure(NO_CLIENTS)
    traces = []
    families: dict[str, list[tuple[str, int]]] = {}
    for label, count in releases:
        family = release_family(label)
        families.setdefault(family, []).append((label, count))
    for family, color in RELEASE_FAMILIES.items():
        points = families.get(family)
        if not points:
            continue
        traces.append(
            dict(
                type="bar",
                orientation="h",
                name=family,
                y=[label for label, _ in points],
                x=[count for _, count in points],
                customdata=[
                    filter_fragment({"release": label, **CLIENT_FILTER}) for label, _ in points
                ],
                hovertext=[
                    f"{label}<br>{count:,} client devices ({pct(count, devices)} of client devices)"
                    for label, count in points
                ],
                hovertemplate=CLICK_HOVER,
                text=[f"{count:,}" for _, count in points],
                textposition="outside",
                cliponaxis=False,
                marker={"color": color, "line": {"color": EDGE, "width": 0.5}},
            )
        )
    order = [label for label, _ in releases]
    return chart(
        traces,
        barmode="overlay",
        bargap=max(0.22, 0.8 - 0.06 * len(releases)),  # few releases: no fat bars
        font={"family": FONT, "size": 11, "color": COLORS["ink"]},
        yaxis={
            "categoryorder": "array",
            "categoryarray": list(reversed(order)),
            "automargin": True,
            "ticksuffix": " ",
        },
        xaxis={
            "title": None,
            "rangemode": "tozero",
            "range": [0, max(c for _, c in releases) * 1.15],
        },
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0},
        margin={"l": 8, "r": 16, "t": 28, "b": 8},
    )


def funnel_figure(summary: dict) -> go.Figure:
    """Eligible > Scheduled > Enrollment initiated > Enrolled, with stage-to-stage conversion."""
    funnel = summary["funnel"]
    if not summary["devices"]:
        return empty_figure()
    if not funnel["eligible"]:
        return empty_figure("No device is eligible for co-management")
    keys = list(FUNNEL_LABELS)
    return chart(
        [
            dict(
                type="funnel",
                y=[FUNNEL_LABELS[k] for k in keys],
                x=[funnel[k] for k in keys],
                customdata=[filter_fragment({"funnel": k}) for k in keys],
                textinfo="value+percent previous",  # as texttemplate, with thousands separators:
                texttemplate="%{value:,}<br>%{percentPrevious:.0%} of previous",
                hovertemplate=(
                    "%{y}<br>%{x:,} devices<br>%{percentPrevious:.1%} of the previous "
                    "stage<br>%{percentInitial:.1%} of eligible"
                    f"<br><i>{CLICK_HINT}</i><extra></extra>"
                ),
                marker={"color": FUNNEL_COLORS, "line": {"color": EDGE, "width": 0.5}},
                connector={"fillcolor": "#EEF1F4", "line": {"width": 0}},
                textfont={"color": [text_on(color) for color in FUNNEL_COLORS]},
                name="Co-management status",
            )
        ],
        yaxis={"automargin": True},
        showlegend=False,
    )


def enrollment_status_figure(summary: dict, wording: str = "entra") -> go.Figure:
    """Donut of the enrollment-status categories; zero slices are left out."""
    if not summary["devices"]:
        return empty_figure()
    status = summary["enrollment_status"]
    labels = enrollment_status_labels(wording)
    keys = [k for k, n in status.items() if n]
    if not keys:
        return empty_figure("No device is targeted for co-management")
    targeted = sum(status.values())
    return chart(
        [
            dict(
                type="pie",
                labels=[labels[k] for k in keys],
                values=[status[k] for k in keys],
                customdata=[filter_fragment({"enrollment_status": k}) for k in keys],
                marker={
                    "colors": [STATUS_COLORS[k] for k in keys],
                    "line": {"color": "white", "width": 1.5},
                    "pattern": {
                        "shape": ["/" if k.endswith("_aad") else "" for k in keys],
                        "fillmode": "replace",
                        "bgcolor": [STATUS_COLORS[k] for k in keys],
                        "fgcolor": ["rgba(255,255,255,0.85)"] * len(keys),
                        "size": 6,
                        "solidity": 0.35,
                    },
                },
                insidetextfont={"color": [text_on(STATUS_COLORS[k]) for k in keys]},
                hole=0.55,
                sort=False,
                direction="clockwise",
                text=_slice_text([status[k] for k in keys]),
                textinfo="text",
                textposition="inside",
                insidetextorientation="horizontal",
                hovertext=[
                    f"{labels[k]}<br>{status[k]:,} devices ({pct(status[k], targeted)} of targeted)"
                    for k in keys
                ],
                hovertemplate=CLICK_HOVER,
                name="Enrollment status",
            )
        ],
        [{"text": f"<b>{targeted:,}</b><br>targeted", "showarrow": False, "font": {"size": 13}}],
        legend={"orientation": "v", "x": 1.0, "y": 0.5, "yanchor": "middle"},
    )


def workloads_figure(summary: dict) -> go.Figure:
    """Per workload, co-managed devices by authority: ConfigMgr / Pilot Intune / Intune."""
    if not summary["devices"]:
        return empty_figure()
    comanaged = summary["comanaged"]
    if not comanaged:
        return empty_figure("No co-managed devices: no workload has moved")
    workloads = summary["workloads"]
    keys = list(workloads)
    traces = []
    for authority, label in AUTHORITY_LABELS.items():
        counts = [workloads[k][authority] for k in keys]
        traces.append(
            dict(
                type="bar",
                orientation="h",
                name=label,
                y=[WORKLOAD_LABELS[k] for k in keys],
                x=counts,
                customdata=[filter_fragment({"workload": k, "authority": authority}) for k in keys],
                hovertext=[
                    f"{WORKLOAD_LABELS[k]}<br>{label}: {n:,} devices "
                    f"({pct(n, comanaged)} of co-managed)"
                    for k, n in zip(keys, counts, strict=True)
                ],
                hovertemplate=CLICK_HOVER,
                text=[pct(n, comanaged) if n and n / comanaged >= 0.08 else "" for n in counts],
                textposition="inside",
                insidetextanchor="middle",
                textfont={"color": text_on(AUTHORITY_COLORS[authority])},
                marker={
                    "color": AUTHORITY_COLORS[authority],
                    "line": {"color": "white", "width": 1},
                },
            )
        )
    return chart(
        traces,
        barmode="stack",
        bargap=0.3,
        yaxis={
            "categoryorder": "array",
            "categoryarray": [WORKLOAD_LABELS[k] for k in reversed(keys)],
            "automargin": True,
            "ticksuffix": " ",
        },
        xaxis={"title": {"text": "co-managed devices"}, "range": [0, comanaged]},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0, "traceorder": "normal"},
        margin={"l": 8, "r": 16, "t": 28, "b": 8},
    )


def reasons_figure(summary: dict) -> go.Figure:
    """Why devices are not co-managed: one bar per primary reason, in the rule order."""
    if not summary["devices"]:
        return empty_figure()
    reasons = summary["not_comanaged_reasons"]
    not_comanaged = summary["devices"] - summary["comanaged"]
    if not not_comanaged:
        return empty_figure("Every device is co-managed")
    keys = list(reasons)
    return chart(
        [
            dict(
                type="bar",
                orientation="h",
                y=[REASON_LABELS[k] for k in keys],
                x=[reasons[k] for k in keys],
                customdata=[filter_fragment({"reason": k}) for k in keys],
                hovertext=[
                    f"{REASON_LABELS[k]}: {reasons[k]:,} devices "
                    f"({pct(reasons[k], not_comanaged)} of not co-managed)<br>"
                    f"{REASON_EXPLANATIONS[k]}"
                    for k in keys
                ],
                hovertemplate=CLICK_HOVER,
                text=[f"{reasons[k]:,}" for k in keys],
                textposition="outside",
                cliponaxis=False,
                marker={
                    "color": [REASON_COLORS[k] for k in keys],
                    "line": {"color": EDGE, "width": 0.5},
                },
                name="Not co-managed",
            )
        ],
        showlegend=False,
        bargap=0.25,
        yaxis={
            "categoryorder": "array",
            "categoryarray": [REASON_LABELS[k] for k in reversed(keys)],
            "automargin": True,
            "ticksuffix": " ",
        },
        xaxis={"range": [0, max(reasons.values()) * 1.15 or 1]},
        margin={"l": 8, "r": 16, "t": 8, "b": 8},
    )
