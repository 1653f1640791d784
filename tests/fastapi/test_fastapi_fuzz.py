"""Schema fuzz of the router (Hypothesis over its OpenAPI parameters): never a 500,
never a 422, never a secret in a body; and ``next`` validation over any string."""

import asyncio
from urllib.parse import urljoin, urlsplit

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.fastapi import APP_ORIGIN, SECRET_KEY, make_api, make_sf

from sfoauth_core.testing import SalesforceEmulator
from sfoauth_fastapi._urls import safe_next_path

EMU = SalesforceEmulator()
EMU.auto_approve = "jane@acme.com"
SF = make_sf(EMU)
API = make_api(SF)
SCHEMA = API.openapi()

text = st.text(max_size=300) | st.sampled_from(
    ["//evil", "https://evil", "/ok", "api", "login consent", "\x00", "%00", "a" * 3000]
)


def operations() -> list[tuple[str, str, list[str]]]:
    found = []
    for path, item in SCHEMA["paths"].items():
        if not path.startswith("/salesforce"):
            continue
        for method, op in item.items():
            names = [p["name"] for p in op.get("parameters", []) if p["in"] == "query"]
            found.append((method.upper(), path, names))
    return found


OPERATIONS = operations()


FORM_FIELDS = {("POST", "/salesforce/login"): ["next", "scope", "prompt", "login_hint"]}


@st.composite
def requests(
    draw: st.DrawFn,
) -> tuple[str, str, dict[str, str], dict[str, str], dict[str, str]]:
    method, path, names = draw(st.sampled_from(OPERATIONS))
    chosen = draw(st.lists(st.sampled_from(names), unique=True)) if names else []
    params = {name: draw(text) for name in chosen}
    fields = FORM_FIELDS.get((method, path), [])
    chosen = draw(st.lists(st.sampled_from(fields), unique=True)) if fields else []
    form = {name: draw(text) for name in chosen}
    cookies = draw(
        st.dictionaries(
            st.sampled_from(["sfoauth_flow", "sfoauth_uid", "sfoauth_disconnected"]),
            st.text(
                alphabet=st.characters(min_codepoint=33, max_codepoint=126),
                max_size=200,
            ),
        )
    )
    return method, path, params, form, cookies


async def send(
    method: str,
    path: str,
    params: dict[str, str],
    form: dict[str, str],
    cookies: dict[str, str],
) -> httpx.Response:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=API), base_url=APP_ORIGIN, cookies=cookies
    ) as client:
        return await client.request(method, path, params=params, data=form or None)


def test_operations_cover_the_router():
    assert {(m, p) for m, p, _ in OPERATIONS} == {
        ("GET", "/salesforce/login"),
        ("POST", "/salesforce/login"),
        ("GET", "/salesforce/callback"),
        ("POST", "/salesforce/disconnect"),
    }


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_router_never_fails_with_500_or_422(request):
    method, path, params, form, cookies = request
    response = asyncio.run(send(method, path, params, form, cookies))
    assert response.status_code < 500 or response.status_code == 503
    assert response.status_code != 422
    assert SECRET_KEY not in response.text
    if response.status_code >= 400:
        assert response.json()["detail"].startswith("SFOAUTH_")
    location = response.headers.get("location", "")
    if location and not location.startswith(EMU.org.my_domain_url):
        assert urljoin(APP_ORIGIN + "/", location).startswith(APP_ORIGIN + "/")


@settings(max_examples=2000)
@given(
    st.text(max_size=100)
    | st.from_regex(r"[/\\]{1,3}[a-z.:@%0-9]{0,20}", fullmatch=True)
)
def test_next_is_same_origin_or_default(candidate):
    result = safe_next_path(candidate, "/home")
    assert result == "/home" or result == candidate
    parts = urlsplit(result)
    assert not parts.scheme and not parts.netloc
    assert result.startswith("/") and not result.startswith("//") and "\\" not in result
    for origin in ("https://app.example.com/a/b", "http://localhost:8000/"):
        assert urlsplit(urljoin(origin, result)).netloc == urlsplit(origin).netloc


cookie_names = st.sampled_from(["sfoauth_uid", "__Host-sfoauth_uid", "other", "a"])
cookie_values = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40
)


@settings(max_examples=300, deadline=None)
@given(
    headers=st.lists(
        st.lists(st.tuples(cookie_names, cookie_values), max_size=4).map(
            lambda pairs: "; ".join(f"{k}={v}" for k, v in pairs)
        ),
        max_size=3,
    ),
    name=cookie_names,
)
def test_identity_cookie_reads_like_request_cookies(headers, name):
    # sf.session reads its cookie from the raw ASGI headers (the hot path); it must
    # agree with Starlette's request.cookies for any header, repeated headers included.
    from starlette.requests import Request

    from sfoauth_fastapi.dependencies import _cookie

    scope = {
        "type": "http",
        "headers": [(b"cookie", h.encode("latin-1")) for h in headers],
    }
    assert _cookie(Request(scope), name) == Request(scope).cookies.get(name)
