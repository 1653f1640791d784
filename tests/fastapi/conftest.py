"""Fixtures of the FastAPI adapter tests (helpers live in ``support.fastapi``)."""

from support.fastapi import browser_factory, emu, sf_factory

__all__ = ["browser_factory", "emu", "sf_factory"]
