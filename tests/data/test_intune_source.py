"""Reading Intune's records from an export (CSV or JSON) and the ``[intune]`` settings."""

from __future__ import annotations

import codecs
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from dashboard.data.intune_source import (
    IntuneError,
    agent_name,
    compliance_name,
    load_intune,
    read_intune_file,
)
from dashboard.settings import SettingsError, settings_from_dict

NOW = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
# As PowerShell 7's Export-Csv writes Get-MgDeviceManagementManagedDevice: a #TYPE line in
# Windows PowerShell, PascalCase names, every field quoted, extra columns.
HEADER = (
    '"Id","DeviceName","AzureAdDeviceId","ManagementAgent","ComplianceState",'
    '"LastSyncDateTime","EnrolledDateTime","OperatingSystem","OsVersion","UserPrincipalName",'
    '"Model"'
)
ROWS = [
    # id, name, Entra ID, agent, compliance, last sync, enrolled, OS
    ("i1", "PC1", "{ABCDEF01-0000-0000-0000-000000000001}", "configurationManagerClientMdm",
     "compliant", "2026-11-20T13:45:12Z", "2025-01-01T00:00:00Z", "Windows"),
    ("i2", "PC2", "00000000-0000-0000-0000-000000000000", "10.0", "255",
     "2026-11-20 13:45:12.000", "0001-01-01T00:00:00Z", " windows "),
    ("i3", "PC3", "", "mdm", "", "yesterday", "", "Windows"),
    ("i4", "iPhone", "", "mdm", "1", "", "", "iOS"),
    ("i5", "PC5", "", "99", "weird", "", "", "Windows"),
    ("i6", "PC6", "AbC", "someNewAgent", "2", "2017-01-01T00:02:49.3205976-08:00", "junk",
     "Windows"),
]  # fmt: skip


def csv_text(rows=ROWS, header=HEADER) -> str:
    lines = [header]
    lines += [",".join(f'"{value}"' for value in (*row, "", "", "Model X")) for row in rows]
    return "\n".join(lines) + "\n"


def write(tmp_path: Path, text: str | bytes, name: str = "intune.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_reading_order_and_normalisation(tmp_path):
    records = read_intune_file(write(tmp_path, csv_text()), now=NOW)
    frame = records.frame
    # i3's last sync is not a date: dropped; then the iPhone is left out (counted, not dropped).
    assert (records.records, records.dropped, records.windows) == (6, 1, 4)
    assert list(frame["id"]) == ["i1", "i2", "i5", "i6"]
    assert records.source == "intune.csv"
    assert records.loaded_at == "2026-11-23T07:00:00+00:00"
    assert records.problems == [
        'intune.csv line 4: lastSyncDateTime "yesterday" is not a date '
        "(expected ISO 8601, e.g. 2026-11-20T13:45:12Z)"
    ]
    assert frame["azureADDeviceId"].tolist()[0] == "abcdef01-0000-0000-0000-000000000001"
    assert frame["azureADDeviceId"].isna().tolist() == [False, True, True, False]
    assert frame["azureADDeviceId"].iloc[3] == "abc"
    assert frame["managementAgent"].tolist() == [
        "configurationManagerClientMdm",
        "configurationManagerClientMdm",
        "99",  # an unknown number is kept as its digits
        "someNewAgent",  # an unknown name is kept as written
    ]
    assert frame["comanaged"].tolist() == [True, True, False, False]
    assert frame["complianceState"].tolist() == [
        "compliant",
        "configManager",
        "unknown",
        "noncompliant",
    ]
    assert frame["lastSyncDateTime"].dtype == "datetime64[us]"
    assert frame["lastSyncDateTime"].tolist()[:2] == [pd.Timestamp("2026-11-20 13:45:12")] * 2
    assert pd.isna(frame["lastSyncDateTime"].iloc[2])  # empty: never synced
    assert frame["lastSyncDateTime"].iloc[3] == pd.Timestamp("2017-01-01 08:02:49.320597")
    # enrolledDateTime is shown only: year 1 ("never") and junk are no date, not a drop
    assert frame["enrolledDateTime"].tolist()[0] == pd.Timestamp("2025-01-01")
    assert frame["enrolledDateTime"].isna().tolist() == [False, True, True, True]
    assert isinstance(frame.index, pd.RangeIndex)
    assert frame["osVersion"].isna().all()


def test_a_bad_row_of_another_platform_counts_as_dropped(tmp_path):
    """The date is checked before the platform: a bad Android row is dropped, not left out."""
    rows = [("a", "Phone", "", "mdm", "1", "not a date", "", "Android"), ROWS[0]]
    records = read_intune_file(write(tmp_path, csv_text(rows)), now=NOW)
    assert (records.records, records.dropped, records.windows) == (2, 1, 1)


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("2", "mdm"),
        ("8", "configurationManagerClient"),
        ("10", "configurationManagerClientMdm"),
        ("11.0", "configurationManagerClientMdmEas"),
        ("CONFIGURATIONMANAGERCLIENTMDMEAS", "configurationManagerClientMdmEas"),
        ("64", "googleCloudDevicePolicyController"),
        ("12345", "12345"),
        ("", None),
    ],
)
def test_agent_names(raw, name):
    assert agent_name(raw) == name


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("0", "unknown"),
        ("1.0", "compliant"),
        ("2", "noncompliant"),
        ("3", "conflict"),
        ("4", "error"),
        ("254", "inGracePeriod"),
        ("255", "configManager"),
        ("INGRACEPERIOD", "inGracePeriod"),
        ("7", "unknown"),
        ("maybe", "unknown"),
        ("", "unknown"),
        (None, "unknown"),
    ],
)
def test_compliance_names(raw, name):
    assert compliance_name(raw) == name


def test_header_in_lower_case_and_optional_columns_absent(tmp_path):
    text = (
        "id,devicename,azureaddeviceid,managementagent,compliancestate,lastsyncdatetime,"
        "operatingsystem\nx,PC,,11,1,2026-11-20T13:45:12Z,Windows\n"
    )
    records = read_intune_file(write(tmp_path, text), now=NOW)
    assert records.windows == 1
    assert records.frame["comanaged"].tolist() == [True]
    assert records.frame["userPrincipalName"].isna().all()
    assert records.frame["enrolledDateTime"].isna().all()


def test_missing_required_column_fails_the_source(tmp_path):
    text = "id,deviceName,azureADDeviceId,managementAgent,lastSyncDateTime,operatingSystem\n"
    with pytest.raises(IntuneError, match=r"intune.csv: missing required column complianceState$"):
        read_intune_file(write(tmp_path, text))


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_encodings_and_type_line(tmp_path, encoding):
    """Windows PowerShell writes UTF-16 with a byte-order mark and a #TYPE line first."""
    rows = [(*ROWS[0][:1], "PC-Müller", *ROWS[0][2:])]
    text = "#TYPE Microsoft.Graph.PowerShell.Models.MicrosoftGraphManagedDevice\n" + csv_text(rows)
    records = read_intune_file(write(tmp_path, text.encode(encoding)), now=NOW)
    assert records.frame["deviceName"].tolist() == ["PC-Müller"]


def test_windows_1252(tmp_path):
    rows = [(*ROWS[0][:1], "PC-Müller", *ROWS[0][2:])]
    records = read_intune_file(write(tmp_path, csv_text(rows).encode("cp1252")), now=NOW)
    assert records.frame["deviceName"].tolist() == ["PC-Müller"]


def test_row_with_wrong_number_of_fields_is_dropped_and_named(tmp_path):
    text = csv_text([ROWS[0]]) + '"short","row"\n' + csv_text([ROWS[1]]).split("\n", 1)[1]
    records = read_intune_file(write(tmp_path, text), now=NOW)
    assert (records.records, records.dropped, records.windows) == (3, 1, 2)
    assert records.problems == ["intune.csv line 3: has 2 fields, the header has 11"]


def test_header_only_is_an_empty_source(tmp_path):
    records = read_intune_file(write(tmp_path, HEADER + "\n"), now=NOW)
    assert (records.records, records.dropped, records.windows) == (0, 0, 0)
    assert list(records.frame.columns)[:3] == ["id", "deviceName", "operatingSystem"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"file is empty \(0 bytes\)"),
        (b"[1, 2", "not valid JSON"),
        (b'{"devices": []}', "expected a list of records"),
        (b"[1, 2]", "every record must be a JSON object"),
    ],
)
def test_unreadable_json(tmp_path, content, message):
    with pytest.raises(IntuneError, match=message):
        read_intune_file(write(tmp_path, content, "intune.json"))


def test_missing_file(tmp_path):
    with pytest.raises(IntuneError, match=r"intune.csv: file not found$"):
        read_intune_file(tmp_path / "intune.csv")


def graph_record(row) -> dict:
    keys = ("id", "deviceName", "azureADDeviceId", "managementAgent", "complianceState")
    keys += ("lastSyncDateTime", "enrolledDateTime", "operatingSystem")
    return dict(zip(keys, row, strict=True))


@pytest.mark.parametrize("wrapped", [True, False])
def test_json_as_graph_returns_it_or_a_plain_list(tmp_path, wrapped):
    records = [graph_record(row) for row in ROWS]
    records[0]["managementAgent"] = 10  # numbers as JSON numbers
    records[1]["OSVERSION"] = "10.0.22631.1"  # any case
    records[4]["complianceState"] = None
    body = {"@odata.context": "x", "value": records} if wrapped else records
    read = read_intune_file(write(tmp_path, json.dumps(body), "intune.json"), now=NOW)
    assert (read.records, read.dropped, read.windows) == (6, 1, 4)
    assert read.frame["managementAgent"].iloc[0] == "configurationManagerClientMdm"
    assert read.frame["osVersion"].iloc[1] == "10.0.22631.1"
    assert read.frame["complianceState"].iloc[2] == "unknown"
    assert read.problems == [
        'intune.json record 3: lastSyncDateTime "yesterday" is not a date '
        "(expected ISO 8601, e.g. 2026-11-20T13:45:12Z)"
    ]


def test_json_missing_required_column(tmp_path):
    body = [{"id": "x", "deviceName": "PC"}]
    with pytest.raises(IntuneError, match=r"intune\.json: missing required column azureADDeviceId"):
        read_intune_file(write(tmp_path, json.dumps(body), "intune.json"))


def test_json_with_byte_order_mark(tmp_path):
    body = codecs.BOM_UTF8 + json.dumps([graph_record(ROWS[0])]).encode()
    assert read_intune_file(write(tmp_path, body, "intune.json"), now=NOW).windows == 1


def test_csv_and_json_agree(tmp_path):
    from_csv = read_intune_file(write(tmp_path, csv_text()), now=NOW).frame
    body = json.dumps([graph_record(row) for row in ROWS])
    from_json = read_intune_file(write(tmp_path, body, "intune.json"), now=NOW).frame
    columns = [c for c in from_csv.columns if c not in ("osVersion", "userPrincipalName")]
    pd.testing.assert_frame_equal(from_csv[columns], from_json[columns])


def test_load_intune_reads_the_configured_file(tmp_path):
    write(tmp_path, csv_text())
    (tmp_path / "devices").mkdir()
    settings = settings_from_dict(
        {"sources": [{"site": "PS1", "csv": "devices"}], "intune": {"file": "intune.csv"}},
        tmp_path / "comanage.toml",
    )
    assert settings.intune.file == (tmp_path / "intune.csv").resolve()
    assert settings.intune.stale_days == 7
    assert load_intune(settings.intune, tmp_path, NOW).windows == 4


# -- [intune] settings -----------------------------------------------------------------------

TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT = "66666666-7777-8888-9999-AAAAAAAAAAAA"


def intune(table: dict, tmp_path: Path = Path("/cfg")):
    raw = {"sources": [{"site": "PS1", "csv": "x"}], "intune": table}
    return settings_from_dict(raw, tmp_path / "comanage.toml").intune


def test_no_intune_table():
    assert settings_from_dict({"sources": [{"site": "PS1", "csv": "x"}]}).intune is None


def test_graph_settings(tmp_path):
    found = intune(
        {
            "tenant_id": TENANT,
            "client_id": CLIENT,
            "client_secret_env": "COMANAGE_INTUNE_SECRET",
            "stale_days": 14,
        },
        tmp_path,
    )
    assert found.kind == "graph"
    assert found.client_id == CLIENT.lower()
    assert found.stale_days == 14
    assert found.timeout_seconds == 300
    assert found.graph_url == "https://graph.microsoft.com"
    assert found.authority_url == "https://login.microsoftonline.com"
    with_certificate = intune(
        {"tenant_id": "contoso.onmicrosoft.com", "client_id": CLIENT, "certificate": "app.pem"},
        tmp_path,
    )
    assert with_certificate.certificate == (tmp_path / "app.pem").resolve()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            {"file": "intune.csv", "tenant_id": TENANT},
            "give either file or tenant_id/client_id, not both",
        ),
        (
            {"tenant_id": TENANT, "client_id": CLIENT, "client_secret": "s3cr3t-value"},
            "client_secret is not read from the config file.*client_secret_env",
        ),
        ({"tenant_id": TENANT, "client_id": CLIENT}, "give exactly one of client_secret_env"),
        (
            {
                "tenant_id": TENANT,
                "client_id": CLIENT,
                "client_secret_env": "X",
                "certificate": "a.pem",
            },
            "give exactly one of client_secret_env",
        ),
        (
            {"tenant_id": TENANT, "client_id": CLIENT, "client_secret_env": "s3cr3t~value!"},
            "client_secret_env must name an environment variable",
        ),
        ({"tenant_id": TENANT, "client_id": "app", "certificate": "a.pem"}, "client_id must be"),
        ({"tenant_id": "a b", "client_id": CLIENT, "certificate": "a.pem"}, "tenant_id must be"),
        ({"file": "intune.xlsx"}, "file must be a .csv or a .json"),
        ({"file": "intune.csv", "stale_days": -1}, "stale_days must be a whole number"),
        ({"file": "intune.csv", "stale_days": "7"}, "stale_days must be a whole number"),
        ({"file": "intune.csv", "timeout_seconds": 0}, "timeout_seconds must be"),
        ({"file": "intune.csv", "graph_url": "ftp://x"}, "graph_url must be an http"),
        ({"file": "intune.csv", "colour": "red"}, "unknown key 'colour'"),
        ({}, 'needs file = "intune.csv", or tenant_id and client_id'),
    ],
)
def test_settings_errors(table, message):
    with pytest.raises(SettingsError, match=message) as caught:
        intune(table)
    assert "\n" not in str(caught.value)
    assert "s3cr3t" not in str(caught.value)  # a secret written in the wrong place is not echoed
    assert str(caught.value).startswith("/cfg/comanage.toml: intune")


# -- many rows -----------------------------------------------------------------------------------


def test_a_large_file_of_mixed_rows_reads_whole(tmp_path):
    """Many records of Graph's date form and mixed agents: every row read, the Windows ones
    kept (the speed at a million records is measured by benchmarks/run.py, not here)."""
    n = 50_000
    rng = np.random.default_rng(1)
    agents = np.array(["configurationManagerClientMdm", "mdm", "10", "8"])
    systems = np.array(["Windows", "Windows", "Windows", "iOS"])
    frame = pd.DataFrame(
        {
            "id": [f"id-{i}" for i in range(n)],
            "deviceName": [f"PC-{i}" for i in range(n)],
            "azureADDeviceId": [f"{i:08x}-0000-0000-0000-000000000000" for i in range(n)],
            "managementAgent": agents[rng.integers(0, 4, n)],
            "complianceState": np.array(["compliant", "noncompliant", "2"])[rng.integers(0, 3, n)],
            "lastSyncDateTime": "2026-11-20T13:45:12Z",
            "enrolledDateTime": "2025-11-20T13:45:12Z",
            "operatingSystem": systems[rng.integers(0, 4, n)],
        }
    )
    path = tmp_path / "intune.csv"
    pacsv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), path)
    records = read_intune_file(path, now=NOW)
    assert records.records == n
    assert records.dropped == 0
    windows = frame["operatingSystem"] == "Windows"
    assert records.windows == int(windows.sum())
    comanaged = frame["managementAgent"].isin(["configurationManagerClientMdm", "10"])
    assert int(records.frame["comanaged"].sum()) == int((comanaged & windows).sum())
