"""The SQL the dashboard runs against a ConfigMgr site database (read only).

This folder installs as the package ``dashboard.queries`` (see pyproject.toml), so the files
ship in the wheel and are found through ``importlib.resources`` wherever the code runs.
"""
