"""The core ``Connection`` both adapters build their server-to-server connections from
(issue 11.3)."""

from __future__ import annotations

from typing import Any

import pytest
from support.keys import CLIENT_ID, CLIENT_SECRET, rsa_2048

from sfoauth_core import ConnectedApp, Connection
from sfoauth_core.exceptions import ConfigurationError

MY_DOMAIN = "https://acme.my.salesforce.com"


def jwt_app(**changes: Any) -> ConnectedApp:
    values: dict[str, Any] = {
        "client_id": CLIENT_ID,
        "private_key": rsa_2048(),
        "username": "jane@acme.com",
    }
    values.update(changes)
    return ConnectedApp(**values)


def test_grant_defaults_from_the_app() -> None:
    assert Connection(jwt_app()).resolved_grant == "jwt_bearer"
    cc = ConnectedApp(CLIENT_ID, client_secret=CLIENT_SECRET, login_url=MY_DOMAIN)
    assert Connection(cc).resolved_grant == "client_credentials"
    Connection(jwt_app()).validate()
    Connection(cc).validate()


def test_username_falls_back_to_the_app() -> None:
    assert Connection(jwt_app()).subject == "jane@acme.com"
    assert Connection(jwt_app(), username="ops@acme.com").subject == "ops@acme.com"


@pytest.mark.parametrize(
    ("connection", "setting"),
    [
        (Connection(jwt_app(private_key=None), grant="jwt_bearer"), "private_key"),
        (Connection(jwt_app(username=None)), "username"),
        (Connection(jwt_app(audience="https://acme.example.com")), "audience"),
        (
            Connection(ConnectedApp(CLIENT_ID, login_url=MY_DOMAIN)),
            "client_secret",
        ),
        (
            Connection(ConnectedApp(CLIENT_ID, client_secret=CLIENT_SECRET)),
            "login_url",
        ),
    ],
)
def test_validate_names_what_the_grant_lacks(
    connection: Connection, setting: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        connection.validate()
    assert info.value.setting == setting
    assert CLIENT_SECRET not in str(info.value)


def test_only_server_to_server_grants() -> None:
    with pytest.raises(ConfigurationError) as info:
        Connection(jwt_app(), grant="password")  # type: ignore[arg-type]
    assert info.value.setting == "grant"
    with pytest.raises(ConfigurationError):
        Connection("not an app")  # type: ignore[arg-type]


def test_from_mapping_builds_and_validates() -> None:
    found = Connection.from_mapping(
        {
            "FLOW": "jwt_bearer",
            "CLIENT_ID": CLIENT_ID,
            "PRIVATE_KEY": rsa_2048(),
            "USERNAME": "jane@acme.com",
        }
    )
    assert found.resolved_grant == "jwt_bearer" and found.subject == "jane@acme.com"
    label = "C[{}]".format
    for values, setting in (
        ({"FLOW": "password", "CLIENT_ID": CLIENT_ID}, "C[FLOW]"),
        ({"FLOW": "jwt_bearer", "CLIENT_ID": CLIENT_ID}, "C[PRIVATE_KEY]"),
        (
            {
                "FLOW": "client_credentials",
                "CLIENT_ID": CLIENT_ID,
                "CLIENT_SECRET": CLIENT_SECRET,
            },
            "C[LOGIN_URL]",
        ),
    ):
        with pytest.raises(ConfigurationError) as info:
            Connection.from_mapping(values, label=label)
        assert info.value.setting == setting
