"""The overview's attention and readiness panels (dashboard.web.panels), without a browser."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboard.model.attention import READINESS_STEPS, RULES, shown_rules
from dashboard.model.summary import summarize
from dashboard.web import figures, panels
from dashboard.web.pages import overview
from tests.helpers import by_id, text_of, walk


def rows_with(tree, attribute: str) -> dict:
    return {
        getattr(c, attribute): c
        for c in walk(tree)
        if hasattr(c, attribute) and getattr(c, "className", "").startswith("dd-row")
    }


def links(tree) -> list:
    return [c for c in walk(tree) if getattr(c, "href", None)]


@pytest.mark.parametrize(("site", "collection"), [(None, None), ("PS1", "CAS00101")])
def test_attention_panel_shows_every_rule_with_its_link(factory_store, site, collection):
    summary = factory_store.summary(site, collection)
    panel = panels.attention_panel(summary, site, collection)
    rows = rows_with(panel, "data-rule")
    # The factory estate has no Intune source: the Intune rules are left out.
    shown = shown_rules(False)
    assert list(rows) == [
        rule.id for rule in sorted(shown, key=lambda r: ("high", "medium", "low").index(r.severity))
    ]
    scope = "".join(f"&{k}={v}" for k, v in (("site", site), ("collection", collection)) if v)
    for rule in shown:
        row, number = rows[rule.id], summary["attention"][rule.id]
        assert getattr(row, "data-severity") == rule.severity
        assert row.title == f"{rule.title}: {rule.explanation}"
        assert rule.title in text_of(row)
        cell = next(c for c in walk(row) if hasattr(c, "data-count"))
        assert getattr(cell, "data-count") == str(number)
        hrefs = [c.href for c in links(row)]
        assert hrefs == ([f"/devices?attention={rule.id}{scope}"] if number else [])
    total = by_id(panel, "ovw-attention-total")
    assert getattr(total, "data-count") == str(summary["attention_devices"])
    assert [c.href for c in links(total)] == [f"/devices?attention=any{scope}"]
    groups = [
        getattr(c, "data-severity")
        for c in walk(panel)
        if getattr(c, "className", "") == "dd-group"
    ]
    assert groups == ["high", "medium", "low"]


@pytest.mark.parametrize(("site", "collection"), [(None, None), ("PS2", None)])
def test_readiness_panel_is_the_summary_in_order(factory_store, site, collection):
    summary = factory_store.summary(site, collection)
    panel = panels.readiness_panel(summary, site, collection)
    rows = rows_with(panel, "data-step")
    assert list(rows) == [step for step, _label, _fix in READINESS_STEPS]
    scope = "".join(f"&{k}={v}" for k, v in (("site", site), ("collection", collection)) if v)
    for step in summary["readiness"]:
        row = rows[step["step"]]
        text = text_of(row)
        assert step["label"] in text
        for key in ("checked", "passed"):
            assert f"{step[key]:,}" in text
        cell = next(c for c in walk(row) if hasattr(c, "data-count"))
        assert getattr(cell, "data-count") == str(step["failed"])
        hrefs = [c.href for c in links(row)]
        assert hrefs == ([f"/devices?readiness={step['step']}{scope}"] if step["failed"] else [])
        assert "If it fails:" in row.title
    ready = by_id(panel, "ovw-readiness-ready")
    assert getattr(ready, "data-count") == str(summary["readiness"][-1]["passed"])


def test_readiness_bars_are_a_waterfall(factory_store):
    summary = factory_store.summary()
    panel = panels.readiness_panel(summary, None, None)
    widths = []
    for row in rows_with(panel, "data-step").values():
        segments = [c for c in walk(row) if getattr(c, "className", "") == "dd-bar-segment"]
        widths.append([float(s.style["width"].rstrip("%")) for s in segments])
    devices = summary["devices"]
    for step, segments in zip(summary["readiness"], widths, strict=True):
        assert segments[0] == pytest.approx(100 * step["passed"] / devices, abs=0.01)
        assert sum(segments) == pytest.approx(100 * step["checked"] / devices, abs=0.02)


def test_zero_counts_are_not_links():
    summary = {
        "devices": 10,
        "attention": {rule.id: 0 for rule in RULES},
        "attention_devices": 0,
        "readiness": [
            {"step": step, "label": label, "checked": 10, "passed": 10, "failed": 0}
            for step, label, _fix in READINESS_STEPS
        ],
    }
    assert links(panels.attention_panel(summary, None, None)) == []
    assert links(panels.readiness_panel(summary, None, None)) == []
    ready = by_id(panels.readiness_panel(summary, None, None), "ovw-readiness-ready")
    assert " ".join(text_of(ready).split()).startswith("10 of 10 devices (100.0 %) meet every")


def test_panels_say_when_nothing_matches(factory_store):
    empty = summarize(factory_store.estate.devices.iloc[0:0], [], "2026-11-20T12:00:00Z")
    for build in (panels.attention_panel, panels.readiness_panel):
        assert text_of(build(empty, "PS2", "CAS00101")) == figures.NO_DEVICES
        assert text_of(build(None, None, None)) == "-"


def test_overview_renders_the_panels_with_the_filter(factory_store, factory_settings):
    assert {"ovw-attention", "ovw-readiness"} <= set(overview.RENDER_OUTPUTS)
    out = overview.render(factory_store, factory_settings, "PS2", "CAS00101")  # no device
    assert text_of(out["ovw-attention"]) == figures.NO_DEVICES
    assert text_of(out["ovw-readiness"]) == figures.NO_DEVICES
    out = overview.render(factory_store, factory_settings, "PS1", None)
    hrefs = [c.href for c in links(out["ovw-attention"])]
    assert hrefs and all(h.endswith("&site=PS1") for h in hrefs)
    layout = overview.layout(factory_store, factory_settings, "/", {})
    assert by_id(layout, "ovw-attention") is not None
    assert by_id(layout, "ovw-readiness") is not None


def test_panel_colours_follow_the_dashboard(factory_store):
    assert panels.SEVERITY_COLORS == {
        "high": "#D55E00",
        "medium": "#E69F00",
        "low": "#56B4E9",
    }  # = assets/50-devices.css
    css = (Path(overview.__file__).parents[1] / "assets" / "50-devices.css").read_text()
    for severity, color in panels.SEVERITY_COLORS.items():
        assert (
            f".badge.sev-{severity}, .ag-cell.sev-{severity} {{ background-color: {color};" in css
        )
    assert set(panels.READINESS_FAIL_COLORS.values()) <= set(figures.COLORS.values())
