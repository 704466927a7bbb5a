"""The site and collection a page is scoped to: the choices offered and the check of what a
URL or a browser sent (unknown values are dropped with a visible note and never reach the
store). Shared by the overview, the trends page, the report and the week-over-week panel.
"""

from __future__ import annotations

from ..service.store import EstateStore

MAX_SHOWN_VALUE = 60  # characters of an unknown URL value repeated in the note


def sites(store: EstateStore, settings) -> list[str]:
    """The configured sites, then any site code the data itself added (``SiteCode``)."""
    configured = [source.site for source in settings.sources]
    extra = [
        s for s in (store.estate.sites if store.estate is not None else []) if s not in configured
    ]
    return configured + sorted(extra)


def collection_label(store: EstateStore, collection_id: str) -> str:
    names = store.estate.collection_names if store.estate is not None else {}
    name = names.get(collection_id)
    return f"{name} ({collection_id})" if name else collection_id


def site_options(store: EstateStore, settings) -> list[dict]:
    return [{"label": site, "value": site} for site in sites(store, settings)]


def site_has(store: EstateStore, site: str | None, collection_id: str) -> bool:
    """Whether a collection has members in a site (any site when None)."""
    if not site or store.estate is None:
        return True
    return collection_id in store.estate.site_collections.get(site, set())


def collection_options(
    store: EstateStore, settings, site: str | None = None, selected: str | None = None
) -> list[dict]:
    """The configured collections with members in the chosen site (all without one); a
    chosen collection the site lacks stays listed, saying so."""
    options = []
    for cid in settings.collections:
        if site_has(store, site, cid):
            options.append({"label": collection_label(store, cid), "value": cid})
        elif cid == selected:
            options.append(
                {"label": f"{collection_label(store, cid)}: no devices in {site}", "value": cid}
            )
    return options


def collection_placeholder(store: EstateStore, settings, site: str | None) -> str:
    if site and not any(site_has(store, site, cid) for cid in settings.collections):
        return f"No configured collection has devices in site {site}"
    return "All collections"


def options_for(store: EstateStore, settings, site, collection) -> tuple:
    """(site options, collection options, collection placeholder) for the chosen site."""
    site, _collection, _notes = checked_filters(store, settings, site, None)
    return (
        site_options(store, settings),
        collection_options(store, settings, site, collection),
        collection_placeholder(store, settings, site),
    )


def checked_filters(
    store: EstateStore, settings, site, collection
) -> tuple[str | None, str | None, list[str]]:
    """(site, collection, notes): unknown or malformed values replaced by None and noted."""
    notes = []
    if isinstance(site, str):  # ConfigMgr site codes are case-insensitive: ps1 is PS1
        site = {known.casefold(): known for known in sites(store, settings)}.get(
            site.strip().casefold(), site
        )
    if site is not None and (not isinstance(site, str) or site not in sites(store, settings)):
        notes.append(f'Unknown site "{shown_value(site)}" ignored: showing all sites.')
        site = None
    if collection is not None and (
        not isinstance(collection, str) or collection not in settings.collections
    ):
        notes.append(
            f'Unknown collection "{shown_value(collection)}" ignored: showing all collections.'
        )
        collection = None
    if site and collection and not site_has(store, site, collection):
        notes.append(
            f"Collection {collection_label(store, collection)} has no devices in "
            f"site {site}: its members are in other sites."
        )
    return site or None, collection or None, notes


def shown_value(value) -> str:
    text = str(value)
    return text if len(text) <= MAX_SHOWN_VALUE else text[:MAX_SHOWN_VALUE] + "..."
