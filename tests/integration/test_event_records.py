"""Events rendered by the relay are the documents Postgres used to build (migration 016).

Transitions now emit a row literal of an event's fields (cs_event_rec, cs_result_rec,
cs_created_rec) and the relay renders the JSON (lib/cs_eventrec.c). Here the same
approval row goes out both ways in one statement -- as a record, and as the JSON
cs_event() / cs_result() build -- through the real relay and broker, for rows of every
state a real run produces plus copies with hostile text in every free-text field; each
rendered document must equal Postgres's.
"""

from __future__ import annotations

from harness import System

# The same row, both ways, in one statement (one statement_timestamp for "at").
EMIT_BOTH = """
SELECT count(cs_emit('events', 'rec:' || (x).id, cs_event_rec(x)))
     + count(cs_emit('events', 'json:' || (x).id, cs_event(x)))
     + count(cs_emit('results', 'rec:' || (x).id, cs_result_rec(x)))
     + count(cs_emit('results', 'json:' || (x).id, cs_result(x)))
     + count(cs_emit('events', 'rec-created:' || (x).id, cs_created_rec(x, %s)))
     + count(cs_emit('events', 'json-created:' || (x).id,
             CASE WHEN (x).status = 'pending'
                  THEN cs_event(x) || jsonb_strip_nulls(jsonb_build_object(
                       'approval_url', %s::text, 'approvers', to_jsonb((x).approvers)))
                  ELSE cs_event(x) END))
FROM (SELECT ROW(t.*)::approvals AS x FROM {table} t) s
"""

HOSTILE = """
CREATE TABLE variants AS SELECT * FROM approvals;
INSERT INTO variants SELECT * FROM approvals;
UPDATE variants SET id = gen_random_uuid(),
    decided_by = E'approver:"a, (b)\\\\c"\\n',
    decision_reason = E'no \\\\ way, "quoted" (parens)\\ttab\\nnew line \u00e9 \u2603 \U0001F600',
    error_message = '', error_code = 'timeout',
    response_headers = '{"X-Q": "a \\"b\\" \\\\ c", "Empty": ""}',
    response_body = convert_to(repeat('{"k":"v, (x)"}', 5000), 'UTF8'),
    response_truncated = true,
    executed_at = date_trunc('second', now())
WHERE ctid IN (SELECT ctid FROM variants LIMIT (SELECT count(*) FROM approvals));
UPDATE variants SET id = gen_random_uuid(), batch_id = '', decided_by = NULL,
    approvers = '{}', response_headers = '{}', response_body = ''
WHERE decided_by IS DISTINCT FROM E'approver:"a, (b)\\\\c"\\n';
"""


def test_rendered_events_equal_postgres_documents(system: System) -> None:
    system.setup()
    system.worker()
    system.stub.program("/v1/refunds", status=201, body=b'{"refund":"re_1"}',
                        headers={"Content-Type": "application/json", "X-Provider": "stub, \"q\""})
    system.produce(system.envelope("exec"), system.envelope("deny"), system.envelope("wait"),
                   system.envelope("cancel"))
    ids = {r: str(system.wait_status(r, "pending")["id"]) for r in ("exec", "deny", "wait", "cancel")}
    system.cli_json("approval", "approve", ids["exec"], "--as", "alice")
    system.cli_json("approval", "deny", ids["deny"], "--as", "alice", "--reason",
                    'too much, "really" (see \\ notes)\nbye')
    system.sql("UPDATE approval_states SET status = 'cancelled', decided_at = clock_timestamp(), "
               "decided_by = 'agent' WHERE id = %s", ids["cancel"])
    system.wait_status("exec", "executed")
    system.wait_events_published(30)
    before = {t: len(system.topic(t)) for t in ("events", "results")}

    rows = int(system.sql("SELECT count(*) FROM approvals")[0][0])
    with_states = {s for (s,) in system.sql("SELECT DISTINCT status FROM approvals")}
    assert {"executed", "denied", "pending", "cancelled"} <= with_states, with_states
    url = "http://127.0.0.1:8080/status/tok\"en,(x)"
    n = system.sql(EMIT_BOTH.format(table="approvals"), url, url)[0][0]
    for stmt in HOSTILE.strip().split(";\n"):
        system.sql(stmt)
    n += system.sql(EMIT_BOTH.format(table="variants"), url, url)[0][0]
    assert n == 6 * rows * 3, (n, rows)
    system.wait_events_published(60)

    compared = 0
    for topic, pairs in (("events", (("rec:", "json:"), ("rec-created:", "json-created:"))),
                         ("results", (("rec:", "json:"),))):
        msgs = system.topic(topic, expect=before[topic] + (4 if topic == "events" else 2) * rows * 3,
                            timeout=60)
        by_key = {m["key"]: m for m in msgs}
        for rec_prefix, json_prefix in pairs:
            keys = [k for k in by_key if k and k.startswith(rec_prefix)]
            assert len(keys) == rows * 3, (topic, rec_prefix, len(keys))
            for k in keys:
                rendered = by_key[k]
                want = by_key[json_prefix + k[len(rec_prefix):]]
                assert rendered["raw"].startswith(b"{"), rendered["raw"][:80]
                assert rendered["value"] == want["value"], (topic, k, rendered["value"], want["value"])
                compared += 1
    assert compared == 3 * rows * 3
