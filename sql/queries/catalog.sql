-- Agents, grants and policies as the engine reads them (lib/cs_catalog.c).
-- Columns are read by position: keep the C enums beside their use in step.

-- name: agent_by_name
SELECT id, name, disabled_at IS NOT NULL AS disabled FROM agents WHERE name = $1;

-- name: agent_by_id
SELECT id, name, disabled_at IS NOT NULL AS disabled FROM agents WHERE id = $1::uuid;

-- name: grant_load
-- A grant with its bound agents and its policy, approvers resolved to the
-- person holding their link right now (an active delegate, one hop only).
SELECT g.id, g.secret, g.inject, g.inject_header, array_to_json(g.allowed_bases)::text AS allowed_bases_json,
       g.idempotency_keys, g.disabled_at IS NOT NULL AS disabled,
       coalesce((SELECT json_agg(ga.agent_id)::text FROM grant_agents ga
                 WHERE ga.grant_id = g.id), '[]') AS agent_ids_json,
       p.id AS policy_id, p.mode, p.rules::text, p.quorum, p.window_seconds, p.exec_timeout_ms,
       p.max_attempts, p.amount_field, p.reminder_interval_s, p.escalate_after_s,
       coalesce((SELECT json_agg(json_build_array(a.id, cs_link_holder(a.id)) ORDER BY a.id)::text
                 FROM policy_approvers pa JOIN approvers a ON a.id = pa.approver_id
                 WHERE pa.policy_id = p.id AND NOT pa.escalation AND a.disabled_at IS NULL),
                '[]') AS approvers_json,
       coalesce((SELECT json_agg(pa.approver_id ORDER BY pa.approver_id)::text
                 FROM policy_approvers pa JOIN approvers a ON a.id = pa.approver_id
                 WHERE pa.policy_id = p.id AND pa.escalation AND a.disabled_at IS NULL), '[]') AS escalation_json,
       p.require_passkey, CASE WHEN p.link_mode = 'semi-public' THEN p.link_lifetime_s END AS link_lifetime_s,
       g.paused_at IS NOT NULL AS paused, g.in_progress_pattern,
       cs_grant_version(g.id) AS version
FROM grants g JOIN policies p ON p.id = g.policy_id
WHERE g.id = $1;

-- name: signing_key_load
-- A live signing key with its agent (lib/cs_catalog.c): not revoked, agent
-- enabled; the expiry (ms since the epoch, NULL: none) is checked at use.
SELECT k.id AS key_id, a.id AS agent_id, a.name AS agent_name,
       k.secret, (extract(epoch FROM k.expires_at) * 1000)::bigint AS expires_ms
FROM agent_signing_keys k JOIN agents a ON a.id = k.agent_id
WHERE k.id = $1::text AND k.revoked_at IS NULL AND a.disabled_at IS NULL
  AND (k.expires_at IS NULL OR k.expires_at > now());
