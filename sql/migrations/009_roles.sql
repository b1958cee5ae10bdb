-- 009_roles.sql -- least-privilege roles for the processes.
--
-- The role that runs the migrations (the "owner": countersign_owner, or
-- whoever ran `countersign migrate` before this migration) owns every table
-- and function. The processes connect as roles that own nothing and hold
-- only the grants below, derived from the statements each one runs
-- (sql/queries/*.sql and which process calls them; `countersign db roles`
-- prints the administrator's bootstrap, sql/queries/roles.sql):
--   countersign_api        the api and the operator CLI (the admin API does
--                          what the CLI does)
--   countersign_worker     ingest, executor, notifier, relay
--   countersign_scheduler  the duties, the audit sealer and retention
-- None of them may UPDATE, DELETE or TRUNCATE audit or audit_seal, own a
-- table (so none can ALTER it, DISABLE or DROP a TRIGGER), or set
-- session_replication_role (a superuser setting). The audit is pruned only
-- by audit_prune() below, SECURITY DEFINER, executable by the scheduler
-- role alone. The countersign.audit_prune setting of migration 004 no
-- longer opens the audit to a DELETE by itself: only the table's owner may
-- delete with it on, which happens inside audit_prune().
--
-- Checklist: a later migration that adds a table or a function GRANTs what
-- each role needs of it, as below; tests/security/test_db_roles.py holds
-- the roles to what they may not do.

-- The roles must exist. An owner with CREATEROLE (or a superuser) makes
-- them here, NOLOGIN; otherwise an administrator runs the bootstrap that
-- `countersign db roles` prints first.
DO $$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['countersign_api', 'countersign_worker', 'countersign_scheduler'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = current_user
                           AND (rolsuper OR rolcreaterole)) THEN
                RAISE EXCEPTION 'role % does not exist: have an administrator run the SQL that '
                                '`countersign db roles` prints, then migrate again', r
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
        EXECUTE format('GRANT USAGE ON SCHEMA public TO %I', r);
    END LOOP;
END $$;

-- The prune setting opens a DELETE only to the table's owner.
CREATE OR REPLACE FUNCTION append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND TG_LEVEL = 'ROW'
       AND current_setting('countersign.audit_prune', true) = 'on'
       AND current_user = (SELECT r.rolname FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner
                           WHERE c.oid = TG_RELID) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;

-- audit_prune(days, max_seals, actor): deletes up to max_seals of the
-- oldest seals, only those before the first seal sealed less than `days`
-- (>= 1) days ago and never the newest seal, with exactly the entries they
-- cover (whole transactions: a seal's [from_txid, to_txid)), and records
-- the anchor the rest of the chain continues from. Returns the seals pruned.
CREATE FUNCTION audit_prune(days int, max_seals int, actor text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    head bigint;
    last_seq bigint;
    last_hash bytea;
    lo xid8;
    hi xid8;
    n_entries bigint;
    n_seals bigint;
BEGIN
    IF days IS NULL OR days < 1 THEN
        RAISE EXCEPTION 'audit_prune: retention must be at least 1 day' USING ERRCODE = '22023';
    END IF;
    IF max_seals IS NULL OR max_seals < 1 OR max_seals > 10000 THEN
        RAISE EXCEPTION 'audit_prune: max_seals must be 1..10000' USING ERRCODE = '22023';
    END IF;
    -- The prefix of the chain before the first young seal and before the
    -- newest seal (the head the next seal chains to stays).
    SELECT least(max(seq), min(seq) FILTER (WHERE sealed_at >= now() - make_interval(days => days)))
      INTO head FROM public.audit_seal;
    SELECT max(s.seq), min(s.from_txid), max(s.to_txid), count(*)
      INTO last_seq, lo, hi, n_seals
      FROM (SELECT seq, from_txid, to_txid FROM public.audit_seal
            WHERE seq < head ORDER BY seq LIMIT max_seals) s;
    IF n_seals = 0 THEN
        RETURN 0;
    END IF;
    SELECT hash INTO last_hash FROM public.audit_seal WHERE seq = last_seq;
    PERFORM set_config('countersign.audit_prune', 'on', true);
    DELETE FROM public.audit WHERE txid >= lo AND txid < hi;
    GET DIAGNOSTICS n_entries = ROW_COUNT;
    DELETE FROM public.audit_seal WHERE seq <= last_seq;
    PERFORM set_config('countersign.audit_prune', 'off', true);
    INSERT INTO public.audit (actor, action, approval_id, detail)
    VALUES (actor, 'audit.pruned', NULL, jsonb_build_object(
        'through_seq', last_seq, 'anchor', encode(last_hash, 'hex'),
        'entries', n_entries, 'older_than_days', days));
    RETURN n_seals;
END $$;
REVOKE ALL ON FUNCTION audit_prune(int, int, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_prune(int, int, text) TO countersign_scheduler;

-- Grants ------------------------------------------------------------------
-- SELECT wherever a statement reads the table (an UPDATE's WHERE, a
-- DELETE's USING, a FOR UPDATE lock also needs UPDATE). Foreign-key checks
-- and ON DELETE CASCADE run as the owner and need nothing here. Identity
-- columns need no sequence grant.

GRANT SELECT ON schema_migrations TO countersign_api, countersign_worker, countersign_scheduler;

-- api (and the CLI): submit, decide, cancel, pages, sign-in, the admin API.
GRANT SELECT, INSERT, UPDATE ON agents, api_keys, approvers, policies, grants, approvals,
    batches, signin_links, sessions, passkeys TO countersign_api;
GRANT SELECT, INSERT ON delegations, votes, batch_votes, notifications TO countersign_api;
GRANT SELECT, INSERT, DELETE ON policy_approvers, oidc_logins TO countersign_api;
GRANT SELECT, INSERT, UPDATE, DELETE ON grant_agents TO countersign_api;
GRANT SELECT, INSERT ON audit, outbox TO countersign_api;
GRANT SELECT ON audit_seal TO countersign_api;

-- worker: ingest, executor, notifier, relay.
GRANT SELECT ON agents, api_keys, approvers, delegations, policies, policy_approvers, grants,
    grant_agents, votes, batch_votes TO countersign_worker;
GRANT SELECT, INSERT, UPDATE ON approvals, batches, notifications TO countersign_worker;
GRANT SELECT, INSERT ON signin_links TO countersign_worker;
GRANT INSERT ON audit TO countersign_worker;
GRANT SELECT, INSERT, DELETE ON outbox TO countersign_worker;

-- scheduler: expiry, rescue, reminders, escalation, batch summaries,
-- sealing, retention (audit pruning only through audit_prune()).
GRANT SELECT ON agents, approvers, delegations, policies, policy_approvers, grants,
    grant_agents, votes, batch_votes TO countersign_scheduler;
GRANT SELECT, UPDATE, DELETE ON approvals, batches TO countersign_scheduler;
GRANT SELECT, INSERT ON notifications, audit, audit_seal TO countersign_scheduler;
GRANT SELECT, DELETE ON signin_links, sessions, oidc_logins TO countersign_scheduler;
GRANT INSERT ON outbox TO countersign_scheduler;
