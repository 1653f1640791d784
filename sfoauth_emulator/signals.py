"""Long-running commands (``sfoauth demo``, ``sfoauth emulator``) stop on a signal by
setting an event, so that start-up and shutdown are never cut in the middle."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

__all__ = ["stop_on_signals"]


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM (and SIGHUP) set ``stop`` instead of raising in the middle of
    start-up; the previous handlers come back afterwards."""

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    names: tuple[str, ...] = ("SIGINT", "SIGTERM", "SIGHUP")
    previous: dict[int, Any] = {}
    if threading.current_thread() is not threading.main_thread():
        names = ()  # signal handlers can only be set from the main thread
    for name in names:
        signum = getattr(signal, name, None)
        if signum is not None:
            previous[signum] = signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
