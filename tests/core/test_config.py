"""Tests for sfoauth_core.config: ConnectedApp validation, derived values and from_env.

SECURITY.md items 8 (URLs), 20 (secrets never shown), 27 (bad configuration) and 28
(per-request options never mutate shared configuration); reference section 1.1 (hosts)
and 4.5 (JWT audience).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import assume, given
from hypothesis import strategies as st
from support.keys import (
    CLIENT_ID,
    CLIENT_SECRET,
    ec_p256,
    rsa_1024,
    rsa_2048,
    rsa_2048_encrypted,
)

from sfoauth_core import config as config_module
from sfoauth_core.config import (
    DEFAULT_LOGIN_URL,
    SANDBOX_LOGIN_URL,
    ConnectedApp,
    Secret,
)
from sfoauth_core.exceptions import ConfigurationError
from sfoauth_core.hosts import SALESFORCE_DOMAIN_SUFFIXES


def _scrambled(pem: str) -> str:
    """Same PEM armour, body lines in reverse order: valid base64, garbage DER."""
    lines = pem.strip().splitlines()
    return "\n".join([lines[0], *reversed(lines[1:-1]), lines[-1]]) + "\n"


def app(**kwargs: Any) -> ConnectedApp:
    kwargs.setdefault("client_id", CLIENT_ID)
    return ConnectedApp(**kwargs)


def config_error(**kwargs: Any) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as info:
        app(**kwargs)
    return info.value


# ------------------------------------------------------------ valid configs


@pytest.mark.parametrize(
    ("login_url", "stored"),
    [
        ("https://login.salesforce.com", "https://login.salesforce.com"),
        ("https://login.salesforce.com/", "https://login.salesforce.com"),
        ("https://test.salesforce.com", "https://test.salesforce.com"),
        ("https://acme.my.salesforce.com", "https://acme.my.salesforce.com"),
        (
            "https://acme--uat.sandbox.my.salesforce.com",
            "https://acme--uat.sandbox.my.salesforce.com",
        ),
        (
            "https://acme.develop.my.salesforce.com",
            "https://acme.develop.my.salesforce.com",
        ),
        (
            "https://acme.scratch.my.salesforce.com",
            "https://acme.scratch.my.salesforce.com",
        ),
        ("https://acme.my.site.com/customers", "https://acme.my.site.com/customers"),
        ("https://acme.my.site.com/customers/", "https://acme.my.site.com/customers"),
        ("https://acme.my.salesforce.mil", "https://acme.my.salesforce.mil"),
        ("https://acme.crmforce.mil", "https://acme.crmforce.mil"),
        ("https://acme.my.sfcrmproducts.cn", "https://acme.my.sfcrmproducts.cn"),
        ("https://acme.my-salesforce.com", "https://acme.my-salesforce.com"),
        ("https://login.salesforce.com:443", "https://login.salesforce.com:443"),
    ],
)
def test_valid_login_urls(login_url: str, stored: str) -> None:
    connected = app(login_url=login_url, client_secret=CLIENT_SECRET)
    assert connected.login_url == stored
    assert connected.client_id == CLIENT_ID
    assert connected.client_secret is not None
    assert connected.client_secret.reveal() == CLIENT_SECRET


def test_defaults() -> None:
    connected = app()
    assert connected.login_url == DEFAULT_LOGIN_URL == "https://login.salesforce.com"
    assert SANDBOX_LOGIN_URL == "https://test.salesforce.com"
    assert connected.client_secret is None
    assert connected.redirect_uri is None
    assert connected.scopes == ("api", "refresh_token")
    assert connected.private_key is None
    assert connected.timeout == 30.0
    assert connected.allow_loopback is False
    assert connected.extra_hosts == ()
    assert connected.verify_signature is True


def test_empty_secret_means_public_client() -> None:
    assert app(client_secret="").client_secret is None


def test_secret_object_is_accepted() -> None:
    connected = app(client_secret=Secret(CLIENT_SECRET))
    assert connected.client_secret == Secret(CLIENT_SECRET)


def test_custom_domain_needs_extra_hosts() -> None:
    error = config_error(login_url="https://login.acme.com")
    assert error.setting == "login_url"
    connected = app(login_url="https://login.acme.com", extra_hosts=["Login.Acme.com"])
    assert connected.extra_hosts == ("login.acme.com",)
    assert connected.login_url == "https://login.acme.com"


@pytest.mark.parametrize(
    "login_url",
    [
        "http://127.0.0.1:8000",
        "http://localhost:8000",
        "http://[::1]:8000",
        "https://[::1]",
    ],
)
def test_loopback_allowed_only_when_asked(login_url: str) -> None:
    error = config_error(login_url=login_url)
    assert error.setting == "login_url"
    assert login_url not in str(error)
    connected = app(login_url=login_url, allow_loopback=True)
    assert connected.login_url == login_url
    assert connected.allow_loopback is True


def test_allow_loopback_does_not_allow_plain_http_elsewhere() -> None:
    error = config_error(login_url="http://login.salesforce.com", allow_loopback=True)
    assert error.setting == "login_url"


# ------------------------------------------------------------ bad URLs

BAD_LOGIN_URLS = [
    "http://login.salesforce.com",
    "http://acme.my.salesforce.com",
    "https://user:pw@login.salesforce.com",
    "https://user@login.salesforce.com",
    "https://login.salesforce.com@evil.example",
    "javascript:alert(1)",
    "data:text/html,hi",
    "ftp://login.salesforce.com",
    "login.salesforce.com",
    "//login.salesforce.com",
    "https:///services",
    "",
    "   ",
    "https://login.salesforce.com/ x",
    "https://login.salesforce.com\n",
    "https://login.sales\tforce.com",
    "https://login.salesforce.com/\x00",
    "https://login.salesforce.com\x7f",
    "https://login.salesforce.com?evil=1",
    "https://login.salesforce.com/#frag",
    "https://login.salesforce.com:99999",
    "https://login.salesforce.com:port",
    "https://evil.example",
    "https://login.salesforce.com.evil.example",
    "https://evilsalesforce.com",
    "https://salesforce.com",
    "https://acme.my.salesforce-setup.com.evil.example",
    "https://127.0.0.1",
    "http://127.0.0.1:8000",
    "https://localhost",
    "http://[::1]:8000",
]


@pytest.mark.parametrize("login_url", BAD_LOGIN_URLS)
def test_bad_login_urls_fail_naming_the_setting_not_the_value(login_url: str) -> None:
    error = config_error(login_url=login_url, client_secret=CLIENT_SECRET)
    assert error.setting == "login_url"
    assert str(error).startswith("login_url: ")
    if login_url.strip():
        assert login_url not in str(error)
    assert CLIENT_SECRET not in str(error)


@pytest.mark.parametrize("login_url", [None, 42, b"https://login.salesforce.com"])
def test_non_string_login_url(login_url: Any) -> None:
    assert config_error(login_url=login_url).setting == "login_url"


@pytest.mark.parametrize(
    "login_url", ["https://login.salesforce.com?", "https://acme.my.salesforce.com#"]
)
def test_bare_query_or_fragment_delimiter_is_refused(login_url: str) -> None:
    assert config_error(login_url=login_url).setting == "login_url"


def test_backslash_host_is_refused() -> None:
    error = config_error(login_url="https://evil.example\\.my.salesforce.com")
    assert error.setting == "login_url"


_LABEL = st.from_regex(r"\A[a-z0-9](?:[a-z0-9-]{0,15}[a-z0-9])?\Z")


@given(
    labels=st.lists(_LABEL, min_size=1, max_size=4), path=st.sampled_from(["", "/x"])
)
def test_any_non_salesforce_host_is_refused(labels: list[str], path: str) -> None:
    host = ".".join(labels)
    assume(not any(host.endswith(suffix) for suffix in SALESFORCE_DOMAIN_SUFFIXES))
    assume(host != "localhost" and not host.endswith(".localhost"))
    for candidate in (host, f"login.salesforce.com.{host}", f"{host}salesforce.com"):
        url = f"https://{candidate}{path}"
        with pytest.raises(ConfigurationError) as info:
            ConnectedApp(CLIENT_ID, CLIENT_SECRET, login_url=url)
        assert info.value.setting == "login_url"
        assert url not in str(info.value)
        assert CLIENT_SECRET not in str(info.value)


# ------------------------------------------------------------ client_id


@pytest.mark.parametrize("client_id", ["", "   ", None, 42])
def test_client_id_is_required(client_id: Any) -> None:
    error = config_error(client_id=client_id)
    assert error.setting == "client_id"


@pytest.mark.parametrize(
    "client_id",
    ["3MVG9 Example", "3MVG9\nExample", "3MVG9&client_secret=x", "3MVG9/.."],
)
def test_client_id_with_odd_characters(client_id: str) -> None:
    error = config_error(client_id=client_id)
    assert error.setting == "client_id"
    assert client_id not in str(error)


def test_client_id_allows_consumer_key_characters() -> None:
    key = "3MVG9Example.Key_With-Dots0123456789"
    assert app(client_id=key).client_id == key


@pytest.mark.parametrize(
    ("name", "value"), [("client_secret", 123), ("private_key", 1.5)]
)
def test_non_string_secret_names_its_setting(name: str, value: Any) -> None:
    assert config_error(**{name: value}).setting == name


# ------------------------------------------------------------ redirect_uri


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://app.example.com/callback",
        "https://app.example.com/callback?tenant=1",
        "https://app.example.com:8443/cb",
        "http://localhost:1717/OauthRedirect",
        "http://127.0.0.1:8080/cb",
        "http://[::1]:8080/cb",
        "http://app.localhost:8000/cb",
        "myapp://cb",
        "com.example.app:/oauth2redirect",
        "sfdc://success",
    ],
)
def test_valid_redirect_uris(redirect_uri: str) -> None:
    assert app(redirect_uri=redirect_uri).redirect_uri == redirect_uri


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "",
        "/callback",
        "callback",
        "//app.example.com/callback",
        "http://app.example.com/callback",
        "HTTP://app.example.com/callback",
        "https://app.example.com/callback#frag",
        "myapp://cb#frag",
        "https://user:pw@app.example.com/callback",
        "https:///callback",
        "javascript:alert(1)",
        "JavaScript:alert(document.cookie)",
        "data:text/html,<script>x</script>",
        "vbscript:msgbox",
        "file:///etc/passwd",
        "https://app.example.com/call back",
        "https://app.example.com/callback\r\nX: y",
        "https://app.example.com:99999/cb",
    ],
)
def test_bad_redirect_uris(redirect_uri: str) -> None:
    error = config_error(redirect_uri=redirect_uri)
    assert error.setting == "redirect_uri"
    if redirect_uri:
        assert redirect_uri not in str(error)


# ------------------------------------------------------------ scopes


@pytest.mark.parametrize(
    ("scopes", "expected"),
    [
        ("api refresh_token", ("api", "refresh_token")),
        ("api  refresh_token api", ("api", "refresh_token")),
        (["openid", "api", "openid", "web"], ("openid", "api", "web")),
        (("api",), ("api",)),
        (iter(["id", "api"]), ("id", "api")),
        ("", ()),
        ([], ()),
        (["api", ""], ("api",)),
    ],
)
def test_scopes_as_string_or_iterable_deduplicated_in_order(
    scopes: Any, expected: tuple[str, ...]
) -> None:
    assert app(scopes=scopes).scopes == expected


@pytest.mark.parametrize("scopes", [["api web"], ["api\x00"], ["api\n"], ["api\t"]])
def test_invalid_scope_names(scopes: list[str]) -> None:
    assert config_error(scopes=scopes).setting == "scopes"


# ------------------------------------------------------------ timeout


@pytest.mark.parametrize("timeout", [0.001, 1, 30, 599.9, 600])
def test_timeout_in_bounds(timeout: float) -> None:
    connected = app(timeout=timeout)
    assert connected.timeout == float(timeout)
    assert isinstance(connected.timeout, float)


@pytest.mark.parametrize(
    "timeout", [0, -1, 600.001, 10_000, math.nan, math.inf, -math.inf, "30", None]
)
def test_timeout_out_of_bounds(timeout: Any) -> None:
    assert config_error(timeout=timeout).setting == "timeout"


# ------------------------------------------------------------ audience


@pytest.mark.parametrize(
    ("login_url", "extra", "audience"),
    [
        ("https://login.salesforce.com", {}, "https://login.salesforce.com"),
        ("https://test.salesforce.com", {}, "https://test.salesforce.com"),
        ("https://acme.my.salesforce.com", {}, "https://login.salesforce.com"),
        ("https://acme.develop.my.salesforce.com", {}, "https://login.salesforce.com"),
        ("https://na15.salesforce.com", {}, "https://login.salesforce.com"),
        (
            "https://acme--uat.sandbox.my.salesforce.com",
            {},
            "https://test.salesforce.com",
        ),
        (
            "https://ACME--UAT.SANDBOX.MY.SALESFORCE.COM",
            {},
            "https://test.salesforce.com",
        ),
        (
            "https://acme.my.site.com/customers",
            {},
            "https://acme.my.site.com/customers",
        ),
        (
            "https://acme.my.site.com/customers/",
            {},
            "https://acme.my.site.com/customers",
        ),
        ("https://acme.my.site.com", {}, "https://acme.my.site.com"),
        (
            "https://acme--uat.sandbox.my.site.com/partners",
            {},
            "https://acme--uat.sandbox.my.site.com/partners",
        ),
        ("https://acme.force.com/portal", {}, "https://acme.force.com/portal"),
        (
            "https://login.acme.com",
            {"extra_hosts": ["login.acme.com"]},
            "https://login.acme.com",
        ),
        ("http://127.0.0.1:8000", {"allow_loopback": True}, "http://127.0.0.1:8000"),
    ],
)
def test_jwt_audience_derived_from_login_url(
    login_url: str, extra: dict[str, Any], audience: str
) -> None:
    assert app(login_url=login_url, **extra).jwt_audience == audience


@pytest.mark.parametrize(
    ("login_url", "audience", "expected"),
    [
        (
            "https://acme.my.salesforce.com",
            "https://test.salesforce.com",
            SANDBOX_LOGIN_URL,
        ),
        (
            "https://login.salesforce.com",
            "https://test.salesforce.com/",
            SANDBOX_LOGIN_URL,
        ),
        (
            "https://acme.my.salesforce.com",
            "https://acme.my.site.com/customers",
            "https://acme.my.site.com/customers",
        ),
    ],
)
def test_explicit_audience_wins(login_url: str, audience: str, expected: str) -> None:
    connected = app(login_url=login_url, audience=audience)
    assert connected.audience == expected
    assert connected.jwt_audience == expected


@pytest.mark.parametrize(
    "audience",
    [
        "http://login.salesforce.com",
        "",
        "https://u:p@login.salesforce.com",
        "javascript:x",
    ],
)
def test_bad_audience(audience: str) -> None:
    error = config_error(audience=audience)
    assert error.setting == "audience"


# ------------------------------------------------------------ derived values


@pytest.mark.parametrize(
    ("login_url", "extra", "my_domain"),
    [
        ("https://login.salesforce.com", {}, False),
        ("https://test.salesforce.com", {}, False),
        ("https://LOGIN.salesforce.com/", {}, False),
        ("https://acme.my.salesforce.com", {}, True),
        ("https://acme--uat.sandbox.my.salesforce.com", {}, True),
        ("https://acme.my.site.com/customers", {}, True),
        ("https://acme.my.salesforce-setup.com", {}, False),
        ("http://127.0.0.1:8000", {"allow_loopback": True}, True),
    ],
)
def test_is_my_domain(login_url: str, extra: dict[str, Any], my_domain: bool) -> None:
    assert app(login_url=login_url, **extra).is_my_domain is my_domain


def test_login_host_is_lower_case() -> None:
    assert app(login_url="https://Acme.My.Salesforce.com").login_host == (
        "acme.my.salesforce.com"
    )


def test_trusts_host() -> None:
    connected = app(extra_hosts=["login.acme.com", ".acme-sso.com"])
    assert connected.trusts_host("acme.my.salesforce.com") is True
    assert connected.trusts_host("ACME.MY.SALESFORCE.COM") is True
    assert connected.trusts_host("na15.salesforce.com") is True
    assert connected.trusts_host("acme.my.site.com") is True
    assert connected.trusts_host("login.acme.com") is True
    assert connected.trusts_host("x.acme-sso.com") is True
    assert connected.trusts_host("acme.com") is False
    assert connected.trusts_host("evil.example") is False
    assert connected.trusts_host("login.salesforce.com.evil.example") is False
    assert connected.trusts_host("evilsalesforce.com") is False
    assert connected.trusts_host("127.0.0.1") is False
    assert connected.trusts_host("localhost") is False
    assert connected.trusts_host("") is False


def test_trusts_loopback_only_with_allow_loopback() -> None:
    emulator = app(login_url="http://127.0.0.1:8000", allow_loopback=True)
    assert emulator.trusts_host("127.0.0.1") is True
    assert emulator.trusts_host("::1") is True
    assert emulator.trusts_host("localhost") is True
    assert emulator.trusts_host("evil.example") is False


# ------------------------------------------------------------ private key


def test_private_key_loads_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bytes] = []
    real = serialization.load_pem_private_key

    def counting(data: bytes, password: bytes | None) -> Any:
        calls.append(data)
        return real(data, password)

    monkeypatch.setattr(config_module, "load_pem_private_key", counting)
    connected = app(private_key=rsa_2048(), username="jane@acme.com")
    key = connected.signing_key
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 2048
    assert connected.signing_key is key
    assert connected.signing_key is key
    assert len(calls) == 1
    assert connected.private_key is not None
    assert connected.private_key.reveal() == rsa_2048()
    assert connected.username == "jane@acme.com"


def test_private_key_as_bytes_or_secret() -> None:
    from_bytes = app(private_key=rsa_2048().encode())
    from_secret = app(private_key=Secret(rsa_2048()))
    assert isinstance(from_bytes.signing_key, rsa.RSAPrivateKey)
    assert isinstance(from_secret.signing_key, rsa.RSAPrivateKey)


def test_signing_key_without_private_key() -> None:
    with pytest.raises(ConfigurationError) as info:
        app().signing_key  # noqa: B018
    assert info.value.setting == "private_key"


@pytest.mark.parametrize(
    "make_pem",
    [
        lambda: "not a pem",
        lambda: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        lambda: _scrambled(rsa_2048()),
        lambda: rsa_2048()[:200],
        lambda: "",
        rsa_2048_encrypted,  # needs a passphrase: unusable
        ec_p256,  # not RSA: JWT bearer is RS256
        rsa_1024,  # too short (SECURITY item 15)
    ],
    ids=[
        "text",
        "bad-base64",
        "mangled",
        "truncated",
        "empty",
        "encrypted",
        "ec",
        "1024",
    ],
)
def test_unusable_private_keys(make_pem: Any) -> None:
    pem = make_pem()
    error = config_error(private_key=pem, client_secret=CLIENT_SECRET)
    assert error.setting == "private_key"
    assert str(error).startswith("private_key: ")
    if len(pem) > 20:
        assert pem not in str(error)
        assert pem[30:60] not in str(error)


def test_rsa_1024_message_says_why() -> None:
    assert "2048" in config_error(private_key=rsa_1024()).problem


def test_ec_key_message_says_why() -> None:
    assert "RSA" in config_error(private_key=ec_p256()).problem


# A fixed sentinel inside random text: Hypothesis also draws string constants from the
# code under test, so "the value is not in the message" is checked on a part we chose.
SENTINEL = "s3ntinel-9f2c1a7e"
_WRAPPED = st.tuples(st.text(), st.text()).map(lambda p: p[0] + SENTINEL + p[1])


@given(junk=_WRAPPED)
def test_any_unreadable_private_key_is_refused_without_echo(junk: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        ConnectedApp(CLIENT_ID, private_key=junk)
    assert info.value.setting == "private_key"
    assert SENTINEL not in str(info.value)
    assert SENTINEL not in repr(info.value)


# ------------------------------------------------------------ secrets hidden


def test_repr_and_str_hide_secret_and_key() -> None:
    connected = app(
        client_secret=CLIENT_SECRET,
        private_key=rsa_2048(),
        redirect_uri="https://app.example.com/callback",
    )
    body = rsa_2048().splitlines()[1]
    for text in (repr(connected), str(connected), f"{connected}", f"{connected!r}"):
        assert CLIENT_SECRET not in text
        assert body not in text
        assert "BEGIN" not in text
        assert "3MVG9Example" in text
    assert repr(connected.client_secret) == "Secret('**********')"
    assert str(connected.client_secret) == "**********"


def test_secret_value_object() -> None:
    secret = Secret("hunter2-secret")
    assert secret.reveal() == "hunter2-secret"
    assert "hunter2" not in repr(secret)
    assert "hunter2" not in str(secret)
    assert "hunter2" not in f"{secret}"
    assert bool(secret) is True
    assert bool(Secret("")) is False
    assert secret == Secret("hunter2-secret")
    assert secret != Secret("other")
    assert secret != "hunter2-secret"
    assert hash(secret) == hash(Secret("hunter2-secret"))
    assert repr([secret]) == "[Secret('**********')]"


@given(secret=st.text(min_size=1))
def test_repr_does_not_depend_on_the_secret(secret: str) -> None:
    connected = ConnectedApp(CLIENT_ID, client_secret=secret)
    other = ConnectedApp(CLIENT_ID, client_secret="x")
    assert repr(connected) == repr(other)
    assert str(connected) == str(other)


@given(secret=_WRAPPED)
def test_secret_and_key_never_in_repr(secret: str) -> None:
    connected = ConnectedApp(CLIENT_ID, client_secret=secret, private_key=rsa_2048())
    assert SENTINEL not in repr(connected)
    assert SENTINEL not in str(connected)


@given(secret=_WRAPPED)
def test_secret_never_in_configuration_errors(secret: str) -> None:
    for bad in (
        {"login_url": "https://evil.example"},
        {"redirect_uri": "javascript:x"},
        {"timeout": -1},
        {"scopes": ["a b"]},
        {"audience": "http://x.example"},
        {"private_key": "not a key"},
        {"client_id": "bad id"},
    ):
        kwargs: dict[str, Any] = {
            "client_id": CLIENT_ID,
            "client_secret": secret,
            **bad,
        }
        with pytest.raises(ConfigurationError) as info:
            ConnectedApp(**kwargs)
        assert SENTINEL not in str(info.value)
        assert SENTINEL not in repr(info.value)


# ------------------------------------------------------------ replace()


def test_replace_returns_a_new_app_and_leaves_the_original_untouched() -> None:
    original = app(
        client_secret=CLIENT_SECRET,
        scopes=["api", "refresh_token"],
        redirect_uri="https://app.example.com/callback",
        private_key=rsa_2048(),
        extra_hosts=["login.acme.com"],
    )
    before = repr(original), original.scopes, original.login_url
    changed = original.replace(
        scopes=["openid"], login_url="https://test.salesforce.com"
    )
    assert changed is not original
    assert changed.scopes == ("openid",)
    assert changed.login_url == "https://test.salesforce.com"
    assert changed.jwt_audience == "https://test.salesforce.com"
    # everything else carried over
    assert changed.client_secret == original.client_secret
    assert changed.redirect_uri == original.redirect_uri
    assert changed.extra_hosts == ("login.acme.com",)
    assert isinstance(changed.signing_key, rsa.RSAPrivateKey)
    # the original is exactly as before (SECURITY item 28)
    assert (repr(original), original.scopes, original.login_url) == before
    assert original.jwt_audience == "https://login.salesforce.com"


def test_replace_validates_and_keeps_original_on_error() -> None:
    original = app()
    with pytest.raises(ConfigurationError) as info:
        original.replace(login_url="https://evil.example")
    assert info.value.setting == "login_url"
    assert original.login_url == DEFAULT_LOGIN_URL


def test_app_is_frozen() -> None:
    connected = app()
    with pytest.raises(AttributeError):
        connected.scopes = ("full",)  # type: ignore[misc]
    with pytest.raises(AttributeError):
        connected.login_url = "https://evil.example"  # type: ignore[misc]


def test_equality_compares_settings() -> None:
    assert app(scopes="api") == app(scopes=["api"])
    assert app(client_secret="a") != app(client_secret="b")


# ------------------------------------------------------------ from_env


@pytest.fixture
def key_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "server.key"
    path.write_text(rsa_2048())
    yield path


def test_from_env_reads_every_variable() -> None:
    environ = {
        "SFOAUTH_CLIENT_ID": CLIENT_ID,
        "SFOAUTH_CLIENT_SECRET": CLIENT_SECRET,
        "SFOAUTH_REDIRECT_URI": "https://app.example.com/callback",
        "SFOAUTH_LOGIN_URL": "https://acme.my.site.com/customers",
        "SFOAUTH_SCOPES": "api,refresh_token openid",
        "SFOAUTH_PRIVATE_KEY": rsa_2048(),
        "SFOAUTH_USERNAME": "jane@acme.com",
        "SFOAUTH_AUDIENCE": "https://acme.my.site.com/customers",
        "SFOAUTH_TIMEOUT": "12.5",
        "SFOAUTH_ALLOW_LOOPBACK": "true",
        "SFOAUTH_EXTRA_HOSTS": "Login.Acme.com, .acme-sso.com,,",
    }
    connected = ConnectedApp.from_env(environ=environ)
    assert connected.client_id == CLIENT_ID
    assert connected.client_secret is not None
    assert connected.client_secret.reveal() == CLIENT_SECRET
    assert connected.redirect_uri == "https://app.example.com/callback"
    assert connected.login_url == "https://acme.my.site.com/customers"
    assert connected.scopes == ("api", "refresh_token", "openid")
    assert isinstance(connected.signing_key, rsa.RSAPrivateKey)
    assert connected.username == "jane@acme.com"
    assert connected.audience == "https://acme.my.site.com/customers"
    assert connected.timeout == 12.5
    assert connected.allow_loopback is True
    assert connected.extra_hosts == ("login.acme.com", ".acme-sso.com")


def test_from_env_minimal_uses_defaults() -> None:
    connected = ConnectedApp.from_env(environ={"SFOAUTH_CLIENT_ID": CLIENT_ID})
    assert connected == app()
    assert connected.scopes == ("api", "refresh_token")
    assert connected.timeout == 30.0


def test_from_env_empty_values_count_as_unset() -> None:
    connected = ConnectedApp.from_env(
        environ={
            "SFOAUTH_CLIENT_ID": CLIENT_ID,
            "SFOAUTH_CLIENT_SECRET": "",
            "SFOAUTH_LOGIN_URL": "",
            "SFOAUTH_TIMEOUT": "",
        }
    )
    assert connected.client_secret is None
    assert connected.login_url == DEFAULT_LOGIN_URL
    assert connected.timeout == 30.0


def test_from_env_custom_prefix() -> None:
    connected = ConnectedApp.from_env(
        prefix="ACME_SF_",
        environ={"ACME_SF_CLIENT_ID": "other", "SFOAUTH_CLIENT_ID": CLIENT_ID},
    )
    assert connected.client_id == "other"


def test_from_env_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SFOAUTH_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("SFOAUTH_LOGIN_URL", "https://test.salesforce.com")
    connected = ConnectedApp.from_env()
    assert connected.login_url == "https://test.salesforce.com"


@pytest.mark.parametrize("environ", [{}, {"SFOAUTH_CLIENT_ID": ""}])
def test_from_env_missing_client_id(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError) as info:
        ConnectedApp.from_env(environ=environ)
    assert info.value.setting == "SFOAUTH_CLIENT_ID"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", True),
        ("true", True),
        ("TRUE", True),
        (" True ", True),
        ("yes", True),
        ("on", True),
        ("0", False),
        ("false", False),
        ("False", False),
        ("no", False),
        ("off", False),
    ],
)
def test_from_env_bool_casts(value: str, expected: bool) -> None:
    connected = ConnectedApp.from_env(
        environ={"SFOAUTH_CLIENT_ID": CLIENT_ID, "SFOAUTH_ALLOW_LOOPBACK": value}
    )
    assert connected.allow_loopback is expected


@pytest.mark.parametrize("value", ["maybe", "2", "y3s", "enabled"])
def test_from_env_bad_bool(value: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        ConnectedApp.from_env(
            environ={"SFOAUTH_CLIENT_ID": CLIENT_ID, "SFOAUTH_ALLOW_LOOPBACK": value}
        )
    assert info.value.setting == "SFOAUTH_ALLOW_LOOPBACK"


@pytest.mark.parametrize("value", ["abc", "30s", "0", "-5", "601", "nan"])
def test_from_env_bad_timeout(value: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        ConnectedApp.from_env(
            environ={"SFOAUTH_CLIENT_ID": CLIENT_ID, "SFOAUTH_TIMEOUT": value}
        )
    assert info.value.setting == "SFOAUTH_TIMEOUT"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LOGIN_URL", "https://evil.example"),
        ("LOGIN_URL", "http://login.salesforce.com"),
        ("REDIRECT_URI", "javascript:alert(1)"),
        ("AUDIENCE", "http://login.salesforce.com"),
        ("SCOPES", "api\x00"),
        ("PRIVATE_KEY", "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----"),
        ("CLIENT_ID", "has space"),
    ],
)
def test_from_env_errors_name_the_variable_not_the_value(name: str, value: str) -> None:
    environ = {"SFOAUTH_CLIENT_ID": CLIENT_ID, "SFOAUTH_CLIENT_SECRET": CLIENT_SECRET}
    environ[f"SFOAUTH_{name}"] = value
    with pytest.raises(ConfigurationError) as info:
        ConnectedApp.from_env(environ=environ)
    assert info.value.setting == f"SFOAUTH_{name}"
    assert str(info.value).startswith(f"SFOAUTH_{name}: ")
    assert value not in str(info.value)
    assert CLIENT_SECRET not in str(info.value)


def test_from_env_private_key_file(key_file: Path) -> None:
    connected = ConnectedApp.from_env(
        environ={
            "SFOAUTH_CLIENT_ID": CLIENT_ID,
            "SFOAUTH_PRIVATE_KEY_FILE": str(key_file),
        }
    )
    assert isinstance(connected.signing_key, rsa.RSAPrivateKey)
    assert connected.private_key is not None
    assert connected.private_key.reveal() == rsa_2048()


def test_from_env_inline_private_key_wins_over_file(tmp_path: Path) -> None:
    connected = ConnectedApp.from_env(
        environ={
            "SFOAUTH_CLIENT_ID": CLIENT_ID,
            "SFOAUTH_PRIVATE_KEY": rsa_2048(),
            "SFOAUTH_PRIVATE_KEY_FILE": str(tmp_path / "missing.key"),
        }
    )
    assert isinstance(connected.signing_key, rsa.RSAPrivateKey)


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_from_env_unreadable_private_key_file(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "missing.key" if kind == "missing" else tmp_path
    with pytest.raises(ConfigurationError) as info:
        ConnectedApp.from_env(
            environ={
                "SFOAUTH_CLIENT_ID": CLIENT_ID,
                "SFOAUTH_PRIVATE_KEY_FILE": str(path),
            }
        )
    assert info.value.setting == "SFOAUTH_PRIVATE_KEY_FILE"
    assert str(path) not in str(info.value)


def test_from_env_binary_private_key_file(tmp_path: Path) -> None:
    path = tmp_path / "server.der"
    path.write_bytes(b"\x30\x82\x04\xa3\x02\x01\x00\x02\x82\x01\x01\x00\xc3\xff")
    with pytest.raises(ConfigurationError) as info:
        ConnectedApp.from_env(
            environ={
                "SFOAUTH_CLIENT_ID": CLIENT_ID,
                "SFOAUTH_PRIVATE_KEY_FILE": str(path),
            }
        )
    assert info.value.setting == "SFOAUTH_PRIVATE_KEY_FILE"


def test_from_env_bad_key_in_file_names_the_file_variable(tmp_path: Path) -> None:
    path = tmp_path / "ec.key"
    path.write_text(ec_p256())
    with pytest.raises(ConfigurationError) as info:
        ConnectedApp.from_env(
            environ={
                "SFOAUTH_CLIENT_ID": CLIENT_ID,
                "SFOAUTH_PRIVATE_KEY_FILE": str(path),
            }
        )
    assert info.value.setting == "SFOAUTH_PRIVATE_KEY_FILE"


# -- flows=: requirements checked when the app is built (SECURITY.md item 27) ----------
@pytest.mark.parametrize(
    "flow, kwargs, setting",
    [
        ("web_server", {"redirect_uri": None}, "redirect_uri"),
        ("web_server", {"client_secret": None}, "client_secret"),
        ("pkce", {"redirect_uri": None}, "redirect_uri"),
        ("client_credentials", {"client_secret": None}, "client_secret"),
        (
            "client_credentials",
            {"login_url": "https://login.salesforce.com"},
            "login_url",
        ),
        (
            "client_credentials",
            {"login_url": "https://test.salesforce.com"},
            "login_url",
        ),
        ("jwt_bearer", {}, "private_key"),
        ("introspect", {"client_secret": None}, "client_secret"),
        ("bogus", {}, "flows"),
    ],
)
def test_flows_requirements_fail_at_construction(flow, kwargs, setting):
    values = {
        "client_id": "3MVG9Example",
        "client_secret": "TOPSECRET-VALUE",
        "redirect_uri": "https://app.example.com/callback",
        "login_url": "https://acme.my.salesforce.com",
    }
    values.update(kwargs)
    with pytest.raises(ConfigurationError) as info:
        ConnectedApp(flows=[flow], **values)
    assert info.value.setting == setting
    assert "TOPSECRET-VALUE" not in str(info.value)


def test_flows_requirements_met():
    app = ConnectedApp(
        client_id="3MVG9Example",
        client_secret="s",
        redirect_uri="https://app.example.com/callback",
        login_url="https://acme.my.salesforce.com",
        flows=["web_server", "pkce", "client_credentials", "introspect", "device"],
    )
    app.validate_for("username_password")


def test_from_env_flows_are_checked():
    env = {
        "SFOAUTH_CLIENT_ID": "3MVG9Example",
        "SFOAUTH_FLOWS": "web_server, client_credentials",
        "SFOAUTH_CLIENT_SECRET": "x",
        "SFOAUTH_REDIRECT_URI": "https://app.example.com/cb",
    }
    with pytest.raises(ConfigurationError) as info:
        ConnectedApp.from_env(environ=env)
    assert info.value.setting == "SFOAUTH_LOGIN_URL"
    env["SFOAUTH_LOGIN_URL"] = "https://acme.my.salesforce.com"
    assert ConnectedApp.from_env(environ=env).is_my_domain


# ------------------------------------------------------------ from_mapping (issue 11.3)


def test_from_mapping_takes_typed_values_or_strings_alike() -> None:
    typed = ConnectedApp.from_mapping(
        {
            "CLIENT_ID": CLIENT_ID,
            "SCOPES": ["api", "refresh_token"],
            "TIMEOUT": 12,
            "ALLOW_LOOPBACK": True,
            "EXTRA_HOSTS": ("login.acme.com",),
        }
    )
    strings = ConnectedApp.from_mapping(
        {
            "CLIENT_ID": CLIENT_ID,
            "SCOPES": "api refresh_token",
            "TIMEOUT": "12",
            "ALLOW_LOOPBACK": "yes",
            "EXTRA_HOSTS": "login.acme.com",
        }
    )
    assert typed == strings
    assert typed.timeout == 12.0 and typed.allow_loopback is True


@pytest.mark.parametrize(
    ("values", "setting"),
    [
        ({"CLIENT_ID": CLIENT_ID, "CLIENTSECRET": "x"}, "S[CLIENTSECRET]"),
        ({}, "S[CLIENT_ID]"),
        ({"CLIENT_ID": CLIENT_ID, "TIMEOUT": "soon"}, "S[TIMEOUT]"),
        ({"CLIENT_ID": CLIENT_ID, "TIMEOUT": True}, "S[TIMEOUT]"),
        ({"CLIENT_ID": CLIENT_ID, "ALLOW_LOOPBACK": "maybe"}, "S[ALLOW_LOOPBACK]"),
        ({"CLIENT_ID": CLIENT_ID, "EXTRA_HOSTS": [1, 2]}, "S[EXTRA_HOSTS]"),
        ({"CLIENT_ID": CLIENT_ID, "LOGIN_URL": "http://x.com"}, "S[LOGIN_URL]"),
        ({"CLIENT_ID": CLIENT_ID, "LOGIN_URL": ""}, "S[LOGIN_URL]"),
        ({"CLIENT_ID": CLIENT_ID, "PRIVATE_KEY": "junk"}, "S[PRIVATE_KEY]"),
        ({"CLIENT_ID": CLIENT_ID, "FLOWS": ["jwt_bearer"]}, "S[PRIVATE_KEY]"),
    ],
)
def test_from_mapping_errors_name_the_key_by_the_callers_label(
    values: dict[str, Any], setting: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        ConnectedApp.from_mapping(values, label=lambda key: f"S[{key}]")
    assert info.value.setting == setting


def test_private_key_file_is_read_in_one_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``from_env`` and the Django settings reach the file through ``from_mapping``."""
    key_file = tmp_path / "key.pem"
    key_file.write_text(rsa_2048())
    reads: list[str] = []
    real = config_module._read_key_file

    def counting(path: Any, name: str) -> str:
        reads.append(name)
        return real(path, name)

    monkeypatch.setattr(config_module, "_read_key_file", counting)
    environ = {
        "SFOAUTH_CLIENT_ID": CLIENT_ID,
        "SFOAUTH_PRIVATE_KEY_FILE": str(key_file),
    }
    assert ConnectedApp.from_env(environ=environ).private_key is not None
    missing = {**environ, "SFOAUTH_PRIVATE_KEY_FILE": str(tmp_path / "nope.pem")}
    with pytest.raises(ConfigurationError) as info:
        ConnectedApp.from_env(environ=missing)
    assert info.value.setting == "SFOAUTH_PRIVATE_KEY_FILE"
    assert "nope" not in str(info.value)
    assert reads == ["SFOAUTH_PRIVATE_KEY_FILE"] * 2
    inline = {**environ, "SFOAUTH_PRIVATE_KEY": rsa_2048()}
    ConnectedApp.from_env(environ=inline)  # an inline key wins; the file is not read
    assert len(reads) == 2
