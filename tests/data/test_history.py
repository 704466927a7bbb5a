"""The history store: snapshots per site per day, transactions, retention, transitions,
migrations and concurrent writers."""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys
import textwrap
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from dashboard.data import history as history_module
from dashboard.data.estate import Estate, load_estate
from dashboard.data.history import (
    SCHEMA_VERSION,
    HistoryError,
    HistoryStore,
    history_url,
    open_history,
    recording_loader,
    site_intune_figures,
)
from dashboard.data.sample_command import main_sample
from dashboard.model.attention import RULE_BITS
from dashboard.model.summary import summarize
from dashboard.model.trends import metrics_from_summary
from dashboard.settings import load_settings, settings_from_dict
from dashboard.store import EstateStore
from tests.factories import classified

ROOT = Path(__file__).resolve().parents[2]
DAY = date(2026, 11, 23)
ENROLLING = {"MDMEnrolled": "0", "EnrollmentScheduled": "0", "MDMWorkloads": "8193"}
SCHEDULED = {"MDMEnrolled": "0", "EnrollmentScheduled": "1", "PendingLogon": "0"}
PENDING = {"MDMEnrolled": "0", "PendingLogon": "1", "MDMWorkloads": ""}
FAILED = {
    "MDMEnrolled": "0",
    "EnrollmentFailed": "1",
    "EnrollmentStatusCode": "0x80180002",
    "MDMWorkloads": "",
}
COMANAGED: dict = {}
NO_POLICY = {"MDMEnrolled": "0", "ComgmtPolicyPresent": "0", "MDMWorkloads": ""}


def stamp(day: date) -> str:
    return f"{day.isoformat()}T07:00:00+00:00"


def estate_of(
    devices: list[dict],
    day: date = DAY,
    rids: list[int] | None = None,
    history: HistoryStore | None = None,
    site: str = "PS1",
) -> Estate:
    """A hand-made estate (``tests/factories``) as of ``day``; ``history`` adds time in
    state like a load does."""
    frame = classified(devices, as_of=pd.Timestamp(day) + pd.Timedelta(hours=7))
    if rids is not None:
        frame["ResourceID"] = np.asarray(rids, dtype=np.int64)
    frame["site"] = site
    if history is not None:
        from dashboard.model.attention import Thresholds, evaluate

        frame["state_since"] = pd.to_datetime(history.state_since(frame, day)).as_unit("s")
        frame = evaluate(frame, Thresholds(), pd.Timestamp(day) + pd.Timedelta(hours=7))
    memberships = pd.DataFrame(
        {
            "site": pd.Series(dtype=str),
            "ResourceID": pd.Series(dtype=np.int64),
            "CollectionID": pd.Series(dtype=str),
            "CollectionName": pd.Series(dtype=str),
            "row": pd.Series(dtype=np.int64),
        }
    )
    return Estate(devices=frame, memberships=memberships, sources=[], data_as_of=stamp(day))


@pytest.fixture
def store(history_db) -> HistoryStore:
    """A new store: a SQLite file, then a PostgreSQL database (``history_db``)."""
    history = HistoryStore(history_db)
    yield history
    history.close()


@pytest.fixture(scope="module")
def sample_config(tmp_path_factory) -> Path:
    """A generated 600-device estate (two sites, every collection) without history."""
    return main_sample(
        600, 11, tmp_path_factory.mktemp("estate"), quiet=True, as_of="2026-11-23T07:00:00Z"
    )


@pytest.fixture(scope="module")
def sample_estate(sample_config):
    return load_estate(load_settings(sample_config))


def rows(history: HistoryStore, table: str) -> int:
    with history.engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def postgres(url: str) -> bool:
    return sa.make_url(url).get_backend_name() == "postgresql"


def stored_bytes(url: str):
    """What any write changes: the SQLite file's bytes; on PostgreSQL every row's version
    (an insert, update or delete gives rows a new ``ctid`` / ``xmin``)."""
    if not postgres(url):
        return digest(Path(sa.make_url(url).database))
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            tables = sa.inspect(conn).get_table_names()
            return sorted(
                conn.execute(
                    sa.text(
                        " UNION ALL ".join(
                            f"SELECT '{table}', ctid::text, xmin::text FROM {table}"
                            for table in sorted(tables)
                        )
                    )
                ).all()
            )
    finally:
        engine.dispose()


# -- recording -----------------------------------------------------------------------------------


def test_record_writes_aggregates_and_device_states(store, sample_estate, sample_config):
    settings = load_settings(sample_config)
    infos = store.record(sample_estate, settings.collections)
    assert [(i.site, i.day, i.written) for i in infos] == [("PS1", DAY, True), ("PS2", DAY, True)]
    assert store.schema_version() == SCHEMA_VERSION
    assert store.days() == [DAY]
    devices = sample_estate.devices
    # Aggregates per site and per site x collection are the summary's numbers.
    for site in ("PS1", "PS2"):
        for collection in (None, "CAS00102"):
            expected = metrics_from_summary(
                summarize(
                    devices,
                    [],
                    sample_estate.data_as_of,
                    sample_estate.mask(site, collection),
                    site_intune_figures(sample_estate, site),
                ),
                errors=collection is None,
            )
            assert store.aggregates(DAY, site, collection) == expected
    whole = summarize(devices, [], sample_estate.data_as_of)
    assert store.aggregates(DAY)["comanaged"] == whole["comanaged"]
    assert store.aggregates(DAY)["devices"] == len(devices) == 600
    assert rows(store, "device_states") == 600
    states = store.device_states(DAY)
    assert len(states) == 600 and set(states["site"]) == {"PS1", "PS2"}
    merged = states.merge(
        devices[["site", "ResourceID", "comanaged", "failed", "attention"]].astype({"site": str}),
        on=["site", "ResourceID"],
        suffixes=("", "_now"),
    )
    assert (merged["comanaged"] == merged["comanaged_now"]).all()
    assert (merged["failed"] == merged["failed_now"]).all()
    assert (merged["attention"] == merged["attention_now"]).all()


def test_same_day_again_replaces_and_identical_content_writes_nothing(history_db):
    store = HistoryStore(history_db)
    first = estate_of([COMANAGED, ENROLLING, FAILED])
    store.record(first)
    before = stored_bytes(history_db)
    again = store.record(estate_of([COMANAGED, ENROLLING, FAILED]))
    assert [i.written for i in again] == [False]
    assert stored_bytes(history_db) == before  # nothing written at all
    # Different data on the same day: replaced, still one snapshot for (PS1, day).
    changed = store.record(estate_of([COMANAGED, COMANAGED, FAILED, COMANAGED]))
    assert [i.written for i in changed] == [True]
    assert len(store.snapshots()) == 1
    assert rows(store, "device_states") == 4
    assert store.aggregates(DAY)["comanaged"] == 3
    # A later load of the same data on the same day only updates the time.
    later = estate_of([COMANAGED, COMANAGED, FAILED, COMANAGED])
    later.data_as_of = f"{DAY.isoformat()}T09:30:00+00:00"
    assert [i.written for i in store.record(later)] == [False]
    assert store.snapshots()["data_as_of"].tolist() == [later.data_as_of]
    store.close()


def test_a_crash_mid_snapshot_leaves_the_previous_one_whole(store, monkeypatch):
    store.record(estate_of([COMANAGED, ENROLLING, FAILED]))
    before = (
        store.snapshots().to_dict("records"),
        store.aggregates(DAY),
        store.device_states(DAY).to_dict("records"),
    )
    original = history_module.insert_many

    def crash_after_first_chunk(conn, table, columns, chunk=history_module.CHUNK_ROWS):
        first = {name: values[:2] for name, values in columns.items()}
        original(conn, table, first, chunk=1)  # half the rows are in ...
        raise OSError("disk full")  # ... when the write dies

    monkeypatch.setattr(history_module, "insert_many", crash_after_first_chunk)
    with pytest.raises(OSError, match="disk full"):
        store.record(estate_of([COMANAGED, COMANAGED, COMANAGED, COMANAGED, COMANAGED]))
    monkeypatch.undo()
    assert (
        store.snapshots().to_dict("records"),
        store.aggregates(DAY),
        store.device_states(DAY).to_dict("records"),
    ) == before
    assert rows(store, "device_states") == 3


def test_retention_prunes_aggregates_and_device_states(history_db):
    store = HistoryStore(history_db, history_days=30, device_history_days=10)
    days = [DAY - timedelta(days=7 * w) for w in range(8, -1, -1)]  # 9 weekly snapshots
    for day in days:
        store.record(estate_of([COMANAGED, ENROLLING], day))
    newest = days[-1]
    assert store.days() == [d for d in days if d >= newest - timedelta(days=30)]
    assert store.days(with_devices=True) == [d for d in days if d >= newest - timedelta(days=10)]
    kept = store.snapshots()
    assert rows(store, "aggregates") > 0
    with store.engine.connect() as conn:
        orphans = conn.execute(
            sa.text(
                "SELECT COUNT(*) FROM aggregates WHERE snapshot_id NOT IN (SELECT id FROM "
                "snapshots)"
            )
        ).scalar()
    assert orphans == 0
    assert rows(store, "device_states") == 2 * len(kept[kept["device_states"] > 0])
    store.close()


def test_the_newest_device_states_are_never_pruned(history_db):
    """Weekly snapshots with one day of device retention: time in state still carries on."""
    store = HistoryStore(history_db, device_history_days=1)
    start = DAY - timedelta(days=21)
    for week in range(4):
        day = start + timedelta(days=7 * week)
        store.record(estate_of([ENROLLING], day, history=store))
    assert store.days(with_devices=True) == [DAY]
    assert store.device_states(DAY)["since"].tolist() == [start]


# -- transitions and time in state ----------------------------------------------------------------


def test_transitions_between_two_days_are_exact(store):
    week_ago = DAY - timedelta(days=7)
    store.record(
        estate_of(
            [COMANAGED, FAILED, ENROLLING, COMANAGED, PENDING, NO_POLICY],
            week_ago,
            rids=[1, 2, 3, 4, 5, 6],
        )
    )
    now = estate_of(
        [COMANAGED, COMANAGED, FAILED, FAILED, PENDING, COMANAGED, FAILED],
        DAY,
        rids=[1, 2, 3, 4, 5, 7, 8],
    )
    changes = store.changes(now.devices, week_ago)
    found = {kind: set(now.devices["ResourceID"][mask]) for kind, mask in changes.items()}
    assert found == {
        "newly_comanaged": {2, 7},  # 7 is new since: not co-managed then
        "newly_failed": {3, 4, 8},
        "fell_back": {4},
    }
    # A day without a snapshot compares nothing; another site is not compared.
    assert not any(mask.any() for mask in store.changes(now.devices, DAY).values())
    other = estate_of([COMANAGED], DAY, rids=[2], site="PS2")
    assert not any(mask.any() for mask in store.changes(other.devices, week_ago).values())


def test_time_in_state_carries_and_folds_the_in_progress_states(store):
    start = DAY - timedelta(days=21)
    plan = [
        [SCHEDULED, COMANAGED, ENROLLING],
        [ENROLLING, COMANAGED, FAILED],
        [PENDING, ENROLLING, FAILED],
    ]  # three weekly snapshots
    for week, devices in enumerate(plan):
        store.record(estate_of(devices, start + timedelta(days=7 * week), history=store))
    now = estate_of([PENDING, ENROLLING, FAILED], DAY, history=store)
    since = pd.to_datetime(now.devices["state_since"]).dt.date.tolist()
    # scheduled -> enrolling -> pending: one run; co-managed -> enrolling: new state.
    assert since == [start, start + timedelta(days=14), start + timedelta(days=7)]
    days_in_state = [(DAY - d).days for d in since]
    assert days_in_state == [21, 7, 14]
    stuck = (now.devices["attention"].to_numpy() & RULE_BITS["stuck"]) != 0
    assert stuck.tolist() == [True, False, False]  # failed is not "in progress"
    timeline = store.timeline("PS1", 1)
    assert timeline["reason"].tolist() == ["scheduled", "enrolling", "pending-sign-in"]
    assert timeline["since"].tolist() == [start] * 3


# -- schema ---------------------------------------------------------------------------------------


def test_an_empty_database_is_migrated(history_db):
    if not postgres(history_db):
        Path(sa.make_url(history_db).database).touch()  # an empty file
    store = HistoryStore(history_db)
    assert store.schema_version() == 0
    store.record(estate_of([COMANAGED]))
    assert store.schema_version() == SCHEMA_VERSION
    assert store.days() == [DAY]


def _legacy_store(url: str) -> None:
    """A store written before the schema was versioned (no schema_version table, snapshots
    without rules / fingerprint / device_states count, device states without since)."""
    key = "SERIAL PRIMARY KEY" if postgres(url) else "INTEGER PRIMARY KEY"
    script = f"""
            CREATE TABLE snapshots (id {key}, site VARCHAR(64) NOT NULL,
                day DATE NOT NULL, data_as_of VARCHAR(40) NOT NULL,
                recorded_at VARCHAR(40) NOT NULL, devices INTEGER NOT NULL,
                UNIQUE (site, day));
            CREATE TABLE aggregates (snapshot_id INTEGER, collection VARCHAR(64),
                metric VARCHAR(160), value BIGINT NOT NULL,
                PRIMARY KEY (snapshot_id, collection, metric));
            CREATE TABLE device_states (snapshot_id INTEGER, resource_id BIGINT,
                status SMALLINT NOT NULL, reason SMALLINT NOT NULL, comanaged SMALLINT NOT NULL,
                failed SMALLINT NOT NULL, workloads INTEGER NOT NULL, error_code BIGINT,
                attention BIGINT NOT NULL, PRIMARY KEY (snapshot_id, resource_id));
            INSERT INTO snapshots (site, day, data_as_of, recorded_at, devices)
                VALUES ('PS1', '2026-11-16', '2026-11-16T07:00:00+00:00',
                        '2026-11-16T07:00:05+00:00', 2);
            INSERT INTO aggregates VALUES (1, '', 'devices', 2), (1, '', 'comanaged', 1);
            INSERT INTO device_states VALUES (1, 1, 1, 0, 1, 0, 2, NULL, 0),
                                             (1, 2, 3, 10, 0, 0, 0, NULL, 0)
        """
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in script.split(";"):
            conn.exec_driver_sql(statement)
    engine.dispose()


def test_an_unversioned_older_store_is_migrated_not_rejected(history_db):
    _legacy_store(history_db)
    store = HistoryStore(history_db)
    assert store.schema_version() == 0
    assert store.ensure_schema()
    assert store.schema_version() == SCHEMA_VERSION
    columns = {c["name"] for c in sa.inspect(store.engine).get_columns("device_states")}
    assert "since" in columns
    week_ago = DAY - timedelta(days=7)
    assert store.days(with_devices=True) == [week_ago]  # the count was filled in
    assert store.aggregates(week_ago) == {"devices": 2, "comanaged": 1}
    assert store.timeline("PS1", 2)["reason"].tolist() == ["enrolling"]
    # New snapshots build on the old ones (an unknown "since" starts today).
    store.record(estate_of([COMANAGED, ENROLLING], DAY, history=store))
    assert store.days() == [week_ago, DAY]
    changes = store.changes(estate_of([COMANAGED, COMANAGED]).devices, week_ago)
    assert changes["newly_comanaged"].tolist() == [False, True]
    store.close()


def test_migrations_run_in_order_once(history_db, monkeypatch):
    store = HistoryStore(history_db)
    store.record(estate_of([COMANAGED]))
    store.close()
    ran = []

    def to_two(conn):
        ran.append(2)
        conn.exec_driver_sql("CREATE TABLE notes (text VARCHAR(20))")

    monkeypatch.setattr(history_module, "SCHEMA_VERSION", 2)
    monkeypatch.setitem(history_module.MIGRATIONS, 1, to_two)
    upgraded = HistoryStore(history_db)
    assert upgraded.ensure_schema()
    assert upgraded.schema_version() == 2 and ran == [2]
    assert HistoryStore(history_db).ensure_schema() and ran == [2]
    assert upgraded.days() == [DAY]  # the data survived


def test_a_newer_schema_is_refused(history_db):
    store = HistoryStore(history_db)
    store.record(estate_of([COMANAGED]))
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE schema_version SET version = 99"))
    store.close()
    with pytest.raises(HistoryError, match="schema version 99"):
        HistoryStore(history_db).ensure_schema()
    assert HistoryStore(history_db, read_only=True).days() == []  # read: empty


def test_read_only_never_writes(history_db):
    writer = HistoryStore(history_db)
    writer.record(estate_of([COMANAGED]))
    writer.close()
    before = stored_bytes(history_db)
    reader = HistoryStore(history_db, read_only=True)
    assert reader.record(estate_of([COMANAGED, FAILED])) == []
    assert reader.days() == [DAY]
    # The database itself refuses: even a statement this code never sends fails.
    with pytest.raises(sa.exc.DBAPIError, match=r"read-?only"), reader.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM snapshots"))
    reader.close()
    assert stored_bytes(history_db) == before


def test_values_are_bound_parameters(store):
    """A collection ID or site with quotes round-trips: nothing is pasted into SQL."""
    estate = estate_of([COMANAGED], site="P'S1; DROP TABLE snapshots;--")
    store.record(estate, collections=["CAS'001"])
    assert store.snapshots()["site"].tolist() == ["P'S1; DROP TABLE snapshots;--"]
    assert store.aggregates(DAY, collection="CAS'001") == {"devices": 0, "comanaged": 0}


# -- two writers ----------------------------------------------------------------------------------

WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from dashboard.data.estate import load_estate
    from dashboard.data import history
    from dashboard.data.history import HistoryStore
    from dashboard.settings import load_settings

    history.WRITE_ATTEMPTS = 1  # writers queue (SQLite's write lock, PostgreSQL's advisory
    # lock): none may lose a race and need the retry
    config, url, ready, go, rounds = sys.argv[1:6]
    settings = load_settings(config)
    estate = load_estate(settings)
    store = HistoryStore(url)
    Path(ready).touch()
    while not Path(go).exists():
        time.sleep(0.005)
    for _ in range(int(rounds)):
        store.record(estate, settings.collections)
""")


def test_two_writers_at_once_never_duplicate_a_day(
    tmp_path, history_db, sample_config, sample_estate
):
    url = history_db
    go = tmp_path / "go"
    # Two processes with different data for the same day, started together.
    other = tmp_path / "other"
    other_config = main_sample(450, 12, other, quiet=True, as_of="2026-11-23T07:00:00Z")
    processes, ready = [], []
    for index, config in enumerate((sample_config, other_config)):
        flag = tmp_path / f"ready-{index}"
        ready.append(flag)
        processes.append(
            subprocess.Popen(
                [sys.executable, "-c", WRITER, str(config), url, str(flag), str(go), "3"],
                cwd=ROOT,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    deadline = time.monotonic() + 120
    while not all(flag.exists() for flag in ready):
        assert time.monotonic() < deadline, "writers did not start"
        assert all(p.poll() is None for p in processes), [p.stderr.read() for p in processes]
        time.sleep(0.02)
    go.touch()
    for process in processes:
        assert process.wait(timeout=300) == 0, process.stderr.read()
    store = HistoryStore(url)
    snapshots = store.snapshots()
    assert sorted(snapshots["site"]) == ["PS1", "PS2"]  # one per (site, day), no duplicate
    for row in snapshots.itertuples():
        assert row.device_states == row.devices
    assert rows(store, "device_states") == int(snapshots["devices"].sum())
    # Whichever wrote last, each site's snapshot is whole: aggregates agree with states.
    states = store.device_states(DAY)
    for site, group in states.groupby("site"):
        assert store.aggregates(DAY, site)["devices"] == len(group)
        assert store.aggregates(DAY, site)["comanaged"] == int(group["comanaged"].sum())


# -- wiring ---------------------------------------------------------------------------------------


def test_history_url_defaults_beside_the_config(tmp_path):
    config = tmp_path / "conf" / "comanage.toml"
    raw = {"sources": [{"site": "PS1", "csv": "PS1"}]}
    settings = settings_from_dict(raw, config)
    assert history_url(settings) == f"sqlite:///{(config.parent / 'history.sqlite').resolve()}"
    assert history_url(settings_from_dict(raw | {"history_url": "off"}, config)) is None
    assert (
        history_url(settings_from_dict(raw | {"history_url": "hist/h.db"}, config))
        == f"sqlite:///{(config.parent / 'hist' / 'h.db').resolve()}"
    )
    assert (
        history_url(settings_from_dict(raw | {"history_url": "sqlite:///h.db"}, config))
        == f"sqlite:///{(config.parent / 'h.db').resolve()}"
    )
    team = "postgresql+psycopg://reporter:secret@db.contoso.com/comanage"
    assert history_url(settings_from_dict(raw | {"history_url": team}, config)) == team
    assert open_history(settings, read_only=True) is None  # no file yet: nothing to read
    for wrong in ("://x", "postgresql://u@h:notaport/db"):
        with pytest.raises(HistoryError, match="not a database URL"):
            open_history(settings_from_dict(raw | {"history_url": wrong}, config))
    with pytest.raises(HistoryError, match="nope"):
        open_history(settings_from_dict(raw | {"history_url": "nope://host/db"}, config))
    try:  # the driver may be missing here: either way the password is never shown
        shown = HistoryStore(team).shown
    except HistoryError as error:
        shown = str(error)
    assert "reporter" in shown and "secret" not in shown


def test_the_store_records_at_each_refresh_and_a_broken_history_never_breaks_it(
    tmp_path, history_db, sample_config, caplog
):
    settings = load_settings(sample_config)
    history = HistoryStore(history_db)
    store = EstateStore(settings, history=history)
    assert store.refresh()
    assert history.days() == [DAY] and "state_since" in store.estate.devices.columns
    assert store.week_ago() is None and store.snapshot_days() == [DAY]

    class Broken(HistoryStore):
        def record(self, *args, **kwargs):
            raise sa.exc.OperationalError("INSERT", {}, Exception("database is locked"))

        def state_since(self, *args, **kwargs):
            raise OSError("cannot read")

    broken = Broken(f"sqlite:///{tmp_path / 'other.sqlite'}")
    store = EstateStore(settings, history=broken)
    with caplog.at_level(logging.WARNING):
        assert store.refresh()
    assert store.estate is not None and store.status().error is None
    assert "cannot record the snapshot" in caplog.text
    assert "state_since" not in store.estate.devices.columns


def test_recording_loader_wraps_any_loader(history_db, sample_estate):
    history = HistoryStore(history_db)
    settings = settings_from_dict(
        {"sources": [{"site": "PS1", "csv": "x"}], "collections": {"filter": ["CAS00102"]}}
    )
    load = recording_loader(lambda _settings: sample_estate, history)
    assert load(settings) is sample_estate
    assert history.aggregates(DAY, "PS1", "CAS00102") is not None


def test_snapshot_command(tmp_path, history_db, capsys):
    from dashboard.cli import main

    config = main_sample(300, 5, tmp_path / "out", quiet=True, as_of="2026-11-23T07:00:00Z")
    original = config.read_text()
    url = f"sqlite:///{config.parent / 'history.sqlite'}"  # the default: beside the config
    if postgres(history_db):
        url = history_db
        config.write_text(f'history_url = "{url}"\n' + original)
    assert main(["snapshot", "--config", str(config), "--quiet"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "PS1 2026-11-23: 192 devices recorded",
        "PS2 2026-11-23: 108 devices recorded",
    ]
    assert main(["snapshot", "--config", str(config), "--quiet"]) == 0
    assert "unchanged (already recorded)" in capsys.readouterr().out
    assert (config.parent / "history.sqlite").exists() != postgres(history_db)
    stored = HistoryStore(url, read_only=True)
    assert stored.days() == [DAY] and stored.aggregates(DAY)["devices"] == 300
    stored.close()
    off = config.parent / "off.toml"
    off.write_text('history_url = "off"\n' + original)
    assert main(["snapshot", "--config", str(off), "--quiet"]) == 2
    assert "history is off" in capsys.readouterr().err


def test_a_missing_postgresql_driver_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # not installed
    with pytest.raises(
        HistoryError, match=r'pip install "comanage-dashboard\[postgres\]"'
    ) as error:
        HistoryStore("postgresql+psycopg://reporter:secret@db.contoso.com/comanage")
    assert "secret" not in str(error.value)


def test_postgresql_read_only_keeps_the_urls_own_options(postgres_url):
    """A team's store in its own schema (``options=-csearch_path=...`` in the URL): the
    read-only store reads that schema, and the server still refuses its writes."""
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE SCHEMA team")
    engine.dispose()
    url = f"{postgres_url}?options=-csearch_path%3Dteam"
    writer = HistoryStore(url)
    writer.record(estate_of([COMANAGED]))
    writer.close()
    reader = HistoryStore(url, read_only=True)
    assert reader.days() == [DAY]
    with pytest.raises(sa.exc.DBAPIError, match="read-only"), reader.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM snapshots"))
    reader.close()
    assert HistoryStore(postgres_url, read_only=True).days() == []  # not in public


def test_sqlite_and_postgresql_answer_identically(tmp_path, postgres_url):
    """The same snapshots recorded in both: every read gives equal frames of equal types."""
    stores = [HistoryStore(f"sqlite:///{tmp_path / 'h.sqlite'}"), HistoryStore(postgres_url)]
    start = DAY - timedelta(days=14)
    plan = [
        [SCHEDULED, COMANAGED, FAILED],
        [ENROLLING, COMANAGED, COMANAGED],
        [PENDING, FAILED, COMANAGED],
    ]
    for week, devices in enumerate(plan):
        for store in stores:
            store.record(
                estate_of(devices, start + timedelta(days=7 * week), history=store),
                collections=["CAS00102"],
                recorded_at=datetime(2026, 11, 23, tzinfo=UTC),
            )
    answers = []
    for store in stores:
        now = estate_of([PENDING, COMANAGED, FAILED], DAY, history=store)
        answers.append(
            {
                "snapshots": store.snapshots(),
                "trend": store.trend(),
                "scoped": store.trend("PS1", "CAS00102"),
                "states": store.device_states(DAY),
                "timeline": store.timeline("PS1", 1),
                "days": store.days(with_devices=True),
                "aggregates": store.aggregates(DAY),
                "since": now.devices["state_since"],
                "changes": store.changes(now.devices, DAY - timedelta(days=7)),
            }
        )
        store.close()
    sqlite, postgresql = answers
    for name, value in sqlite.items():
        other = postgresql[name]
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(value, other, check_index_type=True)
        elif isinstance(value, pd.Series):
            pd.testing.assert_series_equal(value, other)
        elif name == "changes":
            assert {k: v.tolist() for k, v in value.items()} == {
                k: v.tolist() for k, v in other.items()
            }
        else:
            assert value == other, name
    assert len(sqlite["trend"]) == 3 and sqlite["aggregates"]["devices"] == 3
