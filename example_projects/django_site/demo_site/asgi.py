"""ASGI entry point (``uvicorn demo_site.asgi:application``; ``sfoauth demo`` uses it).

Static files (the admin's CSS) are served by Django's development handler: fine for
this example, use your web server or WhiteNoise in production.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_site.settings")

django_application = get_asgi_application()

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

application = ASGIStaticFilesHandler(django_application)
