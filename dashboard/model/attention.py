"""Devices that need attention: one declared table of rules, each a vectorised predicate.

A device can match several rules; its severity is the highest of them. Rules see the
classified frame (``states.classify``) and the thresholds from the settings; time-based
rules measure age against the estate's "data as of", never the wall clock, so a CSV export
read twice gives the same answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..settings import WORKLOADS
from .intune import NOT_COMPLIANT
from .states import W7_8, W10_CURRENT, W10_OLD
from .summary_types import ReadinessRow

SEVERITIES = ("high", "medium", "low")
SEVERITY_RANK = {"high": 3, "medium": 2, "low": 1}


@dataclass(frozen=True)
class Thresholds:
    client_inactive_days: int = 14
    stuck_days: int = 14


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    title: str
    explanation: str
    fix: str
    predicate: Callable[[pd.DataFrame, Thresholds, pd.Timestamp], np.ndarray]


def _flag(devices: pd.DataFrame, column: str) -> np.ndarray:
    flags: np.ndarray = devices[column].to_numpy(dtype=float) == 1
    return flags


def _inactive(devices: pd.DataFrame, thresholds: Thresholds, as_of: pd.Timestamp) -> np.ndarray:
    explicit = devices["ClientActive"].to_numpy(dtype=float) == 0
    last = devices["LastPolicyRequest"]
    age = (as_of - last).to_numpy()
    limit = np.timedelta64(thresholds.client_inactive_days, "D")
    old = ~pd.isna(last).to_numpy() & (age > limit)
    scope = devices["comanaged"].to_numpy() | devices["eligible"].to_numpy()
    inactive: np.ndarray = scope & (explicit | old)
    return inactive


# Enrollment under way: the states the ``stuck`` rule watches (time in state counts them as
# one state, see ``model.trends``).
IN_PROGRESS_REASONS = ("scheduled", "enrolling", "pending-sign-in")


def _stuck(devices: pd.DataFrame, thresholds: Thresholds, as_of: pd.Timestamp) -> np.ndarray:
    """In progress for more than ``stuck_days`` whole days (exactly that many is not stuck).

    ``state_since`` (the first day of the current state, from history) is added at load
    time; without history no device is stuck.
    """
    if "state_since" not in devices.columns:
        return np.zeros(len(devices), dtype=bool)
    since = pd.to_datetime(devices["state_since"]).dt.normalize()
    days = (pd.Timestamp(as_of).normalize() - since).dt.days.to_numpy(dtype=float)
    in_progress = devices["reason"].isin(IN_PROGRESS_REASONS).to_numpy(dtype=bool)
    stuck: np.ndarray = in_progress & (days > thresholds.stuck_days)
    return stuck


def _workload_lag(devices: pd.DataFrame, _t: Thresholds, _a: pd.Timestamp) -> np.ndarray:
    lag = np.zeros(len(devices), dtype=bool)
    for key in WORKLOADS:
        if f"lag_{key}" in devices.columns:
            lag |= devices[f"lag_{key}"].to_numpy()
    return lag


NO_KEEPER = -1


def duplicate_keepers(devices: pd.DataFrame) -> np.ndarray:
    """Per record, the ResourceID of the record kept for its name, or ``NO_KEEPER``.

    Within one site, records whose names are equal ignoring case describe one machine (a
    discovery-only record beside the client's, the old record of a re-imaged machine). The
    keeper is the record with the client installed, then the newest ``LastPolicyRequest``
    (a missing one is the oldest), then the highest ``ResourceID``; every other record of
    the group gets the keeper's ResourceID. The keeper itself, a record with a unique name
    and a record without a name get ``NO_KEEPER``.

    Vectorised: hashing the lowered names finds the records whose names repeat (a million
    names in a few tenths of a second); only those are grouped and ranked.
    """
    n = len(devices)
    out = np.full(n, NO_KEEPER, dtype=np.int64)
    if n < 2:
        return out
    # Candidates first: names that occur more than once ignoring case, by hashing (one Arrow
    # dictionary encoding), so the exact grouping below only sees the few that repeat.
    lowered = pc.utf8_lower(
        pa.array(devices["Name"].astype("str"), type=pa.string(), from_pandas=True)
    )
    if isinstance(lowered, pa.ChunkedArray):  # a frame combined from several sources
        lowered = lowered.combine_chunks()
    codes = (
        pc.fill_null(pc.dictionary_encode(lowered).indices, -1)
        .to_numpy(zero_copy_only=False)
        .astype(np.int64)
    )
    named = codes >= 0
    tally = np.bincount(codes[named], minlength=1)
    rows = np.flatnonzero(named & (tally[np.maximum(codes, 0)] > 1))
    names = codes[rows]
    sites = (
        pd.factorize(devices["site"])[0][rows]
        if "site" in devices.columns
        else np.zeros(len(rows), dtype=np.int64)
    )
    keep = (
        pc.not_equal(lowered.take(pa.array(rows)), "").to_numpy(zero_copy_only=False)
        if len(rows)
        else np.zeros(0, dtype=bool)
    )
    rows, names, sites = rows[keep], names[keep], sites[keep]
    group = (
        pd.MultiIndex.from_arrays([sites, names]).factorize()[0]
        if len(rows)
        else np.zeros(0, dtype=np.int64)
    )
    shared = np.bincount(group, minlength=1)[group] > 1 if len(rows) else keep[:0]
    rows, group = rows[shared], group[shared]
    if not len(rows):
        return out
    rid = devices["ResourceID"].to_numpy(dtype=np.int64)[rows]
    client = _flag(devices, "ClientInstalled")[rows]
    last = devices["LastPolicyRequest"].to_numpy(dtype="datetime64[ns]")[rows]
    stamp = np.where(np.isnat(last), np.iinfo(np.int64).min, last.view(np.int64))
    order = np.lexsort((rid, stamp, client, group))  # the last key sorts first
    ordered = group[order]
    starts = np.r_[True, ordered[1:] != ordered[:-1]]
    last_of_group = np.r_[ordered[1:] != ordered[:-1], True]
    run = np.cumsum(starts) - 1
    keeper_rid = rid[order][last_of_group][run]
    keeper_row = rows[order][last_of_group][run]
    positions = rows[order]
    out[positions] = np.where(positions == keeper_row, NO_KEEPER, keeper_rid)
    return out


def _state_is(devices: pd.DataFrame, state: str) -> np.ndarray:
    if "intune_state" not in devices.columns:
        return np.zeros(len(devices), dtype=bool)
    hit: np.ndarray = (devices["intune_state"] == state).to_numpy(dtype=bool)
    return hit


def _duplicate(devices: pd.DataFrame, _t: Thresholds, _a: pd.Timestamp) -> np.ndarray:
    keepers = (
        devices["duplicate_of"].to_numpy()
        if "duplicate_of" in devices.columns
        else duplicate_keepers(devices)
    )
    duplicates: np.ndarray = keepers != NO_KEEPER
    return duplicates


RULES: tuple[Rule, ...] = (
    Rule(
        "enrollment-failed",
        "high",
        "Enrollment failed",
        "The device tried to enroll in Intune and failed.",
        "Apply the fix for the device's error code (each code's fix is in the enrollment "
        "errors table and on the device's page).",
        lambda d, t, a: d["failed"].to_numpy(),
    ),
    Rule(
        "client-inactive",
        "high",
        "ConfigMgr client inactive",
        "A co-managed or eligible device whose client is inactive or has not requested "
        "policy for longer than the threshold.",
        "Check the device is on and online; repair or reinstall the ConfigMgr client "
        "(ccmsetup), then check ClientIDManagerStartup.log and PolicyAgent.log.",
        _inactive,
    ),
    Rule(
        "pending-sign-in",
        "medium",
        "Pending user sign in",
        "Enrollment waits for a user to sign in to the device.",
        "Have the primary user sign in; the enrollment then continues by itself.",
        lambda d, t, a: (d["enrollment_status"] == "pending_user_sign_in").to_numpy(),
    ),
    Rule(
        "not-joined",
        "medium",
        "Not joined to Entra ID",
        "A Windows 10 1709+ or Windows 11 workstation with the client, joined neither to "
        "Microsoft Entra hybrid nor to Entra ID.",
        "Check Entra Connect sync of the computer object and the hybrid join scheduled task "
        "(dsregcmd /status on the device).",
        lambda d, t, a: (
            (d["os_group"] == W10_CURRENT).to_numpy()
            & _flag(d, "ClientInstalled")
            & ~d["joined"].to_numpy()
        ),
    ),
    Rule(
        "no-policy",
        "medium",
        "No co-management policy",
        "Eligible and with an active client, but no co-management policy on the device.",
        "Add the device to the auto-enrollment collection, or check policy retrieval "
        "(PolicyAgent.log, CoManagementHandler.log).",
        lambda d, t, a: (
            d["eligible"].to_numpy() & _flag(d, "ClientActive") & ~_flag(d, "ComgmtPolicyPresent")
        ),
    ),
    Rule(
        "workload-lag",
        "medium",
        "Workload not switched",
        "Co-managed and in a workload's pilot collection, the workload is piloted or moved "
        "to Intune, but the device still reports Configuration Manager for it.",
        "Trigger a machine policy retrieval on the device, then check CoManagementHandler.log "
        "for the new workload flags.",
        _workload_lag,
    ),
    Rule(
        "no-client",
        "medium",
        "No ConfigMgr client",
        "A Windows 10/11 workstation without the Configuration Manager client.",
        "Install the client (client push, ccmsetup or the Intune app for the client).",
        lambda d, t, a: (
            d["os_group"].isin([W10_CURRENT, W10_OLD]).to_numpy() & ~_flag(d, "ClientInstalled")
        ),
    ),
    Rule(
        "os-upgrade-needed",
        "low",
        "OS upgrade needed",
        "A workstation on Windows 10 before 1709, or on Windows 7/8.x: co-management needs "
        "Windows 10 1709 or later.",
        "Upgrade to a supported Windows 11 (or Windows 10 22H2) release.",
        lambda d, t, a: d["os_group"].isin([W10_OLD, W7_8]).to_numpy(),
    ),
    # Appended, so the bits of the rules above (stored in history) keep their meaning.
    Rule(
        "stuck",
        "medium",
        "Enrollment stuck",
        "Scheduled, enrolling or pending user sign in for longer than the set number of days "
        "(14 unless configured otherwise), according to the history of snapshots.",
        'Check CoManagementHandler.log on the device: a "Queuing enrollment timer" line '
        "means it is waiting by design; otherwise have the user sign in, then trigger a "
        "machine policy retrieval.",
        _stuck,
    ),
    Rule(
        "duplicate-record",
        "low",
        "Duplicate record",
        "Another record of the same site has the same name (ignoring case) and is the one "
        "to keep: it has the client, or the newer last policy request. Typically a "
        "discovery-only record beside the client's record, or the old record of a "
        "re-imaged machine.",
        "Check the kept record (linked on the device's page) is the live machine, then "
        "delete this stale record in the console (Assets and Compliance > Devices > "
        "Delete); site maintenance's Delete Aged Discovery Data removes such records over "
        "time.",
        _duplicate,
    ),
    # The Intune rules (appended last; they read the columns ``model.intune.reconcile`` adds,
    # and are left out of every count and list when no Intune source is configured).
    Rule(
        "intune-missing",
        "high",
        "Missing in Intune",
        "ConfigMgr says the device is enrolled in Intune (MDMEnrolled), but Intune has no "
        "record for its Entra device ID (nor, without an ID, for its name): the record was "
        "deleted or retired in Intune, or the device enrolled into another tenant.",
        "Search for the device in the Intune admin center (Devices > Windows) by name and "
        "Entra device ID. If it is gone, re-trigger enrollment (the co-management policy "
        "retries; check CoManagementHandler.log) after removing any stale MDM enrollment on "
        "the device (Settings > Accounts > Access work or school); check dsregcmd /status "
        "shows the expected tenant.",
        lambda d, t, a: _state_is(d, "missing"),
    ),
    Rule(
        "intune-stale",
        "medium",
        "Intune record stale",
        "The device's Intune record has not synced for longer than the set number of days "
        "(7 unless configured otherwise), or never synced: Intune's view of it is old.",
        "Check the device is on and online; sync it (Settings > Accounts > Access work or "
        "school > Info > Sync, or Sync from the Intune admin center) and check the "
        "DeviceManagement-Enterprise-Diagnostics-Provider event log; a device that was "
        "re-imaged may have a newer record under another Entra device ID.",
        lambda d, t, a: _state_is(d, "stale"),
    ),
    Rule(
        "intune-noncompliant",
        "medium",
        "Not compliant in Intune",
        "A co-managed device whose current Intune record says non-compliant, in grace "
        "period, conflict or error.",
        "Open the device in the Intune admin center (Device compliance) to see which policy "
        "setting fails, fix that setting on the device, then sync it; conflict means two "
        "policies set one setting differently.",
        lambda d, t, a: (
            d["intune_compliance"].isin(NOT_COMPLIANT).to_numpy(dtype=bool)
            if "intune_compliance" in d.columns
            else np.zeros(len(d), dtype=bool)
        ),
    ),
    Rule(
        "authority-mismatch",
        "low",
        "Compliance authority mismatch",
        "Who evaluates compliance disagrees between the two sides. Inferred from the "
        "documented values, not read from a setting: the compliance workload's bit (2) of "
        'MDMWorkloads is set but Intune says "See ConfigMgr" (configManager), or the bit is '
        "clear but Intune gives its own verdict.",
        "Check the compliance policies workload slider and its pilot collection; trigger a "
        "machine policy retrieval on the device and check CoManagementHandler.log for the "
        "new workload flags, then sync the device with Intune.",
        lambda d, t, a: (
            d["authority_mismatch"].to_numpy(dtype=bool)
            if "authority_mismatch" in d.columns
            else np.zeros(len(d), dtype=bool)
        ),
    ),
    Rule(
        "intune-ahead",
        "low",
        "Co-managed in Intune only",
        "Intune's current record says the device is co-managed, but ConfigMgr does not "
        "report it as enrolled: ConfigMgr's view is behind.",
        "Run a hardware inventory cycle and a machine policy retrieval on the device so "
        "ConfigMgr learns the enrollment; if it stays, check CoManagementHandler.log.",
        lambda d, t, a: _state_is(d, "intune-ahead"),
    ),
)
RULES_BY_ID = {rule.id: rule for rule in RULES}
RULE_BITS = {rule.id: 1 << index for index, rule in enumerate(RULES)}
INTUNE_RULE_IDS = (
    "intune-missing",
    "intune-stale",
    "intune-noncompliant",
    "authority-mismatch",
    "intune-ahead",
)


def shown_rules(intune: bool) -> tuple[Rule, ...]:
    """The rules shown for an estate: the Intune rules only when it has an Intune source."""
    return RULES if intune else tuple(r for r in RULES if r.id not in INTUNE_RULE_IDS)


def rules_counted(counts: dict) -> tuple[Rule, ...]:
    """The rules a summary's ``attention`` counts cover, in table order."""
    return tuple(rule for rule in RULES if rule.id in counts)


def evaluate(devices: pd.DataFrame, thresholds: Thresholds, as_of: pd.Timestamp) -> pd.DataFrame:
    """Add ``attention`` (bit per matching rule) and ``severity`` (highest) columns."""
    mask = np.zeros(len(devices), dtype=np.int32)
    rank = np.zeros(len(devices), dtype=np.int8)
    as_of = (
        pd.Timestamp(as_of).tz_localize(None) if pd.Timestamp(as_of).tzinfo else pd.Timestamp(as_of)
    )
    # The keeper of each duplicate record: the rule reads it, the device page links it.
    devices = devices.assign(duplicate_of=duplicate_keepers(devices))
    for rule in RULES:
        hit = np.asarray(rule.predicate(devices, thresholds, as_of), dtype=bool)
        mask[hit] |= RULE_BITS[rule.id]
        rank = np.where(hit, np.maximum(rank, SEVERITY_RANK[rule.severity]), rank)
    out = devices.copy(deep=False)  # copy-on-write: new columns, shared data
    out["attention"] = mask
    out["severity_rank"] = rank
    # rank 0 (nothing) is missing; ranks 1-3 are low, medium, high
    out["severity"] = pd.Categorical.from_codes(
        rank.astype(np.int16) - 1, categories=list(reversed(SEVERITIES)), ordered=True
    )
    return out


def rule_ids(mask: int) -> list[str]:
    """The rules a device's ``attention`` bits name, most severe first."""
    hits = [rule for rule in RULES if mask & RULE_BITS[rule.id]]
    return [rule.id for rule in sorted(hits, key=lambda r: -SEVERITY_RANK[r.severity])]


def attention_counts(attention: np.ndarray, intune: bool = False) -> dict[str, int]:
    """Devices per rule, from each device's ``attention`` bits (the Intune rules only for an
    estate with an Intune source)."""
    mask = np.asarray(attention)
    return {
        rule.id: int(np.count_nonzero(mask & RULE_BITS[rule.id])) for rule in shown_rules(intune)
    }


# The co-management prerequisites in order (readiness panel and device checklist).
READINESS_STEPS: tuple[tuple[str, str, str], ...] = (
    ("workstation", "Workstation OS", "Co-management covers Windows workstations, not servers."),
    (
        "os-version",
        "Windows 10 1709 or later",
        "Upgrade to Windows 10 1709 or later (a supported Windows 11 release is best).",
    ),
    ("client", "ConfigMgr client installed", "Install the Configuration Manager client."),
    (
        "client-active",
        "Client active",
        "Bring the client back to health: check the device is online and repair the client.",
    ),
    (
        "joined",
        "Joined to Entra ID (hybrid or not)",
        "Hybrid-join the device (Entra Connect sync) or join it to Entra ID.",
    ),
    (
        "policy",
        "Co-management policy received",
        "Add the device to the auto-enrollment collection and check policy retrieval.",
    ),
)
READINESS_IDS = tuple(step for step, _label, _fix in READINESS_STEPS)
READINESS_FIXES = {step: fix for step, _label, fix in READINESS_STEPS}
# A device whose OS is unknown fails "Workstation OS" (nothing says it is one) without being a
# server: the advice must follow its reason ("OS unknown"), not the servers' advice.
UNKNOWN_OS_ADVICE = (
    "ConfigMgr has no usable OS name, version or build for this device. If it is a Windows "
    "workstation, run a hardware inventory cycle on it (InventoryAgent.log) so the site "
    "learns its OS; other OSes (macOS, Linux) cannot be co-managed."
)


def readiness_advice(step: str, reason: str | None) -> str:
    """What to do about a device's first failed prerequisite, given its reason."""
    if reason == "os-unknown" and step in ("workstation", "os-version"):
        return UNKNOWN_OS_ADVICE
    return READINESS_FIXES[step]


def readiness_failure(devices: pd.DataFrame) -> pd.Categorical:
    """The first prerequisite each device fails (None when it passes them all)."""
    workstation = devices["workstation"].to_numpy()
    checks = [
        workstation,
        (devices["os_group"] == W10_CURRENT).to_numpy(),
        _flag(devices, "ClientInstalled"),
        _flag(devices, "ClientActive"),
        devices["joined"].to_numpy(),
        _flag(devices, "ComgmtPolicyPresent"),
    ]
    first = np.select([~c for c in checks], list(range(len(READINESS_IDS))), default=-1)
    return pd.Categorical.from_codes(first.astype(np.int16), categories=READINESS_IDS)


def readiness_counts(failures: dict[str, int], devices: int) -> list[ReadinessRow]:
    """Per step: devices that reached it, passed it, failed it (``failures``: devices per
    first failed step, out of ``devices``)."""
    remaining = devices
    rows: list[ReadinessRow] = []
    for step, label, _fix in READINESS_STEPS:
        failed = int(failures.get(step, 0))
        rows.append(
            {
                "step": step,
                "label": label,
                "checked": remaining,
                "passed": remaining - failed,
                "failed": failed,
            }
        )
        remaining -= failed
    return rows
