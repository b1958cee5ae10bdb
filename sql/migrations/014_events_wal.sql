-- 014_events_wal.sql -- events leave through the WAL, not an outbox table.
--
-- A transition emits each of its events with cs_emit(): a transactional
-- logical decoding message (pg_logical_emit_message), so an event exists
-- exactly when its transition committed and costs one WAL record, where an
-- outbox row cost an insert, an index entry, a read, a delete and a vacuum.
-- The worker's relay (worker/relay.c) reads the messages in commit order
-- over a logical replication connection (the built-in pgoutput plugin with
-- messages 'true', publication countersign_events, the slot named by
-- CS_EVENT_SLOT) and confirms the slot's position only after the broker
-- acknowledged every message up to it: a crash republishes (same event_id),
-- never skips. Every process makes sure the slot exists before it migrates
-- or writes (lib/cs_events.c), so no message is emitted before a slot
-- keeps it.
--
-- Message format (lib/cs_events.c decodes it): prefix 'countersign.<topic>'
-- (events | results), content '<kafka key>\n<payload JSON>'.

CREATE FUNCTION cs_emit(topic text, key text, payload jsonb) RETURNS pg_lsn
    LANGUAGE sql VOLATILE AS $$
    SELECT pg_logical_emit_message(true, 'countersign.' || topic, key || E'\n' || payload::text)
$$;

-- The publication pgoutput reads the slot with (countersign_events) is made
-- with the slot, before any migration runs (lib/cs_events.c): it must be
-- older than every change the slot decodes.

-- An upgrade: what the outbox still held leaves as messages, in its order.
SELECT count(cs_emit(o.topic, o.key, o.payload))
FROM (SELECT topic, key, payload FROM outbox ORDER BY id) o;

DROP TABLE outbox;
DROP FUNCTION outbox_notify();
