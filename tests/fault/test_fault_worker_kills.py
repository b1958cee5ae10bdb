"""SIGKILL of workers mid-call, round after round, with a scheduler rescuing
their lapsed leases: a call is never run twice without idempotency keys,
is always finished with them, and nothing stays stuck.

test_concurrency.py has the single-round versions; these run many rounds
with several workers (CS_FAULT_LONG=1: more calls, more rounds).
"""

from __future__ import annotations

import collections
import random
import time

import pytest

from faultlib import (alive_and_same, keys_by_approval, results_by_approval, scale, seed,
                      wait_all_terminal)
from harness import Proc, System
from services import scaled, wait_for, worker_ready

CALLS = scale(100, 300)          # per batch; another batch is produced while kills remain
ROUNDS = scale(8, 100)           # SIGKILLs
WORKERS = 3
STUB_DELAY = 0.8                 # seconds a provider call takes
TIMEOUT_MS = 3000                # the policy's execution timeout
MAX_ATTEMPTS = 20                # the policy's attempts with idempotency keys
MARGIN_MS = 1000                 # CS_LEASE_MARGIN_MS: a lease lapses 4 s after the claim
WORKER_ENV = {"CS_EXEC_CONCURRENCY": "4", "CS_EXEC_CLAIM_BATCH": "2",
              "CS_LEASE_MARGIN_MS": str(MARGIN_MS), "CS_POLL_INTERVAL_MS": "200",
              "CS_SHUTDOWN_GRACE_MS": "10000"}


def _inflight(system: System) -> dict[str, int]:
    # A lease owner is "<instance id>/<per-start nonce>".
    return dict(system.sql("SELECT split_part(lease_owner, '/', 1), count(*) FROM approvals "
                           "WHERE status = 'executing' GROUP BY 1"))


def _produce_batch(system: System, batch: int) -> None:
    system.produce(*[system.envelope(f"r{batch}-{i}", path=f"/v1/refunds/r{batch}-{i}")
                     for i in range(CALLS)])
    wait_for(lambda: system.sql("SELECT count(*) FROM approvals")[0][0] == CALLS * (batch + 1),
             60, what=f"batch {batch} to be ingested")


def _kill_rounds(system: System, rng: random.Random) -> tuple[list[str], dict[str, int], int]:
    """Kills a random worker with calls in flight and restarts it, ROUNDS times.

    A new batch of CALLS is produced whenever everything has finished and
    kills remain. Returns the killed workers, the calls each had in flight,
    and the number of batches.
    """
    workers: dict[str, Proc] = {}
    for i in range(WORKERS):
        w = system.worker(f"w{i}-0", **WORKER_ENV)
        workers[w.name] = w
    batches = 0
    killed: list[str] = []
    held: dict[str, int] = {}
    generation = collections.Counter[int]()
    deadline = time.monotonic() + scaled(60 + ROUNDS * 4)
    while len(killed) < ROUNDS and time.monotonic() < deadline:
        status = dict(system.sql("SELECT status, count(*) FROM approvals GROUP BY 1"))
        if not status.get("approved") and not status.get("executing"):
            _produce_batch(system, batches)  # everything finished: more calls to interrupt
            batches += 1
            continue
        busy = [n for n, c in _inflight(system).items() if n in workers and c > 0]
        if not busy:
            time.sleep(0.05)
            continue
        victim = rng.choice(busy)
        time.sleep(rng.uniform(0.05, STUB_DELAY))  # somewhere in the middle of its calls
        held[victim] = _inflight(system).get(victim, 0)
        workers.pop(victim).kill()
        killed.append(victim)
        slot = int(victim[1:].split("-")[0])
        generation[slot] += 1
        w = system.worker(f"w{slot}-{generation[slot]}", wait_ready=False, **WORKER_ENV)
        workers[w.name] = w
        time.sleep(rng.uniform(0.1, 0.5))
    for w in workers.values():
        wait_for(lambda w=w: worker_ready(w.text()) or not w.alive(), 60,
                 what=f"{w.name} to start")
    alive_and_same(workers.values(), {w.name: w.pid for w in workers.values()})
    return killed, held, batches


@pytest.mark.parametrize("idempotent", [False, True], ids=["without_keys", "with_keys"])
def test_sigkill_rounds(system: System, idempotent: bool) -> None:
    """SIGKILL rounds never run a call twice and leave nothing stuck."""
    rng = random.Random(s := seed())
    print(f"seed {s}: batches of {CALLS} calls, {ROUNDS} kills, idempotency keys: {idempotent}")
    system.setup(mode="never", rules=[], timeout_ms=TIMEOUT_MS, idempotency_keys=idempotent,
                 attempts=MAX_ATTEMPTS if idempotent else 3)
    system.stub.program("/v1/refunds", delay=STUB_DELAY)
    system.scheduler(CS_LEASE_MARGIN_MS=str(MARGIN_MS))
    system.kafka.create_topics(system.topics.values())

    started = time.monotonic()
    killed, held, batches = _kill_rounds(system, rng)
    total = CALLS * batches
    # Nothing stuck: every lease of a dead worker lapses and is rescued.
    counts = wait_all_terminal(system, total, timeout=60 + CALLS * STUB_DELAY / 4)
    took = time.monotonic() - started
    rows = {str(r[0]): r[1:] for r in system.sql(
        "SELECT id, request_id, status, error_code, attempts, response_status FROM approvals")}
    assert len(rows) == total
    time.sleep(scaled(1))  # a wrong re-run gets the chance to show up
    seen = keys_by_approval(system.stub.requests("/v1/refunds"))
    assert set(seen) <= set(rows), "a call the database does not know reached the provider"
    by_request = {row[0]: aid for aid, row in rows.items()}
    for r in system.stub.requests("/v1/refunds"):  # the key belongs to the approval of that path
        owner = by_request[r.path.split("/")[3]]
        assert r.headers["idempotency-key"] == f"countersign-{owner}", r.path

    requeued = system.sql("SELECT count(*) FROM audit WHERE action = 'execution.requeued'")[0][0]
    rescued = system.sql("SELECT count(*) FROM audit WHERE actor = 'scheduler:rescuer'")[0][0]
    print(f"{len(killed)} kills (calls in flight: {sum(held.values())}) over {total} calls "
          f"in {took:.1f}s; "
          f"{counts}; rescued {rescued}, requeued {requeued}; "
          f"deliveries per call {collections.Counter(seen.values())}")
    assert len(killed) == ROUNDS, f"only {len(killed)} kills happened"
    assert rescued > 0, "no kill ever interrupted a call"

    if not idempotent:
        for aid, (rid, status, error, attempts, _) in rows.items():
            assert seen[aid] <= 1, f"{rid} reached the provider {seen[aid]} times"
            if status == "executed":
                assert seen[aid] == 1 and attempts == 1, rid
            else:
                assert (status, error) == ("failed", "outcome_unknown"), (rid, status, error)
        failed = system.sql("SELECT count(*) FROM audit WHERE action = 'approval.failed' "
                            "AND actor = 'scheduler:rescuer'")[0][0]
        assert failed == counts.get("failed", 0), "a failure not decided by the rescuer"
        assert requeued == 0
    else:
        # A lapsed call is requeued with its key until its attempts run out. Requeued calls
        # are claimed first and the loop kills busy workers, so in the long run one call can
        # be interrupted MAX_ATTEMPTS times: only then does it fail, as outcome_unknown.
        spent = {aid for aid, row in rows.items() if row[1] != "executed"}
        for aid, (rid, status, error, attempts, code) in rows.items():
            assert seen.get(aid, 0) <= attempts, (rid, seen.get(aid), attempts)
            if aid in spent:
                assert (status, error, attempts) == ("failed", "outcome_unknown", MAX_ATTEMPTS), \
                    (rid, status, error, attempts)
            else:
                assert code == 200 and seen.get(aid, 0) >= 1, (rid, seen.get(aid), attempts)
        failed = system.sql("SELECT count(*) FROM audit WHERE action = 'approval.failed' "
                            "AND actor = 'scheduler:rescuer'")[0][0]
        assert failed == len(spent) and requeued + failed == rescued, (failed, requeued, rescued)
        assert max(seen.values()) >= 2, "no call was delivered twice: no kill hit a call"

    grouped = results_by_approval(system, set(rows))
    assert len(grouped) == total
    for aid, msgs in grouped.items():
        assert {m["status"] for m in msgs} == {rows[aid][1]}, aid
