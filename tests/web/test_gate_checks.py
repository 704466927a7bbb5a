"""The request gate's checks run on every request: they must stay cheap for the requests the
dashboard really gets (Dash's callbacks, a few Host headers and peers) without letting a
hostile request through."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from dashboard.web import gate
from dashboard.web.app import create_app
from tests.helpers import router_request

LIMIT = gate.MAX_JSON_DEPTH

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab,:', max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=60,
)


def nested(depth: int) -> bytes:
    return json.dumps(json.loads("[" * depth + "]" * depth)).encode()


@given(json_values)
def test_too_deep_agrees_with_the_exact_depth(value):
    raw = json.dumps(value).encode()
    for limit in (0, 1, 2, 3, 5):
        assert gate.json_too_deep(raw, limit) == (gate.json_depth(raw) > limit)


def test_the_limit_is_exact_and_strings_do_not_count():
    assert not gate.json_too_deep(nested(LIMIT), LIMIT)
    assert gate.json_too_deep(nested(LIMIT + 1), LIMIT)
    assert gate.json_too_deep(b"[" * 100_000, LIMIT)  # never closed: still too deep
    assert gate.json_too_deep(b"{" * (LIMIT + 1), LIMIT)
    brackets_in_a_string = json.dumps(["[" * 1000 + "{" * 1000]).encode()
    assert not gate.json_too_deep(brackets_in_a_string, LIMIT)
    many_shallow = json.dumps([[i] for i in range(1000)]).encode()  # 1,001 openers, depth 2
    assert not gate.json_too_deep(many_shallow, LIMIT)


def test_a_callback_body_costs_no_array_work(factory_settings, factory_store, monkeypatch):
    """Every callback request passed through the array pass (numpy) before: about 40 us of
    the gate's 130 us per request. Without numpy here, Dash's bodies must still be answered,
    and a deep body still refused."""
    client = create_app(factory_settings, factory_store).server.test_client()
    body = router_request("/devices", "?attention=any")
    monkeypatch.setattr(gate, "np", None)
    assert client.post("/_dash-update-component", json=body).status_code == 200
    monkeypatch.undo()
    response = client.post(
        "/_dash-update-component", data=nested(LIMIT + 1), content_type="application/json"
    )
    assert response.status_code == 400


def test_remembered_host_and_peer_decisions_stay_right(factory_settings, factory_store):
    """Host and peer checks are remembered per value: a refused value stays refused after
    an answered one, and the other way round, however often they alternate."""
    client = create_app(factory_settings, factory_store).server.test_client()
    for _ in range(3):
        assert client.get("/_dash-dependencies", headers={"Host": "127.0.0.1"}).status_code == 200
        assert (
            client.get("/_dash-dependencies", headers={"Host": "evil.example"}).status_code == 400
        )
        far = client.get("/_dash-dependencies", environ_base={"REMOTE_ADDR": "192.0.2.10"})
        assert far.status_code == 403
        near = client.get("/_dash-dependencies", environ_base={"REMOTE_ADDR": "127.0.0.1"})
        assert near.status_code == 200
    for index in range(600):  # more distinct Host headers than are remembered
        host = f"evil{index}.example"
        assert client.get("/_dash-dependencies", headers={"Host": host}).status_code == 400
    assert client.get("/_dash-dependencies", headers={"Host": "localhost"}).status_code == 200


def test_a_callback_this_app_does_not_have_is_a_reason_not_a_crash(factory_settings, factory_store):
    """A page left open across an upgrade sends the callbacks it knew: Dash would answer
    500 (KeyError, IndexError); the gate says what is wrong."""
    client = create_app(factory_settings, factory_store).server.test_client()
    current = router_request("/devices")
    assert client.post("/_dash-update-component", json=current).status_code == 200
    old_router = dict(current, output="page.children", state=current["state"][:1])
    unknown = dict(current, output="nowhere.children")
    short = dict(current, state=current["state"][:1])
    extra = dict(current, inputs=current["inputs"] * 2)
    for body, reason in (
        (old_router, "no such callback"),
        (unknown, "no such callback"),
        (short, "state do not match"),
        (extra, "inputs do not match"),
        (["not", "an", "object"], "a JSON object"),
    ):
        response = client.post("/_dash-update-component", json=body)
        assert response.status_code == 400, body
        assert reason in response.get_data(as_text=True)
