"""queries/devices.sql and queries/collections.sql: valid T-SQL, portable, read only, and
right on the traps of real site databases (run on SQLite replicas with the real names)."""

from __future__ import annotations

import re
import sqlite3

import pytest
import sqlglot
from sqlalchemy import text
from sqlalchemy.dialects import mssql
from sqlglot import exp
from sqlglot.errors import ErrorLevel

from dashboard.data.contract import DEVICE_COLUMNS, MEMBERSHIP_COLUMNS
from dashboard.data.sample import VIEW_COLUMNS
from dashboard.settings import QUERIES_DIR

QUERY_FILES = ("devices.sql", "collections.sql")
FORBIDDEN = {
    "TOP": r"\bTOP\b",
    "ISNULL": r"\bISNULL\b",
    "TRY_CONVERT": r"\bTRY_CONVERT\b",
    "CONVERT": r"\bCONVERT\b",
    # A stored value that does not convert fails the whole statement on SQL Server: values
    # come back as stored and are read (row by row) by the dashboard.
    "CAST": r"\bCAST\s*\(",
    "TRY_CAST": r"\bTRY_CAST\b",
    "PARSE": r"\b(TRY_)?PARSE\s*\(",
    "LIMIT": r"\bLIMIT\b",
    "OFFSET": r"\bOFFSET\b",
    "IIF": r"\bIIF\b",
    "GETDATE": r"\bGETDATE\b",
    "NOLOCK": r"\bNOLOCK\b",
    "schema prefix dbo.": r"\bdbo\s*\.",
    "square brackets": r"\[",
    "DECLARE/@variables": r"@",
    "writes": r"\b(INSERT|UPDATE|DELETE|MERGE|DROP|ALTER|CREATE|TRUNCATE|EXEC|EXECUTE|GRANT|"
    r"INTO)\b",
}


def sql_of(name: str) -> str:
    return (QUERIES_DIR / name).read_text(encoding="utf-8")


def without_comments(sql: str) -> str:
    sql = re.sub(r"/\*.*?\*/", " ", sql, flags=re.S)
    return re.sub(r"--[^\n]*", " ", sql)


def run(db_path, sql: str, params: dict | None = None) -> tuple[list[str], list[tuple]]:
    """Run a query file's text on SQLite, binding ``:name`` parameters like SQLAlchemy."""
    connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        cursor = connection.execute(sql, params or {})
        return [d[0] for d in cursor.description], cursor.fetchall()
    finally:
        connection.close()


# --------------------------------------------------------------------------- form


@pytest.mark.parametrize("name", QUERY_FILES)
def test_parses_as_tsql_single_select(name):
    statements = sqlglot.parse(sql_of(name), read="tsql", error_level=ErrorLevel.RAISE)
    statements = [s for s in statements if s is not None]
    assert len(statements) == 1
    assert isinstance(statements[0], exp.Select)
    assert not list(statements[0].find_all(exp.Insert, exp.Update, exp.Delete, exp.Into))


@pytest.mark.parametrize("name", QUERY_FILES)
@pytest.mark.parametrize("construct", sorted(FORBIDDEN))
def test_no_dialect_only_or_writing_constructs(name, construct):
    body = without_comments(sql_of(name))
    assert not re.search(FORBIDDEN[construct], body, re.IGNORECASE), f"{name} uses {construct}"


@pytest.mark.parametrize("name", QUERY_FILES)
def test_no_conversion_of_stored_values(name):
    """No CAST or CONVERT node in the parsed T-SQL, whatever its spelling."""
    statement = sqlglot.parse_one(sql_of(name), read="tsql")
    conversions = list(statement.find_all(exp.Cast, exp.TryCast))
    assert not conversions, f"{name} converts: {[c.sql('tsql') for c in conversions]}"


@pytest.mark.parametrize("name", QUERY_FILES)
def test_has_header_comment(name):
    head = sql_of(name).lstrip().splitlines()[0]
    assert head.startswith("--")
    assert "never writes" in sql_of(name)


def test_devices_sql_has_no_parameters_and_collections_one():
    assert not text(sql_of("devices.sql")).compile().params
    assert set(text(sql_of("collections.sql")).compile().params) == {"collection_id"}


def test_tsql_compiles_with_sqlalchemy_mssql_dialect():
    dialect = mssql.dialect(paramstyle="qmark")  # pyodbc's paramstyle
    compiled = str(text(sql_of("collections.sql")).compile(dialect=dialect))
    assert "fcm.CollectionID = ?" in compiled  # pyodbc's qmark: bound, never formatted
    devices = str(text(sql_of("devices.sql")).compile(dialect=dialect))
    assert "ROW_NUMBER() OVER (PARTITION BY os.ResourceID ORDER BY os.TimeStamp DESC)" in devices
    # and sqlglot can render it back as T-SQL
    transpiled = sqlglot.transpile(sql_of("devices.sql"), read="tsql", write="tsql")[0]
    assert "COALESCE(s.Obsolete0, 0) <> 1" in transpiled


# --------------------------------------------------------------------------- traps, by hand


@pytest.fixture
def trap_db(tmp_path):
    """A tiny replica where every trap of §5 has one device."""
    path = tmp_path / "traps.sqlite"
    connection = sqlite3.connect(path)
    for view, columns in VIEW_COLUMNS.items():
        connection.execute(
            f"CREATE TABLE {view} (" + ", ".join(f"{c} {t}" for c, t in columns) + ")"
        )
    ws = "Microsoft Windows NT Workstation 10.0"
    connection.executemany(
        "INSERT INTO v_R_System VALUES (?,?,?,?,?,?,?,?,?,?)",
        [
            # ResourceID, Name0, Domain, OS, Build01, Client0, Version, Active0, Obsolete0, AAD
            (101, "PC-1", "CONTOSO", ws, None, 1, "5.00.9128.1000", 1, 0, "g-1"),
            (102, "PC-2", "CONTOSO", ws, "10.0.19045", 1, "5.00.9088.1007", 0, 1, "g-old"),
            (103, "PC-2", "CONTOSO", ws, "10.0.22631", 1, "5.00.9128.1000", 1, 0, "g-2"),
            (104, "PC-3", "CONTOSO", ws, "10.0.19045", None, None, None, None, None),
            (105, "PC-4", "CONTOSO", ws, "10.0.26100", 1, "5.00.9128.1000", 1, 0, None),
        ],
    )
    connection.executemany(
        "INSERT INTO v_GS_OPERATING_SYSTEM VALUES (?,?,?,?,?)",
        [
            (101, "Microsoft Windows 10 Enterprise", "19044", 1, "2026-09-01 10:00:00.000"),
            (101, "Microsoft Windows 11 Enterprise", "22631", 1, "2026-11-20 10:00:00.000"),
            (101, "Microsoft Windows 10 Enterprise", "19045", 3, "2026-10-01 10:00:00.000"),
            (102, "Microsoft Windows 10 Enterprise", "19045", 1, "2025-01-01 10:00:00.000"),
            (103, "Microsoft Windows 11 Enterprise", "19045", 1, "2026-11-01 10:00:00.000"),
        ],
    )
    connection.executemany(
        "INSERT INTO v_ClientCoManagementState VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [
            (101, 1, 1, 1, 1, 8195, 1, 0, 1, 0, 0, 0, None),
            (102, 1, 1, 1, 1, 3, 1, 0, 0, 0, 0, None, None),
            (103, 0, 1, 0, 0, None, 1, 0, 1, 0, 1, -2145910742, "detail, with comma"),
        ],
    )
    connection.executemany(
        "INSERT INTO v_CH_ClientSummary VALUES (?,?,?,?,?)",
        [
            (101, 1, "2026-11-22 08:00:00.000", "2026-11-22 09:00:00.000", 7),
            (103, 0, "2026-10-01 08:00:00.000", None, 7),
            (105, 1, None, None, 7),
        ],
    )
    connection.executemany(
        "INSERT INTO v_Collection VALUES (?,?)",
        [("SMS00001", "All Systems"), ("CAS00100", "Co-management")],
    )
    connection.executemany(
        "INSERT INTO v_FullCollectionMembership VALUES (?,?)",
        [("SMS00001", r) for r in (101, 103, 104, 105)] + [("CAS00100", 101), ("CAS00100", 103)],
    )
    connection.commit()
    connection.close()
    return path


def test_devices_sql_on_the_traps(trap_db):
    columns, rows = run(trap_db, sql_of("devices.sql"))
    assert columns == list(DEVICE_COLUMNS)
    by_id = {row[0]: dict(zip(columns, row, strict=True)) for row in rows}
    # obsolete 102 excluded; NULL-obsolete 104 kept; one row per device, ordered
    assert [row[0] for row in rows] == [101, 103, 104, 105]
    # newest inventory row (inserted in the middle) wins: build fallback and product type
    assert by_id[101]["Build"] == "22631"
    assert by_id[101]["ProductType"] == 1
    # Build01 wins over inventory
    assert by_id[103]["Build"] == "10.0.22631"
    # ClientActive comes from client health, not Active0
    assert by_id[103]["ClientActive"] == 0
    assert by_id[103]["EnrollmentStatusCode"] == -2145910742
    assert by_id[103]["EnrollmentErrorDetail"] == "detail, with comma"
    assert by_id[101]["MDMWorkloads"] == 8195
    # discovery-only record: no client, inventory, health or co-management row
    assert by_id[104]["ClientInstalled"] is None
    assert by_id[104]["ProductType"] is None
    assert by_id[104]["Build"] == "10.0.19045"
    assert all(
        by_id[104][c] is None
        for c in (
            "ClientActive",
            "MDMEnrolled",
            "MDMWorkloads",
            "HybridAADJoined",
            "LastPolicyRequest",
        )
    )
    # no inventory and no co-management row, but client health
    assert by_id[105]["ProductType"] is None
    assert by_id[105]["ClientActive"] == 1
    assert by_id[105]["ComgmtPolicyPresent"] is None


def test_collections_sql_binds_the_id(trap_db):
    columns, rows = run(trap_db, sql_of("collections.sql"), {"collection_id": "CAS00100"})
    assert columns == list(MEMBERSHIP_COLUMNS)
    assert rows == [(101, "CAS00100", "Co-management"), (103, "CAS00100", "Co-management")]
    assert run(trap_db, sql_of("collections.sql"), {"collection_id": "NOPE0001"})[1] == []


@pytest.mark.parametrize(
    "hostile", ["' OR 1=1 --", "SMS00001' OR '1'='1", "SMS00001'; DROP TABLE v_Collection; --"]
)
def test_collections_sql_injection_returns_nothing(trap_db, hostile):
    assert run(trap_db, sql_of("collections.sql"), {"collection_id": hostile})[1] == []
    assert run(trap_db, "SELECT COUNT(*) FROM v_Collection")[1] == [(2,)]


# --------------------------------------------------------------------------- on a replica


def test_devices_sql_on_generated_replica(small_estate, small_replicas):
    for site, path in small_replicas.items():
        columns, rows = run(path, sql_of("devices.sql"))
        assert columns == list(DEVICE_COLUMNS)
        system = small_estate.view(site, "v_R_System")
        obsolete = set(system.loc[system["Obsolete0"] == 1, "ResourceID"])
        null_obsolete = set(system.loc[system["Obsolete0"].isna(), "ResourceID"])
        ids = [row[0] for row in rows]
        assert len(ids) == len(set(ids)) == len(system) - len(obsolete)
        assert obsolete and not obsolete & set(ids)
        assert null_obsolete and null_obsolete <= set(ids)
        # devices without co-management / health / inventory rows are kept
        for view in ("v_ClientCoManagementState", "v_CH_ClientSummary", "v_GS_OPERATING_SYSTEM"):
            missing = set(ids) - set(small_estate.view(site, view)["ResourceID"])
            assert missing, view

        # the newest inventory row decides ProductType (and Build when Build01 is NULL)
        inventory = small_estate.view(site, "v_GS_OPERATING_SYSTEM")
        several = inventory.groupby("ResourceID").filter(lambda g: len(g) > 1)
        newest = several.sort_values("TimeStamp").groupby("ResourceID").tail(1)
        oldest = several.sort_values("TimeStamp").groupby("ResourceID").head(1)
        newest_build = newest.set_index("ResourceID")["BuildNumber0"].sort_index()
        oldest_build = oldest.set_index("ResourceID")["BuildNumber0"].sort_index()
        assert (newest_build != oldest_build).any()  # older rows carry older builds
        result = {row[0]: row for row in rows}
        build01 = system.set_index("ResourceID")["Build01"]
        checked = 0
        for rid, build in zip(newest["ResourceID"], newest["BuildNumber0"], strict=True):
            if rid in result and build01.get(rid) is None:
                assert result[rid][columns.index("Build")] == build
                checked += 1
        assert checked > 0


def test_collections_sql_on_generated_replica(small_estate, small_replicas):
    for site, path in small_replicas.items():
        membership = small_estate.view(site, "v_FullCollectionMembership")
        for collection_id in ("SMS00001", "CAS00102"):
            columns, rows = run(path, sql_of("collections.sql"), {"collection_id": collection_id})
            assert columns == list(MEMBERSHIP_COLUMNS)
            assert {r[1] for r in rows} == {collection_id}
            expected = membership.loc[membership["CollectionID"] == collection_id, "ResourceID"]
            assert sorted(r[0] for r in rows) == sorted(expected)
