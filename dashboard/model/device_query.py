"""The device list's query: filters from a URL, sorting, paging and the rows shown.

Every filter is validated against its allowed values before it touches the estate; nothing
from a request is used as code or SQL. Sorting uses orders computed once per estate
(``Estate.sort_order``), so a page of a million-row estate costs one boolean pass.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..labels import AUTHORITY_LABELS, REASON_LABELS, enrollment_status_labels, join_type_label
from ..settings import WORKLOADS
from .attention import (
    INTUNE_RULE_IDS,
    READINESS_IDS,
    RULE_BITS,
    RULES,
    RULES_BY_ID,
    SEVERITIES,
    rule_ids,
)
from .errors import describe
from .intune import COMPLIANCE_STATES, RECONCILIATION_STATES
from .states import ENROLLMENT_STATUSES, FUNNEL_STAGES, OS_GROUPS, REASONS
from .trends import CHANGE_KINDS

FILTER_NAMES = (
    "site",
    "collection",
    "os_group",
    "release",
    "funnel",
    "enrollment_status",
    "workload",
    "authority",
    "error",
    "reason",
    "attention",
    "severity",
    "comanaged",
    "client",
    "readiness",
    "q",
    "changed",
    "since",
    "intune",
    "compliance",
)
# The Intune filters (accepted only when the estate has an Intune source) and their columns.
INTUNE_STATES = RECONCILIATION_STATES
INTUNE_FILTERS = {"intune": "intune_state", "compliance": "intune_compliance"}
_CODE_RE = re.compile(r"^0x[0-9A-F]{8}$")
MAX_QUERY_LENGTH = 100
ONE_SITE = "site given more than once (one site at a time)"
# The most values one filter may carry: far more than any list a person builds (there are
# about a hundred known error codes), few enough that one request cannot tie up a worker.
MAX_FILTER_VALUES = 500


class FilterTooLarge(ValueError):
    """A filter carries more than ``MAX_FILTER_VALUES`` values (the request is refused)."""


FILTER_LABELS = {
    "site": "Site",
    "collection": "Collection",
    "os_group": "OS",
    "release": "Release",
    "funnel": "Funnel stage",
    "enrollment_status": "Enrollment status",
    "workload": "Workload",
    "authority": "Authority",
    "error": "Error",
    "reason": "Reason",
    "attention": "Needs attention",
    "severity": "Severity",
    "comanaged": "Co-managed",
    "client": "ConfigMgr client",
    "readiness": "Fails prerequisite",
    "q": "Name contains",
    "changed": "Changed",
    "since": "Since",
    "intune": "Intune",
    "compliance": "Intune compliance",
}


@dataclass
class DeviceFilter:
    """Validated filters: each name maps to one or more allowed values (any of them)."""

    values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)  # "name=value: why", for a notice

    def pairs(self, drop: tuple[str, str] | None = None) -> list[tuple[str, str]]:
        return [
            (name, value)
            for name, values in self.values.items()
            for value in values
            if (name, value) != drop
        ]

    def first(self, name: str) -> str | None:
        values = self.values.get(name)
        return values[0] if values else None


def parse_filter(
    query: dict,
    sites: list[str],
    collections: list[str],
    releases: list[str],
    snapshot_days: Iterable[str] = (),
    intune: bool = False,
) -> DeviceFilter:
    """Keep only known parameters with allowed values; say what was rejected and why.

    ``query`` maps a name to a value or a list of values (``parse_qs``); a repeated name
    means any of its values, different names must all hold. ``changed`` (a change kind)
    needs ``since``, one of ``snapshot_days`` (``YYYY-MM-DD`` days with device states).
    ``intune``: the estate has an Intune source (else ``intune``, ``compliance`` and the
    Intune attention rules are refused, saying why).
    """
    choices: dict[str, Iterable[str]] = {
        "site": sites,
        "collection": collections,
        "os_group": OS_GROUPS,
        "release": releases,
        "funnel": FUNNEL_STAGES,
        "enrollment_status": ENROLLMENT_STATUSES,
        "workload": tuple(WORKLOADS),
        "authority": tuple(AUTHORITY_LABELS),
        "reason": REASONS,
        "attention": ("any", *RULES_BY_ID),
        "severity": SEVERITIES,
        "comanaged": ("1", "0"),
        "client": ("1", "0"),
        "readiness": READINESS_IDS,
        "changed": CHANGE_KINDS,
        "since": tuple(snapshot_days),
        "intune": INTUNE_STATES,
        "compliance": COMPLIANCE_STATES,
    }
    site_codes = {str(site).casefold(): site for site in sites}
    allowed = {name: frozenset(values) for name, values in choices.items()}
    result = DeviceFilter()
    accepted: dict[str, dict[str, None]] = {}  # insertion-ordered sets: linear time
    for name, raw in query.items():
        values = raw if isinstance(raw, list | tuple) else [raw]
        if len(values) > MAX_FILTER_VALUES:
            raise FilterTooLarge(
                f"too many values for filter {str(name)[:40]!r}: "
                f"{len(values):,} (at most {MAX_FILTER_VALUES})"
            )
        for value in values:
            if value is None or str(value) == "":
                continue
            value = str(value)
            if name not in FILTER_NAMES:
                result.rejected.append(f"{name}: unknown filter")
                break
            if name == "q":
                # a pasted name often carries spaces around it; the chip shows it trimmed
                value = value.strip()[:MAX_QUERY_LENGTH]
                if not value:
                    continue
            elif name == "site":
                # ConfigMgr site codes are case-insensitive: ps1 is the configured PS1
                value = site_codes.get(value.strip().casefold(), value)
                if value not in allowed[name]:
                    result.rejected.append(f"{name}={value}: not a known value")
                    continue
            elif name == "error":
                code = value.strip().upper().replace("0X", "0x", 1)
                if not _CODE_RE.match(code):
                    result.rejected.append(f"error={value}: not an error code like 0x8018002A")
                    continue
                value = code
            elif value not in allowed[name]:
                result.rejected.append(f"{name}={value}: not a known value")
                continue
            elif not intune and (
                name in INTUNE_FILTERS or (name == "attention" and value in INTUNE_RULE_IDS)
            ):
                result.rejected.append(f"{name}={value}: no Intune source is configured")
                continue
            accepted.setdefault(name, {})[value] = None
    result.values = {name: tuple(values) for name, values in accepted.items()}
    if len(result.values.get("site", ())) > 1:
        # every other page shows one site at a time: the list refuses two the same way
        result.rejected.append(f"{ONE_SITE}: {', '.join(result.values['site'])}")
        del result.values["site"]
    if "q" in result.values:
        result.values["q"] = result.values["q"][-1:]
    if "since" in result.values:
        result.values["since"] = result.values["since"][-1:]
    if ("changed" in result.values) != ("since" in result.values):
        lone = "changed" if "changed" in result.values else "since"
        result.rejected.append(
            "changed: needs since (a snapshot date)"
            if lone == "changed"
            else "since: needs changed"
        )
        del result.values[lone]
    if "authority" in result.values and "workload" not in result.values:
        result.rejected.append("authority: needs a workload")
        del result.values["authority"]
    return result


def filter_mask(
    estate: Any,
    devices: pd.DataFrame,
    flt: DeviceFilter,
    changes: Callable[[str], dict[str, np.ndarray] | None] | None = None,
) -> np.ndarray:
    """Rows of ``devices`` (the estate's full frame) matching every filter.

    ``changes(since)`` gives ``{change kind: mask over devices}`` (the store asks history);
    without it, or without that day's states, ``changed`` matches nothing.
    """
    v = flt.values
    mask = np.ones(len(devices), dtype=bool)

    def any_of(column: str, values: Iterable[str]) -> None:
        nonlocal mask
        mask &= devices[column].isin(list(values)).to_numpy(dtype=bool)

    def any_true(columns: Iterable[str]) -> np.ndarray:
        hit = np.zeros(len(devices), dtype=bool)
        for column in columns:
            hit |= devices[column].to_numpy(dtype=bool)
        return hit

    if "site" in v:
        any_of("site", v["site"])
    if "collection" in v:
        hit = np.zeros(len(devices), dtype=bool)
        for collection in v["collection"]:
            hit |= estate.collection_mask(collection)
        mask &= hit
    for name, column in (
        ("os_group", "os_group"),
        ("release", "os_release"),
        ("enrollment_status", "enrollment_status"),
        ("error", "error_code"),
        ("reason", "reason"),
        ("severity", "severity"),
        ("readiness", "readiness"),
    ):
        if name in v:
            any_of(column, v[name])
    if "funnel" in v:
        mask &= any_true({"enrolled": "comanaged"}.get(stage, stage) for stage in v["funnel"])
    if "workload" in v:
        hit = np.zeros(len(devices), dtype=bool)
        for workload in v["workload"]:
            column = devices[f"wl_{workload}"]
            hit |= (
                column.isin(list(v["authority"])) if "authority" in v else column.notna()
            ).to_numpy(dtype=bool)
        mask &= hit
    if "attention" in v:
        bits = devices["attention"].to_numpy()
        wanted = 0
        for rule in v["attention"]:
            wanted |= -1 if rule == "any" else RULE_BITS[rule]
        mask &= (bits & wanted) != 0
    if "comanaged" in v:
        states = {value == "1" for value in v["comanaged"]}
        comanaged = devices["comanaged"].to_numpy()
        mask &= np.isin(comanaged, list(states))
    if "client" in v:  # 1: ClientInstalled = 1; 0: anything else (unknown included)
        client = devices["ClientInstalled"].to_numpy(dtype=float) == 1
        mask &= np.isin(client, [value == "1" for value in v["client"]])
    if "q" in v:
        names = devices["Name"].astype("str").str.contains(v["q"][0], case=False, regex=False)
        mask &= names.fillna(False).to_numpy(dtype=bool)
    for name, column in INTUNE_FILTERS.items():
        if name in v:  # without the column (no Intune source) nothing matches
            if column in devices.columns:
                any_of(column, v[name])
            else:
                mask &= False
    if "changed" in v:
        found = changes(v["since"][0]) if changes is not None else None
        hit = np.zeros(len(devices), dtype=bool)
        for kind in v["changed"]:
            if found is not None and kind in found:
                hit |= found[kind]
        mask &= hit
    return mask


# Columns the grid can sort by, and the frame column (or derived rank, ``RANKS``) each sorts
# on. Free text sorts alphabetically, dates in time order; enumerations sort in their
# defined order (the overview's), not by the alphabet of their labels: severity from low
# to high, state in the enrollment-status donut's order then "Not targeted", the reason in
# the order of the definitions, join type hybrid, Entra joined, then not joined.
SORTABLE = {
    "name": "Name",
    "site": "site",
    "release": "os_release",
    "join_type": "join_rank",
    "state": "state_rank",
    "reason": "reason_rank",
    "error_code": "error_code",
    "client_active": "ClientActive",
    "last_policy_request": "LastPolicyRequest",
    "severity": "severity_rank",
}


def text_rank(values: pd.Series) -> np.ndarray:
    """Each value's position in case-insensitive order (0 first; equal text in row order);
    missing is -1.

    Sorted by Arrow, without Python string objects: a million names take a fraction of a
    second and no extra copy of the text."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        ranks = text_rank(pd.Series(values.cat.categories.astype("str")))
        return np.where(codes >= 0, ranks[np.maximum(codes, 0)] if len(ranks) else -1, -1)
    text = pa.array(values.astype("str"), type=pa.string(), from_pandas=True)
    order = pc.sort_indices(pc.utf8_lower(text)).to_numpy()  # stable
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[order] = np.arange(len(order))
    return np.where(values.isna().to_numpy(), -1, ranks)


def sort_key(
    devices: pd.DataFrame, column: str, descending: bool = False, names: np.ndarray | None = None
) -> np.ndarray:
    """Row order by ``column`` (text case-insensitively), ties by name ascending, missing
    values last in either direction. ``names``: ``text_rank`` of the names, when known."""
    source = SORTABLE.get(column, column)
    if source in RANKS:  # NaN: no value (shown blank), sorted last
        values = pd.Series(RANKS[source](devices), dtype=float)
    else:
        values = devices[source]
    if pd.api.types.is_datetime64_any_dtype(values):
        missing = values.isna().to_numpy()
        key = values.to_numpy().view(np.int64)
    elif pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        key = values.to_numpy(dtype=float)
        missing = np.isnan(key)
    else:
        key = text_rank(values)
        missing = key < 0
    key = np.where(missing, 0, key)
    if names is None:
        names = text_rank(devices["Name"])
    # lexsort: the last key is the primary one.
    order: np.ndarray = np.lexsort((names, -key if descending else key, missing))
    return order


def page_rows(order: np.ndarray, mask: np.ndarray, start: int, end: int) -> np.ndarray:
    """Positions of the matching rows on one page, from a precomputed order."""
    rows: np.ndarray = order[mask[order]][start:end]
    return rows


NOT_TARGETED = "Not targeted"


def state_rank(devices: pd.DataFrame) -> np.ndarray:
    """Order of the state column: the enrollment statuses in their donut order, then the
    devices co-management does not target."""
    codes = devices["enrollment_status"].cat.codes.to_numpy()
    return np.where(codes < 0, len(ENROLLMENT_STATUSES), codes)


def _codes_or_nan(values: pd.Series) -> np.ndarray:
    codes = values.cat.codes.to_numpy().astype(float)
    return np.where(codes < 0, np.nan, codes)


def join_rank(devices: pd.DataFrame) -> np.ndarray:
    """Order of the join-type column: hybrid, Entra joined, then not joined (as shown)."""
    codes = devices["join_type"].cat.codes.to_numpy()
    return np.where(
        devices["joined"].to_numpy(dtype=bool) & (codes >= 0),
        codes,
        len(devices["join_type"].cat.categories),
    )


def severity_order(devices: pd.DataFrame) -> np.ndarray:
    """Low, medium, high; a device no rule flags has no severity (blank, last)."""
    rank = devices["severity_rank"].to_numpy().astype(float)
    return np.where(rank > 0, rank, np.nan)


RANKS = {
    "state_rank": state_rank,
    "join_rank": join_rank,
    "severity_rank": severity_order,
    "reason_rank": lambda devices: _codes_or_nan(devices["reason"]),
}


def _mapped(values: pd.Series | np.ndarray, function: Callable[[Any], object]) -> np.ndarray:
    """Apply ``function`` once per distinct value (NA included) and spread the result."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    lookup = np.array([function(u) for u in uniques] + [function(None)], dtype=object)
    mapped: np.ndarray = lookup[codes]
    return mapped


def text_of(value: object) -> str:
    return (
        ""
        if value is None
        or value is pd.NA
        or value is pd.NaT
        or (isinstance(value, float) and np.isnan(value))
        else str(value)
    )


def column_labels(
    column: pd.Series, positions: np.ndarray, function: Callable[[Any], object] = str
) -> np.ndarray:
    """A column's values at ``positions`` in words: ``function`` once per category (``None``
    for a missing value), then plain numpy indexing of the category codes. A page of the list
    reads a dozen columns this way with one small conversion each: pandas' and Arrow's own
    conversions hand the interpreter lock back and forth many times per column, and under load
    every hand-back waits its turn behind the other requests' threads."""
    values = column.array
    if not isinstance(values, pd.Categorical):
        return _mapped(column.iloc[positions], function)
    categories = values.categories.to_numpy(dtype=object)
    lookup = np.array([*(function(c) for c in categories), function(None)], dtype=object)
    labels: np.ndarray = lookup[values.codes[positions]]  # code -1 (missing): the last entry
    return labels


def _error_columns(devices: pd.DataFrame, positions: np.ndarray) -> dict[str, np.ndarray]:
    """The error code, its description (which depends on the detail ConfigMgr recorded with
    it) and its fix, by column name: ``describe`` once per distinct code or pair on the page."""
    codes = column_labels(devices["error_code"], positions, lambda code: code).tolist()
    details = column_labels(
        devices["EnrollmentErrorDetail"], positions, lambda d: "" if d is None else d
    ).tolist()
    pairs = list(zip(codes, details, strict=True))
    described = {pair: describe(*pair).description for pair in set(pairs) if pair[0] is not None}
    fixes = {code: describe(code).fix for code in set(codes) if code is not None}
    return {
        "error_code": np.array([code or "" for code in codes], dtype=object),
        "error": np.array([described.get(pair, "") for pair in pairs], dtype=object),
        "error_fix": np.array([fixes.get(code, "") for code in codes], dtype=object),
    }


def minutes_text(values: pd.Series, positions: np.ndarray) -> np.ndarray:
    """``2026-11-20 07:00`` for each timestamp at ``positions``, blank when there is none."""
    part = values.iloc[positions]
    stamps = part.to_numpy()
    if not np.issubdtype(stamps.dtype, np.datetime64):  # time-zone aware: pandas formats it
        text: np.ndarray = part.dt.strftime("%Y-%m-%d %H:%M").fillna("").to_numpy()
        return text
    return np.array(
        [
            "" if text == "NaT" else text.replace("T", " ")
            for text in np.datetime_as_string(stamps, unit="m").tolist()
        ],
        dtype=object,
    )


def display_columns(
    devices: pd.DataFrame, positions: np.ndarray, wording: str = "entra"
) -> dict[str, np.ndarray]:
    """The list's columns as plain text for some device positions (vectorised), by name."""
    positions = np.asarray(positions, dtype=np.int64)
    statuses = enrollment_status_labels(wording)
    active = devices["ClientActive"].iloc[positions].to_numpy(dtype=float, na_value=np.nan)
    return {
        "resource_id": devices["ResourceID"].iloc[positions].to_numpy(),
        "name": devices["Name"].iloc[positions].to_numpy(dtype=object, na_value=""),
        "site": column_labels(devices["site"], positions),
        "domain": column_labels(devices["Domain"], positions, text_of),
        "os_group": column_labels(devices["os_group"], positions),
        "release": column_labels(devices["os_release"], positions),
        "join_type": np.where(
            devices["joined"].iloc[positions].to_numpy(dtype=bool),
            column_labels(devices["join_type"], positions, lambda j: join_type_label(j, wording)),
            "Not joined",
        ),
        "state": column_labels(
            devices["enrollment_status"],
            positions,
            lambda s: statuses.get(s, NOT_TARGETED) if s else NOT_TARGETED,
        ),
        "reason": column_labels(
            devices["reason"], positions, lambda r: REASON_LABELS.get(r, "") if r else ""
        ),
        **_error_columns(devices, positions),
        "client_active": np.where(np.isnan(active), "", np.where(active == 1, "yes", "no")).astype(
            object
        ),
        "last_policy_request": minutes_text(devices["LastPolicyRequest"], positions),
        "severity": column_labels(devices["severity"], positions, text_of),
        "attention": _mapped(
            devices["attention"].iloc[positions].to_numpy(),
            lambda m: ", ".join(rule_ids(int(m or 0))),
        ),
    }


def display_frame(
    devices: pd.DataFrame, positions: np.ndarray, wording: str = "entra"
) -> pd.DataFrame:
    """``display_columns`` as a frame indexed by position (the export's chunks)."""
    return pd.DataFrame(display_columns(devices, positions, wording), index=positions)


def rows_for(devices: pd.DataFrame, positions: np.ndarray, wording: str = "entra") -> list[dict]:
    """The grid's rows (plain strings, rendered as text) for some device positions: built
    from the columns' Python values directly (a frame's ``to_dict`` costs more than all the
    columns together)."""
    columns = display_columns(devices, positions, wording)
    names = list(columns)
    values = [column.tolist() for column in columns.values()]
    return [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]


EXPORT_COLUMNS = {
    "resource_id": "ResourceID",
    "name": "Name",
    "site": "Site",
    "domain": "Domain",
    "os_group": "OS group",
    "release": "OS release",
    "join_type": "Join type",
    "state": "State",
    "reason": "Reason",
    "error_code": "Error code",
    "error": "Error",
    "error_fix": "Error fix",
    "client_active": "Client active",
    "last_policy_request": "Last policy request",
    "severity": "Severity",
    "attention_titles": "Attention rules",
    "attention": "Attention rule ids",
    "fixes": "Fixes",
}


def _rule_titles(attention: str | None) -> str:
    """Rule ids (``enrollment-failed, stuck``) as their titles, in the same order."""
    return ", ".join(RULES_BY_ID[rule].title for rule in (attention or "").split(", ") if rule)


def _rule_fixes(attention: str | None) -> str:
    if not attention:
        return ""
    return " | ".join(
        f"{RULES_BY_ID[rule].title}: {RULES_BY_ID[rule].fix}"
        for rule in attention.split(", ")
        if rule
    )


# What a spreadsheet reads as the start of a formula (or DDE): = + - @, a tab or a line break
# before one, and the full-width forms Excel also accepts (UTF-8 EF BC 9D/8B/8D/A0).
FORMULA_START = "=+-@\t\r\n\uff1d\uff0b\uff0d\uff20"
_ASCII_START = np.frombuffer(b"=+-@\t\r\n", dtype=np.uint8)
_WIDE_THIRD = np.frombuffer(b"\x9d\x8b\x8d\xa0", dtype=np.uint8)


def _formula_rows(array: pa.Array) -> np.ndarray:
    """Which values of a (large_)string array start like a formula, read from the first
    bytes of the Arrow buffers: no per-value work, no copy of the text."""
    count = len(array)
    offsets_type = np.int64 if pa.types.is_large_string(array.type) else np.int32
    _validity, offsets, data = array.buffers()
    offsets = np.frombuffer(offsets, dtype=offsets_type)[array.offset : array.offset + count + 1]
    data = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    starts, lengths = offsets[:-1], np.diff(offsets)
    first = np.zeros(count, dtype=np.uint8)
    filled = lengths > 0  # nulls and empty strings have no first byte
    first[filled] = data[starts[filled]]
    hit = np.isin(first, _ASCII_START)
    wide = np.flatnonzero((first == 0xEF) & (lengths >= 3))
    if len(wide):
        hit[wide] = (data[starts[wide] + 1] == 0xBC) & np.isin(data[starts[wide] + 2], _WIDE_THIRD)
    return hit


def neutralise(table: pa.Table) -> pa.Table:
    """Every text column of an export, with a leading ``'`` on each value a spreadsheet
    would run as a formula (the value still reads the same). Vectorised on Arrow buffers."""
    for index, column in enumerate(table.schema):
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue
        values = table.column(index).combine_chunks()
        hit = _formula_rows(values)
        if hit.any():
            quoted = pc.binary_join_element_wise(
                pa.scalar("'", values.type), values, pa.scalar("", values.type)
            )
            table = table.set_column(index, column, pc.if_else(pa.array(hit), quoted, values))
    return table


def export_chunks(
    devices: pd.DataFrame, positions: np.ndarray, wording: str = "entra", chunk: int = 20000
) -> Iterator[pa.Table]:
    """The export's rows a chunk at a time (Arrow tables, as the CSV writer takes them), so
    memory stays flat however many match; every text column neutralised (``neutralise``),
    whatever its source."""
    for begin in range(0, len(positions), chunk):
        frame = display_frame(devices, positions[begin : begin + chunk], wording)
        frame["attention_titles"] = _mapped(frame["attention"], _rule_titles)
        frame["fixes"] = _mapped(frame["attention"], _rule_fixes)
        frame = frame[list(EXPORT_COLUMNS)].rename(columns=EXPORT_COLUMNS)
        yield neutralise(pa.Table.from_pandas(frame, preserve_index=False))


__all__ = [
    "RULES",
    "DeviceFilter",
    "FilterTooLarge",
    "export_chunks",
    "filter_mask",
    "parse_filter",
    "rows_for",
]
