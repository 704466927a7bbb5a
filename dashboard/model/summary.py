"""The aggregates every tile shows, and ``comanage-dashboard summary`` prints.

One function turns classified device rows into the summary dictionary; the page, the CLI,
the history store and the report all read it, so their numbers cannot disagree.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..settings import WORKLOADS
from .attention import attention_counts, readiness_counts
from .errors import error_table
from .intune import intune_summary
from .states import AUTHORITIES, ENROLLMENT_STATUSES, OS_GROUPS, REASONS
from .summary_types import IntuneFigures, Summary


class _Rows:
    """The kept rows of the columns a summary reads, as numpy arrays.

    Filtering a million-row frame column by column through pandas costs ~7 ms a column;
    taking the kept rows of the numpy codes costs ~1 ms, and counting is one
    ``bincount``."""

    def __init__(self, devices: pd.DataFrame, mask: np.ndarray | None):
        self.devices = devices
        self.kept = None if mask is None else np.flatnonzero(mask)
        self.size = len(devices) if self.kept is None else len(self.kept)

    def values(self, name: str) -> np.ndarray:
        column = self.devices[name]
        values = (
            column.cat.codes.to_numpy()
            if isinstance(column.dtype, pd.CategoricalDtype)
            else column.to_numpy()
        )
        return np.asarray(values if self.kept is None else values.take(self.kept))

    def count(self, name: str) -> int:
        return int(np.count_nonzero(self.values(name)))

    def counts(self, name: str, keys: Sequence[str] | None = None) -> dict[str, int]:
        """Rows per category (all of ``keys`` when given, zeros included)."""
        categories = self.devices[name].cat.categories
        slots = self.values(name).astype(np.intp) + 1  # slot 0: missing
        tally = np.bincount(slots, minlength=len(categories) + 1)[1:]
        counts = dict(zip(categories, tally.tolist(), strict=True))
        return counts if keys is None else {key: int(counts.get(key, 0)) for key in keys}


def summarize(
    devices: pd.DataFrame,
    sources: list[dict],
    data_as_of: str,
    mask: np.ndarray | None = None,
    intune: IntuneFigures | None = None,
) -> Summary:
    """The summary of classified devices, or of the rows ``mask`` keeps (a site or
    collection filter).

    ``intune``: the Intune source's own figures (``records``, ``windows``, ``dropped``,
    ``intune_only``; ``Estate.intune_figures``) when the estate has one; the summary then
    carries the ``intune`` object and the Intune attention rules."""
    rows = _Rows(devices, mask)
    with_intune = intune is not None and "intune_state" in devices.columns
    comanaged = rows.count("comanaged")
    # The console's OS tile counts client devices: the OS figures count the records with
    # the ConfigMgr client, ``without_client`` the others; everything else counts them all.
    client = devices["ClientInstalled"].to_numpy(dtype=float) == 1
    clients = _Rows(devices, client if mask is None else client & mask)
    releases = {label: count for label, count in clients.counts("os_release").items() if count}
    os_releases = {
        str(label): int(count)
        for label, count in sorted(releases.items(), key=lambda item: (-item[1], str(item[0])))
    }
    failed = devices["failed"].to_numpy()
    failed = np.flatnonzero(failed if mask is None else failed & mask)  # a few rows
    summary: Summary = {
        "devices": rows.size,
        "comanaged": comanaged,
        "os_groups": clients.counts("os_group", OS_GROUPS),
        "os_releases": os_releases,
        "without_client": rows.size - clients.size,
        "funnel": {
            "eligible": rows.count("eligible"),
            "scheduled": rows.count("scheduled"),
            "initiated": rows.count("initiated"),
            "enrolled": comanaged,
        },
        "enrollment_status": rows.counts("enrollment_status", ENROLLMENT_STATUSES),
        "workloads": {key: rows.counts(f"wl_{key}", AUTHORITIES) for key in WORKLOADS},
        "enrollment_errors": [
            {"code": row["code"], "description": row["description"], "count": row["count"]}
            for row in error_table(
                devices["error_code"].iloc[failed].astype("str"),
                devices["EnrollmentErrorDetail"].iloc[failed],
            )
        ],
        "not_comanaged_reasons": rows.counts("reason", REASONS),
        "attention": attention_counts(rows.values("attention"), intune=with_intune),
        "attention_devices": rows.count("attention"),
        "readiness": readiness_counts(rows.counts("readiness"), rows.size),
        "data_as_of": data_as_of,
        "sources": [
            {
                "site": s["site"],
                "kind": s["kind"],
                "rows": int(s["rows"]),
                "dropped": int(s["dropped"]),
            }
            for s in sources
        ],
    }
    if with_intune and intune is not None:
        summary["intune"] = intune_summary(devices, mask=mask, **intune)
    return summary
