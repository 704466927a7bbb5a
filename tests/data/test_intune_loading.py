"""Intune's records in the estate: read with the ConfigMgr sources at every load, kept through
a failed Intune read (the ConfigMgr side serving regardless), carried by the warm-start cache
to a second worker, and reported by the ``summary`` command."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pandas as pd
import pytest

from dashboard.data import cache
from dashboard.data.estate import load_estate
from dashboard.data.history import open_history
from dashboard.service.store import EstateStore
from dashboard.settings import load_settings
from tests.data.test_graph import record
from tests.data.test_intune_source import HEADER, ROWS, csv_text
from tests.graph_server import CLIENT, SECRET, TENANT, GraphServer

BROKEN = HEADER.replace('"ComplianceState",', "") + "\n"  # a required column missing


@pytest.fixture
def intune_settings(settings, tmp_path):
    """The shared two-device estate, with ``[intune] file = "intune.csv"`` beside it."""
    (tmp_path / "intune.csv").write_text(csv_text())
    config = settings.config_path
    config.write_text(config.read_text() + '[intune]\nfile = "intune.csv"\n')
    return load_settings(config)


def test_without_intune_nothing_changes(settings):
    estate = load_estate(settings)
    assert estate.intune is None
    assert estate.intune_error is None


def test_intune_records_load_with_the_sources(settings, intune_settings):
    estate = load_estate(intune_settings)
    assert estate.intune_error is None
    assert (estate.intune.records, estate.intune.dropped, estate.intune.windows) == (6, 1, 4)
    assert estate.intune.source == "intune.csv"
    # The ConfigMgr side is the same with or without Intune: Intune only adds its own
    # columns and its rules' bits (the attention columns).
    alone = load_estate(settings).devices
    kept = [c for c in alone.columns if c not in ("attention", "severity", "severity_rank")]
    pd.testing.assert_frame_equal(estate.devices[kept], alone[kept])
    added = set(estate.devices.columns) - set(alone.columns)
    assert added == {
        "intune_state",
        "intune_match",
        "intune_row",
        "intune_compliance",
        "authority_mismatch",
    }


def test_a_failed_intune_read_keeps_the_configmgr_side(intune_settings, tmp_path):
    (tmp_path / "intune.csv").write_text(BROKEN)
    estate = load_estate(intune_settings)
    assert len(estate.devices) == 2
    assert estate.intune is None  # never a good read: nothing to keep
    assert estate.intune_error.endswith("intune.csv: missing required column complianceState")


@pytest.mark.parametrize("with_history", [False, True])
def test_the_store_keeps_the_last_good_records(intune_settings, tmp_path, with_history):
    """Also through the history-recording loader ``serve`` uses."""
    history = open_history(intune_settings) if with_history else None
    store = EstateStore(intune_settings, history=history)
    assert store.refresh()
    good = store.estate.intune
    assert store.estate.intune_error is None
    (tmp_path / "intune.csv").unlink()
    assert store.refresh()  # the ConfigMgr side refreshed: new data swapped in
    assert store.status().error is None  # nothing wrong with the ConfigMgr side
    assert store.estate.intune_error.endswith("intune.csv: file not found")
    assert store.estate.intune is good  # the last good records, with their read time
    (tmp_path / "intune.csv").write_text(csv_text(ROWS[:1]))
    assert store.refresh()
    assert store.estate.intune_error is None
    assert store.estate.intune.records == 1


def test_the_warm_start_cache_carries_the_intune_records(intune_settings, tmp_path):
    estate = load_estate(intune_settings)
    folder = cache.cache_folder(intune_settings)
    key = cache.fingerprint(intune_settings)
    cache.write_cache(estate, folder, key)
    again = cache.read_cache(folder, key)
    pd.testing.assert_frame_equal(again.intune.frame, estate.intune.frame)
    for name in ("records", "dropped", "windows", "source", "loaded_at", "problems"):
        assert getattr(again.intune, name) == getattr(estate.intune, name)
    assert again.intune_error is None
    # A failed read is shared too: a second worker shows the same banner.
    (tmp_path / "intune.csv").write_text(BROKEN)
    failed = load_estate(intune_settings, previous_intune=estate.intune)
    cache.write_cache(failed, folder, key)
    again = cache.read_cache(folder, key)
    assert again.intune_error == failed.intune_error
    assert again.intune.records == estate.intune.records


def test_a_second_worker_serves_the_intune_records_from_the_cache(intune_settings):
    first = EstateStore(intune_settings, use_cache=True)
    assert first.refresh()
    second = EstateStore(intune_settings, use_cache=True)
    assert second.adopt_cache()
    pd.testing.assert_frame_equal(second.estate.intune.frame, first.estate.intune.frame)


def test_fingerprint_follows_the_intune_source(settings, intune_settings):
    assert cache.fingerprint(settings) != cache.fingerprint(intune_settings)
    config = intune_settings.config_path
    config.write_text(config.read_text() + "stale_days = 3\n")
    assert cache.fingerprint(load_settings(config)) != cache.fingerprint(intune_settings)


def summary(config) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dashboard", "summary", "--config", str(config), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_summary_command_with_a_failing_intune_source(intune_settings, tmp_path):
    """The ConfigMgr figures print; the Intune error is one line on stderr; exit 2."""
    (tmp_path / "intune.csv").write_text(BROKEN)
    done = summary(intune_settings.config_path)
    assert done.returncode == 2
    figures = json.loads(done.stdout)
    assert figures["devices"] == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: Intune: {tmp_path / 'intune.csv'}: missing required column complianceState"
    ]
    assert "Traceback" not in done.stderr


def test_summary_command_warns_of_dropped_intune_rows(intune_settings):
    done = summary(intune_settings.config_path)
    assert done.returncode == 0, done.stderr
    assert "warning: Intune (intune.csv): dropped 1 of 6 rows" in done.stderr
    assert 'warning:   intune.csv line 4: lastSyncDateTime "yesterday"' in done.stderr


@pytest.fixture
def graph(tmp_path_factory):
    server = GraphServer(tmp_path_factory.mktemp("graph")).start()
    server.records = [record(n) for n in range(5)]
    yield server
    server.stop()


def test_graph_errors_reach_the_estate_without_the_secret(settings, graph, monkeypatch, caplog):
    """What the banner shows and what the log says, through the whole load."""
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("COMANAGE_INTUNE_SECRET", SECRET)
    config = settings.config_path
    config.write_text(
        config.read_text()
        + f'[intune]\ntenant_id = "{TENANT}"\nclient_id = "{CLIENT}"\n'
        + 'client_secret_env = "COMANAGE_INTUNE_SECRET"\n'
        + f'graph_url = "{graph.url}"\nauthority_url = "{graph.url}"\n'
        + f'ca_bundle = "{graph.ca_file}"\n'
    )
    graph_settings = load_settings(config)
    estate = load_estate(graph_settings)
    assert (estate.intune.source, estate.intune.windows, estate.intune_error) == (
        "Microsoft Graph",
        5,
        None,
    )
    graph.forbidden = True
    failed = load_estate(graph_settings, previous_intune=estate.intune)
    assert failed.intune is estate.intune
    assert failed.intune_error.startswith("Microsoft Graph: permission missing (403")
    monkeypatch.setenv("COMANAGE_INTUNE_SECRET", SECRET[::-1])  # a wrong secret
    failed = load_estate(graph_settings)
    assert "AADSTS7000215" in failed.intune_error
    for secret in [SECRET, SECRET[::-1], *graph.tokens]:
        assert secret not in failed.intune_error
        assert secret not in caplog.text
