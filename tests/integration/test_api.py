"""The HTTP API and the approval pages, against the real api, worker and scheduler."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from approver import Approver, link, vote
from harness import System
from services import REPO_ROOT, scaled, wait_for

OPENAPI = json.loads((REPO_ROOT / "api" / "openapi.json").read_text())


class Api:
    """The running system with an api process and an agent key."""

    def __init__(self, system: System, **setup: Any) -> None:
        self.system = system
        self.ids = system.setup(**setup)
        system.worker()
        system.scheduler()
        self.proc = system.api(CS_ADMIN_TOKEN="admin-secret-token")
        self.url: str = self.proc.url  # type: ignore[attr-defined]
        self.key = system.api_key()
        self.http = httpx.Client(base_url=self.url, timeout=scaled(30))

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}

    def submit(self, amount: int = 500, key: str | None = None, **extra: Any) -> httpx.Response:
        body = {"method": "POST", "url": f"{self.system.stub.url}/v1/refunds",
                "grant_id": "stripe", "json": {"amount": amount}, "reason": "ticket #4312"}
        body.update(extra)
        return self.http.post("/v1/proxy", json=body, headers=self.auth(key))

    def pending(self, **extra: Any) -> str:
        r = self.submit(**extra)
        assert r.status_code == 202, r.text
        return str(r.json()["approval_id"])

    def signed_in(self, approver: str, approval_id: str) -> tuple[Approver, str]:
        """A browser of `approver`, signed in with their slot's one-time link; its page."""
        person = Approver()
        return person, person.sign_in(link(self.system, approval_id, approver)["url"])


def error_code(r: httpx.Response) -> str:
    return str(r.json()["error"]["code"])


def link_key(system: System, purpose: bytes = b"countersign/status-link/v1") -> bytes:
    return hmac.new(base64.b64decode(system.master_key), purpose, hashlib.sha256).digest()


NIL = "00000000-0000-0000-0000-000000000000"


def sign(key: bytes, approval: str, expires_ms: int, approver: str = NIL, voter: str = NIL) -> str:
    """An approval_url token (cs_link.h): the page of `approval` until expires_ms."""
    raw = (b"\x01" + uuid.UUID(approval).bytes + uuid.UUID(approver).bytes
           + uuid.UUID(voter).bytes + expires_ms.to_bytes(8, "big"))
    raw += hmac.new(key, raw, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.fixture
def api(system: System) -> Api:
    return Api(system)


# ---- agent API ----------------------------------------------------------


def test_submit_pending_approve_through_the_page_and_wait(api: Api) -> None:
    r = api.submit()
    assert r.status_code == 202
    p = r.json()
    assert p["type"] == "pending_approval" and p["status"] == "pending"
    assert p["approval_url"].startswith(f"{api.url}/status/")
    st = api.http.get(f"/v1/approvals/{p['approval_id']}", headers=api.auth()).json()
    assert st["status"] == "pending" and st["is_terminal"] is False
    assert st["approvals_received"] == 0 and st["approvals_required"] == 1
    assert st["expires_at"] == p["expires_at"]
    status_page = httpx.get(p["approval_url"])
    assert status_page.status_code == 200 and 'name="csrf"' not in status_page.text
    assert "Sign in to decide" in status_page.text

    waited: dict[str, Any] = {}

    def wait() -> None:
        t0 = time.monotonic()
        w = api.http.get(f"/v1/approvals/{p['approval_id']}/result?wait=30", headers=api.auth())
        waited.update(status=w.status_code, body=w.json(), seconds=time.monotonic() - t0)

    t = threading.Thread(target=wait)
    t.start()
    time.sleep(scaled(0.5))  # the waiter is suspended on the server now
    v = vote(api.system, p["approval_id"], "alice", "approve", "refund is legitimate")
    assert v.status_code == 200 and "approved" in v.text
    t.join(scaled(30))
    assert waited["status"] == 200, waited
    assert waited["seconds"] < 10
    res = waited["body"]
    assert res["type"] == "result" and res["status_code"] == 200
    assert json.loads(base64.b64decode(res["body_b64"]))["path"] == "/v1/refunds"
    (call,) = api.system.stub.requests("/v1/refunds")
    assert call.headers["authorization"] == f"Bearer {api.system.secret}"


def test_no_approval_needed_returns_result_inline(api: Api) -> None:
    api.system.stub.program("/v1/refunds", status=201, body=b'{"id":"re_1"}')
    r = api.submit(amount=50)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["type"] == "result" and body["status_code"] == 201
    assert base64.b64decode(body["body_b64"]) == b'{"id":"re_1"}'
    assert body["body_truncated"] is False


def test_inline_failure_is_execution_failed(api: Api) -> None:
    api.system.stub.program("/v1/refunds", close_without_response=True)
    r = api.submit(amount=50)
    assert r.status_code == 502 and error_code(r) == "execution_failed"
    assert r.json()["error"]["details"]["error_code"] == "outcome_unknown"


def test_denied_expired_cancelled_outcomes(system: System) -> None:
    api = Api(system, window=3)
    denied = api.pending()
    vote(system, denied, "bob", "deny", "wrong customer")
    r = api.http.get(f"/v1/approvals/{denied}/result?wait=5", headers=api.auth())
    assert r.status_code == 409 and error_code(r) == "denied"
    assert r.json()["error"]["details"]["reason"] == "wrong customer"

    cancelled = api.pending()
    c = api.http.post(f"/v1/approvals/{cancelled}/cancel", headers=api.auth(),
                      json={"reason": "customer withdrew"})
    assert c.status_code == 200 and c.json()["status"] == "cancelled"
    again = api.http.post(f"/v1/approvals/{cancelled}/cancel", headers=api.auth())
    assert again.status_code == 409 and error_code(again) == "not_pending"
    r = api.http.get(f"/v1/approvals/{cancelled}/result", headers=api.auth())
    assert r.status_code == 409 and error_code(r) == "cancelled"

    expired = api.pending()
    r = api.http.get(f"/v1/approvals/{expired}/result?wait=15", headers=api.auth())
    assert r.status_code == 410 and error_code(r) == "expired"


def test_idempotency_key_returns_the_first_answer(api: Api) -> None:
    first = api.submit(idempotency_key="refund-77")
    again = api.submit(idempotency_key="refund-77")
    assert first.status_code == again.status_code == 202
    assert first.json()["approval_id"] == again.json()["approval_id"]
    other = api.submit(idempotency_key="refund-77", amount=999)
    assert other.status_code == 409 and error_code(other) == "conflict"
    inline = api.submit(amount=5, idempotency_key="small-1")
    repeat = api.submit(amount=5, idempotency_key="small-1")
    assert inline.status_code == repeat.status_code == 200
    assert api.system.stub.count() == 1


def test_input_errors(api: Api) -> None:
    h = api.auth()
    cases: list[tuple[Any, int, str]] = [
        (b"{not json", 400, "malformed_json"),
        (b"[1,2]", 400, "invalid_request"),
        (b'{"method":"POST","grant_id":"stripe"}', 400, "invalid_request"),
        (b'{"method":7,"url":"https://x","grant_id":"stripe"}', 400, "invalid_request"),
        (b'{"method":"FETCH","url":"https://x","grant_id":"stripe"}', 400, "invalid_request"),
        (b'{"method":"GET","url":"ftp://x/","grant_id":"stripe"}', 400, "invalid_url"),
        (b'{"method":"GET","url":"https://u:p@x/","grant_id":"stripe"}', 400, "invalid_url"),
        (b'{"method":"GET","url":"https://x/","grant_id":"stripe","extra":1}', 400,
         "invalid_request"),
    ]
    for body, status, code in cases:
        r = api.http.post("/v1/proxy", content=body, headers={**h, "Content-Type": "application/json"})
        assert (r.status_code, error_code(r)) == (status, code), (body, r.text)
        assert r.json()["error"]["message"]
    big = api.http.post("/v1/proxy", content=b"x" * (2 << 20), headers=h)
    assert big.status_code == 413 and error_code(big) == "too_large"
    for header in ("Authorization", "cookie", "Proxy-Authorization", "X-API-KEY", "Host"):
        r = api.submit(extra_headers={header: "x"})
        assert r.status_code == 400 and error_code(r) == "forbidden_header", header
    r = api.submit(grant_id="nope")
    assert r.status_code == 404 and error_code(r) == "unknown_grant"
    r = api.submit(url="https://api.stripe.com/v1/refunds")
    assert r.status_code == 403 and error_code(r) == "host_not_allowed"
    r = api.submit(json={"currency": "eur"})
    assert r.status_code == 422 and error_code(r) == "policy_unevaluable"
    r = api.http.get("/v1/approvals/x/result?wait=61", headers=h)
    assert r.status_code == 400
    assert api.http.get("/v1/nothing").status_code == 404
    assert api.http.delete("/v1/proxy").status_code == 405
    assert api.system.stub.count() == 0
    # Every 405 says which methods the path takes (RFC 9110 requires Allow).
    admin = {"Authorization": "Bearer admin-secret-token"}
    for method, path, allow in (("DELETE", "/v1/proxy", "POST"),
                                ("TRACE", "/v1/approvals/x", "GET, HEAD"),
                                ("PUT", "/v1/approvals/x/cancel", "POST"),
                                ("PATCH", "/status/x", "GET, HEAD, POST"),
                                ("DELETE", "/v1/admin/agents", "GET, HEAD, POST"),
                                ("POST", "/v1/admin/grants/x", "PUT")):
        r = api.http.request(method, path, headers={**h, **admin} if "admin" in path else h)
        assert r.status_code == 405 and r.headers.get("allow") == allow, \
            (method, path, r.headers.get("allow"))


def test_authentication_and_isolation(api: Api) -> None:
    s = api.system
    assert api.submit(key="cs_wrong").status_code == 401
    assert api.http.post("/v1/proxy", json={}).status_code == 401
    r = api.http.post("/v1/proxy", json={}, headers={"Authorization": "Basic abc"})
    assert r.status_code == 401 and error_code(r) == "unauthenticated"
    x = api.http.post("/v1/proxy", headers={"X-Api-Key": api.key},
                      json={"method": "POST", "url": f"{s.stub.url}/v1/refunds",
                            "grant_id": "stripe", "json": {"amount": 1}})
    assert x.status_code == 200
    mine = api.pending()
    # Another agent: its own key, its own approvals only, and not bound to the grant.
    s.cli("agent", "create", "bot2")
    other = s.api_key("bot2")
    r = api.http.get(f"/v1/approvals/{mine}", headers=api.auth(other))
    assert r.status_code == 404
    assert api.http.get(f"/v1/approvals/{mine}/result", headers=api.auth(other)).status_code == 404
    assert api.http.post(f"/v1/approvals/{mine}/cancel", headers=api.auth(other)).status_code == 404
    r = api.submit(key=other)
    assert r.status_code == 403 and error_code(r) == "forbidden"
    # A revoked key stops working at once.
    prefix = api.key[:11]
    s.cli("key", "revoke", prefix)
    r = api.http.get(f"/v1/approvals/{mine}", headers=api.auth())
    assert r.status_code == 401


# ---- approval pages and their security -----------------------------------


def test_a_get_never_decides(api: Api) -> None:
    aid = api.pending()
    signin = link(api.system, aid, "alice")["url"]
    for _ in range(5):  # the sign-in link: "Continue as alice", nothing spent
        page = httpx.get(signin)
        assert page.status_code == 200 and "Continue as alice" in page.text
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["referrer-policy"] == "no-referrer"
        httpx.head(signin)
    alice, url = api.signed_in("alice", aid)
    with alice:
        for _ in range(5):
            page = alice.http.get(url)
            assert page.status_code == 200
            assert "ticket #4312" in page.text and '<form method="post" class="card">' in page.text
            assert page.headers["cache-control"] == "no-store"
            assert page.headers["referrer-policy"] == "no-referrer"
            assert "default-src 'none'" in page.headers["content-security-policy"]
        alice.http.head(url)
    assert api.system.approval_by_id(aid)["status"] == "pending"
    assert api.system.sql("SELECT count(*) FROM votes")[0][0] == 0
    assert api.system.sql("SELECT count(*) FROM sessions")[0][0] == 1


def test_cross_site_and_forged_posts_refused(api: Api) -> None:
    aid = api.pending()
    # A sign-in POST from another site neither signs in nor spends the link.
    signin = link(api.system, aid, "alice")["url"]
    with Approver() as victim:
        for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
            r = victim.http.post(signin, headers=headers)
            assert r.status_code == 403 and victim.session is None, r.text
    assert api.system.sql("SELECT count(*) FROM sessions")[0][0] == 0
    alice, url = api.signed_in("alice", aid)
    form = alice.form(url)
    # From another origin, with a valid form token: refused.
    r = alice.post(url, {**form, "decision": "approve"}, origin="https://evil.example")
    assert r.status_code == 403 and "reload" in r.text.lower()
    # Without the session cookie: refused (a form token alone is nothing).
    r = httpx.post(url, data={**form, "decision": "approve"}, headers={"Origin": api.url})
    assert r.status_code == 401
    # A token of another session (bob's): refused.
    bob, bob_url = api.signed_in("bob", aid)
    with bob:
        r = alice.post(url, {**bob.form(bob_url), "decision": "approve"})
    assert r.status_code == 403 and "reload" in r.text.lower()
    r = alice.post(url, {"decision": "approve", "csrf": "A" * 43})
    assert r.status_code == 403
    # A browser's own cross-site label.
    r = alice.post(url, {**form, "decision": "approve"}, origin=None,
                   headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    alice.close()
    assert api.system.approval_by_id(aid)["status"] == "pending"


def test_forged_tampered_expired_and_foreign_tokens(system: System) -> None:
    api = Api(system, window=2)
    aid = api.pending()
    alice, url = api.signed_in("alice", aid)
    form = alice.form(url)
    base, token = url.rsplit("/", 1)
    forged = f"{base}/" + sign(b"k" * 32, aid, 2**50)
    tampered = url[:-5] + ("A" if url[-5] != "A" else "B") + url[-4:]
    gone = f"{base}/" + sign(link_key(system), aid, int(time.time() * 1000) - 1000)
    for bad in (forged, tampered, url + "x", base + "/short", gone):
        for r in (alice.http.get(bad), alice.post(bad, {**form, "decision": "approve"})):
            assert r.status_code == 403 and "not valid" in r.text, bad
    assert "expired" in alice.http.get(gone).text
    # The approval_url of another approval, its id swapped in: the signature covers it.
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[1:17] = uuid.UUID(api.pending()).bytes
    swapped = f"{base}/" + base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    assert alice.post(swapped, {**form, "decision": "approve"}).status_code == 403
    # A signed-in person who is not an approver, on a genuine approval_url.
    system.cli("approver", "create", "dave")
    with Approver() as dave:
        page = dave.sign_in(system.cli_json("approver", "signin-link", "dave", "--next",
                                            url[len(api.url):])["url"])
        assert page == url and "who is not an approver" in dave.page(url)
        r = dave.post(url, {"csrf": dave.session_csrf(url), "decision": "approve"})
        assert r.status_code == 403 and "not an approver" in r.text
    # After the window the page still shows the status, and nobody can vote.
    wait_for(lambda: "<b>expired</b>" in alice.page(url), 10, what="the page to say expired")
    assert "Nothing more to decide" in alice.page(url)
    late = alice.post(url, {**form, "decision": "approve"})
    assert late.status_code == 410 and "This approval has expired" in late.text, late.text
    alice.close()
    assert system.sql("SELECT count(*) FROM votes")[0][0] == 0


def test_double_late_and_self_votes(system: System) -> None:
    api = Api(system, approvers=("alice", "bob", "mallory"), quorum=2,
              operator_of_agent=("mallory",))
    aid = api.pending()
    assert vote(system, aid, "alice", "approve").status_code == 200
    twice = vote(system, aid, "alice", "approve")
    assert twice.status_code == 409 and "already voted" in twice.text
    self_vote = vote(system, aid, "mallory", "approve")
    assert self_vote.status_code == 403 and "own request" in self_vote.text
    assert api.system.approval_by_id(aid)["status"] == "pending"
    # Alice opens her page again and waits; meanwhile Bob's vote approves it.
    alice, url = api.signed_in("alice", aid)
    form = alice.form(url)
    assert vote(system, aid, "bob", "approve").status_code == 200
    late = alice.post(url, {**form, "decision": "deny"})
    assert late.status_code == 409 and "Already decided" in late.text
    alice.close()
    api.system.wait_status(api.system.approval_by_id(aid)["request_id"], "executed")
    refused = [r[0] for r in system.sql("SELECT detail->>'code' FROM audit "
                                        "WHERE action = 'vote.refused' ORDER BY id")]
    assert refused == ["already_voted", "self_approval", "not_pending"]


def test_inbox_lists_what_waits(api: Api) -> None:
    a1, a2 = api.pending(), api.pending()
    r = api.http.get("/inbox")
    assert r.status_code == 303 and r.headers["location"] == "/signin?next=/inbox"
    signin = api.system.cli_json("approver", "signin-link", "alice")
    assert signin["approver"] == "alice"
    with Approver() as alice:
        inbox = alice.sign_in(signin["url"])
        assert inbox == f"{api.url}/inbox"
        assert alice.page(inbox).count('href="/status/') == 2
        vote(api.system, a1, "alice", "approve")
        page = alice.page(inbox)
        assert page.count('href="/status/') == 1
        href = re.search(r'href="(/status/[^"]+)"', page).group(1)  # type: ignore[union-attr]
        assert alice.decide(api.url + href, "deny", "no").status_code == 200
    assert api.system.approval_by_id(a2)["status"] == "denied"


# ---- operator API and operations ---------------------------------------------


def test_admin_api(api: Api) -> None:
    admin = {"Authorization": "Bearer admin-secret-token"}
    assert api.http.get("/v1/admin/agents").status_code == 401
    assert api.http.get("/v1/admin/agents", headers={"Authorization": "Bearer no"}).status_code == 401
    r = api.http.post("/v1/admin/agents", json={"name": "ops-bot"}, headers=admin)
    assert r.status_code == 201
    key = api.http.post("/v1/admin/agents/ops-bot/keys", json={}, headers=admin).json()["api_key"]
    assert api.http.post("/v1/admin/approvers", json={"name": "olga", "email": "olga@example.com"},
                         headers=admin).status_code == 201
    r = api.http.put("/v1/admin/policies/ops", headers=admin,
                     json={"mode": "always", "quorum": 1, "approvers": ["olga"], "window_seconds": 600})
    assert r.status_code == 201, r.text
    r = api.http.put("/v1/admin/grants/ops-grant", headers=admin,
                     json={"secret": "sk_ops_1", "policy_id": "ops", "allowed_bases": [api.system.stub.url],
                           "agents": ["ops-bot"], "inject": "header", "inject_header": "X-Ops-Key"})
    assert r.status_code == 201, r.text
    grants = api.http.get("/v1/admin/grants", headers=admin).json()["items"]
    assert "sk_ops_1" not in json.dumps(grants)
    r = api.submit(key=key, grant_id="ops-grant")
    assert r.status_code == 202
    aid = r.json()["approval_id"]
    d = api.http.post(f"/v1/admin/approvals/{aid}/decide", headers=admin,
                      json={"approver": "olga", "decision": "approve", "reason": "ok"})
    assert d.status_code == 200, d.text
    assert d.json()["vote"] == {"status": "approved", "approvals": 1, "quorum": 1}
    assert d.json()["status"] in ("approved", "executing", "succeeded")  # a worker may be quick
    r = api.http.get(f"/v1/approvals/{aid}/result?wait=10", headers=api.auth(key))
    assert r.status_code == 200
    assert api.system.stub.requests()[-1].headers["x-ops-key"] == "sk_ops_1"
    bad = api.http.put("/v1/admin/policies/zero", headers=admin,
                       json={"mode": "always", "quorum": 2, "approvers": ["olga"]})
    assert bad.status_code == 422 and error_code(bad) == "policy_unevaluable"
    v = api.http.get("/v1/admin/audit/verify", headers=admin).json()
    assert v["ok"] is True


def test_health_ready_metrics(api: Api) -> None:
    assert api.http.get("/healthz").json() == {"status": "ok"}
    assert api.http.get("/readyz").json()["status"] == "ready"
    api.pending()
    m = api.http.get("/metrics").text
    assert 'countersign_http_requests_total{route="proxy",code="2xx"} 1' in m
    assert 'countersign_approvals{status="pending"} 1' in m
    assert "countersign_longpoll_waiters 0" in m
    assert "countersign_http_request_duration_seconds_bucket" in m


def test_openapi_matches_the_routes(api: Api) -> None:
    """Every documented route is served, and every served route is documented."""
    served = re.findall(r'\{"(GET|POST)", "([^"]+)", \w+, "\w+"(?:, (?:true|false))+\}',
                        (REPO_ROOT / "api" / "router.c").read_text())
    assert len(served) >= 10
    admin = re.findall(r'\{"(GET|POST|PUT)", "([^"]+)", \w+, (?:\w+|NULL)\}',
                       (REPO_ROOT / "api" / "admin.c").read_text())
    assert len(admin) >= 15
    served += [(m, "/v1/admin" + p) for m, p in admin]
    documented = {(m.upper(), re.sub(r"\{[^}]+\}", "{}", p))
                  for p, ops in OPENAPI["paths"].items() for m in ops}
    assert set(served) == documented, (set(served) ^ documented)
    assert api.http.get("/openapi.json").json() == OPENAPI
    for method, path in documented:
        url = path.replace("{}", str(uuid.uuid4()))
        auth = {"Authorization": "Bearer admin-secret-token"} if "/admin/" in path else api.auth()
        r = api.http.request(method, url, headers=auth, json={} if method != "GET" else None)
        assert r.status_code not in (405,), (method, path)
        if r.headers.get("content-type", "").startswith("application/json") and r.status_code == 404:
            assert r.json()["error"]["message"] not in ("no such route", "no such admin route"), \
                (method, path)


def test_many_waiters_are_woken(api: Api) -> None:
    """Long-poll waiters cost no thread: 200 of them on 4 HTTP threads all wake."""
    ids = [api.pending() for _ in range(20)]
    results: list[int] = []
    lock = threading.Lock()

    def wait(aid: str) -> None:
        r = httpx.get(f"{api.url}/v1/approvals/{aid}/result?wait=30", headers=api.auth(),
                      timeout=scaled(40))
        with lock:
            results.append(r.status_code)

    threads = [threading.Thread(target=wait, args=(ids[i % 20],)) for i in range(200)]
    for t in threads:
        t.start()
    wait_for(lambda: "countersign_longpoll_waiters 200" in api.http.get("/metrics").text, 20,
             what="200 suspended waiters")
    for aid in ids:
        api.system.cli("approval", "approve", aid, "--as", "alice")
    for t in threads:
        t.join(scaled(40))
    assert results.count(200) == 200
