from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

import pytest
from support.flows import (
    finish,
    first_request,
    json_response,
    make_app,
    token_body,
)

from sfoauth_core.exceptions import (
    AccessDeniedError,
    ConfigurationError,
    FlowError,
    InvalidGrantError,
    InvalidRequestError,
    PKCEError,
    SalesforceUnavailableError,
    SignatureError,
    StateMismatchError,
    UntrustedHostError,
)
from sfoauth_core.flows.web_server import (
    exchange_code,
    parse_authorization_response,
    prepare_authorization_url,
)


class TestAuthorizationUrl:
    def test_parameters_match_the_reference(self):
        request = prepare_authorization_url(
            make_app(), prompt="login", login_hint="jane"
        )
        parts = urlsplit(request.url)
        assert (parts.scheme, parts.netloc, parts.path) == (
            "https",
            "login.salesforce.com",
            "/services/oauth2/authorize",
        )
        q = {k: v[0] for k, v in parse_qs(parts.query).items()}
        assert q["response_type"] == "code"
        assert q["client_id"] == "3MVG9Example"
        assert q["redirect_uri"] == "https://app.example.com/callback"
        assert q["scope"] == "api refresh_token"
        assert q["state"] == request.state
        assert q["prompt"] == "login"
        assert q["login_hint"] == "jane"
        # Salesforce's own clients send no method: S256 is implied.
        assert "code_challenge_method" not in q
        digest = hashlib.sha256(request.code_verifier.encode()).digest()
        assert (
            q["code_challenge"]
            == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        )
        assert request.code_verifier not in request.url
        assert len(request.state) >= 43  # 256 bits, base64url

    def test_each_request_gets_fresh_state_and_verifier(self):
        app = make_app()
        a, b = prepare_authorization_url(app), prepare_authorization_url(app)
        assert a.state != b.state and a.code_verifier != b.code_verifier

    def test_site_url_keeps_its_path(self):
        app = make_app(login_url="https://acme.my.site.com/customers")
        url = prepare_authorization_url(app).url
        assert url.startswith(
            "https://acme.my.site.com/customers/services/oauth2/authorize?"
        )

    def test_openid_scope_gets_a_nonce(self):
        request = prepare_authorization_url(make_app(), scopes=["openid", "api"])
        assert request.nonce and f"nonce={request.nonce}" in request.url

    def test_per_request_scopes_do_not_mutate_the_app(self):
        app = make_app()
        prepare_authorization_url(app, scopes=["full"])
        assert app.scopes == ("api", "refresh_token")

    @pytest.mark.parametrize(
        "kwargs",
        [{"prompt": "none"}, {"display": "fullscreen"}, {"prompt": "login evil"}],
    )
    def test_unknown_options_are_configuration_errors(self, kwargs):
        with pytest.raises(ConfigurationError):
            prepare_authorization_url(make_app(), **kwargs)

    def test_redirect_uri_is_required(self):
        with pytest.raises(ConfigurationError, match="redirect_uri"):
            prepare_authorization_url(make_app(redirect_uri=None))


class TestCallback:
    def test_code_is_url_decoded_once(self):
        url = "https://app.example.com/callback?code=aPrxExampleCode%3D%3D&state=s1"
        assert (
            parse_authorization_response(url, expected_state="s1")
            == "aPrxExampleCode=="
        )

    def test_state_checked_before_error(self):
        with pytest.raises(StateMismatchError):
            parse_authorization_response(
                "?error=access_denied&state=other", expected_state="s1"
            )

    def test_error_redirect_raises_typed_error(self):
        with pytest.raises(AccessDeniedError) as info:
            parse_authorization_response(
                {
                    "error": "access_denied",
                    "error_description": "end-user denied",
                    "state": "s",
                },
                expected_state="s",
            )
        assert info.value.description == "end-user denied"

    @pytest.mark.parametrize("state", [None, "", "s2"])
    def test_missing_or_wrong_state(self, state):
        params = {"code": "c"}
        if state is not None:
            params["state"] = state
        with pytest.raises(StateMismatchError):
            parse_authorization_response(params, expected_state="s1")

    def test_no_expected_state_is_an_error(self):
        with pytest.raises(StateMismatchError):
            parse_authorization_response(
                {"code": "c", "state": "x"}, expected_state=None
            )

    def test_iss_must_match_exactly(self):
        params = {"code": "c", "state": "s", "iss": "https://evil.example"}
        with pytest.raises(FlowError):
            parse_authorization_response(
                params,
                expected_state="s",
                expected_issuer="https://login.salesforce.com",
            )
        params["iss"] = "https://login.salesforce.com"
        assert (
            parse_authorization_response(
                params,
                expected_state="s",
                expected_issuer="https://login.salesforce.com",
            )
            == "c"
        )

    def test_missing_code(self):
        with pytest.raises(FlowError, match="no authorization code"):
            parse_authorization_response({"state": "s"}, expected_state="s")


class TestExchange:
    def test_confidential_client_sends_secret_and_verifier(self):
        verifier = "v" * 64
        flow = exchange_code(make_app(), "aPrx==", code_verifier=verifier)
        request = first_request(flow)
        assert request.method == "POST"
        assert request.url == "https://login.salesforce.com/services/oauth2/token"
        assert request.params is None  # nothing in the query
        assert dict(request.form) == {
            "grant_type": "authorization_code",
            "code": "aPrx==",
            "redirect_uri": "https://app.example.com/callback",
            "client_id": "3MVG9Example",
            "client_secret": "1F2E3D4C5B6A",
            "code_verifier": verifier,
        }
        token = finish(flow, json_response(200, token_body()))
        assert token.access_token == "00DXX0000001abc!AQ0AQExampleAccessToken"
        assert token.refresh_token == "5Aep861ExampleRefreshToken"
        assert token.org_id == "00DXX0000001abcEAA"
        assert token.user_id == "005XX000001xyzQAA"
        assert token.issued_at == pytest.approx(1767225600.123)
        assert token.expires_at is None
        assert token.scopes == ("refresh_token", "api")

    def test_public_client_sends_no_secret(self):
        app = make_app(client_secret=None)
        request = first_request(exchange_code(app, "c", code_verifier="v" * 43))
        assert "client_secret" not in request.form
        assert request.form["code_verifier"] == "v" * 43

    def test_long_verifier_accepted(self):
        first_request(exchange_code(make_app(), "c", code_verifier="a" * 171))

    @pytest.mark.parametrize("verifier", ["", "short", "x" * 42, "bad verifier" * 5])
    def test_malformed_verifier(self, verifier):
        with pytest.raises(PKCEError):
            first_request(exchange_code(make_app(), "c", code_verifier=verifier))

    def test_bad_signature_rejected(self):
        flow = exchange_code(make_app(), "c", code_verifier="v" * 43)
        first_request(flow)
        with pytest.raises(SignatureError):
            finish(flow, json_response(200, token_body(secret="another-secret")))

    def test_untrusted_instance_url_rejected(self):
        flow = exchange_code(make_app(), "c", code_verifier="v" * 43)
        first_request(flow)
        with pytest.raises(UntrustedHostError):
            finish(
                flow,
                json_response(200, token_body(instance_url="https://evil.example")),
            )

    def test_invalid_grant_has_hint(self):
        flow = exchange_code(make_app(), "c", code_verifier="v" * 43)
        first_request(flow)
        with pytest.raises(InvalidGrantError) as info:
            finish(
                flow,
                json_response(
                    400,
                    {
                        "error": "invalid_grant",
                        "error_description": "authentication failure",
                    },
                ),
            )
        assert info.value.status_code == 400
        assert info.value.hint

    def test_wrong_verifier_is_invalid_request(self):
        flow = exchange_code(make_app(), "c", code_verifier="v" * 43)
        first_request(flow)
        with pytest.raises(InvalidRequestError):
            finish(
                flow,
                json_response(
                    400,
                    {
                        "error": "invalid_request",
                        "error_description": "invalid code verifier",
                    },
                ),
            )

    def test_html_maintenance_page(self):
        from sfoauth_core.flows._base import HttpResponse

        flow = exchange_code(make_app(), "c", code_verifier="v" * 43)
        first_request(flow)
        with pytest.raises(SalesforceUnavailableError, match="HTTP 503"):
            finish(
                flow,
                HttpResponse(503, {"content-type": "text/html"}, b"<html>down</html>"),
            )

    def test_empty_code(self):
        with pytest.raises(FlowError):
            first_request(exchange_code(make_app(), "", code_verifier=None))
