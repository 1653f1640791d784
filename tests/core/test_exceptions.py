"""Tests for sfoauth_core.exceptions: the error tree, wire-code mapping and hints.

Reference sections 2.6 (error body format) and 2.7 (codes and descriptions).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sfoauth_core import exceptions as exc_module
from sfoauth_core.exceptions import (
    ERROR_CLASSES,
    AccessDeniedError,
    AppNotFoundError,
    AuthorizationPendingError,
    ConfigurationError,
    DeviceFlowTimeoutError,
    ExpiredTokenError,
    FlowCancelledError,
    FlowError,
    InactiveOrgError,
    InactiveUserError,
    InsecureFlowWarning,
    InvalidAppAccessError,
    InvalidClientError,
    InvalidClientIdError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    InvalidTokenError,
    MalformedResponseError,
    OAuthProtocolError,
    PKCEError,
    RateLimitExceededError,
    ReauthorizationRequired,
    ResponseError,
    SalesforceUnavailableError,
    SFOAuthConfigurationError,
    SFOAuthError,
    SignatureError,
    SlowDownError,
    StateMismatchError,
    StorageError,
    TokenNotFoundError,
    TransportError,
    UnsupportedGrantTypeError,
    UnsupportedTokenTypeError,
    UntrustedHostError,
    VersionConflictError,
    hint_for,
    raise_for_oauth_error,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "salesforce"

EXPECTED_CLASSES: dict[str, type[OAuthProtocolError]] = {
    "invalid_request": InvalidRequestError,
    "invalid_client_id": InvalidClientIdError,
    "invalid_client": InvalidClientError,
    "invalid_client_credentials": InvalidClientError,
    "app_not_found": AppNotFoundError,
    "OAUTH_EC_APP_NOT_FOUND": AppNotFoundError,
    "OAUTH_APP_ACCESS_DENIED": InvalidAppAccessError,
    "invalid_grant": InvalidGrantError,
    "invalid_app_access": InvalidAppAccessError,
    "invalid_scope": InvalidScopeError,
    "unsupported_grant_type": UnsupportedGrantTypeError,
    "inactive_user": InactiveUserError,
    "inactive_org": InactiveOrgError,
    "rate_limit_exceeded": RateLimitExceededError,
    "invalid_token": InvalidTokenError,
    "unsupported_token_type": UnsupportedTokenTypeError,
    "authorization_pending": AuthorizationPendingError,
    "slow_down": SlowDownError,
    "access_denied": AccessDeniedError,
    "expired_token": ExpiredTokenError,
}


def _raised(payload: dict[str, Any], **kwargs: Any) -> OAuthProtocolError:
    with pytest.raises(OAuthProtocolError) as info:
        raise_for_oauth_error(payload, **kwargs)
    return info.value


# ------------------------------------------------------------ the tree


@pytest.mark.parametrize(
    ("cls", "parent"),
    [
        (ConfigurationError, SFOAuthError),
        (FlowError, SFOAuthError),
        (StateMismatchError, FlowError),
        (PKCEError, FlowError),
        (DeviceFlowTimeoutError, FlowError),
        (FlowCancelledError, FlowError),
        (TransportError, SFOAuthError),
        (SalesforceUnavailableError, TransportError),
        (ResponseError, SFOAuthError),
        (MalformedResponseError, ResponseError),
        (UntrustedHostError, ResponseError),
        (SignatureError, ResponseError),
        (OAuthProtocolError, SFOAuthError),
        (ExpiredTokenError, OAuthProtocolError),
        (SFOAuthConfigurationError, ConfigurationError),
        (VersionConflictError, StorageError),
        (TokenNotFoundError, SFOAuthError),
        (ReauthorizationRequired, SFOAuthError),
        (StorageError, SFOAuthError),
        (SFOAuthError, Exception),
        (InsecureFlowWarning, UserWarning),
    ],
)
def test_error_tree(cls: type[BaseException], parent: type[BaseException]) -> None:
    assert issubclass(cls, parent)


def test_protocol_errors_are_not_transport_or_response_errors() -> None:
    for cls in set(ERROR_CLASSES.values()):
        assert issubclass(cls, OAuthProtocolError)
        assert not issubclass(cls, (TransportError, ResponseError, ConfigurationError))


def test_extra_attributes() -> None:
    unavailable = SalesforceUnavailableError("down", status_code=503)
    assert unavailable.status_code == 503
    malformed = MalformedResponseError("html page", status_code=200)
    assert malformed.status_code == 200
    assert str(malformed) == "html page"
    reauth = ReauthorizationRequired("log in again", reason="invalid_grant")
    assert reauth.reason == "invalid_grant"


def test_public_names_are_exported() -> None:
    for name in exc_module.__all__:
        assert hasattr(exc_module, name)


# ------------------------------------------------------------ ConfigurationError


def test_configuration_error_format() -> None:
    error = ConfigurationError("login_url", "must be an https:// URL")
    assert str(error) == "login_url: must be an https:// URL"
    assert error.setting == "login_url"
    assert error.problem == "must be an https:// URL"
    assert isinstance(error, SFOAuthError)


# ------------------------------------------------------------ wire-code mapping


def test_error_classes_table() -> None:
    assert ERROR_CLASSES == EXPECTED_CLASSES


@pytest.mark.parametrize(("code", "cls"), sorted(EXPECTED_CLASSES.items()))
def test_raise_for_oauth_error_maps_each_wire_code(
    code: str, cls: type[OAuthProtocolError]
) -> None:
    payload = {"error": code, "error_description": "some description"}
    error = _raised(payload, status_code=400)
    assert type(error) is cls
    # verbatim, even for the invalid_client_credentials alias
    assert error.error == code
    assert error.description == "some description"
    assert error.status_code == 400


@pytest.mark.parametrize(
    "code",
    [
        "redirect_uri_mismatch",
        "redirect_uri_missing",
        "immediate_unsuccessful",
        "unsupported_response_type",
        "brand_new_code",
        "INVALID_GRANT",  # codes are case-sensitive on the wire
    ],
)
def test_unknown_codes_raise_the_base_class_verbatim(code: str) -> None:
    error = _raised({"error": code, "error_description": "d"}, status_code=400)
    assert type(error) is OAuthProtocolError
    assert error.error == code
    assert str(error).startswith(f"{code}: d")


def test_error_carries_status_description_uri_and_response() -> None:
    payload = {
        "error": "invalid_grant",
        "error_description": "authentication failure",
        "error_uri": "https://help.salesforce.com/x",
        "extra": 1,
    }
    error = _raised(payload, status_code=400)
    assert isinstance(error, InvalidGrantError)
    assert error.status_code == 400
    assert error.description == "authentication failure"
    assert error.uri == "https://help.salesforce.com/x"
    assert error.response == payload
    assert error.response is not payload  # a copy


def test_missing_description_and_status() -> None:
    error = _raised({"error": "invalid_scope"})
    assert isinstance(error, InvalidScopeError)
    assert error.description == ""
    assert error.uri is None
    assert error.status_code is None
    assert str(error) == "invalid_scope"


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"error": ""},
        {"error": None},
        {"access_token": "x"},
        {"error_description": "x"},
    ],
)
def test_no_error_field_raises_nothing(payload: dict[str, Any]) -> None:
    raise_for_oauth_error(payload, status_code=200)  # does not raise


def test_default_error_when_constructed_directly() -> None:
    assert InvalidGrantError().error == "invalid_grant"
    assert OAuthProtocolError().error == "oauth_error"
    assert InvalidGrantError(description="x").description == "x"


# ------------------------------------------------------------ hints

# Every description in the reference's table (2.7) that has a known fix, with a word the
# hint must contain so that a wrong hint fails the test.
HINTED = [
    ("invalid_grant", "user hasn't approved this consumer", "pre-authorize"),
    ("invalid_grant", "Audience validation failed", "audience"),
    ("invalid_grant", "audience is invalid", "audience"),
    ("invalid_grant", "expired access/refresh token", "login"),
    ("invalid_grant", "no client credentials user enabled", "run-as user"),
    ("invalid_grant", "request not supported on this domain", "My Domain"),
    ("invalid_grant", "External client app is not installed in this org", "install"),
    ("invalid_grant", "IP restricted or invalid login hours", "IP"),
    ("invalid_grant", "authentication failure", "password"),
    ("invalid_grant", "invalid user credentials", "password"),
    ("invalid_client", "invalid client credentials", "secret"),
    ("invalid_client_id", "client identifier invalid", "client_id"),
    ("invalid_client_id", "Client identifier invalid", "client_id"),
    (
        "invalid_app_access",
        "user is not admin approved to access this app",
        "permission",
    ),
    ("inactive_user", "user is inactive", "deactivated"),
    ("inactive_org", "org is locked, closed, or suspended", "locked"),
    ("unsupported_grant_type", "grant type not supported", "not enabled"),
]


@pytest.mark.parametrize(("code", "description", "word"), HINTED)
def test_hint_for_well_known_descriptions(
    code: str, description: str, word: str
) -> None:
    for variant in (
        description,
        description.lower(),
        description.upper(),
        description.capitalize(),
        f"  {description}  ",
    ):
        hint = hint_for(code, variant)
        assert hint is not None, variant
        assert word.lower() in hint.lower()


@pytest.mark.parametrize(("code", "description", "word"), HINTED)
def test_hint_is_on_the_raised_error_and_in_its_message(
    code: str, description: str, word: str
) -> None:
    error = _raised({"error": code, "error_description": description}, status_code=400)
    assert error.hint == hint_for(code, description)
    assert error.hint is not None
    assert str(error) == f"{code}: {description} ({error.hint})"


@pytest.mark.parametrize(
    ("code", "description"),
    [
        ("invalid_grant", ""),
        ("invalid_grant", "something nobody documented"),
        ("invalid_grant", "client identifier invalid"),  # right text, wrong code
        ("invalid_request", "authentication failure"),
        ("invalid_client", "user hasn't approved this consumer"),
        ("invalid_request", "HTTPS required"),
        ("brand_new_code", "audience is invalid"),
        ("invalid_scope", "requested scope is invalid, unknown, or malformed"),
    ],
)
def test_hint_for_returns_none_otherwise(code: str, description: str) -> None:
    assert hint_for(code, description) is None
    assert _raised({"error": code, "error_description": description}).hint is None


def test_every_error_fixture_maps_to_its_class_and_hint() -> None:
    paths = sorted(FIXTURES.glob("error_*.json"))
    assert len(paths) >= 10
    for path in paths:
        payload = json.loads(path.read_text())
        error = _raised(payload, status_code=400)
        assert type(error) is EXPECTED_CLASSES[payload["error"]], path.name
        assert error.description == payload["error_description"]
        if payload["error"] not in ("authorization_pending", "rate_limit_exceeded"):
            assert error.hint is not None, path.name


# ------------------------------------------------------------ sanitising


def test_control_characters_in_the_body_are_sanitised() -> None:
    payload = {
        "error": "invalid_grant",
        "error_description": "bad\x00thing\r\nInjected: yes\x1b[31m",
        "error_uri": "https://x.example/\nSet-Cookie: a=b",
    }
    error = _raised(payload, status_code=400)
    assert error.description == "bad?thing??Injected: yes?[31m"
    assert error.uri == "https://x.example/?Set-Cookie: a=b"
    assert str(error).isprintable()


def test_control_characters_in_an_unknown_code_are_sanitised() -> None:
    error = _raised({"error": "weird\ncode", "error_description": "x"})
    assert type(error) is OAuthProtocolError
    assert error.error == "weird?code"


def test_descriptions_are_capped() -> None:
    error = _raised({"error": "invalid_grant", "error_description": "x" * 5000})
    assert error.description == "x" * 500


def test_non_string_fields_are_stringified() -> None:
    error = _raised({"error": 42, "error_description": ["a"]})
    assert error.error == "42"
    assert error.description == "['a']"


@given(
    code=st.one_of(st.sampled_from(sorted(EXPECTED_CLASSES)), st.text(min_size=1)),
    description=st.text(),
)
def test_any_error_message_is_printable(code: str, description: str) -> None:
    try:
        raise_for_oauth_error({"error": code, "error_description": description})
    except OAuthProtocolError as error:
        assert str(error).isprintable()
        assert error.description.isprintable()
        assert len(error.description) <= 500
    else:  # pragma: no cover - a non-empty code always raises
        raise AssertionError("nothing raised")


def test_one_name_for_expired_token_the_other_deprecated():
    """Issue 11.7: ``TokenExpiredError`` and ``ExpiredTokenError`` were near-homonyms;
    the wire code's name stays, the other is a deprecated alias of it."""
    import sfoauth_core.exceptions as module

    assert "TokenExpiredError" not in module.__all__
    with pytest.warns(DeprecationWarning, match="ExpiredTokenError"):
        alias = module.TokenExpiredError
    assert alias is ExpiredTokenError
    with pytest.raises(AttributeError):
        module.NoSuchError  # noqa: B018


def test_errors_of_the_adapters_and_stores_live_in_the_tree():
    """Issue 11.7: every error sfoauth raises is exported by ``sfoauth_core.exceptions``
    and derives from ``SFOAuthError``; the adapters and stores re-export them."""
    from sfoauth_core.storage import VersionConflictError as FromStorage
    from sfoauth_fastapi import SFOAuthConfigurationError as FromFastapi

    assert FromStorage is VersionConflictError
    assert FromFastapi is SFOAuthConfigurationError
    assert issubclass(SFOAuthConfigurationError, SFOAuthError)
    assert issubclass(VersionConflictError, SFOAuthError)
    error = SFOAuthConfigurationError(["[x.E001] app: wrong (hint: fix)"])
    assert error.issues == ["[x.E001] app: wrong (hint: fix)"] and "E001" in str(error)
