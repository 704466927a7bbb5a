"""The package as a user installs it: a wheel built from this checkout, installed with pip into
a new virtual environment and run from an unrelated folder, works like the checkout.

One virtual environment per test session (building and installing take a minute or two; pip's
cache makes the dependencies quick). The wheel and the sdist are built with exactly the
setuptools version ``pyproject.toml`` declares as its minimum, so the metadata is proven valid
for the backend version it declares.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
import urllib.request
import zipfile
from pathlib import Path

import pytest

from tests.helpers import free_port

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
AS_OF = "2026-11-23T07:00:00Z"


def _declared_setuptools() -> str:
    """``setuptools>=N`` from the build-system table: the version to build with."""
    for requirement in PYPROJECT["build-system"]["requires"]:
        found = re.fullmatch(r"setuptools>=([\d.]+)", requirement.replace(" ", ""))
        if found:
            return found.group(1)
    raise AssertionError("pyproject.toml must declare setuptools>=N in [build-system]")


def _run(
    command: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{' '.join(command)}\n{done.stdout}\n{done.stderr}"
    return done


def _checkout_copy(target: Path) -> Path:
    """The checkout's files (tracked, and new ones not ignored) as a fresh clone has them: no
    stale ``build/`` folder, no local caches or reports."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    for name in listed.stdout.decode().split("\0"):
        source = ROOT / name
        if name and source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def _clean_env(cache_home: Path) -> dict[str, str]:
    """The user's environment without anything that points at this checkout or configures
    the dashboard; the per-user cache folder in ``cache_home``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("COMANAGE_", "PYTHON", "VIRTUAL_ENV", "PIP_REQUIRE"))
    }
    env["XDG_CACHE_HOME"] = str(cache_home)
    env["LOCALAPPDATA"] = str(cache_home)
    return env


def _tree(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``folder`` with its size and modification time."""
    return {
        str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
    }


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Installed:
    def __init__(self, root: Path):
        self.root = root
        self.venv = root / "venv"
        bin_dir = self.venv / ("Scripts" if os.name == "nt" else "bin")
        self.python = bin_dir / "python"
        self.command = bin_dir / "comanage-dashboard"
        self.work = root / "elsewhere"  # an unrelated folder to run from
        self.work.mkdir()
        self.cache_home = root / "user-cache"
        self.env = _clean_env(self.cache_home)
        self.wheel: Path | None = None
        self.sdist: Path | None = None
        self.sdist_wheel: Path | None = None
        self.package: Path | None = None
        self.package_tree: dict = {}

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return _run([str(self.command), *args], cwd=self.work, env=self.env, timeout=timeout)

    def assert_package_untouched(self) -> None:
        assert _tree(self.package) == self.package_tree, "something wrote into the package"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    root = tmp_path_factory.mktemp("installed")
    inst = Installed(root)
    source = _checkout_copy(root / "checkout")
    _run([sys.executable, "-m", "venv", str(inst.venv)], cwd=root)
    pip = [str(inst.python), "-m", "pip", "--disable-pip-version-check"]
    # The declared minimum backend, and no build isolation: the build below is proven with
    # exactly the version pyproject.toml promises to work with.
    _run([*pip, "install", "-q", f"setuptools=={_declared_setuptools()}"], cwd=root, env=inst.env)
    dist = root / "dist"
    _run(
        [*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", ".", "-w", str(dist)],
        cwd=source,
        env=inst.env,
    )
    [inst.wheel] = dist.glob("*.whl")
    sdists = root / "sdist"
    _run(
        [
            str(inst.python),
            "-c",
            "import sys, setuptools.build_meta as b; print(b.build_sdist(sys.argv[1]))",
            str(sdists),
        ],
        cwd=source,
        env=inst.env,
    )
    [inst.sdist] = sdists.glob("*.tar.gz")
    from_sdist = root / "from-sdist"
    _run(
        [
            *pip,
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            str(inst.sdist),
            "-w",
            str(from_sdist),
        ],
        cwd=root,
        env=inst.env,
    )
    [inst.sdist_wheel] = from_sdist.glob("*.whl")
    _run([*pip, "install", "-q", str(inst.wheel)], cwd=root, env=inst.env, timeout=900)
    found = _run(
        [
            str(inst.python),
            "-c",
            "import dashboard, os; print(os.path.dirname(dashboard.__file__))",
        ],
        cwd=inst.work,
        env=inst.env,
    )
    inst.package = Path(found.stdout.strip())
    assert inst.package.is_relative_to(inst.venv), inst.package  # not this checkout
    inst.package_tree = _tree(inst.package)
    return inst


def _shipped() -> dict[str, bytes]:
    """What the checkout says must ship: the query files, the sample estate and the vendored
    scripts, by their names inside the package."""
    files = {
        f"dashboard/queries/{p.name}": p.read_bytes() for p in (ROOT / "queries").glob("*.sql")
    }
    sample = ROOT / "sample_data"
    for path in [
        sample / "comanage.toml",
        sample / "history.sqlite",
        *sorted(sample.glob("*/*.csv")),
    ]:
        files[f"dashboard/sample_data/{path.relative_to(sample).as_posix()}"] = path.read_bytes()
    for path in (ROOT / "dashboard" / "web" / "vendor").iterdir():
        files[path.relative_to(ROOT).as_posix()] = path.read_bytes()
    return files


def test_the_wheel_carries_the_queries_the_sample_and_every_module(installed):
    shipped = _shipped()
    assert {
        "dashboard/queries/devices.sql",
        "dashboard/queries/collections.sql",
        "dashboard/sample_data/comanage.toml",
        "dashboard/sample_data/history.sqlite",
        "dashboard/sample_data/PS1/devices.csv",
        "dashboard/sample_data/PS2/collections.csv",
    } <= set(shipped)
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
        for name, data in shipped.items():
            assert name in names, name
            assert _digest(wheel.read(name)) == _digest(data), name
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "dashboard").rglob("*.py")}
    assert modules <= names, sorted(modules - names)  # a sub-package left out of pyproject
    assert not [n for n in names if ".comanage-cache" in n or n.endswith("users.json")]


def test_the_sdist_carries_the_top_level_folders_and_builds_the_same_wheel(installed):
    with tarfile.open(installed.sdist) as sdist:
        members = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    for name in (
        "queries/devices.sql",
        "queries/collections.sql",
        "sample_data/comanage.toml",
        "sample_data/history.sqlite",
        "sample_data/PS1/devices.csv",
        "sample_data/PS2/devices.csv",
        "pyproject.toml",
        "README.md",
        "dashboard/web/assets/BOOTSTRAP-LICENSE.txt",
        "dashboard/web/vendor/plotly-comanage.min.js",
        "dashboard/web/vendor/PLOTLY-LICENSE.txt",
    ):
        assert name in members, name
    with zipfile.ZipFile(installed.wheel) as a, zipfile.ZipFile(installed.sdist_wheel) as b:
        assert {n for n in a.namelist() if not n.endswith("RECORD")} == {
            n for n in b.namelist() if not n.endswith("RECORD")
        }


def test_the_metadata_declares_the_licence(installed):
    with zipfile.ZipFile(installed.wheel) as wheel:
        [meta] = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
        text = wheel.read(meta).decode()
        licences = [n for n in wheel.namelist() if ".dist-info/licenses/" in n]
    assert "License-Expression: MIT" in text
    bundled = [
        "dashboard/web/assets/BOOTSTRAP-LICENSE.txt",
        "dashboard/web/vendor/PLOTLY-LICENSE.txt",
    ]
    for name in bundled:
        assert f"License-File: {name}" in text
    assert sorted(licences) == [f"{meta.rsplit('/', 1)[0]}/licenses/{name}" for name in bundled]


def test_summary_from_the_wheel_equals_the_checkouts(installed):
    from_wheel = json.loads(installed.run("summary", "--format", "json").stdout)
    from_checkout = json.loads(
        _run([sys.executable, "-m", "dashboard", "summary", "--format", "json"], cwd=ROOT).stdout
    )
    assert from_wheel["devices"] == 5006  # 5,000 machines, 6 duplicate records
    assert from_wheel == from_checkout
    installed.assert_package_untouched()


def test_sample_from_the_wheel_makes_an_estate_that_loads(installed, tmp_path):
    out = tmp_path / "estate"
    installed.run(
        "sample",
        "--out",
        str(out),
        "--devices",
        "300",
        "--as-of",
        AS_OF,
        "--history-weeks",
        "2",
        "--quiet",
    )
    assert (out / "comanage.toml").is_file() and (out / "history.sqlite").is_file()
    summary = json.loads(
        installed.run("summary", "--config", str(out / "comanage.toml"), "--format", "json").stdout
    )
    assert summary["devices"] == 306  # 300 machines, 6 duplicate records
    installed.assert_package_untouched()


def test_report_from_the_wheel_writes_to_the_user_folder(installed):
    installed.run("report", "--format", "html", "--quiet")
    [report] = (installed.cache_home / "comanage-dashboard" / "sample" / "reports").glob(
        "co-management-*.html"
    )
    assert "Contoso (sample)" in report.read_text()
    installed.assert_package_untouched()


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode()


def test_serve_from_the_wheel_answers_and_writes_only_to_the_user_folder(installed):
    port = free_port()
    cache = installed.cache_home / "comanage-dashboard" / "sample" / ".comanage-cache"
    server = subprocess.Popen(
        [str(installed.command), "serve", "--port", str(port)],
        cwd=installed.work,
        env=installed.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stdout.read()
            try:
                if _get(f"http://127.0.0.1:{port}/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "serve did not answer in 120 s"
            time.sleep(0.5)
        status, page = _get(f"http://127.0.0.1:{port}/")
        assert status == 200
        assert "_dash-config" in page and "react-entry-point" in page
        # The data loads in the background from the bundled CSVs; the warm-start cache it
        # writes goes to the per-user folder.
        while not (cache / "current.json").exists():
            assert server.poll() is None, server.stdout.read()
            assert time.monotonic() < deadline, "serve did not load the sample in 120 s"
            time.sleep(0.5)
        pointer = json.loads((cache / "current.json").read_text())
        meta = json.loads((cache / pointer["generation"] / "meta.json").read_text())
        assert sum(s["rows"] - s["dropped"] for s in meta["sources"]) == 5006
        assert all(
            Path(s["location"]).is_relative_to(installed.package) for s in meta["sources"]
        )  # the bundled CSVs, read where pip put them
        assert _get(f"http://127.0.0.1:{port}/devices")[0] == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
    installed.assert_package_untouched()
