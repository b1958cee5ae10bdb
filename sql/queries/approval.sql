-- The approval lifecycle (lib/cs_approval.c, worker/, scheduler/).
--
-- Every transition is one statement: a guarded UPDATE ... WHERE status =
-- <expected> that writes its audit entry and emits its event(s) in the
-- same statement, hence the same transaction. Zero rows returned means
-- another process won the race; callers treat that as "nothing to do".
-- Terminal transitions emit both an 'events' and a 'results' message.
--
-- Events are logical decoding messages emitted in a MATERIALIZED CTE named
-- ob, as row literals the relay renders as JSON (cs_event_rec and friends,
-- migration 016; lib/cs_eventrec.c): one message per statement and topic
-- holding every changed row's event (cs_emit_all of cs_entry's, migration
-- 020), which the relay splits. A SELECT CTE runs only when read, so the
-- statement's final SELECT reads it: WHERE (SELECT count(*) FROM ob) > 0
-- (true always: an aggregate has a row, NULL when there was nothing to emit).

-- name: insert_approvals
-- $1: JSON array of rows written by cs_approval_row_write() (its fields
-- and this recordset change together). Duplicates of (agent_id,
-- request_id) are skipped; returns the rows actually inserted.
WITH r AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(
        id uuid, request_id text, agent_id uuid, grant_id text, policy_id text,
        batch_id text, method text, url text, headers jsonb, body_b64 text, reason text,
        context jsonb, digest_hex text, policy jsonb, approvers uuid[], quorum int,
        status text, expires_ms bigint, approval_url text, holders jsonb, actor text, next_reminder_ms bigint,
        escalate_ms bigint)
), req AS (
    -- The request, written once (migration 019), and its state.
    INSERT INTO approval_requests AS q (id, request_id, agent_id, grant_id, policy_id, batch_id,
        method, url, headers, body, reason, context, digest, policy)
    SELECT id, request_id, agent_id, grant_id, policy_id, batch_id, method, url, headers,
        decode(body_b64, 'base64'), reason, context, decode(digest_hex, 'hex'), policy
    FROM r
    ON CONFLICT (agent_id, request_id) DO NOTHING
    RETURNING q
), st AS (
    INSERT INTO approval_states AS s (id, grant_id, expires_at, quorum, approvers, status,
        decided_at, decided_by, next_reminder_at, escalate_at)
    SELECT r.id, r.grant_id, to_timestamp(r.expires_ms / 1000.0), r.quorum, r.approvers,
        r.status, CASE WHEN r.status = 'approved' THEN clock_timestamp() END,
        CASE WHEN r.status = 'approved' THEN 'policy' END,
        to_timestamp(r.next_reminder_ms / 1000.0), to_timestamp(r.escalate_ms / 1000.0)
    FROM req JOIN r ON r.id = (req.q).id
    RETURNING s
), ins AS (
    SELECT cs_approval(req.q, st.s) AS a FROM req JOIN st ON (st.s).id = (req.q).id
), aud AS (
    -- What the immutable row holds (grant, policy, method, url, reason,
    -- quorum) is not repeated: the digest binds the entry to that request.
    INSERT INTO audit (actor, action, approval_id, detail)
    SELECT r.actor, 'approval.created', (i.a).id, jsonb_build_object(
        'status', (i.a).status, 'request_id', (i.a).request_id,
        'digest', encode((i.a).digest, 'hex'), 'batch_id', (i.a).batch_id)
    FROM ins i JOIN r ON r.id = (i.a).id
), ob AS MATERIALIZED (
    -- The pending event carries the approval_url and the approvers' ids,
    -- never a credential: reading the topic lets nobody vote.
    SELECT cs_emit_all('events', string_agg(
               cs_entry((i.a).id::text, cs_created_rec(i.a, r.approval_url)), ''))
    FROM ins i JOIN r ON r.id = (i.a).id
), nt AS (
    -- One message per approver slot and channel of the person who holds the
    -- slot now (the approver, or their delegate): the row's [slot, holder]
    -- pairs, resolved by the catalog (grant_load's cs_link_holder), so the
    -- insert runs no function per slot.
    INSERT INTO notifications (approval_id, approver_id, recipient_id, kind, channel)
    SELECT (i.a).id, (h->>0)::uuid, p.id, 'request', ch
    FROM ins i JOIN r ON r.id = (i.a).id
    CROSS JOIN LATERAL jsonb_array_elements(coalesce(r.holders, '[]'::jsonb)) AS h
    JOIN approvers p ON p.id = (h->>1)::uuid
    CROSS JOIN LATERAL cs_channels(p) AS ch
    WHERE (i.a).status = 'pending' AND p.disabled_at IS NULL
)
SELECT (i.a).id, (i.a).request_id, (i.a).status,
       (extract(epoch FROM (i.a).expires_at) * 1000)::bigint AS expires_ms,
       (i.a).batch_id, (i.a).agent_id
FROM ins i WHERE (SELECT count(*) FROM ob) > 0;

-- name: approval_by_request
-- The stored approval for an (agent, request id), for idempotent resubmission.
SELECT id, status, encode(digest, 'hex') AS digest_hex,
       (extract(epoch FROM expires_at) * 1000)::bigint AS expires_ms
FROM approvals WHERE agent_id = $1::uuid AND request_id = $2;

-- name: approver_get
SELECT id, name, agent_id, disabled_at IS NOT NULL AS disabled FROM approvers WHERE id = $1::uuid;

-- name: delegation_active
SELECT EXISTS (
    SELECT 1 FROM delegations
    WHERE approver_id = $1::uuid AND delegate_id = $2::uuid AND revoked_at IS NULL
      AND clock_timestamp() >= starts_at AND clock_timestamp() < ends_at) AS active;

-- name: vote_lock
-- Locks the approval for the voting transaction.
SELECT a.status, r.agent_id, a.quorum, a.expires_at <= clock_timestamp() AS expired,
       $2::uuid = ANY (a.approvers) AS is_approver,
       coalesce((r.policy->>'require_passkey')::bool, false) AS require_passkey
FROM approval_states a JOIN approval_requests r ON r.id = a.id WHERE a.id = $1::uuid
FOR UPDATE OF a;

-- name: vote_insert
-- $1 approval, $2 approver (whose vote), $3 cast_by (who voted), $4 'approve'|'deny',
-- $5 reason, $6 audit actor, $7 passkey id and $8 its assertion record (jsonb), or NULL.
-- Returns (approve votes now counted, inserted 0|1).
WITH v AS (
    INSERT INTO votes (approval_id, approver_id, cast_by, decision, reason, passkey_id)
    VALUES ($1::uuid, $2::uuid, $3::uuid, $4::text, $5::text, $7::uuid)
    ON CONFLICT DO NOTHING
    RETURNING approval_id
), aud AS (
    INSERT INTO audit (actor, action, approval_id, detail)
    SELECT $6::text, 'vote.' || $4::text, v.approval_id, jsonb_strip_nulls(jsonb_build_object(
        'approver_id', $2::uuid, 'cast_by', $3::uuid, 'reason', $5::text,
        'on_behalf_of', CASE WHEN $2::uuid <> $3::uuid THEN $2::uuid END,
        'passkey', $8::jsonb))
    FROM v
)
SELECT (SELECT count(*) FROM votes WHERE approval_id = $1::uuid AND decision = 'approve')
       + (SELECT count(*) FROM v WHERE $4::text = 'approve') AS approvals,
       (SELECT count(*) FROM v) AS inserted;

-- name: approval_decide
-- pending -> approved | denied. $1 id, $2 new status, $3 decided_by, $4 reason, $5 actor.
WITH u AS (
    UPDATE approval_states a SET status = $2::text, decided_at = clock_timestamp(),
        decided_by = $3::text, decision_reason = $4::text
    FROM approval_requests r
    WHERE a.id = $1::uuid AND r.id = a.id AND a.status = 'pending'
      AND a.expires_at > clock_timestamp() AND $2::text IN ('approved', 'denied')
    RETURNING cs_approval(r, a) AS a
), aud AS (
    INSERT INTO audit (actor, action, approval_id, detail)
    SELECT $5::text, 'approval.' || (u.a).status, (u.a).id, jsonb_strip_nulls(
        jsonb_build_object('decided_by', $3::text, 'reason', $4::text))
    FROM u
), ob AS MATERIALIZED (
    SELECT cs_emit_all('events', string_agg(cs_entry((u.a).id::text, cs_event_rec(u.a)), ''))
    FROM u
    UNION ALL
    SELECT cs_emit_all('results', string_agg(cs_entry((u.a).id::text, cs_result_rec(u.a)), ''))
    FROM u WHERE (u.a).status = 'denied'
)
SELECT (u.a).status FROM u WHERE (SELECT count(*) FROM ob) > 0;

-- name: link_decide
-- Semi-public link mode (policy link_mode): pending -> approved | denied by
-- whoever holds the approval_url, within link_lifetime_s of its creation.
-- Audited as by "link holder" with the client's address and user agent.
-- $1 id, $2 new status, $3 reason, $4 detail (jsonb: address, user_agent).
WITH u AS (
    UPDATE approval_states a SET status = $2::text, decided_at = clock_timestamp(),
        decided_by = 'link holder', decision_reason = $3::text
    FROM approval_requests r
    WHERE a.id = $1::uuid AND r.id = a.id AND a.status = 'pending'
      AND a.expires_at > clock_timestamp()
      AND r.policy->>'link_mode' = 'semi-public'
      AND clock_timestamp() < r.created_at
                              + make_interval(secs => (r.policy->>'link_lifetime_s')::int)
      AND $2::text IN ('approved', 'denied')
    RETURNING cs_approval(r, a) AS a
), aud AS (
    INSERT INTO audit (actor, action, approval_id, detail)
    SELECT 'link-holder', 'approval.' || (u.a).status, (u.a).id,
           $4::jsonb || jsonb_strip_nulls(jsonb_build_object('by', 'link holder',
                                                             'reason', $3::text))
    FROM u
), ob AS MATERIALIZED (
    SELECT cs_emit_all('events', string_agg(cs_entry((u.a).id::text, cs_event_rec(u.a)), ''))
    FROM u
    UNION ALL
    SELECT cs_emit_all('results', string_agg(cs_entry((u.a).id::text, cs_result_rec(u.a)), ''))
    FROM u WHERE (u.a).status = 'denied'
)
SELECT (u.a).status FROM u WHERE (SELECT count(*) FROM ob) > 0;

-- name: approval_cancel
-- pending -> cancelled by the requesting agent ($2), or by an operator ($2 NULL).
-- $1 id, $2 agent id, $3 actor, $4 reason.
WITH u AS (
    UPDATE approval_states a SET status = 'cancelled', decided_at = clock_timestamp(),
        decided_by = $3::text, decision_reason = $4::text
    FROM approval_requests r
    WHERE a.id = $1::uuid AND r.id = a.id AND ($2::uuid IS NULL OR r.agent_id = $2::uuid)
      AND a.status = 'pending'
    RETURNING cs_approval(r, a) AS a
), aud AS (
    INSERT INTO audit (actor, action, approval_id, detail)
    SELECT $3::text, 'approval.cancelled', (u.a).id,
           jsonb_strip_nulls(jsonb_build_object('reason', $4::text))
    FROM u
), ob AS MATERIALIZED (
    SELECT cs_emit_all('events', string_agg(cs_entry((u.a).id::text, cs_event_rec(u.a)), ''))
    FROM u
    UNION ALL
    SELECT cs_emit_all('results', string_agg(cs_entry((u.a).id::text, cs_result_rec(u.a)), ''))
    FROM u
)
SELECT (u.a).status FROM u WHERE (SELECT count(*) FROM ob) > 0;

-- name: approval_status
-- What a status read returns. $1 id, $2 agent id (NULL for operators).
-- Checklist: approval_answer begins with these columns, in this order.
SELECT a.id, a.status, a.agent_id, ag.name, a.grant_id, a.method, a.url,
       (extract(epoch FROM a.created_at) * 1000)::bigint AS created_ms,
       (extract(epoch FROM a.expires_at) * 1000)::bigint AS expires_ms,
       (extract(epoch FROM a.decided_at) * 1000)::bigint AS decided_ms,
       a.decided_by, a.decision_reason,
       (extract(epoch FROM a.executed_at) * 1000)::bigint AS executed_ms,
       a.response_status IS NOT NULL OR a.error_code IS NOT NULL AS has_result,
       (SELECT count(*) FROM votes v WHERE v.approval_id = a.id AND v.decision = 'approve') AS approvals,
       a.quorum, a.error_code, a.error_message, encode(a.digest, 'hex') AS digest_hex, a.reason,
       a.batch_id, a.request_id, a.attempts
FROM approvals a JOIN agents ag ON ag.id = a.agent_id
WHERE a.id = $1::uuid AND ($2::uuid IS NULL OR a.agent_id = $2::uuid);

-- name: approval_answer
-- Everything an agent's /result answer needs, in one read: approval_status's
-- columns first, in the same order (cs_approval.c asserts it, so its status
-- object is built from either), then the stored response.
-- $1 id, $2 agent id (NULL for operators).
SELECT a.id, a.status, a.agent_id, ag.name, a.grant_id, a.method, a.url,
       (extract(epoch FROM a.created_at) * 1000)::bigint AS created_ms,
       (extract(epoch FROM a.expires_at) * 1000)::bigint AS expires_ms,
       (extract(epoch FROM a.decided_at) * 1000)::bigint AS decided_ms,
       a.decided_by, a.decision_reason,
       (extract(epoch FROM a.executed_at) * 1000)::bigint AS executed_ms,
       a.response_status IS NOT NULL OR a.error_code IS NOT NULL AS has_result,
       (SELECT count(*) FROM votes v WHERE v.approval_id = a.id AND v.decision = 'approve') AS approvals,
       a.quorum, a.error_code, a.error_message, encode(a.digest, 'hex') AS digest_hex, a.reason,
       a.batch_id, a.request_id, a.attempts,
       a.response_status, a.response_headers::text,
       translate(encode(a.response_body, 'base64'), E'\n', '') AS response_body_b64,
       a.response_truncated
FROM approvals a JOIN agents ag ON ag.id = a.agent_id
WHERE a.id = $1::uuid AND ($2::uuid IS NULL OR a.agent_id = $2::uuid);

-- name: page_view
-- What the review page shows. $1 approval id.
SELECT a.id, a.status, ag.name, a.grant_id, a.method, a.url, a.headers::text,
       translate(encode(a.body, 'base64'), E'\n', '') AS body_b64, a.reason, a.context::text,
       encode(a.digest, 'hex') AS digest_hex,
       (extract(epoch FROM a.created_at) * 1000)::bigint AS created_ms,
       (extract(epoch FROM a.expires_at) * 1000)::bigint AS expires_ms, a.quorum,
       (SELECT count(*) FROM votes v WHERE v.approval_id = a.id AND v.decision = 'approve') AS approvals,
       a.decision_reason, a.batch_id, a.policy_id, a.error_code, a.response_status,
       CASE WHEN a.policy->>'link_mode' = 'semi-public'
            THEN (extract(epoch FROM a.created_at) * 1000)::bigint
                 + (a.policy->>'link_lifetime_s')::bigint * 1000 END AS link_expires_ms,
       coalesce((a.policy->>'require_passkey')::bool, false) AS require_passkey
FROM approvals a JOIN agents ag ON ag.id = a.agent_id
WHERE a.id = $1::uuid;

-- name: page_body
-- The stored request body alone, for its download and for refusing a page's
-- approve of a body the page cannot show. $1 approval id.
SELECT translate(encode(a.body, 'base64'), E'\n', '') AS body_b64, a.status
FROM approvals a
WHERE a.id = $1::uuid;

-- name: page_votes
-- The votes so far, oldest first. $1 approval id.
SELECT p.name AS voter_name, v.decision, v.reason, c.name AS cast_by_name,
       (extract(epoch FROM v.created_at) * 1000)::bigint AS created_ms,
       v.approver_id::text
FROM votes v JOIN approvers p ON p.id = v.approver_id JOIN approvers c ON c.id = v.cast_by
WHERE v.approval_id = $1::uuid
ORDER BY v.created_at;

-- name: inbox_pending
-- Pending approvals whose approver slot $1 holds, or holds by an active
-- delegation; oldest deadline first. Returns the slot to sign the link for.
SELECT a.id, s.slot, (extract(epoch FROM a.expires_at) * 1000)::bigint AS expires_ms,
       ag.name, a.method,
       a.url, a.reason
FROM approvals a
JOIN agents ag ON ag.id = a.agent_id
CROSS JOIN LATERAL (
    SELECT x FROM unnest(a.approvers) AS x
    WHERE x = $1::uuid OR EXISTS (
        SELECT 1 FROM delegations d
        WHERE d.approver_id = x AND d.delegate_id = $1::uuid AND d.revoked_at IS NULL
          AND now() >= d.starts_at AND now() < d.ends_at)
    LIMIT 1) AS s(slot)
WHERE a.status = 'pending' AND a.expires_at > now()
  AND NOT EXISTS (SELECT 1 FROM votes v WHERE v.approval_id = a.id AND v.cast_by = $1::uuid)
ORDER BY a.expires_at
LIMIT 200;
