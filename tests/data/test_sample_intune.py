"""The sample's Intune export: made by ``sample``, deterministic, loads clean, and exercises
every reconciliation state, every compliance value and each special case."""

from __future__ import annotations

import filecmp

import pytest

from dashboard.data.estate import load_estate
from dashboard.data.intune_source import read_intune_file
from dashboard.data.sample_command import main_sample
from dashboard.model.intune import COMPLIANCE_STATES, RECONCILIATION_STATES
from dashboard.model.summary import summarize
from dashboard.settings import SAMPLE_DIR, load_settings

AS_OF = "2026-11-23T07:00:00Z"


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    return main_sample(1_200, 3, tmp_path_factory.mktemp("s"), as_of=AS_OF, quiet=True)


def test_sample_writes_the_export_and_the_setting(generated):
    assert (generated.parent / "intune.csv").is_file()
    assert load_settings(generated, environ={}).intune.file == generated.parent / "intune.csv"


def test_the_export_is_deterministic_and_leaves_the_other_files_alone(generated, tmp_path):
    again = main_sample(1_200, 3, tmp_path, as_of=AS_OF, quiet=True)
    assert filecmp.cmp(generated.parent / "intune.csv", again.parent / "intune.csv", False)
    for site in ("PS1", "PS2"):
        for name in ("devices.csv", "collections.csv"):
            assert filecmp.cmp(generated.parent / site / name, again.parent / site / name, False)


def test_the_bundled_sample_loads_clean_and_shows_every_case():
    records = read_intune_file(SAMPLE_DIR / "intune.csv")
    assert records.dropped == 0
    assert records.problems == []
    assert records.records > records.windows  # phones and Macs left out
    frame = records.frame
    # Re-enrollment leaves several records with one Entra device ID.
    assert frame["azureADDeviceId"].dropna().duplicated().any()
    assert frame["lastSyncDateTime"].isna().any()  # never synced
    estate = load_estate(load_settings(SAMPLE_DIR / "comanage.toml", environ={}))
    summary = summarize(estate.devices, [], estate.data_as_of, intune=estate.intune_figures())[
        "intune"
    ]
    assert all(summary["reconciliation"][state] > 0 for state in RECONCILIATION_STATES)
    assert all(summary["compliance"][state] > 0 for state in COMPLIANCE_STATES)
    assert summary["matched_by_name"] > 0
    assert summary["intune_only"] > 0
    assert summary["authority_mismatch"] > 0
    assert summary["dropped"] == 0
    # Some Intune records of a matched ID are not the deciding one; none of them is
    # counted as Intune only.
    rows = set(estate.devices["intune_row"].tolist())
    only = set(estate.intune_only.tolist())
    assert not rows & only
