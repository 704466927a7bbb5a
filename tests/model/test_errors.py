"""The enrollment error catalogue: the codes and advice the definitions give."""

import pytest

from dashboard.model.errors import CATALOGUE, describe


@pytest.mark.parametrize(
    "code, transient, words",
    [
        ("0x800706D9", False, ("dmwappushservice", "automatic", "reboot")),
        ("0x80180001", True, ("usually transient", "support")),
        ("0x801C03F2", True, ("entra connect sync", "usercertificate", "sync scope")),
        ("0x80090016", False, ("tpm", "imaging", "last resort", "bitlocker")),
    ],
)
def test_catalogue_entries(code, transient, words):
    info = describe(code)
    assert info.code == code and info.transient is transient
    text = f"{info.description} {info.fix}".lower()
    assert all(word in text for word in words), text


def test_0x800706d9_is_the_raw_result_behind_0x80180023():
    assert "0x80180023" in CATALOGUE["0x800706D9"].description
    assert "dmwappushservice" in CATALOGUE["0x80180023"].description
