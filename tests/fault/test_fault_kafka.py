"""The Kafka broker SIGKILLed and restarted under load, more than once, while a
producer keeps producing (and retrying) and approvals keep executing.

test_concurrency.py::test_kafka_broker_restart_loses_no_outcome stops the
broker once with a fixed backlog; this one keeps the load running through
every outage.
"""

from __future__ import annotations

import collections
import time

import pytest

from faultlib import (RetryingProducer, alive_and_same, assert_one_outcome_each,
                      keys_by_approval, results_by_approval, scale, statuses, wait_all_terminal)
from harness import System
from services import scaled, wait_for

# Kills or restarts a service: under xdist, on services of its own (tests/conftest.py).
pytestmark = pytest.mark.private_services

CYCLES = scale(2, 6)          # broker kills
RATE = 25                     # envelopes per second
OUTAGE = 2.0                  # seconds the broker stays dead before it is started again


def test_broker_killed_under_load(system: System) -> None:
    system.setup(mode="never", rules=[])
    system.stub.program("/v1/refunds", delay=0.05)
    workers = [system.worker(f"w{i}", CS_EXEC_CONCURRENCY="8") for i in range(2)]
    pids = {w.name: w.pid for w in workers}
    producer = RetryingProducer(
        system.kafka.bootstrap, system.topics["requests"],
        lambda i: system.envelope(f"k{i}", path=f"/v1/refunds/k{i}"), rate=RATE,
        sign=system.signed).start()
    outages = []
    try:
        for cycle in range(CYCLES):
            # Load flows: something new is stored and executed since the last outage.
            before = sum(statuses(system).values())
            wait_for(lambda: statuses(system).get("executed", 0) >= before + 20, 60,
                     what=f"progress before outage {cycle + 1}")
            t0 = time.monotonic()
            system.kafka.kill()
            executed_at_kill = statuses(system).get("executed", 0)
            time.sleep(scaled(OUTAGE))
            # Executions continue while the broker is down; outcomes wait in the WAL.
            backlog = system.event_lag()
            system.kafka.restart()
            outages.append((time.monotonic() - t0, executed_at_kill, backlog))
        acked = len(producer.acked)
        wait_for(lambda: statuses(system).get("executed", 0) >= acked + 20, 90,
                 what="ingest and execution to resume after the last restart")
        time.sleep(scaled(2))  # some load after the last outage
    finally:
        producer.stop()
    produced = set(producer.produced)
    print(f"{len(produced)} envelopes, {producer.redelivered} produced again, outages "
          f"(seconds, executed at kill, event slot lag bytes) {outages}")

    counts = wait_all_terminal(system, len(produced), timeout=120)
    # Every request ingested exactly once.
    per_request = collections.Counter(r for (r,) in system.sql("SELECT request_id FROM approvals"))
    assert set(per_request) == produced, f"missing: {sorted(produced - set(per_request))[:5]}"
    assert set(per_request.values()) == {1}
    assert counts == {"executed": len(produced)}, counts
    # Every call made once.
    seen = keys_by_approval(system.stub.requests("/v1/refunds"))
    assert len(seen) == len(produced) and set(seen.values()) == {1}
    # Every outcome published (at least once, one outcome per approval).
    system.wait_events_published(90)
    ids = {str(i) for (i,) in system.sql("SELECT id FROM approvals")}
    grouped = results_by_approval(system, ids)
    assert set(grouped) == ids, "a result for an approval that does not exist"
    dups = assert_one_outcome_each(grouped)
    print(f"results: {len(grouped)} approvals, {dups} duplicate deliveries")
    # The workers recovered by themselves.
    alive_and_same(workers, pids)
    assert any(b > 0 for _, _, b in outages), "no outcome ever waited for the broker"
