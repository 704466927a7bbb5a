"""Sources failing at run time (issue 7): the last good estate stays on screen under a stale
banner, the app recovers by itself when the source returns, and no password reaches the
banner, the log or the command line's output."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dashboard.data.sample import generate_estate, write_sqlite
from dashboard.service import scheduler as store_module
from dashboard.service.store import EstateStore
from dashboard.settings import settings_from_dict
from dashboard.web.app import create_app

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "S3cret!"
SQL_URL = f"mssql+pyodbc://user:{PASSWORD}@host/db"
FORMS = (PASSWORD, "S3cret%21", "S3cret")


def no_secret(text: str) -> None:
    for form in FORMS:
        assert form not in text


def layout_text(app) -> str:
    response = app.server.test_client().get("/_dash-layout")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def device_count(app) -> int:
    """The overview's device count as the page computes it (the route's summary)."""
    return app.store.summary()["devices"]


@pytest.fixture
def replicas(tmp_path):
    estate = generate_estate(400, seed=5, as_of=datetime(2026, 11, 20, tzinfo=UTC))
    return write_sqlite(estate, tmp_path / "replica.sqlite")


@pytest.fixture
def sql_settings(replicas, tmp_path):
    raw = {
        "as_of": "2026-11-20T12:00:00Z",
        "sources": [{"site": site, "url": f"sqlite:///{path}"} for site, path in replicas.items()],
    }
    return settings_from_dict(raw, tmp_path / "comanage.toml")


def test_replica_moved_away_shows_the_banner_and_the_old_numbers(sql_settings, replicas):
    store = EstateStore(sql_settings)
    assert store.refresh()
    app = create_app(sql_settings, store)
    before = device_count(app)
    assert "stale-banner" not in layout_text(app)

    path = next(iter(replicas.values()))
    moved = path.with_name(path.name + ".away")
    shutil.move(path, moved)
    assert not store.refresh()
    status = store.status()
    assert status.stale_since is not None and "database file not found" in status.error
    page = layout_text(app)
    assert "stale-banner" in page
    assert "Data is stale since" in page and "because the last refresh failed" in page
    assert path.name in page  # the banner says which source failed
    assert device_count(app) == before  # the old numbers stay
    assert store.next_delay() == store_module.RETRY_FIRST_SECONDS  # retried soon

    shutil.move(moved, path)
    assert store.refresh()
    assert store.status().error is None and store.status().stale_since is None
    assert "stale-banner" not in layout_text(app)
    assert device_count(app) == before


def test_the_background_retry_recovers_by_itself(sql_settings, replicas, monkeypatch):
    monkeypatch.setattr(store_module, "RETRY_FIRST_SECONDS", 0.2)
    path = next(iter(replicas.values()))
    moved = path.with_name(path.name + ".away")
    store = EstateStore(sql_settings)
    assert store.refresh()
    shutil.move(path, moved)
    assert not store.refresh()  # the failure that starts the back-off
    store.start()
    try:
        time.sleep(0.5)
        assert store.status().error is not None  # still failing, still serving old data
        assert store.estate is not None
        shutil.move(moved, path)
        deadline = time.monotonic() + 15
        while store.status().error is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.status().error is None, "no automatic recovery"
    finally:
        store.stop()


def test_a_broken_csv_keeps_the_old_data(factory_config, tmp_path):
    folder = tmp_path / "estate"
    shutil.copytree(factory_config.parent, folder)
    from dashboard.settings import load_settings

    settings = load_settings(folder / "comanage.toml")
    store = EstateStore(settings)
    assert store.refresh()
    app = create_app(settings, store)
    before = device_count(app)
    devices = folder / "PS1" / "devices.csv"
    good = devices.read_bytes()
    for broken in (b"", b"\x00\xff\xfe garbage\n\x00", b"Name,Domain\nPC1,CONTOSO\n"):
        devices.write_bytes(broken)
        assert not store.refresh()
        assert "devices.csv" in store.status().error
        assert "stale-banner" in layout_text(app)
        assert device_count(app) == before
    devices.write_bytes(good)
    assert store.refresh()
    assert "stale-banner" not in layout_text(app)


def test_a_sql_password_never_reaches_banner_or_log(factory_settings, caplog):
    url_source = {"site": "PS9", "url": SQL_URL}
    raw = {"sources": [{"site": "PS1", "csv": str(factory_settings.sources[0].csv)}, url_source]}
    settings = settings_from_dict(raw, factory_settings.config_path)
    store = EstateStore(settings)
    with caplog.at_level(logging.DEBUG):
        assert not store.refresh()
        page = layout_text(create_app(settings, store))
    assert "PS9" in store.status().error
    no_secret(store.status().error)
    no_secret(page)
    no_secret(caplog.text)
    assert "No data could be loaded" in page


def test_a_password_from_the_environment_never_reaches_banner_or_log(
    factory_settings, monkeypatch, caplog
):
    monkeypatch.setenv("COMANAGE_TEST_SQL_PASSWORD", PASSWORD)
    raw = {
        "sources": [
            {
                "site": "PS9",
                "url": "mssql+pyodbc://user@host/db",
                "password_env": "COMANAGE_TEST_SQL_PASSWORD",
            }
        ]
    }
    settings = settings_from_dict(raw, factory_settings.config_path)
    store = EstateStore(settings)
    with caplog.at_level(logging.DEBUG):
        assert not store.refresh()
    no_secret(store.status().error)
    no_secret(caplog.text)


def test_an_unexpected_error_quoting_the_url_is_redacted(
    factory_settings, factory_store, monkeypatch, caplog
):
    """Whatever raises (a bug, a driver quoting its connection string), the banner and the
    log hide the password: the store redacts every failure message itself."""
    monkeypatch.setenv("COMANAGE_TEST_SQL_PASSWORD", "Env-Pa55word")
    raw = {
        "sources": [{"site": "PS9", "url": SQL_URL, "password_env": "COMANAGE_TEST_SQL_PASSWORD"}]
    }
    settings = settings_from_dict(raw, factory_settings.config_path)
    calls = []

    def loader(_settings):
        calls.append(1)
        if len(calls) == 1:
            return factory_store.estate
        raise RuntimeError(
            f"driver said: cannot open {SQL_URL}; DRIVER={{x}};"
            f"PWD={PASSWORD};UID=user; env Env-Pa55word"
        )

    store = EstateStore(settings, loader=loader)
    assert store.refresh()
    with caplog.at_level(logging.DEBUG):
        assert not store.refresh()
        page = layout_text(create_app(settings, store))
    assert "stale-banner" in page
    for text in (store.status().error, page, caplog.text):
        no_secret(text)
        assert "Env-Pa55word" not in text


@pytest.mark.parametrize("breakage", ["sql", "csv"])
def test_cli_exits_2_with_one_line_and_no_secret(factory_settings, tmp_path, breakage):
    config = tmp_path / "comanage.toml"
    if breakage == "sql":
        config.write_text(f'[[sources]]\nsite = "PS1"\nurl = "{SQL_URL}"\n', encoding="utf-8")
    else:
        (tmp_path / "PS1").mkdir()
        (tmp_path / "PS1" / "devices.csv").write_bytes(b"ResourceID,Name\n1,PC\n")
        config.write_text('[[sources]]\nsite = "PS1"\ncsv = "PS1"\n', encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "dashboard", "summary", "--config", str(config), "--quiet"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ")
    assert "Traceback" not in done.stderr
    no_secret(done.stdout + done.stderr)


# -- the servers the deployment shares: Redis and PostgreSQL stop mid-run and come back ------


def test_redis_stopping_mid_run_keeps_serving_and_recovers(
    sql_settings, own_redis, caplog, monkeypatch
):
    import redis

    from dashboard.data import shared_cache

    monkeypatch.setattr(shared_cache, "RETRY_SECONDS", 0)  # try Redis again at every call
    settings = sql_settings.with_values(shared_cache=own_redis.url)
    store = EstateStore(settings, use_cache=True)
    assert store.refresh(force=False)
    app = create_app(settings, store)
    sites = sorted(store.estate.sites)
    expected = {site: store.summary(site) for site in sites}  # computed here, for comparing
    before = device_count(app)
    client = redis.Redis.from_url(own_redis.url)
    assert client.keys("*"), "nothing reached Redis"

    own_redis.stop()
    with caplog.at_level(logging.INFO):
        store._cache.clear()  # what this process remembers: every answer needs Redis now
        assert "stale-banner" not in layout_text(app)  # the page is served as before
        assert device_count(app) == before
        assert {site: store.summary(site) for site in sites} == expected
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1 and "shared cache" in warnings[0].getMessage(), caplog.text
        assert store.status().error is None  # a cache outage is no data outage

        own_redis.restart()  # same port, same folder; empty (no persistence)
        assert client.keys("*") == []
        store._cache.clear()
        assert device_count(app) == before
        assert {site: store.summary(site) for site in sites} == expected
    assert "works again" in caplog.text
    assert client.keys("*"), "the results did not reach Redis again"


def test_postgresql_stopping_mid_run_keeps_serving_and_recovers(sql_settings, own_postgres, caplog):
    from dashboard.data.history import HistoryStore
    from dashboard.web import trend_figures
    from dashboard.web.pages import trends

    url = own_postgres.url(own_postgres.create_database())
    store = EstateStore(sql_settings, history=HistoryStore(url))
    assert store.refresh()
    app = create_app(sql_settings, store)
    before = device_count(app)
    assert len(store.trend()) == 1  # today's snapshot, in PostgreSQL
    drawn = trends.render(store, sql_settings, None, None, None, None)
    assert not (drawn["trd-share"].layout.meta or {}).get("empty")

    own_postgres.stop()
    with caplog.at_level(logging.WARNING):
        assert store.refresh()  # the sources still load; only the snapshot cannot be kept
        assert store.status().error is None
        assert "cannot record the snapshot" in caplog.text
        assert "stale-banner" not in layout_text(app)
        assert device_count(app) == before
        assert store.trend() is None  # the history cannot be read: no trend, no error
        out = trends.render(store, sql_settings, None, None, None, None)
        assert set(out) == set(trends.RENDER_OUTPUTS)
        assert out["trd-share"].layout.meta["empty"] == trend_figures.NO_HISTORY

    own_postgres.restart()  # same port, same data folder: the snapshot is still there
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert store.refresh()  # the pool's dead connections are replaced, not reported
    assert "history: PS1" in caplog.text and "cannot record" not in caplog.text
    assert len(store.trend()) == 1
    drawn = trends.render(store, sql_settings, None, None, None, None)
    assert not (drawn["trd-share"].layout.meta or {}).get("empty")
    assert device_count(app) == before
    store.history.close()
