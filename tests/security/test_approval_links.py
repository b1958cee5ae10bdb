"""Security invariant 2, links and sessions: holding a link never lets anyone vote.

The approval_url (`/status/<signed token>`) is a read-only view: forged, tampered
(every position), truncated, extended or expired page tokens are refused, and a
valid one shows a decision form only to a signed-in approver. A one-time sign-in
link (`/signin/<token>`) signs in the approver it was minted for -- once, before
it expires, whoever uses it -- and a guessed or tampered one signs in nobody.
Sessions: a new session id at every sign-in, a planted cookie never
authenticates, sign-out and revocation end a session. Old per-approver decision
links are gone (404)."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from attack_kit import (B64URL, BATCH_PURPOSE, CSRF_PURPOSE, OLD_PURPOSES, SESSION,
                        VIEW_PURPOSE, Deployment, b64, csrf_of, decision_form, deployment,
                        derive, session_csrf, sign, token_hash, token_of, unb64)
from services import Kafka, Postgres

@pytest.fixture(scope="module")
def d(request: pytest.FixtureRequest, pg: Postgres, kafka: Kafka) -> Iterator[Deployment]:
    with deployment(request, pg, kafka, "sec_links") as d:
        s = d.system
        d.ids = s.setup(approvers=("alice", "bob"), quorum=1)
        for name in ("carol", "dave"):   # approvers of nothing here
            d.ids[name] = s.cli_json("approver", "create", name)["approver_id"]
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


def url(d: Deployment, token: str, route: str = "status") -> str:
    return f"{d.url}/{route}/{token}"


def refused(r: httpx.Response) -> bool:
    return r.status_code in (403, 404, 410) and decision_form(r) is None


def signed_in_as(c: httpx.Client, d: Deployment) -> str | None:
    """Who the client's session belongs to, by the inbox's sign-out bar (None: nobody)."""
    r = c.get(f"{d.url}/inbox")
    if r.status_code != 200:
        return None
    m = re.search(r"Signed in as <b>([^<]*)</b>", r.text)
    return m.group(1) if m else None


def session_owner(d: Deployment, token: str) -> str | None:
    rows = d.system.sql("SELECT p.name FROM sessions s JOIN approvers p ON p.id = s.approver_id "
                        "WHERE s.token_hash = %s", token_hash(token))
    return rows[0][0] if rows else None


def sessions_of(d: Deployment, name: str) -> int:
    return int(d.system.sql("SELECT count(*) FROM sessions s JOIN approvers p "
                            "ON p.id = s.approver_id WHERE p.name = %s", name)[0][0])


def link_used(d: Deployment, link: str) -> bool:
    rows = d.system.sql("SELECT used_at IS NOT NULL FROM signin_links WHERE token_hash = %s",
                        token_hash(token_of(link)))
    assert rows, "no such sign-in link stored"
    return bool(rows[0][0])


# ---- the approval_url: a signed, read-only view ---------------------------------


def test_forged_page_links_refused(d: Deployment) -> None:
    aid = d.pending()
    mk = d.system.master_key
    c, page = d.session("alice", None)
    real = d.page(aid)
    csrf = csrf_of(c.get(real))  # alice is signed in and holds a slot: the form shows
    exp = unb64(token_of(real))[49:57]
    far = int.from_bytes(exp, "big")
    other_master = b64(os.urandom(32)).replace("-", "+").replace("_", "/") + "="
    raw = unb64(token_of(real))
    forged = [
        sign(os.urandom(32), aid, far),                                  # a random key
        sign(b"\0" * 32, aid, far),
        sign(derive(other_master, VIEW_PURPOSE), aid, far),             # another deployment's
        sign(derive(mk, BATCH_PURPOSE), aid, far),                      # our other sub-keys
        sign(derive(mk, CSRF_PURPOSE), aid, far),
        *[sign(derive(mk, p), aid, far) for p in OLD_PURPOSES],         # and retired ones
        sign(derive(mk, VIEW_PURPOSE)[::-1], aid, far),
        b64(raw[:57] + bytes(32)),                                       # the MAC zeroed
        b64(raw[:57] + os.urandom(32)),
        b64(b"\x02" + raw[1:]),                                          # another version
        b64(os.urandom(89)),
        "A" * 119,
        "-" * 119,
    ]
    for t in forged:
        assert len(t) == 119
        g = c.get(url(d, t))
        assert g.status_code == 403 and "not valid" in g.text and decision_form(g) is None, t
        p = c.post(url(d, t), data={"decision": "approve", "csrf": csrf},
                   headers={"Origin": d.url})
        assert p.status_code == 403, (t, p.status_code)
    assert d.votes(aid) == 0 and d.status(aid) == "pending"
    # The real page link decides (so the refusals above were about the token).
    assert d.decide(c, real).status_code == 200 and d.votes(aid) == 1


def test_every_position_of_a_real_page_link_tampered(d: Deployment) -> None:
    aid = d.pending()
    real = d.page(aid)
    token = token_of(real)
    assert len(token) == 119
    c, _ = d.session("alice")
    csrf = csrf_of(c.get(real))
    for i, ch in enumerate(token):
        k = B64URL.index(ch)
        for repl in {B64URL[(k + 1) % 64], B64URL[k ^ 1], B64URL[(k + 32) % 64]}:
            bad = token[:i] + repl + token[i + 1:]
            r = c.get(url(d, bad))
            assert r.status_code == 403 and decision_form(r) is None, (i, repl, r.status_code)
            if i % 5 == 0:  # and a decision, by a signed-in approver with a valid form token
                p = c.post(url(d, bad), data={"decision": "approve", "csrf": csrf},
                           headers={"Origin": d.url})
                assert p.status_code == 403, (i, repl, p.status_code)
    raw = unb64(token)
    assert len(raw) == 89
    for i in range(len(raw)):
        for bit in (0x01, 0x80):
            bad = b64(raw[:i] + bytes([raw[i] ^ bit]) + raw[i + 1:])
            r = c.get(url(d, bad))
            assert r.status_code == 403, (i, bit, r.status_code)
    assert d.votes(aid) == 0 and d.status(aid) == "pending"
    assert d.decide(c, real).status_code == 200
    assert d.votes(aid) == 1


def test_truncated_and_extended_page_links_refused(d: Deployment) -> None:
    aid = d.pending()
    real = d.page(aid)
    token = token_of(real)
    c, _ = d.session("alice")
    csrf = csrf_of(c.get(real))
    variants = [token[:n] for n in (1, 2, 20, 43, 57, 76, 100, 116, 117, 118)]
    variants += [token + x for x in ("A", "AA", "AAA", "AAAA", "=", "==", "%3D", "/", "/x",
                                     "%0A", token)]
    variants += ["=" + token, "A" + token, token[1:] + "A", token[:-1] + "=",
                 token.replace("-", "+").replace("_", "/"), token.upper(), token.lower(),
                 token[::-1], ".." + "/" + token]
    variants = [v for v in variants if v != token]
    for v in variants:
        g = c.get(url(d, v))
        assert refused(g), (v, g.status_code)
        p = c.post(url(d, v), data={"decision": "approve", "csrf": csrf}, headers={"Origin": d.url})
        assert refused(p) or p.status_code == 405, (v, p.status_code)
    assert d.votes(aid) == 0 and d.status(aid) == "pending"


def test_expired_page_links_and_windows(d: Deployment) -> None:
    s = d.system
    mk = d.system.master_key
    aid = d.pending()
    c, _ = d.session("alice")
    csrf = csrf_of(c.get(d.page(aid)))
    # A correctly signed page token whose own expiry passed: not valid any more.
    for exp in (int(time.time() * 1000) - 1000, 1, 0):
        t = url(d, sign(derive(mk, VIEW_PURPOSE), aid, exp))
        g = c.get(t)
        assert g.status_code == 403 and decision_form(g) is None, g.status_code
        p = c.post(t, data={"decision": "approve", "csrf": csrf}, headers={"Origin": d.url})
        assert p.status_code == 403, p.status_code
    assert d.votes(aid) == 0
    # An approval whose window ends while its page is open: the late press is refused,
    # and neither a fresh sign-in nor the CLI can decide it.
    short = d.pending(grant="short", path="/v1/refunds/short")
    page = d.page(short)
    cs, _ = d.session("alice")
    form = decision_form(cs.get(page))
    assert form
    d.wait_id(short, "expired", timeout=15)
    late = cs.post(page, data={**form, "decision": "approve"}, headers={"Origin": d.url})
    assert late.status_code == 410 and decision_form(late) is None, late.status_code
    shown = cs.get(page)
    assert shown.status_code == 200 and decision_form(shown) is None
    assert "expired" in shown.text
    assert d.vote_late(d.link(short, "alice")).status_code == 410
    cli = s.cli("approval", "approve", short, "--as", "alice", check=False)
    assert cli.returncode != 0
    assert d.votes(short) == 0 and d.status(short) == "expired"
    assert s.stub.count("/v1/refunds/short") == 0


def test_replayed_decision_refused(d: Deployment) -> None:
    aid = d.pending(path="/v1/refunds/replay")
    c, page = d.sign_in(d.link(aid))
    form = decision_form(c.get(page))
    assert form
    first = c.post(page, data={**form, "decision": "approve", "reason": "ok"},
                   headers={"Origin": d.url})
    assert first.status_code == 200
    for decision in ("approve", "deny"):
        again = c.post(page, data={**form, "decision": decision}, headers={"Origin": d.url})
        assert again.status_code == 409, again.status_code
    # Bob signs in after the decision: no form; a POST anyway (his session's token) is refused.
    assert d.vote_late(d.link(aid, "bob"), "deny").status_code == 409
    d.wait_id(aid, "executed")
    again = c.post(page, data={**form, "decision": "approve"}, headers={"Origin": d.url})
    assert again.status_code == 409
    assert d.votes(aid) == 1 and d.stub.count("/v1/refunds/replay") == 1


def test_holding_the_page_link_never_votes(d: Deployment) -> None:
    """The approval_url goes to the agent, chats and tickets: it shows status and a way
    to sign in, never a form; without a session a POST is 401 whatever it carries."""
    r = d.submit(path="/v1/refunds/status")
    aid, page = r.json()["approval_id"], d.fix(r.json()["approval_url"])
    assert page == d.page(aid)  # the same approval always gets the same link
    c = d.client()
    shown = c.get(page)
    assert shown.status_code == 200 and decision_form(shown) is None and "csrf" not in shown.text
    assert "Sign in to decide" in shown.text and "set-cookie" not in shown.headers
    forms = [{"decision": "approve"}, {"decision": "approve", "csrf": "x" * 43},
             {"decision": "approve", "csrf": "", "approver": d.ids["alice"]}]
    for form in forms:
        p = c.post(page, data=form, headers={"Origin": d.url})
        assert p.status_code == 401 and decision_form(p) is None, p.status_code
    # Cookies that are not a live session: random, empty, a sign-in token, the page token.
    for fake in ("A" * 43, "", b64(os.urandom(32)), token_of(d.link(aid)), token_of(page)):
        fc = d.browser(fake)
        p = fc.post(page, data={"decision": "approve", "csrf": "x"}, headers={"Origin": d.url})
        assert p.status_code == 401, (fake, p.status_code)
    # Signed in, but not an approver of this request: a note, no form, and a refusal.
    cc, _ = d.session("carol")
    shown = cc.get(page)
    assert "who is not an approver" in shown.text and decision_form(shown) is None
    p = cc.post(page, data={"decision": "approve", "csrf": session_csrf(shown)},
                headers={"Origin": d.url})
    assert p.status_code == 403 and "not an approver" in p.text, p.status_code
    assert d.votes(aid) == 0 and d.status(aid) == "pending"


def test_the_slot_comes_from_the_session_not_the_form(d: Deployment) -> None:
    """Extra fields naming another slot, voter or approval change nothing: alice votes
    as alice, and cannot vote on a request only bob may decide."""
    alice, bob = d.ids["alice"], d.ids["bob"]
    only_bob = d.pending(grant="onlybob")
    c, _ = d.session("alice")
    shown = c.get(d.page(only_bob))
    assert decision_form(shown) is None and "who is not an approver" in shown.text
    extra = {"approver": bob, "slot": bob, "voter": bob, "as": "bob"}
    p = c.post(d.page(only_bob), data={"decision": "approve", "csrf": session_csrf(shown), **extra},
               headers={"Origin": d.url})
    assert p.status_code == 403, p.status_code
    assert d.votes(only_bob) == 0
    aid = d.pending(path="/v1/refunds/slot")
    r = d.decide(c, d.page(aid), **{**extra, "approval_id": only_bob})
    assert r.status_code == 200, r.text[-600:]
    rows = d.system.sql("SELECT approver_id::text, cast_by::text FROM votes WHERE approval_id = %s",
                        aid)
    assert rows == [(alice, alice)], rows
    assert d.votes(only_bob) == 0


def test_pages_cannot_be_framed_cached_or_leak_their_link(d: Deployment) -> None:
    aid = d.pending()
    link = d.link(aid)
    c = d.client()
    pages = [c.get(link), c.get(d.page(aid))]
    signin = c.post(link, headers={"Origin": d.url})
    assert signin.status_code == 303
    pages.append(c.get(d.url + signin.headers["location"]))
    for page in pages:
        h = page.headers
        assert page.status_code == 200
        assert h["cache-control"] == "no-store" and h["referrer-policy"] == "no-referrer"
        assert h["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in h["content-security-policy"]
        assert "set-cookie" not in h  # no csrf cookie any more; pages never set a session
    assert signin.headers["cache-control"] == "no-store"
    assert signin.headers["referrer-policy"] == "no-referrer"
    assert signin.headers["location"].startswith("/status/")
    (cookie,) = signin.headers.get_list("set-cookie")
    name, _, rest = cookie.partition("=")
    token, *attrs = [x.strip() for x in rest.split(";")]
    assert name == SESSION and re.fullmatch(r"[A-Za-z0-9_-]{43}", token), cookie
    assert {"HttpOnly", "SameSite=Lax", "Path=/"} <= set(attrs), cookie
    assert any(a.startswith("Max-Age=") and int(a[8:]) > 0 for a in attrs), cookie
    assert csrf_of(pages[2])
    d.session_tokens.append(token)


# ---- one-time sign-in links ------------------------------------------------------


def test_a_signin_link_works_once(d: Deployment) -> None:
    aid = d.pending()
    link = d.link(aid)
    before = sessions_of(d, "alice")
    # Reading it (twice, from anywhere) shows whose link it is and spends nothing.
    for _ in range(2):
        g = d.client().get(link)
        assert g.status_code == 200 and "Continue as alice" in g.text
        assert "set-cookie" not in g.headers
    assert not link_used(d, link) and sessions_of(d, "alice") == before
    c, page = d.sign_in(link)
    assert link_used(d, link) and sessions_of(d, "alice") == before + 1
    for again in (c, d.client()):
        p = again.post(link, headers={"Origin": d.url})
        assert p.status_code == 403 and "set-cookie" not in p.headers, p.status_code
        assert "invalid_token" in p.text or "not valid" in p.text
        g = again.get(link)
        assert g.status_code == 403 and "Continue as" not in g.text
    assert sessions_of(d, "alice") == before + 1
    # Eight browsers press "Continue" on one link at the same moment: one session.
    link = d.link(aid, "bob")
    clients = [d.client() for _ in range(8)]
    barrier = threading.Barrier(len(clients))
    codes: list[int] = []

    def press(cl: httpx.Client) -> None:
        barrier.wait()
        codes.append(cl.post(link, headers={"Origin": d.url}).status_code)

    threads = [threading.Thread(target=press, args=(cl,)) for cl in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(codes) == [303] + [403] * 7, codes
    assert sum(1 for cl in clients if SESSION in cl.cookies) == 1
    d.session_tokens += [cl.cookies[SESSION] for cl in clients if SESSION in cl.cookies]
    assert sessions_of(d, "bob") >= 1
    spent = d.system.sql("SELECT count(*) FROM audit WHERE action = 'signin.link'")[0][0]
    assert spent >= 2


def test_guessed_and_tampered_signin_tokens_refused(d: Deployment) -> None:
    aid = d.pending()
    link = d.link(aid)
    token = token_of(link)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token), token
    page = d.page(aid)
    guesses = [b64(os.urandom(32)) for _ in range(20)] + ["A" * 43, "-" * 43, "_" * 43]
    for i, ch in enumerate(token):
        k = B64URL.index(ch)
        guesses += [token[:i] + B64URL[(k + 1) % 64] + token[i + 1:],
                    token[:i] + B64URL[k ^ 1] + token[i + 1:]]
    guesses += [token[:n] for n in (1, 20, 42)] + [token + x for x in ("A", "=", "/", token)]
    guesses += [token.upper(), token.lower(), token[::-1], token_hash(token).hex(),
                b64(token_hash(token)), token.replace("-", "+").replace("_", "/"),
                token_of(page), d.ids["alice"], "%00" + token]
    guesses = [g for g in guesses if g != token]
    c = d.client()
    sessions = d.system.sql("SELECT count(*) FROM sessions")[0][0]
    for g in guesses:
        r = c.get(url(d, g, "signin"))
        assert r.status_code in (400, 403, 404) and "Continue as" not in r.text, (g, r.status_code)
        p = c.post(url(d, g, "signin"), headers={"Origin": d.url})
        assert p.status_code in (400, 403, 404) and "set-cookie" not in p.headers, (g, p.status_code)
    assert SESSION not in c.cookies
    assert d.system.sql("SELECT count(*) FROM sessions")[0][0] == sessions
    # None of it touched the real link: it still signs alice in, once.
    assert not link_used(d, link)
    c, where = d.sign_in(link)
    assert where == page and signed_in_as(c, d) == "alice"


def test_expired_or_disabled_signin_links_refused(d: Deployment) -> None:
    s = d.system
    aid = d.pending()
    expired, fresh = d.link(aid), d.signin_link("dave")
    s.sql("UPDATE signin_links SET created_at = now() - interval '2 hours', "
          "expires_at = now() - interval '1 hour' WHERE token_hash = %s",
          token_hash(token_of(expired)))
    # A link that expired: it shows nothing and signs in nobody.
    for link in (expired,):
        g = d.client().get(link)
        assert g.status_code == 403 and "Continue as" not in g.text
        p = d.client().post(link, headers={"Origin": d.url})
        assert p.status_code == 403 and "set-cookie" not in p.headers
    # The link's approver disabled after it was sent: it signs in nobody, and a session
    # they already had ends too.
    cd, _ = d.session("dave")
    assert signed_in_as(cd, d) == "dave"
    s.sql("UPDATE approvers SET disabled_at = now() WHERE name = 'dave'")
    try:
        g = d.client().get(fresh)
        assert g.status_code == 403 and "Continue as" not in g.text
        p = d.client().post(fresh, headers={"Origin": d.url})
        assert p.status_code == 403 and "set-cookie" not in p.headers
        assert signed_in_as(cd, d) is None
        assert not link_used(d, fresh)
    finally:
        s.sql("UPDATE approvers SET disabled_at = NULL WHERE name = 'dave'")
    assert d.votes(aid) == 0


def test_a_link_sent_to_alice_signs_in_alice_never_bob(d: Deployment) -> None:
    """Whoever presses the button, the link's approver is who signs in: bob, signed in
    as himself, spending alice's link becomes alice (his own session ends) and a vote
    there is alice's; carol's link does not make bob's browser an approver's."""
    aid = d.pending(path="/v1/refunds/forwarded")
    cb, _ = d.session("bob")
    bobs = cb.cookies[SESSION]
    assert signed_in_as(cb, d) == "bob"
    cb, page = d.sign_in(d.link(aid, "alice"), cb)
    now = cb.cookies[SESSION]
    assert now != bobs and session_owner(d, now) == "alice"
    assert signed_in_as(cb, d) == "alice"
    assert signed_in_as(d.browser(bobs), d) is None  # bob's session in that browser ended
    assert d.decide(cb, page).status_code == 200
    rows = d.system.sql("SELECT a.name, c.name FROM votes v JOIN approvers a ON a.id = v.approver_id "
                        "JOIN approvers c ON c.id = v.cast_by WHERE v.approval_id = %s", aid)
    assert rows == [("alice", "alice")], rows
    # Carol's link (she approves nothing here), aimed at a page bob could decide.
    other = d.pending(path="/v1/refunds/forwarded2")
    cb2, _ = d.session("bob")
    cb2, page = d.sign_in(d.signin_link("carol", "/status/" + token_of(d.page(other))), cb2)
    assert signed_in_as(cb2, d) == "carol"
    shown = cb2.get(page)
    assert decision_form(shown) is None and "who is not an approver" in shown.text
    p = cb2.post(page, data={"decision": "approve", "csrf": session_csrf(shown)},
                 headers={"Origin": d.url})
    assert p.status_code == 403
    assert d.votes(other) == 0


def test_next_is_always_a_local_path(d: Deployment) -> None:
    for bad in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "evil",
                "/ok\r\nSet-Cookie: x=1", "/x y", "http:/x", ""):
        r = d.system.cli("approver", "signin-link", "alice", "--next", bad, check=False)
        assert r.returncode != 0, (bad, r.stdout)
    c, where = d.sign_in(d.signin_link("alice", "/inbox"))
    assert where == d.url + "/inbox"
    shown = c.get(where)
    assert shown.status_code == 200 and "Waiting for you" in shown.text
    for q in ("//evil.example", "https://evil.example", "/\\evil.example"):
        g = d.client().get(f"{d.url}/signin", params={"next": q})
        assert g.status_code == 200 and "evil.example" not in g.text
    for bad in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "/"):
        r = d.http.post("/v1/admin/approvers/alice/signin-link", headers=d.admin(),
                        json={"next": bad})
        assert r.status_code in (400, 422) and "/signin/" not in r.text, (bad, r.status_code)


def test_the_inbox_shows_a_person_only_their_own_approvals(d: Deployment) -> None:
    mine = d.pending(path="/v1/refunds/inbox-mine")              # alice and bob
    bobs = d.pending(grant="onlybob", path="/v1/refunds/inbox-bob")
    c, inbox = d.session("alice", "/inbox")
    shown = c.get(inbox).text
    assert token_of(d.page(mine)) in shown and token_of(d.page(bobs)) not in shown
    cc, inbox = d.session("carol", "/inbox")
    shown = cc.get(inbox).text
    assert "Nothing is waiting" in shown and "/status/" not in shown
    g = d.client().get(inbox)
    assert g.status_code == 303 and g.headers["location"].startswith("/signin")
    assert "/status/" not in g.text


# ---- sessions --------------------------------------------------------------------


def test_session_fixation_refused(d: Deployment) -> None:
    aid = d.pending()
    page = d.page(aid)
    # A cookie planted before sign-in (by a sibling subdomain, a shared computer):
    # never a session, and replaced -- not adopted -- at sign-in.
    planted = b64(os.urandom(32))
    c = d.browser(planted)
    shown = c.get(page)
    assert "Sign in to decide" in shown.text and decision_form(shown) is None
    assert c.post(page, data={"decision": "approve", "csrf": "x"},
                  headers={"Origin": d.url}).status_code == 401
    signin = c.post(d.link(aid), headers={"Origin": d.url})
    assert signin.status_code == 303
    fresh = re.match(rf"{SESSION}=([^;]+);", signin.headers["set-cookie"])
    assert fresh and fresh.group(1) != planted
    d.session_tokens.append(fresh.group(1))
    assert session_owner(d, planted) is None
    assert signed_in_as(d.browser(planted), d) is None
    # The attacker plants their own live session (carol) in alice's browser: alice's
    # sign-in gets a new id, and carol's session (which the attacker holds) is ended,
    # so nobody shares alice's session.
    cc, _ = d.session("carol")
    carols = cc.cookies[SESSION]
    victim = d.browser(carols)
    victim, _ = d.sign_in(d.link(aid), victim)
    alices = victim.cookies[SESSION]
    assert alices != carols and session_owner(d, alices) == "alice"
    assert signed_in_as(cc, d) is None and signed_in_as(victim, d) == "alice"
    # Signing in again in the same browser: a new id again; the old one is dead.
    victim, _ = d.sign_in(d.signin_link("alice"), victim)
    again = victim.cookies[SESSION]
    assert again != alices
    assert signed_in_as(d.browser(alices), d) is None and signed_in_as(victim, d) == "alice"
    assert d.votes(aid) == 0


def test_sessions_end_on_signout_revocation_and_timeouts(d: Deployment) -> None:
    s = d.system
    aid = d.pending()
    page = d.page(aid)
    # Sign-out (from the bar, with the session's csrf) ends the session on the server.
    c, _ = d.session("alice")
    token = c.cookies[SESSION]
    shown = c.get(page)
    out = c.post(f"{d.url}/signout", data={"csrf": session_csrf(shown)}, headers={"Origin": d.url})
    assert out.status_code == 303 and "Max-Age=0" in out.headers["set-cookie"]
    replay = d.browser(token)
    assert signed_in_as(replay, d) is None
    assert replay.post(page, data={"decision": "approve", "csrf": session_csrf(shown)},
                       headers={"Origin": d.url}).status_code == 401
    # A sign-out without the csrf, or from another site, ends nothing.
    c, _ = d.session("alice")
    shown = c.get(page)
    assert c.post(f"{d.url}/signout", data={}, headers={"Origin": d.url}).status_code == 403
    assert c.post(f"{d.url}/signout", data={"csrf": session_csrf(shown)},
                  headers={"Origin": "https://evil.example"}).status_code == 403
    assert signed_in_as(c, d) == "alice"
    # The operator signs alice out everywhere.
    c2, _ = d.session("alice")
    s.cli("approver", "revoke-sessions", "alice")
    assert signed_in_as(c, d) is None and signed_in_as(c2, d) is None
    assert c.post(page, data={"decision": "approve", "csrf": session_csrf(shown)},
                  headers={"Origin": d.url}).status_code == 401
    # Idle too long, or past the absolute lifetime.
    for update in ("last_seen_at = now() - interval '2 hours'",
                   "created_at = now() - interval '2 days', expires_at = now() - interval '1 second'"):
        c, _ = d.session("alice")
        assert signed_in_as(c, d) == "alice"
        s.sql(f"UPDATE sessions SET {update} WHERE token_hash = %s", token_hash(c.cookies[SESSION]))
        assert signed_in_as(c, d) is None, update
        p = c.post(page, data={"decision": "approve", "csrf": "x"}, headers={"Origin": d.url})
        assert p.status_code == 401
    assert d.votes(aid) == 0
    listed = s.cli("approver", "sessions", "alice").stdout
    for t in d.session_tokens:
        assert t not in listed


# ---- tokens in the wrong place -----------------------------------------------------


def test_tokens_are_not_interchangeable_between_pages(d: Deployment) -> None:
    s = d.system
    for i in range(2):
        r = d.submit(path=f"/v1/refunds/b{i}", batch_id="sb1", idempotency_key=f"sb1-{i}")
        assert r.status_code == 202, r.text
    sealed = d.http.post("/v1/batches/sb1/seal", headers=d.auth(), json={"count": 2})
    assert sealed.status_code == 200 and sealed.json()["status"] == "decidable", sealed.text
    bc, batch_page = d.sign_in(d.batch_link("sb1"))
    batch_tok = token_of(batch_page)
    aid = d.pending(path="/v1/refunds/single")
    status_tok = token_of(d.page(aid))
    signin_tok = token_of(d.link(aid))
    c, _ = d.session("alice")
    csrf = session_csrf(c.get(d.page(aid)))
    for route, tok in (("status", batch_tok), ("status", signin_tok),
                       ("batch", status_tok), ("batch", signin_tok),
                       ("signin", status_tok), ("signin", batch_tok)):
        g = c.get(url(d, tok, route))
        assert g.status_code in (403, 404) and decision_form(g) is None, (route, g.status_code)
        assert "Continue as" not in g.text
        p = c.post(url(d, tok, route), data={"decision": "approve", "csrf": csrf},
                   headers={"Origin": d.url})
        assert p.status_code in (403, 404), (route, p.status_code)
        if route == "batch":
            assert c.get(url(d, tok, "batch") + "/items.csv").status_code == 403
    # The standing decision links of before are gone, whatever they carry.
    for route in ("approve", "inbox"):
        for tok in (status_tok, batch_tok, signin_tok, "A" * 119):
            assert c.get(url(d, tok, route)).status_code == 404
            assert c.post(url(d, tok, route), data={"decision": "approve", "csrf": csrf},
                          headers={"Origin": d.url}).status_code in (404, 405)
    assert d.system.cli("approver", "inbox-link", "alice", check=False).returncode != 0
    # The right tokens on the right pages do work (so the refusals above mean something).
    assert c.get(url(d, batch_tok, "batch")).status_code == 200
    assert c.get(url(d, status_tok, "status")).status_code == 200
    assert d.client().get(url(d, signin_tok, "signin")).status_code == 200
    assert d.votes(aid) == 0 and d.status(aid) == "pending"
    assert s.sql("SELECT count(*) FROM batch_votes")[0][0] == 0
    assert decision_form(bc.get(batch_page))  # alice may still decide the batch


def strings_in(value: object) -> list[str]:
    """Every string (and number, as text) anywhere in a JSON value."""
    if isinstance(value, dict):
        return [x for k, v in value.items() for x in [str(k), *strings_in(v)]]
    if isinstance(value, list):
        return [x for v in value for x in strings_in(v)]
    return [] if value is None else [str(value)]


def test_a_reader_of_the_events_topic_cannot_vote(d: Deployment) -> None:
    """Everything an approval.pending (or batch.decidable) event holds -- its
    approval_url, the approvers' ids, ids, digests -- tried as a sign-in token, a session
    cookie and a form token, without a session and signed in as a non-approver."""
    s = d.system
    for i in range(2):
        assert d.submit(path=f"/v1/refunds/ev{i}", batch_id="evb",
                        idempotency_key=f"evb-{i}").status_code == 202
    assert d.http.post("/v1/batches/evb/seal", headers=d.auth(),
                       json={"count": 2}).status_code == 200
    aid = d.pending(path="/v1/refunds/events")
    found = {"pending": d.event("approval.pending", approval_id=aid),
             "decidable": d.event("batch.decidable", batch_id="evb")}
    pages = [d.fix(str(e["approval_url"])) for e in found.values()]
    assert pages[0] == d.page(aid) and "/batch/" in pages[1]
    loot = sorted({x for e in found.values() for x in strings_in(e)} |
                  {token_of(p) for p in pages})
    assert d.ids["alice"] in loot and d.ids["bob"] in loot
    sessions = s.sql("SELECT count(*) FROM sessions")[0][0]
    loot = [x for x in loot if x.strip() and "/" not in x]
    for x in loot:  # as a sign-in link
        g = d.client().get(url(d, x, "signin"))
        assert g.status_code in (400, 403, 404) and "Continue as" not in g.text, x
        p = d.client().post(url(d, x, "signin"), headers={"Origin": d.url})
        assert p.status_code in (400, 403, 404) and "set-cookie" not in p.headers, x
    carol, _ = d.session("carol")
    for page in pages:  # as a session, as a form token, alone or signed in
        shown = d.client().get(page)
        assert shown.status_code == 200 and decision_form(shown) is None
        carols = session_csrf(carol.get(page))
        for x in loot:
            form = {"decision": "approve", "csrf": x, "digest": x, "approver": x}
            assert d.browser(x).post(page, data=form,
                                     headers={"Origin": d.url}).status_code == 401, x
            assert carol.post(page, data={**form, "csrf": carols},
                              headers={"Origin": d.url}).status_code == 403, x
    # Asking for sign-in links sends them to the approvers' own channels, not to the asker.
    r = d.client().post(pages[0] + "/signin-links", headers={"Origin": d.url})
    assert r.status_code in (202, 409) and "/signin/" not in r.text
    assert "set-cookie" not in r.headers
    assert s.sql("SELECT count(*) FROM sessions")[0][0] == sessions + 1  # carol's own
    assert d.votes(aid) == 0 and d.status(aid) == "pending"
    assert s.sql("SELECT count(*) FROM batch_votes")[0][0] == 0
