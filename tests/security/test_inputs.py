"""Inputs that mean two things (issue 12, section 5): a request that Countersign's
policy and approval page read one way and a provider (or a proxy in front of the
api) reads another. Each attack is refused; nothing is stored and the provider
receives nothing.

- a JSON member name given twice -- in a raw `body` or `body_b64` declared JSON,
  in the `json` body, in an API body or a Kafka envelope: json-c keeps the last,
  a provider may keep the first ("amount": 99999 then "amount": 5 passed a
  "> 100 needs approval" rule and reached the provider as both);
- a NUL in `query_params` or `path_params`, which cut `1\\u00009999` to `1`;
- method-override headers (X-HTTP-Method-Override, X-HTTP-Method,
  X-Method-Override), which turn the POST the policy saw into a DELETE;
- HTTP framing on the api: Content-Length beside Transfer-Encoding, two
  different Content-Lengths (request smuggling), no Host or two;
- connection exhaustion: one client address holding every connection the api
  accepts with unfinished requests;
- case-sensitive path rules (opt-in "path_ci"), and text bodies over 64 KiB
  shown as "binary data" beside an active Approve button (now shown whole; a binary
  body is offered as a download and for denial only, and an approve POSTed for it
  anyway is refused).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from html import escape as html_escape
from typing import Any

import httpx
import pytest

from attack_kit import Deployment, deployment, error_code, session_csrf
from services import Kafka, Postgres, wait_for

DUP = '{"amount": 99999, "amount": 5}'          # the policy saw 5, the provider 99999 first
DUP_NESTED = '{"refund": {"amount": 99999, "amount": 5}}'
DUP_ESCAPED = '{"amount": 99999, "\\u0061mount": 5}'  # the same name, spelled with an escape


@pytest.fixture(scope="module")
def d(request: pytest.FixtureRequest, pg: Postgres, kafka: Kafka) -> Iterator[Deployment]:
    with deployment(request, pg, kafka, "sec_inputs") as d:
        d.system.setup()
        d.start_api()
        d.system.worker()
        d.key = d.new_key()
        yield d


def nothing_reached(d: Deployment, prefix: str = "/v1/") -> None:
    time.sleep(0.3)
    assert d.stub.count(prefix) == 0, [r.path for r in d.stub.requests(prefix)]


def test_duplicate_names_in_a_raw_json_body_are_refused(d: Deployment) -> None:
    before = d.system.sql("SELECT count(*) FROM approvals")[0][0]
    for ctype in ("application/json", "application/json; charset=utf-8", "APPLICATION/JSON",
                  "application/vnd.api+json"):
        for doc in (DUP, DUP_NESTED, DUP_ESCAPED):
            for field, value in (("body", doc),
                                 ("body_b64", base64.b64encode(doc.encode()).decode())):
                extra: dict[str, Any] = {field: value, "extra_headers": {"Content-Type": ctype}}
                r = d.submit(amount=None, path="/v1/refunds/dup", **extra)
                assert r.status_code == 400 and error_code(r) == "invalid_request", \
                    (ctype, doc, field, r.text)
                assert "twice" in r.json()["error"]["message"], r.text
    # Declared JSON, but not one strict value: invalid UTF-8, two values, empty.
    for raw in (b'{"amount": "\xff"}', b'{"amount": 5} {"amount": 99999}', b""):
        r = d.submit(amount=None, path="/v1/refunds/dup",
                     body_b64=base64.b64encode(raw).decode(),
                     extra_headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and error_code(r) == "invalid_request", (raw, r.text)
    assert d.system.sql("SELECT count(*) FROM approvals")[0][0] == before
    nothing_reached(d, "/v1/refunds/dup")
    # Control: a strict JSON body and a body that is not declared JSON still pass.
    r = d.submit(amount=None, path="/v1/refunds/dup-ok", body='{"amount": 5}',
                 extra_headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    r = d.submit(amount=None, path="/v1/refunds/dup-ok", body='{"amount": 5} {',
                 extra_headers={"Content-Type": "text/plain"})
    assert r.status_code == 422 and error_code(r) == "policy_unevaluable", r.text
    # Not declared JSON, with a name twice: the rule that reads "amount" cannot be
    # evaluated (the policy reads bodies strictly too), so it is not run either.
    r = d.submit(amount=None, path="/v1/refunds/dup-ok", body=DUP,
                 extra_headers={"Content-Type": "text/plain"})
    assert r.status_code == 422 and error_code(r) == "policy_unevaluable", r.text
    r = d.submit(amount=None, path="/v1/other/dup-ok", body=DUP,
                 extra_headers={"Content-Type": "text/plain"})
    assert r.status_code == 200, r.text


def test_duplicate_names_in_api_bodies_are_refused(d: Deployment) -> None:
    """The API body itself: a second grant_id, method or url must not replace the first."""
    url = f"{d.stub.url}/v1/refunds/api-dup"
    for raw in (
        f'{{"method": "POST", "url": "{url}", "grant_id": "stripe", "json": {DUP}}}',
        f'{{"method": "POST", "method": "DELETE", "url": "{url}", "grant_id": "stripe"}}',
        f'{{"method": "POST", "url": "{url}", "url": "{url}/x", "grant_id": "stripe"}}',
        f'{{"method": "POST", "url": "{url}", "grant_id": "stripe", "json": {{"a": 1}}, '
        f'"reason": "x", "re\\u0061son": "y"}}',
    ):
        r = d.http.post("/v1/proxy", content=raw.encode(),
                        headers={**d.auth(), "Content-Type": "application/json"})
        assert r.status_code == 400 and error_code(r) == "malformed_json", (raw, r.text)
        assert "twice" in r.json()["error"]["message"], r.text
    # The operator API too.
    r = d.http.post("/v1/admin/agents", content=b'{"name": "dup-a", "name": "dup-b"}',
                    headers={**d.admin(), "Content-Type": "application/json"})
    assert r.status_code == 400 and error_code(r) == "malformed_json", r.text
    nothing_reached(d, "/v1/refunds/api-dup")


def test_duplicate_names_in_envelopes_are_dead_lettered(d: Deployment) -> None:
    s = d.system
    url = f"{d.stub.url}/v1/refunds/env-dup"
    raws = [
        f'{{"request_id": "env-dup-1", "agent": "bot1", "grant_id": "stripe", "method": "POST", '
        f'"url": "{url}", "json": {DUP}}}',
        f'{{"request_id": "env-dup-2", "agent": "bot1", "grant_id": "stripe", "method": "POST", '
        f'"url": "{url}", "url": "{url}/x", "json": {{"amount": 5}}}}',
        f'{{"request_id": "env-dup-3", "agent": "bot1", "grant_id": "stripe", "method": "POST", '
        f'"url": "{url}", "headers": {{"Content-Type": "application/json"}}, "body": '
        + json.dumps(DUP) + "}",
    ]
    for i, raw in enumerate(raws):
        s.produce_raw(f"env-dup-{i + 1}".encode(), raw.encode())

    def dead_letters() -> list[dict[str, Any]]:
        got = [m["value"] for m in s.topic("dlq", timeout=5) if m["key"].startswith("env-dup")]
        return got if len(got) == len(raws) else []

    dead = wait_for(dead_letters, 30, interval=0.5, what="the dead letters")
    assert all(v["reason"] in ("malformed_json", "invalid_request") for v in dead), dead
    assert s.sql("SELECT count(*) FROM approvals WHERE request_id LIKE 'env-dup%%'")[0][0] == 0
    nothing_reached(d, "/v1/refunds/env-dup")


def test_a_nul_in_url_parameters_is_refused(d: Deployment) -> None:
    base = f"{d.stub.url}/v1/refunds/nul"
    for extra in ({"query_params": {"amount": "1\u00009999"}},
                  {"query_params": {"id": ["1", "2\u00003"]}},
                  {"url": base + "/{id}", "path_params": {"id": "1\u00009999"}},
                  {"query_params": {"a\u0000b": "1"}}):
        body: dict[str, Any] = {"method": "POST", "url": base, "grant_id": "stripe",
                                "json": {"amount": 5}, **extra}
        r = d.http.post("/v1/proxy", json=body, headers=d.auth())
        assert r.status_code == 400 and error_code(r) in ("invalid_request", "malformed_json"), \
            (extra, r.text)
        assert "NUL" in r.json()["error"]["message"] or "U+0000" in r.json()["error"]["message"]
    nothing_reached(d, "/v1/refunds/nul")


def test_method_override_headers_are_refused(d: Deployment) -> None:
    for name in ("X-HTTP-Method-Override", "x-http-method-override", "X-HTTP-Method",
                 "X-Method-Override", "X-METHOD-OVERRIDE"):
        r = d.submit(amount=5, path="/v1/refunds/override", extra_headers={name: "DELETE"})
        assert r.status_code == 400 and error_code(r) == "forbidden_header", (name, r.text)
    nothing_reached(d, "/v1/refunds/override")


# ---- HTTP framing on the api (libmicrohttpd) -----------------------------------


def raw_exchange(d: Deployment, data: bytes, timeout: float = 5.0) -> tuple[bytes, bool]:
    """Sends data on one new connection; returns all it received and whether the api
    closed the connection (rather than leaving it open until `timeout`)."""
    host, port = d.url.removeprefix("http://").rsplit(":", 1)
    got = b""
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(data)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            s.settimeout(max(0.05, end - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                return got, False
            except ConnectionResetError:
                return got, True
            if not chunk:
                return got, True
            got += chunk
    return got, False


def statuses(data: bytes) -> list[int]:
    return [int(m) for m in re.findall(rb"(?:^|\r\n)HTTP/1\.[01] (\d{3}) ", data)]


def test_ambiguous_framing_is_refused_and_the_connection_closed(d: Deployment) -> None:
    """Content-Length beside Transfer-Encoding, or two different Content-Lengths, were
    answered as two requests on one connection: what a proxy in front of the api took
    for one request's body ran as a second request (request smuggling)."""
    auth = f"Authorization: Bearer {d.key}\r\n".encode()
    smuggled = (b"GET /v1/approvals/00000000-0000-0000-0000-000000000000 HTTP/1.1\r\n"
                b"Host: x\r\n" + auth + b"\r\n")
    chunked_then_request = b"0\r\n\r\n" + smuggled
    cases = [
        b"POST /v1/proxy HTTP/1.1\r\nHost: x\r\n" + auth
        + b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n" % len(chunked_then_request)
        + chunked_then_request,
        b"POST /v1/proxy HTTP/1.1\r\nHost: x\r\n" + auth
        + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n" + chunked_then_request,
        b"POST /v1/proxy HTTP/1.1\r\nHost: x\r\n" + auth
        + b"Content-Length: 0\r\nContent-Length: %d\r\n\r\n" % len(smuggled) + smuggled,
        b"POST /v1/proxy HTTP/1.1\r\nHost: x\r\n" + auth
        + b"Content-Length: %d\r\nContent-Length: 0\r\n\r\n" % len(smuggled) + smuggled,
        b"POST /v1/proxy HTTP/1.1\r\nHost: x\r\n" + auth
        + b"Transfer-Encoding: chunked, identity\r\n\r\n" + chunked_then_request,
        b"POST /v1/proxy HTTP/1.1\r\nHost: x\r\n" + auth
        + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunked_then_request,
    ]
    for req in cases:
        got, closed = raw_exchange(d, req)
        assert statuses(got) == [400], (req, got)
        assert closed, (req, got)
        assert b"invalid_request" in got, got


def test_a_request_without_one_host_is_refused(d: Deployment) -> None:
    for req in (b"GET /healthz HTTP/1.1\r\n\r\n", b"GET /healthz HTTP/1.0\r\n\r\n",
                b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"):
        got, _ = raw_exchange(d, req)
        assert statuses(got) == [400], (req, got)
    # Control: the same requests, well framed.
    got, _ = raw_exchange(d, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert statuses(got) == [200], got
    body = b'{"method": "POST"}'
    got, _ = raw_exchange(d, b"POST /v1/proxy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                          + f"Authorization: Bearer {d.key}\r\n".encode()
                          + b"Content-Length: %d\r\nContent-Length: %d\r\n\r\n"
                          % (len(body), len(body)) + body)
    assert statuses(got) == [400] and b"is required" in got, got  # read as one request


# ---- connection exhaustion --------------------------------------------------------


def test_one_client_cannot_take_every_connection(d: Deployment) -> None:
    """About 20,000 idle connections from one client made /healthz time out: every
    connection the api would accept was held by one address, each for two minutes.
    Now one address holds at most CS_HTTP_CLIENT_CONNECTIONS, an unfinished request
    is closed after CS_HTTP_IDLE_SECONDS, and long-poll waiters (suspended, not idle)
    outlive that timeout."""
    limit, idle = 40, 2
    api = d.system.api("api-conns", CS_HTTP_MAX_CONNECTIONS="120",
                       CS_HTTP_CLIENT_CONNECTIONS=str(limit), CS_HTTP_IDLE_SECONDS=str(idle))
    host, port = api.url.removeprefix("http://").rsplit(":", 1)  # type: ignore[attr-defined]

    # A waiter from a third address, on a pending approval, waiting longer than `idle`.
    r = d.submit(amount=500, path="/v1/refunds/waiter")
    assert r.status_code == 202, r.text
    aid = r.json()["approval_id"]
    waited: dict[str, Any] = {}

    def wait() -> None:
        t = httpx.HTTPTransport(local_address="127.0.0.3")
        with httpx.Client(transport=t, timeout=30) as c:
            w = c.get(f"{api.url}/v1/approvals/{aid}/result?wait=20",  # type: ignore[attr-defined]
                      headers=d.auth())
            waited.update(status=w.status_code, at=time.monotonic())

    waiter = threading.Thread(target=wait)
    waiter.start()

    # The attacker: 3x its allowance of unfinished requests from 127.0.0.2.
    socks: list[socket.socket] = []
    for _ in range(3 * limit):
        s = socket.socket()
        s.bind(("127.0.0.2", 0))
        s.settimeout(5)
        s.connect((host, int(port)))
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finished
        except OSError:
            pass
        socks.append(s)
    try:
        # /healthz from another address still answers, at once.
        t0 = time.monotonic()
        h = httpx.get(f"{api.url}/healthz", timeout=3)  # type: ignore[attr-defined]
        assert h.status_code == 200 and time.monotonic() - t0 < 2

        def closed(s: socket.socket, wait: float) -> bool:
            s.settimeout(wait)
            try:
                return s.recv(1) == b""
            except (ConnectionResetError, BrokenPipeError):
                return True
            except TimeoutError:
                return False

        refused = sum(closed(s, 0.2) for s in socks)
        assert refused >= 3 * limit - limit - 2, f"only {refused} of {3 * limit} refused"
        # The ones accepted are closed after `idle` seconds of silence.
        time.sleep(idle + 0.5)
        t1 = time.monotonic()
        held = [s for s in socks if not closed(s, max(0.05, t1 + idle + 3 - time.monotonic()))]
        assert not held, f"{len(held)} unfinished requests still open after {2 * idle + 3}s"
        # The waiter outlived the idle timeout and gets its answer once approved.
        assert waiter.is_alive() and not waited
        d.system.cli("approval", "approve", aid, "--as", "alice")
        waiter.join(20)
        assert waited.get("status") == 200, waited
    finally:
        for s in socks:
            s.close()
        waiter.join(25)
        api.stop()


# ---- rules that are easy to get around ----------------------------------------------


def test_path_rules_can_fold_case(d: Deployment) -> None:
    """A provider that routes /V1/Refunds as /v1/refunds got around a case-sensitive
    "/v1/refunds*" rule. Path rules stay case-sensitive (documented) and a rule can say
    "path_ci": true."""
    s = d.system
    rules = [{"method": "POST", "path": "/v1/refunds*", "path_ci": True}]
    s.cli("policy", "set", "ci", "--mode", "rules", "--rules", json.dumps(rules),
          "--quorum", "1", "--approvers", "alice,bob")
    s.cli("grant", "set", "stripe-ci", "--policy", "ci", "--agents", "bot1", "--secret-stdin",
          "--allow", d.stub.url, input=s.secret + "\n")
    for path in ("/v1/refunds-ci", "/V1/REFUNDS-CI", "/v1/Refunds-ci/re_1", "/V1/rEfUnDs-ci"):
        r = d.submit(grant="stripe-ci", amount=5, path=path)
        assert r.status_code == 202 and r.json()["type"] == "pending_approval", (path, r.text)
    # The default stays case-sensitive: the shared "pay" rule does not match /V1/REFUNDS.
    r = d.submit(amount=500, path="/V1/REFUNDS")
    assert r.status_code == 200, r.text
    # Only a boolean, and only with a path.
    for bad in ([{"path": "/v1/*", "path_ci": "yes"}], [{"method": "POST", "path_ci": True}]):
        out = s.cli("policy", "set", "ci2", "--mode", "rules", "--rules", json.dumps(bad),
                    "--quorum", "1", "--approvers", "alice", check=False)
        assert out.returncode != 0 and "path_ci" in out.stderr, out.stderr
    assert not [r.path for r in d.stub.requests() if r.path.lower().startswith("/v1/refunds-ci")]


# ---- what an approver is shown ------------------------------------------------------


def test_an_approver_reads_all_of_a_large_text_body_and_never_approves_the_unshown(
        d: Deployment) -> None:
    """A text body over 64 KiB showed as "binary data" beside an active Approve button:
    the approver approved what they could not read. Now text is shown whole, and a body
    the page cannot show (binary) is offered for denial only."""
    s = d.system
    s.cli("policy", "set", "all", "--mode", "always", "--quorum", "1", "--approvers", "alice")
    s.cli("grant", "set", "stripe-all", "--policy", "all", "--agents", "bot1", "--secret-stdin",
          "--allow", d.stub.url, input=s.secret + "\n")
    tail = "amount=99999&to=acct_attacker"
    text = "memo=" + "x" * (200 * 1024) + "&" + tail
    r = d.submit(grant="stripe-all", amount=None, path="/v1/transfers/big", body=text,
                 extra_headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 202, r.text
    c, page = d.sign_in(d.link(r.json()["approval_id"]))
    html = c.get(page).text
    assert html_escape(tail) in html and "binary data" not in html, html[-2000:]
    assert 'value="approve"' in html
    # Binary: shown as its size and SHA-256, offered as a download, and for denial only.
    raw = b"\x00\x01\xff" * 100
    r = d.submit(grant="stripe-all", amount=None, path="/v1/transfers/bin",
                 body_b64=base64.b64encode(raw).decode())
    assert r.status_code == 202, r.text
    binary_id = r.json()["approval_id"]
    c, page = d.sign_in(d.link(binary_id))
    shown = c.get(page)
    html = shown.text
    assert "binary data" in html and "cannot be approved here" in html
    assert f"{len(raw)} bytes of binary data, SHA-256 {hashlib.sha256(raw).hexdigest()}" in html
    assert 'value="approve"' not in html and 'value="deny"' in html
    m = re.search(r'href="(/status/[^"]+/body)" download', html)
    assert m, html[-2000:]
    got = c.get(m.group(1))
    assert got.status_code == 200 and got.content == raw
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["content-disposition"] == f'attachment; filename="{binary_id}.bin"'
    assert got.headers["x-content-type-options"] == "nosniff"
    # The form the page did not offer, forged with the session's own token: refused.
    forged = c.post(page, data={"decision": "approve", "csrf": session_csrf(shown)},
                    headers={"Origin": d.url})
    assert forged.status_code == 403 and "cannot approve it" in forged.text, forged.text[-500:]
    assert d.status(binary_id) == "pending" and d.votes(binary_id) == 0
    nothing_reached(d, "/v1/transfers/")
    # Denying it on the page works; approving it stays the CLI's, after inspection.
    denied = c.post(page, data={"decision": "deny", "csrf": session_csrf(shown)},
                    headers={"Origin": d.url})
    assert denied.status_code == 200, denied.text[-500:]
    assert d.status(binary_id) == "denied"
