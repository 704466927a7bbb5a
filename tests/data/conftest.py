"""Shared fixtures for the data-layer tests: small generated estates and their replicas."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dashboard.data.sample import generate_estate, write_csv, write_sqlite
from dashboard.settings import load_settings

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


@pytest.fixture
def settings(tmp_path):
    """Two devices at PS1 (one failed), one pilot member, the warm-start cache beside the
    config: what the cache and shared-cache tests load."""
    from tests.data.test_csv_source import FAILED, GOOD, HEADER

    (tmp_path / "PS1").mkdir()
    (tmp_path / "PS1" / "devices.csv").write_text(f"{HEADER}\n{GOOD}\n{FAILED}\n")
    (tmp_path / "PS1" / "collections.csv").write_text(
        "ResourceID,CollectionID,CollectionName\n16777221,CAS00101,Pilot\n"
    )
    config = tmp_path / "comanage.toml"
    config.write_text(
        'as_of = "2026-11-23T07:00:00Z"\n[[sources]]\nsite = "PS1"\ncsv = "PS1"\n'
        '[collections]\nfilter = ["CAS00101"]\n'
    )
    return load_settings(config)


ODBC_PACKAGES = "apt-get install unixodbc libsqliteodbc"


@pytest.fixture(scope="session")
def sqlite_odbc_driver():
    """The name of Debian's SQLite ODBC driver, registered with unixODBC. Missing, the ODBC
    tests fail (never skip): they are the only ones that load a real ODBC driver."""
    import shutil
    import subprocess

    odbcinst = shutil.which("odbcinst")
    if odbcinst is None:
        pytest.fail(f"unixODBC is not installed (no odbcinst): {ODBC_PACKAGES}")
    drivers = subprocess.run([odbcinst, "-q", "-d"], capture_output=True, text=True).stdout
    if "[SQLite3]" not in drivers:
        pytest.fail(
            f"the SQLite3 ODBC driver is not registered (odbcinst -q -d lists "
            f"{drivers.split() or 'none'}): {ODBC_PACKAGES}"
        )
    return "SQLite3"
