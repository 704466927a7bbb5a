"""The URL building every drill-down link uses (dashboard.web.links)."""

import pytest

from dashboard.web import links


def test_devices_url_encodes_labels_with_percent_twenty():
    url = links.devices_url({"os_group": "Windows 7 & 8.x"})
    assert url == "/devices?os_group=Windows%207%20%26%208.x"


def test_devices_url_keeps_scope_after_the_filter():
    url = links.devices_url(
        {"workload": "client_apps", "authority": "pilot_intune"}, site="PS1", collection="CAS00101"
    )
    assert url == (
        "/devices?workload=client_apps&authority=pilot_intune&site=PS1&collection=CAS00101"
    )


def test_devices_url_without_anything_is_the_plain_list():
    assert links.devices_url() == "/devices"
    assert links.devices_url({}, site=None, collection="") == "/devices"


def test_repeated_values_mean_any_of():
    url = links.devices_url({"enrollment_status": ["failure_hybrid", "failure_aad"]})
    assert url == "/devices?enrollment_status=failure_hybrid&enrollment_status=failure_aad"
    assert links.parse_query(url.split("?", 1)[1]) == {
        "enrollment_status": ["failure_hybrid", "failure_aad"]
    }


def test_unknown_filter_key_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown device-list filter"):
        links.devices_url({"colour": "blue"})


@pytest.mark.parametrize(
    "value", ["Windows 11 23H2", "Windows 7 & 8.x", "a+b=c?d#e/f%g", "Ünïcode ñ"]
)
def test_round_trip_through_parse_query(value):
    url = links.devices_url({"release": value}, site="P S1")
    query = links.parse_query(url.split("?", 1)[1])
    assert query == {"release": [value], "site": ["P S1"]}


def test_fragment_from_a_click_keeps_only_filters_and_uses_the_page_scope():
    fragment = links.filter_fragment({"error": "0x8018002A"})
    assert fragment == "error=0x8018002A"
    assert (
        links.devices_url_from_fragment(fragment + "&site=EVIL&bogus=1", "PS1", None)
        == "/devices?error=0x8018002A&site=PS1"
    )
    assert links.devices_url_from_fragment("bogus=1", None, None) is None
    assert links.devices_url_from_fragment(None, None, None) is None
    assert links.devices_url_from_fragment({"a": 1}, None, None) is None


def test_overview_search():
    assert links.overview_search(None, None) == ""
    assert links.overview_search("PS1", None) == "?site=PS1"
    assert links.overview_search("PS1", "CAS00101") == "?site=PS1&collection=CAS00101"


def test_parse_query_and_first():
    query = links.parse_query("?site=PS1&site=PS2&collection=&x=1")
    assert query == {"site": ["PS1", "PS2"], "x": ["1"]}
    assert links.first(query, "site") == "PS1"
    assert links.first(query, "collection") is None
    assert links.parse_query(None) == {}


# -- attention, severity, readiness and name search (issue 4) ---------------------------------


def test_attention_rule_ids_and_readiness_steps_are_known_values():
    from dashboard.model.attention import READINESS_IDS, RULES

    for rule in RULES:
        assert links.attention_url(rule.id) == f"/devices?attention={rule.id}"
    assert links.attention_url("any", site="PS1") == "/devices?attention=any&site=PS1"
    for step in READINESS_IDS:
        assert (
            links.readiness_url(step, collection="CAS00101")
            == f"/devices?readiness={step}&collection=CAS00101"
        )
    assert links.devices_url({"severity": ["high", "medium"]}) == (
        "/devices?severity=high&severity=medium"
    )


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("attention", "bogus"),
        ("readiness", "client "),
        ("severity", "critical"),
        ("attention", "ANY"),
    ],
)
def test_unknown_closed_values_are_programming_errors(key, value):
    with pytest.raises(ValueError, match=f"unknown value .* for device-list filter '{key}'"):
        links.devices_url({key: value})


def test_name_search_is_free_text_and_round_trips():
    url = links.devices_url({"q": "LON-LT 00&1"}, site="PS1")
    assert url == "/devices?q=LON-LT%2000%261&site=PS1"
    assert links.parse_query(url.split("?", 1)[1]) == {"q": ["LON-LT 00&1"], "site": ["PS1"]}


def test_fragments_keep_only_known_closed_values():
    assert (
        links.devices_url_from_fragment("readiness=joined&attention=bogus", "PS2", None)
        == "/devices?readiness=joined&site=PS2"
    )
    assert links.devices_url_from_fragment("attention=bogus&severity=x", None, None) is None
    assert (
        links.devices_url_from_fragment("attention=no-policy&attention=nope", None, None)
        == "/devices?attention=no-policy"
    )
