"""The service layer: the current estate (``store``), its refresh schedule (``scheduler``)
and the per-estate results cache (``results_cache``)."""
