"""Setting the emulator up the way users do (issue 10 items 1 and 14, issue 14 item 5):
the default apps accept the callback URLs the docs, the examples and the CLI use; the
``jwt`` app's key is the published one; an uploaded X.509 certificate works, through
code, the configuration file and the control API, and a bad one is refused clearly."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from support.emulator import LOGIN, query_of

from sfoauth_core.testing import (
    DEFAULT_CALLBACK_URLS,
    DEFAULT_USERNAME,
    JWT_APP_CERTIFICATE_FILE,
    JWT_APP_CLIENT_ID,
    JWT_APP_PRIVATE_KEY_FILE,
    JWT_APP_PRIVATE_KEY_PEM,
    SalesforceEmulator,
    certificate_pem_for,
    new_private_key_pem,
    public_key_pem,
)
from sfoauth_emulator.server import apply_config, emulator_from_config

AUTHORIZE = "/services/oauth2/authorize"
TOKEN = "/services/oauth2/token"

# Where each callback URL comes from: the docs (Django with its slash, FastAPI without),
# the example projects (both hosts, port 8000) and `sfoauth login web` (port 1717).
USED_CALLBACKS = [
    "http://127.0.0.1:8000/salesforce/callback/",  # docs/django.md, Django examples
    "http://localhost:8000/salesforce/callback/",
    "http://127.0.0.1:8000/salesforce/callback",  # docs/fastapi.md, FastAPI example
    "http://localhost:8000/salesforce/callback",
    "https://app.example.com/salesforce/callback/",  # docs/django.md (real org)
    "https://app.example.com/salesforce/callback",  # docs/getting-started.md
    "http://localhost:1717/OauthRedirect",  # sfoauth login web (Salesforce CLI's URL)
    "http://127.0.0.1:1717/OauthRedirect",  # sfoauth login web --callback-host
]


@pytest.fixture
def http(emu: SalesforceEmulator) -> httpx.Client:
    return httpx.Client(
        transport=emu.transport(), base_url=LOGIN, follow_redirects=False
    )


@pytest.mark.parametrize("app", ["web", "public"])
@pytest.mark.parametrize("callback", USED_CALLBACKS)
def test_default_apps_accept_the_callbacks_users_configure(
    emu: SalesforceEmulator, http: httpx.Client, app: str, callback: str
) -> None:
    emu.auto_approve = DEFAULT_USERNAME
    params = {
        "response_type": "code",
        "client_id": emu.apps[app].client_id,
        "redirect_uri": callback,
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
        "state": "s1",
    }
    answer = http.get(AUTHORIZE, params=params)
    assert answer.status_code == 302, answer.text[:300]
    location = answer.headers["location"]
    assert location.startswith(callback + "?code=")
    assert query_of(location)["state"] == "s1"


@pytest.mark.parametrize(
    "callback",
    [
        "http://127.0.0.1:8000/salesforce/callback//",  # still an exact match
        "http://127.0.0.1:8001/salesforce/callback/",
        "http://localhost:1717/OauthRedirect/",
    ],
)
def test_matching_stays_exact(
    emu: SalesforceEmulator, http: httpx.Client, callback: str
) -> None:
    emu.auto_approve = DEFAULT_USERNAME
    params = {
        "response_type": "code",
        "client_id": emu.apps["web"].client_id,
        "redirect_uri": callback,
    }
    answer = http.get(AUTHORIZE, params=params)
    assert "location" not in answer.headers
    assert "error=redirect_uri_mismatch" in answer.text


def test_every_default_app_registers_the_same_callbacks(
    emu: SalesforceEmulator,
) -> None:
    assert set(USED_CALLBACKS) <= set(DEFAULT_CALLBACK_URLS)
    for app in emu.apps.values():
        assert app.callback_urls == list(DEFAULT_CALLBACK_URLS), app.name
    assert DEFAULT_CALLBACK_URLS[0] == "https://app.example.com/callback"


# --------------------------------------------------------------------------- JWT


def assertion(private_key_pem: str, audience: str = LOGIN, **claims: object) -> str:
    payload = {
        "iss": JWT_APP_CLIENT_ID,
        "sub": DEFAULT_USERNAME,
        "aud": audience,
        "exp": int(time.time()) + 180,
        **claims,
    }
    return jwt.encode(payload, private_key_pem, algorithm="RS256")


def jwt_grant(http: httpx.Client, private_key_pem: str) -> httpx.Response:
    return http.post(
        TOKEN,
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": assertion(private_key_pem),
        },
    )


def test_the_jwt_app_holds_the_published_key_pair(emu: SalesforceEmulator) -> None:
    app = emu.apps["jwt"]
    assert app.private_key_pem == JWT_APP_PRIVATE_KEY_PEM
    assert JWT_APP_PRIVATE_KEY_FILE.read_text() == JWT_APP_PRIVATE_KEY_PEM
    # What Salesforce holds after an upload: an X.509 certificate, not a bare key.
    certificate = x509.load_pem_x509_certificate(JWT_APP_CERTIFICATE_FILE.read_bytes())
    assert app.certificate_pem == JWT_APP_CERTIFICATE_FILE.read_text()
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert public_key_pem(JWT_APP_PRIVATE_KEY_PEM).encode() == spki
    # The same in every emulator (and every process: it is a file of the package).
    assert SalesforceEmulator().apps["jwt"].certificate_pem == app.certificate_pem


def test_the_published_key_signs_for_the_default_jwt_app(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    answer = jwt_grant(http, JWT_APP_PRIVATE_KEY_FILE.read_text())
    assert answer.status_code == 200, answer.text
    assert answer.json()["access_token"]


def test_an_uploaded_x509_certificate_checks_assertions(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    mine = new_private_key_pem()
    certificate = certificate_pem_for(mine)
    assert certificate.startswith("-----BEGIN CERTIFICATE-----")
    emu.upload_certificate("jwt", certificate)
    assert emu.apps["jwt"].certificate_pem == certificate
    assert emu.apps["jwt"].private_key_pem is None  # the key stays with the client

    assert jwt_grant(http, mine).status_code == 200
    refused = jwt_grant(http, JWT_APP_PRIVATE_KEY_PEM)  # the old key no longer fits
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"


def test_a_certificate_set_as_a_field_works_too(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    mine = new_private_key_pem()
    emu.apps["jwt"].certificate_pem = certificate_pem_for(mine)
    assert jwt_grant(http, mine).status_code == 200


def test_a_bare_public_key_still_works(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    mine = new_private_key_pem()
    emu.upload_certificate("jwt", public_key_pem(mine))
    assert jwt_grant(http, mine).status_code == 200


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not a pem", "expected an X.509 certificate PEM"),
        (
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "cannot be read",
        ),
        ("PRIVATE", "a private key was given"),
    ],
)
def test_a_bad_upload_is_refused_and_changes_nothing(
    emu: SalesforceEmulator, text: str, message: str
) -> None:
    if text == "PRIVATE":
        text = new_private_key_pem()
    before = emu.apps["jwt"].certificate_pem
    with pytest.raises(ValueError, match=message) as caught:
        emu.upload_certificate("jwt", text)
    assert "PRIVATE KEY" not in str(caught.value)
    with pytest.raises(ValueError, match=message):
        emu.add_app("other", client_id="3MVG9Other", certificate_pem=text)
    assert emu.apps["jwt"].certificate_pem == before
    assert "other" not in emu.apps


def test_control_api_uploads_a_certificate(emu: SalesforceEmulator) -> None:
    mine = new_private_key_pem()
    with emu.serve() as base:
        control = httpx.Client(base_url=base + "/__emulator__")
        bad = control.patch("/apps/jwt", json={"certificate_pem": "garbage"})
        assert bad.status_code == 400
        assert "certificate_pem: expected an X.509 certificate" in bad.json()["error"]
        assert emu.apps["jwt"].private_key_pem == JWT_APP_PRIVATE_KEY_PEM

        good = control.patch(
            "/apps/jwt", json={"certificate_pem": certificate_pem_for(mine)}
        )
        assert good.status_code == 200, good.text
        assert emu.apps["jwt"].private_key_pem is None
        token = httpx.post(
            base + TOKEN,
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": assertion(mine, audience=base),
            },
        )
        assert token.status_code == 200, token.text
        control.close()


def test_config_file_reads_a_certificate_file(tmp_path: Path) -> None:
    mine = new_private_key_pem()
    (tmp_path / "server.crt").write_text(certificate_pem_for(mine))
    config = tmp_path / "emulator.json"
    config.write_text(
        json.dumps({"apps": [{"name": "jwt", "certificate_file": "server.crt"}]})
    )
    emu = emulator_from_config(config)  # relative to the configuration file
    http = httpx.Client(transport=emu.transport(), base_url=LOGIN)
    assert emu.apps["jwt"].private_key_pem is None
    assert jwt_grant(http, mine).status_code == 200


def test_config_file_errors_name_the_app_and_the_file(tmp_path: Path) -> None:
    emu = SalesforceEmulator()
    with pytest.raises(ValueError, match=r"app 'jwt': cannot read certificate_file"):
        apply_config(
            emu,
            {"apps": [{"name": "jwt", "certificate_file": "missing.crt"}]},
            tmp_path,
        )
    with pytest.raises(ValueError, match=r"app 'jwt': certificate_pem: expected"):
        apply_config(emu, {"apps": [{"name": "jwt", "certificate_pem": "nope"}]})
    assert emu.apps["jwt"].private_key_pem == JWT_APP_PRIVATE_KEY_PEM
