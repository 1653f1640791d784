"""``sfoauth advise``: which Salesforce OAuth flow fits an integration, from flags or
(``-i``) from questions asked one by one."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import Any

from ._console import EXIT_CANCELLED, guarded

__all__ = ["add_advise_parser", "run_advise", "run_interactive_advise"]


def _tri_state(value: str) -> bool | None:
    lowered = value.lower()
    if lowered in ("yes", "y", "true", "1"):
        return True
    if lowered in ("no", "n", "false", "0"):
        return False
    if lowered in ("unknown", "?"):
        return None
    raise argparse.ArgumentTypeError("expected yes, no or unknown")


def add_advise_parser(subparsers: Any) -> None:
    """Add ``advise`` to ``sfoauth``'s sub-parsers."""
    advise = subparsers.add_parser(
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
        "--external-client-app",
        action="store_true",
        help="the app is an External Client App (no username-password flow)",
    )
    advise.add_argument(
        "-i",
        "--interactive",
        action="store_true",
        help="answer the advisor's questions one by one instead of passing flags",
    )


def run_advise(args: argparse.Namespace) -> int:
    """Run ``sfoauth advise`` (``-i``: the questions one by one)."""
    if args.interactive:
        return guarded(lambda _: run_interactive_advise(), args)
    from ..advisor import explain, recommend_flow

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
        external_client_app=args.external_client_app,
    )
    print(explain(recommendation))
    return 0


# ---------------------------------------------------------------------- advise -i
_YES = ("y", "yes", "true", "1")
_NO = ("n", "no", "false", "0")
_UNKNOWN = ("?", "unknown", "u", "dont know", "don't know")


class _AbortedError(Exception):
    pass


def run_interactive_advise(
    input_fn: Callable[[str], str] = input,
    print_fn: Callable[..., None] = print,
) -> int:
    """Ask the advisor's questions one by one, then print the recommended flow.

    Empty answers take the default shown in capitals; ``?`` answers "don't know" where
    that is allowed. The equivalent non-interactive command is printed at the end.

    Args:
        input_fn: reads one answer (``input``).
        print_fn: writes one block of text (``print``).

    Returns:
        0 when a recommendation was printed, 1 when the input ended early, 130 on
        Ctrl-C.
    """
    from ..advisor import explain, recommend_flow

    def ask(question: str, choices: Mapping[str, Any], default: str) -> Any:
        labels = "/".join(c.upper() if c == default else c for c in choices)
        for _ in range(5):
            try:
                answer = input_fn(f"{question} [{labels}] ").strip().lower()
            except EOFError:
                raise _AbortedError from None
            answer = answer or default
            for key, value in choices.items():
                aliases = {"yes": _YES, "no": _NO, "?": _UNKNOWN}.get(key, (key,))
                if answer in aliases or (answer == key[:1] and key not in ("?",)):
                    return value
            print_fn(f"  Please answer one of: {', '.join(choices)}")
        raise _AbortedError

    yes_no = {"yes": True, "no": False}
    try:
        user_present = ask(
            "Does a person log in interactively when the app runs?", yes_no, "yes"
        )
        device = ask(
            "Is the client a device: none, input-constrained (TV, CLI on a headless "
            "box, IoT with no keyboard) or asset-tracking (identified to a backend)?",
            {"none": None, "input": "input_constrained", "asset": "asset_tracking"},
            "none",
        )
        can_keep_secret = ask(
            "Can the client keep a secret (server-side code, not a browser, mobile, "
            "desktop or CLI app)?",
            {"yes": True, "no": False, "?": None},
            "?",
        )
        headless = not user_present
        browser_only = False
        can_hold_private_key = True
        development_only = False
        external_idp = False
        external_client_app = False
        if device is None and user_present:
            external_idp = ask(
                "Do your users already sign in with another identity provider (Okta, "
                "Auth0, Entra ID) whose tokens you can exchange?",
                yes_no,
                "no",
            )
        if device is None and user_present and not external_idp:
            browser_only = ask(
                "Does the app run entirely in the browser (no backend)?", yes_no, "no"
            )
        if device is None and headless:
            can_hold_private_key = ask(
                "Can the integration hold an RSA private key (and its certificate on "
                "the app)?",
                yes_no,
                "yes",
            )
        has_my_domain = ask(
            "Will it log in through the org's My Domain URL "
            "(https://<name>.my.salesforce.com)?",
            yes_no,
            "yes",
        )
        if device != "asset_tracking" and not (
            device == "input_constrained" and user_present
        ):
            development_only = ask(
                "Is this only a quick development script (security trade-offs "
                "accepted)?",
                yes_no,
                "no",
            )
        if development_only:
            # The one answer it changes: ECAs have no username-password flow.
            external_client_app = ask(
                "Is the app an External Client App (what Salesforce creates since "
                "Spring '26) rather than a connected app?",
                yes_no,
                "no",
            )
    except _AbortedError:
        print_fn("No answer; nothing recommended.")
        return 1
    except KeyboardInterrupt:
        print_fn("\nCancelled.")
        return EXIT_CANCELLED

    recommendation = recommend_flow(
        can_keep_secret=can_keep_secret,
        user_present=user_present,
        device=device,
        can_hold_private_key=can_hold_private_key,
        has_my_domain=has_my_domain,
        development_only=development_only,
        browser_only=browser_only,
        external_idp=external_idp,
        external_client_app=external_client_app,
    )
    print_fn("")
    print_fn(explain(recommendation).rstrip("\n"))
    flags = ["sfoauth", "advise"]
    if can_keep_secret is not None:
        flags += ["--can-keep-secret", "yes" if can_keep_secret else "no"]
    if not user_present:
        flags.append("--no-user")
    if device is not None:
        flags += ["--device", device]
    if not can_hold_private_key:
        flags.append("--no-private-key")
    if not has_my_domain:
        flags.append("--no-my-domain")
    if development_only:
        flags.append("--development-only")
    if browser_only:
        flags.append("--browser-only")
    if external_idp:
        flags.append("--external-idp")
    if external_client_app:
        flags.append("--external-client-app")
    print_fn("")
    print_fn("The same answer without questions: " + " ".join(flags))
    return 0
