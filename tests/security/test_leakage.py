"""Grant secrets (and the master key, and API keys) leak nowhere; sign-in links and
session tokens reach only their owner.

One broad scenario runs every path a secret could travel -- inline and Kafka
executions with three injection styles, approvals decided by signed-in approvers,
by the operator API and by a whole-batch page, denials, cancellation, expiry, provider errors,
dropped connections, connection failures, a name resolving to loopback, a redirect,
refused headers, URLs and votes, notifications by SMTP, webhook and Slack -- and then
looks for every secret, in every form, in: every process log and the CLI log, every
message on the requests, events, results and dead-letter topics (and the originals
inside dead letters), every audit row, every HTTP response and header received, the
operator API listings, the CLI output, the mails and webhook bodies, and a pg_dump of
the whole database plus a column-by-column scan. The secret may exist only encrypted
in grants.secret; API keys only as their SHA-256; the master key nowhere. The provider
receives each grant's secret only on that grant's base, in that grant's header.

The same search looks for every one-time sign-in token (printed by the CLI, sent in
notifications) and every session token (set by a sign-in): they may appear only in
the CLI output or the message that hands them to their owner and in the Set-Cookie
of the sign-in -- never in a process log, a Kafka message, an audit row, another
response, or the database (which holds their SHA-256 only). Each notification's
sign-in link is for its recipient.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from attack_kit import (SIGNIN_TOKEN, Deployment, deployment, session_csrf, sign,
                        token_hash)
from services import Kafka, Postgres, SmtpSink, free_port, wait_for

PG_BIN = Path(os.environ.get("CS_PG_BIN", "/usr/lib/postgresql/15/bin"))
RULES = json.dumps([{"method": "POST", "path": "/v*/refunds*", "field": "amount", "op": ">",
                     "value": 100}])
DEAD_PORT = free_port()  # nothing listens there


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    yield sink
    sink.close()


@pytest.fixture(scope="module")
def d(request: pytest.FixtureRequest, pg: Postgres, kafka: Kafka,
      smtp: SmtpSink) -> Iterator[Deployment]:
    with deployment(request, pg, kafka, "sec_leakage") as d:
        s, stub = d.system, d.stub
        s.cli("agent", "create", "bot1")
        s.cli("approver", "create", "alice", "--email", "alice@example.com")
        s.cli("approver", "create", "bob", "--webhook", f"{stub.url}/hooks/bob")
        s.cli("approver", "create", "carol", "--slack", f"{stub.url}/slack/carol")
        s.cli("approver", "create", "mallory", "--agent", "bot1", "--email", "m@example.com")
        s.cli("policy", "set", "pay", "--mode", "rules", "--rules", RULES, "--quorum", "1",
              "--approvers", "alice,bob,carol,mallory", "--attempts", "1", "--timeout", "3000",
              "--amount-field", "amount")
        s.cli("policy", "set", "short", "--mode", "always", "--quorum", "1", "--approvers",
              "alice", "--window", "2")
        s.cli("grant", "set", "stripe", "--policy", "pay", "--agents", "bot1", "--allow",
              stub.url, "--secret-stdin", input=s.secret + "\n")
        d.add_grant("second", "acct_" + secrets.token_hex(8) + ":pw_" + secrets.token_hex(12),
                    [f"{stub.url}/v2"], inject="basic")
        d.add_grant("hdr", "hk_" + secrets.token_hex(20), [f"{stub.url}/v3"], inject="header",
                    header="X-Provider-Key")
        # Nothing listens there: never sent, retried until a short deadline, then failed.
        d.add_grant("dead", "dk_" + secrets.token_hex(16), [f"http://127.0.0.1:{DEAD_PORT}"],
                    exec_deadline=3)
        d.add_grant("named", "nk_" + secrets.token_hex(16), [f"http://localhost:{stub.port}"])
        d.add_grant("short", "st_" + secrets.token_hex(16), [stub.url], policy="short")
        d.start_api()
        s.worker(CS_SMTP_URL=smtp.url, CS_SMTP_FROM="approvals@countersign.test")
        s.scheduler()
        d.key = d.new_key()
        yield d


def run_scenario(d: Deployment, smtp: SmtpSink) -> list[str]:
    """Every path; returns the CLI output it read."""
    s, stub, out = d.system, d.stub, []
    stub.program("/v1/refunds/boom", status=500, body=b'{"error":"boom"}')
    stub.program("/v1/refunds/cut", close_without_response=True)
    stub.program("/v1/refunds/moved", status=302, headers={"Location": "http://10.0.0.1/x"})
    # Inline executions, three injection styles, and failures.
    for grant, url in (("stripe", f"{stub.url}/v1/refunds/inline"),
                       ("second", f"{stub.url}/v2/refunds/inline"),
                       ("hdr", f"{stub.url}/v3/charges"),
                       ("stripe", f"{stub.url}/v1/refunds/boom"),
                       ("stripe", f"{stub.url}/v1/refunds/cut"),
                       ("stripe", f"{stub.url}/v1/refunds/moved"),
                       ("dead", f"http://127.0.0.1:{DEAD_PORT}/v1/refunds"),
                       ("named", f"http://localhost:{stub.port}/v1/refunds/named")):
        r = d.submit(url, grant=grant, amount=5, extra_headers={"X-Trace": grant})
        assert r.status_code in (200, 502), r.text
    # Refusals over HTTP.
    assert d.submit(extra_headers={"Authorization": "Bearer stolen"}).status_code == 400
    assert d.submit(url="http://169.254.169.254/", grant="second").status_code == 403
    assert d.submit(secret="x").status_code == 400
    # Kafka: executions, refusals, a batch.
    s.produce(s.envelope("k-ok", amount=5, path="/v1/refunds/k"),
              s.envelope("k-second", amount=5, grant_id="second", url=f"{stub.url}/v2/k"),
              s.envelope("k-hdr", amount=5, grant_id="hdr", url=f"{stub.url}/v3/k"),
              s.envelope("k-bad", amount=5, headers={"Cookie": "c"}),
              s.envelope("k-far", amount=5, url="http://10.0.0.1/"),
              s.envelope("k-pending", amount=900, path="/v1/refunds/kp"),
              *[s.envelope(f"kb-{i}", amount=200 + i, path=f"/v1/refunds/kb{i}", batch_id="kb")
                for i in range(3)])
    s.produce_raw(b"seal", json.dumps({"type": "seal", "agent": "bot1", "batch_id": "kb",
                                       "count": 3}).encode())
    # Approvals: approved by link, denied by link, cancelled, expired, decided by the
    # operator API, refused votes, and a whole batch.
    approved = d.pending(path="/v1/refunds/approved")
    denied = d.pending(grant="second", url=f"{stub.url}/v2/refunds/denied")
    cancelled = d.pending(grant="hdr", url=f"{stub.url}/v3/refunds/cancelled")
    expired = d.pending(grant="short", path="/v1/refunds/expired")
    by_admin = d.pending(path="/v1/refunds/admin")
    assert d.vote(d.link(approved, "mallory")).status_code == 403           # self-approval
    assert d.vote(d.link(approved, "alice"), reason="checked").status_code == 200
    assert d.vote_late(d.link(approved, "bob")).status_code == 409              # decided already
    c, page = d.sign_in(d.link(denied, "bob"))
    assert d.decide(c, page, "deny", origin="https://evil.example").status_code == 403
    assert d.client().post(page, data={"decision": "deny", "csrf": "x"},
                           headers={"Origin": d.url}).status_code == 401     # no session
    assert d.vote(d.link(denied, "bob"), "deny", "wrong account").status_code == 200
    forged = sign(os.urandom(32), denied, 2**50)
    assert d.client().get(f"{d.url}/status/{forged}").status_code == 403
    assert d.client().post(f"{d.url}/signin/{'A' * 43}", headers={"Origin": d.url}) \
        .status_code == 403
    assert d.http.post(f"/v1/approvals/{cancelled}/cancel", headers=d.auth(),
                       json={"reason": "withdrawn"}).status_code == 200
    r = d.http.post(f"/v1/admin/approvals/{by_admin}/decide", headers=d.admin(),
                    json={"approver": "carol", "decision": "approve", "reason": "ok"})
    assert r.status_code == 200, r.text
    wait_for(lambda: s.approval("kb-2") is not None and
             json.loads(s.cli("batch", "show", "bot1", "kb").stdout).get("status") == "decidable",
             30, what="the batch to be decidable")
    bc, bpage = d.sign_in(d.batch_link("kb"))
    assert d.decide(bc, bpage, "approve").status_code == 200
    # Sessions: the operator's link over the API, sign-out, revocation, listings.
    r = d.http.post("/v1/admin/approvers/alice/signin-link", headers=d.admin(), json={})
    assert r.status_code in (200, 201), r.text
    oc, inbox = d.sign_in(d.fix(r.json()["url"]))
    d.signin_tokens.append(r.json()["url"].rsplit("/", 1)[1])
    sc, _ = d.session("carol")
    assert sc.post(f"{d.url}/signout", data={"csrf": session_csrf(sc.get(inbox))},
                   headers={"Origin": d.url}).status_code == 303
    assert oc.get(inbox).status_code == 200
    for path in ("approvers/alice/sessions", "approvers/carol/sessions"):
        assert d.http.get(f"/v1/admin/{path}", headers=d.admin()).status_code == 200
    assert d.http.post("/v1/admin/approvers/alice/sessions/revoke",
                       headers=d.admin()).status_code == 200
    kp = s.wait_status("k-pending", "pending")
    s.cli("approval", "deny", str(kp["id"]), "--as", "alice", "--reason", "no")
    # Everyone reaches an end (expiry needs the sweep).
    for aid, want in ((approved, "executed"), (denied, "denied"), (cancelled, "cancelled"),
                      (expired, "expired"), (by_admin, "executed")):
        d.wait_id(aid, want, timeout=30)
    for rid in ("k-ok", "k-second", "k-hdr", "kb-0", "kb-1", "kb-2"):
        s.wait_status(rid, "executed")
    s.wait_status("k-pending", "denied")
    # Long-poll and status reads of every approval, and the status pages.
    for (aid,) in s.sql("SELECT id::text FROM approvals"):
        d.http.get(f"/v1/approvals/{aid}", headers=d.auth())
        d.http.get(f"/v1/approvals/{aid}/result?wait=1", headers=d.auth())
        d.http.get(f"/v1/admin/approvals/{aid}", headers=d.admin())
        d.client().get(d.page(aid))
        for slot in d.links(aid).values():
            d.client().get(slot["url"])
    # Notifications delivered, events published, dead letters written.
    wait_for(lambda: s.sql("SELECT count(*) FROM notifications WHERE status = 'queued'")[0][0] == 0,
             30, what="notifications sent")
    s.wait_events_published(30)
    wait_for(lambda: len(s.topic("dlq", expect=2, timeout=5)) >= 2, 30, what="dead letters")
    assert smtp.mails and stub.requests("/hooks/bob") and stub.requests("/slack/carol")
    # Operator views.
    for path in ("agents", "keys", "approvers", "policies", "grants", "approvals", "audit",
                 "audit/verify"):
        r = d.http.get(f"/v1/admin/{path}", headers=d.admin())
        assert r.status_code == 200, (path, r.text)
    for args in (("grant", "list"), ("approval", "list"), ("approval", "show", approved),
                 ("approval", "show", denied), ("approval", "links", by_admin),
                 ("audit", "tail", "--limit", "1000"), ("audit", "export"), ("audit", "verify"),
                 ("key", "list"), ("agent", "list"), ("approver", "list"), ("policy", "list"),
                 ("batch", "show", "bot1", "kb"), ("batch", "links", "bot1", "kb"),
                 ("approver", "sessions", "alice"), ("approver", "sessions", "carol"),
                 ("approver", "revoke-sessions", "bob")):
        res = s.cli(*args)
        out.append(res.stdout + res.stderr)
    d.http.get("/metrics")
    d.http.get("/openapi.json")
    return out


def signin_links_in_notifications(d: Deployment, smtp: SmtpSink, hooks: list[Any]) -> list[str]:
    """Every mail, webhook and Slack message carries a one-time sign-in link minted for
    its recipient (whoever holds the slot), and no other; its tokens join the search."""
    problems: list[str] = []
    emails = dict(d.system.sql("SELECT email, name FROM approvers WHERE email IS NOT NULL"))
    sent: list[tuple[str, bytes]] = [(emails[r.strip("<>")], m.data)
                                     for m in smtp.mails for r in m.recipients]
    sent += [(h.path.rsplit("/", 1)[1], h.body) for h in hooks]
    assert sent
    for owner, blob in sent:
        tokens = set(SIGNIN_TOKEN.findall(blob.decode("utf-8", errors="replace")))
        if len(tokens) != 1:
            problems.append(f"a message to {owner} carries {len(tokens)} sign-in links")
        for t in tokens:
            d.signin_tokens.append(t)
            rows = d.system.sql("SELECT p.name FROM signin_links l JOIN approvers p "
                                "ON p.id = l.approver_id WHERE l.token_hash = %s", token_hash(t))
            if [r[0] for r in rows] != [owner]:
                problems.append(f"a sign-in link sent to {owner} signs in {rows}")
    return problems


def pg_dump(d: Deployment) -> bytes:
    dump = PG_BIN / "pg_dump"
    if not dump.exists():
        dump = Path("pg_dump")
    res = subprocess.run([str(dump), "--data-only", "--no-owner", d.system.db_url],
                         capture_output=True, timeout=120)
    assert res.returncode == 0, res.stderr.decode(errors="replace")
    assert b"COPY public.approval_requests" in res.stdout
    assert b"COPY public.approval_states" in res.stdout
    return res.stdout


def column_scan(d: Deployment, needles: dict[str, bytes]) -> list[str]:
    """Every column of every table, as text and (bytea) as bytes."""
    found = []
    with psycopg.connect(d.system.db_url, autocommit=True) as conn:
        cols = conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public'").fetchall()
        assert len(cols) > 50
        for table, col, typ in cols:
            for name, needle in needles.items():
                if typ == "bytea":
                    q = f'SELECT count(*) FROM "{table}" WHERE position(%s::bytea in "{col}") > 0'
                    arg: Any = needle
                else:
                    q = (f'SELECT count(*) FROM "{table}" '
                         f'WHERE strpos(lower("{col}"::text), lower(%s)) > 0')
                    arg = needle.decode()
                if conn.execute(q, (arg,)).fetchone()[0]:  # type: ignore[index]
                    found.append(f"{name} in {table}.{col}")
    return found


def test_no_secret_anywhere_after_every_path(d: Deployment, smtp: SmtpSink) -> None:
    s, stub = d.system, d.stub
    d.ids["bob"] = s.sql("SELECT id::text FROM approvers WHERE name = 'bob'")[0][0]
    cli_out = run_scenario(d, smtp)
    needles = d.needles()
    problems: list[str] = []

    # Logs of every process and the CLI, and what the CLI printed.
    logs = sorted(s.log_dir.glob("*.log"))
    assert {re.sub(r"\d*\.log$", "", p.name) for p in logs} >= {"api", "worker", "scheduler", "cli"}
    for log in logs:
        problems += d.leaks_in(f"log {log.name}", log.read_bytes())
    for i, text in enumerate(cli_out):
        problems += d.leaks_in(f"CLI output #{i}", text)

    # Every Kafka message, and the originals carried by dead letters.
    counts = {}
    kafka: dict[str, bytes] = {}
    for topic in ("requests", "events", "results", "dlq"):
        msgs = s.topic(topic, timeout=20)
        counts[topic] = len(msgs)
        for i, m in enumerate(msgs):
            kafka[f"{topic} message #{i} ({m['key']})"] = m["raw"]
            problems += d.leaks_in(f"{topic} message {m['key']}", m["raw"])
            if topic == "dlq":
                problems += d.leaks_in("a dead letter's original",
                                       base64.b64decode(m["value"]["original_b64"]))
    assert min(counts.values()) > 0, counts

    # Every audit row; every HTTP response (operator listings included).
    audit = s.sql("SELECT row_to_json(a)::text FROM audit a")
    assert len(audit) > 40
    problems += d.leaks_in("the audit log", "\n".join(r[0] for r in audit))
    assert len(d.seen) > 100
    for seen in d.seen:
        problems += d.leaks_in(f"the response to {seen.method} {seen.url}", seen.text())

    # Mails, webhooks, Slack messages: bodies and headers.
    for mail in smtp.mails:
        problems += d.leaks_in(f"mail to {mail.recipients}", mail.data)
    hooks = [r for r in stub.requests() if r.path.startswith(("/hooks", "/slack"))]
    assert hooks
    for h in hooks:
        problems += d.leaks_in(f"webhook {h.path}", h.body + json.dumps(h.headers).encode())

    # The database: a full dump and every column; API keys only as hashes.
    dump = pg_dump(d)
    problems += d.leaks_in("pg_dump", dump)
    problems += column_scan(d, needles)
    assert d.api_keys
    for key in d.api_keys:
        if key.encode() in dump:
            problems.append(f"API key {key[:11]}... stored in clear")
        digest = hashlib.sha256(key.encode()).digest()
        assert s.sql("SELECT count(*) FROM api_keys WHERE key_hash = %s", digest)[0][0] == 1
    for (blob,) in s.sql("SELECT secret FROM grants"):
        assert len(bytes(blob)) >= 1 + 12 + 16 + 1  # version, nonce, tag: AES-256-GCM
    assert not problems, "\n".join(sorted(set(problems)))

    # Sign-in links: each notification's is its recipient's (and there is one in each).
    problems += signin_links_in_notifications(d, smtp, hooks)
    # Sign-in and session tokens: in no log, Kafka message, audit row or other response;
    # in the database only as their SHA-256.
    assert d.signin_tokens and d.session_tokens
    problems += d.token_leaks({**kafka, "the audit log": "\n".join(r[0] for r in audit).encode(),
                               "pg_dump": dump})
    problems += column_scan(d, {n: t.encode() for n, t in d.token_needles().items()})
    for t in set(d.session_tokens):
        assert s.sql("SELECT count(*) FROM sessions WHERE token_hash = %s",
                      token_hash(t))[0][0] == 1
    for t in set(d.signin_tokens):
        assert s.sql("SELECT count(*) FROM signin_links WHERE token_hash = %s",
                      token_hash(t))[0][0] == 1, t[:6]
    # Nothing on the events topic lets its reader vote: no sign-in link, no slot link.
    pending = [json.loads(raw) for name, raw in kafka.items() if name.startswith("events")]
    pending = [e for e in pending if e.get("type") == "approval.pending"]
    assert pending
    for e in pending:  # a batch member's page is its batch's (batch.decidable's approval_url)
        assert "approval_links" not in e and e["approvers"], e
        assert e.get("approval_url") or e.get("batch_id"), e
    assert not [n for n, raw in kafka.items() if b"/signin/" in raw or b"cs_session" in raw]
    assert not problems, "\n".join(sorted(set(problems)))

    # The provider got each grant's secret only on that grant's base, the right way.
    sec = d.secrets
    for r in stub.requests():
        carried = [i for i, x in enumerate(sec) if any(
            n in json.dumps(r.headers).encode() + r.body
            for n in (x.encode(), base64.b64encode(x.encode())))]
        if r.path.startswith("/v2"):
            assert carried == [1] and r.headers["authorization"] == \
                "Basic " + base64.b64encode(sec[1].encode()).decode(), r.path
        elif r.path.startswith("/v3"):
            assert carried == [2] and r.headers["x-provider-key"] == sec[2], r.path
            assert "authorization" not in r.headers
        elif r.path.startswith("/v1"):
            assert carried in ([0], [5]), (r.path, carried)
            assert r.headers["authorization"] in (f"Bearer {sec[0]}", f"Bearer {sec[5]}")
        else:
            assert carried == [], (r.path, carried)
    assert not stub.requests("/v1/refunds/named")
