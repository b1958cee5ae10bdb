"""Retries: which requests, which failures, how long between tries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest

from countersign import (
    ApprovalExecutionFailedError,
    CountersignConnectionError,
    CountersignError,
    NotFoundError,
    ServerError,
)
from countersign._transport import backoff_delay

from sdkhelpers import AID, FakeClock, err, jresp, make_agent, pending_body, status_body

pytestmark = pytest.mark.anyio

Step = Callable[[httpx.Request], httpx.Response]


def script(*steps: Step | httpx.Response) -> tuple[list[httpx.Request], Step]:
    """A handler playing `steps` in order (the last one repeats)."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        step = steps[min(len(seen), len(steps)) - 1]
        return step(request) if callable(step) else step

    return seen, handler


def refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def reset(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadError("connection reset by peer", request=request)


def slow(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("timed out", request=request)


def test_backoff_delay() -> None:
    assert backoff_delay(0, 0.5, 8, rand=0) == 0.25
    assert backoff_delay(0, 0.5, 8, rand=1) == 0.5
    assert backoff_delay(3, 0.5, 8, rand=1) == 4
    assert backoff_delay(10, 0.5, 8, rand=1) == 8
    assert backoff_delay(10, 0.5, 8, rand=0) == 4
    for n in range(8):
        assert 0 <= backoff_delay(n, 0.5, 8) <= 8


async def test_reads_retry_5xx_with_backoff(clock: FakeClock) -> None:
    seen, handler = script(err(503, "database_unavailable"), err(500, "internal_error"),
                           httpx.Response(502, content=b"<html>bad gateway</html>"),
                           jresp(200, status_body()))
    async with make_agent(handler, retry_backoff=1, retry_backoff_max=3) as agent:
        s = await agent.get_approval_status(AID)
    assert s.status == "pending" and len(seen) == 4
    assert len(clock.sleeps) == 3
    for sleep, ceiling in zip(clock.sleeps, (1, 2, 3), strict=True):
        assert ceiling / 2 <= sleep <= ceiling


async def test_reads_honour_retry_after(clock: FakeClock) -> None:
    seen, handler = script(err(503, "unavailable", headers={"Retry-After": "7"}),
                           err(429, "rate_limited", headers={"Retry-After": "1000"}),
                           jresp(200, status_body()))
    async with make_agent(handler) as agent:
        await agent.get_approval_status(AID)
    assert clock.sleeps == [7.0, 60.0] and len(seen) == 3


async def test_retry_after_as_a_date(clock: FakeClock) -> None:
    when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=20), usegmt=True)
    _seen, handler = script(err(503, "unavailable", headers={"Retry-After": when}),
                           err(503, "unavailable", headers={"Retry-After": "soon"}),
                           jresp(200, status_body()))
    async with make_agent(handler, retry_backoff=1) as agent:
        await agent.get_approval_status(AID)
    assert 15 < clock.sleeps[0] <= 20  # the date, less the time already gone
    assert 0.5 <= clock.sleeps[1] <= 2  # unreadable: the backoff instead


@pytest.mark.parametrize("failure, code", [(refuse, "connect_error"), (reset, "transport_error"),
                                           (slow, "request_timeout")])
async def test_reads_retry_transport_errors(clock: FakeClock, failure: Step, code: str) -> None:
    seen, handler = script(failure, failure, jresp(200, status_body()))
    async with make_agent(handler) as agent:
        await agent.get_approval_status(AID)
    assert len(seen) == 3 and len(clock.sleeps) == 2


@pytest.mark.parametrize("failure, code", [(refuse, "connect_error"), (reset, "transport_error"),
                                           (slow, "request_timeout")])
async def test_retries_are_bounded(clock: FakeClock, failure: Step, code: str) -> None:
    seen, handler = script(failure)
    async with make_agent(handler, max_retries=2) as agent:
        with pytest.raises(CountersignConnectionError) as info:
            await agent.get_approval_status(AID)
    assert len(seen) == 3
    e = info.value
    assert e.code == code and e.status_code is None and e.approval_id == AID
    assert isinstance(e.__cause__, httpx.TransportError)
    assert isinstance(e, ConnectionError)


async def test_5xx_retries_are_bounded(clock: FakeClock) -> None:
    seen, handler = script(err(503, "unavailable"))
    async with make_agent(handler) as agent:
        with pytest.raises(ServerError) as info:
            await agent.get_approval_status(AID)
    assert len(seen) == 4 and info.value.code == "unavailable" and info.value.status_code == 503


async def test_max_retries_zero(clock: FakeClock) -> None:
    seen, handler = script(refuse)
    async with make_agent(handler, max_retries=0) as agent:
        with pytest.raises(CountersignConnectionError):
            await agent.get_approval_status(AID)
    assert len(seen) == 1 and clock.sleeps == []


@pytest.mark.parametrize("answer", [err(404, "not_found"), err(401, "unauthenticated"),
                                    err(400, "invalid_request"), err(501, "not_implemented")])
async def test_no_retry_of_answers_that_will_not_change(clock: FakeClock,
                                                        answer: httpx.Response) -> None:
    seen, handler = script(answer)
    async with make_agent(handler) as agent:
        with pytest.raises(CountersignError):
            await agent.get_approval_status(AID)
    assert len(seen) == 1


async def test_execution_failed_is_not_retried(clock: FakeClock) -> None:
    seen, handler = script(err(502, "execution_failed", details={"error_code": "tls_error"}))
    async with make_agent(handler) as agent:
        with pytest.raises(ApprovalExecutionFailedError):
            await agent.await_approval(AID, timeout=100)
    assert len(seen) == 1


# ---- submissions ---------------------------------------------------------

@pytest.mark.parametrize("failure", [reset, slow, err(503, "unavailable"),
                                     err(500, "internal_error")])
async def test_submission_without_key_is_not_retried(clock: FakeClock, failure: Step) -> None:
    seen, handler = script(failure, jresp(202, pending_body()))
    async with make_agent(handler) as agent:
        with pytest.raises(CountersignError):
            await agent.proxy_request("POST", "https://x/v1/refunds", grant_id="g",
                                      json={"amount": 1})
    assert len(seen) == 1 and clock.sleeps == []


async def test_submission_without_key_retries_a_failed_connect(clock: FakeClock) -> None:
    seen, handler = script(refuse, refuse, jresp(202, pending_body()))
    async with make_agent(handler) as agent:
        out = await agent.proxy_request("POST", "https://x/v1/refunds", grant_id="g")
    assert out.approval_id == AID and len(seen) == 3


@pytest.mark.parametrize("failure", [refuse, reset, slow, err(503, "unavailable"),
                                     err(502, "http_502")])
async def test_submission_with_key_is_retried(clock: FakeClock, failure: Step) -> None:
    seen, handler = script(failure, jresp(202, pending_body()))
    async with make_agent(handler) as agent:
        out = await agent.proxy_request("POST", "https://x/v1/refunds", grant_id="g",
                                        json={"amount": 1}, idempotency_key="refund-1")
    assert out.approval_id == AID and len(seen) == 2
    assert seen[0].content == seen[1].content  # the very same submission


async def test_submission_inline_execution_failure_is_not_retried(clock: FakeClock) -> None:
    seen, handler = script(err(502, "execution_failed", "the call failed: connect_failed",
                               {"error_code": "connect_failed", "error_message": "refused",
                                "approval_id": AID}))
    async with make_agent(handler) as agent:
        with pytest.raises(ApprovalExecutionFailedError) as info:
            await agent.proxy_request("GET", "https://x/v1/balance", grant_id="g",
                                      idempotency_key="k")
    assert len(seen) == 1
    assert info.value.error_code == "connect_failed" and info.value.approval_id == AID


@pytest.mark.parametrize("failure, tries", [(refuse, 2), (reset, 1), (err(503, "unavailable"), 1)])
async def test_cancel_retries_only_a_failed_connect(clock: FakeClock, failure: Step,
                                                    tries: int) -> None:
    seen, handler = script(failure, jresp(200, status_body("cancelled")))
    async with make_agent(handler) as agent:
        if tries == 1:
            with pytest.raises(CountersignError):
                await agent.cancel_approval(AID)
        else:
            await agent.cancel_approval(AID)
    assert len(seen) == tries


async def test_not_found_is_not_retried_on_submission(clock: FakeClock) -> None:
    seen, handler = script(err(404, "unknown_grant"))
    async with make_agent(handler) as agent:
        with pytest.raises(NotFoundError):
            await agent.proxy_request("GET", "https://x", grant_id="nope", idempotency_key="k")
    assert len(seen) == 1
