"""Events through the WAL (migration 014, worker/relay.c) under faults.

The relay confirms the slot's position only after the broker acknowledged every
event up to it. So whatever breaks between the acknowledgement and the
confirmation -- the relay killed, Postgres crashing before the confirmed position
reached its disk -- the events after the confirmed position are published again,
byte for byte (same event_id), and none is ever skipped. A relay that stays away
shows in /metrics and /readyz long before the WAL it holds fills a disk.
"""

from __future__ import annotations

import collections
import contextlib
import json
import random
import time
import httpx
import psycopg
import pytest

from faultlib import scale, seed, wait_all_terminal
from harness import System
from services import scaled, wait_for

KILLS = scale(4, 20)


def events_by_id(system: System) -> dict[str, list[bytes]]:
    """Every message of the events and results topics, raw, by event_id (a results
    message's event_id is its approval's terminal event's, so topics stay apart)."""
    out: dict[str, list[bytes]] = collections.defaultdict(list)
    for topic in ("events", "results"):
        for m in system.topic(topic, timeout=3):
            out[f"{topic}:{m['value']['event_id']}"].append(m["raw"])
    return out


def expected_ids(system: System) -> set[str]:
    """What must be on Kafka for auto-approved calls that executed: per approval its
    approved, executing and executed events, and its result."""
    want = set()
    for aid, attempts in system.sql("SELECT id::text, attempts FROM approvals "
                                    "WHERE status = 'executed'"):
        want |= {f"events:{aid}:approved:0", f"events:{aid}:executing:{attempts}",
                 f"events:{aid}:executed:{attempts}", f"results:{aid}:executed:{attempts}"}
    return want


def assert_no_gap_same_bytes(system: System) -> int:
    """Every expected event is on Kafka; duplicates are the same bytes. Returns how many
    deliveries were duplicates."""
    want = expected_ids(system)
    got: dict[str, list[bytes]] = {}

    def complete() -> bool:
        nonlocal got
        got = events_by_id(system)
        return want <= set(got)

    try:
        wait_for(complete, 60, interval=1, what="every event on Kafka")
    except TimeoutError:
        missing = sorted(want - set(got))
        raise AssertionError(f"{len(missing)} events never published (a gap), e.g. "
                             f"{missing[:5]}; slot lag {system.event_lag()} bytes") from None
    dups = 0
    for eid, copies in got.items():
        assert len(set(copies)) == 1, f"{eid} published with different bytes: {copies}"
        dups += len(copies) - 1
    return dups


def test_relay_killed_again_and_again_skips_no_event(system: System) -> None:
    """Two workers; the one whose relay holds the slot is SIGKILLed again and again
    while calls execute, and a new one starts each time. The standby takes the slot
    over and replays from the confirmed position: duplicates allowed, gaps never."""
    rng = random.Random(s := seed())
    print(f"seed {s}")
    # Killed workers leave calls executing: keys, and a rescuer with a short lease
    # margin, requeue them (tests/fault/test_fault_worker_kills.py tests that part).
    system.setup(mode="never", rules=[], timeout_ms=2000, idempotency_keys=True)
    system.scheduler(CS_LEASE_MARGIN_MS="1000")
    workers = [system.worker("w0"), system.worker("w1", wait_ready=False)]
    n = 0
    for k in range(KILLS):
        system.produce(*[system.envelope(f"k{k}-{i}", amount=5) for i in range(100)])
        n += 100
        wait_for(lambda: sum(1 for w in workers if w.alive() and
                             "active: publishing the events" in w.text()) >= 1, 30,
                 what="an active relay")
        time.sleep(rng.uniform(0.05, scaled(0.5)))
        active = [w for w in workers if w.alive() and "active: publishing the events" in w.text()]
        victim = active[-1]
        victim.kill()
        workers.remove(victim)
        workers.append(system.worker(f"w{k + 2}", wait_ready=False))
    counts = wait_all_terminal(system, n, timeout=120)
    assert counts == {"executed": n}, counts
    dups = assert_no_gap_same_bytes(system)
    print(f"{KILLS} relay kills over {n} calls: {dups} duplicate deliveries, 0 gaps")


@pytest.mark.private_services  # kills a service (tests/conftest.py)
def test_postgres_crash_with_the_slot_behind_republishes(system: System) -> None:
    """Postgres writes a slot's confirmed position to disk at checkpoints. After a
    crash the slot is behind what the relay had confirmed (and the broker holds):
    those events come again, same bytes, and none after them is lost."""
    system.setup(mode="never", rules=[])
    system.worker()
    # The slot's position reaches disk at checkpoints, and whenever its restart point or
    # catalog xmin moves. A checkpoint now, before the events, puts the next timed one
    # minutes away; a transaction left open from before the events until the crash, with
    # a WAL record of its own (so that decoding holds it: an xid alone is not enough),
    # keeps the restart point, and so the slot's copy on disk, before every event. The
    # crash then sends the slot back before all of them. (Without it, a save after the
    # last event, as under load in CI, left nothing to send again, or nothing behind.)
    system.sql("CHECKPOINT")
    holder = psycopg.connect(system.db_url, autocommit=False)
    holder.execute("SELECT pg_logical_emit_message(true, 'cs-test-hold', '')")
    system.produce(*[system.envelope(f"a{i}", amount=5) for i in range(200)])
    wait_all_terminal(system, 200, timeout=90)
    system.wait_events_published(60)
    confirmed = system.sql("SELECT confirmed_flush_lsn::text FROM pg_replication_slots "
                           "WHERE database = current_database()")[0][0]
    assert assert_no_gap_same_bytes(system) == 0, "duplicates before any fault"
    system.pg.kill()
    with contextlib.suppress(psycopg.Error):
        holder.close()
    system.pg.start()
    after = system.sql("SELECT confirmed_flush_lsn::text, confirmed_flush_lsn < %s::pg_lsn "
                       "FROM pg_replication_slots WHERE database = current_database()",
                       confirmed)[0]
    system.produce(*[system.envelope(f"b{i}", amount=5) for i in range(100)])
    wait_all_terminal(system, 300, timeout=120)
    system.wait_events_published(90)
    dups = assert_no_gap_same_bytes(system)
    print(f"slot confirmed {confirmed} before the crash, {after[0]} after; "
          f"{dups} duplicate deliveries")
    assert after[1], f"the slot did not go back ({after[0]}, confirmed {confirmed})"
    assert dups > 0, "the slot went back but nothing was published again"


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


# Its own Postgres: a slot's lag counts the whole cluster's WAL, so on the shared
# one the other tests' writes passed the 1 MiB limit before any request (once in CI).
@pytest.mark.private_services
def test_relay_away_shows_in_metrics_and_readyz(system: System) -> None:
    """No relay reads the slot while the api takes requests: /metrics shows the slot
    inactive and its lag growing; past CS_EVENT_LAG_MAX_BYTES /readyz says not ready
    (events.ok false). A worker comes back and both recover."""
    system.setup(mode="always", rules=[])
    api = system.api(CS_EVENT_LAG_MAX_BYTES="1048576")
    url = api.url  # type: ignore[attr-defined]
    key = system.api_key()
    r = httpx.get(f"{url}/readyz", timeout=10)
    assert r.status_code == 200 and r.json()["events"]["ok"], r.text
    body = {"grant_id": "stripe", "method": "POST", "url": f"{system.stub.url}/v1/refunds",
            "json": {"amount": 500, "note": "x" * 2000}, "reason": "fill the WAL"}
    with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {key}"}) as c:
        i = 0
        while system.event_lag() <= 2 * 1048576:
            for _ in range(50):
                r = c.post(f"{url}/v1/proxy", json=body)
                assert r.status_code == 202, r.text
                i += 1
    text = httpx.get(f"{url}/metrics", timeout=10).text
    assert metric(text, "countersign_event_slot_active") == 0
    assert metric(text, "countersign_event_slot_lag_bytes") > 1048576
    r = httpx.get(f"{url}/readyz", timeout=10)
    assert r.status_code == 503, r.text
    ready = r.json()
    assert ready["postgres"] and not ready["events"]["ok"]
    assert ready["events"]["slot_exists"] and not ready["events"]["relay_active"]
    system.worker()
    wait_for(lambda: httpx.get(f"{url}/readyz", timeout=10).status_code == 200, 60,
             what="/readyz ready once a relay reads the slot")
    text = httpx.get(f"{url}/metrics", timeout=10).text
    assert metric(text, "countersign_event_slot_active") == 1
    pending = [m for m in system.topic("events", expect=i, timeout=60)
               if m["value"]["type"] == "approval.pending"]
    assert len({json.loads(m["raw"])["approval_id"] for m in pending}) == i
