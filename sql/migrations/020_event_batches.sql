-- 020_event_batches.sql -- one logical message per statement and topic.
--
-- Until now a transition emitted one logical decoding message per event
-- (cs_emit, migrations 014 and 016). The relay's walsender decodes every
-- message on its own: after 50 000 expiries, pgoutput took 13-20 us per
-- expired row to decode its two messages, and 5-6 us when the same events
-- travelled as one message per statement, with no change in the statement's
-- own time (bench/RESULTS.md, "Where the rest goes"). So a statement now
-- emits the events of every row it changed as one message per topic:
--
--   prefix   countersign.<topic>.batch
--   content  entries, one after the other, each
--            <key> '\n' <payload length in bytes, decimal> '\n' <payload>
--
-- cs_entry() frames one entry, cs_emit_all() emits the string_agg of a
-- statement's entries (nothing when it has none: the function is strict).
-- The relay (lib/cs_wal.c) splits the message and publishes each entry as
-- the event it was before, with the same key and payload, in order; single
-- messages (cs_emit, "countersign.<topic>") are still read, so what an older
-- version left in the slot is published as before. A key never holds a
-- newline (approval and batch ids), as for cs_emit.
--
-- Upgrading (README.md): stop every worker of an older version before a
-- process of this version starts; an older relay would skip a batch message
-- as an unknown topic. Meanwhile the events wait in the slot.

-- STABLE and strict with a strict body, as cs_us() (016): so it is inlined.
CREATE FUNCTION cs_entry(key text, payload text) RETURNS text
    LANGUAGE sql STABLE STRICT AS $$
    SELECT key || E'\n' || octet_length(payload)::text || E'\n' || payload
$$;

CREATE FUNCTION cs_emit_all(topic text, entries text) RETURNS pg_lsn
    LANGUAGE sql VOLATILE STRICT AS $$
    SELECT pg_logical_emit_message(true, 'countersign.' || topic || '.batch', entries)
$$;

