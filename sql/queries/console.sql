-- The operator console (api/console*.c): every statement its pages run.
-- Times are returned as milliseconds since the epoch. Lists page by keyset
-- on the approval id (UUIDv7: creation order), each filter led by an index
-- of migration 008 (status, grant, agent) or the primary key; a time range
-- is an id range (cs_uuid7_floor). Kept in this one file so the write-path
-- rework (approvals split into request and state)
-- only has to adapt it here.

-- name: console_custom_plans
-- The list's filters are optional ($n IS NULL OR ...): a plan made for the
-- values at hand lets each filter use its index. Inside the list's transaction.
SET LOCAL plan_cache_mode = force_custom_plan;

-- name: console_counts
-- The overview's head: approvals waiting by status; terminal ones in the
-- last hour by status; the oldest pending approval; the longest-running
-- execution (since its latest start, from the audit log) and its lease owner.
SELECT (SELECT count(*) FROM approval_states WHERE status = 'pending') AS pending,
       (SELECT count(*) FROM approval_states WHERE status = 'approved') AS approved,
       (SELECT count(*) FROM approval_states WHERE status = 'executing') AS executing,
       (SELECT count(*) FILTER (WHERE status = 'executed') || ',' ||
               count(*) FILTER (WHERE status = 'failed') || ',' ||
               count(*) FILTER (WHERE status = 'denied') || ',' ||
               count(*) FILTER (WHERE status = 'expired') || ',' ||
               count(*) FILTER (WHERE status = 'cancelled')
        FROM approval_states
        WHERE status IN ('executed', 'failed', 'denied', 'expired', 'cancelled')
          AND updated_at > now() - interval '1 hour') AS finished_csv,
       o.id AS oldest_id, (extract(epoch FROM o.created_at) * 1000)::bigint AS oldest_created_ms,
       x.id AS stuck_id,
       x.lease_owner, (extract(epoch FROM x.started) * 1000)::bigint AS stuck_started_ms,
       (SELECT count(*) FROM dead_letters WHERE at > now() - interval '1 hour') AS dead_letters_hour
FROM (SELECT 1) one
LEFT JOIN LATERAL (
    SELECT id, created_at FROM approvals WHERE status = 'pending'
    ORDER BY status, id LIMIT 1) o ON true
LEFT JOIN LATERAL (
    SELECT a.id, a.lease_owner,
           (SELECT max(u.at) FROM audit u
            WHERE u.approval_id = a.id AND u.action = 'approval.executing') AS started
    FROM approval_states a WHERE a.status = 'executing'
    ORDER BY started NULLS LAST LIMIT 1) x ON true;

-- name: console_series
-- Throughput and latency in $2 buckets over the last $1 seconds, oldest
-- first: requests in (each bucket's id range), decisions, executions
-- (executed and failed), failures, and decision -> call p50 and p99 in ms.
-- Terminal rows are found by approvals_terminal (updated_at), rows still
-- moving by status; each part is counted per bucket before the join, so
-- only the executed calls' latencies are sorted.
WITH p AS (
    SELECT now() - make_interval(secs => $1::int) AS since, $1::float8 / $2::int AS width
), moved AS (
    SELECT status, decided_at, coalesce(executed_at, updated_at) AS done_at FROM approval_states
    WHERE status IN ('executed', 'failed', 'denied', 'expired', 'cancelled')
      AND updated_at > now() - make_interval(secs => $1::int)
    UNION ALL
    SELECT status, decided_at, NULL FROM approval_states
    WHERE status IN ('approved', 'executing')
      AND decided_at > now() - make_interval(secs => $1::int)
), ins AS (
    -- Each bucket is an id range: counted from the primary key alone.
    SELECT g.b, (SELECT count(*) FROM approval_requests a
                 WHERE a.id >= cs_uuid7_floor(p.since + make_interval(secs => g.b * p.width))
                   AND a.id < cs_uuid7_floor(p.since + make_interval(secs => (g.b + 1) * p.width)))
                AS n
    FROM generate_series(0, $2::int - 1) AS g(b), p
), dec AS (
    SELECT floor(extract(epoch FROM m.decided_at - p.since) / p.width)::int AS b, count(*) AS n
    FROM moved m, p
    WHERE m.decided_at >= p.since AND m.status NOT IN ('expired', 'cancelled')
    GROUP BY 1
), exe AS (
    SELECT floor(extract(epoch FROM m.done_at - p.since) / p.width)::int AS b, count(*) AS n,
           count(*) FILTER (WHERE m.status = 'failed') AS failed,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM m.done_at - m.decided_at))
               FILTER (WHERE m.status = 'executed') * 1000 AS p50,
           percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM m.done_at - m.decided_at))
               FILTER (WHERE m.status = 'executed') * 1000 AS p99
    FROM moved m, p
    WHERE m.status IN ('executed', 'failed') AND m.done_at >= p.since
    GROUP BY 1
)
SELECT g.b, coalesce(ins.n, 0) AS received, coalesce(dec.n, 0) AS decided,
       coalesce(exe.n, 0) AS finished, coalesce(exe.failed, 0) AS failed,
       coalesce(exe.p50, 0)::bigint AS p50_ms, coalesce(exe.p99, 0)::bigint AS p99_ms
FROM generate_series(0, $2::int - 1) AS g(b)
LEFT JOIN ins ON ins.b = g.b
LEFT JOIN dec ON dec.b = g.b
LEFT JOIN exe ON exe.b = g.b
ORDER BY g.b;

-- name: console_failures
-- Failed calls of the last $1 seconds by error code, most first.
SELECT coalesce(error_code, 'unknown') AS error_code, count(*) AS n FROM approval_states
WHERE status IN ('executed', 'failed', 'denied', 'expired', 'cancelled')
  AND status = 'failed' AND updated_at > now() - make_interval(secs => $1::int)
GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 20;

-- name: console_list
-- The approvals list, newest first, $10 rows older than cursor $9 (an
-- approval id; NULL: from the newest). Filters, each NULL for any:
-- $1 status, $2 agent name, $3 grant, $4 policy, $5 approver name (one of
-- its slots), $6 batch id, $7 created at or after, $8 created before,
-- $11 the approval ids to keep (console_search's answer).
SELECT a.id, a.status, g.name, a.grant_id, a.policy_id, a.request_id, a.method, a.url,
       (extract(epoch FROM a.created_at) * 1000)::bigint AS created_ms, a.decided_by, a.error_code,
       a.batch_id, a.attempts, (extract(epoch FROM a.expires_at) * 1000)::bigint AS expires_ms,
       (extract(epoch FROM a.decided_at) * 1000)::bigint AS decided_ms,
       (extract(epoch FROM a.executed_at) * 1000)::bigint AS executed_ms, a.response_status,
       encode(a.digest, 'hex') AS digest_hex
FROM approvals a JOIN agents g ON g.id = a.agent_id
WHERE ($1::text IS NULL OR a.status = $1::text)
  AND ($2::text IS NULL OR a.agent_id = (SELECT id FROM agents WHERE name = $2::text))
  AND ($3::text IS NULL OR a.grant_id = $3::text)
  AND ($4::text IS NULL OR a.policy_id = $4::text)
  AND ($5::text IS NULL OR a.approvers @> ARRAY[(SELECT id FROM approvers WHERE name = $5::text)])
  AND ($6::text IS NULL OR a.batch_id = $6::text)
  AND ($7::timestamptz IS NULL OR a.id >= cs_uuid7_floor($7::timestamptz))
  AND ($8::timestamptz IS NULL OR a.id < cs_uuid7_floor($8::timestamptz))
  AND ($9::uuid IS NULL OR a.id < $9::uuid)
  AND ($11::uuid[] IS NULL OR a.id = ANY ($11::uuid[]))
ORDER BY a.id DESC
LIMIT $10::int;

-- name: console_search
-- The ids of the approvals whose id, request id or idempotency key is $1,
-- as an array for console_list's $11: the primary key, then each agent's
-- (agent_id, request_id) key, probed (no scan).
SELECT coalesce(array_agg(x.id), '{}')::text AS ids FROM (
    SELECT id FROM approval_requests
    WHERE id = CASE WHEN $1::text ~* '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$'
                    THEN $1::text::uuid END
    UNION
    SELECT a.id FROM agents g JOIN approval_requests a ON a.agent_id = g.id AND a.request_id = $1::text
) x;

-- name: console_approval
-- One approval for its timeline: the request as the approver saw it, its
-- state, and its outcome. $1 approval id.
SELECT a.id, a.status, g.name, a.grant_id, a.policy_id, a.request_id, a.method, a.url,
       a.headers::text, translate(encode(a.body, 'base64'), E'\n', '') AS body_b64, a.reason,
       a.context::text, encode(a.digest, 'hex') AS digest_hex,
       (extract(epoch FROM a.created_at) * 1000)::bigint AS oldest_created_ms,
       (extract(epoch FROM a.expires_at) * 1000)::bigint AS expires_ms, a.quorum,
       (SELECT string_agg(p.name, E'\n' ORDER BY p.name) FROM approvers p
        WHERE p.id = ANY (a.approvers)) AS approver_names,
       a.batch_id, (extract(epoch FROM a.decided_at) * 1000)::bigint AS decided_ms, a.decided_by,
       a.decision_reason, a.attempts, a.lease_owner,
       (extract(epoch FROM a.lease_expires_at) * 1000)::bigint AS lease_expires_ms,
       (extract(epoch FROM a.executed_at) * 1000)::bigint AS executed_ms, a.response_status,
       a.response_headers::text, translate(encode(a.response_body, 'base64'), E'\n', '') AS response_body_b64,
       a.response_truncated, a.error_code, a.error_message, a.policy::text,
       (SELECT b.uid FROM batches b WHERE b.agent_id = a.agent_id AND b.id = a.batch_id) AS batch_uid
FROM approvals a JOIN agents g ON g.id = a.agent_id
WHERE a.id = $1::uuid;

-- name: console_timeline
-- Everything that happened to approval $1, oldest first: each audit entry
-- with the seal that covers it (none yet: NULL), each vote with its passkey,
-- each notification with its delivery.
SELECT t.at_ms, t.kind, t.who, t.what, t.detail, t.seal_seq, t.seal_hash FROM (
    SELECT (extract(epoch FROM a.at) * 1000)::bigint AS at_ms, 'audit' AS kind, a.actor AS who,
           a.action AS what, a.detail::text AS detail, s.seq AS seal_seq,
           encode(s.hash, 'hex') AS seal_hash, a.id AS ord
    FROM audit a
    LEFT JOIN LATERAL (
        SELECT seq, hash FROM audit_seal
        WHERE to_txid > a.txid AND from_txid <= a.txid
        ORDER BY to_txid LIMIT 1) s ON true
    WHERE a.approval_id = $1::uuid
    UNION ALL
    SELECT (extract(epoch FROM v.created_at) * 1000)::bigint, 'vote', p.name,
           v.decision,
           jsonb_strip_nulls(jsonb_build_object(
               'cast_by', c.name, 'reason', v.reason,
               'passkey', CASE WHEN v.passkey_id IS NULL THEN 'none'
                               ELSE 'verified at vote: ' || k.name END))::text,
           NULL, NULL, 0
    FROM votes v JOIN approvers p ON p.id = v.approver_id JOIN approvers c ON c.id = v.cast_by
    LEFT JOIN passkeys k ON k.id = v.passkey_id
    WHERE v.approval_id = $1::uuid
    UNION ALL
    SELECT (extract(epoch FROM n.created_at) * 1000)::bigint, 'notification', p.name,
           n.kind || ' by ' || n.channel,
           jsonb_strip_nulls(jsonb_build_object(
               'status', n.status, 'attempts', n.attempts, 'last_error', n.last_error,
               'sent_at', n.sent_at))::text,
           NULL, NULL, n.id
    FROM notifications n JOIN approvers p ON p.id = n.recipient_id
    WHERE n.approval_id = $1::uuid
) t
ORDER BY t.at_ms, t.kind, t.ord
LIMIT 500;

-- name: console_batches
-- Batches, newest first, $2 of them created before $1 (NULL: from the newest),
-- with their members by status.
SELECT b.uid, g.name, b.id, b.status, b.grant_id, b.expected, b.members,
       (extract(epoch FROM b.created_at) * 1000)::bigint AS created_ms, b.decided_by, b.decision,
       (SELECT string_agg(s.status || ' ' || s.n, ', ' ORDER BY s.status) FROM (
            SELECT a.status, count(*) AS n FROM approvals a
            WHERE a.agent_id = b.agent_id AND a.batch_id = b.id GROUP BY a.status) s) AS status_counts,
       (extract(epoch FROM b.finished_at) * 1000)::bigint AS finished_ms
FROM batches b JOIN agents g ON g.id = b.agent_id
WHERE $1::timestamptz IS NULL OR b.created_at < $1::timestamptz
ORDER BY b.created_at DESC
LIMIT $2::int;

-- name: console_batch_summary
-- The summary the scheduler published for batch $1 (its batch.summary audit entry).
SELECT detail::text FROM audit
WHERE action = 'batch.summary' AND detail->>'batch_uid' = $1::text
ORDER BY id DESC LIMIT 1;

-- name: console_grants
-- Grants (never their secret), paused or not, with their call rate, error
-- rate, decision -> call latency over the approvals created in the last
-- day, and the calls approved and waiting to run (or running).
SELECT gr.id, gr.policy_id, gr.inject, array_to_string(gr.allowed_bases, ' ') AS allowed_bases,
       gr.idempotency_keys, gr.disabled_at IS NOT NULL AS disabled,
       (extract(epoch FROM gr.paused_at) * 1000)::bigint AS paused_ms, gr.paused_by,
       (SELECT string_agg(ag.name, ', ' ORDER BY ag.name) FROM grant_agents ga
        JOIN agents ag ON ag.id = ga.agent_id WHERE ga.grant_id = gr.id) AS agents,
       coalesce(st.calls, 0) AS calls, coalesce(st.failed, 0) AS failed, coalesce(st.p50, 0) AS p50,
       coalesce(st.p99, 0) AS p99,
       coalesce(st.waiting, 0) AS waiting
FROM grants gr
LEFT JOIN (
    SELECT grant_id,
           count(*) FILTER (WHERE status IN ('executed', 'failed')) AS calls,
           count(*) FILTER (WHERE status = 'failed') AS failed,
           (percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM executed_at - decided_at)
                * 1000) FILTER (WHERE status = 'executed'))::bigint AS p50,
           (percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM executed_at - decided_at)
                * 1000) FILTER (WHERE status = 'executed'))::bigint AS p99,
           count(*) FILTER (WHERE status IN ('approved', 'executing')) AS waiting
    FROM approval_states WHERE id >= cs_uuid7_floor(now() - interval '1 day')
    GROUP BY grant_id) st ON st.grant_id = gr.id
ORDER BY gr.id;

-- name: console_policies
SELECT p.id, p.mode, p.rules::text, p.quorum, p.window_seconds, p.exec_timeout_ms,
       p.max_attempts, p.require_passkey, p.link_mode,
       (SELECT string_agg(a.name || CASE WHEN pa.escalation THEN ' (escalation)' ELSE '' END,
                          ', ' ORDER BY pa.escalation, a.name)
        FROM policy_approvers pa JOIN approvers a ON a.id = pa.approver_id
        WHERE pa.policy_id = p.id) AS approvers,
       p.reminder_interval_s, p.escalate_after_s
FROM policies p ORDER BY p.id;

-- name: console_approvers
-- Approvers with their channels (which, not where), operator role, the
-- agent they operate, and live sessions and passkeys.
SELECT p.name AS approver_name, p.operator_role, g.name AS group_name,
       p.disabled_at IS NOT NULL AS disabled,
       concat_ws(', ', CASE WHEN p.email IS NOT NULL THEN 'email' END,
                 CASE WHEN p.slack_webhook_url IS NOT NULL THEN 'slack' END,
                 CASE WHEN p.webhook_url IS NOT NULL THEN 'webhook' END) AS channels,
       p.oidc_subject IS NOT NULL AS has_oidc,
       (SELECT count(*) FROM sessions s WHERE s.approver_id = p.id AND s.revoked_at IS NULL
          AND s.expires_at > now()) AS sessions,
       (SELECT count(*) FROM passkeys k WHERE k.approver_id = p.id AND k.revoked_at IS NULL) AS passkeys
FROM approvers p LEFT JOIN agents g ON g.id = p.agent_id
ORDER BY p.name;

-- name: console_delegations
-- Delegations not yet over (or revoked), soonest first.
SELECT a.name AS approver_name, d.name AS delegate_name,
       (extract(epoch FROM x.starts_at) * 1000)::bigint AS starts_ms,
       (extract(epoch FROM x.ends_at) * 1000)::bigint AS ends_ms,
       x.revoked_at IS NOT NULL AS revoked
FROM delegations x JOIN approvers a ON a.id = x.approver_id JOIN approvers d ON d.id = x.delegate_id
WHERE x.ends_at > now() - interval '7 days'
ORDER BY x.starts_at LIMIT 200;

-- name: console_dead_letters
-- Dead letters, newest first, $2 of them with an id below $1 (NULL: the newest).
SELECT id, (extract(epoch FROM at) * 1000)::bigint AS at_ms, reason, message, topic, kpartition,
       koffset, size, encode(sha256, 'hex') AS sha256_hex, preview
FROM dead_letters
WHERE $1::bigint IS NULL OR id < $1::bigint
ORDER BY id DESC LIMIT $2::int;

-- name: console_audit_head
-- The chain's last seal, how many seals, and what no seal covers yet.
SELECT s.seq, encode(s.hash, 'hex') AS hash_hex,
       (extract(epoch FROM s.sealed_at) * 1000)::bigint AS sealed_ms,
       s.entries, (SELECT count(*) FROM audit
                   WHERE txid >= coalesce(s.to_txid, '1'::xid8)) AS unsealed,
       (SELECT max(id) FROM audit) AS last_id
FROM (SELECT 1) one
LEFT JOIN LATERAL (SELECT * FROM audit_seal ORDER BY seq DESC LIMIT 1) s ON true;

-- name: console_resubmit_source
-- What a re-submission copies from failed approval $1: agent, request and
-- the number of earlier re-submissions of it.
SELECT a.agent_id, g.name, a.grant_id, a.method, a.url, a.headers::text,
       translate(encode(a.body, 'base64'), E'\n', '') AS body_b64, a.reason, a.context::text,
       a.status, a.request_id,
       (SELECT count(*) FROM audit u
        WHERE u.approval_id = a.id AND u.action = 'console.resubmitted') AS resubmits,
       g.disabled_at IS NOT NULL AS disabled
FROM approvals a JOIN agents g ON g.id = a.agent_id
WHERE a.id = $1::uuid;

-- name: dead_letters_insert
-- The ingest records the dead letters of a batch once the broker has them,
-- for the console: $1 a JSON array of {reason, message, topic, partition,
-- offset, size, sha256 (hex), preview}. A batch retried after an outage
-- records each message once (dead_letters_origin).
INSERT INTO dead_letters (reason, message, topic, kpartition, koffset, size, sha256, preview)
SELECT d->>'reason', left(d->>'message', 1000), d->>'topic', (d->>'partition')::int,
       (d->>'offset')::bigint, (d->>'size')::int, decode(d->>'sha256', 'hex'),
       left(d->>'preview', 200)
FROM jsonb_array_elements($1::jsonb) AS d
ON CONFLICT (topic, kpartition, koffset) DO NOTHING;
