-- Claiming and completing provider calls (worker/executor.c) and
-- recovering calls whose worker died (scheduler/rescuer.c).

-- name: claim_approved
-- approved -> executing for up to $2 rows, leased to worker $1 for the
-- policy's execution timeout plus $3 ms. SKIP LOCKED: workers never wait
-- on each other. Rows of a paused grant stay where they are.
WITH c AS (
    SELECT id FROM approvals WHERE status = 'approved'
      AND NOT EXISTS (SELECT 1 FROM grants g
                      WHERE g.id = approvals.grant_id AND g.paused_at IS NOT NULL)
    ORDER BY decided_at LIMIT $2::int
    FOR UPDATE SKIP LOCKED
), u AS (
    UPDATE approvals a SET status = 'executing', lease_owner = $1::text,
        attempts = a.attempts + 1,
        lease_expires_at = clock_timestamp() + make_interval(
            secs => ((a.policy->>'exec_timeout_ms')::int + $3::int) / 1000.0)
    -- A primary-key lookup whatever the plan (a join let a generic plan hash
    -- every approved row: O(backlog) per claim).
    WHERE a.id = ANY (ARRAY(SELECT id FROM c)) AND a.status = 'approved'
    RETURNING a
), aud AS (
    INSERT INTO audit (actor, action, approval_id, detail)
    SELECT 'worker:' || $1::text, 'approval.executing', (u.a).id,
           jsonb_build_object('attempt', (u.a).attempts)
    FROM u
), ob AS MATERIALIZED (
    SELECT cs_emit('events', (u.a).id::text, cs_event(u.a)) FROM u
)
SELECT (u.a).id, (u.a).grant_id, (u.a).method, (u.a).url, (u.a).headers::text,
       translate(encode((u.a).body, 'base64'), E'\n', '') AS body_b64,
       encode((u.a).digest, 'hex') AS digest_hex,
       (u.a).attempts, ((u.a).policy->>'exec_timeout_ms')::int AS exec_timeout_ms,
       ((u.a).policy->>'max_attempts')::int AS max_attempts,
       ((u.a).policy->>'idempotency_keys')::boolean AS idempotency_keys,
       (u.a).agent_id, (extract(epoch FROM (u.a).decided_at) * 1000)::bigint AS decided_ms
FROM u WHERE (SELECT count(*) FROM ob) > 0;

-- name: renew_lease
-- Before a retry: extends the lease by $3 ms and counts the attempt. The
-- lease is (owner $2, attempt $5): a call the rescuer requeued and someone
-- claimed again is no longer this one, even for the same worker.
WITH u AS (
    UPDATE approvals a SET lease_expires_at = clock_timestamp() + make_interval(secs => $3::int / 1000.0),
        attempts = a.attempts + 1
    WHERE a.id = $1::uuid AND a.status = 'executing' AND a.lease_owner = $2::text
      AND a.attempts = $5::int
    RETURNING a
), aud AS (
    INSERT INTO audit (actor, action, approval_id, detail)
    SELECT 'worker:' || $2::text, 'execution.retry', (u.a).id,
           jsonb_build_object('attempt', (u.a).attempts, 'after', $4::text)
    FROM u
)
SELECT (u.a).attempts FROM u;

-- name: release_lease
-- executing -> approved for a call this worker will not make after all
-- (shutdown while it waited to retry). Safe: only calls whose retry is
-- already known to be safe wait. $3 the attempt held.
WITH u AS (
    UPDATE approvals a SET status = 'approved', lease_owner = NULL, lease_expires_at = NULL
    WHERE a.id = $1::uuid AND a.status = 'executing' AND a.lease_owner = $2::text
      AND a.attempts = $3::int
    RETURNING a
), aud AS (
    INSERT INTO audit (actor, action, approval_id, detail)
    SELECT 'worker:' || $2::text, 'approval.released', (u.a).id, '{}'::jsonb FROM u
), ob AS MATERIALIZED (
    SELECT cs_emit('events', (u.a).id::text, cs_event(u.a)) FROM u
)
SELECT (u.a).id FROM u WHERE (SELECT count(*) FROM ob) > 0;

-- name: release_unheld
-- After the executor reconnects: executing rows leased to it ($1, unique
-- per process start) that it does not hold ($2, a JSON array of ids) are
-- claims whose commit reached the database but whose answer never came
-- back. Nothing was sent for them: back to approved, audited.
WITH u AS (
    UPDATE approvals a SET status = 'approved', lease_owner = NULL, lease_expires_at = NULL
    WHERE a.status = 'executing' AND a.lease_owner = $1::text
      AND NOT a.id = ANY (ARRAY(SELECT jsonb_array_elements_text($2::jsonb)::uuid))
    RETURNING a
), aud AS (
    INSERT INTO audit (actor, action, approval_id, detail)
    SELECT 'worker:' || $1::text, 'approval.released', (u.a).id,
           '{"why": "claim answer lost with the connection"}'::jsonb FROM u
), ob AS MATERIALIZED (
    SELECT cs_emit('events', (u.a).id::text, cs_event(u.a)) FROM u
)
SELECT count(*) AS released FROM u WHERE (SELECT count(*) FROM ob) > 0;

-- name: complete_executions
-- executing -> executed | failed for a batch of finished calls of worker $1.
-- $2: JSON array of {id, attempt, status, response_status, response_headers,
-- body_b64, truncated, error_code, error_message}; a row counts only while
-- the lease (worker, attempt) is still the one held. Returns updated ids.
-- The batch becomes one JSON object keyed by id, so the plan is a primary-key
-- lookup per row whatever the statistics say: a join against the recordset
-- let a stale estimate pick a nested loop of every executing row times every
-- outcome (16.7 s for 3000 outcomes; 0.26 s this way).
WITH m AS MATERIALIZED (
    SELECT jsonb_object_agg(e->>'id', e) AS m FROM jsonb_array_elements($2::jsonb) e
), u AS (
    UPDATE approvals a SET (status, response_status, response_headers, response_body,
                            response_truncated, error_code, error_message) =
            (SELECT x.status, x.response_status, x.response_headers, decode(x.body_b64, 'base64'),
                    coalesce(x.truncated, false), x.error_code, x.error_message
             FROM jsonb_to_record(m.m -> a.id::text) AS x(
                 status text, response_status int, response_headers jsonb, body_b64 text,
                 truncated boolean, error_code text, error_message text)),
        executed_at = clock_timestamp(), lease_owner = NULL, lease_expires_at = NULL
    FROM m
    WHERE a.id = ANY (ARRAY(SELECT k::uuid FROM m, jsonb_object_keys(m.m) k))
      AND a.status = 'executing' AND a.lease_owner = $1::text
      AND a.attempts = (m.m -> a.id::text ->> 'attempt')::int
      AND m.m -> a.id::text ->> 'status' IN ('executed', 'failed')
    RETURNING a
), aud AS (
    INSERT INTO audit (actor, action, approval_id, detail)
    SELECT 'worker:' || $1::text, 'approval.' || (u.a).status, (u.a).id,
           jsonb_strip_nulls(jsonb_build_object(
               'status_code', (u.a).response_status, 'error_code', (u.a).error_code,
               'body_bytes', length((u.a).response_body),
               'body_truncated', (u.a).response_truncated, 'attempts', (u.a).attempts))
    FROM u
), ob AS MATERIALIZED (
    SELECT cs_emit('events', (u.a).id::text, cs_event(u.a)) FROM u
    UNION ALL
    SELECT cs_emit('results', (u.a).id::text, cs_result(u.a)) FROM u
)
SELECT (u.a).id FROM u WHERE (SELECT count(*) FROM ob) > 0;

-- name: rescue_lapsed
-- executing rows whose lease lapsed (their worker died or hung): back to
-- approved, same idempotency key, when the grant's provider honours
-- idempotency keys and attempts remain; otherwise failed/outcome_unknown.
-- Never re-runs a call blindly. $1 batch size, $2 actor.
WITH c AS (
    SELECT id, lease_owner FROM approvals
    WHERE status = 'executing' AND lease_expires_at < clock_timestamp()
      -- After a database restart every worker had to reconnect: give them a
      -- lease margin to record what they hold before their leases count.
      AND clock_timestamp() > pg_postmaster_start_time() + make_interval(secs => $3::int / 1000.0)
    ORDER BY lease_expires_at LIMIT $1::int
    FOR UPDATE SKIP LOCKED
), u AS (
    UPDATE approvals a SET
        status = CASE WHEN retry THEN 'approved' ELSE 'failed' END,
        error_code = CASE WHEN retry THEN NULL ELSE 'outcome_unknown' END,
        error_message = CASE WHEN retry THEN NULL ELSE
            'the worker executing this call stopped before recording its outcome; the '
            'provider may have received it, and it is not re-run without idempotency-key '
            'support' END,
        executed_at = CASE WHEN retry THEN NULL ELSE clock_timestamp() END,
        lease_owner = NULL, lease_expires_at = NULL
    FROM (SELECT c.id, c.lease_owner,
                 coalesce((x.policy->>'idempotency_keys')::boolean, false)
                 AND x.attempts < (x.policy->>'max_attempts')::int AS retry
          FROM c JOIN approvals x ON x.id = c.id) d
    WHERE a.id = d.id AND a.status = 'executing' AND a.lease_expires_at < clock_timestamp()
    RETURNING a, d.lease_owner AS owner
), aud AS (
    INSERT INTO audit (actor, action, approval_id, detail)
    SELECT $2::text, CASE WHEN (u.a).status = 'approved' THEN 'execution.requeued'
                          ELSE 'approval.failed' END,
           (u.a).id, jsonb_strip_nulls(jsonb_build_object(
               'lease_owner', u.owner, 'attempts', (u.a).attempts,
               'error_code', (u.a).error_code))
    FROM u
), ob AS MATERIALIZED (
    SELECT cs_emit('events', (u.a).id::text, cs_event(u.a)) FROM u
    UNION ALL
    SELECT cs_emit('results', (u.a).id::text, cs_result(u.a)) FROM u WHERE (u.a).status = 'failed'
)
SELECT count(*) AS rescued, count(*) FILTER (WHERE (u.a).status = 'approved') AS requeued FROM u WHERE (SELECT count(*) FROM ob) > 0;

-- name: expire_due
-- pending -> expired for up to $1 approvals past their window. $2 actor.
WITH c AS (
    SELECT id FROM approvals
    WHERE status = 'pending' AND expires_at <= clock_timestamp()
    ORDER BY expires_at LIMIT $1::int
    FOR UPDATE SKIP LOCKED
), u AS (
    UPDATE approvals a SET status = 'expired', decided_at = clock_timestamp(),
        decided_by = $2::text
    FROM c WHERE a.id = c.id AND a.status = 'pending' AND a.expires_at <= clock_timestamp()
    RETURNING a
), aud AS (
    INSERT INTO audit (actor, action, approval_id, detail)
    SELECT $2::text, 'approval.expired', (u.a).id,
           jsonb_build_object('expires_at', (u.a).expires_at)
    FROM u
), ob AS MATERIALIZED (
    SELECT cs_emit('events', (u.a).id::text, cs_event(u.a)) FROM u
    UNION ALL
    SELECT cs_emit('results', (u.a).id::text, cs_result(u.a)) FROM u
)
SELECT count(*) AS expired FROM u WHERE (SELECT count(*) FROM ob) > 0;
