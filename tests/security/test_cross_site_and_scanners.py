"""Security invariant 1: a decision is a POST from the approval page itself, by a
signed-in approver. Cross-site POSTs (foreign Origin, Sec-Fetch-Site other than
same-origin) to the decision form, the batch form, the sign-in link, sign-out and
the re-send form are refused; no session is 401; a form token of another session,
or forged, is 403. Link scanners and unfurlers that only GET or HEAD a link --
sign-in links included -- with any User-Agent and any query string change nothing:
no link is spent, no session opened, no vote cast. Agent-written text is escaped."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Iterator

import pytest

from attack_kit import (CSRF_PURPOSE, SESSION, Deployment, b64, csrf_of, decision_form, deployment,
                        derive, session_csrf, token_hash, token_of)
from services import Kafka, Postgres

AGENTS = ["Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
          "Mozilla/5.0 (compatible; Microsoft Office/16.0; SafeLinks)",
          "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
          "Twitterbot/1.0", "WhatsApp/2.23.20.0", "TelegramBot (like TwitterBot)",
          "Mozilla/5.0 (compatible; Discordbot/2.0)", "curl/8.5.0", "python-requests/2.31",
          "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36", ""]


@pytest.fixture(scope="module")
def d(request: pytest.FixtureRequest, pg: Postgres, kafka: Kafka) -> Iterator[Deployment]:
    with deployment(request, pg, kafka, "sec_csrf") as d:
        d.ids = d.system.setup()
        d.ids["carol"] = d.system.cli_json("approver", "create", "carol")["approver_id"]
        # A channel for alice, so that re-sent sign-in links have somewhere to go (no
        # worker runs here: they stay queued).
        d.system.sql("UPDATE approvers SET webhook_url = %s WHERE name = 'alice'",
                     f"{d.stub.url}/hooks/alice")
        d.start_api()
        d.key = d.new_key()
        yield d


def cross_site(d: Deployment) -> list[dict[str, str]]:
    return [{"Origin": "https://evil.example"}, {"Origin": "http://127.0.0.1:1"},
            {"Origin": d.url.replace("127.0.0.1", "localhost")},
            {"Origin": d.url + ".evil.example"}, {"Origin": d.url + "/"},
            {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
            {"Sec-Fetch-Site": "none"}, {"Sec-Fetch-Site": "cross-site", "Origin": d.url},
            {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
            {"Sec-Fetch-Site": "same-origin, cross-site"}]


def used(d: Deployment, link: str) -> bool:
    rows = d.system.sql("SELECT used_at IS NOT NULL FROM signin_links WHERE token_hash = %s",
                        token_hash(token_of(link)))
    return bool(rows and rows[0][0])


def test_cross_site_decisions_refused(d: Deployment) -> None:
    aid = d.pending()
    c, page = d.sign_in(d.link(aid))
    csrf = csrf_of(c.get(page))
    form = {"decision": "approve", "csrf": csrf}
    for headers in cross_site(d):
        r = c.post(page, data=form, headers=headers)
        assert r.status_code == 403 and decision_form(r) is None, (headers, r.status_code)
    # No session (a cross-site request does not carry a SameSite=Lax cookie on a POST).
    r = d.client().post(page, data=form, headers={"Origin": d.url})
    assert r.status_code == 401
    # The session but no form token, an empty one, or one of another session: of
    # another person, of alice's other browser, of a session that ended.
    assert c.post(page, data={"decision": "approve"}, headers={"Origin": d.url}).status_code == 403
    assert c.post(page, data={"decision": "approve", "csrf": ""},
                  headers={"Origin": d.url}).status_code == 403
    others = []
    for link in (d.link(aid, "bob"), d.signin_link("carol"), d.link(aid, "alice")):
        oc, _ = d.sign_in(link)
        others.append(session_csrf(oc.get(page)))
    ended, _ = d.session("alice")
    ended_csrf = session_csrf(ended.get(page))
    ended.post(f"{d.url}/signout", data={"csrf": ended_csrf}, headers={"Origin": d.url})
    for other in others + [ended_csrf]:
        assert other != csrf
        r = c.post(page, data={"decision": "approve", "csrf": other}, headers={"Origin": d.url})
        assert r.status_code == 403, other
    # Forged tokens: the right shape under a random key, the right key over another
    # message, truncated, one character changed, the session token itself.
    sid = d.system.sql("SELECT id::text FROM sessions WHERE token_hash = %s",
                       token_hash(c.cookies[SESSION]))[0][0]
    key = derive(d.system.master_key, CSRF_PURPOSE)
    forged = [b64(hmac.new(os.urandom(32), f"form|{sid}".encode(), hashlib.sha256).digest()),
              b64(hmac.new(key, f"form|{sid}x".encode(), hashlib.sha256).digest()),
              b64(hmac.new(key, sid.encode(), hashlib.sha256).digest()),
              b64(hmac.new(derive(d.system.master_key, b"countersign/csrf/v1"),
                           f"form|{sid}".encode(), hashlib.sha256).digest()),
              csrf[:-1], csrf + "A", csrf[:-1] + ("A" if csrf[-1] != "A" else "B"),
              csrf.upper(), base64.b64encode(base64.urlsafe_b64decode(csrf + "=")).decode(),
              c.cookies[SESSION], "x" * 200]
    for f in forged:
        if f == csrf:
            continue
        r = c.post(page, data={"decision": "approve", "csrf": f}, headers={"Origin": d.url})
        assert r.status_code == 403, f
    # Not a form at all.
    r = c.post(page, json={"decision": "approve", "csrf": csrf}, headers={"Origin": d.url})
    assert r.status_code in (400, 403, 415), r.status_code
    assert d.votes(aid) == 0 and d.status(aid) == "pending"
    # Control: the csrf sub-key signs this session's id exactly so (the forgeries
    # above were refused for their difference alone), and the page's own form, from
    # its own origin, decides.
    assert b64(hmac.new(key, f"form|{sid}".encode(), hashlib.sha256).digest()) == csrf
    r = c.post(page, data=form, headers={"Origin": d.url, "Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 200
    assert d.votes(aid) == 1


def test_cross_site_signin_refused_and_the_link_survives(d: Deployment) -> None:
    """A page elsewhere that auto-submits a form to a sign-in link it got hold of
    would sign the victim's browser in as the link's approver (login CSRF): refused,
    and the refusal does not burn the link for its owner."""
    aid = d.pending()
    link = d.link(aid)
    c = d.client()
    sessions = d.system.sql("SELECT count(*) FROM sessions")[0][0]
    for headers in cross_site(d):
        r = c.post(link, headers=headers)
        assert r.status_code == 403 and "set-cookie" not in r.headers, (headers, r.status_code)
    assert SESSION not in c.cookies and not used(d, link)
    assert d.system.sql("SELECT count(*) FROM sessions")[0][0] == sessions
    # Its owner, from the page itself (no Origin, as some browsers send a same-origin
    # form, or Origin "null" under no-referrer), signs in.
    _, page = d.sign_in(link)
    assert page.startswith(d.url + "/status/")
    for headers in ({}, {"Origin": "null"}, {"Sec-Fetch-Site": "same-origin"}):
        fresh = d.link(aid)
        r = d.client().post(fresh, headers=headers)
        assert r.status_code == 303, (headers, r.status_code)
    assert d.votes(aid) == 0


def test_cross_site_batch_signout_and_resend_refused(d: Deployment) -> None:
    for i in range(2):
        assert d.submit(path=f"/v1/refunds/xb{i}", batch_id="xb", idempotency_key=f"xb{i}") \
            .status_code == 202
    sealed = d.http.post("/v1/batches/xb/seal", headers=d.auth(), json={"count": 2})
    assert sealed.status_code == 200
    c, page = d.sign_in(d.batch_link("xb"))
    form = decision_form(c.get(page))
    assert form and form.get("digest"), form
    for headers in cross_site(d):
        assert c.post(page, data={**form, "decision": "approve"},
                      headers=headers).status_code == 403
    assert d.client().post(page, data={**form, "decision": "approve"},
                           headers={"Origin": d.url}).status_code == 401
    # Signed in, but no approver of the batch: no form, and its own csrf is no help.
    cc, _ = d.session("carol")
    shown = cc.get(page)
    assert decision_form(shown) is None and "not an approver" in shown.text
    assert cc.post(page, data={**form, "csrf": session_csrf(shown), "decision": "approve"},
                   headers={"Origin": d.url}).status_code == 403
    assert d.system.sql("SELECT count(*) FROM batch_votes")[0][0] == 0
    assert d.system.sql("SELECT count(*) FROM approvals WHERE batch_id = 'xb' "
                        "AND status = 'pending'")[0][0] == 2
    # Sign-out from another site (logout CSRF) ends nothing.
    for headers in cross_site(d)[:3]:
        r = c.post(f"{d.url}/signout", data={"csrf": form["csrf"]}, headers=headers)
        assert r.status_code == 403
    assert decision_form(c.get(page))
    # The re-send form of a status page: cross-site refused; from the page, at most
    # once a minute, and its answer carries no link.
    aid = d.pending()
    status = d.page(aid)
    notes = "SELECT count(*) FROM notifications WHERE kind = 'signin'"
    before = d.system.sql(notes)[0][0]
    for headers in cross_site(d)[:6]:
        assert d.client().post(status + "/signin-links", headers=headers).status_code == 403
    assert d.system.sql(notes)[0][0] == before
    first = d.client().post(status + "/signin-links", headers={"Origin": d.url})
    second = d.client().post(status + "/signin-links", headers={"Origin": d.url})
    assert first.status_code == 202 and second.status_code == 409, (first.status_code,
                                                                    second.status_code)
    assert d.system.sql(notes)[0][0] == before + 1  # alice's webhook; bob has no channel
    for r in (first, second):
        assert "/signin/" not in r.text and "set-cookie" not in r.headers


def test_link_scanners_change_nothing(d: Deployment) -> None:
    s = d.system
    aid = d.pending(path="/v1/refunds/scanned")
    link = d.link(aid)
    r = d.submit(path="/v1/refunds/scanned-status")
    status_url = d.fix(r.json()["approval_url"])
    for i in range(2):
        d.submit(path=f"/v1/refunds/sb{i}", batch_id="scan", idempotency_key=f"scan{i}")
    d.http.post("/v1/batches/scan/seal", headers=d.auth(), json={"count": 2})
    batch = d.batch_link("scan")
    inbox = d.signin_link("alice")
    # The pages the links lead to, as a scanner might have them (from a mail's HTML).
    _, batch_page = d.sign_in(d.batch_link("scan"))
    c0, page = d.sign_in(d.link(aid))
    csrf = csrf_of(c0.get(page))
    audit_before = s.sql("SELECT count(*) FROM audit")[0][0]
    sessions_before = s.sql("SELECT count(*) FROM sessions")[0][0]
    queries = ["", "?decision=approve", f"?decision=approve&csrf={csrf}", "?approve=1",
               "?decision=deny&reason=scanner", "?action=approve&confirm=yes", "?next=/inbox"]
    targets = (link, batch, inbox, status_url, page, batch_page, f"{d.url}/inbox",
               f"{d.url}/signin?next=/inbox")
    for ua in AGENTS:
        c = d.client(headers={"User-Agent": ua}, follow_redirects=True)
        for target in targets:
            for q in queries:
                sep = "&" if "?" in target and q else ""
                g = c.get(target + (q.replace("?", sep, 1) if sep else q))
                assert g.status_code == 200, (ua, target + q, g.status_code)
                assert decision_form(g) is None
            assert c.head(target).status_code == 200
            assert c.get(target, headers={"Sec-Purpose": "prefetch;prerender",
                                          "Purpose": "prefetch"}).status_code == 200
        assert c.get(batch_page + "/items.csv?decision=approve").status_code == 200
        for target in (link, page):
            assert c.request("OPTIONS", target).status_code == 405
            assert c.request("PUT", target, data={"decision": "approve",
                                                  "csrf": csrf}).status_code == 405
        assert SESSION not in c.cookies
    for sl in (link, batch, inbox):
        assert not used(d, sl)
        g = d.client().get(sl)
        assert g.status_code == 200 and "Continue as alice" in g.text
    assert s.sql("SELECT count(*) FROM sessions")[0][0] == sessions_before
    assert d.votes(aid) == 0 and d.status(aid) == "pending"
    assert s.sql("SELECT count(*) FROM batch_votes")[0][0] == 0
    assert s.sql("SELECT count(*) FROM approvals WHERE batch_id = 'scan' "
                 "AND status = 'pending'")[0][0] == 2
    # Reading pages is not audited as anything that matters: no sign-in, no vote.
    new = s.sql("SELECT action FROM audit ORDER BY id OFFSET %s", audit_before)
    assert not [a for (a,) in new if a.startswith(("vote", "approval.approved", "approval.denied",
                                                   "batch.decided", "signin", "session"))], new
    assert d.stub.count() == 0
    # Every link still works for its owner afterwards.
    assert d.vote(link).status_code == 200


def test_pages_escape_what_the_agent_wrote(d: Deployment) -> None:
    """The requester controls the reason, context, headers, body and query: none of it
    may become markup on the approver's page (the page would then vote by itself)."""
    xss = ['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>',
           "</textarea><form method=post class=card><input name=decision value=approve>"]
    r = d.submit(path="/v1/refunds/xss", reason=" ".join(xss), context={"note": xss[1], xss[0]: 1},
                 extra_headers={"X-Note": xss[1]}, query_params={"q": xss[2]},
                 json={"amount": 500, "memo": xss[0]})
    assert r.status_code == 202, r.text
    aid = r.json()["approval_id"]
    signed_in, page = d.sign_in(d.link(aid))
    pages = [signed_in.get(page), d.client().get(d.fix(r.json()["approval_url"]))]
    for shown in pages:
        assert shown.status_code == 200
        for payload in xss:
            assert payload not in shown.text, payload
        assert "&lt;script&gt;" in shown.text or "&lt;script>" in shown.text
        assert shown.text.count('name="decision"') in (0, 2)
        assert shown.text.count("<form") <= 3  # sign-out bar, decision, or the sign-in box
        parts = [x.strip() for x in shown.headers["content-security-policy"].split(";")]
        csp = dict((part.split(" ", 1) + [""])[:2] for part in parts if part)
        assert csp["default-src"] == "'none'", csp
        for directive in ("script-src", "default-src"):  # no inline or foreign script runs
            for bad in ("'unsafe-inline'", "'unsafe-eval'", "*", "data:", "http:", "https:"):
                assert bad not in csp.get(directive, "").split(), (directive, csp)
    assert decision_form(pages[0]) and decision_form(pages[1]) is None
    assert d.votes(aid) == 0


def test_a_client_cannot_read_the_session_cookie_cross_site(d: Deployment) -> None:
    """HttpOnly keeps the token from page scripts; SameSite=Lax keeps it off cross-site
    POSTs; the api never answers cross-origin reads (no CORS grant for any origin)."""
    aid = d.pending()
    c, page = d.sign_in(d.link(aid))
    for target in (page, f"{d.url}/inbox", f"{d.url}/v1/approvals/{aid}"):
        r = c.get(target, headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers, target
        assert "access-control-allow-credentials" not in r.headers, target
        o = c.request("OPTIONS", target, headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in o.headers, target
