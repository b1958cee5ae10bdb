"""Several api, worker and scheduler processes at once under a mixed load --
calls that need no approval, approvals decided by racing approvers on two
apis, denials, cancellations, and many short-window approvals expiring while
votes race their deadline -- with the leading scheduler and the active relay
SIGKILLed in the middle. Approvers decide as people do: each signs in once
with a one-time link (approver.py) and, as the events topic announces each
approval's page, posts its decision form there -- on either api (a session
lives in Postgres, so it works on every api process).

Invariants: no approval expires twice, no call runs twice, every approval
ends once (one terminal audit entry), one audit chain that verifies, and
every outcome on the results topic (at least once: one event_id per approval).
"""

from __future__ import annotations

import collections
import concurrent.futures
import heapq
import json
import random
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from approver import Approver

from faultlib import (ApprovalPages, alive_and_same, assert_one_outcome_each, keys_by_approval,
                      results_by_approval, scale, seed, wait_all_terminal, wait_sealed)
from harness import System
from services import scaled, wait_for

ADMIN = "fault-admin-token"
WINDOW = 2                              # seconds: the short policy's approval window
N_AUTO = scale(120, 600)                # Kafka: no approval needed
N_PENDING = scale(40, 200)              # Kafka: approve (raced), deny or cancel
N_SHORT = scale(80, 400)                # Kafka: short window, most expire
N_HTTP = scale(60, 300)                 # HTTP: a third of each kind
PEOPLE = ("alice", "bob", "carol")
TERMINAL_ACTIONS = ("approval.executed", "approval.failed", "approval.denied",
                    "approval.expired", "approval.cancelled")


class Deciders:
    """Plays the approvers and the agent: watches for pending approvals and acts on a schedule.

    Stripe approvals: half are approved by alice on api1 and bob on api2 at the
    same moment, a quarter denied, a quarter cancelled by the agent. Short ones:
    40% get a vote in the last second of the window or just after it, the rest
    expire untouched. Each person signed in once, on api1; a vote is one POST of
    the decision form (the session's csrf, which every page of the session holds)
    to the approval's page on the api named, as a tab opened earlier sends it
    whether or not the page still offers the form.
    """

    def __init__(self, system: System, apis: list[str], key: str, rng: random.Random) -> None:
        self.system, self.apis, self.key, self.rng = system, apis, key, rng
        self.codes: collections.Counter[tuple[str, int | str]] = collections.Counter()
        self.plan: dict[str, str] = {}
        self.stop = threading.Event()
        self._heap: list[tuple[float, int, Any]] = []
        self._n = 0
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=12)
        self._http = httpx.Client(timeout=scaled(30))
        self._thread = threading.Thread(target=self._run, name="deciders", daemon=True)
        self.pages = ApprovalPages(system)
        self.people: dict[str, tuple[Approver, str]] = {}

    def start(self) -> Deciders:
        for who in PEOPLE:  # each signs in once, with a link the operator minted
            person = Approver()
            link = self.system.cli_json("approver", "signin-link", who)["url"]
            inbox = person.sign_in(self.apis[0] + urlsplit(link).path)
            self.people[who] = (person, person.session_csrf(inbox))
        self._thread.start()
        return self

    def _at(self, due: float, fn: Any) -> None:
        self._n += 1
        heapq.heappush(self._heap, (due, self._n, fn))

    def _post(self, what: str, url: str, body: dict[str, Any] | None, token: str) -> None:
        try:
            r = self._http.post(url, json=body, headers={"Authorization": f"Bearer {token}"})
            code: int | str = r.status_code
        except httpx.HTTPError as e:
            code = type(e).__name__
        self.codes[(what, code)] += 1

    def _vote(self, api: str, aid: str, who: str, decision: str, what: str) -> None:
        person, csrf = self.people[who]
        try:  # the approval's page, once the events topic has announced it
            path = wait_for(lambda: self.pages.paths.get(aid), 15, interval=0.02,
                            what=f"the page of {aid}")
        except TimeoutError:
            self.codes[(what, "no page announced")] += 1
            return
        try:
            code: int | str = person.post(api + path, {
                "csrf": csrf, "decision": decision, "reason": f"{who}: fault suite"}).status_code
        except httpx.HTTPError as e:
            code = type(e).__name__
        self.codes[(what, code)] += 1

    def _discover(self, known: set[str]) -> None:
        rows = self.system.sql("SELECT id, grant_id, extract(epoch FROM expires_at) FROM approvals "
                               "WHERE status = 'pending'")
        now_wall, now = time.time(), time.monotonic()
        for aid, grant, expires in rows:
            aid = str(aid)
            if aid in known:
                continue
            known.add(aid)
            r = self.rng.random()
            if grant == "short":
                if r < 0.4:
                    # Around the deadline: some votes land, some are refused as too late.
                    due = now + (float(expires) - now_wall) + self.rng.uniform(-0.8, 0.4)
                    who = self.rng.choice(["alice", "bob"])
                    self.plan[aid] = "late-vote"
                    self._at(due, lambda a=aid, w=who: self._vote(self.apis[0], a, w, "approve",
                                                                  "late-vote"))
                else:
                    self.plan[aid] = "expire"
            elif r < 0.5:
                self.plan[aid] = "race"
                due = now + self.rng.uniform(0.05, 0.5)
                self._at(due, lambda a=aid: self._vote(self.apis[0], a, "alice", "approve", "race"))
                self._at(due, lambda a=aid: self._vote(self.apis[1], a, "bob", "approve", "race"))
            elif r < 0.75:
                self.plan[aid] = "deny"
                self._at(now + self.rng.uniform(0.05, 0.5),
                         lambda a=aid: self._vote(self.apis[1], a, "carol", "deny", "deny"))
            else:
                self.plan[aid] = "cancel"
                self._at(now + self.rng.uniform(0.05, 0.5),
                         lambda a=aid: self._post("cancel", f"{self.apis[0]}/v1/approvals/{a}/cancel",
                                                  {}, self.key))

    def _run(self) -> None:
        known: set[str] = set()
        futures = []
        while not self.stop.is_set() or self._heap:
            self.pages.poll()
            if not self.stop.is_set():
                self._discover(known)
            now = time.monotonic()
            while self._heap and self._heap[0][0] <= now:
                futures.append(self._pool.submit(heapq.heappop(self._heap)[2]))
            time.sleep(0.05)
        give_up = time.monotonic() + scaled(60)  # votes still waiting for their page
        while not all(f.done() for f in futures) and time.monotonic() < give_up:
            self.pages.poll()
            time.sleep(0.05)

    def finish(self) -> None:
        self.stop.set()
        self._thread.join(scaled(90))
        self._pool.shutdown(wait=True)
        self._http.close()
        self.pages.close()
        for person, _ in self.people.values():
            person.close()


def _http_submissions(system: System, apis: list[str], key: str) -> collections.Counter[int | str]:
    """N_HTTP submissions spread over both apis: a third each of auto, pending and short."""
    codes: collections.Counter[int | str] = collections.Counter()

    def one(i: int) -> None:
        kind = ("auto", "pending", "short")[i % 3]
        body = {"method": "POST", "url": f"{system.stub.url}/v1/refunds/h{i}",
                "grant_id": "short" if kind == "short" else "stripe",
                "json": {"amount": 50 if kind == "auto" else 500}, "reason": f"http {kind} {i}",
                "idempotency_key": f"h{i}"}
        with httpx.Client(timeout=scaled(30)) as c:
            try:
                codes[c.post(f"{apis[i % 2]}/v1/proxy", json=body,
                             headers={"Authorization": f"Bearer {key}"}).status_code] += 1
            except httpx.HTTPError as e:
                codes[type(e).__name__] += 1

    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(one, range(N_HTTP)))
    return codes


def _leader(procs: list[Any], marker: str) -> Any:
    return wait_for(lambda: next((p for p in procs if marker in p.text()), None), 30,
                    what=f"a process logging {marker!r}")


def test_many_processes_mixed_load(system: System) -> None:
    rng = random.Random(s := seed())
    print(f"seed {s}")
    system.setup(approvers=("alice", "bob", "carol"), timeout_ms=3000)
    system.cli("policy", "set", "short", "--mode", "always", "--quorum", "1",
               "--approvers", "alice,bob", "--window", str(WINDOW), "--timeout", "3000")
    system.cli("grant", "set", "short", "--policy", "short", "--agents", "bot1",
               "--secret-stdin", "--allow", system.stub.url, input=system.secret + "\n")
    system.stub.program("/v1/refunds", delay=0.05)
    env = {"CS_LEASE_MARGIN_MS": "1000", "CS_EXEC_CONCURRENCY": "16"}
    workers = [system.worker(f"w{i}", **env) for i in range(3)]
    schedulers = [system.scheduler(f"s{i}", **env) for i in range(3)]
    apis_p = [system.api(f"api{i}", CS_ADMIN_TOKEN=ADMIN) for i in range(2)]
    apis: list[str] = [p.url for p in apis_p]  # type: ignore[attr-defined]
    key = system.api_key()
    deciders = Deciders(system, apis, key, rng).start()

    envelopes = ([system.envelope(f"a{i}", amount=50, path=f"/v1/refunds/a{i}") for i in range(N_AUTO)]
                 + [system.envelope(f"p{i}", path=f"/v1/refunds/p{i}") for i in range(N_PENDING)]
                 + [system.envelope(f"s{i}", grant_id="short", path=f"/v1/refunds/s{i}")
                    for i in range(N_SHORT)])
    rng.shuffle(envelopes)
    killed = []
    try:
        http_codes: collections.Counter[int | str] = collections.Counter()
        http = threading.Thread(target=lambda: http_codes.update(
            _http_submissions(system, apis, key)), daemon=True)
        http.start()
        for n, chunk in enumerate(range(0, len(envelopes), 40)):
            system.produce(*envelopes[chunk:chunk + 40])
            time.sleep(0.3)
            if n == 2:  # expiries are under way: the leading scheduler dies
                lead = _leader(schedulers, "leading: running the sweeps")
                lead.kill()
                killed.append(lead)
                schedulers.append(system.scheduler("s3", **env))
            if n == 4:  # and so does the active relay
                relay = _leader(workers, "active: publishing the events")
                relay.kill()
                killed.append(relay)
                workers.append(system.worker("w3", wait_ready=False, **env))
        http.join(scaled(120))
        total = len(envelopes) + N_HTTP
        wait_for(lambda: system.sql("SELECT count(*) FROM approvals")[0][0] >= total, 60,
                 what="every request to be stored")
        # Let every short window close and its late votes land or be refused.
        time.sleep(scaled(WINDOW + 1.5))
    finally:
        deciders.finish()
    counts = wait_all_terminal(system, len(envelopes) + N_HTTP, timeout=60)
    print(f"{counts}; killed {[p.name for p in killed]}; http {dict(http_codes)}; "
          f"decisions {dict(deciders.codes)}")
    survivors = [p for p in workers + schedulers + apis_p if p not in killed]
    alive_and_same(survivors, {p.name: p.pid for p in survivors})

    rows = {str(r[0]): r[1:] for r in system.sql(
        "SELECT id, request_id, grant_id, status, error_code, expires_at, decided_at, decided_by "
        "FROM approvals")}
    assert len(rows) == len(envelopes) + N_HTTP
    # Every approval ended exactly once; none expired twice.
    ends: collections.Counter[tuple[str, str]] = collections.Counter()
    for aid, action in system.sql("SELECT approval_id, action FROM audit WHERE action = ANY(%s)",
                                  list(TERMINAL_ACTIONS)):
        ends[(str(aid), action)] += 1
    for aid, (rid, grant, status, error, expires_at, decided_at, _) in rows.items():
        mine = {a: n for (i, a), n in ends.items() if i == aid}
        assert mine == {f"approval.{status}": 1}, f"{rid} ({status}) ended {mine}"
    expired = [r for r in rows.values() if r[2] == "expired"]
    assert len(expired) > N_SHORT // 3, "the short windows did not expire"
    lateness = [(d - e).total_seconds() for _, _, st, _, e, d, _ in rows.values() if st == "expired"]
    print(f"expired {len(expired)}: swept {min(lateness):.2f}..{max(lateness):.2f}s after the deadline")
    assert max(lateness) < scaled(5), "an expiry waited too long for a sweep"
    # No decision after the deadline: approved short ones were decided in time.
    for rid, grant, status, _, expires_at, decided_at, by in rows.values():
        if grant == "short" and status not in ("expired", "pending") and decided_at is not None:
            assert decided_at < expires_at, f"{rid} decided at {decided_at}, after {expires_at}"
    # Only the scheduler and the relay died: every page was announced and every press
    # was answered -- decided (200), too late (410) or already decided (409).
    assert not [k for k in deciders.codes if not isinstance(k[1], int) or
                k[1] not in (200, 409, 410)], dict(deciders.codes)
    assert deciders.codes[("race", 200)] >= 1 and deciders.codes[("deny", 200)] >= 1
    late_landed = sum(1 for a, p in deciders.plan.items() if p == "late-vote"
                      and rows[a][2] != "expired")
    late_refused = sum(1 for a, p in deciders.plan.items() if p == "late-vote"
                       and rows[a][2] == "expired")
    print(f"votes racing the deadline: {late_landed} landed, {late_refused} too late")

    # No call ran twice; every executed call reached the provider once.
    seen = keys_by_approval(system.stub.requests("/v1/refunds"))
    assert not {k: n for k, n in seen.items() if n > 1}, "a call ran twice"
    for aid, (rid, _, status, error, *_rest) in rows.items():
        if status == "executed":
            assert seen[aid] == 1, rid
        elif status == "failed":  # only a call in flight on the killed worker may be unknown
            assert error == "outcome_unknown", (rid, error)
        else:
            assert seen[aid] == 0, f"{rid} is {status} but reached the provider"
    # One chain, verified.
    report = wait_sealed(system)
    seals = system.sql("SELECT count(*), min(seq), max(seq) FROM audit_seal")[0]
    assert seals[0] == seals[2] - seals[1] + 1, f"the seals are not one sequence: {seals}"
    print(f"audit: {report}")
    # Every outcome on results: at least once, one outcome per approval.
    system.wait_events_published(60)
    grouped = results_by_approval(system, set(rows))
    assert set(grouped) == set(rows)
    dups = assert_one_outcome_each(grouped)
    for aid, msgs in grouped.items():
        assert msgs[0]["status"] == rows[aid][2], aid
    print(f"results: {len(grouped)} approvals, {dups} duplicate deliveries (at least once)")


@pytest.mark.private_services  # moves the cluster's txid counter: nobody else may use it
def test_audit_verify_across_a_txid_power_of_ten(system: System) -> None:
    """A seal whose entries straddle txid 10^k (999 -> 1000, 9999 -> 10000, ...) verifies.

    Found by test_many_processes_mixed_load: seal_insert hashes entries in
    xid8 order, but audit_range (what `countersign audit verify` reads) says
    `SELECT ..., txid::text, ... ORDER BY txid, id`, and ORDER BY picks the
    text output column: '1001' sorts before '995', so verify reports a
    tampered entry that nobody changed.
    """
    (now,) = system.sql("SELECT pg_current_xact_id()::text::bigint")[0]
    boundary = 10 ** len(str(now + 3))
    # Burning xids runs at ~100k/s without fsync waits; a test cluster stays far below 10^7.
    assert boundary - now <= 3_000_000, f"txid {now}: {boundary} is too far to burn towards"
    with psycopg.connect(system.db_url, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("CREATE PROCEDURE pg_temp.burn(n bigint) LANGUAGE plpgsql AS $$ BEGIN "
                     "FOR i IN 1..n LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP; END $$")
        row = conn.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()
        assert row is not None
        (now,) = row
        conn.execute("CALL pg_temp.burn(%s)", (boundary - now - 3,))
        # Four entries in four transactions around the boundary, e.g. 998, 999, 1000, 1001.
        for i in range(4):
            conn.execute("INSERT INTO audit (actor, action, detail) "
                         "VALUES ('test', 'test.txid', jsonb_build_object('i', %s))", (i,))
    txids = [int(t) for (t,) in system.sql("SELECT txid::text FROM audit WHERE actor = 'test'")]
    assert min(txids) < boundary <= max(txids), (txids, boundary)
    system.scheduler("sealer")
    wait_for(lambda: system.sql("SELECT count(*) FROM audit a WHERE a.txid >= coalesce("
                                "(SELECT max(to_txid) FROM audit_seal), '1'::xid8)")[0][0] == 0,
             30, what="the sealer to seal every entry")
    res = system.cli("audit", "verify", check=False)
    assert res.returncode == 0 and json.loads(res.stdout)["ok"], \
        f"entries at txids {txids} (across {boundary}): {res.stdout}"
