"""Postgres crashes under load -- an immediate-mode restart, then a SIGKILL of the
postmaster and a start -- while the api, a worker and the scheduler run,
requests flow through Kafka and HTTP, and a signed-in approver decides on the
approvals' pages. No process is restarted by the test: they must reconnect by
themselves, and nothing may be lost or run twice.
"""

from __future__ import annotations

import collections
import random
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

import approver as browser
from faultlib import (ApprovalPages, HttpLoad, RetryingProducer, alive_and_same,
                      assert_one_outcome_each, keys_by_approval, results_by_approval, scale, seed,
                      statuses, wait_all_terminal, wait_sealed)
from harness import System
from services import scaled, wait_for

# Kills or restarts a service: under xdist, on services of its own (tests/conftest.py).
pytestmark = pytest.mark.private_services

CYCLES = scale(1, 4)          # each cycle: one immediate restart, one SIGKILL + start
KILL_GAP = 2.0                # seconds Postgres stays down after the SIGKILL
ADMIN = "fault-admin-token"


class Approver(threading.Thread):
    """alice, signed in once before the crashes, approves each pending approval on its
    page (announced on the events topic) with her session's form token, retrying
    through the outage: a decision during it is 503, never a refusal."""

    def __init__(self, system: System, url: str) -> None:
        super().__init__(name="approver", daemon=True)
        self.system, self.url = system, url
        self.stop = threading.Event()
        self.answers: collections.Counter[int | str] = collections.Counter()
        self.timeline: list[tuple[float, int | str]] = []
        self.unexpected: list[str] = []
        self.pages = ApprovalPages(system)
        self.person = browser.Approver()
        link = system.cli_json("approver", "signin-link", "alice")["url"]
        self.csrf = self.person.session_csrf(self.person.sign_in(url + urlsplit(link).path))
        self.todo: list[str] = []

    def decide(self, aid: str, path: str) -> None:
        give_up = time.monotonic() + scaled(60)
        while time.monotonic() < give_up:
            try:
                r = self.person.post(self.url + path, {"csrf": self.csrf, "decision": "approve"})
                code: int | str = r.status_code
            except httpx.HTTPError as e:
                code, r = type(e).__name__, None
            self.answers[code] += 1
            self.timeline.append((time.monotonic(), code))
            if code == 200:
                return
            if r is not None and r.status_code != 503:
                if r.status_code == 409:
                    return  # decided meanwhile (our own vote whose answer was lost)
                self.unexpected.append(f"{aid}: {code} {r.text[-300:]}")
                return
            time.sleep(0.1)
        self.unexpected.append(f"{aid}: never decided")

    def decide_all(self) -> int:
        """Decides the pending approvals whose page was announced; how many are pending."""
        self.pages.poll()
        try:
            pending = [str(i) for (i,) in self.system.sql(
                "SELECT id FROM approvals WHERE status = 'pending' ORDER BY created_at LIMIT 50")]
            self.todo = [aid for aid in pending if aid in self.pages.paths]
        except psycopg.Error:  # Postgres is away: press on with what was pending
            self.answers["sql_unavailable"] += 1
            pending = []
        todo, self.todo = self.todo, []
        for aid in todo:
            self.decide(aid, self.pages.paths[aid])
        return len(pending)

    def run(self) -> None:
        while not self.stop.is_set():
            self.decide_all()
            time.sleep(0.2)

    def finish(self, timeout: float = 60) -> None:
        """Approves what is still pending (the api must serve again)."""
        give_up = time.monotonic() + scaled(timeout)
        while self.decide_all() and time.monotonic() < give_up and not self.unexpected:
            time.sleep(0.05)
        self.pages.close()
        self.person.close()


def _probe(url: str, key: str, aid: str, approver: Approver,
           leaving: tuple[browser.Approver, str]) -> tuple[int, ...]:
    """The answers right now to: GET /v1/approvals/{id}, POST /v1/proxy, a signed-in
    approver's decision on a page, and a sign-out (of the `leaving` browser)."""
    h = {"Authorization": f"Bearer {key}"}
    with httpx.Client(timeout=scaled(15)) as c:
        a = c.get(f"{url}/v1/approvals/{aid}", headers=h).status_code
        b = c.post(f"{url}/v1/proxy", headers=h, json={
            "method": "POST", "url": "http://127.0.0.1:9/v1/refunds", "grant_id": "stripe",
            "json": {"amount": 1}, "idempotency_key": f"probe-{time.monotonic_ns()}"}).status_code
    page = url + next(iter(approver.pages.paths.values()))
    v = approver.person.post(page, {"csrf": approver.csrf, "decision": "approve"}).status_code
    o = leaving[0].post(f"{url}/signout", {"csrf": leaving[1]}).status_code
    return a, b, v, o


def test_postgres_crashes_under_load(system: System) -> None:
    rng = random.Random(s := seed())
    print(f"seed {s}")
    system.setup(timeout_ms=3000)      # amount > 100 waits for approval, the rest runs at once
    system.stub.program("/v1/refunds", delay=0.05)
    env = {"CS_LEASE_MARGIN_MS": "5000"}
    worker = system.worker("w1", **env)
    scheduler = system.scheduler("s1", **env)
    api = system.api("api1", CS_ADMIN_TOKEN=ADMIN, CS_HTTP_THREADS="8")
    procs = [worker, scheduler, api]
    pids = {p.name: p.pid for p in procs}
    url: str = api.url  # type: ignore[attr-defined]
    key = system.api_key()

    def kafka_envelope(i: int) -> dict[str, Any]:
        return system.envelope(f"k{i}", path=f"/v1/refunds/k{i}",
                               amount=500 if rng.random() < 0.3 else 50)

    def http_body(i: int) -> dict[str, Any]:
        return {"method": "POST", "url": f"{system.stub.url}/v1/refunds/h{i}", "grant_id": "stripe",
                "json": {"amount": 500 if i % 2 else 50}, "reason": f"http {i}",
                "idempotency_key": f"h{i}"}

    producer = RetryingProducer(system.kafka.bootstrap, system.topics["requests"],
                                kafka_envelope, rate=15, sign=system.signed).start()
    def body_of(n: int) -> Callable[[int], dict[str, Any]]:
        return lambda i: http_body(2 * i + n)

    loads = [HttpLoad([url], key, body_of(n), rate=5, name=f"http-{n}").start() for n in range(2)]
    approver = Approver(system, url)
    approver.start()
    other = browser.Approver()  # alice's other browser: signs out during the outage
    inbox = other.sign_in(url + urlsplit(system.cli_json("approver", "signin-link",
                                                         "alice")["url"]).path)
    leaving = (other, other.session_csrf(inbox))
    wait_for(lambda: approver.pages.paths, 30, what="a first approval page")
    probes: list[tuple[int, ...]] = []
    outages: list[tuple[str, float, float]] = []
    try:
        for cycle in range(CYCLES):
            for how in ("restart", "kill"):
                done = statuses(system).get("executed", 0)
                wait_for(lambda: statuses(system).get("executed", 0) >= done + 15, 60,
                         what=f"progress before the {how} of cycle {cycle + 1}")
                some = str(system.sql("SELECT id FROM approvals LIMIT 1")[0][0])
                t0 = time.monotonic()
                if how == "restart":
                    system.pg.restart()
                else:
                    system.pg.kill()
                    time.sleep(scaled(KILL_GAP) / 2)
                    probes.append(_probe(url, key, some, approver, leaving))
                    time.sleep(scaled(KILL_GAP) / 2)
                    system.pg.start()
                outages.append((how, t0, time.monotonic()))
        # Work resumes: requests produced after the last outage are stored and executed.
        mark = len(producer.produced)

        def resumed() -> bool:
            fresh = producer.produced[mark:mark + 20]
            return len(fresh) == 20 and system.sql(
                "SELECT count(*) FROM approvals WHERE request_id = ANY(%s) AND status IN "
                "('executed', 'pending')", fresh)[0][0] == 20

        wait_for(resumed, 90, what="work to resume after the last outage")
    finally:
        producer.stop()
        for load in loads:
            load.stop()
        approver.stop.set()
        approver.join(scaled(60))
    approver.finish()
    assert not approver.unexpected, approver.unexpected[:5]

    http_answers = sum((load.answers for load in loads), collections.Counter())
    print(f"outages {[(h, round(t1 - t0, 1)) for h, t0, t1 in outages]}; probes {probes}; "
          f"http {dict(http_answers)}; approver {dict(approver.answers)}; "
          f"kafka {len(producer.produced)} ({producer.redelivered} produced again)")

    # Every process is the one the test started, alive and serving.
    alive_and_same(procs, pids)
    assert httpx.get(f"{url}/readyz", timeout=scaled(10)).status_code == 200
    # HTTP clients got 503 while Postgres was down, and success after: a signed-in
    # approver's decision too (not "sign in"), and a sign-out (not signed out halfway:
    # the cookie cleared while the session lives on).
    assert all(p == (503, 503, 503, 503) for p in probes), probes
    assert other.session and "Signed in as" in other.page(inbox)
    assert other.sign_out(inbox).status_code == 303
    assert other.http.get(inbox).status_code == 303  # to /signin: that session ended
    other.close()
    assert http_answers[503] > 0, "no HTTP request ever met the outage"
    for load in loads:
        assert not load.unexpected, load.unexpected[:5]
    # ... and only during it: a 503 well after Postgres came back is a request failed
    # for nothing (a stale pooled connection, say).
    late = []
    for who, timeline in [(f"http-{n}", load.timeline) for n, load in enumerate(loads)] + \
            [("approver", approver.timeline)]:
        for t, code in timeline:
            if code != 503:
                continue
            back = max((t1 for _, _, t1 in outages if t1 <= t), default=None)
            if back is not None and not any(t0 <= t <= t1 for _, t0, t1 in outages) \
                    and t - back > scaled(3):
                late.append(f"{who}: 503 {t - back:.1f}s after Postgres was back")
    assert not late, late[:10]

    counts = wait_all_terminal(system, None, timeout=90)
    # Nothing lost: every request stored once -- from Kafka and from HTTP.
    per_request = collections.Counter(r for (r,) in system.sql("SELECT request_id FROM approvals"))
    dup = {r: n for r, n in per_request.items() if n > 1}
    assert not dup, f"stored twice: {dup}"
    missing = set(producer.produced) - set(per_request)
    assert not missing, f"acknowledged by Kafka but never stored: {sorted(missing)[:5]}"
    for load in loads:
        missing = set(load.accepted) - set(per_request)
        assert not missing, f"accepted over HTTP but not stored: {sorted(missing)[:5]}"
    # Every approved call executed exactly once. (Collected, not asserted one by one,
    # so that one run shows every way a call went wrong.)
    problems: list[str] = []
    seen = keys_by_approval(system.stub.requests("/v1/refunds"))
    rows = system.sql("SELECT id, request_id, status, error_code, attempts FROM approvals")
    twice = {rid: seen[str(i)] for i, rid, *_ in rows if seen[str(i)] > 1}
    if twice:
        problems.append(f"calls run more than once: {twice}")
    never = [rid for i, rid, st, *_ in rows if st == "executed" and seen[str(i)] == 0]
    if never:
        problems.append(f"executed without reaching the provider: {never[:5]}")
    not_executed = [(rid, st, code, seen[str(i)]) for i, rid, st, code, _ in rows
                    if st != "executed"]
    if not_executed:
        by_code = collections.Counter((st, code, n) for _, st, code, n in not_executed)
        problems.append(f"{len(not_executed)} approved calls not executed -- (status, error, "
                        f"times the provider saw the call): {dict(by_code)}; e.g. "
                        f"{not_executed[:5]}")
    lost_leases = system.sql("SELECT count(*) FROM audit WHERE actor = 'scheduler:rescuer'")[0][0]
    if lost_leases:
        problems.append(f"the rescuer took {lost_leases} calls from the live worker")
    assert not problems, "\n".join(problems)
    # Every outcome published; the audit chain still verifies.
    system.wait_events_published(60)
    ids = {str(i) for (i,) in system.sql("SELECT id FROM approvals")}
    assert_one_outcome_each(results_by_approval(system, ids))
    wait_sealed(system)
    for p in procs:
        assert "connected to Postgres" in p.text() or "reconnected" in p.text(), p.name


def test_call_in_flight_keeps_its_answer_through_a_postgres_restart(system: System) -> None:
    """The provider answers in 0.5 s while Postgres restarts: the answer must be recorded.

    The executor must keep driving its calls while the database is away; a
    call the provider answered must not become failed/timeout (or be retried)
    because the worker stopped reading the answer.
    """
    system.setup(mode="never", rules=[], timeout_ms=2000)
    system.stub.program("/v1/refunds", delay=0.5)
    system.worker("w1", CS_LEASE_MARGIN_MS="30000")
    system.produce(system.envelope("r1"))
    system.stub.wait_for(1, "/v1/refunds", timeout=30)   # the call is in flight
    t0 = time.monotonic()
    system.pg.restart()
    outage = time.monotonic() - t0
    a = system.wait_status("r1", {"executed", "failed"}, timeout=60)
    assert system.stub.count("/v1/refunds") == 1
    assert (a["status"], a["error_code"], a["response_status"]) == ("executed", None, 200), \
        (f"the provider answered 200 after 0.5 s, but with Postgres away for {outage:.1f}s the "
         f"call ended {a['status']}/{a['error_code']}: {a['error_message']}")
