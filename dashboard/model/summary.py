"""The aggregates every tile shows, and ``comanage-dashboard summary`` prints.

One function turns classified device rows into the summary dictionary; the page, the CLI,
the history store and the report all read it, so their numbers cannot disagree.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..settings import WORKLOADS
from .attention import attention_counts, readiness_counts
from .errors import error_table
from .states import AUTHORITIES, ENROLLMENT_STATUSES, OS_GROUPS, REASONS


def _counts(column: pd.Series, keys) -> dict[str, int]:
    counts = column.value_counts(dropna=True)
    return {key: int(counts.get(key, 0)) for key in keys}


# The columns a summary reads: a filter copies only these, not the whole estate.
SUMMARY_COLUMNS = ("comanaged", "os_group", "os_release", "eligible", "scheduled", "initiated",
                   "enrollment_status", "failed", "error_code", "reason", "attention",
                   "readiness", *(f"wl_{key}" for key in WORKLOADS))


def summarize(devices: pd.DataFrame, sources: list[dict], data_as_of: str,
              mask: np.ndarray | None = None) -> dict:
    """The summary of classified devices, or of the rows ``mask`` keeps (a site or
    collection filter)."""
    details = devices["EnrollmentErrorDetail"]
    devices = devices[list(SUMMARY_COLUMNS)]
    if mask is not None:
        devices = devices[mask]
        details = details[mask]
    comanaged = int(devices["comanaged"].sum())
    releases = devices["os_release"].value_counts(dropna=True)
    releases = releases[releases > 0]
    os_releases = {str(label): int(count) for label, count in
                   sorted(releases.items(), key=lambda item: (-item[1], str(item[0])))}
    failed = devices["failed"].to_numpy()
    return {
        "devices": len(devices),
        "comanaged": comanaged,
        "os_groups": _counts(devices["os_group"], OS_GROUPS),
        "os_releases": os_releases,
        "funnel": {
            "eligible": int(devices["eligible"].sum()),
            "scheduled": int(devices["scheduled"].sum()),
            "initiated": int(devices["initiated"].sum()),
            "enrolled": comanaged,
        },
        "enrollment_status": _counts(devices["enrollment_status"], ENROLLMENT_STATUSES),
        "workloads": {
            key: _counts(devices[f"wl_{key}"], AUTHORITIES) for key in WORKLOADS
        },
        "enrollment_errors": [
            {"code": row["code"], "description": row["description"], "count": row["count"]}
            for row in error_table(devices["error_code"][failed].astype("str"),
                                   details[failed])
        ],
        "not_comanaged_reasons": _counts(devices["reason"], REASONS),
        "attention": attention_counts(devices),
        "attention_devices": int(np.count_nonzero(devices["attention"].to_numpy())),
        "readiness": readiness_counts(devices),
        "data_as_of": data_as_of,
        "sources": [
            {"site": s["site"], "kind": s["kind"], "rows": int(s["rows"]),
             "dropped": int(s["dropped"])}
            for s in sources
        ],
    }

