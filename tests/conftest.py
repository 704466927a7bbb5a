"""Fixtures every test folder may use: real Redis and PostgreSQL servers (``tests/servers``).

One Redis and one PostgreSQL cluster serve the whole session; each test gets an emptied
Redis or a new database of its own. The outage tests stop a server mid-run, so they get
servers of their own. A server that is not installed fails the tests that need it, with the
packages to install; nothing skips.
"""

from __future__ import annotations

import pytest

from tests.servers import PostgresServer, RedisServer, ServerMissing


def _started(make):
    try:
        return make().start()
    except ServerMissing as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = _started(lambda: RedisServer(tmp_path_factory.mktemp("redis")))
    yield server
    server.remove()


@pytest.fixture
def redis_url(redis_server) -> str:
    """The session's Redis, emptied: its URL."""
    redis_server.flush()
    return redis_server.url


@pytest.fixture(scope="session")
def postgres_server():
    server = _started(PostgresServer)
    yield server
    server.remove()


@pytest.fixture
def postgres_url(postgres_server):
    """A new, empty database on the session's PostgreSQL: its SQLAlchemy URL."""
    name = postgres_server.create_database()
    yield postgres_server.url(name)
    postgres_server.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def history_db(request, tmp_path) -> str:
    """A fresh, empty history database URL: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'history.sqlite'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def own_redis(tmp_path):
    """A Redis of this test's own (that the test may stop and restart)."""
    server = _started(lambda: RedisServer(tmp_path / "redis"))
    yield server
    server.remove()


@pytest.fixture
def own_postgres():
    """A PostgreSQL cluster of this test's own (that the test may stop and restart)."""
    server = _started(PostgresServer)
    yield server
    server.remove()
