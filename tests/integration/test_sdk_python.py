"""The Python SDK (sdk/python) against the real system: api, worker, scheduler.

Each test starts the api, a worker (and a scheduler where expiry matters) on
its own database, submits through ``countersign.Agent`` and, where a person
must decide, decides as a person does (approver.py): open the approver's
one-time sign-in link, press Continue, then POST the decision form of the page
it leads to (the approval_url, or the batch page) with the session cookie.

The SDK is imported from this checkout (sdk/python), installed or not. The
tests are plain functions that run their coroutine with ``asyncio.run``, so
they need no pytest async plugin.
"""

from __future__ import annotations

import asyncio
import re
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from approver import Approver, batch_link, batch_vote, link, vote
from harness import System
from services import REPO_ROOT, free_port, scaled

SDK_DIR = REPO_ROOT / "sdk" / "python"
sys.path.insert(0, str(SDK_DIR))

from countersign import (  # noqa: E402
    Agent,
    ApprovalCancelledError,
    ApprovalDeniedError,
    ApprovalExecutionFailedError,
    ApprovalExpiredError,
    ApprovalResult,
    ApprovalTimeoutError,
    AuthenticationError,
    BatchRequest,
    BatchStatus,
    ConflictError,
    CountersignError,
    HttpMethod,
    NotFoundError,
    PendingApproval,
    SyncAgent,
    ValidationError,
)

T = TypeVar("T")
REASON = "customer charged twice for order 1042, ticket #4312"


# ---- helpers -------------------------------------------------------------

def start(system: System, *, scheduler: bool = False,
          **setup: Any) -> tuple[str, str, dict[str, Any]]:
    """Policy/grant/agent (system.setup), api, worker [, scheduler]; returns
    (api base URL, an API key of bot1, the ids of system.setup)."""
    ids = system.setup(**setup)
    api = system.api()
    system.worker()
    if scheduler:
        system.scheduler()
    return str(api.url), system.api_key(), ids  # type: ignore[attr-defined]


def run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await coro_fn()
    return asyncio.run(main())


def decide_via_link(system: System, api_url: str, approval_id: str, decision: str,
                    reason: str, approver: str = "alice") -> httpx.Response:
    """Approves or denies as a person: signs in with the slot's link, posts the form."""
    assert link(system, approval_id, approver)["url"].startswith(f"{api_url}/signin/")
    return vote(system, approval_id, approver, decision, reason, expect=200)


def decide_batch(system: System, api_url: str, batch_id: str, decision: str, reason: str,
                 deny_only: tuple[str, ...] = (), approver: str = "alice") -> httpx.Response:
    """Decides a batch as a person on its page, ``except`` listing the ids to deny."""
    assert batch_link(system, batch_id, approver)["url"].startswith(f"{api_url}/signin/")
    return batch_vote(system, batch_id, approver, decision, reason, expect=200,
                      **{"except": "\n".join(deny_only)})


def approval_rows(system: System) -> list[tuple[Any, ...]]:
    return system.sql("SELECT id, status, error_code FROM approvals ORDER BY created_at")


# ---- the cases -------------------------------------------------------------

def test_immediate_result_when_no_approval_is_needed(system: System) -> None:
    url, key, _ = start(system)
    system.stub.program("/v1/refunds", status=201, body=b'{"id":"re_1","amount":50}',
                        headers={"Content-Type": "application/json", "X-Request-Id": "req_1"})

    async def main() -> tuple[Any, Any]:
        async with Agent(key, base_url=url) as agent:
            out = await agent.proxy_request(
                "POST", f"{system.stub.url}/v1/refunds", grant_id="stripe",
                json={"amount": 50}, reason="small goodwill refund, ticket #17")
            return out, await agent.get_approval_status(out.approval_id)

    out, status = run(main)
    assert isinstance(out, ApprovalResult), out
    assert out.status_code == 201 and out.ok and out.status == "executed"
    assert out.body_json() == {"id": "re_1", "amount": 50}
    assert out.headers["x-request-id"] == "req_1" and out.body_truncated is False
    assert status.status == "executed" and status.is_terminal and status.has_result
    assert status.executed_at is not None and status.executed_at.tzinfo is not None
    (call,) = system.stub.requests("/v1/refunds")
    assert call.method == "POST" and call.json() == {"amount": 50}
    assert call.headers["authorization"] == f"Bearer {system.secret}"
    assert call.headers["idempotency-key"] == f"countersign-{out.approval_id}"


def test_bodies_and_parameters_reach_the_provider(system: System) -> None:
    url, key, _ = start(system)
    raw = bytes(range(256)) * 4

    async def main() -> list[Any]:
        async with Agent(key, base_url=url) as agent:
            a = await agent.proxy_request(
                HttpMethod.PUT, f"{system.stub.url}/v1/files/{{file_id}}", grant_id="stripe",
                body=raw, path_params={"file_id": "file_9"},
                query_params={"purpose": "dispute_evidence", "tag": ["a", "b"]},
                extra_headers={"Content-Type": "application/octet-stream", "X-Trace": "t-1"},
                reason="upload the dispute evidence for ticket #77")
            b = await agent.proxy_request(
                "post", f"{system.stub.url}/v1/ping", grant_id="stripe", json=None,
                reason="health check of the provider")
            c = await agent.proxy_request(
                "PATCH", f"{system.stub.url}/v1/notes", grant_id="stripe", body="plain text é",
                extra_headers={"Content-Type": "text/plain; charset=utf-8"},
                reason="note on ticket #77")
            return [a, b, c]

    outs = run(main)
    assert all(isinstance(o, ApprovalResult) and o.status_code == 200 for o in outs), outs
    (put,) = system.stub.requests("/v1/files/")
    assert put.method == "PUT" and put.body == raw
    path, _, query = put.path.partition("?")
    assert path == "/v1/files/file_9"
    assert parse_qs(query) == {"purpose": ["dispute_evidence"], "tag": ["a", "b"]}
    assert put.headers["x-trace"] == "t-1"
    assert put.headers["content-type"] == "application/octet-stream"
    (ping,) = system.stub.requests("/v1/ping")
    assert ping.body == b"null" and ping.headers["content-type"] == "application/json"
    (note,) = system.stub.requests("/v1/notes")
    assert note.body == "plain text é".encode() and note.method == "PATCH"


def test_pending_then_approved_through_the_link(system: System) -> None:
    url, key, _ = start(system)
    system.stub.program("/v1/refunds", status=200, body=b'{"id":"re_2","status":"succeeded"}',
                        headers={"Content-Type": "application/json"})

    async def main() -> tuple[Any, ...]:
        async with Agent(key, base_url=url) as agent:
            p = await agent.proxy_request(
                "POST", f"{system.stub.url}/v1/refunds", grant_id="stripe",
                json={"amount": 500}, reason=REASON, context={"ticket": 4312})
            assert isinstance(p, PendingApproval), p
            before = await agent.get_approval_status(p.approval_id)
            waiter = asyncio.create_task(agent.await_approval(p.approval_id,
                                                              timeout=scaled(60)))
            await asyncio.sleep(0.5)
            assert not waiter.done(), "await_approval returned before any decision"
            assert system.stub.count("/v1/refunds") == 0
            await asyncio.to_thread(decide_via_link, system, url, p.approval_id, "approve",
                                    "checked ticket #4312: duplicate charge confirmed")
            result = await waiter
            after = await agent.get_approval_status(p.approval_id)
            again = await agent.await_approval(p.approval_id, timeout=0)
            return p, before, result, after, again

    p, before, result, after, again = run(main)
    assert p.status == "pending" and p.needs_approval
    assert p.approval_url.startswith(f"{url}/status/")
    left = p.expires_at - datetime.now(timezone.utc)
    assert timedelta(minutes=55) < left <= timedelta(hours=1, seconds=5)
    assert before.status == "pending" and not before.is_terminal and not before.has_result
    assert before.approvals_required == 1 and before.approvals_received == 0
    assert before.expires_at == p.expires_at
    assert isinstance(result, ApprovalResult) and result.approval_id == p.approval_id
    assert result.status_code == 200
    assert result.body_json() == {"id": "re_2", "status": "succeeded"}
    assert after.status == "executed" and after.is_terminal and after.has_result
    assert after.decided_at is not None and after.approvals_received == 1
    assert again == result
    assert system.stub.count("/v1/refunds") == 1
    # The approval_url shows people the status; nobody decides there any more.
    page = httpx.get(p.approval_url, timeout=scaled(10))
    assert page.status_code == 200 and "Nothing more to decide" in page.text


def test_sync_agent_with_the_key_from_the_environment(
        system: System, monkeypatch: pytest.MonkeyPatch) -> None:
    """SyncAgent, the blocking twin, end to end: key and URL from the
    environment, an inline result, a pending approval decided by a person
    while the caller blocks in await_approval, a denied batch sent on threads."""
    url, key, _ = start(system, scheduler=True)
    monkeypatch.setenv("COUNTERSIGN_API_KEY", key)
    monkeypatch.setenv("COUNTERSIGN_URL", url)
    system.stub.program("/v1/refunds", status=200, body=b'{"id":"re_3"}',
                        headers={"Content-Type": "application/json"})
    with SyncAgent() as agent:
        inline = agent.proxy_request("POST", f"{system.stub.url}/v1/refunds", grant_id="stripe",
                                     json={"amount": 5}, reason="small refund, ticket #2")
        p = agent.proxy_request("POST", f"{system.stub.url}/v1/refunds", grant_id="stripe",
                                json={"amount": 500}, reason=REASON)
        assert isinstance(p, PendingApproval), p
        decider = threading.Timer(0.5, decide_via_link, (system, url, p.approval_id, "approve",
                                                        "duplicate charge confirmed"))
        decider.start()
        try:
            result = agent.await_approval(p.approval_id, timeout=scaled(60))
        finally:
            decider.join()
        status = agent.get_approval_status(p.approval_id)
        batch = agent.submit_batch("sync-small", _refunds(system, 6, amount=5), concurrency=3)
        with pytest.raises(ApprovalTimeoutError):
            agent.await_batch("sync-small", timeout=0)
        decide_batch(system, url, "sync-small", "deny", "not this week", (), "bob")
        final = agent.await_batch("sync-small", timeout=scaled(60), poll_interval=0.5)
        with pytest.raises(ApprovalDeniedError) as denied:
            agent.await_approval(batch.approval_ids[0], timeout=scaled(10))
    assert isinstance(inline, ApprovalResult) and inline.body_json() == {"id": "re_3"}
    assert isinstance(result, ApprovalResult) and result.status_code == 200
    assert status.status == "executed" and status.approvals_received == 1
    assert batch.status == "decidable" and len(set(batch.approval_ids)) == 6
    assert final.counts == {"denied": 6} and denied.value.reason == "not this week"
    assert system.stub.count("/v1/refunds") == 2
    with pytest.raises(RuntimeError):
        agent.get_approval_status(p.approval_id)


def test_denied_carries_the_approvers_reason(system: System) -> None:
    url, key, ids = start(system)
    why = "duplicate refund: already refunded as re_41"

    async def main() -> tuple[Any, Any, Any]:
        async with Agent(key, base_url=url) as agent:
            p = await agent.proxy_request(
                "POST", f"{system.stub.url}/v1/refunds", grant_id="stripe",
                json={"amount": 700}, reason=REASON)
            assert isinstance(p, PendingApproval), p
            await asyncio.to_thread(decide_via_link, system, url, p.approval_id, "deny", why,
                                    "bob")
            with pytest.raises(ApprovalDeniedError) as info:
                await agent.await_approval(p.approval_id, timeout=scaled(30))
            return p, info.value, await agent.get_approval_status(p.approval_id)

    p, e, status = run(main)
    assert e.code == "denied" and e.status_code == 409 and e.approval_id == p.approval_id
    assert e.details["reason"] == why and e.reason == why
    assert e.decided_by and (ids["bob"] in e.decided_by or "bob" in e.decided_by), e.details
    assert status.status == "denied" and status.is_terminal and not status.has_result
    assert status.decision_reason == why and status.decided_at is not None
    assert system.stub.count() == 0


def test_expired_when_nobody_decides(system: System) -> None:
    url, key, _ = start(system, scheduler=True, window=2)

    async def main() -> tuple[Any, Any, Any]:
        async with Agent(key, base_url=url) as agent:
            p = await agent.proxy_request(
                "POST", f"{system.stub.url}/v1/refunds", grant_id="stripe",
                json={"amount": 900}, reason=REASON)
            assert isinstance(p, PendingApproval), p
            with pytest.raises(ApprovalExpiredError) as info:
                await agent.await_approval(p.approval_id, timeout=scaled(30))
            return p, info.value, await agent.get_approval_status(p.approval_id)

    p, e, status = run(main)
    assert e.code == "expired" and e.status_code == 410 and e.approval_id == p.approval_id
    assert status.status == "expired" and status.is_terminal
    assert status.decided_at is not None and status.decided_at >= status.expires_at
    assert system.stub.count() == 0
    # After the window an approver who signs in finds no form, and a vote is refused.
    for slot in system.links(p.approval_id):
        with Approver() as person:
            page = person.sign_in(slot["url"])
            assert page == p.approval_url and "Nothing more to decide" in person.page(page)
            r = person.post(page, {"csrf": person.session_csrf(page), "decision": "approve"})
            assert r.status_code == 410 and "expired" in r.text, (r.status_code, r.text[:500])


def test_local_timeout_then_a_later_await_succeeds(system: System) -> None:
    url, key, _ = start(system)

    async def main() -> tuple[Any, ...]:
        async with Agent(key, base_url=url) as agent:
            p = await agent.proxy_request(
                "POST", f"{system.stub.url}/v1/refunds", grant_id="stripe",
                json={"amount": 250}, reason=REASON)
            assert isinstance(p, PendingApproval), p
            t0 = time.monotonic()
            with pytest.raises(ApprovalTimeoutError) as info:
                await agent.await_approval(p.approval_id, timeout=2)
            took = time.monotonic() - t0
            still = await agent.get_approval_status(p.approval_id)
            await asyncio.to_thread(decide_via_link, system, url, p.approval_id, "approve",
                                    "ok after the customer called back")
            result = await agent.await_approval(p.approval_id, timeout=scaled(30))
            return p, info.value, took, still, result

    p, e, took, still, result = run(main)
    assert 1.9 <= took < 2 + scaled(5), took
    assert e.code == "timeout" and e.status_code is None and e.approval_id == p.approval_id
    assert e.last_status is not None and e.last_status.status == "pending"
    assert still.status == "pending"
    assert isinstance(result, ApprovalResult) and result.status_code == 200
    assert system.stub.count("/v1/refunds") == 1


def test_execution_failure_outcome_unknown(system: System) -> None:
    url, key, _ = start(system)  # the grant does not say the provider honours idempotency keys
    system.stub.program("/v1/refunds", close_without_response=True)

    async def main() -> tuple[Any, Any, Any]:
        async with Agent(key, base_url=url) as agent:
            p = await agent.proxy_request(
                "POST", f"{system.stub.url}/v1/refunds", grant_id="stripe",
                json={"amount": 300}, reason=REASON)
            assert isinstance(p, PendingApproval), p
            await asyncio.to_thread(decide_via_link, system, url, p.approval_id, "approve",
                                    "fine")
            with pytest.raises(ApprovalExecutionFailedError) as info:
                await agent.await_approval(p.approval_id, timeout=scaled(60))
            return p, info.value, await agent.get_approval_status(p.approval_id)

    p, e, status = run(main)
    assert e.code == "execution_failed" and e.status_code == 502
    assert e.details["error_code"] == "outcome_unknown" and e.error_code == "outcome_unknown"
    assert e.approval_id == p.approval_id
    assert status.status == "failed" and status.error_code == "outcome_unknown"
    assert system.stub.count("/v1/refunds") == 1  # never re-run blindly


def test_execution_failure_connect_failed_inline(system: System) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    # Nothing was ever sent, so the call is retried until the grant's execution
    # deadline (README, "Execution"): a short one, then connect_failed.
    url, key, _ = start(system, bases=(dead,), attempts=1, exec_deadline=3)

    async def main() -> Any:
        async with Agent(key, base_url=url) as agent:
            with pytest.raises(ApprovalExecutionFailedError) as info:
                out = await agent.proxy_request(
                    "POST", f"{dead}/v1/refunds", grant_id="stripe", json={"amount": 20},
                    reason="small refund, ticket #18")
                # No approval needed; if the inline wait ended first, wait here.
                assert isinstance(out, PendingApproval), out
                await agent.await_approval(out.approval_id, timeout=scaled(60))
            return info.value

    e = run(main)
    assert e.code == "execution_failed" and e.status_code == 502
    assert e.details["error_code"] == "connect_failed"


def test_cancel(system: System) -> None:
    url, key, _ = start(system)

    async def main() -> tuple[Any, ...]:
        async with Agent(key, base_url=url) as agent:
            p = await agent.proxy_request(
                "POST", f"{system.stub.url}/v1/refunds", grant_id="stripe",
                json={"amount": 400}, reason=REASON)
            assert isinstance(p, PendingApproval), p
            cancelled = await agent.cancel_approval(p.approval_id,
                                                    reason="customer withdrew the request")
            with pytest.raises(ApprovalCancelledError) as info:
                await agent.await_approval(p.approval_id, timeout=scaled(10))
            with pytest.raises(CountersignError) as again:
                await agent.cancel_approval(p.approval_id)
            return p, cancelled, info.value, again.value

    p, cancelled, e, again = run(main)
    assert cancelled.approval_id == p.approval_id
    assert cancelled.status == "cancelled" and cancelled.is_terminal
    assert e.code == "cancelled" and e.status_code == 409 and e.approval_id == p.approval_id
    assert isinstance(again, (ConflictError, ApprovalCancelledError)) and again.status_code == 409
    assert system.stub.count() == 0


def test_bad_key_is_an_authentication_error(system: System) -> None:
    url, _, _ = start(system)

    async def main() -> list[CountersignError]:
        out = []
        async with Agent("cs_" + "0" * 40, base_url=url) as agent:
            with pytest.raises(AuthenticationError) as a:
                await agent.proxy_request("POST", f"{system.stub.url}/v1/refunds",
                                          grant_id="stripe", json={"amount": 500}, reason=REASON)
            out.append(a.value)
            with pytest.raises(AuthenticationError) as b:
                await agent.get_approval_status(str(uuid.uuid4()))
            out.append(b.value)
        return out

    for e in run(main):
        assert e.code == "unauthenticated" and e.status_code == 401
    assert system.stub.count() == 0 and approval_rows(system) == []


def test_forbidden_header_is_a_validation_error(system: System) -> None:
    url, key, _ = start(system)

    async def main() -> CountersignError:
        async with Agent(key, base_url=url) as agent:
            with pytest.raises(ValidationError) as info:
                await agent.proxy_request("POST", f"{system.stub.url}/v1/refunds",
                                          grant_id="stripe", json={"amount": 5},
                                          extra_headers={"Authorization": "x"}, reason=REASON)
            return info.value

    e = run(main)
    assert e.code == "forbidden_header" and e.status_code == 400 and e.message
    assert system.stub.count() == 0 and approval_rows(system) == []


def test_unknown_grant_is_not_found(system: System) -> None:
    url, key, _ = start(system)

    async def main() -> CountersignError:
        async with Agent(key, base_url=url) as agent:
            with pytest.raises(NotFoundError) as info:
                await agent.proxy_request("POST", f"{system.stub.url}/v1/refunds",
                                          grant_id="no-such-grant", json={"amount": 5},
                                          reason=REASON)
            return info.value

    e = run(main)
    assert e.code == "unknown_grant" and e.status_code == 404
    assert system.stub.count() == 0


def test_another_agents_approval_is_not_found(system: System) -> None:
    url, key, _ = start(system)
    system.cli("agent", "create", "bot2")
    other_key = system.api_key("bot2")

    async def main() -> list[CountersignError]:
        async with Agent(key, base_url=url) as mine, Agent(other_key, base_url=url) as other:
            p = await mine.proxy_request("POST", f"{system.stub.url}/v1/refunds",
                                         grant_id="stripe", json={"amount": 500}, reason=REASON)
            assert isinstance(p, PendingApproval), p
            errs = []
            for call in (other.get_approval_status(p.approval_id),
                         other.await_approval(p.approval_id, timeout=1),
                         other.cancel_approval(p.approval_id)):
                with pytest.raises(NotFoundError) as info:
                    await call
                errs.append(info.value)
            assert (await mine.get_approval_status(p.approval_id)).status == "pending"
            return errs

    for e in run(main):
        assert e.status_code == 404


def test_idempotency_key(system: System) -> None:
    url, key, _ = start(system)

    async def main() -> tuple[Any, Any, CountersignError]:
        async with Agent(key, base_url=url) as agent:
            kw: dict[str, Any] = {"grant_id": "stripe", "reason": REASON,
                                  "idempotency_key": "refund-ticket-4312"}
            first = await agent.proxy_request("POST", f"{system.stub.url}/v1/refunds",
                                              json={"amount": 500}, **kw)
            second = await agent.proxy_request("POST", f"{system.stub.url}/v1/refunds",
                                               json={"amount": 500}, **kw)
            with pytest.raises(ConflictError) as info:
                await agent.proxy_request("POST", f"{system.stub.url}/v1/refunds",
                                          json={"amount": 501}, **kw)
            return first, second, info.value

    first, second, e = run(main)
    assert isinstance(first, PendingApproval) and isinstance(second, PendingApproval)
    assert first.approval_id == second.approval_id
    assert e.status_code == 409
    assert len(approval_rows(system)) == 1


# ---- batches -----------------------------------------------------------------

def _refunds(system: System, n: int, amount: int = 500) -> list[BatchRequest]:
    return [BatchRequest("POST", f"{system.stub.url}/v1/refunds/{i}", grant_id="stripe",
                         json={"charge": f"ch_{i:03d}", "amount": amount + i},
                         reason=f"order {7000 + i} came back unopened (ticket #{88000 + i})",
                         context={"order": 7000 + i})
            for i in range(n)]


def test_batch_approved_all_but_two_through_the_batch_page(system: System) -> None:
    url, key, _ = start(system, scheduler=True, mode="always", rules=[],
                        approvers=("alice", "bob"), quorum=1)
    system.stub.program("/v1/refunds/", status=201, body=b'{"refund":"re_ok"}',
                        headers={"Content-Type": "application/json"})
    deny = ("nightly-1:3", "nightly-1:7")
    why = "orders 7003 and 7007 were already refunded by hand"

    async def main() -> tuple[Any, ...]:
        async with Agent(key, base_url=url) as agent:
            submitted = await agent.submit_batch("nightly-1", _refunds(system, 10))
            member = await agent.get_approval_status(submitted.approval_ids[0])
            with pytest.raises(ApprovalTimeoutError) as early:
                await agent.await_batch("nightly-1", timeout=1, poll_interval=0.2)
            assert system.stub.count("/v1/refunds/") == 0
            waiter = asyncio.create_task(agent.await_batch("nightly-1", timeout=scaled(90),
                                                           poll_interval=0.5))
            await asyncio.to_thread(decide_batch, system, url, "nightly-1", "approve", why, deny)
            final = await waiter
            again = await agent.get_batch_status("nightly-1")
            results = []
            for aid in submitted.approval_ids:
                try:
                    results.append(await agent.await_approval(aid, timeout=scaled(10)))
                except ApprovalDeniedError as e:
                    results.append(e)
            return submitted, member, early.value, final, again, results

    submitted, member, early, final, again, results = run(main)
    assert isinstance(submitted, BatchStatus)
    assert submitted.batch_id == "nightly-1" and submitted.status == "decidable"
    assert submitted.expected == 10 and submitted.members == 10 and submitted.sealed
    assert submitted.counts == {"pending": 10} and len(submitted.digest or "") == 64
    assert submitted.approvals_required == 1 and not submitted.is_terminal
    assert submitted.expires_at is not None and submitted.grant_id == "stripe"
    assert len(set(submitted.approval_ids)) == 10
    assert member.status == "pending" and member.batch_id == "nightly-1"
    assert early.code == "timeout" and early.last_batch_status is not None
    assert early.last_batch_status.status == "decidable"
    assert final.is_terminal and final.status == "decided"
    assert final.counts == {"executed": 8, "denied": 2}
    assert final.count("executed") == 8 and final.decided_at is not None
    assert final.finished_at is not None and final.approval_ids == ()
    assert again.counts == final.counts and again.is_terminal
    denied = [r for r in results if isinstance(r, ApprovalDeniedError)]
    assert [results.index(d) for d in denied] == [3, 7]
    assert all(d.reason == why for d in denied)
    assert all(isinstance(r, ApprovalResult) and r.status_code == 201
               for i, r in enumerate(results) if i not in (3, 7))
    paths = sorted(r.path for r in system.stub.requests("/v1/refunds/"))
    assert paths == sorted(f"/v1/refunds/{i}" for i in range(10) if i not in (3, 7))
    rows = dict(system.sql("SELECT request_id, status FROM approvals WHERE batch_id = 'nightly-1'"))
    assert rows == {f"nightly-1:{i}": "denied" if i in (3, 7) else "executed" for i in range(10)}


def test_batch_members_wait_even_when_the_policy_would_not(system: System) -> None:
    # Default rule: only refunds over 100 need approval; these are all small.
    url, key, _ = start(system, scheduler=True)

    async def main() -> tuple[Any, ...]:
        async with Agent(key, base_url=url) as agent:
            alone = await agent.proxy_request("POST", f"{system.stub.url}/v1/refunds/solo",
                                              grant_id="stripe", json={"amount": 5},
                                              reason="small refund, ticket #1")
            b = await agent.submit_batch("small-ones", _refunds(system, 4, amount=5))
            statuses = [await agent.get_approval_status(a) for a in b.approval_ids]
            await asyncio.sleep(1)
            assert system.stub.count("/v1/refunds/") == 1  # only the one outside the batch
            await asyncio.to_thread(decide_batch, system, url, "small-ones", "deny",
                                    "not this week", (), "bob")
            final = await agent.await_batch("small-ones", timeout=scaled(60),
                                            poll_interval=0.5)
            return alone, b, statuses, final

    alone, b, statuses, final = run(main)
    assert isinstance(alone, ApprovalResult)
    assert b.status == "decidable" and [s.status for s in statuses] == ["pending"] * 4
    assert final.counts == {"denied": 4} and final.decision == "denied"
    assert system.stub.count("/v1/refunds/") == 1


def test_batch_refusals(system: System) -> None:
    url, key, _ = start(system, mode="always", rules=[], approvers=("alice", "bob"), quorum=1)
    system.cli("policy", "set", "other", "--mode", "always", "--quorum", "1", "--approvers",
               "alice")
    system.cli("grant", "set", "second", "--policy", "other", "--agents", "bot1", "--allow",
               system.stub.url, "--secret-stdin", input="sk_second\n")

    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with Agent(key, base_url=url) as agent:
            first = await agent.submit_batch("r3", _refunds(system, 3))
            out["again"] = await agent.submit_batch("r3", _refunds(system, 3))
            out["first"] = first
            # The same seal is a no-op; another count is a conflict.
            out["same_seal"] = await agent.seal_batch("r3", 3)
            with pytest.raises(ConflictError) as seal:
                await agent.seal_batch("r3", 4)
            out["seal"] = seal.value
            # A member after the seal (the batch is complete) is refused.
            with pytest.raises(ConflictError) as late:
                await agent.submit_batch("r3", _refunds(system, 4))
            out["late"] = late.value
            with pytest.raises(ConflictError) as late_proxy:
                await agent.proxy_request("POST", f"{system.stub.url}/v1/refunds/9",
                                          grant_id="stripe", json={"amount": 9},
                                          batch_id="r3", idempotency_key="r3-late")
            out["late_proxy"] = late_proxy.value
            # A member with another grant than the batch's.
            mixed = _refunds(system, 2) + [BatchRequest(
                "POST", f"{system.stub.url}/v1/refunds/x", grant_id="second",
                json={"amount": 1}, reason="wrong grant")]
            with pytest.raises(ConflictError) as grant:
                await agent.submit_batch("mixed", mixed, concurrency=1)
            out["grant"] = grant.value
            out["mixed"] = await agent.get_batch_status("mixed")
            # A seal for fewer members than already stored.
            with pytest.raises(ConflictError) as fewer:
                await agent.seal_batch("mixed", 1)
            out["fewer"] = fewer.value
            with pytest.raises(ValidationError) as bad:
                await agent.submit_batch("bad", [{"method": "POST", "url": "ftp://x/y",
                                                  "grant_id": "stripe"}])
            out["bad"] = bad.value
            with pytest.raises(NotFoundError):
                await agent.get_batch_status("never-used")
            with pytest.raises(NotFoundError):
                await agent.await_batch("never-used", timeout=1)
        return out

    out = run(main)
    first, again = out["first"], out["again"]
    assert again.approval_ids == first.approval_ids and again.members == 3
    assert out["same_seal"].expected == 3 and out["same_seal"].status == "decidable"
    e = out["seal"]
    assert e.status_code == 409 and e.code == "conflict" and "already sealed for 3" in e.message
    e = out["late"]
    assert e.status_code == 409 and "member after" in e.message
    assert e.details["batch_id"] == "r3" and e.details["batch_index"] == 3
    assert out["late_proxy"].status_code == 409 and "member after" in out["late_proxy"].message
    e = out["grant"]
    assert e.status_code == 409 and "this member uses grant second" in e.message
    assert e.details["batch_index"] == 2
    assert out["mixed"].members == 2 and not out["mixed"].sealed
    assert out["mixed"].status == "open"
    assert out["fewer"].status_code == 409 and "more than the seal" in out["fewer"].message
    assert out["bad"].status_code == 400 and out["bad"].details["batch_index"] == 0
    assert system.stub.count() == 0
    assert system.sql("SELECT count(*) FROM approvals WHERE batch_id = 'r3'")[0][0] == 3


# ---- the README's examples -------------------------------------------------

def readme_blocks() -> list[str]:
    text = (SDK_DIR / "README.md").read_text()
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_readme_examples_run(system: System, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ``python`` block of sdk/python/README.md, as written, with
    COUNTERSIGN_URL / COUNTERSIGN_API_KEY set and https://api.stripe.com
    pointed at the stub. When an example prints "waiting for approval:", the
    test approves what is pending through alice's link, as a person would;
    when it prints "waiting for the batch decision on B:", it approves batch B
    on alice's batch page, all but its first two members."""
    url, key, _ = start(system, scheduler=True)
    monkeypatch.setenv("COUNTERSIGN_URL", url)
    monkeypatch.setenv("COUNTERSIGN_API_KEY", key)
    blocks = readme_blocks()
    assert len(blocks) >= 4
    lines: list[str] = []
    waiting = threading.Event()

    def fake_print(*args: Any, **_: Any) -> None:
        line = " ".join(str(a) for a in args)
        lines.append(line)
        if line.startswith(("waiting for approval:", "waiting for the batch decision on ")):
            waiting.set()

    for n, block in enumerate(blocks, 1):
        src = block.replace("https://api.stripe.com", system.stub.url)
        errors: list[BaseException] = []

        def execute(src: str = src, n: int = n, errors: list[BaseException] = errors) -> None:
            try:
                exec(compile(src, f"sdk/python/README.md python block {n}", "exec"),
                     {"__name__": "__main__", "print": fake_print})
            except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
                errors.append(exc)

        waiting.clear()
        thread = threading.Thread(target=execute, name=f"readme-block-{n}", daemon=True)
        thread.start()
        deadline = time.monotonic() + scaled(90)
        while thread.is_alive() and time.monotonic() < deadline:
            if waiting.wait(0.1):
                waiting.clear()
                batch = re.match(r"waiting for the batch decision on (\S+):", lines[-1])
                if batch:
                    first_two = [r[0] for r in system.sql(
                        "SELECT request_id FROM approvals WHERE batch_id = %s "
                        "ORDER BY request_id LIMIT 2", batch.group(1))]
                    decide_batch(system, url, batch.group(1), "approve",
                                 "these two were refunded by hand already", tuple(first_two))
                    continue
                for (aid,) in system.sql("SELECT id FROM approvals WHERE status = 'pending' "
                                         "AND batch_id IS NULL"):
                    decide_via_link(system, url, str(aid), "approve",
                                    "checked the ticket (README example)")
        thread.join(timeout=1)
        assert not thread.is_alive(), f"README block {n} did not finish; printed {lines}"
        if errors:
            raise errors[0]

    out = "\n".join(lines)
    assert "waiting for approval: " + url + "/status/" in out, out
    assert "provider answered 200" in out, out
    assert re.search(r"^blocking: provider answered 200$", out, re.M), out
    assert re.search(r"^pending 0/1 approvals", out, re.M), out
    assert re.search(r"^cancelled$", out, re.M), out
    assert "forbidden_header - " in out and re.search(r"^unknown_grant$", out, re.M), out
    assert "unexpected:" not in out, out
    assert re.search(r"^waiting for the batch decision on refunds-2024-06-03: 100 refunds, "
                     r"batch digest [0-9a-f]{64}$", out, re.M), out
    assert re.search(r"^batch refunds-2024-06-03 approved: denied: 2, executed: 98$", out,
                     re.M), out
    assert len(re.findall(r"^not refunded: [0-9a-f-]{36} denied these two were refunded",
                          out, re.M)) == 2, out
    assert re.search(r"^98 refunds made$", out, re.M), out
    assert system.stub.count("/v1/refunds") >= 98
    assert key not in out
    assert urlsplit(url).netloc in out  # the configuration example used COUNTERSIGN_URL
