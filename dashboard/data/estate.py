"""Loading an estate: every configured source read, validated, combined and classified.

An ``Estate`` is immutable once built; a refresh builds a new one and swaps it in, so readers
never see half a load. It keeps its provenance (sources, rows read, rows dropped and why,
"data as of") and answers the site and collection filters.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property

import numpy as np
import pandas as pd

from ..model.attention import Thresholds, evaluate, readiness_failure
from ..model.device_query import sort_key
from ..model.states import classify
from ..settings import Settings, Source
from .contract import (
    MEMBERSHIP_COLUMNS,
    ContractError,
    ParseResult,
    Problem,
    parse_devices,
    whole_numbers,
)
from .csv_source import fetch_csv


class LoadError(Exception):
    """A source could not be loaded at all: one line, naming the source, no secrets."""


@dataclass
class SourceReport:
    site: str
    kind: str
    location: str
    rows: int
    dropped: int
    problems: list[str] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"site": self.site, "kind": self.kind, "rows": self.rows, "dropped": self.dropped}


@dataclass
class Estate:
    devices: pd.DataFrame  # classified, one row per (site, ResourceID)
    memberships: pd.DataFrame  # site, ResourceID, CollectionID, CollectionName, row
    sources: list[SourceReport]
    data_as_of: str
    collection_names: dict[str, str] = field(default_factory=dict)
    _orders: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def sites(self) -> list[str]:
        return sorted(self.devices["site"].unique().tolist())

    @cached_property
    def _collection_rows(self) -> dict[str, np.ndarray]:
        rows = self.memberships["row"].to_numpy()
        ids = self.memberships["CollectionID"].to_numpy()
        return {cid: np.unique(rows[ids == cid]) for cid in pd.unique(ids)}

    def collection_mask(self, collection_id: str) -> np.ndarray:
        mask = np.zeros(len(self.devices), dtype=bool)
        mask[self._collection_rows.get(collection_id, np.empty(0, dtype=np.int64))] = True
        return mask

    def mask(self, site: str | None = None, collection: str | None = None
             ) -> np.ndarray | None:
        """Rows of one site and/or one collection (membership rows only); None for all."""
        if not site and not collection:
            return None
        mask = np.ones(len(self.devices), dtype=bool)
        if site:
            mask &= (self.devices["site"] == site).to_numpy()
        if collection:
            mask &= self.collection_mask(collection)
        return mask

    def sort_order(self, column: str, descending: bool = False) -> np.ndarray:
        """Row positions in the order of a sortable column, computed once per estate."""
        key = f"{column}:{'desc' if descending else 'asc'}"
        order = self._orders.get(key)
        if order is None:
            order = self._orders[key] = sort_key(self.devices, column, descending)
        return order

    def device_collections(self, row: int) -> pd.DataFrame:
        return self.memberships.loc[self.memberships["row"] == row,
                                    ["CollectionID", "CollectionName"]]


def _problem_lines(file: str, result: ParseResult, extra: list[Problem]) -> list[str]:
    problems = sorted(result.problems + extra, key=lambda p: (p.line is None, p.line or 0))
    return [p.describe(file) for p in problems[:5]]


def _load_source(source: Source, collection_ids: list[str], settings: Settings):
    """(typed devices, memberships, report) for one source."""
    invalid: list[Problem] = []
    if source.kind == "csv":
        table, memberships = fetch_csv(source.csv)
        raw, file = table.frame, table.path.name
        location = str(source.csv)
        lines = table.line_numbers  # counted only when a message needs a line
        if table.invalid:
            lines()  # also numbers the rows pyarrow skipped
        invalid = [Problem(line, None, None, message) for line, message in table.invalid]
    else:
        from .sql_source import SourceError, fetch_sql, redact

        password = os.environ.get(source.password_env) if source.password_env else None
        try:
            raw, memberships = fetch_sql(source.url, collection_ids, password=password,
                                         timeout_seconds=settings.query_timeout_seconds)
        except SourceError as error:
            raise LoadError(f"site {source.site}: {error}") from None
        file, location = "devices.sql result", redact(source.url)

        def lines() -> np.ndarray:
            return np.arange(1, len(raw) + 1)
    unit = "line" if source.kind == "csv" else "row"
    result = parse_devices(raw, line_numbers=lines, unit=unit)
    typed = result.frame
    site = np.full(len(typed), source.site, dtype=object)
    if "SiteCode" in typed.columns:
        site = np.where(typed["SiteCode"].isna(), site, typed["SiteCode"].to_numpy(object))
    typed.insert(0, "site", site)

    # A repeated (site, ResourceID) keeps its first row and is reported like a bad value.
    repeated = typed.duplicated(["site", "ResourceID"], keep="first").to_numpy()
    duplicate_problems = []
    if repeated.any():
        typed_lines = result.line_numbers()[result.kept]
        first_line = dict(zip(typed.loc[~repeated, "ResourceID"], typed_lines[~repeated],
                              strict=True))
        for row in np.flatnonzero(repeated)[:5]:
            rid = int(typed["ResourceID"].iat[row])
            seen = first_line.get(rid)
            message = f"is repeated (first on {unit} {seen}); kept the first row"
            duplicate_problems.append(Problem(int(typed_lines[row]), "ResourceID", str(rid),
                                              message, unit))
        result.reasons["repeated ResourceID"] = int(repeated.sum())
        typed = typed.loc[~repeated].reset_index(drop=True)
    dropped = result.dropped + int(repeated.sum()) + len(invalid)
    if invalid:
        result.reasons["wrong number of fields"] = len(invalid)
    report = SourceReport(
        site=source.site, kind=source.kind, location=location,
        rows=len(raw) + len(invalid), dropped=dropped,
        problems=_problem_lines(file, result, invalid + duplicate_problems),
        reasons=result.reasons,
    )
    memberships = _typed_memberships(memberships, source.site)
    return typed, memberships, report


def _typed_memberships(memberships: pd.DataFrame, site: str) -> pd.DataFrame:
    frame = pd.DataFrame({
        "site": site,
        "ResourceID": whole_numbers(memberships["ResourceID"]),
        "CollectionID": memberships["CollectionID"].astype("str").str.strip(),
        "CollectionName": memberships["CollectionName"].astype("str"),
    })
    frame = frame.dropna(subset=["ResourceID"])
    frame["ResourceID"] = frame["ResourceID"].astype("int64")
    return frame


def load_estate(settings: Settings, now: datetime | None = None, history=None) -> Estate:
    """Read every source, then classify the combined estate once.

    ``history`` (a ``data.history.HistoryStore``) adds ``state_since``, the first day of each
    device's current state, before attention is evaluated (the ``stuck`` rule reads it).
    """
    collection_ids = list(settings.named_collections)
    typed_parts, member_parts, reports = [], [], []
    for source in settings.sources:
        try:
            typed, memberships, report = _load_source(source, collection_ids, settings)
        except ContractError as error:
            raise LoadError(str(error)) from None
        typed_parts.append(typed)
        member_parts.append(memberships)
        reports.append(report)
    devices = pd.concat(typed_parts, ignore_index=True) if len(typed_parts) > 1 \
        else typed_parts[0]
    memberships = pd.concat(member_parts, ignore_index=True)
    memberships = memberships[memberships["CollectionID"].isin(collection_ids)]
    devices["site"] = devices["site"].astype("category")

    # Map each membership row to its device's row: membership belongs to its source's site,
    # and a ResourceID is unique within a site, so one integer index per site does it.
    rows = np.full(len(memberships), -1, dtype=np.int64)
    device_sites = devices["site"].astype("str").to_numpy()
    member_sites = memberships["site"].to_numpy()
    for site in pd.unique(member_sites):
        device_rows = np.flatnonzero(device_sites == site)
        index = pd.Index(devices["ResourceID"].to_numpy()[device_rows])
        selected = np.flatnonzero(member_sites == site)
        found = index.get_indexer(memberships["ResourceID"].to_numpy()[selected])
        rows[selected[found >= 0]] = device_rows[found[found >= 0]]
    memberships = memberships.assign(row=rows)[rows >= 0].reset_index(drop=True)
    names = (memberships.drop_duplicates("CollectionID")
             .set_index("CollectionID")["CollectionName"].to_dict())

    pilot_members, stages = {}, {}
    for key, workload in settings.workloads.items():
        stages[key] = workload.stage
        mask = np.zeros(len(devices), dtype=bool)
        member_rows = memberships.loc[
            memberships["CollectionID"].isin(workload.pilot_collections), "row"].to_numpy()
        mask[member_rows] = True
        pilot_members[key] = mask
    if settings.as_of:
        as_of = pd.Timestamp(settings.as_of)
        as_of = as_of.tz_localize("UTC") if as_of.tzinfo is None else as_of.tz_convert("UTC")
    else:
        as_of = pd.Timestamp((now or datetime.now(UTC)).replace(microsecond=0))
    data_as_of = as_of.isoformat()
    classified = classify(devices, pilot_members, stages)
    classified["readiness"] = readiness_failure(classified)
    if history is not None:
        _add_state_since(classified, history, data_as_of)
    classified = evaluate(classified, Thresholds(settings.client_inactive_days,
                                                 settings.stuck_days), as_of)
    return Estate(devices=classified, memberships=memberships[
        ["site", "ResourceID", "CollectionID", "CollectionName", "row"]],
        sources=reports, data_as_of=data_as_of, collection_names=names)


def _add_state_since(classified: pd.DataFrame, history, data_as_of: str) -> None:
    """``state_since`` from history; a history that cannot be read is logged, not fatal."""
    import logging

    from .history import snapshot_day

    try:
        since = history.state_since(classified, snapshot_day(data_as_of))
    except Exception as error:  # noqa: BLE001 - serving matters more than history
        logging.getLogger(__name__).warning("history: cannot read time in state from %s: %s",
                                            getattr(history, "shown", history), error)
        return
    classified["state_since"] = pd.to_datetime(since).as_unit("s")


__all__ = ["Estate", "LoadError", "SourceReport", "load_estate", "MEMBERSHIP_COLUMNS"]
