"""dashboard.data.sql_source: fetch through queries/*.sql, read only, clear errors, no
password in any message, pyodbc only for SQL Server URLs."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote_plus

import pandas as pd
import pytest
from sqlalchemy import text

from dashboard.data import sql_source
from dashboard.data.contract import (
    DEVICE_COLUMNS,
    MEMBERSHIP_COLUMNS,
    REPEATING_COLUMNS,
    parse_devices,
)
from dashboard.data.sample import COLLECTIONS, export_devices, export_memberships
from dashboard.data.sql_source import SourceError, fetch_sql, make_engine, redact

PROJECT = Path(__file__).resolve().parents[2]
SECRET = "S3cret!"
MSSQL_URL = f"mssql+pyodbc://user:{SECRET}@sqlhost/CM_PS1?driver=ODBC+Driver+18+for+SQL+Server"
COLLECTION_IDS = [c for c, _ in COLLECTIONS]


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


# --------------------------------------------------------------------------- fetch


def text_values(column: pd.Series) -> pd.Series:
    """A raw column's values as text, whatever holds them (categorical, Arrow strings)."""
    return column.dropna().astype(object).astype(str)


def test_fetch_sql_returns_contract_text_and_memberships(small_estate, small_replicas):
    for site, path in small_replicas.items():
        devices, memberships = fetch_sql(sqlite_url(path), COLLECTION_IDS)
        assert list(devices.columns) == list(DEVICE_COLUMNS)
        # read as a CSV export's columns are: repeating ones categorical, the rest text
        for column in devices.columns:
            if column in REPEATING_COLUMNS:
                assert isinstance(devices[column].dtype, pd.CategoricalDtype), column
                assert pd.api.types.is_string_dtype(devices[column].cat.categories), column
            elif column != "ResourceID":
                assert pd.api.types.is_string_dtype(devices[column]), column
        assert list(memberships.columns) == list(MEMBERSHIP_COLUMNS)

        parsed = parse_devices(devices)
        assert parsed.dropped == 0
        expected = export_devices(small_estate, site)
        assert len(parsed.frame) == len(expected)
        assert parsed.frame["ResourceID"].tolist() == expected["ResourceID"].tolist()

        want = export_memberships(small_estate, site, COLLECTION_IDS)
        got = pd.DataFrame(
            {c: memberships[c].astype(object).astype(str) for c in MEMBERSHIP_COLUMNS}
        )
        pd.testing.assert_frame_equal(got, want.astype(str), check_dtype=False)

        # numbers stay whole-number text, signed codes keep their sign
        codes = text_values(devices["EnrollmentStatusCode"])
        assert codes.str.fullmatch(r"-?\d+").all()
        assert codes.str.startswith("-").any()
        assert not text_values(devices["MDMWorkloads"]).str.contains(r"\.").any()
        assert (
            text_values(devices["LastPolicyRequest"])
            .str.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}")
            .all()
        )


def test_sqlite_replica_is_read_through_adbc(small_replicas, monkeypatch):
    """Columns come straight into Arrow (ADBC), not as Python rows."""

    def no_rows(*args, **kwargs):
        raise AssertionError("read row by row")

    monkeypatch.setattr(sql_source, "_run", no_rows)
    devices, memberships = fetch_sql(sqlite_url(small_replicas["PS1"]), ["SMS00001"])
    assert len(devices) and len(memberships)


def test_fetch_sql_only_named_collections_and_unknown_ids(small_replicas):
    path = small_replicas["PS1"]
    _, memberships = fetch_sql(sqlite_url(path), ["CAS00104", "NOPE0001", "CAS00104"])
    assert set(memberships["CollectionID"]) == {"CAS00104"}
    assert memberships["ResourceID"].is_unique
    _, none = fetch_sql(sqlite_url(path), [])
    assert none.empty and list(none.columns) == list(MEMBERSHIP_COLUMNS)


def test_fetch_sql_never_writes(small_replicas, tmp_path):
    path = tmp_path / "copy.sqlite"
    path.write_bytes(small_replicas["PS2"].read_bytes())
    before = path.read_bytes()
    fetch_sql(sqlite_url(path), COLLECTION_IDS)
    assert path.read_bytes() == before
    engine = make_engine(sqlite_url(path))
    with engine.connect() as conn, pytest.raises(Exception, match=r"readonly|read-only|query"):
        conn.execute(text("DELETE FROM v_Collection"))
    engine.dispose()
    assert path.read_bytes() == before


def test_value_text_conversion():
    values = [
        -2145910744,
        2149056554,
        None,
        8193.0,
        3.5,
        Decimal("42"),
        True,
        False,
        datetime(2026, 11, 20, 13, 45, 12),
        datetime(2026, 11, 20, 13, 45, 12, 347000),
        "10.0.19045",
    ]

    def texts(series):
        assert pd.api.types.is_string_dtype(series)
        return [None if pd.isna(v) else v for v in series]

    assert texts(sql_source._as_text(values)) == [
        "-2145910744",
        "2149056554",
        None,
        "8193",
        "3.5",
        "42",
        "1",
        "0",
        "2026-11-20 13:45:12",
        "2026-11-20 13:45:12.347",
        "10.0.19045",
    ]
    assert texts(sql_source._as_text((1, None, -2))) == ["1", None, "-2"]
    assert texts(sql_source._as_text((True, None, False))) == ["1", None, "0"]
    assert texts(sql_source._as_text(("a", None))) == ["a", None]
    assert texts(sql_source._as_text((None, None))) == [None, None]
    assert texts(sql_source._as_text(())) == []


# --------------------------------------------------------------------------- errors


def test_missing_sqlite_file_is_a_clear_error_and_is_not_created(tmp_path):
    missing = tmp_path / "nowhere" / "replica.sqlite"
    with pytest.raises(SourceError) as info:
        fetch_sql(sqlite_url(missing), COLLECTION_IDS)
    message = str(info.value)
    assert message.startswith("cannot connect to sqlite:///")
    assert "not found" in message and str(missing) in message
    assert "\n" not in message
    assert not missing.exists()


def test_missing_view_is_named(tmp_path):
    path = tmp_path / "empty.sqlite"
    sqlite3.connect(path).close()
    with pytest.raises(SourceError, match=r"^missing view v_\w+ \(devices\.sql\)"):
        fetch_sql(sqlite_url(path), COLLECTION_IDS)


def test_missing_column_is_named(tmp_path):
    path = tmp_path / "odd.sqlite"
    connection = sqlite3.connect(path)
    for view in (
        "v_R_System",
        "v_GS_OPERATING_SYSTEM",
        "v_ClientCoManagementState",
        "v_CH_ClientSummary",
    ):
        connection.execute(f"CREATE TABLE {view} (ResourceID INTEGER)")
    connection.close()
    with pytest.raises(SourceError, match=r"^missing column \w+"):
        fetch_sql(sqlite_url(path), COLLECTION_IDS)


def test_query_timeout(small_replicas):
    with pytest.raises(SourceError, match=r"^query timed out after 1e-06 s"):
        fetch_sql(sqlite_url(small_replicas["PS1"]), COLLECTION_IDS, timeout_seconds=1e-6)
    with pytest.raises(SourceError, match=r"^query timed out after 5 s"):
        raise sql_source._query_error(
            RuntimeError("('HYT00', '[HYT00] Query timeout expired')"), "devices.sql", 5
        )


def test_not_a_url():
    with pytest.raises(SourceError, match="not a database URL"):
        make_engine("this is not a url")


# --------------------------------------------------------------------------- redaction


@pytest.mark.parametrize(
    "value",
    [
        MSSQL_URL,
        f"could not connect: {MSSQL_URL} (login failed)",
        f"Driver={{ODBC Driver 18 for SQL Server}};Server=h;UID=u;PWD={SECRET};Encrypt=yes",
        f"Server=h;Password={{{SECRET};x}};",
        "mssql+pyodbc:///?odbc_connect=" + quote_plus(f"Server=h;UID=u;PWD={SECRET};"),
        f"postgresql://u:{SECRET}@h/db",
    ],
)
def test_redact_hides_passwords(value):
    hidden = redact(value)
    assert SECRET not in hidden
    assert quote_plus(SECRET) not in hidden
    assert "***" in hidden


def test_redact_keeps_the_rest_and_extra_secrets():
    assert redact("sqlite:////data/replica.sqlite") == "sqlite:////data/replica.sqlite"
    assert redact(MSSQL_URL).startswith("mssql+pyodbc://user:***@sqlhost/CM_PS1")
    assert redact("token=hunter22 failed", ["hunter22"]) == "token=*** failed"


def test_password_argument_replaces_the_urls_and_never_shows():
    engine = make_engine("mssql+pyodbc://user:old@sqlhost/CM_PS1", password=SECRET)
    assert engine.url.password == SECRET
    assert SECRET not in redact(engine.url.render_as_string(hide_password=False))
    assert engine.url.query["driver"] == "ODBC Driver 18 for SQL Server"
    assert engine.url.query["ApplicationIntent"] == "ReadOnly"
    engine.dispose()


def test_mssql_url_options_are_kept_and_odbc_connect_is_read_only():
    engine = make_engine(MSSQL_URL + "&TrustServerCertificate=yes")
    assert engine.url.query["TrustServerCertificate"] == "yes"
    assert engine.url.query["driver"] == "ODBC Driver 18 for SQL Server"
    odbc = make_engine(
        "mssql+pyodbc:///?odbc_connect="
        + quote_plus("Server=h;Database=CM_PS1;Trusted_Connection=yes")
    )
    assert "ApplicationIntent=ReadOnly" in odbc.url.query["odbc_connect"]
    assert "Driver={ODBC Driver 18 for SQL Server}" in odbc.url.query["odbc_connect"]


def test_mssql_failure_message_has_no_password():
    with pytest.raises(SourceError) as info:
        fetch_sql(MSSQL_URL, COLLECTION_IDS, password=SECRET, timeout_seconds=2)
    message = str(info.value)
    assert message.startswith("cannot connect to mssql+pyodbc://user:***@sqlhost/CM_PS1")
    assert SECRET not in message and "\n" not in message


# --------------------------------------------------------------------------- lazy pyodbc


def run_isolated(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_sqlite_path_never_imports_pyodbc(small_replicas):
    result = run_isolated(f"""
        import sys
        from dashboard.data import sql_source
        assert "pyodbc" not in sys.modules, "imported by the module"
        devices, memberships = sql_source.fetch_sql({sqlite_url(small_replicas["PS1"])!r},
                                                    ["SMS00001"])
        assert len(devices) and len(memberships)
        assert "pyodbc" not in sys.modules, "imported by a sqlite fetch"
        print("ok")
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_mssql_engine_is_lazy_without_unixodbc():
    # Whatever this machine has, the child sees what a machine without libodbc.so.2 sees:
    # importing pyodbc fails.
    result = run_isolated(f"""
        import sys
        sys.modules["pyodbc"] = None
        from dashboard.data.sql_source import make_engine, SourceError
        engine = make_engine({MSSQL_URL!r}, timeout_seconds=30)   # no error here
        try:
            engine.connect()
        except SourceError as error:
            print(type(error).__name__, error)
        else:
            raise SystemExit("connected?")
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("DriverUnavailableError")
    assert "unixODBC" in result.stdout and "ODBC Driver 18 for SQL Server" in result.stdout
