-- 001_core.sql -- the core schema of Countersign.
--
-- Never edit a merged migration: add NNN_<what>.sql instead. Migrations run
-- in one transaction each, under an advisory lock (cli/migrate.c), so any
-- number of processes may start at once.
--
-- The approval lifecycle (include/cs_approval.h owns the diagram):
--   pending -> approved -> executing -> executed | failed
--   pending -> denied | expired | cancelled
--   executing -> approved      (lease lapsed, provider honours idempotency keys)
-- The database refuses any other transition, any change to a stored request
-- or to its window and quorum, any decision after expires_at, and any UPDATE
-- or DELETE of the audit log.

-- Identities --------------------------------------------------------------

CREATE TABLE agents (
    id          uuid PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    disabled_at timestamptz
);

-- API keys are stored as SHA-256 of the whole key (keys carry 256 bits of
-- entropy, so a slow hash adds nothing); `prefix` is shown in listings.
CREATE TABLE api_keys (
    id          uuid PRIMARY KEY,
    agent_id    uuid NOT NULL REFERENCES agents (id),
    key_hash    bytea NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    prefix      text NOT NULL,
    scopes      text[] NOT NULL DEFAULT '{submit,read}'
                    CHECK (scopes <@ '{submit,read}' AND cardinality(scopes) >= 1),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX api_keys_agent ON api_keys (agent_id);

-- An approver is a person. `agent_id` links a person to the agent they
-- operate: such a person may never vote on that agent's requests.
CREATE TABLE approvers (
    id                uuid PRIMARY KEY,
    name              text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 128),
    email             text,
    webhook_url       text,
    slack_webhook_url text,
    agent_id          uuid REFERENCES agents (id),
    created_at        timestamptz NOT NULL DEFAULT now(),
    disabled_at       timestamptz
);

-- Out of office: links created in [starts_at, ends_at) go to the delegate.
CREATE TABLE delegations (
    id          uuid PRIMARY KEY,
    approver_id uuid NOT NULL REFERENCES approvers (id),
    delegate_id uuid NOT NULL REFERENCES approvers (id),
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    CHECK (approver_id <> delegate_id),
    CHECK (ends_at > starts_at)
);
CREATE INDEX delegations_approver ON delegations (approver_id, starts_at);

-- Policies and grants -----------------------------------------------------

-- mode: 'always' (every call needs approval), 'never' (no call does), or
-- 'rules' (a call needs approval when any rule matches; see cs_policy.h).
CREATE TABLE policies (
    id                  text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$'),
    mode                text NOT NULL CHECK (mode IN ('always', 'never', 'rules')),
    rules               jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(rules) = 'array'),
    quorum              int NOT NULL CHECK (quorum >= 1),
    window_seconds      int NOT NULL DEFAULT 3600 CHECK (window_seconds BETWEEN 1 AND 2592000),
    exec_timeout_ms     int NOT NULL DEFAULT 30000 CHECK (exec_timeout_ms BETWEEN 100 AND 600000),
    max_attempts        int NOT NULL DEFAULT 3 CHECK (max_attempts BETWEEN 1 AND 20),
    amount_field        text,
    reminder_interval_s int CHECK (reminder_interval_s IS NULL OR reminder_interval_s >= 1),
    escalate_after_s    int CHECK (escalate_after_s IS NULL OR escalate_after_s >= 1),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE policy_approvers (
    policy_id   text NOT NULL REFERENCES policies (id) ON DELETE CASCADE,
    approver_id uuid NOT NULL REFERENCES approvers (id),
    escalation  boolean NOT NULL DEFAULT false,
    PRIMARY KEY (policy_id, approver_id)
);

-- secret: AES-256-GCM blob (cs_crypto.h) with AAD 'grant:<id>'; never
-- returned by any query except load_grant_secret.
-- allowed_bases: 'https://host[:port][/path]' entries; plain http only
-- where an entry says http:// explicitly.
CREATE TABLE grants (
    id               text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$'),
    secret           bytea NOT NULL,
    inject           text NOT NULL CHECK (inject IN ('bearer', 'basic', 'header')),
    inject_header    text CHECK ((inject = 'header') = (inject_header IS NOT NULL)),
    allowed_bases    text[] NOT NULL CHECK (cardinality(allowed_bases) >= 1),
    idempotency_keys boolean NOT NULL DEFAULT false,
    policy_id        text NOT NULL REFERENCES policies (id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    disabled_at      timestamptz
);

CREATE TABLE grant_agents (
    grant_id text NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    agent_id uuid NOT NULL REFERENCES agents (id),
    PRIMARY KEY (grant_id, agent_id)
);

-- Approvals ---------------------------------------------------------------

CREATE TABLE approvals (
    id                 uuid PRIMARY KEY,
    request_id         text NOT NULL CHECK (length(request_id) BETWEEN 1 AND 200),
    agent_id           uuid NOT NULL REFERENCES agents (id),
    grant_id           text NOT NULL REFERENCES grants (id),
    policy_id          text NOT NULL,
    batch_id           text,
    -- The immutable request (trigger approvals_guard) and its digest.
    method             text NOT NULL,
    url                text NOT NULL,
    headers            jsonb NOT NULL DEFAULT '{}',
    body               bytea NOT NULL DEFAULT '',
    reason             text NOT NULL DEFAULT '',
    context            jsonb NOT NULL DEFAULT '{}',
    digest             bytea NOT NULL CHECK (length(digest) = 32),
    policy             jsonb NOT NULL,        -- snapshot taken at submission
    approvers          uuid[] NOT NULL DEFAULT '{}',
    quorum             int NOT NULL CHECK (quorum >= 0),
    -- State.
    status             text NOT NULL CHECK (status IN ('pending', 'approved', 'executing',
                           'executed', 'failed', 'denied', 'expired', 'cancelled')),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    expires_at         timestamptz NOT NULL,
    decided_at         timestamptz,
    decided_by         text,
    decision_reason    text,
    lease_owner        text,
    lease_expires_at   timestamptz,
    attempts           int NOT NULL DEFAULT 0,
    executed_at        timestamptz,
    -- Outcome.
    response_status    int,
    response_headers   jsonb,
    response_body      bytea,
    response_truncated boolean NOT NULL DEFAULT false,
    error_code         text,
    error_message      text,
    UNIQUE (agent_id, request_id),
    CHECK (status <> 'pending' OR quorum >= 1)
);
CREATE INDEX approvals_pending ON approvals (expires_at) WHERE status = 'pending';
CREATE INDEX approvals_approved ON approvals (decided_at) WHERE status = 'approved';
CREATE INDEX approvals_executing ON approvals (lease_expires_at) WHERE status = 'executing';
CREATE INDEX approvals_terminal ON approvals (updated_at)
    WHERE status IN ('executed', 'failed', 'denied', 'expired', 'cancelled');
CREATE INDEX approvals_batch ON approvals (agent_id, batch_id) WHERE batch_id IS NOT NULL;

-- One row per vote. approver_id is whose vote it is; cast_by is the person
-- who cast it (a delegate votes on an approver's behalf). Each approver
-- votes once and each person votes once per approval.
CREATE TABLE votes (
    approval_id uuid NOT NULL REFERENCES approvals (id) ON DELETE CASCADE,
    approver_id uuid NOT NULL REFERENCES approvers (id),
    cast_by     uuid NOT NULL REFERENCES approvers (id),
    decision    text NOT NULL CHECK (decision IN ('approve', 'deny')),
    reason      text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (approval_id, approver_id),
    UNIQUE (approval_id, cast_by)
);

CREATE FUNCTION approvals_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.id, NEW.request_id, NEW.agent_id, NEW.grant_id, NEW.policy_id, NEW.batch_id,
        NEW.method, NEW.url, NEW.headers, NEW.body, NEW.reason, NEW.context, NEW.digest,
        NEW.policy, NEW.created_at, NEW.expires_at, NEW.quorum)
       IS DISTINCT FROM
       (OLD.id, OLD.request_id, OLD.agent_id, OLD.grant_id, OLD.policy_id, OLD.batch_id,
        OLD.method, OLD.url, OLD.headers, OLD.body, OLD.reason, OLD.context, OLD.digest,
        OLD.policy, OLD.created_at, OLD.expires_at, OLD.quorum) THEN
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

CREATE TRIGGER approvals_guard BEFORE UPDATE ON approvals
    FOR EACH ROW EXECUTE FUNCTION approvals_guard();

-- Wake-ups: workers LISTEN cs_approved; long-poll waiters LISTEN cs_done.
CREATE FUNCTION approvals_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'approved' THEN
        PERFORM pg_notify('cs_approved', '');
    ELSE
        PERFORM pg_notify('cs_done', NEW.id::text);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER approvals_notify_insert AFTER INSERT ON approvals
    FOR EACH ROW WHEN (NEW.status = 'approved')
    EXECUTE FUNCTION approvals_notify();
CREATE TRIGGER approvals_notify_update AFTER UPDATE OF status ON approvals
    FOR EACH ROW WHEN (NEW.status IS DISTINCT FROM OLD.status AND NEW.status IN
        ('approved', 'executed', 'failed', 'denied', 'expired', 'cancelled'))
    EXECUTE FUNCTION approvals_notify();

-- Audit log ---------------------------------------------------------------
--
-- Append-only: UPDATE, DELETE and TRUNCATE are refused. Entries are chained
-- in seals: the scheduler's sealer (scheduler/sealer.c) closes every
-- transaction that has finished since the last seal into one audit_seal row
--   entries_hash = sha256(concatenation of cs_audit_line(e) ordered by txid, id)
--   hash         = sha256(prev_hash || 'seq|from|to|entries|' || entries_hash)
-- so a changed, removed or inserted entry breaks the chain
-- (`countersign audit verify` recomputes it in C, lib/cs_audit.c).
-- Checklist: cs_audit_line() here and audit_line() in lib/cs_audit.c change together.

CREATE TABLE audit (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    txid        xid8 NOT NULL DEFAULT pg_current_xact_id(),
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor       text NOT NULL,
    action      text NOT NULL,
    approval_id uuid,
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_txid ON audit (txid);
CREATE INDEX audit_approval ON audit (approval_id) WHERE approval_id IS NOT NULL;

CREATE TABLE audit_seal (
    seq          bigint PRIMARY KEY,
    from_txid    xid8 NOT NULL,
    to_txid      xid8 NOT NULL,
    entries      int NOT NULL,
    entries_hash bytea NOT NULL,
    prev_hash    bytea NOT NULL,
    hash         bytea NOT NULL,
    sealed_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (to_txid > from_txid)
);

CREATE FUNCTION cs_audit_line(a audit) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT a.id::text || '|' || a.txid::text || '|'
        || (extract(epoch FROM a.at) * 1000000)::bigint::text || '|'
        || a.actor || '|' || a.action || '|' || coalesce(a.approval_id::text, '') || '|'
        || a.detail::text || E'\n'
$$;

CREATE FUNCTION append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION append_only();
CREATE TRIGGER audit_seal_append_only BEFORE UPDATE OR DELETE ON audit_seal
    FOR EACH ROW EXECUTE FUNCTION append_only();
CREATE TRIGGER audit_seal_no_truncate BEFORE TRUNCATE ON audit_seal
    FOR EACH STATEMENT EXECUTE FUNCTION append_only();

-- Outbox ------------------------------------------------------------------
--
-- Written in the transaction of the transition it reports; published by the
-- worker's relay (worker/relay.c) in id order with `key` as the Kafka key.
-- A row is deleted once the broker has acknowledged it: the table holds
-- exactly what is not yet published, so it stays small unless Kafka is down
-- (then it is the buffer that loses nothing).

CREATE TABLE outbox (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic      text NOT NULL CHECK (topic IN ('events', 'results')),
    key        text NOT NULL,
    payload    jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One wake-up per inserting statement for the relay (LISTEN cs_outbox).
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('cs_outbox', '');
    RETURN NULL;
END $$;

CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

-- Event payloads, one definition for every transition. event_id is stable
-- across re-publication so consumers can deduplicate.
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
        'at', clock_timestamp()))
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
