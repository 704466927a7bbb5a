"""ODBC connection strings (``odbc = "Driver=...;..."``) read through a real ODBC driver:
Debian's SQLite driver over the SQLite replicas, with exactly the code that reads SQL Server
(connection, query text, timeouts, errors, password redaction)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dashboard import settings as settings_module
from dashboard.data import sql_source
from dashboard.data.contract import DEVICE_COLUMNS, parse_devices
from dashboard.data.estate import LoadError, load_estate
from dashboard.data.sample import COLLECTIONS, write_config
from dashboard.data.sql_source import (
    SourceError,
    fetch_odbc,
    fetch_sql,
    odbc_connection_string,
    query_text,
)
from dashboard.model.summary import summarize
from dashboard.settings import SettingsError, load_settings, settings_from_dict

PROJECT = Path(__file__).resolve().parents[2]
COLLECTION_IDS = [c for c, _ in COLLECTIONS]
SECRET = "Odbc-S3cret!"


def odbc(path: Path, driver: str = "SQLite3", extra: str = "") -> str:
    return f"Driver={driver};Database={path}{extra}"


def plain(frame):
    """Values as Python objects (categoricals and Arrow strings alike), to compare."""
    return frame.astype(object).where(frame.notna(), None)


def summary_of(config: Path) -> dict:
    estate = load_estate(load_settings(config, environ={}))
    summary = summarize(estate.devices, [s.as_dict() for s in estate.sources], estate.data_as_of)
    summary.pop("sources")
    return summary


# --------------------------------------------------------------------------- the same estate


def test_odbc_reads_what_sqlite_and_csv_read(
    small_estate, small_replicas, small_csv, sqlite_odbc_driver, tmp_path, monkeypatch
):
    """One estate read four ways (CSV exports, the replica through ADBC and through Python's
    sqlite3, the replica through the ODBC driver) gives one summary."""
    csv_config = write_config(small_estate, tmp_path / "csv-config")
    text = csv_config.read_text()
    for site, folder in small_csv.items():
        text = text.replace(f'csv = "{site}"', f'csv = "{folder}"')
    csv_config.write_text(text)
    url_config = write_config(small_estate, tmp_path / "url", small_replicas)
    odbc_config = tmp_path / "odbc" / "comanage.toml"
    odbc_config.parent.mkdir()
    text = url_config.read_text()
    for path in small_replicas.values():
        text = text.replace(
            f'url = "sqlite:///{path.resolve().as_posix()}"',
            f'odbc = "{odbc(path.resolve(), sqlite_odbc_driver)}"',
        )
    assert text.count("odbc = ") == 2
    odbc_config.write_text(text)

    from_csv, from_url, from_odbc = (summary_of(c) for c in (csv_config, url_config, odbc_config))
    with monkeypatch.context() as patch:
        patch.setattr(sql_source, "_adbc_available", lambda: False)
        from_sqlite3 = summary_of(url_config)
    assert from_csv["devices"] > 0
    assert from_odbc == from_url == from_sqlite3 == from_csv

    estate = load_estate(load_settings(odbc_config, environ={}))
    assert [(s.kind, s.dropped) for s in estate.sources] == [("sql", 0), ("sql", 0)]
    assert all(s.location.startswith("Driver=SQLite3;Database=") for s in estate.sources)


def test_fetch_odbc_matches_fetch_sql_row_for_row(small_replicas, sqlite_odbc_driver):
    path = small_replicas["PS2"]
    devices, members = fetch_odbc(odbc(path, sqlite_odbc_driver), COLLECTION_IDS)
    sql_devices, sql_members = fetch_sql(f"sqlite:///{path}", COLLECTION_IDS)
    assert list(devices.columns) == list(DEVICE_COLUMNS)
    left, right = parse_devices(devices), parse_devices(sql_devices)
    assert left.dropped == right.dropped == 0
    import pandas as pd

    pd.testing.assert_frame_equal(
        left.frame, right.frame, check_dtype=False, check_categorical=False
    )
    assert plain(members).astype(str).equals(plain(sql_members).astype(str))
    assert len(members) > 0


# --------------------------------------------------------------------------- one bad value


@pytest.fixture
def bad_replica(small_replicas, tmp_path):
    """A copy of PS1's replica where one device's MDMWorkloads is 'abc' (SQLite stores what
    it is given; on SQL Server it would be a text column that a CAST fails on)."""
    path = tmp_path / "bad.sqlite"
    path.write_bytes(small_replicas["PS1"].read_bytes())
    connection = sqlite3.connect(path)
    rid = connection.execute(
        "SELECT MAX(ResourceID) FROM v_ClientCoManagementState WHERE MDMWorkloads IS NOT NULL"
    ).fetchone()[0]
    connection.execute(
        "UPDATE v_ClientCoManagementState SET MDMWorkloads = 'abc' WHERE ResourceID = ?", (rid,)
    )
    connection.commit()
    total = connection.execute(
        "SELECT COUNT(*) FROM v_R_System WHERE COALESCE(Obsolete0, 0) <> 1"
    ).fetchone()[0]
    connection.close()
    return path, rid, total


@pytest.mark.parametrize("form", ["url", "odbc"])
def test_one_bad_value_drops_one_row_and_the_rest_loads(
    bad_replica, form, tmp_path, sqlite_odbc_driver
):
    path, rid, total = bad_replica
    source = (
        {"url": f"sqlite:///{path}"} if form == "url" else {"odbc": odbc(path, sqlite_odbc_driver)}
    )
    settings = settings_from_dict(
        {"sources": [{"site": "PS1", **source}], "as_of": "2026-11-23T07:00:00Z"},
        tmp_path / "c.toml",
    )
    estate = load_estate(settings)
    report = estate.sources[0]
    assert report.rows == total
    assert report.dropped == 1
    assert len(estate.devices) == total - 1
    assert rid not in set(estate.devices["ResourceID"])
    assert report.reasons == {"bad MDMWorkloads": 1}
    [problem] = report.problems
    assert problem.startswith("devices.sql result row ")
    assert problem.endswith('MDMWorkloads "abc" is not a whole number')


# --------------------------------------------------------------------------- query text


def test_query_text_has_no_comments_and_no_trailing_semicolon():
    raw = (PROJECT / "queries" / "devices.sql").read_text()
    assert "--" in raw and ";" in raw  # the file keeps its documentation
    sent = query_text(raw)
    assert "--" not in sent and ";" not in sent
    assert sent.startswith("WITH os_latest AS (") and sent.endswith("ORDER BY s.ResourceID")
    # literals and quoted names keep what looks like comments or separators
    assert (
        query_text("SELECT '--a;b' AS [x--;y], \"q;--\" -- note; here\n/* c; */ FROM t;\n")
        == "SELECT '--a;b' AS [x--;y], \"q;--\"\n  FROM t"
    )


def test_the_driver_refuses_a_commented_query_so_every_source_strips_them(
    small_replicas, sqlite_odbc_driver, tmp_path, monkeypatch
):
    """Why the comments go: this driver splits on every ';', comments included."""
    import arrow_odbc

    raw = (PROJECT / "queries" / "devices.sql").read_text()
    with pytest.raises(arrow_odbc.Error, match="only one SQL statement allowed"):
        list(
            arrow_odbc.read_arrow_batches_from_odbc(
                raw, odbc(small_replicas["PS1"], sqlite_odbc_driver)
            )
        )
    # the query folder is whatever settings.QUERIES_DIR names: a copy loads the same
    copy = tmp_path / "queries"
    copy.mkdir()
    for name in ("devices.sql", "collections.sql"):
        (copy / name).write_text((PROJECT / "queries" / name).read_text() + "\n-- end; done\n")
    monkeypatch.setattr(settings_module, "QUERIES_DIR", copy)
    devices, _ = fetch_odbc(odbc(small_replicas["PS1"], sqlite_odbc_driver), ["SMS00001"])
    assert len(devices) > 0


# --------------------------------------------------------------------------- errors


def test_missing_database_file_is_named_and_never_created(tmp_path, sqlite_odbc_driver):
    missing = tmp_path / "nowhere.sqlite"
    with pytest.raises(SourceError) as info:
        fetch_odbc(odbc(missing, sqlite_odbc_driver), COLLECTION_IDS)
    assert str(info.value) == (
        f"cannot connect to Driver=SQLite3;Database={missing}: database file not found ({missing})"
    )
    assert not missing.exists()


def test_wrong_driver_name_is_one_clear_line(small_replicas):
    with pytest.raises(SourceError) as info:
        fetch_odbc(
            odbc(small_replicas["PS1"], "{No Such Driver 99}", f";PWD={SECRET}"), COLLECTION_IDS
        )
    message = str(info.value)
    assert message == (
        f"cannot connect to Driver={{No Such Driver 99}};Database="
        f"{small_replicas['PS1']};PWD=***: ODBC driver 'No Such Driver 99' is "
        "not installed (odbcinst -q -d lists the installed ones)"
    )


def test_query_error_names_the_view(tmp_path, sqlite_odbc_driver):
    path = tmp_path / "empty.sqlite"
    sqlite3.connect(path).close()
    with pytest.raises(
        SourceError,
        match=r"^missing view v_\w+ \(devices\.sql\): is this a "
        "Configuration Manager site database\\?$",
    ):
        fetch_odbc(odbc(path, sqlite_odbc_driver), COLLECTION_IDS)


def test_password_never_shows_in_errors(tmp_path, sqlite_odbc_driver, monkeypatch):
    """The password from the string and the one from password_env: neither in the error,
    nor in the load error the dashboard shows."""
    path = tmp_path / "empty.sqlite"
    sqlite3.connect(path).close()
    for text, password in (
        (odbc(path, sqlite_odbc_driver, f";PWD={{{SECRET}}}"), None),
        (odbc(path, sqlite_odbc_driver, ";UID=reader"), SECRET),
    ):
        with pytest.raises(SourceError) as info:
            fetch_odbc(text, COLLECTION_IDS, password=password)
        assert SECRET not in str(info.value)
    monkeypatch.setenv("COMANAGE_TEST_ODBC_PASSWORD", SECRET)
    settings = settings_from_dict(
        {
            "sources": [
                {
                    "site": "PS1",
                    "odbc": odbc(
                        tmp_path / "gone.sqlite", sqlite_odbc_driver, f";UID=u;PWD={SECRET}"
                    ),
                    "password_env": "COMANAGE_TEST_ODBC_PASSWORD",
                }
            ]
        },
        tmp_path / "c.toml",
    )
    with pytest.raises(LoadError) as info:
        load_estate(settings)
    assert SECRET not in str(info.value) and "PWD=***" in str(info.value)
    assert str(info.value).startswith("site PS1: cannot connect to Driver=SQLite3;")


def test_query_timeout(small_replicas, sqlite_odbc_driver):
    # SQLite's driver ignores the ODBC query timeout that SQL Server's honours: the deadline
    # is also checked while the result streams in.
    with pytest.raises(SourceError, match=r"^query timed out after 1e-06 s \(devices\.sql\)$"):
        fetch_odbc(
            odbc(small_replicas["PS1"], sqlite_odbc_driver), COLLECTION_IDS, timeout_seconds=1e-6
        )


# --------------------------------------------------------------------------- the string


def test_connection_string_is_read_only_by_construction():
    sql_server = (
        "Driver={ODBC Driver 18 for SQL Server};Server=SQL01;Database=CM_PS1;Trusted_Connection=yes"
    )
    assert odbc_connection_string(sql_server) == sql_server + ";ApplicationIntent=ReadOnly"
    kept = sql_server + ";ApplicationIntent=ReadOnly;"
    assert odbc_connection_string(kept) == kept.rstrip(";")
    assert odbc_connection_string("Driver=SQLite3;Database=/x.sqlite") == (
        "Driver=SQLite3;Database=/x.sqlite;NoCreat=1"
    )
    # password_env's value replaces a PWD in the string, braced so ';' and '}' survive
    assert odbc_connection_string(
        "Driver={SQL Server};Server=h;UID=u;PWD=old", password="a;b}c"
    ) == ("Driver={SQL Server};Server=h;UID=u;PWD={a;b}}c};ApplicationIntent=ReadOnly")


def test_settings_accept_the_odbc_form(tmp_path):
    settings = settings_from_dict(
        {
            "sources": [
                {
                    "site": "PS1",
                    "odbc": "Driver={ODBC Driver 18 for SQL Server};Server=SQL01;"
                    "Database=CM_PS1;Trusted_Connection=yes;"
                    "ApplicationIntent=ReadOnly",
                },
                {
                    "site": "PS2",
                    "odbc": "Driver=SQLite3;Database=replica.sqlite",
                    "password_env": "PS2_PASSWORD",
                },
            ]
        },
        tmp_path / "comanage.toml",
    )
    first, second = settings.sources
    assert first.kind == "sql" and first.url is None and first.odbc.startswith("Driver={ODBC")
    # a SQLite file, like a sqlite URL's, is relative to the config file's folder
    assert second.odbc == f"Driver=SQLite3;Database={{{(tmp_path / 'replica.sqlite')}}}"
    assert second.password_env == "PS2_PASSWORD"
    for entry, message in (
        ({"odbc": "Server=SQL01;Database=CM_PS1"}, "must name a Driver"),
        ({"odbc": "Driver=x", "url": "sqlite:///x"}, "exactly one of"),
        ({"odbc": "Driver=x", "password_env": "not a name"}, "must name an environment"),
        ({"odbc": ""}, "must be one connection string"),
    ):
        with pytest.raises(SettingsError, match=message):
            settings_from_dict({"sources": [{"site": "PS1", **entry}]}, tmp_path / "c.toml")


# --------------------------------------------------------------------------- pyodbc


def test_pyodbc_reads_the_same_string_where_arrow_odbc_cannot_load(bad_replica, sqlite_odbc_driver):
    """pyodbc stays the driver where arrow-odbc cannot be loaded: same string, same text."""
    path, _rid, total = bad_replica
    code = f"""
        import sys
        sys.modules["arrow_odbc"] = None   # what a machine without arrow-odbc sees
        from dashboard.data.sql_source import fetch_odbc, SourceError
        from dashboard.data.contract import parse_devices
        devices, members = fetch_odbc({odbc(path, sqlite_odbc_driver)!r}, ["SMS00001"])
        parsed = parse_devices(devices, unit="row")
        print(len(devices), parsed.dropped, parsed.problems[0].value, len(members))
        try:
            fetch_odbc({odbc(path, sqlite_odbc_driver)!r}, ["SMS00001"], timeout_seconds=1e-6)
        except SourceError as error:
            print(error)
        assert "arrow_odbc" not in sys.modules or sys.modules["arrow_odbc"] is None
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    counts, timeout = result.stdout.strip().splitlines()
    rows, dropped, value, members = counts.split()
    assert (int(rows), int(dropped), value) == (total, 1, "abc") and int(members) > 0
    assert timeout == "query timed out after 1e-06 s (devices.sql)"


def test_a_long_text_value_loads_whole(small_replicas, sqlite_odbc_driver, tmp_path):
    """A value longer than the first buffer arrow-odbc binds (which it refuses rather than
    cut) is read again with a larger one: nothing lost, nothing cut."""
    path = tmp_path / "long.sqlite"
    path.write_bytes(small_replicas["PS1"].read_bytes())
    connection = sqlite3.connect(path)
    rid = connection.execute("SELECT MIN(ResourceID) FROM v_ClientCoManagementState").fetchone()[0]
    detail = "0x80180002 " + "x" * 3_000
    connection.execute(
        "UPDATE v_ClientCoManagementState SET EnrollmentErrorDetail = ? WHERE ResourceID = ?",
        (detail, rid),
    )
    connection.commit()
    connection.close()
    devices, _ = fetch_odbc(odbc(path, sqlite_odbc_driver), ["SMS00001"])
    parsed = parse_devices(devices)
    assert parsed.dropped == 0
    row = parsed.frame.loc[parsed.frame["ResourceID"] == rid]
    assert row["EnrollmentErrorDetail"].tolist() == [detail]
