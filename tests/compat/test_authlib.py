"""Authlib's httpx and requests OAuth 2 clients against the served emulator, as
Authlib's client docs show them: PKCE web flow, refresh, revoke, and the ID token
checked against the keys the discovery document names (with joserfc, the JOSE library
Authlib points to). Also the documented limit: Authlib refreshes automatically only a
token with a known expiry, and Salesforce sends none."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from sfoauth_core.testing import DEFAULT_USERNAME

from .conftest import Served

pytestmark = pytest.mark.loopback

SCOPE = "api refresh_token openid"


def _httpx_client(**kwargs: Any) -> Any:
    # Authlib 1.9 warns at import that its httpx integration prefers "httpx2"; the
    # integration itself works with httpx (and is what Authlib documents for it).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from authlib.integrations.httpx_client import OAuth2Client
    return OAuth2Client(**kwargs)


def _requests_client(**kwargs: Any) -> Any:
    from authlib.integrations.requests_client import OAuth2Session

    return OAuth2Session(**kwargs)


CLIENTS: dict[str, Callable[..., Any]] = {
    "httpx": _httpx_client,
    "requests": _requests_client,
}


@pytest.fixture(params=sorted(CLIENTS))
def make_client(request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """A factory for the parametrized client class; every client is closed after."""
    made: list[Any] = []

    def make(**kwargs: Any) -> Any:
        made.append(CLIENTS[request.param](**kwargs))
        return made[-1]

    yield make
    for client in made:
        client.close()


def metadata(served: Served) -> dict[str, Any]:
    doc: dict[str, Any] = httpx.get(
        served.base_url + "/.well-known/openid-configuration"
    ).json()
    return doc


def browser(url: str) -> str:
    """The user's browser: the scripted user approves; returns the callback URL."""
    response = httpx.get(url, follow_redirects=False)
    assert response.status_code == 302, response.text
    return response.headers["location"]


def web_login(served: Served, make_client: Callable[..., Any], **extra: Any) -> Any:
    """PKCE web flow; returns the client holding the token."""
    from authlib.common.security import generate_token

    app = served.emu.apps["web"]
    meta = metadata(served)
    client = make_client(
        client_id=app.client_id,
        client_secret=app.client_secret,
        scope=SCOPE,
        redirect_uri=app.callback_urls[0],
        code_challenge_method="S256",
        **extra,
    )
    verifier = generate_token(64)
    url, state = client.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce="n-0S6_WzA2Mj"
    )
    callback = browser(url)
    assert parse_qs(urlsplit(callback).query)["state"] == [state]
    client.fetch_token(
        meta["token_endpoint"], authorization_response=callback, code_verifier=verifier
    )
    return client


def test_pkce_web_flow(served: Served, make_client: Callable[..., Any]) -> None:
    client = web_login(served, make_client)
    token = client.token
    assert token["access_token"] and token["refresh_token"]
    assert token["instance_url"] == served.base_url
    authorize = served.logged(lambda e: e.path == "/services/oauth2/authorize")
    assert authorize.params["code_challenge"]
    exchange = served.logged(lambda e: e.grant_type is not None)
    assert exchange.grant_type == "authorization_code"
    assert exchange.params["code_verifier"] == "***"  # sent (and masked in the log)
    limits = client.get(served.base_url + "/services/data/v62.0/limits")
    assert limits.status_code == 200


def test_refresh(served: Served, make_client: Callable[..., Any]) -> None:
    client = web_login(served, make_client)
    first = client.token["access_token"]
    refresh_token = client.token["refresh_token"]
    client.refresh_token(metadata(served)["token_endpoint"])
    assert client.token["access_token"] != first
    assert client.token["refresh_token"] == refresh_token  # Salesforce keeps it
    assert served.emu.calls("refresh_token") == 1
    ok = client.get(served.base_url + "/services/data/v62.0/limits")
    assert ok.status_code == 200


def test_no_automatic_refresh_without_an_expiry(
    served: Served, make_client: Callable[..., Any]
) -> None:
    """Documented limit (real Salesforce too): no ``expires_in``, so Authlib never
    knows the token expired; the 401 reaches the caller, who refreshes."""
    updates: list[dict[str, Any]] = []
    meta = metadata(served)
    client = web_login(
        served,
        make_client,
        token_endpoint=meta["token_endpoint"],
        update_token=lambda token, **kw: updates.append(token),
    )
    assert "expires_in" not in client.token and client.token.is_expired() is None
    served.emu.expire_access_tokens()
    expired = client.get(served.base_url + "/services/data/v62.0/limits")
    assert expired.status_code == 401
    assert expired.json()[0]["errorCode"] == "INVALID_SESSION_ID"
    assert updates == [] and served.emu.calls("refresh_token") == 0
    # The documented way: on 401 INVALID_SESSION_ID, refresh explicitly and retry.
    client.refresh_token(meta["token_endpoint"])
    retried = client.get(served.base_url + "/services/data/v62.0/limits")
    assert retried.status_code == 200


def test_revoke(served: Served, make_client: Callable[..., Any]) -> None:
    client = web_login(served, make_client)
    access = client.token["access_token"]
    response = client.revoke_token(
        metadata(served)["revocation_endpoint"],
        token=client.token["refresh_token"],
        token_type_hint="refresh_token",
    )
    assert response.status_code == 200
    after = httpx.get(
        served.base_url + "/services/data/v62.0/limits",
        headers={"Authorization": "Bearer " + access},
    )
    assert after.status_code == 401  # revoking the refresh token ends its sessions


def test_id_token_against_the_discovery_keys(
    served: Served, make_client: Callable[..., Any]
) -> None:
    client = web_login(served, make_client)
    meta = metadata(served)
    keys = KeySet.import_key_set(httpx.get(meta["jwks_uri"]).json())
    decoded = jwt.decode(client.token["id_token"], keys, algorithms=["RS256"])
    registry = jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": meta["issuer"]},
        aud={"essential": True, "value": served.emu.apps["web"].client_id},
        nonce={"essential": True, "value": "n-0S6_WzA2Mj"},
        exp={"essential": True},
    )
    registry.validate(decoded.claims)
    assert decoded.claims["preferred_username"] == DEFAULT_USERNAME
    assert decoded.header["kid"] in {k.kid for k in keys}
