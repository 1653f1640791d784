"""``sfoauth emulator``: serve an emulated Salesforce org on a loopback port."""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["EMULATOR_INSTALL_HINT", "add_emulator_parser", "run_emulator"]

#: What makes the emulator's dependencies importable; sfoauth is not on PyPI yet, so
#: the install is from a checkout of the repository.
EMULATOR_INSTALL_HINT = 'pip install -e ".[emulator]"'


def add_emulator_parser(subparsers: Any) -> None:
    """Add ``emulator`` to ``sfoauth``'s sub-parsers."""
    emulator = subparsers.add_parser(
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


def run_emulator(args: argparse.Namespace) -> int:
    """Run ``sfoauth emulator`` until Ctrl-C; 2 when it cannot start."""
    from ..hosts import is_loopback_host

    if not is_loopback_host(args.host):
        # The emulator hands out tokens to anyone who asks: never expose it on a network.
        print(
            "--host must be a loopback address (127.0.0.1, ::1, localhost)",
            file=sys.stderr,
        )
        return 2
    try:
        from ..testing import run
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
