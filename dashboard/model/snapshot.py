"""A history snapshot of a derived estate: what the history store keeps of one day.

For each site: the summary's counts as metrics (``model.trends``), for the whole site and for
each collection of the trend filter, and the per-device state columns that transitions and
time in state are computed from. The store writes what it is handed; it computes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from .pipeline import snapshot_day
from .summary import summarize
from .summary_types import IntuneFigures
from .trends import metrics_from_summary

# The per-device columns a snapshot keeps (the store encodes them compactly).
STATE_COLUMNS = (
    "ResourceID",
    "enrollment_status",
    "reason",
    "comanaged",
    "failed",
    "MDMWorkloads",
    "error_code",
    "attention",
)


@dataclass(frozen=True)
class SiteSnapshot:
    site: str
    devices: int
    scopes: dict[str, dict[str, int]]  # collection ('' = the whole site) -> {metric: count}
    states: pd.DataFrame  # STATE_COLUMNS, one row per device of the site


@dataclass(frozen=True)
class Snapshot:
    day: date
    data_as_of: str
    sites: list[SiteSnapshot]


def site_intune_figures(
    figures: IntuneFigures | None, site: str, first_site: str
) -> IntuneFigures | None:
    """The Intune source's figures as a site's snapshot files them: Intune-only records
    belong to no site and a day sums its sites, so only the first site files them."""
    if figures is None or site == first_site:
        return figures
    return {**figures, "intune_only": 0}


def take_snapshot(
    devices: pd.DataFrame,
    data_as_of: str,
    scopes: Mapping[str, Mapping[str, np.ndarray | None]],
    intune: IntuneFigures | None = None,
) -> Snapshot:
    """The snapshot of derived ``devices``.

    ``scopes``: per site, ``{"": the site's rows, collection id: the site's rows in that
    collection}`` as masks over ``devices``; ``intune``: the Intune source's own figures
    (``Estate.intune_figures``), None without one."""
    sites = []
    first = next(iter(scopes), "")
    for site, masks in scopes.items():
        mask = masks[""]
        figures = site_intune_figures(intune, site, first)
        summary = summarize(devices, [], data_as_of, mask, intune=figures)
        metrics = {"": metrics_from_summary(summary, errors=True)}
        for collection, collection_mask in masks.items():
            if collection:
                metrics[collection] = metrics_from_summary(
                    summarize(devices, [], data_as_of, collection_mask, intune=figures),
                    errors=False,
                )
        rows = devices if mask is None else devices.loc[mask]
        sites.append(
            SiteSnapshot(
                site=site,
                devices=int(summary["devices"]),
                scopes=metrics,
                states=rows[list(STATE_COLUMNS)],
            )
        )
    return Snapshot(day=snapshot_day(data_as_of), data_as_of=data_as_of, sites=sites)


__all__ = ["STATE_COLUMNS", "SiteSnapshot", "Snapshot", "site_intune_figures", "take_snapshot"]
