-- outbox_relay.sql -- what the old relay did each round: take the oldest 1000
-- outbox rows (it had published them) and delete them.
WITH f AS (SELECT id FROM outbox_old ORDER BY id LIMIT 1000)
DELETE FROM outbox_old o USING f WHERE o.id = f.id;
