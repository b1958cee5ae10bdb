-- 011_audit_signed.sql -- audit seals signed with a key the database lacks.
--
-- The chain of 001 is plain SHA-256: whoever can write SQL can rewrite an
-- entry and recompute every later seal. From here on the scheduler signs
-- each seal it makes: mac = HMAC-SHA256(k, 'countersign-audit-seal/v1|'
-- || seq || '|' || hex(hash)), k derived from the master key, which the
-- database never holds (lib/cs_audit.c; checklist: seal_mac() there and
-- this comment change together). A prune anchor is signed the same way
-- ('countersign-audit-prune/v1|' || through_seq || '|' || hex(anchor)),
-- so an anchor forged to hide deleted seals is told from a real prune.
--
-- Seals made before this migration keep mac NULL: `countersign audit
-- verify` reports them as the legacy (unsigned) range, which must be a
-- prefix of the chain; an unsigned seal after a signed one is a forgery.

ALTER TABLE audit_seal ADD COLUMN mac bytea CHECK (mac IS NULL OR length(mac) = 32);

-- audit_prune(days, through_seq, mac, actor): as in 009, but the scheduler
-- names the last seal to prune (audit_prune_plan picks it) and passes its
-- signature of the anchor. Refused: a seal that does not exist (nothing to
-- prune through: a partial or unsealed range), the newest seal, and any
-- seal up to through_seq sealed less than `days` (>= 1) days ago.
DROP FUNCTION audit_prune(int, int, text);
CREATE FUNCTION audit_prune(days int, through_seq bigint, mac text, actor text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    head bigint;
    last_hash bytea;
    lo xid8;
    hi xid8;
    n_entries bigint;
    n_seals bigint;
BEGIN
    IF days IS NULL OR days < 1 THEN
        RAISE EXCEPTION 'audit_prune: retention must be at least 1 day' USING ERRCODE = '22023';
    END IF;
    IF mac IS NULL OR mac !~ '^[0-9a-f]{64}$' THEN
        RAISE EXCEPTION 'audit_prune: the anchor signature must be 64 hex digits'
            USING ERRCODE = '22023';
    END IF;
    SELECT max(seq) INTO head FROM public.audit_seal;
    SELECT hash INTO last_hash FROM public.audit_seal WHERE seq = through_seq;
    IF last_hash IS NULL THEN
        RAISE EXCEPTION 'audit_prune: no seal % to prune through (only whole seals are pruned)',
            through_seq USING ERRCODE = '22023';
    END IF;
    IF through_seq >= head THEN
        RAISE EXCEPTION 'audit_prune: seal % is the newest; it stays', through_seq
            USING ERRCODE = '22023';
    END IF;
    IF EXISTS (SELECT 1 FROM public.audit_seal WHERE seq <= through_seq
               AND sealed_at >= now() - make_interval(days => days)) THEN
        RAISE EXCEPTION 'audit_prune: seals up to % are not all older than % days', through_seq,
            days USING ERRCODE = '22023';
    END IF;
    SELECT min(from_txid), max(to_txid), count(*) INTO lo, hi, n_seals
      FROM public.audit_seal WHERE seq <= through_seq;
    PERFORM set_config('countersign.audit_prune', 'on', true);
    DELETE FROM public.audit WHERE txid >= lo AND txid < hi;
    GET DIAGNOSTICS n_entries = ROW_COUNT;
    DELETE FROM public.audit_seal WHERE seq <= through_seq;
    PERFORM set_config('countersign.audit_prune', 'off', true);
    INSERT INTO public.audit (actor, action, approval_id, detail)
    VALUES (actor, 'audit.pruned', NULL, jsonb_build_object(
        'through_seq', through_seq, 'anchor', encode(last_hash, 'hex'), 'mac', mac,
        'entries', n_entries, 'older_than_days', days));
    RETURN n_seals;
END $$;
REVOKE ALL ON FUNCTION audit_prune(int, bigint, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_prune(int, bigint, text, text) TO countersign_scheduler;
