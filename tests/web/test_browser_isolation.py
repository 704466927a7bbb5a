"""Two people on one server at once (issue 7): two browser contexts (separate cookies and
storage, like two users) drive the overview with different filters, interleaving their
actions; neither ever sees the other's filter or numbers. Filter state lives in each page's
URL and components only, never on the server."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from test_browser_overview import choose, number, wait_for_devices

from dashboard.report.capture import wait_for_dash
from dashboard.web.pages.overview import GRAPHS

pytestmark = pytest.mark.browser


@pytest.fixture
def two_pages(browser):
    contexts = [browser.new_context(viewport={"width": 1366, "height": 900}) for _ in range(2)]
    pages = []
    for context in contexts:
        page = context.new_page()
        page.set_default_timeout(20_000)
        errors: list[str] = []
        page.on("pageerror", lambda error, errors=errors: errors.append(str(error)))
        page.errors = errors
        pages.append(page)
    yield pages
    for context in contexts:
        context.close()


def shows(page, store, site: str | None, collection: str | None) -> None:
    """The page shows exactly this filter: URL, dropdowns, scope line and numbers."""
    summary = store.summary(site, collection)
    wait_for_devices(page, summary["devices"])
    query = parse_qs(urlsplit(page.url).query)
    assert query.get("site") == ([site] if site else None)
    assert query.get("collection") == ([collection] if collection else None)
    scope = page.inner_text("#ovw-scope")
    assert ("all sites" in scope) == (site is None)
    assert ("all collections" in scope) == (collection is None)
    assert number(page.inner_text("#kpi-devices")) == summary["devices"]
    assert number(page.inner_text("#kpi-comanaged")) == summary["comanaged"]


def test_two_users_with_different_filters_do_not_mix(two_pages, factory_server, factory_store):
    alice, bob = two_pages
    counts = {
        (s, c): factory_store.summary(s, c)["devices"]
        for s in (None, "PS1", "PS2")
        for c in (None, "CAS00101", "SMS00001")
    }
    # The filters differ in their numbers, so a mix-up cannot go unnoticed.
    assert (
        len(
            {
                counts[("PS1", None)],
                counts[(None, "CAS00101")],
                counts[("PS2", None)],
                counts[(None, "SMS00001")],
            }
        )
        == 4
    )

    # Both open at once, each with its own filter.
    alice.goto(factory_server + "/?site=PS1")
    bob.goto(factory_server + "/?collection=CAS00101")
    wait_for_dash(alice, graphs=len(GRAPHS))
    wait_for_dash(bob, graphs=len(GRAPHS))
    shows(alice, factory_store, "PS1", None)
    shows(bob, factory_store, None, "CAS00101")

    # Interleaved changes: both requests in flight together.
    choose(alice, "ovw-site", "PS2")
    choose(bob, "ovw-collection", "All Systems")
    shows(bob, factory_store, None, "SMS00001")
    shows(alice, factory_store, "PS2", None)

    # One reloads, the other goes back: each gets its own state back, nothing of the other's.
    alice.reload()
    bob.go_back()
    wait_for_dash(alice, graphs=len(GRAPHS))
    shows(bob, factory_store, None, "CAS00101")
    shows(alice, factory_store, "PS2", None)

    # The device list, opened from each, carries each one's own scope.
    alice.goto(factory_server + "/devices?site=PS2")
    bob.goto(factory_server + "/devices?collection=CAS00101")
    for page, count in ((alice, counts[("PS2", None)]), (bob, counts[(None, "CAS00101")])):
        wait_for_dash(page)
        assert int(page.get_attribute("#devices-count", "data-count")) == count
    assert alice.errors == [] and bob.errors == []
