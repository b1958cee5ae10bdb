-- The scheduler's retention duty (scheduler/retention.c).

-- name: retention_approvals
-- Deletes up to $2 terminal approvals untouched for $1 days (their votes
-- go with them). The audit log keeps what happened to them.
WITH d AS (
    SELECT id FROM approval_states
    WHERE status IN ('executed', 'failed', 'denied', 'expired', 'cancelled')
      AND updated_at < now() - make_interval(days => $1::int)
    ORDER BY updated_at LIMIT $2::int
    FOR UPDATE SKIP LOCKED
), s AS (
    -- Both rows of each (migration 019), in one statement.
    DELETE FROM approval_states a USING d WHERE a.id = d.id RETURNING a.id
)
DELETE FROM approval_requests r USING s WHERE r.id = s.id;

-- name: retention_batches
-- Deletes up to $2 finished batches older than $1 days whose members are
-- gone (retention_approvals deletes them first); batch votes go with them.
WITH d AS (
    SELECT uid FROM batches b
    WHERE b.finished_at < now() - make_interval(days => $1::int)
      AND NOT EXISTS (SELECT 1 FROM approval_requests a WHERE a.agent_id = b.agent_id AND a.batch_id = b.id)
    ORDER BY b.finished_at LIMIT $2::int
    FOR UPDATE SKIP LOCKED
)
DELETE FROM batches b USING d WHERE b.uid = d.uid;
