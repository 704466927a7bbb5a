"""Read a site database (or a SQLite replica of one) through ``queries/*.sql``.

Read only, by construction: the only statements sent are the two SELECT files in
``dashboard.settings.QUERIES_DIR``; SQL Server connections ask for ``ApplicationIntent=ReadOnly``
and SQLite files are opened with ``mode=ro``. ``pyodbc`` is imported only when an
``mssql+pyodbc`` engine is made, so this module (and SQLite URLs) work on a machine without
unixODBC. Errors become one-line :class:`SourceError` messages that never carry a password.
"""

from __future__ import annotations

import gc
import math
import re
import sqlite3
import time
from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote, unquote

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlalchemy
from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url

from dashboard import settings
from dashboard.data.contract import DEVICE_COLUMNS, MEMBERSHIP_COLUMNS

DEFAULT_ODBC_DRIVER = "ODBC Driver 18 for SQL Server"
LOGIN_TIMEOUT_SECONDS = 30
_PROGRESS_OPS = 20_000  # SQLite VM steps between two query-timeout checks
_HIDDEN = "***"


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
    text_ = _ODBC_PASSWORD_ENCODED.sub(lambda m: m["head"] + _HIDDEN if m["pw"] else m[0],
                                       text_)
    for secret in secrets:
        if secret and len(secret) >= 3:
            for form in {secret, quote(secret, safe=""), quote(secret)}:
                text_ = text_.replace(form, _HIDDEN)
    return text_


def _one_line(message: str, limit: int = 600) -> str:
    line = " ".join(str(message).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


# --------------------------------------------------------------------------- engines


def _seconds(value: float | None) -> float | None:
    """None or a non-positive number means no time limit."""
    if value is None or value <= 0:
        return None
    return float(value)


def make_engine(url: str, password: str | None = None, timeout_seconds: float = 300
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
        raise SourceError(f"not a database URL: {redact(str(url))} ({_one_line(error)})"
                          ) from None
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
            raise SourceError(f"cannot connect to {redact(parsed.render_as_string())}: "
                              f"database driver not installed ({_one_line(error)})") from None
        except Exception as error:
            raise SourceError(f"cannot use {redact(parsed.render_as_string())}: "
                              f"{_one_line(error)}") from None
    return engine


def _sqlite_engine(parsed: URL, limit: float | None) -> sqlalchemy.Engine:
    database = parsed.database or ""
    busy = min(limit, 60.0) if limit else 30.0
    if parsed.query.get("uri") in ("true", "1") or database.startswith("file:"):
        # Already a SQLite URI (file:...?mode=ro): the user's own choice of open mode.
        path_part = unquote(database[5:] if database.startswith("file:") else database)
        path: Path | None = Path(path_part.split("?", 1)[0]) if path_part else None
        target = database if database.startswith("file:") else f"file:{database}"
        extra = {k: v for k, v in parsed.query.items() if k != "uri"}
        if extra:
            target += ("&" if "?" in target else "?") + "&".join(
                f"{k}={v}" for k, v in extra.items() if isinstance(v, str))
    elif database in ("", ":memory:"):
        path, target = None, ":memory:"
    else:
        path = Path(database).expanduser().resolve()
        target = path.as_uri() + "?mode=ro"

    def creator() -> sqlite3.Connection:
        if path is not None and not path.is_file():
            raise SourceError(f"database file not found ({path})")
        uri = target != ":memory:"
        return sqlite3.connect(target, uri=uri, timeout=busy, check_same_thread=False)

    # A file: a fresh read-only connection per use (cheap for SQLite, nothing held open).
    pool = {"poolclass": sqlalchemy.pool.NullPool} if path is not None else {}
    engine = sqlalchemy.create_engine("sqlite://", creator=creator, **pool)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, connection_record):  # noqa: ARG001
        info = connection_record.info

        def progress() -> int:
            started = info.get("query_started")
            return int(limit is not None and started is not None
                       and time.monotonic() - started > limit)

        dbapi_connection.set_progress_handler(progress, _PROGRESS_OPS)
        dbapi_connection.execute("PRAGMA query_only = ON")

    @event.listens_for(engine, "before_cursor_execute")
    def _before_execute(conn, cursor, statement, parameters, context, executemany):  # noqa: ARG001
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

    class Warning(Exception):  # noqa: A001 - DBAPI name
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
        import pyodbc  # noqa: PLC0415 - lazy on purpose: needs libodbc.so.2
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
    engine = sqlalchemy.create_engine(parsed, module=_import_pyodbc(),
                                      connect_args={"timeout": login})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, connection_record):  # noqa: ARG001
        # pyodbc: Connection.timeout is the query timeout in seconds (0 = none).
        dbapi_connection.timeout = math.ceil(limit) if limit else 0

    return engine


# --------------------------------------------------------------------------- queries


def _read_query(name: str) -> str:
    path = Path(settings.QUERIES_DIR) / name
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise SourceError(f"cannot read query file {path}: {error.strerror}") from None


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


def _query_error(error: BaseException, query: str, limit: float | None) -> SourceError:
    reason = _reason(error)
    full = f"{reason} {error}"
    if limit is not None and _TIMEOUT.search(full):
        shown = int(limit) if float(limit).is_integer() else limit
        return SourceError(f"query timed out after {shown} s ({query})")
    for pattern in _MISSING_OBJECT:
        match = pattern.search(full)
        if match:
            return SourceError(f"missing view {match['name']} ({query}): is this a "
                               "Configuration Manager site database?")
    for pattern in _MISSING_COLUMN:
        match = pattern.search(full)
        if match:
            return SourceError(f"missing column {match['name']} ({query}): the site "
                               "database's views differ from the ones the query expects")
    match = _DENIED.search(full)
    if match:
        return SourceError(f"permission denied on {match['name']} ({query}): the login "
                           "needs SELECT on the views (for example the db_datareader role)")
    return SourceError(f"query failed ({query}): {reason}")


def _run(conn: sqlalchemy.Connection, sql: str, params: dict, query: str,
         limit: float | None, secrets: list[str | None]) -> tuple[list[str], list[tuple]]:
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


def _redacted(error: SourceError, secrets: list[str | None]) -> SourceError:
    return type(error)(_one_line(redact(str(error), secrets)))


# --------------------------------------------------------------------------- text conversion


_STR_DTYPE = pd.StringDtype("pyarrow", na_value=np.nan)  # pandas' default "str"
_NONE = type(None)


def _as_text(values: tuple | list) -> pd.Series:
    """Database values to contract text: a "str" Series, missing values NA.

    Integers (and whole floats/decimals) are written without a fraction, booleans as 1/0,
    datetimes as ``YYYY-MM-DD HH:MM:SS`` (with milliseconds when they are not zero). The
    common cases (all text, all integers) are converted in bulk by pyarrow.
    """
    try:
        array = pa.array(values, type=pa.string())  # the usual case: text (or NULL) only
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        kinds = set(map(type, values)) - {_NONE}
        if kinds <= {int}:
            try:
                array = pa.array(values, type=pa.int64()).cast(pa.string())
            except OverflowError:
                array = pa.array([_value_text(v) for v in values], type=pa.string())
        elif kinds <= {bool}:
            array = pa.array(values, type=pa.bool_()).cast(pa.int8()).cast(pa.string())
        else:
            array = pa.array([_value_text(v) for v in values], type=pa.string())
    return pd.Series(array.to_pandas(types_mapper={pa.string(): _STR_DTYPE}.get))


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


# --------------------------------------------------------------------------- fetch


def fetch_sql(url: str, collection_ids: list[str], password: str | None = None,
              timeout_seconds: float = 300) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run ``devices.sql`` once and ``collections.sql`` once per collection ID.

    Returns ``(devices_raw, memberships)``: every contract column of ``devices_raw`` as text
    (missing values NA) for :func:`dashboard.data.contract.parse_devices`; ``memberships``
    with ``ResourceID`` (int64), ``CollectionID``, ``CollectionName``.
    """
    secrets = [password]
    try:
        secrets.append(make_url(url).password)
    except Exception:
        pass
    devices_sql = _read_query("devices.sql")
    collections_sql = _read_query("collections.sql")
    engine = make_engine(url, password=password, timeout_seconds=timeout_seconds)
    shown = redact(url, secrets)
    limit = _seconds(timeout_seconds)
    collecting = gc.isenabled()
    gc.disable()  # millions of row tuples: cyclic GC passes would cost seconds, find nothing
    try:
        try:
            conn = engine.connect()
        except SourceError as error:
            raise _redacted(SourceError(f"cannot connect to {shown}: {error}"), secrets
                            ) from None
        except Exception as error:
            raise _redacted(SourceError(f"cannot connect to {shown}: {_reason(error)}"),
                            secrets) from None
        with conn:
            columns, rows = _run(conn, devices_sql, {}, "devices.sql", limit, secrets)
            missing = [c for c in DEVICE_COLUMNS if c not in columns]
            if missing:
                raise SourceError(f"devices.sql returned no {missing[0]} column")
            data = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
            keep = [*DEVICE_COLUMNS, *(["SiteCode"] if "SiteCode" in columns else [])]
            devices = pd.DataFrame({name: _as_text(data[columns.index(name)])
                                    for name in keep})

            parts = []
            for collection_id in dict.fromkeys(collection_ids):
                columns, rows = _run(conn, collections_sql, {"collection_id": collection_id},
                                     f"collections.sql for {collection_id}", limit, secrets)
                parts.append((columns, rows))
        memberships = _memberships(parts)
    finally:
        engine.dispose()
        if collecting:
            gc.enable()
    return devices, memberships


def _memberships(parts: list[tuple[list[str], list]]) -> pd.DataFrame:
    """One frame from the per-collection results: ResourceID int64, the IDs and names str."""
    ids: list = []
    collections: list = []
    names: list = []
    for columns, rows in parts:
        missing = [c for c in MEMBERSHIP_COLUMNS if c not in columns]
        if missing:
            raise SourceError(f"collections.sql returned no {missing[0]} column")
        if not rows:
            continue
        data = list(zip(*rows, strict=True))
        ids.extend(data[columns.index("ResourceID")])
        collections.extend(data[columns.index("CollectionID")])
        names.extend(data[columns.index("CollectionName")])
    try:
        rid = pa.array(ids, type=pa.int64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowTypeError, pa.ArrowInvalid, OverflowError):
        rid = pd.to_numeric(pd.Series(ids, dtype=object), errors="coerce").to_numpy()
    keep = ~np.isnan(rid) if rid.dtype.kind == "f" else np.ones(len(rid), dtype=bool)
    return pd.DataFrame({
        "ResourceID": rid[keep].astype("int64"),
        "CollectionID": _as_text(collections)[keep].reset_index(drop=True),
        "CollectionName": _as_text(names)[keep].reset_index(drop=True),
    })
