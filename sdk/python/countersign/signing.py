"""Signing request envelopes for Countersign's Kafka requests topic.

Countersign's worker accepts a record on ``<prefix>.requests`` only when it
carries the header ``countersign-signature: t=<unix>,k=<key id>,v1=<hex>``,
where ``v1`` is HMAC-SHA256 over ``b"<t>." + value`` keyed with the agent's
signing secret (``countersign agent key create AGENT`` prints the key id and
the secret once). Sign the exact bytes you produce, just before producing:
the worker refuses a signature whose ``t`` is more than its replay window
(5 minutes by default) away from the broker's time.

    from confluent_kafka import Producer
    from countersign import SIGNATURE_HEADER, sign_envelope

    value = json.dumps(envelope).encode()
    producer.produce("countersign.requests", key=envelope["request_id"], value=value,
                     headers=[(SIGNATURE_HEADER, sign_envelope(value, key_id, secret))])
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

SIGNATURE_HEADER = "countersign-signature"
_KEY_ID = re.compile(r"csk_[0-9a-f]{16}")
_SECRET = re.compile(r"[0-9a-f]{64}")


def sign_envelope(value: bytes | str, key_id: str, secret: str,
                  timestamp: int | None = None) -> str:
    """The ``countersign-signature`` header value for record value ``value``.

    ``value`` is the record's bytes exactly as produced (a str is UTF-8
    encoded); ``timestamp`` (unix seconds) defaults to now. Raises
    ValueError on a malformed key id or secret.
    """
    if not _KEY_ID.fullmatch(key_id):
        raise ValueError("key_id must be csk_ followed by 16 lower-case hex digits")
    if not _SECRET.fullmatch(secret):
        raise ValueError("secret must be the 64 lower-case hex digits Countersign printed")
    raw = value.encode() if isinstance(value, str) else bytes(value)
    t = str(int(time.time()) if timestamp is None else int(timestamp))
    mac = hmac.new(secret.encode(), t.encode() + b"." + raw, hashlib.sha256).hexdigest()
    return f"t={t},k={key_id},v1={mac}"
