-- Approver notifications (worker/notifier.c).

-- name: listen_notify
LISTEN cs_notify;

-- name: notifications_claim
-- Up to $1 due messages, leased for $2 seconds (attempts counted now, so a
-- notifier that dies mid-send retries after the lease), with what the
-- message needs: the approval, the slot, the recipient's channels.
WITH c AS (
    SELECT id FROM notifications
    WHERE status = 'queued' AND next_attempt_at <= now()
    ORDER BY next_attempt_at LIMIT $1::int
    FOR UPDATE SKIP LOCKED
), u AS (
    UPDATE notifications n SET attempts = n.attempts + 1,
        next_attempt_at = now() + make_interval(secs => $2::int)
    FROM c WHERE n.id = c.id
    RETURNING n.*
)
-- A batch message (batch_uid set) reads as pending while the batch is decidable.
SELECT u.id, coalesce(u.approval_id, u.batch_uid) AS subject_id,
       u.approver_id, u.recipient_id, u.kind,
       u.channel, u.attempts,
       coalesce(a.status, CASE WHEN b.status = 'decidable' THEN 'pending' ELSE b.status END) AS status,
       (extract(epoch FROM coalesce(a.expires_at, b.expires_at)) * 1000)::bigint AS expires_ms,
       ag.name AS agent_name,
       coalesce(a.method, 'BATCH') AS method,
       coalesce(a.url, b.members || ' calls as batch ' || b.id) AS url,
       coalesce(a.reason, '') AS reason, p.name AS recipient_name,
       p.email, p.slack_webhook_url, p.webhook_url, coalesce(a.grant_id, b.grant_id) AS grant_id,
       (SELECT name FROM approvers WHERE id = u.approver_id) AS approver_name,
       u.batch_uid IS NOT NULL AS is_batch
FROM u
LEFT JOIN approvals a ON a.id = u.approval_id
LEFT JOIN batches b ON b.uid = u.batch_uid
JOIN agents ag ON ag.id = coalesce(a.agent_id, b.agent_id)
JOIN approvers p ON p.id = u.recipient_id;

-- name: notification_done
-- $1 id, $2 'sent' | 'failed' | 'skipped' | 'queued' (retry), $3 error, $4 retry in seconds,
-- $5 audit action (NULL: none), $6 detail.
WITH u AS (
    UPDATE notifications SET status = $2::text, last_error = $3::text,
        sent_at = CASE WHEN $2::text = 'sent' THEN now() END,
        next_attempt_at = CASE WHEN $2::text = 'queued'
                               THEN now() + make_interval(secs => $4::float8) ELSE next_attempt_at END
    WHERE id = $1::bigint
    RETURNING approval_id, batch_uid
), aud AS (
    INSERT INTO audit (actor, action, approval_id, detail)
    SELECT 'worker:notifier', $5::text, u.approval_id,
           $6::jsonb || jsonb_strip_nulls(jsonb_build_object('batch_uid', u.batch_uid))
    FROM u WHERE $5::text IS NOT NULL
)
SELECT count(*) AS done FROM u;
