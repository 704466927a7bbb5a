"""The bundled sample is found through the package and never written: from a wheel it sits in
site-packages, which may be read only. What serving, reports and accounts write for it goes to
a per-user folder; a copy of the sample behaves like any other config."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dashboard import settings as settings_module
from dashboard.cli import main
from dashboard.data.cache import cache_folder
from dashboard.data.history import open_history, snapshot_day
from dashboard.report.files import output_folder
from dashboard.settings import QUERIES_DIR, SAMPLE_CONFIG, SAMPLE_DIR, load_settings
from dashboard.store import EstateStore
from dashboard.web.auth import users_path
from tests.factories import loaded_store

ROOT = Path(__file__).resolve().parents[2]


def tree(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if "__pycache__" not in p.parts
    }


@pytest.fixture
def user_cache(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "user-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    monkeypatch.setenv("LOCALAPPDATA", str(home))
    for name in (
        "COMANAGE_CACHE_DIR",
        "COMANAGE_HISTORY_URL",
        "COMANAGE_USERS_FILE",
        "COMANAGE_CONFIG",
    ):
        monkeypatch.delenv(name, raising=False)
    return home / "comanage-dashboard" / "sample"


def test_the_data_is_found_through_the_package():
    # From this checkout (an editable install) the package data is the top-level folders.
    assert SAMPLE_DIR.resolve() == (ROOT / "sample_data").resolve()
    assert QUERIES_DIR.resolve() == (ROOT / "queries").resolve()
    assert (QUERIES_DIR / "devices.sql").is_file() and SAMPLE_CONFIG.is_file()
    assert load_settings(environ={}).config_path == SAMPLE_CONFIG


def test_what_the_bundled_sample_writes_goes_to_the_user_folder(user_cache):
    settings = load_settings(SAMPLE_CONFIG, environ={})
    assert settings.bundled_sample
    assert cache_folder(settings) == user_cache / ".comanage-cache"
    assert output_folder(settings, None) == (user_cache / "reports").resolve()
    assert users_path(settings) == user_cache / "users.json"
    history = open_history(settings)  # as serve opens it
    assert history.read_only and history.days()  # read, never written


def test_serving_the_bundled_sample_writes_nothing_beside_it(user_cache):
    before = tree(SAMPLE_DIR)
    settings = load_settings(SAMPLE_CONFIG, environ={})
    store = loaded_store(settings, use_cache=True, history=open_history(settings))
    assert len(store.estate.devices) == 5006  # 5,000 machines and 6 duplicate records
    assert (user_cache / ".comanage-cache" / "current.json").is_file()
    assert tree(SAMPLE_DIR) == before


def test_snapshot_refuses_the_bundled_sample_with_a_clear_error(user_cache, capsys):
    before = tree(SAMPLE_DIR)
    assert main(["snapshot", "--config", str(SAMPLE_CONFIG), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert "bundled sample's history is never written" in error and "sample --out" in error
    assert tree(SAMPLE_DIR) == before


def test_a_copy_of_the_sample_is_an_ordinary_config(tmp_path, user_cache):
    copy = tmp_path / "mine"
    shutil.copytree(
        SAMPLE_DIR,
        copy,
        ignore=shutil.ignore_patterns(".comanage-cache", "reports", "users.json", "__*"),
    )
    settings = load_settings(copy / "comanage.toml", environ={})
    assert not settings.bundled_sample
    assert cache_folder(settings) == copy / ".comanage-cache"
    assert output_folder(settings, None) == (copy / "reports").resolve()
    assert not open_history(settings).read_only
    assert snapshot_day(settings.as_of) in open_history(settings, read_only=True).days()
    store = EstateStore(settings, use_cache=True)
    assert store.refresh() and (copy / ".comanage-cache" / "current.json").is_file()


def test_a_relative_cache_dir_of_the_bundled_sample_is_in_the_user_folder(user_cache):
    settings = load_settings(SAMPLE_CONFIG, environ={"COMANAGE_CACHE_DIR": "warm"})
    assert cache_folder(settings) == user_cache / "warm"


def test_the_user_folder_follows_the_platform(monkeypatch, tmp_path):
    monkeypatch.setattr(settings_module.os, "name", "posix")
    monkeypatch.setattr(settings_module.sys, "platform", "linux")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert settings_module.user_folder() == tmp_path / ".cache" / "comanage-dashboard" / "sample"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert settings_module.user_folder() == tmp_path / "xdg" / "comanage-dashboard" / "sample"


def test_a_relative_history_url_of_the_bundled_sample_is_in_the_user_folder(user_cache):
    from dashboard.data.history import history_url

    for value in ("mine.sqlite", "sqlite:///mine.sqlite"):
        settings = load_settings(SAMPLE_CONFIG, environ={"COMANAGE_HISTORY_URL": value})
        assert history_url(settings) == "sqlite:///" + str((user_cache / "mine.sqlite").resolve())
        assert not open_history(settings).read_only  # one's own store is written
