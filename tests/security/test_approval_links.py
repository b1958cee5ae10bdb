"""Security invariant 2, approval links: forged, tampered (every position), truncated
or extended, expired, replayed after the decision, another approver's slot, a batch
token on /approve/ and an approval token on /batch/, the status and inbox tokens used
to vote -- all refused, and no vote is recorded."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from attack_kit import (B64URL, BATCH_PURPOSE, CSRF_PURPOSE, INBOX_PURPOSE, LINK_PURPOSE,
                        VIEW_PURPOSE, Deployment, b64, csrf_of, deployment, derive, refusals,
                        sign, unb64)
from services import Kafka, Postgres

FAR = int(time.time() * 1000) + 7 * 86400_000


@pytest.fixture(scope="module")
def d(request: pytest.FixtureRequest, pg: Postgres, kafka: Kafka) -> Iterator[Deployment]:
    with deployment(request, pg, kafka, "sec_links") as d:
        s = d.system
        d.ids = s.setup(approvers=("alice", "bob"), quorum=1)
        s.cli("policy", "set", "short", "--mode", "always", "--quorum", "1", "--approvers",
              "alice", "--window", "2")
        s.cli("policy", "set", "onlybob", "--mode", "always", "--quorum", "1", "--approvers", "bob")
        d.add_grant("short", "sk_short_" + s.secret[-12:] + "s", [d.stub.url], policy="short")
        d.add_grant("onlybob", "sk_bob_" + s.secret[-12:] + "b", [d.stub.url], policy="onlybob")
        d.start_api()
        s.worker()
        s.scheduler()
        d.key = d.new_key()
        yield d


def approve_url(d: Deployment, token: str, route: str = "approve") -> str:
    return f"{d.url}/{route}/{token}"


def refused(r: httpx.Response) -> bool:
    return r.status_code in (403, 404, 410) and "<form" not in r.text


def test_forged_links_refused(d: Deployment) -> None:
    aid = d.pending()
    a = d.ids["alice"]
    mk = d.system.master_key
    other_master = b64(os.urandom(32)).replace("-", "+").replace("_", "/") + "="
    raw = unb64(d.link(aid).rsplit("/", 1)[1])
    forged = [
        sign(os.urandom(32), aid, a, a, FAR),                           # a random key
        sign(b"\0" * 32, aid, a, a, FAR),
        sign(derive(other_master, LINK_PURPOSE), aid, a, a, FAR),       # another deployment's key
        sign(derive(mk, VIEW_PURPOSE), aid, a, a, FAR),                 # our keys, other purposes
        sign(derive(mk, INBOX_PURPOSE), aid, a, a, FAR),
        sign(derive(mk, BATCH_PURPOSE), aid, a, a, FAR),
        sign(derive(mk, CSRF_PURPOSE), aid, a, a, FAR),
        b64(raw[:57] + bytes(32)),                                      # the MAC zeroed
        b64(raw[:57] + os.urandom(32)),
        b64(b"\x02" + raw[1:]),                                         # another version
        b64(os.urandom(89)),
        "A" * 119,
        "-" * 119,
    ]
    c = d.client()
    for t in forged:
        assert len(t) == 119
        url = approve_url(d, t)
        g = c.get(url)
        assert g.status_code == 403 and "not valid" in g.text and "<form" not in g.text, t
        p = c.post(url, data={"decision": "approve", "csrf": "x.y"}, headers={"Origin": d.url})
        assert p.status_code == 403, t
    assert d.votes(aid) == 0 and d.status(aid) == "pending"


def test_every_position_of_a_real_token_tampered(d: Deployment) -> None:
    aid = d.pending()
    link = d.link(aid)
    token = link.rsplit("/", 1)[1]
    assert len(token) == 119
    c, csrf = d.open(link)
    for i, ch in enumerate(token):
        k = B64URL.index(ch)
        for repl in {B64URL[(k + 1) % 64], B64URL[k ^ 1], B64URL[(k + 32) % 64]}:
            bad = token[:i] + repl + token[i + 1:]
            r = c.get(approve_url(d, bad))
            assert r.status_code == 403 and "<form" not in r.text, (i, repl, r.status_code)
            if i % 5 == 0:  # and a decision, with the real page's form token and cookie
                p = c.post(approve_url(d, bad), data={"decision": "approve", "csrf": csrf},
                           headers={"Origin": d.url})
                assert p.status_code == 403, (i, repl, p.status_code)
    raw = unb64(token)
    assert len(raw) == 89
    for i in range(len(raw)):
        for bit in (0x01, 0x80):
            bad = b64(raw[:i] + bytes([raw[i] ^ bit]) + raw[i + 1:])
            r = c.get(approve_url(d, bad))
            assert r.status_code == 403, (i, bit, r.status_code)
    assert d.votes(aid) == 0 and d.status(aid) == "pending"
    # The real link still works: the refusals were about the tampering.
    assert d.vote(link).status_code == 200
    assert d.votes(aid) == 1


def test_truncated_and_extended_tokens_refused(d: Deployment) -> None:
    aid = d.pending()
    link = d.link(aid)
    token = link.rsplit("/", 1)[1]
    c, csrf = d.open(link)
    variants = [token[:n] for n in (1, 2, 20, 43, 57, 76, 100, 116, 117, 118)]
    variants += [token + x for x in ("A", "AA", "AAA", "AAAA", "=", "==", "%3D", "/", "/x",
                                     "%0A", token)]
    variants += ["=" + token, "A" + token, token[1:] + "A", token[:-1] + "=",
                 token.replace("-", "+").replace("_", "/"), token.upper(), token.lower(),
                 token[::-1], ".." + "/" + token]
    variants = [v for v in variants if v != token]
    for v in variants:
        url = approve_url(d, v)
        g = c.get(url)
        assert refused(g), (v, g.status_code)
        p = c.post(url, data={"decision": "approve", "csrf": csrf}, headers={"Origin": d.url})
        assert refused(p), (v, p.status_code)
    assert d.votes(aid) == 0 and d.status(aid) == "pending"


def test_expired_links_die_with_the_window(d: Deployment) -> None:
    s = d.system
    aid = d.pending(grant="short", path="/v1/refunds/short")
    link = d.link(aid)
    c, csrf = d.open(link)  # opened in time; the person decides too late
    resigned = approve_url(d, sign(derive(s.master_key, LINK_PURPOSE), aid, d.ids["alice"],
                                   d.ids["alice"], FAR))
    c2, csrf2 = d.open(resigned)
    d.wait_id(aid, "expired", timeout=15)
    late = c.post(link, data={"decision": "approve", "csrf": csrf}, headers={"Origin": d.url})
    assert late.status_code == 410 and "<form" not in late.text, late.status_code
    g = d.client().get(link)
    assert g.status_code == 410 and "expired" in g.text.lower()
    # Even a correctly signed link that outlives the window cannot decide.
    r = c2.post(resigned, data={"decision": "approve", "csrf": csrf2}, headers={"Origin": d.url})
    assert r.status_code in (409, 410), r.status_code
    page = d.client().get(resigned)
    assert "<form" not in page.text
    cli = s.cli("approval", "approve", aid, "--as", "alice", check=False)
    assert cli.returncode != 0
    assert d.votes(aid) == 0 and d.status(aid) == "expired"
    assert s.stub.count("/v1/refunds/short") == 0


def test_replayed_decision_refused(d: Deployment) -> None:
    aid = d.pending(path="/v1/refunds/replay")
    link = d.link(aid)
    c, csrf = d.open(link)
    form = {"decision": "approve", "reason": "ok", "csrf": csrf}
    first = c.post(link, data=form, headers={"Origin": d.url})
    assert first.status_code == 200
    for decision in ("approve", "deny"):
        again = c.post(link, data={**form, "decision": decision}, headers={"Origin": d.url})
        assert again.status_code == 409, again.status_code
    # Bob opens his page after the decision: no form; a POST anyway (cookie token) is refused.
    cb = d.client()
    page = cb.get(d.link(aid, "bob"))
    assert page.status_code == 200 and "<form" not in page.text
    late = cb.post(d.link(aid, "bob"), data={"decision": "deny", "csrf": cb.cookies["cs_csrf"]},
                   headers={"Origin": d.url})
    assert late.status_code == 409, late.status_code
    d.wait_id(aid, "executed")
    again = c.post(link, data=form, headers={"Origin": d.url})
    assert again.status_code == 409
    assert d.votes(aid) == 1 and d.stub.count("/v1/refunds/replay") == 1


def test_a_token_for_another_slot_or_approval_refused(d: Deployment) -> None:
    s = d.system
    alice, bob = d.ids["alice"], d.ids["bob"]
    aid, other = d.pending(), d.pending()
    token = d.link(aid, "alice").rsplit("/", 1)[1]
    raw = bytearray(unb64(token))
    swaps: list[bytes] = []
    for lo, hi, value in ((17, 33, bob), (33, 49, bob), (1, 17, other)):
        t = bytearray(raw)
        t[lo:hi] = uuid.UUID(value).bytes
        swaps.append(bytes(t))
    both = bytearray(raw)
    both[17:33] = both[33:49] = uuid.UUID(bob).bytes
    swaps.append(bytes(both))
    later = bytearray(raw)
    later[49:57] = FAR.to_bytes(8, "big")
    swaps.append(bytes(later))
    c = d.client()
    for swapped in swaps:
        assert c.get(approve_url(d, b64(swapped))).status_code == 403
        assert c.post(approve_url(d, b64(swapped)),
                      data={"decision": "approve", "csrf": "x"}).status_code == 403
    # Signed with the real key (a leaked key, or a bug elsewhere): the database still
    # refuses a vote in a slot the holder may not vote for.
    key = derive(s.master_key, LINK_PURPOSE)
    bobs_slot = approve_url(d, sign(key, aid, bob, alice, FAR))
    assert d.vote(bobs_slot).status_code == 403
    only_bob = d.pending(grant="onlybob")
    not_hers = approve_url(d, sign(key, only_bob, alice, alice, FAR))
    assert d.vote(not_hers).status_code == 403
    assert d.votes(aid) == d.votes(other) == d.votes(only_bob) == 0
    assert refusals(d)[-2:] == ["not_an_approver", "not_an_approver"]


def test_tokens_are_not_interchangeable_between_pages(d: Deployment) -> None:
    s = d.system
    for i in range(2):
        r = d.submit(path=f"/v1/refunds/b{i}", batch_id="sb1", idempotency_key=f"sb1-{i}")
        assert r.status_code == 202, r.text
    sealed = d.http.post("/v1/batches/sb1/seal", headers=d.auth(), json={"count": 2})
    assert sealed.status_code == 200 and sealed.json()["status"] == "decidable", sealed.text
    batch_tok = d.batch_link("sb1").rsplit("/", 1)[1]
    r = d.submit(path="/v1/refunds/single")
    aid, status_tok = r.json()["approval_id"], r.json()["approval_url"].rsplit("/", 1)[1]
    appr_tok = d.link(aid).rsplit("/", 1)[1]
    inbox = s.cli("approver", "inbox-link", "alice").stdout
    inbox_tok = json.loads(inbox)["url"].rsplit("/", 1)[1]
    c = d.client()
    for route, tok in (("approve", batch_tok), ("approve", status_tok), ("approve", inbox_tok),
                       ("batch", appr_tok), ("batch", status_tok), ("batch", inbox_tok),
                       ("inbox", appr_tok), ("inbox", batch_tok), ("inbox", status_tok),
                       ("status", appr_tok), ("status", batch_tok), ("status", inbox_tok)):
        g = c.get(approve_url(d, tok, route))
        assert g.status_code == 403 and "<form" not in g.text, (route, tok, g.status_code)
        if route in ("approve", "batch"):
            p = c.post(approve_url(d, tok, route), data={"decision": "approve", "csrf": "a.b"},
                       headers={"Origin": d.url})
            assert p.status_code == 403, (route, p.status_code)
        if route == "batch":
            assert c.get(approve_url(d, tok, "batch") + "/items.csv").status_code == 403
    # The right tokens on the right pages do work (so the refusals above mean something).
    assert c.get(approve_url(d, batch_tok, "batch")).status_code == 200
    assert c.get(approve_url(d, inbox_tok, "inbox")).status_code == 200
    assert c.get(approve_url(d, status_tok, "status")).status_code == 200
    assert d.votes(aid) == 0 and d.status(aid) == "pending"
    assert s.sql("SELECT count(*) FROM batch_votes")[0][0] == 0


def test_the_status_link_cannot_vote(d: Deployment) -> None:
    r = d.submit(path="/v1/refunds/status")
    aid, url = r.json()["approval_id"], d.fix(r.json()["approval_url"])
    c = d.client()
    page = c.get(url)
    assert page.status_code == 200 and "<form" not in page.text and "csrf" not in page.text
    assert "set-cookie" not in page.headers
    assert c.post(url, data={"decision": "approve"}).status_code == 405
    tok = url.rsplit("/", 1)[1]
    for route in ("approve", "batch"):
        assert c.get(approve_url(d, tok, route)).status_code == 403
        assert c.post(approve_url(d, tok, route), data={"decision": "approve", "csrf": "a.b"},
                      headers={"Origin": d.url}).status_code == 403
    assert d.votes(aid) == 0 and d.status(aid) == "pending"


def test_a_page_cannot_be_framed_cached_or_leak_its_link(d: Deployment) -> None:
    aid = d.pending()
    page = d.client().get(d.link(aid))
    h = page.headers
    assert h["cache-control"] == "no-store" and h["referrer-policy"] == "no-referrer"
    assert h["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in h["content-security-policy"]
    cookie = h["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert csrf_of(page)
