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
