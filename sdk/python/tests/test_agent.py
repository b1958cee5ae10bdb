"""The Agent on the wire: requests it sends, answers it parses, errors it raises."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import httpx
import pytest

import countersign
from countersign import (
    Agent,
    ApprovalExecutionFailedError,
    ApprovalResult,
    ApprovalStatus,
    AuthenticationError,
    ConflictError,
    CountersignError,
    HttpMethod,
    NotFoundError,
    PendingApproval,
    PermissionDeniedError,
    SyncAgent,
    ValidationError,
)

from sdkhelpers import (
    AID,
    API_KEY,
    BASE,
    err,
    jresp,
    make_agent,
    pending_body,
    result_body,
    status_body,
)

pytestmark = pytest.mark.anyio


class Recorder:
    """A MockTransport handler that records requests and replays answers."""

    def __init__(self, *answers: httpx.Response) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    def body(self, i: int = -1) -> Any:
        return json.loads(self.requests[i].content)


# ---- construction --------------------------------------------------------

def test_base_url_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COUNTERSIGN_URL", "https://gw.example.com/countersign/")
    assert Agent(api_key=API_KEY).base_url == "https://gw.example.com/countersign"
    assert Agent(API_KEY, base_url="http://other:9000").base_url == "http://other:9000"


def test_base_url_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COUNTERSIGN_URL", raising=False)
    assert Agent(api_key=API_KEY).base_url == "http://127.0.0.1:8080"
    monkeypatch.setenv("COUNTERSIGN_URL", "")
    assert Agent(api_key=API_KEY).base_url == countersign.DEFAULT_BASE_URL


@pytest.mark.parametrize("url", ["127.0.0.1:8080", "ftp://host", "http://", "http://h/?q=1"])
def test_bad_base_url(url: str) -> None:
    with pytest.raises(ValueError):
        Agent(API_KEY, base_url=url)


@pytest.mark.parametrize("key", ["", "   ", "a\nb"])
def test_bad_api_key(key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError):
        Agent(key)
    with pytest.raises(TypeError):
        Agent(123)  # type: ignore[arg-type]
    monkeypatch.setenv("COUNTERSIGN_API_KEY", key)
    with pytest.raises(ValueError):
        SyncAgent()


def test_api_key_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COUNTERSIGN_API_KEY", API_KEY)
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return jresp(200, status_body())

    with SyncAgent(base_url=BASE, transport=httpx.MockTransport(handler)) as agent:
        agent.get_approval_status(AID)
    assert seen == [f"Bearer {API_KEY}"]
    assert API_KEY not in repr(Agent(base_url=BASE))


def test_no_api_key_says_where_to_put_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COUNTERSIGN_API_KEY", raising=False)
    for client in (Agent, SyncAgent):
        with pytest.raises(ValueError, match=r"api_key=.*\$COUNTERSIGN_API_KEY"):
            client()


def test_bad_settings() -> None:
    for kw in ({"timeout": 0}, {"max_retries": -1}, {"retry_backoff": -1}):
        with pytest.raises(ValueError):
            Agent(API_KEY, **kw)  # type: ignore[arg-type]


def test_the_key_is_never_shown() -> None:
    agent = Agent(API_KEY, base_url=BASE)
    assert API_KEY not in repr(agent) and API_KEY not in str(agent)
    assert API_KEY not in repr(vars(agent))
    assert repr(agent) == f"Agent(base_url={BASE!r})"


async def test_the_key_is_not_logged_nor_in_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with make_agent(handler, retry_backoff=0) as agent:
        with pytest.raises(CountersignError) as info:
            await agent.get_approval_status(AID)
    assert API_KEY not in caplog.text
    assert API_KEY not in repr(info.value) and API_KEY not in str(info.value)
    assert "retry" in caplog.text  # the retries were logged


# ---- proxy_request: the request ------------------------------------------

async def test_proxy_request_wire_format() -> None:
    rec = Recorder(jresp(202, pending_body()))
    async with make_agent(rec) as agent:
        out = await agent.proxy_request(
            "post", "https://api.example.com/v1/refunds/{id}", grant_id="stripe",
            json={"charge": "ch_1", "amount": 500},
            extra_headers={"Stripe-Version": "2024-06-20"},
            query_params={"expand": ["a", "b"], "live": True, "n": 3},
            path_params={"id": "re_1"}, reason="customer charged twice, ticket #4312",
            context={"ticket": 4312}, idempotency_key="refund-4312", batch_id="b1")
    assert isinstance(out, PendingApproval)
    (req,) = rec.requests
    assert req.method == "POST" and str(req.url) == f"{BASE}/v1/proxy"
    assert req.headers["authorization"] == f"Bearer {API_KEY}"
    assert req.headers["content-type"] == "application/json"
    assert req.headers["accept"] == "application/json"
    assert req.headers["user-agent"].startswith(f"countersign-python/{countersign.__version__} ")
    assert rec.body() == {
        "method": "POST", "url": "https://api.example.com/v1/refunds/{id}",
        "grant_id": "stripe", "json": {"charge": "ch_1", "amount": 500},
        "extra_headers": {"Stripe-Version": "2024-06-20"},
        "query_params": {"expand": ["a", "b"], "live": True, "n": 3},
        "path_params": {"id": "re_1"}, "reason": "customer charged twice, ticket #4312",
        "context": {"ticket": 4312}, "idempotency_key": "refund-4312", "batch_id": "b1"}


async def test_minimal_request_has_only_the_required_fields() -> None:
    rec = Recorder(jresp(202, pending_body()))
    async with make_agent(rec) as agent:
        await agent.proxy_request(HttpMethod.DELETE, "https://api.example.com/x",
                                  grant_id="g")
    assert rec.body() == {"method": "DELETE", "url": "https://api.example.com/x",
                          "grant_id": "g"}


async def test_json_none_is_json_null() -> None:
    rec = Recorder(jresp(202, pending_body()))
    async with make_agent(rec) as agent:
        await agent.proxy_request("PUT", "https://api.example.com/x", grant_id="g", json=None)
        await agent.proxy_request("PUT", "https://api.example.com/x", grant_id="g", json=[])
        await agent.proxy_request("PUT", "https://api.example.com/x", grant_id="g", json=0)
    assert "json" in rec.body(0) and rec.body(0)["json"] is None
    assert rec.requests[0].content.endswith(b'"json":null}')
    assert rec.body(1)["json"] == [] and rec.body(2)["json"] == 0


async def test_body_text_and_bytes() -> None:
    rec = Recorder(jresp(202, pending_body()))
    raw = bytes(range(256))
    async with make_agent(rec) as agent:
        await agent.proxy_request("POST", "https://x/a", grant_id="g", body="a=1&b=é",
                                  extra_headers={"Content-Type": "text/plain"})
        await agent.proxy_request("POST", "https://x/a", grant_id="g", body=raw)
        await agent.proxy_request("POST", "https://x/a", grant_id="g", body=bytearray(b"ab"))
    assert rec.body(0)["body"] == "a=1&b=é" and "body_b64" not in rec.body(0)
    assert base64.b64decode(rec.body(1)["body_b64"]) == raw and "body" not in rec.body(1)
    assert rec.body(2)["body_b64"] == "YWI="


async def test_argument_errors_send_nothing() -> None:
    rec = Recorder(jresp(202, pending_body()))
    async with make_agent(rec) as agent:
        with pytest.raises(ValueError, match="json or body"):
            await agent.proxy_request("POST", "https://x", grant_id="g", json=None, body="x")
        with pytest.raises(ValueError, match="method"):
            await agent.proxy_request("TRACE", "https://x", grant_id="g")
        with pytest.raises(ValueError):
            await agent.proxy_request("GET", "", grant_id="g")
        with pytest.raises(ValueError):
            await agent.proxy_request("GET", "https://x", grant_id="")
        with pytest.raises(TypeError):
            await agent.proxy_request("GET", "https://x", grant_id="g", body=5)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await agent.proxy_request("GET", "https://x", grant_id="g",
                                      extra_headers={"X-N": 1})  # type: ignore[dict-item]
        with pytest.raises(ValueError):
            await agent.proxy_request("GET", "https://x", grant_id="g", json=float("nan"))
        with pytest.raises(ValueError):
            await agent.proxy_request("GET", "https://x", grant_id="g", idempotency_key="")
    assert rec.requests == []


# ---- proxy_request: the answer -------------------------------------------

async def test_200_is_an_inline_result() -> None:
    rec = Recorder(jresp(200, result_body(201, b'{"refund":"re_9"}')))
    async with make_agent(rec) as agent:
        out = await agent.proxy_request("POST", "https://x/v1/refunds", grant_id="g",
                                        json={"amount": 5})
    assert isinstance(out, ApprovalResult)
    assert out.status_code == 201 and out.body_json() == {"refund": "re_9"}
    assert out.headers["content-type"] == "application/json" and not out.body_truncated


async def test_202_is_a_pending_approval() -> None:
    rec = Recorder(jresp(202, pending_body()))
    async with make_agent(rec) as agent:
        out = await agent.proxy_request("POST", "https://x/v1/refunds", grant_id="g")
    assert isinstance(out, PendingApproval)
    assert out.approval_id == AID and out.approval_url == f"{BASE}/status/tok"
    assert out.status == "pending" and out.expires_at.tzinfo is not None


async def test_202_still_executing_is_a_pending_approval() -> None:
    rec = Recorder(jresp(202, pending_body(status="executing")))
    async with make_agent(rec) as agent:
        out = await agent.proxy_request("GET", "https://x/v1/balance", grant_id="g")
    assert isinstance(out, PendingApproval) and out.status == "executing"


@pytest.mark.parametrize("status, code, cls", [
    (400, "forbidden_header", ValidationError),
    (400, "invalid_request", ValidationError),
    (400, "invalid_url", ValidationError),
    (413, "too_large", ValidationError),
    (422, "policy_unevaluable", ValidationError),
    (401, "unauthenticated", AuthenticationError),
    (403, "host_not_allowed", PermissionDeniedError),
    (403, "forbidden", PermissionDeniedError),
    (404, "unknown_grant", NotFoundError),
    (409, "conflict", ConflictError),
    (502, "execution_failed", ApprovalExecutionFailedError),
])
async def test_proxy_errors(status: int, code: str, cls: type[CountersignError]) -> None:
    rec = Recorder(err(status, code, "server says no", {"field": "x"}))
    async with make_agent(rec) as agent:
        with pytest.raises(cls) as info:
            await agent.proxy_request("POST", "https://x/v1/refunds", grant_id="g",
                                      idempotency_key="k1")
    e = info.value
    assert (e.code, e.message, e.status_code, e.details) == (code, "server says no", status,
                                                              {"field": "x"})
    assert len(rec.requests) == 1  # a client error is never retried


@pytest.mark.parametrize("answer", [
    httpx.Response(200, content=b"not json"),
    jresp(200, [1, 2]),
    jresp(200, {"type": "result", "approval_id": AID}),  # no status_code
    jresp(202, {"type": "pending_approval"}),
])
async def test_malformed_answers(answer: httpx.Response) -> None:
    async with make_agent(Recorder(answer)) as agent:
        with pytest.raises(CountersignError) as info:
            await agent.proxy_request("GET", "https://x", grant_id="g")
    assert info.value.code == "invalid_response"


async def test_submission_read_timeout_covers_the_inline_execution() -> None:
    rec = Recorder(jresp(202, pending_body()))
    async with make_agent(rec, timeout=10) as agent:
        await agent.proxy_request("GET", "https://x", grant_id="g")
        await agent.get_approval_status(AID)
    assert rec.requests[0].extensions["timeout"]["read"] == 70
    assert rec.requests[0].extensions["timeout"]["connect"] == 10
    assert rec.requests[1].extensions["timeout"]["read"] == 10


# ---- status and cancel ---------------------------------------------------

async def test_get_approval_status() -> None:
    rec = Recorder(jresp(200, status_body("executed", executed_at="2025-01-02T03:10:00Z")))
    async with make_agent(rec) as agent:
        s = await agent.get_approval_status(AID)
    assert isinstance(s, ApprovalStatus)
    assert s.status == "executed" and s.is_terminal and s.has_result
    assert s.executed_at is not None and s.executed_at.tzinfo is not None
    (req,) = rec.requests
    assert req.method == "GET" and str(req.url) == f"{BASE}/v1/approvals/{AID}"
    assert req.headers["authorization"] == f"Bearer {API_KEY}"
    assert "content-type" not in req.headers


async def test_ids_are_quoted_into_the_path() -> None:
    rec = Recorder(err(404, "not_found"))
    async with make_agent(rec) as agent:
        with pytest.raises(NotFoundError):
            await agent.get_approval_status("../admin?x=1")
        with pytest.raises(ValueError):
            await agent.get_approval_status("")
    assert rec.requests[0].url.raw_path == b"/v1/approvals/..%2Fadmin%3Fx%3D1"


async def test_base_url_path_prefix_is_kept() -> None:
    rec = Recorder(jresp(200, status_body()))
    async with make_agent(rec, base_url="https://gw.example.com/cs/") as agent:
        await agent.get_approval_status(AID)
    assert str(rec.requests[0].url) == f"https://gw.example.com/cs/v1/approvals/{AID}"


async def test_cancel_approval() -> None:
    rec = Recorder(jresp(200, status_body("cancelled", decision_reason="customer withdrew")))
    async with make_agent(rec) as agent:
        s = await agent.cancel_approval(AID, reason="customer withdrew")
        await agent.cancel_approval(AID)
    assert s.status == "cancelled" and s.is_terminal
    assert s.decision_reason == "customer withdrew"
    assert rec.requests[0].method == "POST"
    assert str(rec.requests[0].url) == f"{BASE}/v1/approvals/{AID}/cancel"
    assert rec.body(0) == {"reason": "customer withdrew"}
    assert rec.body(1) == {}


async def test_cancel_a_decided_approval_is_a_conflict() -> None:
    rec = Recorder(err(409, "not_pending", "the approval is no longer pending"))
    async with make_agent(rec) as agent:
        with pytest.raises(ConflictError) as info:
            await agent.cancel_approval(AID)
    assert info.value.approval_id == AID and info.value.code == "not_pending"


# ---- lifecycle -----------------------------------------------------------

async def test_close_and_context_manager() -> None:
    rec = Recorder(jresp(200, status_body()))
    agent = make_agent(rec)
    async with agent as same:
        assert same is agent
        await agent.get_approval_status(AID)
    with pytest.raises(RuntimeError, match="closed"):
        await agent.get_approval_status(AID)
    await agent.close()  # twice is fine


async def test_own_http_client_is_not_closed() -> None:
    rec = Recorder(jresp(200, status_body()))
    client = httpx.AsyncClient(transport=httpx.MockTransport(rec))
    agent = Agent(API_KEY, base_url=BASE, http_client=client)
    await agent.get_approval_status(AID)
    await agent.close()
    assert not client.is_closed
    assert rec.requests[0].headers["authorization"] == f"Bearer {API_KEY}"
    await client.aclose()
    with pytest.raises(ValueError):
        Agent(API_KEY, http_client=client, transport=httpx.MockTransport(rec))


def test_user_agent_suffix() -> None:
    a = Agent(API_KEY, base_url=BASE, user_agent="billing-bot/2.1")
    assert a.user_agent.startswith("countersign-python/") and a.user_agent.endswith(
        " billing-bot/2.1")
