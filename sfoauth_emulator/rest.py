"""The REST API under ``/services/data``: versions, the resource directory, limits,
the SOQL subset and sObject describe/CRUD for ``Account`` and ``Contact``.

Every error is Salesforce's JSON array (``[{"message", "errorCode"}]``): unknown paths
``404 NOT_FOUND``, retired versions ``410`` (:attr:`EmulatedOrg.retired_api_version_error`),
wrong methods ``405 METHOD_NOT_ALLOWED``, bad sessions ``401 INVALID_SESSION_ID``.
Both ``…/vXX.X`` and ``…/vXX.X/`` answer (no redirect), and the directory advertises
only what is served.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from .constants import OLDEST_API_VERSION, api_version_range
from .records import (
    SCHEMAS,
    OrgRecords,
    RecordStore,
    RestError,
    no_such_column,
    not_found,
    parse_soql,
    run_query,
    schema,
)
from .state import AccessTokenRecord, EmulatedOrg, EmulatorState
from .vhosts import HostContext, emulator_state, host_context
from .wire import JSON_CONTENT_TYPE

__all__ = [
    "REST_METHODS",
    "apex_rest_endpoint",
    "api_versions",
    "host_org",
    "rest_endpoint",
]

REST_METHODS = ["GET", "HEAD", "POST", "PATCH", "PUT", "DELETE"]
DAILY_API_REQUESTS = 15000

_INVALID_SESSION = RestError(401, "INVALID_SESSION_ID", "Session expired or invalid")
_NOT_API = RestError(
    401, "INVALID_SESSION_ID", "This session is not valid for use with the REST API"
)
_API_SCOPES = {"api", "full"}
_VERSION_RE = re.compile(r"v(\d{1,3})\.(\d)")


def _dumps(body: Any) -> str:
    # Salesforce writes compact JSON: [{"message":"...","errorCode":"..."}]
    return json.dumps(body, separators=(",", ":"))


def _json(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    all_headers = {"Content-Type": JSON_CONTENT_TYPE, **(headers or {})}
    return Response(_dumps(body), status_code=status, headers=all_headers)


def _error(exc: RestError) -> Response:
    return _json(exc.body(), exc.status)


def _number(version: str) -> float:
    return float(version)


def api_versions(org: EmulatedOrg) -> tuple[tuple[str, str], ...]:
    """``(label, version)`` pairs the org serves, oldest first."""
    return api_version_range(org.min_api_version, org.max_api_version)


def host_org(state: EmulatorState, ctx: HostContext) -> EmulatedOrg | None:
    """The org whose host answered: the host's own, the loopback org on a loopback
    host, else the default org."""
    if ctx.org is not None:
        return ctx.org
    name = state.loopback_org if ctx.kind == "loopback" else state.default_org
    return state.orgs.get(name)


def _check_version(segment: str, org: EmulatedOrg | None) -> str:
    """The version number of ``vXX.X``; 410 when retired, 404 when unknown."""
    match = _VERSION_RE.fullmatch(segment)
    if match is None or org is None:
        raise not_found()
    number = _number(f"{match.group(1)}.{match.group(2)}")
    if _number(OLDEST_API_VERSION) <= number < _number(org.min_api_version):
        code, message = org.retired_api_version_error
        raise RestError(410, code, message)
    versions = {_number(v) for _, v in api_versions(org)}
    if number not in versions:
        raise not_found()
    return f"{match.group(1)}.{match.group(2)}"


def _bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() in ("bearer", "oauth") and token.strip():
        return token.strip()
    return None


def _authenticate(
    state: EmulatorState, ctx: HostContext, token: str | None
) -> AccessTokenRecord:
    """The session's token record (call with the lock held)."""
    record = state.access_tokens.get(token or "")
    if (
        record is None
        or record.revoked
        or record.expires_at <= state.now()
        or (ctx.org is not None and ctx.org.name != record.org)
    ):
        raise _INVALID_SESSION
    if record.grant != "password" and not (set(record.scopes) & _API_SCOPES):
        raise _NOT_API
    return record


def _method_check(method: str, allowed: tuple[str, ...]) -> None:
    effective = "GET" if method == "HEAD" else method
    if effective not in allowed:
        listed = ",".join(sorted({*allowed, "HEAD"} if "GET" in allowed else allowed))
        raise RestError(
            405,
            "METHOD_NOT_ALLOWED",
            f"HTTP Method '{method}' not allowed. Allowed are {listed}",
        )


async def _json_body(request: Request) -> object:
    """The parsed JSON body, or the ``JSON_PARSER_ERROR`` to raise once the session is
    known to be good (Salesforce checks the session first)."""
    raw = await request.body()
    try:
        return json.loads(raw.decode("utf-8") or "null")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        column = getattr(exc, "colno", 1)
        return RestError(
            400,
            "JSON_PARSER_ERROR",
            f"Unexpected character in request body at [line:1, column:{column}]",
        )


async def rest_endpoint(request: Request) -> Response:
    """Everything under ``/services/data``."""
    state = emulator_state(request)
    ctx = host_context(request)
    path = request.path_params.get("rest", "")
    parts = [p for p in path.strip("/").split("/")] if path.strip("/") else []
    try:
        body = (
            await _json_body(request) if request.method in ("POST", "PATCH") else None
        )
        with state.lock:
            return _dispatch(request, state, ctx, parts, body)
    except RestError as exc:
        return _error(exc)


async def apex_rest_endpoint(request: Request) -> Response:
    """``/services/apexrest/…``: the org has no Apex REST classes, so every path is
    Salesforce's ``404 NOT_FOUND`` array (after the session check)."""
    state = emulator_state(request)
    ctx = host_context(request)
    path = "/" + request.path_params.get("rest", "")
    try:
        with state.lock:
            _authenticate(state, ctx, _bearer_token(request))
    except RestError as exc:
        return _error(exc)
    return _error(RestError(404, "NOT_FOUND", f"Could not find a match for URL {path}"))


def _dispatch(
    request: Request,
    state: EmulatorState,
    ctx: HostContext,
    parts: list[str],
    body: object,
) -> Response:
    token = _bearer_token(request)
    served_org = host_org(state, ctx)
    if not parts:
        _method_check(request.method, ("GET",))
        # Salesforce lists the versions without a session; a presented one is checked.
        if "authorization" in request.headers:
            record = _authenticate(state, ctx, token)
            served_org = state.orgs.get(record.org, served_org)
        if served_org is None:
            raise not_found()
        return _json(
            [
                {"label": label, "url": f"/services/data/v{v}", "version": v}
                for label, v in api_versions(served_org)
            ]
        )
    _check_version(parts[0], served_org)  # retired or unknown: before the session
    record = _authenticate(state, ctx, token)
    org = state.orgs[record.org]
    version = _check_version(parts[0], org)
    user = state.user(record.username)
    owner = user.user_id if user is not None else ""
    data = state.records.org(org.name, owner, state.now())
    data.api_requests += 1
    usage = {"Sforce-Limit-Info": f"api-usage={data.api_requests}/{DAILY_API_REQUESTS}"}
    resource = parts[1:]
    base = f"/services/data/v{version}"
    method = request.method
    if not resource:
        _method_check(method, ("GET",))
        directory = {name: f"{base}/{name}" for name in ("limits", "query", "sobjects")}
        directory["identity"] = record.id_url
        return _json(directory, headers=usage)
    head, rest = resource[0], resource[1:]
    if head == "limits" and not rest:
        _method_check(method, ("GET",))
        remaining = DAILY_API_REQUESTS - data.api_requests
        return _json(
            {
                "DailyApiRequests": {"Max": DAILY_API_REQUESTS, "Remaining": remaining},
                "DailyAsyncApexExecutions": {"Max": 250000, "Remaining": 250000},
                "DataStorageMB": {"Max": 5, "Remaining": 5},
                "FileStorageMB": {"Max": 20, "Remaining": 20},
            },
            headers=usage,
        )
    if head == "query" and not rest:
        _method_check(method, ("GET",))
        return _json(
            _query(data, request.query_params.get("q", ""), base), headers=usage
        )
    if head == "sobjects":
        return _sobjects(
            request, state.records, data, rest, body, version, owner, state.now(), usage
        )
    raise not_found()


def _attributes(spec_name: str, record_id: str, base: str) -> dict[str, str]:
    return {"type": spec_name, "url": f"{base}/sobjects/{spec_name}/{quote(record_id)}"}


def _query(data: OrgRecords, soql: str, base: str) -> dict[str, Any]:
    if not soql.strip():
        raise RestError(400, "MALFORMED_QUERY", "unexpected token: '<EOF>'")
    query = parse_soql(soql)
    rows = run_query(data, query)
    if query.count:
        return {"totalSize": len(rows), "done": True, "records": []}
    records = []
    for row in rows:
        out: dict[str, Any] = {
            "attributes": _attributes(query.spec.name, row["Id"], base)
        }
        for name in query.fields:
            out[name] = row.get(name)
        records.append(out)
    return {"totalSize": len(records), "done": True, "records": records}


def _sobjects(
    request: Request,
    store: RecordStore,
    data: OrgRecords,
    rest: list[str],
    body: object,
    version: str,
    owner: str,
    now: float,
    usage: dict[str, str],
) -> Response:
    method = request.method
    base = f"/services/data/v{version}"
    if not rest:
        _method_check(method, ("GET",))
        return _json(
            {
                "encoding": "UTF-8",
                "maxBatchSize": 200,
                "sobjects": [spec.summary(version) for spec in SCHEMAS.values()],
            },
            headers=usage,
        )
    spec = schema(rest[0])
    if len(rest) == 1:
        _method_check(method, ("GET", "POST"))
        if method == "POST":
            record_id = store.create(data, spec, body, owner, now)
            return _json(
                {"id": record_id, "success": True, "errors": []},
                status=201,
                headers={
                    **usage,
                    "Location": f"{base}/sobjects/{spec.name}/{record_id}",
                },
            )
        return _json(
            {"objectDescribe": spec.summary(version), "recentItems": []}, headers=usage
        )
    if len(rest) == 2 and rest[1] == "describe":
        _method_check(method, ("GET",))
        return _json(spec.describe(version), headers=usage)
    if len(rest) != 2:
        raise not_found()
    _method_check(method, ("GET", "PATCH", "DELETE"))
    if method == "PATCH":
        store.update(data, spec, rest[1], body, now)
        return Response(status_code=204, headers=usage)
    if method == "DELETE":
        store.delete(data, spec, rest[1])
        return Response(status_code=204, headers=usage)
    row = store.get(data, spec, rest[1])
    wanted = request.query_params.get("fields")
    names = [f.name for f in spec.fields]
    if wanted:
        names = []
        for raw in wanted.split(","):
            found = spec.field(raw.strip())
            if found is None:
                raise no_such_column(raw.strip(), spec)
            names.append(found.name)
    out: dict[str, Any] = {"attributes": _attributes(spec.name, row["Id"], base)}
    out.update({name: row.get(name) for name in names})
    return _json(out, headers=usage)
