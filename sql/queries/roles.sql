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
DO $$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['countersign_owner', 'countersign_api', 'countersign_worker',
                             'countersign_scheduler'] LOOP
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
END $$;
