"""The export contract (docs/definitions.md §5) and the rules for reading its raw values (§4).

Both sources (CSV exports and SQL through ``queries/*.sql``) hand this module a table of raw
text, one column per contract column; it returns typed columns and the rows it had to drop.
Parsing works on the distinct values of a column (``pd.factorize``) wherever a column repeats
itself (flags, OS names, builds, codes), so a million-row estate costs a few thousand Python
calls, not a million.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

DEVICE_COLUMNS: tuple[str, ...] = (
    "ResourceID",
    "Name",
    "Domain",
    "OperatingSystem",
    "Build",
    "ProductType",
    "ClientInstalled",
    "ClientVersion",
    "ClientActive",
    "LastPolicyRequest",
    "LastActiveTime",
    "AADDeviceID",
    "HybridAADJoined",
    "AADJoined",
    "MDMEnrolled",
    "ComgmtPolicyPresent",
    "MDMProvisioned",
    "EnrollmentScheduled",
    "PendingLogon",
    "EnrollmentFailed",
    "EnrollmentStatusCode",
    "EnrollmentErrorDetail",
    "MDMWorkloads",
)
OPTIONAL_DEVICE_COLUMNS: tuple[str, ...] = ("SiteCode",)
MEMBERSHIP_COLUMNS: tuple[str, ...] = ("ResourceID", "CollectionID", "CollectionName")

FLAG_COLUMNS: tuple[str, ...] = (
    "ClientInstalled",
    "ClientActive",
    "HybridAADJoined",
    "AADJoined",
    "MDMEnrolled",
    "ComgmtPolicyPresent",
    "MDMProvisioned",
    "EnrollmentScheduled",
    "PendingLogon",
    "EnrollmentFailed",
)
DATE_COLUMNS: tuple[str, ...] = ("LastPolicyRequest", "LastActiveTime")
TEXT_COLUMNS: tuple[str, ...] = (
    "Name",
    "Domain",
    "OperatingSystem",
    "ClientVersion",
    "AADDeviceID",
    "EnrollmentErrorDetail",
)
UNIQUE_TEXT: tuple[str, ...] = ("Name", "AADDeviceID")
# Columns whose values repeat: kept as categoricals, read as dictionaries from CSV.
REPEATING_TEXT: tuple[str, ...] = (*tuple(c for c in TEXT_COLUMNS if c not in UNIQUE_TEXT), "Build")
REPEATING_COLUMNS: tuple[str, ...] = (
    REPEATING_TEXT
    + FLAG_COLUMNS
    + ("ProductType", "EnrollmentStatusCode", "MDMWorkloads", "SiteCode")
)

_TRUE = {"1", "1.0", "true", "yes"}
_FALSE = {"0", "0.0", "false", "no"}
_NULLS = {"", "null"}
_INT_RE = re.compile(r"^[+-]?\d+(\.0*)?$")
_HEX_RE = re.compile(r"^(0x)?[0-9a-f]+$")
_NT_RE = re.compile(r"(\d+)\.(\d+)")
EXAMPLES_KEPT = 5


@dataclass
class Problem:
    """One dropped row: where it was and why, in words a user can act on."""

    line: int | None
    column: str | None
    value: str | None
    message: str
    unit: str = "line"  # "row" for a query's result, which has no lines

    def describe(self, file: str) -> str:
        where = f"{file} {self.unit} {self.line}" if self.line is not None else file
        if self.column is None:
            return f"{where}: {self.message}"
        return f'{where}: {self.column} "{self.value}" {self.message}'


@dataclass
class ParseResult:
    """Typed device rows plus the problems found; ``dropped`` counts every dropped row."""

    frame: pd.DataFrame
    kept: np.ndarray  # position in the raw table of each kept row
    line_numbers: Callable[[], np.ndarray]  # every raw row's line (computed on demand)
    unit: str = "line"
    dropped: int = 0
    problems: list[Problem] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)


class ContractError(Exception):
    """A source that cannot be loaded at all (unreadable, empty, missing a column)."""


def is_null(value: object) -> bool:
    return (
        value is None
        or (isinstance(value, float) and np.isnan(value))
        or (isinstance(value, str) and value.strip().lower() in _NULLS)
    )


def parse_flag(value: object) -> float:
    """1.0 / 0.0 for a readable flag, NaN for unknown; raises ValueError for anything else."""
    if is_null(value):
        return np.nan
    text = str(value).strip().lower()
    if text in _TRUE:
        return 1.0
    if text in _FALSE:
        return 0.0
    raise ValueError("is not a flag (expected 1, 0, True, False or empty)")


def parse_number(value: object) -> float:
    """A whole number, written as decimal (``8193`` or ``8193.0``); NaN when empty."""
    if is_null(value):
        return np.nan
    text = str(value).strip()
    if not _INT_RE.match(text):
        raise ValueError("is not a whole number")
    return float(int(float(text)))


def parse_status_code(value: object) -> str | None:
    """Normalise an HRESULT to unsigned 32 bits written ``0x%08X``; None when empty.

    Digits with an optional minus are decimal (signed or unsigned); a ``0x`` prefix or any
    of the letters A-F makes it hexadecimal.
    """
    if is_null(value):
        return None
    text = str(value).strip().lower()
    if _INT_RE.match(text):
        number = int(float(text)) if "." in text else int(text)
    elif _HEX_RE.match(text):
        number = int(text[2:] if text.startswith("0x") else text, 16)
    else:
        raise ValueError("is not an error code (decimal or hexadecimal)")
    return f"0x{number & 0xFFFFFFFF:08X}"


def parse_product_type(value: object) -> float:
    """1, 2 or 3; anything else (not an error) is unknown and lets the OS name decide."""
    if is_null(value):
        return np.nan
    try:
        number = float(str(value).strip())
    except ValueError:
        return np.nan
    return number if number in (1.0, 2.0, 3.0) else np.nan


def parse_nt_version(operating_system: object, build: object) -> str | None:
    """``major.minor`` from the OS name, else from a dotted build (``10.0.19045``)."""
    for text in (operating_system, build):
        if is_null(text):
            continue
        text = str(text)
        if text is build and "." not in text:
            continue
        match = _NT_RE.search(text)
        if match:
            return f"{int(match.group(1))}.{int(match.group(2))}"
    return None


def parse_build_number(build: object) -> float:
    """``19045``, ``10.0.19045`` or ``10.0.19045.4651`` -> 19045; ``10.0`` alone -> unknown."""
    if is_null(build):
        return np.nan
    parts = str(build).strip().split(".")
    if len(parts) >= 3:
        candidate = parts[2]
    elif len(parts) == 1:
        candidate = parts[0]
    else:
        return np.nan
    return float(candidate) if candidate.isdigit() else np.nan


def distinct(column: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """(code of each value, distinct values), -1 for missing: free for a categorical (how the
    CSV reader delivers repeating columns), one hash pass otherwise."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.cat.codes.to_numpy(), column.cat.categories
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    return codes, pd.Index(uniques)


def _categorical_from(lookup: list, codes: np.ndarray) -> pd.Categorical:
    """The categorical of ``lookup[code]`` for each code (text, or None for missing); code -1
    takes the last entry. Only the short lookup is factorised, never a row per device."""
    slots, categories = pd.factorize(pd.Series(lookup, dtype=object), use_na_sentinel=True)
    return pd.Categorical.from_codes(
        slots.astype(np.int32)[codes], categories=pd.Index(categories, dtype="str")
    )


def recoded(column: pd.Series, convert: Callable[[object], object]) -> pd.Series:
    """A categorical of ``convert`` applied to each distinct value (None = missing)."""
    codes, uniques = distinct(column)
    return pd.Series(
        _categorical_from([convert(u) for u in uniques] + [None], codes), index=column.index
    )


def _map_distinct(column: pd.Series, parse, text: bool = False):
    """Apply ``parse`` to each distinct value once; return (values, bad mask, codes, bad
    messages). Numbers as floats; with ``text``, a categorical."""
    codes, uniques = distinct(column)
    parsed: list[object] = []
    bad_unique = np.zeros(len(uniques) + 1, dtype=bool)
    messages: dict[int, str] = {}
    for index, raw in enumerate(uniques):
        try:
            parsed.append(parse(raw))
        except ValueError as error:
            parsed.append(None if text else np.nan)
            bad_unique[index] = True
            messages[index] = str(error)
    parsed.append(parse(None))  # the NA sentinel (-1) maps to the last slot
    values = _categorical_from(parsed, codes) if text else np.array(parsed, dtype=float)[codes]
    return values, bad_unique[codes], codes, messages


def _arrow_text(column: pd.Series) -> pa.Array:
    """The column as an Arrow string array (no copy when it is Arrow-backed already)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        column = column.astype("str")
    try:
        return pa.array(column, type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array(column.astype("str"), type=pa.string(), from_pandas=True)


def _null_like(text: pa.Array) -> pa.Array:
    """True where a text value means "no value" (missing, empty, NULL, blanks)."""
    lowered = pc.utf8_lower(pc.utf8_trim_whitespace(text))
    return pc.fill_null(pc.is_in(lowered, value_set=pa.array(["", "null", "nan", "<na>"])), True)


def text_or_none(column: pd.Series) -> pd.Series:
    """Text as Arrow-backed strings, with every null-like value missing."""
    text = _arrow_text(column)
    kept = pc.if_else(_null_like(text), pa.scalar(None, pa.string()), text)
    return pd.Series(kept.to_pandas(), index=column.index)


def parse_dates(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(UTC datetime64[us] values, mask of values that are not dates); empty is missing.

    The common case (every value ``2026-11-20 13:45:12.000`` or ISO 8601 without a zone) is
    one Arrow cast; anything else (zones, odd spacing, junk) goes through pandas.
    """
    text = _arrow_text(column)
    empty = _null_like(text)
    trimmed = pc.if_else(empty, pa.scalar(None, pa.string()), pc.utf8_trim_whitespace(text))
    try:
        parsed = pc.cast(trimmed, pa.timestamp("us")).to_numpy()
        return parsed, np.zeros(len(column), dtype=bool)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    values = pd.Series(trimmed.to_pandas())
    parsed = pd.to_datetime(values, format="ISO8601", errors="coerce", utc=True)
    bad = (parsed.isna() & values.notna()).to_numpy()
    return parsed.dt.tz_localize(None).dt.as_unit("us").to_numpy(), bad


def whole_numbers(text: pd.Series) -> pd.Series:
    """Integers from text; NaN where a value is not a whole number."""
    if pd.api.types.is_numeric_dtype(text.dtype):
        numbers = text.astype("float64")
        return numbers.where(numbers == np.floor(numbers))
    try:  # the common case, every value clean: one vectorised cast
        return pd.Series(
            pa.array(text, type=pa.string()).cast(pa.int64()).to_numpy(zero_copy_only=False),
            index=text.index,
            dtype="float64",
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        stripped = text.astype("str").str.strip()
        return pd.to_numeric(
            stripped.where(stripped.str.match(_INT_RE.pattern), None), errors="coerce"
        )


def _text_values(array: pa.Array) -> pa.Array:
    """Values as the text a CSV export of them holds: integers and whole decimals without a
    fraction, booleans 1/0, date-times ``YYYY-MM-DD HH:MM:SS.fff`` in UTC, bytes as hex."""
    kind = array.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return array
    if pa.types.is_boolean(kind):
        return array.cast(pa.int8()).cast(pa.string())
    if pa.types.is_timestamp(kind):  # zoned values are stored as UTC: dropping the zone keeps it
        return array.cast(pa.timestamp("ms")).cast(pa.string())
    if (
        pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
        or pa.types.is_fixed_size_binary(kind)
    ):
        return pa.array(
            [None if v is None else v.hex() for v in array.to_pylist()], type=pa.string()
        )
    try:
        return array.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return pa.array(
            [None if v is None else str(v) for v in array.to_pylist()], type=pa.string()
        )


def _raw_column(column: pa.ChunkedArray | pa.Array, repeating: bool) -> pa.ChunkedArray | pa.Array:
    """One column of raw values as the validation reads it: text, or for a repeating column a
    dictionary of distinct values (typed once each, held as small codes)."""
    kind = column.type
    if (pa.types.is_dictionary(kind) and pa.types.is_string(kind.value_type)) or (
        not repeating and (pa.types.is_string(kind) or pa.types.is_large_string(kind))
    ):
        return column  # as the CSV reader delivers them: nothing to convert, nothing to copy
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_dictionary(kind):
        return pa.DictionaryArray.from_arrays(array.indices, _text_values(array.dictionary))
    if repeating:
        # Encode first, then write only the distinct values as text: a million integer flags
        # cost one hash pass, not a million string conversions.
        encoded = array.dictionary_encode()
        return pa.DictionaryArray.from_arrays(encoded.indices, _text_values(encoded.dictionary))
    if pa.types.is_integer(array.type):
        return array  # ResourceID: read as a number as it is (nulls are reported as bad)
    return _text_values(array)


def raw_frame(table: pa.Table, repeating: tuple[str, ...] = REPEATING_COLUMNS) -> pd.DataFrame:
    """The frame :func:`parse_devices` (and the membership reader) take, from an Arrow table of
    raw values, whichever source it came from: a CSV read by pyarrow, or a query's result
    fetched straight into Arrow. Repeating columns become categoricals; other text stays
    Arrow-backed strings."""
    columns = {
        name: _raw_column(table.column(name), name in repeating) for name in table.column_names
    }
    return pa.table(columns).to_pandas(split_blocks=True)


def parse_devices(
    raw: pd.DataFrame, line_numbers: Callable[[], np.ndarray] | None = None, unit: str = "line"
) -> ParseResult:
    """Type the raw text columns of a device export; drop and report rows with bad values.

    ``raw`` holds the contract columns as text (missing values as NA or ""). ``line_numbers``
    returns each row's position in its file, and is only called when a message needs one
    (default: the row number + 2, the header being line 1); ``unit`` names it ("row" for a
    query result).
    """
    n = len(raw)
    if line_numbers is None:

        def line_numbers() -> np.ndarray:
            return np.arange(2, n + 2)

    out: dict[str, object] = {}
    bad_any = np.zeros(n, dtype=bool)
    first_bad: list[tuple[int, str, str, str]] = []  # (row, column, value, message)
    reasons: dict[str, int] = {}

    def note(column: str, bad: np.ndarray, values_raw: pd.Series, message_of) -> None:
        """Record rows newly found bad in ``column``; keep the first few as examples."""
        nonlocal bad_any
        new = bad & ~bad_any
        if new.any():
            reasons[f"bad {column}"] = reasons.get(f"bad {column}", 0) + int(new.sum())
            first_bad.extend(
                (int(row), column, str(values_raw.iloc[row]), message_of(row))
                for row in np.flatnonzero(new)[:EXAMPLES_KEPT]
            )
        bad_any |= bad

    # ResourceID: every value is distinct, so parse vectorised rather than per distinct value.
    rid_num = whole_numbers(raw["ResourceID"])
    note(
        "ResourceID",
        rid_num.isna().to_numpy(),
        raw["ResourceID"],
        lambda row: "is not a whole number",
    )
    out["ResourceID"] = rid_num.fillna(-1).astype("int64").to_numpy()

    for column in FLAG_COLUMNS:
        values, bad, codes, messages = _map_distinct(raw[column], parse_flag)
        note(column, bad, raw[column], lambda row, c=codes, m=messages: m[int(c[row])])
        out[column] = values

    for column in ("MDMWorkloads",):
        values, bad, codes, messages = _map_distinct(raw[column], parse_number)
        note(column, bad, raw[column], lambda row, c=codes, m=messages: m[int(c[row])])
        out[column] = values

    values, bad, codes, messages = _map_distinct(
        raw["EnrollmentStatusCode"], parse_status_code, text=True
    )
    note(
        "EnrollmentStatusCode",
        bad,
        raw["EnrollmentStatusCode"],
        lambda row, c=codes, m=messages: m[int(c[row])],
    )
    out["EnrollmentStatusCode"] = values

    for column in DATE_COLUMNS:
        values, bad = parse_dates(raw[column])
        note(
            column,
            bad,
            raw[column],
            lambda row: "is not a date (expected 2026-11-20 13:45:12.000 or ISO 8601)",
        )
        out[column] = values

    out["ProductType"], _, _, _ = _map_distinct(raw["ProductType"], parse_product_type)
    out["BuildNumber"], _, _, _ = _map_distinct(raw["Build"], parse_build_number)

    # NT version depends on two columns: parse each distinct (name, build) pair once.
    os_codes, os_names = distinct(raw["OperatingSystem"])
    build_codes, builds = distinct(raw["Build"])
    width = len(builds) + 1
    pairs, distinct_pairs = pd.factorize((os_codes.astype(np.int64) + 1) * width + build_codes + 1)
    os_names, builds = [None, *os_names], [None, *builds]
    nt = [
        parse_nt_version(os_names[pair // width], builds[pair % width]) for pair in distinct_pairs
    ]
    out["NTVersion"] = _categorical_from(nt, pairs)

    # Repeating text becomes categorical (a few distinct values per million rows); names
    # and Entra IDs are unique and stay Arrow strings.
    for column in REPEATING_TEXT:
        out[column] = recoded(raw[column], lambda v: None if is_null(v) else str(v))
    for column in UNIQUE_TEXT:
        out[column] = text_or_none(raw[column])
    if "SiteCode" in raw.columns:
        out["SiteCode"] = recoded(raw["SiteCode"], lambda v: None if is_null(v) else str(v).strip())

    # Text columns stay Arrow-backed Series: converting them to numpy objects costs seconds.
    frame = pd.DataFrame(
        {k: (v.reset_index(drop=True) if isinstance(v, pd.Series) else v) for k, v in out.items()},
        copy=False,
    )
    problems = []
    if first_bad:
        lines = line_numbers()
        problems = [
            Problem(int(lines[row]), column, value, message, unit)
            for row, column, value, message in sorted(first_bad)[:EXAMPLES_KEPT]
        ]
    kept = np.flatnonzero(~bad_any)
    if bad_any.any():
        frame = frame.iloc[kept].reset_index(drop=True)
    return ParseResult(
        frame=frame,
        kept=kept,
        line_numbers=line_numbers,
        unit=unit,
        dropped=int(bad_any.sum()),
        problems=problems,
        reasons=reasons,
    )
