"""The flow advisor: every branch of the decision, caveats, and the CLI text."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sfoauth_core.advisor import FlowName, FlowRecommendation, explain, recommend_flow
from sfoauth_core.exceptions import ConfigurationError

F = FlowName


@pytest.mark.parametrize(
    ("kwargs", "flow", "alternatives"),
    [
        # Devices.
        ({"device": "asset_tracking"}, F.ASSET_TOKEN, (F.WEB_SERVER, F.DEVICE)),
        (
            {"device": "asset_tracking", "can_keep_secret": False},
            F.ASSET_TOKEN,
            (F.PKCE, F.DEVICE),
        ),
        (
            {
                "device": "asset_tracking",
                "server_to_server": True,
                "development_only": True,
            },
            F.ASSET_TOKEN,
            (F.WEB_SERVER, F.DEVICE),
        ),
        ({"device": "input_constrained"}, F.DEVICE, (F.WEB_SERVER, F.PKCE)),
        (
            {"device": "input_constrained", "development_only": True},
            F.DEVICE,
            (F.WEB_SERVER, F.PKCE),
        ),
        # A device with nobody to approve it is a server-to-server integration.
        (
            {"device": "input_constrained", "user_present": False},
            F.JWT_BEARER,
            (F.CLIENT_CREDENTIALS,),
        ),
        # Quick development.
        (
            {"development_only": True},
            F.USERNAME_PASSWORD,
            (F.CLIENT_CREDENTIALS, F.WEB_SERVER),
        ),
        (
            {"development_only": True, "has_my_domain": False},
            F.USERNAME_PASSWORD,
            (F.WEB_SERVER,),
        ),
        (
            {"development_only": True, "can_keep_secret": False},
            F.USERNAME_PASSWORD,
            (F.PKCE,),
        ),
        (
            {"development_only": True, "server_to_server": True},
            F.USERNAME_PASSWORD,
            (F.CLIENT_CREDENTIALS, F.WEB_SERVER),
        ),
        # Server to server / no user.
        ({"server_to_server": True}, F.JWT_BEARER, (F.CLIENT_CREDENTIALS,)),
        ({"user_present": False}, F.JWT_BEARER, (F.CLIENT_CREDENTIALS,)),
        ({"server_to_server": True, "can_keep_secret": False}, F.JWT_BEARER, ()),
        (
            {"server_to_server": True, "can_hold_private_key": False},
            F.CLIENT_CREDENTIALS,
            (F.JWT_BEARER,),
        ),
        (
            {
                "server_to_server": True,
                "can_hold_private_key": False,
                "can_keep_secret": True,
            },
            F.CLIENT_CREDENTIALS,
            (F.JWT_BEARER,),
        ),
        (
            {
                "server_to_server": True,
                "can_hold_private_key": False,
                "has_my_domain": False,
            },
            F.CLIENT_CREDENTIALS,
            (F.JWT_BEARER,),
        ),
        (
            {
                "server_to_server": True,
                "can_hold_private_key": False,
                "can_keep_secret": False,
            },
            F.PKCE,
            (F.JWT_BEARER, F.CLIENT_CREDENTIALS),
        ),
        # Interactive users.
        ({}, F.WEB_SERVER, (F.PKCE,)),
        ({"can_keep_secret": True}, F.WEB_SERVER, (F.PKCE,)),
        (
            {"can_keep_secret": True, "can_hold_private_key": False},
            F.WEB_SERVER,
            (F.PKCE,),
        ),
        ({"can_keep_secret": False}, F.PKCE, ()),
        ({"browser_only": True}, F.PKCE, (F.USER_AGENT,)),
        ({"browser_only": True, "can_keep_secret": False}, F.PKCE, (F.USER_AGENT,)),
        ({"browser_only": True, "can_keep_secret": True}, F.PKCE, (F.USER_AGENT,)),
    ],
)
def test_decision_table(kwargs: dict[str, Any], flow, alternatives):
    rec = recommend_flow(**kwargs)
    assert isinstance(rec, FlowRecommendation)
    assert rec.flow is flow
    assert rec.alternatives == alternatives
    assert rec.reasons and rec.setup
    assert rec.flow not in rec.alternatives


def text(rec: FlowRecommendation) -> str:
    return " ".join(rec.reasons + rec.caveats + rec.setup)


def test_web_server_caveats_for_confidential_clients():
    rec = recommend_flow(can_keep_secret=True)
    assert any("client_secret and code_verifier" in c for c in rec.caveats)
    assert not any("PKCE-only" in c for c in rec.caveats)
    assert any("PKCE" in s for s in rec.setup)


def test_unknown_secret_capability_suggests_pkce_only():
    rec = recommend_flow()
    assert "PKCE-only" in rec.caveats[0]


def test_public_client_caveats():
    rec = recommend_flow(can_keep_secret=False)
    assert any("must not include" in c for c in rec.caveats)
    assert any("Require Secret for Refresh Token Flow" in c for c in rec.caveats)
    assert not any("CORS" in c for c in rec.caveats)


def test_browser_only_discourages_user_agent():
    rec = recommend_flow(browser_only=True)
    assert "CORS" in rec.caveats[0]
    assert any("User-Agent flow is discouraged" in c for c in rec.caveats)
    assert any("blockOAuthUsrAgtFlow" in c for c in rec.caveats)


def test_username_password_caveats():
    rec = recommend_flow(development_only=True)
    assert any("Summer '23" in c for c in rec.caveats)
    assert any("retiring" in c and "Winter '27" in c for c in rec.caveats)
    assert any("never use it in production" in c for c in rec.caveats)
    assert any("security token" in c for c in rec.caveats)


def test_device_caveats():
    rec = recommend_flow(device="input_constrained")
    assert any("2025-08-28" in c and "Salesforce CLI" in c for c in rec.caveats)
    assert any("isDeviceFlowEnabled" in s for s in rec.setup)


def test_client_credentials_needs_my_domain_and_run_as_user():
    rec = recommend_flow(server_to_server=True, can_hold_private_key=False)
    assert any("run-as user" in s for s in rec.setup)
    assert any("My Domain" in s for s in rec.setup)
    assert any("request not supported on this domain" in c for c in rec.caveats)
    assert not rec.caveats[0].startswith("This flow needs")
    no_domain = recommend_flow(
        server_to_server=True, can_hold_private_key=False, has_my_domain=False
    )
    assert no_domain.caveats[0].startswith("This flow needs your org's My Domain")


def test_jwt_bearer_needs_certificate_and_preauthorized_users():
    rec = recommend_flow(server_to_server=True)
    assert any("certificate" in s for s in rec.setup)
    assert any("pre-authorized" in s for s in rec.setup)
    assert any("user hasn't approved this consumer" in c for c in rec.caveats)
    assert not any("My Domain URL" in c for c in rec.caveats)
    no_domain = recommend_flow(server_to_server=True, has_my_domain=False)
    assert any("My Domain URL" in c for c in no_domain.caveats)


def test_bootstrap_explains_the_one_time_login():
    rec = recommend_flow(
        server_to_server=True, can_hold_private_key=False, can_keep_secret=False
    )
    assert any("sfoauth login web" in r for r in rec.reasons)


def test_asset_token_setup():
    rec = recommend_flow(device="asset_tracking")
    assert any("certificate" in s for s in rec.setup)
    assert any("verify_asset_token" in c for c in rec.caveats)
    assert any("cnf.jwk" in c for c in rec.caveats)


@pytest.mark.parametrize("browser_only", [False, True])
def test_missing_my_domain_adds_a_caveat_for_browser_flows(browser_only):
    with_domain = recommend_flow(browser_only=browser_only)
    without = recommend_flow(browser_only=browser_only, has_my_domain=False)
    assert not any("My Domain URL" in c for c in with_domain.caveats)
    assert any("My Domain URL" in c for c in without.caveats)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"can_keep_secret": False},
        {"device": "asset_tracking"},
        {"device": "input_constrained"},
        {"development_only": True},
        {"server_to_server": True},
        {"server_to_server": True, "can_hold_private_key": False},
        {
            "server_to_server": True,
            "can_hold_private_key": False,
            "can_keep_secret": False,
        },
    ],
)
def test_every_recommendation_mentions_external_client_apps(kwargs):
    rec = recommend_flow(**kwargs)
    assert any("External Client App" in c and "Spring '26" in c for c in rec.caveats)


@pytest.mark.parametrize("device", ["tv", "", "asset-tracking", "INPUT_CONSTRAINED"])
def test_unknown_device_kind(device):
    with pytest.raises(ConfigurationError, match="device"):
        recommend_flow(device=device)


@given(
    can_keep_secret=st.sampled_from([None, True, False]),
    user_present=st.booleans(),
    device=st.sampled_from([None, "input_constrained", "asset_tracking"]),
    server_to_server=st.booleans(),
    can_hold_private_key=st.booleans(),
    has_my_domain=st.booleans(),
    development_only=st.booleans(),
    browser_only=st.booleans(),
)
def test_any_answers_give_a_coherent_recommendation(**kwargs):
    rec = recommend_flow(**kwargs)
    assert rec.flow not in rec.alternatives
    assert len(set(rec.alternatives)) == len(rec.alternatives)
    assert rec.reasons and rec.caveats and rec.setup
    # Discouraged flows are never the first choice unless asked for development.
    assert rec.flow is not F.USER_AGENT
    if rec.flow is F.USERNAME_PASSWORD:
        assert kwargs["development_only"]
    # Client credentials is only recommended to a client that may keep a secret.
    if rec.flow is F.CLIENT_CREDENTIALS:
        assert kwargs["can_keep_secret"] is not False
    if rec.flow is F.JWT_BEARER:
        assert kwargs["can_hold_private_key"]
    out = explain(rec)
    assert out.startswith(f"Recommended: {rec.flow.label} [{rec.flow.value}]")
    assert all(len(line) <= 88 for line in out.splitlines())


def test_flow_names_are_strings():
    assert F.JWT_BEARER == "jwt_bearer"
    assert str(F.CLIENT_CREDENTIALS) == "client_credentials"
    assert F("pkce") is F.PKCE
    assert {f.value for f in F} == {
        "web_server",
        "pkce",
        "user_agent",
        "asset_token",
        "device",
        "jwt_bearer",
        "client_credentials",
        "username_password",
        "token_exchange",
    }
    assert all(f.label for f in F)


def test_explain_renders_every_section():
    rec = recommend_flow(browser_only=True)
    out = explain(rec)
    lines = out.splitlines()
    assert lines[0] == (
        "Recommended: Web Server flow with PKCE only (public client, no secret) [pkce]"
    )
    for header in ("Why:", "Caveats:", "Alternatives:", "Setup:"):
        assert header in lines
    assert "  - User-Agent flow (implicit) [user_agent]" in lines
    assert any(line.startswith("  1. ") for line in lines)
    assert any(line.startswith("  3. ") for line in lines)
    assert out.endswith("\n") and not out.endswith("\n\n")


def test_explain_skips_empty_sections_and_wraps():
    rec = FlowRecommendation(flow=F.DEVICE, reasons=("word " * 40,))
    out = explain(rec, width=40)
    assert "Alternatives:" not in out and "Setup:" not in out and "Caveats:" not in out
    assert all(len(line) <= 40 for line in out.splitlines()[2:])
    assert out.splitlines()[3].startswith("  - word")
    assert out.splitlines()[4].startswith("    word")


def test_users_of_another_identity_provider_get_token_exchange():
    rec = recommend_flow(can_keep_secret=True, external_idp=True)
    assert rec.flow is F.TOKEN_EXCHANGE
    assert any("never retried" in c for c in rec.caveats)
    assert any("OauthTokenExchangeHandler" in s for s in rec.setup)
    assert F.WEB_SERVER in rec.alternatives
    no_domain = recommend_flow(external_idp=True, has_my_domain=False)
    assert "My Domain" in no_domain.caveats[0]
    # Nobody to exchange a token for: the server-to-server answer stands.
    assert recommend_flow(external_idp=True, user_present=False).flow is F.JWT_BEARER


# ------------------------------------------------------------ External Client Apps
def test_eca_never_gets_the_username_password_flow() -> None:
    from sfoauth_core.advisor import FlowName, recommend_flow

    plain = recommend_flow(development_only=True, server_to_server=True)
    assert plain.flow is FlowName.USERNAME_PASSWORD
    eca = recommend_flow(
        development_only=True, server_to_server=True, external_client_app=True
    )
    assert eca.flow is FlowName.JWT_BEARER
    assert any("no username-password flow" in r for r in eca.reasons)


@pytest.mark.parametrize(
    "answers",
    [
        {},
        {"development_only": True},
        {"server_to_server": True, "can_hold_private_key": False},
        {"can_keep_secret": False, "browser_only": True},
        {"device": "input_constrained"},
        {"external_idp": True},
    ],
)
def test_eca_recommendations_carry_eca_notes_and_no_password_flow(
    answers: dict[str, object],
) -> None:
    from sfoauth_core.advisor import FlowName, recommend_flow

    rec = recommend_flow(external_client_app=True, **answers)  # type: ignore[arg-type]
    assert rec.flow is not FlowName.USERNAME_PASSWORD
    assert FlowName.USERNAME_PASSWORD not in rec.alternatives
    notes = " ".join(rec.caveats)
    assert "invalid_client_id" in notes and "app_not_found" in notes
    assert "Spring '26" not in notes  # the "create an ECA instead" advice is moot
