"""The processes' database roles cannot alter the audit (issue 12, section 2).

The api, worker and scheduler connect as countersign_api, countersign_worker and
countersign_scheduler (migration 009; the harness and `make run` use them). Each
attack below is tried as each role and must be refused by Postgres itself:
UPDATE, DELETE or TRUNCATE of audit or audit_seal, DISABLE or DROP of their
triggers, session_replication_role = replica (which skips triggers), and the old
`SET LOCAL countersign.audit_prune = 'on'` + DELETE. Only the scheduler's role may
run audit_prune(), the one way to delete audit rows, and that function prunes only
whole seals, never young ones, never the newest.

A positive control per role (it may INSERT an audit entry, read what it needs)
keeps the test from passing because a role could not connect at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from services import Postgres

TEMPLATE = "cs_template"  # tests/conftest.py: migrated once, as countersign_owner
DB = "t_security_db_roles"
ROLES = ("countersign_api", "countersign_worker", "countersign_scheduler")


@pytest.fixture(scope="module")
def db(pg: Postgres) -> Iterator[str]:
    pg.drop_database(DB)
    pg.create_database(DB, template=TEMPLATE)
    yield DB
    pg.drop_database(DB)


def run_as(pg: Postgres, role: str, *statements: str, params: tuple[Any, ...] = ()) -> Any:
    """Runs the statements as `role` in one transaction (rolled back); returns the
    last result's rows or raises the server's error."""
    with psycopg.connect(pg.role_url(role, DB)) as conn:
        rows = None
        for st in statements:
            cur = conn.execute(st, params if "%s" in st else ())
            rows = cur.fetchall() if cur.description else None
        conn.rollback()
        return rows


def superuser(pg: Postgres, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(pg.url(DB), autocommit=True) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


def refused(pg: Postgres, role: str, *statements: str) -> str:
    """The statements fail as `role` with insufficient_privilege (42501); returns the message."""
    with pytest.raises(psycopg.Error) as exc:
        run_as(pg, role, *statements)
    assert exc.value.sqlstate == "42501", (role, statements, exc.value.sqlstate, str(exc.value))
    return str(exc.value)


def entry(pg: Postgres, action: str = "test.entry") -> None:
    superuser(pg, "INSERT INTO audit (actor, action) VALUES ('test', %s)", action)


@pytest.mark.parametrize("role", ROLES)
def test_role_may_append_but_never_rewrite_the_audit(pg: Postgres, db: str, role: str) -> None:
    entry(pg)
    # Positive control: the role connects and appends (every process writes audit entries).
    run_as(pg, role, "INSERT INTO audit (actor, action) VALUES ('x', 'role.control')")
    for st in ("UPDATE audit SET actor = 'forged'",
               "DELETE FROM audit",
               "TRUNCATE audit",
               "UPDATE audit_seal SET hash = '\\x00'",
               "DELETE FROM audit_seal",
               "TRUNCATE audit_seal"):
        refused(pg, role, st)
    # The prune switch of migration 004 no longer opens a DELETE to anyone but the owner.
    refused(pg, role, "SET LOCAL countersign.audit_prune = 'on'", "DELETE FROM audit")
    refused(pg, role, "SELECT set_config('countersign.audit_prune', 'on', true)",
            "DELETE FROM audit WHERE id > 0")


@pytest.mark.parametrize("role", ROLES)
def test_role_never_rewrites_a_stored_request(pg: Postgres, db: str, role: str) -> None:
    """Migration 019: the request is written once; its state is where transitions go."""
    # Positive control: the role may change the state (every process makes transitions).
    run_as(pg, role, "UPDATE approval_states SET status = status WHERE false")
    for st in ("UPDATE approval_requests SET url = 'https://evil.example/'",
               "UPDATE approval_requests SET body = '' WHERE false",
               "ALTER TABLE approval_requests DISABLE TRIGGER approvals_immutable",
               "ALTER TABLE approval_states DISABLE TRIGGER approvals_guard"):
        refused(pg, role, st)


@pytest.mark.parametrize("role", ROLES)
def test_role_cannot_switch_off_or_skip_the_triggers(pg: Postgres, db: str, role: str) -> None:
    for st in ("ALTER TABLE audit DISABLE TRIGGER audit_append_only",
               "ALTER TABLE audit DISABLE TRIGGER ALL",
               "ALTER TABLE audit_seal DISABLE TRIGGER audit_seal_append_only",
               "DROP TRIGGER audit_append_only ON audit",
               "DROP TRIGGER audit_no_truncate ON audit",
               "ALTER TABLE audit OWNER TO " + role,
               "CREATE OR REPLACE FUNCTION append_only() RETURNS trigger LANGUAGE plpgsql "
               "AS $$ BEGIN RETURN OLD; END $$",
               "SET session_replication_role = replica",
               "SET LOCAL session_replication_role = replica",
               "SELECT set_config('session_replication_role', 'replica', true)",
               "ALTER ROLE " + role + " SET session_replication_role = replica",
               "SET ROLE countersign_owner"):
        refused(pg, role, st)


@pytest.mark.parametrize("role", ROLES)
def test_role_owns_nothing_and_holds_no_power(pg: Postgres, db: str, role: str) -> None:
    owned = superuser(pg, "SELECT c.relname FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
                          "WHERE r.rolname = %s", role)
    assert owned == []
    funcs = superuser(pg, "SELECT p.proname FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner "
                          "WHERE r.rolname = %s", role)
    assert funcs == []
    (attrs,) = superuser(pg, "SELECT rolsuper, rolbypassrls, rolcreaterole, rolreplication "
                             "FROM pg_roles WHERE rolname = %s", role)
    assert attrs == (False, False, False, False)
    member = superuser(pg, "SELECT pg_has_role(%s, 'countersign_owner', 'USAGE')", role)
    assert member == [(False,)]
    table_owner = superuser(pg, "SELECT tableowner FROM pg_tables WHERE tablename = 'audit'")
    assert table_owner == [("countersign_owner",)]


MAC = "0" * 64  # audit_prune takes the scheduler's signature of the anchor (migration 011)


@pytest.mark.parametrize("role", ("countersign_api", "countersign_worker"))
def test_only_the_scheduler_may_prune(pg: Postgres, db: str, role: str) -> None:
    refused(pg, role, f"SELECT audit_prune(1, 1, '{MAC}', 'attacker')")
    # The scheduler's role may call it (and is told there is no seal 1 to prune).
    with pytest.raises(psycopg.Error) as exc:
        run_as(pg, "countersign_scheduler", f"SELECT audit_prune(1, 1, '{MAC}', 'test')")
    assert exc.value.sqlstate == "22023", str(exc.value)


def test_prune_function_pins_its_search_path(pg: Postgres, db: str) -> None:
    (row,) = superuser(pg, "SELECT prosecdef, proconfig FROM pg_proc WHERE proname = 'audit_prune'")
    assert row[0] is True
    assert any(c.startswith("search_path=") for c in row[1])


def seal(pg: Postgres, seq: int, days_ago: int, entries: int) -> tuple[int, int]:
    """Appends `entries` audit entries in one transaction and a seal seq covering
    exactly that transaction, sealed `days_ago` days ago (as the superuser: a test's
    stand-in for the sealer). Returns the seal's (from_txid, to_txid)."""
    with psycopg.connect(pg.url(DB)) as conn:
        for i in range(entries):
            conn.execute("INSERT INTO audit (actor, action) VALUES ('test', %s)", (f"e{seq}.{i}",))
        (txid,) = conn.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()  # type: ignore[misc]
        conn.commit()
    prev = superuser(pg, "SELECT hash FROM audit_seal WHERE seq = %s", seq - 1)
    superuser(pg, "INSERT INTO audit_seal (seq, from_txid, to_txid, entries, entries_hash, "
                  "prev_hash, hash, sealed_at) VALUES (%s, %s::text::xid8, %s::text::xid8, %s, "
                  "'\\x00', %s, sha256(%s::text::bytea), now() - make_interval(days => %s))",
              seq, txid, txid + 1, entries, prev[0][0] if prev else b"\0" * 32, str(seq), days_ago)
    return txid, txid + 1


def prune(pg: Postgres, days: int, through: int, mac: str = MAC) -> int:
    with psycopg.connect(pg.role_url("countersign_scheduler", DB), autocommit=True) as conn:
        (n,) = conn.execute("SELECT audit_prune(%s, %s, %s, 'scheduler:retention')",
                            (days, through, mac)).fetchone()  # type: ignore[misc]
    return int(n)


def prune_refused(pg: Postgres, days: int, through: int, mac: str = MAC) -> str:
    with pytest.raises(psycopg.Error) as exc:
        prune(pg, days, through, mac)
    assert exc.value.sqlstate == "22023", str(exc.value)
    return str(exc.value)


def test_prune_takes_only_whole_old_seals(pg: Postgres, db: str) -> None:
    """Seals 1-2 are 40 days old, 3 is 5 days old, 4 (the head) 40 days old by a
    clock skew; with 30 days of retention exactly seals 1-2 and their entries go."""
    pg.drop_database(DB)
    pg.create_database(DB, template=TEMPLATE)
    ranges = [seal(pg, 1, 40, 3), seal(pg, 2, 40, 2), seal(pg, 3, 5, 2)]
    ranges.append(seal(pg, 4, 40, 1))
    entry(pg, "test.unsealed")  # newer than every seal: never pruned
    ((seal2_hash,),) = superuser(pg, "SELECT encode(hash, 'hex') FROM audit_seal WHERE seq = 2")
    before = superuser(pg, "SELECT count(*) FROM audit")
    # Young seals: a retention above their age is refused, as is one under a day.
    assert "not all older" in prune_refused(pg, 41, 2)
    assert "at least 1 day" in prune_refused(pg, 0, 2)
    # Only whole seals: no seal 5 (the unsealed tail), and never the newest seal.
    assert "only whole seals" in prune_refused(pg, 30, 5)
    assert "newest" in prune_refused(pg, 30, 4)
    # Seal 3 is young: nothing up to it may go.
    assert "not all older" in prune_refused(pg, 30, 3)
    assert "64 hex" in prune_refused(pg, 30, 2, "not-a-signature")
    assert superuser(pg, "SELECT count(*) FROM audit") == before
    assert prune(pg, 30, 2) == 2
    assert [r[0] for r in superuser(pg, "SELECT seq FROM audit_seal ORDER BY seq")] == [3, 4]
    for lo, hi in ranges[:2]:
        assert superuser(pg, "SELECT count(*) FROM audit WHERE txid >= %s::text::xid8 AND "
                             "txid < %s::text::xid8", lo, hi) == [(0,)]
    for (lo, hi), n_entries in zip(ranges[2:], (2, 1)):
        assert superuser(pg, "SELECT count(*) FROM audit WHERE txid >= %s::text::xid8 AND "
                             "txid < %s::text::xid8", lo, hi) == [(n_entries,)]
    assert superuser(pg, "SELECT count(*) FROM audit WHERE action = 'test.unsealed'") == [(1,)]
    (anchor,) = superuser(pg, "SELECT detail FROM audit WHERE action = 'audit.pruned'")
    assert anchor[0]["through_seq"] == 2 and anchor[0]["entries"] == 5
    assert anchor[0]["anchor"] == seal2_hash and anchor[0]["mac"] == MAC
    # Seal 3 is 5 days old: with a day of retention it goes; seal 4, the head, stays.
    assert prune(pg, 1, 3) == 1
    assert "newest" in prune_refused(pg, 1, 4)
    assert [r[0] for r in superuser(pg, "SELECT seq FROM audit_seal ORDER BY seq")] == [4]
