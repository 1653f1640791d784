"""Settings object, system checks (SECURITY.md item 27), admin (item 20) and migrations."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import warnings

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import Client
from support.django_flow import connect

from sfoauth_core.storage import TokenCipher
from sfoauth_core.testing import DEFAULT_USERNAME, JWT_APP_CLIENT_ID
from sfoauth_django.checks import check_settings
from sfoauth_django.conf import sfoauth_settings
from sfoauth_django.models import get_token_model

HERE = os.path.dirname(os.path.abspath(__file__))
BASE = {
    "CLIENT_ID": "3MVG9Example.WebServerApp",
    "CLIENT_SECRET": "s3cr3t-value",
    "REDIRECT_URI": "https://app.example.com/salesforce/callback/",
    "TOKEN_KEYS": [TokenCipher.generate_key()],
}


def ids(settings, **changes) -> list[str]:
    settings.SFOAUTH = {**BASE, **changes}
    return sorted(m.id for m in check_settings())


def messages(settings, **changes):
    settings.SFOAUTH = {**BASE, **changes}
    return check_settings()


# -- the settings object -------------------------------------------------------------------
def test_settings_are_typed_and_lazy(settings):
    settings.SFOAUTH = {**BASE, "SCOPES": "api web", "TIMEOUT": "12"}
    assert sfoauth_settings.SCOPES == ("api", "web")
    assert sfoauth_settings.TIMEOUT == 12.0
    assert sfoauth_settings.LOGIN_URL == "https://login.salesforce.com"
    settings.SFOAUTH = {**BASE, "LOGIN_URL": "https://test.salesforce.com"}
    assert sfoauth_settings.LOGIN_URL == "https://test.salesforce.com"  # reloaded
    with pytest.raises(AttributeError, match="NOPE"):
        sfoauth_settings.NOPE  # noqa: B018


def test_unknown_keys_are_errors(settings):
    settings.SFOAUTH = {**BASE, "CLIENTID": "x"}
    with pytest.raises(ImproperlyConfigured, match="CLIENTID"):
        sfoauth_settings.CLIENT_ID  # noqa: B018
    assert [m.id for m in check_settings()] == ["sfoauth_django.E001"]


def test_to_core_config_never_shows_the_secret(settings):
    settings.SFOAUTH = {**BASE}
    app = sfoauth_settings.to_core_config()
    assert app.client_id == BASE["CLIENT_ID"] and "s3cr3t" not in repr(app)
    settings.SFOAUTH = {**BASE, "LOGIN_URL": "http://login.salesforce.com"}
    with pytest.raises(ImproperlyConfigured, match=r"SFOAUTH\['LOGIN_URL'\]") as info:
        sfoauth_settings.to_core_config()
    assert "s3cr3t" not in str(info.value)


# -- checks --------------------------------------------------------------------------------
def test_a_good_configuration_passes(settings):
    assert ids(settings) == []


def test_missing_client_id(settings):
    assert ids(settings, CLIENT_ID=None) == ["sfoauth_django.E002"]


def test_missing_or_relative_redirect_uri(settings):
    assert ids(settings, REDIRECT_URI=None) == ["sfoauth_django.E003"]
    assert ids(settings, REDIRECT_URI="/salesforce/callback/") == [
        "sfoauth_django.E004"
    ]


@pytest.mark.parametrize(
    "url",
    [
        "http://login.salesforce.com",
        "https://evil.example.com",
        "https://user:pw@login.salesforce.com",
        "ftp://login.salesforce.com",
        "",
    ],
)
def test_unsafe_login_url(settings, url):
    found = messages(settings, LOGIN_URL=url)
    assert [m.id for m in found] == ["sfoauth_django.E004"]
    assert "LOGIN_URL" in found[0].msg and found[0].hint
    if url:
        assert url not in found[0].msg


def test_login_url_choices(settings):
    assert ids(settings, LOGIN_URLS={"sandbox": "https://test.salesforce.com"}) == []
    assert ids(settings, LOGIN_URLS={"evil": "https://evil.example.com"}) == [
        "sfoauth_django.E009"
    ]


@pytest.mark.parametrize("keys", [[], ["short"], ["not base64 !!"]])
def test_missing_or_bad_encryption_key(settings, keys):
    found = messages(settings, TOKEN_KEYS=keys)
    assert [m.id for m in found] == ["sfoauth_django.E005"]
    assert "generate_key" in found[0].hint
    for key in keys:
        assert key not in found[0].msg or key == ""


def test_unresolvable_dotted_paths(settings):
    assert ids(settings, ADAPTER="nowhere.Adapter") == ["sfoauth_django.E007"]
    assert ids(settings, HTTP_CLIENT_FACTORY="nowhere.factory") == [
        "sfoauth_django.E007"
    ]


def test_loopback_outside_debug_warns(settings):
    settings.DEBUG = False
    assert ids(settings, ALLOW_LOOPBACK=True) == ["sfoauth_django.W001"]


def test_sessions_required(settings):
    settings.MIDDLEWARE = [
        m for m in settings.MIDDLEWARE if "SessionMiddleware" not in m
    ]
    assert ids(settings) == ["sfoauth_django.E012"]  # one id per problem
    settings.INSTALLED_APPS = [
        a for a in settings.INSTALLED_APPS if a != "django.contrib.sessions"
    ]
    assert ids(settings) == ["sfoauth_django.E006", "sfoauth_django.E012"]


def test_middleware_order(settings):
    settings.MIDDLEWARE = [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "sfoauth_django.middleware.SalesforceMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
    ]
    assert ids(settings) == ["sfoauth_django.E010"]


def test_missing_salesforce_middleware_warns(settings):
    settings.MIDDLEWARE = [
        m for m in settings.MIDDLEWARE if not m.endswith("SalesforceMiddleware")
    ]
    found = messages(settings)
    assert [m.id for m in found] == ["sfoauth_django.W003"]
    assert "request.salesforce" in found[0].hint


def test_token_keys_as_a_bare_string_is_an_error(settings):
    key = TokenCipher.generate_key()
    found = messages(settings, TOKEN_KEYS=key)
    assert [m.id for m in found] == ["sfoauth_django.E011"]
    assert "list" in found[0].msg and key not in found[0].msg + found[0].hint


def test_login_url_that_matches_nothing_warns(settings):
    settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
    assert ids(settings) == []  # the test URLconf has /accounts/login/
    settings.LOGIN_URL = "/nowhere/"
    found = messages(settings)
    assert [m.id for m in found] == ["sfoauth_django.W004"]
    assert "LoginView" in found[0].hint
    settings.LOGIN_URL = "login"  # a URL name resolves
    assert ids(settings) == []
    settings.LOGIN_URL = "https://sso.example.com/login"  # another site
    assert ids(settings) == []
    # Sign in with Salesforce: anonymous visitors never go to LOGIN_URL.
    settings.LOGIN_URL = "/nowhere/"
    settings.AUTHENTICATION_BACKENDS = [
        "django.contrib.auth.backends.ModelBackend",
        "sfoauth_django.backends.SalesforceBackend",
    ]
    assert ids(settings) == []


def test_loopback_hints_name_the_django_setting(settings):
    found = messages(settings, LOGIN_URL="http://127.0.0.1:8000")
    assert [m.id for m in found] == ["sfoauth_django.E004"]
    text = found[0].msg + " " + found[0].hint
    assert "SFOAUTH['ALLOW_LOOPBACK'] = True" in found[0].msg
    assert "allow_loopback" not in text


def test_signed_cookie_sessions_warn(settings):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    assert ids(settings) == ["sfoauth_django.W002"]


def _connection(**entry):
    return {"erp": {"FLOW": "jwt_bearer", "CLIENT_ID": JWT_APP_CLIENT_ID, **entry}}


@pytest.fixture
def pem(salesforce_emulator) -> str:
    return salesforce_emulator.apps["jwt"].private_key_pem


def test_connections(settings, pem, tmp_path):
    good = _connection(PRIVATE_KEY=pem, USERNAME="jane@acme.com")
    assert ids(settings, CONNECTIONS=good) == []
    assert ids(settings, CONNECTIONS=_connection(FLOW="password")) == [
        "sfoauth_django.E008"
    ]
    assert ids(settings, CONNECTIONS=_connection(FLOW="user_agent")) == [
        "sfoauth_django.E008"
    ]
    assert ids(settings, CONNECTIONS=_connection(USERNAME="jane@acme.com")) == [
        "sfoauth_django.E008"
    ]  # no key
    unreadable = _connection(PRIVATE_KEY="-----BEGIN nonsense", USERNAME="j@a.com")
    found = messages(settings, CONNECTIONS=unreadable)
    assert [m.id for m in found] == ["sfoauth_django.E008"] and "PRIVATE_KEY" in found[
        0
    ].msg
    missing = _connection(
        PRIVATE_KEY_FILE=str(tmp_path / "nope.pem"), USERNAME="j@a.com"
    )
    assert ids(settings, CONNECTIONS=missing) == ["sfoauth_django.E008"]
    foreign = _connection(
        PRIVATE_KEY=pem, USERNAME="j@a.com", AUDIENCE="https://evil.example.com"
    )
    assert ids(settings, CONNECTIONS=foreign) == ["sfoauth_django.E008"]
    nouser = _connection(PRIVATE_KEY=pem)
    assert ids(settings, CONNECTIONS=nouser) == ["sfoauth_django.E008"]
    cc = {"cc": {"FLOW": "client_credentials", "CLIENT_SECRET": "x"}}
    assert ids(settings, CONNECTIONS=cc) == ["sfoauth_django.E008"]  # not a My Domain
    assert ids(settings, CONNECTIONS={"x": {"FLOW": "jwt_bearer", "BOGUS": 1}}) == [
        "sfoauth_django.E008"
    ]


def test_check_command_reports_ids(settings):
    settings.SFOAUTH = {**BASE, "TOKEN_KEYS": []}
    from django.core.management.base import SystemCheckError

    with pytest.raises(SystemCheckError, match=r"sfoauth_django\.E005"):
        call_command("check")


# -- admin ----------------------------------------------------------------------------------
@pytest.fixture
def admin_client(db) -> Client:
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(admin)
    return client


def test_admin_never_shows_tokens(admin_client, emu, browser, user_factory):
    client = Client()
    client.force_login(user_factory("alice"))
    connect(client, browser)
    row = get_token_model().objects.get()
    with emu.state.lock:
        secrets = [*emu.state.access_tokens, *emu.state.refresh_tokens]
    base = "/admin/sfoauth_django/salesforceconnection/"
    pages = [
        admin_client.get(base),
        admin_client.get(base + "?status__exact=active"),
        admin_client.get(base + f"?org_id={row.org_id}"),
        admin_client.get(f"{base}{row.pk}/change/"),
    ]
    for page in pages:
        assert page.status_code == 200
        body = page.content.decode()
        assert row.org_id in body
        for secret in secrets:
            assert secret not in body
        assert row.token_ciphertext not in body
    response = admin_client.post(
        base, {"action": "revoke_connections", "_selected_action": [row.pk]}
    )
    assert response.status_code == 302
    assert get_token_model().objects.count() == 0
    assert any(e.path.endswith("/revoke") for e in emu.request_log)


DEBUG_SECRETS = {
    "client_secret": "debug-page-client-secret-1F2E3D4C",
    "connection_secret": "debug-page-connection-secret-5B6A7980",
    "token_key": TokenCipher.generate_key(),
    "old_token_key": TokenCipher.generate_key(),
}


def _debug_settings(emu) -> dict[str, object]:
    return {
        **BASE,
        "CLIENT_SECRET": DEBUG_SECRETS["client_secret"],
        "TOKEN_KEYS": [DEBUG_SECRETS["token_key"], DEBUG_SECRETS["old_token_key"]],
        "HTTP_CLIENT_FACTORY": "support.django_testkit.http_client",
        "CONNECTIONS": {
            "integration": {
                "FLOW": "jwt_bearer",
                "CLIENT_ID": JWT_APP_CLIENT_ID,
                "CLIENT_SECRET": DEBUG_SECRETS["connection_secret"],
                "PRIVATE_KEY": emu.apps["jwt"].private_key_pem,
                "USERNAME": DEFAULT_USERNAME,
            }
        },
    }


def _assert_no_secret(page: str, emu) -> None:
    pem_body = "".join(emu.apps["jwt"].private_key_pem.strip().splitlines()[1:-1])
    flat = "".join(page.split())  # PEM lines may be re-wrapped or escaped
    for name, value in DEBUG_SECRETS.items():
        assert value not in page, name
    assert pem_body[:64] not in flat and pem_body[-64:] not in flat, "private key"


def test_debug_error_page_hides_settings(settings, emu, rf):
    """SECURITY.md item 20 on every supported Django: the debug page lists ``SFOAUTH``
    without any secret value. Django 5.2+ hides the whole dict ("AUTH" is a hidden
    name); Django 4.2 recurses into it and hides every key naming a SECRET/KEY/TOKEN."""
    from django.views.debug import SafeExceptionReporterFilter, technical_500_response

    settings.DEBUG = True
    settings.SFOAUTH = _debug_settings(emu)
    cleansed = SafeExceptionReporterFilter().get_safe_settings()["SFOAUTH"]
    if isinstance(cleansed, dict):  # Django 4.2
        assert cleansed["CLIENT_ID"] == BASE["CLIENT_ID"]
        assert (
            cleansed["CLIENT_SECRET"] == SafeExceptionReporterFilter.cleansed_substitute
        )
        assert cleansed["TOKEN_KEYS"] == SafeExceptionReporterFilter.cleansed_substitute
        conn = cleansed["CONNECTIONS"]["integration"]
        assert conn["CLIENT_SECRET"] == SafeExceptionReporterFilter.cleansed_substitute
        assert conn["PRIVATE_KEY"] == SafeExceptionReporterFilter.cleansed_substitute
    else:
        assert cleansed == SafeExceptionReporterFilter.cleansed_substitute
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        page = technical_500_response(rf.get("/"), *sys.exc_info()).content.decode()
    assert "SFOAUTH" in page and "boom" in page
    _assert_no_secret(page, emu)


def test_secret_setting_names_are_hidden_by_django():
    """Every key holding a secret is named so that Django's default debug filter hides it
    even when it recurses into ``SFOAUTH`` (Django 4.2)."""
    from django.views.debug import SafeExceptionReporterFilter

    from sfoauth_django.conf import CONNECTION_KEYS, DEFAULTS, SECRET_SETTINGS

    hidden = SafeExceptionReporterFilter.hidden_settings
    assert SECRET_SETTINGS == {"CLIENT_SECRET", "TOKEN_KEYS", "PRIVATE_KEY"}
    assert SECRET_SETTINGS <= set(DEFAULTS) | CONNECTION_KEYS
    assert all(hidden.search(key) for key in SECRET_SETTINGS)


def test_debug_page_of_a_failing_connection_hides_secrets(settings, emu, db):
    """A token request failing inside sfoauth, with the secrets in its frames.

    (An answer that cannot be parsed: Salesforce *unavailable* is a 503 page instead.)"""
    from sfoauth_emulator.state import Fault

    settings.DEBUG = True
    settings.SFOAUTH = _debug_settings(emu)
    emu.inject_fault(Fault(kind="html", status=400, count=10))
    client = Client(raise_request_exception=False)
    response = client.get("/integration/")
    page = response.content.decode()
    assert response.status_code == 500, page[:500]
    assert "Traceback" in page and "jwt_bearer.py" in page  # sfoauth's own frames
    _assert_no_secret(page, emu)
    assert not re.search(r"eyJ[\w-]{8,}\.eyJ", page)  # no signed JWT assertion


# -- migrations -----------------------------------------------------------------------------
def test_makemigrations_is_clean(db):
    out = io.StringIO()
    with warnings.catch_warnings():
        # makemigrations probes every alias' history; the "postgres" alias may be down.
        warnings.simplefilter("ignore", RuntimeWarning)
        call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def _manage(settings_module: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([HERE, os.path.dirname(HERE), os.getcwd()]),
        "DJANGO_SETTINGS_MODULE": settings_module,
        "PYTHONWARNINGS": "ignore::RuntimeWarning",
    }
    return subprocess.run(
        [sys.executable, "-m", "django", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


SWAPPED_SCRIPT = """
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.db import connection
from sfoauth_django.models import get_token_model
from sfoauth_django.storage import DjangoTokenStore
from sfoauth_core.tokens import Token
model = get_token_model()
assert model._meta.label == "sfoauth_testapp.CustomSalesforceConnection", model
tables = connection.introspection.table_names()
assert "sfoauth_django_salesforceconnection" not in tables, tables
assert "sfoauth_testapp_customsalesforceconnection" in tables, tables
token = Token(access_token="00Dx!secret-access", refresh_token="5Aep.secret-refresh",
              org_id="00DXX0000001abc2AA", user_id="005XX000001xyzQAAE")
DjangoTokenStore().save("k", token)
row = model.objects.get(key="k")
assert "secret" not in row.token_ciphertext
assert DjangoTokenStore().get("k").token == token
print("swapped ok")
"""


def test_swapped_model_migrates_and_stores(tmp_path):
    script = tmp_path / "swapped.py"
    script.write_text(SWAPPED_SCRIPT)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([HERE, os.path.dirname(HERE), os.getcwd()]),
        "DJANGO_SETTINGS_MODULE": "settings_swapped",
    }
    result = subprocess.run(
        [sys.executable, str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "swapped ok"
    check = _manage("settings_swapped", "makemigrations", "--check", "--dry-run")
    assert check.returncode == 0, check.stdout + check.stderr
