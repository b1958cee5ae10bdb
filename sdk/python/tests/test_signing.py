"""sign_envelope: the documented layout, a vector shared with the C and
TypeScript signers (tests/unit/test_envsig.c), and its argument checks."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest

from countersign import SIGNATURE_HEADER, sign_envelope

SECRET = "0123456789abcdef" * 4
KID = "csk_00112233aabbccdd"
VALUE = b'{"request_id":"r1","agent":"bot1"}'
VECTOR = "2ea8549c31b92616b700405b319ad33e82a9b21ec01dea7f5ca8362fe651330a"


def test_vector_shared_with_the_c_signer() -> None:
    assert SIGNATURE_HEADER == "countersign-signature"
    assert sign_envelope(VALUE, KID, SECRET, timestamp=1700000000) == \
        f"t=1700000000,k={KID},v1={VECTOR}"
    assert sign_envelope(VALUE.decode(), KID, SECRET, timestamp=1700000000).endswith(VECTOR)


def test_default_timestamp_is_now_and_signed() -> None:
    before = int(time.time())
    header = sign_envelope(VALUE, KID, SECRET)
    parts = dict(p.split("=", 1) for p in header.split(","))
    assert before <= int(parts["t"]) <= int(time.time())
    want = hmac.new(SECRET.encode(), parts["t"].encode() + b"." + VALUE, hashlib.sha256).hexdigest()
    assert parts["v1"] == want and parts["k"] == KID


def test_another_value_or_key_changes_the_mac() -> None:
    base = sign_envelope(VALUE, KID, SECRET, timestamp=1700000000)
    assert sign_envelope(VALUE + b" ", KID, SECRET, timestamp=1700000000) != base
    assert sign_envelope(VALUE, KID, "f" * 64, timestamp=1700000000) != base
    assert sign_envelope(VALUE, KID, SECRET, timestamp=1700000001) != base


@pytest.mark.parametrize("kid,secret", [
    ("csk_00112233AABBCCDD", SECRET), ("ak_00112233aabbccdd", SECRET), (KID, SECRET[:-1]),
    (KID, SECRET.upper()), (KID, ""),
])
def test_malformed_key_or_secret_is_refused(kid: str, secret: str) -> None:
    with pytest.raises(ValueError):
        sign_envelope(VALUE, kid, secret)
