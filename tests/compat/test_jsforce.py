"""jsforce (Node) against the served emulator, each step as jsforce's docs show it:
web flow, a query at jsforce's default API version, identity() on a rebuilt
connection, sObject describe/CRUD, automatic refresh after an expiry, revoke and JWT
bearer with an uploaded X.509 certificate."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from sfoauth_core.testing import DEFAULT_USERNAME, EmulatorTLS, SalesforceEmulator

from .conftest import JsforceRunner, Served

pytestmark = pytest.mark.loopback


def oauth_args(served: Served, app: str = "web") -> dict[str, Any]:
    emulated = served.emu.apps[app]
    return {
        "loginUrl": served.base_url,
        "clientId": emulated.client_id,
        "clientSecret": emulated.client_secret,
        "redirectUri": emulated.callback_urls[0],
    }


def stored_tokens(served: Served) -> dict[str, Any]:
    """Tokens an app kept from an earlier login (no jsforce userInfo)."""
    body = served.emu.issue_tokens(
        "web", scopes="api refresh_token", issuer=served.base_url
    )
    return {
        "instanceUrl": served.base_url,
        "accessToken": body["access_token"],
        "refreshToken": body["refresh_token"],
    }


def test_web_flow(served: Served, jsforce: JsforceRunner) -> None:
    out = jsforce("web_flow", oauth_args(served))
    assert "error" not in out, out
    assert out["authorizationUrl"].startswith(
        served.base_url + "/services/oauth2/authorize?"
    )
    assert out["instanceUrl"] == served.base_url
    assert out["accessToken"] and out["refreshToken"]
    assert out["userInfo"]["id"] == served.emu.user.user_id
    assert out["userInfo"]["organizationId"] == served.emu.org.org_id
    assert served.emu.calls("authorization_code") == 1


def test_query_at_the_default_version(served: Served, jsforce: JsforceRunner) -> None:
    out = jsforce("query", stored_tokens(served))
    assert out.get("error") is None, out
    assert out["version"] == "50.0"
    assert out["totalSize"] == 3 and "Acme Corporation" in out["names"]
    served.logged(lambda e: e.path == "/services/data/v50.0/query")


def test_query_over_https_trusting_the_local_ca(
    jsforce: JsforceRunner, tmp_path: Path
) -> None:
    """``sfoauth emulator --tls``: jsforce trusts the CA through NODE_EXTRA_CA_CERTS."""
    tls = EmulatorTLS.create(tmp_path)
    emu = SalesforceEmulator()
    with emu.serve(tls=tls) as base_url:
        body = emu.issue_tokens("web", issuer=base_url)
        args = {"instanceUrl": base_url, "accessToken": body["access_token"]}
        untrusted = jsforce("query", args)
        assert "certificate" in untrusted["message"], untrusted  # unknown CA refused
        out = jsforce("query", args, env={"NODE_EXTRA_CA_CERTS": str(tls.ca_file)})
    assert out.get("error") is None, out
    assert base_url.startswith("https://") and out["totalSize"] == 3


def test_identity_on_a_rebuilt_connection(
    served: Served, jsforce: JsforceRunner
) -> None:
    out = jsforce("identity", stored_tokens(served))
    assert out.get("error") is None, out
    assert out["username"] == DEFAULT_USERNAME
    assert out["user_id"] == served.emu.user.user_id
    # The directory, asked for without its slash, answered 200 (not a 307).
    directory = served.logged(lambda e: e.path == "/services/data/v50.0")
    assert directory.status == 200


def test_sobject_describe_and_crud(served: Served, jsforce: JsforceRunner) -> None:
    out = jsforce("sobject", stored_tokens(served))
    assert out.get("error") is None, out
    assert out["describeName"] == "Account" and out["fieldCount"] > 5
    assert out["created"] is True and out["deleted"] is True
    assert out["phone"] == "555-0199"
    assert out["missing"]["error"] == "REQUIRED_FIELD_MISSING"
    assert out["missing"]["message"] == "Required fields are missing: [Name]"


def test_automatic_refresh_after_expiry(served: Served, jsforce: JsforceRunner) -> None:
    tokens = stored_tokens(served)
    assert served.emu.expire_access_tokens() == 1
    out = jsforce("auto_refresh", {**oauth_args(served), **tokens})
    assert out.get("error") is None, out
    assert out["totalSize"] == 3 and out["refreshed"] == 1
    assert out["accessToken"] != tokens["accessToken"]
    assert served.emu.calls("refresh_token") == 1


@pytest.mark.parametrize(
    ("error_format", "expected"),
    [
        # Default: JSON like the token endpoint; jsforce reads revoke errors as
        # urlencoded, so it reports the status (ERROR_HTTP_400) instead of the code.
        ("json", "ERROR_HTTP_400"),
        ("urlencoded", "invalid_token"),
    ],
)
def test_revoke(
    served: Served, jsforce: JsforceRunner, error_format: str, expected: str
) -> None:
    served.emu.org.revoke_error_format = error_format  # type: ignore[assignment]
    tokens = stored_tokens(served)
    out = jsforce("revoke", {**oauth_args(served), "token": tokens["refreshToken"]})
    assert out["revoked"] is True, out
    assert out["error"] == expected
    # The refresh token and the access tokens it issued are dead.
    with served.emu.state.lock:
        assert served.emu.state.access_tokens[tokens["accessToken"]].revoked


def _certificate() -> tuple[str, str]:
    """A private key and a self-signed X.509 certificate, as ``openssl req -x509``
    makes for a Salesforce connected app."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jsforce-compat")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode()


def test_jwt_bearer_with_a_certificate(served: Served, jsforce: JsforceRunner) -> None:
    key_pem, cert_pem = _certificate()
    served.emu.upload_certificate("jwt", cert_pem)
    args = {
        **oauth_args(served, "jwt"),
        "privateKey": key_pem,
        "username": DEFAULT_USERNAME,
        "audience": served.base_url,
    }
    out = jsforce("jwt_bearer", args)
    assert out.get("error") is None, out
    assert out["userInfo"]["id"] == served.emu.user.user_id
    assert out["instanceUrl"] == served.base_url and out["totalSize"] == 3
    assert served.emu.calls("urn:ietf:params:oauth:grant-type:jwt-bearer") == 1
