"""Intune's managed-device records: read, validated and normalised (docs/definitions.md §8;
setting up the source: docs/intune.md).

Records come from an export (CSV as ``Get-MgDeviceManagementManagedDevice -All | Export-Csv``
writes it, or JSON: a list of records or Graph's ``{"value": [...]}``) or from Microsoft Graph
(``graph.py`` hands its records to :func:`records_from_rows`). Column names are Graph's property
names in any case. Whatever the origin, the same rules apply, in this order: a row whose
``lastSyncDateTime`` is present but not a date is dropped and reported; then records whose
``operatingSystem`` is not Windows are counted and left out. Enum columns arrive as names or
numbers (``10`` or ``10.0``) and leave as Graph's names. Every step works on whole columns
(distinct values for the enums), so a million records read in seconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .contract import (
    EXAMPLES_KEPT,
    ContractError,
    Problem,
    distinct,
    is_null,
    parse_dates,
    text_or_none,
)
from .csv_source import CsvTable, _decoded_bytes
from .intune_settings import IntuneSettings

REQUIRED_COLUMNS: tuple[str, ...] = (
    "id",
    "deviceName",
    "azureADDeviceId",
    "managementAgent",
    "complianceState",
    "lastSyncDateTime",
    "operatingSystem",
)
# Shown only: a hand-made export may leave them out.
OPTIONAL_COLUMNS: tuple[str, ...] = ("enrolledDateTime", "osVersion", "userPrincipalName")
COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
REPEATING: tuple[str, ...] = ("managementAgent", "complianceState", "operatingSystem")

# Graph's managementAgentType (v1.0), number -> name.
AGENTS: dict[int, str] = {
    1: "eas",
    2: "mdm",
    3: "easMdm",
    4: "intuneClient",
    5: "easIntuneClient",
    8: "configurationManagerClient",
    10: "configurationManagerClientMdm",
    11: "configurationManagerClientMdmEas",
    16: "unknown",
    32: "jamf",
    64: "googleCloudDevicePolicyController",
}
COMANAGED_AGENTS: frozenset[str] = frozenset(
    {"configurationManagerClientMdm", "configurationManagerClientMdmEas"}
)
# Graph's complianceState, number -> name; 255 is "evaluated by ConfigMgr".
COMPLIANCE: dict[int, str] = {
    0: "unknown",
    1: "compliant",
    2: "noncompliant",
    3: "conflict",
    4: "error",
    254: "inGracePeriod",
    255: "configManager",
}
_AGENT_NAMES = {name.lower(): name for name in AGENTS.values()}
_COMPLIANCE_NAMES = {name.lower(): name for name in COMPLIANCE.values()}
_NO_ID = "00000000-0000-0000-0000-000000000000"
# Graph writes DateTimeOffset.MinValue (year 1) for "never"; so do exports of it.
_NEVER_PREFIX = "0001-01-01"
_DATE_HINT = "is not a date (expected ISO 8601, e.g. 2026-11-20T13:45:12Z)"


class IntuneError(Exception):
    """The Intune source cannot be read at all: one line, naming the source, no secret."""


@dataclass(frozen=True)
class IntuneRecords:
    """The Windows records of one read, and what the read found on the way."""

    frame: pd.DataFrame  # Windows records only, RangeIndex
    records: int  # data rows read (before dropping)
    dropped: int  # rows dropped as bad
    windows: int  # == len(frame)
    source: str  # what the pages call it: "intune.csv" or "Microsoft Graph"
    loaded_at: str  # ISO 8601 UTC time of this read
    problems: list[str] = field(default_factory=list)  # one line per example of a dropped row


def _number(text: str) -> int | None:
    """``10`` or ``10.0`` -> 10; None when the text is not a whole number."""
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value.is_integer() else None


def agent_name(value: object) -> str | None:
    """Graph's name for a managementAgent written as a name (any case) or a number; an
    unknown number is kept as its digits, an unknown name as written; None when empty."""
    if is_null(value):
        return None
    text = str(value).strip()
    number = _number(text)
    if number is not None:
        return AGENTS.get(number, str(number))
    return _AGENT_NAMES.get(text.lower(), text)


def compliance_name(value: object) -> str:
    """Graph's name for a complianceState; empty or unlisted is ``unknown``."""
    if is_null(value):
        return "unknown"
    text = str(value).strip()
    number = _number(text)
    if number is not None:
        return COMPLIANCE.get(number, "unknown")
    return _COMPLIANCE_NAMES.get(text.lower(), "unknown")


def _mapped(column: pd.Series, convert) -> pd.Series:
    """``convert`` applied to each distinct value once, as an Arrow-backed text column."""
    codes, uniques = distinct(column)
    lookup = pa.array([convert(u) for u in uniques] + [convert(None)], type=pa.string())
    slots = np.where(codes < 0, len(uniques), codes).astype(np.int32)
    # Arrow decodes a dictionary by copying bytes: far cheaper than a million Python strings.
    decoded = pa.DictionaryArray.from_arrays(pa.array(slots), lookup).cast(pa.string())
    return pd.Series(pd.array(decoded, dtype="str"))


def _dates(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(naive UTC datetime64[us], mask of values that are not dates); empty and Graph's
    year-1 "never" are NaT. Graph's own form (``...Z`` or an offset) is one Arrow cast."""
    text = column.astype("str") if isinstance(column.dtype, pd.CategoricalDtype) else column
    array = pa.array(text, type=pa.string(), from_pandas=True)
    trimmed = pc.utf8_trim_whitespace(array)
    never = pc.fill_null(pc.starts_with(trimmed, _NEVER_PREFIX), False)
    trimmed = pc.if_else(never, pa.scalar(None, pa.string()), trimmed)
    empty = pc.fill_null(
        pc.is_in(pc.utf8_lower(trimmed), value_set=pa.array(["", "null", "nan", "<na>"])), True
    )
    trimmed = pc.if_else(empty, pa.scalar(None, pa.string()), trimmed)
    try:
        zoned = pc.cast(trimmed, pa.timestamp("us", tz="UTC"))
        return zoned.cast(pa.timestamp("us")).to_numpy(zero_copy_only=False), np.zeros(
            len(column), dtype=bool
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    return parse_dates(pd.Series(pd.array(trimmed, dtype="str")))


def _device_ids(column: pd.Series) -> pd.Series:
    """Entra device IDs lower case without braces; the all-zero GUID is no ID (<NA>)."""
    text = text_or_none(column)
    array = pa.array(text, type=pa.string(), from_pandas=True)
    cleaned = pc.utf8_lower(pc.utf8_trim(pc.utf8_trim_whitespace(array), "{}"))
    cleaned = pc.if_else(
        pc.fill_null(pc.equal(cleaned, _NO_ID), False), pa.scalar(None, pa.string()), cleaned
    )
    return pd.Series(pd.array(cleaned, dtype="str"))


def normalise(
    raw: pd.DataFrame,
    source: str,
    line_numbers=None,
    unit: str = "line",
    invalid: list[Problem] | None = None,
    now: datetime | None = None,
) -> IntuneRecords:
    """Typed Windows records from a raw frame of text (canonical column names).

    ``line_numbers`` gives each raw row's place in its file (called only when a message needs
    one); ``invalid`` holds rows the reader could not split (they count as read and dropped).
    """
    invalid = invalid or []
    n = len(raw)
    for name in OPTIONAL_COLUMNS:
        if name not in raw.columns:
            raw = raw.assign(**{name: pd.Series([None] * n, dtype="str")})
    last_sync, bad = _dates(raw["lastSyncDateTime"])
    examples = []
    if bad.any():
        lines = line_numbers() if line_numbers is not None else np.arange(1, n + 1)
        column = raw["lastSyncDateTime"]
        examples = [
            Problem(int(lines[row]), "lastSyncDateTime", str(column.iloc[row]), _DATE_HINT, unit)
            for row in np.flatnonzero(bad)[:EXAMPLES_KEPT]
        ]
    system = raw["operatingSystem"]
    codes, names = distinct(system)
    is_windows = np.array(
        [str(name).strip().lower() == "windows" for name in names] + [False], dtype=bool
    )[codes]
    keep = np.flatnonzero(is_windows & ~bad)
    raw = raw.iloc[keep].reset_index(drop=True)
    enrolled, _ = _dates(raw["enrolledDateTime"])  # shown only: a bad value is no date
    agent = _mapped(raw["managementAgent"], agent_name)
    frame = pd.DataFrame(
        {
            "id": text_or_none(raw["id"]).astype("str"),
            "deviceName": text_or_none(raw["deviceName"]).astype("str"),
            "operatingSystem": _mapped(raw["operatingSystem"], lambda v: str(v).strip()),
            "osVersion": text_or_none(raw["osVersion"]).astype("str"),
            "userPrincipalName": text_or_none(raw["userPrincipalName"]).astype("str"),
            "azureADDeviceId": _device_ids(raw["azureADDeviceId"]),
            "managementAgent": agent,
            "comanaged": agent.isin(COMANAGED_AGENTS).to_numpy(),
            "complianceState": _mapped(raw["complianceState"], compliance_name),
            "lastSyncDateTime": last_sync[keep].astype("datetime64[us]"),
            "enrolledDateTime": np.asarray(enrolled).astype("datetime64[us]"),
        }
    )
    problems = sorted(examples + invalid, key=lambda p: (p.line is None, p.line or 0))
    return IntuneRecords(
        frame=frame,
        records=n + len(invalid),
        dropped=int(bad.sum()) + len(invalid),
        windows=len(frame),
        source=source,
        loaded_at=_stamp(now),
        problems=[p.describe(source) for p in problems[:EXAMPLES_KEPT]],
    )


def _stamp(now: datetime | None) -> str:
    moment = now or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def records_from_rows(
    rows: list[dict], source: str, now: datetime | None = None, unit: str = "record"
) -> IntuneRecords:
    """Records from JSON objects (a saved Graph response, or Graph itself): property names in
    any case; values as Graph writes them (strings, numbers, null)."""
    if not all(isinstance(row, dict) for row in rows):
        raise IntuneError(f"{source}: every record must be a JSON object")
    keys: dict[str, str] = {}  # canonical -> the name used in the records
    canonical = {name.lower(): name for name in COLUMNS}
    for key in set().union(*rows) if rows else ():
        name = canonical.get(str(key).strip().lower())
        if name is not None and name not in keys:
            keys[name] = key
    missing = [name for name in REQUIRED_COLUMNS if name not in keys] if rows else []
    if missing:
        raise IntuneError(
            f"{source}: missing required column {missing[0]}"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
        )

    def column(name: str) -> pd.Series:
        if name not in keys:
            return pd.Series([None] * len(rows), dtype="str")
        key = keys[name]
        values = [row.get(key) for row in rows]
        try:  # mostly text already: Arrow takes the list as it is
            array = pa.array(values, type=pa.string())
        except (pa.ArrowTypeError, pa.ArrowInvalid):  # numbers (enums written as numbers)
            array = pa.array([None if v is None else str(v) for v in values], type=pa.string())
        return pd.Series(pd.array(array, dtype="str"))

    raw = pd.DataFrame({name: column(name) for name in COLUMNS})
    return normalise(raw, source, unit=unit, now=now)


def read_intune_file(path: Path, now: datetime | None = None) -> IntuneRecords:
    """Records from an export: ``.json`` as JSON, anything else as CSV."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        try:
            body = _decoded_bytes(path)
        except ContractError as error:
            raise IntuneError(str(error)) from None
        try:
            data = json.loads(body)
        except ValueError as error:
            raise IntuneError(f"{path}: not valid JSON ({error})") from None
        if isinstance(data, dict) and isinstance(data.get("value"), list):
            data = data["value"]
        if not isinstance(data, list):
            raise IntuneError(
                f'{path}: expected a list of records or a Graph response ({{"value": [...]}})'
            )
        return records_from_rows(data, path.name, now=now)
    try:
        table = CsvTable(path, REQUIRED_COLUMNS, OPTIONAL_COLUMNS, repeating=REPEATING)
    except ContractError as error:
        raise IntuneError(str(error)) from None
    lines = table.line_numbers
    if table.invalid:
        lines()  # also numbers the rows the reader skipped
    invalid = [Problem(line, None, None, message) for line, message in table.invalid]
    return normalise(table.frame, path.name, line_numbers=lines, invalid=invalid, now=now)


def load_intune(
    settings: IntuneSettings, base_dir: Path, now: datetime | None = None
) -> IntuneRecords:
    """Intune's records from the configured source; raises ``IntuneError`` (one line, no
    secret) when the source cannot be read at all."""
    if settings.file is not None:
        return read_intune_file(Path(base_dir) / settings.file, now=now)
    from .graph import fetch_managed_devices

    return records_from_rows(
        fetch_managed_devices(settings), "Microsoft Graph", now=now, unit="record"
    )


__all__ = [
    "AGENTS",
    "COLUMNS",
    "COMPLIANCE",
    "REQUIRED_COLUMNS",
    "IntuneError",
    "IntuneRecords",
    "agent_name",
    "compliance_name",
    "load_intune",
    "read_intune_file",
    "records_from_rows",
]
