"""Approvers sign in before they decide (SPEC, security invariant 2), on the real system.

A vote is cast by a signed-in approver, never by whoever holds a link: the
agent's approval_url shows status to anyone and the decision form to a signed-in
approver; one-time sign-in links (CLI, notifications, the status page's
"send sign-in links") open sessions, once, for their own approver only. Each
test starts the api and a worker on its own database and walks the pages as a
browser does (approver.py).
"""

from __future__ import annotations

import hashlib
import json
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import httpx

from approver import Approver, SESSION_COOKIE, link, origin_of, vote
from harness import System
from services import scaled, wait_for
from test_api import Api


def token_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def sessions(system: System) -> int:
    return int(system.sql("SELECT count(*) FROM sessions")[0][0])


def votes(system: System) -> list[tuple[Any, ...]]:
    return system.sql("SELECT a.name, c.name, v.decision FROM votes v "
                      "JOIN approvers a ON a.id = v.approver_id "
                      "JOIN approvers c ON c.id = v.cast_by ORDER BY v.created_at")


def submit(api: Api, **extra: Any) -> dict[str, Any]:
    """A pending approval through POST /v1/proxy: approval_id, approval_url."""
    r = api.submit(**extra)
    assert r.status_code == 202, r.text
    return dict(r.json())


def anonymous_get(url: str) -> httpx.Response:
    return httpx.get(url, timeout=scaled(30))


# ---- the approval_url ------------------------------------------------------


def test_approval_url_shows_status_and_the_form_only_after_sign_in(system: System) -> None:
    api = Api(system)
    p = submit(api)
    page = anonymous_get(p["approval_url"])
    assert page.status_code == 200 and "ticket #4312" in page.text
    assert "Sign in to decide" in page.text and 'name="csrf"' not in page.text
    assert f'action="{urlsplit(p["approval_url"]).path}/signin-links"' in page.text
    assert "Signed in as" not in page.text

    with Approver() as alice:
        landed = alice.sign_in(link(system, p["approval_id"], "alice")["url"])
        assert landed == p["approval_url"]  # the link leads to the agent's approval_url
        text = alice.page(landed)
        assert "Signed in as <b>alice</b>" in text and "Sign in to decide" not in text
        assert 'action="/signout" class="bar"' in text
        form = alice.form(landed)
        assert set(form) == {"csrf"}
        r = alice.decide(landed, "approve", "checked with the customer")
        assert r.status_code == 200 and "Thank you: approved" in r.text, r.text
        after = alice.page(landed)
        assert "is <b>" in after and 'class="card"><input type="hidden"' not in after
    system.wait_status(system.approval_by_id(p["approval_id"])["request_id"], "executed")
    assert votes(system) == [("alice", "alice", "approve")]
    (actor,) = system.sql("SELECT actor FROM audit WHERE action = 'vote.approve'")[0]
    assert actor == f"approver:{api.ids['alice']}"


# ---- one-time links -----------------------------------------------------------


def test_a_link_works_once_and_expires(system: System) -> None:
    api = Api(system)
    p = submit(api)
    url = link(system, p["approval_id"], "alice")["url"]
    assert re.fullmatch(re.escape(api.url) + r"/signin/[A-Za-z0-9_-]{43}", url), url
    with Approver() as first:
        first.sign_in(url)
    assert sessions(system) == 1
    with Approver() as second:
        again = second.spend(url)
        assert again.status_code == 403 and "not valid" in again.text, again.text
        assert second.session is None
        assert second.http.get(url).status_code == 403  # a spent link shows nothing either
    assert sessions(system) == 1

    expired = link(system, p["approval_id"], "alice")["url"]
    n = system.sql("UPDATE signin_links SET created_at = now() - interval '1 hour', "
                   "expires_at = now() - interval '1 second' WHERE token_hash = %s RETURNING 1",
                   token_hash(token_of(expired)))
    assert n == [(1,)]
    with Approver() as late:
        assert late.http.get(expired).status_code == 403
        r = late.spend(expired)
        assert r.status_code == 403 and "not valid" in r.text and late.session is None
    for bad in (url[:-1] + ("A" if url[-1] != "A" else "B"), url + "x", url.rsplit("/", 1)[0] + "/x"):
        assert httpx.post(bad, timeout=scaled(30)).status_code == 403, bad
    assert sessions(system) == 1
    assert system.approval_by_id(p["approval_id"])["status"] == "pending"


def test_a_link_signs_in_its_own_approver_only(system: System) -> None:
    api = Api(system, quorum=2)
    system.cli("policy", "set", "bobs", "--mode", "always", "--quorum", "1", "--approvers", "bob")
    system.cli("grant", "set", "second", "--policy", "bobs", "--agents", "bot1", "--allow",
               system.stub.url, "--secret-stdin", input="sk_second\n")
    both = submit(api)
    bobs = submit(api, grant_id="second")
    with Approver() as alice:
        page = alice.sign_in(link(system, both["approval_id"], "alice")["url"])
        assert "Signed in as <b>alice</b>" in alice.page(page)
        assert alice.decide(page, "approve").status_code == 200
        # Her session votes in her own slot only: not again, not in Bob's.
        again = alice.decide(page, "approve")
        assert again.status_code == 409 and "already voted" in again.text
        # An approval where she is no approver: status, no form, and a POST is refused.
        other = alice.page(bobs["approval_url"])
        assert "who is not an approver" in other and "Signed in as <b>alice</b>" in other
        assert 'class="card"><input type="hidden"' not in other
        r = alice.post(bobs["approval_url"], {"csrf": alice.session_csrf(bobs["approval_url"]),
                                              "decision": "approve"})
        assert r.status_code == 403 and "not an approver" in r.text, r.text
    assert votes(system) == [("alice", "alice", "approve")]
    assert system.approval_by_id(both["approval_id"])["status"] == "pending"
    assert system.approval_by_id(bobs["approval_id"])["status"] == "pending"
    assert vote(system, bobs["approval_id"], "bob", "deny", "not mine to pay").status_code == 200
    assert system.approval_by_id(bobs["approval_id"])["status"] == "denied"


# ---- scanners, fixation, tabs -----------------------------------------------


def test_a_get_only_scanner_changes_nothing(system: System) -> None:
    api = Api(system, mode="always", rules=[])
    p = submit(api)
    h = api.auth()
    for i in range(2):
        r = api.http.post("/v1/proxy", headers=h, json={
            "method": "POST", "url": f"{system.stub.url}/v1/refunds/{i}", "grant_id": "stripe",
            "json": {"amount": i}, "batch_id": "scan"})
        assert r.status_code == 202, r.text
    assert api.http.post("/v1/batches/scan/seal", headers=h, json={"count": 2}).status_code == 200
    (ev,) = wait_for(lambda: [e for e in system.topic("events", timeout=2)
                              if e["value"]["type"] == "batch.decidable"], 30,
                     what="the batch.decidable event")
    batch_page = ev["value"]["approval_url"]
    assert urlsplit(batch_page).path.startswith("/batch/")
    signin = link(system, p["approval_id"], "alice")["url"]
    batch_signin = system.batch_links("scan")[0]["url"]

    scanned = [signin, batch_signin, p["approval_url"], batch_page, batch_page + "/items.csv",
               f"{api.url}/signin?next=/inbox", f"{api.url}/inbox"]
    with httpx.Client(timeout=scaled(30), follow_redirects=True) as scanner:
        for _ in range(3):
            for url in scanned:
                assert scanner.get(url).status_code == 200, url
                scanner.head(url)
    assert scanner.cookies.get(SESSION_COOKIE) is None
    assert sessions(system) == 0
    assert system.sql("SELECT count(*) FROM signin_links WHERE used_at IS NOT NULL") == [(0,)]
    assert system.sql("SELECT count(*) FROM votes") == [(0,)]
    assert system.sql("SELECT count(*) FROM batch_votes") == [(0,)]
    assert system.approval_by_id(p["approval_id"])["status"] == "pending"
    assert system.sql("SELECT status FROM batches") == [("decidable",)]

    # The scanned links still work for their people.
    with Approver() as alice:
        page = alice.sign_in(signin)
        assert alice.decide(page, "approve").status_code == 200
    who = system.batch_links("scan")[0]["approver"]
    with Approver() as person:
        page = person.sign_in(batch_signin)
        assert page == batch_page
        r = person.decide(page, "approve")
        assert r.status_code == 200 and "Thank you: approved" in r.text, r.text
    assert who in ("alice", "bob")
    assert system.sql("SELECT count(*) FROM batch_votes") == [(1,)]


def test_session_fixation(system: System) -> None:
    api = Api(system)
    p = submit(api)
    with Approver() as attacker:
        attacker.sign_in(system.cli_json("approver", "signin-link", "bob")["url"])
        planted = attacker.session
    assert planted
    with Approver() as alice:
        alice.plant_session(planted, api.url)
        page = alice.sign_in(link(system, p["approval_id"], "alice")["url"])
        assert alice.session != planted
        assert "Signed in as <b>alice</b>" in alice.page(page)
        form = alice.form(page)
    # The planted session ended with the sign-in: it neither shows the form nor votes.
    with Approver() as replay:
        replay.plant_session(planted, api.url)
        text = replay.page(page)
        assert "Sign in to decide" in text and "Signed in as" not in text
        r = replay.post(page, {**form, "decision": "approve"})
        assert r.status_code == 401, r.text
    assert system.sql("SELECT count(*) FROM votes") == [(0,)]
    assert system.sql("SELECT count(*) FROM sessions WHERE revoked_at IS NULL") == [(1,)]


def test_two_tabs_of_one_session_both_decide(system: System) -> None:
    api = Api(system)
    first, second = submit(api), submit(api, amount=700)
    with Approver() as alice:
        tab1 = alice.sign_in(link(system, first["approval_id"], "alice")["url"])
        tab2 = second["approval_url"]
        form1, form2 = alice.form(tab1), alice.form(tab2)
        assert form1 == form2  # one session, one token, any number of tabs
        r2 = alice.post(tab2, {**form2, "decision": "deny", "reason": "tab two"})
        r1 = alice.post(tab1, {**form1, "decision": "approve", "reason": "tab one"})
        assert (r1.status_code, r2.status_code) == (200, 200), (r1.text, r2.text)
    assert system.approval_by_id(second["approval_id"])["status"] == "denied"
    assert system.approval_by_id(first["approval_id"])["status"] in (
        "approved", "executing", "executed")
    assert sessions(system) == 1


def test_sign_out_and_revoke_sessions_end_sessions(system: System) -> None:
    api = Api(system)
    p = submit(api)
    with Approver() as alice:
        page = alice.sign_in(link(system, p["approval_id"], "alice")["url"])
        token, form = alice.session, alice.form(page)
        out = alice.sign_out(page)
        assert out.status_code == 303 and out.headers["location"] == "/signin"
        assert "Max-Age=0" in out.headers["set-cookie"] and alice.session is None
        r = alice.post(page, {**form, "decision": "approve"})
        assert r.status_code == 401, r.text
        alice.plant_session(str(token), api.url)  # the old cookie, replayed
        assert alice.post(page, {**form, "decision": "approve"}).status_code == 401

    browsers = [Approver(), Approver()]
    pages = [b.sign_in(link(system, p["approval_id"], "alice")["url"]) for b in browsers]
    forms = [b.form(pg) for b, pg in zip(browsers, pages)]
    listed = [line.split("\t") for line in
              system.cli("approver", "sessions", "alice").stdout.splitlines()]
    assert [(row[1], row[5].startswith("python-httpx/")) for row in listed] == [("link", True)] * 2
    out = system.cli_json("approver", "revoke-sessions", "alice")
    assert out == {"approver": "alice", "sessions_revoked": 2}
    for b, pg, f in zip(browsers, pages, forms):
        r = b.post(pg, {**f, "decision": "approve"})
        assert r.status_code == 401 and "sign in" in r.text.lower(), r.text
        assert "Sign in to decide" in b.page(pg)
        b.close()
    assert system.sql("SELECT count(*) FROM votes") == [(0,)]
    assert system.sql("SELECT actor, detail->>'sessions' FROM audit "
                      "WHERE action = 'session.revoked'") == [("operator:cli", "2")]
    # She signs in again and decides.
    assert vote(system, p["approval_id"], "alice", "approve").status_code == 200


# ---- what others can read -----------------------------------------------------


def test_an_events_reader_finds_no_credential_and_cannot_vote(system: System) -> None:
    ids = system.setup()
    api = system.api()
    system.worker()
    system.produce(system.envelope("r1"))
    a = system.wait_status("r1", "pending")
    (ev,) = [m for m in system.topic("events", expect=1) if m["value"]["type"] == "approval.pending"]
    value, raw = ev["value"], ev["raw"].decode()
    assert sorted(value["approvers"]) == sorted([ids["alice"], ids["bob"]])
    assert "approval_links" not in value
    url = value["approval_url"]
    assert url.startswith(f"{api.url}/status/")  # type: ignore[attr-defined]
    assert "/signin/" not in raw and "cs_session" not in raw and "csrf" not in raw
    # Nothing in it is the secret of a sign-in link or a session.
    link(system, str(a["id"]), "alice")  # a link exists now, to be looked for
    words = set(re.findall(r"[A-Za-z0-9_-]{20,}", raw))
    stored = {bytes(h) for (h,) in system.sql("SELECT token_hash FROM signin_links UNION ALL "
                                               "SELECT token_hash FROM sessions")}
    assert stored and not {token_hash(w) for w in words} & stored

    page = anonymous_get(url)
    assert page.status_code == 200 and "Sign in to decide" in page.text
    assert 'name="csrf"' not in page.text
    for data in ({"decision": "approve"}, {"decision": "approve", "csrf": "x" * 43}):
        r = httpx.post(url, data=data, headers={"Origin": origin_of(url)}, timeout=scaled(30))
        assert r.status_code == 401, r.text
    assert system.sql("SELECT count(*) FROM votes") == [(0,)]
    assert system.approval("r1")["status"] == "pending"


# ---- who may vote -----------------------------------------------------------


def test_the_requesters_own_operator_signs_in_and_is_refused(system: System) -> None:
    api = Api(system, approvers=("alice", "mallory"), operator_of_agent=("mallory",))
    p = submit(api)
    with Approver() as mallory:
        page = mallory.sign_in(link(system, p["approval_id"], "mallory")["url"])
        assert "Signed in as <b>mallory</b>" in mallory.page(page)
        r = mallory.decide(page, "approve")
        assert r.status_code == 403 and "own request" in r.text, r.text
    assert system.approval_by_id(p["approval_id"])["status"] == "pending"
    assert system.sql("SELECT detail->>'code' FROM audit WHERE action = 'vote.refused'") == [
        ("self_approval",)]
    assert system.sql("SELECT count(*) FROM votes") == [(0,)]


def test_a_delegate_signs_in_with_their_link_and_votes_on_behalf(system: System) -> None:
    api = Api(system)
    dave = system.cli_json("approver", "create", "dave")["approver_id"]
    system.cli("delegate", "alice", "dave", "--until", "2099-01-01T00:00:00Z")
    p = submit(api)
    slot = link(system, p["approval_id"], "alice")
    assert slot["approver_id"] == api.ids["alice"] and slot["voter_id"] == dave
    with Approver() as d:
        assert "Continue as dave" in d.continue_page(slot["url"])
        page = d.sign_in(slot["url"])
        assert "Signed in as <b>dave</b>" in d.page(page)
        r = d.decide(page, "approve", "alice is away; checked")
        assert r.status_code == 200 and "Thank you: approved" in r.text, r.text
        assert "(by dave on their behalf)" in d.page(page)
    assert votes(system) == [("alice", "dave", "approve")]
    (detail, actor) = system.sql("SELECT detail, actor FROM audit WHERE action = 'vote.approve'")[0]
    assert detail["approver_id"] == api.ids["alice"] and detail["cast_by"] == dave
    assert actor == f"approver:{dave}"


# ---- sending links, audit ------------------------------------------------------


def test_send_signin_links_at_most_once_a_minute(system: System) -> None:
    stub = system.stub
    system.cli("agent", "create", "bot1")
    system.cli("approver", "create", "alice", "--webhook", f"{stub.url}/hooks/alice")
    system.cli("approver", "create", "bob", "--webhook", f"{stub.url}/hooks/bob")
    system.cli("policy", "set", "pay", "--mode", "always", "--quorum", "2",
               "--approvers", "alice,bob")
    system.cli("grant", "set", "stripe", "--policy", "pay", "--agents", "bot1", "--allow",
               stub.url, "--secret-stdin", input=system.secret)
    api = system.api()
    system.worker()
    system.produce(system.envelope("r1"))
    a = system.wait_status("r1", "pending")
    stub.wait_for(2, "/hooks/")  # the request notifications
    page = json.loads(stub.requests("/hooks/alice")[0].body)["approval_url"]
    resend = page + "/signin-links"

    def signin_rows() -> int:
        return int(system.sql("SELECT count(*) FROM notifications WHERE kind = 'signin'")[0][0])

    foreign = httpx.post(resend, headers={"Origin": "https://evil.example"}, timeout=scaled(30))
    assert foreign.status_code == 403 and signin_rows() == 0
    first = httpx.post(resend, headers={"Origin": origin_of(page)}, timeout=scaled(30))
    assert first.status_code == 202, first.text
    assert signin_rows() == 2
    again = httpx.post(resend, timeout=scaled(30))
    assert again.status_code == 409 and signin_rows() == 2
    # The re-sent link reaches bob through his own channel and signs him in.
    hook = wait_for(lambda: [r for r in stub.requests("/hooks/bob")
                             if json.loads(r.body)["type"] == "approval.signin"], 30,
                    what="bob's sign-in message")[0]
    sent = json.loads(hook.body)
    assert sent["approval_url"] == page and sent["recipient"] == "bob"
    with Approver() as bob:
        assert bob.sign_in(sent["signin_url"]) == page
        assert bob.decide(page, "approve").status_code == 200
    # A minute later: a fresh round, only to whoever has not voted.
    system.sql("UPDATE notifications SET created_at = now() - interval '61 seconds'")
    assert httpx.post(resend, timeout=scaled(30)).status_code == 202
    assert signin_rows() == 3
    assert system.sql("SELECT p.name FROM notifications n JOIN approvers p ON p.id = "
                      "n.recipient_id WHERE kind = 'signin' ORDER BY n.created_at DESC "
                      "LIMIT 1") == [("alice",)]
    assert vote(system, str(a["id"]), "alice", "approve").status_code == 200
    system.sql("UPDATE notifications SET created_at = now() - interval '61 seconds'")
    done = httpx.post(resend, timeout=scaled(30))
    assert done.status_code == 409 and signin_rows() == 3


def test_audit_records_sign_ins_and_no_token(system: System) -> None:
    api = Api(system)
    p = submit(api)
    url = link(system, p["approval_id"], "alice")["url"]
    with Approver() as alice:
        page = alice.sign_in(url)
        cookie = str(alice.session)
        assert alice.decide(page, "approve").status_code == 200
    rows = system.sql("SELECT actor, action, detail::text FROM audit ORDER BY id")
    mine = f"approver:{api.ids['alice']}"
    assert (mine, "signin.link", '{"purpose": "operator"}') in rows
    created = [json.loads(d) for who, action, d in rows if action == "session.created"]
    assert len(created) == 1 and created[0]["method"] == "link"
    assert [who for who, action, _ in rows if action == "session.created"] == [mine]
    text = json.dumps(rows)
    for secret in (token_of(url), cookie):
        assert secret not in text
    # Only hashes are stored.
    assert system.sql("SELECT count(*) FROM signin_links WHERE token_hash = %s",
                      token_hash(token_of(url))) == [(1,)]
    assert system.sql("SELECT count(*) FROM sessions WHERE token_hash = %s",
                      token_hash(cookie)) == [(1,)]
    dump = json.dumps(system.sql("SELECT * FROM signin_links"), default=str)
    dump += json.dumps(system.sql("SELECT * FROM sessions"), default=str)
    assert token_of(url) not in dump and cookie not in dump



# ---- races, lifetimes, where a link may lead ------------------------------------


def test_one_link_opens_one_session_however_many_browsers_race(system: System) -> None:
    api = Api(system)
    p = submit(api)
    url = link(system, p["approval_id"], "alice")["url"]
    browsers = [Approver() for _ in range(8)]
    with ThreadPoolExecutor(len(browsers)) as pool:
        answers = list(pool.map(lambda b: b.spend(url).status_code, browsers))
    for b in browsers:
        b.close()
    assert sorted(answers) == [303] + [403] * 7, answers
    assert sessions(system) == 1
    assert system.sql("SELECT count(*) FROM audit WHERE action = 'signin.link'") == [(1,)]


def test_sessions_end_when_idle_or_past_their_lifetime(system: System) -> None:
    api = Api(system)
    p = submit(api)
    for ending in ("last_seen_at = now() - make_interval(secs => idle_seconds + 1)",
                   "expires_at = now() - interval '1 second'"):
        with Approver() as alice:
            page = alice.sign_in(link(system, p["approval_id"], "alice")["url"])
            form = alice.form(page)
            system.sql(f"UPDATE sessions SET {ending} WHERE revoked_at IS NULL")
            assert "Sign in to decide" in alice.page(page)
            r = alice.post(page, {**form, "decision": "approve"})
            assert r.status_code == 401, (ending, r.text)
    assert system.sql("SELECT count(*) FROM votes") == [(0,)]
    assert vote(system, p["approval_id"], "alice", "approve").status_code == 200


def test_a_link_leads_only_to_a_local_path(system: System) -> None:
    system.setup()
    api = system.api()
    for bad in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "inbox", "/"):
        r = system.cli("approver", "signin-link", "alice", "--next", bad, check=False)
        assert r.returncode != 0 and "http" not in r.stdout, (bad, r.stdout, r.stderr)
        assert "a local path" in r.stderr and "ERROR" not in r.stderr, (bad, r.stderr)
    ok = system.cli_json("approver", "signin-link", "alice", "--next", "/inbox?from=mail")
    with Approver() as alice:
        assert alice.sign_in(ok["url"]) == f"{api.url}/inbox?from=mail"  # type: ignore[attr-defined]
    r = httpx.get(f"{api.url}/signin?next=//evil.example", timeout=scaled(30))  # type: ignore[attr-defined]
    assert r.status_code == 200 and "evil.example" not in r.text
