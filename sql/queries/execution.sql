-- Claiming and completing provider calls (worker/executor.c) and
-- recovering calls whose worker died (scheduler/rescuer.c).

-- name: claim_approved
-- approved -> executing for up to $2 rows, leased to worker $1 for the
-- policy's execution timeout plus $3 ms. SKIP LOCKED everywhere: workers
-- never wait on each other.
--
-- Per grant (migration 015): none of a paused grant, none of a throttled
-- one (throttled_until, set by 429/503 answers), none waiting for a retry
-- (not_before); at most as many as its token bucket holds (rate_per_s,
-- burst), as its max_in_flight leaves (unexpired leases across the fleet)
-- and as this worker's share of its slots leaves ($4 per grant, less what
-- the worker holds already: $5, {"grant": n}).
--
-- A rate-limited grant's calls also get their turn (turn_ms, from the
-- claim): when the bucket has a token for each. Those the bucket holds now
-- start at once; the claim may take up to $6 ms of tokens ahead (the bucket
-- goes below zero: spent before they are refilled), and those calls wait in
-- the worker until their turn. So calls leave at the grant's rate whatever
-- the time between claims, rather than in bunches of whatever accumulated
-- between two claims (capped at the burst), and fleet-wide: the next claim's
-- turns follow this one's. Grants take turns: the
-- first call of each grant, then the second, ... so one grant's backlog
-- never starves another. Calls past their grant's exec_deadline_s are
-- claimed whatever the grant's state (overdue = true): the executor ends
-- them at once with last_wait's error (or execution_deadline), unsent.
--
-- The last row has a NULL id: its last column is when to claim again (ms,
-- NULL: nothing is waiting on time).
WITH t AS MATERIALIZED (SELECT clock_timestamp() AS now),
g AS MATERIALIZED (
    SELECT gr.id, gr.rate_per_s, gr.max_in_flight, gr.exec_deadline_s,
           coalesce(gr.burst, greatest(1, ceil(gr.rate_per_s / 10)))::float8 AS burst
    -- The grant's queue read from its head (approvals_queue, first row due):
    -- an EXISTS here was planned as a bitmap of every approved row of the
    -- fleet, each claim, a 10 000-member batch's backlog included.
    FROM grants gr CROSS JOIN LATERAL (
        SELECT 1 FROM approval_states a
        WHERE a.grant_id = gr.id AND a.status = 'approved'
          AND (a.not_before IS NULL OR a.not_before <= (SELECT t.now FROM t))
        ORDER BY a.decided_at LIMIT 1) due
    WHERE gr.paused_at IS NULL
), f AS MATERIALIZED (
    SELECT fl.grant_id, g.rate_per_s, g.max_in_flight, g.exec_deadline_s,
           least(g.burst, fl.tokens + coalesce(g.rate_per_s, 0)
                 * greatest(0, extract(epoch FROM t.now - fl.refilled_at)::float8)) AS tokens
    FROM grant_flow fl JOIN g ON g.id = fl.grant_id, t
    WHERE fl.throttled_until IS NULL OR fl.throttled_until <= t.now
    FOR UPDATE OF fl SKIP LOCKED
), n AS MATERIALIZED (
    SELECT f.grant_id, f.rate_per_s, f.tokens, f.exec_deadline_s,
           greatest(0, least(
               $2::int,
               $4::int - coalesce(($5::jsonb ->> f.grant_id)::int, 0),
               f.max_in_flight - (SELECT count(*) FROM approval_states x, t
                                  WHERE x.grant_id = f.grant_id AND x.status = 'executing'
                                    AND x.lease_expires_at > t.now)::int,
               CASE WHEN f.rate_per_s IS NULL THEN $2::int
                    ELSE floor(f.tokens + f.rate_per_s * $6::int / 1000.0)::int END)) AS n
    FROM f
), c AS MATERIALIZED (
    SELECT q.id, q.grant_id, q.decided_at, false AS overdue
    FROM n CROSS JOIN LATERAL (
        SELECT a.id, a.grant_id, a.decided_at FROM approval_states a, t
        WHERE a.grant_id = n.grant_id AND a.status = 'approved'
          AND (a.not_before IS NULL OR a.not_before <= t.now)
          AND a.decided_at >= t.now - make_interval(secs => n.exec_deadline_s)
        ORDER BY a.decided_at LIMIT n.n
        FOR UPDATE OF a SKIP LOCKED) q
), o AS MATERIALIZED (
    SELECT q.id, q.grant_id, q.decided_at, true AS overdue
    FROM grants gr CROSS JOIN LATERAL (
        -- The bound as a scalar (not a join with t), so that it is an index
        -- condition: joined, it filtered every approved row of the grant, a
        -- scan of the whole backlog in every claim (10 000 batch members).
        SELECT a.id, a.grant_id, a.decided_at FROM approval_states a
        WHERE a.grant_id = gr.id AND a.status = 'approved'
          AND a.decided_at < (SELECT t.now FROM t) - make_interval(secs => gr.exec_deadline_s)
        ORDER BY a.decided_at LIMIT $2::int
        FOR UPDATE OF a SKIP LOCKED) q
), pick AS MATERIALIZED (
    SELECT y.id, y.grant_id, y.overdue, y.rn FROM (
        SELECT x.*, row_number() OVER (PARTITION BY x.grant_id ORDER BY x.decided_at) AS rn
        FROM (SELECT * FROM o UNION ALL SELECT * FROM c) x) y
    ORDER BY y.overdue DESC, y.rn, y.decided_at LIMIT $2::int
), u AS (
    UPDATE approval_states a SET status = 'executing', lease_owner = $1::text,
        attempts = a.attempts + 1,
        lease_expires_at = clock_timestamp() + make_interval(
            secs => ((r.policy->>'exec_timeout_ms')::int + $3::int) / 1000.0)
    FROM approval_requests r
    -- A primary-key lookup whatever the plan (a join let a generic plan hash
    -- every approved row: O(backlog) per claim).
    WHERE a.id = ANY (ARRAY(SELECT id FROM pick)) AND r.id = a.id AND a.status = 'approved'
    RETURNING cs_approval(r, a) AS a
), spent AS MATERIALIZED (
    SELECT (u.a).grant_id AS grant_id, count(*) AS k FROM u JOIN pick p ON p.id = (u.a).id
    WHERE NOT p.overdue GROUP BY 1
), tok AS (
    UPDATE grant_flow fl SET tokens = n.tokens - spent.k, refilled_at = t.now
    FROM n, spent, t
    WHERE fl.grant_id = n.grant_id AND spent.grant_id = n.grant_id AND n.rate_per_s IS NOT NULL
), aud AS (
    INSERT INTO audit (actor, action, approval_id, detail)
    SELECT 'worker:' || $1::text, 'approval.executing', (u.a).id,
           jsonb_build_object('attempt', (u.a).attempts)
    FROM u
), ob AS MATERIALIZED (
    SELECT cs_emit_all('events', string_agg(cs_entry((u.a).id::text, cs_event_rec(u.a)), ''))
    FROM u
), v AS MATERIALIZED (
    -- What this claim saw of each grant (migration 018), once per grant (not
    -- per call): the executor reloads its cached copy only when that differs.
    SELECT g.grant_id, cs_grant_version(g.grant_id) AS version
    FROM (SELECT DISTINCT grant_id FROM pick) g
), nxt AS (
    -- The soonest of: a throttled grant with work is let go, a waiting retry
    -- is due, a token for a grant that ran out, a grant another worker held.
    SELECT least(
        (SELECT min(fl.throttled_until) FROM grant_flow fl JOIN g ON g.id = fl.grant_id
         WHERE fl.throttled_until > t.now),
        (SELECT min(a.not_before) FROM approval_states a
         WHERE a.status = 'approved' AND a.not_before IS NOT NULL AND a.not_before > t.now),
        -- (with tokens taken ahead: once half of that window is free again)
        (SELECT t.now + make_interval(secs => min((greatest(1, n.rate_per_s * $6::int / 2000.0)
                                                   - (n.tokens + n.rate_per_s * $6::int / 1000.0
                                                      - coalesce(spent.k, 0)))
                                                  / n.rate_per_s))
         FROM n LEFT JOIN spent ON spent.grant_id = n.grant_id
         WHERE n.rate_per_s IS NOT NULL
           AND n.tokens + n.rate_per_s * $6::int / 1000.0 - coalesce(spent.k, 0)
               < greatest(1, n.rate_per_s * $6::int / 2000.0)),
        (SELECT t.now + interval '20 ms' FROM g
         WHERE NOT EXISTS (SELECT 1 FROM f WHERE f.grant_id = g.id)
           AND NOT EXISTS (SELECT 1 FROM grant_flow fl WHERE fl.grant_id = g.id
                           AND fl.throttled_until > t.now)
         LIMIT 1)) AS at
    FROM t
)
SELECT (u.a).id, (u.a).grant_id, (u.a).method, (u.a).url, (u.a).headers::text,
       translate(encode((u.a).body, 'base64'), E'\n', '') AS body_b64,
       encode((u.a).digest, 'hex') AS digest_hex,
       (u.a).attempts, ((u.a).policy->>'exec_timeout_ms')::int AS exec_timeout_ms,
       ((u.a).policy->>'max_attempts')::int AS max_attempts,
       ((u.a).policy->>'idempotency_keys')::boolean AS idempotency_keys,
       (u.a).agent_id, (extract(epoch FROM (u.a).decided_at) * 1000)::bigint AS decided_ms,
       (u.a).failures, (u.a).waits, (u.a).last_wait, p.overdue,
       (extract(epoch FROM (u.a).decided_at + make_interval(secs => gr.exec_deadline_s))
        * 1000)::bigint AS deadline_ms,
       greatest(0, extract(epoch FROM t.now - greatest((u.a).decided_at, (u.a).not_before))
                   * 1000)::bigint AS queue_wait_ms,
       -- The call's turn, ms after t.now: when the bucket (n.tokens at t.now)
       -- has its p.rn-th token.
       (CASE WHEN n.rate_per_s IS NULL OR p.overdue THEN 0
             ELSE greatest(0, (p.rn - n.tokens) / n.rate_per_s * 1000) END)::bigint AS turn_ms,
       (CASE WHEN n.rate_per_s IS NULL THEN 0 ELSE 1000 / n.rate_per_s END)::int AS turn_gap_ms,
       v.version AS grant_version,
       NULL::bigint AS next_ms
FROM u JOIN pick p ON p.id = (u.a).id JOIN grants gr ON gr.id = (u.a).grant_id
     JOIN v ON v.grant_id = (u.a).grant_id
     LEFT JOIN n ON n.grant_id = (u.a).grant_id, t
WHERE (SELECT count(*) FROM ob) > 0
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       greatest(0, ceil(extract(epoch FROM nxt.at - t.now) * 1000))::bigint
FROM nxt, t;

-- name: requeue_execution
-- executing -> approved, to be claimed again (by any worker) $4 ms from now:
-- a call waiting for a retry holds no executor slot. The lease is (owner $2,
-- attempt $3). $5 why (audited), $6 whether this attempt counts against
-- max_attempts (a failure) or not (throttled, in progress, never sent: a
-- wait), $7 the error the call ends with if its deadline passes while it
-- waits (NULL: keep the last). Returns the id; no row: the lease was lost.
WITH u AS (
    UPDATE approval_states a SET status = 'approved', lease_owner = NULL, lease_expires_at = NULL,
        not_before = clock_timestamp() + make_interval(secs => $4::int / 1000.0),
        failures = a.failures + CASE WHEN $6::boolean THEN 1 ELSE 0 END,
        waits = a.waits + CASE WHEN $6::boolean THEN 0 ELSE 1 END,
        last_wait = coalesce($7::text, a.last_wait)
    FROM approval_requests r
    WHERE a.id = $1::uuid AND r.id = a.id AND a.status = 'executing'
      AND a.lease_owner = $2::text AND a.attempts = $3::int
    RETURNING cs_approval(r, a) AS a
), aud AS (
    INSERT INTO audit (actor, action, approval_id, detail)
    SELECT 'worker:' || $2::text, 'execution.retry', (u.a).id,
           jsonb_build_object('attempt', (u.a).attempts, 'after', $5::text,
                              'delay_ms', $4::int, 'failure', $6::boolean)
    FROM u
), ob AS MATERIALIZED (
    SELECT cs_emit_all('events', string_agg(cs_entry((u.a).id::text, cs_event_rec(u.a)), ''))
    FROM u
)
SELECT (u.a).id AS requeued FROM u WHERE (SELECT count(*) FROM ob) > 0;

-- name: grant_throttle
-- The provider answered grant $1 with 429 (or 503 and Retry-After): no call
-- of the grant starts for $2 ms, on any worker. Never shortens a throttle.
-- The bucket is emptied as of the throttle's end: calls resume at the
-- grant's rate, not with a burst into a provider that just said no.
UPDATE grant_flow SET throttled_until = greatest(
        coalesce(throttled_until, '-infinity'),
        clock_timestamp() + make_interval(secs => $2::int / 1000.0)),
    tokens = 0,
    refilled_at = greatest(coalesce(throttled_until, '-infinity'),
                           clock_timestamp() + make_interval(secs => $2::int / 1000.0))
WHERE grant_id = $1::text
RETURNING (extract(epoch FROM throttled_until) * 1000)::bigint AS throttled_until_ms;

-- name: release_lease
-- executing -> approved for a call this worker will not make after all
-- (shutdown while it waited to retry). Safe: only calls whose retry is
-- already known to be safe wait. $3 the attempt held.
WITH u AS (
    UPDATE approval_states a SET status = 'approved', lease_owner = NULL, lease_expires_at = NULL
    FROM approval_requests r
    WHERE a.id = $1::uuid AND r.id = a.id AND a.status = 'executing'
      AND a.lease_owner = $2::text AND a.attempts = $3::int
    RETURNING cs_approval(r, a) AS a
), aud AS (
    INSERT INTO audit (actor, action, approval_id, detail)
    SELECT 'worker:' || $2::text, 'approval.released', (u.a).id, '{}'::jsonb FROM u
), ob AS MATERIALIZED (
    SELECT cs_emit_all('events', string_agg(cs_entry((u.a).id::text, cs_event_rec(u.a)), ''))
    FROM u
)
SELECT (u.a).id FROM u WHERE (SELECT count(*) FROM ob) > 0;

-- name: release_unheld
-- After the executor reconnects: executing rows leased to it ($1, unique
-- per process start) that it does not hold ($2, a JSON array of ids) are
-- claims whose commit reached the database but whose answer never came
-- back. Nothing was sent for them: back to approved, audited.
WITH u AS (
    UPDATE approval_states a SET status = 'approved', lease_owner = NULL, lease_expires_at = NULL
    FROM approval_requests r
    WHERE a.status = 'executing' AND a.lease_owner = $1::text AND r.id = a.id
      AND NOT a.id = ANY (ARRAY(SELECT jsonb_array_elements_text($2::jsonb)::uuid))
    RETURNING cs_approval(r, a) AS a
), aud AS (
    INSERT INTO audit (actor, action, approval_id, detail)
    SELECT 'worker:' || $1::text, 'approval.released', (u.a).id,
           '{"why": "claim answer lost with the connection"}'::jsonb FROM u
), ob AS MATERIALIZED (
    SELECT cs_emit_all('events', string_agg(cs_entry((u.a).id::text, cs_event_rec(u.a)), ''))
    FROM u
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
    UPDATE approval_states a SET (status, response_status, response_headers, response_body,
                            response_truncated, error_code, error_message) =
            (SELECT x.status, x.response_status, x.response_headers, decode(x.body_b64, 'base64'),
                    coalesce(x.truncated, false), x.error_code, x.error_message
             FROM jsonb_to_record(m.m -> a.id::text) AS x(
                 status text, response_status int, response_headers jsonb, body_b64 text,
                 truncated boolean, error_code text, error_message text)),
        executed_at = clock_timestamp(), lease_owner = NULL, lease_expires_at = NULL
    FROM m, approval_requests r
    WHERE a.id = ANY (ARRAY(SELECT k::uuid FROM m, jsonb_object_keys(m.m) k)) AND r.id = a.id
      AND a.status = 'executing' AND a.lease_owner = $1::text
      AND a.attempts = (m.m -> a.id::text ->> 'attempt')::int
      AND m.m -> a.id::text ->> 'status' IN ('executed', 'failed')
    RETURNING cs_approval(r, a) AS a
), aud AS (
    INSERT INTO audit (actor, action, approval_id, detail)
    SELECT 'worker:' || $1::text, 'approval.' || (u.a).status, (u.a).id,
           jsonb_strip_nulls(jsonb_build_object(
               'status_code', (u.a).response_status, 'error_code', (u.a).error_code,
               'body_bytes', length((u.a).response_body),
               'body_truncated', (u.a).response_truncated, 'attempts', (u.a).attempts))
    FROM u
), ob AS MATERIALIZED (
    SELECT cs_emit_all('events', string_agg(cs_entry((u.a).id::text, cs_event_rec(u.a)), ''))
    FROM u
    UNION ALL
    SELECT cs_emit_all('results', string_agg(cs_entry((u.a).id::text, cs_result_rec(u.a)), ''))
    FROM u
)
SELECT (u.a).id FROM u WHERE (SELECT count(*) FROM ob) > 0;

-- name: rescue_lapsed
-- executing rows whose lease lapsed (their worker died or hung): back to
-- approved, same idempotency key, when the grant's provider honours
-- idempotency keys and attempts remain; otherwise failed/outcome_unknown.
-- Never re-runs a call blindly. $1 batch size, $2 actor.
WITH c AS (
    SELECT id, lease_owner, failures FROM approval_states
    WHERE status = 'executing' AND lease_expires_at < clock_timestamp()
      -- After a database restart every worker had to reconnect: give them a
      -- lease margin to record what they hold before their leases count.
      AND clock_timestamp() > pg_postmaster_start_time() + make_interval(secs => $3::int / 1000.0)
    ORDER BY lease_expires_at LIMIT $1::int
    FOR UPDATE SKIP LOCKED
), u AS (
    UPDATE approval_states a SET
        status = CASE WHEN retry THEN 'approved' ELSE 'failed' END,
        error_code = CASE WHEN retry THEN NULL ELSE 'outcome_unknown' END,
        error_message = CASE WHEN retry THEN NULL ELSE
            'the worker executing this call stopped before recording its outcome; the '
            'provider may have received it, and it is not re-run without idempotency-key '
            'support' END,
        executed_at = CASE WHEN retry THEN NULL ELSE clock_timestamp() END,
        failures = a.failures + 1,
        lease_owner = NULL, lease_expires_at = NULL
    FROM (SELECT c.id, c.lease_owner,
                 coalesce((x.policy->>'idempotency_keys')::boolean, false)
                 AND c.failures + 1 < (x.policy->>'max_attempts')::int AS retry
          FROM c JOIN approval_requests x ON x.id = c.id) d, approval_requests r
    WHERE a.id = d.id AND r.id = a.id AND a.status = 'executing'
      AND a.lease_expires_at < clock_timestamp()
    RETURNING cs_approval(r, a) AS a, d.lease_owner AS owner
), aud AS (
    INSERT INTO audit (actor, action, approval_id, detail)
    SELECT $2::text, CASE WHEN (u.a).status = 'approved' THEN 'execution.requeued'
                          ELSE 'approval.failed' END,
           (u.a).id, jsonb_strip_nulls(jsonb_build_object(
               'lease_owner', u.owner, 'attempts', (u.a).attempts,
               'error_code', (u.a).error_code))
    FROM u
), ob AS MATERIALIZED (
    SELECT cs_emit_all('events', string_agg(cs_entry((u.a).id::text, cs_event_rec(u.a)), ''))
    FROM u
    UNION ALL
    SELECT cs_emit_all('results', string_agg(cs_entry((u.a).id::text, cs_result_rec(u.a)), ''))
    FROM u WHERE (u.a).status = 'failed'
)
SELECT count(*) AS rescued, count(*) FILTER (WHERE (u.a).status = 'approved') AS requeued FROM u WHERE (SELECT count(*) FROM ob) > 0;

-- name: expire_due
-- pending -> expired for up to $1 approvals past their window. $2 actor.
WITH c AS (
    SELECT id FROM approval_states
    WHERE status = 'pending' AND expires_at <= clock_timestamp()
    ORDER BY expires_at LIMIT $1::int
    FOR UPDATE SKIP LOCKED
), u AS (
    UPDATE approval_states a SET status = 'expired', decided_at = clock_timestamp(),
        decided_by = $2::text
    FROM c, approval_requests r
    WHERE a.id = c.id AND r.id = a.id AND a.status = 'pending'
      AND a.expires_at <= clock_timestamp()
    RETURNING cs_approval(r, a) AS a
), aud AS (
    INSERT INTO audit (actor, action, approval_id, detail)
    SELECT $2::text, 'approval.expired', (u.a).id,
           jsonb_build_object('expires_at', (u.a).expires_at)
    FROM u
), ob AS MATERIALIZED (
    SELECT cs_emit_all('events', string_agg(cs_entry((u.a).id::text, cs_event_rec(u.a)), ''))
    FROM u
    UNION ALL
    SELECT cs_emit_all('results', string_agg(cs_entry((u.a).id::text, cs_result_rec(u.a)), ''))
    FROM u
)
SELECT count(*) AS changed FROM u WHERE (SELECT count(*) FROM ob) > 0;

-- name: grant_states
-- Per grant for the api's /metrics: paused (0/1), throttled until (unix s,
-- 0: not throttled), calls queued (approved), calls in flight (unexpired
-- leases: what max_in_flight counts).
SELECT g.id AS grant_id, (g.paused_at IS NOT NULL)::int AS paused,
       CASE WHEN f.throttled_until > now() THEN extract(epoch FROM f.throttled_until)
            ELSE 0 END::float8 AS throttled_until_s,
       (SELECT count(*) FROM approval_states a WHERE a.grant_id = g.id AND a.status = 'approved')
           AS queued,
       (SELECT count(*) FROM approval_states a WHERE a.grant_id = g.id AND a.status = 'executing'
          AND a.lease_expires_at > now()) AS in_flight
FROM grants g LEFT JOIN grant_flow f ON f.grant_id = g.id
WHERE g.disabled_at IS NULL
ORDER BY g.id;
