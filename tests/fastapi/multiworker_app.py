"""App factory for the multi-worker test: ``uvicorn --factory multiworker_app:create_app``.

Reads its configuration from the JSON file named by ``SFO_MULTIWORKER_CONFIG`` (store
kind, DSN or Redis URL, table/key prefix, cipher key, emulator URL).
"""

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header

from sfoauth_core.config import ConnectedApp
from sfoauth_core.storage import TokenCipher
from sfoauth_fastapi import SalesforceSession, SFOAuth


async def header_user(x_user: Annotated[str | None, Header()] = None) -> str | None:
    return x_user


def create_app() -> FastAPI:
    with open(os.environ["SFO_MULTIWORKER_CONFIG"], encoding="utf-8") as fh:
        config = json.load(fh)
    cipher = TokenCipher([config["cipher_key"]])
    closers: list[Any] = []
    if config["store"] == "postgres":
        from sqlalchemy.ext.asyncio import create_async_engine

        from sfoauth_fastapi.storage import SQLAlchemyTokenStore, build_tables

        engine = create_async_engine(config["url"], pool_size=5, max_overflow=5)
        store: Any = SQLAlchemyTokenStore(
            engine, cipher, tables=build_tables(prefix=config["prefix"])
        )
        closers.append(engine.dispose)
    else:
        from redis.asyncio import Redis

        from sfoauth_core.storage import AsyncRedisTokenStore

        redis = Redis.from_url(config["url"])
        store = AsyncRedisTokenStore(redis, cipher, prefix=config["prefix"])
        closers.append(redis.aclose)
    app_config = ConnectedApp(
        client_id=config["client_id"],
        client_secret=config["client_secret"],
        redirect_uri=config["redirect_uri"],
        login_url=config["login_url"],
        scopes=config["scopes"],
        allow_loopback=True,
    )
    sf = SFOAuth(
        app_config,
        store=store,
        secret_key=config["secret_key"],
        user_key=header_user,
        cookie_secure=False,
    )

    @asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        async with sf.lifespan(api):
            yield
        for close in closers:
            await close()

    api = FastAPI(lifespan=lifespan)
    api.include_router(sf.router, prefix="/salesforce")
    sf.add_exception_handlers(api)

    @api.get("/health")
    async def health() -> dict[str, int]:
        return {"pid": os.getpid()}

    @api.get("/limits")
    async def limits(session: Annotated[SalesforceSession, Depends(sf.session)]) -> Any:
        r = await session.client.get("/services/data/v62.0/limits")
        return {"status": r.status_code, "pid": os.getpid()}

    return api
