"""The weekly report: ``figures`` (the week's numbers, one dict every output reads),
``capture`` (the report page in a headless browser: PNG and PDF), ``mail`` (the HTML summary
and sending it), ``files`` (where the files go and how they are named and written) and
``command`` (``comanage-dashboard report``). One error type, ``figures.ReportError``.
"""
