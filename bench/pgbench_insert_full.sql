-- pgbench_insert_full.sql -- like pgbench_insert.sql, plus what the ingest's
-- insert_approvals statement writes with every approval in the same
-- transaction: its audit entry (the status, request id, digest and batch:
-- what the immutable request row does not prove alone) and its event
-- (cs_created_rec, a record since migration 016, in a logical decoding
-- message since 014: one per statement since 020, cs_emit_all of cs_entry's).
-- 100 per transaction. The ceiling for the ingest's full write set.
WITH src AS (
    SELECT encode(overlay(uuid_send(gen_random_uuid()) PLACING
               substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
               FROM 1 FOR 6), 'hex')::uuid AS id,
           'pgb-' || md5(random()::text) AS request_id, a.id AS agent_id, p.id AS approver,
           sha256(convert_to(g::text || random()::text, 'UTF8')) AS digest
    FROM generate_series(1, 100) g, (SELECT id FROM agents LIMIT 1) a, (SELECT id FROM approvers LIMIT 1) p
), req AS (
    INSERT INTO approval_requests AS q (id, request_id, agent_id, grant_id, policy_id, method,
        url, headers, body, reason, context, digest, policy)
    SELECT id, request_id, agent_id, 'stripe', 'pay', 'POST', 'http://127.0.0.1:9/v1/refunds',
           '{}'::jsonb, convert_to('{"amount":500,"currency":"eur","charge":"ch_pgb"}', 'UTF8'),
           'benchmark refund', '{"ticket":1}'::jsonb, digest,
           '{"id":"pay","mode":"always","quorum":1,"window_seconds":3600,"exec_timeout_ms":10000,"max_attempts":3,"idempotency_keys":true}'::jsonb
    FROM src
    RETURNING q
), st AS (
    INSERT INTO approval_states AS s (id, grant_id, approvers, quorum, status, expires_at)
    SELECT id, 'stripe', ARRAY[approver], 1, 'pending', now() + interval '1 hour' FROM src
    RETURNING s
), ins AS (
    SELECT cs_approval(req.q, st.s) AS x FROM req JOIN st ON (st.s).id = (req.q).id
), aud AS (
    INSERT INTO audit (actor, action, approval_id, detail)
    SELECT 'agent:bot1', 'approval.created', (i.x).id, jsonb_build_object(
        'status', (i.x).status, 'request_id', (i.x).request_id,
        'digest', encode((i.x).digest, 'hex'), 'batch_id', (i.x).batch_id)
    FROM ins i
)
SELECT cs_emit_all('events', string_agg(cs_entry((i.x).id::text,
                   cs_created_rec(i.x, 'http://127.0.0.1:8080/status/pgbench')), '')) FROM ins i;
