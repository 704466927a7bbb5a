"""Narrow screens: at 390 x 844 CSS pixels (a phone) no page scrolls sideways. The header
wraps, wide tables scroll inside their cards, charts take their card's width with room left
for the data (legends go below); every page is checked once its content is drawn (charts,
grid rows, the sign-in form)."""

from __future__ import annotations

import pytest

from dashboard.report.capture import serving, wait_for_dash
from dashboard.settings import load_settings
from dashboard.web import auth
from dashboard.web.app import create_app
from dashboard.web.pages.overview import GRAPHS
from tests.factories import loaded_store

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
TREND_GRAPHS = 5

# Anything drawn past the viewport's right edge that no ancestor scrolls or clips: content a
# user would have to scroll sideways to (or could never reach, were the page clipped).
STICKING_OUT = """() => {
  const width = window.innerWidth, out = [];
  const contained = el => {
    for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
      // A scrolling or clipping box inside the screen holds it (an outer one may hold that).
      if (getComputedStyle(a).overflowX !== 'visible'
          && a.getBoundingClientRect().right <= width + 0.5) return true;
    }
    return false;
  };
  for (const el of document.body.querySelectorAll('*')) {
    const box = el.getBoundingClientRect();
    if (box.width > 0 && box.right > width + 0.5 && !contained(el)) {
      out.push(`${el.tagName.toLowerCase()}#${el.id}.${String(el.className).slice(0, 40)}`);
    }
  }
  return {doc: document.documentElement.scrollWidth, body: document.body.scrollWidth,
          width, out: out.slice(0, 10),
          bodyOverflow: getComputedStyle(document.body).overflowX,
          htmlOverflow: getComputedStyle(document.documentElement).overflowX};
}"""

CHARTS = """() => [...document.querySelectorAll('.js-plotly-plot')].map(p => {
  const svg = p.querySelector('.main-svg').getBoundingClientRect();
  const size = p._fullLayout._size;
  const legend = p.querySelector('.legend');
  const key = legend ? legend.getBoundingClientRect() : null;
  const card = (p.closest('.card-body') || p.closest('.rpt-card') || document.body)
    .getBoundingClientRect();
  return {id: p.parentElement.id || p.id, width: svg.width, left: svg.left - card.left,
          right: card.right - svg.right, plotHeight: size.h,
          // A legend level with the plot area is beside it (or over it), not above or below.
          legendBeside: !!key && key.width > 0 && key.bottom > svg.top + size.t + 1
                        && key.top < svg.top + size.t + size.h - 1};
})"""


def assert_fits(page, what: str) -> None:
    seen = page.evaluate(STICKING_OUT)
    assert seen["doc"] <= seen["width"], f"{what} scrolls sideways: {seen}"
    assert seen["body"] <= seen["width"], f"{what} scrolls sideways: {seen}"
    assert not seen["out"], f"{what}: drawn past the right edge: {seen['out']}"
    # Not by hiding it: the page itself is not clipped sideways.
    assert seen["bodyOverflow"] == seen["htmlOverflow"] == "visible", seen


def assert_charts_fit_their_cards(page, count: int) -> None:
    charts = page.evaluate(CHARTS)
    assert len(charts) >= count, charts
    for chart in charts:
        assert chart["width"] > 250, chart  # drawn at the card's width, not a sliver
        assert chart["left"] >= -0.5 and chart["right"] >= -0.5, chart
        # The data keeps room: no legend beside a chart squeezes it to a sliver (on a phone
        # legends go below), and a legend below leaves it its height.
        assert not chart["legendBeside"] and chart["plotHeight"] >= 150, chart


@pytest.fixture
def phone(browser):
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


@pytest.fixture(scope="module")
def signed_in_server(tmp_path_factory, factory_config):
    """The small estate with ``auth = "users"``: the sign-in page."""
    users = tmp_path_factory.mktemp("narrow-users") / "users.json"
    auth.UserFile(users).add("alice", "correct horse battery staple")
    settings = load_settings(factory_config).with_values(
        auth="users", users_file=str(users), secret_key="n" * 48
    )
    with serving(create_app(settings, loaded_store(settings)), threads=4) as url:
        yield url


def test_the_overview_fits_a_phone(phone, sample_server):
    phone.goto(sample_server + "/")
    wait_for_dash(phone, graphs=len(GRAPHS))
    phone.wait_for_selector("#ovw-attention-table tr.dd-row")
    assert_fits(phone, "/")
    assert_charts_fit_their_cards(phone, len(GRAPHS))
    # The header wraps: the brand stays inside the screen, the navigation is reachable.
    brand = phone.locator(".navbar-brand").bounding_box()
    assert brand["x"] >= 0 and brand["x"] + brand["width"] <= PHONE["width"]
    assert phone.get_by_role("link", name="Devices").first.is_visible()


def test_trends_fit_a_phone(phone, sample_server):
    phone.goto(sample_server + "/trends")
    wait_for_dash(phone, graphs=TREND_GRAPHS)
    phone.wait_for_function(
        "() => [...document.querySelectorAll('.js-plotly-plot')]"
        ".filter(p => p.data && p.data.length).length >= 5"
    )
    assert_fits(phone, "/trends")
    assert_charts_fit_their_cards(phone, TREND_GRAPHS)


def test_the_device_list_fits_a_phone(phone, sample_server):
    phone.goto(sample_server + "/devices")
    wait_for_dash(phone)
    phone.wait_for_selector("#devices-grid .ag-row a.device-link")
    assert_fits(phone, "/devices")
    grid = phone.locator("#devices-grid").bounding_box()
    assert grid["x"] + grid["width"] <= PHONE["width"]  # the grid scrolls inside itself


def test_a_device_page_fits_a_phone(phone, sample_server, sample_store):
    devices = sample_store.estate.devices
    resource_id = int(devices["ResourceID"].iloc[0])
    phone.goto(f"{sample_server}/device/{resource_id}")
    wait_for_dash(phone)
    phone.wait_for_selector("#device-workloads tbody tr")
    phone.wait_for_selector("#device-timeline tbody tr")  # the bundled sample has history
    assert_fits(phone, "/device")
    # The workloads table is wider than the screen: it scrolls inside its card.
    scroller = phone.evaluate(
        "() => { const c = document.getElementById('device-workloads')"
        ".closest('.card-body'); return [c.scrollWidth, c.clientWidth,"
        " getComputedStyle(c).overflowX]; }"
    )
    assert scroller[2] == "auto" and scroller[0] >= scroller[1], scroller


def test_the_report_page_fits_a_phone(phone, sample_server):
    phone.goto(sample_server + "/report")
    phone.wait_for_selector("#report", state="attached")
    graphs = int(phone.get_attribute("#report", "data-graphs") or 0)
    assert graphs >= 3
    wait_for_dash(phone, graphs=graphs)
    assert_fits(phone, "/report")


def test_the_not_found_page_fits_a_phone(phone, sample_server):
    phone.goto(sample_server + "/no-such-page")
    wait_for_dash(phone)
    phone.wait_for_selector("text=Page not found")
    assert_fits(phone, "not found")


def test_the_sign_in_page_fits_a_phone(phone, signed_in_server):
    phone.goto(signed_in_server + "/")
    phone.wait_for_selector("#login-form")
    assert_fits(phone, "/login")
    phone.fill("#username", "alice")
    phone.fill("#password", "correct horse battery staple")
    phone.click("#login-submit")
    wait_for_dash(phone, graphs=len(GRAPHS))
    assert_fits(phone, "/ after sign-in")  # the user menu in the header wraps too
