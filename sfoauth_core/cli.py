"""The ``sfoauth`` command.

``sfoauth demo django|fastapi`` starts the emulator and an example app; ``sfoauth emulator``
serves a fake Salesforce org on a loopback port; ``sfoauth login``
gets a token the way the Salesforce CLI does (web, jwt, device, client-credentials,
password) and keeps it in an encrypted local file; ``sfoauth token`` introspects, revokes or
reads userinfo with it; ``sfoauth advise`` says which OAuth flow fits an integration.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["build_parser", "main"]


def _tri_state(value: str) -> bool | None:
    lowered = value.lower()
    if lowered in ("yes", "y", "true", "1"):
        return True
    if lowered in ("no", "n", "false", "0"):
        return False
    if lowered in ("unknown", "?"):
        return None
    raise argparse.ArgumentTypeError("expected yes, no or unknown")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sfoauth",
        description="Salesforce OAuth 2.0 for Python: emulator, login, tokens, flow advisor.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    emulator = commands.add_parser(
        "emulator", help="serve an emulated Salesforce org on a loopback port"
    )
    emulator.add_argument(
        "--host", default="127.0.0.1", help="loopback address to bind"
    )
    emulator.add_argument("--port", type=int, default=8999, help="port (default 8999)")
    emulator.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help="JSON file describing orgs/users/apps",
    )
    emulator.add_argument(
        "--jwt-certificate",
        metavar="FILE",
        default=None,
        help="X.509 certificate (PEM) for the 'jwt' app, as uploaded at Salesforce "
        "(default: the published test key pair the banner names)",
    )
    emulator.add_argument(
        "--tls",
        action="store_true",
        help="also serve HTTPS on --tls-port, with a certificate from a local CA",
    )
    emulator.add_argument(
        "--tls-port", type=int, default=8443, help="HTTPS port (default 8443)"
    )
    emulator.add_argument(
        "--tls-dir",
        metavar="DIR",
        default=None,
        help="where the local CA and certificate are kept "
        "(default ~/.cache/sfoauth/emulator-tls)",
    )

    advise = commands.add_parser(
        "advise", help="which Salesforce OAuth flow fits your case"
    )
    advise.add_argument(
        "--can-keep-secret",
        type=_tri_state,
        default=None,
        metavar="yes|no|unknown",
        help="can the client keep a secret (a server, not a browser or mobile app)?",
    )
    advise.add_argument(
        "--no-user", action="store_true", help="no person is present to log in"
    )
    advise.add_argument(
        "--device",
        choices=("input_constrained", "asset_tracking"),
        default=None,
        help="a device with limited input (TV, CLI, IoT) or an asset-tracking device",
    )
    advise.add_argument(
        "--server-to-server", action="store_true", help="an integration with no user"
    )
    advise.add_argument(
        "--no-private-key", action="store_true", help="cannot hold an RSA private key"
    )
    advise.add_argument(
        "--no-my-domain", action="store_true", help="the org's My Domain cannot be used"
    )
    advise.add_argument(
        "--development-only", action="store_true", help="a quick script for development"
    )
    advise.add_argument(
        "--browser-only", action="store_true", help="a single-page app with no backend"
    )
    advise.add_argument(
        "--external-idp",
        action="store_true",
        help="users already sign in with another identity provider (Okta, Auth0...)",
    )
    advise.add_argument(
        "-i",
        "--interactive",
        action="store_true",
        help="answer the advisor's questions one by one instead of passing flags",
    )
    from ._cli_demo import add_demo_parser
    from ._cli_login import add_login_parsers

    add_login_parsers(commands)
    add_demo_parser(commands)
    return parser


#: What makes the emulator's dependencies importable; sfoauth is not on PyPI yet, so
#: the install is from a checkout of the repository.
EMULATOR_INSTALL_HINT = 'pip install -e ".[emulator]"'


def _run_emulator(args: argparse.Namespace) -> int:
    from .hosts import is_loopback_host

    if not is_loopback_host(args.host):
        # The emulator hands out tokens to anyone who asks: never expose it on a network.
        print(
            "--host must be a loopback address (127.0.0.1, ::1, localhost)",
            file=sys.stderr,
        )
        return 2
    try:
        from .testing import run
    except ImportError as exc:  # starlette/uvicorn are the `emulator` extra
        print(
            f"sfoauth emulator: missing {exc.name or exc}: the emulator needs the "
            "'emulator' extra (starlette, uvicorn, python-multipart). From a checkout "
            f"of the sfoauth repository, run: {EMULATOR_INSTALL_HINT}",
            file=sys.stderr,
        )
        return 2
    try:
        run(
            host=args.host,
            port=args.port,
            config_file=args.config,
            tls=args.tls,
            tls_port=args.tls_port,
            tls_dir=args.tls_dir,
            jwt_certificate=args.jwt_certificate,
        )
    except (OSError, ValueError) as exc:
        print(f"sfoauth emulator: {exc}", file=sys.stderr)
        return 2
    return 0


def _run_advise(args: argparse.Namespace) -> int:
    from .advisor import explain, recommend_flow

    recommendation = recommend_flow(
        can_keep_secret=args.can_keep_secret,
        user_present=not args.no_user,
        device=args.device,
        server_to_server=args.server_to_server,
        can_hold_private_key=not args.no_private_key,
        has_my_domain=not args.no_my_domain,
        development_only=args.development_only,
        browser_only=args.browser_only,
        external_idp=args.external_idp,
    )
    print(explain(recommendation))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sfoauth`` console script."""
    args = build_parser().parse_args(argv)
    if args.command == "emulator":
        return _run_emulator(args)
    if args.command == "demo":
        from ._cli_demo import run_demo

        return run_demo(args)
    if args.command in ("login", "token") or getattr(args, "interactive", False):
        from ._cli_login import dispatch

        return dispatch(args)
    return _run_advise(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
