"""Read a site database (or a SQLite replica of one) through ``queries/*.sql``.

Two source forms: a SQLAlchemy URL (``mssql+pyodbc://...``, ``sqlite:///replica.sqlite``) and
an ODBC connection string (``Driver={ODBC Driver 18 for SQL Server};Server=...``). Results
come into Arrow (ADBC for SQLite files, arrow-odbc for connection strings; DBAPI rows for other
URLs) and go through the same conversion as a CSV export's columns.

Read only, by construction: the only statements sent are the two SELECT files in
``dashboard.settings.QUERIES_DIR`` (comments and a trailing ``;`` removed); SQL Server
connections ask for ``ApplicationIntent=ReadOnly``, SQLite files are opened with ``mode=ro``
(``NoCreat=1`` through ODBC). ``pyodbc`` is imported only when an ``mssql+pyodbc`` engine is
made (or a connection string is read where arrow-odbc cannot be loaded), so this module
(and SQLite URLs) work on a machine without unixODBC. Errors become one-line
:class:`SourceError` messages that never carry a password.
"""

from __future__ import annotations

import gc
import math
import re
import sqlite3
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote, unquote

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlalchemy
from sqlalchemy import event, text
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL, make_url

from dashboard import settings
from dashboard.data.contract import DEVICE_COLUMNS, MEMBERSHIP_COLUMNS, _text_values, raw_frame
from dashboard.odbc_string import odbc_pairs, odbc_value

DEFAULT_ODBC_DRIVER = "ODBC Driver 18 for SQL Server"
LOGIN_TIMEOUT_SECONDS = 30
_PROGRESS_OPS = 20_000  # SQLite VM steps between two query-timeout checks
_HIDDEN = "***"
BATCH_ROWS = 65_536  # rows per Arrow batch (ADBC, pyodbc's fetchmany)
# arrow-odbc binds buffers of rows x longest value for each column: a column of unbounded
# size (nvarchar(max); every text column of SQLite's driver) gets the first size here, and
# a value longer than that (which arrow-odbc refuses rather than cut) the next, with fewer
# rows per batch so that the buffers stay small.
ODBC_BUFFERS = ((1_024, 4_096), (65_536, 128))  # (characters per value, rows per batch)


class SourceError(Exception):
    """A SQL source that cannot be read; the message is one line, with no password in it."""


class DriverUnavailableError(SourceError):
    """pyodbc (or the unixODBC library under it) cannot be loaded on this machine."""


# --------------------------------------------------------------------------- redaction

_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][\w+.-]*://[^:/@\s]*:)(?P<pw>[^@\s/]*)(?=@)")
_ODBC_PASSWORD = re.compile(
    r"(?P<head>\b(?:PWD|Password)\s*=\s*)(?P<pw>\{(?:[^}]|\}\})*\}?|[^;'\"\r\n]*)",
    re.IGNORECASE,
)
_ODBC_PASSWORD_ENCODED = re.compile(
    r"(?P<head>(?:^|(?<=%3B)|(?<=%3b)|(?<=[;?&=\s]))(?:PWD|Password)%3D)(?P<pw>.*?)"
    r"(?=%3B|&|\s|$)",
    re.IGNORECASE,
)


def redact(url_or_text: str, secrets: Iterable[str | None] = ()) -> str:
    """Hide passwords: in a SQLAlchemy URL, in ``PWD=...;`` of ODBC strings, in any text.

    ``secrets`` are further literal values to hide wherever they appear (a password taken
    from an environment variable, for instance).
    """
    text_ = str(url_or_text)
    stripped = text_.strip()
    if stripped and not any(c.isspace() for c in stripped) and "://" in stripped:
        try:
            parsed = make_url(stripped)
            if parsed.password is not None:
                text_ = parsed.render_as_string(hide_password=True)
        except Exception:  # not a URL after all: fall through to the patterns
            pass
    text_ = _URL_PASSWORD.sub(lambda m: m["head"] + _HIDDEN if m["pw"] else m[0], text_)
    text_ = _ODBC_PASSWORD.sub(lambda m: m["head"] + _HIDDEN if m["pw"] else m[0], text_)
    text_ = _ODBC_PASSWORD_ENCODED.sub(lambda m: m["head"] + _HIDDEN if m["pw"] else m[0], text_)
    for secret in secrets:
        if secret and len(secret) >= 3:
            for form in {secret, quote(secret, safe=""), quote(secret)}:
                text_ = text_.replace(form, _HIDDEN)
    return text_


def _one_line(message: str, limit: int = 600) -> str:
    line = " ".join(str(message).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


# --------------------------------------------------------------------------- ODBC strings

_SQL_SERVER_DRIVER = re.compile(r"SQL Server", re.IGNORECASE)
_SQLITE_DRIVER = re.compile(r"SQLite", re.IGNORECASE)


def odbc_password(connection_string: str) -> str | None:
    return odbc_value(connection_string, "PWD", "Password")


def _braced(value: str) -> str:
    return "{" + value.replace("}", "}}") + "}"


def odbc_connection_string(connection_string: str, password: str | None = None) -> str:
    """The connection string as it is used: ``password`` (from ``password_env``) as ``PWD``;
    ``ApplicationIntent=ReadOnly`` for SQL Server's drivers and ``NoCreat=1`` for SQLite's
    (a missing file is an error, never a new database) unless the string says otherwise."""
    pairs = odbc_pairs(connection_string)
    keys = {key.lower() for key, _, _ in pairs}
    parts = [
        text_
        for key, _, text_ in pairs
        if password is None or key.lower() not in ("pwd", "password")
    ]
    if password is not None:
        parts.append(f"PWD={_braced(password)}")
    driver = odbc_value(connection_string, "Driver") or ""
    if _SQL_SERVER_DRIVER.search(driver) and "applicationintent" not in keys:
        parts.append("ApplicationIntent=ReadOnly")
    if _SQLITE_DRIVER.search(driver) and "nocreat" not in keys:
        parts.append("NoCreat=1")
    return ";".join(parts)


def _missing_sqlite_file(connection_string: str) -> Path | None:
    """The database file a SQLite driver is pointed at, when it does not exist."""
    if not _SQLITE_DRIVER.search(odbc_value(connection_string, "Driver") or ""):
        return None
    database = odbc_value(connection_string, "Database")
    if database and database != ":memory:" and not Path(database).expanduser().is_file():
        return Path(database)
    return None


# --------------------------------------------------------------------------- engines


def _seconds(value: float | None) -> float | None:
    """None or a non-positive number means no time limit."""
    if value is None or value <= 0:
        return None
    return float(value)


def make_engine(
    url: str, password: str | None = None, timeout_seconds: float = 300
) -> sqlalchemy.Engine:
    """An engine for any SQLAlchemy URL, set up for reading only.

    ``mssql+pyodbc``: ODBC driver defaults to "ODBC Driver 18 for SQL Server",
    ``ApplicationIntent=ReadOnly`` is added, each query is limited to ``timeout_seconds``
    (pyodbc's ``Connection.timeout``); ``password`` (from the variable named by
    ``password_env``) replaces the URL's. Creating the engine does not connect; if pyodbc
    cannot be loaded, the error surfaces at connect time as :class:`DriverUnavailableError`.

    ``sqlite``: the file is opened read-only (never created: a missing file fails at connect
    time with :class:`SourceError`), with a busy timeout, and each query is interrupted after
    ``timeout_seconds``.
    """
    try:
        parsed = make_url(url)
    except Exception as error:
        raise SourceError(f"not a database URL: {redact(str(url))} ({_one_line(error)})") from None
    if password is not None:
        parsed = parsed.set(password=password)
    backend = parsed.get_backend_name()
    limit = _seconds(timeout_seconds)
    if backend == "sqlite":
        engine = _sqlite_engine(parsed, limit)
    elif backend == "mssql" and parsed.get_driver_name() == "pyodbc":
        engine = _mssql_pyodbc_engine(parsed, limit)
    else:
        try:
            engine = sqlalchemy.create_engine(parsed)
        except ImportError as error:
            raise SourceError(
                f"cannot connect to {redact(parsed.render_as_string())}: "
                f"database driver not installed ({_one_line(error)})"
            ) from None
        except Exception as error:
            raise SourceError(
                f"cannot use {redact(parsed.render_as_string())}: {_one_line(error)}"
            ) from None
    return engine


def _sqlite_target(parsed: URL) -> tuple[Path | None, str]:
    """(the file, if any, and what sqlite3 opens: a read-only URI or ``:memory:``)."""
    database = parsed.database or ""
    if parsed.query.get("uri") in ("true", "1") or database.startswith("file:"):
        # Already a SQLite URI (file:...?mode=ro): the user's own choice of open mode.
        path_part = unquote(database[5:] if database.startswith("file:") else database)
        path: Path | None = Path(path_part.split("?", 1)[0]) if path_part else None
        target = database if database.startswith("file:") else f"file:{database}"
        extra = {k: v for k, v in parsed.query.items() if k != "uri"}
        if extra:
            target += ("&" if "?" in target else "?") + "&".join(
                f"{k}={v}" for k, v in extra.items() if isinstance(v, str)
            )
    elif database in ("", ":memory:"):
        path, target = None, ":memory:"
    else:
        path = Path(database).expanduser().resolve()
        target = path.as_uri() + "?mode=ro"
    return path, target


def _sqlite_engine(parsed: URL, limit: float | None) -> sqlalchemy.Engine:
    busy = min(limit, 60.0) if limit else 30.0
    path, target = _sqlite_target(parsed)

    def creator() -> sqlite3.Connection:
        if path is not None and not path.is_file():
            raise SourceError(f"database file not found ({path})")
        uri = target != ":memory:"
        return sqlite3.connect(target, uri=uri, timeout=busy, check_same_thread=False)

    # A file: a fresh read-only connection per use (cheap for SQLite, nothing held open).
    pool = {"poolclass": sqlalchemy.pool.NullPool} if path is not None else {}
    engine = sqlalchemy.create_engine("sqlite://", creator=creator, **pool)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, connection_record):
        info = connection_record.info

        def progress() -> int:
            started = info.get("query_started")
            return int(
                limit is not None and started is not None and time.monotonic() - started > limit
            )

        dbapi_connection.set_progress_handler(progress, _PROGRESS_OPS)
        dbapi_connection.execute("PRAGMA query_only = ON")

    @event.listens_for(engine, "before_cursor_execute")
    def _before_execute(conn, cursor, statement, parameters, context, executemany):
        conn.connection.info["query_started"] = time.monotonic()

    return engine


class _MissingPyodbc:
    """Stands in for the pyodbc module when it cannot be imported (no libodbc.so.2).

    SQLAlchemy needs a DBAPI module to build the dialect; this one has what the dialect reads
    at creation and fails on ``connect`` with a message that says what to install.
    """

    paramstyle = "qmark"
    version = "5.2.0"
    apilevel = "2.0"
    threadsafety = 1
    SQL_DBMS_VER = 18
    SQL_DRIVER_NAME = 6

    class Error(Exception):
        pass

    class Warning(Exception):
        pass

    class InterfaceError(Error):
        pass

    class DatabaseError(Error):
        pass

    class DataError(DatabaseError):
        pass

    class OperationalError(DatabaseError):
        pass

    class IntegrityError(DatabaseError):
        pass

    class InternalError(DatabaseError):
        pass

    class ProgrammingError(DatabaseError):
        pass

    class NotSupportedError(DatabaseError):
        pass

    class Cursor:
        def nextset(self):  # pragma: no cover - never called
            return None

    def __init__(self, error: BaseException):
        self.error = error

    def connect(self, *args, **kwargs):
        raise DriverUnavailableError(
            "pyodbc cannot be loaded (" + _one_line(self.error) + "): install unixODBC "
            f"(apt-get install unixodbc) and Microsoft's {DEFAULT_ODBC_DRIVER}"
        )


def _import_pyodbc():
    try:
        import pyodbc
    except ImportError as error:
        return _MissingPyodbc(error)
    return pyodbc


def _mssql_pyodbc_engine(parsed: URL, limit: float | None) -> sqlalchemy.Engine:
    query = dict(parsed.query)
    if "odbc_connect" in query:
        odbc = query["odbc_connect"]
        odbc = odbc if isinstance(odbc, str) else ";".join(odbc)
        if not re.search(r"\bDriver\s*=", odbc, re.IGNORECASE):
            odbc = f"Driver={{{DEFAULT_ODBC_DRIVER}}};" + odbc
        if not re.search(r"\bApplicationIntent\s*=", odbc, re.IGNORECASE):
            odbc = odbc.rstrip(";") + ";ApplicationIntent=ReadOnly"
        query["odbc_connect"] = odbc
    else:
        keys = {k.lower() for k in query}
        if "driver" not in keys:
            query["driver"] = DEFAULT_ODBC_DRIVER
        if "applicationintent" not in keys:
            query["ApplicationIntent"] = "ReadOnly"
    parsed = parsed.set(query=query)
    login = min(LOGIN_TIMEOUT_SECONDS, math.ceil(limit)) if limit else LOGIN_TIMEOUT_SECONDS
    engine = sqlalchemy.create_engine(
        parsed, module=_import_pyodbc(), connect_args={"timeout": login}
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, connection_record):
        # pyodbc: Connection.timeout is the query timeout in seconds (0 = none).
        dbapi_connection.timeout = math.ceil(limit) if limit else 0

    return engine


# --------------------------------------------------------------------------- query text

# A comment, or a literal/quoted name that may hold "--", "/*" or ";" and must stay as it is.
_COMMENT_OR_QUOTED = re.compile(
    r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\[(?:[^\]]|\]\])*\]|--[^\n]*|/\*.*?\*/", re.S
)


def query_text(sql: str) -> str:
    """The statement as it is sent: comments removed, no trailing ``;``.

    Some ODBC drivers split the text on every ``;`` (Debian's SQLite driver does, even inside
    ``--`` comments) and then refuse it as several statements; every source gets the same
    text, so what the tests run is what SQL Server receives.
    """
    body = _COMMENT_OR_QUOTED.sub(lambda m: " " if m[0].startswith(("--", "/*")) else m[0], sql)
    body = "\n".join(line.rstrip() for line in body.splitlines() if line.strip()).strip()
    while body.endswith(";"):
        body = body[:-1].rstrip()
    return body


def _read_query(name: str) -> str:
    path = Path(settings.QUERIES_DIR) / name
    try:
        return query_text(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise SourceError(f"cannot read query file {path}: {error.strerror}") from None


def _positional(sql: str) -> tuple[str, list[str]]:
    """``:name`` parameters as ``?`` (ODBC's and ADBC's style) and the names in order."""
    compiled = text(sql).compile(dialect=sqlite_dialect.dialect(paramstyle="qmark"))
    return str(compiled), list(compiled.positiontup or [])


# --------------------------------------------------------------------------- errors


_ODBC_PREFIX = re.compile(
    r"ODBC emitted an error calling '\w+':\s*(State: \w+, Native error: "
    r"-?\d+, Message:\s*)?",
    re.IGNORECASE,
)


def _reason(error: BaseException) -> str:
    """The useful part of a driver error: its message, without SQL, vendor prefixes."""
    orig = getattr(error, "orig", None) or error
    args = getattr(orig, "args", ())
    if len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        message = args[1]  # pyodbc: (sqlstate, message)
    elif args and isinstance(args[0], str):
        message = args[0]
    else:
        message = str(orig)
    message = _ODBC_PREFIX.sub("", message)  # arrow-odbc
    message = re.sub(r"^\s*(?:IO|INVALID_ARGUMENT|INTERNAL):\s*", "", message)  # ADBC status
    message = re.sub(r"\((?:SQLExecDirectW|SQLDriverConnect|SQLPrepare|SQLFetch)\)", "", message)
    message = re.sub(r"^(\s*\[[^\]]*\])+\s*", "", message)
    message = re.sub(r"\s*\(\d+\)\s*;", ";", message)
    message = re.sub(r"\s*\(\d+\)\s*$", "", message)
    return _one_line(message) or type(orig).__name__


_MISSING_OBJECT = [
    re.compile(r"no such table:\s*(?:\w+\.)?(?P<name>\w+)", re.IGNORECASE),
    re.compile(r"Invalid object name '(?:[\w\[\]]+\.)*\[?(?P<name>\w+)\]?'", re.IGNORECASE),
    re.compile(r'relation "(?:\w+\.)?(?P<name>\w+)" does not exist', re.IGNORECASE),
]
_MISSING_COLUMN = [
    re.compile(r"no such column:\s*(?:\w+\.)?(?P<name>\w+)", re.IGNORECASE),
    re.compile(r"Invalid column name '(?P<name>\w+)'", re.IGNORECASE),
    re.compile(r'column "?(?:\w+\.)?(?P<name>\w+)"? does not exist', re.IGNORECASE),
]
_DENIED = re.compile(r"permission was denied on the object '(?P<name>\w+)'", re.IGNORECASE)
_TIMEOUT = re.compile(r"HYT00|timeout expired|query timeout|interrupted", re.IGNORECASE)
_TRUNCATED = re.compile(r"too large to be written into the allocated buffer", re.IGNORECASE)
_NO_DRIVER = re.compile(
    r"Can't open lib '(?P<name>[^']*)'|IM002|Data source name not found", re.IGNORECASE
)


def _timed_out(query: str, limit: float) -> SourceError:
    shown = int(limit) if float(limit).is_integer() else limit
    return SourceError(f"query timed out after {shown} s ({query})")


def _query_error(error: BaseException, query: str, limit: float | None) -> SourceError:
    reason = _reason(error)
    full = f"{reason} {error}"
    if limit is not None and _TIMEOUT.search(full):
        return _timed_out(query, limit)
    for pattern in _MISSING_OBJECT:
        match = pattern.search(full)
        if match:
            return SourceError(
                f"missing view {match['name']} ({query}): is this a "
                "Configuration Manager site database?"
            )
    for pattern in _MISSING_COLUMN:
        match = pattern.search(full)
        if match:
            return SourceError(
                f"missing column {match['name']} ({query}): the site "
                "database's views differ from the ones the query expects"
            )
    match = _DENIED.search(full)
    if match:
        return SourceError(
            f"permission denied on {match['name']} ({query}): the login "
            "needs SELECT on the views (for example the db_datareader role)"
        )
    return SourceError(f"query failed ({query}): {reason}")


def _connect_error(error: BaseException) -> str:
    reason = _reason(error)
    match = _NO_DRIVER.search(f"{reason} {error}")
    if match:
        name = match["name"] or "named in the connection string"
        return (
            f"ODBC driver {name!r} is not installed (odbcinst -q -d lists the installed ones)"
            if match["name"]
            else f"ODBC data source or driver not found ({reason})"
        )
    return reason


def _redacted(error: SourceError, secrets: list[str | None]) -> SourceError:
    return type(error)(_one_line(redact(str(error), secrets)))


# --------------------------------------------------------------------------- text conversion


_NONE = type(None)


def _text_array(values: tuple | list) -> pa.Array:
    """Python values (one column of DBAPI rows) as contract text, missing values null.

    Integers (and whole floats/decimals) are written without a fraction, booleans as 1/0,
    datetimes as ``YYYY-MM-DD HH:MM:SS`` (with milliseconds when they are not zero). The
    common cases (all text, all integers) are converted in bulk by pyarrow.
    """
    try:
        return pa.array(values, type=pa.string())  # the usual case: text (or NULL) only
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        kinds = set(map(type, values)) - {_NONE}
        if kinds <= {int}:
            try:
                return pa.array(values, type=pa.int64()).cast(pa.string())
            except OverflowError:
                pass
        elif kinds <= {bool}:
            return pa.array(values, type=pa.bool_()).cast(pa.int8()).cast(pa.string())
        return pa.array([_value_text(v) for v in values], type=pa.string())


def _as_text(values: tuple | list) -> pd.Series:
    """:func:`_text_array` as a pandas "str" Series."""
    return pd.Series(_text_array(values).to_pandas(types_mapper={pa.string(): _STR_DTYPE}.get))


_STR_DTYPE = pd.StringDtype("pyarrow", na_value=np.nan)  # pandas' default "str"


def _value_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, Decimal):
        return str(int(value)) if value == value.to_integral_value() else str(value)
    if isinstance(value, datetime):
        if value.tzinfo is not None:  # datetimeoffset: the contract's dates are UTC
            value = value.astimezone(UTC).replace(tzinfo=None)
        stamp = value.strftime("%Y-%m-%d %H:%M:%S")
        if value.microsecond:
            stamp += f".{value.microsecond // 1000:03d}"
        return stamp
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    return str(value)


def _rows_table(columns: list[str], rows: list[tuple]) -> pa.Table:
    """DBAPI rows (tuples) as an Arrow table of text, one column per result column."""
    data = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
    return pa.table({name: _text_array(data[index]) for index, name in enumerate(columns)})


def _collect(
    batches: Iterable[pa.RecordBatch],
    schema: pa.Schema,
    started: float,
    limit: float | None,
    query: str,
) -> pa.Table:
    """The batches of a result as one table; past the time limit, a timeout error.

    Checked between batches as well as by the driver: SQL Server's driver cancels a statement
    that runs too long, but not every driver does (SQLite's ignores the setting), and a
    result that streams slowly is as late as one that starts late.
    """
    out = []
    for batch in batches:
        out.append(batch)
        if limit is not None and time.monotonic() - started > limit:
            raise _timed_out(query, limit)
    return pa.Table.from_batches(out, schema=schema)


# --------------------------------------------------------------------------- readers
#
# Each reader opens one connection, runs a query file's text with its parameters into an
# Arrow table, and closes. Raising SourceError (or _MixedTypes) is their only way to fail.


class _MixedTypes(Exception):
    """ADBC's SQLite driver types a column from its first rows and refuses a later value of
    another type (SQLite stores what it is given): the row path reads such a column."""


class _AdbcSqliteReader:
    """A SQLite file through ADBC's SQLite driver: columns straight into Arrow."""

    def __init__(self, path: Path, target: str, limit: float | None):
        self.path, self.target, self.limit = path, target, limit
        self.connection = None

    def open(self) -> None:
        if not self.path.is_file():
            raise SourceError(f"database file not found ({self.path})")
        import adbc_driver_sqlite.dbapi

        self.connection = adbc_driver_sqlite.dbapi.connect(self.target)

    def table(self, sql: str, params: dict, query: str) -> pa.Table:
        statement, names = _positional(sql)
        cursor = self.connection.cursor()
        try:
            cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(BATCH_ROWS)})
            started = time.monotonic()
            cursor.execute(statement, [params[name] for name in names] or None)
            reader = cursor.fetch_record_batch()
            return _collect(reader, reader.schema, started, self.limit, query)
        except SourceError:
            raise
        except Exception as error:
            if "type mismatch" in str(error).lower():
                raise _MixedTypes(str(error)) from None
            raise _query_error(error, query, self.limit) from None
        finally:
            cursor.close()

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


class _EngineReader:
    """Any SQLAlchemy engine (``mssql+pyodbc``, a SQLite file ADBC cannot type): DBAPI rows,
    converted column by column."""

    def __init__(self, engine: sqlalchemy.Engine, limit: float | None, secrets: list[str | None]):
        self.engine, self.limit, self.secrets = engine, limit, secrets
        self.connection = None

    def open(self) -> None:
        self.connection = self.engine.connect()

    def table(self, sql: str, params: dict, query: str) -> pa.Table:
        columns, rows = _run(self.connection, sql, params, query, self.limit, self.secrets)
        return _rows_table(columns, rows)

    def close(self) -> None:
        try:
            if self.connection is not None:
                self.connection.close()
        finally:
            self.engine.dispose()


def _all_text(schema: pa.Schema) -> pa.Schema:
    """Every column fetched as the driver writes it as text: values as stored, never a
    conversion that one odd value can fail (the contract's reader types them, row by row)."""
    return pa.schema([pa.field(field.name, pa.string()) for field in schema])


class _ArrowOdbcReader:
    """An ODBC connection string through arrow-odbc: the driver's buffers straight into
    Arrow, fetched on a second thread while the previous batch is taken."""

    def __init__(self, connection_string: str, limit: float | None):
        self.connection_string, self.limit = connection_string, limit
        self.connection = None

    def open(self) -> None:
        import arrow_odbc

        self.connection = arrow_odbc.connect(
            self.connection_string, login_timeout_sec=_login_seconds(self.limit)
        )

    def table(self, sql: str, params: dict, query: str) -> pa.Table:
        statement, names = _positional(sql)
        started = time.monotonic()
        for attempt, (chars, rows) in enumerate(ODBC_BUFFERS, start=1):
            try:
                reader = self.connection.read_arrow_batches(
                    statement,
                    batch_size=rows,
                    parameters=[str(params[name]) for name in names] or None,
                    max_text_size=chars,
                    map_schema=_all_text,
                    query_timeout_sec=math.ceil(self.limit) if self.limit else None,
                )
                return _collect(reader, reader.schema, started, self.limit, query)
            except SourceError:
                raise
            except Exception as error:
                if _TRUNCATED.search(str(error)):
                    if attempt < len(ODBC_BUFFERS):
                        continue
                    raise SourceError(
                        f"query failed ({query}): a text value is longer than {chars:,} characters"
                    ) from None
                raise _query_error(error, query, self.limit) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        self.connection = None  # arrow-odbc closes the connection when it is collected


_INTEGER_SQL_TYPES = ("SQL_BIT", "SQL_TINYINT", "SQL_SMALLINT", "SQL_INTEGER", "SQL_BIGINT")


class _PyodbcReader:
    """An ODBC connection string through pyodbc, where arrow-odbc cannot be loaded: the same
    connection string, timeouts and text values, row by row."""

    def __init__(self, connection_string: str, limit: float | None):
        self.connection_string, self.limit = connection_string, limit
        self.connection = None

    def open(self) -> None:
        pyodbc = _import_pyodbc()
        self.connection = pyodbc.connect(
            self.connection_string, timeout=_login_seconds(self.limit), readonly=True
        )
        self.connection.timeout = math.ceil(self.limit) if self.limit else 0
        for name in _INTEGER_SQL_TYPES:  # as stored, as text: the contract's reader types it
            self.connection.add_output_converter(
                getattr(pyodbc, name), lambda raw: None if raw is None else raw.decode()
            )

    def table(self, sql: str, params: dict, query: str) -> pa.Table:
        statement, names = _positional(sql)
        started = time.monotonic()
        try:
            cursor = self.connection.cursor()
            cursor.execute(statement, *[params[name] for name in names])
            columns = [d[0] for d in cursor.description]
            rows: list[tuple] = []
            while True:
                chunk = cursor.fetchmany(BATCH_ROWS)
                if not chunk:
                    break
                rows.extend(map(tuple, chunk))
                if self.limit is not None and time.monotonic() - started > self.limit:
                    raise _timed_out(query, self.limit)
            cursor.close()
        except SourceError:
            raise
        except Exception as error:
            raise _query_error(error, query, self.limit) from None
        return _rows_table(columns, rows)

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


def _login_seconds(limit: float | None) -> int:
    return min(LOGIN_TIMEOUT_SECONDS, math.ceil(limit)) if limit else LOGIN_TIMEOUT_SECONDS


def _run(
    conn: sqlalchemy.Connection,
    sql: str,
    params: dict,
    query: str,
    limit: float | None,
    secrets: list[str | None],
) -> tuple[list[str], list[tuple]]:
    try:
        result = conn.execute(text(sql), params)
        columns = list(result.keys())
        # The DBAPI rows as they are (tuples): a text() query has no result processing to
        # skip, and SQLAlchemy Row objects cost seconds on a million rows.
        rows = result.cursor.fetchall() if result.cursor is not None else []
        result.close()
    except SourceError:
        raise
    except Exception as error:
        raise _redacted(_query_error(error, query, limit), secrets) from None
    finally:
        try:
            conn.connection.info.pop("query_started", None)
        except Exception:  # an invalidated connection has no info left to clear
            pass
    return columns, rows


# --------------------------------------------------------------------------- fetch


def _open(reader, shown: str, secrets: list[str | None]):
    try:
        reader.open()
    except Exception as error:
        # ``shown`` is redacted already: the reason on its own (a redacted PWD with no ';'
        # after it would otherwise hide the words that follow it)
        reason = error if isinstance(error, SourceError) else _connect_error(error)
        raise SourceError(
            f"cannot connect to {shown}: " + _one_line(redact(str(reason), secrets))
        ) from None
    return reader


def _membership_parts(reader, collection_ids: list[str]) -> list[pa.Table]:
    collections_sql = _read_query("collections.sql")
    parts = []
    for collection_id in dict.fromkeys(collection_ids):
        part = reader.table(
            collections_sql,
            {"collection_id": collection_id},
            f"collections.sql for {collection_id}",
        )
        missing = [c for c in MEMBERSHIP_COLUMNS if c not in part.column_names]
        if missing:
            raise SourceError(f"collections.sql returned no {missing[0]} column")
        parts.append(part.select(list(MEMBERSHIP_COLUMNS)))
    return parts


def _fetch(
    reader, shown: str, secrets: list[str | None], collection_ids: list[str], second_reader=None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run ``devices.sql`` once and ``collections.sql`` once per collection ID on ``reader``;
    both results go through the same conversion as a CSV export's columns.

    ``second_reader`` (a function making another reader): the membership queries run on a
    connection of their own while ``devices.sql`` runs, the database working on both at
    once (ADBC and arrow-odbc leave Python's lock while the driver works).
    """
    devices_sql = _read_query("devices.sql")
    collecting = gc.isenabled()
    gc.disable()  # millions of values: cyclic GC passes would cost seconds, find nothing
    try:
        _open(reader, shown, secrets)
        try:
            if second_reader is not None and collection_ids:

                def memberships_apart() -> list[pa.Table]:
                    other = _open(second_reader(), shown, secrets)
                    try:
                        return _membership_parts(other, collection_ids)
                    finally:
                        other.close()

                with ThreadPoolExecutor(1, thread_name_prefix="collections.sql") as pool:
                    pending = pool.submit(memberships_apart)
                    try:
                        devices = reader.table(devices_sql, {}, "devices.sql")
                    finally:
                        wait([pending])
                    parts = pending.result()
            else:
                devices = reader.table(devices_sql, {}, "devices.sql")
                parts = None
            missing = [c for c in DEVICE_COLUMNS if c not in devices.column_names]
            if missing:
                raise SourceError(f"devices.sql returned no {missing[0]} column")
            if parts is None:
                parts = _membership_parts(reader, collection_ids)
        except SourceError as error:
            raise _redacted(error, secrets) from None
        finally:
            reader.close()
        keep = [*DEVICE_COLUMNS, *(["SiteCode"] if "SiteCode" in devices.column_names else [])]
        devices_raw = raw_frame(devices.select(keep))
        del devices
        memberships = _memberships(parts)
    finally:
        if collecting:
            gc.enable()
    return devices_raw, memberships


def _memberships(parts: list[pa.Table]) -> pd.DataFrame:
    """One frame from the per-collection results, read as a ``collections.csv`` is."""
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype="str") for c in MEMBERSHIP_COLUMNS})
    parts = [part for part in parts if part.num_rows] or parts[:1]
    if len({part.schema for part in parts}) > 1:  # drivers may type two results apart
        parts = [
            pa.table(
                {
                    name: _text_values(part.column(name).combine_chunks())
                    for name in MEMBERSHIP_COLUMNS
                }
            )
            for part in parts
        ]
    return raw_frame(pa.concat_tables(parts), repeating=("CollectionID", "CollectionName"))


def fetch_sql(
    url: str, collection_ids: list[str], password: str | None = None, timeout_seconds: float = 300
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a source given as a SQLAlchemy URL.

    Returns ``(devices_raw, memberships)`` as a CSV export's are read (text, repeating
    columns categorical) for :func:`dashboard.data.contract.parse_devices`. A SQLite file is
    read through ADBC straight into Arrow (through sqlite3 when a column mixes types); any
    other URL (``mssql+pyodbc``) through its SQLAlchemy dialect.
    """
    secrets = [password]
    engine = make_engine(url, password=password, timeout_seconds=timeout_seconds)
    parsed = make_url(url)  # make_engine has checked that it is one
    secrets.append(parsed.password)
    shown = redact(url, secrets)
    limit = _seconds(timeout_seconds)
    target = _sqlite_target(parsed) if parsed.get_backend_name() == "sqlite" else None
    if target is not None and target[0] is not None and _adbc_available():
        try:
            engine.dispose()

            def make() -> _AdbcSqliteReader:
                return _AdbcSqliteReader(target[0], target[1], limit)

            return _fetch(make(), shown, secrets, collection_ids, second_reader=make)
        except _MixedTypes:
            engine = make_engine(url, password=password, timeout_seconds=timeout_seconds)
    return _fetch(_EngineReader(engine, limit, secrets), shown, secrets, collection_ids)


def _adbc_available() -> bool:
    try:
        import adbc_driver_sqlite.dbapi  # noqa: F401
    except ImportError:
        return False
    return True


def fetch_odbc(
    connection_string: str,
    collection_ids: list[str],
    password: str | None = None,
    timeout_seconds: float = 300,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a source given as an ODBC connection string (what SQL Server admins write).

    Read only (``ApplicationIntent=ReadOnly`` for SQL Server's drivers, ``NoCreat=1`` for
    SQLite's; only the SELECT files are sent); ``password`` (from ``password_env``) becomes
    ``PWD``. arrow-odbc fetches the columns into Arrow as the driver writes them as text;
    where arrow-odbc cannot be loaded, pyodbc reads the same connection string.
    """
    secrets = [password, odbc_password(connection_string)]
    shown = redact(connection_string, secrets)
    limit = _seconds(timeout_seconds)
    full = odbc_connection_string(connection_string, password)
    database = _missing_sqlite_file(full)
    if database is not None:
        raise SourceError(f"cannot connect to {shown}: database file not found ({database})")
    try:
        import arrow_odbc  # noqa: F401 - needs libodbc.so.2
    except (ImportError, OSError):
        return _fetch(_PyodbcReader(full, limit), shown, secrets, collection_ids)
    # One connection, queries one after the other: a second one for the membership queries
    # gained little here and held both results and two sets of buffers at once (about
    # 100 MB more at 1,000,000 devices, past the memory target).
    return _fetch(_ArrowOdbcReader(full, limit), shown, secrets, collection_ids)
