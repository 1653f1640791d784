"""Issue 10 item 8: the documented FastAPI set-ups run as written.

* ``SQLAlchemyTokenStore(..., create_tables=True)`` creates its tables when
  ``sf.lifespan`` starts, so a fresh SQLite file works on the first request;
* without tables, every request answers 503 ``SFOAUTH_STORAGE_UNAVAILABLE`` *and* the
  log says which table is missing and how to create it (never a secret);
* the README's FastAPI snippet, executed as it is, serves a login against the
  emulator (it once answered 503 on every request and used undefined names).
"""

# No `from __future__ import annotations`: FastAPI apps are built below.

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.fastapi import (
    SECRET_KEY,
    browser_login,
    header_user,
    make_api,
    make_sf,
)

pytest.importorskip("aiosqlite")

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from sfoauth_core.storage import TokenCipher
from sfoauth_core.testing import SalesforceEmulator
from sfoauth_fastapi.storage import SQLAlchemyTokenStore

pytestmark = pytest.mark.anyio

README = Path(__file__).resolve().parents[2] / "README.md"
PRODUCTION = "https://app.example.com"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # aiosqlite runs on asyncio only


async def table_names(engine: Any) -> set[str]:
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
    return set(names)


async def test_create_tables_runs_in_the_lifespan(emu, browser_factory, tmp_path):
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'app.db'}")
    store = SQLAlchemyTokenStore(
        engine, TokenCipher([TokenCipher.generate_key()]), create_tables=True
    )
    sf = make_sf(emu, store=store)
    api = make_api(sf)
    assert await table_names(engine) == set()
    async with sf.lifespan(api):
        assert await table_names(engine) == {"sfoauth_tokens", "sfoauth_pending_flows"}
        browser = browser_factory(api)
        await browser_login(emu, browser)
        assert (await browser.get("/me")).json()["status"] == 200
    # Idempotent: a second start-up keeps the data.
    sf = make_sf(emu, store=store)
    async with sf.lifespan(make_api(sf)):
        assert (await store.get(next(iter(await keys(engine))))) is not None
    await engine.dispose()


async def keys(engine: Any) -> list[str]:
    from sqlalchemy import text

    async with engine.connect() as conn:
        return [
            row[0] for row in await conn.execute(text("SELECT key FROM sfoauth_tokens"))
        ]


async def test_missing_tables_answer_503_and_log_their_cause(
    emu, browser_factory, tmp_path, caplog
):
    caplog.set_level(logging.DEBUG)
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    store = SQLAlchemyTokenStore(engine, TokenCipher([TokenCipher.generate_key()]))
    sf = make_sf(emu, store=store, user_key=header_user)
    browser = browser_factory(make_api(sf), **{"x-user": "alice"})

    r = await browser.post("/salesforce/login")
    assert r.status_code == 503 and r.json() == {
        "detail": "SFOAUTH_STORAGE_UNAVAILABLE"
    }
    r = await browser.get("/me", headers={"accept": "application/json"})
    assert r.status_code == 503 and r.json() == {
        "detail": "SFOAUTH_STORAGE_UNAVAILABLE"
    }
    r = await browser.get("/me", headers={"accept": "text/html"})
    assert r.status_code == 503
    assert "<h1>Temporarily unavailable</h1>" in r.text

    errors = [
        rec.getMessage() for rec in caplog.records if rec.levelno >= logging.ERROR
    ]
    text = "\n".join(errors)
    assert "table 'sfoauth_pending_flows' does not exist" in text
    assert "table 'sfoauth_tokens' does not exist" in text
    assert "create_tables" in text
    ours = "\n".join(
        rec.getMessage() for rec in caplog.records if rec.name.startswith("sfoauth")
    )
    assert SECRET_KEY not in ours and "alice" not in ours
    assert "SELECT" not in ours and "INSERT" not in ours
    await engine.dispose()


@pytest.mark.postgres
async def test_a_missing_table_on_postgres_names_itself(postgres_dsn):
    import uuid

    from sfoauth_core.exceptions import StorageError
    from sfoauth_fastapi.storage import build_tables

    engine = create_async_engine(
        postgres_dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    )
    missing = build_tables(prefix=f"t{uuid.uuid4().hex[:10]}_")
    store = SQLAlchemyTokenStore(
        engine, TokenCipher([TokenCipher.generate_key()]), tables=missing
    )
    try:
        for attempt in (store.get("user:alice"), _locked_read(store)):
            with pytest.raises(StorageError) as caught:
                await attempt
            assert f"table '{missing.tokens.name}' does not exist" in str(caught.value)
            assert "SELECT" not in str(caught.value)  # never the SQL
    finally:
        await engine.dispose()


async def _locked_read(store: SQLAlchemyTokenStore) -> None:
    async with store.lock("user:alice"):
        pass


# The README's FastAPI snippet -----------------------------------------------------------
def readme_fastapi_block() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## FastAPI\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the README's FastAPI section has one Python block"
    return blocks[0]


@pytest.fixture
def emulator_url() -> Iterator[tuple[SalesforceEmulator, str]]:
    emu = SalesforceEmulator()
    emu.auto_approve = "jane@acme.com"
    with emu.serve() as url:
        yield emu, url


async def test_the_readme_snippet_serves_a_login(emulator_url, tmp_path, monkeypatch):
    emu, url = emulator_url
    web = emu.apps["web"]
    callback = PRODUCTION + "/salesforce/callback"  # https: the cookies are Secure
    env = {
        "SFOAUTH_CLIENT_ID": web.client_id,
        "SFOAUTH_CLIENT_SECRET": web.client_secret,
        "SFOAUTH_REDIRECT_URI": callback,
        "SFOAUTH_LOGIN_URL": url,
        "SFOAUTH_ALLOW_LOOPBACK": "1",  # the emulator is on http://127.0.0.1
        "SFOAUTH_TOKEN_KEY": TokenCipher.generate_key(),
        "SFOAUTH_SECRET_KEY": SECRET_KEY,
        "SFOAUTH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'readme.db'}",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if callback not in web.callback_urls:  # registered by default on newer emulators
        web.callback_urls.append(callback)
    namespace: dict[str, Any] = {"__name__": "readme_fastapi"}
    exec(compile(readme_fastapi_block(), "README.md", "exec"), namespace)  # noqa: S102
    api, sf = namespace["api"], namespace["sf"]
    async with sf.lifespan(api):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=api), base_url=PRODUCTION
        ) as browser:
            page = await browser.get(
                "/salesforce/login?next=/limits", headers={"accept": "text/html"}
            )
            assert page.status_code == 200 and "Continue to Salesforce" in page.text
            login = await browser.post("/salesforce/login", data={"next": "/limits"})
            async with httpx.AsyncClient() as at_salesforce:
                answer = await at_salesforce.get(login.headers["location"])
            assert answer.status_code == 302, answer.text
            done = await browser.get(answer.headers["location"])
            assert (done.status_code, done.headers["location"]) == (303, "/limits")
            limits = await browser.get("/limits")
            assert limits.status_code == 200, limits.text
            assert "DailyApiRequests" in limits.json()


# docs/fastapi.md's one-file quickstart --------------------------------------------------
DOCS = README.parent / "docs" / "fastapi.md"


def quickstart_file() -> str:
    """The blocks tagged ``<!-- journey: fastapi-app ... -->``, as one ``main.py``."""
    lines = DOCS.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if lines[i].startswith("<!-- journey: fastapi-app"):
            while not lines[i].startswith("```python"):
                i += 1
            end = lines.index("```", i + 1)
            blocks.append("\n".join(lines[i + 1 : end]))
            i = end
        i += 1
    assert blocks, "docs/fastapi.md has a quickstart tagged for the docs journey"
    return "\n\n".join(blocks)


async def test_the_docs_quickstart_file_serves_a_login(
    emulator_url, tmp_path, monkeypatch
):
    _emu, url = emulator_url
    source = quickstart_file()
    assert "http://127.0.0.1:8999" in source  # `sfoauth emulator`'s address
    monkeypatch.chdir(tmp_path)  # the file's SQLite database goes here
    monkeypatch.setenv("SFOAUTH_TOKEN_KEY", TokenCipher.generate_key())
    monkeypatch.delenv("APP_SECRET_KEY", raising=False)
    namespace: dict[str, Any] = {"__name__": "main"}
    code = compile(source.replace("http://127.0.0.1:8999", url), "main.py", "exec")
    exec(code, namespace)  # noqa: S102 - the documentation's own example
    api, sf = namespace["api"], namespace["sf"]
    async with sf.lifespan(api):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=api), base_url="http://127.0.0.1:8000"
        ) as browser:
            first = await browser.get("/limits", headers={"accept": "text/html"})
            assert first.headers["location"] == "/salesforce/login?next=%2Flimits"
            page = await browser.get(first.headers["location"])
            assert "Continue to Salesforce" in page.text
            login = await browser.post("/salesforce/login", data={"next": "/limits"})
            async with httpx.AsyncClient() as at_salesforce:
                answer = await at_salesforce.get(login.headers["location"])
            assert answer.status_code == 302, answer.text
            done = await browser.get(answer.headers["location"])
            assert (done.status_code, done.headers["location"]) == (303, "/limits")
            limits = await browser.get("/limits")
            assert limits.status_code == 200, limits.text
            assert "DailyApiRequests" in limits.json()["limits"]
    assert (tmp_path / "sfoauth.db").exists()
