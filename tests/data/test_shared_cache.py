"""The results cache the worker processes share (Flask-Caching): the file cache by default,
Redis when configured, and a broken backend that never breaks a page."""

import json
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import redis

import dashboard.service.store
from dashboard.data import shared_cache
from dashboard.data.estate import load_estate
from dashboard.data.history import HistoryStore
from dashboard.model.summary import summarize
from dashboard.service.store import EstateStore
from dashboard.settings import SettingsError, load_settings
from tests.data.test_csv_source import GOOD, HEADER
from tests.servers import free_port


def refuse_to_summarize(monkeypatch) -> list:
    """Make computing a summary in this process an error; returns the attempts."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise AssertionError("computed instead of read from the shared cache")

    monkeypatch.setattr(dashboard.service.store, "summarize", refuse)
    return attempts


def expected_summary(estate, site=None, collection=None):
    return summarize(
        estate.devices,
        [s.as_dict() for s in estate.sources],
        estate.data_as_of,
        estate.mask(site, collection),
    )


def test_a_second_worker_reads_the_summary_the_first_computed(settings, monkeypatch):
    first = EstateStore(settings, use_cache=True)
    assert first.refresh(force=False)
    everything, one = first.summary(), first.summary(collection="CAS00101")
    folder = settings.config_path.parent / ".comanage-cache" / shared_cache.FOLDER
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700  # it holds device figures
    assert stat.S_IMODE(folder.parent.stat().st_mode) == 0o700  # and so does the Parquet
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in folder.iterdir())

    attempts = refuse_to_summarize(monkeypatch)
    second = EstateStore(settings, use_cache=True)  # another worker, or a restart
    assert second.adopt_cache()
    assert second.summary() == everything
    assert second.summary(None, "CAS00101") == one
    assert attempts == []


@pytest.fixture(params=["files", "redis"])
def shared_settings(request, settings):
    """The settings with each backend: the file cache, then the real Redis (emptied)."""
    if request.param == "files":
        return settings
    return settings.with_values(shared_cache=request.getfixturevalue("redis_url"))


def test_another_process_reads_the_summary_without_computing_it(shared_settings):
    settings = shared_settings
    # The other process reads the setting from the environment, as a deployment may set it.
    environ = {"COMANAGE_SHARED_CACHE": settings.shared_cache} if settings.shared_cache else {}
    first = EstateStore(settings, use_cache=True)
    assert first.refresh(force=False)
    expected = first.summary(collection="CAS00101")
    code = (
        "import json\n"
        "import dashboard.service.store\n"
        "def refuse(*args, **kwargs):\n"
        "    raise AssertionError('computed instead of read from the shared cache')\n"
        "dashboard.service.store.summarize = refuse\n"
        "from dashboard.settings import load_settings\n"
        f"settings = load_settings({str(settings.config_path)!r})\n"
        "store = dashboard.service.store.EstateStore(settings, use_cache=True)\n"
        "assert store.adopt_cache()\n"
        "print(json.dumps(store.summary(None, 'CAS00101')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, **environ},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == expected


def test_a_new_generation_never_serves_the_old_entries(settings):
    first = EstateStore(settings, use_cache=True)
    assert first.refresh(force=False)
    old = first.summary()
    old_generation = first._generation
    second = EstateStore(settings, use_cache=True)
    assert second.adopt_cache() and second.summary() == old

    # The source changes and a refresh writes a new generation.
    (settings.config_path.parent / "PS1" / "devices.csv").write_text(f"{HEADER}\n{GOOD}\n")
    assert first.refresh(force=True)
    assert first._generation != old_generation
    new = first.summary()
    assert new["devices"] == 1 and old["devices"] == 2
    assert new == expected_summary(load_estate(settings))

    # A worker adopting the new generation gets the new entry, never the old one ...
    third = EstateStore(settings, use_cache=True)
    assert third.adopt_cache() and third.summary() == new
    # ... and one that has not picked it up yet keeps the numbers of the estate it serves.
    assert second.summary() == old


def test_a_new_generation_computes_afresh(settings, monkeypatch):
    first = EstateStore(settings, use_cache=True)
    assert first.refresh(force=False)
    first.summary()
    (settings.config_path.parent / "PS1" / "devices.csv").write_text(f"{HEADER}\n{GOOD}\n")
    assert first.refresh(force=True)  # the new generation's summary is not computed yet
    attempts = refuse_to_summarize(monkeypatch)
    second = EstateStore(settings, use_cache=True)
    assert second.adopt_cache()
    with pytest.raises(AssertionError, match="computed instead"):
        second.summary()  # not in the shared cache: computed, not the old generation's
    assert len(attempts) == 1


def test_other_code_never_reads_the_entries(settings, monkeypatch):
    first = EstateStore(settings, use_cache=True)
    assert first.refresh(force=False)
    first.summary()
    monkeypatch.setattr(shared_cache, "code_fingerprint", lambda: "an-upgrade")
    attempts = refuse_to_summarize(monkeypatch)
    second = EstateStore(settings, use_cache=True)  # restarted on new code, same estate
    assert second.adopt_cache() and second._generation == first._generation
    with pytest.raises(AssertionError, match="computed instead"):
        second.summary()
    assert len(attempts) == 1


def test_history_summaries_and_trends_are_shared(settings, tmp_path, history_db, monkeypatch):
    url = history_db  # SQLite, then PostgreSQL
    first = EstateStore(settings, use_cache=True, history=HistoryStore(url))
    assert first.refresh(force=False)  # records today's snapshot
    day = first.current_day()
    trend, past = first.trend(), first.past_summary(day)
    assert trend is not None and len(trend) == 1 and past is not None

    def refuse(*args, **kwargs):
        raise AssertionError("read the history instead of the shared cache")

    monkeypatch.setattr(HistoryStore, "trend", refuse)
    monkeypatch.setattr(HistoryStore, "aggregates", refuse)
    second = EstateStore(settings, use_cache=True, history=HistoryStore(url))
    assert second.adopt_cache()
    pd.testing.assert_frame_equal(second.trend(), trend)
    assert second.past_summary(day) == past
    # Another history store is another answer: not shared with this one.
    other = EstateStore(
        settings, use_cache=True, history=HistoryStore(f"sqlite:///{tmp_path / 'other.sqlite'}")
    )
    assert other.adopt_cache()
    assert other.trend() is None  # computed (the refusal above), not the first's frame


def test_without_the_parquet_cache_only_this_process_caches(settings):
    store = EstateStore(settings)  # use_cache=False: tests, the command line
    assert store.refresh()
    assert store._shared is None
    store.summary()
    assert not (settings.config_path.parent / ".comanage-cache").exists()
    off = EstateStore(settings.with_values(shared_cache="off"), use_cache=True)
    assert off._shared is None


def test_the_setting(settings):
    config = settings.config_path
    environ = {"COMANAGE_SHARED_CACHE": "rediss://:pw@cache.example:6380/2"}
    assert load_settings(config, environ).shared_cache == environ["COMANAGE_SHARED_CACHE"]
    with pytest.raises(SettingsError, match="shared_cache must be") as error:
        load_settings(config, {"COMANAGE_SHARED_CACHE": "memcached://u:hunter22@host"})
    assert "hunter22" not in str(error.value)


def test_only_values_that_come_back_identical_are_shared():
    assert shared_cache.encode({"a": [1, 2.5, None, "x"]}) is not None
    for value in [(1, 2), {1: "int key"}, float("nan"), {"n": pd.NA}]:
        assert shared_cache.encode(value) is None
    from datetime import date

    frame = pd.DataFrame(
        {"devices": [3, 4], "sites": [1, 1]},
        index=pd.Index([date(2026, 11, 1), date(2026, 11, 2)], dtype=object, name="day"),
    )
    stored = shared_cache.encode(frame)
    pd.testing.assert_frame_equal(shared_cache.decode(json.loads(json.dumps(stored))), frame)
    assert shared_cache.encode(frame.astype("float64")) is None


# -- Redis (a real redis-server: tests/servers.py) ----------------------------------------


@pytest.fixture
def redis_calls(monkeypatch) -> list:
    """The URL and options of every Redis client the app makes (the clients are real)."""
    calls = []
    original = redis.Redis.from_url.__func__

    def from_url(cls, url, **kwargs):
        calls.append((url, kwargs))
        return original(cls, url, **kwargs)

    monkeypatch.setattr(redis.Redis, "from_url", classmethod(from_url))
    return calls


def test_redis_is_shared_by_two_workers(settings, redis_url, redis_calls, monkeypatch):
    settings = settings.with_values(shared_cache=redis_url)
    first = EstateStore(settings, use_cache=True)
    assert first.refresh(force=False)
    expected = first.summary()
    assert redis_calls[0][0] == redis_url
    assert redis_calls[0][1]["socket_timeout"] <= 2  # never hangs a page

    attempts = refuse_to_summarize(monkeypatch)
    second = EstateStore(settings, use_cache=True)
    assert second.adopt_cache()
    assert second.summary() == expected and attempts == []

    client = redis.Redis.from_url(redis_url)
    keys = client.keys("*")
    assert keys and all(k.startswith(shared_cache.KEY_PREFIX.encode()) for k in keys)
    assert all(first._generation.encode() in k for k in keys)
    for key in keys:
        assert client.get(key).startswith(b"{")  # JSON, never a pickle
        assert 0 < client.ttl(key) <= 3 * 60 * settings.refresh_minutes
    assert not (settings.config_path.parent / ".comanage-cache" / shared_cache.FOLDER).exists()


def test_a_pickle_planted_in_redis_is_never_loaded(settings, redis_url):
    import pickle

    settings = settings.with_values(shared_cache=redis_url)
    first = EstateStore(settings, use_cache=True)
    assert first.refresh(force=False)
    client = redis.Redis.from_url(redis_url)
    first.summary()
    [key] = client.keys("*")
    client.set(key, b"!" + pickle.dumps({"v": {"devices": -1}}))  # cachelib's own format
    second = EstateStore(settings, use_cache=True)
    assert second.adopt_cache()
    assert second.summary() == expected_summary(second.estate)  # computed again


def test_a_redis_with_a_password(settings, own_redis, caplog):
    """A password in the URL authenticates; a wrong one falls back, and neither is logged."""
    with redis.Redis.from_url(own_redis.url) as client:
        client.config_set("requirepass", "Redis-Pa55")
    good = f"redis://:Redis-Pa55@127.0.0.1:{own_redis.port}/0"
    store = EstateStore(settings.with_values(shared_cache=good), use_cache=True)
    assert store.refresh(force=False)
    with caplog.at_level(logging.DEBUG):
        expected = store.summary()
    assert redis.Redis.from_url(good).keys("*")
    wrong = f"redis://:Wrong-Pa55@127.0.0.1:{own_redis.port}/0"
    other = EstateStore(settings.with_values(shared_cache=wrong), use_cache=True)
    assert other.adopt_cache()
    with caplog.at_level(logging.DEBUG):
        assert other.summary() == expected
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "shared cache" in warnings[0].getMessage(), caplog.text
    assert "Pa55" not in caplog.text


@pytest.mark.parametrize(
    "template",
    ["redis://:s3cret-word@127.0.0.1:{port}/0", "redis://127.0.0.1:{port}/0?password=s3cret-word"],
)
def test_redis_down_falls_back_with_one_warning_and_no_password(settings, caplog, template):
    url = template.format(port=free_port())  # nothing listens there
    store = EstateStore(settings.with_values(shared_cache=url), use_cache=True)
    assert store.refresh(force=False)
    with caplog.at_level(logging.DEBUG):
        for site, collection in [(None, None), ("PS1", None), (None, "CAS00101")] * 2:
            assert store.summary(site, collection) == expected_summary(
                store.estate, site, collection
            )
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, caplog.text
    assert "shared cache" in warnings[0].getMessage()
    assert "s3cret-word" not in caplog.text
    assert "127.0.0.1" in warnings[0].getMessage()


# -- a broken file cache -----------------------------------------------------------------------


def test_a_cache_folder_that_cannot_be_made_falls_back(settings, caplog):
    store = EstateStore(settings, use_cache=True)
    assert store.refresh(force=False)
    (settings.config_path.parent / ".comanage-cache" / shared_cache.FOLDER).write_text("")
    with caplog.at_level(logging.WARNING):
        assert store.summary() == expected_summary(store.estate)
        assert store.summary("PS1") == expected_summary(store.estate, "PS1")
    assert len(caplog.records) == 1 and "shared cache" in caplog.text


def test_a_full_disk_falls_back_with_one_warning_and_recovers(settings, caplog, monkeypatch):
    import errno
    import tempfile
    from types import SimpleNamespace

    import cachelib.file

    monkeypatch.setattr(shared_cache, "RETRY_SECONDS", 0)  # try the backend on every call
    store = EstateStore(settings, use_cache=True)
    assert store.refresh(force=False)
    store.summary("PS1")  # the backend works

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cachelib.file, "tempfile", SimpleNamespace(mkstemp=full))
    with caplog.at_level(logging.INFO):
        for site, collection in [(None, None), (None, "CAS00101"), ("PS1", "CAS00101")]:
            assert store.summary(site, collection) == expected_summary(
                store.estate, site, collection
            )
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1, caplog.text  # cachelib's own tracebacks are folded in
        assert "No space left on device" in warnings[0].getMessage()
        assert "Traceback" not in caplog.text

        monkeypatch.setattr(cachelib.file, "tempfile", tempfile)  # space again
        store._cache.clear()
        store.summary("PS1", "CAS00101")  # computed while the disk was full: stored now
    assert "works again" in caplog.text
