"""The warm-start cache: a second process serves the same numbers without the sources."""

import json
import subprocess
import sys
import time

from dashboard.data import cache
from dashboard.data.estate import load_estate
from dashboard.model.summary import summarize
from dashboard.service.store import EstateStore
from dashboard.settings import settings_from_dict


def summary_of(estate):
    return summarize(estate.devices, [s.as_dict() for s in estate.sources], estate.data_as_of)


def test_round_trip_gives_identical_summary_and_filters(settings):
    estate = load_estate(settings)
    folder = cache.cache_folder(settings)
    key = cache.fingerprint(settings)
    cache.write_cache(estate, folder, key)
    again = cache.read_cache(folder, key)
    assert summary_of(again) == summary_of(estate)
    assert list(again.collection_mask("CAS00101")) == list(estate.collection_mask("CAS00101"))
    assert again.sources[0].rows == 2
    assert cache.read_cache(folder, "another-config") is None
    # The name order comes back with it (a second worker does not sort the names again),
    # and every sort gives the same rows.
    assert again.name_ranks is not None
    assert again.name_ranks.tolist() == estate.ranked_names().tolist()
    for column in ("name", "severity", "last_policy_request"):
        assert again.sort_order(column).tolist() == estate.sort_order(column).tolist()


def test_a_second_write_replaces_the_first_and_keeps_one_generation(settings):
    estate = load_estate(settings)
    folder = cache.cache_folder(settings)
    key = cache.fingerprint(settings)
    cache.write_cache(estate, folder, key)
    cache.write_cache(estate, folder, key)
    assert len(list(folder.glob("gen-*"))) == 1
    assert cache.cache_age(folder, key) < 5


def test_fingerprint_follows_the_config_not_secrets(tmp_path):
    base = {"sources": [{"site": "PS1", "url": "sqlite:///x.db", "password_env": "A"}]}
    other = {"sources": [{"site": "PS1", "url": "sqlite:///x.db", "password_env": "B"}]}
    changed = {**base, "workloads": {"client_apps": {"stage": "intune"}}}
    key = cache.fingerprint(settings_from_dict(base, tmp_path / "c.toml"))
    assert key == cache.fingerprint(settings_from_dict(other, tmp_path / "c.toml"))
    assert key != cache.fingerprint(settings_from_dict(changed, tmp_path / "c.toml"))


def test_store_reads_sources_once_then_serves_from_cache(settings):
    calls = []

    def loader(s):
        calls.append(time.time())
        return load_estate(s)

    first = EstateStore(settings, loader=loader, use_cache=True)
    assert first.refresh(force=False)
    second = EstateStore(settings, loader=loader, use_cache=True)
    assert second.adopt_cache()  # a restart: serves at once
    assert not second.cache_due()
    assert second.refresh(force=False) is False  # nothing newer: nothing to do
    assert len(calls) == 1
    assert second.summary() == first.summary()
    assert second.refresh(force=True)  # "Refresh now" reads the sources
    assert len(calls) == 2


def test_second_worker_process_serves_without_opening_the_source(settings, tmp_path):
    first = EstateStore(settings, use_cache=True)
    first.refresh()
    expected = first.summary()
    # Remove the source: the second process can only succeed from the cache.
    (tmp_path / "PS1" / "devices.csv").unlink()
    code = (
        "import json, sys\n"
        "from dashboard.settings import load_settings\n"
        "from dashboard.service.store import EstateStore\n"
        f"store = EstateStore(load_settings({str(settings.config_path)!r}), use_cache=True)\n"
        "assert store.adopt_cache()\n"
        "print(json.dumps(store.summary()))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == expected


def test_a_refresh_lock_dies_with_its_holder(tmp_path):
    """A service killed in the middle of a load (the lock held) must not leave the next start
    waiting: the operating system releases the lock with the process."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from pathlib import Path\n"
            "from dashboard.data import cache\n"
            "with cache.refresh_lock(Path(sys.argv[1])) as mine:\n"
            "    print(mine, flush=True)\n"
            "    time.sleep(60)\n",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "True"
        with cache.refresh_lock(tmp_path) as mine:
            assert not mine  # held by the other process
    finally:
        holder.kill()
        holder.wait(timeout=10)
    assert (tmp_path / cache.LOCK).exists()  # the file stays; the lock does not
    with cache.refresh_lock(tmp_path) as mine:
        assert mine
