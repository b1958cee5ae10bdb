"""Security invariant 6: an agent sees and uses only its own approvals and its bound
grants. Another agent's approval id is 404 on every agent route; a revoked key, a key
of a disabled agent and a wrong key are 401; an agent not bound to a grant is 403 (and
dead-lettered over Kafka); a key does only what its scopes say; the operator API takes
only the admin token."""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from collections.abc import Iterator

import httpx
import pytest

from attack_kit import ADMIN_TOKEN, Deployment, deployment, error_code
from services import Kafka, Postgres


@pytest.fixture(scope="module")
def d(request: pytest.FixtureRequest, pg: Postgres, kafka: Kafka) -> Iterator[Deployment]:
    with deployment(request, pg, kafka, "sec_isolation") as d:
        s = d.system
        d.ids = s.setup()
        s.cli("agent", "create", "bot2")
        d.start_api()
        s.worker()
        d.key = d.new_key()
        yield d


def agent_routes(aid: str, batch: str) -> list[tuple[str, str, dict[str, object] | None]]:
    return [("GET", f"/v1/approvals/{aid}", None), ("GET", f"/v1/approvals/{aid}/result", None),
            ("GET", f"/v1/approvals/{aid}/result?wait=1", None),
            ("POST", f"/v1/approvals/{aid}/cancel", {"reason": "not mine"}),
            ("GET", f"/v1/batches/{batch}", None)]


def call(d: Deployment, method: str, path: str, body: object,
         headers: dict[str, str]) -> httpx.Response:
    return d.http.request(method, path, json=body, headers=headers)


def test_another_agents_approval_is_not_found_on_every_route(d: Deployment) -> None:
    mine = d.pending(path="/v1/refunds/mine")
    for i in range(2):
        assert d.submit(path=f"/v1/refunds/iso{i}", batch_id="iso",
                        idempotency_key=f"iso{i}").status_code == 202
    sealed = d.http.post("/v1/batches/iso/seal", headers=d.auth(), json={"count": 2})
    assert sealed.status_code == 200
    other = d.auth(d.new_key("bot2"))
    ids = [mine, mine.upper(), mine.replace("-", ""), "{" + mine + "}", f"{mine}%00",
           f"{mine}/../{mine}"]
    for aid in ids:
        for method, path, body in agent_routes(aid, "iso"):
            r = call(d, method, path, body, other)
            assert r.status_code in (404, 405), (method, path, r.status_code, r.text)
            assert "/v1/refunds/mine" not in r.text and "security suite" not in r.text
    # bot2 sealing "iso" seals its own (empty) batch, never bot1's.
    r = d.http.post("/v1/batches/iso/seal", headers=other, json={"count": 7})
    assert r.status_code in (200, 202, 403, 404, 409), r.text
    st = d.http.get("/v1/batches/iso", headers=d.auth()).json()
    assert st["members"] == 2 and st["status"] == "decidable", st
    # Garbage ids are plain 404s (never a 500, never someone's approval).
    for bad in ("' OR '1'='1", "1 OR 1=1", "00000000-0000-0000-0000-000000000000", "x" * 300,
                "%27%3B--", str(uuid.uuid4())):
        for method, path, body in agent_routes(bad, bad):
            r = call(d, method, path, body, d.auth())
            assert r.status_code in (400, 404), (path, r.status_code, r.text)
    assert d.status(mine) == "pending"
    assert d.http.get(f"/v1/approvals/{mine}", headers=d.auth()).status_code == 200


def test_revoked_disabled_and_wrong_keys_are_refused(d: Deployment) -> None:
    s = d.system
    mine = d.pending(path="/v1/refunds/keys")
    revoked = d.new_key()
    assert d.http.get(f"/v1/approvals/{mine}", headers=d.auth(revoked)).status_code == 200
    s.cli("key", "revoke", revoked[:11])
    s.cli("agent", "create", "bot3")
    disabled = d.new_key("bot3")
    assert d.http.get(f"/v1/approvals/{uuid.uuid4()}", headers=d.auth(disabled)).status_code == 404
    s.cli("agent", "disable", "bot3")
    flipped = d.key[:-1] + ("A" if d.key[-1] != "A" else "B")
    wrong = [{"Authorization": f"Bearer {revoked}"}, {"X-Api-Key": revoked},
             {"Authorization": f"Bearer {disabled}"},
             {"Authorization": f"Bearer {flipped}"}, {"Authorization": f"Bearer {d.key[:-1]}"},
             {"Authorization": f"Bearer {d.key}x"}, {"Authorization": f"Bearer {d.key.upper()}"},
             {"Authorization": "Bearer cs_" + secrets.token_urlsafe(32)},
             {"Authorization": "Bearer"}, {"Authorization": "Bearer\tx"}, {},
             {"Authorization": f"Basic {base64.b64encode(d.key.encode()).decode()}"},
             {"Authorization": f"Token {d.key}"},
             {"Authorization": f"Bearer {ADMIN_TOKEN}"},
             {"Authorization": "Bearer x", "X-Api-Key": d.key},  # a bad Authorization wins
             {"Authorization": f"Bearer {d.key[:11]}"}]
    for headers in wrong:
        for method, path, body in agent_routes(mine, "none") + [
                ("POST", "/v1/proxy", {"method": "POST", "url": f"{d.stub.url}/v1/refunds",
                                       "grant_id": "stripe", "json": {"amount": 500}}),
                ("POST", "/v1/batches/x/seal", {"count": 1})]:
            r = call(d, method, path, body, headers)
            assert r.status_code == 401 and error_code(r) == "unauthenticated", \
                (headers, path, r.text)
    assert d.status(mine) == "pending"
    assert d.stub.count() == 0


def test_an_agent_not_bound_to_the_grant_is_forbidden(d: Deployment) -> None:
    s = d.system
    key = d.new_key("bot2")
    for amount in (5, 500):
        r = d.submit(key=key, amount=amount, path="/v1/refunds/unbound")
        assert r.status_code == 403 and error_code(r) == "forbidden", r.text
    s.produce(s.envelope("unbound-1", agent="bot2", amount=5, path="/v1/refunds/unbound"),
              s.envelope("unbound-2", agent="bot2", amount=500, path="/v1/refunds/unbound"))
    dead = [m for m in s.topic("dlq", expect=2, timeout=30) if m["key"].startswith("unbound-")]
    assert sorted(m["value"]["reason"] for m in dead) == ["forbidden", "forbidden"]
    assert s.sql("SELECT count(*) FROM approvals WHERE url LIKE '%%unbound%%'")[0][0] == 0
    assert d.stub.count("/v1/refunds/unbound") == 0


def test_a_key_does_only_what_its_scopes_say(d: Deployment) -> None:
    mine = d.pending(path="/v1/refunds/scoped")
    read = d.new_key("bot1", "--scopes", "read")
    submit = d.new_key("bot1", "--scopes", "submit")
    r = d.submit(key=read, path="/v1/refunds/scoped-read")
    assert r.status_code == 403 and error_code(r) == "forbidden"
    assert d.http.post(f"/v1/approvals/{mine}/cancel", headers=d.auth(read)).status_code == 403
    assert d.http.get(f"/v1/approvals/{mine}", headers=d.auth(read)).status_code == 200
    assert d.http.get(f"/v1/approvals/{mine}", headers=d.auth(submit)).status_code == 403
    assert d.submit(key=submit, path="/v1/refunds/scoped-submit").status_code == 202
    assert d.status(mine) == "pending"


def test_unknown_scope_names_grant_nothing(d: Deployment) -> None:
    """Scopes are exact names: a key created with "resubmit" or "unread" (typos, or
    names some other system uses) must be refused at creation or grant neither scope."""
    mine = d.pending(path="/v1/refunds/unknown-scope")
    for scope in ("resubmit", "unread", "nosubmit", "readonly"):
        r = d.system.cli("key", "create", "bot1", "--scopes", scope, check=False)
        if r.returncode != 0:
            continue
        key = json.loads(r.stdout)["api_key"]
        d.api_keys.append(key)
        s = d.submit(key=key, path=f"/v1/refunds/scope-{scope}")
        g = d.http.get(f"/v1/approvals/{mine}", headers=d.auth(key))
        assert (s.status_code, g.status_code) == (403, 403), \
            f"a key with scope {scope!r} may submit ({s.status_code}) or read ({g.status_code})"


def test_the_operator_api_takes_only_the_admin_token(d: Deployment) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {d.key}"},
                    {"X-Api-Key": ADMIN_TOKEN}, {"Authorization": f"Bearer {ADMIN_TOKEN[:-1]}"},
                    {"Authorization": f"Bearer {ADMIN_TOKEN}x"},
                    {"Authorization": f"Basic {base64.b64encode(ADMIN_TOKEN.encode()).decode()}"},
                    {"Authorization": ADMIN_TOKEN}):
        for method, path in (("GET", "/v1/admin/agents"), ("GET", "/v1/admin/grants"),
                             ("GET", "/v1/admin/audit"), ("POST", "/v1/admin/agents"),
                             ("PUT", "/v1/admin/grants/stolen")):
            body = {"name": "evil"} if method == "POST" else (
                {"secret": "s", "policy_id": "pay", "allowed_bases": ["http://10.0.0.1"],
                 "agents": ["bot1"]} if method == "PUT" else None)
            r = d.http.request(method, path, json=body, headers=headers)
            assert r.status_code == 401, (headers, method, path, r.status_code)
    assert d.system.sql("SELECT count(*) FROM grants WHERE id = 'stolen'")[0][0] == 0
    assert d.system.sql("SELECT count(*) FROM agents WHERE name = 'evil'")[0][0] == 0
