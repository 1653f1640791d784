"""simple-salesforce against the emulator served over HTTPS (simple-salesforce only
builds ``https://<instance>`` URLs), as its docs show: construction from an instance
URL and a session id, query, limits, describe, CRUD, and an expired session raising
``SalesforceExpiredSession``."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceResourceNotFound,
)

from sfoauth_core.testing import EmulatorTLS, SalesforceEmulator

pytestmark = pytest.mark.loopback


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> EmulatorTLS:
    return EmulatorTLS.create(tmp_path_factory.mktemp("emulator-tls"))


@pytest.fixture
def emu() -> SalesforceEmulator:
    return SalesforceEmulator()


@pytest.fixture
def sf(
    emu: SalesforceEmulator, tls: EmulatorTLS, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Salesforce]:
    # Trust the emulator's local CA the way the docs say. (A Session's ``verify`` is
    # not enough: requests lets REQUESTS_CA_BUNDLE from the environment win over it.)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.ca_file))
    with emu.serve(tls=tls) as base_url:
        assert base_url.startswith("https://")
        token = emu.issue_tokens("web", issuer=base_url)["access_token"]
        with requests.Session() as session:
            yield Salesforce(instance_url=base_url, session_id=token, session=session)
        # Connections still held by responses (in exceptions the test caught) close
        # now, before the server stops, so no TLS connection outlives it.
        gc.collect()


def test_session_id_construction_and_query(sf: Salesforce) -> None:
    assert sf.sf_version == "59.0"  # simple-salesforce's default, served as-is
    result = sf.query("SELECT Id, Name FROM Account ORDER BY Name")
    assert result["totalSize"] == 3 and result["done"] is True
    assert result["records"][0]["Name"] == "Acme Corporation"
    assert result["records"][0]["attributes"]["type"] == "Account"


def test_limits(sf: Salesforce) -> None:
    limits = sf.limits()
    assert limits["DailyApiRequests"]["Max"] == 15000
    assert sf.api_usage["api-usage"].used >= 1  # read from Sforce-Limit-Info


def test_describe(sf: Salesforce) -> None:
    names = {s["name"] for s in sf.describe()["sobjects"]}
    assert {"Account", "Contact"} <= names
    account = sf.Account.describe()
    assert account["name"] == "Account"
    assert "Name" in {f["name"] for f in account["fields"]}
    contact = sf.Contact.metadata()
    assert contact["objectDescribe"]["keyPrefix"] == "003"


def test_crud(sf: Salesforce) -> None:
    created = sf.Account.create({"Name": "Simple Inc.", "Industry": "Technology"})
    assert created["success"] is True
    account_id = created["id"]
    assert sf.Account.update(account_id, {"Phone": "555-0123"}) == 204
    row = sf.Account.get(account_id)
    assert row["Name"] == "Simple Inc." and row["Phone"] == "555-0123"
    person = sf.Contact.create({"LastName": "Lumbergh", "AccountId": account_id})
    assert sf.Contact.get(person["id"])["AccountId"] == account_id
    assert sf.Account.delete(account_id) == 204
    with pytest.raises(SalesforceResourceNotFound) as gone:
        sf.Account.get(account_id)
    assert gone.value.content[0]["errorCode"] == "NOT_FOUND"
    with pytest.raises(SalesforceMalformedRequest) as missing:
        sf.Account.create({"Industry": "Media"})
    assert missing.value.content[0]["errorCode"] == "REQUIRED_FIELD_MISSING"


def test_expired_session(emu: SalesforceEmulator, sf: Salesforce) -> None:
    assert emu.expire_access_tokens() == 1
    with pytest.raises(SalesforceExpiredSession) as expired:
        sf.query("SELECT Id FROM Account")
    assert expired.value.content[0]["errorCode"] == "INVALID_SESSION_ID"


def test_plain_http_is_not_an_option(emu: SalesforceEmulator) -> None:
    """Documented limit (same at Salesforce): simple-salesforce rewrites any instance
    URL to https, so an http emulator needs ``--tls``."""
    with emu.serve() as base_url:
        sf = Salesforce(instance_url=base_url, session_id="unused")
        assert sf.base_url.startswith("https://127.0.0.1:")
        sf.session.close()
