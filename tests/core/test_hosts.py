"""Tests for sfoauth_core.hosts: which hosts may receive secrets and tokens.

Reference section 1.1 (hosts that serve OAuth) and SECURITY.md items 8 and 9.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sfoauth_core.exceptions import ConfigurationError
from sfoauth_core.hosts import (
    LOGIN_HOSTS,
    SALESFORCE_DOMAIN_SUFFIXES,
    is_loopback_host,
    is_my_domain_host,
    is_salesforce_host,
    origin_of,
    parse_https_url,
)

# ------------------------------------------------------------ is_salesforce_host


@pytest.mark.parametrize(
    "host",
    [
        "login.salesforce.com",
        "test.salesforce.com",
        "acme.my.salesforce.com",
        "acme--uat.sandbox.my.salesforce.com",
        "acme.develop.my.salesforce.com",
        "acme.scratch.my.salesforce.com",
        "acme.my.site.com",
        "acme.force.com",
        "na15.salesforce.com",
        "acme.my.salesforce.mil",
        "acme.crmforce.mil",
        "acme.my-salesforce.com",
        "acme.my.sfcrmproducts.cn",
        # DNS is case-insensitive and a trailing dot is the same name.
        "LOGIN.SALESFORCE.COM",
        "Acme.My.Salesforce.Com",
        "login.salesforce.com.",
    ],
)
def test_salesforce_hosts_are_recognised(host: str) -> None:
    assert is_salesforce_host(host) is True


@pytest.mark.parametrize(
    "host",
    [
        "",
        "evil.example",
        # label-boundary lookalikes
        "evilsalesforce.com",
        "evil-salesforce.com",
        "salesforce.com.evil.example",
        "login.salesforce.com.evil.example",
        "loginsalesforce.com",
        "myforce.com",
        "notsite.com",
        "acme.salesforce.co",
        "acme.salesforce.com.cn",
        "acme.salesforce.mil.evil.example",
        # bare apexes are not OAuth hosts
        "salesforce.com",
        "force.com",
        # whitespace tricks
        " login.salesforce.com",
        "login.salesforce.com ",
    ],
)
def test_non_salesforce_hosts_are_refused(host: str) -> None:
    assert is_salesforce_host(host) is False


def test_extra_hosts_exact_name_matches_only_that_name() -> None:
    extra = ["login.acme.com"]
    assert is_salesforce_host("login.acme.com", extra_hosts=extra) is True
    assert is_salesforce_host("LOGIN.ACME.COM", extra_hosts=extra) is True
    assert is_salesforce_host("evil.login.acme.com", extra_hosts=extra) is False
    assert is_salesforce_host("acme.com", extra_hosts=extra) is False
    assert is_salesforce_host("login.acme.com.evil.example", extra_hosts=extra) is False
    assert is_salesforce_host("xlogin.acme.com", extra_hosts=extra) is False


def test_extra_hosts_dot_suffix_matches_subdomains_on_label_boundary() -> None:
    extra = [".acme-sso.com"]
    assert is_salesforce_host("login.acme-sso.com", extra_hosts=extra) is True
    assert is_salesforce_host("a.b.acme-sso.com", extra_hosts=extra) is True
    assert is_salesforce_host("evilacme-sso.com", extra_hosts=extra) is False
    assert is_salesforce_host("acme-sso.com.evil.example", extra_hosts=extra) is False


def test_extra_hosts_do_not_replace_the_builtin_list() -> None:
    assert is_salesforce_host("login.salesforce.com", extra_hosts=["x.example"]) is True


_LABEL = st.from_regex(r"\A[a-z0-9](?:[a-z0-9-]{0,20}[a-z0-9])?\Z")


def _ends_like_salesforce(host: str) -> bool:
    return any(host.endswith(suffix) for suffix in SALESFORCE_DOMAIN_SUFFIXES)


@given(labels=st.lists(_LABEL, min_size=1, max_size=5))
def test_any_host_outside_salesforce_domains_is_refused(labels: list[str]) -> None:
    host = ".".join(labels)
    if _ends_like_salesforce(host):
        return
    assert is_salesforce_host(host) is False
    # Glued to a Salesforce name without a dot is still not Salesforce.
    assert is_salesforce_host(host + "salesforce.com") is False
    # A Salesforce name followed by a foreign domain is not Salesforce.
    assert is_salesforce_host("login.salesforce.com." + host) is False


@given(labels=st.lists(_LABEL, min_size=1, max_size=4))
def test_any_subdomain_of_a_salesforce_domain_is_accepted(labels: list[str]) -> None:
    for suffix in SALESFORCE_DOMAIN_SUFFIXES:
        assert is_salesforce_host(".".join(labels) + suffix) is True


def test_host_with_backslash_is_not_a_salesforce_host() -> None:
    assert is_salesforce_host("evil.example\\.my.salesforce.com") is False


# ------------------------------------------------------------ is_my_domain_host


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("login.salesforce.com", False),
        ("test.salesforce.com", False),
        ("LOGIN.SALESFORCE.COM", False),
        ("login.salesforce.com.", False),
        ("acme.my.salesforce-setup.com", False),
        ("acme.my.salesforce.com", True),
        ("acme--uat.sandbox.my.salesforce.com", True),
        ("acme.develop.my.salesforce.com", True),
        ("acme.my.site.com", True),
        ("acme.my.salesforce.mil", True),
    ],
)
def test_is_my_domain_host(host: str, expected: bool) -> None:
    assert is_my_domain_host(host) is expected


def test_login_hosts_constant() -> None:
    assert LOGIN_HOSTS == {"login.salesforce.com", "test.salesforce.com"}


# ------------------------------------------------------------ is_loopback_host


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.0.0.2",
        "127.255.255.254",
        "::1",
        "[::1]",
        "localhost",
        "LOCALHOST",
        "app.localhost",
        "a.b.localhost",
    ],
)
def test_loopback_hosts(host: str) -> None:
    assert is_loopback_host(host) is True


@pytest.mark.parametrize(
    "host",
    [
        "",
        "0.0.0.0",
        "128.0.0.1",
        "10.0.0.1",
        "::2",
        "localhost.evil.example",
        "evil-localhost",
        "notlocalhost",
        "login.salesforce.com",
        "127.0.0.1.evil.example",
    ],
)
def test_non_loopback_hosts(host: str) -> None:
    assert is_loopback_host(host) is False


@given(st.integers(min_value=0, max_value=2**24 - 1))
def test_every_address_in_127_slash_8_is_loopback(offset: int) -> None:
    host = f"127.{offset >> 16 & 255}.{offset >> 8 & 255}.{offset & 255}"
    assert is_loopback_host(host) is True


# ------------------------------------------------------------ origin_of


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://login.salesforce.com", "https://login.salesforce.com"),
        (
            "https://Acme.My.Salesforce.com/services/oauth2/token?x=1#f",
            "https://acme.my.salesforce.com",
        ),
        ("https://acme.my.site.com/customers/s/", "https://acme.my.site.com"),
        ("http://127.0.0.1:8000/x", "http://127.0.0.1:8000"),
        ("http://[::1]:8443/x", "http://[::1]:8443"),
        ("https://login.salesforce.com:443/x", "https://login.salesforce.com:443"),
    ],
)
def test_origin_of(url: str, origin: str) -> None:
    assert origin_of(url) == origin


# ------------------------------------------------------------ parse_https_url


def test_parse_https_url_returns_the_parts() -> None:
    parts = parse_https_url("https://acme.my.site.com/customers", setting="login_url")
    assert parts.scheme == "https"
    assert parts.hostname == "acme.my.site.com"
    assert parts.path == "/customers"


def test_parse_https_url_can_forbid_a_path() -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_https_url("https://x.my.salesforce.com/p", setting="s", allow_path=False)
    assert info.value.setting == "s"
    parse_https_url("https://x.my.salesforce.com/", setting="s", allow_path=False)


@pytest.mark.parametrize(
    "value",
    [
        "",
        " ",
        "http://login.salesforce.com",
        "ftp://login.salesforce.com",
        "https://user:pw@login.salesforce.com",
        "https://login.salesforce.com?x=1",
        "https://login.salesforce.com#frag",
        "https://login.salesforce.com:notaport",
        "https:///nohost",
        "https://login.salesforce.com/\x00",
        "https://127.0.0.1",
    ],
)
def test_parse_https_url_rejects_bad_shapes_naming_only_the_setting(value: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_https_url(value, setting="my_setting")
    assert info.value.setting == "my_setting"
    assert str(info.value).startswith("my_setting: ")
    if value.strip():
        assert value not in str(info.value)


def test_parse_https_url_allows_http_loopback_only_when_asked() -> None:
    with pytest.raises(ConfigurationError):
        parse_https_url("http://127.0.0.1:8000", setting="s")
    assert (
        parse_https_url("http://127.0.0.1:8000", setting="s", allow_loopback=True).port
        == 8000
    )
    with pytest.raises(ConfigurationError):
        parse_https_url("http://evil.example", setting="s", allow_loopback=True)
