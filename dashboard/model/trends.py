"""History, as pure functions: summaries flattened to metrics and back, per-device
transitions between two days, time in state, and the trend series the pages draw.

The history store (``dashboard.data.history``) keeps, per site and day, the summary of
``model.summary.summarize`` flattened to ``{metric: count}`` (``metrics_from_summary``) and a
compact state per device. Everything here works on those shapes and on the classified frame;
no I/O, so the trends page, the overview's week-over-week figures and the weekly report
compute the same numbers the same way.

Metric names are the summary's keys joined by ``/``::

    devices, comanaged, attention_devices, without_client
    client_os_groups/<group>     funnel/<stage>             enrollment_status/<status>
    workloads/<key>/<authority>  reasons/<reason>           attention/<rule id>
    readiness/<step>  (devices failing that step first)     errors/<code>  (site scope only)

A metric missing from a stored day is zero (zeros are not stored). The OS groups are the
exception to the naming: they count client devices only (``os_groups`` of the summary) and
are stored as ``client_os_groups/<group>``, because stores written before that change hold
``os_groups/<group>`` counted over every record; those are no longer read, and a day that
lacks the new counts for some of its sites has no OS figures (``summary_from_metrics``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import cast

import numpy as np
import pandas as pd

from ..settings import WORKLOADS
from .attention import IN_PROGRESS_REASONS, READINESS_IDS, shown_rules
from .intune import COMPLIANCE_STATES, RECONCILIATION_STATES, intune_metrics
from .states import AUTHORITIES, ENROLLMENT_STATUSES, FUNNEL_STAGES, OS_GROUPS, REASONS
from .summary_types import PastIntune, PastSummary, Summary

SEP = "/"
OS_METRIC = "client_os_groups"  # client devices per OS group (see the module's docstring)

# -- changes between two days ----------------------------------------------------------------

CHANGE_KINDS = ("newly_comanaged", "newly_failed", "fell_back")
CHANGE_LABELS = {
    "newly_comanaged": "Newly co-managed",
    "newly_failed": "Newly failed",
    "fell_back": "Fell back out of co-management",
}
CHANGE_EXPLANATIONS = {
    "newly_comanaged": "Co-managed now, not co-managed (or not yet known) on the earlier day.",
    "newly_failed": "Enrollment failed now, not failed (or not yet known) on the earlier day.",
    "fell_back": "Co-managed on the earlier day, known but not co-managed now.",
}

# ``IN_PROGRESS_REASONS`` (attention.py): the device states that mean "enrollment under
# way". Time in state counts them as one state, so a device flipping between scheduled and
# enrolling is still seen as stuck.


def transitions(
    comanaged: np.ndarray,
    failed: np.ndarray,
    known: np.ndarray,
    was_comanaged: np.ndarray,
    was_failed: np.ndarray,
) -> dict[str, np.ndarray]:
    """Per change kind, which current devices changed that way since an earlier day.

    All arrays are aligned with the current devices. ``known`` says the device had a state
    on the earlier day (``was_*`` are ignored where it is False); a device unknown then
    (new since, or from a site without a snapshot that day: pass ``known`` False and mask
    the site out afterwards) counts as newly co-managed / newly failed, never as fell back.
    """
    comanaged = np.asarray(comanaged, dtype=bool)
    failed = np.asarray(failed, dtype=bool)
    known = np.asarray(known, dtype=bool)
    was_comanaged = np.asarray(was_comanaged, dtype=bool) & known
    was_failed = np.asarray(was_failed, dtype=bool) & known
    return {
        "newly_comanaged": comanaged & ~was_comanaged,
        "newly_failed": failed & ~was_failed,
        "fell_back": known & was_comanaged & ~comanaged,
    }


def changes(
    devices: pd.DataFrame, earlier: Mapping[str, Mapping[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """Which of ``devices`` (derived: site, ResourceID, comanaged, failed) changed since an
    earlier day, per ``CHANGE_KINDS``. ``earlier``: per site, that day's stored
    ``resource_id``, ``comanaged`` and ``failed`` arrays (``HistoryStore.states_on``). Only
    the sites in ``earlier`` are compared; devices of the others match no change."""
    n = len(devices)
    out = {kind: np.zeros(n, dtype=bool) for kind in CHANGE_KINDS}
    if not earlier or not n:
        return out
    site_of = devices["site"].astype(str).to_numpy()
    rids = devices["ResourceID"].to_numpy(dtype=np.int64)
    comanaged = devices["comanaged"].to_numpy(dtype=bool)
    failed = devices["failed"].to_numpy(dtype=bool)
    for site, stored in earlier.items():
        rows = np.flatnonzero(site_of == site)
        if not len(rows) or not len(stored["resource_id"]):
            continue
        index = pd.Index(stored["resource_id"]).get_indexer(rids[rows])
        known = index >= 0
        safe = np.where(known, index, 0)
        found = transitions(
            comanaged[rows],
            failed[rows],
            known,
            stored["comanaged"][safe] == 1,
            stored["failed"][safe] == 1,
        )
        for kind, mask in found.items():
            out[kind][rows] = mask
    return out


# -- time in state -----------------------------------------------------------------------------


def state_keys(reason_codes: np.ndarray, in_progress_codes: tuple[int, ...]) -> np.ndarray:
    """The state compared for time in state: the reason code, with every in-progress reason
    folded into the first of them (0 stays "co-managed")."""
    keys = np.asarray(reason_codes, dtype=np.int64).copy()
    if in_progress_codes:
        keys[np.isin(keys, in_progress_codes)] = in_progress_codes[0]
    return keys


def carry_since(
    keys: np.ndarray,
    day: int,
    previous_index: np.ndarray,
    previous_keys: np.ndarray,
    previous_since: np.ndarray,
) -> np.ndarray:
    """First day (``YYYYMMDD`` int) of each device's current state run.

    ``previous_index`` maps each current device to its row in the previous day's states (-1:
    absent). A device in the same state then keeps that row's ``since``; any other starts
    today. States are assumed unchanged between two snapshots.
    """
    since = np.full(len(keys), day, dtype=np.int64)
    found = previous_index >= 0
    rows = previous_index[found]
    same = previous_keys[rows] == keys[found]
    prior = previous_since[rows]
    positions = np.flatnonzero(found)[same & (prior > 0)]
    since[positions] = prior[same & (prior > 0)]
    return since


# -- metrics <-> summary -----------------------------------------------------------------------


KEPT = ("devices", "comanaged")
INTUNE_MARK = "intune.matched"


def metrics_from_summary(summary: Summary, errors: bool = True) -> dict[str, int]:
    """A summary as ``{metric: count}``, zeros left out (``devices`` and ``comanaged`` always
    kept, so every stored scope has a row per day)."""
    out = {
        "devices": int(summary["devices"]),
        "comanaged": int(summary["comanaged"]),
        "attention_devices": int(summary.get("attention_devices", 0)),
        "without_client": int(summary.get("without_client") or 0),
    }
    groups: dict[str, Mapping[str, int]] = {
        OS_METRIC: summary["os_groups"] or {},
        "funnel": cast(Mapping[str, int], summary["funnel"]),
        "enrollment_status": summary["enrollment_status"],
        "reasons": summary["not_comanaged_reasons"],
        "attention": summary.get("attention", {}),
    }
    for group, counts in groups.items():
        for key, count in counts.items():
            out[f"{group}{SEP}{key}"] = int(count)
    for key, authorities in summary["workloads"].items():
        for authority, count in authorities.items():
            out[f"workloads{SEP}{key}{SEP}{authority}"] = int(count)
    for step in summary.get("readiness", []):
        out[f"readiness{SEP}{step['step']}"] = int(step["failed"])
    if errors:
        for row in summary.get("enrollment_errors", []):
            out[f"errors{SEP}{row['code']}"] = int(row["count"])
    if "intune" in summary:
        out |= intune_metrics(summary["intune"])
    # ``intune.matched`` is kept at zero too: it marks a day that had an Intune source.
    kept = ("devices", "comanaged", INTUNE_MARK) if "intune" in summary else KEPT
    return {key: value for key, value in out.items() if value or key in kept}


def summary_from_metrics(metrics: dict[str, int]) -> PastSummary:
    """A stored day's metrics in the summary's shape, every known key present (zeros filled),
    so functions written for a summary (the overview's tiles) read a past day too.

    ``enrollment_errors`` is ``{code: count}`` here (descriptions are not stored);
    ``readiness`` is ``{step: devices failing it first}``. ``os_groups`` and
    ``without_client`` are None for a day recorded, for all or some of its sites, before the
    OS groups counted client devices only: its client-device counts are unknown (the client
    OS groups and the records without the client add up to the devices on any other day).
    """

    def group(name: str, keys: Iterable[str]) -> dict[str, int]:
        return {key: int(metrics.get(f"{name}{SEP}{key}", 0)) for key in keys}

    prefix = f"errors{SEP}"
    devices = int(metrics.get("devices", 0))
    client_groups = group(OS_METRIC, OS_GROUPS)
    clients_missing = int(metrics.get("without_client", 0))
    os_groups: dict[str, int] | None = client_groups
    without_client: int | None = clients_missing
    if sum(client_groups.values()) + clients_missing != devices:
        os_groups = without_client = None
    past: PastSummary = {
        "devices": devices,
        "comanaged": int(metrics.get("comanaged", 0)),
        "os_groups": os_groups,
        "without_client": without_client,
        "funnel": group("funnel", FUNNEL_STAGES),
        "enrollment_status": group("enrollment_status", ENROLLMENT_STATUSES),
        "workloads": {key: group(f"workloads{SEP}{key}", AUTHORITIES) for key in WORKLOADS},
        "not_comanaged_reasons": group("reasons", REASONS),
        "attention": group("attention", [rule.id for rule in shown_rules(INTUNE_MARK in metrics)]),
        "attention_devices": int(metrics.get("attention_devices", 0)),
        "readiness": group("readiness", READINESS_IDS),
        "enrollment_errors": {
            key[len(prefix) :]: int(value)
            for key, value in metrics.items()
            if key.startswith(prefix)
        },
    }
    if INTUNE_MARK in metrics:
        past["intune"] = _intune_from_metrics(metrics)
    return past


def _intune_from_metrics(metrics: dict[str, int]) -> PastIntune:
    """The stored part of a day's ``intune`` object (the source's own ``records``,
    ``windows`` and ``dropped`` are not stored)."""

    def count(name: str) -> int:
        return int(metrics.get(name, 0))

    return {
        "matched": count("intune.matched"),
        "reconciliation": {s: count(f"intune.reconciliation.{s}") for s in RECONCILIATION_STATES},
        "intune_only": count("intune.intune_only"),
        "compliance": {s: count(f"intune.compliance.{s}") for s in COMPLIANCE_STATES},
        "authority_mismatch": count("intune.authority_mismatch"),
    }


# -- trend series ------------------------------------------------------------------------------


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name in frame.columns:
        return frame[name].astype("float64")
    return pd.Series(0.0, index=frame.index)


def _share(part: pd.Series, whole: pd.Series) -> pd.Series:
    return (part / whole.where(whole > 0)).astype("float64")


def trend_series(frame: pd.DataFrame) -> pd.DataFrame:
    """The series the trends page draws, one row per day, from ``HistoryStore.trend``.

    Columns: ``devices``, ``comanaged``, ``comanaged_share`` (0-1), ``funnel_<stage>``,
    ``intune_share_<workload>`` ((Intune + Pilot Intune) / co-managed, 0-1, NaN with no
    co-managed device), ``failures`` (both Failure slices), ``attention_devices`` and
    ``attention_<rule id>`` (the Intune rules only with Intune figures); with Intune figures
    (any day), also ``reconciliation_<state>``, ``compliance_<state>``, ``intune_only``,
    ``authority_mismatch`` and ``intune_matched``.
    """
    out = pd.DataFrame(index=frame.index)
    out["devices"] = _column(frame, "devices")
    out["comanaged"] = _column(frame, "comanaged")
    out["comanaged_share"] = _share(out["comanaged"], out["devices"])
    for stage in FUNNEL_STAGES:
        out[f"funnel_{stage}"] = _column(frame, f"funnel{SEP}{stage}")
    for key in WORKLOADS:
        moved = _column(frame, f"workloads{SEP}{key}{SEP}intune") + _column(
            frame, f"workloads{SEP}{key}{SEP}pilot_intune"
        )
        out[f"intune_{key}"] = moved
        out[f"intune_share_{key}"] = _share(moved, out["comanaged"])
    out["failures"] = _column(frame, f"enrollment_status{SEP}failure_hybrid") + _column(
        frame, f"enrollment_status{SEP}failure_aad"
    )
    out["attention_devices"] = _column(frame, "attention_devices")
    intune = INTUNE_MARK in frame.columns
    for rule in shown_rules(intune):
        out[f"attention_{rule.id}"] = _column(frame, f"attention{SEP}{rule.id}")
    if intune:
        for state in RECONCILIATION_STATES:
            out[f"reconciliation_{state}"] = _column(frame, f"intune.reconciliation.{state}")
        for state in COMPLIANCE_STATES:
            out[f"compliance_{state}"] = _column(frame, f"intune.compliance.{state}")
        out["intune_only"] = _column(frame, "intune.intune_only")
        out["authority_mismatch"] = _column(frame, "intune.authority_mismatch")
        out["intune_matched"] = _column(frame, INTUNE_MARK)
    return out


__all__ = [
    "CHANGE_KINDS",
    "CHANGE_LABELS",
    "IN_PROGRESS_REASONS",
    "carry_since",
    "metrics_from_summary",
    "state_keys",
    "summary_from_metrics",
    "transitions",
    "trend_series",
]
