"""Batches: submit_batch, seal_batch, get_batch_status, await_batch, BatchStatus."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import anyio
import httpx
import pytest

from countersign import (
    ApprovalExpiredError,
    ApprovalTimeoutError,
    BatchRequest,
    BatchStatus,
    ConflictError,
    CountersignConnectionError,
    NotFoundError,
    ServerError,
    ValidationError,
)
from countersign._agent import BATCH_POLL_MAX_SECONDS, batch_poll_delay

from sdkhelpers import BASE, FakeClock, err, jresp, make_agent

pytestmark = pytest.mark.anyio

URL = "https://api.example.com/v1/refunds"


def batch_body(batch_id: str = "b1", status: str = "open", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "batch_id": batch_id, "batch_uid": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
        "status": status, "expected": None, "members": 0, "counts": {}, "digest": None,
        "created_at": "2025-01-02T03:04:05Z", "expires_at": "2025-01-02T04:04:05Z",
        "decided_at": None, "decided_by": None, "decision": None, "finished_at": None,
        "grant_id": "stripe", "policy_id": "pay", "agent": "bot1", "amount_field": "amount",
        "agent_id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a00", "approvals_received": 0,
        "approvals_required": 1, "is_terminal": False,
    }
    body.update(extra)
    return body


class FakeBatches:
    """Plays POST /v1/proxy (batch members), POST /v1/batches/{id}/seal and
    GET /v1/batches/{id} like the API: members by idempotency key, a seal
    with another count is a conflict, a member after a complete seal is refused."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.members: dict[str, dict[str, dict[str, Any]]] = {}  # batch -> key -> member
        self.ids: dict[str, str] = {}                           # key -> approval id
        self.expected: dict[str, int] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.refuse: dict[str, httpx.Response] = {}             # key -> answer
        self.delay = 0.0

    def status(self, batch: str) -> dict[str, Any]:
        members = self.members.get(batch, {})
        expected = self.expected.get(batch)
        complete = expected is not None and len(members) == expected
        return batch_body(batch, "decidable" if complete else "open", expected=expected,
                          members=len(members),
                          counts={"pending": len(members)} if members else {},
                          digest="ab" * 32 if complete else None)

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await anyio.sleep(self.delay)
            return self.answer(request)
        finally:
            self.in_flight -= 1

    def answer(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST" and path == "/v1/proxy":
            body = json.loads(request.content)
            key, batch = body["idempotency_key"], body["batch_id"]
            if key in self.refuse:
                return self.refuse[key]
            members = self.members.setdefault(batch, {})
            if key in members:
                return jresp(202, self.pending(key))
            if batch in self.expected and len(members) >= self.expected[batch]:
                return err(409, "conflict", f"batch {batch} is decidable: a member after "
                           "that is refused")
            members[key] = body
            self.ids[key] = str(uuid.uuid4())
            return jresp(202, self.pending(key))
        if path.startswith("/v1/batches/"):
            rest = path[len("/v1/batches/"):]
            if request.method == "POST" and rest.endswith("/seal"):
                batch = rest[:-len("/seal")]
                count = json.loads(request.content)["count"]
                if self.expected.get(batch, count) != count:
                    return err(409, "conflict", f"batch {batch} is already sealed for "
                               f"{self.expected[batch]} members: a seal for {count} is refused")
                self.expected[batch] = count
                return jresp(200, self.status(batch))
            if request.method == "GET":
                if rest not in self.members and rest not in self.expected:
                    return err(404, "not_found", "no such batch")
                return jresp(200, self.status(rest))
        return err(404, "not_found", "no route")

    def pending(self, key: str) -> dict[str, Any]:
        return {"type": "pending_approval", "approval_id": self.ids[key],
                "approval_url": f"{BASE}/status/{key}", "expires_at": "2025-01-02T04:04:05Z",
                "status": "pending"}

    def posted(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests if r.url.path == "/v1/proxy"]


def refunds(n: int) -> list[dict[str, Any]]:
    return [{"method": "POST", "url": URL, "grant_id": "stripe",
             "json": {"charge": f"ch_{i}", "amount": 100 + i},
             "reason": f"order {7000 + i} returned unopened (ticket #{88000 + i})"}
            for i in range(n)]


# ---- submit_batch ------------------------------------------------------------

async def test_submit_batch_sends_every_member_then_seals() -> None:
    server = FakeBatches()
    async with make_agent(server) as agent:
        status = await agent.submit_batch("refunds-2025-01-02", refunds(40))
    posted = server.posted()
    assert len(posted) == 40
    assert sorted(p["idempotency_key"] for p in posted) == sorted(
        f"refunds-2025-01-02:{i}" for i in range(40))
    by_key = {p["idempotency_key"]: p for p in posted}
    assert by_key["refunds-2025-01-02:7"] == {
        "method": "POST", "url": URL, "grant_id": "stripe",
        "json": {"charge": "ch_7", "amount": 107},
        "reason": "order 7007 returned unopened (ticket #88007)",
        "idempotency_key": "refunds-2025-01-02:7", "batch_id": "refunds-2025-01-02"}
    seal = server.requests[-1]
    assert seal.method == "POST" and str(seal.url) == f"{BASE}/v1/batches/refunds-2025-01-02/seal"
    assert json.loads(seal.content) == {"count": 40}
    assert seal.headers["content-type"] == "application/json"
    assert isinstance(status, BatchStatus)
    assert status.status == "decidable" and status.expected == 40 and status.members == 40
    assert status.counts == {"pending": 40} and status.digest == "ab" * 32
    # The approval ids, in the order of the requests.
    assert status.approval_ids == tuple(server.ids[f"refunds-2025-01-02:{i}"] for i in range(40))


async def test_members_are_sent_with_bounded_concurrency() -> None:
    server = FakeBatches()
    server.delay = 0.005
    async with make_agent(server) as agent:
        await agent.submit_batch("b1", refunds(50), concurrency=4)
        assert 1 < server.max_in_flight <= 4
        server.max_in_flight = 0
        await agent.submit_batch("b2", refunds(60))
    assert 4 < server.max_in_flight <= 16


async def test_batch_request_objects_and_explicit_keys() -> None:
    @dataclass
    class Refund:  # an object of the caller's own, with the same attribute names
        method: str
        url: str
        grant_id: str
        json: Any
        reason: str
        order: int = 0  # other attributes are not read

    server = FakeBatches()
    requests: list[Any] = [
        BatchRequest("POST", URL, grant_id="stripe", json={"amount": 1},
                     reason="refund order 1", idempotency_key="refund-order-1"),
        BatchRequest("PUT", URL + "/{id}", grant_id="stripe", body=b"\x00\x01",
                     path_params={"id": "re_1"}, query_params={"expand": ["a", "b"]},
                     extra_headers={"X-Trace": "t"}, context={"ticket": 4}),
        Refund("POST", URL, "stripe", None, "refund order 3"),
        {"method": "post", "url": URL, "grant_id": "stripe", "idempotency_key": None},
    ]
    async with make_agent(server) as agent:
        status = await agent.submit_batch("b9", requests)
    posted = {p["idempotency_key"]: p for p in server.posted()}
    assert set(posted) == {"refund-order-1", "b9:1", "b9:2", "b9:3"}
    assert posted["refund-order-1"]["json"] == {"amount": 1}
    assert "json" not in posted["b9:1"] and posted["b9:1"]["body_b64"] == "AAE="
    assert posted["b9:1"]["path_params"] == {"id": "re_1"}
    assert posted["b9:1"]["query_params"] == {"expand": ["a", "b"]}
    assert posted["b9:1"]["extra_headers"] == {"X-Trace": "t"}
    assert posted["b9:2"]["json"] is None  # an attribute json=None is JSON null
    assert posted["b9:3"]["method"] == "POST" and "json" not in posted["b9:3"]
    assert all(p["batch_id"] == "b9" for p in posted.values())
    assert status.expected == 4 and len(status.approval_ids) == 4


async def test_resubmitting_the_same_batch_is_safe() -> None:
    server = FakeBatches()
    async with make_agent(server) as agent:
        first = await agent.submit_batch("b1", refunds(5))
        again = await agent.submit_batch("b1", refunds(5))
    assert again.members == 5 and again.status == "decidable"
    assert again.approval_ids == first.approval_ids


async def test_chunks_with_first_index_then_seal_with_the_total() -> None:
    server = FakeBatches()
    rows = refunds(25)
    async with make_agent(server) as agent:
        a = await agent.submit_batch("big", rows[:10], seal=False)
        b = await agent.submit_batch("big", rows[10:20], seal=False, first_index=10)
        c = await agent.submit_batch("big", rows[20:], first_index=20)
    assert a.status == "open" and a.expected is None and a.members == 10
    assert b.members == 20 and not b.sealed
    assert c.sealed and c.expected == 25 and c.status == "decidable"
    assert sorted(p["idempotency_key"] for p in server.posted()) == sorted(
        f"big:{i}" for i in range(25))
    seals = [json.loads(r.content) for r in server.requests if r.url.path.endswith("/seal")]
    assert seals == [{"count": 25}]
    gets = [r for r in server.requests if r.method == "GET"]
    assert [str(r.url) for r in gets] == [f"{BASE}/v1/batches/big"] * 2


async def test_a_refused_member_raises_its_error_and_nothing_is_sealed() -> None:
    server = FakeBatches()
    server.refuse["b1:3"] = err(409, "conflict", "batch b1 uses grant stripe (policy pay); "
                                "this member uses grant second (policy other): refused")
    async with make_agent(server) as agent:
        with pytest.raises(ConflictError) as info:
            await agent.submit_batch("b1", refunds(10), concurrency=1)
    e = info.value
    assert e.status_code == 409 and e.code == "conflict" and "uses grant" in e.message
    assert e.details["batch_id"] == "b1" and e.details["batch_index"] == 3
    # One at a time: the members after the refused one were not sent, no seal.
    assert [p["idempotency_key"] for p in server.posted()] == [f"b1:{i}" for i in range(4)]
    assert not any(r.url.path.endswith("/seal") for r in server.requests)


async def test_a_member_after_the_seal_is_a_conflict() -> None:
    server = FakeBatches()
    async with make_agent(server) as agent:
        await agent.submit_batch("b1", refunds(3))
        with pytest.raises(ConflictError) as info:
            await agent.submit_batch("b1", refunds(4))
    assert "member after" in info.value.message
    assert info.value.details["batch_index"] == 3


@pytest.mark.parametrize("answer, cls", [
    (err(400, "forbidden_header", "Authorization is set by Countersign"), ValidationError),
    (err(404, "unknown_grant", "no grant second"), NotFoundError),
    (err(410, "expired", "batch b1: its approval window has elapsed"), ApprovalExpiredError),
])
async def test_member_refusals_keep_their_error_class(answer: httpx.Response,
                                                      cls: type[Exception]) -> None:
    server = FakeBatches()
    server.refuse["b1:0"] = answer
    async with make_agent(server) as agent:
        with pytest.raises(cls):
            await agent.submit_batch("b1", refunds(2), concurrency=1)


async def test_a_decided_member_is_not_an_error() -> None:
    server = FakeBatches()
    aid = str(uuid.uuid4())
    server.refuse["b1:1"] = err(409, "denied", "denied: duplicate",
                                {"reason": "duplicate", "approval_id": aid})
    async with make_agent(server) as agent:
        status = await agent.submit_batch("b1", refunds(2), seal=False)
    assert status.approval_ids[1] == aid


async def test_member_submissions_are_retried(clock: FakeClock) -> None:
    server = FakeBatches()
    failures = {"b1:1": 2}

    async def flaky(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/proxy":
            key = json.loads(request.content)["idempotency_key"]
            if failures.get(key, 0) > 0:
                failures[key] -= 1
                raise httpx.ReadTimeout("no answer", request=request)
        return await server(request)

    async with make_agent(flaky) as agent:
        status = await agent.submit_batch("b1", refunds(3))
    assert status.members == 3 and len(clock.sleeps) == 2


async def test_bad_requests_send_nothing() -> None:
    server = FakeBatches()
    good = refunds(1)[0]
    async with make_agent(server) as agent:
        with pytest.raises(ValueError, match=r"requests\[1\].*grant_id"):
            await agent.submit_batch("b1", [good, {**good, "grant_id": ""}])
        with pytest.raises(TypeError, match=r"requests\[0\] lacks 'url'"):
            await agent.submit_batch("b1", [{"method": "POST", "grant_id": "g"}])
        with pytest.raises(TypeError, match=r"unknown keys.*grantId"):
            await agent.submit_batch("b1", [{**good, "grantId": "g"}])
        with pytest.raises(TypeError, match="submit_batch sets batch_id"):
            await agent.submit_batch("b1", [{**good, "batch_id": "b2"}])
        with pytest.raises(ValueError, match="same idempotency_key"):
            await agent.submit_batch("b1", [good, {**good, "idempotency_key": "b1:0"}])
        with pytest.raises(ValueError, match="json or body"):
            await agent.submit_batch("b1", [{**good, "body": "x"}])
        with pytest.raises(ValueError, match="at least one"):
            await agent.submit_batch("b1", [])
        with pytest.raises(TypeError):
            await agent.submit_batch("b1", good)
        with pytest.raises(TypeError, match=r"requests\[0\] must be"):
            await agent.submit_batch("b1", ["POST https://x"])
        with pytest.raises(ValueError):
            await agent.submit_batch(" ", [good])
        with pytest.raises(ValueError):
            await agent.submit_batch("b1", [good], concurrency=0)
        with pytest.raises(ValueError):
            await agent.submit_batch("b1", [good], first_index=-1)
        with pytest.raises(ValueError, match="at most"):
            await agent.submit_batch("b1", [good], first_index=100_000)
    assert server.requests == []


# ---- seal_batch, get_batch_status ---------------------------------------------

async def test_seal_batch_and_a_conflicting_seal() -> None:
    server = FakeBatches()
    async with make_agent(server) as agent:
        s = await agent.seal_batch("b/1 x", 3)
        assert s.sealed and s.expected == 3 and s.status == "open" and s.members == 0
        assert (await agent.seal_batch("b/1 x", 3)).expected == 3  # the same seal: no-op
        with pytest.raises(ConflictError) as info:
            await agent.seal_batch("b/1 x", 4)
        for bad in (0, 100_001):
            with pytest.raises(ValueError):
                await agent.seal_batch("b1", bad)
        with pytest.raises(TypeError):
            await agent.seal_batch("b1", True)
    assert "already sealed for 3" in info.value.message and info.value.status_code == 409
    assert server.requests[0].url.raw_path == b"/v1/batches/b%2F1%20x/seal"


async def test_seal_is_retried_like_a_read(clock: FakeClock) -> None:
    answers = [err(503, "database_unavailable"), jresp(200, batch_body(expected=2))]
    async with make_agent(lambda r: answers.pop(0)) as agent:
        s = await agent.seal_batch("b1", 2)
    assert s.expected == 2 and len(clock.sleeps) == 1


async def test_get_batch_status_parses_everything() -> None:
    body = batch_body("b1", "decided", expected=3, members=3,
                      counts={"executed": 2, "denied": 1}, digest="cd" * 32,
                      decided_at="2025-01-02T03:30:00.5Z", decided_by="alice",
                      decision="approved", finished_at="2025-01-02T03:31:00Z",
                      approvals_received=1, is_terminal=True, future_field=[1])
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return jresp(200, body)

    async with make_agent(handler) as agent:
        s = await agent.get_batch_status("b1")
    assert seen[0].method == "GET" and str(seen[0].url) == f"{BASE}/v1/batches/b1"
    assert s.batch_id == "b1" and s.batch_uid == body["batch_uid"]
    assert s.status == "decided" and s.is_terminal and s.sealed
    assert s.counts == {"executed": 2, "denied": 1}
    assert s.count("executed") == 2 and s.count("failed") == 0
    assert s.decided_at == datetime(2025, 1, 2, 3, 30, 0, 500000, tzinfo=timezone.utc)
    assert s.finished_at is not None and s.expires_at is not None
    assert s.decided_by == "alice" and s.decision == "approved"
    assert s.approvals_received == 1 and s.approvals_required == 1
    assert s.grant_id == "stripe" and s.policy_id == "pay" and s.agent == "bot1"
    assert s.amount_field == "amount" and s.approval_ids == ()


def test_batch_status_from_a_minimal_body() -> None:
    s = BatchStatus.from_dict({"batch_id": "b", "status": "open", "expected": None,
                               "expires_at": None, "counts": {}})
    assert s.members == 0 and s.expected is None and not s.sealed and s.expires_at is None
    assert not s.is_terminal and s.counts == {} and s.batch_uid == ""
    with pytest.raises(ValueError):
        BatchStatus.from_dict({"status": "open"})
    with pytest.raises(ValueError):
        BatchStatus.from_dict({"batch_id": "b", "status": "open", "counts": [1]})


async def test_unknown_batch_is_not_found() -> None:
    async with make_agent(lambda r: err(404, "not_found", "no such batch")) as agent:
        with pytest.raises(NotFoundError):
            await agent.get_batch_status("nope")
        with pytest.raises(NotFoundError):
            await agent.await_batch("nope")


# ---- await_batch ---------------------------------------------------------------

def test_batch_poll_delay() -> None:
    assert [batch_poll_delay(i, 2) for i in range(6)] == [2, 3, 4.5, 6.75, 10, 10]
    assert batch_poll_delay(0, 0.5) == 0.5 and batch_poll_delay(100, 0.5) == 10
    assert batch_poll_delay(3, 30) == 30  # a longer interval than the cap is kept
    assert BATCH_POLL_MAX_SECONDS == 10


class Polls:
    """GET /v1/batches/{id} on the fake clock: terminal from time `done`."""

    def __init__(self, clock: FakeClock, done: float | None,
                 errors: dict[int, httpx.Response | Exception] | None = None) -> None:
        self.clock = clock
        self.done = done
        self.errors = errors or {}
        self.times: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.times.append(self.clock.t)
        e = self.errors.get(len(self.times))
        if isinstance(e, Exception):
            raise e
        if e is not None:
            return e
        if self.done is not None and self.clock.t >= self.done:
            return jresp(200, batch_body("b1", "decided", expected=10, members=10,
                                         counts={"executed": 8, "denied": 2},
                                         finished_at="2025-01-02T03:31:00Z", is_terminal=True))
        return jresp(200, batch_body("b1", "decidable", expected=10, members=10,
                                     counts={"pending": 10}))


async def test_await_batch_polls_with_backoff_until_terminal(clock: FakeClock) -> None:
    server = Polls(clock, done=1000 + 40)
    async with make_agent(server) as agent:
        s = await agent.await_batch("b1", timeout=300)
    assert s.is_terminal and s.counts == {"executed": 8, "denied": 2}
    assert clock.sleeps == [2, 3, 4.5, 6.75, 10, 10, 10]
    assert server.times[-1] == 1046.25


async def test_await_batch_times_out_at_the_deadline(clock: FakeClock) -> None:
    server = Polls(clock, done=None)
    async with make_agent(server) as agent:
        with pytest.raises(ApprovalTimeoutError) as info:
            await agent.await_batch("b1", timeout=20, poll_interval=2)
    e = info.value
    assert clock.t == 1020 and sum(clock.sleeps) == 20
    assert clock.sleeps == [2, 3, 4.5, 6.75, 3.75]  # the last pause ends at the deadline
    assert e.code == "timeout" and e.status_code is None and e.last_status is None
    assert e.last_batch_status is not None and e.last_batch_status.status == "decidable"
    assert e.details == {"batch_id": "b1", "status": "decidable", "counts": {"pending": 10},
                         "timeout": 20}


async def test_await_batch_timeout_zero_looks_once(clock: FakeClock) -> None:
    server = Polls(clock, done=None)
    async with make_agent(server) as agent:
        with pytest.raises(ApprovalTimeoutError):
            await agent.await_batch("b1", timeout=0)
        done = Polls(clock, done=0)
    async with make_agent(done) as agent:
        assert (await agent.await_batch("b1", timeout=0)).is_terminal
    assert len(server.times) == 1 and clock.sleeps == []


async def test_await_batch_rides_out_server_and_transport_errors(clock: FakeClock) -> None:
    server = Polls(clock, done=1000 + 5, errors={
        1: err(503, "database_unavailable"),
        2: httpx.ConnectError("refused", request=httpx.Request("GET", BASE))})
    async with make_agent(server) as agent:
        s = await agent.await_batch("b1", timeout=60, poll_interval=1)
    assert s.is_terminal and clock.sleeps == [1, 1.5, 2.25, 3.375]
    assert server.times == [1000, 1001, 1002.5, 1004.75, 1008.125]


async def test_await_batch_raises_the_last_error_when_unreachable(clock: FakeClock) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        clock.t += 1
        raise httpx.ConnectError("refused", request=request)

    async with make_agent(handler) as agent:
        with pytest.raises(CountersignConnectionError):
            await agent.await_batch("b1", timeout=10, poll_interval=2)

    async with make_agent(lambda r: err(500, "internal_error")) as agent:
        with pytest.raises(ServerError):
            await agent.await_batch("b1", timeout=5, poll_interval=1)


async def test_await_batch_bad_arguments() -> None:
    async with make_agent(lambda r: jresp(200, batch_body())) as agent:
        with pytest.raises(ValueError):
            await agent.await_batch("b1", timeout=-1)
        with pytest.raises(ValueError):
            await agent.await_batch("b1", poll_interval=0)
        with pytest.raises(ValueError):
            await agent.await_batch("")
