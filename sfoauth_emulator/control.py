"""The control API over HTTP (``/__emulator__/…``, JSON) for multi-process tests.

=======================================  ===============================================
``POST /__emulator__/reset``             back to the defaults
``POST /__emulator__/expire``            ``{"user": optional}``: expire access tokens
``POST /__emulator__/advance``           ``{"seconds": n}``: move the clock forward
``POST /__emulator__/device/approve``    ``{"user_code", "user"}``
``POST /__emulator__/device/deny``       ``{"user_code"}``
``GET  /__emulator__/calls``             ``?grant_type=``: ``{"count": n}``
``GET  /__emulator__/stats``             ``{"calls": {...}, "reuse_detected": n,
                                         "concurrent_refresh_rejections": n}``
``GET  /__emulator__/log``               the request log (secrets masked)
``POST /__emulator__/faults``            a :class:`Fault` as JSON
``DELETE /__emulator__/faults``          remove every fault
``POST /__emulator__/authorize``         ``emu.authorize(**json)`` → ``{"url": …}``
``POST /__emulator__/auto-approve``      ``{"user": name or null, "consent": "allow"}``
``PATCH /__emulator__/apps/{name}``      set app policy fields (``certificate_pem``:
                                         an X.509 certificate or public key PEM)
``PATCH /__emulator__/users/{username}`` set user fields
``PATCH /__emulator__/orgs/{name}``      set org fields
=======================================  ===============================================
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import operations
from .state import Fault

if TYPE_CHECKING:
    from .app import SalesforceEmulator

__all__ = ["control_routes"]


def _emulator(request: Request) -> SalesforceEmulator:
    emulator: SalesforceEmulator = request.app.state.emulator
    return emulator


async def _json(request: Request) -> dict[str, Any]:
    body = await request.body()
    if not body:
        return {}
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


def _bad(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def reset(request: Request) -> Response:
    _emulator(request).reset()
    return JSONResponse({"ok": True})


async def expire(request: Request) -> Response:
    data = await _json(request)
    count = _emulator(request).expire_access_tokens(user=data.get("user"))
    return JSONResponse({"expired": count})


async def advance(request: Request) -> Response:
    data = await _json(request)
    _emulator(request).advance_time(float(data.get("seconds", 0)))
    return JSONResponse({"ok": True})


async def device_approve(request: Request) -> Response:
    data = await _json(request)
    emu = _emulator(request)
    try:
        emu.approve_device(
            str(data["user_code"]), user=data.get("user") or emu.user.username
        )
    except KeyError as exc:
        return _bad(str(exc), 404)
    return JSONResponse({"ok": True})


async def device_deny(request: Request) -> Response:
    data = await _json(request)
    try:
        _emulator(request).deny_device(str(data["user_code"]))
    except KeyError as exc:
        return _bad(str(exc), 404)
    return JSONResponse({"ok": True})


async def calls(request: Request) -> Response:
    grant_type = request.query_params.get("grant_type")
    return JSONResponse({"count": _emulator(request).calls(grant_type)})


async def stats(request: Request) -> Response:
    emu = _emulator(request)
    return JSONResponse(
        {
            "calls": emu.call_counts(),
            "reuse_detected": emu.reuse_detected,
            "concurrent_refresh_rejections": emu.concurrent_refresh_rejections,
        }
    )


async def log(request: Request) -> Response:
    entries = [dataclasses.asdict(e) for e in _emulator(request).request_log]
    return JSONResponse(entries)


async def faults(request: Request) -> Response:
    emu = _emulator(request)
    if request.method == "DELETE":
        emu.clear_faults()
        return JSONResponse({"ok": True})
    data = await _json(request)
    try:
        fault = Fault(**data)
    except TypeError as exc:
        return _bad(str(exc))
    emu.inject_fault(fault)
    return JSONResponse({"ok": True})


async def authorize(request: Request) -> Response:
    data = await _json(request)
    try:
        url = _emulator(request).authorize(**data)
    except (TypeError, ValueError) as exc:
        return _bad(str(exc))
    return JSONResponse({"url": url})


async def auto_approve(request: Request) -> Response:
    data = await _json(request)
    emu = _emulator(request)
    emu.auto_approve = data.get("user")
    emu.auto_consent = "deny" if data.get("consent") == "deny" else "allow"
    return JSONResponse({"ok": True})


async def patch_object(request: Request) -> Response:
    kind = request.path_params["kind"]
    if kind not in ("apps", "users", "orgs"):
        return _bad(f"unknown collection {kind!r}", 404)
    data = await _json(request)
    try:
        unknown = operations.patch_record(
            _emulator(request).state, kind, request.path_params["name"], data
        )
    except LookupError as exc:
        return _bad(str(exc.args[0]), 404)
    except ValueError as exc:  # a bad certificate, an unknown refresh_token_policy…
        return _bad(str(exc))
    if unknown:
        return _bad(f"unknown or read-only fields: {', '.join(sorted(unknown))}")
    return JSONResponse({"ok": True})


def control_routes(prefix: str) -> list[Route]:
    """The control API routes under ``prefix``."""
    return [
        Route(f"{prefix}/reset", reset, methods=["POST"]),
        Route(f"{prefix}/expire", expire, methods=["POST"]),
        Route(f"{prefix}/advance", advance, methods=["POST"]),
        Route(f"{prefix}/device/approve", device_approve, methods=["POST"]),
        Route(f"{prefix}/device/deny", device_deny, methods=["POST"]),
        Route(f"{prefix}/calls", calls, methods=["GET"]),
        Route(f"{prefix}/stats", stats, methods=["GET"]),
        Route(f"{prefix}/log", log, methods=["GET"]),
        Route(f"{prefix}/faults", faults, methods=["POST", "DELETE"]),
        Route(f"{prefix}/authorize", authorize, methods=["POST"]),
        Route(f"{prefix}/auto-approve", auto_approve, methods=["POST"]),
        Route(
            prefix + "/{kind:str}/{name:str}",
            patch_object,
            methods=["PATCH"],
        ),
    ]
