"""``python -m sfoauth_core.testing [--host H] [--port P] [--config FILE]``: serve the
emulator."""

from __future__ import annotations

import argparse

from .emulator.server import run


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m sfoauth_core.testing")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8999)
    parser.add_argument("--config", default=None, help="JSON configuration file")
    args = parser.parse_args(argv)
    run(args.host, args.port, args.config)


if __name__ == "__main__":
    main()
