"""``/export/devices.csv?<filters>``: the device list's matches as CSV, streamed.

The response is written a chunk at a time from the estate that was current when the request
arrived, so memory stays flat whatever the size, and a refresh mid-download cannot mix two
estates. Cells that a spreadsheet would run as a formula are prefixed with a quote.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from urllib.parse import parse_qs

from flask import Response, request, stream_with_context

from ..model.device_query import EXPORT_COLUMNS, export_chunks

ROUTE = "/export/devices.csv"
_FORMULA = re.compile(r"^[=+\-@\t\r]")


SOURCE_TEXT = ("Name", "Domain", "Error")  # columns holding text from the site database


def _safe(frame):
    """Neutralise spreadsheet formulas in text that came from the site database."""
    for column in SOURCE_TEXT:
        frame[column] = frame[column].astype("str").str.replace(_FORMULA, "'\\g<0>",
                                                                regex=True)
    return frame


def stream_csv(estate, positions, wording: str):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS.values())
    yield "\ufeff" + buffer.getvalue()  # a BOM so Excel reads UTF-8
    for chunk in export_chunks(estate.devices, positions, wording):
        buffer.seek(0)
        buffer.truncate()
        _safe(chunk).to_csv(buffer, index=False, header=False, lineterminator="\r\n")
        yield buffer.getvalue()


def register(server, store) -> None:
    @server.route(ROUTE)
    def export_devices():
        estate = store.estate
        if estate is None:
            return Response("No data loaded yet.\n", status=503, mimetype="text/plain")
        query = parse_qs(request.query_string.decode("utf-8", "replace"),
                         keep_blank_values=False)
        flt = store.device_filter(query)
        if flt.rejected:
            return Response("Rejected filters: " + "; ".join(flt.rejected) + "\n",
                            status=400, mimetype="text/plain")
        mask = store.matching(flt)
        order = estate.sort_order("severity", descending=True)
        positions = order[mask[order]]
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
        return Response(
            stream_with_context(stream_csv(estate, positions, store.settings.status_labels)),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="devices-{stamp}.csv"',
                     "X-Device-Count": str(int(mask.sum()))},
        )
