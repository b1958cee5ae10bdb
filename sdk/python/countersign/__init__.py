"""Countersign's Python SDK: submit third-party API calls through Countersign,
wait for the approvers, get the provider's response.

    from countersign import Agent, HttpMethod

    async with Agent() as agent:  # api_key from $COUNTERSIGN_API_KEY
        outcome = await agent.proxy_request(
            HttpMethod.POST, "https://api.stripe.com/v1/refunds", grant_id="stripe",
            json={"charge": "ch_1", "amount": 2500}, reason="customer charged twice, ticket #4312")

``SyncAgent`` is the blocking twin (``with SyncAgent() as agent: ...``).
See README.md for the whole flow, the retry rules and the error table.
"""

from ._agent import (
    BATCH_CONCURRENCY,
    BATCH_MAX_MEMBERS,
    DEFAULT_BASE_URL,
    ENV_API_KEY,
    ENV_BASE_URL,
    MAX_WAIT_SECONDS,
    MISSING,
    Agent,
    SyncAgent,
)
from ._version import __version__
from .errors import (
    ApprovalCancelledError,
    ApprovalDeniedError,
    ApprovalExecutionFailedError,
    ApprovalExpiredError,
    ApprovalTimeoutError,
    AuthenticationError,
    ConflictError,
    CountersignConnectionError,
    CountersignError,
    NotFoundError,
    PermissionDeniedError,
    ServerError,
    TransportError,
    ValidationError,
)
from .models import (
    BATCH_STATUSES,
    TERMINAL_STATUSES,
    ApprovalResult,
    ApprovalStatus,
    BatchRequest,
    BatchStatus,
    HttpMethod,
    PendingApproval,
)
from .signing import SIGNATURE_HEADER, sign_envelope

__all__ = [
    "Agent",
    "SyncAgent",
    "HttpMethod",
    "PendingApproval",
    "ApprovalResult",
    "ApprovalStatus",
    "BatchRequest",
    "BatchStatus",
    "TERMINAL_STATUSES",
    "BATCH_STATUSES",
    "BATCH_CONCURRENCY",
    "BATCH_MAX_MEMBERS",
    "MISSING",
    "DEFAULT_BASE_URL",
    "ENV_API_KEY",
    "ENV_BASE_URL",
    "MAX_WAIT_SECONDS",
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
    "SIGNATURE_HEADER",
    "sign_envelope",
    "__version__",
]
