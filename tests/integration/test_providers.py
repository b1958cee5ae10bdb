"""Providers as real services (issue 14): pausing a grant, limits shared by
the fleet, 429/503 and in-progress answers, isolation between grants, and
retries decided by what was sent. Real worker and scheduler binaries against
stub providers on loopback; every figure asserted comes from the stub's own
records or from Postgres, not from timing inside the test.
"""

from __future__ import annotations

import time

import httpx

from harness import System
from services import scaled, wait_for


def count_status(system: System, grant: str = "stripe") -> dict[str, int]:
    return dict(system.sql("SELECT status, count(*) FROM approvals WHERE grant_id = %s "
                           "GROUP BY status", grant))


def test_pause_holds_new_calls_finishes_claimed_and_resume_runs_the_rest(system: System) -> None:
    system.setup(mode="never", rules=[], timeout_ms=5000)
    system.stub.program("/v1/refunds", delay=1.5, times=1)  # the one in flight at the pause
    system.worker(CS_EXEC_CONCURRENCY="4")
    system.produce(system.envelope("first"))
    system.stub.wait_for(1, "/v1/refunds", timeout=20)

    out = system.cli_json("grant", "pause", "stripe")
    assert out == {"grant_id": "stripe", "paused": True, "changed": True}
    again = system.cli_json("grant", "pause", "stripe")
    assert again["changed"] is False
    system.produce(*[system.envelope(f"r{i}") for i in range(20)])
    # The claimed call finishes; nothing new starts while paused.
    system.wait_status("first", "executed", timeout=20)
    wait_for(lambda: count_status(system).get("approved", 0) == 20, 30, what="20 queued")
    time.sleep(scaled(1.5))  # give a wrong start the chance to happen
    assert system.stub.count("/v1/refunds") == 1
    assert count_status(system) == {"executed": 1, "approved": 20}
    (listed,) = [line.split("\t") for line in system.cli("grant", "list").stdout.splitlines()
                 if line.startswith("stripe\t")]
    assert listed[7] != "-" and listed[8] == "operator:cli"  # paused_at, paused_by

    assert system.cli_json("grant", "resume", "stripe")["changed"] is True
    wait_for(lambda: count_status(system).get("executed", 0) == 21, 30, what="21 executed")
    assert system.stub.count("/v1/refunds") == 21
    actions = system.sql("SELECT action, actor, detail->>'grant_id' FROM audit "
                         "WHERE action LIKE 'grant.%%' ORDER BY id")
    assert actions == [("grant.paused", "operator:cli", "stripe"),
                       ("grant.resumed", "operator:cli", "stripe")]
    bad = system.cli("grant", "pause", "nope", check=False)
    assert bad.returncode != 0 and "unknown_grant" in bad.stderr


def test_pause_and_resume_through_the_admin_api(system: System) -> None:
    system.setup(mode="never", rules=[])
    api = system.api(CS_ADMIN_TOKEN="admin-secret-token")
    auth = {"Authorization": "Bearer admin-secret-token"}
    r = httpx.post(f"{api.url}/v1/admin/grants/stripe/pause", headers=auth)  # type: ignore[attr-defined]
    assert r.status_code == 200 and r.json() == {"grant_id": "stripe", "paused": True,
                                                 "changed": True}
    system.worker()
    system.produce(system.envelope("r1"))
    wait_for(lambda: count_status(system).get("approved", 0) == 1, 30, what="queued")
    time.sleep(scaled(1))
    assert system.stub.count() == 0
    r = httpx.post(f"{api.url}/v1/admin/grants/stripe/resume", headers=auth)  # type: ignore[attr-defined]
    assert r.status_code == 200 and r.json()["changed"] is True
    system.wait_status("r1", "executed", timeout=20)
    r = httpx.post(f"{api.url}/v1/admin/grants/nope/pause", headers=auth)  # type: ignore[attr-defined]
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_grant"
    assert system.sql("SELECT actor FROM audit WHERE action LIKE 'grant.%%' ORDER BY id") == \
        [("operator:admin-api",), ("operator:admin-api",)]
