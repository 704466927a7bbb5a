"""dashboard.data.sample: deterministic, the docs/definitions.md §7 mix, the messy parts of
real site databases, and CSV exports that say exactly what the queries say on the replicas."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dashboard.data.contract import DEVICE_COLUMNS, parse_devices
from dashboard.data.sample import (
    COLLECTIONS,
    SAMPLE_WORKLOADS,
    generate_estate,
    sqlite_paths,
    write_config,
    write_csv,
    write_sqlite,
)
from dashboard.data.sample_command import main_sample
from dashboard.data.sql_source import fetch_sql
from dashboard.settings import WORKLOADS, load_settings

AS_OF = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # as in conftest.py
COLLECTION_IDS = [c for c, _ in COLLECTIONS]


def read_export(folder: Path) -> pd.DataFrame:
    return pd.read_csv(
        folder / "devices.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig"
    )


def parsed_csv(folders: dict[str, Path]) -> pd.DataFrame:
    frames = []
    for site, folder in folders.items():
        result = parse_devices(read_export(folder))
        assert result.dropped == 0, result.problems
        frame = result.frame.assign(Site=site)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------- determinism


def tree_bytes(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_same_seed_same_bytes(tmp_path):
    for name in ("a", "b"):
        estate = generate_estate(2_000, seed=11, as_of=AS_OF)
        write_csv(estate, tmp_path / name)
        write_config(estate, tmp_path / name)
        write_sqlite(estate, tmp_path / f"{name}.sqlite")
    assert tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b")
    for site in ("PS1", "PS2"):
        dumps = []
        for name in ("a", "b"):
            connection = sqlite3.connect(tmp_path / f"{name}-{site}.sqlite")
            dumps.append(list(connection.iterdump()))
            connection.close()
        assert dumps[0] == dumps[1]
    other = generate_estate(2_000, seed=12, as_of=AS_OF)
    write_csv(other, tmp_path / "c")
    assert (tmp_path / "a" / "PS1" / "devices.csv").read_bytes() != (
        tmp_path / "c" / "PS1" / "devices.csv"
    ).read_bytes()


# --------------------------------------------------------------------------- the §7 mix


def os_groups(frame: pd.DataFrame) -> pd.Series:
    """docs/definitions.md §4 OS group, written out independently of dashboard.model."""
    name = frame["OperatingSystem"].astype("str").fillna("").str.lower()
    product = frame["ProductType"]
    server = product.isin([2, 3]) | (product.isna() & name.str.contains("server"))
    workstation = (product == 1) | (
        product.isna() & name.str.contains("workstation") & ~name.str.contains("server")
    )
    nt, build = frame["NTVersion"], frame["BuildNumber"]
    return pd.Series(
        np.select(
            [
                server,
                workstation & (nt == "10.0") & (build >= 16299),
                workstation & (nt == "10.0") & (build < 16299),
                workstation & nt.isin(["6.1", "6.2", "6.3"]),
            ],
            [
                "Server",
                "Windows 10 1709 and later",
                "Windows 10 lower than 1709",
                "Windows 7 & 8.x",
            ],
            "Other",
        ),
        index=frame.index,
    )


@pytest.fixture(scope="module")
def mix(tmp_path_factory):
    estate = generate_estate(20_000, seed=3, as_of=AS_OF, windows11_share=0.4)
    folders = write_csv(estate, tmp_path_factory.mktemp("mix"))
    return estate, parsed_csv(folders)


def test_device_count_and_sites(mix):
    _estate, frame = mix
    assert len(frame) == 20_000
    assert frame.groupby("Site").size().to_dict() == {"PS1": 12_800, "PS2": 7_200}
    assert frame["ResourceID"].is_unique  # one hierarchy: unique across sites
    ps1 = frame.loc[frame["Site"] == "PS1", "ResourceID"]
    ps2 = frame.loc[frame["Site"] == "PS2", "ResourceID"]
    assert ps1.min() == 16_777_220 and ps1.max() < 33_554_432 <= ps2.min()


def test_os_mix(mix):
    _, frame = mix
    share = os_groups(frame).value_counts(normalize=True)
    assert 0.85 <= share["Windows 10 1709 and later"] <= 0.92
    assert 0.02 <= share["Windows 10 lower than 1709"] <= 0.04
    assert 0.01 <= share["Windows 7 & 8.x"] <= 0.02
    assert 0.05 <= share["Server"] <= 0.10
    assert 0.0 < share["Other"] <= 0.03
    modern = frame[os_groups(frame) == "Windows 10 1709 and later"]
    win11 = (modern["BuildNumber"] >= 22000).mean()
    assert 0.37 <= win11 <= 0.43
    releases = {
        10240,
        10586,
        14393,
        15063,
        16299,
        17134,
        17763,
        18362,
        18363,
        19041,
        19042,
        19043,
        19044,
        19045,
        22000,
        22621,
        22631,
        26100,
    }
    unmapped = ~modern["BuildNumber"].isin(releases)
    assert 0 < unmapped.mean() < 0.02  # a few builds the release map does not know


def test_clients(mix):
    _, frame = mix
    known = frame["ClientActive"].dropna()
    assert 0.85 <= (known == 1).mean() <= 0.95
    assert 0.9 <= (frame["ClientInstalled"] == 1).mean() <= 0.98
    assert frame["ClientInstalled"].isna().any() and (frame["ClientInstalled"] == 0).any()
    age = (pd.Timestamp(AS_OF.replace(tzinfo=None)) - frame["LastPolicyRequest"]).dt.days
    assert age[frame["ClientActive"] == 1].quantile(0.95) <= 6
    assert age[frame["ClientActive"] == 0].median() >= 14
    assert frame["ClientVersion"].dropna().str.fullmatch(r"5\.00\.\d{4}\.\d{4}").all()


def test_enrollment_status_mix(mix):
    _, frame = mix
    flag = {
        c: frame[c] == 1
        for c in (
            "MDMEnrolled",
            "ComgmtPolicyPresent",
            "AADJoined",
            "HybridAADJoined",
            "EnrollmentFailed",
            "PendingLogon",
        )
    }
    comanaged = flag["MDMEnrolled"] & flag["ComgmtPolicyPresent"]
    targeted = flag["ComgmtPolicyPresent"] | flag["MDMEnrolled"]
    entra = flag["AADJoined"] & ~flag["HybridAADJoined"]
    status = pd.Series(
        np.select(
            [comanaged & ~entra, comanaged, flag["EnrollmentFailed"], flag["PendingLogon"]],
            ["success hybrid", "success entra", "failed", "pending"],
            "enrolling",
        )
    )[targeted]
    share = status.value_counts(normalize=True)
    assert 0.65 <= share["success hybrid"] <= 0.75
    assert 0.01 <= share["success entra"] <= 0.05
    assert 0.05 <= share["enrolling"] <= 0.10
    assert 0.10 <= share["failed"] <= 0.15
    assert 0.05 <= share["pending"] <= 0.10
    joined = flag["HybridAADJoined"] | flag["AADJoined"]
    assert frame.loc[joined, "AADDeviceID"].notna().all()
    assert frame.loc[~joined & frame["HybridAADJoined"].notna(), "AADDeviceID"].isna().all()

    failures = frame[targeted & ~comanaged & flag["EnrollmentFailed"]]
    codes = failures["EnrollmentStatusCode"].astype("str").fillna("0x00000000").value_counts()
    leaders = ["0x8018002A", "0x80180002", "0xCAA20003", "0x80070490"]
    assert codes.index[:4].tolist() == leaders
    assert codes.drop(leaders).max() < codes["0x80070490"]
    assert len(codes) >= 25  # a few dozen codes, unknown ones included
    assert "0x00000000" in codes  # failures that reported no code
    unknown = failures[failures["EnrollmentStatusCode"] == "0x8018000A"]
    assert unknown["EnrollmentErrorDetail"].str.contains(",").all()


def test_workloads_follow_configuration(mix):
    estate, frame = mix
    comanaged = frame[(frame["MDMEnrolled"] == 1) & (frame["ComgmtPolicyPresent"] == 1)]
    bits = comanaged["MDMWorkloads"].fillna(0).astype(np.int64)
    moved = {key: ((bits & WORKLOADS[key][0]) > 0) for key in SAMPLE_WORKLOADS}
    counts = {key: int(value.sum()) for key, value in moved.items()}
    # in order: compliance (Intune) > Office > client apps > Windows Update; the rest none
    assert (
        counts["compliance_policies"]
        > counts["office_click_to_run_apps"]
        > counts["client_apps"]
        > counts["windows_update_policies"]
        > 0
    )
    assert counts["compliance_policies"] >= 0.9 * len(comanaged)
    for key in ("device_configuration", "endpoint_protection", "resource_access_policies"):
        assert counts[key] == 0
    assert ((bits & 8192) > 0).any() and ((bits & 4096) > 0).any()  # high bits
    assert (bits == 8193).any() or (frame["MDMWorkloads"] == 8193).any()

    members = pd.concat([estate.view(s, "v_FullCollectionMembership") for s in estate.sites])
    for key, (stage, pilot) in SAMPLE_WORKLOADS.items():
        if stage != "pilot":
            continue
        in_pilot = comanaged["ResourceID"].isin(
            members.loc[members["CollectionID"] == pilot, "ResourceID"]
        )
        assert in_pilot.any()
        assert not moved[key][~in_pilot.to_numpy()].any()  # only pilot members move
        lagging = (~moved[key][in_pilot.to_numpy()]).mean()
        assert 0.0 < lagging < 0.15  # a few pilot members lag (the app flags them)


def test_collections(mix):
    estate, frame = mix
    for site in estate.sites:
        collections = estate.view(site, "v_Collection")
        assert list(collections["CollectionID"]) == COLLECTION_IDS
        members = estate.view(site, "v_FullCollectionMembership")
        devices = set(frame.loc[frame["Site"] == site, "ResourceID"])
        all_systems = set(members.loc[members["CollectionID"] == "SMS00001", "ResourceID"])
        assert all_systems == devices
        assert set(members["ResourceID"]) <= devices  # only the site's own, no obsolete
        sizes = members["CollectionID"].value_counts()
        assert sizes["CAS00100"] > sizes["CAS00102"] > sizes["CAS00103"] > sizes["CAS00104"]
        assert not members.duplicated().any()


# --------------------------------------------------------------------------- messy parts


def test_the_traps_are_there(small_estate):
    for site in small_estate.sites:
        system = small_estate.view(site, "v_R_System")
        obsolete = system[system["Obsolete0"] == 1]
        assert len(obsolete) > 0
        live_names = set(system.loc[system["Obsolete0"] != 1, "Name0"])
        assert set(obsolete["Name0"]) <= live_names  # duplicates of a live record's name
        discovery = system[system["Obsolete0"].isna()]
        assert len(discovery) and discovery["Client0"].isna().all()
        inventory = small_estate.view(site, "v_GS_OPERATING_SYSTEM")
        assert not set(discovery["ResourceID"]) & set(inventory["ResourceID"])
        assert inventory["ResourceID"].duplicated().any()
        assert not inventory.duplicated(["ResourceID", "TimeStamp"]).any()
        comgmt = small_estate.view(site, "v_ClientCoManagementState")
        health = small_estate.view(site, "v_CH_ClientSummary")
        clients = set(system.loc[system["Client0"] == 1, "ResourceID"])
        assert clients - set(comgmt["ResourceID"]) and clients - set(health["ResourceID"])
        assert comgmt["MDMWorkloads"].isna().any()
        assert (comgmt["EnrollmentStatusCode"] < 0).any()
        assert (comgmt["EnrollmentStatusCode"] > 2**31).any()
        assert system["Build01"].isna().any()
        assert health["LastPolicyRequest"].isna().any()


def test_csv_has_the_textual_variety(small_csv):
    ps1 = (small_csv["PS1"] / "devices.csv").read_bytes()
    ps2 = (small_csv["PS2"] / "devices.csv").read_bytes()
    assert ps2.startswith(b'\xef\xbb\xbf"Name","ResourceID"')
    assert ps1.startswith(b"ResourceID,Name,")
    assert b",NULL," in ps1 and b"\r\n" in ps1
    raw = pd.concat([read_export(small_csv["PS1"]), read_export(small_csv["PS2"])])
    flags = set(raw["MDMEnrolled"]) | set(raw["ClientActive"])
    assert {"1", "0", "True", "False", "", "NULL"} <= flags
    codes = raw["EnrollmentStatusCode"]
    assert codes.str.startswith("-").any() and codes.str.startswith("0x").any()
    assert codes.str.fullmatch(r"2\d{9}").any()  # unsigned decimal too
    assert raw["Build"].str.fullmatch(r"10\.0\.\d+").any()
    assert raw["Build"].str.fullmatch(r"\d{5}").any()
    dates = raw["LastPolicyRequest"]
    assert dates.str.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}").any()
    assert dates.str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}").any()
    assert raw["EnrollmentErrorDetail"].str.contains(",").any()
    assert raw["EnrollmentErrorDetail"].str.contains("\n").any()


# --------------------------------------------------------------------------- CSV == SQL


def test_csv_equals_query_result_on_replica(small_csv, small_replicas):
    for site in ("PS1", "PS2"):
        sql_devices, sql_members = fetch_sql(f"sqlite:///{small_replicas[site]}", COLLECTION_IDS)
        from_sql = parse_devices(sql_devices)
        from_csv = parse_devices(read_export(small_csv[site]))
        assert from_sql.dropped == from_csv.dropped == 0
        left = from_sql.frame.sort_values("ResourceID").reset_index(drop=True)
        right = from_csv.frame.sort_values("ResourceID").reset_index(drop=True)
        typed = list(right.columns)
        assert set(DEVICE_COLUMNS) | {"BuildNumber", "NTVersion"} <= set(typed)
        pd.testing.assert_frame_equal(left[typed], right[typed], check_dtype=False)

        members = pd.read_csv(small_csv[site] / "collections.csv", encoding="utf-8-sig")
        pd.testing.assert_frame_equal(
            members.astype(str), sql_members.astype(object).astype(str), check_dtype=False
        )


# --------------------------------------------------------------------------- files


def test_sqlite_paths_naming(small_estate, tmp_path):
    assert sqlite_paths(small_estate, tmp_path / "replica.sqlite") == {
        "PS1": tmp_path / "replica-PS1.sqlite",
        "PS2": tmp_path / "replica-PS2.sqlite",
    }
    assert sqlite_paths(small_estate, tmp_path / "{site}" / "cm.db") == {
        "PS1": tmp_path / "PS1" / "cm.db",
        "PS2": tmp_path / "PS2" / "cm.db",
    }
    single = generate_estate(50, seed=1, as_of=AS_OF, sites=("XYZ",))
    assert sqlite_paths(single, tmp_path / "one.sqlite") == {"XYZ": tmp_path / "one.sqlite"}


def test_sqlite_replica_schema(small_replicas):
    connection = sqlite3.connect(small_replicas["PS1"])
    try:
        tables = {
            r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        assert tables == {
            "v_R_System",
            "v_GS_OPERATING_SYSTEM",
            "v_ClientCoManagementState",
            "v_CH_ClientSummary",
            "v_FullCollectionMembership",
            "v_Collection",
        }
        for table in tables:  # ResourceID is a primary key or indexed
            if table == "v_Collection":
                continue
            keyed = any(
                row[1] == "ResourceID" and row[5]
                for row in connection.execute(f"PRAGMA table_info({table})")
            )
            indexed = any(
                connection.execute(f"PRAGMA index_info({index[1]})").fetchone()[2] == "ResourceID"
                for index in connection.execute(f"PRAGMA index_list({table})")
            )
            assert keyed or indexed, table
        stamp = connection.execute(
            "SELECT LastPolicyRequest FROM v_CH_ClientSummary WHERE LastPolicyRequest IS NOT NULL"
        ).fetchone()[0]
        assert len(stamp) == 23 and stamp[10] == " " and stamp[19] == "."
        assert stamp[-1] in "037"  # SQL Server datetime: 1/300 s
        build = connection.execute(
            "SELECT typeof(BuildNumber0) FROM v_GS_OPERATING_SYSTEM"
        ).fetchone()[0]
        assert build == "text"
    finally:
        connection.close()


def test_config_loads_with_settings(small_estate, tmp_path):
    write_csv(small_estate, tmp_path)
    settings = load_settings(write_config(small_estate, tmp_path), environ={})
    assert [s.site for s in settings.sources] == ["PS1", "PS2"]
    assert settings.sources[0].csv == (tmp_path / "PS1").resolve()
    assert settings.as_of == "2026-11-23T07:00:00Z"
    assert settings.collections == tuple(COLLECTION_IDS)
    assert settings.workload("office_click_to_run_apps").stage == "pilot"
    assert settings.workload("office_click_to_run_apps").pilot_collections == ("CAS00102",)
    assert settings.workload("compliance_policies").stage == "intune"
    assert settings.workload("device_configuration").stage == "configmgr"

    files = write_sqlite(small_estate, tmp_path / "db" / "replica.sqlite")
    sql_settings = load_settings(write_config(small_estate, tmp_path, files), environ={})
    urls = [s.url for s in sql_settings.sources]
    assert urls == [f"sqlite:///{files['PS1'].resolve()}", f"sqlite:///{files['PS2'].resolve()}"]
    devices, _ = fetch_sql(urls[1], ["SMS00001"])
    assert len(devices) == 1_440


def test_main_sample(tmp_path, capsys):
    config = main_sample(
        300,
        5,
        tmp_path / "out",
        sqlite=tmp_path / "out" / "r.sqlite",
        as_of="2026-11-23T07:00:00Z",
        quiet=True,
    )
    assert capsys.readouterr().err == ""
    assert config == tmp_path / "out" / "comanage.toml"
    assert {p.name for p in (tmp_path / "out").iterdir()} == {
        "PS1",
        "PS2",
        "comanage.toml",
        "comanage-sqlite.toml",
        "intune.csv",
        "r-PS1.sqlite",
        "r-PS2.sqlite",
    }
    assert 'csv = "PS1"' in config.read_text()
    assert '[intune]\nfile = "intune.csv"' in config.read_text()
    assert 'url = "sqlite:///r-PS1.sqlite"' in (config.parent / "comanage-sqlite.toml").read_text()
    main_sample(300, 5, tmp_path / "csv", as_of="2026-11-23T07:00:00Z")
    err = capsys.readouterr().err
    assert "generated 300 devices" in err and "comanage.toml" in err
    assert 'csv = "PS1"' in (tmp_path / "csv" / "comanage.toml").read_text()


# --------------------------------------------------------------------------- duplicates


def test_duplicate_records_are_added_after_everything_else(tmp_path):
    """A few duplicate records per site, as real site databases hold them, without changing
    a byte of the other records' export."""
    plain = generate_estate(2_000, seed=11, as_of=AS_OF)
    extra = generate_estate(2_000, seed=11, as_of=AS_OF, duplicates=True)
    assert plain.duplicates == {}
    write_csv(plain, tmp_path / "plain")
    write_csv(extra, tmp_path / "extra")
    for site in plain.sites:
        ids = extra.duplicates[site]
        assert len(ids) == 3
        for view, frame in plain.tables[site].items():
            grown = extra.tables[site][view]
            assert grown.iloc[: len(frame)].equals(frame), view  # the rest is untouched
            if "ResourceID" in grown:
                assert set(grown["ResourceID"].iloc[len(frame) :]) <= set(ids), view
        before = (tmp_path / "plain" / site / "devices.csv").read_bytes().splitlines()
        after = (tmp_path / "extra" / site / "devices.csv").read_bytes().splitlines()
        assert after[: len(before)] == before and len(after) == len(before) + 3
        rows = read_export(tmp_path / "extra" / site)
        added = rows[rows["ResourceID"].astype(int).isin(ids)]
        others = rows[~rows["ResourceID"].astype(int).isin(ids)]
        # each added record has a name an original record has, ignoring case
        assert set(added["Name"].str.lower()) <= set(others["Name"].str.lower())
        # one of them in another case, without the client (discovery only) ...
        discovery = added[added["Name"] != added["Name"].str.upper()]
        assert len(discovery) == 1 and discovery["ClientInstalled"].isin(["", "NULL"]).all()
        # ... and two old client records of re-imaged machines, one without a policy request
        reimaged = added[added["Name"] == added["Name"].str.upper()]
        assert reimaged["ClientInstalled"].isin(["1", "True"]).all()
        assert sorted(reimaged["LastPolicyRequest"].isin(["", "NULL"])) == [False, True]


def test_main_sample_flags_the_duplicates_and_keeps_the_originals(tmp_path):
    from dashboard.data.estate import load_estate
    from dashboard.model.attention import RULE_BITS

    config = main_sample(
        600, 3, tmp_path, quiet=True, as_of="2026-11-23T07:00:00Z", duplicates=True
    )
    devices = load_estate(load_settings(config, environ={})).devices
    flagged = devices[(devices["attention"] & RULE_BITS["duplicate-record"]) != 0]
    assert len(flagged) == 6 and flagged["ResourceID"].min() > 16_777_216
    keepers = devices.set_index(["site", "ResourceID"]).loc[
        list(zip(flagged["site"], flagged["duplicate_of"], strict=True))
    ]
    assert (keepers["ClientInstalled"] == 1).all() and (keepers["ClientActive"] == 1).all()
    assert not set(keepers.index.get_level_values(1)) & set(flagged["ResourceID"])
