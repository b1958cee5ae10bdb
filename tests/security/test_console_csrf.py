"""The operator console's actions are POSTs from its own pages, by a signed-in
read-write operator (issue 16). Every console POST route refuses a cross-site
request (foreign Origin, Sec-Fetch-Site other than same-origin), a missing,
forged or other session's form token (403) and a request without a session
(401), and changes nothing; a GET of an action's URL (a scanner, a prefetch)
changes nothing either. What agents write is escaped on every console page."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Iterator

import httpx
import pytest

from attack_kit import (CSRF_PURPOSE, SESSION, Deployment, b64, deployment, derive, session_csrf,
                        token_hash)
from harness import REPO_ROOT
from services import Kafka, Postgres

POSTS = re.findall(r'\{"POST", "(/console[^"]+)", \w+, "\w+"(?:, (?:true|false))+\}',
                   (REPO_ROOT / "api" / "router.c").read_text())
XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture(scope="module")
def d(request: pytest.FixtureRequest, pg: Postgres, kafka: Kafka) -> Iterator[Deployment]:
    with deployment(request, pg, kafka, "sec_console") as d:
        d.ids = d.system.setup(approvers=("alice", "bob", "ops", "ops2"))
        for name in ("ops", "ops2"):
            d.system.cli("approver", "set", name, "--operator", "write")
        d.start_api()
        d.key = d.new_key()
        yield d


def cross_site(d: Deployment) -> list[dict[str, str]]:
    return [{"Origin": "https://evil.example"}, {"Origin": d.url.replace("127.0.0.1", "localhost")},
            {"Origin": d.url + ".evil.example"}, {"Sec-Fetch-Site": "cross-site"},
            {"Sec-Fetch-Site": "same-site"}, {"Sec-Fetch-Site": "none"},
            {"Sec-Fetch-Site": "cross-site", "Origin": d.url}]


def state(d: Deployment, approval_id: str) -> tuple[object, ...]:
    return (d.system.sql("SELECT status, attempts FROM approvals WHERE id = %s", approval_id)[0],
            d.system.sql("SELECT paused_at IS NULL FROM grants WHERE id = 'stripe'")[0],
            d.system.sql("SELECT count(*) FROM approvals")[0],
            d.system.sql("SELECT count(*) FROM audit WHERE actor LIKE 'operator:%%'")[0])


def fill(path: str, approval_id: str) -> str:
    return path.replace("/grants/{}", "/grants/stripe").replace("{}", approval_id)


def test_console_posts_refuse_cross_site_and_forged_forms(d: Deployment) -> None:
    assert len(POSTS) >= 5
    r = d.submit()
    assert r.status_code == 202, r.text
    aid = r.json()["approval_id"]
    c, home = d.session("ops", "/console")
    csrf = session_csrf(c.get(home))
    sid = d.system.sql("SELECT id::text FROM sessions WHERE token_hash = %s",
                       token_hash(c.cookies[SESSION]))[0][0]
    key = derive(d.system.master_key, CSRF_PURPOSE)
    other, other_home = d.session("ops2", "/console")
    others = [session_csrf(other.get(other_home))]
    forged = [b64(hmac.new(os.urandom(32), f"form|{sid}".encode(), hashlib.sha256).digest()),
              b64(hmac.new(key, f"form|{sid}x".encode(), hashlib.sha256).digest()),
              csrf[:-1], csrf + "A", csrf.upper(), c.cookies[SESSION], "", "x" * 200]
    before = state(d, aid)
    for path in POSTS:
        url = d.url + fill(path, aid)
        form = {"csrf": csrf, "decision": "approve", "as": "alice", "reason": "r"}
        for headers in cross_site(d):
            r = c.post(url, data=form, headers=headers)
            assert r.status_code == 403, (path, headers, r.status_code)
        for bad in forged + others:
            if bad == csrf:
                continue
            r = c.post(url, data={**form, "csrf": bad}, headers={"Origin": d.url})
            assert r.status_code == 403, (path, bad, r.status_code)
        r = c.post(url, data={k: v for k, v in form.items() if k != "csrf"},
                   headers={"Origin": d.url})
        assert r.status_code == 403, (path, r.status_code)
        # No session: a cross-site POST carries no SameSite=Lax cookie.
        r = d.client().post(url, data=form, headers={"Origin": d.url})
        assert r.status_code == 401, (path, r.status_code)
        # A scanner or a prefetch GETs the action's URL: nothing happens.
        r = c.get(url)
        assert r.status_code == 405, (path, r.status_code)
        assert state(d, aid) == before, path
    # Control: the csrf sub-key signs this session's id exactly so, and the form
    # from the console's own origin acts.
    assert b64(hmac.new(key, f"form|{sid}".encode(), hashlib.sha256).digest()) == csrf
    r = c.post(f"{d.url}/console/approvals/{aid}/cancel", data={"csrf": csrf},
               headers={"Origin": d.url, "Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 303
    assert d.system.sql("SELECT status FROM approvals WHERE id = %s", aid) == [("cancelled",)]


def test_agent_text_is_escaped_on_console_pages(d: Deployment) -> None:
    r = d.submit(reason=XSS, idempotency_key=XSS, extra_headers={"X-Note": XSS})
    assert r.status_code == 202, r.text
    aid = r.json()["approval_id"]
    c, _ = d.session("ops", "/console")
    pages = [f"/console/approvals/{aid}", "/console/approvals",
             f"/console/approvals?q={httpx.QueryParams({'q': XSS})['q']}"]
    for path in pages:
        text = c.get(d.url + path).text
        assert "<script>alert" not in text and "<img src=x" not in text, path
    assert "&lt;script&gt;alert" in c.get(f"{d.url}/console/approvals/{aid}").text
    # Every console page carries the strict policy: scripts from this origin only.
    r = c.get(f"{d.url}/console")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"
