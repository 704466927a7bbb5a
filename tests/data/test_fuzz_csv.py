"""Property tests of the CSV loader (issue 7): whatever bytes a folder holds, a load either
succeeds with consistent counts or fails with ``ContractError``/``LoadError`` carrying one
clear line that names the file; never another exception.

Kept quick for CI (``FUZZ_EXAMPLES``, 200 by default); ``benchmarks/fuzz.py`` runs the same
strategies with many more examples.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboard.data.contract import DEVICE_COLUMNS, MEMBERSHIP_COLUMNS, ContractError
from dashboard.data.estate import LoadError, load_estate
from dashboard.model.summary import summarize
from dashboard.settings import settings_from_dict

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ENCODINGS = ("utf-8", "utf-8-sig", "utf-16", "utf-16-le-bom", "utf-16-be-bom", "cp1252")
COLLECTION = "CAS00101"

# -- strategies ---------------------------------------------------------------------------------

flags = st.sampled_from(
    [
        "1",
        "0",
        "1.0",
        "0.0",
        "True",
        "false",
        "YES",
        "no",
        "",
        "NULL",
        "null",
        "2",
        "maybe",
        " 1 ",
        "-1",
    ]
)
numbers = st.one_of(
    st.integers(-(2**63), 2**64).map(str),
    st.sampled_from(["8193", "8193.0", "0x2001", "", "NULL", "1e3", "-0", "NaN", "inf", "١٢"]),
)
codes = st.one_of(
    st.sampled_from(
        [
            "0x8018002A",
            "-2145910774",
            "2149056522",
            "8018002a",
            "0x",
            "0xZZ",
            "",
            "NULL",
            "0x1FFFFFFFFF",
            "12.0",
        ]
    ),
    st.integers(-(2**40), 2**40).map(str),
)
dates = st.sampled_from(
    [
        "2026-11-20 13:45:12.000",
        "2026-11-20T13:45:12Z",
        "2026-11-20",
        "",
        "NULL",
        "yesterday",
        "2026-13-45 99:99:99",
        "0000-00-00",
        "9999-12-31 23:59:59.999",
        "1900-01-01",
    ]
)
builds = st.sampled_from(
    [
        "10.0.19045",
        "19045",
        "10.0.22631.4651",
        "10.0",
        "6.1.7601",
        "",
        "abc",
        "10.0.x",
        "1.2.3.4.5.6",
    ]
)
os_names = st.sampled_from(
    [
        "Microsoft Windows NT Workstation 10.0",
        "Microsoft Windows NT Server 10.0",
        "Microsoft Windows NT Workstation 6.1",
        "",
        "NULL",
        "Linux",
        "Workstation 10.0 (Tablet Edition)",
    ]
)
text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)
tricky_text = st.one_of(
    text,
    st.sampled_from(
        [
            "a,b",
            'say "hi"',
            "line\nbreak",
            "tab\there",
            "\r\n",
            "#TYPE x",
            "=1+1",
            "<b>x</b>",
            "",
            "NULL",
            "é€ÿ",
            "\ufeff",
        ]
    ),
)

VALUES = {
    "ResourceID": st.one_of(
        st.integers(-5, 2**40).map(str), st.sampled_from(["", "x", "1.0", "1.5", "16777216", " 7 "])
    ),
    "ProductType": st.sampled_from(["1", "2", "3", "4", "", "NULL", "x", "1.0"]),
    "Build": builds,
    "OperatingSystem": os_names,
    "MDMWorkloads": numbers,
    "EnrollmentStatusCode": codes,
    "LastPolicyRequest": dates,
    "LastActiveTime": dates,
}
FLAG_NAMES = (
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


def value_for(column: str):
    if column in VALUES:
        return st.one_of(VALUES[column], tricky_text) if column != "ResourceID" else VALUES[column]
    if column in FLAG_NAMES:
        return flags
    return tricky_text


@st.composite
def headers(draw) -> list[str]:
    """Usually the contract's columns (shuffled, case changed, extras); sometimes missing or
    repeated ones."""
    columns = list(DEVICE_COLUMNS) + (["SiteCode"] if draw(st.booleans()) else [])
    columns = draw(st.permutations(columns))
    if draw(st.integers(0, 9)) == 0:  # drop one: a missing required column
        columns = columns[:-1]
    if draw(st.booleans()):
        columns = [c.lower() if draw(st.booleans()) else c for c in columns]
    extras = draw(
        st.lists(st.one_of(text, st.sampled_from(["Name", "resourceid", ""])), max_size=3)
    )
    for extra in extras:
        columns.insert(draw(st.integers(0, len(columns))), extra)
    return columns


@st.composite
def device_tables(draw) -> list[list[str]]:
    header = draw(headers())
    rows = []
    for _ in range(draw(st.integers(0, 12))):
        row = [
            draw(value_for(next((c for c in DEVICE_COLUMNS if c.lower() == name.lower()), name)))
            for name in header
        ]
        if draw(st.integers(0, 15)) == 0:  # a row with the wrong number of fields
            row = row[:-1] if draw(st.booleans()) and row else [*row, "extra"]
        rows.append(row)
    return [header, *rows]


def to_csv(table: list[list[str]], type_line: bool) -> str:
    buffer = io.StringIO()
    if type_line:
        buffer.write("#TYPE System.Data.DataRow\r\n")
    csv.writer(
        buffer,
        lineterminator="\r\n",
        quoting=csv.QUOTE_ALL if len(table) % 2 else csv.QUOTE_MINIMAL,
    ).writerows(table)
    return buffer.getvalue()


def encode(content: str, encoding: str) -> bytes:
    if encoding == "utf-16-le-bom":
        return codecs.BOM_UTF16_LE + content.encode("utf-16-le", errors="surrogatepass")
    if encoding == "utf-16-be-bom":
        return codecs.BOM_UTF16_BE + content.encode("utf-16-be", errors="surrogatepass")
    return content.encode(encoding, errors="replace")


@st.composite
def device_files(draw) -> bytes:
    kind = draw(st.integers(0, 9))
    if kind == 0:  # anything at all
        return draw(st.binary(max_size=400))
    content = to_csv(draw(device_tables()), type_line=draw(st.integers(0, 5)) == 0)
    data = encode(content, draw(st.sampled_from(ENCODINGS)))
    if kind == 1 and data:  # damage: cut, or flip a byte
        cut = draw(st.integers(0, len(data)))
        data = (
            data[:cut]
            if draw(st.booleans())
            else data[:cut] + bytes([draw(st.integers(0, 255))]) + data[cut + 1 :]
        )
    return data


@st.composite
def membership_files(draw) -> bytes | None:
    if draw(st.booleans()):
        return None
    rows = [list(draw(st.permutations(MEMBERSHIP_COLUMNS)))]
    rows.extend(
        [
            draw(st.one_of(st.integers(-3, 30).map(str), tricky_text, st.just(COLLECTION)))
            for _ in MEMBERSHIP_COLUMNS
        ]
        for _ in range(draw(st.integers(0, 6)))
    )
    if draw(st.integers(0, 7)) == 0:
        rows[0] = rows[0][:-1]
    return encode(to_csv(rows, False), draw(st.sampled_from(ENCODINGS)))


# -- the property -------------------------------------------------------------------------------


def check_folder(devices: bytes, memberships: bytes | None) -> str:
    """Load a folder holding these files: 'loaded' or 'refused'; anything else raises."""
    with tempfile.TemporaryDirectory() as folder:
        site = Path(folder) / "PS1"
        site.mkdir()
        (site / "devices.csv").write_bytes(devices)
        if memberships is not None:
            (site / "collections.csv").write_bytes(memberships)
        settings = settings_from_dict(
            {
                "as_of": "2026-11-20T12:00:00Z",
                "sources": [{"site": "PS1", "csv": "PS1"}],
                "collections": {"filter": [COLLECTION]},
            },
            Path(folder) / "comanage.toml",
        )
        try:
            estate = load_estate(settings)
        except (ContractError, LoadError) as error:
            message = str(error)
            assert message.strip(), "an empty error message"
            assert "\n" not in message, f"not one line: {message!r}"
            assert "devices.csv" in message or "collections.csv" in message, message
            return "refused"
        report = estate.sources[0]
        assert 0 <= report.dropped <= report.rows
        assert len(estate.devices) == report.rows - report.dropped
        assert not estate.devices.duplicated(["site", "ResourceID"]).any()
        assert len(report.problems) <= 5
        summary = summarize(
            estate.devices, [s.as_dict() for s in estate.sources], estate.data_as_of
        )
        assert summary["devices"] == len(estate.devices)
        assert estate.collection_mask(COLLECTION).sum() <= len(estate.devices)
        return "loaded"


@FUZZ
@given(devices=device_files(), memberships=membership_files())
def test_any_folder_loads_or_fails_cleanly(devices, memberships):
    check_folder(devices, memberships)


@FUZZ
@given(data=st.binary(max_size=600))
def test_random_bytes_load_or_fail_cleanly(data):
    check_folder(data, None)


@settings(max_examples=max(20, EXAMPLES // 4), deadline=None, database=None)
@given(table=device_tables(), encoding=st.sampled_from(ENCODINGS))
def test_every_encoding_reads_the_same_rows(table, encoding):
    """A table written in any supported encoding loads to the same devices as in UTF-8
    (when the text survives the encoding: cp1252 cannot hold every character)."""
    content = to_csv(table, type_line=False)
    if encoding == "cp1252":
        try:
            content.encode("cp1252")
        except UnicodeEncodeError:
            return
    reference = check_folder(encode(content, "utf-8"), None)
    assert check_folder(encode(content, encoding), None) == reference


def test_known_awkward_files():
    """Fixed cases the strategies found or should keep finding."""
    header = ",".join(DEVICE_COLUMNS)
    cases = {
        b"": "refused",
        b"\xef\xbb\xbf": "refused",  # a BOM alone
        codecs.BOM_UTF16_LE + b"\x00": "refused",  # an odd UTF-16 byte count
        header.encode() + b"\r\n": "loaded",  # header only: an empty estate
        ("#TYPE x\n" + header + "\n").encode("utf-16"): "loaded",
        b"\n\n\n": "refused",
        b'"unterminated': "refused",
        (header + "\n" + ",".join(["1"] * len(DEVICE_COLUMNS)) + "\n").encode("cp1252"): "loaded",
    }
    for data, expected in cases.items():
        assert check_folder(data, None) == expected, data[:40]
