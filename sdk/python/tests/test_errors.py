"""Every status / code the API answers maps to its error class."""

from __future__ import annotations

import builtins
import pickle
from typing import Any

import pytest

import countersign
from countersign import (
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
from countersign.errors import error_from_response

# (status, code) -> class: every code of docs/ERRORS.md an agent route can answer.
CASES: list[tuple[int, str, type[CountersignError]]] = [
    (400, "invalid_request", ValidationError),
    (400, "malformed_json", ValidationError),
    (400, "forbidden_header", ValidationError),
    (400, "invalid_url", ValidationError),
    (404, "unknown_agent", NotFoundError),
    (413, "too_large", ValidationError),
    (422, "policy_unevaluable", ValidationError),
    (401, "unauthenticated", AuthenticationError),
    (403, "forbidden", PermissionDeniedError),
    (403, "host_not_allowed", PermissionDeniedError),
    (404, "not_found", NotFoundError),
    (404, "unknown_grant", NotFoundError),
    (405, "method_not_allowed", CountersignError),
    (409, "denied", ApprovalDeniedError),
    (409, "cancelled", ApprovalCancelledError),
    (409, "not_pending", ConflictError),
    (409, "conflict", ConflictError),
    (409, "duplicate", ConflictError),
    (410, "expired", ApprovalExpiredError),
    (429, "rate_limited", CountersignError),
    (500, "internal_error", ServerError),
    (500, "digest_mismatch", ServerError),
    (502, "execution_failed", ApprovalExecutionFailedError),
    (502, "provider_error", ServerError),
    (503, "database_unavailable", ServerError),
    (503, "kafka_unavailable", ServerError),
    (503, "unavailable", ServerError),
    (504, "timeout", ServerError),
]


@pytest.mark.parametrize("status, code, cls", CASES)
def test_mapping(status: int, code: str, cls: type[CountersignError]) -> None:
    e = error_from_response(status, {"error": {"code": code, "message": "the message",
                                               "details": {"k": "v"}}})
    assert type(e) is cls
    assert isinstance(e, CountersignError)
    assert (e.code, e.message, e.status_code, e.details) == (code, "the message", status,
                                                              {"k": "v"})


def test_denied_details() -> None:
    e = error_from_response(409, {"error": {"code": "denied", "message": "denied: dup",
                                            "details": {"reason": "dup", "decided_by": "bob",
                                                        "approval_id": "a1"}}})
    assert isinstance(e, ApprovalDeniedError)
    assert e.reason == "dup" and e.decided_by == "bob" and e.approval_id == "a1"
    assert e.details["reason"] == "dup"


def test_execution_failed_details() -> None:
    e = error_from_response(502, {"error": {"code": "execution_failed", "message": "m",
                                            "details": {"error_code": "outcome_unknown",
                                                        "error_message": "reset"}}},
                            approval_id="a2")
    assert isinstance(e, ApprovalExecutionFailedError)
    assert e.error_code == "outcome_unknown" and e.error_message == "reset"
    assert e.approval_id == "a2"


def test_missing_details_are_an_empty_dict() -> None:
    e = error_from_response(409, {"error": {"code": "denied", "message": "m"}})
    assert isinstance(e, ApprovalDeniedError)
    assert e.details == {} and e.reason is None and e.decided_by is None


@pytest.mark.parametrize("payload, text", [(None, "<html>Bad Gateway</html>"),
                                           ({"oops": 1}, ""), ([1, 2], ""),
                                           ({"error": "flat string"}, "")])
def test_not_an_error_object(payload: Any, text: str) -> None:
    e = error_from_response(502, payload, text=text)
    assert type(e) is ServerError and e.code == "http_502" and e.details == {}
    assert "502" in e.message
    if text:
        assert "Bad Gateway" in e.message


def test_410_without_a_code_is_expired() -> None:
    assert isinstance(error_from_response(410, None), ApprovalExpiredError)


def test_str_and_repr() -> None:
    e = error_from_response(400, {"error": {"code": "forbidden_header",
                                            "message": "callers may not set Authorization"}})
    assert str(e) == "callers may not set Authorization (forbidden_header, HTTP 400)"
    assert repr(e).startswith("ValidationError(code='forbidden_header'")
    local = ApprovalTimeoutError("still pending", approval_id="a")
    assert str(local) == "still pending (timeout)"
    assert local.status_code is None and local.last_status is None


def test_connection_error_design() -> None:
    assert TransportError is CountersignConnectionError
    e = CountersignConnectionError("refused", code="connect_error")
    assert isinstance(e, CountersignError)
    assert isinstance(e, builtins.ConnectionError)  # `except ConnectionError` catches it
    # The package does not shadow the builtin.
    assert not hasattr(countersign, "ConnectionError")
    assert "ConnectionError" not in countersign.__all__


def test_errors_pickle() -> None:
    for e in (ApprovalDeniedError("m", code="denied", status_code=409, details={"reason": "r"}),
              CountersignConnectionError("m", code="connect_error"),
              ApprovalTimeoutError("m", approval_id="a")):
        back = pickle.loads(pickle.dumps(e))
        assert type(back) is type(e) and repr(back) == repr(e)


def test_all_errors_exported() -> None:
    for name in ("CountersignError", "ApprovalDeniedError", "ApprovalExpiredError",
                 "ApprovalTimeoutError", "ApprovalExecutionFailedError",
                 "ApprovalCancelledError", "AuthenticationError", "NotFoundError",
                 "ValidationError", "PermissionDeniedError", "ConflictError",
                 "CountersignConnectionError", "ServerError"):
        cls = getattr(countersign, name)
        assert issubclass(cls, CountersignError) and name in countersign.__all__
