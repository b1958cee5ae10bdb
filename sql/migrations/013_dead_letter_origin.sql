-- 013_dead_letter_origin.sql -- one dead_letters row per refused message.
--
-- The ingest records a batch's dead letters after the broker acknowledged
-- them (worker/ingest.c); a batch retried after an outage dead-letters its
-- messages again, and this key keeps one row each (ON CONFLICT DO NOTHING).

CREATE UNIQUE INDEX dead_letters_origin ON dead_letters (topic, kpartition, koffset);

-- ON CONFLICT reads the key: the worker needs SELECT with its INSERT.
GRANT SELECT ON dead_letters TO countersign_worker;
