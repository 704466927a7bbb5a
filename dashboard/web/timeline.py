"""The device page's "State history" card: time in the current state and the timeline of
the device's stored states (``HistoryStore.timeline``).

Consecutive snapshots with the same state, enrollment status and error code are one row
(from, to, how many snapshots), newest first, so a year of daily snapshots stays readable.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
import pandas as pd
from dash import html

from ..labels import REASON_LABELS, enrollment_status_labels
from ..model.attention import IN_PROGRESS_REASONS

COMANAGED = "Co-managed"
NOT_TARGETED = "Not targeted"
MAX_ROWS = 60
CARRIED = (
    "The oldest row began before the oldest snapshot of this device still kept; its "
    "first day was carried forward from the snapshots since removed"
)


def state_label(reason, comanaged: bool) -> str:
    if comanaged:
        return COMANAGED
    if reason is None or reason != reason:
        return "Not co-managed"
    return REASON_LABELS.get(str(reason), str(reason))


def runs(timeline: pd.DataFrame, wording: str = "entra") -> list[dict]:
    """Consecutive equal states as runs, newest first: from, to, state, status, code, days.

    Device states older than ``device_history_days`` are pruned, but each stored state
    carries ``since``, the first day of that state, carried from snapshot to snapshot
    before the pruning. So when the oldest stored row's ``since`` is earlier than its day,
    the oldest run began then (``carried``): the table and "In this state since" agree,
    both saying what history knows."""
    statuses = enrollment_status_labels(wording)
    out: list[dict] = []
    for row in timeline.itertuples(index=False):
        state = state_label(row.reason, bool(row.comanaged))
        status = (
            statuses.get(row.enrollment_status, NOT_TARGETED)
            if row.enrollment_status
            else NOT_TARGETED
        )
        code = row.error_code or ""
        if out and (out[-1]["state"], out[-1]["status"], out[-1]["code"]) == (state, status, code):
            out[-1]["to"] = row.day
            out[-1]["snapshots"] += 1
        else:
            out.append(
                {
                    "from": row.day,
                    "to": row.day,
                    "state": state,
                    "status": status,
                    "code": code,
                    "snapshots": 1,
                    "carried": False,
                }
            )
    if out:
        since = timeline["since"].iloc[0]
        if since is not None and not pd.isna(since) and pd.Timestamp(since).date() < out[0]["from"]:
            out[0]["from"] = pd.Timestamp(since).date()
            out[0]["carried"] = True
    return list(reversed(out))


def since_text(device: pd.Series, as_of_day, stuck_days: int, first_day=None) -> tuple[str, bool]:
    """("In this state since 2026-10-26 (28 days)", stuck?) from the loaded ``state_since``.

    History cannot see before its first snapshot (``first_day``): a state already there on
    that day began then or earlier, and the text says "at least"."""
    since = device.get("state_since") if hasattr(device, "get") else None
    if since is None or pd.isna(since):
        return "", False
    since = pd.Timestamp(since).date()
    days = (as_of_day - since).days
    reason = device.get("reason")
    in_progress = not pd.isna(reason) and str(reason) in IN_PROGRESS_REASONS
    what = "Enrollment under way" if in_progress else "In this state"
    at_least = first_day is not None and since <= first_day
    text = (
        f"{what} since {'at least ' if at_least else ''}{since.isoformat()} "
        f"({'at least ' if at_least else ''}{days} day{'s' if days != 1 else ''}, "
        "according to history" + (", whose first snapshot is that day)" if at_least else ")")
    )
    return text, in_progress and days > stuck_days


def history_card(store, device: pd.Series, settings):
    """The card, or None when there is no history."""
    if getattr(store, "history", None) is None:
        return None
    site, resource_id = str(device["site"]), int(device["ResourceID"])
    timeline = store.timeline(site, resource_id)
    as_of_day = store.current_day()
    trend = store.trend()
    first_day = trend.index.min() if trend is not None and not trend.empty else None
    text, stuck = (
        since_text(device, as_of_day, settings.stuck_days, first_day) if as_of_day else ("", False)
    )
    header = [html.Span("State history", className="fw-semibold")]
    body = []
    if text:
        body.append(
            html.P(
                [
                    text,
                    " ",
                    dbc.Badge(
                        f"stuck: more than {settings.stuck_days} days",
                        color="warning",
                        text_color="dark",
                        className="ms-1",
                    )
                    if stuck
                    else None,
                ],
                className="small mb-2",
                id="device-since",
            )
        )
    if timeline is None or timeline.empty:
        body.append(
            html.P(
                "No stored snapshot of this device yet.",
                className="text-muted small mb-0",
                id="device-timeline-empty",
            )
        )
    else:
        rows = runs(timeline, settings.status_labels)
        shown = rows[:MAX_ROWS]
        table = dbc.Table(
            [
                html.Thead(
                    html.Tr(
                        [
                            html.Th("From"),
                            html.Th("To"),
                            html.Th("State"),
                            html.Th("Enrollment status"),
                            html.Th("Error code"),
                            html.Th("Snapshots", className="text-end"),
                        ]
                    )
                ),
                html.Tbody(
                    [
                        html.Tr(
                            [
                                html.Td(
                                    run["from"].isoformat(),
                                    title=CARRIED if run["carried"] else None,
                                ),
                                html.Td(run["to"].isoformat()),
                                html.Td(run["state"]),
                                html.Td(run["status"]),
                                html.Td(run["code"], className="font-monospace"),
                                html.Td(str(run["snapshots"]), className="text-end"),
                            ],
                            className="timeline-row",
                        )
                        for run in shown
                    ]
                ),
            ],
            size="sm",
            hover=True,
            className="mb-0 timeline-table",
            id="device-timeline",
        )
        body.append(html.Div(table, className="table-responsive"))
        if rows and rows[-1]["carried"]:
            body.append(
                html.P(
                    f"{CARRIED} (device history keeps {settings.device_history_days} days).",
                    className="text-muted small mb-0",
                    id="device-timeline-carried",
                )
            )
        if len(rows) > MAX_ROWS:
            body.append(
                html.P(
                    f"{len(rows) - MAX_ROWS} older changes not shown.",
                    className="text-muted small mb-0",
                )
            )
    return dbc.Card(
        [dbc.CardHeader(header), dbc.CardBody(body)], className="mb-3", id="device-history"
    )
