"""The server's routes, one module per resource: thin handlers over the registry's service layer
and the live hub. The JSON API lives under ``/api/v1`` (``reports``, ``searches``, ``clients``,
``program``, ``receivers``, ``meta``); the pages beside it (``auth``, ``home``, ``search_pages``,
``client_pages``)."""
