"""Django hot path: a ``@salesforce_required`` view reading ``request.salesforce.token``
(valid token in the in-process cache) vs the same view undecorated, with Django's test
client, in one run. Both views read ``request.user``; database sessions.

Target: decorated <= 1.05x undecorated, and zero extra database queries.

Run: .venv/bin/python benchmarks/django_view.py
"""

from __future__ import annotations

import importlib
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [
    os.path.join(HERE, "..", "tests", "django"),
    os.path.join(HERE, "..", "tests"),  # the `support` package the settings name
    os.path.join(HERE, ".."),
]

import django  # noqa: E402
from django.conf import settings  # noqa: E402

ROUNDS = 7
REQUESTS = 2_000


def configure() -> None:
    test_settings = importlib.import_module("settings")  # tests/django/settings.py
    values = {k: getattr(test_settings, k) for k in dir(test_settings) if k.isupper()}
    values["SFOAUTH"] = {**values["SFOAUTH"], "HTTP_CLIENT_FACTORY": None}
    values["DATABASES"] = {"default": values["DATABASES"]["default"]}
    settings.configure(**values)
    django.setup()


def main() -> None:
    configure()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment

    from sfoauth_core.tokens import Token
    from sfoauth_django.models import get_token_model, user_key
    from sfoauth_django.storage import DjangoTokenStore

    setup_test_environment()
    connection.creation.create_test_db(verbosity=0)
    org, sf_user = "00DXX0000001abc2AA", "005XX000001xyzQAAE"
    user = get_user_model().objects.create_user("bench", password="x")
    key = user_key(org, sf_user)
    get_token_model().objects.create(
        key=key, user=user, org_id=org, salesforce_user_id=sf_user
    )
    DjangoTokenStore().save(
        key,
        Token(
            access_token="00Dbench!access",
            refresh_token="5Aep.bench",
            instance_url="https://acme.my.salesforce.com",
            org_id=org,
            user_id=sf_user,
        ),
    )
    client = Client()
    client.force_login(user)
    assert client.get("/decorated/").status_code == 200  # warm every cache
    assert client.get("/plain/").status_code == 200

    with CaptureQueriesContext(connection) as plain_q:
        assert client.get("/plain/").content == b"bench"
    with CaptureQueriesContext(connection) as decorated_q:
        assert client.get("/decorated/").content == b"bench" + org.encode()
    # Counted now: every request start clears Django's query log.
    plain_queries = len(plain_q.captured_queries)
    decorated_queries = len(decorated_q.captured_queries)

    def run(path: str) -> float:
        start = time.perf_counter()
        for _ in range(REQUESTS):
            client.get(path)
        return (time.perf_counter() - start) / REQUESTS * 1e6

    plain_us, decorated_us = [], []
    for _ in range(ROUNDS):  # interleaved, so drift hits both alike
        plain_us.append(run("/plain/"))
        decorated_us.append(run("/decorated/"))
    plain_best, decorated_best = min(plain_us), min(decorated_us)
    ratio = decorated_best / plain_best
    extra = decorated_queries - plain_queries
    print("Django view, valid cached token (lower is better)")
    print(f"  undecorated view      {plain_best:8.1f} us/request")
    print(f"  @salesforce_required  {decorated_best:8.1f} us/request")
    print(
        f"  ratio: {ratio:.3f}x (target <= 1.05x: {'met' if ratio <= 1.05 else 'MISSED'})"
    )
    print(
        f"  queries per request: {plain_queries} vs {decorated_queries} (extra: {extra})"
    )


if __name__ == "__main__":
    main()
