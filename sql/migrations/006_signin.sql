-- 006_signin.sql -- approvers sign in: sessions, one-time sign-in links, OIDC logins.
--
-- A vote is cast by a signed-in person, never by whoever holds a link
-- (SPEC, security invariant 2). Three tables, all holding only hashes of
-- the secrets handed to browsers:
--   signin_links  single-use, short-lived links addressed to one approver,
--                 sent through that approver's own channels (notifier) or
--                 minted by an operator (CLI, admin API);
--   sessions      server-side and revocable, with idle and absolute
--                 lifetimes; the browser holds the token in an HttpOnly
--                 cookie, the table its SHA-256;
--   oidc_logins   the state, nonce and PKCE verifier between the redirect
--                 to the OpenID provider and its callback, used once.
-- Approvers map to OpenID identities by `oidc_subject` (the ID token's
-- `sub` at the configured issuer) or by a verified email.
-- The scheduler's retention duty deletes what is expired or used.

ALTER TABLE approvers ADD COLUMN oidc_subject text UNIQUE
    CHECK (oidc_subject IS NULL OR length(oidc_subject) BETWEEN 1 AND 255);

CREATE TABLE signin_links (
    token_hash  bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    approver_id uuid NOT NULL REFERENCES approvers (id) ON DELETE CASCADE,
    next_path   text NOT NULL CHECK (next_path ~ '^/[^/\\]' AND length(next_path) <= 512),
    purpose     text NOT NULL,            -- why it was sent: request, reminder, operator, ...
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    CHECK (expires_at > created_at)
);
CREATE INDEX signin_links_expiry ON signin_links (expires_at);

CREATE TABLE sessions (
    id           uuid PRIMARY KEY,
    token_hash   bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    approver_id  uuid NOT NULL REFERENCES approvers (id) ON DELETE CASCADE,
    method       text NOT NULL CHECK (method IN ('oidc', 'link')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    idle_seconds int NOT NULL CHECK (idle_seconds >= 60),
    expires_at   timestamptz NOT NULL,    -- absolute lifetime
    revoked_at   timestamptz,
    user_agent   text CHECK (length(user_agent) <= 512),
    address      text CHECK (length(address) <= 64)
);
CREATE INDEX sessions_approver ON sessions (approver_id) WHERE revoked_at IS NULL;
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE oidc_logins (
    state_hash bytea PRIMARY KEY CHECK (length(state_hash) = 32),
    nonce      text NOT NULL,
    verifier   text NOT NULL,
    next_path  text NOT NULL CHECK (next_path ~ '^/[^/\\]' AND length(next_path) <= 512),
    expires_at timestamptz NOT NULL
);
CREATE INDEX oidc_logins_expiry ON oidc_logins (expires_at);

-- A message may now be a fresh sign-in link asked for from the status page.
ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check
    CHECK (kind IN ('request', 'reminder', 'escalation', 'signin'));
