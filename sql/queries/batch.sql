-- Batches (lib/cs_batch.c). See sql/migrations/003_batches_reminders.sql.

-- name: batch_open
-- Creates the batch if it does not exist. $1 uid, $2 agent id, $3 batch id.
INSERT INTO batches (uid, agent_id, id) VALUES ($1::uuid, $2::uuid, $3::text)
ON CONFLICT (agent_id, id) DO NOTHING;

-- name: batch_lock
-- Locks the batch for the transaction that changes it. $1 agent id, $2 batch id.
SELECT uid, grant_id, policy_id, status, expected, members,
       (extract(epoch FROM expires_at) * 1000)::bigint AS expires_ms,
       expires_at <= clock_timestamp() AS expired
FROM batches WHERE agent_id = $1::uuid AND id = $2::text
FOR UPDATE;

-- name: batch_bind
-- The first member fixes the batch's grant, policy, approvers and window.
-- $1 uid, $2 grant, $3 policy id, $4 policy snapshot, $5 approvers (uuid[] as JSON),
-- $6 quorum, $7 expires (ms).
UPDATE batches SET grant_id = $2::text, policy_id = $3::text, policy = $4::jsonb,
    approvers = ARRAY(SELECT jsonb_array_elements_text($5::jsonb)::uuid), quorum = $6::int,
    expires_at = to_timestamp($7::bigint / 1000.0)
WHERE uid = $1::uuid AND grant_id IS NULL;

-- name: batch_add
-- Counts members just stored. $1 uid, $2 how many. Returns members, expected.
UPDATE batches SET members = members + $2::int WHERE uid = $1::uuid
RETURNING members, expected;

-- name: batch_seal
-- $1 uid, $2 count, $3 actor. Only an unsealed batch is sealed here. A batch
-- sealed before any member arrives expires after the longest window (30
-- days) unless a member brings its policy's window.
WITH u AS (
    UPDATE batches SET expected = $2::int, sealed_at = clock_timestamp(),
        expires_at = coalesce(expires_at, clock_timestamp() + interval '30 days')
    WHERE uid = $1::uuid AND expected IS NULL
    RETURNING uid, agent_id, members
), aud AS (
    INSERT INTO audit (actor, action, approval_id, detail)
    SELECT $3::text, 'batch.sealed', NULL,
           jsonb_build_object('batch_uid', u.uid, 'count', $2::int, 'members', u.members) FROM u
)
SELECT members FROM u;

-- name: batch_decidable
-- open -> decidable once the seal and every member are stored: the batch
-- digest is SHA-256 over the members' digests in request_id order. Returns
-- what the pending event and the links need. $1 uid, $2 actor.
WITH d AS (
    SELECT sha256(string_agg(a.digest, ''::bytea ORDER BY a.request_id)) AS digest
    FROM approvals a JOIN batches b ON a.agent_id = b.agent_id AND a.batch_id = b.id
    WHERE b.uid = $1::uuid
), u AS (
    UPDATE batches b SET status = 'decidable', digest = d.digest, decidable_at = clock_timestamp()
    FROM d WHERE b.uid = $1::uuid AND b.status = 'open' AND b.members = b.expected
    RETURNING b.*
), nt AS (
    INSERT INTO notifications (batch_uid, approver_id, recipient_id, kind, channel)
    SELECT u.uid, s.slot, p.id, 'request', ch
    FROM u CROSS JOIN LATERAL unnest(u.approvers) AS s(slot)
    JOIN approvers p ON p.id = cs_link_holder(s.slot)
    CROSS JOIN LATERAL cs_channels(p) AS ch
    WHERE p.disabled_at IS NULL
), aud AS (
    INSERT INTO audit (actor, action, approval_id, detail)
    SELECT $2::text, 'batch.decidable', NULL, jsonb_build_object(
        'batch_uid', u.uid, 'batch_id', u.id, 'members', u.members,
        'digest', encode(u.digest, 'hex'))
    FROM u
)
SELECT u.uid, u.id, u.agent_id, encode(u.digest, 'hex') AS digest_hex,
       (extract(epoch FROM u.expires_at) * 1000)::bigint AS expires_ms, u.members, u.grant_id
FROM u;

-- name: batch_links
-- The approver slots of a batch with who holds each link now. $1 uid.
SELECT s.slot, cs_link_holder(s.slot) AS holder,
       p.name, (extract(epoch FROM b.expires_at) * 1000)::bigint AS expires_ms
FROM batches b CROSS JOIN LATERAL unnest(b.approvers) AS s(slot)
JOIN approvers p ON p.id = s.slot
WHERE b.uid = $1::uuid;

-- name: batch_event
-- The event telling consumers a batch is decidable (its page, its approvers). $1 key,
-- $2 payload.
SELECT cs_emit('events', $1::text, $2::jsonb) AS lsn;

-- name: batch_vote_lock
-- Locks a batch for a vote. $1 uid, $2 approver slot.
SELECT status, agent_id, quorum, expires_at <= clock_timestamp() AS expired,
       $2::uuid = ANY (approvers) AS is_approver,
       encode(digest, 'hex') AS digest_hex, id
FROM batches WHERE uid = $1::uuid
FOR UPDATE;

-- name: batch_vote_insert
-- $1 uid, $2 approver, $3 cast_by, $4 decision, $5 except (text[] as JSON), $6 reason,
-- $7 actor. Returns (approve votes counted, inserted 0|1).
WITH v AS (
    INSERT INTO batch_votes (batch_uid, approver_id, cast_by, decision, denied_items, reason)
    VALUES ($1::uuid, $2::uuid, $3::uuid, $4::text,
            ARRAY(SELECT jsonb_array_elements_text($5::jsonb)), $6::text)
    ON CONFLICT DO NOTHING
    RETURNING batch_uid
), aud AS (
    INSERT INTO audit (actor, action, approval_id, detail)
    SELECT $7::text, 'batch.vote.' || $4::text, NULL, jsonb_strip_nulls(jsonb_build_object(
        'batch_uid', $1::uuid, 'approver_id', $2::uuid, 'cast_by', $3::uuid,
        'denied_items', $5::jsonb, 'reason', $6::text,
        'on_behalf_of', CASE WHEN $2::uuid <> $3::uuid THEN $2::uuid END))
    FROM v
)
SELECT (SELECT count(*) FROM batch_votes WHERE batch_uid = $1::uuid AND decision = 'approve')
       + (SELECT count(*) FROM v WHERE $4::text = 'approve') AS approvals,
       (SELECT count(*) FROM v) AS inserted;

-- name: batch_decide
-- decidable -> decided, and each pending member -> approved, or denied when
-- the decision is a denial or the member is in an approval's except list.
-- Members already cancelled or expired are left as they are. $1 uid,
-- $2 'approved' | 'denied', $3 decided_by, $4 reason, $5 actor.
WITH b AS (
    UPDATE batches SET status = 'decided', decided_at = clock_timestamp(),
        decided_by = $3::text, decision = $2::text
    WHERE uid = $1::uuid AND status = 'decidable' AND expires_at > clock_timestamp()
    RETURNING uid, agent_id, id
), x AS (
    SELECT coalesce(array_agg(DISTINCT e), '{}') AS denied
    FROM batch_votes v CROSS JOIN LATERAL unnest(v.denied_items) AS e
    WHERE v.batch_uid = $1::uuid AND v.decision = 'approve'
), u AS (
    UPDATE approval_states a SET
        status = CASE WHEN $2::text = 'denied' OR r.request_id = ANY (x.denied)
                      THEN 'denied' ELSE 'approved' END,
        decided_at = clock_timestamp(), decided_by = $3::text,
        decision_reason = CASE WHEN $2::text = 'denied' OR r.request_id = ANY (x.denied)
                               THEN $4::text END
    FROM b, x, approval_requests r
    WHERE r.agent_id = b.agent_id AND r.batch_id = b.id AND a.id = r.id
      AND a.status = 'pending' AND a.expires_at > clock_timestamp()
    RETURNING cs_approval(r, a) AS a
), aud AS (
    INSERT INTO audit (actor, action, approval_id, detail)
    SELECT $5::text, 'approval.' || (u.a).status, (u.a).id, jsonb_strip_nulls(jsonb_build_object(
        'decided_by', $3::text, 'reason', (u.a).decision_reason, 'batch_uid', $1::uuid))
    FROM u
    UNION ALL
    SELECT $5::text, 'batch.' || $2::text, NULL,
           jsonb_build_object('batch_uid', $1::uuid, 'decided_by', $3::text,
                              'denied_items', (SELECT cardinality(denied) FROM x))
    FROM b
), ob AS MATERIALIZED (
    SELECT cs_emit_all('events', string_agg(cs_entry((u.a).id::text, cs_event_rec(u.a)), ''))
    FROM u
    UNION ALL
    SELECT cs_emit_all('results', string_agg(cs_entry((u.a).id::text, cs_result_rec(u.a)), ''))
    FROM u WHERE (u.a).status = 'denied'
)
SELECT (SELECT count(*) FROM b) AS batches,
       count(*) FILTER (WHERE (u.a).status = 'approved') AS approved,
       count(*) FILTER (WHERE (u.a).status = 'denied') AS denied
FROM u WHERE (SELECT count(*) FROM ob) > 0;

-- name: batch_status
-- $1 agent id (NULL: any), $2 batch id or uid text, $3 by uid (bool).
SELECT b.uid, b.id, b.status, b.expected, b.members, encode(b.digest, 'hex') AS digest_hex,
       (extract(epoch FROM b.created_at) * 1000)::bigint AS created_ms,
       (extract(epoch FROM b.expires_at) * 1000)::bigint AS expires_ms,
       (extract(epoch FROM b.decided_at) * 1000)::bigint AS decided_ms, b.decided_by, b.decision,
       (extract(epoch FROM b.finished_at) * 1000)::bigint AS finished_ms, b.grant_id, b.policy_id,
       coalesce((SELECT jsonb_object_agg(s, n) FROM (
           SELECT a.status AS s, count(*) AS n FROM approvals a
           WHERE a.agent_id = b.agent_id AND a.batch_id = b.id GROUP BY a.status) t), '{}')::text AS counts_json,
       ag.name, b.policy->>'amount_field' AS amount_field, b.quorum,
       (SELECT count(*) FROM batch_votes v WHERE v.batch_uid = b.uid AND v.decision = 'approve') AS approvals,
       b.agent_id
FROM batches b JOIN agents ag ON ag.id = b.agent_id
WHERE ($3::boolean AND b.uid::text = $2::text)
   OR (NOT $3::boolean AND b.agent_id = $1::uuid AND b.id = $2::text);

-- name: batch_summary
-- Totals for the batch page: the sum of the policy's amount field over the
-- members' JSON bodies, and counts per host and method. $1 uid.
SELECT coalesce(sum(CASE WHEN b.policy->>'amount_field' IS NOT NULL
                              AND jsonb_typeof(x.doc #> string_to_array(b.policy->>'amount_field', '.')) = 'number'
                         THEN (x.doc #> string_to_array(b.policy->>'amount_field', '.'))::text::numeric END), 0)::text AS total_amount,
       (SELECT jsonb_object_agg(k, n)::text FROM (
            SELECT a2.method || ' ' || substring(a2.url FROM '^[a-z]+://[^/]+') AS k, count(*) AS n
            FROM approvals a2 WHERE a2.agent_id = b.agent_id AND a2.batch_id = b.id GROUP BY 1) t) AS targets_json
FROM batches b
JOIN approvals a ON a.agent_id = b.agent_id AND a.batch_id = b.id
CROSS JOIN LATERAL (SELECT CASE WHEN convert_from(a.body, 'UTF8') ~ '^\s*\{' THEN convert_from(a.body, 'UTF8')::jsonb END AS doc) x
WHERE b.uid = $1::uuid
GROUP BY b.uid, b.agent_id, b.id, b.policy;

-- name: batch_items
-- One page of members in request_id order. $1 uid, $2 offset, $3 limit.
SELECT a.request_id, a.status, a.method, a.url, encode(a.digest, 'hex') AS digest_hex,
       CASE WHEN b.policy->>'amount_field' IS NOT NULL AND convert_from(a.body, 'UTF8') ~ '^\s*\{'
            THEN convert_from(a.body, 'UTF8')::jsonb #>> string_to_array(b.policy->>'amount_field', '.')
       END AS amount,
       a.reason, a.id
FROM batches b JOIN approvals a ON a.agent_id = b.agent_id AND a.batch_id = b.id
WHERE b.uid = $1::uuid
ORDER BY a.request_id
OFFSET $2::int LIMIT $3::int;

-- name: batch_finish
-- Batches whose members are all terminal (or that can no longer become
-- decidable) get their summary on the results topic, once. $1 limit, $2 actor.
WITH c AS (
    SELECT b.uid FROM batches b
    WHERE b.finished_at IS NULL
      AND (b.status = 'decided' OR b.expires_at <= clock_timestamp())
      AND NOT EXISTS (SELECT 1 FROM approvals a
                      WHERE a.agent_id = b.agent_id AND a.batch_id = b.id
                        AND a.status IN ('pending', 'approved', 'executing'))
    ORDER BY b.created_at LIMIT $1::int
    FOR UPDATE SKIP LOCKED
), u AS (
    UPDATE batches b SET finished_at = clock_timestamp(),
        status = CASE WHEN b.status = 'decided' THEN 'decided' ELSE 'expired' END
    FROM c WHERE b.uid = c.uid
    RETURNING b.*
), s AS (
    SELECT u.uid, coalesce(jsonb_object_agg(t.status, t.n) FILTER (WHERE t.status IS NOT NULL),
                           '{}') AS counts
    FROM u LEFT JOIN LATERAL (
        SELECT a.status, count(*) AS n FROM approvals a
        WHERE a.agent_id = u.agent_id AND a.batch_id = u.id GROUP BY a.status) t ON true
    GROUP BY u.uid
), ob AS MATERIALIZED (
    SELECT cs_emit_all('results', string_agg(cs_entry(
        'batch:' || u.agent_id || ':' || u.id, jsonb_strip_nulls(jsonb_build_object(
        'event_id', 'batch:' || u.uid || ':' || u.status,
        'type', 'batch.summary', 'batch_id', u.id, 'batch_uid', u.uid, 'agent_id', u.agent_id,
        'status', u.status, 'expected', u.expected, 'members', u.members,
        'digest', encode(u.digest, 'hex'), 'decided_by', u.decided_by,
        'reason', CASE WHEN u.status = 'expired' THEN CASE
            WHEN u.expected IS NULL THEN 'the batch was never sealed'
            WHEN u.members <> u.expected THEN format('sealed for %s members but %s arrived',
                                                     u.expected, u.members)
            ELSE 'not decided within the approval window' END END,
        'counts', s.counts, 'at', clock_timestamp()))::text), ''))
    FROM u JOIN s ON s.uid = u.uid
), aud AS (
    INSERT INTO audit (actor, action, approval_id, detail)
    SELECT $2::text, 'batch.finished', NULL,
           jsonb_build_object('batch_uid', u.uid, 'status', u.status, 'counts', s.counts)
    FROM u JOIN s ON s.uid = u.uid
)
SELECT count(*) AS changed FROM u WHERE (SELECT count(*) FROM ob) > 0;

-- name: batch_member_exists
-- $1 agent id, $2 request id.
SELECT EXISTS (SELECT 1 FROM approvals WHERE agent_id = $1::uuid AND request_id = $2::text) AS found;

-- name: batch_unknown_items
-- The request ids of $2 (JSON array) that are not members of batch $1,
-- comma-separated, or NULL when all are.
SELECT string_agg(x, ', ') AS unknown FROM jsonb_array_elements_text($2::jsonb) AS x
WHERE NOT EXISTS (SELECT 1 FROM batches b JOIN approvals a
                      ON a.agent_id = b.agent_id AND a.batch_id = b.id
                  WHERE b.uid = $1::uuid AND a.request_id = x);
