"""Shared fixtures for the data-layer tests: small generated estates and their replicas."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dashboard.data.sample import generate_estate, write_csv, write_sqlite

AS_OF = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def small_estate():
    """4,000 devices over PS1 and PS2."""
    return generate_estate(4_000, seed=7, as_of=AS_OF)


@pytest.fixture(scope="session")
def small_replicas(small_estate, tmp_path_factory):
    """SQLite replicas of ``small_estate``: {site: path}."""
    folder = tmp_path_factory.mktemp("replica")
    return write_sqlite(small_estate, folder / "replica.sqlite")


@pytest.fixture(scope="session")
def small_csv(small_estate, tmp_path_factory):
    """CSV exports of ``small_estate``: {site: folder}."""
    folder = tmp_path_factory.mktemp("csv")
    return write_csv(small_estate, folder)
