"""The agent API's operations, written once for both clients: each checks
its arguments, builds the request, and parses the answer into models, as a
generator of transport effects (``_transport.py``) that
:class:`~countersign.Agent` runs with asyncio/trio and
:class:`~countersign.SyncAgent` runs blocking."""

from __future__ import annotations

import base64
import contextlib
import json as _json
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from . import _transport as _t
from ._transport import Gather, GatherOutcome, Op, Settings, Sleep, request, retriable
from .errors import (
    ApprovalCancelledError,
    ApprovalDeniedError,
    ApprovalExecutionFailedError,
    ApprovalTimeoutError,
    CountersignError,
)
from .models import (
    MISSING,
    ApprovalResult,
    ApprovalStatus,
    BatchRequest,
    BatchStatus,
    HttpMethod,
    PendingApproval,
    QueryValue,
)

logger = logging.getLogger("countersign")

#: The longest long-poll the API accepts (GET .../result?wait=N, N <= 60).
MAX_WAIT_SECONDS = 60
#: How long the API may hold a submission that needs no approval while the
#: call executes (the policy's execution timeout, at most 60 s) before it
#: answers 202; the submission's read timeout is extended by this much.
INLINE_WAIT_SECONDS = 60
#: The most members a batch may have (the API's limit).
BATCH_MAX_MEMBERS = 100_000
#: How many member submissions ``submit_batch`` has in flight at once by default.
BATCH_CONCURRENCY = 16
#: ``await_batch`` polls (there is no long-poll for batches) every
#: ``poll_interval`` seconds, growing by half each time up to this.
BATCH_POLL_MAX_SECONDS = 10.0
#: The keyword arguments of ``proxy_request`` a batch member may carry.
_MEMBER_FIELDS = ("method", "url", "grant_id", "json", "body", "extra_headers", "query_params",
                  "path_params", "reason", "context", "idempotency_key")

_T = TypeVar("_T")


def long_poll_wait(remaining: float) -> int:
    """The ``wait`` to ask the server for when ``remaining`` seconds are left:
    the whole seconds left, at most :data:`MAX_WAIT_SECONDS`, never negative.
    (Rounded down so the local deadline is never overshot by the server's hold.)"""
    if math.isnan(remaining) or remaining <= 0:
        return 0
    if math.isinf(remaining):
        return MAX_WAIT_SECONDS
    return min(MAX_WAIT_SECONDS, math.floor(remaining))


def batch_poll_delay(poll: int, poll_interval: float) -> float:
    """The pause before poll number ``poll`` + 1 of ``await_batch`` (0 for the
    pause after the first look): ``poll_interval``, growing by half each time,
    at most :data:`BATCH_POLL_MAX_SECONDS` (or ``poll_interval`` if larger)."""
    cap = max(BATCH_POLL_MAX_SECONDS, poll_interval)
    return float(min(cap, poll_interval * (1.5 ** min(poll, 64))))

def _check_id(approval_id: str) -> str:
    if not isinstance(approval_id, str) or not approval_id.strip():
        raise ValueError("approval_id must be a non-empty string")
    return approval_id.strip()


def _check_batch_id(batch_id: str) -> str:
    if not isinstance(batch_id, str) or not batch_id.strip():
        raise ValueError("batch_id must be a non-empty string")
    return batch_id.strip()


def _check_count(count: int) -> int:
    if isinstance(count, bool) or not isinstance(count, int):
        raise TypeError("count must be an int")
    if not 1 <= count <= BATCH_MAX_MEMBERS:
        raise ValueError(f"count must be from 1 to {BATCH_MAX_MEMBERS}")
    return count


def _member_args(item: object, index: int) -> dict[str, Any]:
    """The proxy_request arguments of one batch member: a mapping with those
    keys (no others: a typo is an error), or an object (a BatchRequest, a
    dataclass or model of your own) whose attributes of those names are read."""
    if isinstance(item, Mapping):
        args = {str(k): v for k, v in item.items()}
        unknown = sorted(set(args) - set(_MEMBER_FIELDS))
        if unknown:
            extra = " (submit_batch sets batch_id)" if "batch_id" in unknown else ""
            raise TypeError(f"requests[{index}] has unknown keys {unknown}{extra}")
    elif isinstance(item, (str, bytes, type)) or item is None:
        raise TypeError(f"requests[{index}] must be a BatchRequest, a mapping or an object "
                        f"with the arguments of proxy_request, not {type(item).__name__}")
    else:
        args = {k: getattr(item, k) for k in _MEMBER_FIELDS if hasattr(item, k)}
    for k in ("method", "url", "grant_id"):
        if k not in args:
            raise TypeError(f"requests[{index}] lacks {k!r}")
    return args


def _str_map(name: str, value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping")
    return {str(k): v for k, v in value.items()}



def _json_object(resp: httpx.Response) -> dict[str, Any]:
    try:
        data = resp.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise CountersignError(
            f"Countersign answered HTTP {resp.status_code} without a JSON object",
            code="invalid_response",
            status_code=resp.status_code,
        )
    return data


def _model(build: Callable[[dict[str, Any]], _T], data: dict[str, Any],
           resp: httpx.Response) -> _T:
    try:
        return build(data)
    except (ValueError, TypeError) as exc:
        raise CountersignError(
            f"Countersign answered HTTP {resp.status_code} with an unexpected body: {exc}",
            code="invalid_response",
            status_code=resp.status_code,
        ) from None


def _parse(build: Callable[[dict[str, Any]], _T], resp: httpx.Response) -> _T:
    return _model(build, _json_object(resp), resp)


class _Deadline:
    """A wait's local deadline of ``timeout`` seconds (None: none) on the
    SDK's clock, and its ``poll_interval``; both checked."""

    def __init__(self, timeout: float | None, poll_interval: float) -> None:
        if timeout is not None and not timeout >= 0:
            raise ValueError("timeout must be >= 0 seconds, or None")
        if not poll_interval > 0:
            raise ValueError("poll_interval must be > 0 seconds")
        self.poll_interval = poll_interval
        self.at = None if timeout is None else _t._now() + float(timeout)

    def left(self) -> float:
        return math.inf if self.at is None else max(0.0, self.at - _t._now())


# ---- submissions -----------------------------------------------------------

def proxy_content(
    method: HttpMethod | str,
    url: str,
    *,
    grant_id: str,
    json: Any = MISSING,
    body: bytes | bytearray | memoryview | str | None = None,
    extra_headers: Mapping[str, str] | None = None,
    query_params: Mapping[str, QueryValue | Sequence[QueryValue]] | None = None,
    path_params: Mapping[str, str | int | float] | None = None,
    reason: str | None = None,
    context: Mapping[str, Any] | None = None,
    idempotency_key: str | None = None,
    batch_id: str | None = None,
) -> bytes:
    """The JSON body of POST /v1/proxy; raises ValueError / TypeError on
    bad arguments (before any I/O)."""
    try:
        verb = method if isinstance(method, HttpMethod) else HttpMethod(method)
    except ValueError:
        allowed = ", ".join(m.value for m in HttpMethod)
        raise ValueError(f"method must be one of {allowed}, not {method!r}") from None
    if not isinstance(url, str) or not url:
        raise ValueError("url must be a non-empty string")
    if not isinstance(grant_id, str) or not grant_id:
        raise ValueError("grant_id must be a non-empty string")
    payload: dict[str, Any] = {"method": verb.value, "url": url, "grant_id": grant_id}
    if json is not MISSING and body is not None:
        raise ValueError("pass json or body, not both")
    if json is not MISSING:
        payload["json"] = json
    if isinstance(body, (bytes, bytearray, memoryview)):
        payload["body_b64"] = base64.b64encode(bytes(body)).decode("ascii")
    elif isinstance(body, str):
        payload["body"] = body
    elif body is not None:
        raise TypeError("body must be bytes or str")
    headers = _str_map("extra_headers", extra_headers)
    if headers is not None:
        for k, v in headers.items():
            if not isinstance(v, str):
                raise TypeError(f"extra_headers[{k!r}] must be a string")
        payload["extra_headers"] = headers
    query = _str_map("query_params", query_params)
    if query is not None:
        payload["query_params"] = {
            k: list(v) if isinstance(v, (list, tuple)) else v for k, v in query.items()
        }
    params = _str_map("path_params", path_params)
    if params is not None:
        payload["path_params"] = params
    if reason is not None:
        payload["reason"] = reason
    ctx = _str_map("context", context)
    if ctx is not None:
        payload["context"] = ctx
    if idempotency_key is not None:
        if not isinstance(idempotency_key, str) or not idempotency_key:
            raise ValueError("idempotency_key must be a non-empty string")
        payload["idempotency_key"] = idempotency_key
    if batch_id is not None:
        payload["batch_id"] = batch_id
    try:
        content = _json.dumps(
            payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode("utf-8")
    except ValueError as exc:
        raise ValueError(f"the request is not valid JSON: {exc}") from None
    return content


def submit(s: Settings, content: bytes, has_key: bool) -> Op[PendingApproval | ApprovalResult]:
    """POST /v1/proxy; retried in full only when the body has an idempotency key."""
    resp = yield from request(
        s, "POST", "/v1/proxy", content=content,
        retry="all" if has_key else "connect", extra_read=INLINE_WAIT_SECONDS,
    )
    data = _json_object(resp)
    kind = data.get("type")
    if kind == "result" or (kind is None and resp.status_code == 200):
        return _model(ApprovalResult.from_dict, data, resp)
    return _model(PendingApproval.from_dict, data, resp)


# ---- approvals -------------------------------------------------------------

def get_approval_status(s: Settings, approval_id: str) -> Op[ApprovalStatus]:
    approval_id = _check_id(approval_id)
    resp = yield from request(
        s, "GET", f"/v1/approvals/{quote(approval_id, safe='')}", retry="all",
        approval_id=approval_id,
    )
    return _parse(ApprovalStatus.from_dict, resp)


def cancel_approval(s: Settings, approval_id: str, reason: str | None) -> Op[ApprovalStatus]:
    approval_id = _check_id(approval_id)
    body = {} if reason is None else {"reason": reason}
    resp = yield from request(
        s, "POST", f"/v1/approvals/{quote(approval_id, safe='')}/cancel",
        content=_json.dumps(body, ensure_ascii=False).encode("utf-8"),
        retry="connect", approval_id=approval_id,
    )
    return _parse(ApprovalStatus.from_dict, resp)


def await_approval(s: Settings, approval_id: str, timeout: float | None,
                   poll_interval: float) -> Op[ApprovalResult]:
    approval_id = _check_id(approval_id)
    deadline = _Deadline(timeout, poll_interval)
    path = f"/v1/approvals/{quote(approval_id, safe='')}/result"
    last_status: ApprovalStatus | None = None
    while True:
        remaining = deadline.left()
        wait = long_poll_wait(remaining)
        if wait == 0 and remaining > 0:
            # Under a second left: wait it out here, then look once more.
            yield Sleep(remaining)
        started = _t._now()
        try:
            resp = yield from request(
                s, "GET", path, params={"wait": str(wait)}, retry="none",
                extra_read=wait, approval_id=approval_id,
            )
        except CountersignError as exc:
            if not retriable(exc) or deadline.left() <= 0:
                raise
            logger.debug("await_approval %s: %s; asking again in %.1f s",
                         approval_id, exc.code, min(poll_interval, deadline.left()))
            yield Sleep(min(poll_interval, deadline.left()))
            continue
        data = _json_object(resp)
        if resp.status_code == 200 or data.get("type") == "result":
            return _model(ApprovalResult.from_dict, data, resp)
        with contextlib.suppress(ValueError, TypeError):
            last_status = ApprovalStatus.from_dict(data)
        if deadline.left() <= 0:
            status = last_status.status if last_status else "unknown"
            raise ApprovalTimeoutError(
                f"approval {approval_id} is still {status} after waiting {timeout} s; "
                "it may still be decided: await it again later",
                approval_id=approval_id,
                details={"status": status, "timeout": timeout},
                last_status=last_status,
            )
        if wait > 0 and _t._now() - started < wait / 2:
            # The server answered long before the wait it was asked for:
            # do not hammer it.
            yield Sleep(min(poll_interval, deadline.left()))


# ---- batches ---------------------------------------------------------------

def _member(s: Settings, content: bytes) -> Op[str]:
    """One member submission: its approval id, also when already decided."""
    try:
        answer = yield from submit(s, content, True)
    except (ApprovalDeniedError, ApprovalCancelledError, ApprovalExecutionFailedError) as exc:
        # Stored before and already decided: the first answer is an outcome.
        return exc.approval_id or ""
    return answer.approval_id


def submit_batch(
    s: Settings,
    batch_id: str,
    requests: Iterable[BatchRequest | Mapping[str, Any] | object],
    seal: bool,
    concurrency: int,
    first_index: int,
) -> Op[BatchStatus]:
    batch_id = _check_batch_id(batch_id)
    if isinstance(requests, (str, bytes, Mapping)):
        raise TypeError("requests must be a sequence of requests, not one request")
    items = list(requests)
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError("concurrency must be an int >= 1")
    if isinstance(first_index, bool) or not isinstance(first_index, int) or first_index < 0:
        raise ValueError("first_index must be an int >= 0")
    if not items and seal:
        raise ValueError("a batch needs at least one request")
    total = first_index + len(items)
    if total > BATCH_MAX_MEMBERS:
        raise ValueError(f"a batch has at most {BATCH_MAX_MEMBERS} members")

    bodies: list[bytes] = []
    seen: dict[str, int] = {}
    for offset, item in enumerate(items):
        index = first_index + offset
        args = _member_args(item, offset)
        if args.get("idempotency_key") is None:
            args["idempotency_key"] = f"{batch_id}:{index}"
        key = args["idempotency_key"]
        if isinstance(key, str) and key in seen:
            raise ValueError(f"requests[{seen[key]}] and requests[{offset}] have the same "
                             f"idempotency_key {key!r}: they would be one member")
        try:
            content = proxy_content(batch_id=batch_id, **args)
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"requests[{offset}]: {exc}") from None
        seen[key] = offset
        bodies.append(content)

    def member_op(content: bytes) -> Callable[[], Op[str]]:
        return lambda: _member(s, content)

    outcome: GatherOutcome = yield Gather([member_op(c) for c in bodies], concurrency)
    approval_ids, failures = outcome
    for offset, failure in failures:
        if isinstance(failure, CountersignError):
            failure.details.setdefault("batch_id", batch_id)
            failure.details.setdefault("batch_index", first_index + offset)
    if failures:
        offset, refused = min(failures, key=lambda f: f[0])
        logger.debug("submit_batch %s: requests[%d] failed: %s", batch_id, offset,
                     getattr(refused, "code", type(refused).__name__))
        raise refused
    if seal:
        status = yield from seal_batch(s, batch_id, total)
    else:
        status = yield from get_batch_status(s, batch_id)
    return replace(status, approval_ids=tuple(a or "" for a in approval_ids))


def seal_batch(s: Settings, batch_id: str, count: int) -> Op[BatchStatus]:
    batch_id = _check_batch_id(batch_id)
    count = _check_count(count)
    resp = yield from request(
        s, "POST", f"/v1/batches/{quote(batch_id, safe='')}/seal",
        content=_json.dumps({"count": count}).encode("utf-8"), retry="all",
    )
    return _parse(BatchStatus.from_dict, resp)


def get_batch_status(s: Settings, batch_id: str) -> Op[BatchStatus]:
    batch_id = _check_batch_id(batch_id)
    resp = yield from request(s, "GET", f"/v1/batches/{quote(batch_id, safe='')}", retry="all")
    return _parse(BatchStatus.from_dict, resp)


def await_batch(s: Settings, batch_id: str, timeout: float | None,
                poll_interval: float) -> Op[BatchStatus]:
    batch_id = _check_batch_id(batch_id)
    deadline = _Deadline(timeout, poll_interval)
    path = f"/v1/batches/{quote(batch_id, safe='')}"
    last: BatchStatus | None = None
    polls = 0
    while True:
        try:
            resp = yield from request(s, "GET", path, retry="none")
        except CountersignError as exc:
            if not retriable(exc) or deadline.left() <= 0:
                raise
            logger.debug("await_batch %s: %s; asking again", batch_id, exc.code)
        else:
            last = _parse(BatchStatus.from_dict, resp)
            if last.is_terminal:
                return last
            if deadline.left() <= 0:
                status = last.status
                raise ApprovalTimeoutError(
                    f"batch {batch_id} is still {status} ({last.counts}) after waiting "
                    f"{timeout} s; it may still be decided: await it again later",
                    details={"batch_id": batch_id, "status": status,
                             "counts": dict(last.counts), "timeout": timeout},
                    last_batch_status=last,
                )
        yield Sleep(min(batch_poll_delay(polls, poll_interval), deadline.left()))
        polls += 1
