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

-- name: try_lock
-- The session advisory lock $1 if it is free now; never waits.
SELECT pg_try_advisory_lock($1::bigint) AS locked;

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

-- name: leader_try_lock
-- One leader per lock key (lib/cs_leader.c): held by this session until it ends.
SELECT pg_try_advisory_lock($1::bigint) AS locked;

-- name: ping
SELECT 1 AS one;

-- name: queue_depths
-- Gauges for /metrics: approvals not yet terminal by status (each an index
-- scan of a partial index).
SELECT (SELECT count(*) FROM approval_states WHERE status = 'pending') AS pending,
       (SELECT count(*) FROM approval_states WHERE status = 'approved') AS approved,
       (SELECT count(*) FROM approval_states WHERE status = 'executing') AS executing;

-- name: event_slot_state
-- The event slot $1 for /readyz and /metrics: whether it exists, whether a
-- relay reads it, and how many bytes of WAL it holds back (what a relay that
-- stays away costs the disk).
SELECT count(*) > 0 AS slot_exists, coalesce(bool_or(active), false) AS active,
       coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)), 0)::bigint
           AS lag_bytes
FROM pg_replication_slots WHERE slot_name = $1::name;

-- name: event_publication_create
-- The publication pgoutput reads the slot with (it only carries messages).
-- It must exist before the slot does: pgoutput looks it up as of each
-- decoded change, and a change older than the publication stops the stream.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_publication WHERE pubname = 'countersign_events') THEN
        CREATE PUBLICATION countersign_events;
    END IF;
END $$;

-- name: event_slot_create
-- Creates the logical replication slot $1 events are read from, unless it
-- exists (lib/cs_events.c). Must run outside a transaction that wrote.
SELECT pg_create_logical_replication_slot($1::name, 'pgoutput') AS slot
WHERE NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = $1::name);
