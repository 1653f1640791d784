"""The ``sfoauth`` command.

``sfoauth emulator`` serves a fake Salesforce org on a loopback port; ``sfoauth login``
gets a token the way the Salesforce CLI does (web, jwt, device, client-credentials,
password) and keeps it in an encrypted local file; ``sfoauth token`` introspects, revokes
or reads userinfo with it; ``sfoauth status`` lists the stored connections with how long
each refresh token has been unused, and ``sfoauth keepalive`` refreshes the idle ones;
``sfoauth advise`` says which OAuth flow fits an integration;
``sfoauth demo django|fastapi`` starts the emulator and an example app (from a clone of
the repository, where the example projects live).

One module per command group (:mod:`.emulator`, :mod:`.login`, :mod:`.token`,
:mod:`.keepalive`, :mod:`.advise`, :mod:`.demo`); the console helpers apart (:mod:`._console`). A command's
module is imported only when that command runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .advise import add_advise_parser
from .demo import add_demo_parser
from .emulator import add_emulator_parser

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``sfoauth`` argument parser, every command included."""
    from .keepalive import add_keepalive_parsers
    from .login import add_login_parsers
    from .token import add_token_parser

    parser = argparse.ArgumentParser(
        prog="sfoauth",
        description="Salesforce OAuth 2.0 for Python: emulator, login, tokens, flow advisor.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    add_emulator_parser(commands)
    add_advise_parser(commands)
    add_login_parsers(commands)
    add_token_parser(commands)
    add_keepalive_parsers(commands)
    add_demo_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sfoauth`` console script."""
    args = build_parser().parse_args(argv)
    if args.command == "emulator":
        from .emulator import run_emulator

        return run_emulator(args)
    if args.command == "demo":
        from .demo import run_demo

        return run_demo(args)
    if args.command == "login":
        from .login import run_login

        return run_login(args)
    if args.command == "token":
        from .token import run_token

        return run_token(args)
    if args.command == "keepalive":
        from .keepalive import run_keepalive

        return run_keepalive(args)
    if args.command == "status":
        from .keepalive import run_status

        return run_status(args)
    from .advise import run_advise

    return run_advise(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
