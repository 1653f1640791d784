"""``sfoauth keepalive`` and ``sfoauth status``: the stored connections against the
app's refresh-token idle limit (reference 15.3).

``status`` lists every connection of the token file with how long its refresh token has
been unused and the risk against ``--idle-limit``; ``keepalive`` refreshes the ones
unused for ``--idle-for`` (default: a third of ``--idle-limit``), each through the app it
logged in with, single-flight with other ``sfoauth`` processes
(:func:`sfoauth_core.keepalive.keep_alive_each`).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from ..exceptions import ConfigurationError
from ..keepalive import (
    AT_RISK_SHARE,
    OUTCOME_LABELS,
    KeepAliveResult,
    default_idle_for,
    format_duration,
    idle_risk,
    idle_seconds,
    keep_alive_each,
    parse_duration,
)
from ..manager import TokenManager
from ._app import (
    ObservedOAuth,
    client_secret,
    open_store,
    store_options,
    stored_manager,
)
from ._console import err, guarded, out

__all__ = ["add_keepalive_parsers", "run_keepalive", "run_status"]

#: How the idle risk reads in ``sfoauth status``.
RISK_TEXT = {"ok": "ok", "at_risk": "AT RISK", "expired": "EXPIRED"}


def _duration(option: str) -> Any:
    def parse(text: str) -> float:
        try:
            return parse_duration(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = option  # argparse names the option in its error
    return parse


def add_keepalive_parsers(subparsers: Any) -> None:
    """Add ``keepalive`` and ``status`` to ``sfoauth``'s sub-parsers."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--idle-limit",
        type=_duration("duration"),
        default=None,
        metavar="DURATION",
        help="the app's refresh-token idle limit ('expire refresh token if not used "
        "for'): 30d, 720h ...",
    )
    store_options(common)
    keepalive = subparsers.add_parser(
        "keepalive",
        parents=[common],
        help="refresh stored connections whose refresh token is idle",
        description="Refresh the stored connections whose refresh token has not been "
        "used for --idle-for, so the app's idle limit does not expire them. Exits 1 "
        "when a refresh failed.",
    )
    keepalive.add_argument(
        "--idle-for",
        type=_duration("duration"),
        default=None,
        metavar="DURATION",
        help="refresh connections unused this long (default: a third of --idle-limit)",
    )
    subparsers.add_parser(
        "status",
        parents=[common],
        help="stored connections, their idle age and risk",
        description="List the stored connections: alias, user, org, status, how long "
        "the refresh token has been unused, and the risk against --idle-limit.",
    )


def _keepalive(args: argparse.Namespace) -> int:
    if args.idle_for is not None:
        idle_for = float(args.idle_for)
    elif args.idle_limit is not None:
        idle_for = default_idle_for(float(args.idle_limit))
    else:
        raise ConfigurationError(
            "--idle-for", "is required (or --idle-limit, of which it is a third)"
        )
    store = open_store(args)
    secret = client_secret(args, required=False, purpose="refresh")
    now = time.time()
    keys = store.idle_keys(idle_since=now - idle_for)

    clients: list[ObservedOAuth] = []

    def manager_for(alias: str) -> TokenManager:
        manager, oauth = stored_manager(store, alias, secret=secret)
        clients.append(oauth)
        return manager

    def progress(result: KeepAliveResult, done: int, total: int) -> None:
        text = f"[{done}/{total}] {result.key}: {OUTCOME_LABELS[result.outcome]}"
        err(f"{text} ({result.detail})" if result.detail else text)

    try:
        summary = keep_alive_each(
            keys,
            manager_for,
            idle_for=idle_for,
            now=now,
            progress=None if args.json else progress,
        )
    finally:
        for oauth in clients:
            oauth.close()
    if args.json:
        out(
            json.dumps(
                {
                    "idle_for": idle_for,
                    "kept_alive": summary.kept_alive,
                    "needs_reauth": summary.needs_reauth,
                    "failed": summary.failed,
                    "skipped": summary.skipped,
                    "results": [
                        {"alias": r.key, "outcome": r.outcome, "detail": r.detail}
                        for r in summary.results
                    ],
                }
            )
        )
    else:
        out(f"Keep-alive: {summary}")
    return 0 if summary.ok else 1


def _status(args: argparse.Namespace) -> int:
    store = open_store(args)
    limit = None if args.idle_limit is None else float(args.idle_limit)
    now = time.time()
    rows: list[dict[str, Any]] = []
    for alias in store.keys():
        record = store.get(alias)
        if record is None:
            continue
        details = store.details(alias) or {}
        idle = idle_seconds(record, now)
        risk = idle_risk(idle, limit)
        rows.append(
            {
                "alias": alias,
                "username": details.get("username"),
                "org_id": record.token.org_id or details.get("org_id"),
                "grant": record.grant,
                "status": record.status,
                "idle_seconds": None if idle is None else round(idle),
                "idle_risk": risk,
                "reason": record.reason or None,
            }
        )
    if args.json:
        out(json.dumps(rows, indent=2))
    elif not rows:
        out(f"No connections in {store.path}.")
    else:
        out("\t".join(("ALIAS", "USERNAME", "ORG ID", "STATUS", "IDLE", "IDLE RISK")))
        for row in rows:
            age = row["idle_seconds"]
            out(
                f"{row['alias']}\t{row['username'] or '-'}\t{row['org_id'] or '-'}"
                f"\t{row['status']}\t{'-' if age is None else format_duration(age)}"
                f"\t{RISK_TEXT.get(row['idle_risk'] or '', '-')}"
            )
    at_risk = sum(1 for row in rows if row["idle_risk"] in ("at_risk", "expired"))
    if at_risk and limit is not None and not args.json:
        err(
            f"{at_risk} connection(s) unused for {format_duration(limit * AT_RISK_SHARE)}"
            f" or more, against the idle limit of {format_duration(limit)}: run "
            "`sfoauth keepalive` regularly (EXPIRED ones most likely need "
            "`sfoauth login` again)."
        )
    return 0


def run_keepalive(args: argparse.Namespace) -> int:
    """Run ``sfoauth keepalive``: 0, or 1 when a refresh failed (2: configuration)."""
    return guarded(_keepalive, args)


def run_status(args: argparse.Namespace) -> int:
    """Run ``sfoauth status``."""
    return guarded(_status, args)
