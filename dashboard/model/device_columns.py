"""The device list's optional columns (the column chooser): computed for one page of rows.

What the export contract carries beyond the default columns: the configured collections a
device belongs to, its domain and OS group, when its client was last active, and how many
whole days ago it last requested policy (measured against the data's "as of" time, never the
wall clock). The contract has no primary user and no hardware-inventory scan time, so the
chooser cannot offer them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .device_query import take

# field -> header, in the chooser's order
OPTIONAL_COLUMNS = {
    "collections": "Collections",
    "domain": "Domain",
    "os_group": "OS group",
    "last_active": "Client last active",
    "policy_age_days": "Days since last policy request",
}


def _naive(as_of: object) -> pd.Timestamp:
    stamp = pd.Timestamp(as_of)
    return stamp.tz_convert(None) if stamp.tzinfo is not None else stamp


def optional_columns(
    devices: pd.DataFrame,
    positions: np.ndarray,
    as_of: object,
    memberships: Mapping[str, np.ndarray],
) -> list[dict]:
    """One dict of optional fields per position (in order).

    ``memberships``: collection label -> boolean mask over ``devices`` (its member rows).
    """
    positions = np.asarray(positions, dtype=np.int64)
    part = take(devices, positions, ("LastPolicyRequest", "LastActiveTime", "Domain", "os_group"))
    policy = pd.to_datetime(part["LastPolicyRequest"])
    age = (_naive(as_of) - policy).dt.days  # whole days, NaN when never
    active = pd.to_datetime(part["LastActiveTime"]).dt.strftime("%Y-%m-%d %H:%M")
    member_of: list[list[str]] = [[] for _ in range(len(positions))]
    for label, mask in memberships.items():
        for index in np.flatnonzero(np.asarray(mask)[positions]):
            member_of[index].append(label)
    return [
        {
            "collections": ", ".join(labels),
            "domain": "" if pd.isna(domain) else str(domain),
            "os_group": str(group),
            "last_active": "" if pd.isna(last) else last,
            "policy_age_days": None if pd.isna(days) else int(days),
        }
        for labels, domain, group, last, days in zip(
            member_of,
            part["Domain"].astype("object"),
            part["os_group"].astype("object"),
            active.astype("object"),
            age,
            strict=True,
        )
    ]
