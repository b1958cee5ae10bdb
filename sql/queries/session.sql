-- Sign-in: one-time links, sessions, OpenID logins (lib/cs_signin.c,
-- lib/cs_session.c, api/signin.c). Every secret is stored as its SHA-256
-- (hex in, bytea in the table); the secret itself only ever reaches the
-- person's browser or channel.

-- name: signin_link_insert
-- $1 token hash (hex), $2 approver id, $3 next path, $4 purpose, $5 lifetime in seconds.
-- Only for an enabled approver; returns the expiry in ms.
INSERT INTO signin_links (token_hash, approver_id, next_path, purpose, expires_at)
SELECT decode($1::text, 'hex'), p.id, $3::text, $4::text,
       now() + make_interval(secs => $5::int)
FROM approvers p WHERE p.id = $2::uuid AND p.disabled_at IS NULL
RETURNING (extract(epoch FROM expires_at) * 1000)::bigint AS expires_ms;

-- name: signin_link_peek
-- What a GET of a sign-in link shows (it changes nothing): the approver's
-- name while the link is unused, unexpired and its approver enabled.
SELECT p.name, l.next_path
FROM signin_links l JOIN approvers p ON p.id = l.approver_id
WHERE l.token_hash = decode($1::text, 'hex') AND l.used_at IS NULL
  AND l.expires_at > now() AND p.disabled_at IS NULL;

-- name: signin_link_use
-- Spends a sign-in link, once: the guarded UPDATE wins for one caller only.
-- $1 token hash (hex). Returns the approver and where to go next.
WITH u AS (
    UPDATE signin_links l SET used_at = now()
    FROM approvers p
    WHERE l.token_hash = decode($1::text, 'hex') AND l.used_at IS NULL
      AND l.expires_at > now() AND p.id = l.approver_id AND p.disabled_at IS NULL
    RETURNING l.approver_id, l.next_path, l.purpose
), aud AS (
    INSERT INTO audit (actor, action, detail)
    SELECT 'approver:' || u.approver_id, 'signin.link', jsonb_build_object('purpose', u.purpose)
    FROM u
)
SELECT approver_id, next_path FROM u;

-- name: session_insert
-- $1 id, $2 token hash (hex), $3 approver, $4 method, $5 idle seconds,
-- $6 absolute seconds, $7 user agent, $8 address, $9 operator role the
-- OpenID provider granted for this session ('read', 'write' or NULL).
WITH s AS (
    INSERT INTO sessions (id, token_hash, approver_id, method, idle_seconds, expires_at,
                          user_agent, address, operator_role)
    VALUES ($1::uuid, decode($2::text, 'hex'), $3::uuid, $4::text, $5::int,
            now() + make_interval(secs => $6::int), left($7::text, 512), left($8::text, 64),
            $9::text)
    RETURNING id, approver_id, method, operator_role
), aud AS (
    INSERT INTO audit (actor, action, detail)
    SELECT 'approver:' || s.approver_id, 'session.created',
           jsonb_strip_nulls(jsonb_build_object('session_id', s.id, 'method', s.method,
                                                'operator_role', s.operator_role))
    FROM s
)
SELECT id FROM s;

-- name: session_lookup
-- The live session of a cookie: not revoked, within its absolute lifetime,
-- seen within its idle lifetime, its approver enabled. Touches last_seen_at
-- at most once a minute (one write per active person per minute, not per
-- request). $1 token hash (hex). The operator role is the stronger of the
-- approver's (CLI) and the session's (OpenID claim at sign-in).
WITH s AS (
    SELECT s.id, s.approver_id, s.method, p.name, s.last_seen_at,
           CASE WHEN 'write' IN (p.operator_role, s.operator_role) THEN 'write'
                WHEN 'read' IN (p.operator_role, s.operator_role) THEN 'read' END AS role
    FROM sessions s JOIN approvers p ON p.id = s.approver_id
    WHERE s.token_hash = decode($1::text, 'hex') AND s.revoked_at IS NULL
      AND s.expires_at > now() AND p.disabled_at IS NULL
      AND s.last_seen_at + make_interval(secs => s.idle_seconds) > now()
), t AS (
    UPDATE sessions x SET last_seen_at = now()
    FROM s WHERE x.id = s.id AND s.last_seen_at < now() - interval '60 seconds'
)
SELECT id, approver_id, method, name, role FROM s;

-- name: session_revoke
-- Signs one session out. $1 token hash (hex).
UPDATE sessions SET revoked_at = now()
WHERE token_hash = decode($1::text, 'hex') AND revoked_at IS NULL
RETURNING id;

-- name: session_revoke_approver
-- Revokes every live session of approver $1 (by name); $2 audit actor.
WITH u AS (
    UPDATE sessions s SET revoked_at = now()
    FROM approvers p
    WHERE p.name = $1::text AND s.approver_id = p.id AND s.revoked_at IS NULL
      AND s.expires_at > now()
    RETURNING s.id, p.id AS approver_id
), aud AS (
    INSERT INTO audit (actor, action, detail)
    SELECT $2::text, 'session.revoked', jsonb_build_object(
        'approver_id', (SELECT approver_id FROM u LIMIT 1), 'sessions', count(*))
    FROM u HAVING count(*) > 0
)
SELECT count(*) AS revoked FROM u;

-- name: session_list
-- The live sessions of approver $1 (by name), newest first.
SELECT s.id, s.method, s.created_at, s.last_seen_at, s.expires_at, s.user_agent, s.address
FROM sessions s JOIN approvers p ON p.id = s.approver_id
WHERE p.name = $1::text AND s.revoked_at IS NULL AND s.expires_at > now()
ORDER BY s.created_at DESC;

-- name: oidc_login_insert
-- $1 state hash (hex), $2 nonce, $3 PKCE verifier, $4 next path, $5 lifetime in seconds.
INSERT INTO oidc_logins (state_hash, nonce, verifier, next_path, expires_at)
VALUES (decode($1::text, 'hex'), $2::text, $3::text, $4::text,
        now() + make_interval(secs => $5::int));

-- name: oidc_login_take
-- Takes a pending OpenID login once (a replayed callback finds nothing).
-- $1 state hash (hex). Returns nonce, verifier, next path.
DELETE FROM oidc_logins
WHERE state_hash = decode($1::text, 'hex') AND expires_at > now()
RETURNING nonce, verifier, next_path;

-- name: oidc_approver
-- The approver an OpenID identity maps to: by subject, else (when $3 is
-- true: a verified email and CS_OIDC_MATCH_EMAIL on) by the one enabled
-- approver with that email and no subject of their own.
-- $1 sub, $2 email, $3 email usable.
SELECT id, name FROM approvers
WHERE disabled_at IS NULL AND oidc_subject = $1::text
UNION ALL
SELECT id, name FROM (
    SELECT id, name, count(*) OVER () AS n FROM approvers
    WHERE $3::bool AND disabled_at IS NULL AND oidc_subject IS NULL
      AND lower(email) = lower($2::text)) e
WHERE e.n = 1 AND NOT EXISTS (
    SELECT 1 FROM approvers WHERE disabled_at IS NULL AND oidc_subject = $1::text)
LIMIT 1;

-- name: voter_slot
-- The approver slot person $2 votes in on approval $1 (or, when $3, on
-- batch uid $1): their own, else one they hold by an active delegation;
-- no row when none. (cs_approval_vote and cs_batch_vote re-check
-- everything inside the voting transaction.)
SELECT s.slot FROM (
    SELECT approvers FROM approvals WHERE NOT $3::bool AND id = $1::uuid
    UNION ALL
    SELECT approvers FROM batches WHERE $3::bool AND uid = $1::uuid
) t
CROSS JOIN LATERAL (
    SELECT x FROM unnest(t.approvers) AS x
    WHERE x = $2::uuid OR EXISTS (
        SELECT 1 FROM delegations d
        WHERE d.approver_id = x AND d.delegate_id = $2::uuid AND d.revoked_at IS NULL
          AND now() >= d.starts_at AND now() < d.ends_at)
    ORDER BY x = $2::uuid DESC
    LIMIT 1) AS s(slot);

-- name: signin_resend
-- Queues a fresh sign-in link to each approver of pending approval $1 (or
-- decidable batch $2) who has not voted, through their own channels; at
-- most once a minute per approval, so a visitor cannot flood anyone.
WITH subj AS (
    SELECT a.id AS approval_id, NULL::uuid AS batch_uid, a.approvers
    FROM approvals a
    WHERE a.id = $1::uuid AND a.status = 'pending' AND a.expires_at > now()
    UNION ALL
    SELECT NULL, b.uid, b.approvers FROM batches b
    WHERE b.uid = $2::uuid AND b.status = 'decidable' AND b.expires_at > now()
), ok AS (
    SELECT * FROM subj WHERE NOT EXISTS (
        SELECT 1 FROM notifications n
        WHERE n.kind = 'signin' AND n.created_at > now() - interval '60 seconds'
          AND (n.approval_id = subj.approval_id OR n.batch_uid = subj.batch_uid))
), nt AS (
    INSERT INTO notifications (approval_id, batch_uid, approver_id, recipient_id, kind, channel)
    SELECT ok.approval_id, ok.batch_uid, s.slot, p.id, 'signin', ch
    FROM ok CROSS JOIN LATERAL unnest(ok.approvers) AS s(slot)
    JOIN approvers p ON p.id = cs_link_holder(s.slot)
    CROSS JOIN LATERAL cs_channels(p) AS ch
    WHERE p.disabled_at IS NULL
      AND NOT EXISTS (SELECT 1 FROM votes v
                      WHERE v.approval_id = ok.approval_id AND v.approver_id = s.slot)
      AND NOT EXISTS (SELECT 1 FROM batch_votes v
                      WHERE v.batch_uid = ok.batch_uid AND v.approver_id = s.slot)
    RETURNING id
)
SELECT (SELECT count(*) FROM ok) AS resent, (SELECT count(*) FROM nt) AS notified;

-- name: retention_signin
-- Deletes up to $1 sign-in links, sessions and OpenID logins that expired
-- (or were used / revoked) over a day ago. Returns rows deleted.
WITH l AS (
    DELETE FROM signin_links WHERE token_hash IN (
        SELECT token_hash FROM signin_links
        WHERE expires_at < now() - interval '1 day' LIMIT $1::int)
    RETURNING 1
), s AS (
    DELETE FROM sessions WHERE id IN (
        SELECT id FROM sessions
        WHERE expires_at < now() - interval '1 day'
           OR revoked_at < now() - interval '1 day' LIMIT $1::int)
    RETURNING 1
), o AS (
    DELETE FROM oidc_logins WHERE state_hash IN (
        SELECT state_hash FROM oidc_logins WHERE expires_at < now() LIMIT $1::int)
    RETURNING 1
)
SELECT (SELECT count(*) FROM l) + (SELECT count(*) FROM s) + (SELECT count(*) FROM o) AS deleted;
