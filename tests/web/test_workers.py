"""A real multi-worker deployment: gunicorn with two worker processes on one port.

Twice: with the defaults (the file cache, a SQLite history) and with the servers a team runs
(a real Redis as the shared results cache, a real PostgreSQL as the history store).
Both workers share the warm-start cache, the shared results cache and the history store: the
sources are read once (by the worker the lock elects; the CSV folders are then removed), both
workers serve the same numbers, and the trends both show come from the one history store.
Each request carries a probe number; gunicorn's access log names the worker process that
answered it.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from dashboard.data.history import snapshots
from tests.servers import free_port
from tests.web.estate_factory import write_estate

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 2
START_SECONDS = 180  # bounds only: the test waits for events, never for a fixed time
PROBE_ROUNDS = 100


def request(port: int, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        headers = {"Connection": "close"}
        payload = None
        if body is not None:
            payload = json.dumps(body)
            headers["Content-Type"] = "application/json"
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def callback_body(dependency: dict) -> dict:
    """A Dash callback request for ``dependency`` with every filter empty (all devices)."""

    def value(item):
        return {
            "id": item["id"],
            "property": item["property"],
            "value": 1 if item["id"] == "data-version" else None,
        }

    output = dependency["output"]
    if output.startswith(".."):
        parts = [p for p in output.strip(".").split("...") if p]
        outputs = [{"id": p.rsplit(".", 1)[0], "property": p.rsplit(".", 1)[1]} for p in parts]
    else:
        component, prop = output.rsplit(".", 1)
        outputs = {"id": component, "property": prop}
    inputs = [value(i) for i in dependency["inputs"]]
    return {
        "output": output,
        "outputs": outputs,
        "inputs": inputs,
        "changedPropIds": [f"{i['id']}.{i['property']}" for i in inputs],
        "state": [value(s) for s in dependency["state"]],
    }


class Deployment:
    """gunicorn and its logs; ``probe`` sends requests in parallel and says who answered."""

    def __init__(self, folder: Path, shared_cache: str = "", history_url: str = ""):
        self.folder = folder
        self.config = write_estate(folder / "estate")
        self.shared_cache = shared_cache
        self.history_url = history_url or f"sqlite:///{self.config.parent / 'history.sqlite'}"
        text = self.config.read_text()
        self.config.write_text(
            f'cache_dir = "cache"\nhistory_url = "{self.history_url}"\n'
            f'shared_cache = "{shared_cache}"\n' + text
        )
        self.access_log = folder / "access.log"
        self.app_log = folder / "app.log"
        logging_config = folder / "logging.json"
        logging_config.write_text(
            json.dumps(
                {
                    "version": 1,
                    "disable_existing_loggers": False,
                    "formatters": {
                        "app": {"format": "%(process)d %(name)s %(levelname)s %(message)s"},
                        "access": {"format": "%(message)s"},
                    },
                    "handlers": {
                        "app": {
                            "class": "logging.FileHandler",
                            "formatter": "app",
                            "filename": str(self.app_log),
                        },
                        "access": {
                            "class": "logging.FileHandler",
                            "formatter": "access",
                            "filename": str(self.access_log),
                        },
                    },
                    "root": {"level": "INFO", "handlers": ["app"]},
                    "loggers": {
                        "gunicorn.error": {
                            "level": "INFO",
                            "handlers": ["app"],
                            "propagate": False,
                        },
                        "gunicorn.access": {
                            "level": "INFO",
                            "handlers": ["access"],
                            "propagate": False,
                        },
                    },
                }
            )
        )
        self.port = free_port()
        self.command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            str(WORKERS),
            "--threads",
            "8",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--log-config-json",
            str(logging_config),
            "--access-logformat",
            "%(p)s %(U)s %(q)s %(s)s",
            "dashboard.web.wsgi:server",
        ]
        self.env = {
            **os.environ,
            "COMANAGE_CONFIG": str(self.config),
            "COMANAGE_WORKERS": str(WORKERS),
            "XDG_RUNTIME_DIR": str(folder),
        }  # gunicorn's control socket: our own
        self.process: subprocess.Popen | None = None
        self.output = folder / "gunicorn.out"
        self._probe = 0

    def start(self) -> None:
        with self.output.open("w") as out:
            self.process = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()  # the arbiter stops its workers
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)  # the group this test started
            self.process.wait(timeout=30)

    def logs(self) -> str:
        parts = [
            f"--- {path.name}\n" + path.read_text()[-4000:]
            for path in (self.output, self.app_log)
            if path.exists()
        ]
        return "\n".join(parts)

    def alive(self) -> None:
        assert self.process.poll() is None, f"gunicorn exited:\n{self.logs()}"

    def wait_until(self, what: str, check) -> None:
        deadline = time.monotonic() + START_SECONDS
        while not check():
            self.alive()
            assert time.monotonic() < deadline, f"no {what} in {START_SECONDS} s:\n{self.logs()}"
            time.sleep(0.2)

    def answered(self, path: str, check=lambda status, body: status == 200):
        def attempt():
            try:
                return check(*request(self.port, "GET", path))
            except OSError:
                return False

        return attempt

    def probe(
        self, method: str, path: str, body: dict | None = None, parallel: int = 8
    ) -> list[tuple[int, int, bytes]]:
        """``parallel`` requests at once; [(worker pid, status, body)]."""
        numbers = list(range(self._probe, self._probe + parallel))
        self._probe += parallel
        separator = "&" if "?" in path else "?"
        with ThreadPoolExecutor(parallel) as pool:
            results = list(
                pool.map(
                    lambda n: request(self.port, method, f"{path}{separator}probe={n}", body),
                    numbers,
                )
            )
        pids = self._workers_of(numbers)
        return [(pids[n], status, data) for n, (status, data) in zip(numbers, results, strict=True)]

    def _workers_of(self, numbers: list[int]) -> dict[int, int]:
        """The pid that answered each probe, from the access log (written after the
        response: wait for the lines)."""
        deadline = time.monotonic() + 30
        while True:
            found = {}
            for line in self.access_log.read_text().splitlines():
                match = re.match(r"<(\d+)> \S+ probe=(\d+) \d+$", line.strip())
                if match:
                    found[int(match[2])] = int(match[1])
            if all(n in found for n in numbers):
                return found
            assert time.monotonic() < deadline, "probes missing from the access log"
            time.sleep(0.05)


@pytest.fixture(params=["files-and-sqlite", "redis-and-postgresql"])
def deployment(request, tmp_path):
    if request.param == "files-and-sqlite":
        deployment = Deployment(tmp_path)
    else:
        deployment = Deployment(
            tmp_path,
            shared_cache=request.getfixturevalue("redis_url"),
            history_url=request.getfixturevalue("postgres_url"),
        )
    deployment.start()
    try:
        yield deployment
    finally:
        deployment.stop()


def by_worker(
    deployment: Deployment,
    method: str,
    path: str,
    body: dict | None = None,
    accept=lambda body: True,
) -> dict[int, bytes]:
    """One accepted answer from each worker: probe until every worker has given one."""
    answers: dict[int, bytes] = {}
    for _round in range(PROBE_ROUNDS):
        for pid, status, data in deployment.probe(method, path, body):
            assert status == 200, data[:300]
            if accept(data):
                answers.setdefault(pid, data)
        if len(answers) >= WORKERS:
            return answers
        deployment.alive()
    raise AssertionError(f"only workers {sorted(answers)} answered {path}:\n{deployment.logs()}")


def test_two_gunicorn_workers_share_the_cache_and_the_history(deployment):
    deployment.wait_until(
        "/healthz",
        deployment.answered("/healthz", lambda status, body: status == 200 and body == b"ok"),
    )
    deployment.wait_until(
        "data",
        deployment.answered(
            "/_dash-layout", lambda status, body: status == 200 and b"Data as of" in body
        ),
    )
    # One worker has read the sources: none may need them again.
    for site in ("PS1", "PS2"):
        shutil.rmtree(deployment.config.parent / site)

    layouts = by_worker(
        deployment, "GET", "/_dash-layout", accept=lambda body: b"Data as of" in body
    )
    assert len(layouts) == WORKERS and deployment.process.pid not in layouts

    status, data = request(deployment.port, "GET", "/_dash-dependencies")
    assert status == 200
    dependencies = json.loads(data)

    def dependency(output_id: str) -> dict:
        return next(d for d in dependencies if output_id in d["output"])

    overview = by_worker(
        deployment,
        "POST",
        "/_dash-update-component",
        callback_body(dependency("ovw-kpis.children")),
    )
    numbers = {json.dumps(json.loads(body), sort_keys=True) for body in overview.values()}
    assert len(numbers) == 1, "the workers serve different numbers"

    trends = by_worker(
        deployment,
        "POST",
        "/_dash-update-component",
        callback_body(dependency("trd-scope.children")),
    )
    scopes = {json.dumps(json.loads(body)["response"]["trd-scope"]) for body in trends.values()}
    assert len(scopes) == 1 and "1 snapshot from 2026-11-20 to 2026-11-20" in scopes.pop()

    # The sources were read once, by one worker, which recorded one snapshot per site in
    # the one history store; every worker swapped in that estate and none failed.
    log = deployment.app_log.read_text()
    loads = re.findall(r"^(\d+) dashboard\.data\.history INFO history: (.*)$", log, re.M)
    assert len(loads) == 1, log
    assert "PS1 2026-11-20 recorded" in loads[0][1] and "PS2 2026-11-20 recorded" in loads[0][1]
    swapped = set(re.findall(r"^(\d+) dashboard\.service\.store INFO refreshed: ", log, re.M))
    assert {int(pid) for pid in swapped} == set(layouts), log
    assert "refresh failed" not in log and "shared cache" not in log, log
    engine = sa.create_engine(deployment.history_url)
    with engine.connect() as db:
        assert sorted(db.execute(sa.select(snapshots.c.site, snapshots.c.day)).all()) == [
            ("PS1", date(2026, 11, 20)),
            ("PS2", date(2026, 11, 20)),
        ]
    engine.dispose()
    cache = deployment.config.parent / "cache"
    if deployment.shared_cache:  # the results the workers shared: in Redis, nowhere else
        import redis

        assert redis.Redis.from_url(deployment.shared_cache).keys("comanage-dashboard:*")
        assert not (cache / "flask-cache").exists()
    else:
        assert any((cache / "flask-cache").iterdir())
    assert cache.stat().st_mode & 0o777 == 0o700  # device data
