"""The weekly report's figures: one JSON-ready dict that the report page, the e-mail summary
and ``comanage-dashboard report`` all read, so they cannot disagree.

Which data a week shows (``--week 2026-W48``, the page's ``?week=``; ISO 8601 weeks, Monday to
Sunday, days in UTC like the history's snapshot days):

- the week of the current data's "data as of" day (also the default): the current data, with
  every detail (OS releases, error descriptions from the devices, sources);
- an earlier week: the newest snapshot day in that week from the history store (for the
  report's site and collection), shown from its stored aggregates (OS releases and the
  sources' row counts are not stored: left out; unknown error codes are described by code);
- a later week, or an earlier one without a snapshot: an error (``ReportError``) naming the
  weeks that have data.

Week over week compares the report's day with the newest snapshot at least 7 days older
(``HistoryStore.reference_day``), as the overview's tiles do. "What changed this week" counts
devices newly co-managed, newly failed and fallen back since that snapshot (the device list's
own counts for the current week; ``model.trends.changes`` between the two stored days for an
earlier week, scoped to a collection by today's membership, which history does not keep).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any, NotRequired, TypedDict

import numpy as np
import pandas as pd

from ..data.history import HistoryStore
from ..intune_labels import COMPLIANCE_LABELS, INTUNE_ONLY_LABEL, INTUNE_STATE_LABELS
from ..labels import AUTHORITY_LABELS, FUNNEL_LABELS, REASON_LABELS, WORKLOAD_LABELS
from ..model.attention import RULES, RULES_BY_ID, SEVERITY_RANK
from ..model.errors import describe
from ..model.intune import RECONCILIATION_STATES, intune_metrics
from ..model.kpis import BY_ID, kpi_values
from ..model.summary_types import ErrorRow, PastIntune, PastSummary, SourceRow, Summary
from ..model.trends import CHANGE_KINDS, CHANGE_LABELS, summary_from_metrics
from ..model.trends import changes as trend_changes
from ..service.store import EstateStore
from ..settings import Settings
from ..text import change_text, pct
from ..web.week_changes import change_counts
from . import ReportError

TITLE = "Co-management weekly report"
WEEK_RE = re.compile(r"^(\d{4})-W(\d{2})$")
TOP_RULES = 6
TOP_ERRORS = 8
TREND_DAYS = 366  # the report's trend charts: up to a year before its day


REPORT_PATH = "/report"  # the page that draws the report (web/pages/report.py)


class HistorySummary(TypedDict):
    """A stored day as the report shows it: ``PastSummary`` with the enrollment errors as
    rows (described by code) and the keys history does not keep left empty."""

    devices: int
    comanaged: int
    os_groups: dict[str, int] | None
    without_client: int | None
    funnel: dict[str, int]
    enrollment_status: dict[str, int]
    workloads: dict[str, dict[str, int]]
    not_comanaged_reasons: dict[str, int]
    attention: dict[str, int]
    attention_devices: int
    readiness: dict[str, int]
    enrollment_errors: list[ErrorRow]
    intune: NotRequired[PastIntune]
    os_releases: dict[str, int]
    sources: list[SourceRow]
    data_as_of: NotRequired[str]


class ReportErrorRow(TypedDict):
    code: str
    description: str
    count: int
    fix: str
    transient: bool


class AttentionRow(TypedDict):
    id: str
    title: str
    severity: str
    count: int
    explanation: str
    fix: str


class IntuneRow(TypedDict):
    id: str  # a reconciliation or compliance state, "intune-only" or "authority-mismatch"
    metric: str  # the history's metric name (model.trends)
    label: str
    count: int
    delta: int | None  # against the week-ago day, when that day had an Intune source


class IntuneFiguresRow(TypedDict):
    reconciliation: list[IntuneRow]
    compliance: list[IntuneRow]
    authority_mismatch: IntuneRow


class KpiRow(TypedDict):
    id: str
    metric: str
    title: str
    value: int
    note: str
    delta: int | None
    previous: int | None
    since: str | None


# -- ISO weeks ---------------------------------------------------------------------------------


def week_of(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def parse_week(text: str) -> tuple[date, date]:
    """``2026-W48`` -> (Monday, Sunday); ``ReportError`` for anything else."""
    match = WEEK_RE.match(str(text or "").strip())
    if not match:
        raise ReportError(f"week must be an ISO week such as 2026-W48, got {str(text)[:40]!r}")
    year, week = int(match.group(1)), int(match.group(2))
    try:
        monday = date.fromisocalendar(year, week, 1)
        return monday, monday + timedelta(days=6)
    except (ValueError, OverflowError):  # week 53 of a 52-week year; the end of the calendar
        raise ReportError(f"{text} is not a week of {year}") from None


def week_text(monday: date) -> str:
    """``23 – 29 Nov 2026``."""
    sunday = monday + timedelta(days=6)
    if monday.month == sunday.month:
        return f"{monday.day} – {sunday.day} {sunday:%b %Y}"
    if monday.year == sunday.year:
        return f"{monday.day} {monday:%b} – {sunday.day} {sunday:%b %Y}"
    return f"{monday.day} {monday:%b %Y} – {sunday.day} {sunday:%b %Y}"


def day_text(day: date) -> str:
    return f"{day.day} {day:%b %Y}"


def time_text(value: str | None) -> str:
    """``2026-11-23 07:00 UTC`` from an ISO time (the header's form)."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value or "unknown")
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
        return moment.strftime("%Y-%m-%d %H:%M UTC")
    return moment.strftime("%Y-%m-%d %H:%M")


# -- the figures -------------------------------------------------------------------------------


def _scope(store: EstateStore, site: str | None, collection: str | None) -> dict[str, Any]:
    names = store.estate.collection_names if store.estate is not None else {}
    name = names.get(collection) if collection else None
    parts = [
        f"Site {site}" if site else "All sites",
        (f"Collection {name} ({collection})" if name else f"Collection {collection}")
        if collection
        else "All collections",
    ]
    return {
        "site": site,
        "collection": collection,
        "collection_name": name,
        "text": " · ".join(parts),
    }


def _error_rows(summary: Summary | PastSummary | HistorySummary) -> list[ReportErrorRow]:
    """The summary's enrollment errors with each fix (``describe``), largest first."""
    stored = summary["enrollment_errors"]
    if isinstance(stored, dict):  # a stored day: {code: count}
        errors: list[ErrorRow] = [
            {"code": code, "description": describe(code).description, "count": count}
            for code, count in stored.items()
            if count
        ]
    else:
        errors = stored
    rows: list[ReportErrorRow] = []
    for error in errors:
        info = describe(error["code"], error["description"])
        rows.append(
            {
                "code": str(error["code"]),
                "description": str(error["description"]),
                "count": int(error["count"]),
                "fix": info.fix,
                "transient": bool(info.transient),
            }
        )
    rows.sort(key=lambda row: (-row["count"], row["code"]))
    return rows


def _attention_rows(summary: Summary | HistorySummary) -> list[AttentionRow]:
    counts = summary.get("attention") or {}
    rows: list[AttentionRow] = [
        {
            "id": rule.id,
            "title": rule.title,
            "severity": rule.severity,
            "count": int(counts.get(rule.id, 0)),
            "explanation": rule.explanation,
            "fix": rule.fix,
        }
        for rule in RULES
    ]
    rows = [row for row in rows if row["count"]]
    rows.sort(key=lambda row: (-row["count"], -SEVERITY_RANK[row["severity"]], row["id"]))
    return rows


def _intune_rows(
    summary: Summary | HistorySummary,
    previous: PastSummary | HistorySummary | None,
) -> IntuneFiguresRow | None:
    """The scope's ConfigMgr records against Intune's (docs/definitions.md §8) and the
    compliance of its co-managed devices, each with its change since the week-ago day; None
    without an Intune source."""
    intune = summary.get("intune")
    if not intune:
        return None
    past = previous.get("intune") if previous is not None else None
    now = intune_metrics(intune)
    then = intune_metrics(past) if past is not None else None

    def row(key: str, metric: str, label: str) -> IntuneRow:
        count = int(now.get(metric, 0))
        delta = None if then is None else count - int(then.get(metric, 0))
        return {"id": key, "metric": metric, "label": label, "count": count, "delta": delta}

    reconciliation = [
        row(state, f"intune.reconciliation.{state}", INTUNE_STATE_LABELS[state])
        for state in RECONCILIATION_STATES
    ]
    reconciliation.append(row("intune-only", "intune.intune_only", INTUNE_ONLY_LABEL))
    return {
        "reconciliation": reconciliation,
        "compliance": [
            row(state, f"intune.compliance.{state}", label)
            for state, label in COMPLIANCE_LABELS.items()
        ],
        "authority_mismatch": row(
            "authority-mismatch",
            "intune.authority_mismatch",
            RULES_BY_ID["authority-mismatch"].title,
        ),
    }


def _past_summary(
    history: HistoryStore, day: date, site: str | None, collection: str | None
) -> HistorySummary | None:
    metrics = history.aggregates(day, site, collection)
    if metrics is None:
        return None
    past = summary_from_metrics(metrics)
    # The stored day's own keys, in their order (its Intune figures too, when it has them).
    return {
        **past,
        "enrollment_errors": [
            {"code": row["code"], "description": row["description"], "count": row["count"]}
            for row in _error_rows(past)
        ],
        "os_releases": {},
        "sources": [],
    }


def _data_as_of(history: HistoryStore, day: date, site: str | None) -> str:
    frame = history.snapshots(site)
    values = frame.loc[frame["day"] == day, "data_as_of"] if not frame.empty else []
    return str(max(values)) if len(values) else f"{day.isoformat()}T00:00:00+00:00"


def _kpis(
    summary: Summary | HistorySummary,
    previous: PastSummary | HistorySummary | None,
    since: date | None,
) -> list[KpiRow]:
    now = kpi_values(summary)
    then = kpi_values(previous) if previous is not None else None
    rows: list[KpiRow] = []
    for tile, (value, note) in now.items():
        if tile == "kpi-devices":
            note = "in this report's scope"
        row: KpiRow = {
            "id": tile,
            "metric": BY_ID[tile].metric,
            "title": BY_ID[tile].label,
            "value": int(value),
            "note": note,
            "delta": None,
            "previous": None,
            "since": since.isoformat() if since and then else None,
        }
        if then is not None:
            past = int(then[tile][0])
            row["previous"] = past
            row["delta"] = int(value) - past
        rows.append(row)
    return rows


def _history_changes(
    store: EstateStore,
    history: HistoryStore,
    day: date,
    since: date,
    site: str | None,
    collection: str | None,
) -> dict[str, int] | None:
    """Changes between two stored days, in the report's scope."""
    states = history.device_states(day, site)
    if states.empty:
        return None
    masks = trend_changes(states, history.states_on(since))
    keep = np.ones(len(states), dtype=bool)
    if collection and store.estate is not None:  # today's membership (history keeps none)
        estate = store.estate
        rows = estate.collection_mask(collection)
        members = pd.MultiIndex.from_arrays(
            [
                estate.devices["site"].astype(str)[rows],
                estate.devices["ResourceID"].astype("int64")[rows],
            ]
        )
        keep &= pd.MultiIndex.from_arrays(
            [states["site"].astype(str), states["ResourceID"].astype("int64")]
        ).isin(members)
    return {kind: int(np.count_nonzero(masks[kind] & keep)) for kind in CHANGE_KINDS}


def _pick_day(
    history: HistoryStore, monday: date, sunday: date, site: str | None, collection: str | None
) -> date:
    days = [d for d in history.days(site) if monday <= d <= sunday]
    for day in reversed(days):
        if history.aggregates(day, site, collection) is not None:
            return day
    known = history.days(site)
    have = (
        f"history holds {week_of(known[0])} to {week_of(known[-1])}"
        if known
        else "history holds no snapshot yet"
    )
    scope = " for this collection" if collection and days else ""
    raise ReportError(f"no snapshot in {week_of(monday)}{scope} ({have})")


def weekly_figures(
    store: EstateStore,
    settings: Settings,
    week: str | None = None,
    site: str | None = None,
    collection: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The report's figures for a week and scope (site and collection already validated).

    Raises ``ReportError`` when there is no data for that week.
    """
    current = store.current_day()
    if store.estate is None or current is None:
        raise ReportError("no data loaded")
    if week in (None, ""):
        week = week_of(current)
    monday, sunday = parse_week(week)
    week = week_of(monday)
    notes: list[str] = []
    history = store.history
    summary: Summary | HistorySummary | None
    previous: PastSummary | HistorySummary | None
    if monday <= current <= sunday:
        source, day = "current", current
        summary = store.summary(site, collection)
        if summary is None:  # the data went away since the check above
            raise ReportError("no data loaded")
        data_as_of = summary["data_as_of"]
        since = store.week_ago()  # as the overview's tiles (week_changes.tile_changes)
        previous = store.past_summary(since, site, collection) if since else None
        kpis = _kpis(summary, previous, since)
        changed_since = store.week_ago(with_devices=True)
        counts = (
            change_counts(store, changed_since, site, collection)
            if changed_since is not None
            else None
        )
    elif monday > current:
        raise ReportError(
            f"{week} is after the current data (as of {current.isoformat()}, {week_of(current)})"
        )
    else:
        source = "history"
        if history is None:
            raise ReportError(
                f"no data for {week}: history is off, so only the current week can be reported"
            )
        day = _pick_day(history, monday, sunday, site, collection)
        summary = _past_summary(history, day, site, collection)
        if summary is None:  # the snapshot went away since _pick_day found it
            raise ReportError(f"no snapshot in {week} any more: try again")
        data_as_of = _data_as_of(history, day, site)
        summary["data_as_of"] = data_as_of
        since = history.reference_day(day, 7, site=site)
        previous = _past_summary(history, since, site, collection) if since else None
        kpis = _kpis(summary, previous, since if previous is not None else None)
        changed_since = history.reference_day(day, 7, site=site, with_devices=True)
        counts = (
            _history_changes(store, history, day, changed_since, site, collection)
            if changed_since is not None
            else None
        )
        notes.append(
            f"{week} is shown from the history's snapshot of {day_text(day)} "
            "(OS releases and source row counts are not kept in history)."
        )
        if collection:
            notes.append("Changes are counted over today's members of the collection.")
    if history is None:
        notes.append("History is off: no week-over-week figures or trends.")
    elif previous is None:
        notes.append("No snapshot a week or more before this one: no week-over-week figures yet.")
    errors = _error_rows(summary)
    # History keeps error codes per whole site (model.trends): none for a past collection.
    errors_unavailable = source == "history" and bool(collection)
    now = now or datetime.now(UTC)
    return {
        "title": TITLE,
        "organisation": str(settings.organisation or ""),
        "week": week,
        "week_start": monday.isoformat(),
        "week_end": sunday.isoformat(),
        "week_text": week_text(monday),
        "generated_at": now.astimezone(UTC).replace(microsecond=0).isoformat(),
        "day": day.isoformat(),
        "data_as_of": str(data_as_of),
        "source": source,
        "scope": _scope(store, site, collection),
        "status_labels": str(settings.status_labels),
        "summary": summary,
        "kpis": kpis,
        "reference_day": since.isoformat() if since and previous is not None else None,
        "changes": None
        if counts is None or changed_since is None
        else {
            "since": changed_since.isoformat(),
            "items": [
                {"kind": kind, "label": CHANGE_LABELS[kind], "count": counts[kind]}
                for kind in CHANGE_KINDS
            ],
        },
        "attention": _attention_rows(summary),
        "intune": _intune_rows(summary, previous),
        "errors": errors,
        "errors_total": sum(row["count"] for row in errors),
        "errors_unavailable": errors_unavailable,
        "notes": notes,
    }


def trend_frame(store: EstateStore, figures: dict[str, Any]) -> pd.DataFrame | None:
    """The history's daily aggregates for the report's scope, up to its day (a year at
    most), or None without history."""
    scope = figures["scope"]
    frame = store.trend(scope["site"], scope["collection"])
    if frame is None or frame.empty:
        return None
    day = date.fromisoformat(figures["day"])
    days = pd.Index([pd.Timestamp(d).date() for d in frame.index])
    keep = (days <= day) & (days >= day - timedelta(days=TREND_DAYS))
    frame = frame.loc[keep]
    return None if frame.empty else frame


# -- plain text (the e-mail's text part) -------------------------------------------------------


def delta_text(row: dict) -> str:
    if row.get("delta") is None:
        return ""
    delta = row["delta"]
    since = day_text(date.fromisoformat(row["since"]))
    return f"no change since {since}" if delta == 0 else f"{delta:+,} since {since}"


def _intune_lines(rows: list[IntuneRow]) -> list[str]:
    return [
        f"  {row['label']:<30} {row['count']:>10,}"
        + ("" if row["delta"] is None else f"  ({change_text(row['delta'])} in a week)")
        for row in rows
    ]


def plain_text(figures: dict) -> str:
    """The figures as plain text (the e-mail's alternative part)."""
    summary = figures["summary"]
    lines = [f"{figures['title']}: {figures['week']} ({figures['week_text']})"]
    if figures["organisation"]:
        lines.append(figures["organisation"])
    lines += [figures["scope"]["text"], f"Data as of {figures['data_as_of']}", ""]
    for row in figures["kpis"]:
        change = delta_text(row)
        lines.append(
            f"  {row['title']:<30} {row['value']:>10,}  {row['note']}"
            + (f"  ({change})" if change else "")
        )
    if figures["changes"]:
        since = day_text(date.fromisoformat(figures["changes"]["since"]))
        lines += ["", f"What changed since {since}"]
        lines += [
            f"  {item['label']:<30} {item['count']:>10,}" for item in figures["changes"]["items"]
        ]
    funnel = summary["funnel"]
    lines += ["", "Co-management status"]
    lines += [
        f"  {FUNNEL_LABELS[k]:<30} {v:>10,}  {pct(v, funnel['eligible'])}"
        for k, v in funnel.items()
    ]
    lines += ["", "Workloads moved to Intune (Pilot Intune + Intune, of co-managed)"]
    for key, counts in summary["workloads"].items():
        moved = counts["pilot_intune"] + counts["intune"]
        lines.append(
            f"  {WORKLOAD_LABELS[key]:<30} {moved:>10,}  {pct(moved, summary['comanaged'])}"
        )
    if figures["attention"]:
        lines += ["", "Top attention rules"]
        lines += [
            f"  {row['title']:<30} {row['count']:>10,}  {row['severity']}"
            for row in figures["attention"][:TOP_RULES]
        ]
    intune = figures.get("intune")
    if intune:
        lines += ["", "ConfigMgr and Intune"]
        lines += _intune_lines([*intune["reconciliation"], intune["authority_mismatch"]])
        lines += ["", "Intune compliance of co-managed devices"]
        lines += _intune_lines(intune["compliance"])
    if figures["errors"]:
        lines += ["", "Top enrollment errors"]
        lines += [
            f"  {row['code']}  {row['count']:>8,}  {' '.join(row['description'].split())}"
            for row in figures["errors"][:TOP_ERRORS]
        ]
    reasons = summary["not_comanaged_reasons"]
    lines += ["", "Why devices are not co-managed"]
    lines += [f"  {REASON_LABELS[k]:<40} {v:>10,}" for k, v in reasons.items() if v]
    lines += ["", "The full report is attached (PNG and PDF)."]
    return "\n".join(lines) + "\n"


__all__ = [
    "AUTHORITY_LABELS",
    "ReportError",
    "parse_week",
    "plain_text",
    "trend_frame",
    "week_of",
    "weekly_figures",
]
