"""Weekly history for a generated sample estate: ``comanage-dashboard sample --history-weeks``.

The generated estate is "today". Earlier weeks are derived from it by rolling each device
back along a journey drawn from the seed: before the co-management policy reached it, a
device had none; then it was scheduled or enrolling; then it reached today's state (co-managed,
failed, pending sign in). Co-management grows week after week as the auto-enrollment
collection widens; workloads move in the usual order (compliance policies first, then Office
Click-to-Run apps, client apps, Windows Update); a wave of devices targeted together hits a
bad week of failures (0x80180002, the Entra token problem) nine weeks back and enrolls in the
weeks after; a few devices fall back out of co-management (re-imaged) in recent weeks; a few
devices are new. Dates (last policy request ...) move back with the week, so ages stay alike.

Each week's estate goes through the real path: its export is written as CSV to a temporary
folder, loaded by ``load_estate`` (with the history written so far, for time in state) and
recorded by ``HistoryStore.record``: the history holds what the dashboard would have
recorded. Deterministic: one seed, one as-of time, the same snapshots.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from ..settings import Settings, Source, load_settings
from .estate import load_estate
from .history import HistoryStore
from .sample import SampleEstate, export_devices, export_memberships
from .sample_intune import week_intune

NEVER = 10_000  # "weeks ago" of an event before any history
BAD_WEEK = 9  # weeks back: the wave's failures
WAVE_CODE = 0x80180002  # the server could not authenticate the user (no Entra token)
DETOUR_CODES = (0x8018002A, 0x8018002A, 0x80070490, 0x801901AD, 0xCAA10001)  # transient
# Workload bit -> the range of "weeks ago" its move reached a device (compliance first).
WORKLOAD_MOVES = {2: (20, 25), 128: (7, 19), 64: (3, 12), 16: (0, 7)}

NO_POLICY, IN_PROGRESS, COMANAGED, WAVE_FAILED, CURRENT = range(5)


def _flag(frame: pd.DataFrame, column: str) -> np.ndarray:
    return frame[column].fillna(0).to_numpy(dtype=np.int64) == 1


def plan_journeys(frame: pd.DataFrame, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per device of one site's export (today's state), when each step happened (weeks ago).

    ``born``: the device is known from then; ``policy``: co-management policy arrived;
    ``reached``: today's state (enrolled, failed, pending) was reached; ``fell``: a device
    co-managed until then fell back (``fell_from``: co-managed since); ``moves``: per
    workload bit, when it moved to Intune on this device; ``wave``: in the wave of the bad
    week.
    """
    n = len(frame)
    policy_now = _flag(frame, "ComgmtPolicyPresent")
    mdm = _flag(frame, "MDMEnrolled")
    comanaged = policy_now & mdm
    failed = policy_now & ~mdm & _flag(frame, "EnrollmentFailed")
    pending = policy_now & ~mdm & ~failed & _flag(frame, "PendingLogon")
    in_progress = policy_now & ~mdm & ~failed & ~pending

    u = rng.random(n)
    born = np.where(u < 0.03, rng.integers(0, 26, n), NEVER)
    # The auto-enrollment collection widened steadily: 30 % had the policy before history.
    policy = np.where(rng.random(n) < 0.3, NEVER, rng.integers(0, 30, n))
    # Waiting devices are mostly recent; some have waited for weeks (the stuck ones).
    # (users sign in late: devices pending sign in have waited longer than the others)
    recent = rng.random(n) < np.where(pending, 0.3, 0.7)
    waiting_since = np.where(recent, rng.integers(0, 3, n), rng.integers(3, 16, n))
    policy = np.where(in_progress | pending, waiting_since, policy)
    delay = rng.geometric(0.6, n) - 1
    reached = np.where(
        policy >= NEVER,
        np.where(rng.random(n) < 0.85, NEVER, rng.integers(0, 26, n)),
        np.maximum(policy - delay, 0),
    )
    reached = np.where(in_progress, policy, reached)
    reached = np.where(pending, np.maximum(policy - delay, 0), reached)

    # The wave: targeted together before the bad week, failed then, enrolled after.
    wave = comanaged & (rng.random(n) < 0.12)
    policy = np.where(wave, BAD_WEEK + 1, policy)
    reached = np.where(wave, rng.integers(BAD_WEEK - 4, BAD_WEEK - 1, n), reached)

    # A few failed or waiting devices were co-managed until recently (re-imaged, reset).
    fell_back = (failed | in_progress) & (rng.random(n) < 0.06)
    fell = np.where(fell_back, rng.integers(0, 6, n), -1)
    fell_from = np.where(fell_back, fell + rng.integers(2, 12, n), -1)
    reached = np.where(fell_back, fell, reached)
    policy = np.where(fell_back, np.maximum(policy, fell_from + 1), policy)

    moves = {bit: rng.integers(low, high + 1, n) for bit, (low, high) in WORKLOAD_MOVES.items()}
    # On their way, some devices now co-managed waited for a user to sign in, or failed for a
    # while with a transient error, and took longer.
    detour = np.where(
        comanaged & ~wave & (policy < NEVER), rng.choice(3, n, p=[0.76, 0.12, 0.12]), 0
    )  # 1 pending, 2 failed
    longer = np.maximum(policy - 1 - (rng.geometric(0.45, n) - 1), 0)
    reached = np.where(detour > 0, np.minimum(reached, longer), reached)
    detour_code = np.array(DETOUR_CODES, dtype=np.int64)[rng.integers(0, len(DETOUR_CODES), n)]
    # Nothing before the device existed.
    policy = np.minimum(policy, born)
    reached = np.minimum(reached, policy)
    return {
        "born": born,
        "policy": policy,
        "reached": reached,
        "fell": fell,
        "fell_from": fell_from,
        "wave": wave,
        "moves": moves,
        "comanaged": comanaged,
        "targeted": policy_now | mdm,
        "detour": detour,
        "detour_code": detour_code,
    }


def week_export(frame: pd.DataFrame, plan: dict[str, np.ndarray], weeks_ago: int) -> pd.DataFrame:
    """The site's export as it was ``weeks_ago`` weeks back."""
    w = weeks_ago
    if w == 0:
        return frame
    present = plan["born"] >= w
    comanaged_now = plan["comanaged"]
    policy, reached, fell, fell_from = (
        plan["policy"],
        plan["reached"],
        plan["fell"],
        plan["fell_from"],
    )
    state = np.full(len(frame), CURRENT)
    journey = _flag(frame, "ComgmtPolicyPresent")  # devices with no policy today: as today
    state = np.where(journey & (w > reached), IN_PROGRESS, state)
    state = np.where(journey & (w > policy), NO_POLICY, state)
    was_comanaged = (fell >= 0) & (w > fell) & (w <= fell_from)
    state = np.where(was_comanaged, COMANAGED, state)
    bad = plan["wave"] & ((w == BAD_WEEK) | ((w == BAD_WEEK - 1) & (plan["moves"][16] % 3 == 0)))
    state = np.where(bad & (w > reached) & (w <= policy), WAVE_FAILED, state)

    out = frame.copy()
    for column in ("LastPolicyRequest", "LastActiveTime"):
        out[column] = out[column] - pd.Timedelta(days=7 * w)

    def put(rows: np.ndarray, **values) -> None:
        for column, value in values.items():
            series = out[column]
            series = series.mask(rows) if value is None else series.mask(rows, value)
            out[column] = series

    no_policy = state == NO_POLICY
    put(
        no_policy,
        ComgmtPolicyPresent=0,
        MDMEnrolled=0,
        MDMProvisioned=0,
        EnrollmentScheduled=0,
        PendingLogon=0,
        EnrollmentFailed=0,
        EnrollmentStatusCode=None,
        EnrollmentErrorDetail=None,
        MDMWorkloads=None,
    )
    waiting = state == IN_PROGRESS
    put(
        waiting,
        ComgmtPolicyPresent=1,
        MDMEnrolled=0,
        MDMProvisioned=0,
        EnrollmentScheduled=1,
        PendingLogon=0,
        EnrollmentFailed=0,
        EnrollmentStatusCode=None,
        EnrollmentErrorDetail=None,
        MDMWorkloads=8193,
    )
    put(waiting & (plan["detour"] == 1), PendingLogon=1)
    detour_failed = waiting & (plan["detour"] == 2)
    put(detour_failed, EnrollmentFailed=1)
    codes = out["EnrollmentStatusCode"].astype("Int64").to_numpy(dtype=object, na_value=None)
    codes[detour_failed] = plan["detour_code"][detour_failed] - 2**32
    out["EnrollmentStatusCode"] = pd.array(codes, dtype="Int64")
    failing = state == WAVE_FAILED
    put(
        failing,
        ComgmtPolicyPresent=1,
        MDMEnrolled=0,
        MDMProvisioned=0,
        EnrollmentScheduled=1,
        PendingLogon=0,
        EnrollmentFailed=1,
        EnrollmentStatusCode=WAVE_CODE - 2**32,
        EnrollmentErrorDetail=None,
        MDMWorkloads=8193,
    )
    enrolled = state == COMANAGED
    put(
        enrolled & ~comanaged_now,
        ComgmtPolicyPresent=1,
        MDMEnrolled=1,
        MDMProvisioned=1,
        EnrollmentScheduled=0,
        PendingLogon=0,
        EnrollmentFailed=0,
        EnrollmentStatusCode=0,
        EnrollmentErrorDetail=None,
        MDMWorkloads=8195,
    )
    # Co-managed then and now: the workloads not yet moved then are cleared.
    still = (state == CURRENT) & comanaged_now
    bits = out["MDMWorkloads"].astype("Int64")
    missing = bits.isna().to_numpy()
    values = bits.fillna(0).to_numpy(dtype=np.int64)
    for bit, moved in plan["moves"].items():
        values = np.where(still & (w > moved), values & ~bit, values)
    moved_back = pd.array(values, dtype="Int64")
    moved_back[missing] = pd.NA
    out["MDMWorkloads"] = moved_back
    return out.loc[present].reset_index(drop=True)


def _site_plan(frame: pd.DataFrame, added, seed: list[int]) -> dict:
    """The journeys of one site's devices: those of the generated estate from the site's
    stream, the duplicate records added after it (``added``: their ResourceIDs) from a stream
    of their own, so that adding them leaves every other device's history as it was."""
    extra = frame["ResourceID"].isin(added if added is not None else []).to_numpy()
    main = plan_journeys(frame.loc[~extra].reset_index(drop=True), np.random.default_rng(seed))
    if not extra.any():
        return main
    more = plan_journeys(frame.loc[extra].reset_index(drop=True), np.random.default_rng([*seed, 1]))

    def merged(first: np.ndarray, second: np.ndarray) -> np.ndarray:
        out = np.empty(len(frame), dtype=np.result_type(first, second))
        out[~extra], out[extra] = first, second
        return out

    plan = {key: merged(value, more[key]) for key, value in main.items() if key != "moves"}
    plan["moves"] = {bit: merged(value, more["moves"][bit]) for bit, value in main["moves"].items()}
    return plan


def _write_week(
    folder: Path, exports: dict, plans: dict, memberships: dict, w: int
) -> list[pd.DataFrame]:
    weeks = []
    for site, frame in exports.items():
        target = folder / site
        target.mkdir(parents=True, exist_ok=True)
        week = week_export(frame, plans[site], w)
        weeks.append(week)
        week = week.copy()
        for column in ("LastPolicyRequest", "LastActiveTime"):
            week[column] = week[column].dt.strftime("%Y-%m-%d %H:%M:%S.%f").str[:-3]
        week.to_csv(target / "devices.csv", index=False)
        memberships[site].to_csv(target / "collections.csv", index=False)
    return weeks


def write_history(
    estate: SampleEstate,
    config: Path,
    weeks: int,
    path: Path | None = None,
    say=lambda message: None,
) -> Path:
    """``weeks`` weekly snapshots ending at the estate's as-of day, in ``history.sqlite``
    beside ``config`` (or ``path``). Replaces an existing file."""
    config = Path(config)
    settings: Settings = load_settings(config, environ={})
    path = Path(path) if path is not None else config.parent / "history.sqlite"
    temporary = path.with_name(path.name + ".tmp")
    temporary.unlink(missing_ok=True)
    history = HistoryStore(
        f"sqlite:///{temporary.resolve()}",
        history_days=settings.history_days,
        device_history_days=settings.device_history_days,
    )
    exports = {site: export_devices(estate, site) for site in estate.sites}
    memberships = {
        site: export_memberships(estate, site, settings.named_collections) for site in estate.sites
    }
    plans = {
        site: _site_plan(frame, estate.duplicates.get(site), [estate.seed, 4_711, index])
        for index, (site, frame) in enumerate(exports.items())
    }
    try:
        with tempfile.TemporaryDirectory(prefix="comanage-history-") as scratch:
            for w in range(weeks - 1, -1, -1):
                folder = Path(scratch) / f"week-{w}"
                weeks_devices = _write_week(folder, exports, plans, memberships, w)
                as_of = estate.as_of - timedelta(days=7 * w)
                week_settings = replace(
                    settings,
                    sources=tuple(Source(site=s, csv=folder / s) for s in estate.sites),
                    intune=week_intune(settings.intune, weeks_devices, as_of, estate.seed, folder),
                ).with_values(as_of=as_of.strftime("%Y-%m-%dT%H:%M:%SZ"))
                loaded = load_estate(week_settings, history=history)
                history.record(loaded.snapshot(settings.collections), recorded_at=as_of)
                say(
                    f"  history: {as_of:%Y-%m-%d} {len(loaded.devices):,} devices, "
                    f"{int(loaded.devices['comanaged'].sum()):,} co-managed"
                )
        history.close()
        with sqlite3.connect(temporary) as connection:
            connection.execute("VACUUM")
        connection.close()
        os.replace(temporary, path)
    finally:
        history.close()
        temporary.unlink(missing_ok=True)
    return path
