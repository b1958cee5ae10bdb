"""The Agent: an async client of the Countersign agent API (api/openapi.json)."""

from __future__ import annotations

import base64
import json as _json
import logging
import math
import os
import platform
import random
import time
from collections.abc import Mapping, Sequence
from email.utils import parsedate_to_datetime
from enum import Enum
from types import TracebackType
from typing import Any, Callable, Literal, TypeVar, Union
from urllib.parse import quote, urlsplit

import anyio
import httpx

from ._version import __version__
from .errors import (
    ApprovalTimeoutError,
    CountersignConnectionError,
    CountersignError,
    ServerError,
    error_from_response,
)
from .models import ApprovalResult, ApprovalStatus, HttpMethod, PendingApproval

__all__ = ["Agent", "DEFAULT_BASE_URL", "ENV_BASE_URL", "MAX_WAIT_SECONDS", "long_poll_wait"]

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

QueryValue = Union[str, int, float, bool]
_T = TypeVar("_T")
_RetryMode = Literal["all", "connect", "none"]

# Indirections the unit tests replace (a fake clock); nothing else touches them.
_sleep = anyio.sleep
_now = time.monotonic


class _Missing(Enum):
    MISSING = "MISSING"

    def __repr__(self) -> str:
        return "MISSING"


#: "No value": lets ``json=None`` mean JSON ``null``.
MISSING = _Missing.MISSING


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
        (HTTP 202): pass its ``approval_id`` to :meth:`await_approval`.

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

        resp = await self._request(
            "POST",
            "/v1/proxy",
            content=content,
            retry="all" if idempotency_key is not None else "connect",
            extra_read=INLINE_WAIT_SECONDS,
        )
        data = self._json(resp)
        kind = data.get("type")
        if kind == "result" or (kind is None and resp.status_code == 200):
            return self._model(ApprovalResult.from_dict, data, resp)
        return self._model(PendingApproval.from_dict, data, resp)

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
