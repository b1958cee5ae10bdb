-- 010_console.sql -- the operator console (api/console*.c, sql/queries/console.sql).
--
-- Operators are approvers with a role: 'read' sees every console page,
-- 'write' may also act (cancel, operator votes, pause, re-submit). The role
-- comes from the CLI (`countersign approver set NAME --operator read|write|none`,
-- audited) on approvers.operator_role, or from the OpenID provider at sign-in
-- (CS_OIDC_OPERATOR_CLAIM) on sessions.operator_role, which lasts as long as
-- that session. The stronger of the two counts.
--
-- The approvals list pages by keyset on the approval id: ids are UUIDv7
-- (cs_uuid_v7), so their order is creation order and a time range is an id
-- range (cs_uuid7_floor). One index per filter the list leads with.
--
-- dead_letters: what the ingest sent to the dead-letter topic, so the
-- console can show it: the reason, a safe preview (printable ASCII, at most
-- 200 bytes, never the whole message), the original's size and SHA-256.

ALTER TABLE approvers ADD COLUMN operator_role text
    CHECK (operator_role IN ('read', 'write'));
ALTER TABLE sessions ADD COLUMN operator_role text
    CHECK (operator_role IN ('read', 'write'));

CREATE INDEX approvals_console_status ON approvals (status, id);
CREATE INDEX approvals_console_grant ON approvals (grant_id, id);
CREATE INDEX approvals_console_agent ON approvals (agent_id, id);
-- A timeline shows the seal that covers each audit entry.
CREATE INDEX audit_seal_to ON audit_seal (to_txid);

-- The smallest UUIDv7 of the millisecond t: ids >= it were created at t or later.
CREATE FUNCTION cs_uuid7_floor(t timestamptz) RETURNS uuid LANGUAGE sql IMMUTABLE AS $$
    SELECT (lpad(to_hex(greatest(floor(extract(epoch FROM t) * 1000), 0)::bigint), 12, '0')
            || '00000000000000000000')::uuid
$$;

-- The creation time a UUIDv7 carries.
CREATE FUNCTION cs_uuid7_time(id uuid) RETURNS timestamptz LANGUAGE sql IMMUTABLE AS $$
    SELECT to_timestamp(('x' || lpad(left(replace(id::text, '-', ''), 12), 16, '0'))::bit(64)::bigint
                        / 1000.0)
$$;

CREATE TABLE dead_letters (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    reason     text NOT NULL,              -- an error code (cs_err)
    message    text NOT NULL DEFAULT '',
    topic      text NOT NULL,
    kpartition int NOT NULL,
    koffset    bigint NOT NULL,
    size       int NOT NULL CHECK (size >= 0),
    sha256     bytea NOT NULL CHECK (length(sha256) = 32),
    preview    text NOT NULL DEFAULT '' CHECK (length(preview) <= 200)
);
CREATE INDEX dead_letters_at ON dead_letters (at);

-- What each process may do with the new table (migration 009's rule).
GRANT SELECT ON dead_letters TO countersign_api;
GRANT INSERT ON dead_letters TO countersign_worker;
