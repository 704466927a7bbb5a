"""Every URL the pages build, in one pure module (no Dash, no data).

The overview's charts, tiles and table rows all lead to the device list; the device list
reads exactly the parameters named here. Values are percent-encoded with ``%20`` for spaces
(``os_group=Windows%207%20%26%208.x``) so links read the same in the address bar, in logs and
in the tests.

Device-list parameters (repeating a parameter means "any of these values"):

=====================  ================================================================
``site``               one site label
``collection``         one collection ID the configuration names
``os_group``           an OS group label (``Windows 7 & 8.x``)
``release``            an OS release label (``Windows 11 23H2``)
``funnel``             ``eligible`` | ``scheduled`` | ``initiated`` | ``enrolled``
``enrollment_status``  ``success_hybrid`` ... ``pending_user_sign_in``
``workload``           a workload key, with ``authority`` = configmgr | pilot_intune | intune
``error``              a normalised code (``0x8018002A``)
``reason``             a why-not-co-managed reason key
``attention``          ``any`` or an attention rule id (``enrollment-failed``)
``severity``           ``high`` | ``medium`` | ``low`` (a device's most severe rule)
``comanaged``          ``1`` | ``0``
``client``             ``1`` (the ConfigMgr client installed) | ``0`` (not, or unknown)
``readiness``          a prerequisite step id: the first one the device fails (``joined``)
``q``                  text the device name contains (case-insensitive)
``changed``            ``newly_comanaged`` | ``newly_failed`` | ``fell_back`` since ``since``
``since``              a snapshot day with device states (``2026-11-16``), with ``changed``
=====================  ================================================================

``attention``, ``severity`` and ``readiness`` only take the values the model declares
(``model.attention``): building a link with another value is a programming error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import parse_qs, quote, urlencode

from ..model.attention import READINESS_IDS, RULES_BY_ID, SEVERITIES
from ..model.device_query import COMPLIANCE_STATES, FILTER_NAMES, INTUNE_STATES
from ..model.trends import CHANGE_KINDS

DEVICES_PATH = "/devices"
SCOPE_KEYS = ("site", "collection")
FILTER_KEYS = tuple(name for name in FILTER_NAMES if name not in SCOPE_KEYS)
KNOWN_KEYS = FILTER_KEYS + SCOPE_KEYS
ATTENTION_VALUES = ("any", *RULES_BY_ID)
CLOSED_VALUES = {  # keys whose values come from a fixed list
    "attention": ATTENTION_VALUES,
    "severity": SEVERITIES,
    "readiness": READINESS_IDS,
    "changed": CHANGE_KINDS,
    "client": ("1", "0"),
    "intune": INTUNE_STATES,
    "compliance": COMPLIANCE_STATES,
}

Query = dict[str, list[str]]


def query_string(params: Iterable[tuple[str, str]]) -> str:
    """``key=value&...`` with ``%20`` for spaces; empty values are left out."""
    return urlencode([(k, v) for k, v in params if v not in (None, "")], quote_via=quote)


def _pairs(filters: Mapping[str, str | Iterable[str] | None]) -> list[tuple[str, str]]:
    pairs = []
    for key, value in filters.items():
        if key not in KNOWN_KEYS:
            raise ValueError(f"unknown device-list filter {key!r}")
        if value is None:
            continue
        values = [value] if isinstance(value, str) else list(value)
        allowed = CLOSED_VALUES.get(key)
        wrong = [v for v in values if allowed is not None and str(v) not in allowed]
        if wrong:
            raise ValueError(f"unknown value {wrong[0]!r} for device-list filter {key!r}")
        pairs += [(key, str(v)) for v in values]
    return pairs


def attention_url(rule_id: str, site: str | None = None, collection: str | None = None) -> str:
    """The devices an attention rule flags (``any``: at least one rule), in the page scope."""
    return devices_url({"attention": rule_id}, site=site, collection=collection)


def changes_url(kind: str, since, site: str | None = None, collection: str | None = None) -> str:
    """The devices that changed that way (a ``CHANGE_KINDS`` key) since a snapshot day."""
    day = since.isoformat() if hasattr(since, "isoformat") else str(since)
    return devices_url({"changed": kind, "since": day}, site=site, collection=collection)


def readiness_url(step: str, site: str | None = None, collection: str | None = None) -> str:
    """The devices whose first failed co-management prerequisite is ``step``."""
    return devices_url({"readiness": step}, site=site, collection=collection)


def devices_url(
    filters: Mapping[str, str | Iterable[str] | None] | None = None,
    site: str | None = None,
    collection: str | None = None,
) -> str:
    """``/devices?<filters>&site=..&collection=..``: the chart's filter, then the page scope."""
    pairs = _pairs(filters or {})
    pairs += [("site", site or ""), ("collection", collection or "")]
    text = query_string(pairs)
    return f"{DEVICES_PATH}?{text}" if text else DEVICES_PATH


def filter_fragment(filters: Mapping[str, str | Iterable[str] | None]) -> str:
    """The filter part of a device-list URL alone (carried by chart points as customdata)."""
    return query_string(_pairs(filters))


def devices_url_from_fragment(
    fragment: str, site: str | None = None, collection: str | None = None
) -> str | None:
    """A device-list URL from a chart point's fragment, or None when it names no known filter.

    Click data comes from the browser, so only known filter keys survive and the page's own
    (already validated) scope replaces whatever scope the fragment might carry.
    """
    if not isinstance(fragment, str):
        return None
    query = parse_query(fragment)
    filters = {
        key: [v for v in query[key] if key not in CLOSED_VALUES or v in CLOSED_VALUES[key]]
        for key in FILTER_KEYS
        if key in query
    }
    filters = {key: values for key, values in filters.items() if values}
    if not filters:
        return None
    return devices_url(filters, site=site, collection=collection)


def overview_search(site: str | None, collection: str | None) -> str:
    """The overview's query string (``?site=PS1&collection=CAS00101``, or empty)."""
    text = query_string([("site", site or ""), ("collection", collection or "")])
    return f"?{text}" if text else ""


TRENDS_PATH = "/trends"


def trends_search(site: str | None, collection: str | None, start=None, end=None) -> str:
    """The trends page's query string: ``?site=PS1&collection=..&from=2026-06-01&to=..``."""
    days = [day.isoformat() if hasattr(day, "isoformat") else (day or "") for day in (start, end)]
    text = query_string(
        [("site", site or ""), ("collection", collection or ""), ("from", days[0]), ("to", days[1])]
    )
    return f"?{text}" if text else ""


def parse_query(search: str | None) -> Query:
    """``?a=1&a=2&b=x`` -> ``{"a": ["1", "2"], "b": ["x"]}`` (blank values dropped)."""
    text = (search or "").lstrip("?")
    return parse_qs(text, keep_blank_values=False)


def first(query: Query, key: str) -> str | None:
    values = query.get(key) or []
    return values[0] if values else None
