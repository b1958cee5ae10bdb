"""Passkey-signed votes, on the real system with real headless Chromium.

A policy with ``--require-passkey`` makes every vote on its approvals carry a
WebAuthn assertion whose challenge is the vote itself (approval id, request
digest, decision, reason, the page's nonce). The browser side is
tests/browser/passkey.mjs: Chromium with a DevTools-Protocol virtual
authenticator, running the pages' own api/passkey.js. Its cookies and
credentials (private keys, counters) live in files between runs, so one
"device" can register, vote, or sign a vote that the test keeps (the form POST
intercepted and aborted) to replay it by hand through approver.py.

The api is named http://localhost:<port> (the RP ID is CS_PUBLIC_URL's host;
browsers refuse IP literals). No scheduler runs until a test wants seals, so
an edited audit row is caught by the passkey re-check, not by the chain.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import os
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from approver import HIDDEN, Approver, link
from harness import System
from services import REPO_ROOT, npm_ci, scaled, wait_for

BROWSER_DIR = REPO_ROOT / "tests" / "browser"
ADMIN = "admin-secret-token"
PASSKEY_FORM = re.compile(r'<form method="post" class="card" data-passkey="1"[^>]*>(.*?)</form>', re.S)
RULES = [{"method": "POST", "path": "/v1/refunds*", "field": "amount", "op": ">", "value": 100}]


class Device:
    """One person's Chromium with its authenticator, kept in files between runs."""

    def __init__(self, folder: Path, who: str) -> None:
        self.state = folder / f"{who}.state.json"
        self.creds = folder / f"{who}.credentials.json"

    def run(self, action: str, **env: str) -> dict[str, Any]:
        """Runs passkey.mjs once (CS_ACTION=action); its JSON answer, asserted ok."""
        npm_ci(BROWSER_DIR, "playwright-core")
        p = subprocess.run(["node", "passkey.mjs"], cwd=BROWSER_DIR, text=True,
                           capture_output=True, timeout=scaled(150),
                           env={**os.environ, "CS_ACTION": action, "CS_STATE": str(self.state),
                                "CS_CREDS": str(self.creds), **env})
        lines = p.stdout.strip().splitlines()
        out = json.loads(lines[-1]) if lines else {}
        assert p.returncode == 0 and out.get("ok"), p.stdout + p.stderr
        return dict(out)

    def register(self, system: System, name: str, passkey: str) -> dict[str, Any]:
        """Signs `name` in with a one-time link and registers a passkey called `passkey`."""
        url = system.cli_json("approver", "signin-link", name, "--next", "/passkeys")["url"]
        return self.run("register", CS_LINK=url, CS_BASE=system.env["CS_PUBLIC_URL"],
                        CS_NAME=passkey)

    def capture(self, page: str, decision: str, reason: str, into: Path) -> dict[str, str]:
        """Lets the page sign a vote, keeps the form POST (url, fields) and aborts it."""
        self.run("vote", CS_PAGE=page, CS_DECISION=decision, CS_REASON=reason,
                 CS_CAPTURE=str(into))
        kept = json.loads(into.read_text())
        assert kept["url"] == page, kept["url"]
        return dict(parse_qsl(kept["body"], keep_blank_values=True))

    def browser(self) -> Approver:
        """An approver.py client holding this device's session cookie."""
        cookie = next(c for c in json.loads(self.state.read_text())["cookies"]
                      if c["name"] == "cs_session")
        person = Approver()
        # http.cookiejar files a dotless host under "<host>.local" (RFC 2965), so a
        # cookie for "localhost" must be planted there to be sent back.
        domain = cookie["domain"] if "." in cookie["domain"] else cookie["domain"] + ".local"
        person.http.cookies.set("cs_session", cookie["value"], domain=domain, path="/")
        return person


def policy(system: System, *extra: str, quorum: int = 1, approvers: str = "alice,bob") -> None:
    """Policy 'pay' as System.setup() makes it, plus `extra` options."""
    system.cli("policy", "set", "pay", "--mode", "rules", "--rules", json.dumps(RULES),
               "--quorum", str(quorum), "--approvers", approvers, "--window", "3600",
               "--timeout", "10000", "--attempts", "3", *extra)


def start(system: System, quorum: int = 1) -> tuple[str, str, dict[str, Any]]:
    """Setup, a require-passkey policy, the api at localhost and a worker:
    (api url, agent key, ids)."""
    ids = system.setup(quorum=quorum)
    policy(system, "--require-passkey", quorum=quorum)
    system.stub.program("/v1/refunds", status=201, body=b'{"refund":"re_1"}')
    api = system.api(host="localhost", CS_ADMIN_TOKEN=ADMIN)
    system.worker()
    url: str = api.url  # type: ignore[attr-defined]
    assert urlsplit(url).hostname == "localhost"
    return url, system.api_key(), ids


def submit(url: str, key: str, system: System, amount: int = 500,
           reason: str = "customer charged twice, ticket #4312") -> dict[str, Any]:
    r = httpx.post(f"{url}/v1/proxy", headers={"Authorization": f"Bearer {key}"},
                   timeout=scaled(30),
                   json={"method": "POST", "url": f"{system.stub.url}/v1/refunds",
                         "grant_id": "stripe", "json": {"amount": amount}, "reason": reason})
    assert r.status_code == 202, r.text
    p = dict(r.json())
    assert p["approval_url"].startswith(f"{url}/status/"), p
    return p


def status(system: System, approval_id: str) -> str:
    return str(system.approval_by_id(approval_id)["status"])


def wait_approval(system: System, approval_id: str, want: str) -> None:
    wait_for(lambda: status(system, approval_id) == want, 30,
             what=f"approval {approval_id} to become {want}")


def passkeys(system: System, name: str) -> list[list[str]]:
    """`countersign approver passkeys NAME`: id, name, alg, sign_count, created, last used."""
    out = system.cli("approver", "passkeys", name).stdout
    return [line.split("\t") for line in out.splitlines() if line.strip()]


def audit_verify(system: System) -> tuple[int, dict[str, Any]]:
    r = system.cli("audit", "verify", check=False)
    return r.returncode, json.loads(r.stdout)


def unb64u(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def vote_challenge(approval_id: str, digest: str, decision: str, reason: str, nonce: str) -> str:
    """The vote's challenge as the client computes it (api/passkey.js), base64url."""
    text = "\n".join(["countersign/vote/v1", approval_id, digest, decision,
                      hashlib.sha256(reason.encode()).hexdigest(), nonce])
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()


def passkey_form(text: str) -> dict[str, str]:
    """The hidden fields of a page's passkey decision form (data-passkey="1")."""
    m = PASSKEY_FORM.search(text)
    assert m, f"no passkey decision form:\n{text[-1500:]}"
    return {k: html.unescape(v) for k, v in HIDDEN.findall(m.group(1))}


def votes(system: System) -> int:
    return int(system.sql("SELECT count(*) FROM votes")[0][0])


# ---- registered in Chromium, signs the vote, re-checked by audit verify ---------


def test_a_passkey_registered_in_chromium_signs_the_vote_and_audit_verify_rechecks_it(
        system: System, tmp_path: Path) -> None:
    url, key, ids = start(system)
    alice = Device(tmp_path, "alice")
    reg = alice.register(system, "alice", "laptop")
    assert reg["listed"] == ["laptop"]
    ((pk_id, pk_name, alg, count, _, last_used),) = passkeys(system, "alice")
    assert pk_name == "laptop" and alg == "-7" and last_used == "-"
    listed = httpx.get(f"{url}/v1/admin/approvers/alice/passkeys", timeout=scaled(30),
                       headers={"Authorization": f"Bearer {ADMIN}"})
    assert listed.status_code == 200 and [i["id"] for i in listed.json()["items"]] == [pk_id]
    assert httpx.get(f"{url}/v1/admin/approvers/alice/passkeys",
                     timeout=scaled(30)).status_code == 401
    (registered,) = system.sql("SELECT actor, detail FROM audit "
                               "WHERE action = 'passkey.registered'")
    assert registered[0] == f"approver:{ids['alice']}" and registered[1]["passkey_id"] == pk_id

    p = submit(url, key, system)
    shot = system.log_dir / "passkey-vote-page.png"
    reason = "checked with the customer: charged twice"
    v = alice.run("vote", CS_PAGE=p["approval_url"], CS_DECISION="approve", CS_REASON=reason,
                  CS_SHOT=str(shot))
    assert v["outcome"] == "Thank you: approved" and v["overflow"] is False, v
    assert shot.stat().st_size > 10_000
    wait_approval(system, p["approval_id"], "executed")
    assert system.stub.count("/v1/refunds") == 1

    # The vote names its passkey; the audit entry holds the assertion as sent.
    a = system.approval_by_id(p["approval_id"])
    assert system.sql("SELECT passkey_id::text, cast_by::text FROM votes") == [(pk_id, ids["alice"])]
    (audit_id, actor, detail), = system.sql(
        "SELECT id, actor, detail FROM audit WHERE action = 'vote.approve' AND approval_id = %s",
        p["approval_id"])
    assert actor == f"approver:{ids['alice']}" and detail["reason"] == reason
    pk = detail["passkey"]
    assert pk["passkey_id"] == pk_id and pk["rp_id"] == "localhost" and pk["origin"] == url
    assert pk["digest"] == a["digest"].hex()
    client = json.loads(unb64u(pk["client_data_json"]))
    assert client["type"] == "webauthn.get" and client["origin"] == url
    assert client["challenge"] == vote_challenge(p["approval_id"], pk["digest"], "approve",
                                                 reason, pk["nonce"])
    auth = unb64u(pk["authenticator_data"])
    assert auth[:32] == hashlib.sha256(b"localhost").digest()
    assert auth[32] & 0x05 == 0x05, "UP and UV"
    counter = int.from_bytes(auth[33:37], "big")
    assert counter > int(count) and v["sign_counts"] == [counter]
    assert passkeys(system, "alice")[0][3] == str(counter)

    # Deny is signed the same way.
    q = submit(url, key, system, amount=900)
    v = alice.run("vote", CS_PAGE=q["approval_url"], CS_DECISION="deny", CS_REASON="duplicate")
    assert v["outcome"] == "Thank you: denied", v
    wait_approval(system, q["approval_id"], "denied")
    (denied,) = system.sql("SELECT detail FROM audit WHERE action = 'vote.deny'")[0]
    assert denied["reason"] == "duplicate" and denied["passkey"]["passkey_id"] == pk_id
    assert system.stub.count("/v1/refunds") == 1

    rc, report = audit_verify(system)
    assert rc == 0 and report["ok"] and report["passkey_votes_verified"] == 2, report

    # Another registered key put in place of alice's: the vote no longer verifies.
    bob = Device(tmp_path, "bob")
    bob.register(system, "bob", "phone")
    ((bob_pk, *_),) = passkeys(system, "bob")
    (original,) = system.sql("SELECT public_key FROM passkeys WHERE id = %s", pk_id)[0]
    system.sql("UPDATE passkeys SET public_key = (SELECT public_key FROM passkeys WHERE id = %s) "
               "WHERE id = %s", bob_pk, pk_id)
    rc, report = audit_verify(system)
    assert rc == 1 and report["ok"] is False and report["passkey_votes_verified"] == 0, report
    assert f"audit entry {audit_id}: passkey vote" in report["problem"], report
    assert "signature" in report["problem"], report
    system.sql("UPDATE passkeys SET public_key = %s WHERE id = %s", original, pk_id)
    assert audit_verify(system)[0] == 0

    # The unsealed vote entry edited by a superuser with the trigger off: caught too.
    system.sql("ALTER TABLE audit DISABLE TRIGGER audit_append_only")
    system.sql("UPDATE audit SET detail = jsonb_set(detail, '{reason}', '\"looks fine\"') "
               "WHERE id = %s", audit_id)
    system.sql("ALTER TABLE audit ENABLE TRIGGER audit_append_only")
    rc, report = audit_verify(system)
    assert rc == 1 and report["ok"] is False, report
    assert f"audit entry {audit_id}: passkey vote" in report["problem"]
    assert "does not verify" in report["problem"], report

    # Put back and sealed: the chain and the assertion both verify.
    system.sql("ALTER TABLE audit DISABLE TRIGGER audit_append_only")
    system.sql("UPDATE audit SET detail = %s WHERE id = %s", json.dumps(detail), audit_id)
    system.sql("ALTER TABLE audit ENABLE TRIGGER audit_append_only")
    system.scheduler()

    def sealed() -> dict[str, Any] | None:
        rc, r = audit_verify(system)
        return r if rc == 0 and r["unsealed_tail"] == 0 and r["seals"] >= 1 else None

    report = wait_for(sealed, 30, what="the sealer")
    assert report["passkey_votes_verified"] == 2, report


# ---- refusals --------------------------------------------------------------------


def test_votes_without_a_valid_fresh_assertion_are_refused(system: System, tmp_path: Path) -> None:
    url, key, ids = start(system)
    alice = Device(tmp_path, "alice")
    alice.register(system, "alice", "laptop")
    x, y, z = (submit(url, key, system, amount=500 + i) for i in range(3))

    # bob has no passkey: a pointer to /passkeys instead of a form, and no way to vote.
    with Approver() as bob:
        page = bob.sign_in(link(system, x["approval_id"], "bob")["url"])
        text = bob.page(page)
        assert "register one</a>" in text and 'href="/passkeys"' in text
        assert 'name="decision"' not in text and "data-passkey" not in text
        csrf = bob.session_csrf(page)
        r = bob.post(page, {"csrf": csrf, "decision": "approve", "reason": ""})
        assert r.status_code == 401 and "passkey" in r.text, r.text
    refused = system.cli("approval", "approve", x["approval_id"], "--as", "bob", check=False)
    assert refused.returncode != 0 and "passkey" in refused.stderr, refused.stderr

    # alice's form without an assertion (a plain form POST): refused.
    with Approver() as plain:
        page = plain.sign_in(link(system, x["approval_id"], "alice")["url"])
        form = passkey_form(plain.page(page))
        assert set(form) == {"csrf", "nonce"}
        r = plain.post(page, {**form, "decision": "approve", "reason": "no passkey at hand"})
        assert r.status_code == 401 and "none was sent" in r.text, r.text
        r = plain.post(page, {"csrf": form["csrf"], "decision": "approve", "reason": ""})
        assert r.status_code == 401 and "passkey" in r.text, r.text
    assert votes(system) == 0 and status(system, x["approval_id"]) == "pending"

    # An assertion Chromium made for "approve x" (kept, not sent) ...
    signed = alice.capture(x["approval_url"], "approve", "refund ok", tmp_path / "x.json")
    assert {"credential_id", "authenticator_data", "client_data_json", "signature", "nonce",
            "csrf", "decision", "reason"} <= set(signed) and signed["decision"] == "approve"
    with alice.browser() as replay:
        # ... for another decision, or with another reason:
        for changed in ({"decision": "deny"}, {"reason": "refund ok, and more"}):
            r = replay.post(x["approval_url"], {**signed, **changed})
            assert r.status_code == 401 and "challenge" in r.text, (changed, r.text)
        # ... on another approval (another id and digest):
        r = replay.post(y["approval_url"], signed)
        assert r.status_code == 401 and "challenge" in r.text, r.text
    # ... from another of alice's sessions (the page's nonce is bound to the session):
    with Approver() as other:
        other.sign_in(link(system, x["approval_id"], "alice")["url"])
        r = other.post(x["approval_url"], {**signed, "csrf": other.session_csrf(x["approval_url"])})
        assert r.status_code == 401 and "made on this page" in r.text, r.text
    assert votes(system) == 0
    with alice.browser() as replay:
        # ... as made: it counts, once.
        r = replay.post(x["approval_url"], signed)
        assert r.status_code == 200 and "Thank you: approved" in r.text, r.text
        wait_approval(system, x["approval_id"], "executed")
        # ... again after it was used (the counter is not above the stored one).
        r = replay.post(x["approval_url"], signed)
        assert r.status_code == 401 and "signCount" in r.text, r.text
    assert system.stub.count("/v1/refunds") == 1 and votes(system) == 1
    assert status(system, y["approval_id"]) == "pending"

    # A revoked passkey no longer votes: neither a kept assertion nor the page.
    kept = alice.capture(z["approval_url"], "approve", "", tmp_path / "z.json")
    ((pk_id, *_),) = passkeys(system, "alice")
    system.cli("approver", "passkey", "revoke", "alice", pk_id)
    assert passkeys(system, "alice") == []
    listed = httpx.get(f"{url}/v1/admin/approvers/alice/passkeys", timeout=scaled(30),
                       headers={"Authorization": f"Bearer {ADMIN}"})
    assert listed.json()["items"] == []
    (revoked,) = system.sql("SELECT actor, detail->>'passkey_id' FROM audit "
                            "WHERE action = 'passkey.revoked'")
    assert revoked == ("operator:cli", pk_id)
    with alice.browser() as replay:
        r = replay.post(z["approval_url"], kept)
        assert r.status_code == 401 and "revoked" in r.text, r.text
        text = replay.page(z["approval_url"])
        assert "register one</a>" in text and "data-passkey" not in text
    assert votes(system) == 1 and status(system, z["approval_id"]) == "pending"
    assert system.stub.count("/v1/refunds") == 1
    # The vote made before the revocation still verifies against the kept key.
    rc, report = audit_verify(system)
    assert rc == 0 and report["passkey_votes_verified"] == 1, report
