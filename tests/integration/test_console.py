"""The operator console (issue 16) on the real system: who may see it, what it
shows, what it lets an operator do, and that each action is audited.

Operators sign in like approvers (one-time links here; OpenID in test_oidc.py)
and hold a console role from ``countersign approver set NAME --operator
read|write``. Each test starts the api, a worker and a scheduler on its own
database (test_api.Api) and walks the pages as a browser does (approver.py).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import subprocess
import time
import uuid
from typing import Any

import httpx
import psycopg

from approver import ANY_CSRF, Approver, origin_of
from harness import REPO_ROOT, System
from services import npm_ci, scaled, wait_for
from test_api import Api

ROUTES = re.findall(r'\{"(GET|POST)", "(/console[^"]*)", \w+, "\w+"(?:, (?:true|false))+\}',
                    (REPO_ROOT / "api" / "router.c").read_text())


def operator(system: System, name: str, next_path: str = "/console") -> tuple[Approver, str]:
    """A browser of approver `name`, signed in with a one-time link; the console URL."""
    url = system.cli_json("approver", "signin-link", name, "--next", next_path)["url"]
    person = Approver()
    page = person.sign_in(url)
    assert page.endswith(next_path), page
    return person, page


def console(system: System, **setup: Any) -> Api:
    """The system with approvers alice, bob (no role), ops (read-write), viewer (read-only)."""
    api = Api(system, approvers=("alice", "bob", "ops", "viewer"), **setup)
    assert system.cli_json("approver", "set", "ops", "--operator", "write") == {
        "approver": "ops", "operator": "write"}
    system.cli("approver", "set", "viewer", "--operator", "read")
    return api


def concrete(path: str) -> str:
    return path.replace("{}", str(uuid.uuid4()))


def csrf_of(person: Approver, url: str) -> str:
    m = ANY_CSRF.search(person.page(url))
    assert m, "no csrf on the page"
    return m.group(1)


def audit(system: System, action: str) -> list[tuple[Any, ...]]:
    return system.sql("SELECT actor, approval_id::text, detail FROM audit WHERE action = %s "
                      "ORDER BY id", action)


def test_routes_are_what_the_router_serves() -> None:
    assert len(ROUTES) >= 12
    assert {m for m, _ in ROUTES} == {"GET", "POST"}


def test_only_operators_see_the_console_and_only_writers_post(system: System) -> None:
    api = console(system)
    pending = api.pending()
    base = api.url
    gets = [p.replace("{}", pending) for m, p in ROUTES if m == "GET"]
    posts = [p.replace("{}", pending) for m, p in ROUTES if m == "POST"]

    # Nobody signed in: pages send to sign-in, actions are refused.
    for path in gets:
        r = httpx.get(base + path, timeout=scaled(30))
        assert r.status_code == 303 and r.headers["location"].startswith("/signin"), path
    for path in posts:
        r = httpx.post(base + path, data={"csrf": "x"}, headers={"Origin": base},
                       timeout=scaled(30))
        assert r.status_code == 401, (path, r.status_code)

    # A signed-in approver without the role: 403 on every console route, GET or POST.
    alice, _ = operator(system, "alice", "/inbox")
    token = csrf_of(alice, base + "/inbox")
    for path in gets:
        r = alice.http.get(base + path)
        assert r.status_code == 403, (path, r.status_code)
        assert "not an operator" in r.text
    for path in posts:
        r = alice.post(base + path, {"csrf": token, "decision": "approve", "as": "alice"})
        assert r.status_code == 403, (path, r.status_code)
    assert 'href="/console"' not in alice.page(base + "/inbox")  # no way in shown
    alice.close()

    # Read-only: every page, no action (even with a valid form token).
    viewer, home = operator(system, "viewer")
    for path in gets:
        r = viewer.http.get(base + path)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
    token = csrf_of(viewer, home)
    for path in posts:
        r = viewer.post(base + path, {"csrf": token, "decision": "approve", "as": "alice",
                                      "reason": "x"})
        assert r.status_code == 403 and "read-only" in r.text, (path, r.status_code)
    assert "read-only operator" in viewer.page(f"{base}/console/approvals/{pending}")
    assert 'href="/console"' in viewer.page(base + "/inbox")
    viewer.close()
    assert system.approval_by_id(pending)["status"] == "pending"

    # Read-write, but a forged or cross-site form: refused, nothing changes.
    ops, home = operator(system, "ops")
    cancel = f"{base}/console/approvals/{pending}/cancel"
    assert ops.post(cancel, {"csrf": "A" * 43}).status_code == 403
    assert ops.post(cancel, {}).status_code == 403
    good = csrf_of(ops, home)
    assert ops.post(cancel, {"csrf": good}, origin="https://evil.example").status_code == 403
    assert ops.post(cancel, {"csrf": good}, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert system.approval_by_id(pending)["status"] == "pending"
    assert ops.post(cancel, {"csrf": good}).status_code == 303
    assert system.approval_by_id(pending)["status"] == "cancelled"
    ops.close()


def test_a_session_ends_its_console_access_with_the_role(system: System) -> None:
    """The role is read at every request: taking it away takes the console away at once."""
    api = console(system)
    ops, home = operator(system, "ops")
    assert ops.http.get(home).status_code == 200
    system.cli("approver", "set", "ops", "--operator", "none")
    assert ops.http.get(home).status_code == 403
    actions = [(a, d) for a, _, d in audit(system, "approver.operator_role")]
    assert ("operator:cli", {"approver_id": api.ids["ops"], "role": "none"}) in actions
    assert system.cli("approver", "set", "ops", "--operator", "admin", check=False).returncode != 0
    ops.close()


def test_overview_list_filters_search_and_timeline(system: System) -> None:
    api = console(system)
    a = [api.pending(idempotency_key=f"order-{i}") for i in range(3)]
    r = api.submit(amount=50, idempotency_key="small-1")  # no approval needed: executes
    assert r.status_code == 200, r.text
    executed = r.json()["approval_id"]
    ops, home = operator(system, "ops")
    base = api.url

    page = ops.page(home)
    m = re.search(r'<b>(\d+)</b></a><span>pending</span>', page)
    assert m and int(m.group(1)) == 3, page[:3000]
    assert re.search(r'<b>1</b></a><span>executed, last hour</span>', page)
    assert f"/console/approvals/{a[0]}" in page  # the oldest pending
    assert page.count("<svg") >= 5 and "Requests in, per minute" in page
    assert re.search(r"<b>[0-9.]+ MB</b><span>behind, Kafka relay active</span>", page), page[:3000]
    assert "Requests in, per hour" in ops.page(home + "?period=day")

    listing = ops.page(f"{base}/console/approvals?status=pending")
    assert all(x in listing for x in a) and executed not in listing
    listing = ops.page(f"{base}/console/approvals?status=executed&grant=stripe&agent=bot1")
    assert executed in listing and a[0] not in listing
    assert a[1] in ops.page(f"{base}/console/approvals?approver=alice&policy=pay")
    assert "No approval matches" in ops.page(f"{base}/console/approvals?agent=nobody")
    assert "No approval matches" in ops.page(f"{base}/console/approvals?from=2999-01-01T00:00")
    assert a[2] in ops.page(f"{base}/console/approvals?from=2000-01-01T00:00&to=2999-01-01T00:00")
    assert ops.http.get(f"{base}/console/approvals?status=bogus").status_code == 400
    assert ops.http.get(f"{base}/console/approvals?from=yesterday").status_code == 400
    assert ops.http.get(f"{base}/console/approvals?cursor=x").status_code == 400
    found = ops.page(f"{base}/console/approvals?q=order-1")  # an idempotency key
    assert a[1] in found and a[0] not in found
    assert a[2] in ops.page(f"{base}/console/approvals?q={a[2]}")
    assert "No approval matches" in ops.page(f"{base}/console/approvals?q=order-1&status=executed")

    timeline = ops.page(f"{base}/console/approvals/{executed}")
    row = system.approval_by_id(executed)
    assert "sha256:" + row["digest"].hex() in timeline
    assert "approval.created" in timeline and "approval.executing" in timeline
    assert "approval.executed" in timeline and "The provider answered <b>200" in timeline
    assert "lease" in timeline.lower()
    # The sealer covers the entries: the timeline then names the seal.
    wait_for(lambda: "sealed in #" in ops.page(f"{base}/console/approvals/{executed}"), 30,
             what="a seal over the approval's audit entries")
    assert ops.http.get(f"{base}/console/approvals/{uuid.uuid4()}").status_code == 404
    ops.close()


def test_keyset_pages_cover_the_list_once_newest_first(system: System) -> None:
    api = console(system)
    ids = [api.pending() for _ in range(7)]
    ops, _ = operator(system, "ops")
    url: str | None = f"{api.url}/console/approvals?status=pending&limit=3"
    seen: list[str] = []
    pages = 0
    while url:
        text = ops.page(url)
        seen += re.findall(r'<tr><td><a href="/console/approvals/([0-9a-f-]{36})"', text)
        nxt = re.search(r'<a rel="next" href="([^"]+)"', text)
        url = api.url + nxt.group(1).replace("&amp;", "&") if nxt else None
        pages += 1
    assert pages == 3 and seen == list(reversed(ids)), (pages, seen)
    ops.close()


def test_cancel_and_operator_votes_are_audited_with_the_operator(system: System) -> None:
    api = console(system)
    to_cancel, to_approve, to_deny = api.pending(), api.pending(), api.pending()
    ops, home = operator(system, "ops")
    base = api.url
    page = ops.page(f"{base}/console/approvals/{to_cancel}")
    assert 'id="cancel"' in page and "/decide" in page
    token = csrf_of(ops, home)

    r = ops.post(f"{base}/console/approvals/{to_cancel}/cancel",
                 {"csrf": token, "reason": "duplicate ticket"})
    assert r.status_code == 303 and r.headers["location"] == f"/console/approvals/{to_cancel}"
    row = system.approval_by_id(to_cancel)
    assert row["status"] == "cancelled" and row["decision_reason"] == "duplicate ticket"
    assert ("operator:ops", to_cancel) in [(x, y) for x, y, _ in audit(system, "approval.cancelled")]
    assert ops.post(f"{base}/console/approvals/{to_cancel}/cancel",
                    {"csrf": token}).status_code == 409

    r = ops.post(f"{base}/console/approvals/{to_approve}/decide",
                 {"csrf": token, "as": "alice", "decision": "approve", "reason": "checked"})
    assert r.status_code == 303
    system.wait_status(system.approval_by_id(to_approve)["request_id"], "executed")
    assert system.sql("SELECT p.name FROM votes v JOIN approvers p ON p.id = v.approver_id "
                      "WHERE v.approval_id = %s", to_approve) == [("alice",)]
    votes = [(x, y) for x, y, _ in audit(system, "vote.approve")]
    assert ("operator:ops", to_approve) in votes
    # A denial needs a reason; the same person cannot vote twice; not an approver: refused.
    deny = f"{base}/console/approvals/{to_deny}/decide"
    assert ops.post(deny, {"csrf": token, "as": "bob", "decision": "deny"}).status_code == 400
    assert ops.post(deny, {"csrf": token, "as": "nobody", "decision": "approve"}).status_code == 403
    assert ops.post(deny, {"csrf": token, "as": "bob", "decision": "deny",
                           "reason": "wrong customer"}).status_code == 303
    assert system.approval_by_id(to_deny)["status"] == "denied"
    timeline = ops.page(f"{base}/console/approvals/{to_deny}")
    assert "vote.deny" in timeline and "operator:ops" in timeline and "passkey" in timeline
    ops.close()


def test_a_failed_call_is_resubmitted_as_a_new_approval(system: System) -> None:
    api = console(system)
    system.stub.program("/v1/refunds", close_without_response=True, times=1)
    r = api.submit(amount=50, idempotency_key="refund-77")
    assert r.status_code == 502, r.text
    failed = system.approval("refund-77")
    assert failed and failed["status"] == "failed"
    calls_before = len(system.stub.requests("/v1/refunds"))
    ops, home = operator(system, "ops")
    page = ops.page(f"{api.url}/console/approvals/{failed['id']}")
    assert 'id="resubmit"' in page
    token = csrf_of(ops, home)
    r = ops.post(f"{api.url}/console/approvals/{failed['id']}/resubmit", {"csrf": token})
    assert r.status_code == 303, r.text
    new_id = r.headers["location"].rsplit("/", 1)[1]
    assert new_id != str(failed["id"])
    new = system.approval_by_id(new_id)
    assert new["request_id"] == "refund-77~r1" and new["digest"] != failed["digest"]
    headers = {k.lower(): v for k, v in new["headers"].items()}
    assert headers["countersign-resubmission-of"] == str(failed["id"])
    assert new["context"]["resubmission_of"] == str(failed["id"])
    assert new["body"] == failed["body"] and new["url"] == failed["url"]
    system.wait_status("refund-77~r1", "executed")
    again = system.approval_by_id(str(failed["id"]))
    assert again["status"] == "failed" and again["attempts"] == failed["attempts"]
    assert len(system.stub.requests("/v1/refunds")) == calls_before + 1
    (entry,) = audit(system, "console.resubmitted")
    assert entry[0] == "operator:ops" and entry[1] == str(failed["id"])
    assert entry[2]["new_approval_id"] == new_id
    created = system.sql("SELECT actor FROM audit WHERE action = 'approval.created' "
                         "AND approval_id = %s", new_id)
    assert created == [("operator:ops",)]
    # Only a failed call is re-submitted; a second re-submission gets the next id.
    assert ops.post(f"{api.url}/console/approvals/{new_id}/resubmit",
                    {"csrf": token}).status_code == 409
    r = ops.post(f"{api.url}/console/approvals/{failed['id']}/resubmit", {"csrf": token})
    assert r.status_code == 303
    assert system.approval("refund-77~r2") is not None
    ops.close()


def test_export_the_current_filter_as_csv_and_json_lines(system: System) -> None:
    api = console(system)
    ids = [api.pending(idempotency_key=f"=cmd|{i}") for i in range(3)]
    ops, _ = operator(system, "ops")
    r = ops.http.get(f"{api.url}/console/approvals?status=pending&format=csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="approvals.csv"' in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [x["approval_id"] for x in rows] == list(reversed(ids))
    assert all(x["request_id"].startswith("'=cmd|") for x in rows)  # no spreadsheet formula
    r = ops.http.get(f"{api.url}/console/approvals?status=pending&grant=stripe&format=jsonl")
    lines = [json.loads(x) for x in r.text.splitlines()]
    assert [x["approval_id"] for x in lines] == list(reversed(ids))
    assert lines[0]["status"] == "pending" and lines[0]["digest"]
    assert ops.http.get(f"{api.url}/console/approvals?format=xml").status_code == 400
    exports = audit(system, "console.exported")
    assert [(a, d["format"], d["rows"], d["status"]) for a, _, d in exports] == [
        ("operator:ops", "csv", 3, "pending"), ("operator:ops", "jsonl", 3, "pending")]
    ops.close()


def test_read_only_views_never_show_secrets(system: System) -> None:
    api = console(system)
    api.pending()
    system.cli("delegate", "alice", "bob", "--until", "2999-01-01T00:00:00Z")
    viewer, _ = operator(system, "viewer")
    pages = {p: viewer.page(api.url + p) for p in
             ("/console/grants", "/console/policies", "/console/approvers", "/console/batches",
              "/console/dead-letters", "/console/audit", "/console/audit?verify=1")}
    for text in pages.values():
        assert system.secret not in text
    assert "stripe" in pages["/console/grants"] and system.stub.url in pages["/console/grants"]
    assert "pay" in pages["/console/policies"]
    assert re.search(r">ops</a></td><td>write<", pages["/console/approvers"])
    assert "active" in pages["/console/approvers"]  # alice's delegation to bob
    assert "The chain holds" in pages["/console/audit?verify=1"]
    viewer.close()


def test_list_queries_use_their_indexes(system: System) -> None:
    """The keyset list leads with the index of its filter, never a sort of the table."""
    console(system)
    sql = (REPO_ROOT / "sql" / "queries" / "console.sql").read_text()
    body = sql.split("-- name: console_list\n", 1)[1].split("\n-- name:", 1)[0]
    body = "\n".join(x for x in body.splitlines() if not x.startswith("--"))
    found = [uuid.uuid4(), uuid.uuid4()]  # a search's answer (console_search)
    cases = {
        ("pending", None, None, None): "approvals_console_status",
        (None, "stripe", None, None): "approvals_console_grant",
        (None, None, "bot1", None): "approvals_console_agent",
        (None, None, None, None): "approval_requests_pkey",
        (None, None, None, "search"): "approval_requests_pkey",
    }
    with psycopg.connect(system.db_url, autocommit=True) as conn:
        conn.execute("SET enable_seqscan = off")
        for (status, grant, agent, search), index in cases.items():
            params = [status, agent, grant, None, None, None, None, None, None, 50,
                      found if search else None]
            text = re.sub(r"\$(\d+)(::\w+(?:\[\])?)", lambda m: "%s" + m.group(2), body)
            order = [int(n) for n in re.findall(r"\$(\d+)::", body)]
            plan = "\n".join(r[0] for r in conn.execute(
                "EXPLAIN " + text, [params[n - 1] for n in order]).fetchall())
            if search:  # the ids found, by the primary key; sorting those few is fine
                assert index in plan and "Seq Scan" not in plan, plan
                continue
            assert index in plan and "Sort" not in plan.split(index)[0], plan


def test_pause_a_grant_its_calls_wait_then_resume(system: System) -> None:
    api = console(system)
    ids = [api.pending() for _ in range(3)]
    ops, home = operator(system, "ops")
    token = csrf_of(ops, home)
    grants = ops.page(f"{api.url}/console/grants")
    assert 'action="/console/grants/stripe/pause"' in grants and ">active<" in grants
    r = ops.post(f"{api.url}/console/grants/stripe/pause", {"csrf": token})
    assert r.status_code == 303 and r.headers["location"] == "/console/grants"
    grants = ops.page(f"{api.url}/console/grants")
    assert ">paused<" in grants and "operator:ops" in grants
    assert 'action="/console/grants/stripe/resume"' in grants
    for i in ids:
        assert ops.post(f"{api.url}/console/approvals/{i}/decide",
                        {"csrf": token, "as": "alice", "decision": "approve"}).status_code == 303
    # Approved, but no call starts while the grant is paused.
    wait_for(lambda: all(system.approval_by_id(i)["status"] == "approved" for i in ids), 10,
             what="the votes")
    calls = len(system.stub.requests("/v1/refunds"))
    time.sleep(scaled(2))
    assert {system.approval_by_id(i)["status"] for i in ids} == {"approved"}
    assert len(system.stub.requests("/v1/refunds")) == calls
    assert re.search(r"<td>3</td></tr>", ops.page(f"{api.url}/console/grants"))  # waiting
    r = ops.post(f"{api.url}/console/grants/stripe/resume", {"csrf": token})
    assert r.status_code == 303
    wait_for(lambda: all(system.approval_by_id(i)["status"] == "executed" for i in ids), 30,
             what="the calls after the resume")
    assert [a for a, _, _ in audit(system, "grant.paused")] == ["operator:ops"]
    assert [a for a, _, _ in audit(system, "grant.resumed")] == ["operator:ops"]
    assert ops.post(f"{api.url}/console/grants/nope/pause", {"csrf": token}).status_code == 404
    viewer, _ = operator(system, "viewer")
    assert "/pause" not in viewer.page(f"{api.url}/console/grants")
    viewer.close()
    ops.close()


def test_dead_letters_show_reason_safe_preview_size_and_hash(system: System) -> None:
    api = console(system)
    leaked = "sk_live_do_not_show_" + uuid.uuid4().hex
    bad = system.envelope("dl-1", headers={"Authorization": f"Bearer {leaked}"})
    system.produce(bad, b"\x00not json at all")
    wait_for(lambda: system.sql("SELECT count(*) FROM dead_letters")[0][0] == 2, 30,
             what="two dead letters recorded")
    rows = system.sql("SELECT reason, size, encode(sha256, 'hex') FROM dead_letters ORDER BY id")
    raw = json.dumps(bad).encode()
    assert ("forbidden_header", len(raw), hashlib.sha256(raw).hexdigest()) in rows
    assert ("malformed_json", 16, hashlib.sha256(b"\x00not json at all").hexdigest()) in rows
    viewer, home = operator(system, "viewer")
    page = viewer.page(f"{api.url}/console/dead-letters")
    assert "forbidden_header" in page and "malformed_json" in page
    assert "request_id=dl-1" in page and "keys:" in page and "00 6e 6f 74" in page
    assert leaked not in page and "sk_live" not in page
    assert re.search(r'<b>2</b></a><span>dead letters, last hour</span>', viewer.page(home))
    viewer.close()


BROWSER_DIR = REPO_ROOT / "tests" / "browser"
SHOTS = REPO_ROOT / "tests" / "log" / "console"


def png_size(path: Any) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def test_console_in_chromium(system: System) -> None:
    """The operator's walk in headless Chromium (tests/browser/console.mjs)."""
    system.env["CS_CONSOLE_REFRESH_SECONDS"] = "1"
    api = console(system)
    system.stub.program("/v1/refunds", close_without_response=True, times=1)
    assert api.submit(amount=50, idempotency_key="will-fail").status_code == 502
    failed = system.approval("will-fail")
    assert failed and failed["status"] == "failed"
    ids = [api.pending() for _ in range(4)]
    link = system.cli_json("approver", "signin-link", "ops", "--next", "/console")["url"]
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob("*.png"):
        old.unlink()
    npm_ci(BROWSER_DIR, "playwright-core")
    out = subprocess.run(
        ["node", "console.mjs"], cwd=BROWSER_DIR, text=True, capture_output=True,
        timeout=scaled(240),
        env={**os.environ, "CS_LINK": link, "CS_SHOTS": str(SHOTS), "CS_PENDING": "4",
             "CS_CANCEL": ids[0], "CS_APPROVE": f"{ids[1]},{ids[2]}", "CS_AS": "alice",
             "CS_GRANT": "stripe", "CS_FAILED": str(failed["id"])})
    (system.log_dir / "chromium.log").write_text(out.stdout + out.stderr)
    assert out.returncode == 0 and "ok console" in out.stdout, out.stdout + out.stderr
    # What the browser did is what the system holds.
    assert system.approval_by_id(ids[0])["status"] == "cancelled"
    assert {system.approval_by_id(i)["status"] for i in ids[1:3]} == {"executed"}
    assert system.approval_by_id(ids[3])["status"] == "pending"
    assert system.approval("will-fail~r1")["status"] == "executed"  # type: ignore[index]
    assert [a for a, _, _ in audit(system, "grant.paused")] == ["operator:ops"]
    # The screenshots the closing note shows: there, of the right width, not blank.
    for name, width in (("overview", 1440), ("list", 1440), ("timeline", 1440),
                        ("list-phone", 390)):
        shot = SHOTS / f"{name}.png"
        assert shot.is_file(), shot
        w, h = png_size(shot)
        assert w == width and h >= 400, (name, w, h)
        assert shot.stat().st_size > 20_000, (name, shot.stat().st_size)
