"""Fixtures of the FastAPI adapter tests (helpers live in ``fastapi_helpers``)."""

from fastapi_helpers import browser_factory, emu, sf_factory

__all__ = ["browser_factory", "emu", "sf_factory"]
