"""Helpers of the SDK's unit tests: a fake clock, canned API answers."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx

from countersign import Agent, SyncAgent

API_KEY = "cs_test_0123456789abcdef_SECRET"
BASE = "http://cs.test"
AID = "6f1c2b1e-8d8e-4c1a-9a57-0d3b9b7c1f00"


class FakeClock:
    """Replaces the SDK's monotonic clock and sleep: sleeping advances time."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleep_sync(seconds)

    def sleep_sync(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


Handler = Callable[[httpx.Request], httpx.Response]


def make_agent(handler: Handler, **kw: Any) -> Agent:
    kw.setdefault("base_url", BASE)
    return Agent(API_KEY, transport=httpx.MockTransport(handler), **kw)


def make_sync_agent(handler: Handler, **kw: Any) -> SyncAgent:
    kw.setdefault("base_url", BASE)
    return SyncAgent(API_KEY, transport=httpx.MockTransport(handler), **kw)


def jresp(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body).encode(),
                          headers={"Content-Type": "application/json", **(headers or {})})


def err(status: int, code: str, message: str = "msg", details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None) -> httpx.Response:
    e: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        e["details"] = details
    return jresp(status, {"error": e}, headers)


def status_body(status: str = "pending", **extra: Any) -> dict[str, Any]:
    terminal = status in ("executed", "failed", "denied", "expired", "cancelled")
    body: dict[str, Any] = {
        "approval_id": AID, "status": status, "is_terminal": terminal,
        "created_at": "2025-01-02T03:04:05Z", "expires_at": "2025-01-02T04:04:05.123456Z",
        "decided_at": None, "decision_reason": None, "executed_at": None,
        "has_result": status == "executed", "approvals_received": 0, "approvals_required": 1,
        "grant_id": "stripe", "method": "POST", "url": "https://api.example.com/v1/refunds",
        "error_code": None, "batch_id": None,
    }
    body.update(extra)
    return body


def result_body(status_code: int = 201, body: bytes = b'{"refund":"re_1"}',
                **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "result", "approval_id": AID, "status": "executed", "status_code": status_code,
        "headers": {"content-type": "application/json"},
        "body_b64": base64.b64encode(body).decode(), "body_truncated": False,
        "executed_at": "2025-01-02T03:10:00Z",
    }
    out.update(extra)
    return out


def pending_body(**extra: Any) -> dict[str, Any]:
    out = {"type": "pending_approval", "approval_id": AID,
           "approval_url": f"{BASE}/status/tok", "expires_at": "2025-01-02T04:04:05Z",
           "status": "pending"}
    out.update(extra)
    return out
