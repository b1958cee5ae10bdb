-- Reminders and escalation (scheduler/reminder.c, scheduler/escalator.c).

-- name: remind_due
-- Pending approvals whose reminder is due: next_reminder_at moves on by one
-- interval from now (NULL when that passes the deadline) in a guarded
-- UPDATE, so each reminder goes out once however many schedulers run; each
-- approver slot that has not voted gets one message per channel of whoever
-- holds its link now. A reminder never changes the window. $1 limit, $2 actor.
WITH c AS (
    SELECT id FROM approval_states
    WHERE status = 'pending' AND next_reminder_at <= clock_timestamp()
      AND expires_at > clock_timestamp()
    ORDER BY next_reminder_at LIMIT $1::int
    FOR UPDATE SKIP LOCKED
), u AS (
    UPDATE approval_states a SET next_reminder_at = CASE
        WHEN clock_timestamp() + make_interval(secs => (r.policy->>'reminder_interval_s')::int)
             < a.expires_at
        THEN clock_timestamp() + make_interval(secs => (r.policy->>'reminder_interval_s')::int)
        END
    FROM c, approval_requests r
    WHERE a.id = c.id AND r.id = a.id AND a.status = 'pending'
      AND a.next_reminder_at <= clock_timestamp()
    RETURNING cs_approval(r, a) AS a
), nt AS (
    INSERT INTO notifications (approval_id, approver_id, recipient_id, kind, channel)
    SELECT (u.a).id, s.slot, p.id, 'reminder', ch
    FROM u CROSS JOIN LATERAL unnest((u.a).approvers) AS s(slot)
    JOIN approvers p ON p.id = cs_link_holder(s.slot)
    CROSS JOIN LATERAL cs_channels(p) AS ch
    WHERE p.disabled_at IS NULL
      AND NOT EXISTS (SELECT 1 FROM votes v
                      WHERE v.approval_id = (u.a).id AND v.approver_id = s.slot)
    RETURNING approval_id
), aud AS (
    INSERT INTO audit (actor, action, approval_id, detail)
    SELECT $2::text, 'approval.reminded', (u.a).id, jsonb_strip_nulls(jsonb_build_object(
        'messages', (SELECT count(*) FROM nt WHERE nt.approval_id = (u.a).id),
        'next_reminder_at', (u.a).next_reminder_at))
    FROM u
)
SELECT count(*) AS changed FROM u;

-- name: escalate_due
-- Pending approvals whose escalation delay has passed: the policy's
-- escalation approvers join the approver slots (each gets a message with
-- their own link, and may vote from now on), once. $1 limit, $2 actor.
WITH c AS (
    SELECT id, approvers AS before FROM approval_states
    WHERE status = 'pending' AND escalate_at <= clock_timestamp()
      AND expires_at > clock_timestamp()
    ORDER BY escalate_at LIMIT $1::int
    FOR UPDATE SKIP LOCKED
), u AS (
    UPDATE approval_states a SET escalate_at = NULL,
        approvers = a.approvers || ARRAY(
            SELECT x::uuid FROM jsonb_array_elements_text(coalesce(r.policy->'escalation', '[]')) AS x
            WHERE NOT (x::uuid = ANY (c.before)))
    FROM c, approval_requests r
    WHERE a.id = c.id AND r.id = a.id AND a.status = 'pending' AND a.escalate_at IS NOT NULL
    RETURNING cs_approval(r, a) AS a, c.before
), added AS (
    SELECT (u.a).id AS approval_id, s.slot
    FROM u CROSS JOIN LATERAL unnest((u.a).approvers) AS s(slot)
    WHERE NOT (s.slot = ANY (u.before))
), nt AS (
    INSERT INTO notifications (approval_id, approver_id, recipient_id, kind, channel)
    SELECT ad.approval_id, ad.slot, p.id, 'escalation', ch
    FROM added ad
    JOIN approvers p ON p.id = cs_link_holder(ad.slot)
    CROSS JOIN LATERAL cs_channels(p) AS ch
    WHERE p.disabled_at IS NULL
), aud AS (
    INSERT INTO audit (actor, action, approval_id, detail)
    SELECT $2::text, 'approval.escalated', (u.a).id, jsonb_build_object(
        'added', (SELECT coalesce(jsonb_agg(ad.slot), '[]') FROM added ad
                  WHERE ad.approval_id = (u.a).id))
    FROM u
), ob AS MATERIALIZED (
    SELECT cs_emit_all('events', string_agg(cs_entry((u.a).id::text, (
        cs_event(u.a) || jsonb_build_object(
            'type', 'approval.escalated',
            'event_id', (u.a).id::text || ':escalated',
            'added_approvers', (SELECT coalesce(jsonb_agg(ad.slot), '[]') FROM added ad
                                WHERE ad.approval_id = (u.a).id)))::text), ''))
    FROM u
)
SELECT count(*) AS changed FROM u WHERE (SELECT count(*) FROM ob) > 0;
