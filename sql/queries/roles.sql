-- The database roles (migration 009): the bootstrap an administrator runs
-- once per database, printed or applied by `countersign db roles`.

-- name: roles_bootstrap
-- Run as an administrator that may create roles and grant on this
-- database and its public schema: a superuser, or on managed Postgres the
-- master user (RDS rds_superuser, Cloud SQL cloudsqlsuperuser). Creates the
-- owner (runs `countersign migrate`, owns every table) and the three
-- process roles, each able to log in (give each a password), none a
-- superuser, none a member of another. The table grants come with the
-- migrations, which the owner runs.
--
-- Events leave through a logical replication slot (migration 014): the
-- owner creates it when it migrates, and the worker's relay reads it as
-- countersign_relay (CS_RELAY_PG_URL), a role with no table grants at all.
-- Both need REPLICATION, which only a superuser may give; on RDS/Aurora the
-- master user grants rds_replication instead. Otherwise a notice says what
-- to ask of a superuser.
DO $$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['countersign_owner', 'countersign_api', 'countersign_worker',
                             'countersign_scheduler', 'countersign_relay'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I LOGIN', r);
        ELSE
            EXECUTE format('ALTER ROLE %I LOGIN', r);
        END IF;
        EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), r);
    END LOOP;
    EXECUTE format('GRANT CREATE ON DATABASE %I TO countersign_owner', current_database());
    GRANT USAGE, CREATE ON SCHEMA public TO countersign_owner;
    GRANT USAGE ON SCHEMA public TO countersign_api, countersign_worker, countersign_scheduler;
    REVOKE CREATE ON SCHEMA public FROM PUBLIC;
    FOREACH r IN ARRAY ARRAY['countersign_owner', 'countersign_relay'] LOOP
        IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
            EXECUTE format('ALTER ROLE %I REPLICATION', r);
        ELSIF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_replication') THEN
            EXECUTE format('GRANT rds_replication TO %I', r);
        ELSIF NOT (SELECT rolreplication FROM pg_roles WHERE rolname = r) THEN
            RAISE NOTICE 'ask a superuser for: ALTER ROLE % REPLICATION (events leave '
                         'through a logical replication slot)', r;
        END IF;
    END LOOP;
END $$;
