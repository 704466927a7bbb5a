"""The real-server fixtures themselves: what a machine without the servers is told, and
where PostgreSQL's programs are found."""

from __future__ import annotations

import pytest

from tests import servers
from tests.servers import PostgresServer, RedisServer, ServerMissing


def test_a_missing_server_names_the_packages_to_install(monkeypatch, tmp_path):
    monkeypatch.delenv("COMANAGE_PG_BINDIR", raising=False)
    monkeypatch.setattr(servers.shutil, "which", lambda name: None)
    monkeypatch.setattr(servers, "PG_SEARCH", (str(tmp_path / "nowhere" / "*" / "bin"),))
    with pytest.raises(ServerMissing, match="apt-get install redis-server postgresql"):
        RedisServer(tmp_path / "redis")
    with pytest.raises(ServerMissing, match="apt-get install redis-server postgresql"):
        PostgresServer(tmp_path / "pg")


def test_the_newest_postgresql_is_found(monkeypatch, tmp_path):
    monkeypatch.delenv("COMANAGE_PG_BINDIR", raising=False)
    monkeypatch.setattr(servers.shutil, "which", lambda name: None)
    for version in ("9.6", "13", "15"):
        folder = tmp_path / version / "bin"
        folder.mkdir(parents=True)
        (folder / "pg_ctl").touch()
        (folder / "initdb").touch()
    monkeypatch.setattr(servers, "PG_SEARCH", (str(tmp_path / "*" / "bin"),))
    assert servers.postgres_bindir() == tmp_path / "15" / "bin"
    monkeypatch.setenv("COMANAGE_PG_BINDIR", str(tmp_path / "13" / "bin"))
    assert servers.postgres_bindir() == tmp_path / "13" / "bin"


def test_the_servers_answer_on_loopback(redis_server, postgres_url):
    import redis
    import sqlalchemy as sa

    assert redis.Redis.from_url(redis_server.url).ping()
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        assert (
            conn.execute(sa.text("SELECT inet_server_addr()::text"))
            .scalar()
            .startswith("127.0.0.1")
        )
        assert (
            conn.execute(
                sa.text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            ).scalar()
            == 0
        )  # a new, empty database
    engine.dispose()
