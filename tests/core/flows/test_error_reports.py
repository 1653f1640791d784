"""Issue 13 defect 1 (core): a failure at any step of a flow leaves no verifier, code,
state, token or secret in the traceback's frame locals or exception messages.

Each case drives a real client over an ``httpx.MockTransport``, makes one step fail, and
renders the whole exception chain the way error reporters do (every frame's locals by
``repr``, as Django's debug page, its error mail and
``traceback.TracebackException(capture_locals=True)`` show them). Before the fix the
code, verifier, client secret and the token body appeared as frame locals of
``exchange_code``, ``parse_json_object``, ``Token.from_response`` and the driver.
"""

from __future__ import annotations

import json
import traceback
import warnings
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from support.flows import ID_URL

from sfoauth_core import SalesforceOAuth
from sfoauth_core.config import ConnectedApp
from sfoauth_core.exceptions import SFOAuthError
from sfoauth_core.flows._base import compute_signature
from sfoauth_core.flows.web_server import parse_authorization_response
from sfoauth_core.tokens import DeviceAuthorization, MaskedBytes, MaskedStr, Token

SECRET = "SuperSecretConsumerValue42"
ACCESS = "00DXX0000001abc!AQ0AQLiveAccessTokenValue"
REFRESH = "5Aep861LiveRefreshTokenValue"
PASSWORD = "hunter2-password-value"
DEVICE_CODE = "M01WRzlFeGFtcGxlDeviceCodeValue="
CODE = "aPrxLiveAuthorizationCodeValue=="


def make_oauth(handler: Callable[[httpx.Request], httpx.Response]) -> SalesforceOAuth:
    app = ConnectedApp(
        client_id="3MVG9Example",
        client_secret=SECRET,
        redirect_uri="https://app.example.com/callback",
        login_url="https://acme.my.salesforce.com",
        strict_signature=True,  # a stripped signature fails in every flow here
    )
    return SalesforceOAuth(
        app, http_client=httpx.Client(transport=httpx.MockTransport(handler))
    )


def body(**changes: Any) -> dict[str, Any]:
    answer = {
        "access_token": ACCESS,
        "refresh_token": REFRESH,
        "instance_url": "https://acme.my.salesforce.com",
        "id": ID_URL,
        "token_type": "Bearer",
        "issued_at": "1767225600123",
    }
    answer["signature"] = compute_signature(SECRET, ID_URL, answer["issued_at"])
    answer.update(changes)
    return {k: v for k, v in answer.items() if v is not None}


def answer(
    payload: Any, status: int = 200
) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=payload)

    return handler


def unreachable(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def report(exc: BaseException) -> str:
    """Everything an error report shows: messages, frames and every frame's locals."""
    rendered = traceback.TracebackException.from_exception(exc, capture_locals=True)
    return "".join(rendered.format())


def assert_clean(exc: BaseException, *secrets: str) -> None:
    text = report(exc)
    assert "Traceback" in text and "**********" in text  # locals were rendered
    for secret in (SECRET, CODE, PASSWORD, DEVICE_CODE, ACCESS, REFRESH, *secrets):
        assert secret not in text, f"{secret[:8]}... leaked into the report"


# What each step of a token call can do wrong: the answer each failure comes from.
FAILURES = {
    "unreachable": unreachable,
    "malformed": answer(body(access_token=ACCESS + " x", token_type="Bearer")),
    "bad-token-type": answer(body(token_type="MAC")),
    "stripped-signature": answer(body(signature=None)),
    "wrong-signature": answer(body(signature="AAAA" + "=" * 40)),
    "untrusted-host": answer(body(instance_url="https://evil.example")),
    "oauth-error": answer({"error": "invalid_grant", "error_description": "nope"}, 400),
    "deep-json": lambda r: httpx.Response(200, content=b"[" * 5000 + b"]" * 5000),
    "html": lambda r: httpx.Response(
        503, content=b"<html>" + ACCESS.encode(), headers={"content-type": "text/html"}
    ),
}


def code_exchange(oauth: SalesforceOAuth) -> Any:
    request = oauth.authorization_url()
    code = parse_authorization_response(
        f"https://app.example.com/callback?code={CODE}&state={request.state}",
        expected_state=request.state,
    )
    try:
        return oauth.exchange_code(code, code_verifier=request.code_verifier)
    except SFOAuthError as exc:
        assert_clean(exc, request.state, request.code_verifier or "")
        raise


def refresh(oauth: SalesforceOAuth) -> Any:
    stored = Token(
        access_token=MaskedStr(ACCESS),
        refresh_token=MaskedStr(REFRESH),
        instance_url="https://acme.my.salesforce.com",
        id_url=ID_URL,
    )
    return oauth.refresh(stored)


def password(oauth: SalesforceOAuth) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # An argument shows in the caller's frames as the caller passed it: mask it.
        return oauth.password("jane@acme.com", MaskedStr(PASSWORD))


def device(oauth: SalesforceOAuth) -> Any:
    auth = DeviceAuthorization(
        device_code=MaskedStr(DEVICE_CODE),
        user_code="X1D9SEET",
        verification_uri="https://acme.my.salesforce.com/setup/connect",
        interval=1,
    )
    return oauth.poll_device_flow(auth, timeout=30)


def client_credentials(oauth: SalesforceOAuth) -> Any:
    return oauth.client_credentials()


def revoke(oauth: SalesforceOAuth) -> Any:
    return oauth.revoke(MaskedStr(REFRESH))


FLOWS = {
    "code": code_exchange,
    "refresh": refresh,
    "password": password,
    "device": device,
    "client_credentials": client_credentials,
}


@pytest.mark.parametrize("failure", list(FAILURES))
@pytest.mark.parametrize("flow", list(FLOWS))
def test_a_failing_step_leaves_no_secret_in_the_report(flow, failure, monkeypatch):
    monkeypatch.setattr("sfoauth_core.http._drivers.time.sleep", lambda seconds: None)
    if flow == "device" and failure in ("unreachable", "html"):
        pytest.skip("the device flow keeps polling through these until its deadline")
    oauth = make_oauth(FAILURES[failure])
    with pytest.raises(SFOAuthError) as info:
        FLOWS[flow](oauth)
    assert_clean(info.value)


def test_a_failing_revoke_leaves_no_secret_in_the_report():
    oauth = make_oauth(answer({"error": "invalid_token"}, 400))
    with pytest.raises(SFOAuthError) as info:
        revoke(oauth)
    assert_clean(info.value)


def test_a_failing_user_agent_callback_leaves_no_secret_in_the_report():
    oauth = make_oauth(unreachable)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        request = oauth.user_agent_url()
    # The URL is the caller's value: masked as it comes in, like a web adapter would.
    url = MaskedStr(
        "https://app.example.com/callback#"
        + "&".join(
            f"{k}={v}" for k, v in body(signature="AAAA", state=request.state).items()
        )
    )
    with pytest.raises(SFOAuthError) as info:
        oauth.parse_user_agent_response(url, expected_state=request.state)
    assert_clean(info.value, request.state)


def test_the_transport_error_is_not_chained_to_httpx_frames():
    oauth = make_oauth(unreachable)
    with pytest.raises(SFOAuthError) as info:
        code_exchange(oauth)
    text = report(info.value)
    assert "During handling of the above exception" not in text
    assert "httpcore" not in text and "/httpx/" not in text


def test_masked_values_are_still_the_values():
    value = MaskedStr(ACCESS)
    assert value == ACCESS and str(value) == ACCESS and hash(value) == hash(ACCESS)
    assert repr(value) == "'**********'" and ACCESS not in repr({"t": value})
    assert json.loads(json.dumps({"t": value})) == {"t": ACCESS}
    assert ACCESS not in repr(MaskedBytes(ACCESS.encode()))


def test_parsed_token_values_are_masked_in_locals():
    oauth = make_oauth(answer(body()))
    token = code_exchange(oauth)
    assert token.access_token == ACCESS and isinstance(token.access_token, MaskedStr)
    assert isinstance(token.refresh_token, MaskedStr)
    request = oauth.authorization_url()
    for value in (request.state, request.code_verifier, request.nonce or ""):
        assert isinstance(value, MaskedStr) or not value
