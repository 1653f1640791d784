"""The fault-injection soak, CI-sized (benchmarks/soak.py; issue 13).

Four worker processes share one store per run (Redis, SQLAlchemy on PostgreSQL, Django
on PostgreSQL) and send requests over ten connections whose access tokens expire every
two seconds, against the emulator with refresh-token rotation and reuse detection, while
503s, timeouts, latency spikes, a dropped rotation answer, SIGKILLed workers and a store
outage are injected. The same zero targets as the full run:

* no rotated refresh token is lost by a live worker while the store is up;
* every grant revoked by reuse detection is explained by an answer that never reached a
  live worker (the injected drop, a timed-out answer that Salesforce processed) or by a
  worker killed between Salesforce's answer and its store write, and ends as
  ``needs_reauth`` with Salesforce's reason;
* no 401 ``INVALID_SESSION_ID`` reaches the application;
* the store is back in use within seconds of each outage.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import soak  # noqa: E402

pytestmark = [pytest.mark.postgres, pytest.mark.redis]
REQUIRE_SERVICES = os.environ.get("SFOAUTH_REQUIRE_SERVICES") == "1"


@pytest.fixture
def services(postgres_dsn: str, redis_url: str) -> None:
    if shutil.which("redis-server") is None:
        message = "!!! redis-server is not installed: the Redis soak did NOT run."
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)


@pytest.mark.parametrize("store", soak.STORES)
def test_soak_meets_its_zero_targets(store: str, services: None) -> None:
    result = soak.run_soak(
        store,
        requests=600,
        connections=10,
        workers=4,
        lifetime=2.0,
        kill_every=200,
        drops=1,
    )
    print(result.row())
    assert soak.check(result) == [], result.row()
    # The two avoidable causes are avoided (the durable "refresh in flight" marker):
    # no replay after the store failed at the write, none after a killed worker's
    # refresh still in flight.
    assert result.revoked_by_outage == 0, result.row()
    assert result.revoked_by_inflight_kill == 0, result.row()
    assert result.served > 0
    assert result.kills >= 2
    assert result.drops == 1
    assert result.faults_injected["503"] + result.faults_injected["timeout"] >= 1
    # Every revoked grant was found out and flagged, with Salesforce's reason.
    assert result.needs_reauth >= result.revoked_grants
    if result.revoked_grants:
        assert all("invalid_grant" in reason for reason in result.needs_reauth_reasons)
    # The store is back in use after each outage that a later refresh needed.
    assert result.recoveries, "no refresh succeeded after a store outage"
    assert max(result.recoveries) < 15.0, result.recoveries
