"""The bundled sample estate: CSV exports of two sites, their config and their history.

This folder installs as the package ``dashboard.sample_data`` (see pyproject.toml), so the
sample ships in the wheel and is found through ``importlib.resources`` wherever the code runs.
The dashboard never writes here: see ``dashboard.settings.is_bundled_sample``.
"""
