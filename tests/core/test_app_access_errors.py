"""Reference 15.4-15.7: the errors of External Client Apps and app access, typed, with a
hint that says what to fix."""

from __future__ import annotations

import pytest

from sfoauth_core.exceptions import (
    AppNotFoundError,
    InvalidAppAccessError,
    InvalidClientIdError,
    InvalidGrantError,
    OAuthProtocolError,
    hint_for,
    raise_for_oauth_error,
)


def _raised(payload: dict[str, str]) -> OAuthProtocolError:
    with pytest.raises(OAuthProtocolError) as info:
        raise_for_oauth_error(payload, status_code=400)
    return info.value


@pytest.mark.parametrize("code", ["app_not_found", "OAUTH_EC_APP_NOT_FOUND"])
def test_app_not_found_is_typed_and_says_install_it_in_that_org(code: str) -> None:
    exc = _raised(
        {
            "error": code,
            "error_description": "External client app is not installed in this org",
        }
    )
    assert type(exc) is AppNotFoundError
    assert exc.error == code  # verbatim
    assert exc.hint is not None
    assert "install" in exc.hint and "org" in exc.hint
    assert exc.hint in str(exc)


def test_app_not_found_is_not_a_dead_grant() -> None:
    # A refresh answered app_not_found must not send the user back through login as
    # if the grant were dead: an administrator has to install the app.
    assert not issubclass(AppNotFoundError, InvalidGrantError)


@pytest.mark.parametrize(
    ("code", "description"),
    [
        ("invalid_app_access", "user is not admin approved to access this app"),
        ("invalid_app_access", "something Salesforce has not said before"),
        ("invalid_app_access", ""),
        ("OAUTH_APP_ACCESS_DENIED", ""),
        ("OAUTH_APP_ACCESS_DENIED", "whatever"),
    ],
)
def test_app_access_variants_are_typed_with_a_hint(code: str, description: str) -> None:
    payload = {"error": code}
    if description:
        payload["error_description"] = description
    exc = _raised(payload)
    assert type(exc) is InvalidAppAccessError
    assert exc.hint is not None
    assert "permission" in exc.hint


def test_the_uninstalled_app_hint_names_the_approval_permission() -> None:
    hint = hint_for("invalid_app_access", "")
    assert hint is not None and "Approve Uninstalled Connected Apps" in hint


def test_invalid_client_id_hint_mentions_propagation_of_new_apps() -> None:
    exc = _raised(
        {"error": "invalid_client_id", "error_description": "client identifier invalid"}
    )
    assert type(exc) is InvalidClientIdError
    assert exc.hint is not None
    assert "propagat" in exc.hint and "wait" in exc.hint
    assert "client_id" in exc.hint  # the other cause stays named


@pytest.mark.parametrize(
    "description",
    ["IP restricted or invalid login hours", "ip restricted", "IP RESTRICTED"],
)
def test_ip_refusals_name_the_servers_egress_ip_and_how_to_find_it(
    description: str,
) -> None:
    hint = hint_for("invalid_grant", description)
    assert hint is not None
    assert "egress IP" in hint
    assert "Login History" in hint  # how to find it, without any network look-up


@pytest.mark.parametrize(
    "description", ["audience is invalid", "Audience validation failed"]
)
def test_audience_hint_names_sandbox_and_my_domain_hosts(description: str) -> None:
    hint = hint_for("invalid_grant", description)
    assert hint is not None
    assert "https://test.salesforce.com" in hint
    assert ".my.salesforce.com" in hint
    assert ".sandbox.my.salesforce.com" in hint


def test_password_hints_say_ecas_never_allow_the_flow() -> None:
    for code, description in (
        ("invalid_grant", "authentication failure"),
        ("unsupported_grant_type", "grant type not supported"),
    ):
        hint = hint_for(code, description)
        assert hint is not None and "External Client Apps" in hint
