"""A first visit in a real browser: bytes transferred and time to a fully drawn overview.

    python benchmarks/first_visit.py                  # the bundled sample, 5 cold visits
    python benchmarks/first_visit.py --runs 9 --path "/?site=PS1"
    python benchmarks/first_visit.py --url http://127.0.0.1:8050   # a server already running

Starts ``comanage-dashboard serve`` (waitress, the production server) on a free loopback port
and waits until its data is loaded, then opens the page in headless Chromium (the system
browser, as the tests drive it) once to warm the server, and then ``--runs`` times, each in a
fresh browser context (an empty HTTP cache: what a first visit costs). Per visit it records:

- bytes transferred: the sum of every response's encoded length on the wire (headers and
  body, compressed as sent) from the DevTools protocol's ``Network.loadingFinished`` events;
- time to fully drawn: from the start of navigation until every chart on the page holds its
  data (no "Loading ..." placeholder), every Dash callback has finished and the tiles show
  numbers, measured in the page (``performance.now()``, polled every animation frame).

It prints each visit, the medians and the largest responses of the last visit. Loopback has
no network latency: over a WAN the bytes are what matters most.
"""

from __future__ import annotations

import argparse
import http.client
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

# Fully drawn: every chart has traces (the placeholder figure has none), no Dash callback is
# pending, and the first tile shows a number.
DRAWN = """() => {
  const plots = [...document.querySelectorAll('.dash-graph')];
  if (!plots.length) return false;
  const drawn = plots.every(g => {
    const gd = g.querySelector('.js-plotly-plot');
    return gd && gd.data && gd.data.length > 0 && gd.querySelector('.main-svg');
  });
  const tile = document.querySelector('#kpi-devices');
  const busy = document.querySelector('[data-dash-is-loading="true"]');
  return drawn && !busy && tile && tile.textContent.trim() !== '-'
    ? performance.now() : false;
}"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def loaded(port: int) -> bool:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", "/_dash-layout")
        response = connection.getresponse()
        return response.status == 200 and b"Data as of" in response.read()
    except (OSError, http.client.HTTPException):
        return False


def start_server(config: str | None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "dashboard", "serve", "--port", str(port), "--quiet"]
    if config:
        command += ["--config", config]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(600):
        if server.poll() is not None:
            raise SystemExit(f"the server exited: {server.stderr.read().decode()[-2000:]}")
        if loaded(port):
            return server, f"http://127.0.0.1:{port}"
        time.sleep(0.5)
    server.terminate()
    raise SystemExit("the server did not load its data in 5 minutes")


def visit(browser, url: str, timeout: float = 60_000) -> dict:
    """One visit in a fresh context (empty cache): bytes, requests, time to fully drawn."""
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    urls: dict[str, str] = {}
    sizes: dict[str, float] = {}
    cdp.on(
        "Network.requestWillBeSent",
        lambda event: urls.__setitem__(event["requestId"], event["request"]["url"]),
    )
    cdp.on(
        "Network.loadingFinished",
        lambda event: sizes.__setitem__(event["requestId"], event["encodedDataLength"]),
    )
    try:
        page.goto(url, wait_until="commit")
        handle = page.wait_for_function(DRAWN, polling="raf", timeout=timeout)
        drawn_ms = float(handle.json_value())
        page.wait_for_timeout(300)  # let late responses (none expected) finish counting
        largest = sorted(((size, urls.get(rid, "?")) for rid, size in sizes.items()), reverse=True)[
            :8
        ]
        return {
            "bytes": sum(sizes.values()),
            "requests": len(sizes),
            "drawn_ms": drawn_ms,
            "largest": largest,
        }
    finally:
        context.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="TOML config (default: the bundled sample)")
    parser.add_argument("--url", help="measure this running server instead of starting one")
    parser.add_argument("--path", default="/", help="the page to open (default: /)")
    parser.add_argument("--runs", type=int, default=5, help="cold visits measured")
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    from dashboard.report.capture import chromium

    server = None
    base = args.url.rstrip("/") if args.url else None
    if base is None:
        server, base = start_server(args.config)
    try:
        with sync_playwright() as playwright, chromium(playwright) as browser:
            visit(browser, base + args.path)  # warm the server's caches, not the browser's
            results = []
            for run in range(1, args.runs + 1):
                result = visit(browser, base + args.path)
                results.append(result)
                print(
                    f"visit {run}: {result['bytes'] / 1e6:.2f} MB in {result['requests']} "
                    f"responses, fully drawn after {result['drawn_ms']:.0f} ms"
                )
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
    size = statistics.median(r["bytes"] for r in results)
    drawn = statistics.median(r["drawn_ms"] for r in results)
    print(
        f"median of {len(results)} cold visits to {args.path}: {size / 1e6:.2f} MB "
        f"transferred, fully drawn after {drawn:.0f} ms"
    )
    print("largest responses (last visit):")
    for length, url in results[-1]["largest"]:
        print(f"  {length / 1e3:8.1f} kB  {url.replace(base, '')[:110]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
