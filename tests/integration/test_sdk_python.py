"""The Python SDK (sdk/python) against the real system: api, worker, scheduler.

Each test starts the api, a worker (and a scheduler where expiry matters) on
its own database, submits through ``countersign.Agent`` and, where a person
must decide, decides as a person does: GET the approver's signed link, then
POST the review page's form (CSRF cookie + hidden field + Origin).

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
from html.parser import HTMLParser
from typing import Any, TypeVar
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
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
    ConflictError,
    CountersignError,
    HttpMethod,
    NotFoundError,
    PendingApproval,
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


class _ReviewPage(HTMLParser):
    """The decision form of an approver's review page."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, str]] = []
        self.csrf: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): (v or "") for k, v in attrs}
        if tag == "form":
            self.forms.append(a)
        elif tag == "input" and a.get("name") == "csrf":
            self.csrf = a.get("value", "")


def _link(system: System, approval_id: str, approver: str) -> str:
    links = system.links(approval_id)
    assert links, f"no approver links for {approval_id}"
    for link in links:
        if link.get("approver") == approver:
            return str(link["url"])
    raise AssertionError(f"no link of {approver} in {links}")


def decide_via_link(system: System, api_url: str, approval_id: str, decision: str,
                    reason: str, approver: str = "alice") -> httpx.Response:
    """Approves or denies as a person: opens the signed link, posts its form."""
    url = _link(system, approval_id, approver)
    assert url.startswith(f"{api_url}/approve/"), url
    page = httpx.get(url, timeout=scaled(10))
    assert page.status_code == 200, (page.status_code, page.text[:1000])
    cookie = None
    for header in page.headers.get_list("set-cookie"):
        m = re.match(r"\s*cs_csrf=([^;]*)", header)
        if m:
            cookie = m.group(1)
    assert cookie, f"the review page set no cs_csrf cookie: {page.headers}"
    form = _ReviewPage()
    form.feed(page.text)
    assert any(f.get("method", "").lower() == "post" for f in form.forms), page.text[:2000]
    assert form.csrf, "the review page has no hidden csrf field"
    action = next((f.get("action", "") for f in form.forms
                   if f.get("method", "").lower() == "post"), "")
    target = urljoin(url, action) if action else url
    resp = httpx.post(target, data={"decision": decision, "reason": reason, "csrf": form.csrf},
                      headers={"Cookie": f"cs_csrf={cookie}", "Origin": api_url},
                      timeout=scaled(10))
    assert resp.status_code == 200, (resp.status_code, resp.text[:1000])
    return resp


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
    # The approval_url is a read-only page for people.
    assert httpx.get(p.approval_url, timeout=scaled(10)).status_code == 200


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
    # The approvers' links died with the window.
    for link in system.links(p.approval_id):
        assert httpx.get(link["url"], timeout=scaled(10)).status_code in (403, 410)


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
    url, key, _ = start(system, bases=(dead,), attempts=1)

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


# ---- the README's examples -------------------------------------------------

def readme_blocks() -> list[str]:
    text = (SDK_DIR / "README.md").read_text()
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_readme_examples_run(system: System, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ``python`` block of sdk/python/README.md, as written, with
    COUNTERSIGN_URL / COUNTERSIGN_API_KEY set and https://api.stripe.com
    pointed at the stub. When an example prints "waiting for approval:", the
    test approves what is pending through alice's link, as a person would."""
    url, key, _ = start(system)
    monkeypatch.setenv("COUNTERSIGN_URL", url)
    monkeypatch.setenv("COUNTERSIGN_API_KEY", key)
    blocks = readme_blocks()
    assert len(blocks) >= 4
    lines: list[str] = []
    waiting = threading.Event()

    def fake_print(*args: Any, **_: Any) -> None:
        line = " ".join(str(a) for a in args)
        lines.append(line)
        if line.startswith("waiting for approval:"):
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
                for (aid,) in system.sql("SELECT id FROM approvals WHERE status = 'pending'"):
                    decide_via_link(system, url, str(aid), "approve",
                                    "checked the ticket (README example)")
        thread.join(timeout=1)
        assert not thread.is_alive(), f"README block {n} did not finish; printed {lines}"
        if errors:
            raise errors[0]

    out = "\n".join(lines)
    assert "waiting for approval: " + url + "/status/" in out, out
    assert "provider answered 200" in out, out
    assert re.search(r"^pending 0/1 approvals", out, re.M), out
    assert re.search(r"^cancelled$", out, re.M), out
    assert "forbidden_header - " in out and re.search(r"^unknown_grant$", out, re.M), out
    assert "unexpected:" not in out, out
    assert key not in out
    assert urlsplit(url).netloc in out  # the configuration example used COUNTERSIGN_URL
