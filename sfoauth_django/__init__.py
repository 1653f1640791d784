"""sfoauth for Django: views, middleware, decorators and encrypted model storage.

Add ``"sfoauth_django"`` to ``INSTALLED_APPS``. The app itself arrives in a later release;
this package reserves the name and ships type information.
"""

from __future__ import annotations

__all__: list[str] = []
