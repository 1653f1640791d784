"""What every ``sfoauth`` command shares on the console: one-line output helpers, the
exit statuses, the device flow's progress spinner, and the guard that turns expected
failures into one line on stderr (never a traceback or a secret)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import IO

from ..exceptions import (
    ConfigurationError,
    FlowCancelledError,
    SalesforceUnavailableError,
    SFOAuthError,
)

__all__ = ["EXIT_CANCELLED", "EXIT_CONFIG", "Progress", "err", "guarded", "out"]

EXIT_CONFIG = 2
EXIT_CANCELLED = 130
_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_SPINNER_ASCII = "|/-\\"


def out(text: str) -> None:
    """One line on stdout (what a script may parse)."""
    print(text, file=sys.stdout, flush=True)


def err(text: str) -> None:
    """One line on stderr (progress, warnings, failures)."""
    print(text, file=sys.stderr, flush=True)


def failure_text(exc: SFOAuthError) -> str:
    if isinstance(exc, SalesforceUnavailableError):
        return f"Salesforce is unavailable: {exc}"
    return f"{type(exc).__name__}: {exc}"


def utc(epoch: int | None) -> str | None:
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def guarded(
    command: Callable[[argparse.Namespace], int], args: argparse.Namespace
) -> int:
    """Run ``command``; expected failures print one line on stderr.

    Returns:
        the command's status; 1 on a failed login or call, 2 on bad configuration, 130
        when cancelled (Ctrl-C).
    """
    try:
        return command(args)
    except ConfigurationError as exc:
        err(f"sfoauth: configuration error: {exc}")
        return EXIT_CONFIG
    except FlowCancelledError:
        err("sfoauth: cancelled")
        return EXIT_CANCELLED
    except KeyboardInterrupt:
        err("\nsfoauth: cancelled")
        return EXIT_CANCELLED
    except SFOAuthError as exc:
        err(f"sfoauth: {failure_text(exc)}")
        changed = getattr(args, "changed_locally", None)
        if changed is not None:
            err(changed)
        elif isinstance(exc, SalesforceUnavailableError):
            err("Nothing was changed locally.")
        return 1


class Progress:
    """A spinner on a terminal; dots on anything else (logs, CI)."""

    def __init__(self, stream: IO[str], message: str, *, dot_every: float) -> None:
        self.stream = stream
        self.message = message
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.dot_every = dot_every
        frames = _SPINNER
        try:
            frames.encode(getattr(stream, "encoding", None) or "ascii")
        except (UnicodeEncodeError, LookupError):
            frames = _SPINNER_ASCII
        self.frames = frames
        self._frame = 0
        self._dots = 0
        if not self.tty:
            stream.write(message + " ")
            stream.flush()

    def tick(self, elapsed: float) -> None:
        if self.tty:
            frame = self.frames[self._frame % len(self.frames)]
            self._frame += 1
            self.stream.write(f"\r{frame} {self.message} ({elapsed:.0f}s) ")
        elif elapsed >= (self._dots + 1) * self.dot_every:
            self._dots += 1
            self.stream.write(".")
        else:
            return
        self.stream.flush()

    def finish(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + text + "\n")
        else:
            self.stream.write(" " + text + "\n")
        self.stream.flush()
