-- outbox_insert.sql -- the ingest write set before migration 014: 100 approvals, their
-- audit entries and an outbox row each (table outbox_old, as 001 made it).
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
INSERT INTO outbox_old (topic, key, payload)
SELECT 'events', (i.x).id::text, cs_event(i.x) FROM ins i;
