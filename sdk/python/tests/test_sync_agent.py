"""SyncAgent, the blocking twin: the same requests, answers, errors and
retries as Agent (one implementation, two drivers), without await."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import pytest
from test_batch import FakeBatches, refunds

from countersign import (
    Agent,
    ApprovalDeniedError,
    ApprovalResult,
    ApprovalTimeoutError,
    ConflictError,
    CountersignConnectionError,
    PendingApproval,
    ServerError,
    SyncAgent,
)

from sdkhelpers import (
    AID,
    BASE,
    FakeClock,
    err,
    jresp,
    make_agent,
    make_sync_agent,
    pending_body,
    result_body,
    status_body,
)

pytestmark = pytest.mark.anyio

URL = "https://api.example.com/v1/refunds"


class Router:
    """Answers every endpoint of the agent API with a canned body; records
    each request as (method, url, headers that matter, body)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, str], Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        heads = {k: request.headers[k] for k in ("authorization", "accept", "content-type")
                 if k in request.headers}
        self.seen.append((request.method, str(request.url), heads, body))
        path = request.url.path
        if path == "/v1/proxy":
            return jresp(202, pending_body())
        if path.endswith("/result"):
            return jresp(200, result_body())
        if path.endswith("/cancel"):
            return jresp(200, status_body("cancelled"))
        return jresp(200, status_body())


async def test_both_clients_send_the_same_requests_and_parse_the_same_answers() -> None:
    async_router, sync_router = Router(), Router()
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
        ("proxy_request", ("POST", URL), {"grant_id": "stripe", "json": {"amount": 5},
                                          "reason": "ticket #1", "idempotency_key": "k1",
                                          "query_params": {"a": ["1", "2"]}}),
        ("proxy_request", ("GET", URL), {"grant_id": "stripe", "body": b"\x00\xff"}),
        ("get_approval_status", (AID,), {}),
        ("cancel_approval", (AID,), {"reason": "not needed"}),
        ("await_approval", (AID,), {"timeout": 30}),
    ]
    async_out, sync_out = [], []
    async with make_agent(async_router) as a:
        for name, args, kw in calls:
            async_out.append(await getattr(a, name)(*args, **kw))
    with make_sync_agent(sync_router) as s:
        for name, args, kw in calls:
            sync_out.append(getattr(s, name)(*args, **kw))
    assert sync_router.seen == async_router.seen
    assert len(sync_router.seen) == len(calls)
    assert sync_out == async_out
    assert isinstance(sync_out[0], PendingApproval) and isinstance(sync_out[4], ApprovalResult)


def test_sync_errors_and_argument_checks() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return err(409, "not_pending", "already decided")

    with make_sync_agent(handler) as agent:
        with pytest.raises(ConflictError) as caught:
            agent.cancel_approval(AID)
        assert caught.value.approval_id == AID
        with pytest.raises(ValueError):
            agent.get_approval_status("  ")
        with pytest.raises(ValueError):
            agent.proxy_request("POST", URL, grant_id="stripe", json={}, body=b"x")
        with pytest.raises(ValueError):
            agent.await_approval(AID, timeout=-1)


def test_sync_retries_honour_retry_after_and_backoff(clock: FakeClock) -> None:
    answers = [err(503, "unavailable", headers={"Retry-After": "7"}),
               err(502, "bad_gateway"), jresp(200, status_body())]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers[len(seen) - 1]

    with make_sync_agent(handler, retry_backoff=1, retry_backoff_max=3) as agent:
        assert agent.get_approval_status(AID).status == "pending"
    assert len(seen) == 3
    assert clock.sleeps[0] == 7 and 1 <= clock.sleeps[1] <= 2


def test_sync_retries_are_bounded(clock: FakeClock) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        raise httpx.ConnectError("refused", request=request)

    with make_sync_agent(handler, max_retries=2) as agent:
        with pytest.raises(CountersignConnectionError):
            agent.get_approval_status(AID)
        with pytest.raises(ServerError):
            make_sync_agent(lambda r: err(500, "internal"), max_retries=0).get_approval_status(AID)
    assert len(seen) == 3 and len(clock.sleeps) == 2


def test_sync_await_long_polls_until_the_outcome(clock: FakeClock) -> None:
    waits: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        waits.append(request.url.params["wait"])
        clock.t += 60
        if len(waits) < 3:
            return jresp(202, status_body("pending"))
        return err(409, "denied", "no", {"reason": "wrong customer"})

    with make_sync_agent(handler) as agent, pytest.raises(ApprovalDeniedError) as caught:
        agent.await_approval(AID, timeout=300)
    assert caught.value.details["reason"] == "wrong customer"
    assert waits == ["60", "60", "60"]


def test_sync_await_times_out(clock: FakeClock) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        clock.t += int(request.url.params["wait"])
        return jresp(202, status_body("pending"))

    with make_sync_agent(handler) as agent, pytest.raises(ApprovalTimeoutError) as caught:
        agent.await_approval(AID, timeout=90)
    assert caught.value.last_status is not None and clock.t == 1090


class ThreadedBatches(FakeBatches):
    """FakeBatches for a blocking client: counts requests in flight across threads."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.requests.append(request)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(self.delay)
            with self.lock:
                return self.answer(request)
        finally:
            with self.lock:
                self.in_flight -= 1


def test_sync_submit_batch_runs_members_concurrently_then_seals() -> None:
    server = ThreadedBatches()
    server.delay = 0.01
    with SyncAgent("k", base_url=BASE, transport=httpx.MockTransport(server.handle)) as agent:
        status = agent.submit_batch("b1", refunds(30), concurrency=4)
    assert 1 < server.max_in_flight <= 4
    assert status.status == "decidable" and status.expected == 30
    assert status.approval_ids == tuple(server.ids[f"b1:{i}"] for i in range(30))
    assert str(server.requests[-1].url) == f"{BASE}/v1/batches/b1/seal"


def test_sync_submit_batch_stops_at_a_refused_member() -> None:
    server = ThreadedBatches()
    server.refuse["b1:3"] = err(409, "conflict", "another grant")
    with SyncAgent("k", base_url=BASE, transport=httpx.MockTransport(server.handle)) as agent, \
            pytest.raises(ConflictError) as caught:
        agent.submit_batch("b1", refunds(20), concurrency=1)
    assert caught.value.details["batch_index"] == 3
    assert len(server.posted()) == 4 and "b1" not in server.expected


def test_sync_await_batch_and_closed_client(clock: FakeClock) -> None:
    server = ThreadedBatches()
    server.expected["b1"] = 0
    agent = SyncAgent("k", base_url=BASE, transport=httpx.MockTransport(server.handle))
    assert repr(agent) == f"SyncAgent(base_url={BASE!r})"
    with pytest.raises(ApprovalTimeoutError):
        agent.await_batch("b1", timeout=5, poll_interval=1)
    assert clock.sleeps and sum(clock.sleeps) == 5
    agent.close()
    agent.close()
    with pytest.raises(RuntimeError, match="SyncAgent is closed"):
        agent.get_approval_status(AID)


def test_sync_agent_does_not_close_a_client_it_was_given() -> None:
    client = httpx.Client(transport=httpx.MockTransport(lambda r: jresp(200, status_body())))
    with SyncAgent("k", base_url=BASE, http_client=client) as agent:
        agent.get_approval_status(AID)
    assert not client.is_closed
    client.close()
    with pytest.raises(ValueError):
        SyncAgent("k", transport=httpx.MockTransport(lambda r: jresp(200, {})), http_client=client)
    assert Agent("k").user_agent == SyncAgent("k").user_agent
