"""The sample's history: weekly snapshots derived from a generated estate, and the bundled
``sample_data/history.sqlite``."""

from __future__ import annotations

import hashlib
import itertools
import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest

from dashboard.data.estate import load_estate
from dashboard.data.history import HistoryStore, open_history, site_intune_figures
from dashboard.data.sample_command import main_sample
from dashboard.model.summary import summarize
from dashboard.model.trends import metrics_from_summary, trend_series
from dashboard.settings import SAMPLE_CONFIG, load_settings

AS_OF = date(2026, 11, 23)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    return main_sample(
        1500,
        21,
        tmp_path_factory.mktemp("weeks"),
        quiet=True,
        as_of="2026-11-23T07:00:00Z",
        history_weeks=12,
    )


def test_weekly_snapshots_end_at_the_as_of_day(generated):
    history = HistoryStore(f"sqlite:///{generated.parent / 'history.sqlite'}", read_only=True)
    assert history.days() == [AS_OF - timedelta(days=7 * w) for w in range(11, -1, -1)]
    assert history.days(with_devices=True) == history.days()  # all within 120 days


def test_the_last_snapshot_is_what_snapshot_would_record(generated, tmp_path):
    from dashboard.cli import main

    path = generated.parent / "history.sqlite"
    before = digest(path)
    assert main(["snapshot", "--config", str(generated), "--quiet"]) == 0
    assert digest(path) == before  # identical content: nothing written
    settings = load_settings(generated)
    estate = load_estate(settings, history=open_history(settings, read_only=True))
    history = HistoryStore(f"sqlite:///{path}", read_only=True)
    for site in ("PS1", "PS2"):
        figures = site_intune_figures(estate, site)
        for collection in (None, "CAS00103"):
            summary = summarize(
                estate.devices, [], estate.data_as_of, estate.mask(site, collection), figures
            )
            assert history.aggregates(AS_OF, site, collection) == metrics_from_summary(
                summary, errors=collection is None
            )


def test_the_journey_is_plausible(generated):
    history = HistoryStore(f"sqlite:///{generated.parent / 'history.sqlite'}", read_only=True)
    series = trend_series(history.trend())
    share = series["comanaged_share"]
    assert share.is_monotonic_increasing and share.iloc[-1] - share.iloc[0] > 0.1
    # Workloads move compliance first, then Office apps, client apps, Windows Update.
    last = series.iloc[-1]
    assert (
        last["intune_share_compliance_policies"]
        > last["intune_share_office_click_to_run_apps"]
        > last["intune_share_client_apps"]
        > last["intune_share_windows_update_policies"]
        > 0
    )
    first = series.iloc[0]
    assert first["intune_share_windows_update_policies"] == 0
    # The bad week: failures nine weeks back stand out from the weeks around them.
    failures = series["failures"]
    bad = failures.loc[AS_OF - timedelta(days=63)]
    assert bad == failures.max() and bad > 1.5 * failures.loc[AS_OF - timedelta(days=70)]
    # Each kind of change happened in the last week; some devices got stuck.
    changes = history.changes(_estate_devices(generated), AS_OF - timedelta(days=7))
    assert all(mask.sum() > 0 for mask in changes.values())
    assert series["attention_stuck"].iloc[-1] > 0


def _estate_devices(config: Path):
    settings = load_settings(config)
    return load_estate(settings).devices


def test_history_is_deterministic(generated, tmp_path):
    again = main_sample(
        1500, 21, tmp_path / "again", quiet=True, as_of="2026-11-23T07:00:00Z", history_weeks=12
    )
    first = HistoryStore(f"sqlite:///{generated.parent / 'history.sqlite'}", read_only=True)
    second = HistoryStore(f"sqlite:///{again.parent / 'history.sqlite'}", read_only=True)
    assert first.trend().equals(second.trend())
    for day in (AS_OF, AS_OF - timedelta(days=35)):
        assert first.device_states(day).equals(second.device_states(day))


def test_no_history_weeks_no_file(tmp_path):
    config = main_sample(100, 1, tmp_path, quiet=True, as_of="2026-11-23T07:00:00Z")
    assert not (config.parent / "history.sqlite").exists()


# -- the bundled sample ----------------------------------------------------------------------

BUNDLED = SAMPLE_CONFIG.parent / "history.sqlite"


@pytest.mark.skipif(not BUNDLED.exists(), reason="no bundled history")
def test_the_bundled_history_is_small_and_current(tmp_path):
    assert BUNDLED.stat().st_size < 5_000_000
    settings = load_settings(SAMPLE_CONFIG)
    history = open_history(settings, read_only=True)
    days = history.days()
    assert len(days) == 26 and days[-1] == AS_OF
    assert all(b - a == timedelta(days=7) for a, b in itertools.pairwise(days))
    estate = load_estate(settings, history=history)
    assert history.aggregates(AS_OF) == metrics_from_summary(
        summarize(estate.devices, [], estate.data_as_of, intune=estate.intune_figures())
    )
    # Recording the bundled data again changes nothing (served or `snapshot`).
    copy = tmp_path / "sample"
    shutil.copytree(
        SAMPLE_CONFIG.parent, copy, ignore=shutil.ignore_patterns(".comanage-cache", "users.json")
    )
    from dashboard.cli import main

    before = digest(copy / "history.sqlite")
    assert main(["snapshot", "--config", str(copy / SAMPLE_CONFIG.name), "--quiet"]) == 0
    assert digest(copy / "history.sqlite") == before


def test_duplicate_records_leave_every_other_history_as_it_was(tmp_path):
    """The duplicate records come from streams of their own: with them, the other devices'
    weekly states are exactly those without them."""
    plain = main_sample(
        400, 21, tmp_path / "plain", quiet=True, as_of="2026-11-23T07:00:00Z", history_weeks=3
    )
    extra = main_sample(
        400,
        21,
        tmp_path / "extra",
        quiet=True,
        as_of="2026-11-23T07:00:00Z",
        history_weeks=3,
        duplicates=True,
    )
    first = HistoryStore(f"sqlite:///{plain.parent / 'history.sqlite'}", read_only=True)
    second = HistoryStore(f"sqlite:///{extra.parent / 'history.sqlite'}", read_only=True)
    columns = [
        "site",
        "ResourceID",
        "enrollment_status",
        "reason",
        "comanaged",
        "failed",
        "workloads",
        "error_code",
        "since",
    ]
    for day in first.days():
        before, after = first.device_states(day), second.device_states(day)
        assert len(after) == len(before) + 6
        kept = after.merge(before[["site", "ResourceID"]], on=["site", "ResourceID"])
        assert (
            kept[columns].reset_index(drop=True).equals(before[columns].reset_index(drop=True))
        ), day
        assert second.aggregates(day)["comanaged"] == first.aggregates(day)["comanaged"]
