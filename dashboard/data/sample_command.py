"""``comanage-dashboard sample``: a sample estate's whole folder (the CSV exports, the SQLite
replicas, the config files and the weekly history), from ``sample`` and ``sample_history``.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from .sample import generate_estate, write_config, write_csv, write_sqlite
from .sample_history import write_history
from .sample_intune import write_intune


def main_sample(
    devices: int,
    seed: int,
    out: str | Path,
    sqlite: str | Path | None = None,
    as_of: datetime | str | None = None,
    quiet: bool = False,
    history_weeks: int = 0,
    duplicates: bool = False,
) -> Path:
    """``comanage-dashboard sample``: CSV exports + ``comanage.toml`` (reading them) in
    ``out``; with ``sqlite``, also the SQLite replicas and ``comanage-sqlite.toml`` (reading
    those through ``queries/*.sql``); with ``history_weeks``, ``history.sqlite``: that many
    weekly snapshots ending at ``as_of`` (``sample_history``). ``as_of`` (datetime or
    ISO 8601 text) defaults to the current hour, UTC; give it for byte-identical output.
    ``duplicates``: add a few duplicate records per site (``add_duplicates``), as real site
    databases hold (the ``sample`` command does). Returns ``comanage.toml``'s path.
    """

    def say(message: str) -> None:
        if not quiet:
            print(message, file=sys.stderr, flush=True)

    if as_of is None:
        as_of = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    started = time.perf_counter()
    estate = generate_estate(devices, seed, as_of, duplicates=duplicates)
    extra = sum(len(ids) for ids in estate.duplicates.values())
    say(
        f"generated {devices:,} devices over {', '.join(estate.sites)} (seed {seed}, as of "
        f"{estate.as_of:%Y-%m-%dT%H:%M:%SZ})"
        + (f" and {extra} duplicate records" if extra else "")
        + f" in {time.perf_counter() - started:.1f} s"
    )
    step = time.perf_counter()
    folders = write_csv(estate, out)
    say(
        f"wrote CSV exports to {', '.join(str(f) for f in folders.values())} in "
        f"{time.perf_counter() - step:.1f} s"
    )
    files = None
    if sqlite is not None:
        step = time.perf_counter()
        files = write_sqlite(estate, sqlite)
        say(
            f"wrote SQLite replicas {', '.join(str(f) for f in files.values())} in "
            f"{time.perf_counter() - step:.1f} s"
        )
    config = write_config(estate, out)
    say(f"wrote {config}")
    say(f"wrote {write_intune(estate, config)} (Intune's records, [intune] in {config.name})")
    if files is not None:
        say(f"wrote {write_config(estate, out, files, filename='comanage-sqlite.toml')}")
    if history_weeks > 0:
        step = time.perf_counter()
        history = write_history(estate, config, history_weeks, say=say)
        say(
            f"wrote {history} ({history_weeks} weekly snapshots) in "
            f"{time.perf_counter() - step:.1f} s"
        )
    say(f"done in {time.perf_counter() - started:.1f} s")
    return config
