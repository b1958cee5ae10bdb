"""Shared tools of the attack suite (tests/security): one deployment per module,
an HTTP client that records every response, link forging, and secret scanning.

A test module builds one :class:`Deployment` in a module-scoped fixture (a
System costs seconds; the attacks of one topic share it) with
:func:`deployment`. Every HTTP response a test receives through
:meth:`Deployment.client` is recorded; at teardown every recorded response,
every process log and the CLI log are searched for every grant secret and for
the master key, on top of the harness's own checks.

The link-signing helpers mirror lib/cs_link.c (copied from
tests/integration/test_api.py, not imported: test modules stay independent).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
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

from harness import System, safe_name
from services import Kafka, Postgres, StubProvider, scaled, wait_for

TEMPLATE = "cs_template"
ADMIN_TOKEN = "sec-admin-" + secrets.token_hex(8)

LINK_PURPOSE = b"countersign/approval-link/v1"
VIEW_PURPOSE = b"countersign/status-link/v1"
INBOX_PURPOSE = b"countersign/inbox-link/v1"
BATCH_PURPOSE = b"countersign/batch-link/v1"
CSRF_PURPOSE = b"countersign/csrf/v1"
NIL = "00000000-0000-0000-0000-000000000000"
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


# ---- link tokens -----------------------------------------------------------


def derive(master_key_b64: str, purpose: bytes) -> bytes:
    """cs_key_derive: HMAC-SHA256(master, purpose)."""
    return hmac.new(base64.b64decode(master_key_b64), purpose, hashlib.sha256).digest()


def sign(key: bytes, approval: str, approver: str, voter: str, expires_ms: int) -> str:
    raw = (b"\x01" + uuid.UUID(approval).bytes + uuid.UUID(approver).bytes
           + uuid.UUID(voter).bytes + expires_ms.to_bytes(8, "big"))
    raw += hmac.new(key, raw, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def csrf_of(page: httpx.Response) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert m, f"no form on the page ({page.status_code}): {page.text[:300]}"
    return m.group(1)


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

    # -- links -------------------------------------------------------------------

    def fix(self, link: str) -> str:
        """A link as printed, pointed at this deployment's api."""
        return re.sub(r"^https?://[^/]+", self.url, link)

    def links(self, approval_id: str) -> dict[str, dict[str, Any]]:
        return {x["approver"]: {**x, "url": self.fix(x["url"])}
                for x in self.system.links(approval_id)}

    def link(self, approval_id: str, approver: str = "alice") -> str:
        return str(self.links(approval_id)[approver]["url"])

    def batch_link(self, batch_id: str, approver: str = "alice", agent: str = "bot1") -> str:
        out = self.system.cli("batch", "links", agent, batch_id).stdout
        for line in out.splitlines():
            x = json.loads(line)
            if x["approver"] == approver:
                return self.fix(str(x["url"]))
        raise AssertionError(f"no batch link for {approver}: {out}")

    def open(self, link: str, client: httpx.Client | None = None) -> tuple[httpx.Client, str]:
        """Opens a review page like a person: the client (with its cookie) and the form token."""
        c = client or self.client()
        page = c.get(link)
        assert page.status_code == 200, page.text[:300]
        return c, csrf_of(page)

    def vote(self, link: str, decision: str = "approve", reason: str = "",
             origin: str | None = None) -> httpx.Response:
        c, csrf = self.open(link)
        return c.post(link, data={"decision": decision, "reason": reason, "csrf": csrf},
                      headers={"Origin": origin or self.url})

    def vote_late(self, link: str, decision: str = "approve") -> httpx.Response:
        """A vote sent after the page stopped showing a form (decided, expired): the
        token comes from the cookie the page still set."""
        c = self.client()
        page = c.get(link)
        assert "<form" not in page.text, "the page still offers a decision"
        return c.post(link, data={"decision": decision, "csrf": c.cookies.get("cs_csrf", "")},
                      headers={"Origin": self.url})

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

    def add_grant(self, grant: str, secret: str, bases: list[str], *, policy: str = "pay",
                  agents: str = "bot1", inject: str | None = None, header: str | None = None,
                  idempotency_keys: bool = False) -> None:
        args = ["grant", "set", grant, "--policy", policy, "--agents", agents, "--secret-stdin"]
        for b in bases:
            args += ["--allow", b]
        if inject:
            args += ["--inject", inject]
        if header:
            args += ["--header", header]
        if idempotency_keys:
            args.append("--idempotency-keys")
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
