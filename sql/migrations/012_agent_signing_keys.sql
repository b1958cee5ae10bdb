-- 012_agent_signing_keys.sql -- per-agent keys that sign Kafka request envelopes.
--
-- Every record on the requests topic carries `countersign-signature:
-- t=<unix>,k=<key id>,v1=<HMAC-SHA256 hex>` (include/cs_envsig.h). The
-- secret is stored encrypted like a grant secret: AES-256-GCM under the
-- master key, bound to the key id ("signing-key:<id>"), so the database
-- alone cannot sign or verify. A key is live while not revoked and not
-- past expires_at; at most two live keys per agent (the rotation overlap),
-- enforced by the create statement under a lock of the agent's row.

CREATE TABLE agent_signing_keys (
    id          text PRIMARY KEY CHECK (id ~ '^csk_[0-9a-f]{16}$'),
    agent_id    uuid NOT NULL REFERENCES agents (id),
    secret      bytea NOT NULL CHECK (length(secret) BETWEEN 29 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX agent_signing_keys_agent ON agent_signing_keys (agent_id) WHERE revoked_at IS NULL;

-- The api (and the operator CLI) manage keys; the worker's ingest reads them.
GRANT SELECT, INSERT, UPDATE ON agent_signing_keys TO countersign_api;
GRANT SELECT ON agent_signing_keys TO countersign_worker;
