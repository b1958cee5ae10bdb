-- 015_provider_limits.sql -- providers as real services (issue 14).
--
-- Per-grant limits shared by the whole fleet (set with `countersign grant
-- set --rate N/s --burst B --max-in-flight M`, or the admin API):
--   rate_per_s     a token bucket refilled at this rate; NULL: no rate limit
--   burst          the bucket's size; NULL: a tenth of a second's worth (>= 1)
--   max_in_flight  calls of the grant in flight across every worker, counted
--                  by unexpired leases, so a dead worker's calls stop counting
--                  when their leases lapse
--   exec_deadline_s  how long after approval a call may still wait in the
--                  queue or be retried for reasons that are not failures
--                  (throttled, in progress, never sent)
--   in_progress_pattern  a POSIX extended regex matched against
--                  "<status> <body>" of an answer that means "this
--                  idempotency key is still being processed" (Stripe's 409
--                  idempotency_key_in_use is always recognised)
--
-- grant_flow holds the fleet's running state of each grant's limiter, one
-- row per grant (created with the grant): the bucket (tokens as of
-- refilled_at) and throttled_until, set when the provider answers 429, or 503
-- with Retry-After, to pause the whole grant for the advised time. The
-- executor's claim (claim_approved) locks these rows FOR UPDATE SKIP LOCKED:
-- workers never wait on each other and never spend the same token twice.
--
-- approvals: a call waiting to be retried is back in 'approved' (it holds
-- no executor slot) with not_before; `failures` counts the attempts that
-- use up the policy's max_attempts (5xx, no answer after sending), `waits`
-- the retries that do not (throttled, in progress, never sent), and
-- last_wait the error code (docs/ERRORS.md) the call ends with if its
-- execution deadline passes while it waits: rate_limited, outcome_unknown
-- (a key still in progress), connect_failed or tls_error (never sent).

ALTER TABLE grants
    ADD COLUMN rate_per_s double precision CHECK (rate_per_s > 0 AND rate_per_s <= 100000),
    ADD COLUMN burst int CHECK (burst BETWEEN 1 AND 100000),
    ADD COLUMN max_in_flight int NOT NULL DEFAULT 16 CHECK (max_in_flight BETWEEN 1 AND 10000),
    ADD COLUMN exec_deadline_s int NOT NULL DEFAULT 3600
        CHECK (exec_deadline_s BETWEEN 1 AND 604800),
    ADD COLUMN in_progress_pattern text CHECK (length(in_progress_pattern) BETWEEN 1 AND 512);

CREATE TABLE grant_flow (
    grant_id        text PRIMARY KEY REFERENCES grants (id) ON DELETE CASCADE,
    tokens          double precision NOT NULL DEFAULT 1e9,   -- full (capped at burst)
    refilled_at     timestamptz NOT NULL DEFAULT now(),
    throttled_until timestamptz
);
INSERT INTO grant_flow (grant_id) SELECT id FROM grants;

CREATE FUNCTION grant_flow_create() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO grant_flow (grant_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
CREATE TRIGGER grants_flow AFTER INSERT ON grants
    FOR EACH ROW EXECUTE FUNCTION grant_flow_create();

ALTER TABLE approvals
    ADD COLUMN not_before timestamptz,
    ADD COLUMN failures int NOT NULL DEFAULT 0,
    ADD COLUMN waits int NOT NULL DEFAULT 0,
    ADD COLUMN last_wait text CHECK (last_wait ~ '^[a-z_]{1,32}$');

-- The queue of each grant, oldest decision first (the claim reads it per grant).
CREATE INDEX approvals_queue ON approvals (grant_id, decided_at) WHERE status = 'approved';
-- Calls waiting to be retried (the claim's next wake-up).
CREATE INDEX approvals_retry ON approvals (not_before)
    WHERE status = 'approved' AND not_before IS NOT NULL;
-- In flight per grant: unexpired leases.
CREATE INDEX approvals_inflight ON approvals (grant_id, lease_expires_at) WHERE status = 'executing';

-- Roles (009_roles.sql): the api and the CLI create grants (the trigger's
-- INSERT runs as them) and read the state for /metrics; the executor claims
-- (FOR UPDATE), spends tokens and throttles.
GRANT SELECT, INSERT ON grant_flow TO countersign_api;
GRANT SELECT, UPDATE ON grant_flow TO countersign_worker;
