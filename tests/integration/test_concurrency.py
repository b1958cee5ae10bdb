"""Many workers, dying workers, shutdown, and a broker that goes away."""

from __future__ import annotations

import collections
import time

import pytest

from harness import System
from services import scaled, wait_for


def count_status(system: System) -> dict[str, int]:
    return dict(system.sql("SELECT status, count(*) FROM approvals GROUP BY status"))


def test_four_workers_race_over_a_thousand_calls(system: System) -> None:
    system.setup(mode="never", rules=[])
    system.stub.program("/v1/refunds", delay=0.02)
    workers = [system.worker(f"w{i}", CS_EXEC_CONCURRENCY="32", CS_EXEC_CLAIM_BATCH="16")
               for i in range(4)]
    system.produce(*[system.envelope(f"r{i}", amount=i) for i in range(1000)])
    wait_for(lambda: count_status(system).get("executed", 0) == 1000, 120,
             what="1000 executions")
    keys = collections.Counter(r.headers["idempotency-key"] for r in system.stub.requests())
    assert len(keys) == 1000 and set(keys.values()) == {1}, "a call ran twice or not at all"
    owners = system.sql("SELECT actor, count(*) FROM audit WHERE action = 'approval.executed' "
                        "GROUP BY actor")
    assert len(owners) >= 2, f"work was not shared: {owners}"
    assert sum(n for _, n in owners) == 1000
    results = system.topic("results", expect=1000, timeout=60)
    assert len({m["key"] for m in results}) == 1000
    for w in workers:
        assert w.stop() == 0


def test_killed_worker_without_idempotency_is_failed_outcome_unknown(system: System) -> None:
    system.setup(mode="never", rules=[], timeout_ms=3000)
    system.stub.program("/v1/refunds", delay=2.5)
    victim = system.worker("victim", CS_LEASE_MARGIN_MS="1000")
    system.scheduler()
    system.produce(system.envelope("r1"))
    system.stub.wait_for(1, "/v1/refunds", timeout=20)  # the call is in flight
    victim.kill()
    system.worker("survivor", CS_LEASE_MARGIN_MS="1000")
    f = system.wait_status("r1", "failed", timeout=30)
    assert f["error_code"] == "outcome_unknown"
    time.sleep(scaled(1))  # give a wrong re-run the chance to show up
    assert system.stub.count("/v1/refunds") == 1, "the call was blindly re-run"
    (res,) = system.topic("results", expect=1)
    assert res["value"]["error_code"] == "outcome_unknown"


def test_killed_worker_with_idempotency_is_retried_with_same_key(system: System) -> None:
    system.setup(mode="never", rules=[], timeout_ms=3000, idempotency_keys=True)
    system.stub.program("/v1/refunds", delay=2.5, times=1)
    victim = system.worker("victim", CS_LEASE_MARGIN_MS="1000")
    system.scheduler()
    system.produce(system.envelope("r1"))
    system.stub.wait_for(1, "/v1/refunds", timeout=20)
    victim.kill()
    system.worker("survivor", CS_LEASE_MARGIN_MS="1000")
    e = system.wait_status("r1", "executed", timeout=30)
    assert e["attempts"] == 2
    calls = system.stub.requests("/v1/refunds")
    assert len(calls) == 2
    assert calls[0].headers["idempotency-key"] == calls[1].headers["idempotency-key"]
    requeued = system.sql("SELECT count(*) FROM audit WHERE action = 'execution.requeued'")
    assert requeued[0][0] == 1


def test_sigterm_finishes_calls_in_flight(system: System) -> None:
    system.setup(mode="never", rules=[])
    system.stub.program("/v1/refunds", delay=1.5)
    w = system.worker()
    system.produce(system.envelope("r1"))
    system.stub.wait_for(1, "/v1/refunds", timeout=20)
    assert w.stop() == 0
    assert system.approval("r1")["status"] == "executed"
    (res,) = system.topic("results", expect=1)  # published during shutdown
    assert res["value"]["status"] == "executed"


def test_retries_on_5xx_only_with_idempotency(system: System) -> None:
    system.setup(mode="never", rules=[], idempotency_keys=True, attempts=3)
    system.stub.program("/v1/refunds/flaky", status=503, retry_after=0, times=2)
    system.stub.program("/v1/refunds/limited", status=429, retry_after=1, times=1)
    system.worker()
    system.produce(system.envelope("flaky", path="/v1/refunds/flaky"),
                   system.envelope("limited", path="/v1/refunds/limited"))
    f = system.wait_status("flaky", "executed", timeout=30)
    assert f["response_status"] == 200 and f["attempts"] == 3
    lim = system.wait_status("limited", "executed", timeout=30)
    assert lim["response_status"] == 200
    t = [r.monotonic for r in system.stub.requests("/v1/refunds/limited")]
    assert len(t) == 2 and t[1] - t[0] >= 0.9, "Retry-After was not honoured"


def test_5xx_without_idempotency_is_not_retried(system: System) -> None:
    system.setup(mode="never", rules=[], attempts=3)
    system.stub.program("/v1/refunds", status=502, body=b"bad gateway")
    system.worker()
    system.produce(system.envelope("r1"))
    e = system.wait_status("r1", "executed")
    assert e["response_status"] == 502 and bytes(e["response_body"]) == b"bad gateway"
    assert system.stub.count() == 1


@pytest.mark.private_services  # kills a service (tests/conftest.py)
def test_kafka_broker_restart_loses_no_outcome(system: System) -> None:
    system.setup(mode="never", rules=[])
    system.stub.program("/v1/refunds", delay=0.05)
    system.worker(CS_EXEC_CONCURRENCY="4")
    system.produce(*[system.envelope(f"a{i}") for i in range(50)])
    # All 50 stored (the broker is not needed for what follows) and some executed.
    wait_for(lambda: sum(count_status(system).values()) == 50 and
             count_status(system).get("executed", 0) >= 5, 30, what="50 stored, some executed")
    system.kafka.kill()
    try:
        # Calls keep executing while the broker is down; outcomes wait in the WAL, the slot
        # keeping them (its confirmed position stays behind the outcomes' commits).
        wait_for(lambda: count_status(system).get("executed", 0) == 50, 60,
                 what="all executions during the outage")
        backlog = system.event_lag()
    finally:
        system.kafka.restart()
    system.produce(*[system.envelope(f"b{i}") for i in range(50)])
    wait_for(lambda: count_status(system).get("executed", 0) == 100, 90,
             what="executions after the restart")
    system.wait_events_published(90)
    assert backlog > 0, "nothing waited in the event slot during the outage"
    results = system.topic("results", expect=100, timeout=60)
    assert len({m["key"] for m in results}) == 100
    assert system.stub.count() == 100


@pytest.mark.private_services  # kills a service (tests/conftest.py)
def test_postgres_outage_every_thread_reconnects(system: System) -> None:
    """Postgres goes away under a running worker: its ingest, relay, notifier and
    executor threads reconnect at the same time, each on its own connection with
    its own backoff and its own rate-limited warning (cs_db_reconnect shares
    nothing between threads: run under make tsan), and nothing is lost."""
    system.setup(mode="never", rules=[])
    w = system.worker()
    system.produce(system.envelope("before"))
    system.wait_status("before", "executed")
    system.pg.kill()
    try:
        wait_for(lambda: w.text().count("Postgres unavailable") >= 2, 60,
                 what="two of the worker's connections to warn, each for itself")
        system.produce(system.envelope("during"))  # waits in Kafka for the database
    finally:
        system.pg.start()
    system.wait_status("during", "executed", timeout=90)
    warned = {line.split("Postgres unavailable to ", 1)[1].split(",", 1)[0]
              for line in w.text().splitlines() if "Postgres unavailable to " in line}
    assert len(warned) >= 2, f"warnings came from {warned}"
    # At least once: Postgres writes a slot's confirmed position to disk lazily, so after
    # its crash "before" may be published again; wait for the two distinct outcomes.
    wait_for(lambda: {m["value"]["request_id"] for m in system.topic("results", timeout=2)}
             >= {"before", "during"}, 60, what="both outcomes on the results topic")
    assert w.stop() == 0
