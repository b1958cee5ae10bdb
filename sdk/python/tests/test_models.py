"""The models: parsing the API's JSON, datetimes, the body helpers, HttpMethod."""

from __future__ import annotations

import base64
import dataclasses
from datetime import datetime, timedelta, timezone

import pytest

import countersign
import countersign.models as models
from countersign import ApprovalResult, ApprovalStatus, HttpMethod, PendingApproval
from countersign.models import parse_datetime

from sdkhelpers import AID, pending_body, result_body, status_body

UTC = timezone.utc


@pytest.mark.parametrize(
    "text, want",
    [
        ("2025-01-02T03:04:05Z", datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2025-01-02T03:04:05z", datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2025-01-02t03:04:05+00:00", datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2025-01-02 03:04:05Z", datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2025-01-02T03:04:05.1Z", datetime(2025, 1, 2, 3, 4, 5, 100000, tzinfo=UTC)),
        ("2025-01-02T03:04:05.123Z", datetime(2025, 1, 2, 3, 4, 5, 123000, tzinfo=UTC)),
        ("2025-01-02T03:04:05.123456789Z", datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)),
        ("2025-01-02T05:04:05+02:00", datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2025-01-01T22:34:05-04:30", datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2025-01-02T03:04:05", datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2016-12-31T23:59:60Z", datetime(2016, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
    ],
)
def test_parse_datetime(text: str, want: datetime) -> None:
    got = parse_datetime(text)
    assert got == want
    assert got.tzinfo is not None and got.utcoffset() is not None


def test_parse_datetime_keeps_the_offset() -> None:
    got = parse_datetime("2025-01-02T05:04:05+02:00")
    assert got.utcoffset() == timedelta(hours=2)


@pytest.mark.parametrize("text", ["", "yesterday", "2025-01-02", "2025-13-02T03:04:05Z",
                                  "2025-01-02T03:04Z", "2025-01-02T03:04:05+2"])
def test_parse_datetime_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_datetime(text)


def test_pending_approval_from_dict() -> None:
    p = PendingApproval.from_dict(pending_body(extra_field="ignored"))
    assert p == PendingApproval(AID, "http://cs.test/status/tok",
                                datetime(2025, 1, 2, 4, 4, 5, tzinfo=UTC), "pending")
    assert p.needs_approval
    assert not PendingApproval.from_dict(pending_body(status="executing")).needs_approval


def test_pending_approval_requires_its_fields() -> None:
    with pytest.raises(ValueError, match="approval_id"):
        PendingApproval.from_dict({"expires_at": "2025-01-02T04:04:05Z"})
    with pytest.raises(ValueError, match="expires_at"):
        PendingApproval.from_dict({"approval_id": AID})


def test_models_are_frozen_dataclasses() -> None:
    p = PendingApproval.from_dict(pending_body())
    r = ApprovalResult.from_dict(result_body())
    s = ApprovalStatus.from_dict(status_body())
    for obj in (p, r, s):
        assert dataclasses.is_dataclass(obj)
        with pytest.raises(dataclasses.FrozenInstanceError):
            obj.approval_id = "x"  # type: ignore[misc]


def test_models_importable_from_both_places() -> None:
    for name in ("PendingApproval", "ApprovalResult", "ApprovalStatus", "HttpMethod"):
        assert getattr(countersign, name) is getattr(models, name)


def test_result_positional_fields_and_helpers() -> None:
    raw = '{"refund": "re_1", "note": "déjà"}'.encode()
    r = ApprovalResult(AID, 201, {"content-type": "application/json"},
                       base64.b64encode(raw).decode(), False)
    assert r.ok and r.status == "executed" and r.executed_at is None
    assert r.body_bytes() == raw
    assert r.body_text() == raw.decode()
    assert r.body_json() == {"refund": "re_1", "note": "déjà"}


def test_result_from_dict() -> None:
    r = ApprovalResult.from_dict(result_body(status_code=402, headers={"X-Thing": "1"}))
    assert r.status_code == 402 and not r.ok
    assert r.headers == {"x-thing": "1"}
    assert r.executed_at == datetime(2025, 1, 2, 3, 10, tzinfo=UTC)
    assert r.body_json() == {"refund": "re_1"}


def test_body_text_uses_the_charset() -> None:
    raw = "café".encode("latin-1")
    r = ApprovalResult(AID, 200, {"content-type": 'text/plain; charset="ISO-8859-1"'},
                       base64.b64encode(raw).decode(), False)
    assert r.body_text() == "café"
    assert r.body_text("utf-8") == "caf\ufffd"
    unknown = dataclasses.replace(r, headers={"content-type": "text/plain; charset=nope"})
    assert unknown.body_text() == "caf\ufffd"


def test_empty_body() -> None:
    r = ApprovalResult(AID, 204, {}, "", False)
    assert r.body_bytes() == b"" and r.body_text() == ""
    with pytest.raises(ValueError):
        r.body_json()


def test_body_json_of_a_truncated_body_says_so() -> None:
    r = ApprovalResult(AID, 200, {}, base64.b64encode(b'{"items": [1, 2').decode(), True)
    with pytest.raises(ValueError, match="truncated"):
        r.body_json()


def test_body_bytes_refuses_bad_base64() -> None:
    with pytest.raises(ValueError, match="base64"):
        ApprovalResult(AID, 200, {}, "***", False).body_bytes()


def test_status_from_dict() -> None:
    s = ApprovalStatus.from_dict(status_body(
        "denied", decided_at="2025-01-02T03:30:00Z", decision_reason="duplicate refund",
        approvals_required=2, unknown_later_field=1))
    assert s.status == "denied" and s.is_terminal and not s.has_result
    assert s.decided_at == datetime(2025, 1, 2, 3, 30, tzinfo=UTC)
    assert s.expires_at == datetime(2025, 1, 2, 4, 4, 5, 123456, tzinfo=UTC)
    assert s.created_at == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert s.executed_at is None and s.error_code is None and s.batch_id is None
    assert s.decision_reason == "duplicate refund" and s.approvals_required == 2
    assert s.grant_id == "stripe" and s.method == "POST"


def test_status_is_terminal_defaults_from_the_status() -> None:
    body = status_body("executing")
    del body["is_terminal"]
    assert not ApprovalStatus.from_dict(body).is_terminal
    body = status_body("failed")
    del body["is_terminal"]
    assert ApprovalStatus.from_dict(body).is_terminal
    assert {"executed", "failed", "denied", "expired",
            "cancelled"} == countersign.TERMINAL_STATUSES


@pytest.mark.parametrize("text", ["get", "GET", "Post", " put ", "patch", "delete", "head",
                                  "options"])
def test_http_method_is_case_insensitive(text: str) -> None:
    m = HttpMethod(text)
    assert m.value == text.strip().upper()
    assert m == text.strip().upper() and str(m) == m.value and f"{m}" == m.value


def test_http_method_members() -> None:
    assert [m.value for m in HttpMethod] == ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD",
                                             "OPTIONS"]
    with pytest.raises(ValueError):
        HttpMethod("TRACE")
    with pytest.raises(ValueError):
        HttpMethod(1)
