"""Security invariant 4: a requester cannot approve its own request (not by signing in
with any link, not through a delegation, not through the CLI or the operator API);
each person votes once (also when holding a delegated slot, also signed in twice,
also under concurrent POSTs); a quorum of 0
or above the number of approvers is refused when the policy is set; a policy that
cannot be evaluated refuses the request (fail closed), and a rule cannot be sidestepped
by spelling the same path differently."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from attack_kit import SESSION, Deployment, decision_form, deployment, error_code, refusals
from services import Kafka, Postgres

UNTIL = "2099-01-01T00:00:00Z"


@pytest.fixture(scope="module")
def d(request: pytest.FixtureRequest, pg: Postgres, kafka: Kafka) -> Iterator[Deployment]:
    with deployment(request, pg, kafka, "sec_votes") as d:
        s = d.system
        d.ids = s.setup(approvers=("alice", "bob", "mallory"), quorum=2,
                        operator_of_agent=("mallory",))
        for name in ("carol", "dan", "gina", "hank", "ivy", "jay"):
            d.ids[name] = s.cli_json("approver", "create", name)["approver_id"]
        d.ids["oscar"] = s.cli_json("approver", "create", "oscar", "--agent", "bot1")["approver_id"]
        s.cli("policy", "set", "deleg", "--mode", "always", "--quorum", "1", "--approvers",
              "dan,oscar")
        s.cli("policy", "set", "deleg2", "--mode", "always", "--quorum", "2", "--approvers",
              "gina,hank")
        d.add_grant("deleg", "sk_deleg_" + s.secret[-12:] + "d", [d.stub.url], policy="deleg")
        d.add_grant("deleg2", "sk_deleg2_" + s.secret[-12:] + "e", [d.stub.url], policy="deleg2")
        s.cli("policy", "set", "deleg3", "--mode", "always", "--quorum", "1", "--approvers", "ivy")
        d.add_grant("deleg3", "sk_deleg3_" + s.secret[-12:] + "f", [d.stub.url], policy="deleg3")
        s.cli("delegate", "dan", "mallory", "--until", UNTIL)    # to the requester's operator
        s.cli("delegate", "oscar", "carol", "--until", UNTIL)    # from the requester's operator
        s.cli("delegate", "gina", "hank", "--until", UNTIL)      # hank then holds two slots
        s.cli("delegate", "ivy", "jay", "--until", UNTIL)        # ended mid-way by a test
        d.start_api()
        s.worker()
        d.key = d.new_key()
        yield d


def decide(d: Deployment, aid: str, approver: str, decision: str = "approve") -> httpx.Response:
    return d.http.post(f"/v1/admin/approvals/{aid}/decide", headers=d.admin(),
                       json={"approver": approver, "decision": decision, "reason": "r"})


def test_requester_cannot_vote(d: Deployment) -> None:
    s = d.system
    aid = d.pending(path="/v1/refunds/self")
    for decision in ("approve", "deny"):
        r = d.vote(d.link(aid, "mallory"), decision)   # a one-time link each time
        assert r.status_code == 403 and "own request" in r.text, r.status_code
        cli = s.cli("approval", decision, aid, "--as", "mallory", "--reason", "mine", check=False)
        assert cli.returncode != 0 and "self_approval" in cli.stderr + cli.stdout, cli.stderr
        r = decide(d, aid, "mallory", decision)
        assert r.status_code == 403 and error_code(r) == "self_approval", r.text
    assert d.votes(aid) == 0 and d.status(aid) == "pending"
    assert refusals(d).count("self_approval") >= 6


def test_requester_cannot_vote_through_a_delegation(d: Deployment) -> None:
    s = d.system
    aid = d.pending(grant="deleg", path="/v1/refunds/deleg")
    links = d.links(aid)
    assert links["dan"]["voter_id"] == d.ids["mallory"]     # dan's slot is held by mallory
    assert links["oscar"]["voter_id"] == d.ids["carol"]     # the operator's slot, by carol
    for name in ("dan", "oscar"):
        for decision in ("approve", "deny"):
            r = d.vote(d.link(aid, name), decision)
            assert r.status_code == 403 and "own request" in r.text, (name, r.status_code)
    cli = s.cli("approval", "approve", aid, "--as", "mallory", check=False)
    assert cli.returncode != 0
    assert d.votes(aid) == 0 and d.status(aid) == "pending"
    assert d.stub.count("/v1/refunds/deleg") == 0


def test_one_person_one_vote_also_holding_a_delegated_slot(d: Deployment) -> None:
    aid = d.pending(grant="deleg2", path="/v1/refunds/deleg2")
    links = d.links(aid)
    assert links["gina"]["voter_id"] == d.ids["hank"]
    assert d.vote(links["hank"]["url"]).status_code == 200
    r = d.vote(links["gina"]["url"])
    assert r.status_code == 409 and "already voted" in r.text, r.status_code
    assert d.votes(aid) == 1 and d.status(aid) == "pending"
    assert d.stub.count("/v1/refunds/deleg2") == 0


def test_an_open_page_stops_deciding_when_the_delegation_ends(d: Deployment) -> None:
    """jay holds ivy's slot by a delegation, signs in with the slot's link and opens the
    page; the delegation ends before he presses: the vote is refused. His session
    stays his, and is no credential for ivy's slot."""
    aid = d.pending(grant="deleg3", path="/v1/refunds/deleg3")
    links = d.links(aid)
    assert links["ivy"]["voter_id"] == d.ids["jay"]
    c, page = d.sign_in(links["ivy"]["url"])
    form = decision_form(c.get(page))
    assert form
    d.system.sql("UPDATE delegations SET revoked_at = now() WHERE delegate_id = %s", d.ids["jay"])
    shown = c.get(page)
    assert decision_form(shown) is None and "not an approver" in shown.text
    r = c.post(page, data={**form, "decision": "approve"}, headers={"Origin": d.url})
    assert r.status_code == 403, r.status_code
    assert d.votes(aid) == 0 and d.status(aid) == "pending"
    assert d.stub.count("/v1/refunds/deleg3") == 0
    # The slot's link now signs in its own approver.
    assert {x["approver"]: x["voter_id"] for x in d.system.links(aid)}["ivy"] == d.ids["ivy"]


def test_double_vote_refused_even_when_concurrent(d: Deployment) -> None:
    s = d.system
    aid = d.pending(path="/v1/refunds/double")
    alice = d.link(aid, "alice")
    first = d.vote(alice)
    assert first.status_code == 200 and "1 of 2" in first.text
    for decision in ("approve", "deny"):
        r = d.vote(d.link(aid, "alice"), decision)   # signed in again: still alice
        assert r.status_code == 409 and "already voted" in r.text
        assert s.cli("approval", decision, aid, "--as", "alice", "--reason", "x",
                     check=False).returncode != 0
        r = decide(d, aid, "alice", decision)
        assert r.status_code == 409 and error_code(r) == "already_voted", r.text
    assert d.votes(aid) == 1 and d.status(aid) == "pending"
    # Bob presses the button in eight tabs of one session, and in four other
    # browsers he signed in on, at the same moment: one vote.
    c, page = d.sign_in(d.link(aid, "bob"))
    form = decision_form(c.get(page))
    assert form
    tabs = [(d.browser(c.cookies[SESSION]), form) for _ in range(8)]
    for _ in range(4):
        other, _ = d.sign_in(d.link(aid, "bob"))
        tabs.append((other, decision_form(other.get(page)) or {}))
    codes: list[int] = []
    barrier = threading.Barrier(len(tabs))

    def press(tab: httpx.Client, fields: dict[str, str]) -> None:
        barrier.wait()
        r = tab.post(page, data={**fields, "decision": "approve"}, headers={"Origin": d.url})
        codes.append(r.status_code)

    threads = [threading.Thread(target=press, args=tab) for tab in tabs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(codes) == [200] + [409] * (len(tabs) - 1), codes
    d.wait_id(aid, "executed")
    assert d.votes(aid) == 2 and d.stub.count("/v1/refunds/double") == 1


def test_the_requesters_operator_signs_in_and_votes_in_vain(d: Deployment) -> None:
    """mallory operates bot1 and approves for policy pay: whichever way she reaches the
    page of bot1's request -- her slot's link, a link the operator mints her, the
    approval_url the agent got, the events topic's approval_url -- the page may offer
    her the form, and every press of it is refused as self-approval."""
    s = d.system
    r = d.submit(path="/v1/refunds/own")
    assert r.status_code == 202
    aid, handed = r.json()["approval_id"], d.fix(r.json()["approval_url"])
    event = d.event("approval.pending", approval_id=aid)
    pages = {handed, d.page(aid), d.fix(event["approval_url"])}
    assert len(pages) == 1, pages
    ways = [d.link(aid, "mallory"),
            d.signin_link("mallory", "/status/" + handed.rsplit("/", 1)[1]),
            d.signin_link("mallory")]                       # to her inbox, then the page
    before = refusals(d).count("self_approval")
    for link in ways:
        c, _ = d.sign_in(link)
        for decision in ("approve", "deny"):
            shown = c.get(handed)
            form = decision_form(shown)
            assert form, "an approver of the request sees its form (the vote is what fails)"
            p = c.post(handed, data={**form, "decision": decision, "reason": "mine"},
                       headers={"Origin": d.url})
            assert p.status_code == 403 and "own request" in p.text, p.status_code
    assert d.votes(aid) == 0 and d.status(aid) == "pending"
    assert d.stub.count("/v1/refunds/own") == 0
    assert refusals(d).count("self_approval") == before + 2 * len(ways)


def test_quorum_zero_or_unreachable_refused_when_the_policy_is_set(d: Deployment) -> None:
    s = d.system
    bad_cli = [
        ["--mode", "always", "--quorum", "0", "--approvers", "alice"],
        ["--mode", "rules", "--rules", '[{"method":"POST"}]', "--quorum", "0", "--approvers",
         "alice,bob"],
        ["--mode", "always", "--quorum", "-1", "--approvers", "alice"],
        ["--mode", "always", "--quorum", "3", "--approvers", "alice,bob"],
        ["--mode", "always", "--quorum", "1", "--approvers", ""],
        ["--mode", "always", "--quorum", "1"],
        ["--mode", "always", "--quorum", "1", "--approvers", "nobody"],
        ["--mode", "always", "--quorum", "one", "--approvers", "alice"],
    ]
    for i, args in enumerate(bad_cli):
        r = s.cli("policy", "set", f"z{i}", *args, check=False)
        assert r.returncode != 0, (args, r.stdout)
    # Changing a policy in use to quorum 0 is refused too; the policy stays as it was.
    r = s.cli("policy", "set", "pay", "--mode", "always", "--quorum", "0", "--approvers", "alice",
              check=False)
    assert r.returncode != 0
    bad_api: list[dict[str, Any]] = [
        {"mode": "always", "quorum": 0, "approvers": ["alice"]},
        {"mode": "always", "quorum": 3, "approvers": ["alice", "bob"]},
        {"mode": "always", "quorum": 1, "approvers": []},
        {"mode": "always", "quorum": -2, "approvers": ["alice"]},
        {"mode": "always", "quorum": "1", "approvers": ["alice"]},
        {"mode": "always", "quorum": 1.5, "approvers": ["alice", "bob"]},
        {"mode": "rules", "rules": [], "quorum": 1, "approvers": ["alice"]},
    ]
    for i, body in enumerate(bad_api):
        resp = d.http.put(f"/v1/admin/policies/za{i}", headers=d.admin(), json=body)
        assert resp.status_code in (400, 422), (body, resp.text)
        assert error_code(resp) in ("invalid_request", "policy_unevaluable"), resp.text
    resp = d.http.put("/v1/admin/policies/pay", headers=d.admin(),
                      json={"mode": "always", "quorum": 0, "approvers": ["alice"]})
    assert resp.status_code in (400, 422)
    ids = {p["id"] for p in d.http.get("/v1/admin/policies", headers=d.admin()).json()["items"]}
    assert not {i for i in ids if i.startswith("z")}, ids
    assert s.sql("SELECT quorum FROM policies WHERE id = 'pay'")[0][0] == 2
    assert s.sql("SELECT count(*) FROM policies WHERE quorum < 1")[0][0] == 0


def test_quorum_counts_distinct_people(d: Deployment) -> None:
    """alice listed twice is one approver: a quorum of 2 "of alice, alice" cannot be met
    and must be refused like any quorum above the number of approvers."""
    r = d.system.cli("policy", "set", "twice", "--mode", "always", "--quorum", "2",
                     "--approvers", "alice,alice", check=False)
    api = d.http.put("/v1/admin/policies/twice2", headers=d.admin(),
                     json={"mode": "always", "quorum": 2, "approvers": ["alice", "alice"]})
    assert r.returncode != 0 and api.status_code in (400, 409, 422), (r.stdout, api.text)
    assert d.system.sql("SELECT count(*) FROM policies WHERE id LIKE 'twice%%'")[0][0] == 0


def test_unevaluable_policy_refuses_the_request(d: Deployment) -> None:
    """The rule reads body field "amount" of POST /v1/refunds*: without a readable
    number the request is refused (422), never run without approval."""
    s = d.system
    bodies: list[dict[str, Any]] = [
        {"json": {"currency": "eur"}}, {"json": {"amount": "5000"}}, {"json": {"amount": None}},
        {"json": {"amount": {"value": 5000}}}, {"json": {"amount": [5000]}},
        {"json": {"amount": True}}, {"json": [{"amount": 5000}]}, {"json": "amount=5000"},
        {"json": None}, {"body": "amount=5000"}, {"body": '{"amount": 5000'},
        {"body": '\ufeff{"amount": 5000}'}, {"body": '{"amount": NaN}'},
        {"body_b64": base64.b64encode(b"\x00\x01amount").decode()}, {},
    ]
    for b in bodies:
        r = d.submit(amount=None, path="/v1/refunds/uneval", **b)
        assert r.status_code == 422 and error_code(r) == "policy_unevaluable", (b, r.text)
    envs = []
    for i, b in enumerate(bodies[:4]):
        e = s.envelope(f"uneval-{i}", path="/v1/refunds/uneval")
        del e["json"]
        envs.append({**e, **b})
    s.produce(*envs)
    dead = [m for m in s.topic("dlq", expect=len(envs), timeout=30)
            if m["key"].startswith("uneval-")]
    assert sorted(m["key"] for m in dead) == [f"uneval-{i}" for i in range(4)]
    assert {m["value"]["reason"] for m in dead} == {"policy_unevaluable"}
    assert d.stub.count("/v1/refunds/uneval") == 0
    assert s.sql("SELECT count(*) FROM approvals WHERE url LIKE '%%uneval%%'")[0][0] == 0


def test_rule_paths_match_however_the_path_is_spelled_in_normal_form(d: Deployment) -> None:
    """Controls: spellings that libcurl normalises are caught by the rule."""
    base = d.stub.url
    for url, extra in ((f"{base}/v1/./refunds", {}), (f"{base}/v1/x/../refunds", {}),
                       (f"{base}/v1/refunds/", {}), (f"{base}/v1/refunds?x=1", {}),
                       (f"{base}/v1/{{p}}", {"path_params": {"p": "refunds"}}),
                       (f"{base}/v1/refunds", {"method": "post"})):
        r = d.submit(url, amount=5000, **extra)
        assert r.status_code == 202, (url, r.text)
        d.http.post(f"/v1/approvals/{r.json()['approval_id']}/cancel", headers=d.auth())


def test_rule_not_bypassed_by_percent_encoding_unreserved_characters(d: Deployment) -> None:
    """RFC 3986 6.2.2.2: %72 and "r" are the same URI character, and providers decode
    it: POST /v1/%72efunds is POST /v1/refunds, so 5000 must wait for a vote."""
    base = d.stub.url
    for path in ("/v1/%72efunds", "/v1/refund%73", "/%761/refunds", "/v1/%52efunds".lower()):
        r = d.submit(f"{base}{path}", amount=5000)
        assert r.status_code != 200 and d.stub.count(path) == 0, \
            f"POST {path} with amount 5000 ran without approval: {r.status_code} {r.text[:200]}"


def test_rule_not_bypassed_by_empty_path_segments(d: Deployment) -> None:
    """Many front ends merge slashes (nginx merge_slashes is on by default; Spring,
    werkzeug): POST /v1//refunds reaches /v1/refunds there, so it must wait for a vote."""
    base = d.stub.url
    for path in ("/v1//refunds", "//v1/refunds", "/v1///refunds/"):
        r = d.submit(f"{base}{path}", amount=5000)
        assert r.status_code != 200 and d.stub.count(path) == 0, \
            f"POST {path} with amount 5000 ran without approval: {r.status_code} {r.text[:200]}"


def test_audit_records_every_refused_vote(d: Deployment) -> None:
    rows = d.system.sql("SELECT actor, detail FROM audit WHERE action = 'vote.refused'")
    assert rows
    codes = {r[1]["code"] for r in rows}
    assert {"self_approval", "already_voted"} <= codes, codes
    assert json.dumps([r[1] for r in rows])
