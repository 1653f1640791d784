"""Values bound to the running event loop: one per loop, closed when that loop ends.

An ``httpx.AsyncClient`` keeps the connections it opened in a pool, and each connection
belongs to the event loop that opened it. Reusing the pool from another loop fails,
typically as ``RuntimeError: Event loop is closed`` on the first call after the opening
loop ended. That happens whenever a process runs several loops one after another:
Django under WSGI runs each async view through asgiref's ``async_to_sync``, which starts
a new loop per request (``asyncio.run`` in a worker thread), and so do scripts that call
``asyncio.run`` more than once.

:class:`PerLoop` gives each running loop its own value, built on first use, and closes
it on that loop when the loop shuts down: the value is tied to an async generator whose
``finally`` closes it, and both asyncio (``asyncio.run``, asgiref, ``shutdown_asyncgens``)
and trio finalize the async generators still alive when a run ends. Values are keyed
weakly by the loop (asyncio) or the run's root task (trio), so a loop that is garbage
collected takes its entry with it.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["PerLoop", "current_loop"]

T = TypeVar("T")


def current_loop() -> object:
    """An object standing for the running event loop (asyncio loop or trio run).

    Raises:
        RuntimeError: no event loop is running in this thread.
    """
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        pass
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            return trio.lowlevel.current_root_task()
        except RuntimeError:
            pass
    raise RuntimeError("no asyncio or trio event loop is running")


async def _closing(
    value: T, close: Callable[[T], Awaitable[object]]
) -> AsyncGenerator[None, None]:
    # Suspended at ``yield`` for the loop's lifetime; the loop's shutdown of async
    # generators (or an explicit aclose) runs the ``finally`` on that same loop.
    try:
        yield
    finally:
        await close(value)


@dataclass(slots=True)
class _Entry(Generic[T]):
    value: T
    closer: AsyncGenerator[None, None]


class PerLoop(Generic[T]):
    """One value per running event loop, built by ``factory``, closed by ``close``.

    Args:
        factory: builds the value for a loop (called on that loop, at first use).
        close: closes a value; awaited on its loop when the loop shuts down or by
            :meth:`aclose`.
    """

    def __init__(
        self, factory: Callable[[], T], close: Callable[[T], Awaitable[object]]
    ) -> None:
        self._factory = factory
        self._close = close
        self._entries: weakref.WeakKeyDictionary[object, _Entry[T]] = (
            weakref.WeakKeyDictionary()
        )
        self._guard = threading.Lock()

    def __len__(self) -> int:
        """How many loops hold a value now."""
        with self._guard:
            return len(self._entries)

    async def get(self) -> T:
        """The running loop's value, built and tied to the loop on first use."""
        loop = current_loop()
        with self._guard:
            entry = self._entries.get(loop)
        if entry is not None:
            return entry.value
        value = self._factory()
        closer = _closing(value, self._close)
        # The first step runs to the ``yield`` without suspending, and registers the
        # generator with the loop (its first-iteration hook) for finalization.
        await closer.asend(None)
        with self._guard:
            self._entries[loop] = _Entry(value, closer)
        return value

    async def aclose(self) -> None:
        """Close the running loop's value now (others close with their loops)."""
        try:
            loop = current_loop()
        except RuntimeError:
            return
        with self._guard:
            entry = self._entries.pop(loop, None)
        if entry is not None:
            await entry.closer.aclose()
