"""The Microsoft Graph client against a local stand-in for Graph and Entra ID (loopback, HTTPS,
``tests/graph_server.py``): paging, throttling, every sign-in and permission error, the time
limit, and that neither the secret nor the token ever leaves in an error or a log line."""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import pytest

from dashboard.data.graph import SELECT, GraphError, fetch_managed_devices
from dashboard.data.intune_settings import IntuneSettings
from dashboard.data.intune_source import IntuneError, load_intune
from dashboard.settings import settings_from_dict
from tests.graph_server import CLIENT, SECRET, TENANT, GraphServer, self_signed

ENV = {"COMANAGE_INTUNE_SECRET": SECRET}


def record(number: int, system: str = "Windows", agent: str = "configurationManagerClientMdm"):
    return {
        "id": f"intune-{number}",
        "deviceName": f"PC-{number}",
        "azureADDeviceId": f"{number:08x}-0000-0000-0000-000000000000",
        "managementAgent": agent,
        "complianceState": "compliant",
        "lastSyncDateTime": "2026-11-20T13:45:12Z",
        "enrolledDateTime": "0001-01-01T00:00:00Z",
        "operatingSystem": system,
        "osVersion": "10.0.22631.4460",
        "userPrincipalName": f"user{number}@contoso.com",
        "serialNumber": "not selected",
    }


@pytest.fixture(scope="module")
def graph_server(tmp_path_factory):
    server = GraphServer(tmp_path_factory.mktemp("graph")).start()
    yield server
    server.stop()


@pytest.fixture
def graph(graph_server):
    graph_server.reset()
    graph_server.records = [record(n) for n in range(7)] + [record(7, "iOS", "mdm")]
    return graph_server


@pytest.fixture
def settings(graph) -> IntuneSettings:
    return IntuneSettings(
        tenant_id=TENANT,
        client_id=CLIENT,
        client_secret_env="COMANAGE_INTUNE_SECRET",
        graph_url=graph.url,
        authority_url=graph.url,
        ca_bundle=graph.ca_file,
        timeout_seconds=30,
    )


class Sleeps(list):
    """A ``sleep`` that records the waits instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def fails(settings, environ=ENV, **kwargs) -> str:
    with pytest.raises(GraphError) as caught:
        fetch_managed_devices(settings, environ, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    assert SECRET not in message
    return message


def test_every_page_is_read_with_the_selected_columns(graph, settings):
    rows = fetch_managed_devices(settings, ENV)
    assert [row["id"] for row in rows] == [f"intune-{n}" for n in range(8)]
    assert "serialNumber" not in rows[0]  # $select was sent: only the columns used come back
    assert len(graph.graph_requests()) == 3  # 8 records, 3 a page
    token_requests = [path for method, path, _ in graph.requests if method == "POST"]
    assert token_requests == [f"/{TENANT}/oauth2/v2.0/token"]
    assert graph.bodies[0]["grant_type"] == "client_credentials"
    assert graph.bodies[0]["scope"] == f"{graph.url}/.default"
    assert set(SELECT.split(",")) == set(record(0)) - {"serialNumber"}


def test_throttling_waits_retry_after_and_carries_on(graph, settings):
    graph.throttle = {1: (429, "7"), 2: (503, None)}
    sleeps = Sleeps()
    rows = fetch_managed_devices(settings, ENV, sleep=sleeps)
    assert len(rows) == 8
    assert sleeps == [7.0, 5.0]  # Retry-After, then the default for a 503 without one
    assert len(graph.graph_requests()) == 5


def test_one_real_throttle_with_retry_after(graph, settings):
    graph.throttle = {1: (429, "1")}
    start = time.monotonic()
    assert len(fetch_managed_devices(settings, ENV)) == 8
    assert time.monotonic() - start >= 1.0


def test_a_wait_longer_than_the_time_left_fails_at_once(graph, settings):
    graph.throttle = {0: (429, "50")}
    sleeps = Sleeps()
    message = fails(replace(settings, timeout_seconds=20), sleep=sleeps)
    assert message.startswith("Microsoft Graph: no complete answer within 20 s (timeout_seconds")
    assert sleeps == []


def test_retry_after_is_capped(graph, settings):
    graph.throttle = {0: (429, "86400")}
    sleeps = Sleeps()
    fetch_managed_devices(replace(settings, timeout_seconds=300), ENV, sleep=sleeps)
    assert sleeps == [60.0]


def test_slow_answer_hits_the_time_limit(graph, settings):
    graph.slow_seconds = 3
    start = time.monotonic()
    message = fails(replace(settings, timeout_seconds=1))
    assert time.monotonic() - start < 2.9
    assert "no complete answer within 1 s" in message


def test_permission_missing(graph, settings):
    graph.forbidden = True
    message = fails(settings)
    assert message.startswith("Microsoft Graph: permission missing (403 Forbidden: Application")
    assert "DeviceManagementManagedDevices.Read.All" in message


def test_wrong_tenant(graph, settings):
    message = fails(replace(settings, tenant_id="contoso.example"))
    assert message == (
        "Microsoft Graph: sign-in failed (AADSTS90002): tenant contoso.example not found: check "
        "tenant_id (the directory ID or a verified domain)"
    )


def test_unknown_application(graph, settings):
    other = "99999999-7777-8888-9999-aaaaaaaaaaaa"
    message = fails(replace(settings, client_id=other))
    assert f"(AADSTS700016): application {other} not found in tenant {TENANT}" in message


def test_wrong_secret(graph, settings):
    wrong = "wr0ng-secret-value-0123456789"
    message = fails(settings, {"COMANAGE_INTUNE_SECRET": wrong})
    assert "(AADSTS7000215): invalid client secret" in message
    assert "COMANAGE_INTUNE_SECRET" in message
    assert wrong not in message


def test_consent_missing(graph, settings):
    graph.consented = False
    message = fails(settings)
    assert "(AADSTS65001): admin consent missing" in message


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "environment variable COMANAGE_INTUNE_SECRET is not set"),
        ({"COMANAGE_INTUNE_SECRET": "  "}, "environment variable COMANAGE_INTUNE_SECRET is empty"),
    ],
)
def test_secret_missing_from_the_environment(graph, settings, environ, message):
    assert message in fails(settings, environ)
    assert graph.requests == []  # nothing sent


def test_certificate_sign_in(graph, settings, tmp_path):
    both, public = self_signed(tmp_path, "app")
    graph.app_certificate = public.read_bytes()
    with_certificate = replace(settings, client_secret_env="", certificate=both)
    assert len(fetch_managed_devices(with_certificate, {})) == 8
    assert "client_assertion" in graph.bodies[0]
    assert "client_secret" not in graph.bodies[0]


def test_certificate_not_registered(graph, settings, tmp_path):
    both, _ = self_signed(tmp_path, "app")
    _, registered = self_signed(tmp_path, "another")
    graph.app_certificate = registered.read_bytes()
    message = fails(replace(settings, client_secret_env="", certificate=both), {})
    assert "(AADSTS700027): the certificate is not the one registered" in message


def test_certificate_unreadable(graph, settings, tmp_path):
    missing = tmp_path / "missing.pem"
    message = fails(replace(settings, client_secret_env="", certificate=missing), {})
    assert message == (
        f"Microsoft Graph: cannot read certificate {missing} (No such file or directory)"
    )
    _, public_only = self_signed(tmp_path, "app")
    message = fails(replace(settings, client_secret_env="", certificate=public_only), {})
    assert "holds no unencrypted PEM private key" in message


def test_next_link_to_another_host_is_not_followed(graph, settings):
    graph.next_host = "https://graph.example.net"
    message = fails(settings)
    assert "points to another host (graph.example.net); not followed" in message


def test_untrusted_certificate(graph, settings):
    message = fails(replace(settings, ca_bundle=None))
    assert message.startswith("Microsoft Graph: TLS certificate of 127.0.0.1:")


def test_nothing_secret_in_any_log_line(graph, settings, caplog):
    """Every logger at DEBUG (MSAL's, urllib3's, ours) through a sign-in, a throttled page,
    a refused secret and a 403."""
    caplog.set_level(logging.DEBUG)
    graph.throttle = {1: (429, "0")}
    fetch_managed_devices(settings, ENV)
    fails(settings, {"COMANAGE_INTUNE_SECRET": SECRET + "x"})
    graph.forbidden = True
    fails(settings)
    assert graph.tokens  # tokens were issued
    text = caplog.text
    assert "Microsoft Graph: 8 records in 3 pages" in text
    assert SECRET not in text
    for token in graph.tokens:
        assert token not in text
        assert token[-20:] not in text


def test_load_intune_from_graph(graph, tmp_path, monkeypatch):
    """The configured [intune] table end to end: Graph's records become IntuneRecords."""
    monkeypatch.setenv("COMANAGE_INTUNE_SECRET", SECRET)
    (tmp_path / "ca.pem").write_bytes(graph.ca_file.read_bytes())
    settings = settings_from_dict(
        {
            "sources": [{"site": "PS1", "csv": "PS1"}],
            "intune": {
                "tenant_id": TENANT,
                "client_id": CLIENT,
                "client_secret_env": "COMANAGE_INTUNE_SECRET",
                "graph_url": graph.url,
                "authority_url": graph.url,
                "ca_bundle": "ca.pem",
            },
        },
        tmp_path / "comanage.toml",
    )
    records = load_intune(settings.intune, tmp_path)
    assert (records.records, records.dropped, records.windows) == (8, 0, 7)
    assert records.source == "Microsoft Graph"
    assert records.frame["comanaged"].all()
    graph.forbidden = True
    with pytest.raises(IntuneError, match="permission missing"):
        load_intune(settings.intune, tmp_path)
