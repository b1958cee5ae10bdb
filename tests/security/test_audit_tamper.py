"""Rewriting the audit is detected, even by someone who can write any SQL (issue 12, section 3).

The attacker here is the database's superuser: triggers off, any UPDATE or DELETE.
What they lack is the master key, from which the scheduler derives the key every
seal and prune anchor is signed with, and write access to the published heads file
(CS_AUDIT_HEAD_FILE), where the scheduler appends each seal's head. Each tampering
must make `countersign audit verify` fail and say what it was:
  - a sealed entry rewritten and every later seal recomputed: "rewrite"
    (the signatures no longer match), also without the heads file;
  - a sealed entry rewritten, seals untouched: "rewrite" (entries hash);
  - the newest seals cut: "truncation" (the heads file has them), and the
    scheduler refuses to seal again over the cut seqs;
  - the oldest seals deleted behind a forged audit.pruned anchor, retention off:
    "forged_prune" (the anchor is not signed).
Seals made before signing (migration 011) are a legacy prefix: verify passes and
counts them; an unsigned seal after a signed one is a rewrite.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness import System
from services import wait_for

ROUNDS = 4


def heads(system: System) -> dict[str, str]:
    return {"CS_AUDIT_HEAD_FILE": str(system.log_dir / "audit-heads.jsonl")}


def all_sealed(system: System) -> bool:
    total, sealed = system.sql("SELECT (SELECT count(*) FROM audit), "
                               "(SELECT coalesce(sum(entries), 0) FROM audit_seal)")[0]
    return bool(total == sealed)


def signed_chain(system: System) -> Any:
    """ROUNDS seals of three entries each, sealed and published by a scheduler;
    returns the scheduler (still running)."""
    heads_file = Path(heads(system)["CS_AUDIT_HEAD_FILE"])
    heads_file.unlink(missing_ok=True)
    sched = system.scheduler(**heads(system))
    for r in range(ROUNDS):
        system.sql("INSERT INTO audit (actor, action, detail) SELECT 'test', 'test.entry', "
                   "jsonb_build_object('round', %s, 'i', g) FROM generate_series(1, 3) g", r)
        wait_for(lambda: all_sealed(system), 20, what=f"round {r} to be sealed")
    n = system.sql("SELECT count(*) FROM audit_seal")[0][0]
    wait_for(lambda: heads_file.exists() and len(heads_file.read_text().splitlines()) == n, 20,
             what="every head to be published")
    return sched


def verify(system: System, **env: str) -> dict[str, Any]:
    res = system.cli("audit", "verify", check=False, env={**heads(system), **env})
    report = json.loads(res.stdout)
    assert res.returncode == (0 if report["ok"] else 1), res.stderr
    return report


def superuser(system: System, *statements: str) -> None:
    for st in statements:
        system.sql(st)


def recompute_seals_from(system: System, first: int) -> None:
    """What an attacker with SQL and no key does: recompute every seal from `first`
    on, exactly as the sealer does (sql/queries/audit.sql seal_preview)."""
    last = system.sql("SELECT max(seq) FROM audit_seal")[0][0]
    superuser(system, "ALTER TABLE audit_seal DISABLE TRIGGER audit_seal_append_only")
    for seq in range(first, last + 1):
        system.sql("""
            WITH s AS (SELECT * FROM audit_seal WHERE seq = %s),
            e AS (SELECT count(*) AS n, sha256(convert_to(coalesce(string_agg(cs_audit_line(a), ''
                         ORDER BY a.txid, a.id), ''), 'UTF8')) AS h
                  FROM audit a, s WHERE a.txid >= s.from_txid AND a.txid < s.to_txid),
            p AS (SELECT hash FROM audit_seal WHERE seq = %s - 1)
            UPDATE audit_seal x SET entries = e.n, entries_hash = e.h, prev_hash = p.hash,
                hash = sha256(p.hash || convert_to(x.seq || '|' || x.from_txid::text || '|'
                              || x.to_txid::text || '|' || e.n || '|', 'UTF8') || e.h)
            FROM e, p WHERE x.seq = %s""", seq, seq, seq)
    superuser(system, "ALTER TABLE audit_seal ENABLE TRIGGER audit_seal_append_only")


def rewrite_entry_of_seal(system: System, seq: int) -> None:
    superuser(system, "ALTER TABLE audit DISABLE TRIGGER audit_append_only")
    system.sql("UPDATE audit a SET detail = '{\"round\": \"rewritten\"}' FROM audit_seal s "
               "WHERE s.seq = %s AND a.id = (SELECT min(id) FROM audit b WHERE "
               "b.txid >= s.from_txid AND b.txid < s.to_txid)", seq)
    superuser(system, "ALTER TABLE audit ENABLE TRIGGER audit_append_only")


def test_signed_and_published_chain_verifies(system: System) -> None:
    signed_chain(system)
    v = verify(system)
    n = system.sql("SELECT count(*) FROM audit_seal")[0][0]
    assert v["ok"] and v["seals"] == n >= ROUNDS, v
    assert v["signed_seals"] == n and v["legacy_seals"] == 0
    assert v["published_head"] == n and v["unpublished_seals"] == 0
    # Without the master key the signatures cannot be checked: verify refuses to say ok.
    res = system.cli("audit", "verify", check=False, env={"CS_MASTER_KEY": ""})
    assert res.returncode != 0 and "CS_MASTER_KEY" in res.stderr


def test_rewrite_with_recomputed_seals_is_detected(system: System) -> None:
    signed_chain(system).stop()
    rewrite_entry_of_seal(system, 2)
    recompute_seals_from(system, 2)
    for env in ({}, {"CS_AUDIT_HEAD_FILE": ""}):  # the signature alone tells it
        v = verify(system, **env)
        assert not v["ok"] and v["tamper"] == "rewrite" and v["broken_seal"] == 2, v
        assert "not signed by the sealing key" in v["problem"]


def test_rewrite_without_recompute_is_detected(system: System) -> None:
    signed_chain(system).stop()
    rewrite_entry_of_seal(system, 3)
    v = verify(system)
    assert not v["ok"] and v["tamper"] == "rewrite" and v["broken_seal"] == 3, v
    assert "entries hash differs" in v["problem"]


def test_cut_newest_seals_is_detected_and_not_resealed(system: System) -> None:
    signed_chain(system).stop()
    last = system.sql("SELECT max(seq) FROM audit_seal")[0][0]
    superuser(system, "ALTER TABLE audit DISABLE TRIGGER audit_append_only",
              "ALTER TABLE audit_seal DISABLE TRIGGER audit_seal_append_only")
    system.sql("DELETE FROM audit a USING audit_seal s WHERE s.seq >= %s "
               "AND a.txid >= s.from_txid AND a.txid < s.to_txid", last - 1)
    system.sql("DELETE FROM audit_seal WHERE seq >= %s", last - 1)
    superuser(system, "ALTER TABLE audit ENABLE TRIGGER audit_append_only",
              "ALTER TABLE audit_seal ENABLE TRIGGER audit_seal_append_only")
    v = verify(system)
    assert not v["ok"] and v["tamper"] == "truncation" and v["broken_seal"] == last - 1, v
    assert f"seals {last - 1}..{last} were published" in v["problem"]
    # The chain intact up to the cut still verifies without the published record,
    # which is why the record is kept outside the database.
    assert verify(system, CS_AUDIT_HEAD_FILE="")["ok"]
    # A scheduler does not paper over the cut by sealing new entries as seq last-1.
    system.sql("INSERT INTO audit (actor, action) VALUES ('test', 'after.cut')")
    sched = system.scheduler(**heads(system))
    wait_for(lambda: "the audit chain was cut" in sched.text(), 20,
             what="the sealer to refuse the cut chain")
    assert system.sql("SELECT max(seq) FROM audit_seal")[0][0] == last - 2
    assert verify(system)["tamper"] == "truncation"


def test_forged_prune_anchor_is_detected(system: System) -> None:
    """Retention is off; the attacker deletes the two oldest seals and their
    entries and writes the audit.pruned entry retention would have written."""
    signed_chain(system).stop()
    anchor = system.sql("SELECT encode(hash, 'hex') FROM audit_seal WHERE seq = 2")[0][0]
    superuser(system, "ALTER TABLE audit DISABLE TRIGGER audit_append_only",
              "ALTER TABLE audit_seal DISABLE TRIGGER audit_seal_append_only")
    system.sql("DELETE FROM audit a USING audit_seal s WHERE s.seq <= 2 "
               "AND a.txid >= s.from_txid AND a.txid < s.to_txid")
    system.sql("DELETE FROM audit_seal WHERE seq <= 2")
    superuser(system, "ALTER TABLE audit ENABLE TRIGGER audit_append_only",
              "ALTER TABLE audit_seal ENABLE TRIGGER audit_seal_append_only")
    forged = {"through_seq": 2, "anchor": anchor, "entries": 6, "older_than_days": 30}
    system.sql("INSERT INTO audit (actor, action, detail) VALUES ('scheduler:retention', "
               "'audit.pruned', %s)", json.dumps(forged))
    for env in ({}, {"CS_AUDIT_HEAD_FILE": ""}):
        v = verify(system, **env)
        assert not v["ok"] and v["tamper"] == "forged_prune", v
        assert "unsigned but the chain after it is signed" in v["problem"]
    # A signature made up by the attacker is no better.
    system.sql("INSERT INTO audit (actor, action, detail) VALUES ('scheduler:retention', "
               "'audit.pruned', %s)", json.dumps({**forged, "mac": "ab" * 32}))
    v = verify(system)
    assert not v["ok"] and v["tamper"] == "forged_prune", v
    assert "not signed by the sealing key" in v["problem"]


def test_legacy_unsigned_seals_are_a_reported_prefix(system: System) -> None:
    """Seals made before signing existed have no mac: an upgraded database
    verifies, counting them; an unsigned seal after a signed one is a rewrite."""
    signed_chain(system).stop()
    n = system.sql("SELECT count(*) FROM audit_seal")[0][0]
    superuser(system, "ALTER TABLE audit_seal DISABLE TRIGGER audit_seal_append_only")
    system.sql("UPDATE audit_seal SET mac = NULL WHERE seq <= 2")
    superuser(system, "ALTER TABLE audit_seal ENABLE TRIGGER audit_seal_append_only")
    v = verify(system, CS_AUDIT_HEAD_FILE="")
    assert v["ok"] and v["legacy_seals"] == 2 and v["signed_seals"] == n - 2, v
    assert v["published_head"] is None
    superuser(system, "ALTER TABLE audit_seal DISABLE TRIGGER audit_seal_append_only")
    system.sql("UPDATE audit_seal SET mac = NULL WHERE seq = 4")
    superuser(system, "ALTER TABLE audit_seal ENABLE TRIGGER audit_seal_append_only")
    v = verify(system, CS_AUDIT_HEAD_FILE="")
    assert not v["ok"] and v["tamper"] == "rewrite" and v["broken_seal"] == 4, v
    assert "unsigned after signed seals" in v["problem"]


def test_upgraded_database_keeps_its_legacy_seals_and_signs_on(system: System) -> None:
    """A database sealed before migration 011 (every seal unsigned, nothing
    published) verifies; a scheduler with the heads file then signs and
    publishes only the seals it makes, chained onto the legacy ones."""
    sched = system.scheduler()  # no heads file
    system.sql("INSERT INTO audit (actor, action) SELECT 'test', 'legacy' FROM generate_series(1, 5)")
    wait_for(lambda: all_sealed(system), 20, what="the legacy entries to be sealed")
    sched.stop()
    superuser(system, "ALTER TABLE audit_seal DISABLE TRIGGER audit_seal_append_only",
              "UPDATE audit_seal SET mac = NULL",
              "ALTER TABLE audit_seal ENABLE TRIGGER audit_seal_append_only")
    legacy = system.sql("SELECT count(*) FROM audit_seal")[0][0]
    heads_file = Path(heads(system)["CS_AUDIT_HEAD_FILE"])
    heads_file.unlink(missing_ok=True)
    v = verify(system)
    assert v["ok"] and v["legacy_seals"] == legacy and v["signed_seals"] == 0, v
    system.scheduler(**heads(system))
    system.sql("INSERT INTO audit (actor, action) VALUES ('test', 'after.upgrade')")
    wait_for(lambda: all_sealed(system), 20, what="the new entry to be sealed")
    wait_for(heads_file.exists, 20, what="the first signed head to be published")
    published = [json.loads(line)["seq"] for line in heads_file.read_text().splitlines()]
    head = system.sql("SELECT max(seq) FROM audit_seal")[0][0]
    assert published == list(range(legacy + 1, head + 1))
    v = verify(system)
    assert v["ok"] and v["legacy_seals"] == legacy and v["signed_seals"] == head - legacy, v
    assert v["published_head"] == head
