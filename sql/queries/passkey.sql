-- Passkeys (lib/cs_passkey.c): an approver's WebAuthn credentials and the
-- counters that catch a cloned authenticator. Keys are public; ids and keys
-- travel as hex.

-- name: passkey_insert
-- $1 id, $2 approver, $3 credential id (hex), $4 COSE public key (hex), $5 alg,
-- $6 sign count, $7 name. A credential id already registered is a conflict.
WITH p AS (
    INSERT INTO passkeys (id, approver_id, credential_id, public_key, alg, sign_count, name)
    VALUES ($1::uuid, $2::uuid, decode($3::text, 'hex'), decode($4::text, 'hex'), $5::int,
            $6::bigint, $7::text)
    RETURNING id, approver_id, name
), aud AS (
    INSERT INTO audit (actor, action, detail)
    SELECT 'approver:' || p.approver_id, 'passkey.registered',
           jsonb_build_object('passkey_id', p.id, 'name', p.name)
    FROM p
)
SELECT id FROM p;

-- name: passkey_for_vote
-- The live passkey of person $1 with credential id $2 (hex).
SELECT id, encode(public_key, 'hex') AS public_key_hex, sign_count
FROM passkeys
WHERE approver_id = $1::uuid AND credential_id = decode($2::text, 'hex') AND revoked_at IS NULL;

-- name: passkey_count
-- Moves a passkey's counter from $2 to $3, once (a concurrent use of the
-- same counter value loses: a replayed or cloned assertion). $1 id.
UPDATE passkeys SET sign_count = $3::bigint, last_used_at = now()
WHERE id = $1::uuid AND sign_count = $2::bigint AND revoked_at IS NULL
RETURNING id;

-- name: passkey_key
-- The registered public key of passkey $1, revoked or not (audit verify
-- re-checks old votes).
SELECT encode(public_key, 'hex') AS public_key_hex, approver_id FROM passkeys WHERE id = $1::uuid;

-- name: passkey_credentials
-- The credential ids (base64url) of person $1's live passkeys, for the
-- browser's allowCredentials / excludeCredentials.
SELECT translate(rtrim(encode(credential_id, 'base64'), '='), E'+/\n', '-_') AS credential_id_b64url
FROM passkeys WHERE approver_id = $1::uuid AND revoked_at IS NULL
ORDER BY created_at;

-- name: passkey_list
-- Live passkeys of approver id $1, or of approver name $2.
SELECT k.id, k.name, k.alg, k.sign_count, k.created_at, k.last_used_at
FROM passkeys k JOIN approvers p ON p.id = k.approver_id
WHERE (p.id = $1::uuid OR p.name = $2::text) AND k.revoked_at IS NULL
ORDER BY k.created_at;

-- name: passkey_revoke
-- Revokes passkey $1 of approver id $2 (the person themselves) or of
-- approver name $3 (an operator); $4 audit actor.
WITH u AS (
    UPDATE passkeys k SET revoked_at = now()
    FROM approvers p
    WHERE k.id = $1::uuid AND p.id = k.approver_id AND k.revoked_at IS NULL
      AND (p.id = $2::uuid OR p.name = $3::text)
    RETURNING k.id, k.approver_id
), aud AS (
    INSERT INTO audit (actor, action, detail)
    SELECT $4::text, 'passkey.revoked',
           jsonb_build_object('passkey_id', u.id, 'approver_id', u.approver_id)
    FROM u
)
SELECT id FROM u;

-- name: vote_context
-- What a vote's passkey check needs of approval $1.
SELECT encode(digest, 'hex') AS digest_hex,
       coalesce((policy->>'require_passkey')::bool, false) AS require_passkey
FROM approvals WHERE id = $1::uuid;

-- name: audit_passkey_votes
-- Every audit entry holding a passkey-signed vote, for audit verify.
SELECT id, approval_id, action, detail::text FROM audit
WHERE action IN ('vote.approve', 'vote.deny') AND detail ? 'passkey'
ORDER BY id;
