"""Figure builders: what each chart draws equals the summary it was given."""

import plotly.graph_objects as go
import pytest

from dashboard.labels import (
    AUTHORITY_LABELS,
    FUNNEL_LABELS,
    REASON_LABELS,
    WORKLOAD_LABELS,
    enrollment_status_labels,
)
from dashboard.model.summary import summarize
from dashboard.web import figures
from dashboard.web.links import parse_query


@pytest.fixture(scope="module")
def summary(factory_store):
    return factory_store.summary()


def _empty_message(fig: go.Figure) -> str | None:
    return (fig.layout.meta or {}).get("empty")


def test_os_groups_donut_equals_summary_and_omits_zero(summary):
    fig = figures.os_groups_figure(summary)
    pie = fig.data[0]
    assert dict(zip(pie.labels, pie.values, strict=True)) == {
        k: v for k, v in summary["os_groups"].items() if v
    }
    # A slice lists the devices it counts: client devices of that group.
    assert [parse_query(c) for c in pie.customdata] == [
        {"os_group": [g], "client": ["1"]} for g in pie.labels
    ]
    clients = summary["devices"] - summary["without_client"]
    assert fig.layout.annotations[0].text == f"<b>{clients:,}</b><br>client devices"
    assert all("client devices" in text for text in pie.hovertext)
    zero = dict(summary, os_groups=dict(summary["os_groups"], Other=0))
    assert "Other" not in figures.os_groups_figure(zero).data[0].labels


def test_os_figures_without_any_client_device_say_so(summary):
    nobody = {
        **summary,
        "without_client": summary["devices"],
        "os_groups": dict.fromkeys(summary["os_groups"], 0),
        "os_releases": {},
    }
    for build in (figures.os_groups_figure, figures.os_releases_figure):
        assert _empty_message(build(nobody)) == figures.NO_CLIENTS


def test_os_releases_all_drawn_and_windows_11_coloured_apart(summary):
    fig = figures.os_releases_figure(summary)
    drawn = {}
    colour = {}
    for trace in fig.data:
        for label, count in zip(trace.y, trace.x, strict=True):
            drawn[label] = count
            colour[label] = trace.marker.color
    assert drawn == summary["os_releases"]
    assert all(parse_query(c)["client"] == ["1"] for t in fig.data for c in t.customdata)
    assert colour["Windows 11 23H2"] == colour["Windows 11 22H2"] == COLORS_W11
    assert colour["Windows 10 22H2"] != COLORS_W11
    assert colour["Windows 10 1607"] != colour["Windows 10 22H2"]  # before 1709
    assert {t.name for t in fig.data} >= {"Windows 11", "Windows 10"}


COLORS_W11 = figures.RELEASE_FAMILIES["Windows 11"]


@pytest.mark.parametrize(
    ("label", "family"),
    [
        ("Windows 11 24H2", "Windows 11"),
        ("Windows 11 build 27000", "Windows 11"),
        ("Windows 10 22H2", "Windows 10"),
        ("Windows 10 1709", "Windows 10"),
        ("Windows 10 1703", "Windows 10 before 1709"),
        ("Windows 10 build 15000", "Windows 10 before 1709"),
        ("Windows 10 build 19046", "Windows 10"),
        ("Server", "Other OS"),
        ("Windows 7 & 8.x", "Other OS"),
        ("Other", "Other OS"),
    ],
)
def test_release_family(label, family):
    assert figures.release_family(label) == family


def test_funnel_values_and_conversion(summary):
    fig = figures.funnel_figure(summary)
    funnel = fig.data[0]
    assert list(funnel.y) == list(FUNNEL_LABELS.values())
    assert list(funnel.x) == [summary["funnel"][k] for k in FUNNEL_LABELS]
    assert funnel.textinfo == "value+percent previous"
    assert [parse_query(c)["funnel"] for c in funnel.customdata] == [[k] for k in FUNNEL_LABELS]


@pytest.mark.parametrize("wording", ["entra", "azure"])
def test_enrollment_status_labels_and_zero_slices(summary, wording):
    labels = enrollment_status_labels(wording)
    status = dict(summary["enrollment_status"], enrolling_aad=0)
    fig = figures.enrollment_status_figure(dict(summary, enrollment_status=status), wording)
    pie = fig.data[0]
    assert dict(zip(pie.labels, pie.values, strict=True)) == {
        labels[k]: v for k, v in status.items() if v
    }
    assert labels["enrolling_aad"] not in pie.labels
    if wording == "azure":
        assert "Success, hybrid Azure AD-joined" in pie.labels
    else:
        assert "Success, Microsoft Entra hybrid joined" in pie.labels


def test_workloads_stacked_per_authority_with_percent_of_comanaged(summary):
    fig = figures.workloads_figure(summary)
    assert fig.layout.barmode == "stack"
    assert [t.name for t in fig.data] == list(AUTHORITY_LABELS.values())
    for trace, authority in zip(fig.data, AUTHORITY_LABELS, strict=True):
        assert trace.orientation == "h"
        assert dict(zip(trace.y, trace.x, strict=True)) == {
            WORKLOAD_LABELS[k]: counts[authority] for k, counts in summary["workloads"].items()
        }
        for text, count in zip(trace.hovertext, trace.x, strict=True):
            assert (
                f"{count:,} devices ({figures.pct(count, summary['comanaged'])} of "
                "co-managed)" in text
            )
        assert parse_query(trace.customdata[0])["authority"] == [authority]


def test_reasons_all_ten_with_explanations(summary):
    fig = figures.reasons_figure(summary)
    bars = fig.data[0]
    assert dict(zip(bars.y, bars.x, strict=True)) == {
        REASON_LABELS[k]: v for k, v in summary["not_comanaged_reasons"].items()
    }
    assert len(bars.y) == 10
    assert "Install the Configuration Manager client." in " ".join(bars.hovertext)


def test_no_devices_shows_a_message_not_empty_axes(factory_store):
    estate = factory_store.estate
    empty = summarize(estate.devices.iloc[0:0], [], estate.data_as_of)
    for build in (
        figures.os_groups_figure,
        figures.os_releases_figure,
        figures.funnel_figure,
        figures.enrollment_status_figure,
        figures.workloads_figure,
        figures.reasons_figure,
    ):
        fig = build(empty)
        assert _empty_message(fig) == figures.NO_DEVICES
        assert not fig.data
        assert fig.layout.annotations[0].text == figures.NO_DEVICES


def test_partial_empty_states(summary):
    nobody_comanaged = {**summary, "comanaged": 0}
    assert _empty_message(figures.workloads_figure(nobody_comanaged)).startswith(
        "No co-managed devices"
    )
    all_comanaged = {**summary, "comanaged": summary["devices"]}
    assert _empty_message(figures.reasons_figure(all_comanaged)) == "Every device is co-managed"
    untargeted = {**summary, "enrollment_status": dict.fromkeys(summary["enrollment_status"], 0)}
    assert _empty_message(figures.enrollment_status_figure(untargeted)).startswith("No device")


def test_colours_are_one_language():
    assert figures.AUTHORITY_COLORS["intune"] == figures.COLORS["intune"]
    assert figures.STATUS_COLORS["failure_aad"] == figures.COLORS["failure"]
    assert figures.REASON_COLORS["failed"] == figures.COLORS["failure"]
    assert figures.REASON_COLORS["pending-sign-in"] == figures.STATUS_COLORS["pending_user_sign_in"]
    assert len(set(figures.COLORS.values())) == len(figures.COLORS)


def test_figures_serialise_without_device_text(summary):
    """No figure carries text from the site database (plotly renders some HTML in labels)."""
    for build in (
        figures.os_groups_figure,
        figures.os_releases_figure,
        figures.funnel_figure,
        figures.enrollment_status_figure,
        figures.workloads_figure,
        figures.reasons_figure,
    ):
        assert "<img" not in build(summary).to_json()


def test_every_chart_is_a_valid_plotly_figure(summary, sample_store):
    """Builders skip plotly's validation for speed (``figures.chart``): validate here what
    they build, so a misspelt property fails a test instead of a browser silently ignoring
    it."""
    from dashboard.model.trends import trend_series
    from dashboard.web import trend_figures

    built = [
        build(summary)
        for build in (
            figures.os_groups_figure,
            figures.os_releases_figure,
            figures.funnel_figure,
            figures.enrollment_status_figure,
            figures.workloads_figure,
            figures.reasons_figure,
        )
    ]
    built.append(figures.empty_figure("nothing"))
    series = trend_series(sample_store.history.trend())
    built += [build(series) for build in trend_figures.FIGURES.values()]
    for fig in built:
        go.Figure(fig.to_dict())  # raises ValueError naming any invalid property
        assert fig.to_plotly_json()["layout"]["template"]["layout"]["paper_bgcolor"] == "white"
