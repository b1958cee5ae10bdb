"""Security invariant 1: a decision is a POST from the approval page itself. Cross-site
POSTs (foreign Origin, Sec-Fetch-Site other than same-origin, no cookie, mismatched
or foreign form tokens) are refused; link scanners and unfurlers that only GET or
HEAD a link, with any User-Agent and any query string, change nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from collections.abc import Iterator

import pytest

from attack_kit import CSRF_PURPOSE, Deployment, b64, csrf_of, deployment, derive
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
        d.start_api()
        d.key = d.new_key()
        yield d


def test_cross_site_decisions_refused(d: Deployment) -> None:
    aid = d.pending()
    link = d.link(aid)
    c, csrf = d.open(link)
    form = {"decision": "approve", "csrf": csrf}
    attempts = [
        ({"Origin": "https://evil.example"}, "another origin"),
        ({"Origin": "http://127.0.0.1:1"}, "another origin"),
        ({"Origin": d.url.replace("127.0.0.1", "localhost")}, "another origin"),
        ({"Sec-Fetch-Site": "cross-site"}, "another site"),
        ({"Sec-Fetch-Site": "same-site"}, "another site"),
        ({"Sec-Fetch-Site": "none"}, "another site"),
        ({"Sec-Fetch-Site": "cross-site", "Origin": d.url}, "another site"),
        ({"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}, "another site"),
    ]
    for headers, why in attempts:
        r = c.post(link, data=form, headers=headers)
        assert r.status_code == 403 and "<form" not in r.text, (headers, r.status_code)
    # No cookie (a cross-site request does not carry a SameSite=Strict cookie).
    r = d.client().post(link, data=form, headers={"Origin": d.url})
    assert r.status_code == 403
    # The cookie but no form token, or a token of another load of the same page.
    assert c.post(link, data={"decision": "approve"}, headers={"Origin": d.url}).status_code == 403
    _, csrf2 = d.open(link)
    r = c.post(link, data={"decision": "approve", "csrf": csrf2}, headers={"Origin": d.url})
    assert r.status_code == 403
    # A token (cookie and form) minted for another link: another approval, another slot.
    for other in (d.link(d.pending(), "alice"), d.link(aid, "bob")):
        oc, ocsrf = d.open(other)
        r = oc.post(link, data={"decision": "approve", "csrf": ocsrf}, headers={"Origin": d.url})
        assert r.status_code == 403, other
    # Forged tokens, set as both cookie and field.
    token = link.rsplit("/", 1)[1]
    nonce = b64(os.urandom(16))
    wrong_key = hmac.new(os.urandom(32), f"{token}|{nonce}".encode(), hashlib.sha256).digest()
    right_key_other_msg = hmac.new(derive(d.system.master_key, CSRF_PURPOSE),
                                   f"{token}|{nonce}|x".encode(), hashlib.sha256).digest()
    for forged in (f"{nonce}.{b64(wrong_key)}", f"{nonce}.{b64(right_key_other_msg)}",
                   f"{nonce}.", f".{b64(wrong_key)}", "x" * 200, csrf.split(".")[0] + ".",
                   csrf[:-1] + ("A" if csrf[-1] != "A" else "B")):
        fc = d.client()
        fc.cookies.set("cs_csrf", forged, path="/approve/")
        r = fc.post(link, data={"decision": "approve", "csrf": forged}, headers={"Origin": d.url})
        assert r.status_code == 403, forged
    # Not a form at all.
    r = c.post(link, json={"decision": "approve", "csrf": csrf}, headers={"Origin": d.url})
    assert r.status_code in (400, 403, 415), r.status_code
    assert d.votes(aid) == 0 and d.status(aid) == "pending"
    # Control: the page's own form, from its own origin, decides.
    r = c.post(link, data=form, headers={"Origin": d.url, "Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 200
    assert d.votes(aid) == 1


def test_cross_site_batch_decision_refused(d: Deployment) -> None:
    for i in range(2):
        assert d.submit(path=f"/v1/refunds/xb{i}", batch_id="xb", idempotency_key=f"xb{i}") \
            .status_code == 202
    sealed = d.http.post("/v1/batches/xb/seal", headers=d.auth(), json={"count": 2})
    assert sealed.status_code == 200
    link = d.batch_link("xb")
    c = d.client()
    page = c.get(link)
    form = {"decision": "approve", "csrf": csrf_of(page)}
    digest = dict(re.findall(r'name="(digest)" value="([^"]*)"', page.text))
    form.update(digest)
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        assert c.post(link, data=form, headers=headers).status_code == 403
    assert d.client().post(link, data=form, headers={"Origin": d.url}).status_code == 403
    assert d.system.sql("SELECT count(*) FROM batch_votes")[0][0] == 0
    assert d.system.sql("SELECT count(*) FROM approvals WHERE batch_id = 'xb' "
                        "AND status = 'pending'")[0][0] == 2


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
    inbox = d.fix(json.loads(s.cli("approver", "inbox-link", "alice").stdout)["url"])
    audit_before = s.sql("SELECT count(*) FROM audit")[0][0]
    _, csrf = d.open(link)
    queries = ["", "?decision=approve", f"?decision=approve&csrf={csrf}", "?approve=1",
               "?decision=deny&reason=scanner", "?action=approve&confirm=yes"]
    for ua in AGENTS:
        c = d.client(headers={"User-Agent": ua}, follow_redirects=True)
        for target in (link, batch, status_url, inbox):
            for q in queries:
                g = c.get(target + q)
                assert g.status_code == 200, (ua, target + q, g.status_code)
            assert c.head(target).status_code == 200
            assert c.get(target, headers={"Sec-Purpose": "prefetch;prerender",
                                          "Purpose": "prefetch"}).status_code == 200
        assert c.get(batch + "/items.csv?decision=approve").status_code == 200
        assert c.request("OPTIONS", link).status_code == 405
        assert c.request("PUT", link, data={"decision": "approve", "csrf": csrf}).status_code == 405
    assert d.votes(aid) == 0 and d.status(aid) == "pending"
    assert s.sql("SELECT count(*) FROM batch_votes")[0][0] == 0
    assert s.sql("SELECT count(*) FROM approvals WHERE batch_id = 'scan' "
                 "AND status = 'pending'")[0][0] == 2
    # Reading pages is not audited as anything that matters: no vote, no decision.
    new = s.sql("SELECT action FROM audit ORDER BY id OFFSET %s", audit_before)
    assert not [a for (a,) in new if a.startswith(("vote", "approval.approved", "approval.denied",
                                                   "batch.decided"))], new
    assert d.stub.count() == 0


def test_pages_escape_what_the_agent_wrote(d: Deployment) -> None:
    """The requester controls the reason, context, headers, body and query: none of it
    may become markup on the approver's page (the page would then vote by itself)."""
    xss = ['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>',
           "</textarea><form method=post><input name=decision value=approve>"]
    r = d.submit(path="/v1/refunds/xss", reason=" ".join(xss), context={"note": xss[1], xss[0]: 1},
                 extra_headers={"X-Note": xss[1]}, query_params={"q": xss[2]},
                 json={"amount": 500, "memo": xss[0]})
    assert r.status_code == 202, r.text
    aid = r.json()["approval_id"]
    pages = [d.client().get(d.link(aid)), d.client().get(d.fix(r.json()["approval_url"]))]
    for page in pages:
        assert page.status_code == 200
        for payload in xss:
            assert payload not in page.text, payload
        assert "&lt;script&gt;" in page.text or "&lt;script>" in page.text
        assert page.text.count("<form") <= 1 and page.text.count('name="decision"') in (0, 2)
        assert "script-src" not in page.headers["content-security-policy"]
        assert "default-src 'none'" in page.headers["content-security-policy"]
    assert d.votes(aid) == 0
