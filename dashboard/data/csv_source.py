"""Reading CSV exports of ``queries/*.sql`` (the export contract, docs/definitions.md §5).

Real exports come from SSMS, ``Invoke-Sqlcmd | Export-Csv`` and Excel: UTF-8 with or without a
byte-order mark, UTF-16 from Windows PowerShell, Windows-1252 from SSMS on Western European
servers, a ``#TYPE`` line first, every field quoted. pyarrow reads all of them as text fast;
the contract module types the values.
"""

from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from .contract import (
    DEVICE_COLUMNS,
    MEMBERSHIP_COLUMNS,
    OPTIONAL_DEVICE_COLUMNS,
    REPEATING_COLUMNS,
    ContractError,
    raw_frame,
)

DEVICES_FILE = "devices.csv"
COLLECTIONS_FILE = "collections.csv"


def _encoding(head: bytes) -> tuple[str, int]:
    """(encoding, bytes of byte-order mark) from the first bytes of a file."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8", 3
    if head.startswith(codecs.BOM_UTF16_LE):
        return "utf-16-le", 2
    if head.startswith(codecs.BOM_UTF16_BE):
        return "utf-16-be", 2
    return "utf-8", 0


def _decoded_bytes(path: Path) -> bytes:
    """The file as UTF-8 bytes without a byte-order mark (transcoding when needed)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ContractError(f"{path}: file not found") from None
    except OSError as error:
        raise ContractError(f"{path}: cannot read ({error.strerror})") from None
    if not data:
        raise ContractError(f"{path}: file is empty (0 bytes)")
    encoding, bom = _encoding(data[:4])
    if encoding == "utf-8":
        body = data[bom:]
        if body.isascii():  # most exports: nothing to check, and checking ASCII is cheap
            return body
        try:
            body.decode("utf-8")
            return body
        except UnicodeDecodeError:
            # Not UTF-8: SSMS on Western European servers writes Windows-1252.
            return body.decode("cp1252", errors="replace").encode("utf-8")
    try:
        return data[bom:].decode(encoding).encode("utf-8")
    except UnicodeDecodeError as error:
        raise ContractError(f"{path}: not valid {encoding.upper()} ({error.reason})") from None


class CsvTable:
    """The text of one CSV file: header, rows as strings and each row's line number."""

    def __init__(
        self,
        path: Path,
        required: tuple[str, ...],
        optional: tuple[str, ...] = (),
        repeating: tuple[str, ...] = (),
    ):
        """``repeating`` columns are read as categoricals (dictionary-encoded by the reader:
        a few distinct values per million rows cost almost nothing to type later)."""
        self.path = path
        self.repeating = repeating
        body = _decoded_bytes(path)
        skip = 0
        if body.lstrip().startswith(b"#TYPE"):
            skip = 1
        self.body = body
        self.skip = skip
        header = self._header()
        canonical = {name.lower(): name for name in required + optional}
        self.columns: dict[str, str] = {}  # canonical name -> name in file
        for name in header:
            key = name.strip().lower()
            if key in canonical and canonical[key] not in self.columns:
                self.columns[canonical[key]] = name
        missing = [name for name in required if name not in self.columns]
        if missing:
            raise ContractError(
                f"{path}: missing required column {missing[0]}"
                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            )
        self.invalid: list[tuple[int | None, str]] = []
        self.frame = self._read(header)

    def _header(self) -> list[str]:
        text = io.StringIO(self.body[:65536].decode("utf-8", errors="replace"))
        reader = csv.reader(text)
        try:
            for _ in range(self.skip):
                next(reader)
            header = next(reader)
        except StopIteration:
            raise ContractError(f"{self.path}: no header line") from None
        except csv.Error as error:
            raise ContractError(f"{self.path}: cannot read the header ({error})") from None
        if not any(cell.strip() for cell in header):
            raise ContractError(f"{self.path}: no header line")
        return header

    def _read(self, header: list[str]) -> pd.DataFrame:
        def invalid_row(row) -> str:
            self.invalid.append(
                (
                    row.number,
                    f"has {row.actual_columns} fields, the header has {row.expected_columns}",
                )
            )
            return "skip"

        wanted = list(self.columns.values())
        dictionary = pa.dictionary(pa.int32(), pa.string())
        types = {name: pa.string() for name in header}
        types.update(
            {self.columns[name]: dictionary for name in self.repeating if name in self.columns}
        )
        try:
            table = pacsv.read_csv(
                io.BytesIO(self.body),
                read_options=pacsv.ReadOptions(
                    skip_rows=self.skip, column_names=None, block_size=1 << 24
                ),
                parse_options=pacsv.ParseOptions(
                    newlines_in_values=True, invalid_row_handler=invalid_row
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types=types,
                    include_columns=wanted,
                    strings_can_be_null=False,
                    null_values=[],
                    quoted_strings_can_be_null=False,
                ),
            )
        except (pa.ArrowInvalid, pa.ArrowKeyError) as error:
            raise ContractError(f"{self.path}: cannot parse as CSV ({error})") from None
        frame = raw_frame(
            table, tuple(self.columns[name] for name in self.repeating if name in self.columns)
        )
        return frame.rename(columns={v: k for k, v in self.columns.items()})

    def line_numbers(self) -> np.ndarray:
        """Each data row's first physical line (1-based), for messages.

        Counting records is exact only when no quoted field holds a line break and no row
        was skipped, so the slower exact pass (the csv module) runs only otherwise; it also
        gives skipped rows their line numbers (pyarrow does not when values hold newlines).
        """
        n = len(self.frame)
        first = 1 + self.skip + 1  # the #TYPE line, the header, then data
        if not self.invalid and (b'"' not in self.body or b"\n" not in self.body):
            return np.arange(first, first + n)
        text = io.StringIO(self.body.decode("utf-8", errors="replace"), newline="")
        reader = csv.reader(text)
        header = []
        for _ in range(self.skip + 1):
            header = next(reader, [])
        good, bad = [], []
        line = reader.line_num + 1
        for row in reader:
            if row and row != [""]:
                (good if len(row) == len(header) else bad).append((line, len(row)))
            line = reader.line_num + 1
        if len(good) != n or len(bad) != len(self.invalid):
            return np.arange(first, first + n)  # disagreement: fall back to record order
        self.invalid = [
            (at, f"has {count} fields, the header has {len(header)}") for at, count in bad
        ]
        return np.asarray([at for at, _ in good])


def fetch_csv(folder: Path) -> tuple[CsvTable, pd.DataFrame]:
    """Read ``devices.csv`` (required) and ``collections.csv`` (optional) from ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ContractError(f"{folder}: folder not found (expected {DEVICES_FILE} in it)")
    devices = CsvTable(
        folder / DEVICES_FILE, DEVICE_COLUMNS, OPTIONAL_DEVICE_COLUMNS, repeating=REPEATING_COLUMNS
    )
    memberships = pd.DataFrame({c: pd.Series(dtype="str") for c in MEMBERSHIP_COLUMNS})
    collections_path = folder / COLLECTIONS_FILE
    if collections_path.exists():
        table = CsvTable(
            collections_path, MEMBERSHIP_COLUMNS, repeating=("CollectionID", "CollectionName")
        )
        memberships = table.frame[list(MEMBERSHIP_COLUMNS)]
    return devices, memberships
