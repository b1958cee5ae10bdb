-- pgbench_insert.sql -- the ingest ceiling: one transaction inserts 100
-- approvals (the real tables, their indexes and triggers: the request row
-- and its state row, migration 019) shaped like what the ingest stores:
-- time-ordered ids (like UUIDv7), a ~200-byte request, a policy snapshot,
-- one approver. Run by bench/bench.py (scenario pgbench) against a migrated
-- database that has one agent and one approver.
WITH src AS (
    SELECT encode(overlay(uuid_send(gen_random_uuid()) PLACING
               substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
               FROM 1 FOR 6), 'hex')::uuid AS id,
           'pgb-' || md5(random()::text) AS request_id, a.id AS agent_id, p.id AS approver,
           sha256(convert_to(g::text || random()::text, 'UTF8')) AS digest
    FROM generate_series(1, 100) g, (SELECT id FROM agents LIMIT 1) a, (SELECT id FROM approvers LIMIT 1) p
), req AS (
    INSERT INTO approval_requests (id, request_id, agent_id, grant_id, policy_id, method, url,
        headers, body, reason, context, digest, policy)
    SELECT id, request_id, agent_id, 'stripe', 'pay', 'POST', 'http://127.0.0.1:9/v1/refunds',
           '{}'::jsonb, convert_to('{"amount":500,"currency":"eur","charge":"ch_pgb"}', 'UTF8'),
           'benchmark refund', '{"ticket":1}'::jsonb, digest,
           '{"id":"pay","mode":"always","quorum":1,"window_seconds":3600,"exec_timeout_ms":10000,"max_attempts":3,"idempotency_keys":true}'::jsonb
    FROM src
)
INSERT INTO approval_states (id, grant_id, approvers, quorum, status, expires_at)
SELECT id, 'stripe', ARRAY[approver], 1, 'pending', now() + interval '1 hour' FROM src;
