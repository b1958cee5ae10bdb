-- The outbox relay (worker/relay.c).

-- name: outbox_fetch
SELECT id, topic, key, payload::text FROM outbox ORDER BY id LIMIT $1::int;

-- name: outbox_delete
-- Called with the ids the broker acknowledged. Committed without waiting for
-- the WAL flush (synchronous_commit off for this statement's transaction): a
-- delete lost in a crash only republishes events consumers already dedupe by
-- event_id, and the relay stops costing the decision path a WAL sync.
WITH nowait AS (SELECT set_config('synchronous_commit', 'off', true))
DELETE FROM outbox WHERE id = ANY ($1::bigint[]) AND EXISTS (SELECT FROM nowait);

-- name: outbox_depth
SELECT count(*) AS depth,
       coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS age_s FROM outbox;
