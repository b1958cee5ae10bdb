"""One poison message per kind: none of them stops ingest or publication (issue 12 §4).

Before this, a refused request whose dead letter was over the broker's message
size (a 900 KB reason) was never dead-lettered: ingest of every partition
stopped, and still after a restart. A result of a large provider response
(body capped at 1 MiB, so about 1.4 MB of JSON) never published and stayed in
the outbox forever (since migration 014: held the event slot forever). Here the operator made the topics smaller than the
default before the worker started (dead letters 400 kB, events and results
300 kB), so the limits Countersign honours can only have come from the
broker. Around each poison message ordinary requests go through; after a
restart of the worker too.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import httpx

from harness import System
from services import wait_for

DLQ_LIMIT = 400_000
OUT_LIMIT = 300_000


def test_one_poison_message_per_kind(system: System) -> None:
    s = system
    s.kafka.create_topics([s.topics["requests"]],
                          config={"message.timestamp.type": "LogAppendTime"})
    s.kafka.create_topics([s.topics["dlq"]], config={"max.message.bytes": str(DLQ_LIMIT)})
    s.kafka.create_topics([s.topics["events"], s.topics["results"]],
                          config={"max.message.bytes": str(OUT_LIMIT)})
    s.setup(mode="never", rules=[])
    huge = bytes(range(256)) * (30 * 4096)  # 30 MiB from the provider
    s.stub.program("/v1/refunds/huge", status=200, body=huge)
    api = s.api()
    key = s.api_key()
    worker = s.worker()

    def ok(rid: str) -> dict[str, Any]:
        return s.envelope(rid, amount=5, path=f"/v1/refunds/{rid}")

    # Kind 1: a refused request whose dead letter would be over the limit (900 KB reason).
    long_reason = ok("poison-reason")
    long_reason["reason"] = "r" * (900 * 1024)
    # Kind 2: a malformed message under a 600 KB Kafka key.
    big_key = b"k" * (600 * 1024)
    # Kind 3: a call whose provider answers with 30 MiB.
    s.produce(ok("before-1"), long_reason, ok("between-1"))
    s.kafka.produce(s.topics["requests"], big_key, b"{not json", s.signed(b"{not json"))
    s.produce(ok("between-2"), s.envelope("poison-huge", amount=5, path="/v1/refunds/huge"),
              ok("after-1"))
    for rid in ("before-1", "between-1", "between-2", "after-1"):
        s.wait_status(rid, "executed", timeout=60)
    huge_row = s.wait_status("poison-huge", "executed", timeout=120)
    assert huge_row["response_truncated"] is True

    # The dead letters: both written, both within the broker's limit.
    dead = s.topic("dlq", expect=2, timeout=60)
    assert len(dead) == 2, dead
    for m in dead:
        assert len(m["raw"]) + len((m["key"] or "").encode()) <= DLQ_LIMIT
    by_reason = {m["value"]["reason"]: m for m in dead}
    reason_dl = by_reason["invalid_request"]["value"]
    original = json.dumps(long_reason).encode()
    assert reason_dl["original_truncated"] is True
    assert reason_dl["original_size"] == len(original)
    assert reason_dl["original_sha256"] == hashlib.sha256(original).hexdigest()
    prefix = base64.b64decode(reason_dl["original_b64"])
    assert 200_000 < len(prefix) < len(original) and original.startswith(prefix)
    key_dl = by_reason["malformed_json"]
    assert key_dl["key"] == "sha256:" + hashlib.sha256(big_key).hexdigest()
    assert base64.b64decode(key_dl["value"]["original_b64"]) == b"{not json"

    # The results: every one published, the huge one cut to the limit and saying so.
    results: dict[str, dict[str, Any]] = {}

    def all_results() -> bool:
        for m in s.topic("results", timeout=10):
            assert len(m["raw"]) + len((m["key"] or "").encode()) <= OUT_LIMIT
            results[m["value"]["request_id"]] = m["value"]
        return {"before-1", "between-1", "between-2", "after-1", "poison-huge"} <= set(results)

    wait_for(all_results, 90, interval=1, what="every result published")
    cut = results["poison-huge"]
    assert cut["body_truncated"] is True and cut["status"] == "executed"
    stored = bytes(s.approval("poison-huge")["response_body"])
    assert 0 < len(stored) < len(huge) and huge.startswith(stored)
    assert cut["body_cut"]["body_bytes"] == len(stored)
    assert cut["body_cut"]["body_sha256"] == hashlib.sha256(stored).hexdigest()
    assert cut["body_cut"]["full_body"] == f"GET /v1/approvals/{huge_row['id']}/result"
    assert stored.startswith(base64.b64decode(cut["body_b64"]))
    s.wait_events_published(30)
    # The limits came from the broker.
    assert f"limited to {DLQ_LIMIT} bytes" in worker.text()
    assert f"limited to {OUT_LIMIT} bytes" in worker.text()
    # The API still gives the whole stored body.
    r = httpx.get(f"{api.url}/v1/approvals/{huge_row['id']}/result",  # type: ignore[attr-defined]
                  headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert r.status_code == 200 and base64.b64decode(r.json()["body_b64"]) == stored

    # After a restart nothing is stuck either.
    worker.stop()
    s.worker()
    s.produce(ok("after-restart"))
    s.wait_status("after-restart", "executed", timeout=60)
    assert len(s.topic("dlq", timeout=10)) == 2
