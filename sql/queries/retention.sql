-- The scheduler's retention duty (scheduler/retention.c).

-- name: retention_approvals
-- Deletes up to $2 terminal approvals untouched for $1 days (their votes
-- go with them). The audit log keeps what happened to them.
WITH d AS (
    SELECT id FROM approvals
    WHERE status IN ('executed', 'failed', 'denied', 'expired', 'cancelled')
      AND updated_at < now() - make_interval(days => $1::int)
    ORDER BY updated_at LIMIT $2::int
    FOR UPDATE SKIP LOCKED
)
DELETE FROM approvals a USING d WHERE a.id = d.id;

-- name: scheduler_try_lock
SELECT pg_try_advisory_lock($1::bigint);
