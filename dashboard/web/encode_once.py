"""Parts of pages turned into JSON once, for the parts that are drawn once and sent to many.

Dash turns a component into JSON property by property every time it is sent: about 6 ms for
the overview's thousand components, at every first visit and every change of filter. A part
drawn once per data version and scope (``EstateStore.memo``) is the same for everyone until the
data changes, so its JSON form is made when it is drawn and handed to Dash's encoder as it is.
"""

from __future__ import annotations

import json
from typing import Any

from plotly.utils import PlotlyJSONEncoder


def encoded_once(value: Any) -> Any:
    """``value`` (a component, a figure, or a list of them; never changed afterwards) with its
    JSON form made now. The object keeps every property for Python readers; only what it
    gives the encoder (``to_plotly_json``, an attribute of this instance) is fixed."""
    if isinstance(value, list | tuple):
        for item in value:
            encoded_once(item)
        return value
    if hasattr(value, "to_plotly_json"):
        plain = json.loads(json.dumps(value, cls=PlotlyJSONEncoder))  # as Dash encodes it
        value.to_plotly_json = lambda: plain
    return value


__all__ = ["encoded_once"]
