"""await_approval: the long-poll waits it asks for, outcomes, local timeout."""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest

from countersign import (
    ApprovalCancelledError,
    ApprovalDeniedError,
    ApprovalExecutionFailedError,
    ApprovalExpiredError,
    ApprovalResult,
    ApprovalTimeoutError,
    AuthenticationError,
    CountersignConnectionError,
    CountersignError,
    NotFoundError,
    ServerError,
)
from countersign._operations import MAX_WAIT_SECONDS, long_poll_wait

from sdkhelpers import AID, BASE, FakeClock, err, jresp, make_agent, result_body, status_body

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("remaining, wait", [
    (0, 0), (-5, 0), (0.2, 0), (0.999, 0), (1, 1), (1.9, 1), (2.5, 2), (59.99, 59), (60, 60),
    (60.5, 60), (300, 60), (math.inf, 60), (math.nan, 0)])
def test_long_poll_wait(remaining: float, wait: int) -> None:
    assert long_poll_wait(remaining) == wait
    assert MAX_WAIT_SECONDS == 60


class LongPoll:
    """Plays the server's long-poll on the fake clock: each 202 holds `wait`
    seconds (or `hold` seconds if given); answers from `outcomes` by call number."""

    def __init__(self, clock: FakeClock, outcomes: dict[int, httpx.Response] | None = None,
                 hold: float | None = None, after: float | None = None,
                 final: httpx.Response | None = None) -> None:
        self.clock = clock
        self.outcomes = outcomes or {}
        self.hold = hold
        self.after = after  # decided at this fake time: answer `final` then
        self.final = final
        self.waits: list[int] = []
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        n = len(self.requests)
        wait = int(request.url.params["wait"])
        self.waits.append(wait)
        if n in self.outcomes:
            return self.outcomes[n]
        if self.after is not None and self.final is not None:
            if self.clock.t >= self.after:
                return self.final
            if self.clock.t + wait >= self.after:  # decided while we hold
                self.clock.t = self.after
                return self.final
        self.clock.t += wait if self.hold is None else self.hold
        return jresp(202, status_body("pending"))


async def test_returns_the_result_and_asks_for_the_longest_wait(clock: FakeClock) -> None:
    server = LongPoll(clock, after=1000 + 130, final=jresp(200, result_body(201)))
    async with make_agent(server) as agent:
        r = await agent.await_approval(AID, timeout=300)
    assert isinstance(r, ApprovalResult) and r.status_code == 201
    assert server.waits == [60, 60, 60] and clock.t == 1130 and clock.sleeps == []
    req = server.requests[0]
    assert req.method == "GET"
    assert str(req.url) == f"{BASE}/v1/approvals/{AID}/result?wait=60"
    assert req.extensions["timeout"]["read"] == 60 + 30  # the HTTP timeout covers the hold


async def test_waits_shrink_to_the_time_left(clock: FakeClock) -> None:
    server = LongPoll(clock)
    async with make_agent(server) as agent:
        with pytest.raises(ApprovalTimeoutError) as info:
            await agent.await_approval(AID, timeout=150)
    assert server.waits == [60, 60, 30] and clock.t == 1150
    e = info.value
    assert e.approval_id == AID and e.status_code is None and e.code == "timeout"
    assert e.last_status is not None and e.last_status.status == "pending"
    assert e.details == {"status": "pending", "timeout": 150}


async def test_fractional_timeout_does_not_overshoot(clock: FakeClock) -> None:
    server = LongPoll(clock)
    async with make_agent(server) as agent:
        with pytest.raises(ApprovalTimeoutError):
            await agent.await_approval(AID, timeout=2.5)
    # 2 s long-poll, then the last half second locally, then one last look.
    assert server.waits == [2, 0] and clock.sleeps == [0.5] and clock.t == 1002.5


async def test_timeout_zero_looks_once(clock: FakeClock) -> None:
    server = LongPoll(clock)
    async with make_agent(server) as agent:
        with pytest.raises(ApprovalTimeoutError):
            await agent.await_approval(AID, timeout=0)
    assert server.waits == [0] and clock.sleeps == []


async def test_no_local_limit(clock: FakeClock) -> None:
    server = LongPoll(clock, after=1000 + 1000, final=jresp(200, result_body()))
    async with make_agent(server) as agent:
        await agent.await_approval(AID, timeout=None)
    assert set(server.waits) == {60} and len(server.waits) == 17


async def test_timeout_then_a_later_await_succeeds(clock: FakeClock) -> None:
    server = LongPoll(clock, after=1000 + 10, final=jresp(200, result_body()))
    async with make_agent(server) as agent:
        with pytest.raises(ApprovalTimeoutError):
            await agent.await_approval(AID, timeout=5)
        r = await agent.await_approval(AID, timeout=60)
    assert r.approval_id == AID and server.waits == [5, 60]


@pytest.mark.parametrize("answer, cls, details", [
    (err(409, "denied", "denied: duplicate refund",
         {"reason": "duplicate refund", "decided_by": "bob", "approval_id": AID}),
     ApprovalDeniedError, {"reason": "duplicate refund", "decided_by": "bob"}),
    (err(410, "expired", "the approval window elapsed without a decision", {"reason": None}),
     ApprovalExpiredError, {}),
    (err(409, "cancelled", "the request was cancelled", {"reason": "not needed"}),
     ApprovalCancelledError, {"reason": "not needed"}),
    (err(502, "execution_failed", "the call failed: outcome_unknown",
         {"error_code": "outcome_unknown", "error_message": "connection closed"}),
     ApprovalExecutionFailedError, {"error_code": "outcome_unknown"}),
    (err(401, "unauthenticated"), AuthenticationError, {}),
    (err(404, "not_found"), NotFoundError, {}),
])
async def test_outcomes(clock: FakeClock, answer: httpx.Response, cls: type[CountersignError],
                        details: dict[str, Any]) -> None:
    server = LongPoll(clock, outcomes={2: answer})
    async with make_agent(server) as agent:
        with pytest.raises(cls) as info:
            await agent.await_approval(AID, timeout=300)
    e = info.value
    assert len(server.requests) == 2 and e.approval_id == AID
    for k, v in details.items():
        assert e.details[k] == v
    if isinstance(e, ApprovalDeniedError):
        assert e.reason == "duplicate refund"


async def test_transport_errors_fall_back_to_poll_interval(clock: FakeClock) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    server = LongPoll(clock, after=1000 + 100, final=jresp(200, result_body()))
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.params["wait"])
        if len(calls) <= 3:
            return refuse(request)
        return server(request)

    async with make_agent(handler) as agent:
        r = await agent.await_approval(AID, timeout=300, poll_interval=5)
    assert r.approval_id == AID
    assert clock.sleeps[:3] == [5, 5, 5]  # poll_interval, not the request backoff
    assert calls[:3] == ["60", "60", "60"] and calls[3] == "60"


async def test_server_errors_fall_back_to_poll_interval(clock: FakeClock) -> None:
    server = LongPoll(clock, outcomes={1: err(503, "database_unavailable")},
                      after=1000 + 30, final=jresp(200, result_body()))
    async with make_agent(server) as agent:
        await agent.await_approval(AID, timeout=300, poll_interval=2)
    assert clock.sleeps == [2] and server.waits == [60, 60]


async def test_unreachable_until_the_deadline_raises_the_transport_error(
        clock: FakeClock) -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.params["wait"])
        clock.t += 1  # each failed try takes a second
        raise httpx.ConnectError("refused", request=request)

    async with make_agent(handler) as agent:
        with pytest.raises(CountersignConnectionError) as info:
            await agent.await_approval(AID, timeout=10, poll_interval=2)
    assert info.value.code == "connect_error"
    assert clock.t >= 1010 and clock.t <= 1011 + 2
    assert 3 <= len(calls) <= 5


async def test_a_server_that_does_not_hold_is_not_hammered(clock: FakeClock) -> None:
    server = LongPoll(clock, hold=0.01)
    async with make_agent(server) as agent:
        with pytest.raises(ApprovalTimeoutError):
            await agent.await_approval(AID, timeout=20, poll_interval=2)
    assert len(server.requests) <= 12
    assert all(s <= 2 for s in clock.sleeps)


async def test_a_5xx_that_persists_is_raised(clock: FakeClock) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        clock.t += 0.5
        return err(503, "unavailable")

    async with make_agent(handler) as agent:
        with pytest.raises(ServerError):
            await agent.await_approval(AID, timeout=6, poll_interval=1)


async def test_bad_arguments() -> None:
    async with make_agent(lambda r: jresp(200, result_body())) as agent:
        with pytest.raises(ValueError):
            await agent.await_approval(AID, timeout=-1)
        with pytest.raises(ValueError):
            await agent.await_approval(AID, poll_interval=0)
        with pytest.raises(ValueError):
            await agent.await_approval(" ")
