-- 005_event_inline.sql -- event payloads Postgres can inline.
--
-- cs_event() (001) is STABLE but called clock_timestamp(), which is
-- volatile, so the planner never inlined it: every event of every
-- transition ran as a separate SQL-function call (the ingest's 1000-row
-- insert made 1000 of them; 20-26 us each instead of ~13). Only 'at'
-- changes how it is computed: the moment of the transition as the row
-- records it (decided_at or executed_at, both clock_timestamp() of the
-- statement that set them) when the transition set one of those in this
-- statement, else the start of the statement that makes the transition
-- (statement_timestamp(), STABLE). Every other field, and the payload's
-- shape and format, are exactly 001's; cs_result() (unchanged text)
-- becomes inlinable with it.
--
-- Checklist: the events format in README.md ("Kafka topics and
-- messages") and these two functions change together.

CREATE OR REPLACE FUNCTION cs_event(a approvals) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'event_id', a.id::text || ':' || a.status || ':' || a.attempts,
        'type', 'approval.' || a.status,
        'approval_id', a.id,
        'request_id', a.request_id,
        'agent_id', a.agent_id,
        'grant_id', a.grant_id,
        'batch_id', a.batch_id,
        'status', a.status,
        'method', a.method,
        'url', a.url,
        'digest', encode(a.digest, 'hex'),
        'created_at', a.created_at,
        'expires_at', a.expires_at,
        'decided_at', a.decided_at,
        'decided_by', a.decided_by,
        'decision_reason', a.decision_reason,
        'attempts', a.attempts,
        'error_code', a.error_code,
        'at', greatest(statement_timestamp(), a.decided_at, a.executed_at)))
$$;

CREATE OR REPLACE FUNCTION cs_result(a approvals) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT cs_event(a) || jsonb_strip_nulls(jsonb_build_object(
        'type', 'result.' || a.status,
        'executed_at', a.executed_at,
        'status_code', a.response_status,
        'headers', a.response_headers,
        'body_b64', translate(encode(a.response_body, 'base64'), E'\n', ''),
        'body_truncated', CASE WHEN a.response_body IS NULL THEN NULL
                               ELSE a.response_truncated END,
        'error_message', a.error_message))
$$;
