-- pgbench_insert_full.sql -- like pgbench_insert.sql, plus what the ingest's
-- insert_approvals statement writes with every approval in the same
-- transaction: its audit entry and its event (cs_emit of cs_created_rec, a
-- logical decoding message since migration 014, a record since 016). 100 per
-- transaction. The ceiling for the ingest's full write set.
WITH ins AS (
    INSERT INTO approvals AS x (id, request_id, agent_id, grant_id, policy_id, method, url, headers,
        body, reason, context, digest, policy, approvers, quorum, status, expires_at)
    SELECT encode(overlay(uuid_send(gen_random_uuid()) PLACING
               substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
               FROM 1 FOR 6), 'hex')::uuid,
           'pgb-' || md5(random()::text), a.id, 'stripe', 'pay', 'POST',
           'http://127.0.0.1:9/v1/refunds', '{}'::jsonb,
           convert_to('{"amount":500,"currency":"eur","charge":"ch_pgb"}', 'UTF8'),
           'benchmark refund', '{"ticket":1}'::jsonb, sha256(convert_to(g::text || random()::text, 'UTF8')),
           '{"id":"pay","mode":"always","quorum":1,"window_seconds":3600,"exec_timeout_ms":10000,"max_attempts":3,"idempotency_keys":true}'::jsonb,
           ARRAY[p.id], 1, 'pending', now() + interval '1 hour'
    FROM generate_series(1, 100) g, (SELECT id FROM agents LIMIT 1) a, (SELECT id FROM approvers LIMIT 1) p
    RETURNING x
), aud AS (
    INSERT INTO audit (actor, action, approval_id, detail)
    SELECT 'agent:bot1', 'approval.created', (i.x).id, jsonb_build_object(
        'status', (i.x).status, 'request_id', (i.x).request_id, 'grant_id', (i.x).grant_id,
        'policy_id', (i.x).policy_id, 'method', (i.x).method, 'url', (i.x).url,
        'digest', encode((i.x).digest, 'hex'), 'reason', (i.x).reason, 'quorum', (i.x).quorum)
    FROM ins i
)
SELECT count(cs_emit('events', (i.x).id::text,
                    cs_created_rec(i.x, 'http://127.0.0.1:8080/status/pgbench'))) FROM ins i;
