"""Batches, reminders, escalation and delegation (issue 8), on the real system."""

from __future__ import annotations

import collections
import json
import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from approver import Approver, batch_link, batch_vote, link
from harness import BUILD_DIR, System
from services import SmtpSink, wait_for
from test_browser import run_browser


def member(system: System, batch: str, i: int, amount: int = 100, **extra: Any) -> dict[str, Any]:
    return system.envelope(f"{batch}-{i:04d}", amount=amount, path=f"/v1/refunds/{i}",
                           batch_id=batch, **extra)


def seal(batch: str, count: int, agent: str = "bot1") -> bytes:
    return json.dumps({"type": "seal", "agent": agent, "batch_id": batch, "count": count}).encode()


def batch(system: System, batch_id: str) -> dict[str, Any]:
    """The batch's status ({} while it does not exist yet)."""
    r = system.cli("batch", "show", "bot1", batch_id, check=False)
    return json.loads(r.stdout) if r.returncode == 0 else {}


@pytest.fixture
def running(system: System) -> Iterator[tuple[System, str]]:
    system.setup(mode="always", rules=[], approvers=("alice", "bob"), quorum=1)
    system.cli("policy", "set", "pay", "--mode", "always", "--quorum", "1", "--approvers",
               "alice,bob", "--amount-field", "amount")
    api = system.api()
    system.worker(CS_INGEST_LINGER_MS="50")
    system.scheduler()
    yield system, api.url  # type: ignore[attr-defined]


def test_shuffled_batch_with_the_seal_in_the_middle_approved_in_chromium(
        running: tuple[System, str]) -> None:
    system, url = running
    members = [member(system, "b500", i, amount=10 + i) for i in range(500)]
    random.Random(7).shuffle(members)
    last = members.pop()
    msgs = [(m["request_id"].encode(), json.dumps(m).encode()) for m in members]
    msgs.insert(250, (b"seal", seal("b500", 500)))
    msgs = [(k, v, system.signed(v)) for k, v in msgs]
    system.kafka.produce_many(system.topics["requests"], msgs)
    wait_for(lambda: batch(system, "b500").get("members") == 499, 60, what="499 members stored")
    b = batch(system, "b500")
    assert b["status"] == "open" and b["expected"] == 500 and b["digest"] is None
    assert not [e for e in system.topic("events", timeout=2) if e["value"]["type"] == "batch.decidable"]

    system.produce(last)
    wait_for(lambda: batch(system, "b500").get("status") == "decidable", 30, what="decidable")
    (ev,) = [e for e in system.topic("events", expect=501 + 499) if e["value"]["type"] == "batch.decidable"]
    assert ev["value"]["members"] == 500 and len(ev["value"]["approvers"]) == 2
    assert "approval_links" not in ev["value"] and b"/signin/" not in ev["raw"]

    # The batch page shows anyone the summary; only a signed-in approver decides.
    page_url = ev["value"]["approval_url"]
    assert page_url.startswith(f"{url}/batch/")
    page = httpx.get(page_url).text
    total = sum(10 + i for i in range(500))
    assert f"{total} (sum of amount)" in page and "page 1 of 10" in page
    assert "POST http://127.0.0.1" in page and "500 calls" in page
    assert "Sign in to decide" in page and 'name="digest"' not in page
    csv = httpx.get(page_url + "/items.csv").text.splitlines()
    assert len(csv) == 501 and csv[0].startswith("request_id,status")
    shots = BUILD_DIR / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    out = run_browser({"CS_LINK": batch_link(system, "b500", "alice")["url"],
                       "CS_PAGE": page_url, "CS_REASON": "b500", "CS_PAYLOAD": "b500-0000",
                       "CS_SHOT": str(shots / "batch-page.png"), "CS_FINAL": "decided"})
    assert out.returncode == 0, out.stdout + out.stderr

    wait_for(lambda: system.stub.count("/v1/refunds/") == 500, 120, what="500 calls")
    wait_for(lambda: batch(system, "b500")["counts"] == {"executed": 500}, 60, what="all executed")
    keys = collections.Counter(r.headers["idempotency-key"] for r in system.stub.requests())
    assert len(keys) == 500 and set(keys.values()) == {1}
    summary = wait_for(lambda: [r for r in system.topic("results", timeout=3)
                                if r["value"].get("type") == "batch.summary"], 60,
                       what="the batch summary")
    assert summary[0]["value"]["counts"] == {"executed": 500}
    assert summary[0]["key"].endswith(":b500")


def test_approve_all_but_three_and_deny_all(running: tuple[System, str]) -> None:
    system, _ = running
    system.produce(*[member(system, "b20", i) for i in range(20)])
    system.produce_raw(b"seal", seal("b20", 20))
    system.produce(*[member(system, "d5", i) for i in range(5)])
    system.produce_raw(b"seal", seal("d5", 5))
    wait_for(lambda: batch(system, "b20").get("status") == "decidable"
             and batch(system, "d5").get("status") == "decidable", 30, what="both decidable")

    denied = ["b20-0003", "b20-0011", "b20-0019"]
    r = batch_vote(system, "b20", "alice", "approve", "duplicate refunds",
                   **{"except": "\n".join(denied)})
    assert r.status_code == 200 and "listed items denied" in r.text
    wait_for(lambda: batch(system, "b20")["counts"] == {"executed": 17, "denied": 3}, 60,
             what="17 executed, 3 denied")
    rows = dict(system.sql("SELECT request_id, decision_reason FROM approvals "
                           "WHERE batch_id = 'b20' AND status = 'denied'"))
    assert rows == {d: "duplicate refunds" for d in denied}

    r = batch_vote(system, "d5", "bob", "deny", "not today")
    assert r.status_code == 200
    wait_for(lambda: batch(system, "d5")["counts"] == {"denied": 5}, 30, what="all denied")
    assert system.stub.count("/v1/refunds/") == 17


def test_refusals_stale_digest_late_member_other_grant_conflicting_seal(
        running: tuple[System, str]) -> None:
    system, url = running
    system.cli("policy", "set", "other", "--mode", "always", "--quorum", "1", "--approvers", "alice")
    system.cli("grant", "set", "second", "--policy", "other", "--agents", "bot1", "--allow",
               system.stub.url, "--secret-stdin", input="sk_second")
    system.produce(*[member(system, "b3", i) for i in range(3)])
    system.produce(member(system, "b3", 9, grant_id="second"))             # another grant
    system.produce_raw(b"seal", seal("b3", 3))
    wait_for(lambda: batch(system, "b3").get("status") == "decidable", 30, what="decidable")
    system.produce(member(system, "b3", 4))                                # after the seal
    system.produce_raw(b"seal2", seal("b3", 4))  # conflicting seal
    system.produce_raw(b"seal3", seal("b3", 3))  # the same: no-op
    dead = system.topic("dlq", expect=3)
    reasons = sorted(d["value"]["message"] for d in dead)
    assert any("uses grant stripe" in m and "this member uses grant second" in m for m in reasons)
    assert any("member after" in m for m in reasons)
    assert any("already sealed for 3 members" in m for m in reasons)
    assert {d["value"]["reason"] for d in dead} == {"conflict"}

    before = batch(system, "b3")
    with Approver() as alice:
        page = alice.sign_in(batch_link(system, "b3", "alice")["url"])
        form = alice.form(page)
        assert len(form["digest"]) == 64
        r = alice.post(page, {**form, "digest": "0" * 64, "decision": "approve"})
    assert r.status_code == 409 and "reload" in r.text
    after = batch(system, "b3")
    assert after == before and after["counts"] == {"pending": 3}
    assert system.stub.count() == 0


def test_a_member_twice_in_one_poll_of_a_sealed_batch_is_a_duplicate(
        running: tuple[System, str]) -> None:
    """A redelivery can put the same member twice in one ingest transaction. With the
    batch sealed for 3, the copy of the third member used to be counted as a fourth
    and dead-lettered ("a member after that is refused"); it is a duplicate."""
    system, _ = running
    system.produce_raw(b"seal", seal("bd", 3))
    wait_for(lambda: batch(system, "bd").get("expected") == 3, 30, what="the seal stored")
    m = [member(system, "bd", i) for i in range(3)]
    system.produce(m[0], m[1], m[2], m[2], m[1])
    wait_for(lambda: batch(system, "bd").get("status") == "decidable", 30, what="decidable")
    assert batch(system, "bd")["members"] == 3
    assert system.topic("dlq", timeout=3) == []


def test_batch_over_http(running: tuple[System, str]) -> None:
    system, url = running
    key = system.api_key()
    h = {"Authorization": f"Bearer {key}"}
    for i in range(3):
        r = httpx.post(f"{url}/v1/proxy", headers=h, json={
            "method": "POST", "url": f"{system.stub.url}/v1/refunds/{i}", "grant_id": "stripe",
            "json": {"amount": i}, "reason": f"item {i}", "batch_id": "h3",
            "idempotency_key": f"h3-{i}"})
        assert r.status_code == 202, r.text
    r = httpx.post(f"{url}/v1/batches/h3/seal", headers=h, json={"count": 3})
    assert r.status_code == 200 and r.json()["status"] == "decidable"
    assert httpx.post(f"{url}/v1/batches/h3/seal", headers=h, json={"count": 3}).status_code == 200
    bad = httpx.post(f"{url}/v1/batches/h3/seal", headers=h, json={"count": 2})
    assert bad.status_code == 409 and bad.json()["error"]["code"] == "conflict"
    late = httpx.post(f"{url}/v1/proxy", headers=h, json={
        "method": "POST", "url": f"{system.stub.url}/v1/refunds/9", "grant_id": "stripe",
        "json": {"amount": 9}, "batch_id": "h3"})
    assert late.status_code == 409
    assert batch_vote(system, "h3", "alice", "approve").status_code == 200
    wait_for(lambda: httpx.get(f"{url}/v1/batches/h3", headers=h).json()["is_terminal"], 60,
             what="the batch to finish")
    st = httpx.get(f"{url}/v1/batches/h3", headers=h).json()
    assert st["counts"] == {"executed": 3} and st["members"] == 3
    assert httpx.get(f"{url}/v1/batches/nope", headers=h).status_code == 404


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    yield sink
    sink.close()


def test_reminders_once_per_interval_with_two_schedulers_and_escalation(
        system: System, smtp: SmtpSink) -> None:
    system.cli("agent", "create", "bot1")
    system.cli("approver", "create", "alice", "--email", "alice@example.com")
    system.cli("approver", "create", "carol", "--email", "carol@example.com")
    system.cli("policy", "set", "slow", "--mode", "always", "--quorum", "1", "--approvers", "alice",
               "--escalation", "carol", "--window", "7", "--remind", "2", "--escalate-after", "3")
    system.cli("grant", "set", "stripe", "--policy", "slow", "--agents", "bot1", "--allow",
               system.stub.url, "--secret-stdin", input=system.secret)
    api = system.api()
    system.worker(CS_SMTP_URL=smtp.url)
    system.scheduler("s1")
    system.scheduler("s2")
    system.produce(system.envelope("r1"))
    a = system.wait_status("r1", "pending")
    carol = wait_for(lambda: [m for m in smtp.mails if "carol@" in m.recipients[0]], 15,
                     what="the escalation message")[0]
    assert "Escalated to you" in carol.text()
    system.wait_status("r1", "expired", timeout=15)
    wait_for(lambda: system.sql("SELECT count(*) FROM notifications WHERE status = 'queued'")[0][0]
             == 0, 15, what="messages delivered")
    rows = system.sql("SELECT recipient_id, created_at FROM notifications "
                      "WHERE kind = 'reminder' ORDER BY created_at")
    by_person: dict[Any, list[Any]] = collections.defaultdict(list)
    for who, at in rows:
        by_person[who].append(at)
    assert len(by_person) == 2, rows  # alice from the start, carol once escalated
    for times in by_person.values():
        gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:])]
        assert all(g >= 1.9 for g in gaps), f"two reminders within one interval: {gaps}"
    # Two schedulers ran: still one reminder round per interval (about 2, 4 and 6 s).
    audits = system.sql("SELECT count(*) FROM audit WHERE action = 'approval.reminded'")[0][0]
    assert audits == 3
    assert system.sql("SELECT count(*) FROM audit WHERE action = 'approval.escalated'")[0][0] == 1
    late = system.sql("SELECT count(*) FROM notifications n JOIN approvals a ON a.id = n.approval_id "
                      "WHERE n.created_at >= a.expires_at")[0][0]
    assert late == 0
    # The message carries the approval's page and a one-time sign-in link for carol.
    page = f"{api.url}/status/"  # type: ignore[attr-defined]
    assert page in carol.text() and f"{api.url}/signin/" in carol.text()  # type: ignore[attr-defined]


def test_requester_as_delegate_is_refused(system: System) -> None:
    system.setup(mode="always", rules=[], approvers=("alice", "bob"),
                 operator_of_agent=("mallory",))
    system.cli("approver", "create", "mallory", "--agent", "bot1")
    system.cli("delegate", "alice", "mallory", "--until", "2099-01-01T00:00:00Z")
    api = system.api()
    system.worker()
    system.produce(system.envelope("r1"))
    a = system.wait_status("r1", "pending")
    slot = link(system, str(a["id"]), "alice")
    assert slot["voter_id"] != slot["approver_id"]  # goes to mallory
    with Approver() as mallory:
        page = mallory.sign_in(slot["url"])
        assert page.startswith(f"{api.url}/status/")  # type: ignore[attr-defined]
        assert "Signed in as <b>mallory</b>" in mallory.page(page)
        r = mallory.decide(page, "approve")
    assert r.status_code == 403 and "own request" in r.text
    assert system.approval("r1")["status"] == "pending"


def test_unknown_item_in_the_except_list_decides_nothing(running: tuple[System, str]) -> None:
    system, _ = running
    system.produce(*[member(system, "t4", i) for i in range(4)])
    system.produce_raw(b"seal", seal("t4", 4))
    wait_for(lambda: batch(system, "t4").get("status") == "decidable", 30, what="decidable")
    r = batch_vote(system, "t4", "alice", "approve", **{"except": "t4-0001\nt4-OOO2"})
    assert r.status_code == 400 and "t4-OOO2" in r.text
    assert batch(system, "t4")["counts"] == {"pending": 4}
    r = batch_vote(system, "t4", "alice", "approve", **{"except": "  t4-0001 \n\nt4-0002"})
    assert r.status_code == 200
    wait_for(lambda: batch(system, "t4")["counts"] == {"executed": 2, "denied": 2}, 30,
             what="2 executed, 2 denied")


def test_batch_page_decides_for_its_approvers_and_their_delegates_only(
        running: tuple[System, str]) -> None:
    system, url = running
    system.cli("approver", "create", "dave")
    system.cli("approver", "create", "erin")
    system.cli("delegate", "alice", "erin", "--until", "2099-01-01T00:00:00Z")
    system.produce(*[member(system, "g2", i) for i in range(2)])
    system.produce_raw(b"seal", seal("g2", 2))
    wait_for(lambda: batch(system, "g2").get("status") == "decidable", 30, what="decidable")
    slot = batch_link(system, "g2", "alice")
    assert slot["voter_id"] != slot["approver_id"]  # alice's slot goes to erin now
    with Approver() as erin:
        page = erin.sign_in(slot["url"])
    path = page[len(url):]
    with Approver() as dave:
        signin = system.cli_json("approver", "signin-link", "dave", "--next", path)["url"]
        assert dave.sign_in(signin) == page
        text = dave.page(page)
        assert "who is not an approver of this batch" in text and 'name="digest"' not in text
        r = dave.post(page, {"csrf": dave.session_csrf(page), "decision": "approve"})
        assert r.status_code == 403 and "not an approver" in r.text
    assert batch(system, "g2")["counts"] == {"pending": 2}
    assert batch_vote(system, "g2", "alice", "approve", expect=200).text.count("Thank you")
    ids = dict(system.sql("SELECT name, id::text FROM approvers"))
    assert system.sql("SELECT approver_id::text, cast_by::text FROM batch_votes") == [
        (ids["alice"], ids["erin"])]
    wait_for(lambda: batch(system, "g2")["counts"] == {"executed": 2}, 30, what="both executed")
