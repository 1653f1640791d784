from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.flows import json_response

from sfoauth_core.exceptions import (
    InvalidGrantError,
    MalformedResponseError,
    OAuthProtocolError,
)
from sfoauth_core.flows._base import (
    MAX_RESPONSE_BYTES,
    HttpRequest,
    HttpResponse,
    parse_json_object,
    prepare_token_request,
)


@pytest.mark.parametrize(
    "response, message",
    [
        (HttpResponse(200, {}, b""), "empty"),
        (HttpResponse(200, {"content-type": "text/html"}, b"<html/>"), "HTML"),
        (HttpResponse(200, {}, b"not json"), "not JSON"),
        (HttpResponse(200, {}, b"[1, 2]"), "not a JSON object"),
        (HttpResponse(200, {}, b"{" + b" " * MAX_RESPONSE_BYTES + b"}"), "too large"),
    ],
)
def test_malformed_bodies(response, message):
    with pytest.raises(MalformedResponseError, match=message):
        parse_json_object(response)


def test_error_body_becomes_typed_error():
    with pytest.raises(InvalidGrantError) as info:
        parse_json_object(
            json_response(400, {"error": "invalid_grant", "error_description": "x"})
        )
    assert info.value.status_code == 400 and info.value.description == "x"


def test_unknown_error_code_is_kept_verbatim():
    with pytest.raises(OAuthProtocolError) as info:
        parse_json_object(json_response(400, {"error": "brand_new_code"}))
    assert info.value.error == "brand_new_code"


def test_error_status_without_error_field():
    with pytest.raises(OAuthProtocolError, match="http_401"):
        parse_json_object(json_response(401, {"message": "nope"}))


@given(st.binary(max_size=300))
def test_any_bytes_give_a_typed_error_or_a_dict(body):
    try:
        result = parse_json_object(HttpResponse(200, {}, body))
    except (MalformedResponseError, OAuthProtocolError):
        return
    assert isinstance(result, dict)
    assert json.loads(body.decode("utf-8", "replace")) == result


def test_request_repr_hides_body_and_headers():
    request = prepare_token_request(
        "https://login.salesforce.com/services/oauth2/token",
        {"client_secret": "TOPSECRET"},
        headers={"Authorization": "Basic SECRETHEADER"},
    )
    assert "TOPSECRET" not in repr(request) and "SECRETHEADER" not in repr(request)
    assert isinstance(request, HttpRequest)
    assert request.headers["Accept"] == "application/json"
