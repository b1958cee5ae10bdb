-- 004_audit_retention.sql -- the audit log's retention, chain intact.
--
-- With CS_AUDIT_RETENTION_DAYS set, the scheduler's retention duty prunes
-- the oldest whole seals (and the entries they cover) once they are older
-- than that. UPDATE and TRUNCATE stay refused; a DELETE is allowed only in a
-- transaction that has set countersign.audit_prune = on, which only the
-- prune statement does (sql/queries/audit.sql audit_prune). The prune
-- records an 'audit.pruned' entry holding the last pruned seal's hash: the
-- anchor `countersign audit verify` starts the remaining chain from.

CREATE OR REPLACE FUNCTION append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND TG_LEVEL = 'ROW'
       AND current_setting('countersign.audit_prune', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
