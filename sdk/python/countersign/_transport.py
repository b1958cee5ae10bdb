"""The HTTP transport of both clients: settings, the retry policy, and the
two drivers (async and blocking) that perform what the shared operations ask.

The operations (``_operations.py``) are generators written once: they yield
effects -- :class:`Send` one HTTP request, :class:`Sleep`, :class:`Gather`
several operations -- and receive the outcome. :func:`run_async` performs
them with an ``httpx.AsyncClient`` and ``anyio``; :func:`run_sync` with an
``httpx.Client``, ``time.sleep`` and threads. Nothing else differs between
:class:`~countersign.Agent` and :class:`~countersign.SyncAgent`.
"""

from __future__ import annotations

import logging
import math
import os
import platform
import random
import threading
import time
from collections.abc import Callable, Generator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import anyio
import httpx

from ._version import __version__
from .errors import CountersignConnectionError, CountersignError, ServerError, error_from_response

logger = logging.getLogger("countersign")

#: Where the API is when neither ``base_url`` nor ``$COUNTERSIGN_URL`` says.
DEFAULT_BASE_URL = "http://127.0.0.1:8080"
#: The environment variable read for the base URL.
ENV_BASE_URL = "COUNTERSIGN_URL"
#: The environment variable read for the API key.
ENV_API_KEY = "COUNTERSIGN_API_KEY"
#: Statuses worth another try on a request that may be retried.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: The longest Retry-After honoured, in seconds (docs/RETRIES.md).
MAX_RETRY_AFTER = 60.0
#: Retries of a retriable failure by default.
DEFAULT_MAX_RETRIES = 3
#: The first retry's pause ceiling by default, in seconds.
DEFAULT_RETRY_BACKOFF = 0.5
#: The longest pause between retries by default, in seconds.
DEFAULT_RETRY_BACKOFF_MAX = 8.0

_T = TypeVar("_T")
RetryMode = Literal["all", "connect", "none"]

# Indirections the unit tests replace (a fake clock); nothing else touches them.
_sleep = anyio.sleep
_sleep_sync = time.sleep
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


@dataclass(frozen=True)
class Settings:
    """What both clients are configured with, checked once."""

    api_key: _Secret
    base_url: str
    timeout: float
    max_retries: int
    retry_backoff: float
    retry_backoff_max: float
    user_agent: str

    @classmethod
    def create(cls, api_key: str | None, base_url: str | None, timeout: float,
               max_retries: int, retry_backoff: float, retry_backoff_max: float,
               user_agent: str | None) -> Settings:
        """Checks the clients' arguments (ValueError / TypeError) and reads the
        environment for what was not given."""
        if api_key is None:
            api_key = os.environ.get(ENV_API_KEY) or None
            if api_key is None:
                raise ValueError(f"no API key: pass api_key=... or set ${ENV_API_KEY} "
                                 "(create one with `countersign key create AGENT`)")
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
        ua = (
            f"countersign-python/{__version__} "
            f"(python {platform.python_version()}; httpx {httpx.__version__})"
        )
        return cls(
            api_key=_Secret(api_key.strip()),
            base_url=base_url,
            timeout=float(timeout),
            max_retries=max_retries,
            retry_backoff=float(retry_backoff),
            retry_backoff_max=float(retry_backoff_max),
            user_agent=f"{ua} {user_agent.strip()}" if user_agent else ua,
        )

    def headers(self, has_body: bool) -> dict[str, str]:
        h = {
            "Authorization": f"Bearer {self.api_key.get()}",
            "User-Agent": self.user_agent,
            "Accept": "application/json",
        }
        if has_body:
            h["Content-Type"] = "application/json"
        return h


# ---- effects -------------------------------------------------------------

@dataclass(frozen=True)
class Send:
    """Send one HTTP request; the driver answers with the read response or
    throws the ``httpx.HTTPError`` into the operation."""

    method: str
    url: str
    content: bytes | None
    params: Mapping[str, str] | None
    headers: dict[str, str]
    timeout: httpx.Timeout

    def options(self) -> dict[str, Any]:
        """The keyword arguments of ``httpx.(Async)Client.request``."""
        return {"content": self.content, "params": self.params, "headers": self.headers,
                "timeout": self.timeout}


@dataclass(frozen=True)
class Sleep:
    """Pause; the driver answers with None."""

    seconds: float


@dataclass(frozen=True)
class Gather:
    """Run ``ops`` at most ``concurrency`` at a time; once one raises, start
    no more. The driver answers with ``(results, failures)``: each op's
    return value (None when it failed or never ran) and ``(index, error)``
    of those that raised."""

    ops: list[Callable[[], Op[Any]]]
    concurrency: int


Effect = Send | Sleep | Gather
Op = Generator[Effect, Any, _T]
GatherOutcome = tuple[list[Any], list[tuple[int, Exception]]]


# ---- the retry policy ----------------------------------------------------

def backoff_delay(retry: int, base: float, cap: float, rand: float | None = None) -> float:
    """The pause before retry number ``retry`` (0 for the first): exponential
    (``base * 2**retry``, at most ``cap``) with equal jitter (half fixed, half random)."""
    ceiling = min(cap, base * (2**retry))
    r: float = random.random() if rand is None else rand
    return float(ceiling / 2 + r * ceiling / 2)


def retry_after(resp: httpx.Response) -> float | None:
    """The response's Retry-After in seconds (delta or HTTP date), at most
    :data:`MAX_RETRY_AFTER`; None when absent or unreadable."""
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


def retriable(exc: CountersignError) -> bool:
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


def _maybe_json(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


def request(
    s: Settings,
    method: str,
    path: str,
    *,
    content: bytes | None = None,
    params: Mapping[str, str] | None = None,
    retry: RetryMode,
    extra_read: float = 0.0,
    approval_id: str | None = None,
) -> Op[httpx.Response]:
    """Sends one API request with the retry policy; returns a 2xx/3xx
    response or raises the mapped error.

    retry: "all" -- transport errors and RETRY_STATUSES; "connect" -- only
    failures to connect (nothing was sent); "none".
    """
    send = Send(
        method, s.base_url + path, content, params, s.headers(content is not None),
        httpx.Timeout(s.timeout, read=s.timeout + extra_read if extra_read else s.timeout),
    )
    attempt = 0
    while True:
        delay: float | None = None
        err: CountersignError
        try:
            resp: httpx.Response = yield send
        except httpx.HTTPError as exc:
            err = _transport_error(exc, method, path)
            err.approval_id = approval_id
            may = (retry == "all" and retriable(err)) or (
                retry == "connect" and err.code == "connect_error"
            )
            if not may or attempt >= s.max_retries:
                raise err from exc
            logger.debug("%s %s: %s (%s)", method, path, err.code, type(exc).__name__)
        else:
            if resp.status_code < 400:
                return resp
            err = error_from_response(
                resp.status_code, _maybe_json(resp), text=resp.text, approval_id=approval_id,
            )
            if retry != "all" or not retriable(err) or attempt >= s.max_retries:
                raise err
            delay = retry_after(resp)
            logger.debug("%s %s: HTTP %d %s", method, path, resp.status_code, err.code)
        if delay is None:
            delay = backoff_delay(attempt, s.retry_backoff, s.retry_backoff_max)
        attempt += 1
        logger.debug("retry %d of %s %s in %.2f s", attempt, method, path, delay)
        yield Sleep(delay)


# ---- the drivers ---------------------------------------------------------

class _Run:
    """Steps an operation: :meth:`next` resumes it with the last effect's
    outcome (``value`` or ``error``, set by the driver) and returns its next
    effect, or None once it returned (``result``)."""

    def __init__(self, op: Op[Any]) -> None:
        self.op = op
        self.value: Any = None
        self.error: BaseException | None = None
        self.result: Any = None

    def next(self) -> Effect | None:
        value, error, self.value, self.error = self.value, self.error, None, None
        try:
            return self.op.send(value) if error is None else self.op.throw(error)
        except StopIteration as stop:
            self.result = stop.value
            return None


async def run_async(op: Op[_T], client: httpx.AsyncClient) -> _T:
    """Performs ``op`` with an async httpx client."""
    run = _Run(op)
    while (effect := run.next()) is not None:
        if isinstance(effect, Send):
            try:
                run.value = await client.request(effect.method, effect.url, **effect.options())
            except httpx.HTTPError as exc:
                run.error = exc
        elif isinstance(effect, Sleep):
            await _sleep(effect.seconds)
        else:
            run.value = await _gather_async(effect, client)
    result: _T = run.result
    return result


async def _gather_async(g: Gather, client: httpx.AsyncClient) -> GatherOutcome:
    results: list[Any] = [None] * len(g.ops)
    failures: list[tuple[int, Exception]] = []
    next_op = 0

    async def worker() -> None:
        nonlocal next_op
        while not failures and next_op < len(g.ops):
            i = next_op
            next_op += 1
            try:
                results[i] = await run_async(g.ops[i](), client)
            except Exception as exc:  # handed back to the operation
                failures.append((i, exc))
                return

    async with anyio.create_task_group() as tg:
        for _ in range(min(g.concurrency, len(g.ops))):
            tg.start_soon(worker)
    return results, failures


def run_sync(op: Op[_T], client: httpx.Client) -> _T:
    """Performs ``op`` with a blocking httpx client (``Gather`` on threads)."""
    run = _Run(op)
    while (effect := run.next()) is not None:
        if isinstance(effect, Send):
            try:
                run.value = client.request(effect.method, effect.url, **effect.options())
            except httpx.HTTPError as exc:
                run.error = exc
        elif isinstance(effect, Sleep):
            _sleep_sync(effect.seconds)
        else:
            run.value = _gather_sync(effect, client)
    result: _T = run.result
    return result


def _gather_sync(g: Gather, client: httpx.Client) -> GatherOutcome:
    results: list[Any] = [None] * len(g.ops)
    failures: list[tuple[int, Exception]] = []
    lock = threading.Lock()
    next_op = 0

    def worker() -> None:
        nonlocal next_op
        while True:
            with lock:
                if failures or next_op >= len(g.ops):
                    return
                i = next_op
                next_op += 1
            try:
                results[i] = run_sync(g.ops[i](), client)
            except Exception as exc:  # handed back to the operation
                with lock:
                    failures.append((i, exc))
                return

    n = min(g.concurrency, len(g.ops))
    if n == 1:
        worker()
    elif n > 1:
        with ThreadPoolExecutor(max_workers=n, thread_name_prefix="countersign") as pool:
            for f in [pool.submit(worker) for _ in range(n)]:
                f.result()
    return results, failures
