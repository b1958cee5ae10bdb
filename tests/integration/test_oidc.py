"""Single sign-on (OpenID Connect) on the real system, against a real provider.

The provider is tests/oidc/provider.mjs (oidc-provider, OpenID Certified),
started once per module on a free loopback port; any login name signs in there
(sub = the name, email <name>@example.test, verified). Its client is registered
with loopback redirect URIs on any port (RFC 8252 7.3), so one provider serves
each test's api on its own free port, and it has a second client for the
cross-client test. Each test starts an api with CS_OIDC_* pointing at it.

The issue's flow runs in headless Chromium (tests/browser/oidc.mjs): the agent's
approval_url, "Sign in with single sign-on", the provider's login and consent,
back on the page, Approve, the call executes once. The rest walks the same
flow with httpx through approver.py's Approver (one browser: its own cookie
jar, redirects followed by hand) so that a test can tamper with a step.
ID-token forgeries (aud, iss, exp, alg none, HS256 with the public key, kid,
nonce) need a token minter and are covered by tests/unit/test_idtoken.c.
The provider's log for each test is copied to tests/log/<test>/provider.log.
"""

from __future__ import annotations

import html
import json
import os
import re
import secrets
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit, urlunsplit

import httpx
import pytest

from approver import Approver, SESSION_COOKIE
from harness import LOG_ROOT, System, deadline
from services import REPO_ROOT, npm_ci, scaled

PROVIDER_DIR = REPO_ROOT / "tests" / "oidc"
BROWSER_DIR = REPO_ROOT / "tests" / "browser"
CLIENT_ID = "countersign"
OTHER_CLIENT_ID = "another-app"
PROVIDER_FORM = re.compile(r'<form[^>]*action="([^"]+)"[^>]*method="post">\s*'
                           r'<input type="hidden" name="prompt" value="([a-z]+)"')
REASON = "customer charged twice, ticket #4312"


# ---- the provider ------------------------------------------------------------


class OidcProvider:
    """tests/oidc/provider.mjs on a free port; `issuer` once it listens."""

    def __init__(self, alg: str, log: Path) -> None:
        self.alg = alg
        self.log = log
        self.secret = secrets.token_urlsafe(24)
        self.other_secret = secrets.token_urlsafe(24)
        npm_ci(PROVIDER_DIR, "oidc-provider")
        log.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(log, "ab")
        env = {**os.environ, "OIDC_CLIENT_SECRET": self.secret,
               "OIDC_OTHER_CLIENT_SECRET": self.other_secret}
        self.p = subprocess.Popen(
            ["node", str(PROVIDER_DIR / "provider.mjs"), "--port", "0", "--alg", alg,
             "--client-id", CLIENT_ID, "--other-client-id", OTHER_CLIENT_ID,
             "--redirect-uri", "http://127.0.0.1/signin/oidc/callback", "--any-loopback-port"],
            env=env, stdout=subprocess.PIPE, stderr=self._fh, start_new_session=True)
        try:
            self.issuer = str(json.loads(self._first_line(deadline(30)))["issuer"])
        except BaseException:
            self.stop()
            raise

    def _first_line(self, until: float) -> str:
        """The provider's one stdout line, waited for until the monotonic deadline."""
        assert self.p.stdout is not None
        fd = self.p.stdout.fileno()
        got = b""
        while b"\n" not in got:
            left = until - time.monotonic()
            if left <= 0 or self.p.poll() is not None:
                raise AssertionError(f"the OpenID provider did not start ({got!r}):\n"
                                     + self.log.read_text(errors="replace")[-3000:])
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 4096)
                if not chunk:
                    continue
                got += chunk
        return got.split(b"\n", 1)[0].decode()

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=scaled(30))
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(timeout=scaled(30))
        if self.p.stdout:
            self.p.stdout.close()
        self._fh.close()


def start_provider(alg: str) -> Iterator[OidcProvider]:
    log = LOG_ROOT / f"test_oidc-provider-{alg}" / "provider.log"
    log.unlink(missing_ok=True)
    prov = OidcProvider(alg, log)
    yield prov
    prov.stop()


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    yield from start_provider("RS256")


@pytest.fixture(scope="module")
def es256_provider() -> Iterator[OidcProvider]:
    yield from start_provider("ES256")


# ---- the system with single sign-on ------------------------------------------


class Sso:
    """A System with a worker and an api signing in at `prov`; one agent key."""

    def __init__(self, system: System, prov: OidcProvider, *, match_email: bool = True,
                 approvers: tuple[str, ...] = ("alice", "bob"),
                 approver_args: dict[str, tuple[str, ...]] | None = None,
                 **api_env: str) -> None:
        self.system = system
        self.prov = prov
        self._provider_from = len(prov.text())
        self.ids = system.setup(approvers=approvers, approver_args=approver_args)
        system.worker()
        secret_file = system.log_dir / "oidc-client-secret"  # not *.log: never printed
        secret_file.write_text(prov.secret + "\n")
        secret_file.chmod(0o600)
        self.proc = system.api(CS_OIDC_ISSUER=prov.issuer, CS_OIDC_CLIENT_ID=CLIENT_ID,
                               CS_OIDC_CLIENT_SECRET_FILE=str(secret_file),
                               CS_OIDC_ALLOW_HTTP="1",
                               CS_OIDC_MATCH_EMAIL="1" if match_email else "0", **api_env)
        self.url: str = self.proc.url  # type: ignore[attr-defined]
        self.key = system.api_key()

    def submit(self) -> dict[str, Any]:
        """A pending approval through POST /v1/proxy: approval_id, approval_url."""
        r = httpx.post(f"{self.url}/v1/proxy", timeout=scaled(30),
                       headers={"Authorization": f"Bearer {self.key}"},
                       json={"method": "POST", "url": f"{self.system.stub.url}/v1/refunds",
                             "grant_id": "stripe", "json": {"amount": 4312}, "reason": REASON})
        assert r.status_code == 202, r.text
        return dict(r.json())

    def approver(self, name: str, *args: str) -> str:
        return str(self.system.cli_json("approver", "create", name, *args)["approver_id"])

    def close(self) -> None:
        """Copies this test's part of the provider's log next to the api's; checks
        that no log holds the client secret."""
        (self.system.log_dir / "provider.log").write_text(self.prov.text()[self._provider_from:])
        for log in self.system.log_dir.glob("*.log"):
            assert self.prov.secret not in log.read_text(errors="replace"), log


@pytest.fixture
def sso(system: System, provider: OidcProvider) -> Iterator[Any]:
    """Sso(**settings) for this test, closed after it."""
    made: list[Sso] = []

    def make(prov: OidcProvider = provider, **settings: Any) -> Sso:
        made.append(Sso(system, prov, **settings))
        return made[-1]

    yield make
    for s in made:
        s.close()


# ---- the flow as a browser walks it (httpx) ----------------------------------


def start(person: Approver, api_url: str, next_path: str | None = None) -> str:
    """GET /signin/oidc[?next=]: checks the state cookie; the provider's authorization URL."""
    r = person.http.get(f"{api_url}/signin/oidc",
                        params={"next": next_path} if next_path is not None else None)
    assert r.status_code == 303, (r.status_code, r.text[:800])
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("cs_oidc="))
    for attr in ("Path=/signin/oidc", "HttpOnly", "SameSite=Lax", "Max-Age=600"):
        assert attr in cookie, cookie
    return str(r.headers["location"])


def at_provider(person: Approver, auth_url: str, login: str) -> str:
    """Signs in at the provider as `login` and consents; the callback URL the
    provider sends the browser to (not followed)."""
    url = auth_url
    for _ in range(12):
        if urlsplit(url).path == "/signin/oidc/callback":
            return url
        r = person.http.get(url)
        if r.status_code in (302, 303):
            url = urljoin(url, r.headers["location"])
            continue
        m = PROVIDER_FORM.search(r.text)
        assert r.status_code == 200 and m, (url, r.status_code, r.text[:800])
        fields = {"prompt": m.group(2)}
        if m.group(2) == "login":
            fields.update(login=login, password="any password")
        r = person.post(urljoin(url, html.unescape(m.group(1))), fields)
        assert r.status_code in (302, 303), (r.status_code, r.text[:800])
        url = urljoin(url, r.headers["location"])
    raise AssertionError(f"the provider never sent the browser back: {url}")


def sso_sign_in(person: Approver, api_url: str, login: str,
                next_path: str | None = None) -> httpx.Response:
    """The whole walk; the api's answer to the callback (not followed)."""
    return person.http.get(at_provider(person, start(person, api_url, next_path), login))


def landed(r: httpx.Response, person: Approver) -> str:
    """Checks a successful callback: 303 to a local path with a fresh session
    cookie and the state cookie cleared; the path."""
    assert r.status_code == 303, (r.status_code, r.text[:800])
    location = str(r.headers["location"])
    assert location.startswith("/") and not location.startswith("//"), location
    cookies = r.headers.get_list("set-cookie")
    session = next(h for h in cookies if h.startswith(SESSION_COOKIE + "="))
    for attr in ("HttpOnly", "SameSite=Lax", "Path=/", "Max-Age="):
        assert attr in session, session
    assert any(h.startswith("cs_oidc=;") and "Max-Age=0" in h for h in cookies), cookies
    assert person.session
    return location


def with_query(url: str, **changes: str | None) -> str:
    """url with query parameters replaced (None: removed)."""
    u = urlsplit(url)
    q = {k: v[0] for k, v in parse_qs(u.query, keep_blank_values=True).items()}
    for k, v in changes.items():
        if v is None:
            q.pop(k, None)
        else:
            q[k] = v
    return urlunsplit(u._replace(query=urlencode(q)))


def refused(r: httpx.Response, status: int, words: str, person: Approver | None = None) -> None:
    assert r.status_code == status and words in r.text, (r.status_code, r.text[:1500])
    assert not any(h.startswith(SESSION_COOKIE + "=") for h in r.headers.get_list("set-cookie"))
    if person is not None:
        assert person.session is None


def sessions(system: System) -> list[tuple[Any, ...]]:
    return system.sql("SELECT a.name, s.method, s.revoked_at IS NULL FROM sessions s "
                      "JOIN approvers a ON a.id = s.approver_id ORDER BY s.created_at")


def signed_in_as(person: Approver, api_url: str) -> str | None:
    """Whom the browser's session cookie signs in (None: nobody)."""
    r = person.http.get(f"{api_url}/inbox")
    if r.status_code == 303:
        return None
    m = re.search(r"Signed in as <b>([^<]+)</b>", r.text)
    assert r.status_code == 200 and m, (r.status_code, r.text[:800])
    return m.group(1)


# ---- 1. the issue's flow in Chromium -----------------------------------------


def run_browser(env: dict[str, str], log: Path) -> subprocess.CompletedProcess[str]:
    npm_ci(BROWSER_DIR, "playwright-core")
    out = subprocess.run(["node", "oidc.mjs"], cwd=BROWSER_DIR, text=True, capture_output=True,
                         env={**os.environ, **env}, timeout=scaled(180))
    log.write_text(out.stdout + out.stderr)
    return out


def approve_in_chromium(s: Sso, login: str, name: str, shots: str) -> None:
    s.system.stub.program("/v1/refunds", status=201, body=b'{"refund":"re_9"}')
    p = s.submit()
    before = s.system.log_dir / "status-before-signin.png"
    after = s.system.log_dir / "decision-signed-in.png"
    out = run_browser({"CS_PAGE": p["approval_url"], "CS_LOGIN": login, "CS_NAME": name,
                       "CS_REASON": REASON, "CS_SHOT_BEFORE": str(before),
                       "CS_SHOT_AFTER": str(after)}, s.system.log_dir / "browser.log")
    assert out.returncode == 0, out.stdout + out.stderr
    for shot in (before, after):
        assert shot.stat().st_size > 10_000, shot
        shutil.copyfile(shot, f"/tmp/oidc-390-{shots}-{shot.name}")
    request_id = s.system.approval_by_id(p["approval_id"])["request_id"]
    done = s.system.wait_status(request_id, "executed")
    assert done["response_status"] == 201
    assert s.system.stub.count("/v1/refunds") == 1
    assert s.system.sql("SELECT a.name, v.decision, v.reason FROM votes v "
                        "JOIN approvers a ON a.id = v.cast_by") == [
        (name, "approve", "approved after single sign-on")]
    ((method, ua),) = s.system.sql("SELECT method, user_agent FROM sessions")
    assert method == "oidc" and "Chrom" in ua
    assert s.system.sql("SELECT count(*) FROM oidc_logins") == [(0,)]
    assert s.system.sql("SELECT count(*) FROM audit WHERE action = 'session.created'") == [(1,)]


def test_sso_in_chromium_mapped_by_subject(sso: Any) -> None:
    s = sso(approver_args={"alice": ("--oidc-subject", "a.lovelace")})
    approve_in_chromium(s, "a.lovelace", "alice", "subject")


def test_sso_in_chromium_mapped_by_verified_email(sso: Any) -> None:
    s = sso(approver_args={"bob": ("--email", "Bob.Builder@example.test")})
    approve_in_chromium(s, "bob.builder", "bob", "email")


# ---- 2. signed in, but not an approver; unknown people -----------------------


def test_sso_non_approver_sees_not_an_approver_and_cannot_vote(sso: Any) -> None:
    s = sso()
    s.approver("carol", "--oidc-subject", "carol.sso")
    p = s.submit()
    path = urlsplit(p["approval_url"]).path
    with Approver() as carol:
        assert landed(sso_sign_in(carol, s.url, "carol.sso", path), carol) == path
        text = carol.page(p["approval_url"])
        assert "Signed in as <b>carol</b>" in text and "who is not an approver" in text
        assert 'name="decision"' not in text
        csrf = carol.session_csrf(p["approval_url"])
        for decision in ("approve", "deny"):
            r = carol.post(p["approval_url"], {"csrf": csrf, "decision": decision, "reason": ""})
            assert r.status_code == 403 and "not an approver" in r.text, (r.status_code, r.text)
    assert s.system.approval_by_id(p["approval_id"])["status"] == "pending"
    assert s.system.sql("SELECT count(*) FROM votes") == [(0,)]
    assert sessions(s.system) == [("carol", "oidc", True)]


def test_sso_group_claim_grants_the_operator_role_for_the_session(sso: Any) -> None:
    """CS_OIDC_OPERATOR_CLAIM names an ID token claim; its values grant the console
    role for that session only (the approver row keeps none)."""
    s = sso(CS_OIDC_SCOPES="openid email profile groups", CS_OIDC_OPERATOR_CLAIM="groups",
            CS_OIDC_OPERATOR_READ="countersign-ro", CS_OIDC_OPERATOR_WRITE="countersign-ops")
    s.approver("dave", "--oidc-subject", "dave.ops")
    s.approver("erin", "--oidc-subject", "erin.ro")
    s.approver("frank", "--oidc-subject", "frank")
    p = s.submit()
    roles = {}
    for login, name in (("dave.ops", "dave"), ("erin.ro", "erin"), ("frank", "frank")):
        with Approver() as person:
            assert landed(sso_sign_in(person, s.url, login, "/console"), person) == "/console"
            r = person.http.get(f"{s.url}/console")
            roles[name] = r.status_code
            if r.status_code != 200:
                continue
            csrf = person.session_csrf(f"{s.url}/console")
            c = person.post(f"{s.url}/console/approvals/{p['approval_id']}/cancel",
                            {"csrf": csrf, "reason": f"by {name}"})
            roles[name + "-post"] = c.status_code
    assert roles == {"dave": 200, "dave-post": 303, "erin": 200, "erin-post": 403,
                     "frank": 403}, roles
    row = s.system.approval_by_id(p["approval_id"])
    assert row["status"] == "cancelled" and row["decision_reason"] == "by dave"
    created = s.system.sql("SELECT p.name, a.detail->>'operator_role' FROM audit a "
                           "JOIN approvers p ON 'approver:' || p.id = a.actor "
                           "WHERE a.action = 'session.created' ORDER BY a.id")
    assert created == [("dave", "write"), ("erin", "read"), ("frank", None)]
    assert s.system.sql("SELECT count(*) FROM approvers WHERE operator_role IS NOT NULL") == [(0,)]


def test_sso_unknown_person_is_refused_without_a_session(sso: Any) -> None:
    s = sso(approver_args={"alice": ("--email", "alice@corp.example")})
    p = s.submit()
    with Approver() as mallory:
        r = sso_sign_in(mallory, s.url, "mallory", urlsplit(p["approval_url"]).path)
        refused(r, 403, "mallory@example.test, who is not a Countersign approver", mallory)
        assert signed_in_as(mallory, s.url) is None
        # The login was taken: the same answer again is refused, still without a session.
        r = mallory.http.get(str(r.request.url))
        assert r.status_code == 403 and mallory.session is None
    assert sessions(s.system) == []
    assert s.system.sql("SELECT count(*) FROM oidc_logins") == [(0,)]


def test_sso_email_match_needs_the_setting_and_one_approver(sso: Any) -> None:
    s = sso(match_email=False, approvers=("alice", "bob"),
            approver_args={"alice": ("--email", "alice@example.test")})
    with Approver() as alice:
        refused(sso_sign_in(alice, s.url, "alice"), 403, "not a Countersign approver", alice)
    # A subject mapping works whatever the setting.
    s.approver("dave", "--oidc-subject", "dave")
    with Approver() as dave:
        assert landed(sso_sign_in(dave, s.url, "dave"), dave) == "/inbox"
        assert signed_in_as(dave, s.url) == "dave"
    assert [r[0] for r in sessions(s.system)] == ["dave"]


def test_sso_email_shared_by_two_approvers_signs_in_neither(sso: Any) -> None:
    s = sso(approver_args={"alice": ("--email", "team@example.test"),
                           "bob": ("--email", "TEAM@example.test")})
    with Approver() as team:
        refused(sso_sign_in(team, s.url, "team"), 403, "not a Countersign approver", team)
    # A subject of its own wins over the email, and an email is not a way in
    # to an approver whose identity is a different subject.
    s.approver("erin", "--email", "erin@example.test", "--oidc-subject", "erin.sub")
    with Approver() as erin:
        refused(sso_sign_in(erin, s.url, "erin"), 403, "not a Countersign approver", erin)
    with Approver() as erin:
        assert landed(sso_sign_in(erin, s.url, "erin.sub"), erin) == "/inbox"
        assert signed_in_as(erin, s.url) == "erin"
    assert sessions(s.system) == [("erin", "oidc", True)]


# ---- 3. attacks on the flow --------------------------------------------------


def test_sso_callback_state_is_bound_to_the_browser(sso: Any) -> None:
    s = sso(approver_args={"alice": ("--oidc-subject", "alice")})
    with Approver() as attacker, Approver() as victim, Approver() as bare:
        # Login CSRF: the attacker signs in at the provider as himself and
        # sends the answer to a victim who started a sign-in of her own.
        callback = at_provider(attacker, start(attacker, s.url), "alice")
        start(victim, s.url)
        refused(victim.http.get(callback), 403, "not started in this browser", victim)
        # No state cookie at all.
        refused(bare.http.get(callback), 403, "not started in this browser", bare)
        # The browser that started it, without state or code.
        refused(attacker.http.get(with_query(callback, state=None)), 401,
                "lacks its state or code", attacker)
        refused(attacker.http.get(with_query(callback, code=None)), 401,
                "lacks its state or code", attacker)
        refused(attacker.http.get(with_query(callback, state="")), 403,
                "not started in this browser", attacker)
        # A provider's error answer.
        refused(attacker.http.get(with_query(callback, code=None, error="access_denied")), 401,
                "identity provider refused", attacker)
        # None of that spent the login: its own browser still completes it.
        assert landed(attacker.http.get(callback), attacker) == "/inbox"
    assert sessions(s.system) == [("alice", "oidc", True)]


def test_sso_replayed_callback_is_refused(sso: Any) -> None:
    s = sso(approver_args={"alice": ("--oidc-subject", "alice")})
    with Approver() as alice, Approver() as thief:
        auth = start(alice, s.url)
        state = alice.http.cookies.get("cs_oidc")
        callback = at_provider(alice, auth, "alice")
        assert landed(alice.http.get(callback), alice) == "/inbox"
        first = alice.session
        assert alice.http.cookies.get("cs_oidc") is None
        # Replayed by the same browser (its state cookie is gone) ...
        refused(alice.http.get(callback), 403, "not started in this browser")
        assert alice.session == first and signed_in_as(alice, s.url) == "alice"
        # ... and by someone who copied the state cookie too: the login was taken once.
        assert state
        thief.http.cookies.set("cs_oidc", state, domain="127.0.0.1", path="/signin/oidc")
        refused(thief.http.get(callback), 403, "already completed or has expired", thief)
    assert sessions(s.system) == [("alice", "oidc", True)]

    # The same answer four times at once (copies of the browser): one sign-in.
    with Approver() as alice:
        callback = at_provider(alice, start(alice, s.url), "alice")
        state = alice.http.cookies.get("cs_oidc")
        assert state
    copies = [Approver() for _ in range(4)]
    for c in copies:
        c.http.cookies.set("cs_oidc", state, domain="127.0.0.1", path="/signin/oidc")
    with ThreadPoolExecutor(len(copies)) as pool:
        answers = list(pool.map(lambda c: c.http.get(callback), copies))
    for c in copies:
        c.close()
    assert sorted(r.status_code for r in answers) == [303, 403, 403, 403], answers
    assert sessions(s.system) == [("alice", "oidc", True)] * 2


def test_sso_code_redeemed_twice_is_refused_by_the_provider(sso: Any) -> None:
    s = sso(approver_args={"alice": ("--oidc-subject", "alice")})
    with Approver() as alice:
        callback = at_provider(alice, start(alice, s.url), "alice")
        # Keep the pending login, to put it back after it has been taken: the
        # replay then reaches the provider with the same code and verifier.
        (row,) = s.system.sql("SELECT state_hash, nonce, verifier, next_path, expires_at "
                              "FROM oidc_logins")
        state = alice.http.cookies.get("cs_oidc")
        assert landed(alice.http.get(callback), alice) == "/inbox"
        s.system.sql("INSERT INTO oidc_logins (state_hash, nonce, verifier, next_path, "
                     "expires_at) VALUES (%s, %s, %s, %s, %s)", *row)
    with Approver() as thief:
        assert state
        thief.http.cookies.set("cs_oidc", state, domain="127.0.0.1", path="/signin/oidc")
        refused(thief.http.get(callback), 401, "token endpoint refused the code (invalid_grant)",
                thief)
    assert sessions(s.system) == [("alice", "oidc", True)]
    assert "invalid_grant" in s.proc.text()


def test_sso_wrong_iss_is_refused(sso: Any) -> None:
    s = sso(approver_args={"alice": ("--oidc-subject", "alice")})
    with Approver() as alice:
        callback = at_provider(alice, start(alice, s.url), "alice")
        assert parse_qs(urlsplit(callback).query)["iss"] == [s.prov.issuer]
        # A mix-up: the answer names another provider. The login is spent on it.
        refused(alice.http.get(with_query(callback, iss="https://evil.example")), 401,
                "iss is not the configured issuer", alice)
        refused(alice.http.get(callback), 403, "already completed or has expired", alice)
    with Approver() as alice:
        callback = at_provider(alice, start(alice, s.url), "alice")
        refused(alice.http.get(with_query(callback, iss=s.prov.issuer + "/")), 401,
                "iss is not the configured issuer", alice)
    assert sessions(s.system) == []


def test_sso_code_of_another_client_is_refused(sso: Any) -> None:
    """A code the provider issued to another client (same redirect URI, the
    api's own state, nonce and PKCE challenge) is not redeemable by the api.
    (An ID token whose aud names another client can only be made by a token
    minter: tests/unit/test_idtoken.c.)"""
    s = sso(approver_args={"alice": ("--oidc-subject", "alice")})
    with Approver() as alice:
        auth = start(alice, s.url)
        assert parse_qs(urlsplit(auth).query)["client_id"] == [CLIENT_ID]
        callback = at_provider(alice, with_query(auth, client_id=OTHER_CLIENT_ID), "alice")
        refused(alice.http.get(callback), 401, "token endpoint refused the code (invalid_grant)",
                alice)
    assert sessions(s.system) == []


def test_sso_session_fixation(sso: Any) -> None:
    s = sso(approver_args={"alice": ("--oidc-subject", "alice"),
                           "bob": ("--oidc-subject", "bob")})
    with Approver() as mallory:
        # The attacker's own real session (bob), planted in the victim's browser.
        assert landed(sso_sign_in(mallory, s.url, "bob"), mallory) == "/inbox"
        planted = mallory.session
        assert planted
    for token in (planted, secrets.token_urlsafe(32)):
        with Approver() as victim:
            victim.plant_session(token, s.url)
            assert landed(sso_sign_in(victim, s.url, "alice"), victim) == "/inbox"
            assert victim.session != token
            assert signed_in_as(victim, s.url) == "alice"
            with Approver() as holder:  # whoever holds the planted token
                holder.plant_session(token, s.url)
                assert signed_in_as(holder, s.url) is None
    assert sessions(s.system) == [("bob", "oidc", False), ("alice", "oidc", True),
                                  ("alice", "oidc", True)]


def test_sso_next_off_site_is_ignored(sso: Any) -> None:
    s = sso(approver_args={"alice": ("--oidc-subject", "alice")})
    offsite = ("//evil.example", "https://evil.example", "/\\evil.example", "evil.example",
               "//evil.example/status/x", "/%2F/evil.example", "")
    for next_path in offsite:
        with Approver() as alice:
            auth = start(alice, s.url, next_path)
            assert "evil" not in auth
            got = landed(alice.http.get(at_provider(alice, auth, "alice")), alice)
            assert got == ("/%2F/evil.example" if next_path == "/%2F/evil.example" else "/inbox")
    n = len(offsite)
    assert s.system.sql("SELECT count(*) FROM audit WHERE action = 'session.created'") == [(n,)]


# ---- 4. ES256 ----------------------------------------------------------------


def test_sso_es256_provider_happy_path(sso: Any, es256_provider: OidcProvider) -> None:
    s = sso(es256_provider, approver_args={"alice": ("--oidc-subject", "alice")})
    s.system.stub.program("/v1/refunds", status=201, body=b'{"refund":"re_es"}')
    p = s.submit()
    path = urlsplit(p["approval_url"]).path
    with Approver() as alice:
        callback = at_provider(alice, start(alice, s.url, path), "alice")
        assert landed(alice.http.get(callback), alice) == path
        r = alice.decide(p["approval_url"], "approve", "ES256 sign-in")
        assert r.status_code == 200 and "Thank you: approved" in r.text, r.text
    request_id = s.system.approval_by_id(p["approval_id"])["request_id"]
    assert s.system.wait_status(request_id, "executed")["response_status"] == 201
    assert s.system.stub.count("/v1/refunds") == 1
    assert sessions(s.system) == [("alice", "oidc", True)]
    # The api never logs the authorization code or the state.
    q = parse_qs(urlsplit(callback).query)
    log = s.proc.text()
    assert q["code"][0] not in log and q["state"][0] not in log
