"""The identity URL: who the token belongs to, and where the org's APIs live.

Specs: none beyond RFC 6750 §2.1 (bearer header); Salesforce's own service.
Salesforce: "Identity URLs" (help topic ``remoteaccess_using_openid``); reference
section 8.

Salesforce specifics: ``GET https://<host>/id/<orgId>/<userId>`` (the token response's
``id``) with ``Authorization: Bearer`` and ``Accept: application/json``; ``version``
fills the ``{version}`` placeholder in ``urls``. A bad token gets ``403`` with the
plain-text body ``Bad_OAuth_Token``. The host is checked before anything is sent
(SECURITY.md item 9), and the ids in the answer must equal the token's, compared
case-sensitively (item 18).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ..config import ConnectedApp
from ..exceptions import FlowError, MalformedResponseError, ResponseError
from ..ids import parse_identity_url, to_18
from ..tokens import Identity, Token
from ._base import Flow, RetryPolicy
from .discovery import DEFAULT_READ_RETRY
from .userinfo import access_token_of, bearer_get

__all__ = ["identity", "parse_identity"]

_ID_RE = re.compile(r"^[a-zA-Z0-9]{15,18}$")
_OPTIONAL_STRINGS = ("username", "display_name", "email", "user_type")


def _required_id(payload: Mapping[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise MalformedResponseError(f"identity response has no {name!r}")
    return value


def _as_18(value: str, name: str) -> str:
    # Same rule as ids.parse_identity_url: 15-character ids get their 18-character form,
    # longer ones (documentation samples carry 16-17) are compared verbatim.
    if not _ID_RE.match(value):
        raise MalformedResponseError(
            f"identity response field {name!r} is not a Salesforce id"
        )
    return to_18(value) if len(value) == 15 else value


def parse_identity(
    payload: Mapping[str, Any], *, token: Token | None = None
) -> Identity:
    """Build an :class:`Identity` and check it names the token's org and user.

    Raises:
        MalformedResponseError: ``id``, ``user_id`` or ``organization_id`` missing or
            not ids; a known field of the wrong type.
        ResponseError: the org or user differs from the token's (case-sensitive).
    """
    id_url = _required_id(payload, "id")
    user_id = _required_id(payload, "user_id")
    org_id = _required_id(payload, "organization_id")
    org18, user18 = _as_18(org_id, "organization_id"), _as_18(user_id, "user_id")
    try:
        url_org, url_user = parse_identity_url(urlsplit(id_url).path)
    except ValueError:
        raise MalformedResponseError(
            "identity response 'id' is not an identity URL"
        ) from None
    if (url_org, url_user) != (org18, user18):
        raise ResponseError("identity response 'id' names another org or user")
    if token is not None and (
        (token.org_id is not None and token.org_id != org18)
        or (token.user_id is not None and token.user_id != user18)
    ):
        raise ResponseError("the identity URL answered for a different org or user")
    strings: dict[str, str | None] = {}
    for name in _OPTIONAL_STRINGS:
        value = payload.get(name)
        if value is not None and not isinstance(value, str):
            raise MalformedResponseError(
                f"identity response field {name!r} is not a string"
            )
        strings[name] = value
    active = payload.get("active")
    if active is not None and not isinstance(active, bool):
        raise MalformedResponseError(
            "identity response field 'active' is not a boolean"
        )
    urls = payload.get("urls")
    if urls is None:
        urls = {}
    if not isinstance(urls, Mapping):
        raise MalformedResponseError("identity response field 'urls' is not an object")
    return Identity(
        id=id_url,
        user_id=user_id,
        organization_id=org_id,
        username=strings["username"],
        display_name=strings["display_name"],
        email=strings["email"],
        active=active,
        user_type=strings["user_type"],
        urls={str(k): v for k, v in urls.items() if isinstance(v, str)},
        raw=dict(payload),
    )


def identity(
    app: ConnectedApp,
    token: Token,
    *,
    version: str | None = None,
    retry: RetryPolicy = DEFAULT_READ_RETRY,
) -> Flow[Identity]:
    """Fetch the token's identity URL.

    Args:
        token: a token with ``id_url`` (every Salesforce token response has ``id``).
        version: an API version (``"62.0"``) or ``"latest"`` to fill ``{version}`` in
            ``urls``; sent as the ``version`` query parameter.

    Raises:
        FlowError: the token has no identity URL.
        UntrustedHostError: the identity URL is not on a trusted host (nothing is sent).
        InvalidTokenError: 401/403 ``Bad_OAuth_Token``.
        ResponseError: the answer names another org or user.
    """
    if not isinstance(token, Token) or not token.id_url:
        raise FlowError("the token has no identity URL ('id')")
    access_token = access_token_of(token)
    params = {"version": version} if version else None
    payload = yield from bearer_get(
        app, token.id_url, access_token, what="identity URL", params=params, retry=retry
    )
    return parse_identity(payload, token=token)
