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

from .device_query import column_labels, minutes_text, text_of

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
    policy = devices["LastPolicyRequest"].iloc[positions]
    age = (_naive(as_of) - pd.to_datetime(policy)).dt.days  # whole days, NaN when never
    member_of: list[list[str]] = [[] for _ in range(len(positions))]
    for label, mask in memberships.items():
        for index in np.flatnonzero(np.asarray(mask)[positions]):
            member_of[index].append(label)
    columns = {
        "collections": [", ".join(labels) for labels in member_of],
        "domain": column_labels(devices["Domain"], positions, text_of).tolist(),
        "os_group": column_labels(devices["os_group"], positions).tolist(),
        "last_active": minutes_text(devices["LastActiveTime"], positions).tolist(),
        "policy_age_days": [None if pd.isna(days) else int(days) for days in age.tolist()],
    }
    return [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]
