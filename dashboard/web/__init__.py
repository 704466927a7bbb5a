"""The browser dashboard: a Dash app over the ``EstateStore`` (see ``app.create_app``)."""
