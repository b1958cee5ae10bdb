"""The public surface: :class:`Agent` (async) and :class:`SyncAgent`
(blocking), clients of the Countersign agent API (api/openapi.json):
submissions, approvals (long-poll waits), batches (members, seal, polling).

Both run the same operations (``_operations.py``: argument checks, request
bodies, response parsing) over the same transport (``_transport.py``:
retries, Retry-After, timeouts); only the I/O driver differs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import httpx

from . import _operations as ops
from ._operations import (
    BATCH_CONCURRENCY,
    BATCH_MAX_MEMBERS,
    BATCH_POLL_MAX_SECONDS,
    MAX_WAIT_SECONDS,
    batch_poll_delay,
    long_poll_wait,
)
from ._transport import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_RETRIES,
    DEFAULT_RETRY_BACKOFF,
    DEFAULT_RETRY_BACKOFF_MAX,
    ENV_API_KEY,
    ENV_BASE_URL,
    Op,
    Settings,
    run_async,
    run_sync,
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
    "SyncAgent",
    "DEFAULT_BASE_URL",
    "ENV_API_KEY",
    "ENV_BASE_URL",
    "MAX_WAIT_SECONDS",
    "MISSING",
    "BATCH_MAX_MEMBERS",
    "BATCH_CONCURRENCY",
    "BATCH_POLL_MAX_SECONDS",
    "long_poll_wait",
    "batch_poll_delay",
]

_T = TypeVar("_T")
_Body = bytes | bytearray | memoryview | str | None
_Query = Mapping[str, QueryValue | Sequence[QueryValue]] | None


class _Client:
    """What both clients share: the checked settings and their accessors."""

    def __init__(self, api_key: str | None, base_url: str | None, timeout: float,
                 max_retries: int, retry_backoff: float, retry_backoff_max: float,
                 user_agent: str | None, transport: object, http_client: object) -> None:
        self._settings = Settings.create(api_key, base_url, timeout, max_retries,
                                         retry_backoff, retry_backoff_max, user_agent)
        if transport is not None and http_client is not None:
            raise ValueError("pass transport or http_client, not both")
        self._owns_client = http_client is None
        self._closed = False

    @property
    def base_url(self) -> str:
        """The API's base URL (no trailing slash)."""
        return self._settings.base_url

    @property
    def timeout(self) -> float:
        """The HTTP timeout of each request, in seconds."""
        return self._settings.timeout

    @property
    def user_agent(self) -> str:
        """The User-Agent sent with every request."""
        return self._settings.user_agent

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self._settings.base_url!r})"

    def _open(self) -> Settings:
        if self._closed:
            raise RuntimeError(f"this {type(self).__name__} is closed")
        return self._settings


class Agent(_Client):
    """An async client of Countersign for one agent (one API key); works
    under asyncio and trio. :class:`SyncAgent` is its blocking twin.

    ::

        async with Agent() as agent:   # the key from $COUNTERSIGN_API_KEY
            outcome = await agent.proxy_request("POST", url, grant_id="stripe",
                                                json=..., reason=...)

    Args:
        api_key: the agent's API key (``countersign key create AGENT``); default
            ``$COUNTERSIGN_API_KEY`` (a ValueError when neither is given). It is
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
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float = 30.0,
        max_retries: int = DEFAULT_MAX_RETRIES,
        retry_backoff: float = DEFAULT_RETRY_BACKOFF,
        retry_backoff_max: float = DEFAULT_RETRY_BACKOFF_MAX,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
        user_agent: str | None = None,
    ) -> None:
        super().__init__(api_key, base_url, timeout, max_retries, retry_backoff,
                         retry_backoff_max, user_agent, transport, http_client)
        self._client = http_client or httpx.AsyncClient(
            transport=transport, timeout=httpx.Timeout(self.timeout), follow_redirects=False,
        )

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

    async def _run(self, op: Op[_T]) -> _T:
        return await run_async(op, self._client)

    # ---- the API -------------------------------------------------------

    async def proxy_request(
        self,
        method: HttpMethod | str,
        url: str,
        *,
        grant_id: str,
        json: Any = MISSING,
        body: _Body = None,
        extra_headers: Mapping[str, str] | None = None,
        query_params: _Query = None,
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
        content = ops.proxy_content(
            method, url, grant_id=grant_id, json=json, body=body, extra_headers=extra_headers,
            query_params=query_params, path_params=path_params, reason=reason,
            context=context, idempotency_key=idempotency_key, batch_id=batch_id,
        )
        return await self._run(ops.submit(self._open(), content, idempotency_key is not None))

    async def get_approval_status(self, approval_id: str) -> ApprovalStatus:
        """The approval's current state (GET /v1/approvals/{id}).

        Raises :class:`NotFoundError` for an id that is not this agent's.
        """
        return await self._run(ops.get_approval_status(self._open(), approval_id))

    async def cancel_approval(self, approval_id: str, reason: str | None = None) -> ApprovalStatus:
        """Cancels a pending approval of this agent; returns its new state.

        Raises :class:`ConflictError` (``not_pending``) when it was already
        decided, :class:`NotFoundError` when it is not this agent's.
        """
        return await self._run(ops.cancel_approval(self._open(), approval_id, reason))

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
        return await self._run(
            ops.await_approval(self._open(), approval_id, timeout, poll_interval))

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
        return await self._run(ops.submit_batch(
            self._open(), batch_id, requests, seal, concurrency, first_index))

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
        return await self._run(ops.seal_batch(self._open(), batch_id, count))

    async def get_batch_status(self, batch_id: str) -> BatchStatus:
        """The batch's current state (GET /v1/batches/{id}).

        Raises :class:`NotFoundError` for a batch id this agent never used.
        """
        return await self._run(ops.get_batch_status(self._open(), batch_id))

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
        return await self._run(
            ops.await_batch(self._open(), batch_id, timeout, poll_interval))


class SyncAgent(_Client):
    """The blocking twin of :class:`Agent` (as ``httpx.Client`` is of
    ``httpx.AsyncClient``): the same arguments, methods, results, errors and
    retries, without ``await``; ``http_client`` is an ``httpx.Client`` and
    ``transport`` an ``httpx.BaseTransport``. Safe to share between threads;
    ``submit_batch`` sends members on ``concurrency`` threads.

    ::

        with SyncAgent() as agent:   # the key from $COUNTERSIGN_API_KEY
            outcome = agent.proxy_request("POST", url, grant_id="stripe", json=...)

    Each method's documentation is on :class:`Agent`.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float = 30.0,
        max_retries: int = DEFAULT_MAX_RETRIES,
        retry_backoff: float = DEFAULT_RETRY_BACKOFF,
        retry_backoff_max: float = DEFAULT_RETRY_BACKOFF_MAX,
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
        user_agent: str | None = None,
    ) -> None:
        super().__init__(api_key, base_url, timeout, max_retries, retry_backoff,
                         retry_backoff_max, user_agent, transport, http_client)
        self._client = http_client or httpx.Client(
            transport=transport, timeout=httpx.Timeout(self.timeout), follow_redirects=False,
        )

    def close(self) -> None:
        """Closes the HTTP connections (not those of an ``http_client`` you
        passed). Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> SyncAgent:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _run(self, op: Op[_T]) -> _T:
        return run_sync(op, self._client)

    def proxy_request(
        self,
        method: HttpMethod | str,
        url: str,
        *,
        grant_id: str,
        json: Any = MISSING,
        body: _Body = None,
        extra_headers: Mapping[str, str] | None = None,
        query_params: _Query = None,
        path_params: Mapping[str, str | int | float] | None = None,
        reason: str | None = None,
        context: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        batch_id: str | None = None,
    ) -> PendingApproval | ApprovalResult:
        """See :meth:`Agent.proxy_request`."""
        content = ops.proxy_content(
            method, url, grant_id=grant_id, json=json, body=body, extra_headers=extra_headers,
            query_params=query_params, path_params=path_params, reason=reason,
            context=context, idempotency_key=idempotency_key, batch_id=batch_id,
        )
        return self._run(ops.submit(self._open(), content, idempotency_key is not None))

    def get_approval_status(self, approval_id: str) -> ApprovalStatus:
        """See :meth:`Agent.get_approval_status`."""
        return self._run(ops.get_approval_status(self._open(), approval_id))

    def cancel_approval(self, approval_id: str, reason: str | None = None) -> ApprovalStatus:
        """See :meth:`Agent.cancel_approval`."""
        return self._run(ops.cancel_approval(self._open(), approval_id, reason))

    def await_approval(
        self, approval_id: str, *, timeout: float | None = 300, poll_interval: float = 2
    ) -> ApprovalResult:
        """See :meth:`Agent.await_approval`."""
        return self._run(ops.await_approval(self._open(), approval_id, timeout, poll_interval))

    def submit_batch(
        self,
        batch_id: str,
        requests: Iterable[BatchRequest | Mapping[str, Any] | object],
        *,
        seal: bool = True,
        concurrency: int = BATCH_CONCURRENCY,
        first_index: int = 0,
    ) -> BatchStatus:
        """See :meth:`Agent.submit_batch`."""
        return self._run(ops.submit_batch(
            self._open(), batch_id, requests, seal, concurrency, first_index))

    def seal_batch(self, batch_id: str, count: int) -> BatchStatus:
        """See :meth:`Agent.seal_batch`."""
        return self._run(ops.seal_batch(self._open(), batch_id, count))

    def get_batch_status(self, batch_id: str) -> BatchStatus:
        """See :meth:`Agent.get_batch_status`."""
        return self._run(ops.get_batch_status(self._open(), batch_id))

    def await_batch(
        self, batch_id: str, *, timeout: float | None = 300, poll_interval: float = 2
    ) -> BatchStatus:
        """See :meth:`Agent.await_batch`."""
        return self._run(ops.await_batch(self._open(), batch_id, timeout, poll_interval))
