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
SELECT u.id, u.approval_id, u.approver_id, u.recipient_id, u.kind, u.channel, u.attempts,
       a.status, (extract(epoch FROM a.expires_at) * 1000)::bigint, ag.name, a.method, a.url,
       a.reason, p.name, p.email, p.slack_webhook_url, p.webhook_url, a.grant_id,
       (SELECT name FROM approvers WHERE id = u.approver_id)
FROM u
JOIN approvals a ON a.id = u.approval_id
JOIN agents ag ON ag.id = a.agent_id
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
    RETURNING approval_id
), aud AS (
    INSERT INTO audit (actor, action, approval_id, detail)
    SELECT 'worker:notifier', $5::text, u.approval_id, $6::jsonb FROM u WHERE $5::text IS NOT NULL
)
SELECT count(*) FROM u;
