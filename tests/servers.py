"""Real Redis and PostgreSQL servers for the tests: each on loopback, on a free port, with its
own throw-away data folder; started, waited for, stopped (and restartable on the same port and
folder, for the outage tests).

A missing server program is an error naming the Debian packages to install, never a skip:
the shared cache and the history store are tested against the servers a site runs.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from tests.helpers import free_port

INSTALL = "apt-get install redis-server postgresql"
START_SECONDS = 60  # bounds only: every wait polls for readiness
PG_SEARCH = ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin")  # Debian's, then PGDG's


class ServerMissing(RuntimeError):
    """A server program is not installed."""


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


class RedisServer:
    """``redis-server`` without persistence, on 127.0.0.1."""

    def __init__(self, folder: Path):
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            raise ServerMissing(f"redis-server is not installed (on Debian: {INSTALL})")
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log = self.folder / "redis.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        command = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.folder),
            "--daemonize",
            "no",
            "--logfile",
            str(self.log),
        ]
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + START_SECONDS
        while not self.ping():
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"redis-server exited ({self.process.returncode}):\n{_tail(self.log)}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"redis-server not ready in {START_SECONDS} s:\n{_tail(self.log)}"
                )
            time.sleep(0.02)
        return self

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)

    def restart(self) -> RedisServer:
        """Start again on the same port and folder (after ``stop``)."""
        return self.start()

    def flush(self) -> None:
        import redis

        with redis.Redis.from_url(self.url) as client:
            client.flushall()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def postgres_bindir() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``: ``$COMANAGE_PG_BINDIR``, the ``PATH``,
    or the newest Debian (``/usr/lib/postgresql/N/bin``) or PGDG (``/usr/pgsql-N/bin``)
    install."""
    if os.environ.get("COMANAGE_PG_BINDIR"):
        return Path(os.environ["COMANAGE_PG_BINDIR"])
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    candidates = [Path(found) for pattern in PG_SEARCH for found in glob.glob(pattern)]
    candidates = [c for c in candidates if (c / "pg_ctl").exists() and (c / "initdb").exists()]

    def version(path: Path) -> tuple:  # ".../15/bin", ".../pgsql-15/bin"
        digits = "".join(ch if ch.isdigit() else " " for ch in path.parent.name).split()
        return tuple(int(d) for d in digits)

    if not candidates:
        raise ServerMissing(
            f"PostgreSQL (initdb, pg_ctl) is not installed (on Debian: "
            f"{INSTALL}; or set COMANAGE_PG_BINDIR)"
        )
    return max(candidates, key=version)


class PostgresServer:
    """A PostgreSQL cluster of its own, trust authentication for ``postgres`` on loopback.

    PostgreSQL refuses to run as root: then the cluster belongs to the ``postgres`` user and
    its programs run through ``runuser``.
    """

    SUPERUSER = "postgres"

    def __init__(self, folder: Path | None = None):
        self.bindir = postgres_bindir()
        self.as_root = os.geteuid() == 0
        # The data folder must be reachable by the postgres user: not below pytest's
        # root-only temporary folder.
        self.folder = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="comanage-pg-"))
        self.folder.mkdir(parents=True, exist_ok=True)
        self.data = self.folder / "data"
        self.log = self.folder / "postgres.log"
        self.port = free_port()
        self.owner = None
        if self.as_root:
            try:
                self.owner = pwd.getpwnam("postgres")
            except KeyError:
                raise ServerMissing(
                    "PostgreSQL refuses to run as root and there is no "
                    f"postgres user (on Debian: {INSTALL})"
                ) from None
            os.chown(self.folder, self.owner.pw_uid, self.owner.pw_gid)
            self.folder.chmod(0o700)
        self._initialised = False

    def _run(self, *command: str) -> subprocess.CompletedProcess:
        program = [str(self.bindir / command[0]), *command[1:]]
        if self.as_root:
            program = ["runuser", "-u", "postgres", "--", *program]
        done = subprocess.run(
            program,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{command[0]} failed ({done.returncode}): "
                f"{done.stderr.strip() or done.stdout.strip()}\n"
                f"{_tail(self.log)}"
            )
        return done

    @property
    def base_url(self) -> str:
        return f"postgresql+psycopg://{self.SUPERUSER}@127.0.0.1:{self.port}"

    def url(self, database: str) -> str:
        return f"{self.base_url}/{database}"

    def start(self) -> PostgresServer:
        if not self._initialised:
            # Throw-away data: no fsync anywhere (initdb's nor the server's).
            self._run(
                "initdb",
                "-D",
                str(self.data),
                "-A",
                "trust",
                "-U",
                self.SUPERUSER,
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            )
            self._initialised = True
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            str(START_SECONDS),
            "start",
        )
        return self

    def stop(self) -> None:
        if not self._initialised or not (self.data / "postmaster.pid").exists():
            return
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def restart(self) -> PostgresServer:
        """Start again on the same port and data folder (after ``stop``)."""
        return self.start()

    def _admin(self):
        import psycopg

        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=self.SUPERUSER,
            dbname="postgres",
            autocommit=True,
            connect_timeout=10,
        )

    def create_database(self) -> str:
        """A new empty database; its name."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        with self._admin() as conn:
            # PostgreSQL 15's default copies the template through the WAL; with fsync off a
            # file copy is about twice as fast.
            strategy = " STRATEGY FILE_COPY" if conn.info.server_version >= 150000 else ""
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0{strategy}')
        return name

    def drop_database(self, name: str) -> None:
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def remove(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
