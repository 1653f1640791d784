"""``@salesforce_required`` (sync and async), ``SalesforceRequiredMixin``, the middleware's
lazy ``request.salesforce``, named connections, re-authorization and the signals."""

from __future__ import annotations

import time
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.messages import get_messages
from django.db import connection
from django.http import JsonResponse
from django.test import AsyncClient, Client
from django.test.utils import CaptureQueriesContext
from support.django_flow import assert_no_plaintext, connect

from sfoauth_core.testing import (
    DEFAULT_ORG_ID,
    DEFAULT_USER_ID,
    DEFAULT_USERNAME,
    JWT_APP_CLIENT_ID,
)
from sfoauth_core.tokens import Token
from sfoauth_django import _runtime
from sfoauth_django.models import get_token_model
from sfoauth_django.signals import connection_needs_reauth, token_refreshed
from sfoauth_django.storage import DjangoTokenStore

KEY = f"{DEFAULT_ORG_ID}:{DEFAULT_USER_ID}"


def aget(client: AsyncClient, path: str) -> Any:
    """GET ``path`` through Django's ``AsyncClient`` from synchronous test code.

    ``async_to_sync`` needs an ``async def`` callable: Django 5.0+ declares
    ``AsyncClient.get`` with ``async def``, but on Django 4.2 it is the inherited plain
    ``RequestFactory.get`` that merely returns a coroutine, which asgiref warns about.
    """

    async def get() -> Any:
        return await client.get(path)

    return async_to_sync(get)()


@pytest.fixture
def alice(user_factory):
    return user_factory("alice")


@pytest.fixture
def client(alice) -> Client:
    c = Client()
    c.force_login(alice)
    return c


@pytest.fixture
def connected(client, emu, browser) -> Client:
    assert connect(client, browser).status_code == 302
    return client


def _login_redirect(response, path, reason=None):
    assert response.status_code == 302
    expected = f"/salesforce/login/?next={path.replace('/', '%2F')}"
    if reason:
        expected += f"&reason={reason}"
    assert response["Location"] == expected


# -- unconnected and anonymous users ---------------------------------------------------------
@pytest.mark.parametrize("path", ["/whoami/", "/cbv/", "/limits/"])
def test_unconnected_user_goes_to_login(client, emu, path):
    _login_redirect(client.get(path), path)


def test_anonymous_user_with_sign_in_goes_to_sfoauth_login(emu, db):
    _login_redirect(
        Client().get("/whoami/?a=1"),
        "/whoami/?a=1".replace("?", "%3F").replace("=", "%3D"),
    )


def test_middleware_attaches_a_lazy_falsy_session(client, emu):
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/plain/")
    assert response.status_code == 200
    captured = [q["sql"] for q in queries.captured_queries]
    assert captured and not any("salesforceconnection" in sql for sql in captured)
    assert client.get("/optional/").json() == {"connected": False}


def test_middleware_session_when_connected(connected, emu):
    assert connected.get("/optional/").json() == {"connected": True}


# ARCHITECTURE.md: request.salesforce is always a lazy object, falsy when the user has no
# usable connection, the same under WSGI and ASGI.
NONE = {"truthy": False, "type": "SalesforceSession"}
SESSION = {"truthy": True, "type": "SalesforceSession"}


def test_request_salesforce_is_falsy_without_a_connection(client, emu, db):
    assert client.get("/optional-none/").json() == NONE  # logged in, never connected
    assert Client().get("/optional-none/").json() == NONE  # anonymous


def test_request_salesforce_is_the_session_when_connected(connected, emu):
    assert connected.get("/optional-none/").json() == SESSION


def test_request_salesforce_is_falsy_after_disconnect(connected, emu):
    assert connected.get("/optional-none/").json() == SESSION
    assert connected.post("/salesforce/disconnect/").status_code == 302
    assert connected.get("/optional-none/").json() == NONE


def test_request_salesforce_under_asgi(alice, client, emu, browser):
    anonymous = AsyncClient()
    assert aget(anonymous, "/aoptional-none/").json() == NONE
    logged_in = AsyncClient()
    logged_in.force_login(alice)
    assert aget(logged_in, "/aoptional-none/").json() == NONE
    assert connect(client, browser).status_code == 302
    assert aget(logged_in, "/aoptional-none/").json() == SESSION


def test_request_class_is_untouched_and_the_attribute_can_be_replaced(rf, alice, emu):
    from django.core.handlers.wsgi import WSGIRequest

    from sfoauth_django.middleware import SalesforceMiddleware
    from sfoauth_django.session import SalesforceSession

    seen: dict[str, object] = {}

    def view(request):
        seen["class"] = type(request)  # no per-request class swap
        seen["session"] = type(request.salesforce)
        request.salesforce = "replaced"  # a decorator's own session wins
        seen["after"] = request.salesforce
        return JsonResponse({})

    request = rf.get("/")
    request.user = alice
    SalesforceMiddleware(view)(request)
    assert seen == {
        "class": WSGIRequest,
        "session": SalesforceSession,
        "after": "replaced",
    }
    bare = rf.get("/")  # a request the middleware never saw has no attribute
    assert not hasattr(bare, "salesforce")


# -- connected users --------------------------------------------------------------------------
def test_sync_views(connected, emu):
    assert connected.get("/whoami/").json()["org_id"] == DEFAULT_ORG_ID
    assert connected.get("/cbv/").json()["org_id"] == DEFAULT_ORG_ID
    assert connected.get("/limits/").json() == {"status": 200}
    assert emu.calls() == 1  # the code exchange only


def test_hot_path_makes_no_extra_query(connected, emu):
    connected.get("/decorated/")  # warm the caches
    with CaptureQueriesContext(connection) as plain:
        assert connected.get("/plain/").status_code == 200
    plain_count = len(plain.captured_queries)  # now: a request start clears the log
    with CaptureQueriesContext(connection) as decorated:
        assert connected.get("/decorated/").status_code == 200
    assert plain_count >= 2  # session and user
    assert len(decorated.captured_queries) == plain_count
    assert emu.calls() == 1


def test_needs_reauth_sends_the_user_back_through_login(connected, emu):
    flagged = []
    connection_needs_reauth.connect(
        lambda **kw: flagged.append(kw), weak=False, dispatch_uid="reauth"
    )
    try:
        record = DjangoTokenStore().get(KEY)
        _runtime.oauth().revoke(record.token.refresh_token)
        emu.expire_access_tokens()
        response = connected.get("/limits/")
    finally:
        connection_needs_reauth.disconnect(dispatch_uid="reauth")
    _login_redirect(response, "/limits/", "reauth")
    assert [m.message for m in get_messages(response.wsgi_request)] == [
        "Your Salesforce connection needs to be renewed."
    ]
    row = get_token_model().objects.get()
    assert row.status == "needs_reauth" and "invalid_grant" in row.reason
    assert [kw["key"] for kw in flagged] == [KEY]
    # The next request is redirected straight away, with no call to Salesforce.
    calls = emu.calls()
    _login_redirect(connected.get("/whoami/"), "/whoami/", "reauth")
    assert emu.calls() == calls


def test_refresh_before_known_expiry_fires_the_signal(connected, emu):
    store = DjangoTokenStore()
    record = store.get(KEY)
    store.save(
        KEY, record.token.with_expiry(time.time() - 1), expected_version=record.version
    )
    _runtime.forget(KEY)
    refreshed = []
    token_refreshed.connect(
        lambda **kw: refreshed.append(kw), weak=False, dispatch_uid="r"
    )
    try:
        assert connected.get("/whoami/").status_code == 200
    finally:
        token_refreshed.disconnect(dispatch_uid="r")
    assert emu.calls("refresh_token") == 1
    assert [(kw["key"], kw["connection"], kw["grant"]) for kw in refreshed] == [
        (KEY, None, "authorization_code")
    ]
    assert isinstance(refreshed[0]["token"], Token)
    assert_no_plaintext(emu)


# -- async views (thread-sensitive ORM calls run on the test's thread) -----------------------
def test_async_views(alice, connected, emu):
    client = AsyncClient()
    client.force_login(alice)
    response = aget(client, "/awhoami/")
    assert response.status_code == 200 and response.json()["org_id"] == DEFAULT_ORG_ID
    assert aget(client, "/acbv/").json()["org_id"] == DEFAULT_ORG_ID
    assert aget(client, "/alimits/").json() == {"status": 200}


def test_async_view_unconnected(alice, emu):
    client = AsyncClient()
    client.force_login(alice)
    _login_redirect(aget(client, "/awhoami/"), "/awhoami/")
    _login_redirect(aget(client, "/acbv/"), "/acbv/")


@pytest.mark.django_db(transaction=True)
def test_async_refresh_on_401(emu, browser, user_factory):
    user = user_factory("bob")
    sync_client = Client()
    sync_client.force_login(user)
    connect(sync_client, browser)
    emu.apps["web"].is_refresh_token_rotation_enabled = True
    emu.expire_access_tokens()
    client = AsyncClient()
    client.force_login(user)
    assert aget(client, "/alimits/").json() == {"status": 200}
    assert emu.calls("refresh_token") == 1
    assert emu.reuse_detected == 0
    assert get_token_model().objects.get().version == 3  # the marker, then the token


# -- named server-to-server connections --------------------------------------------------------
@pytest.fixture
def integration(emu, settings):
    settings.SFOAUTH = {
        **settings.SFOAUTH,
        "CONNECTIONS": {
            "integration": {
                "FLOW": "jwt_bearer",
                "CLIENT_ID": JWT_APP_CLIENT_ID,
                "CLIENT_SECRET": None,
                "PRIVATE_KEY": emu.apps["jwt"].private_key_pem,
                "USERNAME": DEFAULT_USERNAME,
            }
        },
    }
    _runtime.reset()
    return emu


def test_named_connection_is_minted_on_first_use(client, integration):
    assert client.get("/integration/").json() == {"user_id": DEFAULT_USER_ID}
    assert client.get("/integration/").json() == {"user_id": DEFAULT_USER_ID}
    assert integration.calls("urn:ietf:params:oauth:grant-type:jwt-bearer") == 1
    row = get_token_model().objects.get(name="integration")
    assert row.key == "connection:integration" and row.user is None
    assert row.grant == "jwt_bearer"
    assert_no_plaintext(integration)


def test_adapter_built_core_objects_are_cached(client, integration, monkeypatch):
    """Issue 11.3: the named connection's ConnectedApp (its RSA key), the user app and
    the managers are built once, not per access: the PEM is parsed once across many
    requests."""
    import sfoauth_core.config as config_module
    from sfoauth_django.conf import sfoauth_settings

    parses: list[bytes] = []
    real = config_module.load_pem_private_key

    def counting(data: bytes, password: bytes | None) -> Any:
        parses.append(data)
        return real(data, password)

    monkeypatch.setattr(config_module, "load_pem_private_key", counting)
    sfoauth_settings.reload()
    _runtime.reset()
    for _ in range(5):
        assert client.get("/integration/").json() == {"user_id": DEFAULT_USER_ID}
    assert len(parses) == 1
    assert sfoauth_settings.connection("integration") is sfoauth_settings.connection(
        "integration"
    )
    assert sfoauth_settings.to_core_config() is sfoauth_settings.to_core_config()
    assert _runtime.manager("integration") is _runtime.manager("integration")
    assert _runtime.manager("integration").oauth.app is (
        sfoauth_settings.connection("integration").app
    )
    sfoauth_settings.reload()  # a settings change builds it again, once
    client.get("/integration/")
    client.get("/integration/")
    assert len(parses) == 2


def test_default_http_client_is_the_cores(settings, monkeypatch):
    """Issue 11.3: one default client builder, so the same proxy behaviour as
    sfoauth_fastapi: the environment's proxy for the login URL."""
    import httpcore

    from sfoauth_core.config import ConnectedApp
    from sfoauth_django.adapter import get_adapter

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp.example:3128")
    settings.SFOAUTH = {**settings.SFOAUTH, "HTTP_CLIENT_FACTORY": None}
    app = ConnectedApp("3MVG9Example", timeout=9)
    with get_adapter().get_http_client(app, asynchronous=False) as client:
        assert isinstance(client._transport._pool, httpcore.HTTPProxy)
        assert not client._mounts and client.follow_redirects is False
        assert client.timeout == __import__("httpx").Timeout(9)


def test_sfoauth_connect_command(integration, db):
    import io

    from django.core.management import call_command
    from django.core.management.base import CommandError

    out = io.StringIO()
    call_command("sfoauth_connect", "integration", stdout=out)
    assert f"user {DEFAULT_USER_ID}" in out.getvalue()
    assert get_token_model().objects.get().grant == "jwt_bearer"
    with pytest.raises(CommandError, match="no connection named 'nope'"):
        call_command("sfoauth_connect", "nope")
    assert_no_plaintext(integration)


def test_client_credentials_connection(client, emu, settings):
    from sfoauth_core.testing import CC_APP_CLIENT_ID, INTEGRATION_USER_ID

    settings.SFOAUTH = {
        **settings.SFOAUTH,
        "CONNECTIONS": {
            "integration": {
                "FLOW": "client_credentials",
                "CLIENT_ID": CC_APP_CLIENT_ID,
                "CLIENT_SECRET": emu.apps["cc"].client_secret,
            }
        },
    }
    _runtime.reset()
    assert client.get("/integration/").json() == {"user_id": INTEGRATION_USER_ID}
    assert client.get("/integration/").json() == {"user_id": INTEGRATION_USER_ID}
    assert emu.calls("client_credentials") == 1
    assert get_token_model().objects.get().grant == "client_credentials"
    assert_no_plaintext(emu)
