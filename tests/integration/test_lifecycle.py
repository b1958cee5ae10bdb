"""The approval lifecycle end to end: Kafka in, Postgres, provider call, Kafka out.

Each test runs the real worker and scheduler binaries against the session's
Postgres and Kafka broker and a stub provider on loopback.
"""

from __future__ import annotations

import base64
import json

import httpx

from harness import System
from services import free_port, scaled, wait_for


def test_pending_approve_executed_result(system: System) -> None:
    ids = system.setup()
    system.worker()
    system.scheduler()
    system.stub.program("/v1/refunds", status=201, body=b'{"refund":"re_42"}',
                        headers={"Content-Type": "application/json", "X-Provider": "stub"})
    system.produce(system.envelope("r1", amount=500))
    a = system.wait_status("r1", "pending")
    assert a["quorum"] == 1 and a["reason"] == "refund for r1"

    # The pending event carries the approval's page and its approvers, and no credential.
    pending = [m for m in system.topic("events", expect=1) if m["value"]["status"] == "pending"]
    assert len(pending) == 1 and pending[0]["key"] == str(a["id"])
    event = pending[0]["value"]
    assert sorted(event["approvers"]) == sorted([ids["alice"], ids["bob"]])
    assert event["approval_url"].startswith("http://127.0.0.1:8080/status/")
    assert "approval_links" not in event and b"/signin/" not in pending[0]["raw"]
    assert system.stub.count() == 0

    out = system.cli_json("approval", "approve", str(a["id"]), "--as", "alice", "--reason", "ok")
    assert out["status"] == "approved"
    done = system.wait_status("r1", "executed")
    assert done["response_status"] == 201 and done["attempts"] == 1

    (call,) = system.stub.wait_for(1, "/v1/refunds")
    assert call.method == "POST" and call.json() == {"amount": 500}
    assert call.headers["authorization"] == f"Bearer {system.secret}"
    assert call.headers["idempotency-key"] == f"countersign-{a['id']}"
    assert call.headers["content-type"] == "application/json"

    results = system.topic("results", expect=1)
    assert len(results) == 1 and results[0]["key"] == str(a["id"])
    r = results[0]["value"]
    assert r["status"] == "executed" and r["status_code"] == 201
    assert base64.b64decode(r["body_b64"]) == b'{"refund":"re_42"}'
    assert r["headers"]["x-provider"] == "stub" and r["body_truncated"] is False
    types = [m["value"]["type"] for m in system.topic("events", expect=4)]
    assert types == ["approval.pending", "approval.approved", "approval.executing",
                     "approval.executed"]


def test_deny_with_reason(system: System) -> None:
    system.setup()
    system.worker()
    system.produce(system.envelope("r1"))
    a = system.wait_status("r1", "pending")
    system.cli("approval", "deny", str(a["id"]), "--as", "bob", "--reason", "duplicate refund")
    d = system.wait_status("r1", "denied")
    assert d["decision_reason"] == "duplicate refund"
    (res,) = system.topic("results", expect=1)
    assert res["value"]["status"] == "denied"
    assert res["value"]["decision_reason"] == "duplicate refund"
    # A later approve changes nothing.
    late = system.cli("approval", "approve", str(a["id"]), "--as", "alice", check=False)
    assert late.returncode == 1 and "not_pending" in late.stderr
    assert system.stub.count() == 0


def test_window_elapsed_expires_and_late_vote_refused(system: System) -> None:
    system.setup(window=2)
    system.worker()
    system.scheduler()
    system.produce(system.envelope("r1"))
    a = system.wait_status("r1", "pending")
    e = system.wait_status("r1", "expired", timeout=15)
    lag = (e["decided_at"] - e["expires_at"]).total_seconds()
    assert 0 <= lag < 3, f"expired {lag:.2f}s after the deadline"
    late = system.cli("approval", "approve", str(a["id"]), "--as", "alice", check=False)
    assert late.returncode == 1 and "expired" in late.stderr
    (res,) = system.topic("results", expect=1)
    assert res["value"]["status"] == "expired"
    assert system.stub.count() == 0


def test_vote_after_deadline_refused_before_sweep(system: System) -> None:
    """No decision lands after expiry even when no scheduler has swept yet."""
    system.setup(window=1)
    system.worker()
    system.produce(system.envelope("r1"))
    a = system.wait_status("r1", "pending")
    wait_for(lambda: system.sql("SELECT expires_at < now() FROM approvals WHERE id = %s",
                                a["id"])[0][0], 10, what="the deadline to pass")
    late = system.cli("approval", "approve", str(a["id"]), "--as", "alice", check=False)
    assert late.returncode == 1 and "expired" in late.stderr
    assert system.approval("r1")["status"] == "pending"  # the sweep will expire it
    assert system.sql("SELECT count(*) FROM votes")[0][0] == 0


def test_no_approval_needed_executes(system: System) -> None:
    system.setup()
    system.worker()
    system.produce(system.envelope("small", amount=50))
    a = system.wait_status("small", "executed")
    assert a["quorum"] == 0 and a["decided_by"] == "policy"
    assert system.stub.count("/v1/refunds") == 1
    (res,) = system.topic("results", expect=1)
    assert res["value"]["status_code"] == 200


def test_quorum_two_of_three(system: System) -> None:
    system.setup(approvers=("alice", "bob", "carol"), quorum=2)
    system.worker()
    system.produce(system.envelope("r1"))
    a = system.wait_status("r1", "pending")
    first = system.cli_json("approval", "approve", str(a["id"]), "--as", "alice")
    assert first == {"approval_id": str(a["id"]), "status": "pending", "approvals_received": 1,
                     "approvals_required": 2}
    again = system.cli("approval", "approve", str(a["id"]), "--as", "alice", check=False)
    assert again.returncode == 1 and "already_voted" in again.stderr
    assert system.approval("r1")["status"] == "pending"
    second = system.cli_json("approval", "approve", str(a["id"]), "--as", "carol")
    assert second["status"] == "approved" and second["approvals_received"] == 2
    system.wait_status("r1", "executed")
    third = system.cli("approval", "approve", str(a["id"]), "--as", "bob", check=False)
    assert third.returncode == 1 and "not_pending" in third.stderr
    assert system.stub.count() == 1


def test_any_deny_denies_and_outsider_refused(system: System) -> None:
    system.setup(approvers=("alice", "bob", "carol"), quorum=2)
    system.cli("approver", "create", "dave")
    system.worker()
    system.produce(system.envelope("r1"))
    a = system.wait_status("r1", "pending")
    outsider = system.cli("approval", "approve", str(a["id"]), "--as", "dave", check=False)
    assert outsider.returncode == 1 and "not_an_approver" in outsider.stderr
    system.cli("approval", "approve", str(a["id"]), "--as", "alice")
    system.cli("approval", "deny", str(a["id"]), "--as", "bob", "--reason", "no")
    assert system.wait_status("r1", "denied")["decision_reason"] == "no"


def test_requester_cannot_vote(system: System) -> None:
    system.setup(approvers=("alice", "mallory"), operator_of_agent=("mallory",))
    system.worker()
    system.produce(system.envelope("r1"))
    a = system.wait_status("r1", "pending")
    res = system.cli("approval", "approve", str(a["id"]), "--as", "mallory", check=False)
    assert res.returncode == 1 and "self_approval" in res.stderr
    assert system.approval("r1")["status"] == "pending"
    refused = system.sql("SELECT actor, detail FROM audit WHERE action = 'vote.refused'")
    assert refused and refused[0][1]["code"] == "self_approval"


def test_duplicate_request_id_stored_once(system: System) -> None:
    system.setup()
    system.worker()
    env = system.envelope("dup-1", amount=50)
    # The same request id three times, under different Kafka keys (so partitions differ).
    raw = json.dumps(env).encode()
    system.kafka.produce_many(system.topics["requests"],
                              [(k, raw, system.signed(raw)) for k in (b"a", b"b", b"c")])
    system.produce(system.envelope("after", amount=50))
    system.wait_status("after", "executed")
    system.wait_status("dup-1", "executed")
    assert system.sql("SELECT count(*) FROM approvals WHERE request_id = 'dup-1'")[0][0] == 1
    assert system.stub.count() == 2


def test_policy_unevaluable_is_refused(system: System) -> None:
    """Fail closed: a rule that cannot read its field refuses the request."""
    system.setup()
    system.worker()
    bad = system.envelope("no-amount")
    bad["json"] = {"currency": "eur"}
    system.produce(bad, system.envelope("ok", amount=50))
    system.wait_status("ok", "executed")
    dlq = system.topic("dlq", expect=1)
    assert [m["value"]["reason"] for m in dlq] == ["policy_unevaluable"]
    assert system.approval("no-amount") is None


def test_operator_cancel_and_worker_metrics(system: System) -> None:
    system.setup()
    port = free_port()
    system.worker(CS_METRICS_PORT=str(port))
    system.produce(system.envelope("r1"), system.envelope("small", amount=5))
    a = system.wait_status("r1", "pending")
    system.wait_status("small", "executed")
    out = system.cli_json("approval", "cancel", str(a["id"]), "--reason", "duplicate ticket")
    assert out["status"] == "cancelled" and out["decision_reason"] == "duplicate ticket"
    again = system.cli("approval", "cancel", str(a["id"]), check=False)
    assert again.returncode == 1 and "not_pending" in again.stderr
    def published() -> str | None:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        return text if "countersign_relay_published_total 0\n" not in text else None

    m = wait_for(published, 20, what="events to be published")
    assert "countersign_ingest_stored_total 2" in m
    assert "countersign_executions_executed_total 1" in m
    assert 'countersign_decision_to_call_seconds_count 1' in m


def test_api_serves_the_socket_the_test_bound(system: System) -> None:
    """The harness binds 127.0.0.1:0 and hands the socket over (CS_HTTP_FD): the api
    serves that very port, so no probed port is raced for between probe and bind."""
    system.setup()
    api = system.api()
    port = int(api.url.rsplit(":", 1)[1])  # type: ignore[attr-defined]
    assert httpx.get(f"{api.url}/healthz", timeout=scaled(5)).status_code == 200  # type: ignore[attr-defined]
    assert f"listening on http://127.0.0.1:{port} " in api.text()
    assert api.stop() == 0
