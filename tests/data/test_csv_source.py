"""CSV exports as real tools write them, and the CLI's behaviour on bad files (§5)."""

import codecs
import json
from pathlib import Path

import pytest

from dashboard.data.contract import DEVICE_COLUMNS
from dashboard.data.estate import load_estate
from dashboard.settings import settings_from_dict
from tests.helpers import run_cli

HEADER = ",".join(DEVICE_COLUMNS)
GOOD = (
    "16777220,LON-WS-1,CONTOSO,Microsoft Windows NT Workstation 10.0,10.0.19045,1,1,"
    "5.00.9128.1000,1,2026-11-20 13:45:12.000,2026-11-20 13:45:12.000,guid,1,0,1,1,1,0,0,0,"
    ",,8195"
)
FAILED = (
    "16777221,LON-WS-2,CONTOSO,Microsoft Windows NT Workstation 10.0,22631,1,True,"
    "5.00.9128.1000,True,2026-11-20T13:45:12Z,NULL,NULL,True,False,False,True,False,"
    "False,False,True,-2145910742,NULL,NULL"
)


def write_estate(
    tmp_path: Path, text: str | bytes, collections: str | None = None, encoding: str = "utf-8"
) -> dict:
    folder = tmp_path / "PS1"
    folder.mkdir(exist_ok=True)
    data = text if isinstance(text, bytes) else text.encode(encoding)
    (folder / "devices.csv").write_bytes(data)
    if collections is not None:
        (folder / "collections.csv").write_text(collections)
    return {
        "sources": [{"site": "PS1", "csv": str(folder)}],
        "collections": {"filter": ["SMS00001", "CAS00101"]},
    }


def load(tmp_path, *args, **kwargs):
    return load_estate(settings_from_dict(write_estate(tmp_path, *args, **kwargs)))


def test_plain_utf8(tmp_path):
    estate = load(tmp_path, f"{HEADER}\n{GOOD}\n{FAILED}\n")
    assert len(estate.devices) == 2
    assert estate.devices["comanaged"].tolist() == [True, False]
    assert estate.devices["error_code"].astype(str).tolist()[1] == "0x8018002A"


@pytest.mark.parametrize(
    "bom, encoding",
    [
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ],
)
def test_byte_order_marks(tmp_path, bom, encoding):
    text = f"{HEADER}\r\n{GOOD}\r\n{FAILED}\r\n"
    estate = load(tmp_path, bom + text.encode(encoding))
    assert len(estate.devices) == 2
    assert estate.devices["Name"].tolist() == ["LON-WS-1", "LON-WS-2"]


def test_powershell_export_csv(tmp_path):
    quoted = ",".join(f'"{c}"' for c in DEVICE_COLUMNS)
    rows = "\n".join(",".join(f'"{v}"' for v in row.split(",")) for row in (GOOD, FAILED))
    text = f"#TYPE System.Data.DataRow\n{quoted}\n{rows}\n"
    estate = load(tmp_path, text)
    assert len(estate.devices) == 2 and estate.sources[0].dropped == 0


def test_windows_1252(tmp_path):
    row = GOOD.replace("LON-WS-1", "MÜNCHEN-WS-1")
    estate = load(tmp_path, f"{HEADER}\n{row}\n".encode("cp1252"))
    assert estate.devices["Name"].tolist() == ["MÜNCHEN-WS-1"]


def test_quoted_fields_with_commas_and_line_breaks(tmp_path):
    row = FAILED.replace("NULL,NULL\n", "x").replace(
        "-2145910742,NULL", '-2145910742,"Line one,\nline two"'
    )
    bad = GOOD.replace("16777220", "abc")
    estate = load(tmp_path, f"{HEADER}\n{row}\n{bad}\n")
    assert estate.devices["EnrollmentErrorDetail"].tolist() == ["Line one,\nline two"]
    # the bad row starts on line 4 of the file because the quoted field spans two lines
    assert estate.sources[0].problems == [
        'devices.csv line 4: ResourceID "abc" is not a whole number'
    ]


def test_extra_columns_ignored_and_header_order_free(tmp_path):
    columns = [*list(reversed(DEVICE_COLUMNS)), "Extra"]
    values = dict(zip(DEVICE_COLUMNS, GOOD.split(","), strict=True))
    line = ",".join(values.get(c, "extra") for c in columns)
    estate = load(tmp_path, ",".join(columns) + "\n" + line + "\n")
    assert estate.devices["comanaged"].tolist() == [True]


def test_header_only_is_an_empty_estate(tmp_path):
    estate = load(tmp_path, HEADER + "\n")
    assert len(estate.devices) == 0


def test_site_code_column_overrides_label(tmp_path):
    line = GOOD + ",PS9"
    estate = load(tmp_path, HEADER + ",SiteCode\n" + line + "\n")
    assert estate.devices["site"].astype(str).tolist() == ["PS9"]


def test_wrong_field_count_drops_row(tmp_path):
    estate = load(tmp_path, f"{HEADER}\n{GOOD}\n1,2,3\n")
    assert len(estate.devices) == 1
    assert estate.sources[0].dropped == 1
    assert "line 3" in estate.sources[0].problems[0]


def test_collections_membership(tmp_path):
    estate = load(
        tmp_path,
        f"{HEADER}\n{GOOD}\n{FAILED}\n",
        collections="ResourceID,CollectionID,CollectionName\n"
        "16777220,SMS00001,All Systems\n16777221,SMS00001,All Systems\n"
        "16777221,CAS00101,Pilot\n16777221,CAS99999,Not configured\n",
    )
    assert estate.collection_mask("CAS00101").tolist() == [False, True]
    assert estate.mask(collection="SMS00001").sum() == 2
    assert estate.mask() is None
    assert estate.collection_names["CAS00101"] == "Pilot"


def config_for(tmp_path, text, encoding="utf-8") -> Path:
    write_estate(tmp_path, text, encoding=encoding)
    path = tmp_path / "comanage.toml"
    path.write_text(
        '[[sources]]\nsite = "PS1"\ncsv = "PS1"\n[collections]\nfilter = ["SMS00001"]\n'
    )
    return path


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "file is empty (0 bytes)"),
        (f"{','.join(DEVICE_COLUMNS[:-1])}\n".encode(), "missing required column MDMWorkloads"),
    ],
)
def test_cli_exit_2_on_unloadable_file(tmp_path, content, message):
    result = run_cli("summary", "--config", str(config_for(tmp_path, content)))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert message in result.stderr and "devices.csv" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_missing_folder_and_config(tmp_path):
    path = tmp_path / "comanage.toml"
    path.write_text('[[sources]]\nsite = "PS1"\ncsv = "nowhere"\n')
    result = run_cli("summary", "--config", str(path))
    assert result.returncode == 2 and "folder not found" in result.stderr
    result = run_cli("summary", "--config", str(tmp_path / "missing.toml"))
    assert result.returncode == 2 and "config file not found" in result.stderr


def test_cli_bad_rows_warn_and_exit_0(tmp_path):
    text = f"{HEADER}\n{GOOD}\n{GOOD.replace('16777220', 'abc')}\n{GOOD}\n"
    result = run_cli("summary", "--config", str(config_for(tmp_path, text)), "--format", "json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["devices"] == 1
    assert summary["sources"] == [{"site": "PS1", "kind": "csv", "rows": 3, "dropped": 2}]
    assert 'devices.csv line 3: ResourceID "abc" is not a whole number' in result.stderr
    assert 'devices.csv line 4: ResourceID "16777220" is repeated' in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_unknown_collection_exit_2(tmp_path):
    config = config_for(tmp_path, f"{HEADER}\n{GOOD}\n")
    result = run_cli("summary", "--config", str(config), "--collection", "CAS99999")
    assert result.returncode == 2 and "not named in the configuration" in result.stderr


def test_cli_table_shows_every_section_with_the_json_numbers():
    """The table a person reads says what the JSON says, attention included."""
    sample = Path(__file__).resolve().parents[2] / "sample_data" / "comanage.toml"
    table = run_cli("summary", "--config", str(sample), "--quiet")
    data = json.loads(
        run_cli("summary", "--config", str(sample), "--format", "json", "--quiet").stdout
    )
    assert table.returncode == 0, table.stderr
    text = table.stdout
    for heading in (
        "Client OS distribution",
        "Co-management status",
        "enrollment status",
        "Workload transition",
        "Enrollment errors",
        "not co-managed",
        "Devices that need attention",
    ):
        assert heading in text
    # The OS figures count client devices; the table says how many records they leave out.
    assert data["without_client"] > 0
    devices = text.split("\n\n")[1]
    assert "Without the ConfigMgr client" in devices and f"{data['without_client']:,}" in devices
    os_part = text.split("Client OS distribution (% of client devices)", 1)[1].split("\n\n")[0]
    assert (
        f"{data['without_client']:,} records without the ConfigMgr client are not counted"
    ) in os_part
    for group, number in data["os_groups"].items():
        line = next(line for line in os_part.splitlines() if group in line)
        clients = data["devices"] - data["without_client"]
        assert f"{number:,}" in line and f"{100 * number / clients:5.1f} %" in line
    attention = text.split("Devices that need attention", 1)[1]
    assert "Any rule" in attention and f"{data['attention_devices']:,}" in attention
    from dashboard.model.attention import RULES

    for rule in RULES:
        line = next(line for line in attention.splitlines() if rule.title in line)
        assert f"{data['attention'][rule.id]:,}" in line.split(")")[-1]
