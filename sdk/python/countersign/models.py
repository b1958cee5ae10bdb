"""What the API answers, as frozen dataclasses.

* :class:`PendingApproval` -- a submission waits for approvers (HTTP 202).
* :class:`ApprovalResult` -- the provider's response to an executed call (HTTP 200).
* :class:`ApprovalStatus` -- an approval's state (GET /v1/approvals/{id}).
* :class:`BatchStatus` -- a batch's state (GET /v1/batches/{id}, POST .../seal).
* :class:`BatchRequest` -- one member of ``Agent.submit_batch`` (what you send).

Timestamps are timezone-aware :class:`datetime.datetime` objects (UTC).
Fields the server adds later are ignored, so an older SDK keeps working.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Any

__all__ = [
    "HttpMethod",
    "PendingApproval",
    "ApprovalResult",
    "ApprovalStatus",
    "BatchRequest",
    "BatchStatus",
    "TERMINAL_STATUSES",
    "BATCH_STATUSES",
    "parse_datetime",
]

#: A query parameter's value (lists of them repeat the parameter).
QueryValue = str | int | float | bool


class _Missing(Enum):
    MISSING = "MISSING"

    def __repr__(self) -> str:
        return "MISSING"


#: "No value": lets ``json=None`` mean JSON ``null``.
MISSING = _Missing.MISSING

#: The statuses after which nothing changes any more.
TERMINAL_STATUSES = frozenset({"executed", "failed", "denied", "expired", "cancelled"})
#: The statuses of a batch: ``open`` (waiting for its seal or members),
#: ``decidable`` (sealed and complete: approvers can decide), ``decided``,
#: ``expired`` (its window elapsed first).
BATCH_STATUSES = frozenset({"open", "decidable", "decided", "expired"})


class HttpMethod(str, Enum):
    """The HTTP methods a proxied call may use.

    Plain strings are accepted wherever a method is, in any case:
    ``HttpMethod("post") is HttpMethod.POST``.
    """

    GET = "GET"
    POST = "POST"
    PUT = "PUT"
    PATCH = "PATCH"
    DELETE = "DELETE"
    HEAD = "HEAD"
    OPTIONS = "OPTIONS"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def _missing_(cls, value: object) -> HttpMethod | None:
        if isinstance(value, str):
            upper = value.strip().upper()
            for member in cls:
                if member.value == upper:
                    return member
        return None


_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))?$"
)


def parse_datetime(value: str) -> datetime:
    """Parses an RFC 3339 timestamp into an aware datetime.

    Accepts ``Z`` or a numeric offset, any number of fractional digits
    (rounded down to microseconds); a timestamp without an offset is taken as
    UTC. Works the same on Python 3.10 (whose ``fromisoformat`` is stricter).
    Raises ValueError on anything else.
    """
    m = _RFC3339.match(value.strip()) if isinstance(value, str) else None
    if not m:
        raise ValueError(f"not an RFC 3339 timestamp: {value!r}")
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    micro = int((m.group(7) or "0")[:6].ljust(6, "0"))
    if m.group(9):
        offset = timedelta(hours=int(m.group(10)), minutes=int(m.group(11)))
        tz = timezone(-offset if m.group(9) == "-" else offset)
    else:
        tz = timezone.utc
    leap = second == 60  # a leap second: keep the instant, one microsecond short
    if leap:
        second, micro = 59, 999999
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)


def _opt_datetime(data: Mapping[str, Any], key: str) -> datetime | None:
    value = data.get(key)
    return parse_datetime(value) if isinstance(value, str) and value else None


def _opt_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def _require(data: Mapping[str, Any], key: str, what: str) -> Any:
    if not isinstance(data, Mapping) or key not in data or data[key] is None:
        raise ValueError(f"the server's {what} lacks {key!r}")
    return data[key]


@dataclass(frozen=True)
class PendingApproval:
    """A submitted call that is waiting (HTTP 202 from POST /v1/proxy).

    Attributes:
        approval_id: the approval's id; pass it to ``await_approval``,
            ``get_approval_status`` or ``cancel_approval``.
        approval_url: the approval's page, to hand to a person (your user, or
            an approver). It shows the request and its status to whoever holds
            it; approvers sign in there (single sign-on, or a one-time link
            sent to their own channel) and decide on it. Nothing the agent
            holds lets it vote.
        expires_at: when the approval window closes.
        status: ``pending`` (waiting for approvers), or ``approved`` /
            ``executing`` when no approval was needed but the call had not
            finished within the server's inline wait.
    """

    approval_id: str
    approval_url: str
    expires_at: datetime
    status: str = "pending"

    @property
    def needs_approval(self) -> bool:
        """True while it waits for approvers (``status == 'pending'``)."""
        return self.status == "pending"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PendingApproval:
        """Builds one from the API's JSON object."""
        return cls(
            approval_id=str(_require(data, "approval_id", "pending approval")),
            approval_url=str(data.get("approval_url") or ""),
            expires_at=parse_datetime(_require(data, "expires_at", "pending approval")),
            status=str(data.get("status") or "pending"),
        )


_CHARSET = re.compile(r"charset\s*=\s*\"?([A-Za-z0-9._:+-]+)\"?", re.IGNORECASE)


@dataclass(frozen=True)
class ApprovalResult:
    """The provider's response to an executed call.

    Attributes:
        approval_id: the approval's id.
        status_code: the provider's HTTP status (any status: a provider 4xx is
            still a result, see :attr:`ok`).
        headers: the provider's response headers, names lower-cased.
        body_b64: the provider's body, base64 (see :meth:`body_bytes`,
            :meth:`body_text`, :meth:`body_json`).
        body_truncated: True when the body was longer than the server keeps
            (``CS_RESPONSE_MAX_BYTES``) and was cut.
        status: always ``executed``.
        executed_at: when the call was executed, if the server said.
    """

    approval_id: str
    status_code: int
    headers: dict[str, str] = field(default_factory=dict)
    body_b64: str = ""
    body_truncated: bool = False
    status: str = "executed"
    executed_at: datetime | None = None

    @property
    def ok(self) -> bool:
        """True when the provider answered 2xx."""
        return 200 <= self.status_code < 300

    def body_bytes(self) -> bytes:
        """The body, decoded from base64."""
        try:
            return base64.b64decode(self.body_b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"body_b64 is not valid base64: {exc}") from None

    def body_text(self, encoding: str | None = None, errors: str = "replace") -> str:
        """The body as text, in ``encoding``, else the charset of the
        provider's Content-Type, else UTF-8."""
        if encoding is None:
            m = _CHARSET.search(self.headers.get("content-type", ""))
            encoding = m.group(1) if m else "utf-8"
        try:
            return self.body_bytes().decode(encoding, errors)
        except LookupError:
            return self.body_bytes().decode("utf-8", errors)

    def body_json(self) -> Any:
        """The body parsed as JSON. Raises ValueError when it is not JSON (or
        was truncated)."""
        raw = self.body_bytes()
        try:
            return json.loads(raw)
        except ValueError as exc:
            if self.body_truncated:
                raise ValueError(
                    "the provider's body was truncated by Countersign and cannot be parsed "
                    f"as JSON ({len(raw)} bytes kept)"
                ) from exc
            raise

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ApprovalResult:
        """Builds one from the API's JSON object."""
        headers = data.get("headers") or {}
        if not isinstance(headers, Mapping):
            raise ValueError("the server's result has headers that are not an object")
        return cls(
            approval_id=str(_require(data, "approval_id", "result")),
            status_code=int(_require(data, "status_code", "result")),
            headers={str(k).lower(): str(v) for k, v in headers.items()},
            body_b64=str(data.get("body_b64") or ""),
            body_truncated=bool(data.get("body_truncated", False)),
            status=str(data.get("status") or "executed"),
            executed_at=_opt_datetime(data, "executed_at"),
        )


@dataclass(frozen=True)
class ApprovalStatus:
    """An approval's state (GET /v1/approvals/{id}, POST .../cancel).

    ``status`` is one of pending, approved, executing, executed, failed,
    denied, expired, cancelled; ``is_terminal`` is True for the last five.
    ``has_result`` says whether a provider response is stored (fetch it with
    ``await_approval``). ``error_code`` is set for ``failed``.
    """

    approval_id: str
    status: str
    is_terminal: bool
    expires_at: datetime
    has_result: bool = False
    approvals_received: int = 0
    approvals_required: int = 0
    created_at: datetime | None = None
    decided_at: datetime | None = None
    decision_reason: str | None = None
    executed_at: datetime | None = None
    grant_id: str | None = None
    method: str | None = None
    url: str | None = None
    error_code: str | None = None
    batch_id: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ApprovalStatus:
        """Builds one from the API's JSON object."""
        status = str(_require(data, "status", "approval status"))
        is_terminal = data.get("is_terminal")
        return cls(
            approval_id=str(_require(data, "approval_id", "approval status")),
            status=status,
            is_terminal=bool(is_terminal) if isinstance(is_terminal, bool)
            else status in TERMINAL_STATUSES,
            expires_at=parse_datetime(_require(data, "expires_at", "approval status")),
            has_result=bool(data.get("has_result", False)),
            approvals_received=int(data.get("approvals_received") or 0),
            approvals_required=int(data.get("approvals_required") or 0),
            created_at=_opt_datetime(data, "created_at"),
            decided_at=_opt_datetime(data, "decided_at"),
            decision_reason=_opt_str(data, "decision_reason"),
            executed_at=_opt_datetime(data, "executed_at"),
            grant_id=_opt_str(data, "grant_id"),
            method=_opt_str(data, "method"),
            url=_opt_str(data, "url"),
            error_code=_opt_str(data, "error_code"),
            batch_id=_opt_str(data, "batch_id"),
        )


def _opt_int(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"the server's {key!r} is not a number")
    return int(value)


@dataclass(frozen=True)
class BatchRequest:
    """One member of a batch, for :meth:`Agent.submit_batch`: the arguments
    of :meth:`Agent.proxy_request` as a value. A plain dict with the same keys
    (``{"method": "POST", "url": ..., "grant_id": ..., "json": ...}``) works too.

    ``json`` left out means no JSON body (``json=None`` sends JSON ``null``).
    ``idempotency_key`` left out becomes ``f"{batch_id}:{index}"``; it is also
    the member's request id, the name approvers see on the batch page and type
    into its "deny only these" field (so avoid spaces and commas in your own).
    """

    method: str
    url: str
    grant_id: str
    json: Any = MISSING
    body: bytes | bytearray | memoryview | str | None = None
    extra_headers: Mapping[str, str] | None = None
    query_params: Mapping[str, QueryValue | list[QueryValue] | tuple[QueryValue, ...]] | None = None
    path_params: Mapping[str, str | int | float] | None = None
    reason: str | None = None
    context: Mapping[str, Any] | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class BatchStatus:
    """A batch's state (GET /v1/batches/{id}; also what ``seal_batch``,
    ``submit_batch`` and ``await_batch`` return).

    Attributes:
        batch_id: your batch id.
        batch_uid: the server's id of the batch (what its page link signs).
        status: ``open`` (waiting for the seal or members), ``decidable``
            (sealed and every member stored: the approvers are notified and
            decide on the batch page once signed in), ``decided``, or
            ``expired`` (the window elapsed first).
        expected: the sealed member count, ``None`` until sealed.
        members: how many members are stored.
        counts: the members per approval status, e.g. ``{"executed": 98,
            "denied": 2}``; see :meth:`count`.
        digest: the batch digest (hex SHA-256 over the members' digests) shown
            on the batch page, ``None`` until decidable.
        is_terminal: True once every member is terminal and the batch summary
            was published; nothing changes after that.
        expires_at: when the batch's approval window closes (``None`` until
            the first member fixes it).
        approvals_received, approvals_required: approving votes so far, and the
            quorum.
        decided_at, decided_by, decision: who decided, when, how
            (``approved`` / ``denied``), once decided.
        finished_at: when the batch became terminal.
        grant_id, policy_id: fixed by the first member; every member must use them.
        approval_ids: only on what :meth:`Agent.submit_batch` returns: the
            approval id of each request it submitted, in the order given
            (pass one to ``await_approval`` / ``get_approval_status``);
            empty elsewhere.
    """

    batch_id: str
    batch_uid: str
    status: str
    members: int
    counts: dict[str, int] = field(default_factory=dict)
    expected: int | None = None
    digest: str | None = None
    is_terminal: bool = False
    expires_at: datetime | None = None
    created_at: datetime | None = None
    decided_at: datetime | None = None
    decided_by: str | None = None
    decision: str | None = None
    finished_at: datetime | None = None
    approvals_received: int = 0
    approvals_required: int = 0
    grant_id: str | None = None
    policy_id: str | None = None
    agent: str | None = None
    amount_field: str | None = None
    approval_ids: tuple[str, ...] = ()

    @property
    def sealed(self) -> bool:
        """True once the batch has its seal (``expected`` is set)."""
        return self.expected is not None

    def count(self, status: str) -> int:
        """How many members are in ``status`` (0 when none)."""
        return self.counts.get(status, 0)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BatchStatus:
        """Builds one from the API's JSON object."""
        counts = data.get("counts") or {}
        if not isinstance(counts, Mapping):
            raise ValueError("the server's batch counts are not an object")
        is_terminal = data.get("is_terminal")
        return cls(
            batch_id=str(_require(data, "batch_id", "batch status")),
            batch_uid=str(data.get("batch_uid") or ""),
            status=str(_require(data, "status", "batch status")),
            members=int(data.get("members") or 0),
            counts={str(k): int(v) for k, v in counts.items()},
            expected=_opt_int(data, "expected"),
            digest=_opt_str(data, "digest"),
            is_terminal=is_terminal if isinstance(is_terminal, bool)
            else data.get("finished_at") is not None,
            expires_at=_opt_datetime(data, "expires_at"),
            created_at=_opt_datetime(data, "created_at"),
            decided_at=_opt_datetime(data, "decided_at"),
            decided_by=_opt_str(data, "decided_by"),
            decision=_opt_str(data, "decision"),
            finished_at=_opt_datetime(data, "finished_at"),
            approvals_received=int(data.get("approvals_received") or 0),
            approvals_required=int(data.get("approvals_required") or 0),
            grant_id=_opt_str(data, "grant_id"),
            policy_id=_opt_str(data, "policy_id"),
            agent=_opt_str(data, "agent"),
            amount_field=_opt_str(data, "amount_field"),
        )
