"""The weekly report: ``figures`` (the week's numbers, one dict every output reads),
``capture`` (the report page in a headless browser: PNG and PDF), ``mail`` (the HTML summary
and sending it), ``files`` (where the files go and how they are named and written) and
``command`` (``comanage-dashboard report``). They raise one error type, ``ReportError``.
"""

from __future__ import annotations


class ReportError(Exception):
    """A report that cannot be made or sent, in one line. ``exit_code`` 2: something to fix
    (unknown week, no data, no browser, bad options); 1: making or sending it failed (the
    browser, the mail server)."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code
