-- 002_notifications.sql -- telling approvers: one row per message to send.
--
-- Written in the transaction that makes an approval pending (one row per
-- approver slot and channel the person holding the link has), later by
-- the scheduler for reminders and escalations. The worker's notifier
-- (worker/notifier.c) claims due rows with SKIP LOCKED, sends them with
-- retries and backoff, and audits every success and failure. A message
-- that cannot be sent never blocks or changes its approval.

CREATE TABLE notifications (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    approval_id     uuid NOT NULL REFERENCES approvals (id) ON DELETE CASCADE,
    approver_id     uuid NOT NULL REFERENCES approvers (id),   -- the slot
    recipient_id    uuid NOT NULL REFERENCES approvers (id),   -- who holds its link
    kind            text NOT NULL CHECK (kind IN ('request', 'reminder', 'escalation')),
    channel         text NOT NULL CHECK (channel IN ('email', 'slack', 'webhook')),
    status          text NOT NULL DEFAULT 'queued'
                        CHECK (status IN ('queued', 'sent', 'failed', 'skipped')),
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz
);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status = 'queued';
CREATE INDEX notifications_approval ON notifications (approval_id);

-- Wakes the notifier when messages are queued (one per statement).
CREATE FUNCTION notifications_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('cs_notify', '');
    RETURN NULL;
END $$;

CREATE TRIGGER notifications_notify AFTER INSERT ON notifications
    FOR EACH STATEMENT EXECUTE FUNCTION notifications_notify();

-- Who holds an approver slot's link right now: the newest active delegate
-- (an enabled approver), else the approver. One hop only, so a chain of
-- delegations never loops.
CREATE FUNCTION cs_link_holder(slot uuid) RETURNS uuid LANGUAGE sql STABLE AS $$
    SELECT coalesce((
        SELECT d.delegate_id FROM delegations d
        JOIN approvers da ON da.id = d.delegate_id AND da.disabled_at IS NULL
        WHERE d.approver_id = slot AND d.revoked_at IS NULL
          AND now() >= d.starts_at AND now() < d.ends_at
        ORDER BY d.created_at DESC LIMIT 1), slot)
$$;

-- The channels a person can be reached on.
CREATE FUNCTION cs_channels(p approvers) RETURNS SETOF text LANGUAGE sql IMMUTABLE AS $$
    SELECT v.channel FROM (VALUES ('email', p.email), ('slack', p.slack_webhook_url),
                                  ('webhook', p.webhook_url)) AS v(channel, target)
    WHERE v.target IS NOT NULL
$$;
