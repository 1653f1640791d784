"""sfoauth for FastAPI: a router to mount, dependencies, SQLAlchemy and Redis stores.

The adapter arrives in a later release; this package reserves the name and ships type
information.
"""

from __future__ import annotations

__all__: list[str] = []
