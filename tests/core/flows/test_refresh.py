from __future__ import annotations

import pytest
from support.flows import (
    ID_URL,
    drive,
    finish,
    first_request,
    json_response,
    make_app,
    token_body,
)

from sfoauth_core import Token
from sfoauth_core.exceptions import (
    FlowError,
    InvalidClientError,
    InvalidGrantError,
    ResponseError,
    SalesforceUnavailableError,
    TransportError,
)
from sfoauth_core.flows._base import HttpResponse, RetryPolicy, Wait, compute_signature
from sfoauth_core.flows.refresh import refresh_token


def stored_token(**kw):
    values = dict(
        access_token="00DXX0000001abc!old",
        refresh_token="5Aep861Original",
        instance_url="https://acme.my.salesforce.com",
        id_url=ID_URL,
        org_id="00DXX0000001abcEAA",
        user_id="005XX000001xyzQAA",
        scopes=("api", "refresh_token"),
    )
    values.update(kw)
    return Token(**values)


def refresh_body(**extra):
    body = token_body()
    body.pop("refresh_token")
    body["access_token"] = "00DXX0000001abc!new"
    body.update(extra)
    return body


def test_request_matches_the_reference():
    request = first_request(refresh_token(make_app(), stored_token()))
    assert request.method == "POST"
    assert request.url == "https://login.salesforce.com/services/oauth2/token"
    assert dict(request.form) == {
        "grant_type": "refresh_token",
        "refresh_token": "5Aep861Original",
        "client_id": "3MVG9Example",
        "client_secret": "1F2E3D4C5B6A",
    }
    assert request.headers["Accept"] == "application/json"


def test_public_client_omits_the_secret():
    request = first_request(refresh_token(make_app(client_secret=None), "5Aep"))
    assert "client_secret" not in request.form


def test_keeps_old_refresh_token_without_rotation():
    flow = refresh_token(make_app(), stored_token())
    first_request(flow)
    token = finish(flow, json_response(200, refresh_body()))
    assert token.access_token == "00DXX0000001abc!new"
    assert token.refresh_token == "5Aep861Original"
    assert token.instance_url == "https://acme.my.salesforce.com"


def test_takes_the_rotated_refresh_token():
    flow = refresh_token(make_app(), stored_token())
    first_request(flow)
    token = finish(
        flow, json_response(200, refresh_body(refresh_token="5Aep861Rotated"))
    )
    assert token.refresh_token == "5Aep861Rotated"


def test_bare_refresh_token_string():
    flow = refresh_token(make_app(), "5Aep861Bare")
    assert first_request(flow).form["refresh_token"] == "5Aep861Bare"
    token = finish(flow, json_response(200, refresh_body()))
    # Issue 11.7: not rotated, so the string given stays the grant's refresh token.
    assert token.refresh_token == "5Aep861Bare"
    assert token.token_url == "https://login.salesforce.com/services/oauth2/token"


def test_bare_refresh_token_string_rotated():
    flow = refresh_token(make_app(), "5Aep861Bare")
    first_request(flow)
    token = finish(
        flow, json_response(200, refresh_body(refresh_token="5Aep861Rotated"))
    )
    assert token.refresh_token == "5Aep861Rotated"


def test_no_refresh_token():
    with pytest.raises(FlowError):
        first_request(refresh_token(make_app(), stored_token(refresh_token=None)))


def test_identity_switch_is_rejected():
    other = "https://login.salesforce.com/id/00DXX0000001abcEAA/005XX000009zzzQAA"
    body = refresh_body()
    body["id"] = other
    body["signature"] = compute_signature("1F2E3D4C5B6A", other, body["issued_at"])
    flow = refresh_token(make_app(), stored_token())
    first_request(flow)
    with pytest.raises(ResponseError, match="different org or user"):
        finish(flow, json_response(200, body))


def test_invalid_grant_is_not_retried():
    flow = refresh_token(make_app(), stored_token())
    first_request(flow)
    with pytest.raises(InvalidGrantError) as info:
        finish(
            flow,
            json_response(
                400,
                {
                    "error": "invalid_grant",
                    "error_description": "expired access/refresh token",
                },
            ),
        )
    assert "login flow again" in str(info.value)


def test_invalid_client():
    flow = refresh_token(make_app(), stored_token())
    first_request(flow)
    with pytest.raises(InvalidClientError):
        finish(
            flow,
            json_response(
                400,
                {
                    "error": "invalid_client",
                    "error_description": "invalid client credentials",
                },
            ),
        )


def test_retries_5xx_with_backoff_and_retry_after():
    policy = RetryPolicy(attempts=4, base_delay=0.5, max_delay=8)
    flow = refresh_token(make_app(), stored_token(), retry=policy)
    token, steps = drive(
        flow,
        [
            HttpResponse(503, {}, b""),
            HttpResponse(429, {"retry-after": "7"}, b""),
            TransportError("timeout"),
            json_response(200, refresh_body()),
        ],
    )
    waits = [s.seconds for s in steps if isinstance(s, Wait)]
    assert waits == [0.5, 7.0, 2.0]
    assert token.access_token == "00DXX0000001abc!new"
    # every attempt carries the same refresh token: it was never dropped
    assert {s.form["refresh_token"] for s in steps if not isinstance(s, Wait)} == {
        "5Aep861Original"
    }


def test_gives_up_after_bounded_attempts():
    flow = refresh_token(make_app(), stored_token(), retry=RetryPolicy(attempts=2))
    with pytest.raises(SalesforceUnavailableError) as info:
        drive(flow, [HttpResponse(503, {}, b""), HttpResponse(502, {}, b"")])
    assert info.value.status_code == 502


def test_gives_up_after_transport_errors():
    flow = refresh_token(make_app(), stored_token(), retry=RetryPolicy(attempts=2))
    with pytest.raises(SalesforceUnavailableError):
        drive(flow, [TransportError("a"), TransportError("b")])


def test_retry_after_is_capped():
    policy = RetryPolicy(attempts=2, max_retry_after=30)
    response = HttpResponse(503, {"retry-after": "86400"}, b"")
    assert policy.delay(0, response) == 30


def test_concurrent_refresh_rejection_is_its_own_retryable_error():
    """Reference 15.1: on a refresh grant, invalid_grant / expired authorization code
    means another refresh of this token is being processed: not a dead grant."""
    from sfoauth_core.exceptions import RefreshInProgressError

    flow = refresh_token(make_app(), stored_token())
    first_request(flow)
    with pytest.raises(RefreshInProgressError) as info:
        finish(
            flow,
            json_response(
                400,
                {
                    "error": "invalid_grant",
                    "error_description": "expired authorization code",
                },
            ),
        )
    assert not isinstance(info.value, InvalidGrantError)
    assert info.value.error == "invalid_grant"
    assert info.value.status_code == 400
    assert "5Aep861Original" not in str(info.value)
