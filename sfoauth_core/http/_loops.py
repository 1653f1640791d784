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
by the loop (asyncio) or the run's root task (trio) and dropped when the loop ends.
"""

from __future__ import annotations

import asyncio
import sys
import threading
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
    value: T, close: Callable[[T], Awaitable[object]], forget: Callable[[], None]
) -> AsyncGenerator[None, None]:
    # Suspended at ``yield`` for the loop's lifetime; the loop's shutdown of async
    # generators (or an explicit aclose) runs the ``finally`` on that same loop.
    try:
        yield
    finally:
        forget()
        await close(value)


@dataclass(slots=True)
class _Entry(Generic[T]):
    value: T
    closer: AsyncGenerator[None, None]


class PerLoop(Generic[T]):
    """One value per running event loop, built by ``factory``, closed by ``close``.

    An entry is dropped when its loop shuts down (the value closed on it) or, for an
    asyncio loop closed without shutting down its async generators, on the next
    :meth:`get` from any loop (the value is then dropped unclosed: its loop is gone).
    Entries hold their loop (asyncio's finalizer hook is a bound method of the loop),
    so they are removed explicitly rather than keyed weakly.

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
        self._entries: dict[object, _Entry[T]] = {}
        self._guard = threading.Lock()

    def __len__(self) -> int:
        """How many loops hold a value now."""
        with self._guard:
            return len(self._entries)

    def _forget(self, loop: object) -> None:
        with self._guard:
            self._entries.pop(loop, None)

    async def get(self) -> T:
        """The running loop's value, built and tied to the loop on first use."""
        loop = current_loop()
        with self._guard:
            entry = self._entries.get(loop)
            if entry is None:
                for dead in [
                    other
                    for other in self._entries
                    if isinstance(other, asyncio.AbstractEventLoop)
                    and other.is_closed()
                ]:
                    del self._entries[dead]
        if entry is not None:
            return entry.value
        value = self._factory()
        closer = _closing(value, self._close, lambda: self._forget(loop))
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
            entry = self._entries.get(loop)
        if entry is not None:
            await entry.closer.aclose()
