"""What the database itself guarantees: migrations, immutability, the audit chain."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from harness import BUILD_DIR, System
from services import REPO_ROOT, Postgres, wait_for


def test_concurrent_migrations_apply_once(pg: Postgres) -> None:
    pg.drop_database("t_migrate_race")
    url = pg.create_database("t_migrate_race")
    try:
        def migrate(_: int) -> subprocess.CompletedProcess[str]:
            return subprocess.run([str(BUILD_DIR / "countersign"), "migrate"], text=True,
                                  capture_output=True, env={"CS_PG_URL": url, "PATH": "/usr/bin"},
                                  timeout=60)

        with ThreadPoolExecutor(6) as pool:
            runs = list(pool.map(migrate, range(6)))
        assert all(r.returncode == 0 for r in runs), [r.stderr for r in runs]
        n = len(list((REPO_ROOT / "sql" / "migrations").glob("*.sql")))
        applied = sorted(int(r.stdout.split('"applied":')[1].split(",")[0]) for r in runs)
        assert applied == [0, 0, 0, 0, 0, n]
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == n
    finally:
        pg.drop_database("t_migrate_race")


def test_database_refuses_tampering(system: System) -> None:
    system.setup()
    system.worker()
    system.produce(system.envelope("r1"))
    a = system.wait_status("r1", "pending")
    # The request is written once and never updated (migration 019): any UPDATE of
    # approval_requests is refused, whatever it names, even a column's own value.
    refusals = {
        "UPDATE approval_requests SET url = 'https://evil.example/' WHERE id = %s": "immutable",
        "UPDATE approval_requests SET body = 'x' WHERE id = %s": "immutable",
        "UPDATE approval_requests SET url = url WHERE id = %s": "immutable",
        "UPDATE approval_states SET status = 'executing' WHERE id = %s": "illegal transition",
        "UPDATE approval_states SET status = 'executed' WHERE id = %s": "illegal transition",
    }
    changed = {"id": "gen_random_uuid()", "request_id": "'r2'",
               "agent_id": "(SELECT id FROM agents LIMIT 1 OFFSET 1)",
               "grant_id": "'other'", "policy_id": "'other'", "batch_id": "'b1'",
               "method": "'DELETE'", "headers": "'{}'::jsonb", "context": "'{\"x\": 1}'::jsonb",
               "reason": "reason || '!'", "digest": "sha256(digest)", "policy": "'{}'::jsonb",
               "created_at": "created_at - interval '1 s'"}
    for col, value in changed.items():
        refusals[f"UPDATE approval_requests SET {col} = {value} WHERE id = %s"] = "immutable"
    # The copies of the request the state carries, alone and beside a legal
    # transition; approvers only grow.
    copies = {"id": "gen_random_uuid()", "grant_id": "'other'",
              "expires_at": "now() + interval '1 day'", "quorum": "0",
              "approvers": "approvers[2:]"}
    for col, value in copies.items():
        refusals[f"UPDATE approval_states SET {col} = {value} WHERE id = %s"] = "immutable"
        refusals[f"UPDATE approval_states SET status = 'cancelled', {col} = {value} "
                 "WHERE id = %s"] = "immutable"
    for stmt, why in refusals.items():
        with pytest.raises(psycopg.errors.CheckViolation, match=why):
            system.sql(stmt, a["id"])
            pytest.fail(f"allowed: {stmt}")
    # The view of the two is not a way around them.
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
        system.sql("UPDATE approvals SET url = 'https://evil.example/' WHERE id = %s", a["id"])
    # Naming a copy with its own value changes nothing and is allowed.
    system.sql("UPDATE approval_states SET expires_at = expires_at, quorum = quorum, "
               "approvers = approvers WHERE id = %s", a["id"])
    for stmt in ("UPDATE audit SET actor = 'someone else'", "DELETE FROM audit",
                 "TRUNCATE audit"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            system.sql(stmt)
    with pytest.raises(psycopg.errors.CheckViolation):
        system.sql("UPDATE policies SET quorum = 0")
    assert system.approval("r1")["status"] == "pending"


def test_database_refuses_a_decision_after_expiry(system: System) -> None:
    system.setup(window=1)
    system.worker()
    system.produce(system.envelope("r1"))
    a = system.wait_status("r1", "pending")
    wait_for(lambda: system.sql("SELECT expires_at < now() FROM approvals WHERE id = %s",
                                a["id"])[0][0], 10, what="the deadline")
    for status in ("approved", "denied"):
        with pytest.raises(psycopg.errors.CheckViolation, match="after expiry"):
            system.sql("UPDATE approval_states SET status = %s WHERE id = %s", status, a["id"])


def test_audit_chain_verifies_and_detects_tampering(system: System) -> None:
    system.setup()
    system.worker()
    system.scheduler()
    system.produce(system.envelope("r1"), system.envelope("r2", amount=50))
    a = system.wait_status("r1", "pending")
    system.cli("approval", "approve", str(a["id"]), "--as", "alice")
    system.wait_status("r1", "executed")
    system.wait_status("r2", "executed")
    total = system.sql("SELECT count(*) FROM audit")[0][0]

    def sealed() -> dict | None:
        v = system.cli_json("audit", "verify")
        return v if v["entries"] == total else None

    v = wait_for(sealed, 20, what="the sealer to cover every entry")
    assert v["ok"] and v["seals"] >= 1 and v["unsealed_tail"] == 0
    actions = [r[0] for r in system.sql("SELECT action FROM audit WHERE approval_id = %s "
                                         "ORDER BY id", a["id"])]
    assert actions == ["approval.created", "vote.approve", "approval.approved",
                       "approval.executing", "approval.executed"]

    # A superuser can switch the trigger off; the chain still tells.
    system.sql("ALTER TABLE audit DISABLE TRIGGER audit_append_only")
    system.sql("UPDATE audit SET detail = '{\"reason\": \"forged\"}' "
               "WHERE action = 'vote.approve'")
    system.sql("ALTER TABLE audit ENABLE TRIGGER audit_append_only")
    bad = system.cli("audit", "verify", check=False)
    assert bad.returncode == 1 and '"ok":false' in bad.stdout and "changed" in bad.stdout


def test_audit_chain_detects_a_deleted_entry(system: System) -> None:
    system.setup(mode="never", rules=[])
    system.worker()
    system.scheduler()
    system.produce(*[system.envelope(f"r{i}") for i in range(5)])
    for i in range(5):
        system.wait_status(f"r{i}", "executed")
    total = system.sql("SELECT count(*) FROM audit")[0][0]
    wait_for(lambda: system.cli_json("audit", "verify")["entries"] == total, 20,
             what="sealing")
    system.sql("ALTER TABLE audit DISABLE TRIGGER audit_append_only")
    system.sql("DELETE FROM audit WHERE id = (SELECT min(id) FROM audit WHERE action = "
               "'approval.executing')")
    system.sql("ALTER TABLE audit ENABLE TRIGGER audit_append_only")
    bad = system.cli("audit", "verify", check=False)
    assert bad.returncode == 1 and "entries but" in bad.stdout


def test_cancelled_by_its_agent(system: System) -> None:
    """The library's cancel is guarded like every transition (the HTTP call comes later)."""
    system.setup()
    system.worker()
    system.produce(system.envelope("r1"))
    a = system.wait_status("r1", "pending")
    other = system.sql("INSERT INTO agents (id, name) VALUES (gen_random_uuid(), 'other') "
                       "RETURNING id")[0][0]
    # Only the requesting agent's id matches the guarded update.
    assert system.sql("SELECT (cs_event(a)) IS NOT NULL FROM approvals a WHERE id = %s",
                      a["id"])[0][0]
    rows = system.sql("""
        WITH u AS (UPDATE approval_states s SET status = 'cancelled' FROM approval_requests r
                   WHERE s.id = %s AND r.id = s.id AND r.agent_id = %s AND s.status = 'pending'
                   RETURNING s.id) SELECT count(*) FROM u""", a["id"], other)
    assert rows[0][0] == 0


def test_retention_keeps_tables_bounded(system: System) -> None:
    """Terminal approvals past CS_RETENTION_DAYS go (with votes, notifications and
    finished batches); live ones and the audit log stay."""
    system.setup(mode="never", rules=[])
    system.worker()
    system.produce(*[system.envelope(f"old{i}") for i in range(30)])
    for i in range(30):
        system.wait_status(f"old{i}", "executed")
    system.produce(system.envelope("new"))
    system.wait_status("new", "executed")
    audit_before = system.sql("SELECT count(*) FROM audit")[0][0]
    # Age the first 30 by 40 days (the guard stamps updated_at on every update).
    system.sql("ALTER TABLE approval_states DISABLE TRIGGER approvals_guard")
    system.sql("UPDATE approval_states SET updated_at = now() - interval '40 days' "
               "WHERE id IN (SELECT id FROM approval_requests WHERE request_id LIKE 'old%%')")
    system.sql("ALTER TABLE approval_states ENABLE TRIGGER approvals_guard")
    system.scheduler(CS_RETENTION_DAYS="30", CS_SWEEP_BATCH="7")
    wait_for(lambda: system.sql("SELECT count(*) FROM approvals")[0][0] == 1, 30,
             what="retention to delete the aged approvals")
    assert system.approval("new")["status"] == "executed"
    assert system.sql("SELECT count(*) FROM audit")[0][0] >= audit_before


def test_audit_retention_prunes_whole_seals_and_keeps_the_chain(system: System) -> None:
    """CS_AUDIT_RETENTION_DAYS prunes the oldest seals with their entries; an
    'audit.pruned' anchor keeps `audit verify` working and tampering visible."""
    system.setup(mode="never", rules=[])
    system.worker()
    sealer = system.scheduler()

    def all_sealed() -> dict | None:
        total = system.sql("SELECT count(*) FROM audit")[0][0]
        v = system.cli_json("audit", "verify")
        return v if v["entries"] == total and v["unsealed_tail"] == 0 else None

    for round_ in range(2):
        system.produce(*[system.envelope(f"r{round_}.{i}") for i in range(3)])
        for i in range(3):
            system.wait_status(f"r{round_}.{i}", "executed")
        wait_for(all_sealed, 20, what="sealing")
    first = system.sql("SELECT min(seq), count(*), max(seq) FROM audit_seal")[0]
    assert first[1] >= 2
    old_entries = system.sql("SELECT from_txid, to_txid FROM audit_seal WHERE seq = %s",
                             first[0])[0]
    # Age only the oldest seal past the retention.
    system.sql("ALTER TABLE audit_seal DISABLE TRIGGER audit_seal_append_only")
    system.sql("UPDATE audit_seal SET sealed_at = now() - interval '3 days' WHERE seq = %s",
               first[0])
    system.sql("ALTER TABLE audit_seal ENABLE TRIGGER audit_seal_append_only")
    sealer.stop()
    system.scheduler(CS_AUDIT_RETENTION_DAYS="2")
    wait_for(lambda: system.sql("SELECT count(*) FROM audit WHERE action = 'audit.pruned'")[0][0]
             == 1, 30, what="the audit prune")
    assert system.sql("SELECT count(*) FROM audit_seal WHERE seq = %s", first[0])[0][0] == 0
    # (The sealer may already have sealed the anchor entry into a new seal.)
    assert system.sql("SELECT count(*) FROM audit_seal WHERE seq <= %s", first[2])[0][0] \
        == first[1] - 1
    assert system.sql("SELECT count(*) FROM audit WHERE txid >= %s AND txid < %s",
                      *old_entries)[0][0] == 0
    detail = system.sql("SELECT detail FROM audit WHERE action = 'audit.pruned'")[0][0]
    assert detail["through_seq"] == first[0] and detail["entries"] > 0
    v = wait_for(all_sealed, 20, what="the anchor entry to be sealed")
    assert v["ok"], v
    # Newer seals were kept; a second pass prunes nothing more.
    assert system.sql("SELECT count(*) FROM audit WHERE action = 'audit.pruned'")[0][0] == 1

    # Still append-only outside the prune, and the chain still tells a forged delete.
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        system.sql("DELETE FROM audit WHERE action = 'approval.executed'")
    system.sql("ALTER TABLE audit DISABLE TRIGGER audit_append_only")
    system.sql("DELETE FROM audit WHERE id = (SELECT max(id) FROM audit "
               "WHERE action = 'approval.executed')")
    system.sql("ALTER TABLE audit ENABLE TRIGGER audit_append_only")
    bad = system.cli("audit", "verify", check=False)
    assert bad.returncode == 1 and '"ok":false' in bad.stdout
