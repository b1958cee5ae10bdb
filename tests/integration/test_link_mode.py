"""The opt-in semi-public link mode, on the real system.

``countersign policy set ... --link-mode semi-public [--link-lifetime S]``: for
S seconds (default 900) after an approval is created its approval_url shows
the decision form to anyone, and a POST without a session decides (its form
token bound to the link). The decision is audited as actor ``link-holder``
with the client's address and user agent, decided_by 'link holder'. Never
with a quorum above 1, with passkeys, or for batch members; after the
lifetime, or once decided, the link decides nothing more.

Link holders are approver.py browsers that never sign in.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from approver import Approver, vote
from harness import System
from services import scaled
from test_passkeys import policy, status, submit, wait_approval

UA = "Mozilla/5.0 (Linux; Android 14) link-holder-test/1.0"
NO_FORM = 'name="decision"'


def start(system: System, *extra: str) -> tuple[str, str]:
    """Setup, policy 'pay' in semi-public mode (+ extra), the api and a worker:
    (api url, agent key)."""
    system.setup()
    policy(system, "--link-mode", "semi-public", *extra)
    system.stub.program("/v1/refunds", status=201, body=b'{"refund":"re_1"}')
    api = system.api()
    system.worker()
    return api.url, system.api_key()  # type: ignore[attr-defined]


def link_holder() -> Approver:
    """Someone who holds the approval_url and never signs in."""
    person = Approver()
    person.http.headers["User-Agent"] = UA
    return person


def decided(system: System, approval_id: str) -> list[tuple[Any, ...]]:
    return system.sql("SELECT actor, action, detail FROM audit WHERE approval_id = %s "
                      "AND action IN ('approval.approved', 'approval.denied', 'vote.approve', "
                      "'vote.deny') ORDER BY id", approval_id)


def test_the_approval_url_decides_without_sign_in(system: System) -> None:
    url, key = start(system)
    p = submit(url, key, system)
    assert json.loads(system.sql("SELECT policy::text FROM approvals WHERE id = %s",
                                 p["approval_id"])[0][0])["link_lifetime_s"] == 900
    with link_holder() as holder:
        text = holder.page(p["approval_url"])
        assert "Anyone holding this link can decide" in text and "Sign in to decide" not in text
        assert "Signed in as" not in text and holder.session is None
        form = holder.form(p["approval_url"])
        assert set(form) == {"csrf"}

        # Not from another site, not without the page's token, not with another link's.
        q = submit(url, key, system, amount=700)
        other = holder.form(q["approval_url"])
        for data, origin in (({**form, "decision": "approve"}, "https://evil.example"),
                             ({"decision": "approve"}, None),
                             ({**other, "decision": "approve"}, None)):
            r = holder.post(p["approval_url"], data, **({"origin": origin} if origin else {}))
            assert r.status_code in (401, 403) and "Thank you" not in r.text, r.text
        assert status(system, p["approval_id"]) == "pending"

        r = holder.post(p["approval_url"], {**form, "decision": "approve",
                                            "reason": "the customer called"})
        assert r.status_code == 200 and "Thank you: approved" in r.text, r.text
        wait_approval(system, p["approval_id"], "executed")
        assert system.stub.count("/v1/refunds") == 1

        a = system.approval_by_id(p["approval_id"])
        assert a["decided_by"] == "link holder" and a["decision_reason"] == "the customer called"
        assert system.sql("SELECT count(*) FROM votes")[0][0] == 0
        ((actor, action, detail),) = decided(system, p["approval_id"])
        assert (actor, action) == ("link-holder", "approval.approved")
        assert detail == {"address": "127.0.0.1", "user_agent": UA, "by": "link holder",
                          "reason": "the customer called"}

        # Once decided: the page shows no form and the link decides nothing more.
        after = holder.page(p["approval_url"])
        assert NO_FORM not in after and "Anyone holding" not in after
        again = holder.post(p["approval_url"], {**form, "decision": "deny", "reason": "late"})
        assert again.status_code == 409 and "no longer be decided" in again.text, again.text
        assert status(system, p["approval_id"]) == "executed"

        # Deny works the same way.
        r = holder.decide(q["approval_url"], "deny", "duplicate of another refund")
        assert r.status_code == 200 and "Thank you: denied" in r.text, r.text
    wait_approval(system, q["approval_id"], "denied")
    ((actor, action, detail),) = decided(system, q["approval_id"])
    assert (actor, action, detail["user_agent"]) == ("link-holder", "approval.denied", UA)
    assert system.approval_by_id(q["approval_id"])["decided_by"] == "link holder"
    assert system.stub.count("/v1/refunds") == 1
    v = system.cli_json("audit", "verify")
    assert v["ok"] and v["passkey_votes_verified"] == 0


def test_a_signed_in_approver_still_votes_as_themselves(system: System) -> None:
    url, key = start(system)
    p = submit(url, key, system)
    r = vote(system, p["approval_id"], "alice", "approve", "signed in anyway")
    assert r.status_code == 200 and "Thank you: approved" in r.text
    wait_approval(system, p["approval_id"], "executed")
    ((actor, action, _), (actor2, action2, _)) = decided(system, p["approval_id"])
    assert action == "vote.approve" and actor.startswith("approver:")
    assert action2 == "approval.approved"
    assert system.approval_by_id(p["approval_id"])["decided_by"].startswith("approver:")


def test_a_signed_in_non_approver_holding_the_link_decides_as_link_holder(
        system: System) -> None:
    """Someone signed in who is no approver of this request sees the link's form;
    it decides as the link holder (their session neither helps nor stands in the way)."""
    url, key = start(system)
    system.cli("approver", "create", "carol")
    p = submit(url, key, system)
    with link_holder() as carol:
        carol.sign_in(system.cli_json("approver", "signin-link", "carol")["url"])
        text = carol.page(p["approval_url"])
        assert "Signed in as <b>carol</b>" in text and "Anyone holding this link" in text
        r = carol.decide(p["approval_url"], "approve", "carol had the link")
        assert r.status_code == 200 and "Thank you: approved" in r.text, r.text
    wait_approval(system, p["approval_id"], "executed")
    ((actor, action, detail),) = decided(system, p["approval_id"])
    assert (actor, action, detail["user_agent"]) == ("link-holder", "approval.approved", UA)


def test_the_link_stops_deciding_after_its_lifetime(system: System) -> None:
    url, key = start(system, "--link-lifetime", "60")
    p = submit(url, key, system)
    with link_holder() as holder:
        text = holder.page(p["approval_url"])
        assert "Anyone holding this link can decide" in text
        form = holder.form(p["approval_url"])
        # 61 s later (the stored request is immutable: the test's superuser lifts the
        # trigger that guards it, migrations 017 and 019).
        system.sql("ALTER TABLE approval_requests DISABLE TRIGGER approvals_immutable")
        system.sql("UPDATE approval_requests SET created_at = created_at - interval '61 seconds' "
                   "WHERE id = %s", p["approval_id"])
        system.sql("ALTER TABLE approval_requests ENABLE TRIGGER approvals_immutable")
        text = holder.page(p["approval_url"])
        assert NO_FORM not in text and "Anyone holding" not in text
        assert "Sign in to decide" in text
        r = holder.post(p["approval_url"], {**form, "decision": "approve"})
        assert r.status_code == 409 and "lifetime" in r.text, r.text
    assert status(system, p["approval_id"]) == "pending"
    assert decided(system, p["approval_id"]) == []
    # An approver who signs in still decides.
    vote(system, p["approval_id"], "bob", "approve", expect=200)
    wait_approval(system, p["approval_id"], "executed")
    assert system.stub.count("/v1/refunds") == 1


def test_policy_set_refuses_semi_public_with_a_quorum_or_passkeys(system: System) -> None:
    system.setup()
    api = system.api(CS_ADMIN_TOKEN="admin-secret-token")
    before = system.sql("SELECT quorum, require_passkey, link_mode, link_lifetime_s "
                        "FROM policies WHERE id = 'pay'")
    assert before == [(1, False, "signin", None)]
    base = ["policy", "set", "pay", "--mode", "always", "--approvers", "alice,bob"]
    for extra, code, says in (
            (["--quorum", "2", "--link-mode", "semi-public"], 1, "quorum above 1"),
            (["--require-passkey", "--link-mode", "semi-public"], 1, "require_passkey"),
            (["--link-mode", "semi-public", "--link-lifetime", "59"], 2, "link-lifetime"),
            (["--link-mode", "semi-public", "--link-lifetime", "86401"], 2, "link-lifetime"),
            (["--link-mode", "public"], 2, "signin or semi-public")):
        r = system.cli(*base, *extra, check=False)
        assert r.returncode != 0 and says in r.stderr, (extra, r.returncode, r.stderr)
    assert system.sql("SELECT quorum, require_passkey, link_mode, link_lifetime_s "
                      "FROM policies WHERE id = 'pay'") == before
    # The admin API says the same.
    admin = {"Authorization": "Bearer admin-secret-token"}
    for body in ({"quorum": 2}, {"require_passkey": True}):
        r = httpx.put(f"{api.url}/v1/admin/policies/pay", headers=admin,  # type: ignore[attr-defined]
                      timeout=scaled(30),
                      json={"mode": "always", "approvers": ["alice", "bob"],
                            "link_mode": "semi-public", **body})
        assert r.status_code == 422 and "semi-public" in r.text, r.text
        assert r.json()["error"]["code"] == "policy_unevaluable"
    # Allowed alone, at the bounds.
    for lifetime in ("60", "86400"):
        system.cli(*base, "--link-mode", "semi-public", "--link-lifetime", lifetime)
        assert system.sql("SELECT link_mode, link_lifetime_s FROM policies WHERE id = 'pay'") \
            == [("semi-public", int(lifetime))]


def test_a_batch_member_under_a_semi_public_policy_is_refused(system: System) -> None:
    url, key = start(system)
    member = system.envelope("b1-0001", batch_id="b1")
    system.produce(member)
    (dead,) = system.topic("dlq", expect=1)
    assert dead["key"] == "b1-0001" and dead["value"]["reason"] == "policy_unevaluable", dead
    assert "semi-public" in dead["value"]["message"], dead
    r = httpx.post(f"{url}/v1/proxy", headers={"Authorization": f"Bearer {key}"},
                   timeout=scaled(30),
                   json={"method": "POST", "url": f"{system.stub.url}/v1/refunds",
                         "grant_id": "stripe", "json": {"amount": 500}, "batch_id": "b2",
                         "reason": "a batch member"})
    assert r.status_code == 422 and "semi-public" in r.text, r.text
    assert r.json()["error"]["code"] == "policy_unevaluable"
    assert system.sql("SELECT count(*) FROM approvals")[0][0] == 0
    assert system.sql("SELECT count(*) FROM batches WHERE id = 'b2'")[0][0] == 0
    assert system.stub.count() == 0
