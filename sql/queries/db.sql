-- Transactions and migrations (lib/cs_db.c).

-- name: begin
BEGIN;

-- name: commit
COMMIT;

-- name: rollback
ROLLBACK;

-- name: migrate_lock
-- Held for the whole migration run; released by migrate_unlock.
SELECT pg_advisory_lock($1::bigint) AS locked;

-- name: migrate_unlock
SELECT pg_advisory_unlock($1::bigint) AS unlocked;

-- name: migrate_init
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    int PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- name: migrate_exists
SELECT to_regclass('schema_migrations') IS NOT NULL AS exists;

-- name: migrate_version
SELECT coalesce(max(version), 0) AS version FROM schema_migrations;

-- name: migrate_record
INSERT INTO schema_migrations (version, name) VALUES ($1, $2);

-- name: listen_approved
LISTEN cs_approved;

-- name: listen_done
LISTEN cs_done;

-- name: listen_outbox
LISTEN cs_outbox;

-- name: leader_try_lock
-- One leader per lock key (lib/cs_leader.c): held by this session until it ends.
SELECT pg_try_advisory_lock($1::bigint) AS locked;

-- name: ping
SELECT 1 AS one;

-- name: queue_depths
-- Gauges for /metrics: approvals not yet terminal by status (each an index
-- scan of a partial index), and the outbox backlog.
SELECT (SELECT count(*) FROM approvals WHERE status = 'pending') AS pending,
       (SELECT count(*) FROM approvals WHERE status = 'approved') AS approved,
       (SELECT count(*) FROM approvals WHERE status = 'executing') AS executing,
       (SELECT count(*) FROM outbox) AS outbox,
       coalesce((SELECT extract(epoch FROM now() - min(created_at)) FROM outbox), 0)::float8 AS outbox_age_s;
