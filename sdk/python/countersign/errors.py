"""The errors the SDK raises.

Every error about the service is a :class:`CountersignError`. Errors from the
server keep its JSON error ``code`` (see docs/ERRORS.md), its ``message``, the
HTTP status as ``status_code`` and its ``details``; errors raised locally (the
local wait of :meth:`Agent.await_approval` ran out, the server could not be
reached) have ``status_code`` ``None``.

Mapping (first match wins):

=====================================  =============================================
server answer                          class
=====================================  =============================================
code ``denied`` (409)                  :class:`ApprovalDeniedError`
code ``cancelled`` (409)               :class:`ApprovalCancelledError`
code ``execution_failed`` (502)        :class:`ApprovalExecutionFailedError`
410 (code ``expired``)                 :class:`ApprovalExpiredError`
401                                    :class:`AuthenticationError`
403                                    :class:`PermissionDeniedError`
404                                    :class:`NotFoundError`
409 (any other code)                   :class:`ConflictError`
400, 413, 422                          :class:`ValidationError`
5xx                                    :class:`ServerError`
any other status                       :class:`CountersignError`
no answer (connect, read, timeout)     :class:`CountersignConnectionError`
=====================================  =============================================

The transport error is named :class:`CountersignConnectionError` so that it
shadows no builtin name; it also *is* a builtin :class:`ConnectionError`, so
``except ConnectionError`` (the builtin) catches it as well. ``TransportError``
is an alias (the TypeScript SDK's name).

Arguments the SDK refuses before any I/O (an unknown HTTP method, both
``json`` and ``body``, a negative timeout) raise :class:`ValueError` or
:class:`TypeError`, as any Python function would.

No error ever holds the API key.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import ApprovalStatus, BatchStatus

__all__ = [
    "CountersignError",
    "ApprovalDeniedError",
    "ApprovalExpiredError",
    "ApprovalTimeoutError",
    "ApprovalExecutionFailedError",
    "ApprovalCancelledError",
    "AuthenticationError",
    "NotFoundError",
    "ValidationError",
    "PermissionDeniedError",
    "ConflictError",
    "CountersignConnectionError",
    "TransportError",
    "ServerError",
    "error_from_response",
]


class CountersignError(Exception):
    """The base of every error about Countersign.

    Attributes:
        code: a stable code: the server's ``error.code`` (``denied``,
            ``forbidden_header``, ``unknown_grant``...), or an SDK code
            (``timeout``, ``transport_error``, ``request_timeout``, ``http_<status>``).
        message: a human-readable message.
        status_code: the HTTP status of the response, or ``None`` when raised locally.
        details: the server's ``error.details`` (or SDK details); never ``None``.
        approval_id: the approval the error is about, when known.
    """

    code: str
    message: str
    status_code: int | None
    details: dict[str, Any]
    approval_id: str | None

    def __init__(
        self,
        message: str,
        *,
        code: str = "error",
        status_code: int | None = None,
        details: Mapping[str, Any] | None = None,
        approval_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status_code = status_code
        self.details = dict(details or {})
        self.approval_id = approval_id

    def __str__(self) -> str:
        where = f", HTTP {self.status_code}" if self.status_code is not None else ""
        return f"{self.message} ({self.code}{where})"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, "
            f"status_code={self.status_code!r}, details={self.details!r}, "
            f"approval_id={self.approval_id!r})"
        )


class ApprovalDeniedError(CountersignError):
    """An approver denied the call (409 ``denied``).

    ``details`` holds ``reason`` (the approver's reason), ``decided_by`` and
    ``decided_at`` as sent by the server; :attr:`reason` and :attr:`decided_by`
    read them.
    """

    @property
    def reason(self) -> str | None:
        """The approver's reason, or ``None``."""
        r = self.details.get("reason")
        return r if isinstance(r, str) else None

    @property
    def decided_by(self) -> str | None:
        """Who denied it, as the server reports it, or ``None``."""
        r = self.details.get("decided_by")
        return r if isinstance(r, str) else None


class ApprovalExpiredError(CountersignError):
    """The approval window elapsed without a decision (410 ``expired``)."""


class ApprovalTimeoutError(CountersignError):
    """The local wait of :meth:`Agent.await_approval` (or
    :meth:`Agent.await_batch`) ran out.

    Nothing happened on the server: the approval may still be pending, and a
    later ``await_approval`` can still succeed. :attr:`last_status` is the last
    status the server reported (``None`` if it never answered within the wait).
    From ``await_batch``, :attr:`last_batch_status` is the batch's last state
    and ``details`` holds ``batch_id``, ``status`` and ``counts``.
    """

    last_status: ApprovalStatus | None
    last_batch_status: BatchStatus | None

    def __init__(
        self,
        message: str,
        *,
        code: str = "timeout",
        status_code: int | None = None,
        details: Mapping[str, Any] | None = None,
        approval_id: str | None = None,
        last_status: ApprovalStatus | None = None,
        last_batch_status: BatchStatus | None = None,
    ) -> None:
        super().__init__(
            message, code=code, status_code=status_code, details=details, approval_id=approval_id
        )
        self.last_status = last_status
        self.last_batch_status = last_batch_status


class ApprovalExecutionFailedError(CountersignError):
    """The call was approved but executing it failed (502 ``execution_failed``).

    ``details`` holds ``error_code`` (``connect_failed``, ``tls_error``,
    ``timeout``, ``outcome_unknown``, ``host_not_allowed``...) and
    ``error_message``; :attr:`error_code` and :attr:`error_message` read them.
    """

    @property
    def error_code(self) -> str | None:
        """Why the execution failed (``details['error_code']``), or ``None``."""
        r = self.details.get("error_code")
        return r if isinstance(r, str) else None

    @property
    def error_message(self) -> str | None:
        """The execution's error message (``details['error_message']``), or ``None``."""
        r = self.details.get("error_message")
        return r if isinstance(r, str) else None


class ApprovalCancelledError(CountersignError):
    """The requester cancelled the approval (409 ``cancelled``)."""


class AuthenticationError(CountersignError):
    """Missing, unknown or revoked API key (401 ``unauthenticated``)."""


class NotFoundError(CountersignError):
    """Not found (404): ``not_found`` (an approval that is not yours or does not
    exist) or ``unknown_grant``."""


class ValidationError(CountersignError):
    """The server refused the request as invalid (400, 413, 422), e.g.
    ``invalid_request`` (unknown fields...), ``forbidden_header``,
    ``invalid_url``, ``malformed_json``, ``too_large``, ``policy_unevaluable``."""


class PermissionDeniedError(CountersignError):
    """Not allowed (403), e.g. ``forbidden`` (a key without the scope) or
    ``host_not_allowed`` (the URL is outside the grant's bases)."""


class ConflictError(CountersignError):
    """A conflict (409) other than a denial or cancellation, e.g.
    ``not_pending`` (cancelling a decided approval) or ``conflict`` (an
    idempotency key reused for a different request; a batch member after the
    seal or with another grant than the batch's; a seal with another count)."""


class CountersignConnectionError(CountersignError, builtins.ConnectionError):
    """No usable answer from the server: connection refused or reset, DNS or
    TLS failure, or the HTTP timeout passed.

    ``code`` is ``transport_error`` or ``request_timeout``; ``__cause__`` holds
    the underlying :mod:`httpx` exception. It is also a builtin
    :class:`ConnectionError`.
    """


TransportError = CountersignConnectionError
"""Alias of :class:`CountersignConnectionError` (the TypeScript SDK's name)."""


class ServerError(CountersignError):
    """The server failed (5xx other than ``execution_failed``), e.g.
    ``database_unavailable``, ``unavailable``, ``internal_error``, or a 5xx
    page from a proxy in front of it."""


def _error_fields(status_code: int, payload: Any, text: str) -> tuple[str, str, dict[str, Any]]:
    err = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(err, dict):
        err = {}
    code = err.get("code")
    if not isinstance(code, str) or not code:
        code = f"http_{status_code}"
    message = err.get("message")
    if not isinstance(message, str) or not message:
        snippet = " ".join(text.split())[:200]
        message = f"unexpected HTTP {status_code} answer from Countersign" + (
            f": {snippet}" if snippet else ""
        )
    details = err.get("details")
    return code, message, dict(details) if isinstance(details, dict) else {}


def error_from_response(
    status_code: int, payload: Any, *, text: str = "", approval_id: str | None = None
) -> CountersignError:
    """The error for an HTTP error answer.

    ``payload`` is the parsed JSON body (anything, or ``None`` when it was not
    JSON); ``text`` the raw body, used in the message when there is no JSON
    error. ``approval_id`` defaults to ``details['approval_id']``.
    """
    code, message, details = _error_fields(status_code, payload, text)
    if approval_id is None and isinstance(details.get("approval_id"), str):
        approval_id = details["approval_id"]
    cls: type[CountersignError]
    if code == "denied":
        cls = ApprovalDeniedError
    elif code == "cancelled":
        cls = ApprovalCancelledError
    elif code == "execution_failed":
        cls = ApprovalExecutionFailedError
    elif status_code == 410:
        cls = ApprovalExpiredError
    elif status_code == 401:
        cls = AuthenticationError
    elif status_code == 403:
        cls = PermissionDeniedError
    elif status_code == 404:
        cls = NotFoundError
    elif status_code == 409:
        cls = ConflictError
    elif status_code in (400, 413, 422):
        cls = ValidationError
    elif status_code >= 500:
        cls = ServerError
    else:
        cls = CountersignError
    return cls(
        message, code=code, status_code=status_code, details=details, approval_id=approval_id
    )
