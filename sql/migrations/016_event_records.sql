-- 016_event_records.sql -- transitions emit records; the relay renders the JSON.
--
-- Building an event's JSON inside the transition cost more than the rest of
-- an expiry sweep's work per row: jsonb_build_object looks up every
-- argument's type and output function on every call (measured on a 2-core
-- machine: cs_event() over 20 000 rows ~0.7 s against ~0.2 s for the same
-- fields as a row literal, 3.3x). Now the common transitions emit a row
-- literal of the fields (ROW(...)::text, whose column output functions are
-- looked up once per statement) and the relay, off every transaction's path,
-- renders the event JSON from it (lib/cs_eventrec.c), the same document
-- cs_event() / cs_result() build (tests/integration/test_event_records.py
-- compares the two for rows in every state).
--
-- Record layout (version 1; lib/cs_eventrec.c reads it, by position):
--   kind ('e' event, 'r' result, 'p' pending event), approval id, status,
--   attempts, request_id, agent_id, grant_id, batch_id, method, url,
--   digest (hex), created_at, expires_at, decided_at (unix microseconds),
--   decided_by, decision_reason, error_code, at (unix microseconds);
--   'r' adds executed_at (unix microseconds), response_status,
--   response_headers (JSON text), body_b64, body_truncated, error_message;
--   'p' adds approval_url and the approvers (a uuid[] literal).
-- A payload starting '(' is such a record, '{' JSON as before (batch
-- results, escalations, and whatever an older version left in the slot).

-- STABLE, as extract() on a timestamptz is: so it is inlined (IMMUTABLE would
-- make every call a function call, 4x slower).
CREATE FUNCTION cs_us(t timestamptz) RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT (extract(epoch FROM t) * 1000000)::bigint
$$;

CREATE FUNCTION cs_event_rec(a approvals) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT ROW('e', a.id, a.status, a.attempts, a.request_id, a.agent_id, a.grant_id,
               a.batch_id, a.method, a.url, encode(a.digest, 'hex'), cs_us(a.created_at),
               cs_us(a.expires_at), cs_us(a.decided_at), a.decided_by, a.decision_reason,
               a.error_code, cs_us(greatest(statement_timestamp(), a.decided_at, a.executed_at)))::text
$$;

CREATE FUNCTION cs_result_rec(a approvals) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT ROW('r', a.id, a.status, a.attempts, a.request_id, a.agent_id, a.grant_id,
               a.batch_id, a.method, a.url, encode(a.digest, 'hex'), cs_us(a.created_at),
               cs_us(a.expires_at), cs_us(a.decided_at), a.decided_by, a.decision_reason,
               a.error_code, cs_us(greatest(statement_timestamp(), a.decided_at, a.executed_at)),
               cs_us(a.executed_at), a.response_status, a.response_headers::text,
               translate(encode(a.response_body, 'base64'), E'\n', ''),
               CASE WHEN a.response_body IS NULL THEN NULL ELSE a.response_truncated END,
               a.error_message)::text
$$;

-- The event of a new approval: a pending one also carries its approval_url
-- and approvers (never a credential: reading the topic lets nobody vote).
CREATE FUNCTION cs_created_rec(a approvals, approval_url text) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN a.status <> 'pending' THEN cs_event_rec(a)
        ELSE ROW('p', a.id, a.status, a.attempts, a.request_id, a.agent_id, a.grant_id,
                 a.batch_id, a.method, a.url, encode(a.digest, 'hex'), cs_us(a.created_at),
                 cs_us(a.expires_at), cs_us(a.decided_at), a.decided_by, a.decision_reason,
                 a.error_code, cs_us(greatest(statement_timestamp(), a.decided_at, a.executed_at)),
                 approval_url, a.approvers)::text END
$$;

CREATE FUNCTION cs_emit(topic text, key text, payload text) RETURNS pg_lsn
    LANGUAGE sql VOLATILE AS $$
    SELECT pg_logical_emit_message(true, 'countersign.' || topic, key || E'\n' || payload)
$$;
