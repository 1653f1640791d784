"""The browser login transaction (start → callback → exchange → verify), written once.

Sans-IO: :func:`begin_login` is pure and :func:`complete_login` is a flow generator the
sync and async drivers run; the adapters bind it to their framework's browser binding,
storage and responses (ARCHITECTURE.md, "The shape"). See
:mod:`sfoauth_core.login.transaction` for the steps and
:mod:`sfoauth_core.login.stores` for where pending logins wait.
"""

from __future__ import annotations

from .stores import (
    AsyncInMemoryPendingLoginStore,
    AsyncPendingLoginStore,
    AsyncRedisPendingLoginStore,
    InMemoryPendingLoginStore,
    PendingLoginStore,
    RedisPendingLoginStore,
)
from .transaction import (
    DEFAULT_LOGIN_TTL,
    MAX_CALLBACK_PARAMETER,
    MAX_LOGIN_HINT,
    MAX_NEXT_LENGTH,
    CompletedLogin,
    KnownConnection,
    LoginError,
    LoginErrorCode,
    LoginOptions,
    PendingLogin,
    begin_login,
    complete_login,
    identity_conflict,
    read_login_options,
    refuse_login,
    safe_next,
)

__all__ = [
    "DEFAULT_LOGIN_TTL",
    "MAX_CALLBACK_PARAMETER",
    "MAX_LOGIN_HINT",
    "MAX_NEXT_LENGTH",
    "AsyncInMemoryPendingLoginStore",
    "AsyncPendingLoginStore",
    "AsyncRedisPendingLoginStore",
    "CompletedLogin",
    "InMemoryPendingLoginStore",
    "KnownConnection",
    "LoginError",
    "LoginErrorCode",
    "LoginOptions",
    "PendingLogin",
    "PendingLoginStore",
    "RedisPendingLoginStore",
    "begin_login",
    "complete_login",
    "identity_conflict",
    "read_login_options",
    "refuse_login",
    "safe_next",
]
