"""Helpers the tests share: a free loopback port, the command run as a user runs it, and
walking a Dash component tree."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_cli(
    *args: str,
    stdin: str = "",
    env: dict | None = None,
    drop: tuple[str, ...] = (),
    timeout: int = 300,
) -> subprocess.CompletedProcess:
    """``python -m dashboard ARGS`` from the repository root, in a new process; ``env`` adds
    environment variables, ``drop`` removes some; ``.seconds`` is how long it took."""
    environment = {k: v for k, v in os.environ.items() if k not in drop}
    environment.update(env or {})
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "dashboard", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
        check=False,
        env=environment,
    )
    done.seconds = time.perf_counter() - started
    return done


def walk(component):
    """Every component in a tree (children lists, single children, strings skipped)."""
    if component is None or isinstance(component, str | int | float):
        return
    if isinstance(component, list | tuple):
        for item in component:
            yield from walk(item)
        return
    yield component
    yield from walk(getattr(component, "children", None))


def by_id(tree, component_id):
    return next(c for c in walk(tree) if getattr(c, "id", None) == component_id)


def text_of(tree) -> str:
    parts = []

    def collect(node):
        if isinstance(node, str | int | float):
            parts.append(str(node))
        elif isinstance(node, list | tuple):
            for item in node:
                collect(item)
        elif node is not None:
            collect(getattr(node, "children", None))

    collect(tree)
    return " ".join(parts)


def router_request(pathname: str, search: str = "", drawn_for: str | None = None) -> dict:
    """The router callback's body as the browser POSTs it: the URL, and the page the app
    holds (``drawn_for``, ``page-for``'s data: the same URL means the layout drew it)."""
    return {
        "output": "..page.children...page-for.data..",
        "outputs": [
            {"id": "page", "property": "children"},
            {"id": "page-for", "property": "data"},
        ],
        "inputs": [{"id": "url", "property": "pathname", "value": pathname}],
        "changedPropIds": ["url.pathname"],
        "state": [
            {"id": "url", "property": "search", "value": search},
            {"id": "page-for", "property": "data", "value": drawn_for},
        ],
    }
