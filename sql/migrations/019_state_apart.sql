-- 019_state_apart.sql -- an approval's state apart from its request.
--
-- Every transition (claim, outcome, retry, decision, expiry) rewrote the
-- whole approval row: the stored request (headers, body, policy snapshot:
-- ~760 bytes) with it, and, status being in the partial indexes'
-- predicates, never as a HOT update, so each new row version also got an
-- entry in every index of the table (request id, batch, console lists).
-- Measured on a private Postgres 15 (100 000 rows per UPDATE, three runs):
-- 45-58 us per row per execution transition on the wide row, 13-19 us on a
-- narrow row of the state alone.
--
-- Now:
--   approval_requests  what was asked, written once by the insert and never
--                      updated (approvals_immutable refuses any UPDATE): the
--                      request, its digest, its policy snapshot.
--   approval_states    what happens to it: status, votes needed and who may
--                      cast them (escalation adds approvers), the lease, the
--                      retry counters, and the outcome, written once by the
--                      terminal transition. Narrow, fillfactor 70, holding
--                      the queue's partial indexes; grant_id, expires_at and
--                      quorum are copies the queue indexes and the CHECK
--                      need (approvals_guard refuses changing them).
--   approvals          a view joining the two, with the old table's columns
--                      in the old order: reads and the event functions are
--                      unchanged. Transitions UPDATE approval_states joined
--                      to approval_requests and return cs_approval(r, s),
--                      the view's row.
-- The two rows are written by one statement (insert_approvals) and removed
-- by one (retention_approvals); there is no foreign key between them, as
-- its check would lock the request row of every insert.
--
-- An existing database upgrades in place: the table is renamed, its state
-- columns copied to the new table, then dropped from it.

-- The functions of the table's row type move to the view's.
DROP FUNCTION cs_created_rec(approvals, text);
DROP FUNCTION cs_result_rec(approvals);
DROP FUNCTION cs_event_rec(approvals);
DROP FUNCTION cs_result(approvals);
DROP FUNCTION cs_event(approvals);
DROP TRIGGER approvals_guard ON approvals;
DROP TRIGGER approvals_immutable ON approvals;
DROP TRIGGER approvals_notify_insert ON approvals;
DROP TRIGGER approvals_notify_update ON approvals;

ALTER TABLE approvals RENAME TO approval_requests;
ALTER INDEX approvals_pkey RENAME TO approval_requests_pkey;
ALTER TABLE approval_requests
    RENAME CONSTRAINT approvals_agent_id_request_id_key TO approval_requests_agent_id_request_id_key;

CREATE TABLE approval_states (
    id                 uuid PRIMARY KEY,
    grant_id           text NOT NULL,
    expires_at         timestamptz NOT NULL,
    quorum             int NOT NULL CHECK (quorum >= 0),
    approvers          uuid[] NOT NULL DEFAULT '{}',
    status             text NOT NULL CHECK (status IN ('pending', 'approved', 'executing',
                           'executed', 'failed', 'denied', 'expired', 'cancelled')),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    decided_at         timestamptz,
    decided_by         text,
    decision_reason    text,
    lease_owner        text,
    lease_expires_at   timestamptz,
    attempts           int NOT NULL DEFAULT 0,
    failures           int NOT NULL DEFAULT 0,
    waits              int NOT NULL DEFAULT 0,
    last_wait          text CHECK (last_wait ~ '^[a-z_]{1,32}$'),
    not_before         timestamptz,
    next_reminder_at   timestamptz,
    escalate_at        timestamptz,
    executed_at        timestamptz,
    response_status    int,
    response_headers   jsonb,
    response_body      bytea,
    response_truncated boolean NOT NULL DEFAULT false,
    error_code         text,
    error_message      text,
    CHECK (status <> 'pending' OR quorum >= 1)
) WITH (fillfactor = 70);

INSERT INTO approval_states (id, grant_id, expires_at, quorum, approvers, status, updated_at,
    decided_at, decided_by, decision_reason, lease_owner, lease_expires_at, attempts,
    failures, waits, last_wait, not_before, next_reminder_at, escalate_at, executed_at,
    response_status, response_headers, response_body, response_truncated, error_code,
    error_message)
SELECT id, grant_id, expires_at, quorum, approvers, status, updated_at, decided_at, decided_by,
    decision_reason, lease_owner, lease_expires_at, attempts, failures, waits, last_wait,
    not_before, next_reminder_at, escalate_at, executed_at, response_status, response_headers,
    response_body, response_truncated, error_code, error_message
FROM approval_requests;

-- Dropping the columns drops the indexes on them; they are made again on
-- the state below, under the same names.
ALTER TABLE approval_requests
    DROP COLUMN expires_at, DROP COLUMN quorum, DROP COLUMN approvers, DROP COLUMN status,
    DROP COLUMN updated_at, DROP COLUMN decided_at, DROP COLUMN decided_by,
    DROP COLUMN decision_reason, DROP COLUMN lease_owner, DROP COLUMN lease_expires_at,
    DROP COLUMN attempts, DROP COLUMN failures, DROP COLUMN waits, DROP COLUMN last_wait,
    DROP COLUMN not_before, DROP COLUMN next_reminder_at, DROP COLUMN escalate_at,
    DROP COLUMN executed_at, DROP COLUMN response_status, DROP COLUMN response_headers,
    DROP COLUMN response_body, DROP COLUMN response_truncated, DROP COLUMN error_code,
    DROP COLUMN error_message;

CREATE INDEX approvals_pending ON approval_states (expires_at) WHERE status = 'pending';
CREATE INDEX approvals_approved ON approval_states (decided_at) WHERE status = 'approved';
CREATE INDEX approvals_queue ON approval_states (grant_id, decided_at) WHERE status = 'approved';
CREATE INDEX approvals_retry ON approval_states (not_before)
    WHERE status = 'approved' AND not_before IS NOT NULL;
CREATE INDEX approvals_executing ON approval_states (lease_expires_at) WHERE status = 'executing';
CREATE INDEX approvals_inflight ON approval_states (grant_id, lease_expires_at)
    WHERE status = 'executing';
CREATE INDEX approvals_terminal ON approval_states (updated_at)
    WHERE status IN ('executed', 'failed', 'denied', 'expired', 'cancelled');
CREATE INDEX approvals_reminder ON approval_states (next_reminder_at)
    WHERE status = 'pending' AND next_reminder_at IS NOT NULL;
CREATE INDEX approvals_escalate ON approval_states (escalate_at)
    WHERE status = 'pending' AND escalate_at IS NOT NULL;
CREATE INDEX approvals_console_status ON approval_states (status, id);

CREATE VIEW approvals AS
SELECT r.id, r.request_id, r.agent_id, r.grant_id, r.policy_id, r.batch_id, r.method, r.url,
       r.headers, r.body, r.reason, r.context, r.digest, r.policy, s.approvers, s.quorum,
       s.status, r.created_at, s.updated_at, s.expires_at, s.decided_at, s.decided_by,
       s.decision_reason, s.lease_owner, s.lease_expires_at, s.attempts, s.executed_at,
       s.response_status, s.response_headers, s.response_body, s.response_truncated,
       s.error_code, s.error_message, s.next_reminder_at, s.escalate_at, s.not_before,
       s.failures, s.waits, s.last_wait
FROM approval_requests r JOIN approval_states s ON s.id = r.id;

-- The view's row from a transition's two rows (inlined: one row constructor).
CREATE FUNCTION cs_approval(r approval_requests, s approval_states) RETURNS approvals
    LANGUAGE sql IMMUTABLE AS $$
    SELECT ROW(r.id, r.request_id, r.agent_id, r.grant_id, r.policy_id, r.batch_id, r.method,
               r.url, r.headers, r.body, r.reason, r.context, r.digest, r.policy, s.approvers,
               s.quorum, s.status, r.created_at, s.updated_at, s.expires_at, s.decided_at,
               s.decided_by, s.decision_reason, s.lease_owner, s.lease_expires_at, s.attempts,
               s.executed_at, s.response_status, s.response_headers, s.response_body,
               s.response_truncated, s.error_code, s.error_message, s.next_reminder_at,
               s.escalate_at, s.not_before, s.failures, s.waits, s.last_wait)::approvals
$$;

-- The request is never updated.
CREATE OR REPLACE FUNCTION approvals_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'approval %: the stored request is immutable', OLD.id
        USING ERRCODE = 'check_violation';
END $$;
CREATE TRIGGER approvals_immutable BEFORE UPDATE ON approval_requests
    FOR EACH ROW EXECUTE FUNCTION approvals_immutable();

-- The legal transitions, the decision deadline and updated_at (as 017), and
-- the copies of the request that the state carries; approvers only grow,
-- while pending (escalation).
CREATE OR REPLACE FUNCTION approvals_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.id, NEW.grant_id, NEW.expires_at, NEW.quorum)
       IS DISTINCT FROM (OLD.id, OLD.grant_id, OLD.expires_at, OLD.quorum)
       OR (NEW.approvers IS DISTINCT FROM OLD.approvers
           AND NOT (OLD.status = 'pending' AND NEW.approvers @> OLD.approvers)) THEN
        RAISE EXCEPTION 'approval %: the stored request is immutable', OLD.id
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.status IS DISTINCT FROM OLD.status THEN
        IF NOT ((OLD.status = 'pending' AND NEW.status IN ('approved', 'denied', 'expired', 'cancelled'))
             OR (OLD.status = 'approved' AND NEW.status = 'executing')
             OR (OLD.status = 'executing' AND NEW.status IN ('executed', 'failed', 'approved'))) THEN
            RAISE EXCEPTION 'approval %: illegal transition % -> %', OLD.id, OLD.status, NEW.status
                USING ERRCODE = 'check_violation';
        END IF;
        IF OLD.status = 'pending' AND NEW.status IN ('approved', 'denied')
           AND clock_timestamp() >= OLD.expires_at THEN
            RAISE EXCEPTION 'approval %: decision after expiry', OLD.id
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END $$;
CREATE TRIGGER approvals_guard BEFORE UPDATE ON approval_states
    FOR EACH ROW EXECUTE FUNCTION approvals_guard();

CREATE TRIGGER approvals_notify_insert AFTER INSERT ON approval_states
    FOR EACH ROW WHEN (NEW.status = 'approved') EXECUTE FUNCTION approvals_notify();
CREATE TRIGGER approvals_notify_update AFTER UPDATE OF status ON approval_states
    FOR EACH ROW WHEN (NEW.status IS DISTINCT FROM OLD.status
                       AND NEW.status IN ('approved', 'executed', 'failed', 'denied',
                                          'expired', 'cancelled'))
    EXECUTE FUNCTION approvals_notify();

-- The event functions (005, 016), unchanged but for their argument's type.
CREATE FUNCTION cs_event(a approvals) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'event_id', a.id::text || ':' || a.status || ':' || a.attempts,
        'type', 'approval.' || a.status,
        'approval_id', a.id,
        'request_id', a.request_id,
        'agent_id', a.agent_id,
        'grant_id', a.grant_id,
        'batch_id', a.batch_id,
        'status', a.status,
        'method', a.method,
        'url', a.url,
        'digest', encode(a.digest, 'hex'),
        'created_at', a.created_at,
        'expires_at', a.expires_at,
        'decided_at', a.decided_at,
        'decided_by', a.decided_by,
        'decision_reason', a.decision_reason,
        'attempts', a.attempts,
        'error_code', a.error_code,
        'at', greatest(statement_timestamp(), a.decided_at, a.executed_at)))
$$;

CREATE FUNCTION cs_result(a approvals) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT cs_event(a) || jsonb_strip_nulls(jsonb_build_object(
        'type', 'result.' || a.status,
        'executed_at', a.executed_at,
        'status_code', a.response_status,
        'headers', a.response_headers,
        'body_b64', translate(encode(a.response_body, 'base64'), E'\n', ''),
        'body_truncated', CASE WHEN a.response_body IS NULL THEN NULL
                               ELSE a.response_truncated END,
        'error_message', a.error_message))
$$;

CREATE FUNCTION cs_event_rec(a approvals) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT ROW('e', a.id, a.status, a.attempts, a.request_id, a.agent_id, a.grant_id,
               a.batch_id, a.method, a.url, encode(a.digest, 'hex'), cs_us(a.created_at),
               cs_us(a.expires_at), cs_us(a.decided_at), a.decided_by, a.decision_reason,
               a.error_code, cs_us(greatest(statement_timestamp(), a.decided_at, a.executed_at)))::text
$$;

CREATE FUNCTION cs_result_rec(a approvals) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT ROW('r', a.id, a.status, a.attempts, a.request_id, a.agent_id, a.grant_id,
               a.batch_id, a.method, a.url, encode(a.digest, 'hex'), cs_us(a.created_at),
               cs_us(a.expires_at), cs_us(a.decided_at), a.decided_by, a.decision_reason,
               a.error_code, cs_us(greatest(statement_timestamp(), a.decided_at, a.executed_at)),
               cs_us(a.executed_at), a.response_status, a.response_headers::text,
               translate(encode(a.response_body, 'base64'), E'\n', ''),
               CASE WHEN a.response_body IS NULL THEN NULL ELSE a.response_truncated END,
               a.error_message)::text
$$;

CREATE FUNCTION cs_created_rec(a approvals, approval_url text) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN a.status <> 'pending' THEN cs_event_rec(a)
        ELSE ROW('p', a.id, a.status, a.attempts, a.request_id, a.agent_id, a.grant_id,
                 a.batch_id, a.method, a.url, encode(a.digest, 'hex'), cs_us(a.created_at),
                 cs_us(a.expires_at), cs_us(a.decided_at), a.decided_by, a.decision_reason,
                 a.error_code, cs_us(greatest(statement_timestamp(), a.decided_at, a.executed_at)),
                 approval_url, a.approvers)::text END
$$;

-- Roles (009): nobody updates a request; the state as the table was.
REVOKE UPDATE ON approval_requests FROM countersign_api, countersign_worker, countersign_scheduler;
GRANT SELECT, INSERT, UPDATE ON approval_states TO countersign_api, countersign_worker;
GRANT SELECT, UPDATE, DELETE ON approval_states TO countersign_scheduler;
GRANT SELECT ON approvals TO countersign_api, countersign_worker, countersign_scheduler;
