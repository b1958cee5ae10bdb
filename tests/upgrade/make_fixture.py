"""Makes schema7.sql: a Countersign database at schema version 7 (before events moved
to the WAL) holding approvals in every state (one executing, its worker killed in the call), a batch, votes, audit seals and outbox
rows not yet published. tests/integration/test_upgrade.py upgrades it in place.

Run with the binaries of a version-7 build (e.g. commit 587c44e):
    git archive 587c44e | tar -x -C /tmp/old && make -C /tmp/old -j2
    CS_BUILD_DIR=/tmp/old/build python3 -m pytest -q -s tests/upgrade/make_fixture.py
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from harness import System
from services import wait_for

OUT = Path(__file__).resolve().parent / "schema7.sql"
MASTER_KEY = "dXBncmFkZS10ZXN0LW1hc3Rlci1rZXktMzItYnl0ZXM="  # test fixture only
PG_DUMP = "/usr/lib/postgresql/15/bin/pg_dump"


def seal(batch: str, count: int) -> bytes:
    return json.dumps({"type": "seal", "agent": "bot1", "batch_id": batch,
                       "count": count}).encode()


def test_make_fixture(system: System) -> None:
    system.master_key = MASTER_KEY
    system.env["CS_MASTER_KEY"] = MASTER_KEY
    assert system.sql("SELECT max(version) FROM schema_migrations")[0][0] == 7
    system.setup(approvers=("alice", "bob", "carol"), quorum=1, window=3600)
    system.cli("policy", "set", "two", "--mode", "always", "--quorum", "2",
               "--approvers", "alice,bob,carol", "--window", "3600")
    system.cli("policy", "set", "short", "--mode", "always", "--quorum", "1",
               "--approvers", "alice,bob", "--window", "2")
    for grant, policy in (("twice", "two"), ("brief", "short")):
        system.cli("grant", "set", grant, "--policy", policy, "--agents", "bot1",
                   "--secret-stdin", "--allow", system.stub.url, input=system.secret + "\n")
    system.stub.program("/v1/fail", close_without_response=True)
    system.stub.program("/v1/slow", delay=120)
    w = system.worker()
    sched = system.scheduler(CS_SWEEP_INTERVAL_MS="200")
    # executed and failed (auto-approved: amount under the rule), pending with a vote,
    # pending, a batch of 3 sealed and decidable.
    system.produce(system.envelope("exec1", amount=5), system.envelope("exec2", amount=5),
                   system.envelope("fail1", amount=5, path="/v1/fail"),
                   system.envelope("inflight", amount=5, path="/v1/slow"),
                   system.envelope("voted", grant_id="twice"),
                   system.envelope("pend1"), system.envelope("appr1"), system.envelope("deny1"),
                   system.envelope("canc1"), system.envelope("expire1", grant_id="brief"),
                   *[system.envelope(f"b-{i}", batch_id="b3", path=f"/v1/refunds/{i}")
                     for i in range(3)])
    system.kafka.produce_many(system.topics["requests"], [(b"seal", seal("b3", 3))])
    for rid, st in (("exec1", "executed"), ("exec2", "executed"), ("fail1", "failed"),
                    ("voted", "pending"), ("pend1", "pending"), ("expire1", "expired"),
                    ("inflight", "executing")):
        system.wait_status(rid, st, timeout=60)
    wait_for(lambda: system.sql("SELECT status FROM batches WHERE id = 'b3'") ==
             [("decidable",)], 60, what="batch decidable")
    voted = system.approval("voted")
    system.cli("approval", "approve", str(voted["id"]), "--as", "alice", "--reason", "one of two")
    # The worker dies in a call (left executing, leased); what is decided now stays approved,
    # and its events stay in the outbox.
    w.kill()
    system.cli("approval", "approve", str(system.approval("appr1")["id"]), "--as", "bob")
    system.cli("approval", "deny", str(system.approval("deny1")["id"]), "--as", "bob",
               "--reason", "no")
    system.cli("approval", "cancel", str(system.approval("canc1")["id"]), "--reason", "oops")
    wait_for(lambda: system.sql("SELECT (SELECT coalesce(sum(entries), 0) FROM audit_seal) "
                                "= (SELECT count(*) FROM audit)")[0][0],
             60, what="every audit entry sealed")
    assert sched.stop() == 0
    assert system.sql("SELECT count(*) FROM outbox")[0][0] > 0
    subprocess.run([PG_DUMP, "--no-owner", "--no-privileges", "-f", str(OUT), system.db_url],
                   check=True)
    print(f"wrote {OUT}: {os.path.getsize(OUT)} bytes; statuses "
          f"{system.sql('SELECT status, count(*) FROM approvals GROUP BY 1 ORDER BY 1')}")
