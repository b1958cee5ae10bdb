-- 008_grant_pause.sql -- an operator pauses and resumes a grant.
--
-- While paused_at is set the executor starts no new call of the grant
-- (claim_approved skips its rows); calls already in flight finish, and calls
-- waiting in the queue start once it is resumed. paused_by is the actor.
-- Both are written only by cs_grant_pause/cs_grant_resume (lib/cs_admin.c),
-- guarded and audited ('grant.paused', 'grant.resumed').

ALTER TABLE grants ADD COLUMN paused_at timestamptz,
                   ADD COLUMN paused_by text,
                   ADD CHECK ((paused_at IS NULL) = (paused_by IS NULL));
