"""Benchmarks: how long the dashboard's work takes on a generated estate, with floors.

    python benchmarks/run.py                  # 100,000 and 1,000,000 devices
    python benchmarks/run.py --devices 200000 --repeat 3
    python benchmarks/run.py --sources-only   # the loads: CSV, the SQL path, its floor

Generates each estate once (CSV exports, a SQLite replica and 8 weeks of history, kept in
benchmarks/data/), measures every step as the median of several runs, and prints each next
to a floor measured in the same run on the same data (reading the CSV with pyarrow and
nothing else; one pass of ``value_counts`` over the summarised columns), so figures compare
across machines. Peak memory is measured in a child process that loads the estate and
serves one of each request. Results go to benchmarks/results/<devices>.json too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from dashboard.data.estate import load_estate  # noqa: E402
from dashboard.model.summary import summarize  # noqa: E402
from dashboard.service.store import EstateStore  # noqa: E402
from dashboard.settings import load_settings  # noqa: E402

AS_OF = "2026-11-23T07:00:00Z"
HISTORY_WEEKS = 8  # weekly snapshots generated with each estate


def median_time(function, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def ensure_estate(devices: int, with_sqlite: bool) -> Path:
    """The estate's folder: CSV exports, SQLite replicas and HISTORY_WEEKS weekly snapshots
    in history.sqlite (what the trends page and the week-over-week tiles read)."""
    from dashboard.data.sample import generate_estate
    from dashboard.data.sample_command import main_sample
    from dashboard.data.sample_history import write_history

    folder = HERE / "data" / str(devices)
    marker = folder / f"history-{HISTORY_WEEKS}-weeks.done"
    if not (folder / "comanage.toml").exists() or (
        with_sqlite and not list(folder.glob("replica-*.sqlite"))
    ):
        print(f"generating {devices:,} devices in {folder} ...", file=sys.stderr)
        main_sample(
            devices=devices,
            seed=7,
            out=folder,
            sqlite=folder / "replica.sqlite" if with_sqlite else None,
            as_of=AS_OF,
            quiet=True,
            history_weeks=HISTORY_WEEKS,
        )
        marker.touch()
    elif not marker.exists():  # a folder from before the history was generated
        print(
            f"generating {HISTORY_WEEKS} weeks of history for {devices:,} devices ...",
            file=sys.stderr,
        )
        write_history(generate_estate(devices, 7, AS_OF), folder / "comanage.toml", HISTORY_WEEKS)
        marker.touch()
    return folder


def replica_config(folder: Path, form: str) -> Path:
    """The same estate's config, reading the SQLite replicas through queries/*.sql: with
    ``form`` "url" through a SQLAlchemy URL, with "odbc" through the ODBC driver (unixODBC
    and Debian's libsqliteodbc, driver name SQLite3) with an ``odbc =`` string."""
    text = (folder / "comanage.toml").read_text()
    for replica in sorted(folder.glob("replica-*.sqlite")):
        site = replica.stem.split("-", 1)[1]
        source = (
            f'url = "sqlite:///{replica}"'
            if form == "url"
            else f'odbc = "Driver=SQLite3;Database={replica}"'
        )
        text = text.replace(f'csv = "{site}"', source)
    path = folder / f"comanage-{'sqlite' if form == 'url' else 'odbc'}.toml"
    path.write_text(text)
    return path


def sql_floor(folder: Path, collection_ids: list[str]):
    """SQLite itself executing the text the SQL path sends (``devices.sql``, then
    ``collections.sql`` once per named collection) and counting the rows, nothing fetched
    into Python: what no reader of these queries can beat."""
    import sqlite3

    from dashboard.data.sql_source import _read_query

    devices, collections = _read_query("devices.sql"), _read_query("collections.sql")

    def run_queries():
        rows = 0
        for replica in sorted(folder.glob("replica-*.sqlite")):
            connection = sqlite3.connect(f"{replica.as_uri()}?mode=ro", uri=True)
            rows += connection.execute(f"SELECT COUNT(*) FROM ({devices})").fetchone()[0]
            for collection_id in collection_ids:
                rows += connection.execute(
                    f"SELECT COUNT(*) FROM ({collections})", {"collection_id": collection_id}
                ).fetchone()[0]
            connection.close()
        return rows

    return run_queries


def pyarrow_floor(folder: Path) -> float:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    def read():
        for csv in sorted(folder.glob("*/devices.csv")):
            with open(csv, "rb") as handle:
                names = handle.readline().decode("utf-8-sig").strip().split(",")
            pacsv.read_csv(
                csv,
                convert_options=pacsv.ConvertOptions(
                    column_types={n.strip('"'): pa.string() for n in names}
                ),
            )

    return read


# A child's own peak RSS. Not getrusage's ru_maxrss: on Linux a child inherits the parent's
# high-water mark through fork and exec, so a child of this (large) process would report
# the parent's peak. VmHWM belongs to the child's own address space.
PEAK_MB = """
def peak_mb():
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status
                        if line.startswith("VmHWM")) / 1024
    except OSError:  # not Linux
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""


def child_peak(config: Path, devices: int) -> dict:
    """Peak RSS of a process that loads the estate, summarises and serves one page each."""
    code = (
        PEAK_MB
        + f"""
import json, sys, time
sys.path.insert(0, {str(HERE.parent)!r})
from dashboard.settings import load_settings
from dashboard.service.store import EstateStore
from dashboard.web.app import create_app
started = time.perf_counter()
store = EstateStore(load_settings({str(config)!r}))
store.refresh()
app = create_app(store.settings, store=store)
client = app.server.test_client()
client.get('/')
store.summary()
from dashboard.web.pages import devices
devices.get_rows(store, {{"startRow": 0, "endRow": 100, "sortModel": []}}, [["attention", "any"]])
rid = int(store.estate.devices["ResourceID"].iat[0])
client.get(f'/device/{{rid}}')
print(json.dumps({{"peak_rss_mb": peak_mb(), "cold_start_s": time.perf_counter() - started}}))
"""
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def summary_command(config: Path) -> dict:
    """`comanage-dashboard summary` as a user runs it (``python -m dashboard``): wall time
    and the process's peak memory, printed by the process itself as it exits."""
    code = (
        PEAK_MB
        + f"""
import runpy, sys
sys.argv = ["comanage-dashboard", "summary", "--config", {str(config)!r}, "--format", "json",
            "--quiet"]
try:
    runpy.run_module("dashboard", run_name="__main__")
finally:
    print(f"peak_rss_mb={{peak_mb()}}", file=sys.stderr)
"""
    )
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=HERE.parent
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"summary failed: {result.stderr.strip()[-500:]}")
    peak = float(result.stderr.rsplit("peak_rss_mb=", 1)[1].split()[0])
    return {"seconds": seconds, "peak_rss_mb": peak}


def run(devices: int, repeat: int, with_sqlite: bool, sources_only: bool = False) -> dict:
    import numpy as np

    from dashboard.web.export import stream_csv
    from dashboard.web.pages import device as device_page
    from dashboard.web.pages import devices as devices_page
    from dashboard.web.pages import overview as overview_page

    folder = ensure_estate(devices, with_sqlite)
    settings = load_settings(folder / "comanage.toml")
    figures: dict[str, dict] = {}

    def record(name, seconds, floor=None, target=None):
        figures[name] = {
            "seconds": seconds,
            "floor_seconds": floor,
            "ratio": (seconds / floor) if floor else None,
            "target": target,
        }

    floor, _ = median_time(pyarrow_floor(folder), repeat)
    record("floor: pyarrow read of the CSV", floor)

    def load_and_summarise():
        estate = load_estate(settings)
        summarize(estate.devices, [s.as_dict() for s in estate.sources], estate.data_as_of)
        return estate

    seconds, estate = median_time(load_and_summarise, repeat)
    record("load + validate + classify + summarise (CSV)", seconds, floor, 5.0)

    if with_sqlite:
        sql_paths(folder, settings, repeat, record)
    if not sources_only:
        reconciliation(estate, repeat, record)
    if sources_only:
        sources_memory(folder, with_sqlite, figures)
        return {"devices": len(estate.devices), "figures": figures}

    columns = [
        "os_group",
        "os_release",
        "enrollment_status",
        "reason",
        "error_code",
        *[c for c in estate.devices.columns if c.startswith("wl_")],
    ]
    count_floor, _ = median_time(
        lambda: [estate.devices[c].value_counts() for c in columns], repeat
    )
    record("floor: value_counts over the summarised columns", count_floor)
    sources = [s.as_dict() for s in estate.sources]
    seconds, _ = median_time(lambda: summarize(estate.devices, sources, estate.data_as_of), repeat)
    record("summarise (all devices)", seconds, count_floor)

    # Warm start: a restarted (or second) worker reads the Parquet cache the refresh wrote,
    # and is ready to serve (the default sort and the collection masks built).
    from dashboard.data.cache import fingerprint, write_cache

    with tempfile.TemporaryDirectory() as scratch:
        cached = replace(settings, cache_dir=scratch)
        seconds, _ = median_time(
            lambda: write_cache(estate, Path(scratch), fingerprint(cached)), repeat
        )
        record("cache write (Parquet)", seconds)

        def warm_start():
            worker = EstateStore(cached, use_cache=True)
            assert worker.adopt_cache()
            return worker

        seconds, _ = median_time(warm_start, repeat)
        record("warm start: a second worker reads the cache, ready", seconds, None, 1.0)

    store = EstateStore(settings, loader=lambda _s: estate)
    store.refresh()
    collection = settings.collections[1] if len(settings.collections) > 1 else None
    if collection:
        seconds, _ = median_time(
            lambda: summarize(
                estate.devices, sources, estate.data_as_of, estate.mask(None, collection)
            ),
            repeat,
        )
        record(f"summarise (collection {collection})", seconds, count_floor)

    for label, scope in (("all devices", None), (f"collection {collection}", collection)):

        def overview(scope=scope):
            store._cache.clear()  # no cached summary: the server's full work
            store._drawn.clear()  # nor the page drawn for this scope (EstateStore.memo)
            return overview_page.render(store, settings, None, scope)

        seconds, _ = median_time(overview, 5)
        record(f"overview callbacks ({label})", seconds, None, 0.200)

    request = {"startRow": 0, "endRow": 100, "sortModel": [{"colId": "name", "sort": "asc"}]}
    pairs = [["attention", "any"], ["os_group", "Windows 10 1709 and later"]]
    estate.sort_order("name")  # the first sort per estate is paid once, at refresh

    def page():
        store._cache.clear()  # a new filter every time: no cached mask
        return devices_page.get_rows(store, request, pairs)

    seconds, _response = median_time(page, repeat * 3)
    record("device list page (filter + sort + 100 rows)", seconds, None, 0.150)

    rid = int(estate.devices["ResourceID"].iat[len(estate.devices) // 2])
    seconds, _ = median_time(
        lambda: device_page.layout(store, settings, f"/device/{rid}", {}), repeat * 3
    )
    record("device page", seconds, None, 0.050)

    export_rows = min(500_000, len(estate.devices))
    positions = np.arange(export_rows)

    def export():
        size = 0
        for part in stream_csv(estate, positions, "entra"):
            size += len(part)
        return size

    seconds, size = median_time(export, max(1, repeat // 2))
    record(f"CSV export of {export_rows:,} rows ({size / 1e6:.0f} MB)", seconds, None, 15.0)

    # History: the trends query over the generated weeks, then one snapshot write (a new
    # day each run, so every run really writes).

    import pandas as pd

    from dashboard.data.history import HistoryStore

    generated = HistoryStore(f"sqlite:///{folder / 'history.sqlite'}", read_only=True)
    seconds, _ = median_time(lambda: generated.trend(), repeat * 3)
    record(f"trends query ({HISTORY_WEEKS} weekly snapshots)", seconds)
    generated.close()
    with tempfile.TemporaryDirectory() as scratch:
        history = HistoryStore(f"sqlite:///{scratch}/history.sqlite")
        days = iter(range(1, 100))

        def snapshot():
            day = pd.Timestamp(estate.data_as_of) - pd.Timedelta(days=next(days))
            history.record(
                replace(estate, data_as_of=day.isoformat()).snapshot(list(settings.collections))
            )

        seconds, _ = median_time(snapshot, max(1, repeat // 2 + 1))
        record("snapshot write (history, one day)", seconds)
        history.close()

    sources_memory(folder, with_sqlite, figures)
    peak = child_peak(folder / "comanage.toml", devices)
    figures["serving process peak RSS (MB)"] = {"value": peak["peak_rss_mb"], "target": 1500}
    figures["cold start: load + first page (s)"] = {"value": peak["cold_start_s"]}
    return {"devices": len(estate.devices), "figures": figures}


def intune_side(devices, as_of: str, total: int):
    """An Intune source's frame of ``total`` records for the estate's devices: the sample's
    records (``data.sample_intune``), topped up with older records of the same devices (the
    re-enrollment case, several records per ID) when there are fewer."""
    import numpy as np
    import pandas as pd

    from dashboard.data.sample_intune import COMANAGED, COMANAGED_EAS, intune_records

    stamp = pd.Timestamp(as_of).tz_convert("UTC").tz_localize(None)
    as_of_us = int(stamp.to_datetime64().astype("datetime64[us]").astype(np.int64))
    frame = intune_records(devices, as_of_us, seed=7)
    frame = frame.loc[frame["operatingSystem"] == "Windows"].reset_index(drop=True)
    rng = np.random.default_rng(7)
    if len(frame) < total:
        extra = frame.iloc[rng.integers(0, len(frame), total - len(frame))].copy()
        extra["lastSyncDateTime"] = extra["lastSyncDateTime"] - pd.Timedelta(days=30)
        frame = pd.concat([frame, extra], ignore_index=True)
    frame = frame.iloc[:total].copy()
    for column in ("id", "deviceName", "azureADDeviceId", "managementAgent", "complianceState"):
        frame[column] = frame[column].astype("str")
    frame["comanaged"] = frame["managementAgent"].isin([COMANAGED, COMANAGED_EAS])
    return frame


def reconciliation(estate, repeat: int, record) -> None:
    """Reconciling every ConfigMgr record with as many Intune records (issue 15's target: a
    million against a million in a few seconds)."""
    import pandas as pd

    from dashboard.data.intune_source import read_intune_file
    from dashboard.model.intune import intune_only_rows, intune_summary, reconcile

    devices = estate.devices
    source = intune_side(devices, estate.data_as_of, len(devices))
    # Reading them from an export first: Graph's date form, as Export-Csv writes it.
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "intune.csv"
        written = source.drop(columns=["comanaged"])
        for column in ("lastSyncDateTime", "enrolledDateTime"):
            written[column] = written[column].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        written.to_csv(path, index=False)
        seconds, read = median_time(lambda: read_intune_file(path), repeat)
        assert read.records == len(source), "the benchmark's export did not read whole"
        record(f"read an Intune export of {len(source):,} records (CSV)", seconds)
    as_of = pd.Timestamp(estate.data_as_of)
    seconds, columns = median_time(lambda: reconcile(devices, source, as_of, 7), repeat)
    record(f"reconcile with {len(source):,} Intune records", seconds, None, 3.0)
    seconds, only = median_time(lambda: intune_only_rows(devices, source), repeat)
    record("Intune-only records (whole source)", seconds, None, 3.0)
    both = devices.drop(columns=[c for c in columns.columns if c in devices.columns])
    both = both.assign(**dict(columns.items()))
    seconds, _ = median_time(
        lambda: intune_summary(
            both, records=len(source), windows=len(source), dropped=0, intune_only=len(only)
        ),
        repeat,
    )
    record("summary's intune object", seconds)


def sql_paths(folder: Path, settings, repeat: int, record) -> None:
    """The SQL path (SQLite replica through ADBC; the same replica through the ODBC driver)
    beside its floor, SQLite executing the same queries. Interleaved, so that a busy moment
    of the machine weighs on all three alike."""
    floor = sql_floor(folder, list(settings.named_collections))
    sqlite_settings = load_settings(replica_config(folder, "url"))
    odbc_settings = load_settings(replica_config(folder, "odbc"))
    times: dict[str, list[float]] = {"floor": [], "sqlite": [], "odbc": []}
    for _ in range(max(1, repeat // 2)):
        for key, step in (
            ("floor", floor),
            ("sqlite", lambda: load_estate(sqlite_settings)),
            ("odbc", lambda: load_estate(odbc_settings)),
        ):
            started = time.perf_counter()
            step()
            times[key].append(time.perf_counter() - started)
    floor_seconds = statistics.median(times["floor"])
    record("floor: SQLite executes queries/*.sql, counts the rows", floor_seconds)
    record(
        "load from the SQLite replica (ADBC) via queries/*.sql",
        statistics.median(times["sqlite"]),
        floor_seconds,
        1.5 * floor_seconds,
    )
    record(
        "load from the replica through ODBC (SQLite3 driver)",
        statistics.median(times["odbc"]),
        floor_seconds,
        1.5 * floor_seconds,
    )


def sources_memory(folder: Path, with_sqlite: bool, figures: dict) -> None:
    """`summary` as a user runs it, from each source form: wall time and peak memory."""
    command = summary_command(folder / "comanage.toml")
    figures["`summary` command: wall time (s)"] = {"value": command["seconds"], "target": 10}
    figures["`summary` command: peak RSS (MB)"] = {"value": command["peak_rss_mb"], "target": 2048}
    if not with_sqlite:
        return
    limit = round(command["peak_rss_mb"] * 1.25)
    for label, config in (
        ("SQLite replica", folder / "comanage-sqlite.toml"),
        ("ODBC", folder / "comanage-odbc.toml"),
    ):
        result = summary_command(config)
        figures[f"`summary` from the {label}: wall time (s)"] = {"value": result["seconds"]}
        figures[f"`summary` from the {label}: peak RSS (MB)"] = {
            "value": result["peak_rss_mb"],
            "target": limit,
        }


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB, Python {platform.python_version()}"


def print_table(result: dict) -> None:
    print(f"\n{result['devices']:,} devices")
    print(f"{'step':<58} {'median':>10} {'floor':>9} {'ratio':>7} {'target':>8}")
    for name, figure in result["figures"].items():
        if "value" in figure:
            target = figure.get("target")
            print(
                f"{name:<58} {figure['value']:>10.1f} {'':>9} {'':>7} "
                f"{'' if target is None else target:>8}"
            )
            continue
        floor = figure["floor_seconds"]
        ratio = figure["ratio"]
        target = figure["target"]
        print(
            f"{name:<58} {figure['seconds'] * 1000:>8.0f}ms "
            f"{'' if floor is None else f'{floor * 1000:.0f}ms':>9} "
            f"{'' if ratio is None else f'{ratio:.1f}x':>7} "
            f"{'' if target is None else f'{target * 1000:.0f}ms':>8}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--devices",
        type=int,
        action="append",
        help="estate size (repeatable; default 100000 and 1000000)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per median")
    parser.add_argument(
        "--no-sqlite",
        action="store_true",
        help="skip the SQLite replica (its generation takes a while)",
    )
    parser.add_argument(
        "--sources-only",
        action="store_true",
        help="only the loads: CSV, the SQL path (ADBC and ODBC) and its floor, "
        "and each `summary` command's time and peak memory",
    )
    args = parser.parse_args()
    sizes = args.devices or [100_000, 1_000_000]
    (HERE / "results").mkdir(exist_ok=True)
    print(f"machine: {machine()}")
    for devices in sizes:
        result = run(devices, args.repeat, not args.no_sqlite, args.sources_only)
        result["machine"] = machine()
        result["when"] = time.strftime("%Y-%m-%d %H:%M:%S")
        print_table(result)
        (HERE / "results" / f"{devices}.json").write_text(json.dumps(result, indent=2))
    print(f"\nresults in {HERE / 'results'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
