"""Parts of pages turned into JSON once, for the parts that are drawn once and sent to many.

Dash turns a component into JSON property by property every time it is sent: about 6 ms for
the overview's thousand components, at every first visit and every change of filter. A part
drawn once per data version and scope (``EstateStore.memo``) is the same for everyone until the
data changes, so its JSON form is made when it is drawn and handed to Dash's encoder as it is.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TypeVar

from plotly.utils import PlotlyJSONEncoder

from ..service.store import EstateStore

T = TypeVar("T")


def drawn_once(store: EstateStore, key: tuple, draw: Callable[[], T]) -> T:
    """What ``draw`` makes for ``key`` (a part of a page and its scope), drawn and encoded
    once per loaded estate (``EstateStore.memo``) and then sent as it is to everyone."""
    return store.memo(key, lambda: encoded_once(draw()))


def encoded_once(value: T) -> T:
    """``value`` (a component, a figure, or a list, tuple or dict of them; never changed
    afterwards) with its JSON form made now. The object keeps every property for Python
    readers; only what it gives the encoder (``to_plotly_json``, an attribute of this
    instance) is fixed."""
    if isinstance(value, dict):
        for item in value.values():
            encoded_once(item)
        return value
    if isinstance(value, list | tuple):
        for item in value:
            encoded_once(item)
        return value
    if hasattr(value, "to_plotly_json"):
        plain = json.loads(json.dumps(value, cls=PlotlyJSONEncoder))  # as Dash encodes it
        value.to_plotly_json = lambda: plain  # type: ignore[attr-defined]
    return value


__all__ = ["drawn_once", "encoded_once"]
