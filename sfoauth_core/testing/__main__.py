"""``python -m sfoauth_core.testing [options]``: serve the emulator, like ``sfoauth
emulator`` (same options: ``--host``, ``--port``, ``--config``, ``--tls``, …)."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments and serve until interrupted; returns the exit status."""
    from ..cli import main as cli_main

    return cli_main(["emulator", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
