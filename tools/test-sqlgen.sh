#!/usr/bin/env bash
# test-sqlgen.sh -- proves tools/sqlgen.awk derives parameter counts and
# result-column names from the SQL, and refuses what it cannot name
# (`make check` runs it). Exit status 1 with one line per failed case.
set -uo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
bad() { echo "test-sqlgen: $*"; fail=1; }

# gen FILE: the header for one query file; its stderr in $tmp/err.
gen() { awk -v mode=header -f tools/sqlgen.awk "$1" 2>"$tmp/err"; }

# expect_fail NAME MESSAGE SQL: the generator must fail, saying MESSAGE.
expect_fail() {
    printf '%s\n' "$3" >"$tmp/q.sql"
    if gen "$tmp/q.sql" >/dev/null; then
        bad "$1: generated, should have failed"
    elif ! grep -qF -- "$2" "$tmp/err"; then
        bad "$1: failed without saying '$2': $(cat "$tmp/err")"
    fi
}
# expect_line NAME LINE SQL: the header must hold LINE exactly.
expect_line() {
    printf '%s\n' "$3" >"$tmp/q.sql"
    if ! gen "$tmp/q.sql" >"$tmp/h"; then
        bad "$1: failed: $(cat "$tmp/err")"
    elif ! sed "s/^ *//" "$tmp/h" | grep -qxF -- "$2"; then
        bad "$1: no line '$2' in: $(grep -E 'CS[CP]_' "$tmp/h" | tr '\n' ' ')"
    fi
}

expect_fail unnamed_expression 'q: result column 2 needs "AS name": count(*)' \
'-- name: q
SELECT a.id, count(*) FROM approvals a GROUP BY a.id;'
expect_fail unnamed_returning 'q: result column 1 needs "AS name": now() - created_at' \
'-- name: q
DELETE FROM outbox WHERE id = $1 RETURNING now() - created_at;'
expect_fail duplicate_name 'q: two result columns are named id' \
'-- name: q
SELECT a.id, g.id FROM approvals a JOIN grants g ON g.id = a.grant_id;'
expect_fail duplicate_alias 'q: two result columns are named n' \
'-- name: q
SELECT count(*) AS n, max(x) AS n FROM t;'
expect_fail unknown_verb 'q: cannot tell the result columns of a statement that starts with VALUES' \
'-- name: q
VALUES (1), (2);'
expect_fail enum_collision 'CSC_A_B_C is also a column of a' \
'-- name: a
SELECT b_c FROM t;
-- name: a_b
SELECT c FROM t;'

expect_line columns_named 'enum { CSC_Q_ID, CSC_Q_STATUS, CSC_Q_CREATED_MS, CSC_Q_DIGEST, CSC_Q_N, CSC_Q__COUNT };' \
'-- name: q
-- A comment that says SELECT nothing FROM $9.
WITH u AS (SELECT id, status, x FROM approvals WHERE id = $1::uuid)
SELECT u.id, (u.a).status::text,
       (extract(epoch FROM created_at) * 1000)::bigint AS created_ms,
       encode(u.digest, '"'hex'"')::text AS digest, -- a comment, with a comma
       (SELECT count(*) FROM votes v WHERE v.x = u.x AND v.y = $3) AS n
FROM u ORDER BY 1;'
expect_line params_ignore_strings_comments 'CSP_Q = 3,' \
'-- name: q
SELECT u.id FROM u WHERE a = $1 AND b = '"'\$7'"' AND c = $3 -- not $8
;'
expect_line distinct_on 'enum { CSC_Q_AGENT_ID, CSC_Q_ID, CSC_Q__COUNT };' \
'-- name: q
SELECT DISTINCT ON (a.agent_id) a.agent_id, a.id FROM approvals a ORDER BY a.agent_id, a.id;'
expect_line returning 'enum { CSC_Q_ID, CSC_Q_MS, CSC_Q__COUNT };' \
'-- name: q
WITH x AS (SELECT 1 AS one)
UPDATE approvals SET status = $2 WHERE id = $1 RETURNING id, (extract(epoch FROM now()) * 1000)::bigint AS ms;'
expect_line reordered 'enum { CSC_Q_STATUS, CSC_Q_ID, CSC_Q__COUNT };' \
'-- name: q
SELECT status, id FROM approvals;'
printf -- '-- name: q\nINSERT INTO outbox (topic) VALUES ($2);\n' >"$tmp/q.sql"
if ! gen "$tmp/q.sql" >"$tmp/h"; then
    bad "no_result: failed: $(cat "$tmp/err")"
elif grep -q 'CSC_Q_' "$tmp/h"; then
    bad "no_result: an INSERT without RETURNING has no columns"
fi

# The real queries generate.
if ! awk -v mode=source -f tools/sqlgen.awk sql/queries/*.sql >"$tmp/c" 2>"$tmp/err"; then
    bad "sql/queries: $(cat "$tmp/err")"
fi
exit $fail
