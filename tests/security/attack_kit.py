"""Shared tools of the attack suite (tests/security): one deployment per module,
an HTTP client that records every response, approvers who sign in and decide
like a browser, link forging, and secret scanning.

A test module builds one :class:`Deployment` in a module-scoped fixture (a
System costs seconds; the attacks of one topic share it) with
:func:`deployment`. Every HTTP response a test receives through
:meth:`Deployment.client` is recorded; at teardown every recorded response,
every process log and the CLI log are searched for every grant secret and for
the master key, and every sign-in link and session token the suite was handed
is searched for where it must not be (see :meth:`Deployment.token_leaks`), on
top of the harness's own checks.

How a person decides (SPEC, security invariant 2): `countersign approval links
ID` prints one-time sign-in links (`/signin/<token>`); POSTing one opens a
session (`cs_session` cookie) and answers 303 to the approval's page
(`/status/<signed token>`, the agent's approval_url), whose decision form
carries the session's csrf token. That walk is tests/integration/approver.py's
:class:`Approver`, here driving a recording client. The page-token helpers mirror
lib/cs_link.c so that tests can forge, tamper with and correctly re-sign the
approval_url and batch links.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import re
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from approver import DECISION_FORM, HIDDEN, SESSION_COOKIE, Approver
from harness import System, safe_name
from services import Kafka, Postgres, StubProvider, scaled, wait_for

TEMPLATE = "cs_template"
ADMIN_TOKEN = "sec-admin-" + secrets.token_hex(8)

VIEW_PURPOSE = b"countersign/status-link/v1"     # /status/<token>: the approval_url
BATCH_PURPOSE = b"countersign/batch-link/v1"     # /batch/<token>
CSRF_PURPOSE = b"countersign/csrf/v2"            # session-bound form tokens
OLD_PURPOSES = (b"countersign/approval-link/v1", b"countersign/inbox-link/v1",
                b"countersign/csrf/v1", b"countersign/webhook/v1")
NIL = "00000000-0000-0000-0000-000000000000"
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
GRACE_MS = 30 * 86400_000  # CS_LINK_GRACE_MS: a page link outlives its approval's window
SESSION = SESSION_COOKIE
SIGNIN_TOKEN = re.compile(r"/signin/([A-Za-z0-9_-]{43})(?![A-Za-z0-9_-])")


# ---- link tokens -----------------------------------------------------------


def derive(master_key_b64: str, purpose: bytes) -> bytes:
    """cs_key_derive: HMAC-SHA256(master, purpose)."""
    return hmac.new(base64.b64decode(master_key_b64), purpose, hashlib.sha256).digest()


def sign(key: bytes, approval: str, expires_ms: int, approver: str = NIL,
         voter: str = NIL) -> str:
    """A page token as cs_link_sign makes it (pages carry nil approver and voter)."""
    raw = (b"\x01" + uuid.UUID(approval).bytes + uuid.UUID(approver).bytes
           + uuid.UUID(voter).bytes + expires_ms.to_bytes(8, "big"))
    raw += hmac.new(key, raw, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decision_form(page: httpx.Response) -> dict[str, str] | None:
    """The hidden fields of the page's decision form (not the sign-out bar's), or None
    when the page offers no decision (approver.Approver.form asserts one instead)."""
    for body in DECISION_FORM.findall(page.text):
        if 'name="decision"' in body:
            return {k: html.unescape(v) for k, v in HIDDEN.findall(body)}
    return None


def csrf_of(page: httpx.Response) -> str:
    form = decision_form(page)
    assert form and form.get("csrf"), \
        f"no decision form on the page ({page.status_code}): {page.text[:400]}"
    return form["csrf"]


def session_csrf(page: httpx.Response) -> str:
    """The session's csrf token from the sign-out bar every signed-in page starts with."""
    m = re.search(r'action="/signout" class="bar">.*?name="csrf" value="([^"]+)"', page.text, re.S)
    assert m, f"not signed in on this page ({page.status_code}): {page.text[:300]}"
    return m.group(1)


def token_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[1]


def token_hash(token: str) -> bytes:
    """How signin_links and sessions store a token: SHA-256 of its text."""
    return hashlib.sha256(token.encode()).digest()


def error_code(r: httpx.Response) -> str:
    try:
        return str(r.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return f"<{r.status_code} not a JSON error: {r.text[:120]!r}>"


# ---- recording ---------------------------------------------------------------


@dataclass
class Seen:
    """One HTTP exchange a test made: what was asked and everything answered."""

    method: str
    url: str
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def text(self) -> str:
        head = "\n".join(f"{k}: {v}" for k, v in self.headers)
        return f"{self.method} {self.url} {self.status}\n{head}\n\n" + self.body.decode(
            "utf-8", errors="replace")


class Deployment:
    """A System with an api (admin token set), a bot1 API key and recording clients."""

    def __init__(self, system: System, stub: StubProvider) -> None:
        self.system = system
        self.stub = stub
        self.seen: list[Seen] = []
        self.secrets: list[str] = [system.secret]
        self.api_keys: list[str] = []
        self.url = ""
        self.key = ""
        self.ids: dict[str, Any] = {}
        self.signin_tokens: list[str] = []   # every one-time sign-in token handed to us
        self.session_tokens: list[str] = []  # every session cookie set for us
        self.http: httpx.Client = self.client()

    # -- HTTP ------------------------------------------------------------------

    def _record(self, r: httpx.Response) -> None:
        r.read()
        self.seen.append(Seen(r.request.method, str(r.request.url), r.status_code,
                              list(r.headers.multi_items()), r.content))

    def client(self, **kw: Any) -> httpx.Client:
        """A fresh client (own cookie jar) whose responses are all recorded."""
        kw.setdefault("timeout", scaled(30))
        c = httpx.Client(event_hooks={"response": [self._record]}, **kw)
        if self.url:
            c.base_url = httpx.URL(self.url)
        return c

    def start_api(self, **env: str) -> None:
        proc = self.system.api(CS_ADMIN_TOKEN=ADMIN_TOKEN, **env)
        self.url = proc.url  # type: ignore[attr-defined]
        self.http.base_url = httpx.URL(self.url)

    def new_key(self, agent: str = "bot1", *extra: str) -> str:
        out = self.system.cli("key", "create", agent, *extra)
        key = str(json.loads(out.stdout)["api_key"])
        self.api_keys.append(key)
        return key

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    def submit(self, url: str | None = None, *, grant: str = "stripe", amount: int | None = 500,
               key: str | None = None, path: str = "/v1/refunds", **extra: Any) -> httpx.Response:
        body: dict[str, Any] = {"method": "POST", "url": url or f"{self.stub.url}{path}",
                                "grant_id": grant, "reason": "security suite"}
        if amount is not None:
            body["json"] = {"amount": amount}
        body.update(extra)
        return self.http.post("/v1/proxy", json=body, headers=self.auth(key))

    def pending(self, **kw: Any) -> str:
        r = self.submit(**kw)
        assert r.status_code == 202, r.text
        return str(r.json()["approval_id"])

    # -- links and sign-in -------------------------------------------------------

    def fix(self, link: str) -> str:
        """A link as printed, pointed at this deployment's api."""
        return re.sub(r"^https?://[^/]+", self.url, link)

    def _minted(self, url: str) -> str:
        url = self.fix(url)
        self.signin_tokens.append(token_of(url))
        return url

    def links(self, approval_id: str) -> dict[str, dict[str, Any]]:
        """Fresh one-time sign-in links of each approver slot, by the slot's name."""
        return {x["approver"]: {**x, "url": self._minted(x["url"])}
                for x in self.system.links(approval_id)}

    def link(self, approval_id: str, approver: str = "alice") -> str:
        """A one-time sign-in link for whoever holds `approver`'s slot, to the approval's page."""
        return str(self.links(approval_id)[approver]["url"])

    def batch_link(self, batch_id: str, approver: str = "alice", agent: str = "bot1") -> str:
        out = self.system.cli("batch", "links", agent, batch_id).stdout
        for line in out.splitlines():
            x = json.loads(line)
            if x["approver"] == approver:
                return self._minted(str(x["url"]))
        raise AssertionError(f"no batch link for {approver}: {out}")

    def signin_link(self, approver: str, next_path: str | None = None) -> str:
        """`countersign approver signin-link NAME [--next PATH]`."""
        extra = ["--next", next_path] if next_path else []
        return self._minted(str(self.system.cli_json("approver", "signin-link", approver,
                                                     *extra)["url"]))

    def page(self, approval_id: str) -> str:
        """The approval's page (its approval_url), signed as lib/cs_link.c signs it."""
        (exp,) = self.system.sql("SELECT (extract(epoch FROM expires_at) * 1000)::bigint "
                                 "FROM approvals WHERE id = %s", approval_id)[0]
        token = sign(derive(self.system.master_key, VIEW_PURPOSE), approval_id, exp + GRACE_MS)
        return f"{self.url}/status/{token}"

    def approver(self, client: httpx.Client | None = None) -> Approver:
        """approver.Approver (one person's browser) on a recording client (or on `client`)."""
        person = Approver()
        person.http.close()
        person.http = client or self.client()
        return person

    def sign_in(self, link: str, client: httpx.Client | None = None) -> tuple[httpx.Client, str]:
        """Spends a sign-in link like a browser (Approver.sign_in): the client, now
        holding the session cookie, and the page the link leads to."""
        person = self.approver(client)
        page = person.sign_in(link)
        assert person.session
        self.session_tokens.append(person.session)
        return person.http, page

    def session(self, approver: str, next_path: str | None = None) -> tuple[httpx.Client, str]:
        """A browser signed in as `approver` through an operator-minted link."""
        return self.sign_in(self.signin_link(approver, next_path))

    def browser(self, session: str | None = None) -> httpx.Client:
        """A fresh recording client holding cookie cs_session=`session` for the api's
        host (planted, stolen or replayed: the tests say which)."""
        person = self.approver()
        if session is not None:
            person.plant_session(session, self.url)
        return person.http

    def decide(self, c: httpx.Client, page: str, decision: str = "approve", reason: str = "",
               origin: str | None = None, **extra: str) -> httpx.Response:
        """Presses a button of the decision form `page` shows c's session."""
        person = self.approver(c)
        if origin is None:
            return person.decide(page, decision, reason, **extra)
        return person.post(page, {**person.form(page), "decision": decision, "reason": reason,
                                  **extra}, origin=origin)

    def vote(self, link: str, decision: str = "approve", reason: str = "",
             origin: str | None = None) -> httpx.Response:
        """Signs in with a sign-in link, opens the page it leads to and decides there.
        The response is the decision POST's, or the page's when it offers no form."""
        c, page = self.sign_in(link)
        shown = c.get(page)
        if decision_form(shown) is None:
            return shown
        return self.decide(c, page, decision, reason, origin)

    def vote_late(self, link: str, decision: str = "approve") -> httpx.Response:
        """A vote sent after the page stopped showing a form (decided, expired), with the
        session's own csrf token (from the sign-out bar)."""
        c, page = self.sign_in(link)
        person = self.approver(c)
        assert decision_form(c.get(page)) is None, "the page still offers a decision"
        return person.post(page, {"decision": decision, "csrf": person.session_csrf(page)})

    # -- state -------------------------------------------------------------------

    def votes(self, approval_id: str) -> int:
        return int(self.system.sql("SELECT count(*) FROM votes WHERE approval_id = %s",
                                   approval_id)[0][0])

    def status(self, approval_id: str) -> str:
        return str(self.system.approval_by_id(approval_id)["status"])

    def wait_id(self, approval_id: str, want: str | set[str],
                timeout: float = 30) -> dict[str, Any]:
        wanted = {want} if isinstance(want, str) else want

        def check() -> dict[str, Any]:
            a = self.system.approval_by_id(approval_id)
            return a if a["status"] in wanted else {}

        try:
            return wait_for(check, timeout, what=f"{approval_id} to become {sorted(wanted)}")
        except TimeoutError:
            a = self.system.approval_by_id(approval_id)
            raise AssertionError(f"{approval_id} is {a['status']} ({a.get('error_code')}), "
                                 f"wanted {sorted(wanted)}") from None

    def event(self, kind: str, timeout: float = 30, **match: Any) -> dict[str, Any]:
        """The first event of type `kind` on the events topic whose fields equal `match`
        (waits for the relay to publish it)."""
        def find() -> dict[str, Any] | None:
            for m in self.system.topic("events", timeout=5):
                e = m["value"]
                if e.get("type") == kind and all(e.get(k) == v for k, v in match.items()):
                    return dict(e)
            return None

        return dict(wait_for(find, timeout, what=f"a {kind} event with {match}"))

    def add_grant(self, grant: str, secret: str, bases: list[str], *, policy: str = "pay",
                  agents: str = "bot1", inject: str | None = None, header: str | None = None,
                  idempotency_keys: bool = False, exec_deadline: int | None = None) -> None:
        args = ["grant", "set", grant, "--policy", policy, "--agents", agents, "--secret-stdin"]
        for b in bases:
            args += ["--allow", b]
        if inject:
            args += ["--inject", inject]
        if header:
            args += ["--header", header]
        if idempotency_keys:
            args.append("--idempotency-keys")
        if exec_deadline is not None:  # seconds a never-sent call is retried
            args += ["--deadline", str(exec_deadline)]
        self.system.cli(*args, input=secret + "\n")
        self.secrets.append(secret)

    # -- leak scanning -----------------------------------------------------------

    def needles(self) -> dict[str, bytes]:
        """Every form in which a grant secret or the master key must not appear."""
        out: dict[str, bytes] = {}
        for i, s in enumerate(self.secrets):
            raw = s.encode()
            out[f"secret{i}"] = raw
            out[f"secret{i} base64"] = base64.b64encode(raw).rstrip(b"=")
            out[f"secret{i} hex"] = raw.hex().encode()
        mk = self.system.master_key
        out["master key"] = mk.encode()
        out["master key (hex)"] = base64.b64decode(mk).hex().encode()
        out["master key (base64url)"] = base64.urlsafe_b64encode(base64.b64decode(mk)).rstrip(b"=")
        return out

    def leaks_in(self, what: str, data: bytes | str) -> list[str]:
        blob = data.encode() if isinstance(data, str) else data
        low = blob.lower()
        return [f"{name} in {what}" for name, needle in self.needles().items()
                if needle in blob or needle.lower() in low]

    def scan_responses_and_logs(self) -> list[str]:
        problems: list[str] = []
        for s in self.seen:
            problems += self.leaks_in(f"the response to {s.method} {s.url}", s.text())
        for log in sorted(self.system.log_dir.glob("*.log")):
            problems += self.leaks_in(f"log {log.name}", log.read_bytes())
        return problems + self.token_leaks()

    def token_needles(self) -> dict[str, str]:
        out = {f"sign-in token {t[:6]}...": t for t in set(self.signin_tokens)}
        out.update({f"session token {t[:6]}...": t for t in set(self.session_tokens)})
        return out

    def token_leaks(self, extra: dict[str, bytes] | None = None) -> list[str]:
        """Sign-in and session tokens may reach only their owner: a sign-in token the CLI
        output (cli.log holds it) and the link's own URL; a session token the Set-Cookie
        of the sign-in that minted it (and the browser's own requests). Never a process
        log, another response (headers or body), or `extra` (name -> bytes)."""
        problems: list[str] = []
        needles = self.token_needles()
        if not needles:
            return problems
        for s in self.seen:
            if s.method == "POST" and s.url.endswith("/signin-link"):
                continue  # the operator API handing a sign-in link to the operator
            head = [(k, v) for k, v in s.headers if not (
                k.lower() == "set-cookie" and v.startswith(SESSION + "=") and s.method == "POST"
                and "/signin/" in s.url)]
            shown = "\n".join(f"{k}: {v}" for k, v in head) + "\n" + s.body.decode(
                "utf-8", errors="replace")
            problems += [f"{n} in the response to {s.method} {s.url}"
                         for n, t in needles.items() if t in shown]
        session_cookies = [v for s in self.seen for k, v in s.headers
                           if k.lower() == "set-cookie" and v.startswith(SESSION + "=")]
        for t in set(self.session_tokens):
            n = sum(1 for v in session_cookies if v.startswith(f"{SESSION}={t};"))
            if n != 1:
                problems.append(f"session token {t[:6]}... set by {n} responses")
        for log in sorted(self.system.log_dir.glob("*.log")):
            if log.name == "cli.log":
                continue
            text = log.read_text(errors="replace")
            problems += [f"{n} in log {log.name}" for n, t in needles.items() if t in text]
        for what, blob in (extra or {}).items():
            found = blob.decode("utf-8", errors="replace")
            problems += [f"{n} in {what}" for n, t in needles.items() if t in found]
        return problems


@contextmanager
def deployment(request: pytest.FixtureRequest, pg: Postgres, kafka: Kafka,
               name: str | None = None) -> Iterator[Deployment]:
    """One System (own database, topics, master key and stub) shared by a module."""
    stub = StubProvider()
    system = System(name or ("sec_" + safe_name(request.node.name)), pg, kafka, stub, TEMPLATE)
    d = Deployment(system, stub)
    failed_before = request.session.testsfailed
    try:
        yield d
    finally:
        failed = request.session.testsfailed > failed_before
        try:
            leaks = d.scan_responses_and_logs()
            system.close(failed=failed or bool(leaks))
            assert not leaks, leaks
        finally:
            stub.close()
            pg.drop_database(system.db_name)


def refusals(d: Deployment) -> list[str]:
    """Codes of refused votes as audited, oldest first."""
    return [r[0] for r in d.system.sql(
        "SELECT detail->>'code' FROM audit WHERE action = 'vote.refused' ORDER BY id")]
