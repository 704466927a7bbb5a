"""Reading raw values (docs/definitions.md §4): flags, numbers, codes, builds, dates, bad rows."""

import numpy as np
import pytest

from dashboard.data.contract import (
    parse_build_number,
    parse_devices,
    parse_flag,
    parse_nt_version,
    parse_status_code,
)
from tests.factories import raw_frame


@pytest.mark.parametrize(
    "text, value",
    [
        ("1", 1),
        ("0", 0),
        ("1.0", 1),
        ("0.0", 0),
        ("true", 1),
        ("False", 0),
        ("YES", 1),
        ("no", 0),
        (" 1 ", 1),
    ],
)
def test_flags(text, value):
    assert parse_flag(text) == value


@pytest.mark.parametrize("text", ["", "NULL", "null", None])
def test_unknown_flags(text):
    assert np.isnan(parse_flag(text))


@pytest.mark.parametrize("text", ["2", "y", "on", "-1"])
def test_bad_flags(text):
    with pytest.raises(ValueError):
        parse_flag(text)


@pytest.mark.parametrize(
    "text, code",
    [
        ("-2145910742", "0x8018002A"),
        ("2149056554", "0x8018002A"),
        ("0x8018002a", "0x8018002A"),
        ("8018002A", "0x8018002A"),
        ("CAA20003", "0xCAA20003"),
        ("0", "0x00000000"),
        ("-2147467259", "0x80004005"),
        ("2149056554.0", "0x8018002A"),
        ("-1", "0xFFFFFFFF"),
    ],
)
def test_status_codes(text, code):
    assert parse_status_code(text) == code


def test_empty_status_code_is_no_code():
    assert parse_status_code("") is None and parse_status_code("NULL") is None


@pytest.mark.parametrize("text", ["0xZZ", "abc!", "12x"])
def test_bad_status_codes(text):
    with pytest.raises(ValueError):
        parse_status_code(text)


@pytest.mark.parametrize(
    "build, number",
    [
        ("19045", 19045),
        ("10.0.19045", 19045),
        ("10.0.19045.4651", 19045),
        ("10.0", None),
        ("", None),
        ("NULL", None),
    ],
)
def test_build_numbers(build, number):
    parsed = parse_build_number(build)
    assert np.isnan(parsed) if number is None else parsed == number


@pytest.mark.parametrize(
    "os_name, build, nt",
    [
        ("Microsoft Windows NT Workstation 10.0", "19045", "10.0"),
        ("Microsoft Windows NT Workstation 10.0 (Tablet Edition)", "", "10.0"),
        ("Microsoft Windows NT Workstation 6.1", "7601", "6.1"),
        ("", "10.0.19045", "10.0"),
        ("", "19045", None),
        ("Windows", "", None),
    ],
)
def test_nt_version(os_name, build, nt):
    assert parse_nt_version(os_name, build) == nt


def test_bad_values_drop_only_their_rows_and_are_reported():
    raw = raw_frame(
        [
            {},
            {"ResourceID": "abc"},
            {"MDMWorkloads": "lots"},
            {"LastPolicyRequest": "yesterday"},
            {"EnrollmentStatusCode": "0xZZ"},
            {"ClientActive": "maybe"},
            {"MDMWorkloads": "8193.0"},
            {"ProductType": "9"},
        ]
    )
    result = parse_devices(raw)
    assert len(result.frame) == 3
    assert result.dropped == 5
    messages = [p.describe("devices.csv") for p in result.problems]
    assert messages[0] == 'devices.csv line 3: ResourceID "abc" is not a whole number'
    assert any('MDMWorkloads "lots"' in m for m in messages)
    assert any('LastPolicyRequest "yesterday" is not a date' in m for m in messages)
    assert result.reasons == {
        "bad ResourceID": 1,
        "bad MDMWorkloads": 1,
        "bad LastPolicyRequest": 1,
        "bad EnrollmentStatusCode": 1,
        "bad ClientActive": 1,
    }


def test_dates_sql_server_and_iso():
    raw = raw_frame(
        [
            {"LastPolicyRequest": "2026-11-20 13:45:12.000"},
            {"LastPolicyRequest": "2026-11-20T13:45:12Z"},
            {"LastPolicyRequest": "2026-11-20T14:45:12+01:00"},
            {"LastPolicyRequest": "NULL"},
        ]
    )
    frame = parse_devices(raw).frame
    values = frame["LastPolicyRequest"].tolist()
    assert values[0] == values[1] == values[2]
    assert str(values[3]) == "NaT"
