"""The model pipeline: validated device rows in, the derived estate out.

``derive`` is the one place where a load's rows become what every page, the history and the
report read. The steps run in this order, each reading the columns the earlier ones added:

1. ``classify``: OS group, flags, funnel, enrollment status, workload authority, reason;
2. readiness: the first readiness step each device fails;
3. time in state: ``state_since`` carried from the previous snapshot's states (when given);
4. Intune reconciliation: each record's state against Intune's records, its compliance and
   the authority check (only with an Intune source; docs/definitions.md §8);
5. attention: the rules, evaluated last because they read all of the above.

It is pure: the caller reads the sources and the history, and hands in plain data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd

from .attention import IN_PROGRESS_REASONS, Thresholds, evaluate, readiness_failure
from .intune import reconciled
from .states import classify
from .trends import carry_since, state_keys

# The device states as small integer codes: the index in these tuples (0 = co-managed / not
# targeted). History stores them, so: append only, never reorder or remove.
STATUS_CODES = (
    "",
    "success_hybrid",
    "success_aad",
    "enrolling_hybrid",
    "enrolling_aad",
    "failure_hybrid",
    "failure_aad",
    "pending_user_sign_in",
)
REASON_CODES = (
    "",
    "server",
    "os-too-old",
    "os-unknown",
    "no-client",
    "not-joined",
    "no-policy",
    "failed",
    "pending-sign-in",
    "scheduled",
    "enrolling",
)
IN_PROGRESS_CODES = tuple(REASON_CODES.index(reason) for reason in IN_PROGRESS_REASONS)


def encode(values: pd.Series, table: Sequence[str]) -> np.ndarray:
    """Category labels to their codes in ``table`` (missing or unknown -> 0)."""
    categorical = (
        values if isinstance(values.dtype, pd.CategoricalDtype) else values.astype("category")
    )
    lookup = np.array(
        [table.index(c) if c in table else 0 for c in categorical.cat.categories.astype(str)] + [0],
        dtype=np.int64,
    )
    codes = categorical.cat.codes.to_numpy()
    return np.asarray(lookup[np.where(codes < 0, len(lookup) - 1, codes)])


def day_number(day: date) -> int:
    """A day as the integer ``YYYYMMDD`` (how states carry their "since")."""
    return day.year * 10_000 + day.month * 100 + day.day


def snapshot_day(data_as_of: str) -> date:
    """The UTC day of an estate's "data as of" (the day its history snapshot is filed under)."""
    stamp = datetime.fromisoformat(data_as_of.replace("Z", "+00:00"))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.astimezone(UTC).date()


@dataclass(frozen=True)
class PreviousStates:
    """One site's device states from the newest snapshot before the day being derived:
    aligned arrays of ResourceID, reason code (``REASON_CODES``) and first day of that
    state (``YYYYMMDD``, 0 when unknown)."""

    resource_id: np.ndarray
    reason: np.ndarray
    since: np.ndarray


@dataclass(frozen=True)
class Parameters:
    """What the settings decide about a derivation.

    ``pilot_members``: per workload key, a mask over the device rows (members of its pilot
    collections); ``stages``: per workload key, its configured stage; ``as_of``: the
    estate's "data as of", which time-based rules measure against; ``intune_stale_days``:
    how old an Intune record's last sync may be before it is stale."""

    as_of: pd.Timestamp
    thresholds: Thresholds = field(default_factory=Thresholds)
    pilot_members: Mapping[str, np.ndarray] = field(default_factory=dict)
    stages: Mapping[str, str] = field(default_factory=dict)
    intune_stale_days: int = 7

    @property
    def day(self) -> date:
        stamp = pd.Timestamp(self.as_of)
        day: date = (stamp.tz_convert("UTC") if stamp.tzinfo is not None else stamp).date()
        return day


def carry_states(
    resource_ids: np.ndarray, reasons: np.ndarray, day: date, previous: PreviousStates | None
) -> np.ndarray:
    """The first day (``YYYYMMDD``) of each device's current state, for one site's devices
    (ResourceIDs and reason codes): carried from ``previous`` when the device was in the
    same state then, else ``day``."""
    keys = state_keys(reasons, IN_PROGRESS_CODES)
    if previous is None:
        return np.full(len(keys), day_number(day), dtype=np.int64)
    return carry_since(
        keys,
        day_number(day),
        pd.Index(previous.resource_id).get_indexer(resource_ids),
        state_keys(previous.reason, IN_PROGRESS_CODES),
        np.asarray(previous.since, dtype=np.int64),
    )


def carried_since(
    devices: pd.DataFrame, day: date, previous: Mapping[str, PreviousStates]
) -> np.ndarray:
    """The first day of each device's current state (``datetime64[D]``), carried from its
    site's previous states; ``day`` itself when unknown."""
    since = np.full(len(devices), np.datetime64(day, "D"))
    if not previous or not len(devices):
        return since
    site_of = devices["site"].astype(str).to_numpy()
    rids = devices["ResourceID"].to_numpy(dtype=np.int64)
    reasons = encode(devices["reason"], REASON_CODES)
    for site, states in previous.items():
        rows = np.flatnonzero(site_of == site)
        if len(rows):
            since[rows] = number_dates(carry_states(rids[rows], reasons[rows], day, states))
    return since


def number_dates(numbers: np.ndarray) -> np.ndarray:
    """``YYYYMMDD`` integers to ``datetime64[D]``."""
    numbers = np.asarray(numbers, dtype=np.int64)
    text = np.char.add(
        np.char.add((numbers // 10_000).astype(str), "-"),
        np.char.zfill((numbers // 100 % 100).astype(str), 2),
    )
    text = np.char.add(np.char.add(text, "-"), np.char.zfill((numbers % 100).astype(str), 2))
    return text.astype("datetime64[D]")


@dataclass(frozen=True)
class Derived:
    """What ``derive`` returns: the derived device rows, and with an Intune source the rows
    of its frame that are Intune-only (co-managed there, matching no ConfigMgr record)."""

    devices: pd.DataFrame
    intune_only: np.ndarray | None = None


def derive(
    devices: pd.DataFrame,
    parameters: Parameters,
    previous: Mapping[str, PreviousStates] | None = None,
    intune: pd.DataFrame | None = None,
) -> Derived:
    """The derived estate of validated device rows (one row per device, with ``site``).

    ``previous``: the history's states per site (``None``: no history, so no time in state
    and no device is stuck; an empty mapping: history without earlier states, every state
    starts on the day). ``intune``: the Intune records' frame (``None``: no Intune source, so
    no reconciliation columns and no Intune rule)."""
    derived = classify(devices, dict(parameters.pilot_members), dict(parameters.stages))
    derived["readiness"] = readiness_failure(derived)
    if previous is not None:
        since = carried_since(derived, parameters.day, previous)
        derived["state_since"] = pd.to_datetime(since).as_unit("s")
    intune_only = None
    if intune is not None:
        columns, intune_only = reconciled(
            derived, intune, parameters.as_of, parameters.intune_stale_days
        )
        derived = derived.assign(**dict(columns.items()))
    return Derived(evaluate(derived, parameters.thresholds, parameters.as_of), intune_only)


__all__ = [
    "IN_PROGRESS_CODES",
    "REASON_CODES",
    "STATUS_CODES",
    "Derived",
    "Parameters",
    "PreviousStates",
    "carried_since",
    "carry_states",
    "day_number",
    "derive",
    "encode",
    "number_dates",
    "snapshot_day",
]
