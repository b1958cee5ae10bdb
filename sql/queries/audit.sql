-- The audit log: appending, sealing (scheduler/sealer.c) and verifying
-- (lib/cs_audit.c). See sql/migrations/001_core.sql for the chain.

-- name: audit_insert
INSERT INTO audit (actor, action, approval_id, detail)
VALUES ($1::text, $2::text, $3::uuid, coalesce($4::jsonb, '{}'::jsonb));

-- name: seal_plan
-- The next seal: from the last seal's to_txid up to the oldest transaction
-- still running (everything below it has finished), cut after about $1
-- entries at a transaction boundary. Returns head seq, head hash (hex),
-- lo, horizon, cut (NULL when the range holds fewer than $1 entries),
-- whether [lo, cut) would be empty, and whether the head is signed.
WITH h AS (
    SELECT seq, to_txid, hash, mac FROM audit_seal ORDER BY seq DESC LIMIT 1
), b AS (
    SELECT coalesce((SELECT to_txid FROM h), '1'::xid8) AS lo,
           pg_snapshot_xmin(pg_current_snapshot()) AS horizon
), c AS (
    SELECT (SELECT a.txid FROM audit a WHERE a.txid >= b.lo AND a.txid < b.horizon
            ORDER BY a.txid OFFSET $1::int LIMIT 1) AS cut
    FROM b
)
SELECT coalesce((SELECT seq FROM h), 0) AS head_seq,
       coalesce(encode((SELECT hash FROM h), 'hex'), '') AS head_hash_hex,
       b.lo::text, b.horizon::text, c.cut::text,
       NOT EXISTS (SELECT 1 FROM audit a WHERE a.txid >= b.lo AND a.txid < c.cut) AS empty,
       coalesce((SELECT mac IS NOT NULL FROM h), false) AS head_signed
FROM b, c;

-- name: seal_preview
-- What seal $1 over [$2, $3) chained to $4 (hex) would hold: entries,
-- entries hash (hex) and hash (hex); 0 entries when the range is empty.
-- Checklist: the hash input here and in lib/cs_audit.c (seal_hash) change
-- together. The range is below the horizon, so it can no longer change.
WITH e AS (
    SELECT count(*) AS n,
           sha256(convert_to(coalesce(string_agg(cs_audit_line(a), '' ORDER BY a.txid, a.id), ''),
                             'UTF8')) AS h
    FROM audit a WHERE a.txid >= $2::xid8 AND a.txid < $3::xid8
)
SELECT e.n, encode(e.h, 'hex') AS h_hex,
       encode(sha256(decode($4::text, 'hex')
                     || convert_to($1::bigint || '|' || $2::text || '|' || $3::text || '|' || e.n
                                   || '|', 'UTF8')
                     || e.h), 'hex') AS seal_hash_hex
FROM e;

-- name: seal_insert
-- The seal seal_preview computed, with the scheduler's signature (hex, see
-- migration 011): $1 seq, $2 from_txid, $3 to_txid, $4 entries, $5 entries
-- hash, $6 prev hash, $7 hash, $8 mac. The seq primary key refuses a fork.
INSERT INTO audit_seal (seq, from_txid, to_txid, entries, entries_hash, prev_hash, hash, mac)
VALUES ($1::bigint, $2::xid8, $3::xid8, $4::int, decode($5::text, 'hex'), decode($6::text, 'hex'),
        decode($7::text, 'hex'), decode($8::text, 'hex'));

-- name: seal_list
-- Seals after seq $1 in order, at most $2; mac '' for a seal made before
-- seals were signed (migration 011).
SELECT seq, from_txid::text, to_txid::text, entries, encode(entries_hash, 'hex') AS entries_hash_hex,
       encode(prev_hash, 'hex') AS prev_hash_hex, encode(hash, 'hex') AS hash_hex,
       coalesce(encode(mac, 'hex'), '') AS mac_hex
FROM audit_seal WHERE seq > $1::bigint ORDER BY seq LIMIT $2::int;

-- name: audit_range
-- Entries of one seal in chain order, with the fields cs_audit_line() hashes.
SELECT id, txid::text, (extract(epoch FROM at) * 1000000)::bigint AS at_us, actor, action,
       coalesce(approval_id::text, '') AS approval_id, detail::text
FROM audit a WHERE a.txid >= $1::xid8 AND a.txid < $2::xid8
ORDER BY a.txid, a.id;

-- name: audit_unsealed
-- Entries not covered by any seal: older than the first seal (must be 0)
-- and newer than the last (the tail the sealer has not reached yet).
SELECT (SELECT count(*) FROM audit WHERE txid < coalesce(
            (SELECT from_txid FROM audit_seal ORDER BY seq LIMIT 1), '1'::xid8)) AS before_first,
       (SELECT count(*) FROM audit WHERE txid >= coalesce(
            (SELECT to_txid FROM audit_seal ORDER BY seq DESC LIMIT 1), '1'::xid8)) AS after_last;

-- name: audit_tail
-- Newest entries first, for `countersign audit tail`. $1 limit, $2 approval id or NULL.
SELECT id, at, actor, action, approval_id, detail::text FROM audit
WHERE $2::uuid IS NULL OR approval_id = $2::uuid
ORDER BY id DESC LIMIT $1::int;

-- name: audit_export
-- Entries after id $1 in id order, for JSON-lines export.
SELECT id, txid::text, at, actor, action, approval_id, detail::text FROM audit
WHERE id > $1::bigint ORDER BY id LIMIT $2::int;

-- name: audit_prune_plan
-- The last seal the next prune may take: of the oldest $2 seals, those
-- before the first seal sealed less than $1 days ago and before the newest
-- seal. Returns its seq and hash (hex), or no row.
WITH bound AS (
    SELECT least(max(seq), min(seq) FILTER (WHERE sealed_at >= now() - make_interval(days => $1::int)))
           AS head
    FROM audit_seal
), s AS (
    SELECT seq, hash FROM audit_seal, bound WHERE seq < bound.head ORDER BY seq LIMIT $2::int
)
SELECT seq, encode(hash, 'hex') AS hash_hex FROM s ORDER BY seq DESC LIMIT 1;

-- name: audit_prune
-- Prunes the seals up to $2 (from audit_prune_plan), older than $1 days,
-- through audit_prune() (migrations 009, 011: SECURITY DEFINER, the
-- scheduler's role alone may run it), which records the anchor with the
-- scheduler's signature $3 (hex). $4 actor. Returns the seals pruned.
SELECT audit_prune($1::int, $2::bigint, $3::text, $4::text) AS pruned;

-- name: audit_anchor
-- The hash the chain continues from after seal $1 was pruned, and the
-- scheduler's signature of it (NULL for a prune before migration 011), or no row.
SELECT detail->>'anchor' AS anchor, detail->>'mac' AS mac FROM audit
WHERE action = 'audit.pruned' AND (detail->>'through_seq')::bigint = $1::bigint
ORDER BY id DESC LIMIT 1;
