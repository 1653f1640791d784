"""Issue 13 defect 1 (Django): a failure at any step of the login or the callback leaves
no verifier, code, state or token in the technical 500 page (``DEBUG=True``) or in the
``AdminEmailHandler`` mail (``DEBUG=False``).

Before the fix both showed the callback's ``code`` and ``state`` (request GET, URL,
``QUERY_STRING``) and the PKCE verifier and code as frame locals of the callback and of
the core's ``exchange_code``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils.log import AdminEmailHandler
from support.django_flow import authorize, query_of

from sfoauth_core.tokens import Token

pytestmark = pytest.mark.django_db


class Boom(RuntimeError):
    """The injected failure (not an SFOAuthError: nothing handles it)."""


@pytest.fixture
def seen(monkeypatch) -> dict[str, list[str]]:
    """Every secret of the flow, as the core's login transaction created or received
    it."""
    from sfoauth_core import login as core_login

    values: dict[str, list[str]] = {"secrets": []}
    real_begin = core_login.begin_login
    real_complete = core_login.complete_login

    def begin_login(*args: Any, **kwargs: Any) -> Any:
        url, pending = real_begin(*args, **kwargs)
        values["secrets"] += [pending.state, pending.code_verifier, pending.nonce or ""]
        return url, pending

    def complete_login(app: Any, pending: Any, params: Any, **kwargs: Any) -> Any:
        values["secrets"] += [params.get("code") or "", pending.code_verifier]
        done = yield from real_complete(app, pending, params, **kwargs)
        token: Token = done.token
        values["secrets"] += [token.access_token, token.refresh_token or ""]
        values["secrets"] += [token.id_token or ""]
        return done

    monkeypatch.setattr(core_login, "begin_login", begin_login)
    monkeypatch.setattr(core_login, "complete_login", complete_login)
    return values


@pytest.fixture
def client(user_factory) -> Client:
    c = Client(raise_request_exception=False)
    c.force_login(user_factory("alice"))
    return c


@pytest.fixture
def admin_mail(settings) -> Iterator[None]:
    settings.ADMINS = [("Ops", "ops@example.com")]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    handler = AdminEmailHandler(include_html=True)
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def _raise(*args: Any, **kwargs: Any) -> Any:
    raise Boom("injected failure")


# Each step of the callback, made to fail with an unhandled error.
STEPS = {
    "parse-callback": "sfoauth_core.flows.web_server.parse_authorization_response",
    "build-client": "sfoauth_django._runtime.oauth",
    "inside-exchange": "sfoauth_core.flows.web_server.parse_token_response",
    "verify-id-token": "sfoauth_core.login.transaction.verify_id_token",
    "claim-row": "sfoauth_django._flows._claim_row",
    "store": "sfoauth_django._runtime.manager",
    "after-store": "sfoauth_django._runtime.forget_user",
}


def _reports(response: Any) -> list[str]:
    texts = [response.content.decode("utf-8", "replace")]
    for message in mail.outbox:
        texts.append(message.subject + "\n" + message.body)
        texts += [str(content) for content, _type in message.alternatives]
    return texts


def _assert_clean(texts: list[str], secrets: list[str], query: str) -> None:
    params = query_of("/?" + query)
    values = [s for s in secrets if s and len(s) >= 8]
    values += [params["code"], params["state"]]
    from django.conf import settings

    values += [settings.SFOAUTH["CLIENT_SECRET"], *settings.SFOAUTH["TOKEN_KEYS"]]
    assert values
    for text in texts:
        assert "injected failure" in text or "Internal Server Error" in text
        for value in values:
            assert value not in text, f"{value[:6]}... leaked"
            # The query string form (URL-encoded) too.
            assert value.replace("=", "%3D") not in text


@pytest.mark.parametrize("debug", [True, False], ids=["debug-page", "admin-mail"])
@pytest.mark.parametrize("step", list(STEPS))
def test_a_failing_callback_step_leaks_nothing(
    client, emu, browser, settings, monkeypatch, seen, admin_mail, step, debug
):
    settings.DEBUG = debug
    query = authorize(browser, client.post("/salesforce/login/", {"next": "/whoami/"}))
    monkeypatch.setattr(STEPS[step], _raise)
    response = client.get("/salesforce/callback/?" + query)
    assert response.status_code == 500
    if debug:
        assert b"Boom" in response.content  # the technical 500 page was rendered
        assert b"********************" in response.content
    else:
        assert mail.outbox  # (Django's own mail_admins handler may send one too)
    _assert_clean(
        _reports(response) if debug else _reports(response)[1:], seen["secrets"], query
    )


@pytest.mark.parametrize("debug", [True, False], ids=["debug-page", "admin-mail"])
def test_a_failing_login_step_leaks_nothing(
    client, emu, settings, monkeypatch, seen, admin_mail, debug
):
    settings.DEBUG = debug
    monkeypatch.setattr(
        "sfoauth_django.storage.PendingAuthorization.objects.create", _raise
    )
    response = client.post("/salesforce/login/", {"next": "/whoami/"})
    assert response.status_code == 500
    texts = _reports(response) if debug else _reports(response)[1:]
    values = [s for s in seen["secrets"] if s]
    assert values
    for text in texts:
        for value in values:
            assert value not in text
