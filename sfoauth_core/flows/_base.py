"""The sans-IO seam: neutral request/response values, and helpers every flow shares.

A flow is a generator ``Flow[T] = Generator[Step, HttpResponse | None, T]``. It yields an
:class:`HttpRequest` and is sent the :class:`HttpResponse`, or yields a :class:`Wait` and is
sent ``None`` once the driver has slept. Transport failures are thrown into the generator as
:class:`~sfoauth_core.exceptions.TransportError` at the ``yield``, so a flow may catch them
(device polling backs off; refresh retries). Flows import no I/O library and never sleep.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import itertools
import json
import re
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

from ..config import ConnectedApp
from ..exceptions import (
    MalformedResponseError,
    OAuthProtocolError,
    SalesforceUnavailableError,
    SignatureError,
    TransportError,
    UntrustedHostError,
    raise_for_oauth_error,
)
from ..tokens import MaskedStr, Token, masked
from .endpoints import TOKEN_PATH, Endpoints, endpoints_for

__all__ = [
    "Flow",
    "HttpRequest",
    "HttpResponse",
    "RetryPolicy",
    "Step",
    "Wait",
    "check_token_hosts",
    "client_auth_fields",
    "compute_signature",
    "grant_endpoints",
    "loads_json",
    "parse_json_object",
    "parse_token_response",
    "prepare_token_request",
    "send_with_retries",
    "verify_token_signature",
]

T = TypeVar("T")

#: Largest response body a driver accepts (SECURITY.md item 11).
MAX_RESPONSE_BYTES = 256 * 1024
#: Deepest nesting of arrays/objects accepted in a JSON body. Salesforce's answers are
#: flat (an identity document nests three levels); a deeper body is hostile and would
#: otherwise end in an untyped ``RecursionError`` inside the JSON decoder.
MAX_JSON_DEPTH = 32

#: Grants whose answers Salesforce always signs (reference 2.2/2.3, sections 4.1, 4.4,
#: 4.7): a missing ``signature`` is refused when the client secret is known.
SIGNED_GRANTS = frozenset({"authorization_code", "refresh_token", "user_agent"})
#: Grants whose answers carry a signature in the reference's samples, but where the
#: reference is unsure it is always sent: required only with
#: ``ConnectedApp(strict_signature=True)``; verified whenever present.
STRICT_SIGNED_GRANTS = frozenset(
    {"client_credentials", "password", "device", "token_exchange"}
)

# A string, or an unterminated one up to the end: every attempt at a quote succeeds, so
# the scan is linear (a pattern that must find the closing quote backtracks from every
# quote of a hostile body: quadratic).
_JSON_STRING_RE = re.compile(r'"(?:[^"\\]|\\.)*"?', re.DOTALL)
_BRACKET_STEP = str.maketrans({"[": "+", "{": "+", "]": "-", "}": "-"})


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One HTTP request, as data. ``form`` is sent url-encoded; ``params`` as the query."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    form: Mapping[str, str] | None = field(default=None, repr=False)
    params: Mapping[str, str] | None = field(default=None, repr=False)

    def __repr__(self) -> str:  # never show bodies or headers: they carry secrets
        return f"HttpRequest({self.method} {self.url})"


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """One HTTP response, as data. ``headers`` keys are lower-case."""

    status_code: int
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes = field(default=b"", repr=False)
    url: str = ""

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


@dataclass(frozen=True, slots=True)
class Wait:
    """Ask the driver to sleep ``seconds`` (monotonic), then resume the flow with ``None``."""

    seconds: float


Step = HttpRequest | Wait
Flow = Generator[Step, HttpResponse | None, T]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded retries for idempotent token calls (refresh, assertion grants).

    5xx, 429 and transport errors are retried ``attempts - 1`` times with exponential
    backoff capped at ``max_delay``; a ``Retry-After`` header (seconds) wins when it is
    larger, up to ``max_retry_after``.
    """

    attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 30.0

    def delay(self, attempt: int, response: HttpResponse | None) -> float:
        delay = min(self.base_delay * 2.0**attempt, self.max_delay)
        if response is not None:
            retry_after = response.headers.get("retry-after", "").strip()
            if retry_after.isdigit():
                delay = max(delay, min(float(retry_after), self.max_retry_after))
        return delay


NO_RETRY = RetryPolicy(attempts=1)


def _expect_response(value: HttpResponse | None) -> HttpResponse:
    if not isinstance(value, HttpResponse):
        raise TypeError("the driver must send an HttpResponse after an HttpRequest")
    return value


def send_with_retries(
    make_request: Callable[[], HttpRequest], policy: RetryPolicy = NO_RETRY
) -> Flow[HttpResponse]:
    """Send a request, retrying 5xx/429/transport errors under ``policy``.

    ``make_request`` is called for every attempt, so assertion grants get a fresh ``jti``.
    Raises :class:`SalesforceUnavailableError` when the attempts run out.
    """
    last_status: int | None = None
    for attempt in range(policy.attempts):
        final = attempt == policy.attempts - 1
        try:
            response = _expect_response((yield make_request()))
        except TransportError as exc:
            if final:
                raise SalesforceUnavailableError(
                    f"Salesforce did not answer after {policy.attempts} attempt(s): {exc}"
                ) from exc
            yield Wait(policy.delay(attempt, None))
            continue
        if response.status_code >= 500 or response.status_code == 429:
            last_status = response.status_code
            if final:
                break
            yield Wait(policy.delay(attempt, response))
            continue
        return response
    raise SalesforceUnavailableError(
        f"Salesforce answered HTTP {last_status} after {policy.attempts} attempt(s)",
        status_code=last_status,
    )


def client_auth_fields(
    app: ConnectedApp, *, include_secret: bool = True
) -> dict[str, str]:
    """``client_id`` (+ ``client_secret`` when known and wanted) for a form body."""
    fields = {"client_id": app.client_id}
    if include_secret and app.client_secret:
        fields["client_secret"] = masked(app.client_secret.reveal())
    return fields


def prepare_token_request(
    url: str, form: Mapping[str, str], *, headers: Mapping[str, str] | None = None
) -> HttpRequest:
    """A form POST to a token-style endpoint (credentials in the body, never the query)."""
    merged = {"Accept": "application/json"}
    if headers:
        merged.update(headers)
    # Every value is masked: a traceback through the drivers shows no credential.
    return HttpRequest(
        "POST", url, headers=merged, form={k: masked(v) for k, v in form.items()}
    )


def parse_json_object(response: HttpResponse) -> dict[str, Any]:
    """Decode a JSON object body; an OAuth error body raises its typed error.

    Raises:
        SalesforceUnavailableError: HTTP 5xx (whatever the body).
        OAuthProtocolError: (a subclass) the body is ``{"error": ...}``.
        MalformedResponseError: HTML, empty, not JSON, not an object, or oversized.
    """
    status = response.status_code
    if status >= 500:
        # A flow that retries never parses a 5xx; here it is final (SalesforceUnavailable).
        raise SalesforceUnavailableError(
            f"Salesforce answered HTTP {status}", status_code=status
        )
    if len(response.content) > MAX_RESPONSE_BYTES:
        raise MalformedResponseError("response body is too large", status_code=status)
    text = masked(response.content.decode("utf-8", "replace").strip())
    if not text:
        raise MalformedResponseError(
            f"empty response (HTTP {status})", status_code=status
        )
    if response.content_type == "text/html" or text.startswith("<"):
        raise MalformedResponseError(
            f"Salesforce returned an HTML page instead of JSON (HTTP {status}); the service "
            "may be in maintenance",
            status_code=status,
        )
    payload = loads_json(text, status_code=status)
    if not isinstance(payload, dict):
        raise MalformedResponseError(
            f"response is not a JSON object (HTTP {status})", status_code=status
        )
    if "error" in payload:
        raise_for_oauth_error(payload, status_code=status)
    if status >= 400:
        raise OAuthProtocolError(
            f"http_{status}", "unexpected error response", status_code=status
        )
    return payload


def json_depth(text: str) -> int:
    """The deepest array/object nesting in a JSON text, without decoding it.

    Strings are blanked first (a bracket inside a string does not nest), then the
    brackets are counted, each in one linear pass, so a hostile 256 KiB body costs
    milliseconds, never a recursion.
    """
    brackets = "".join(
        ch for ch in _JSON_STRING_RE.sub("", text) if ch in "[]{}"
    ).translate(_BRACKET_STEP)
    steps = (1 if ch == "+" else -1 for ch in brackets)
    return max(itertools.accumulate(steps, initial=0))


def loads_json(
    text: str | bytes,
    *,
    status_code: int | None = None,
    max_bytes: int = MAX_RESPONSE_BYTES,
    max_depth: int = MAX_JSON_DEPTH,
) -> Any:
    """Decode a JSON body whose size and nesting are bounded first.

    Every JSON body the core reads from the network goes through here.

    Raises:
        MalformedResponseError: too large, nested deeper than ``max_depth``, or not JSON.
    """
    if isinstance(text, bytes):
        if len(text) > max_bytes:
            raise MalformedResponseError(
                "response body is too large", status_code=status_code
            )
        text = text.decode("utf-8", "replace")
    if len(text) > max_bytes:
        raise MalformedResponseError(
            "response body is too large", status_code=status_code
        )
    text = masked(text)  # a token body: frame locals print it masked
    if json_depth(text) > max_depth:
        raise MalformedResponseError(
            f"response JSON is nested deeper than {max_depth} levels",
            status_code=status_code,
        )
    try:
        return json.loads(text, object_hook=_mask_secret_fields)
    except (ValueError, RecursionError):
        raise MalformedResponseError(
            f"response is not JSON (HTTP {status_code})", status_code=status_code
        ) from None


#: JSON fields whose values are credentials: decoded as :class:`MaskedStr`.
SECRET_FIELDS = frozenset(
    {
        "access_token",
        "refresh_token",
        "id_token",
        "signature",
        "device_code",
        "code",
        "state",
        "client_secret",
        "lightning_sid",
        "visualforce_sid",
        "content_sid",
        "csrf_token",
        "parent_sid",
        "beacon_child_consumer_secret",
    }
)


def _mask_secret_fields(obj: dict[str, Any]) -> dict[str, Any]:
    for name, value in obj.items():
        if name in SECRET_FIELDS and type(value) is str:
            obj[name] = MaskedStr(value)
    return obj


def compute_signature(secret: str, id_url: str, issued_at: str) -> str:
    """Base64(HMAC-SHA256(key=client secret, msg=id + issued_at)) — reference 2.3."""
    mac = hmac.new(secret.encode(), (id_url + issued_at).encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode("ascii")


def signature_required(app: ConnectedApp, grant: str | None) -> bool:
    """Whether a token answer for ``grant`` must carry a ``signature`` for this app.

    Only when the secret is known (a public client cannot check one) and verification is
    on: always for :data:`SIGNED_GRANTS`, and for :data:`STRICT_SIGNED_GRANTS` when the
    app sets ``strict_signature``. JWT bearer answers are never required to carry one
    (the reference's sample has none).
    """
    if not (app.verify_signature and app.client_secret) or grant is None:
        return False
    if grant in SIGNED_GRANTS:
        return True
    return app.strict_signature and grant in STRICT_SIGNED_GRANTS


def verify_token_signature(
    app: ConnectedApp, payload: Mapping[str, Any], *, grant: str | None = None
) -> None:
    """Check ``signature`` in constant time when the secret is known.

    A missing signature is refused when :func:`signature_required` says so for
    ``grant``; a present one is always verified (when the secret is known).

    Raises:
        SignatureError: the HMAC does not match, or a required signature is missing.
    """
    signature = payload.get("signature")
    id_url = payload.get("id")
    issued_at = payload.get("issued_at")
    if not (app.verify_signature and app.client_secret):
        return
    if not signature:
        if signature_required(app, grant):
            raise SignatureError(
                "token response has no signature, but Salesforce always signs this "
                "grant's answer (a stripped signature is refused)"
            )
        return
    if not id_url or issued_at is None or not isinstance(signature, str):
        raise SignatureError("token response has a signature but no id or issued_at")
    expected = compute_signature(
        app.client_secret.reveal(), str(id_url), str(issued_at)
    )
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise SignatureError(
            "token response signature does not match (wrong client secret, or the "
            "identity URL was altered in transit)"
        )


@functools.lru_cache(maxsize=256)
def _url_parts(url: str) -> tuple[str, str, bool]:
    # A connection's instance and identity URLs repeat on every refresh: split once.
    parts = urlsplit(url)
    return parts.scheme, parts.hostname or "", "@" in parts.netloc


def check_token_hosts(app: ConnectedApp, token: Token) -> None:
    """Every host a token response points to must be one the app trusts (SECURITY item 9)."""
    for name, url in (("instance_url", token.instance_url), ("id", token.id_url)):
        if url is None:
            continue
        scheme, host, userinfo = _url_parts(url)
        secure = scheme == "https" or (scheme == "http" and app.allow_loopback)
        if not secure or not app.trusts_host(host) or userinfo:
            raise UntrustedHostError(
                f"token response field {name!r} points to an untrusted host {host!r}; "
                "list it in ConnectedApp(extra_hosts=...) if it really is your org"
            )


def parse_token_response(
    app: ConnectedApp,
    response: HttpResponse,
    *,
    grant: str,
    token_url: str,
    previous: Token | None = None,
) -> Token:
    """Decode, verify and validate a token-endpoint answer into a :class:`Token`.

    Args:
        grant: the grant that was asked for (``"authorization_code"``,
            ``"refresh_token"``, ``"client_credentials"``, ``"password"``, ``"device"``,
            ``"jwt_bearer"``, ``"token_exchange"``); decides whether a missing ``signature`` is refused.
        token_url: the token endpoint the request went to: the grant's authorization
            server, remembered as :attr:`Token.token_url` (refresh, revoke,
            introspect and userinfo of the grant go there).
    """
    payload = parse_json_object(response)
    verify_token_signature(app, payload, grant=grant)
    token = Token.from_response(payload, previous=previous, token_url=token_url)
    check_token_hosts(app, token)
    return token


def authorization_server_of(token_url: str) -> str | None:
    """The base URL (login URL) of a token endpoint URL, ``None`` if it is not one.

    ``https://acme.my.site.com/customers/services/oauth2/token`` →
    ``https://acme.my.site.com/customers``.
    """
    if not token_url.endswith(TOKEN_PATH):
        return None
    return token_url[: -len(TOKEN_PATH)] or None


def grant_endpoints(app: ConnectedApp, token: Token | str | None) -> Endpoints:
    """The endpoints of the authorization server that issued ``token``.

    A :class:`Token` that remembers its ``token_url`` is served by that host (a sandbox
    login at ``test.salesforce.com``, a My Domain, an Experience Cloud site): its
    refresh, revoke, introspection and userinfo go there, whatever the app's configured
    ``login_url``. The stored URL is checked as the app checks its own: https (http only
    on loopback hosts when the app allows loopback), no user information, a host the
    app trusts (SECURITY.md item 9), so a tampered record cannot send a token or the
    client secret elsewhere. A bare string, or a token stored before ``token_url`` was
    recorded, uses the app's ``login_url``.

    Raises:
        UntrustedHostError: the stored ``token_url`` is not a trusted token endpoint.
    """
    url = token.token_url if isinstance(token, Token) else None
    if not url:
        return endpoints_for(app.login_url)
    base = authorization_server_of(url)
    scheme, host, userinfo = _url_parts(url)
    secure = scheme == "https" or (scheme == "http" and app.allow_loopback)
    if (
        base is None
        or not secure
        or userinfo
        or not host
        or not app.trusts_host(host)
        or any(not ch.isprintable() or ch.isspace() for ch in url)
        or "?" in url
        or "#" in url
    ):
        raise UntrustedHostError(
            f"the stored token's authorization server (host {host!r}) is not a token "
            "endpoint the app trusts; no token is sent there (list the host in "
            "ConnectedApp(extra_hosts=...) if it really is your org)"
        )
    return endpoints_for(base)
