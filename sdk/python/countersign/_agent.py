"""The Agent: an async client of the Countersign agent API (api/openapi.json):
submissions, approvals (long-poll waits), batches (members, seal, polling)."""

from __future__ import annotations

import base64
import json as _json
import logging
import math
import os
import platform
import random
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Callable, Literal, TypeVar
from urllib.parse import quote, urlsplit

import anyio
import httpx

from ._version import __version__
from .errors import (
    ApprovalCancelledError,
    ApprovalDeniedError,
    ApprovalExecutionFailedError,
    ApprovalTimeoutError,
    CountersignConnectionError,
    CountersignError,
    ServerError,
    error_from_response,
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

__all__ = [
    "Agent",
    "DEFAULT_BASE_URL",
    "ENV_BASE_URL",
    "MAX_WAIT_SECONDS",
    "MISSING",
    "BATCH_MAX_MEMBERS",
    "BATCH_CONCURRENCY",
    "BATCH_POLL_MAX_SECONDS",
    "long_poll_wait",
    "batch_poll_delay",
]

logger = logging.getLogger("countersign")

#: Where the API is when neither ``base_url`` nor ``$COUNTERSIGN_URL`` says.
DEFAULT_BASE_URL = "http://127.0.0.1:8080"
#: The environment variable read for the base URL.
ENV_BASE_URL = "COUNTERSIGN_URL"
#: The longest long-poll the API accepts (GET .../result?wait=N, N <= 60).
MAX_WAIT_SECONDS = 60
#: How long the API may hold a submission that needs no approval while the
#: call executes (the policy's execution timeout, at most 60 s) before it
#: answers 202; the submission's read timeout is extended by this much.
INLINE_WAIT_SECONDS = 60
#: Statuses worth another try on a request that may be retried.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: The longest Retry-After honoured, in seconds.
MAX_RETRY_AFTER = 60.0
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
_RetryMode = Literal["all", "connect", "none"]

# Indirections the unit tests replace (a fake clock); nothing else touches them.
_sleep = anyio.sleep
_now = time.monotonic


class _Secret:
    """Holds the API key so that no repr, log or traceback shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "_Secret('***')"

    __str__ = __repr__


def long_poll_wait(remaining: float) -> int:
    """The ``wait`` to ask the server for when ``remaining`` seconds are left:
    the whole seconds left, at most :data:`MAX_WAIT_SECONDS`, never negative.
    (Rounded down so the local deadline is never overshot by the server's hold.)"""
    if math.isnan(remaining) or remaining <= 0:
        return 0
    if math.isinf(remaining):
        return MAX_WAIT_SECONDS
    return min(MAX_WAIT_SECONDS, int(math.floor(remaining)))


def batch_poll_delay(poll: int, poll_interval: float) -> float:
    """The pause before poll number ``poll`` + 1 of ``await_batch`` (0 for the
    pause after the first look): ``poll_interval``, growing by half each time,
    at most :data:`BATCH_POLL_MAX_SECONDS` (or ``poll_interval`` if larger)."""
    cap = max(BATCH_POLL_MAX_SECONDS, poll_interval)
    return float(min(cap, poll_interval * (1.5 ** min(poll, 64))))


def backoff_delay(retry: int, base: float, cap: float, rand: float | None = None) -> float:
    """The pause before retry number ``retry`` (0 for the first): exponential
    (``base * 2**retry``, at most ``cap``) with equal jitter (half fixed, half random)."""
    ceiling = min(cap, base * (2**retry))
    r: float = random.random() if rand is None else rand
    return float(ceiling / 2 + r * ceiling / 2)


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    if math.isnan(seconds):
        return None
    return max(0.0, min(MAX_RETRY_AFTER, seconds))


def _retriable(exc: CountersignError) -> bool:
    """Is a later identical request likely to get another answer?"""
    if isinstance(exc, CountersignConnectionError):
        return exc.code in ("connect_error", "request_timeout", "transport_error")
    return (
        exc.status_code in RETRY_STATUSES
        and exc.code != "execution_failed"
        and type(exc) in (ServerError, CountersignError)
    )


def _transport_error(exc: httpx.HTTPError, method: str, path: str) -> CountersignConnectionError:
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        code, what = "connect_error", "could not connect to Countersign"
    elif isinstance(exc, httpx.TimeoutException):
        code, what = "request_timeout", "Countersign did not answer in time"
    elif isinstance(exc, (httpx.NetworkError, httpx.RemoteProtocolError)):
        code, what = "transport_error", "the connection to Countersign failed"
    else:
        code, what = "protocol_error", "the request to Countersign could not be made"
    detail = str(exc) or type(exc).__name__
    return CountersignConnectionError(
        f"{what} ({method} {path}): {detail}",
        code=code,
        details={"method": method, "path": path, "error": type(exc).__name__},
    )


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


class Agent:
    """An async client of Countersign for one agent (one API key).

    ::

        async with Agent(api_key=os.environ["COUNTERSIGN_API_KEY"]) as agent:
            outcome = await agent.proxy_request("POST", url, grant_id="stripe",
                                                json=..., reason=...)

    Args:
        api_key: the agent's API key (``countersign key create AGENT``). It is
            sent as ``Authorization: Bearer`` and never logged or shown in a repr.
        base_url: the API's base URL; default ``$COUNTERSIGN_URL``, else
            ``http://127.0.0.1:8080``. A path prefix is kept
            (``https://gw.example.com/countersign``).
        timeout: the HTTP timeout of each request, in seconds (connect, read,
            write). A long-poll's read timeout is extended by its ``wait``, a
            submission's by 60 s (the longest the API executes inline).
        max_retries: how many times a retriable failure is retried (see the
            README's "Retries"); 0 turns retries off.
        retry_backoff: the first retry's pause ceiling, in seconds; it doubles
            each retry, with jitter, up to ``retry_backoff_max``.
        retry_backoff_max: the longest pause between retries, in seconds.
        transport: an httpx transport to use instead of the network (tests:
            ``httpx.MockTransport``).
        http_client: an ``httpx.AsyncClient`` of your own (proxies, TLS
            settings); the Agent does not close it.
        user_agent: text appended to the SDK's User-Agent.
    """

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 3,
        retry_backoff: float = 0.5,
        retry_backoff_max: float = 8.0,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
        user_agent: str | None = None,
    ) -> None:
        if not isinstance(api_key, str):
            raise TypeError("api_key must be a string")
        if not api_key.strip() or any(ch in api_key for ch in "\r\n\0"):
            raise ValueError("api_key must be a non-empty string on one line")
        if base_url is None:
            base_url = os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL
        base_url = base_url.strip().rstrip("/")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url must be an absolute http(s) URL, not {base_url!r}")
        if parts.query or parts.fragment:
            raise ValueError("base_url must not have a query or fragment")
        if not timeout > 0:
            raise ValueError("timeout must be a positive number of seconds")
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError("max_retries must be an integer >= 0")
        if retry_backoff < 0 or retry_backoff_max < 0:
            raise ValueError("retry_backoff and retry_backoff_max must be >= 0")
        if transport is not None and http_client is not None:
            raise ValueError("pass transport or http_client, not both")

        self._api_key = _Secret(api_key.strip())
        self._base_url = base_url
        self._timeout = float(timeout)
        self._max_retries = max_retries
        self._retry_backoff = float(retry_backoff)
        self._retry_backoff_max = float(retry_backoff_max)
        ua = (
            f"countersign-python/{__version__} "
            f"(python {platform.python_version()}; httpx {httpx.__version__})"
        )
        self._user_agent = f"{ua} {user_agent.strip()}" if user_agent else ua
        self._owns_client = http_client is None
        self._client = http_client or httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(self._timeout),
            follow_redirects=False,
        )
        self._closed = False

    # ---- lifecycle -------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The API's base URL (no trailing slash)."""
        return self._base_url

    @property
    def timeout(self) -> float:
        """The HTTP timeout of each request, in seconds."""
        return self._timeout

    @property
    def user_agent(self) -> str:
        """The User-Agent sent with every request."""
        return self._user_agent

    def __repr__(self) -> str:
        return f"Agent(base_url={self._base_url!r})"

    async def close(self) -> None:
        """Closes the HTTP connections (not those of an ``http_client`` you
        passed). Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> Agent:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ---- the API -------------------------------------------------------

    async def proxy_request(
        self,
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
    ) -> PendingApproval | ApprovalResult:
        """Submits a call for Countersign to make with the grant's secret.

        Returns an :class:`ApprovalResult` when no approval was needed and the
        call was executed inline (HTTP 200), else a :class:`PendingApproval`
        (HTTP 202): hand its ``approval_url`` (the approval's page, where
        approvers sign in and decide) to a person, and pass its
        ``approval_id`` to :meth:`await_approval`.

        ``json`` is any JSON value, ``None`` included (JSON ``null``); leave it
        out for no JSON body. ``body`` is raw bytes (sent as ``body_b64``) or
        text (sent as ``body``); at most one of ``json`` and ``body``.
        ``reason`` is shown to the approvers: say why, concretely.

        ``idempotency_key``: resubmitting with the same key returns the first
        answer (a different request with it: :class:`ConflictError`). Only a
        submission with a key is retried after the server may have received
        it; without one, only failures to connect are retried. The SDK never
        makes a key up.

        Raises :class:`ValidationError` (e.g. ``forbidden_header``),
        :class:`NotFoundError` (``unknown_grant``), :class:`PermissionDeniedError`
        (``host_not_allowed``), :class:`AuthenticationError`,
        :class:`ApprovalExecutionFailedError` (no approval needed, the inline
        call failed), :class:`ConflictError`, :class:`CountersignConnectionError`,
        :class:`ServerError`.
        """
        content = self._proxy_content(
            method, url, grant_id=grant_id, json=json, body=body, extra_headers=extra_headers,
            query_params=query_params, path_params=path_params, reason=reason,
            context=context, idempotency_key=idempotency_key, batch_id=batch_id,
        )
        return await self._submit(content, idempotency_key is not None)

    async def get_approval_status(self, approval_id: str) -> ApprovalStatus:
        """The approval's current state (GET /v1/approvals/{id}).

        Raises :class:`NotFoundError` for an id that is not this agent's.
        """
        approval_id = _check_id(approval_id)
        resp = await self._request(
            "GET", f"/v1/approvals/{quote(approval_id, safe='')}", retry="all",
            approval_id=approval_id,
        )
        return self._model(ApprovalStatus.from_dict, self._json(resp), resp)

    async def cancel_approval(self, approval_id: str, reason: str | None = None) -> ApprovalStatus:
        """Cancels a pending approval of this agent; returns its new state.

        Raises :class:`ConflictError` (``not_pending``) when it was already
        decided, :class:`NotFoundError` when it is not this agent's.
        """
        approval_id = _check_id(approval_id)
        body = {} if reason is None else {"reason": reason}
        resp = await self._request(
            "POST",
            f"/v1/approvals/{quote(approval_id, safe='')}/cancel",
            content=_json.dumps(body, ensure_ascii=False).encode("utf-8"),
            retry="connect",
            approval_id=approval_id,
        )
        return self._model(ApprovalStatus.from_dict, self._json(resp), resp)

    async def await_approval(
        self, approval_id: str, *, timeout: float | None = 300, poll_interval: float = 2
    ) -> ApprovalResult:
        """Waits for the approval's outcome and returns the provider's response.

        Uses the server's long-poll (GET .../result?wait=N, N the whole
        seconds left of ``timeout``, at most 60), so an outcome arrives as soon
        as it is stored. ``timeout`` is in seconds (``None``: no local limit).
        After a transport error or a retriable 5xx it pauses ``poll_interval``
        seconds and asks again, until ``timeout``.

        Raises :class:`ApprovalDeniedError` (``.details['reason']`` is the
        approver's reason), :class:`ApprovalExpiredError`,
        :class:`ApprovalCancelledError`, :class:`ApprovalExecutionFailedError`
        (``.details['error_code']``), :class:`ApprovalTimeoutError` when
        ``timeout`` passes while it is not finished (it may still be pending:
        a later call can succeed), or, when the server could not be reached up
        to the deadline, the last :class:`CountersignConnectionError` /
        :class:`ServerError`.
        """
        approval_id = _check_id(approval_id)
        if timeout is not None and not timeout >= 0:
            raise ValueError("timeout must be >= 0 seconds, or None")
        if not poll_interval > 0:
            raise ValueError("poll_interval must be > 0 seconds")
        path = f"/v1/approvals/{quote(approval_id, safe='')}/result"
        deadline = None if timeout is None else _now() + float(timeout)

        def left() -> float:
            return math.inf if deadline is None else max(0.0, deadline - _now())

        last_status: ApprovalStatus | None = None
        while True:
            remaining = left()
            wait = long_poll_wait(remaining)
            if wait == 0 and remaining > 0:
                # Under a second left: wait it out here, then look once more.
                await _sleep(remaining)
            started = _now()
            try:
                resp = await self._request(
                    "GET", path, params={"wait": str(wait)}, retry="none",
                    extra_read=wait, approval_id=approval_id,
                )
            except CountersignError as exc:
                if not _retriable(exc) or left() <= 0:
                    raise
                logger.debug("await_approval %s: %s; asking again in %.1f s",
                             approval_id, exc.code, min(poll_interval, left()))
                await _sleep(min(poll_interval, left()))
                continue
            data = self._json(resp)
            if resp.status_code == 200 or data.get("type") == "result":
                return self._model(ApprovalResult.from_dict, data, resp)
            try:
                last_status = ApprovalStatus.from_dict(data)
            except (ValueError, TypeError):
                pass
            if left() <= 0:
                status = last_status.status if last_status else "unknown"
                raise ApprovalTimeoutError(
                    f"approval {approval_id} is still {status} after waiting {timeout} s; "
                    "it may still be decided: await it again later",
                    approval_id=approval_id,
                    details={"status": status, "timeout": timeout},
                    last_status=last_status,
                )
            if wait > 0 and _now() - started < wait / 2:
                # The server answered long before the wait it was asked for:
                # do not hammer it.
                await _sleep(min(poll_interval, left()))

    # ---- batches -------------------------------------------------------

    async def submit_batch(
        self,
        batch_id: str,
        requests: Iterable[BatchRequest | Mapping[str, Any] | object],
        *,
        seal: bool = True,
        concurrency: int = BATCH_CONCURRENCY,
        first_index: int = 0,
    ) -> BatchStatus:
        """Submits every request as a member of batch ``batch_id``, then seals
        the batch with its member count; returns the batch's state.

        Each request holds the arguments of :meth:`proxy_request` (a
        :class:`BatchRequest`, a dict with the same keys, or any object with
        those attributes; ``batch_id`` is set here). A member without an
        ``idempotency_key`` gets ``f"{batch_id}:{index}"`` (``index`` counts
        from ``first_index``), so submitting the same batch again -- after a
        crash, a timeout -- returns the members already stored instead of
        adding new ones, and every member submission is retried like a read.
        All members must use one grant (and so one policy).

        A batch member waits for the batch decision even when its policy
        alone would not require approval: approvers decide the whole batch on
        one page (approve all, deny all, or approve all but listed members),
        after which each member executes on its own. Nothing is decided or
        executed before the batch is sealed and complete.

        Members are sent ``concurrency`` at a time (default 16). Every request
        is checked before anything is sent (ValueError / TypeError naming
        ``requests[i]``, also for two members with one idempotency key). If a
        member is refused, no further member is sent, the batch is not sealed
        and the member's error is raised with ``details["batch_id"]`` and
        ``details["batch_index"]`` added: :class:`ConflictError` (a member
        after the seal, another grant or policy than the batch's, an
        idempotency key reused for another request), :class:`ValidationError`,
        :class:`NotFoundError` (``unknown_grant``),
        :class:`PermissionDeniedError`, :class:`ApprovalExpiredError` (the
        batch's window elapsed), :class:`CountersignConnectionError` /
        :class:`ServerError` once retries are spent. Fix the cause and submit
        the same requests again. A member that already has an outcome (a
        resubmitted, decided batch) is not an error.

        ``seal=False`` submits the members only (returning the state without
        sealing): to submit a large batch in chunks, pass each chunk with the
        ``first_index`` of its first member and ``seal=True`` on the last one
        (the seal's count is ``first_index + len(requests)``), or seal later
        with :meth:`seal_batch`.

        The returned :class:`BatchStatus` has ``approval_ids``: the approval
        id of each request, in order.
        """
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

        bodies: list[tuple[bytes, str]] = []
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
                content = self._proxy_content(batch_id=batch_id, **args)
            except (ValueError, TypeError) as exc:
                raise type(exc)(f"requests[{offset}]: {exc}") from None
            seen[key] = offset
            bodies.append((content, key))

        approval_ids: list[str | None] = [None] * len(bodies)
        failures: list[tuple[int, Exception]] = []
        next_member = 0

        async def worker() -> None:
            nonlocal next_member
            while not failures and next_member < len(bodies):
                offset = next_member
                next_member += 1
                content, _ = bodies[offset]
                try:
                    answer = await self._submit(content, True)
                except (ApprovalDeniedError, ApprovalCancelledError,
                        ApprovalExecutionFailedError) as exc:
                    # Stored before and already decided: the first answer is an outcome.
                    approval_ids[offset] = exc.approval_id
                    continue
                except Exception as exc:  # noqa: BLE001 - raised below, outside the task group
                    if isinstance(exc, CountersignError):
                        exc.details.setdefault("batch_id", batch_id)
                        exc.details.setdefault("batch_index", first_index + offset)
                    failures.append((offset, exc))
                    return
                approval_ids[offset] = answer.approval_id

        async with anyio.create_task_group() as tg:
            for _ in range(min(concurrency, len(bodies))):
                tg.start_soon(worker)
        if failures:
            offset, refused = min(failures, key=lambda f: f[0])
            logger.debug("submit_batch %s: requests[%d] failed: %s", batch_id, offset,
                         getattr(refused, "code", type(refused).__name__))
            raise refused
        if seal:
            status = await self.seal_batch(batch_id, total)
        else:
            status = await self.get_batch_status(batch_id)
        return replace(status, approval_ids=tuple(a or "" for a in approval_ids))

    async def seal_batch(self, batch_id: str, count: int) -> BatchStatus:
        """Seals the batch with its member count (POST /v1/batches/{id}/seal)
        and returns its state. The batch becomes ``decidable`` once the seal
        and all ``count`` members are stored, in any order.

        Sealing again with the same count changes nothing (so it is retried
        like a read). Raises :class:`ConflictError` when the batch is already
        sealed for another count or already has more members,
        :class:`ApprovalExpiredError` when its window has elapsed,
        :class:`ValueError` for a count outside 1..100000.
        """
        batch_id = _check_batch_id(batch_id)
        count = _check_count(count)
        resp = await self._request(
            "POST", f"/v1/batches/{quote(batch_id, safe='')}/seal",
            content=_json.dumps({"count": count}).encode("utf-8"), retry="all",
        )
        return self._model(BatchStatus.from_dict, self._json(resp), resp)

    async def get_batch_status(self, batch_id: str) -> BatchStatus:
        """The batch's current state (GET /v1/batches/{id}).

        Raises :class:`NotFoundError` for a batch id this agent never used.
        """
        batch_id = _check_batch_id(batch_id)
        resp = await self._request(
            "GET", f"/v1/batches/{quote(batch_id, safe='')}", retry="all",
        )
        return self._model(BatchStatus.from_dict, self._json(resp), resp)

    async def await_batch(
        self, batch_id: str, *, timeout: float | None = 300, poll_interval: float = 2
    ) -> BatchStatus:
        """Waits until the batch is terminal (every member finished and the
        batch summary published) and returns its final state; read the
        outcome per member status from ``counts`` (``{"executed": 98,
        "denied": 2}``). Denied or expired members are not errors here.

        There is no long-poll for batches: it polls GET /v1/batches/{id},
        first after ``poll_interval`` seconds, then half as long again each
        time, up to 10 s between polls (never past the deadline). ``timeout``
        is in seconds (``None``: no local limit; 0: look once).

        Raises :class:`ApprovalTimeoutError` when ``timeout`` passes first
        (``.last_batch_status`` is the last state seen; the batch goes on:
        await it again later), :class:`NotFoundError` for an unknown batch,
        or, when the server could not be reached up to the deadline, the last
        :class:`CountersignConnectionError` / :class:`ServerError`.
        """
        batch_id = _check_batch_id(batch_id)
        if timeout is not None and not timeout >= 0:
            raise ValueError("timeout must be >= 0 seconds, or None")
        if not poll_interval > 0:
            raise ValueError("poll_interval must be > 0 seconds")
        path = f"/v1/batches/{quote(batch_id, safe='')}"
        deadline = None if timeout is None else _now() + float(timeout)

        def left() -> float:
            return math.inf if deadline is None else max(0.0, deadline - _now())

        last: BatchStatus | None = None
        polls = 0
        while True:
            try:
                resp = await self._request("GET", path, retry="none")
            except CountersignError as exc:
                if not _retriable(exc) or left() <= 0:
                    raise
                logger.debug("await_batch %s: %s; asking again", batch_id, exc.code)
            else:
                last = self._model(BatchStatus.from_dict, self._json(resp), resp)
                if last.is_terminal:
                    return last
                if left() <= 0:
                    status = last.status
                    raise ApprovalTimeoutError(
                        f"batch {batch_id} is still {status} ({last.counts}) after waiting "
                        f"{timeout} s; it may still be decided: await it again later",
                        details={"batch_id": batch_id, "status": status,
                                 "counts": dict(last.counts), "timeout": timeout},
                        last_batch_status=last,
                    )
            await _sleep(min(batch_poll_delay(polls, poll_interval), left()))
            polls += 1

    # ---- submissions -----------------------------------------------------

    @staticmethod
    def _proxy_content(
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

    async def _submit(self, content: bytes, has_key: bool) -> PendingApproval | ApprovalResult:
        """POST /v1/proxy; retried in full only when the body has an idempotency key."""
        resp = await self._request(
            "POST",
            "/v1/proxy",
            content=content,
            retry="all" if has_key else "connect",
            extra_read=INLINE_WAIT_SECONDS,
        )
        data = self._json(resp)
        kind = data.get("type")
        if kind == "result" or (kind is None and resp.status_code == 200):
            return self._model(ApprovalResult.from_dict, data, resp)
        return self._model(PendingApproval.from_dict, data, resp)

    # ---- plumbing ------------------------------------------------------

    def _headers(self, has_body: bool) -> dict[str, str]:
        h = {
            "Authorization": f"Bearer {self._api_key.get()}",
            "User-Agent": self._user_agent,
            "Accept": "application/json",
        }
        if has_body:
            h["Content-Type"] = "application/json"
        return h

    async def _request(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        params: Mapping[str, str] | None = None,
        retry: _RetryMode,
        extra_read: float = 0.0,
        approval_id: str | None = None,
    ) -> httpx.Response:
        """Sends one API request with the retry policy; returns a 2xx/3xx
        response or raises the mapped error.

        retry: "all" -- transport errors and RETRY_STATUSES; "connect" -- only
        failures to connect (nothing was sent); "none".
        """
        if self._closed:
            raise RuntimeError("this Agent is closed")
        timeout = httpx.Timeout(
            self._timeout, read=self._timeout + extra_read if extra_read else self._timeout
        )
        url = self._base_url + path
        attempt = 0
        while True:
            delay: float | None = None
            err: CountersignError
            try:
                resp = await self._client.request(
                    method, url, content=content, params=params,
                    headers=self._headers(content is not None), timeout=timeout,
                )
            except httpx.HTTPError as exc:
                err = _transport_error(exc, method, path)
                err.approval_id = approval_id
                may = (retry == "all" and _retriable(err)) or (
                    retry == "connect" and err.code == "connect_error"
                )
                if not may or attempt >= self._max_retries:
                    raise err from exc
                logger.debug("%s %s: %s (%s)", method, path, err.code, type(exc).__name__)
            else:
                if resp.status_code < 400:
                    return resp
                await resp.aread()
                err = error_from_response(
                    resp.status_code, self._maybe_json(resp), text=resp.text,
                    approval_id=approval_id,
                )
                if retry != "all" or not _retriable(err) or attempt >= self._max_retries:
                    raise err
                delay = _retry_after(resp)
                logger.debug("%s %s: HTTP %d %s", method, path, resp.status_code, err.code)
            if delay is None:
                delay = backoff_delay(attempt, self._retry_backoff, self._retry_backoff_max)
            attempt += 1
            logger.debug("retry %d of %s %s in %.2f s", attempt, method, path, delay)
            await _sleep(delay)

    @staticmethod
    def _maybe_json(resp: httpx.Response) -> Any:
        try:
            return resp.json()
        except ValueError:
            return None

    @staticmethod
    def _json(resp: httpx.Response) -> dict[str, Any]:
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

    @staticmethod
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
