"""The Django example of sfoauth (project package: settings, URLs, ASGI/WSGI)."""
