"""The history store: one snapshot per site per day, in any SQLAlchemy database.

By default a SQLite file, ``history.sqlite`` beside the config file (so the bundled sample's
is ``sample_data/history.sqlite``); ``history_url`` names another file or any SQLAlchemy URL
(PostgreSQL for a team). Each data refresh of ``serve`` and each ``comanage-dashboard
snapshot`` records, for every site of the estate, on the day of its "data as of" (UTC):

- the summary aggregates (``model.summary.summarize`` flattened by
  ``model.trends.metrics_from_summary``) for the whole site and for the site x each collection
  of ``[collections] filter``, so trends can be filtered like the overview;
- a compact state per device, so transitions (newly co-managed, newly failed, fell back) and
  time in state can be computed.

Recording the same site and day again replaces that snapshot, in one transaction with the
pruning (``history_days`` for aggregates, ``device_history_days`` for device states): a
crash leaves the previous snapshot whole. A recording whose content equals the stored one
writes nothing (the bundled sample's file stays byte-identical). The schema is created and
migrated by the tool (``schema_version`` table, ``MIGRATIONS``). Every value is a bound
parameter; device states are inserted in bulk (executemany, chunked).

Schema (version 1)::

    schema_version(version)
    snapshots(id, site, day, data_as_of, recorded_at, devices, device_states, rules,
              fingerprint)                      -- UNIQUE (site, day)
    aggregates(snapshot_id, collection, metric, value)
              -- collection '' is the whole site; metric as in model.trends; zeros not stored
    device_states(snapshot_id, resource_id, status, reason, comanaged, failed, workloads,
                  error_code, attention, since)

In ``device_states``: ``status`` and ``reason`` are small codes (``STATUS_CODES``,
``REASON_CODES``: the index in the tuple; 0 = not targeted / co-managed); ``workloads`` the
workload bits of ``MDMWorkloads``; ``error_code`` the failure's code as an unsigned integer
(NULL when not failed); ``attention`` the rule bits, bit ``i`` being the snapshot's
``rules[i]`` (a JSON list of rule ids); ``since`` the first day (``YYYYMMDD``) of the
device's current state, scheduled / enrolling / pending sign-in counting as one state.

The API, for pages and the report (all days are ``datetime.date``):

``open_history(settings, read_only=False)``
    The configured store, or None (``history_url = "off"``; read-only and no file yet).
``HistoryStore.record(estate, collections)``
    Write the estate's snapshots (what ``serve`` and ``snapshot`` do).
``HistoryStore.days(site=None, with_devices=False)``
    The snapshot days, oldest first (``with_devices``: only days with device states).
``HistoryStore.reference_day(day, min_age_days=7, site=None, with_devices=False)``
    The newest snapshot day at least ``min_age_days`` before ``day`` (week over week).
``HistoryStore.aggregates(day, site=None, collection=None)``
    ``{metric: count}`` of that day, summed over sites; ``model.trends.summary_from_metrics``
    gives it the summary's shape.
``HistoryStore.trend(site=None, collection=None, start=None, end=None)``
    One row per day, one column per metric (summed over sites) and ``sites`` (how many sites
    had a snapshot that day); ``model.trends.trend_series`` derives the drawn series.
``HistoryStore.changes(devices, since_day)``
    ``{kind: mask over devices}`` for ``model.trends.CHANGE_KINDS``.
``HistoryStore.device_states(day, site=None)``
    The decoded device states of a day.
``HistoryStore.timeline(site, resource_id)``
    One device's states, oldest first.
``HistoryStore.state_since(devices, day)``
    The first day of each device's current state (the loader adds it before attention).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from ..model.attention import IN_PROGRESS_REASONS, RULES
from ..model.summary import summarize
from ..model.trends import (
    CHANGE_KINDS,
    carry_since,
    metrics_from_summary,
    state_keys,
    transitions,
)
from ..private import create_private, private_folder
from ..settings import WORKLOADS, Settings
from ..text import one_line
from .estate import load_estate, snapshot_day

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
BUSY_SECONDS = 120  # SQLite: how long a writer waits for another writer's transaction
WRITE_ATTEMPTS = 4  # a write that lost a race (unique day, lock) is retried
CHUNK_ROWS = 100_000  # device states per executemany
CONNECT_SECONDS = 10  # PostgreSQL: how long to wait for the server to accept a connection
WRITE_LOCK_KEY = 0x636F6D616E616765  # PostgreSQL: the advisory lock writers take ("comanage")
DISABLED = ("off", "none", "false", "no", "0")

# Stored codes: the index in these tuples. Append only: never reorder or remove.
STATUS_CODES = (
    "",
    "success_hybrid",
    "success_aad",
    "enrolling_hybrid",
    "enrolling_aad",
    "failure_hybrid",
    "failure_aad",
    "pending_user_sign_in",
)
REASON_CODES = (
    "",
    "server",
    "os-too-old",
    "os-unknown",
    "no-client",
    "not-joined",
    "no-policy",
    "failed",
    "pending-sign-in",
    "scheduled",
    "enrolling",
)
IN_PROGRESS_CODES = tuple(REASON_CODES.index(reason) for reason in IN_PROGRESS_REASONS)
WORKLOAD_MASK = sum(bit for bit, _label in WORKLOADS.values())


class HistoryError(Exception):
    """The history store cannot be used: one line, no secrets."""


@dataclass(frozen=True)
class SnapshotInfo:
    """What ``record`` did for one site."""

    site: str
    day: date
    devices: int
    written: bool  # False: the stored snapshot already held exactly this


# -- schema --------------------------------------------------------------------------------------

metadata = sa.MetaData()
schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, nullable=False),
)
snapshots = sa.Table(
    "snapshots",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("site", sa.String(64), nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("data_as_of", sa.String(40), nullable=False),
    sa.Column("recorded_at", sa.String(40), nullable=False),
    sa.Column("devices", sa.Integer, nullable=False),
    sa.Column("device_states", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("rules", sa.Text),
    sa.Column("fingerprint", sa.String(64)),
    sa.UniqueConstraint("site", "day", name="uq_snapshots_site_day"),
)
aggregates = sa.Table(
    "aggregates",
    metadata,
    sa.Column(
        "snapshot_id",
        sa.Integer,
        sa.ForeignKey("snapshots.id"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("collection", sa.String(64), primary_key=True),
    sa.Column("metric", sa.String(160), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
    sqlite_with_rowid=False,
)
device_states = sa.Table(
    "device_states",
    metadata,
    sa.Column(
        "snapshot_id",
        sa.Integer,
        sa.ForeignKey("snapshots.id"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("resource_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("status", sa.SmallInteger, nullable=False),
    sa.Column("reason", sa.SmallInteger, nullable=False),
    sa.Column("comanaged", sa.SmallInteger, nullable=False),
    sa.Column("failed", sa.SmallInteger, nullable=False),
    sa.Column("workloads", sa.Integer, nullable=False),
    sa.Column("error_code", sa.BigInteger),
    sa.Column("attention", sa.BigInteger, nullable=False),
    sa.Column("since", sa.Integer),
    sqlite_with_rowid=False,
)
DATA_TABLES = (snapshots, aggregates, device_states)
STATE_COLUMNS = (
    "resource_id",
    "status",
    "reason",
    "comanaged",
    "failed",
    "workloads",
    "error_code",
    "attention",
    "since",
)


def _migrate_0_to_1(conn: sa.Connection) -> None:
    """Version 0 is a store without ``schema_version``: a new, empty database, or one written
    before the schema was versioned (whose tables may lack later columns: ``rules``,
    ``fingerprint`` and ``device_states`` on snapshots, ``since`` on device states). Missing
    tables are created, missing columns added, and the device-state counts filled in."""
    inspector = sa.inspect(conn)
    existing = set(inspector.get_table_names())
    metadata.create_all(conn, tables=[t for t in DATA_TABLES if t.name not in existing])
    for table in DATA_TABLES:
        if table.name not in existing:
            continue
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            if column.primary_key or (not column.nullable and column.server_default is None):
                raise HistoryError(
                    f"cannot migrate table {table.name}: column {column.name} "
                    "is missing and has no default"
                )
            # Identifiers and types come from this module's metadata, never from input.
            ddl = sa.schema.CreateColumn(column).compile(dialect=conn.dialect)
            conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {ddl}")
    if "snapshots" in existing:
        counted = (
            sa.select(sa.func.count())
            .select_from(device_states)
            .where(device_states.c.snapshot_id == snapshots.c.id)
            .scalar_subquery()
        )
        conn.execute(snapshots.update().values(device_states=counted))
    schema_version.create(conn, checkfirst=True)


# version -> the step that brings a store at that version to the next one
MIGRATIONS: dict[int, Callable[[sa.Connection], None]] = {0: _migrate_0_to_1}


def _stored_version(conn: sa.Connection) -> int:
    if not sa.inspect(conn).has_table("schema_version"):
        return 0
    return int(conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar() or 0)


def migrate(conn: sa.Connection) -> int:
    """Bring the store to ``SCHEMA_VERSION`` inside the caller's transaction."""
    version = _stored_version(conn)
    if version > SCHEMA_VERSION:
        raise HistoryError(
            f"the history store has schema version {version}, newer than this "
            f"version of the tool understands ({SCHEMA_VERSION}): upgrade it"
        )
    start = version
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise HistoryError(f"no migration from history schema version {version}")
        step(conn)
        version += 1
    if version != start or not _has_version_row(conn):
        conn.execute(schema_version.delete())
        conn.execute(schema_version.insert().values(version=version))
    return version


def _has_version_row(conn: sa.Connection) -> bool:
    return conn.execute(sa.select(sa.func.count()).select_from(schema_version)).scalar() > 0


# -- codes -----------------------------------------------------------------------------------------


def _encode(values: pd.Series, table: Sequence[str]) -> np.ndarray:
    """Category labels to their stored codes (missing -> 0)."""
    categorical = (
        values if isinstance(values.dtype, pd.CategoricalDtype) else values.astype("category")
    )
    lookup = np.array(
        [table.index(c) if c in table else 0 for c in categorical.cat.categories.astype(str)] + [0],
        dtype=np.int64,
    )
    codes = categorical.cat.codes.to_numpy()
    return lookup[np.where(codes < 0, len(lookup) - 1, codes)]


def _decode(codes: np.ndarray, table: Sequence[str]) -> np.ndarray:
    labels = np.array([label or None for label in table] + [None], dtype=object)
    codes = np.asarray(codes, dtype=np.int64)
    return labels[np.where((codes >= 0) & (codes < len(table)), codes, len(table))]


def _error_numbers(codes: pd.Series) -> np.ndarray:
    """``0x8018002A`` -> 2149056554 as float (NaN where there is no code)."""
    categorical = (
        codes if isinstance(codes.dtype, pd.CategoricalDtype) else codes.astype("category")
    )
    lookup = np.array(
        [float(int(str(c), 16)) for c in categorical.cat.categories] + [np.nan], dtype=float
    )
    raw = categorical.cat.codes.to_numpy()
    return lookup[np.where(raw < 0, len(lookup) - 1, raw)]


def day_number(day: date) -> int:
    return day.year * 10_000 + day.month * 100 + day.day


def number_day(value: int | float | None) -> date | None:
    if value is None or value != value or int(value) <= 0:
        return None
    value = int(value)
    return date(value // 10_000, value // 100 % 100, value % 100)


def state_arrays(devices: pd.DataFrame) -> dict[str, np.ndarray]:
    """The compact state of each device (classified frame), sorted by ResourceID."""
    rid = devices["ResourceID"].to_numpy(dtype=np.int64)
    order = np.argsort(rid, kind="stable")
    bits = devices["MDMWorkloads"].to_numpy(dtype=float)
    bits = np.where(np.isnan(bits), 0, bits).astype(np.int64) & WORKLOAD_MASK
    arrays = {
        "resource_id": rid,
        "status": _encode(devices["enrollment_status"], STATUS_CODES),
        "reason": _encode(devices["reason"], REASON_CODES),
        "comanaged": devices["comanaged"].to_numpy(dtype=bool).astype(np.int64),
        "failed": devices["failed"].to_numpy(dtype=bool).astype(np.int64),
        "workloads": bits,
        "error_code": _error_numbers(devices["error_code"]),
        "attention": devices["attention"].to_numpy(dtype=np.int64),
    }
    return {name: values[order] for name, values in arrays.items()}


# -- the store -------------------------------------------------------------------------------------


def _redacted(url: sa.URL) -> str:
    return url.render_as_string(hide_password=True)


def _sqlite_engine(url: sa.URL, read_only: bool) -> sa.Engine:
    database = url.database or ""
    memory = database in ("", ":memory:")
    if read_only and not memory:
        target = Path(database).resolve().as_uri()
        engine = sa.create_engine(
            f"sqlite:///{target}?mode=ro&uri=true", connect_args={"timeout": BUSY_SECONDS}
        )
    elif memory:
        engine = sa.create_engine(
            "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
    else:
        folder = Path(database).parent
        if not folder.exists():
            private_folder(folder)
        try:
            create_private(database)  # per-device states: 0600 (SQLite's -wal, -shm follow)
        except OSError:
            pass  # a read-only place: SQLite says so when the store opens
        engine = sa.create_engine(url, connect_args={"timeout": BUSY_SECONDS})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):  # we say where transactions begin
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn):
        # A writer takes the write lock at BEGIN: two writers queue instead of deadlocking.
        immediate = conn.get_execution_options().get("history_write")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _server_engine(url: sa.URL, read_only: bool) -> sa.Engine:
    """A database server's engine (PostgreSQL for a team). Connections are checked before
    use, so a server that restarted is reconnected to without an error on a page."""
    postgres = url.get_backend_name() == "postgresql"
    connect_args = {}
    if postgres and url.get_driver_name() in ("psycopg", "psycopg2", ""):
        # A server that does not answer must not stall a page for minutes; a read-only
        # store is refused every write by the server itself, not only by this code.
        connect_args["connect_timeout"] = CONNECT_SECONDS
        if read_only:  # added to the URL's own options (a search_path, say)
            own = url.query.get("options", "")
            own = own if isinstance(own, str) else " ".join(own)
            connect_args["options"] = f"{own} -c default_transaction_read_only=on".strip()
    engine = sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    if postgres:

        @event.listens_for(engine, "begin")
        def _begin(conn):
            # Writers queue on one lock per database, as SQLite's BEGIN IMMEDIATE makes them
            # do: two processes recording the same day never interleave their deletes and
            # inserts (no unique-key races, no deadlocks). The key is this module's constant.
            if conn.get_execution_options().get("history_write"):
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")

    return engine


def site_intune_figures(estate, site: str) -> dict | None:
    """The Intune figures a site's snapshot files: Intune-only records belong to no site and
    a day sums its sites, so only the first site files them."""
    figures = estate.intune_figures()
    if figures is None or site == estate.sites[0]:
        return figures
    return {**figures, "intune_only": 0}


class HistoryStore:
    """Snapshots over time in one database (see the module docstring for the API)."""

    def __init__(
        self,
        url: str,
        history_days: int = 3650,
        device_history_days: int = 120,
        read_only: bool = False,
    ):
        try:
            parsed = make_url(url)
        except (sa.exc.ArgumentError, ValueError):
            raise HistoryError(
                "history_url is not a database URL (e.g. sqlite:///history"
                ".sqlite or postgresql+psycopg://host/db)"
            ) from None
        self.url = parsed
        self.shown = _redacted(parsed)
        self.history_days = max(1, int(history_days))
        self.device_history_days = max(1, int(device_history_days))
        self.read_only = read_only
        try:
            if parsed.get_backend_name() == "sqlite":
                self.engine = _sqlite_engine(parsed, read_only)
            else:
                self.engine = _server_engine(parsed, read_only)
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as error:
            hint = ""
            if isinstance(error, ImportError) and parsed.get_backend_name() == "postgresql":
                hint = ' (pip install "comanage-dashboard[postgres]", postgresql+psycopg://)'
            raise HistoryError(f"history store {self.shown}: {error}{hint}") from None
        self._writer = self.engine.execution_options(history_write=True)
        self._schema_lock = threading.Lock()
        self._version: int | None = None

    def __repr__(self) -> str:
        return f"HistoryStore({self.shown!r}{', read-only' if self.read_only else ''})"

    def close(self) -> None:
        self.engine.dispose()

    # -- schema ----------------------------------------------------------------------------------
    def schema_version(self) -> int:
        """The stored schema version (0: none yet)."""
        with self.engine.connect() as conn:
            return _stored_version(conn)

    def ensure_schema(self) -> bool:
        """Create or migrate the schema (writable stores); True when the store is readable.

        A read-only store is never changed: one at another version reads as empty.
        """
        if self._version == SCHEMA_VERSION:
            return True
        with self._schema_lock:
            if self._version == SCHEMA_VERSION:
                return True
            if self.read_only:
                version = self.schema_version()
                if version != SCHEMA_VERSION:
                    log.warning(
                        "history store %s has schema version %s (expected %s): not read",
                        self.shown,
                        version,
                        SCHEMA_VERSION,
                    )
                    return False
            else:
                version = self._write(migrate)
            self._version = version
            return True

    def _write(self, work: Callable[[sa.Connection], object]):
        """Run ``work`` in one write transaction, retried when it lost a race."""
        for attempt in range(WRITE_ATTEMPTS):
            try:
                with self._writer.begin() as conn:
                    return work(conn)
            except (sa.exc.IntegrityError, sa.exc.OperationalError) as error:
                transient = isinstance(error, sa.exc.IntegrityError) or any(
                    word in str(error).lower() for word in ("locked", "busy", "deadlock")
                )
                if not transient or attempt == WRITE_ATTEMPTS - 1:
                    raise
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    # -- writing ---------------------------------------------------------------------------------
    def record(
        self, estate, collections: Iterable[str] = (), recorded_at: datetime | None = None
    ) -> list[SnapshotInfo]:
        """Record the estate's snapshot for each of its sites (replacing that day's).

        ``collections``: the collection scopes to aggregate besides the whole site (the
        configuration's ``[collections] filter``). Returns what happened per site; a
        read-only store records nothing.
        """
        if self.read_only:
            return []
        self.ensure_schema()
        day = snapshot_day(estate.data_as_of)
        stamp = (recorded_at or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")
        rules = json.dumps([rule.id for rule in RULES])
        collections = list(dict.fromkeys(collections))
        parts = [self._site_part(estate, site, collections) for site in estate.sites]

        def work(conn: sa.Connection) -> list[SnapshotInfo]:
            infos = [
                self._write_site(conn, part, day, estate.data_as_of, stamp, rules) for part in parts
            ]
            if any(info.written for info in infos):
                self._prune(conn, day)
            return infos

        return self._write(work)

    @staticmethod
    def _site_part(estate, site: str, collections: list[str]) -> dict:
        devices = estate.devices
        mask = estate.mask(site)
        intune = site_intune_figures(estate, site)
        summary = summarize(devices, [], estate.data_as_of, mask, intune=intune)
        scopes = {"": metrics_from_summary(summary, errors=True)}
        for collection in collections:
            scopes[collection] = metrics_from_summary(
                summarize(
                    devices, [], estate.data_as_of, estate.mask(site, collection), intune=intune
                ),
                errors=False,
            )
        columns = [
            "ResourceID",
            "enrollment_status",
            "reason",
            "comanaged",
            "failed",
            "MDMWorkloads",
            "error_code",
            "attention",
        ]
        return {
            "site": site,
            "devices": int(summary["devices"]),
            "scopes": scopes,
            "states": state_arrays(devices.loc[mask, columns]),
        }

    def _write_site(
        self, conn: sa.Connection, part: dict, day: date, data_as_of: str, stamp: str, rules: str
    ) -> SnapshotInfo:
        site, states = part["site"], part["states"]
        since = self._since(conn, site, day, states["resource_id"], states["reason"])
        digest = hashlib.sha256(rules.encode())
        digest.update(json.dumps(part["scopes"], sort_keys=True).encode())
        for name in (
            "resource_id",
            "status",
            "reason",
            "comanaged",
            "failed",
            "workloads",
            "attention",
        ):
            digest.update(np.ascontiguousarray(states[name], dtype=np.int64).tobytes())
        digest.update(np.nan_to_num(states["error_code"], nan=-1).tobytes())
        digest.update(since.tobytes())
        fingerprint = digest.hexdigest()[:32]

        existing = conn.execute(
            sa.select(snapshots.c.id, snapshots.c.fingerprint, snapshots.c.data_as_of).where(
                snapshots.c.site == site, snapshots.c.day == day
            )
        ).first()
        if existing is not None and existing.fingerprint == fingerprint:
            if existing.data_as_of != data_as_of:  # same content, newer load: note the time
                conn.execute(
                    snapshots.update()
                    .where(snapshots.c.id == existing.id)
                    .values(data_as_of=data_as_of, recorded_at=stamp)
                )
            return SnapshotInfo(site, day, part["devices"], written=False)
        if existing is not None:
            for table in (device_states, aggregates):
                conn.execute(table.delete().where(table.c.snapshot_id == existing.id))
            conn.execute(snapshots.delete().where(snapshots.c.id == existing.id))
        snapshot_id = conn.execute(
            snapshots.insert().values(
                site=site,
                day=day,
                data_as_of=data_as_of,
                recorded_at=stamp,
                devices=part["devices"],
                device_states=len(states["resource_id"]),
                rules=rules,
                fingerprint=fingerprint,
            )
        ).inserted_primary_key[0]
        rows = [
            {"snapshot_id": snapshot_id, "collection": collection, "metric": metric, "value": value}
            for collection, metrics in part["scopes"].items()
            for metric, value in sorted(metrics.items())
        ]
        conn.execute(aggregates.insert(), rows)
        n = len(states["resource_id"])
        error_code = states["error_code"].astype(object)
        error_code[np.isnan(states["error_code"])] = None
        columns = {
            "snapshot_id": [snapshot_id] * n,
            **{
                name: states[name].tolist()
                for name in ("resource_id", "status", "reason", "comanaged", "failed", "workloads")
            },
            "error_code": [None if v is None else int(v) for v in error_code],
            "attention": states["attention"].tolist(),
            "since": since.tolist(),
        }
        insert_many(conn, device_states, columns)
        return SnapshotInfo(site, day, part["devices"], written=True)

    def _previous(self, conn: sa.Connection, site: str, day: date):
        """The site's newest snapshot before ``day`` that still has device states."""
        return conn.execute(
            sa.select(snapshots.c.id, snapshots.c.day)
            .where(snapshots.c.site == site, snapshots.c.day < day, snapshots.c.device_states > 0)
            .order_by(snapshots.c.day.desc())
            .limit(1)
        ).first()

    def _since(
        self, conn: sa.Connection, site: str, day: date, rids: np.ndarray, reasons: np.ndarray
    ) -> np.ndarray:
        keys = state_keys(reasons, IN_PROGRESS_CODES)
        previous = self._previous(conn, site, day)
        if previous is None:
            return np.full(len(rids), day_number(day), dtype=np.int64)
        stored = self._read_states(conn, previous.id, ("resource_id", "reason", "since"))
        index = pd.Index(stored["resource_id"]).get_indexer(rids)
        return carry_since(
            keys,
            day_number(day),
            index,
            state_keys(stored["reason"], IN_PROGRESS_CODES),
            stored["since"],
        )

    def _prune(self, conn: sa.Connection, day: date) -> None:
        """Retention: aggregates older than ``history_days``, device states older than
        ``device_history_days`` (but never a site's newest states: time in state carries on
        from them), both counted back from the newest snapshot."""
        newest = conn.execute(sa.select(sa.func.max(snapshots.c.day))).scalar() or day
        newest = max(newest, day)
        cutoff = newest - timedelta(days=self.history_days)
        state_cutoff = newest - timedelta(days=self.device_history_days)
        latest = (
            sa.select(sa.func.max(snapshots.c.id))
            .where(snapshots.c.device_states > 0)
            .group_by(snapshots.c.site)
        )
        keep = set(conn.execute(latest).scalars())
        old_states = [
            row.id
            for row in conn.execute(
                sa.select(snapshots.c.id).where(
                    snapshots.c.day < state_cutoff, snapshots.c.device_states > 0
                )
            )
            if row.id not in keep
        ]
        for snapshot_id in old_states:
            conn.execute(device_states.delete().where(device_states.c.snapshot_id == snapshot_id))
            conn.execute(
                snapshots.update().where(snapshots.c.id == snapshot_id).values(device_states=0)
            )
        old = list(
            conn.execute(sa.select(snapshots.c.id).where(snapshots.c.day < cutoff)).scalars()
        )
        for snapshot_id in old:
            for table in (device_states, aggregates):
                conn.execute(table.delete().where(table.c.snapshot_id == snapshot_id))
            conn.execute(snapshots.delete().where(snapshots.c.id == snapshot_id))

    def prune(self, day: date | None = None) -> None:
        """Apply retention now (``record`` does it after each write)."""
        if self.read_only:
            return
        self.ensure_schema()
        self._write(lambda conn: self._prune(conn, day or date.today()))

    # -- reading ---------------------------------------------------------------------------------
    @staticmethod
    def _read_states(
        conn: sa.Connection, snapshot_id: int, columns: Sequence[str] = STATE_COLUMNS
    ) -> dict[str, np.ndarray]:
        """One snapshot's device states as arrays (NULL ``since`` -> 0, NULL code -> NaN).

        Read through the driver's cursor (same connection and transaction, the snapshot id
        bound): a million rows arrive in about a second instead of four through Core rows.
        """
        selected = [
            sa.func.coalesce(device_states.c[name], -1 if name == "error_code" else 0)
            for name in columns
        ]
        query = sa.select(*selected).where(device_states.c.snapshot_id == snapshot_id)
        compiled = query.compile(dialect=conn.dialect)
        params = compiled.construct_params()
        args = (
            tuple(params[name] for name in compiled.positiontup) if compiled.positional else params
        )
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            cursor.execute(compiled.string, args)
            rows = cursor.fetchall()
        finally:
            cursor.close()
        table = np.array(rows, dtype=np.int64).reshape(len(rows), len(columns))
        out = {}
        for index, name in enumerate(columns):
            values = table[:, index]
            out[name] = (
                np.where(values < 0, np.nan, values) if name == "error_code" else values.copy()
            )
        return out

    def _site_filter(self, site: str | None):
        return [] if not site else [snapshots.c.site == site]

    def snapshots(self, site: str | None = None) -> pd.DataFrame:
        """Every snapshot: site, day, data_as_of, recorded_at, devices, device_states."""
        columns = ["site", "day", "data_as_of", "recorded_at", "devices", "device_states"]
        if not self.ensure_schema():
            return pd.DataFrame(columns=columns)
        query = (
            sa.select(*[snapshots.c[name] for name in columns])
            .where(*self._site_filter(site))
            .order_by(snapshots.c.day, snapshots.c.site)
        )
        with self.engine.connect() as conn:
            return pd.DataFrame(conn.execute(query).all(), columns=columns)

    def days(self, site: str | None = None, with_devices: bool = False) -> list[date]:
        """The snapshot days (of any site, or of ``site``), oldest first."""
        if not self.ensure_schema():
            return []
        conditions = self._site_filter(site)
        if with_devices:
            conditions.append(snapshots.c.device_states > 0)
        query = sa.select(snapshots.c.day).where(*conditions).distinct().order_by(snapshots.c.day)
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def reference_day(
        self, day: date, min_age_days: int = 7, site: str | None = None, with_devices: bool = False
    ) -> date | None:
        """The newest snapshot day at least ``min_age_days`` before ``day`` (the week-ago
        snapshot of week-over-week figures), or None."""
        if not self.ensure_schema():
            return None
        conditions = [
            *self._site_filter(site),
            snapshots.c.day <= day - timedelta(days=min_age_days),
        ]
        if with_devices:
            conditions.append(snapshots.c.device_states > 0)
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.max(snapshots.c.day)).where(*conditions)).scalar()

    def aggregates(
        self, day: date, site: str | None = None, collection: str | None = None
    ) -> dict[str, int] | None:
        """``{metric: count}`` on ``day`` for a scope, summed over the sites that have a
        snapshot that day; None when none has."""
        frame = self.trend(site, collection, start=day, end=day)
        if frame.empty:
            return None
        row = frame.iloc[0]
        return {name: int(value) for name, value in row.items() if name != "sites"}

    def trend(
        self,
        site: str | None = None,
        collection: str | None = None,
        start: date | None = None,
        end: date | None = None,
    ) -> pd.DataFrame:
        """One row per snapshot day (index ``day``, oldest first), one column per metric
        summed over sites (missing metrics 0), and ``sites``: how many sites it sums."""
        if not self.ensure_schema():
            return pd.DataFrame(columns=["sites"], index=pd.Index([], name="day"))
        conditions = [*self._site_filter(site), aggregates.c.collection == (collection or "")]
        if start is not None:
            conditions.append(snapshots.c.day >= start)
        if end is not None:
            conditions.append(snapshots.c.day <= end)
        joined = aggregates.join(snapshots, aggregates.c.snapshot_id == snapshots.c.id)
        query = (
            sa.select(
                snapshots.c.day,
                aggregates.c.metric,
                sa.func.sum(aggregates.c.value).label("value"),
                sa.func.count().label("sites"),
            )
            .select_from(joined)
            .where(*conditions)
            .group_by(snapshots.c.day, aggregates.c.metric)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        if not rows:
            return pd.DataFrame(columns=["sites"], index=pd.Index([], name="day"))
        long = pd.DataFrame(rows, columns=["day", "metric", "value", "sites"])
        frame = long.pivot(index="day", columns="metric", values="value").fillna(0)
        frame = frame.astype("int64")
        sites = long.loc[long["metric"] == "devices"].set_index("day")["sites"]
        frame["sites"] = sites.reindex(frame.index).fillna(0).astype("int64")
        frame.columns.name = None
        return frame.sort_index()

    def device_states(self, day: date, site: str | None = None) -> pd.DataFrame:
        """Decoded device states of ``day``: site, ResourceID, enrollment_status, reason,
        comanaged, failed, workloads, error_code, attention (bits), since (date)."""
        columns = [
            "site",
            "ResourceID",
            "enrollment_status",
            "reason",
            "comanaged",
            "failed",
            "workloads",
            "error_code",
            "attention",
            "since",
        ]
        if not self.ensure_schema():
            return pd.DataFrame(columns=columns)
        parts = []
        with self.engine.connect() as conn:
            found = conn.execute(
                sa.select(snapshots.c.id, snapshots.c.site)
                .where(snapshots.c.day == day, *self._site_filter(site))
                .order_by(snapshots.c.site)
            ).all()
            for snapshot_id, snapshot_site in found:
                parts.append(_decoded(snapshot_site, self._read_states(conn, snapshot_id)))
        if not parts:
            return pd.DataFrame(columns=columns)
        return pd.concat(parts, ignore_index=True)[columns]

    def timeline(self, site: str, resource_id: int) -> pd.DataFrame:
        """One device's stored states, oldest first: day, enrollment_status, reason,
        comanaged, failed, workloads, error_code (``0x...`` or None), attention (rule ids),
        since."""
        columns = [
            "day",
            "enrollment_status",
            "reason",
            "comanaged",
            "failed",
            "workloads",
            "error_code",
            "attention",
            "since",
        ]
        if not self.ensure_schema():
            return pd.DataFrame(columns=columns)
        query = (
            sa.select(
                snapshots.c.day,
                snapshots.c.rules,
                *[device_states.c[name] for name in STATE_COLUMNS[1:]],
            )
            .select_from(
                device_states.join(snapshots, device_states.c.snapshot_id == snapshots.c.id)
            )
            .where(snapshots.c.site == site, device_states.c.resource_id == int(resource_id))
            .order_by(snapshots.c.day)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        out = []
        for row in rows:
            rules = json.loads(row.rules) if row.rules else [rule.id for rule in RULES]
            out.append(
                {
                    "day": row.day,
                    "enrollment_status": _decode([row.status], STATUS_CODES)[0],
                    "reason": _decode([row.reason], REASON_CODES)[0],
                    "comanaged": bool(row.comanaged),
                    "failed": bool(row.failed),
                    "workloads": int(row.workloads),
                    "error_code": None if row.error_code is None else f"0x{row.error_code:08X}",
                    "attention": [
                        rule for bit, rule in enumerate(rules) if int(row.attention) >> bit & 1
                    ],
                    "since": number_day(row.since),
                }
            )
        return pd.DataFrame(out, columns=columns)

    def changes(self, devices: pd.DataFrame, since_day: date) -> dict[str, np.ndarray]:
        """Which of ``devices`` (classified: site, ResourceID, comanaged, failed) changed
        since ``since_day``, per ``CHANGE_KINDS``. Only sites with device states stored that
        day are compared; the others match no change."""
        n = len(devices)
        out = {kind: np.zeros(n, dtype=bool) for kind in CHANGE_KINDS}
        if not self.ensure_schema():
            return out
        site_of = devices["site"].astype(str).to_numpy()
        with self.engine.connect() as conn:
            found = conn.execute(
                sa.select(snapshots.c.id, snapshots.c.site).where(
                    snapshots.c.day == since_day, snapshots.c.device_states > 0
                )
            ).all()
            for snapshot_id, site in found:
                rows = np.flatnonzero(site_of == site)
                if not len(rows):
                    continue
                stored = self._read_states(
                    conn, snapshot_id, ("resource_id", "comanaged", "failed")
                )
                index = pd.Index(stored["resource_id"]).get_indexer(
                    devices["ResourceID"].to_numpy(dtype=np.int64)[rows]
                )
                known = index >= 0
                safe = np.where(known, index, 0)  # device_states > 0: never empty
                was_comanaged = stored["comanaged"][safe] == 1
                was_failed = stored["failed"][safe] == 1
                found_changes = transitions(
                    devices["comanaged"].to_numpy(dtype=bool)[rows],
                    devices["failed"].to_numpy(dtype=bool)[rows],
                    known,
                    was_comanaged,
                    was_failed,
                )
                for kind, mask in found_changes.items():
                    out[kind][rows] = mask
        return out

    def state_since(self, devices: pd.DataFrame, day: date) -> np.ndarray:
        """The first day of each device's current state (``datetime64[D]``), carried from
        each site's newest snapshot before ``day``; ``day`` itself when unknown."""
        since = np.full(len(devices), np.datetime64(day, "D"))
        if not self.ensure_schema():
            return since
        site_of = devices["site"].astype(str).to_numpy()
        rids = devices["ResourceID"].to_numpy(dtype=np.int64)
        reasons = _encode(devices["reason"], REASON_CODES)
        with self.engine.connect() as conn:
            for site in pd.unique(site_of):
                rows = np.flatnonzero(site_of == site)
                numbers = self._since(conn, str(site), day, rids[rows], reasons[rows])
                since[rows] = _number_dates(numbers)
        return since


def _number_dates(numbers: np.ndarray) -> np.ndarray:
    numbers = np.asarray(numbers, dtype=np.int64)
    text = np.char.add(
        np.char.add((numbers // 10_000).astype(str), "-"),
        np.char.zfill((numbers // 100 % 100).astype(str), 2),
    )
    text = np.char.add(np.char.add(text, "-"), np.char.zfill((numbers % 100).astype(str), 2))
    return text.astype("datetime64[D]")


def _decoded(site: str, states: dict[str, np.ndarray]) -> pd.DataFrame:
    codes = states["error_code"]
    error = np.array([None if np.isnan(v) else f"0x{int(v):08X}" for v in codes], dtype=object)
    return pd.DataFrame(
        {
            "site": site,
            "ResourceID": states["resource_id"],
            "enrollment_status": _decode(states["status"], STATUS_CODES),
            "reason": _decode(states["reason"], REASON_CODES),
            "comanaged": states["comanaged"] == 1,
            "failed": states["failed"] == 1,
            "workloads": states["workloads"],
            "error_code": error,
            "attention": states["attention"],
            "since": [number_day(v) for v in states["since"]],
        }
    )


def insert_many(
    conn: sa.Connection, table: sa.Table, columns: dict[str, list], chunk: int = CHUNK_ROWS
) -> None:
    """Bulk insert columns of equal length: executemany in chunks, values always bound.

    PostgreSQL through psycopg gets COPY (``_copy_rows``). Positional drivers (SQLite, pyodbc)
    get the compiled INSERT with tuples, which skips SQLAlchemy's per-row parameter
    processing (four times faster at a million rows; the columns are plain integers, so
    there is nothing to process); the others get the Core insert with a list of dicts.
    """
    names = list(columns)
    n = len(columns[names[0]]) if names else 0
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        _copy_rows(conn, table, columns)
        return
    statement = table.insert()
    compiled = statement.compile(dialect=conn.dialect, column_keys=names)
    order = list(compiled.positiontup or []) if compiled.positional else []
    fast = bool(order) and set(order) == set(names)
    for start in range(0, n, chunk):
        part = [columns[name][start : start + chunk] for name in (order if fast else names)]
        if fast:
            conn.exec_driver_sql(compiled.string, list(zip(*part, strict=True)))
        else:
            conn.execute(
                statement, [dict(zip(names, row, strict=True)) for row in zip(*part, strict=True)]
            )


def _copy_rows(conn: sa.Connection, table: sa.Table, columns: dict[str, list]) -> None:
    """PostgreSQL: the rows through COPY in the caller's transaction (recording 100,000
    devices took a third of the time it took with INSERTs). Values travel in the COPY data,
    never in the statement; the table and column names are this module's own."""
    names = list(columns)
    statement = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        with cursor.copy(statement) as copy:
            for row in zip(*(columns[name] for name in names), strict=True):
                copy.write_row(row)
    finally:
        cursor.close()


# -- settings --------------------------------------------------------------------------------------


def history_url(settings: Settings) -> str | None:
    """The configured store's URL: ``history_url``, else ``history.sqlite`` beside the config
    file; None when history is off (or there is no config file to sit beside)."""
    from ..settings import _resolve_sqlite

    value = str(settings.history_url or "").strip()
    if value.lower() in DISABLED:
        return None
    base = settings.config_path.parent if settings.config_path is not None else None
    if not value:
        if base is None:
            return None
        return "sqlite:///" + str((base / "history.sqlite").resolve())
    if settings.bundled_sample:  # a store of one's own: never inside the (read-only) package
        base = settings.work_folder
    if "://" not in value:  # a plain file path
        path = Path(value)
        if not path.is_absolute():
            path = (base or Path.cwd()) / path
        return "sqlite:///" + str(path.resolve())
    return _resolve_sqlite(value, base or Path.cwd())


def open_history(settings: Settings, read_only: bool = False) -> HistoryStore | None:
    """The configured history store, or None when history is off, or when reading only and
    the SQLite file does not exist yet. Raises ``HistoryError`` for a malformed URL."""
    url = history_url(settings)
    if url is None:
        return None
    try:
        parsed = make_url(url)
    except (sa.exc.ArgumentError, ValueError):
        raise HistoryError(
            "history_url is not a database URL (e.g. sqlite:///history.sqlite "
            "or postgresql+psycopg://host/db)"
        ) from None
    if settings.bundled_sample and not str(settings.history_url or "").strip():
        # The bundled history is read, never written: it may sit in a read-only
        # site-packages, and its pinned date is recorded already.
        read_only = True
    if read_only and parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or not Path(database).exists():
            return None
    return HistoryStore(
        url,
        history_days=settings.history_days,
        device_history_days=settings.device_history_days,
        read_only=read_only,
    )


def recording_loader(
    loader: Callable[[Settings], object], history: HistoryStore
) -> Callable[[Settings], object]:
    """Wrap an estate loader: time in state from ``history`` before attention is evaluated
    (for ``load_estate``), then the snapshot recorded. A history failure is logged and never
    fails the load: serving matters more than history."""

    def load(settings: Settings, **options):
        if loader is load_estate:
            estate = load_estate(settings, history=history, **options)
        else:
            estate = loader(settings)
        if not history.read_only:
            try:
                started = time.perf_counter()
                infos = history.record(estate, settings.collections)
                log.info(
                    "history: %s in %.1f s",
                    ", ".join(
                        f"{i.site} {i.day} {'recorded' if i.written else 'unchanged'}"
                        for i in infos
                    ),
                    time.perf_counter() - started,
                )
            except Exception as error:
                log.warning(
                    "history: cannot record the snapshot in %s: %s", history.shown, one_line(error)
                )
        return estate

    load.history = history  # type: ignore[attr-defined]
    return load


__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "HistoryError",
    "HistoryStore",
    "SnapshotInfo",
    "history_url",
    "open_history",
    "recording_loader",
    "snapshot_day",
]
