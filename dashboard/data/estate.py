"""Loading an estate: every configured source read, validated and combined, then derived.

Reading and validating is this module's; what the rows mean is ``model.pipeline.derive``'s.

An ``Estate`` is immutable once built; a refresh builds a new one and swaps it in, so readers
never see half a load. It keeps its provenance (sources, rows read, rows dropped and why,
"data as of") and answers the site and collection filters.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cached_property
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from ..model import intune_list
from ..model.attention import Thresholds
from ..model.device_query import sort_key, text_rank
from ..model.intune import intune_only_rows
from ..model.pipeline import Parameters, PreviousStates, derive, snapshot_day
from ..model.snapshot import Snapshot, take_snapshot
from ..model.summary_types import IntuneFigures
from ..settings import Settings, Source
from .contract import (
    MEMBERSHIP_COLUMNS,
    ContractError,
    ParseResult,
    Problem,
    distinct,
    parse_devices,
    recoded,
    whole_numbers,
)
from .csv_source import fetch_csv
from .intune_source import IntuneError, IntuneRecords, load_intune
from .sql_source import SourceError, fetch_odbc, fetch_sql, odbc_password, redact


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
    # Each device's place in name order: every sort's tie-break. Kept in the warm-start
    # cache, so that a second worker does not sort a million names again.
    name_ranks: np.ndarray | None = field(default=None, repr=False)
    _orders: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    # Intune's records (None without [intune]); after a failed Intune read, the error and the
    # last good records (or None): the ConfigMgr side serves either way.
    intune: IntuneRecords | None = field(default=None, repr=False)
    intune_error: str | None = None
    # The Intune-only rows the pipeline found while matching (None: not known, e.g. an
    # estate built by hand; ``intune_only`` then matches the two sides itself).
    found_intune_only: np.ndarray | None = field(default=None, repr=False)

    @cached_property
    def sites(self) -> list[str]:
        """The sites with devices (every page's site filter asks: computed once)."""
        return sorted(self.devices["site"].unique().tolist())

    @cached_property
    def site_collections(self) -> dict[str, set[str]]:
        """The collections with at least one member in each site (membership rows)."""
        pairs = self.memberships[["site", "CollectionID"]].astype(str).drop_duplicates()
        out: dict[str, set[str]] = {}
        for site, collection in pairs.itertuples(index=False):
            out.setdefault(site, set()).add(collection)
        return out

    @cached_property
    def intune_only(self) -> np.ndarray:
        """Rows of the Intune records that are co-managed and match no ConfigMgr record
        (empty without an Intune source); the whole source, whatever the filter."""
        if self.intune is None:
            return np.zeros(0, dtype=np.int64)
        if self.found_intune_only is not None:
            return self.found_intune_only
        return intune_only_rows(self.devices, self.intune.frame)

    def intune_figures(self) -> IntuneFigures | None:
        """The Intune source's own figures for ``summarize`` (None without a source)."""
        if self.intune is None or "intune_state" not in self.devices.columns:
            return None
        return {
            "records": self.intune.records,
            "windows": self.intune.windows,
            "dropped": self.intune.dropped,
            "intune_only": len(self.intune_only),
        }

    def warm(self) -> None:
        """Build what the first requests need, before the estate is served: the device
        list's default order, every collection's mask, and the Intune-only records when the
        pipeline did not hand them over (every summary reads them)."""
        self.sort_order("severity", descending=True)
        self._collection_masks  # noqa: B018 - a cached property: computing it is the point
        self.intune_only  # noqa: B018 - likewise

    @cached_property
    def _collection_masks(self) -> dict[str, np.ndarray]:
        """Each collection's member rows as a mask, built once per estate (a store builds
        them when it swaps the estate in, not on a user's first click)."""
        rows = self.memberships["row"].to_numpy()
        codes, ids = distinct(self.memberships["CollectionID"])
        masks = {}
        for code, collection_id in enumerate(ids):
            mask = np.zeros(len(self.devices), dtype=bool)
            mask[rows[codes == code]] = True
            masks[str(collection_id)] = mask
        return masks

    def collection_mask(self, collection_id: str) -> np.ndarray:
        mask = self._collection_masks.get(collection_id)
        return np.zeros(len(self.devices), dtype=bool) if mask is None else mask.copy()

    def mask(self, site: str | None = None, collection: str | None = None) -> np.ndarray | None:
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
            order = self._orders[key] = sort_key(
                self.devices, column, descending, names=self.ranked_names()
            )
        return order

    def intune_only_order(self, column: str, descending: bool = False) -> np.ndarray:
        """The Intune-only records (rows of Intune's frame) in the order of a sortable column
        of their list, computed once per estate; empty without an Intune source."""
        if self.intune is None:
            return np.zeros(0, dtype=np.int64)
        key = f"intune-only:{column}:{'desc' if descending else 'asc'}"
        order = self._orders.get(key)
        if order is None:
            rows = np.asarray(self.intune_only, dtype=np.int64)
            order = self._orders[key] = intune_list.sort_order(
                self.intune.frame, rows, column, descending
            )
        return order

    def ranked_names(self) -> np.ndarray:
        """``name_ranks``, computed on first use when the estate did not come with them."""
        if self.name_ranks is None or len(self.name_ranks) != len(self.devices):
            self.name_ranks = text_rank(self.devices["Name"])
        return self.name_ranks

    def snapshot(self, collections: Iterable[str] = ()) -> Snapshot:
        """The history snapshot of this estate: each site, and each site x each of
        ``collections`` (the trend filter's)."""
        collections = list(dict.fromkeys(collections))
        scopes = {
            site: {"": self.mask(site)} | {c: self.mask(site, c) for c in collections}
            for site in self.sites
        }
        return take_snapshot(self.devices, self.data_as_of, scopes, self.intune_figures())

    def device_collections(self, row: int) -> pd.DataFrame:
        return self.memberships.loc[
            self.memberships["row"] == row, ["CollectionID", "CollectionName"]
        ]


def _problem_lines(file: str, result: ParseResult, extra: list[Problem]) -> list[str]:
    problems = sorted(result.problems + extra, key=lambda p: (p.line is None, p.line or 0))
    return [p.describe(file) for p in problems[:5]]


def _load_source(
    source: Source, collection_ids: list[str], settings: Settings
) -> tuple[pd.DataFrame, pd.DataFrame, SourceReport]:
    """(typed devices, memberships, report) for one source."""
    invalid: list[Problem] = []
    lines: Callable[[], np.ndarray]
    if source.kind == "csv":
        if source.csv is None:  # the settings never make one (a csv source names its folder)
            raise LoadError(f"site {source.site}: no csv folder")
        table, memberships = fetch_csv(source.csv)
        raw, file = table.frame, table.path.name
        location = str(source.csv)
        lines = table.line_numbers  # counted only when a message needs a line
        if table.invalid:
            lines()  # also numbers the rows pyarrow skipped
        invalid = [Problem(line, None, None, message) for line, message in table.invalid]
    else:
        password = os.environ.get(source.password_env) if source.password_env else None
        fetch = fetch_odbc if source.odbc is not None else fetch_sql
        where = source.odbc if source.odbc is not None else source.url
        if where is None:  # the settings never make one (a SQL source has a URL or odbc)
            raise LoadError(f"site {source.site}: no url or odbc connection")
        try:
            raw, memberships = fetch(
                where,
                collection_ids,
                password=password,
                timeout_seconds=settings.query_timeout_seconds,
            )
        except SourceError as error:
            raise LoadError(f"site {source.site}: {error}") from None
        file, location = "devices.sql result", redact(where, [password, odbc_password(where)])

        def row_numbers() -> np.ndarray:
            return np.arange(1, len(raw) + 1)

        lines = row_numbers

    unit = "line" if source.kind == "csv" else "row"
    result = parse_devices(raw, line_numbers=lines, unit=unit)
    typed = result.frame
    if "SiteCode" in typed.columns:  # a CAS export names each row's primary site
        site = (
            typed["SiteCode"]
            .cat.add_categories(
                [source.site] if source.site not in typed["SiteCode"].cat.categories else []
            )
            .fillna(source.site)
        )
    else:
        site = pd.Categorical.from_codes(
            np.zeros(len(typed), dtype=np.int8), categories=pd.Index([source.site], dtype="str")
        )
    typed.insert(0, "site", site)

    # A repeated (site, ResourceID) keeps its first row and is reported like a bad value.
    repeated = typed.duplicated(["site", "ResourceID"], keep="first").to_numpy()
    duplicate_problems = []
    if repeated.any():
        typed_lines = result.line_numbers()[result.kept]
        first_line = dict(
            zip(typed.loc[~repeated, "ResourceID"], typed_lines[~repeated], strict=True)
        )
        for row in np.flatnonzero(repeated)[:5]:
            rid = int(typed["ResourceID"].iat[row])
            seen = first_line.get(rid)
            message = f"is repeated (first on {unit} {seen}); kept the first row"
            duplicate_problems.append(
                Problem(int(typed_lines[row]), "ResourceID", str(rid), message, unit)
            )
        result.reasons["repeated ResourceID"] = int(repeated.sum())
        typed = typed.loc[~repeated].reset_index(drop=True)
    dropped = result.dropped + int(repeated.sum()) + len(invalid)
    if invalid:
        result.reasons["wrong number of fields"] = len(invalid)
    report = SourceReport(
        site=source.site,
        kind=source.kind,
        location=location,
        rows=len(raw) + len(invalid),
        dropped=dropped,
        problems=_problem_lines(file, result, invalid + duplicate_problems),
        reasons=result.reasons,
    )
    memberships = _typed_memberships(memberships, source.site, collection_ids)
    return typed, memberships, report


def _typed_memberships(
    memberships: pd.DataFrame, site: str, collection_ids: list[str]
) -> pd.DataFrame:
    """The membership rows of the configured collections, IDs and names categorical."""
    collection = recoded(memberships["CollectionID"], lambda v: str(v).strip())
    rid = whole_numbers(memberships["ResourceID"]).to_numpy()
    keep = collection.isin(collection_ids).to_numpy() & ~np.isnan(rid)
    sites = pd.Index([site], dtype="str")
    return pd.DataFrame(
        {
            "site": pd.Categorical.from_codes(np.zeros(int(keep.sum()), dtype=np.int8), sites),
            "ResourceID": rid[keep].astype("int64"),
            "CollectionID": collection[keep].reset_index(drop=True),
            "CollectionName": recoded(memberships["CollectionName"], str)[keep].reset_index(
                drop=True
            ),
        }
    )


def _combined(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """One frame from each source's rows; categorical columns stay categorical (with the
    union of the categories), where ``pd.concat`` would turn them into objects."""
    if len(parts) == 1:
        return parts[0]
    columns = {}
    for name in parts[0].columns:
        series = [part[name] for part in parts]
        if all(isinstance(s.dtype, pd.CategoricalDtype) for s in series):
            columns[name] = union_categoricals([s.array for s in series], ignore_order=True)
        else:
            columns[name] = pd.concat(series, ignore_index=True)
    return pd.DataFrame(columns, copy=False)


def read_intune(
    settings: Settings, now: datetime | None, previous: IntuneRecords | None = None
) -> tuple[IntuneRecords | None, str | None]:
    """(records, error) of the configured Intune source. A read that fails gives its one-line
    error and ``previous`` (the last good records): it never fails the ConfigMgr load."""
    if settings.intune is None:
        return None, None
    base = settings.config_path.parent if settings.config_path is not None else Path.cwd()
    try:
        records = load_intune(settings.intune, base, now)
    except IntuneError as error:
        message = str(error)
    except Exception as error:  # a bug must not take the ConfigMgr side down with it
        logging.getLogger(__name__).exception("intune: unexpected error")
        message = f"Intune: unexpected error ({type(error).__name__})"
    else:
        logging.getLogger(__name__).info(
            "intune: %s records from %s, %s Windows, %s dropped",
            records.records,
            records.source,
            records.windows,
            records.dropped,
        )
        return records, None
    secret_env = settings.intune.client_secret_env
    secret = os.environ.get(secret_env, "") if secret_env else ""
    if secret.strip():
        message = message.replace(secret, "***")
    logging.getLogger(__name__).warning("intune: %s", message)
    return previous, message


class StateHistory(Protocol):
    """What a load reads from the history (``data.history.HistoryStore``)."""

    @property
    def shown(self) -> str: ...

    def previous_states(
        self, day: date, sites: Iterable[str] | None = None
    ) -> dict[str, PreviousStates]: ...


def load_estate(
    settings: Settings,
    now: datetime | None = None,
    history: StateHistory | None = None,
    previous_intune: IntuneRecords | None = None,
) -> Estate:
    """Read every source, then derive the combined estate once (``model.pipeline``).

    ``history`` (a ``data.history.HistoryStore``) gives the previous device states, from
    which the pipeline carries ``state_since`` (the ``stuck`` rule reads it).
    ``previous_intune``: the last good Intune records, kept when the Intune read fails; the
    pipeline reconciles the estate with Intune's records (the Intune rules read it).
    """
    collection_ids = list(settings.named_collections)
    typed_parts, member_parts, reports = [], [], []
    # Intune's records are read beside ConfigMgr's: both readers spend much of their time in
    # Arrow, outside the interpreter lock (about 2 s each at a million records).
    # ``read_intune`` never raises: its failure is an error message, never a failed load.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="intune-read") as pool:
        intune_read = pool.submit(read_intune, settings, now, previous_intune)
        for source in settings.sources:
            try:
                typed, memberships, report = _load_source(source, collection_ids, settings)
            except ContractError as error:
                raise LoadError(str(error)) from None
            typed_parts.append(typed)
            member_parts.append(memberships)
            reports.append(report)
        devices = _combined(typed_parts)
        memberships = _combined(member_parts)
        intune, intune_error = intune_read.result()

    # Map each membership row to its device's row: membership belongs to its source's site,
    # and a ResourceID is unique within a site, so one integer index per site does it.
    rows = np.full(len(memberships), -1, dtype=np.int64)
    device_sites, member_sites = devices["site"], memberships["site"]
    device_ids = devices["ResourceID"].to_numpy()
    member_ids = memberships["ResourceID"].to_numpy()
    for site in member_sites.cat.categories:
        device_rows = np.flatnonzero(device_sites == site)
        selected = np.flatnonzero(member_sites == site)
        found = pd.Index(device_ids[device_rows]).get_indexer(member_ids[selected])
        rows[selected[found >= 0]] = device_rows[found[found >= 0]]
    memberships = memberships.assign(row=rows)[rows >= 0].reset_index(drop=True)
    codes, ids = distinct(memberships["CollectionID"])
    present, first = np.unique(codes, return_index=True)
    names = {
        str(ids[code]): str(memberships["CollectionName"].iat[at])
        for code, at in zip(present, first, strict=True)
        if code >= 0
    }

    pilot_members, stages = {}, {}
    for key, workload in settings.workloads.items():
        stages[key] = workload.stage
        mask = np.zeros(len(devices), dtype=bool)
        member_rows = memberships.loc[
            memberships["CollectionID"].isin(workload.pilot_collections), "row"
        ].to_numpy()
        mask[member_rows] = True
        pilot_members[key] = mask
    if settings.as_of:
        as_of = pd.Timestamp(settings.as_of)
        as_of = as_of.tz_localize("UTC") if as_of.tzinfo is None else as_of.tz_convert("UTC")
    else:
        as_of = pd.Timestamp((now or datetime.now(UTC)).replace(microsecond=0))
    data_as_of = as_of.isoformat()
    parameters = Parameters(
        as_of=as_of,
        thresholds=Thresholds(settings.client_inactive_days, settings.stuck_days),
        pilot_members=pilot_members,
        stages=stages,
        intune_stale_days=settings.intune.stale_days if settings.intune is not None else 7,
    )
    previous = (
        None
        if history is None
        else _previous_states(history, snapshot_day(data_as_of), devices["site"])
    )
    derived = derive(devices, parameters, previous, None if intune is None else intune.frame)
    return Estate(
        devices=derived.devices,
        memberships=memberships[["site", "ResourceID", "CollectionID", "CollectionName", "row"]],
        sources=reports,
        data_as_of=data_as_of,
        collection_names=names,
        intune=intune,
        intune_error=intune_error,
        found_intune_only=derived.intune_only,
    )


def _previous_states(
    history: StateHistory, day: date, sites: pd.Series
) -> dict[str, PreviousStates] | None:
    """The history's states before ``day``; a history that cannot be read is logged, not
    fatal (the estate then has no time in state)."""
    try:
        return history.previous_states(day, pd.unique(sites.astype(str)).tolist())
    except Exception as error:
        logging.getLogger(__name__).warning(
            "history: cannot read time in state from %s: %s",
            getattr(history, "shown", history),
            error,
        )
        return None


__all__ = [
    "MEMBERSHIP_COLUMNS",
    "Estate",
    "LoadError",
    "SourceReport",
    "load_estate",
    "read_intune",
    "snapshot_day",
]
