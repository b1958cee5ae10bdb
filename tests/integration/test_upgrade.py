"""An existing database upgrades in place.

tests/upgrade/schema7.sql is a database made by the version-7 binaries (commit
587c44e, before events moved from the outbox table to the WAL): approvals in every
state (one executing, its worker killed in the call), a decidable batch, votes,
sealed audit entries, and outbox rows never published (tests/upgrade/make_fixture.py
makes it). `countersign migrate` brings it to this version; then everything reads,
the audit chain verifies, the outbox's leftovers reach Kafka, and the system goes on.
"""
from __future__ import annotations

import json
import subprocess

from harness import System
from services import REPO_ROOT, wait_for

FIXTURE = REPO_ROOT / "tests" / "upgrade" / "schema7.sql"
MASTER_KEY = "dXBncmFkZS10ZXN0LW1hc3Rlci1rZXktMzItYnl0ZXM="  # the fixture's, test-only
PSQL = "/usr/lib/postgresql/15/bin/psql"


def load_fixture(system: System) -> None:
    system.pg.drop_database(system.db_name)
    system.pg.create_database(system.db_name)
    subprocess.run([PSQL, "-q", "-v", "ON_ERROR_STOP=1", "-f", str(FIXTURE), system.db_url],
                   check=True, capture_output=True, text=True, timeout=60)
    system.master_key = MASTER_KEY
    system.env["CS_MASTER_KEY"] = MASTER_KEY


def test_a_version_7_database_upgrades_in_place(system: System) -> None:
    load_fixture(system)
    assert system.sql("SELECT max(version) FROM schema_migrations")[0][0] == 7
    before = dict(system.sql("SELECT id::text, status FROM approvals"))
    # Every column of every approval, as it was (migration 019 moves the state to
    # a table of its own and leaves a view with the old columns).
    rows = {r[0]: r[1] for r in system.sql("SELECT id::text, to_jsonb(a) FROM approvals a")}
    assert set(before.values()) == {"pending", "approved", "executing", "executed", "failed",
                                    "denied", "expired", "cancelled"}
    votes = system.sql("SELECT count(*) FROM votes")[0][0]
    leftover = {json.loads(p)["event_id"] if isinstance(p, str) else p["event_id"]
                for (p,) in system.sql("SELECT payload FROM outbox")}
    assert leftover, "the fixture holds unpublished events"

    # As the README's "Upgrading" says: the role that owns the old schema (here the
    # superuser that restored it) runs the migrations, 009's roles included.
    out = json.loads(system.cli("migrate", env={"CS_PG_OWNER_URL": system.db_url}).stdout)
    assert out["applied"] >= 1
    assert system.sql("SELECT to_regclass('outbox') IS NULL")[0][0]
    assert dict(system.sql("SELECT id::text, status FROM approvals")) == before
    after = {r[0]: r[1] for r in system.sql("SELECT id::text, to_jsonb(a) FROM approvals a")}
    assert after.keys() == rows.keys()
    for aid, old in rows.items():
        assert {k: after[aid].get(k) for k in old} == old, aid
    assert system.sql("SELECT count(*) FROM votes")[0][0] == votes
    batch = system.cli_json("batch", "show", "bot1", "b3")
    assert batch["status"] == "decidable" and batch["members"] == 3
    for aid in before:
        shown = system.cli_json("approval", "show", aid)
        assert shown["status"] == before[aid]
    v = system.cli_json("audit", "verify")
    assert v["ok"] and v["seals"] >= 1, v

    # What the outbox held leaves through the WAL once a relay runs, then new work flows.
    system.worker()
    system.scheduler(CS_SWEEP_INTERVAL_MS="200")
    wait_for(lambda: leftover <= {m["value"]["event_id"]
                                  for m in system.topic("events", timeout=2)}
             | {m["value"]["event_id"] for m in system.topic("results", timeout=2)},
             60, what="the outbox's leftover events on Kafka")
    # The approved call is made after the upgrade (to the fixture's provider, gone by
    # now: it fails without having been sent).
    approved = next(a for a, s in before.items() if s == "approved")
    wait_for(lambda: system.approval_by_id(approved)["status"] in ("executed", "failed"), 60,
             what="the approved call to be made after the upgrade")
    assert system.approval_by_id(approved)["attempts"] >= 1
    executing = next(a for a, s in before.items() if s == "executing")
    wait_for(lambda: system.approval_by_id(executing)["status"] == "failed", 90,
             what="the call of the killed worker to be rescued as outcome_unknown")
    system.cli("grant", "allow", "stripe", system.stub.url)
    system.produce(system.envelope("after", amount=5))
    system.wait_status("after", "executed", timeout=60)
    system.wait_events_published(60)
    assert system.cli_json("audit", "verify")["ok"]
