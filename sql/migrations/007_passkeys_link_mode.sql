-- 007_passkeys_link_mode.sql -- passkey-signed votes and the opt-in semi-public link.
--
-- passkeys: an approver's registered WebAuthn credentials (public keys
-- only, as COSE_Key bytes). A policy with require_passkey makes every vote
-- on its approvals carry an assertion whose challenge commits to the
-- approval id, the request digest, the decision and the reason
-- (lib/cs_webauthn.c cs_webauthn_vote_challenge); the assertion is kept in
-- the vote's audit entry so `countersign audit verify` can re-verify it
-- against the registered key. votes.passkey_id says which key signed.
--
-- link_mode 'semi-public': the approval_url itself carries the decision
-- form for link_lifetime_s after creation (the guide's semi-public link).
-- Refused with a quorum above 1 or require_passkey (here) and for batches
-- (lib/cs_batch.c). Default 'signin': every vote needs a signed-in person.

CREATE TABLE passkeys (
    id            uuid PRIMARY KEY,
    approver_id   uuid NOT NULL REFERENCES approvers (id),
    credential_id bytea NOT NULL UNIQUE CHECK (length(credential_id) BETWEEN 1 AND 1023),
    public_key    bytea NOT NULL CHECK (length(public_key) BETWEEN 1 AND 2048),
    alg           int NOT NULL CHECK (alg IN (-7, -257)),
    sign_count    bigint NOT NULL DEFAULT 0 CHECK (sign_count BETWEEN 0 AND 4294967295),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX passkeys_approver ON passkeys (approver_id) WHERE revoked_at IS NULL;

ALTER TABLE votes ADD COLUMN passkey_id uuid REFERENCES passkeys (id);

ALTER TABLE policies ADD COLUMN require_passkey boolean NOT NULL DEFAULT false;
ALTER TABLE policies ADD COLUMN link_mode text NOT NULL DEFAULT 'signin'
    CHECK (link_mode IN ('signin', 'semi-public'));
ALTER TABLE policies ADD COLUMN link_lifetime_s int
    CHECK (link_lifetime_s IS NULL OR link_lifetime_s BETWEEN 60 AND 86400);
ALTER TABLE policies ADD CONSTRAINT policies_semi_public CHECK (
    link_mode = 'signin'
    OR (quorum = 1 AND NOT require_passkey AND link_lifetime_s IS NOT NULL));
