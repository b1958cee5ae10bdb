-- 003_batches_reminders.sql -- batches, reminders and escalation.
--
-- A batch groups the approvals an agent tags with the same batch_id. It is
-- open while members arrive, becomes decidable once the seal (its member
-- count) and every member are stored -- in any order, on any partition --
-- and is decided once, with one link per approver, for all its members.
-- Each member still makes its own guarded transition (approval.sql) and
-- executes on its own. When every member is terminal the scheduler
-- publishes the batch summary (batch_finish).
--
--   open ──seal and all members stored──> decidable ──quorum / deny──> decided
--   open | decidable ──window elapsed──> expired
--
-- Reminders and escalation: an approval whose policy asks for them carries
-- next_reminder_at / escalate_at; the scheduler moves them forward with a
-- guarded UPDATE, so each happens once however many schedulers run.

CREATE TABLE batches (
    uid           uuid PRIMARY KEY,           -- what batch links sign
    agent_id      uuid NOT NULL REFERENCES agents (id),
    id            text NOT NULL CHECK (length(id) BETWEEN 1 AND 128),
    grant_id      text REFERENCES grants (id),    -- fixed by the first member
    policy_id     text,
    policy        jsonb,                          -- snapshot, as on the members
    approvers     uuid[] NOT NULL DEFAULT '{}',
    quorum        int NOT NULL DEFAULT 0,
    expected      int CHECK (expected IS NULL OR expected BETWEEN 1 AND 100000),
    members       int NOT NULL DEFAULT 0,
    status        text NOT NULL DEFAULT 'open'
                      CHECK (status IN ('open', 'decidable', 'decided', 'expired')),
    digest        bytea,                          -- over the members' digests, once decidable
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,                    -- the first member's window
    sealed_at     timestamptz,
    decidable_at  timestamptz,
    decided_at    timestamptz,
    decided_by    text,
    decision      text,
    finished_at   timestamptz,                    -- summary published
    UNIQUE (agent_id, id)
);
CREATE INDEX batches_unfinished ON batches (created_at) WHERE finished_at IS NULL;

CREATE TABLE batch_votes (
    batch_uid   uuid NOT NULL REFERENCES batches (uid) ON DELETE CASCADE,
    approver_id uuid NOT NULL REFERENCES approvers (id),
    cast_by     uuid NOT NULL REFERENCES approvers (id),
    decision    text NOT NULL CHECK (decision IN ('approve', 'deny')),
    denied_items text[] NOT NULL DEFAULT '{}',    -- request ids denied within an approval
    reason      text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (batch_uid, approver_id),
    UNIQUE (batch_uid, cast_by)
);

ALTER TABLE approvals ADD COLUMN next_reminder_at timestamptz;
ALTER TABLE approvals ADD COLUMN escalate_at timestamptz;
CREATE INDEX approvals_reminder ON approvals (next_reminder_at)
    WHERE status = 'pending' AND next_reminder_at IS NOT NULL;
CREATE INDEX approvals_escalate ON approvals (escalate_at)
    WHERE status = 'pending' AND escalate_at IS NOT NULL;

-- Notifications may be about a batch (one link per approver for all members).
ALTER TABLE notifications ALTER COLUMN approval_id DROP NOT NULL;
ALTER TABLE notifications ADD COLUMN batch_uid uuid REFERENCES batches (uid) ON DELETE CASCADE;
ALTER TABLE notifications ADD CONSTRAINT notifications_subject
    CHECK ((approval_id IS NULL) <> (batch_uid IS NULL));
