"""``/export/devices.csv?<filters>``: the device list's matches as CSV, streamed.

The response is written a chunk at a time from the estate that was current when the request
arrived, so memory stays flat whatever the size, and a refresh mid-download cannot mix two
estates. Cells that a spreadsheet would run as a formula are prefixed with a quote, in every
text column (``model.device_query.neutralise``).
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from urllib.parse import parse_qs

import pyarrow.csv as pacsv
from flask import Response, request, stream_with_context

from ..model.device_query import EXPORT_COLUMNS, export_chunks
from ..report.files import safe_filename

ROUTE = "/export/devices.csv"


def stream_csv(estate, positions, wording: str):
    """The CSV as UTF-8 text chunks (with a BOM so Excel reads UTF-8); pyarrow writes the
    rows, quoting every text value."""
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n").writerow(EXPORT_COLUMNS.values())
    yield "\ufeff" + buffer.getvalue()
    options = pacsv.WriteOptions(include_header=False)
    for table in export_chunks(estate.devices, positions, wording):  # neutralised
        out = io.BytesIO()
        pacsv.write_csv(table, out, options)
        yield out.getvalue().decode("utf-8")


MAX_SCOPE_NAME = 80  # characters of the name given to the scope and filters


def export_name(flt, stamp: str) -> str:
    """``devices-PS1-CAS00101-<stamp>.csv``: the site, the collection, then the other filter
    values, so that two exports of different lists do not look alike. Only letters, digits
    and ``. _ -`` survive (``safe_filename``): a filter value cannot break the
    Content-Disposition header or name a path."""
    values = [*flt.values.get("site", ()), *flt.values.get("collection", ())]
    values += [value for name, value in flt.pairs() if name not in ("site", "collection")]
    scope = safe_filename("-".join(values), default="", max_length=MAX_SCOPE_NAME)
    return "-".join(part for part in ("devices", scope, stamp) if part) + ".csv"


def register(server, store) -> None:
    @server.route(ROUTE)
    def export_devices():
        estate = store.estate
        if estate is None:
            return Response("No data loaded yet.\n", status=503, mimetype="text/plain")
        query = parse_qs(request.query_string.decode("utf-8", "replace"), keep_blank_values=False)
        flt = store.device_filter(query)
        if flt.rejected:
            return Response(
                "Rejected filters: " + "; ".join(flt.rejected) + "\n",
                status=400,
                mimetype="text/plain",
            )
        mask = store.matching(flt)
        order = estate.sort_order("severity", descending=True)
        positions = order[mask[order]]
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
        return Response(
            stream_with_context(stream_csv(estate, positions, store.settings.status_labels)),
            mimetype="text/csv",
            headers={
                "Content-Disposition": f'attachment; filename="{export_name(flt, stamp)}"',
                "X-Device-Count": str(int(mask.sum())),
            },
        )
