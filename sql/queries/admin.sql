-- Operator commands (cli/admin.c, and later the api's /v1/admin/*).

-- name: agent_create
INSERT INTO agents (id, name) VALUES ($1::uuid, $2::text) RETURNING id;

-- name: agent_list
SELECT a.id, a.name, a.created_at, a.disabled_at,
       (SELECT count(*) FROM api_keys k WHERE k.agent_id = a.id AND k.revoked_at IS NULL) AS live_keys
FROM agents a ORDER BY a.name;

-- name: agent_disable
UPDATE agents SET disabled_at = now() WHERE name = $1::text AND disabled_at IS NULL RETURNING id;

-- name: api_key_create
-- $1 id, $2 agent name, $3 sha256 of the key (hex), $4 display prefix, $5 scopes (text[] literal)
INSERT INTO api_keys (id, agent_id, key_hash, prefix, scopes)
SELECT $1::uuid, a.id, decode($3::text, 'hex'), $4::text, $5::text[]
FROM agents a WHERE a.name = $2::text AND a.disabled_at IS NULL
RETURNING id;

-- name: api_key_revoke
UPDATE api_keys SET revoked_at = now()
WHERE (id::text = $1::text OR prefix = $1::text) AND revoked_at IS NULL RETURNING id, prefix;

-- name: api_key_list
SELECT k.id, a.name, k.prefix, k.scopes::text, k.created_at, k.revoked_at
FROM api_keys k JOIN agents a ON a.id = k.agent_id
WHERE $1::text IS NULL OR a.name = $1::text ORDER BY k.created_at;

-- name: api_key_lookup
-- Authenticates a presented key by its hash; revoked keys and disabled agents
-- do not match. The last column: whether the key holds scope $2 (exactly).
SELECT k.id AS key_id, a.id AS agent_id, a.name AS agent_name,
       $2::text = ANY (k.scopes) AS has_scope FROM api_keys k
JOIN agents a ON a.id = k.agent_id
WHERE k.key_hash = decode($1::text, 'hex') AND k.revoked_at IS NULL AND a.disabled_at IS NULL;

-- name: signing_key_create
-- $1 key id, $2 agent name, $3 sealed secret (hex). Refused (no row) when the
-- agent is unknown or disabled, or already has two live keys; the agent's row
-- is locked so two creates cannot both see one live key.
WITH a AS (SELECT id FROM agents WHERE name = $2::text AND disabled_at IS NULL FOR UPDATE)
INSERT INTO agent_signing_keys (id, agent_id, secret)
SELECT $1::text, a.id, decode($3::text, 'hex') FROM a
WHERE (SELECT count(*) FROM agent_signing_keys k
       WHERE k.agent_id = a.id AND k.revoked_at IS NULL
         AND (k.expires_at IS NULL OR k.expires_at > now())) < 2
RETURNING id;

-- name: signing_key_retire
-- Rotation, before signing_key_create in the same transaction: the newest
-- live key of agent $1 stays live for $2 more seconds (or less, if it expires
-- sooner); any older live key expires now. Returns the keys it changed.
WITH a AS (SELECT id FROM agents WHERE name = $1::text AND disabled_at IS NULL FOR UPDATE),
live AS (
    SELECT k.id, row_number() OVER (ORDER BY k.created_at DESC, k.id DESC) AS n
    FROM agent_signing_keys k JOIN a ON a.id = k.agent_id
    WHERE k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now()))
UPDATE agent_signing_keys k
SET expires_at = CASE WHEN live.n = 1
                      THEN least(coalesce(k.expires_at, 'infinity'),
                                 now() + make_interval(secs => $2::int))
                      ELSE now() END
FROM live WHERE k.id = live.id
RETURNING k.id, k.expires_at;

-- name: signing_key_list
-- $1 agent name or NULL for all. state: live, expired or revoked.
SELECT k.id, a.name, k.created_at, k.expires_at, k.revoked_at,
       CASE WHEN k.revoked_at IS NOT NULL THEN 'revoked'
            WHEN k.expires_at IS NOT NULL AND k.expires_at <= now() THEN 'expired'
            ELSE 'live' END AS state
FROM agent_signing_keys k JOIN agents a ON a.id = k.agent_id
WHERE $1::text IS NULL OR a.name = $1::text ORDER BY a.name, k.created_at;

-- name: signing_key_revoke
UPDATE agent_signing_keys k SET revoked_at = now()
FROM agents a
WHERE k.id = $1::text AND a.id = k.agent_id AND k.revoked_at IS NULL
RETURNING k.id, a.name;

-- name: approver_create
-- $1 id, $2 name, $3 email, $4 webhook url, $5 slack webhook url, $6 agent name the person operates (or NULL),
-- $7 OpenID subject (or NULL)
INSERT INTO approvers (id, name, email, webhook_url, slack_webhook_url, agent_id, oidc_subject)
VALUES ($1::uuid, $2::text, $3::text, $4::text, $5::text,
        (SELECT id FROM agents WHERE name = $6::text), $7::text)
RETURNING id, agent_id IS NOT NULL OR $6::text IS NULL AS agent_ok;

-- name: approver_list
SELECT p.id, p.name, p.email, p.webhook_url, p.slack_webhook_url, a.name AS agent_name,
       p.disabled_at,
       p.oidc_subject, p.operator_role
FROM approvers p LEFT JOIN agents a ON a.id = p.agent_id ORDER BY p.name;

-- name: approver_set_operator
-- Grants (or with NULL takes away) the operator console role of approver
-- $1 (by name): $2 'read', 'write' or NULL; $3 audit actor. Returns the
-- approver's id when they exist.
WITH u AS (
    UPDATE approvers SET operator_role = $2::text WHERE name = $1::text
    RETURNING id, operator_role
), aud AS (
    INSERT INTO audit (actor, action, detail)
    SELECT $3::text, 'approver.operator_role',
           jsonb_build_object('approver_id', u.id, 'role', coalesce(u.operator_role, 'none'))
    FROM u
)
SELECT id FROM u;

-- name: approver_by_name
SELECT id FROM approvers WHERE name = $1::text AND disabled_at IS NULL;

-- name: policy_upsert
-- $1 id, $2 mode, $3 rules json, $4 quorum, $5 window s, $6 exec timeout ms, $7 max attempts,
-- $8 amount field, $9 reminder interval s, $10 escalate after s, $11 require passkey,
-- $12 link mode, $13 link lifetime s
INSERT INTO policies (id, mode, rules, quorum, window_seconds, exec_timeout_ms, max_attempts,
                      amount_field, reminder_interval_s, escalate_after_s, require_passkey,
                      link_mode, link_lifetime_s)
VALUES ($1::text, $2::text, $3::jsonb, $4::int, $5::int, $6::int, $7::int, $8::text, $9::int, $10::int,
        $11::bool, $12::text, $13::int)
ON CONFLICT (id) DO UPDATE SET mode = EXCLUDED.mode, rules = EXCLUDED.rules,
    quorum = EXCLUDED.quorum, window_seconds = EXCLUDED.window_seconds,
    exec_timeout_ms = EXCLUDED.exec_timeout_ms, max_attempts = EXCLUDED.max_attempts,
    amount_field = EXCLUDED.amount_field, reminder_interval_s = EXCLUDED.reminder_interval_s,
    escalate_after_s = EXCLUDED.escalate_after_s, require_passkey = EXCLUDED.require_passkey,
    link_mode = EXCLUDED.link_mode, link_lifetime_s = EXCLUDED.link_lifetime_s, updated_at = now()
RETURNING id;

-- name: policy_clear_approvers
DELETE FROM policy_approvers WHERE policy_id = $1::text;

-- name: policy_add_approver
-- $1 policy, $2 approver name, $3 escalation tier
INSERT INTO policy_approvers (policy_id, approver_id, escalation)
SELECT $1::text, id, $3::boolean FROM approvers WHERE name = $2::text AND disabled_at IS NULL
RETURNING approver_id;

-- name: policy_list
SELECT p.id, p.mode, p.rules::text, p.quorum, p.window_seconds, p.exec_timeout_ms,
       p.max_attempts,
       (SELECT string_agg(a.name || CASE WHEN pa.escalation THEN '*' ELSE '' END, ',' ORDER BY a.name)
        FROM policy_approvers pa JOIN approvers a ON a.id = pa.approver_id
        WHERE pa.policy_id = p.id) AS approvers
FROM policies p ORDER BY p.id;

-- name: grant_upsert
-- $1 id, $2 secret blob (hex), $3 inject, $4 inject header, $5 allowed bases (text[] as JSON),
-- $6 idempotency keys, $7 policy id, $8 rate per s (NULL: none), $9 burst (NULL: default),
-- $10 max in flight, $11 execution deadline s, $12 in-progress pattern (NULL: Stripe's only).
-- A pause (paused_at) is kept: only resume lifts it.
INSERT INTO grants (id, secret, inject, inject_header, allowed_bases, idempotency_keys, policy_id,
                    rate_per_s, burst, max_in_flight, exec_deadline_s, in_progress_pattern)
VALUES ($1::text, decode($2::text, 'hex'), $3::text, $4::text,
        ARRAY(SELECT jsonb_array_elements_text($5::jsonb)), $6::boolean, $7::text,
        $8::float8, $9::int, $10::int, $11::int, $12::text)
ON CONFLICT (id) DO UPDATE SET secret = EXCLUDED.secret, inject = EXCLUDED.inject,
    inject_header = EXCLUDED.inject_header, allowed_bases = EXCLUDED.allowed_bases,
    idempotency_keys = EXCLUDED.idempotency_keys, policy_id = EXCLUDED.policy_id,
    rate_per_s = EXCLUDED.rate_per_s, burst = EXCLUDED.burst,
    max_in_flight = EXCLUDED.max_in_flight, exec_deadline_s = EXCLUDED.exec_deadline_s,
    in_progress_pattern = EXCLUDED.in_progress_pattern,
    updated_at = now(), disabled_at = NULL
RETURNING id;

-- name: grant_set_bases
UPDATE grants SET allowed_bases = ARRAY(SELECT jsonb_array_elements_text($2::jsonb)),
    updated_at = now()
WHERE id = $1::text RETURNING id;

-- name: grant_bind_agent
-- Returns the agent's id whether or not it was bound already; no row: no such agent.
INSERT INTO grant_agents (grant_id, agent_id)
SELECT $1::text, id FROM agents WHERE name = $2::text
ON CONFLICT (grant_id, agent_id) DO UPDATE SET grant_id = EXCLUDED.grant_id
RETURNING agent_id;

-- name: grant_unbind_agent
DELETE FROM grant_agents WHERE grant_id = $1::text
    AND agent_id = (SELECT id FROM agents WHERE name = $2::text) RETURNING agent_id;

-- name: grant_disable
UPDATE grants SET disabled_at = now() WHERE id = $1::text RETURNING id;

-- name: grant_pause
-- Pauses grant $1 as actor $2 unless it is paused already; audited. Returns
-- whether this call paused it; no row: no such grant.
WITH u AS (
    UPDATE grants SET paused_at = clock_timestamp(), paused_by = $2::text
    WHERE id = $1::text AND paused_at IS NULL
    RETURNING id
), aud AS (
    INSERT INTO audit (actor, action, detail)
    SELECT $2::text, 'grant.paused', jsonb_build_object('grant_id', u.id) FROM u
)
SELECT (SELECT count(*) FROM u) > 0 AS changed FROM grants WHERE id = $1::text;

-- name: grant_resume
-- Resumes grant $1 as actor $2 if it is paused; audited, with how long it
-- was. Returns whether this call resumed it; no row: no such grant.
WITH o AS (
    SELECT id, paused_at FROM grants WHERE id = $1::text AND paused_at IS NOT NULL FOR UPDATE
), u AS (
    UPDATE grants g SET paused_at = NULL, paused_by = NULL
    FROM o WHERE g.id = o.id AND g.paused_at IS NOT NULL
    RETURNING g.id, o.paused_at
), aud AS (
    INSERT INTO audit (actor, action, detail)
    SELECT $2::text, 'grant.resumed', jsonb_build_object(
        'grant_id', u.id, 'paused_s', round(extract(epoch FROM clock_timestamp() - u.paused_at), 3))
    FROM u
)
SELECT (SELECT count(*) FROM u) > 0 AS changed FROM grants WHERE id = $1::text;

-- name: grant_list
-- Never returns the secret.
SELECT g.id, g.inject, g.inject_header, array_to_json(g.allowed_bases)::text AS allowed_bases,
       g.idempotency_keys,
       g.policy_id, g.disabled_at, g.paused_at, g.paused_by, g.rate_per_s, g.burst,
       g.max_in_flight, g.exec_deadline_s, g.in_progress_pattern,
       (SELECT f.throttled_until FROM grant_flow f
        WHERE f.grant_id = g.id AND f.throttled_until > now()) AS throttled_until,
       (SELECT string_agg(a.name, ',' ORDER BY a.name) FROM grant_agents ga
        JOIN agents a ON a.id = ga.agent_id WHERE ga.grant_id = g.id) AS agents
FROM grants g ORDER BY g.id;

-- name: delegation_create
-- $1 id, $2 approver name, $3 delegate name, $4 starts (timestamptz), $5 ends.
-- Refused (no row) when the delegate delegates back to the approver in an
-- overlapping period: a chain never loops.
INSERT INTO delegations (id, approver_id, delegate_id, starts_at, ends_at)
SELECT $1::uuid, a.id, d.id, $4::timestamptz, $5::timestamptz
FROM approvers a, approvers d
WHERE a.name = $2::text AND d.name = $3::text
  AND NOT EXISTS (
      SELECT 1 FROM delegations x
      WHERE x.approver_id = d.id AND x.delegate_id = a.id AND x.revoked_at IS NULL
        AND x.starts_at < $5::timestamptz AND x.ends_at > $4::timestamptz)
RETURNING id;

-- name: approval_list
-- $1 status or NULL, $2 limit
SELECT a.id, a.status, ag.name, a.grant_id, a.method, a.url, a.created_at, a.expires_at
FROM approvals a JOIN agents ag ON ag.id = a.agent_id
WHERE $1::text IS NULL OR a.status = $1::text
ORDER BY a.created_at DESC LIMIT $2::int;

-- name: approval_links
-- The approver slots of a pending approval with who holds each link now.
SELECT a.id, (extract(epoch FROM a.expires_at) * 1000)::bigint AS expires_ms, s.approver,
       cs_link_holder(s.approver) AS holder, p.name
FROM approvals a CROSS JOIN LATERAL unnest(a.approvers) AS s(approver)
JOIN approvers p ON p.id = s.approver
WHERE a.id = $1::uuid;
