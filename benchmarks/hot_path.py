"""Hot path: ``TokenManager.valid_token`` on a cached token, in ns per call.

Baselines measured in the same run: a plain ``dict`` lookup and a
``cachetools.TTLCache`` lookup. Target: <= 1 us per call, no I/O, no lock.

Run: .venv/bin/python benchmarks/hot_path.py
"""

from __future__ import annotations

import timeit

from cachetools import TTLCache

from sfoauth_core.config import ConnectedApp
from sfoauth_core.http.client import SalesforceOAuth
from sfoauth_core.manager import TokenManager
from sfoauth_core.storage import InMemoryTokenStore
from sfoauth_core.tokens import Token

N = 1_000_000


class CountingStore(InMemoryTokenStore):
    reads = 0

    def get(self, key):  # type: ignore[no-untyped-def]
        CountingStore.reads += 1
        return super().get(key)


def per_call_ns(stmt, number: int = N, repeat: int = 5) -> float:
    return min(timeit.repeat(stmt, number=number, repeat=repeat)) / number * 1e9


def main() -> None:
    token = Token(access_token="00D!x", instance_url="https://acme.my.salesforce.com")
    app = ConnectedApp(client_id="3MVG9Example", client_secret="s")
    oauth = SalesforceOAuth(app)
    store = CountingStore()
    manager = TokenManager(oauth, store)
    manager.save("00D/005", token, revoke_superseded=False)
    plain = {"00D/005": token}
    ttl: TTLCache[str, Token] = TTLCache(maxsize=10_000, ttl=300)
    ttl["00D/005"] = token
    assert manager.valid_token("00D/005") is token
    reads_before = CountingStore.reads

    dict_ns = per_call_ns(lambda: plain["00D/005"])
    ttl_ns = per_call_ns(lambda: ttl["00D/005"])
    ours_ns = per_call_ns(lambda: manager.valid_token("00D/005"))
    assert CountingStore.reads == reads_before, "valid_token touched the store"
    print("hot path: valid_token on a cached token (lower is better)")
    print(f"  dict lookup            {dict_ns:8.1f} ns/call")
    print(f"  cachetools.TTLCache    {ttl_ns:8.1f} ns/call")
    print(f"  TokenManager.valid_token {ours_ns:6.1f} ns/call")
    print(
        f"  ratio vs dict: {ours_ns / dict_ns:.1f}x, vs TTLCache: {ours_ns / ttl_ns:.2f}x"
    )
    print(f"  store reads during {5 * N:,} calls: {CountingStore.reads - reads_before}")
    print(f"  target <= 1000 ns: {'met' if ours_ns <= 1000 else 'MISSED'}")
    oauth.close()


if __name__ == "__main__":
    main()
