"""A bounded load test against the production server, on loopback only.

    python benchmarks/load.py                                  # the sample estate
    python benchmarks/load.py --config benchmarks/data/1000000/comanage.toml --users 20 --seconds 60
    python benchmarks/load.py --workers 2                      # gunicorn, 2 worker processes

Starts ``comanage-dashboard serve`` (waitress, the production server) on a free loopback
port, or with ``--workers N`` (Linux) ``gunicorn --workers N --threads 8`` on the WSGI app
(several processes sharing the warm-start cache, the results cache and the history), waits
until its data is loaded (in every worker), then runs a fixed number of simulated users for a
fixed time. Each user loops over what a person does: open the overview with a random site and
collection filter (the page; Dash's layout, which comes with the page drawn; the router,
which then leaves it), change the filter (the overview callbacks), page the device list with
a random filter and sort (the router callback and the grid's row request), and open a
device's page. It prints requests, errors and latency percentiles per kind and
writes them to benchmarks/results/load-<devices>.json (with --workers:
load-<devices>-<N>workers.json). It never targets anything but 127.0.0.1, and it stops by
itself.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Client:
    """One user's connection (keep-alive) to the server."""

    def __init__(self, port: int):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def request(
        self, method: str, path: str, body: dict | None = None, headers: dict | None = None
    ) -> tuple[int, bytes]:
        payload = None if body is None else json.dumps(body)
        headers = dict(headers or {})
        if body is not None:
            headers["Content-Type"] = "application/json"
        self.connection.request(method, path, body=payload, headers=headers)
        response = self.connection.getresponse()
        return response.status, response.read()


def callback(output: str, inputs: list, state: list | None = None) -> dict:
    """A Dash callback request as the browser sends it."""
    return {
        "output": output,
        "outputs": _outputs(output),
        "inputs": inputs,
        "changedPropIds": [f"{i['id']}.{i['property']}" for i in inputs],
        "state": state or [],
    }


def _outputs(output: str):
    if not output.startswith(".."):
        component, prop = output.rsplit(".", 1)
        return {"id": component, "property": prop}
    parts = [p for p in output.strip(".").split("...") if p]
    return [
        {"id": p.rsplit(".", 1)[0], "property": p.rsplit(".", 1)[1].split("@")[0]} for p in parts
    ]


def value(component: str, prop: str, data) -> dict:
    return {"id": component, "property": prop, "value": data}


def run_user(
    port: int,
    deadline: float,
    plan: dict,
    samples: dict,
    errors: dict,
    lock: threading.Lock,
    seed: int,
) -> None:
    rng = random.Random(seed)
    client = Client(port)

    def timed(
        kind: str, method: str, path: str, body: dict | None = None, headers: dict | None = None
    ) -> bytes:
        started = time.perf_counter()
        try:
            status, data = client.request(method, path, body, headers)
        except (OSError, http.client.HTTPException) as error:
            status, data = 0, str(error).encode()
        elapsed = time.perf_counter() - started
        with lock:
            samples.setdefault(kind, []).append(elapsed)
            if status not in (200, 204):  # 204: a callback with nothing to change
                errors[kind] = errors.get(kind, 0) + 1
        return data

    while time.monotonic() < deadline:
        site = rng.choice([None, *plan["sites"]])
        collection = rng.choice([None, *plan["collections"]])
        query = "&".join(f"{k}={v}" for k, v in (("site", site), ("collection", collection)) if v)
        search = f"?{query}" if query else ""
        # The overview, as a browser loads it: the page, then the layout, which the page asks
        # for (its Referer naming the page) and which comes with the page drawn; the router
        # callback, told the page it holds, then leaves it (204).
        timed("overview page", "GET", "/" + search)
        timed(
            "overview page",
            "GET",
            "/_dash-layout",
            headers={"Referer": f"http://127.0.0.1:{port}/{search}"},
        )
        timed(
            "router callback", "POST", "/_dash-update-component", routed("/", search, "/" + search)
        )
        # A change of filter on the overview: its callbacks draw the page again.
        timed(
            "overview callbacks",
            "POST",
            "/_dash-update-component",
            callback(
                plan["render_output"],
                [
                    value("ovw-site", "value", site),
                    value("ovw-collection", "value", collection),
                    value("data-version", "data", 1),
                ],
                plan["render_state"],
            ),
        )
        # The device list, one page with a random filter and sort.
        flt = rng.choice(plan["device_filters"])
        list_search = "?" + "&".join(f"{k}={v}" for k, v in flt)
        timed(
            "device list",
            "POST",
            "/_dash-update-component",
            routed("/devices", list_search, "/" + search),
        )
        start = rng.choice([0, 0, 100, 200])
        timed(
            "device list rows",
            "POST",
            "/_dash-update-component",
            callback(
                "devices-grid.getRowsResponse",
                [
                    value(
                        "devices-grid",
                        "getRowsRequest",
                        {
                            "startRow": start,
                            "endRow": start + 100,
                            "sortModel": [
                                rng.choice(
                                    [
                                        {"colId": "severity", "sort": "desc"},
                                        {"colId": "name", "sort": "asc"},
                                        {"colId": "last_policy_request", "sort": "asc"},
                                    ]
                                )
                            ],
                        },
                    )
                ],
                [value("devices-query", "data", flt)],
            ),
        )
        # One device's page.
        timed(
            "device page",
            "POST",
            "/_dash-update-component",
            routed(f"/device/{rng.choice(plan['ids'])}", "", "/devices" + list_search),
        )


def routed(pathname: str, search: str, drawn_for: str) -> dict:
    """The router callback for a URL, from a page drawn for ``drawn_for`` (pathname and
    search); for the same URL the server answers 204 (the layout drew it)."""
    return callback(
        "..page.children...page-for.data..",
        [value("url", "pathname", pathname)],
        [value("url", "search", search), value("page-for", "data", drawn_for)],
    )


def plan_for(config: Path) -> dict:
    from dashboard.data.estate import load_estate
    from dashboard.settings import load_settings

    settings = load_settings(config)
    estate = load_estate(settings)
    rng = random.Random(1)
    ids = rng.sample(estate.devices["ResourceID"].tolist(), min(500, len(estate.devices)))
    return {
        "devices": len(estate.devices),
        "sites": estate.sites,
        "collections": list(settings.collections),
        "ids": ids,
        "device_filters": [
            [["attention", "any"]],
            [["enrollment_status", "failure_hybrid"]],
            [["reason", "no-policy"]],
            [["os_group", "Windows 7 & 8.x"]],
            [["workload", "client_apps"], ["authority", "pilot_intune"]],
            [["severity", "high"], ["site", estate.sites[0]]],
        ],
    }


def server_command(port: int, workers: int | None) -> list[str]:
    """``comanage-dashboard serve``, or gunicorn with ``workers`` processes of 8 threads."""
    if not workers:
        return [sys.executable, "-m", "dashboard", "serve", "--port", str(port), "--quiet"]
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers",
        str(workers),
        "--threads",
        "8",
        "--bind",
        f"127.0.0.1:{port}",
        "dashboard.web.wsgi:server",
    ]


def loaded(port: int) -> bool:
    """One fresh connection (a worker of its own choosing) shows loaded data."""
    try:
        status, body = Client(port).request("GET", "/_dash-layout")
    except (OSError, http.client.HTTPException):
        return False
    return status == 200 and b"Data as of" in body


def wait_until_loaded(port: int, workers: int | None, server: subprocess.Popen) -> None:
    """Until the data is loaded: with several workers, until a burst of parallel requests
    (which the workers share out) all find it, so that no worker is still loading."""
    burst = 4 * (workers or 1) if workers else 1
    for _ in range(600):
        if server.poll() is not None:
            raise SystemExit(
                f"the server exited (code {server.returncode}): see "
                f"{HERE / 'results' / 'load-server.log'}"
            )
        with ThreadPoolExecutor(burst) as pool:
            if all(pool.map(lambda _n: loaded(port), range(burst))):
                return
        time.sleep(1)
    raise SystemExit("the server did not load its data in 10 minutes")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "sample_data" / "comanage.toml"))
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="serve with gunicorn --workers N --threads 8 (Linux) instead of "
        "comanage-dashboard serve",
    )
    args = parser.parse_args()
    if args.workers is not None and (args.workers < 1 or os.name != "posix"):
        parser.error("--workers needs N >= 1 and gunicorn, which runs on Linux (and macOS)")
    port = free_port()
    plan = plan_for(Path(args.config))
    (HERE / "results").mkdir(exist_ok=True)
    env = {**os.environ, "COMANAGE_CONFIG": args.config}
    runtime = tempfile.TemporaryDirectory()  # gunicorn's control socket: this run's own
    if args.workers:
        env.update(COMANAGE_WORKERS=str(args.workers), XDG_RUNTIME_DIR=runtime.name)
    # The server's log goes to a file: an unread pipe would fill up and stall the server.
    log = open(HERE / "results" / "load-server.log", "w")  # noqa: SIM115
    server = subprocess.Popen(
        server_command(port, args.workers), cwd=ROOT, env=env, stdout=log, stderr=log, text=True
    )
    try:
        wait_until_loaded(port, args.workers, server)  # the header shows "Data as of"
        probe = Client(port)
        deps = json.loads(probe.request("GET", "/_dash-dependencies")[1])
        render = next(d for d in deps if "ovw-kpis.children" in d["output"])
        plan["render_output"] = render["output"]
        # Its state as a first visit sends it (every "View as table" closed).
        plan["render_state"] = [value(s["id"], s["property"], None) for s in render["state"]]
        samples: dict[str, list[float]] = {}
        errors: dict[str, int] = {}
        lock = threading.Lock()
        deadline = time.monotonic() + args.seconds
        threads = [
            threading.Thread(target=run_user, args=(port, deadline, plan, samples, errors, lock, n))
            for n in range(args.users)
        ]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
    finally:
        server.terminate()  # gunicorn's arbiter stops its workers
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=30)
        log.close()
        runtime.cleanup()
    every = [s for values in samples.values() for s in values]
    result = {
        "devices": plan["devices"],
        "users": args.users,
        "seconds": round(elapsed, 1),
        "server": f"gunicorn --workers {args.workers} --threads 8"
        if args.workers
        else "comanage-dashboard serve",
        "workers": args.workers or 1,
        "requests": len(every),
        "errors": sum(errors.values()),
        "p50_ms": round(1000 * statistics.median(every), 1),
        "p95_ms": round(1000 * percentile(every, 0.95), 1),
        "kinds": {},
    }
    print(
        f"{plan['devices']:,} devices, {args.users} users, {elapsed:.0f} s, "
        f"{args.workers or 1} worker process(es): "
        f"{len(every):,} requests, {result['errors']} errors"
    )
    print(f"{'request':<22} {'count':>7} {'errors':>7} {'p50':>8} {'p95':>8} {'max':>8}")
    for kind, values in samples.items():
        row = {
            "count": len(values),
            "errors": errors.get(kind, 0),
            "p50_ms": round(1000 * statistics.median(values), 1),
            "p95_ms": round(1000 * percentile(values, 0.95), 1),
            "max_ms": round(1000 * max(values), 1),
        }
        result["kinds"][kind] = row
        print(
            f"{kind:<22} {row['count']:>7} {row['errors']:>7} {row['p50_ms']:>6.0f}ms "
            f"{row['p95_ms']:>6.0f}ms {row['max_ms']:>6.0f}ms"
        )
    print(
        f"{'all':<22} {len(every):>7} {result['errors']:>7} {result['p50_ms']:>6.0f}ms "
        f"{result['p95_ms']:>6.0f}ms"
    )
    (HERE / "results").mkdir(exist_ok=True)
    name = f"load-{plan['devices']}" + (f"-{args.workers}workers" if args.workers else "")
    (HERE / "results" / f"{name}.json").write_text(json.dumps(result, indent=2))
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
