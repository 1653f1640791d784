"""Username-password flow (reference 4.9)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest

from sfoauth_core.config import ConnectedApp
from sfoauth_core.exceptions import (
    ConfigurationError,
    InsecureFlowWarning,
    InvalidGrantError,
    SalesforceUnavailableError,
    SFOAuthError,
    TransportError,
    UnsupportedGrantTypeError,
)
from sfoauth_core.flows._base import HttpRequest, HttpResponse
from sfoauth_core.flows.password import password_grant

CLIENT_ID = "3MVG9Example"
SECRET = "1F2E3D4C5B6A"
USERNAME = "jane@acme.com"
PASSWORD = "Secr3t"
SECURITY_TOKEN = "XXXXXXXXXXXXXXXXXXXX"
ID_URL = "https://login.salesforce.com/id/00DXX0000001abcEAA/005XX000001xyzQAAA"
ISSUED_AT = "1767225600123"


def _signature(secret: str) -> str:
    mac = hmac.new(secret.encode(), (ID_URL + ISSUED_AT).encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def _json(status: int, body: Any) -> HttpResponse:
    return HttpResponse(
        status,
        {"content-type": "application/json;charset=UTF-8"},
        json.dumps(body).encode(),
    )


def _start(app: ConnectedApp, **kwargs: Any) -> tuple[Any, HttpRequest]:
    with pytest.warns(InsecureFlowWarning):
        flow = password_grant(app, USERNAME, PASSWORD, **kwargs)
    request = next(flow)
    return flow, request


@pytest.fixture
def app() -> ConnectedApp:
    return ConnectedApp(client_id=CLIENT_ID, client_secret=SECRET)


def test_warns_that_the_flow_is_for_development_only(app):
    with pytest.warns(InsecureFlowWarning) as record:
        password_grant(app, USERNAME, PASSWORD)
    message = str(record[0].message)
    assert "development only" in message
    assert "Summer '23" in message
    assert "PKCE" in message
    assert "client credentials" in message
    assert PASSWORD not in message
    assert USERNAME not in message


def test_request_fields_with_security_token(app):
    _, request = _start(app, security_token=SECURITY_TOKEN)

    assert request.method == "POST"
    assert request.url == "https://login.salesforce.com/services/oauth2/token"
    assert request.params is None
    assert dict(request.form) == {
        "grant_type": "password",
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
        "username": USERNAME,
        "password": "Secr3tXXXXXXXXXXXXXXXXXXXX",
    }
    assert PASSWORD not in repr(request)
    assert SECURITY_TOKEN not in repr(request)


def test_without_security_token_or_secret():
    public_app = ConnectedApp(
        client_id=CLIENT_ID, login_url="https://test.salesforce.com"
    )
    _, request = _start(public_app)

    assert request.url == "https://test.salesforce.com/services/oauth2/token"
    assert dict(request.form) == {
        "grant_type": "password",
        "client_id": CLIENT_ID,
        "username": USERNAME,
        "password": PASSWORD,
    }


def test_success(app):
    flow, _ = _start(app)
    body = {
        "access_token": "00DXX0000001abc!AQ0AQExample",
        "instance_url": "https://acme.my.salesforce.com",
        "id": ID_URL,
        "token_type": "Bearer",
        "issued_at": ISSUED_AT,
        "signature": _signature(SECRET),
    }
    with pytest.raises(StopIteration) as stop:
        flow.send(_json(200, body))
    token = stop.value.value

    assert token.access_token == "00DXX0000001abc!AQ0AQExample"
    assert token.refresh_token is None
    assert token.scopes == ()
    assert token.org_id == "00DXX0000001abcEAA"
    assert token.user_id == "005XX000001xyzQAAA"
    assert token.issued_at == pytest.approx(1767225600.123)


def test_authentication_failure_has_a_hint_and_no_password(app):
    flow, _ = _start(app, security_token=SECURITY_TOKEN)
    with pytest.raises(InvalidGrantError) as excinfo:
        flow.send(
            _json(
                400,
                {
                    "error": "invalid_grant",
                    "error_description": "authentication failure",
                },
            )
        )
    error = excinfo.value
    assert error.status_code == 400
    assert error.description == "authentication failure"
    assert error.hint is not None and "security token" in error.hint
    for text in (str(error), repr(error)):
        assert PASSWORD not in text
        assert SECURITY_TOKEN not in text


def test_blocked_flow_is_an_unsupported_grant_type(app):
    flow, _ = _start(app)
    with pytest.raises(UnsupportedGrantTypeError) as excinfo:
        flow.send(
            _json(
                400,
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant type not supported",
                },
            )
        )
    assert excinfo.value.hint is not None and "username-password" in excinfo.value.hint


def test_never_retried_on_5xx(app):
    flow, _ = _start(app)
    with pytest.raises(SalesforceUnavailableError) as excinfo:
        flow.send(_json(503, {}))
    assert excinfo.value.status_code == 503


def test_never_retried_on_transport_errors(app):
    flow, _ = _start(app)
    with pytest.raises(TransportError):
        flow.throw(TransportError("read timeout"))


@pytest.mark.parametrize(
    ("username", "password", "setting"),
    [
        ("", PASSWORD, "username"),
        ("  ", PASSWORD, "username"),
        (USERNAME, "", "password"),
    ],
)
def test_empty_credentials_are_refused_before_any_request(
    app, username, password, setting
):
    with pytest.warns(InsecureFlowWarning):
        flow = password_grant(app, username, password)
    with pytest.raises(ConfigurationError) as excinfo:
        next(flow)
    assert excinfo.value.setting == setting


def test_no_error_message_leaks_the_password(app):
    flow, _ = _start(app, security_token=SECURITY_TOKEN)
    with pytest.raises(SFOAuthError) as excinfo:
        flow.send(
            HttpResponse(200, {"content-type": "text/html"}, b"<html>down</html>")
        )
    assert PASSWORD not in str(excinfo.value)


def test_security_token_must_be_a_string(app):
    with pytest.warns(InsecureFlowWarning):
        flow = password_grant(app, USERNAME, PASSWORD, security_token=None)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError) as excinfo:
        next(flow)
    assert excinfo.value.setting == "security_token"


def test_the_driver_must_answer_the_request(app):
    flow, _ = _start(app)
    with pytest.raises(TypeError):
        flow.send(None)


def test_every_use_names_the_retirement_and_the_replacements(app):
    """Reference 15.6: the warning carries the retirement date and where to go."""
    import warnings

    from sfoauth_core.exceptions import InsecureFlowWarning
    from sfoauth_core.flows.password import password_grant

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        password_grant(app, "jane@acme.com", "pw")
    [warning] = [w for w in caught if issubclass(w.category, InsecureFlowWarning)]
    text = str(warning.message)
    assert "Winter '27" in text and "2027-02-20" in text
    assert "JWT bearer" in text and "client credentials" in text


def test_warns_once_per_process_whatever_the_filters(app):
    """Issue 12 item 4: one warning per process, even under an "always" filter and
    from different call sites; the registry is ours, not the warnings module's."""
    import warnings

    from sfoauth_core.exceptions import InsecureFlowWarning
    from sfoauth_core.flows.password import password_grant

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        password_grant(app, "jane@acme.com", "pw")
        password_grant(app, "jane@acme.com", "pw")
        for _ in range(3):
            password_grant(app, "other@acme.com", "pw2")
    retirement = [w for w in caught if issubclass(w.category, InsecureFlowWarning)]
    assert len(retirement) == 1
    assert retirement[0].filename == __file__  # points at the caller


def test_warns_once_across_threads(app):
    import threading
    import warnings

    from sfoauth_core.exceptions import InsecureFlowWarning
    from sfoauth_core.flows.password import password_grant

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        threads = [
            threading.Thread(target=password_grant, args=(app, "j@acme.com", "pw"))
            for _ in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sum(issubclass(w.category, InsecureFlowWarning) for w in caught) == 1


def test_reset_makes_the_next_use_warn_again(app):
    import warnings

    from sfoauth_core.exceptions import InsecureFlowWarning
    from sfoauth_core.flows.password import password_grant, reset_retirement_warning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        password_grant(app, "jane@acme.com", "pw")
        reset_retirement_warning()
        password_grant(app, "jane@acme.com", "pw")
    assert sum(issubclass(w.category, InsecureFlowWarning) for w in caught) == 2
