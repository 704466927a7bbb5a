"""The dashboard's pages: one module each, listed in ``dashboard.web.app.PAGES``.

A page module exposes:

``PATH``
    The path it serves (``"/devices"``). A page whose paths vary instead defines
    ``matches(pathname: str) -> bool`` (for example ``/device/<site>/<resource_id>``).
``NAV_LABEL`` (optional)
    When set, the navbar shows a link to ``PATH`` with this label, in ``PAGES`` order; the
    link carries the site and collection in view unless ``NAV_SCOPED = False``, and shows
    only with an Intune source when ``NAV_NEEDS_INTUNE = True``.
``layout(store, settings, pathname, query) -> component``
    Builds the page from the store's *current* estate (``store.estate``,
    ``store.summary(site, collection)``); never reads a file or a database. ``query`` is
    ``links.parse_query(search)``: ``{name: [values]}`` as the URL gave it, untrusted.
``register_callbacks(app, store, settings) -> dict[str, callable]``
    Registers the page's callbacks with ``app.callback`` (bound to that app, never the global
    ``dash.callback``, so two apps in one process do not clash) and returns them by name.
    Keep them thin: the logic lives in plain module-level functions that unit tests call
    with explicit arguments (the trigger included, instead of reading ``dash.ctx``).

Component ids start with a short page prefix (``ovw-`` overview, ``dev-`` devices) because
every page's callbacks are registered at start-up in one app. The shell (``app.py``) owns
``url`` (the router's ``dcc.Location``), ``data-version`` (a ``dcc.Store`` whose value
changes whenever new data is swapped in: make it an ``Input`` to re-render) and the header.

To add a page: write ``pages/<name>.py`` as above, add the module to ``PAGES`` in
``dashboard/web/app.py``; the router (``app.route``) dispatches by path and shows the
not-found page for anything else.
"""
