"""Device flow, in Salesforce's non-standard variant.

Specs: RFC 8628 (device authorization grant) for the concepts: §3.2 (interval, default 5
s), §3.5 (``authorization_pending``, ``slow_down`` adds 5 s to every later poll,
``access_denied``, ``expired_token``, exponential backoff on connection timeouts).
Salesforce: "OAuth 2.0 Device Flow for IoT Integration" (help topic
``remoteaccess_oauth_device_flow``); reference section 4.10.

Salesforce specifics: both legs POST to the **token** endpoint. Leg 1 sends
``response_type=device_code`` (not RFC 8628's device authorization endpoint) and gets
``device_code``, ``user_code``, ``verification_uri`` and ``interval`` (no
``expires_in``, no ``verification_uri_complete``). Leg 2 sends ``grant_type=device``
(not the RFC URN) with the device code in ``code`` and no client secret, and gets ``400
authorization_pending`` until the user approves. The device code is a bearer secret: it
is never put in a message or ``repr``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from ..config import ConnectedApp
from ..exceptions import (
    AuthorizationPendingError,
    ConfigurationError,
    DeviceFlowTimeoutError,
    FlowCancelledError,
    FlowError,
    MalformedResponseError,
    SlowDownError,
    TransportError,
    UntrustedHostError,
)
from ..tokens import DeviceAuthorization, Token, masked
from ._base import (
    Flow,
    HttpResponse,
    Wait,
    parse_json_object,
    parse_token_response,
    prepare_token_request,
)
from .endpoints import endpoints_for

__all__ = [
    "DEFAULT_INTERVAL",
    "MAX_BACKOFF",
    "SLOW_DOWN_INCREMENT",
    "poll_device_flow",
    "start_device_flow",
]

#: RFC 8628 §3.2: "If no value is provided, clients MUST use 5 as the default."
DEFAULT_INTERVAL = 5
#: RFC 8628 §3.5: on ``slow_down`` "the interval MUST be increased by 5 seconds".
SLOW_DOWN_INCREMENT = 5
#: Ceiling for the exponential backoff after network errors and 5xx answers.
MAX_BACKOFF = 60.0


def start_device_flow(
    app: ConnectedApp, *, scopes: tuple[str, ...] | list[str] | None = None
) -> Flow[DeviceAuthorization]:
    """Leg 1: ask Salesforce for a device code and a user code.

    Args:
        app: a connected app with the device flow enabled.
        scopes: scopes to request; the app's defaults when ``None``.

    Returns:
        The codes to show (``user_code``, ``verification_uri``) and to keep
        (``device_code``, ``interval``) for :func:`poll_device_flow`.

    Raises:
        OAuthProtocolError: e.g. ``invalid_client_id`` or ``unsupported_grant_type``
            (the flow is not enabled).
        MalformedResponseError: a required field is missing or has the wrong type.
        UntrustedHostError: ``verification_uri`` points outside Salesforce.
    """
    form = {"response_type": "device_code", "client_id": app.client_id}
    chosen = tuple(scopes) if scopes is not None else app.scopes
    if chosen:
        form["scope"] = " ".join(chosen)
    response = yield prepare_token_request(endpoints_for(app.login_url).token, form)
    payload = parse_json_object(_expect(response))
    device_code = _required_str(payload, "device_code")
    user_code = _required_str(payload, "user_code")
    verification_uri = _required_str(payload, "verification_uri")
    _check_verification_uri(app, verification_uri)
    return DeviceAuthorization(
        device_code=device_code,
        user_code=user_code,
        verification_uri=verification_uri,
        interval=_interval(payload.get("interval")),
        raw={k: v for k, v in payload.items() if k != "device_code"},
    )


def poll_device_flow(
    app: ConnectedApp,
    device: DeviceAuthorization,
    *,
    timeout: float = 600,
    clock: Callable[[], float] = time.monotonic,
    cancel: Callable[[], bool] | None = None,
) -> Flow[Token]:
    """Leg 2: wait ``interval`` seconds and poll, until approved, refused or timed out.

    ``authorization_pending`` keeps polling; ``slow_down`` adds 5 seconds to the
    interval for every later poll; a network error or a 5xx/429 answer backs off
    exponentially (doubling, capped at 60 s) until the next answer; any other error
    stops the flow.

    Args:
        app: the connected app that started the flow.
        device: the result of :func:`start_device_flow`.
        timeout: seconds from the first call until :class:`DeviceFlowTimeoutError`.
        clock: a monotonic clock in seconds (``time.monotonic``; fake it in tests).
        cancel: called before every wait and every poll; ``True`` stops the flow.

    Returns:
        The token (with a refresh token when ``refresh_token`` was granted).

    Raises:
        DeviceFlowTimeoutError: not approved before ``timeout`` seconds passed.
        FlowCancelledError: ``cancel()`` returned ``True``.
        AccessDeniedError: the user denied the request.
        ExpiredTokenError: the device code expired.
        OAuthProtocolError: any other error Salesforce returned.
    """
    if not isinstance(device, DeviceAuthorization) or not device.device_code:
        raise FlowError("poll_device_flow needs the DeviceAuthorization from leg 1")
    if not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ConfigurationError("timeout", "must be a positive number of seconds")
    interval = float(_interval(device.interval))
    deadline = clock() + timeout
    form = {
        "grant_type": "device",
        "client_id": app.client_id,
        "code": masked(device.device_code),
    }
    url = endpoints_for(app.login_url).token
    failures = 0  # consecutive network errors / 5xx answers
    while True:
        _check_cancel(cancel)
        remaining = deadline - clock()
        if remaining <= 0:
            raise _timed_out(timeout)
        delay = interval if failures == 0 else min(interval * 2**failures, MAX_BACKOFF)
        yield Wait(min(delay, remaining))
        _check_cancel(cancel)
        if clock() >= deadline:
            raise _timed_out(timeout)
        try:
            response = _expect((yield prepare_token_request(url, form)))
        except TransportError:
            failures += 1
            continue
        if response.status_code >= 500 or response.status_code == 429:
            failures += 1
            continue
        failures = 0
        if response.status_code == 200:
            return parse_token_response(app, response, grant="device", token_url=url)
        try:
            parse_json_object(response)
        except AuthorizationPendingError:
            continue
        except SlowDownError:
            interval += SLOW_DOWN_INCREMENT
            continue
        # A 4xx that parse_json_object did not raise for cannot be a token: fail loudly.
        raise MalformedResponseError(
            f"unexpected device flow answer (HTTP {response.status_code})",
            status_code=response.status_code,
        )


def _expect(value: HttpResponse | None) -> HttpResponse:
    if not isinstance(value, HttpResponse):
        raise TypeError("the driver must send an HttpResponse after an HttpRequest")
    return value


def _check_cancel(cancel: Callable[[], bool] | None) -> None:
    if cancel is not None and cancel():
        raise FlowCancelledError("the device flow was cancelled")


def _timed_out(timeout: float) -> DeviceFlowTimeoutError:
    return DeviceFlowTimeoutError(
        f"the device code was not approved within {timeout:g} seconds"
    )


def _required_str(payload: Mapping[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value.strip():
        raise MalformedResponseError(f"device authorization response has no {name!r}")
    if any(not ch.isprintable() for ch in value):
        raise MalformedResponseError(
            f"device authorization field {name!r} has control characters"
        )
    return value


def _interval(value: Any) -> int:
    # RFC 8628 §3.2: absent means 5. Salesforce sends an integer; anything unusable
    # (missing, non-numeric, zero, negative, bool) falls back to the default too.
    if isinstance(value, bool):
        return DEFAULT_INTERVAL
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        return DEFAULT_INTERVAL
    return seconds if seconds >= 1 else DEFAULT_INTERVAL


def _check_verification_uri(app: ConnectedApp, uri: str) -> None:
    # The user is told to open this URL and type a code: it must be Salesforce's.
    parts = urlsplit(uri)
    host = parts.hostname or ""
    secure = parts.scheme == "https" or (parts.scheme == "http" and app.allow_loopback)
    if not secure or not host or "@" in parts.netloc or not app.trusts_host(host):
        raise UntrustedHostError(
            f"device flow verification_uri points to an untrusted host {host!r}"
        )
