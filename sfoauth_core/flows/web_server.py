"""Web server flow (authorization code), with or without a client secret, PKCE always.

Specs: RFC 6749 §4.1 (authorization code grant), RFC 7636 (PKCE), RFC 9207 (``iss`` in the
authorization response), RFC 9700 §2.1.1 (PKCE for every client).
Salesforce: "OAuth 2.0 Web Server Flow for Web App Integration" (help topic
``remoteaccess_oauth_web_server_flow``); reference sections 3, 4.1-4.3.

Salesforce specifics: ``code_challenge`` is sent without ``code_challenge_method`` (S256 is
assumed; Salesforce's own clients send none); codes arrive URL-encoded and often end in ``==``
(the callback parser decodes them once); a confidential client sends both secret and verifier,
a public client only the verifier.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit

from ..config import ConnectedApp
from ..exceptions import (
    ConfigurationError,
    FlowError,
    RepeatedParameterError,
    raise_for_oauth_error,
)
from ..tokens import AuthorizationRequest, Token, masked
from ._base import (
    Flow,
    client_auth_fields,
    parse_token_response,
    prepare_token_request,
)
from .endpoints import endpoints_for
from .pkce import create_code_verifier, create_s256_challenge, validate_code_verifier
from .state import check_state, create_nonce, create_state

__all__ = [
    "callback_params",
    "exchange_code",
    "parse_authorization_response",
    "prepare_authorization_url",
]

_PROMPTS = frozenset({"login", "consent", "select_account"})
_DISPLAYS = frozenset({"page", "popup", "touch", "mobile"})


def prepare_authorization_url(
    app: ConnectedApp,
    *,
    response_type: str = "code",
    scopes: tuple[str, ...] | list[str] | None = None,
    state: str | None = None,
    prompt: str | None = None,
    login_hint: str | None = None,
    display: str | None = None,
    nonce: str | None = None,
    pkce: bool = True,
    extra_params: Mapping[str, str] | None = None,
) -> AuthorizationRequest:
    """Build the authorize URL and the values to keep server-side until the callback.

    Per-request options never change ``app`` (SECURITY.md item 28).

    Raises:
        ConfigurationError: the app has no ``redirect_uri``, an option is not one
            Salesforce knows, or PKCE is turned off or asked for as ``plain`` in a
            code flow (SECURITY.md item 2).
    """
    if not app.redirect_uri:
        raise ConfigurationError("redirect_uri", "is required for browser flows")
    if response_type == "code" and not pkce:
        raise ConfigurationError(
            "pkce", "cannot be turned off for the authorization code flow (S256 always)"
        )
    method = (extra_params or {}).get("code_challenge_method")
    if method is not None and method != "S256":
        raise ConfigurationError(
            "code_challenge_method", "must be S256; plain is never used"
        )
    if prompt is not None and not set(prompt.split()) <= _PROMPTS:
        raise ConfigurationError(
            "prompt", "must be login, consent and/or select_account"
        )
    if display is not None and display not in _DISPLAYS:
        raise ConfigurationError("display", "must be page, popup, touch or mobile")
    state = state or create_state()
    chosen_scopes = tuple(scopes) if scopes is not None else app.scopes
    if nonce is None and "openid" in chosen_scopes:
        nonce = create_nonce()
    params: dict[str, str] = {
        "response_type": response_type,
        "client_id": app.client_id,
        "redirect_uri": app.redirect_uri,
        "state": state,
    }
    if chosen_scopes:
        params["scope"] = " ".join(chosen_scopes)
    verifier = None
    if pkce:
        verifier = create_code_verifier()
        params["code_challenge"] = create_s256_challenge(verifier)
    for name, value in (
        ("prompt", prompt),
        ("login_hint", login_hint),
        ("display", display),
        ("nonce", nonce),
    ):
        if value:
            params[name] = value
    if extra_params:
        params.update({k: v for k, v in extra_params.items() if k not in params})
    url = endpoints_for(app.login_url).authorize + "?" + urlencode(params)
    return AuthorizationRequest(
        url=url,
        state=state,
        code_verifier=verifier,
        nonce=nonce,
        redirect_uri=app.redirect_uri,
        issuer=app.login_url,
    )


def parse_authorization_response(
    callback: str | Mapping[str, str],
    *,
    expected_state: str | None,
    expected_issuer: str | None = None,
) -> str:
    """Check a callback (full URL, query string or parsed params) and return the code.

    The ``code`` is URL-decoded exactly once (Salesforce codes end in ``%3D%3D``).

    Raises:
        RepeatedParameterError: a URL or query string names a parameter twice.
        StateMismatchError: ``state`` missing or different (checked first, even on errors).
        OAuthProtocolError: Salesforce redirected with ``error=...`` (e.g. access_denied).
        FlowError: no code, or an ``iss`` that is not the expected issuer (mix-up defence).
    """
    params = _callback_params(callback)
    check_state(params.get("state"), expected_state)
    if "error" in params:
        raise_for_oauth_error(params)
    issuer = params.get("iss")
    if issuer is not None and expected_issuer is not None:
        # RFC 9207 §2.4: simple string comparison. Only our own configured value is
        # normalised (a login URL written with a trailing slash).
        if issuer != expected_issuer.rstrip("/"):
            raise FlowError(
                "the callback's iss does not match the authorization server"
            )
    code = params.get("code")
    if not code:
        raise FlowError("the callback carries no authorization code")
    return masked(code)


def callback_params(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """One value per callback parameter, or :class:`RepeatedParameterError`.

    Both adapters call this on the raw query (Django
    ``((k, v) for k, vs in request.GET.lists() for v in vs)``, Starlette
    ``request.query_params.multi_items()``) before anything else: ``state=a&state=b``
    would otherwise be read as ``a`` by one framework and ``b`` by another.

    Args:
        pairs: every ``(name, value)`` pair of the query, as sent.

    Raises:
        RepeatedParameterError: any parameter appears more than once.
    """
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise RepeatedParameterError(name)
        params[name] = masked(value)  # code, state: masked in frame locals
    return params


def _callback_params(callback: str | Mapping[str, str]) -> dict[str, str]:
    if isinstance(callback, Mapping):
        return {str(k): str(v) for k, v in callback.items()}
    text = callback
    if "://" in text:
        text = urlsplit(text).query
    return callback_params(parse_qsl(text.lstrip("?"), keep_blank_values=True))


def exchange_code(
    app: ConnectedApp,
    code: str,
    *,
    code_verifier: str | None,
    redirect_uri: str | None = None,
    token_url: str | None = None,
) -> Flow[Token]:
    """Exchange an authorization code for tokens (never retried: codes are single use).

    ``redirect_uri`` and ``token_url`` come from the server-side record of the pending flow
    (SECURITY.md item 5), defaulting to the app's.
    """
    redirect = redirect_uri or app.redirect_uri
    if not redirect:
        raise ConfigurationError("redirect_uri", "is required for the web server flow")
    if not code:
        raise FlowError("the authorization code is empty")
    # Masked from here on: a traceback through this frame shows neither (issue 13).
    code = masked(code)
    code_verifier = None if code_verifier is None else masked(code_verifier)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect}
    form.update(client_auth_fields(app))
    if code_verifier is not None:
        validate_code_verifier(code_verifier)
        form["code_verifier"] = code_verifier
    url = token_url or endpoints_for(app.login_url).token
    response = yield prepare_token_request(url, form)
    if response is None:  # pragma: no cover - drivers always send one
        raise TypeError("the driver sent no response")
    return parse_token_response(
        app, response, grant="authorization_code", token_url=url
    )
