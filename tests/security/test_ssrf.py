"""Security invariant 5, where a secret may go: SSRF attempts against the grant's
allowed bases, over HTTP (refused at submission) and Kafka (dead-lettered), names
that resolve to private addresses (refused at connect time), and a grant that
changes after approval (refused at execution).

Grants of this deployment:
  stripe  http://127.0.0.1:<stub>        (bearer, the harness's secret)
  ext     https://api.example.com        (nothing listens: must never be tried)
  pathy   http://127.0.0.1:<stub>/v1     (a base with a path)
  named   http://localhost:<stub>, http://<hostname>:<stub>, ...  (names of private addresses)
A second StubProvider, the decoy, stands for every other internal service: it
must never receive anything.
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from attack_kit import Deployment, deployment, error_code
from services import Kafka, Postgres, StubProvider, wait_for

HOST_NOT_ALLOWED = (403, "host_not_allowed")
INVALID_URL = (400, "invalid_url")
EITHER = "either"  # refused at submission, as host_not_allowed (403) or invalid_url (400)


@pytest.fixture(scope="module")
def decoy() -> Iterator[StubProvider]:
    with StubProvider() as s:
        yield s


@pytest.fixture(scope="module")
def d(request: pytest.FixtureRequest, pg: Postgres, kafka: Kafka,
      decoy: StubProvider) -> Iterator[Deployment]:
    with deployment(request, pg, kafka, "sec_ssrf") as d:
        s = d.system
        s.setup()
        d.add_grant("ext", "sk_ext_" + secrets.token_hex(12), ["https://api.example.com"])
        d.add_grant("pathy", "sk_path_" + secrets.token_hex(12), [f"{d.stub.url}/v1"])
        d.add_grant("named", "sk_named_" + secrets.token_hex(12), named_bases(d.stub.port))
        d.start_api()
        s.worker()
        d.key = d.new_key()
        yield d


def private_names() -> list[str]:
    """Host names that resolve, on this machine, only to private/loopback addresses."""
    names = []
    for name in ("localhost", "ip6-localhost", "ip6-loopback", socket.gethostname()):
        try:
            infos = socket.getaddrinfo(name, 80, proto=socket.IPPROTO_TCP)
        except OSError:
            continue
        addrs = {str(i[4][0]) for i in infos}
        if addrs and all(_private(a) for a in addrs) and name not in names:
            names.append(name)
    return names


def _private(addr: str) -> bool:
    import ipaddress
    ip = ipaddress.ip_address(addr.split("%")[0])
    return ip.is_private or ip.is_loopback or ip.is_link_local


def named_bases(port: int) -> list[str]:
    return [f"http://{n}:{port}" for n in private_names()]


def ssrf_cases(stub: int, other: int) -> list[tuple[str, str, Any]]:
    """(grant, url, expected refusal) -- every one must be refused at submission."""
    p, o = stub, other
    stripe = [
        (f"http://127.0.0.1:{o}/", HOST_NOT_ALLOWED),                 # another port, same host
        (f"http://127.0.0.1:{o}/v1/refunds", HOST_NOT_ALLOWED),
        (f"http://[::1]:{p}/", HOST_NOT_ALLOWED),
        ("http://169.254.169.254/latest/meta-data/", HOST_NOT_ALLOWED),
        ("http://[fd00:ec2::254]/latest/meta-data/", HOST_NOT_ALLOWED),
        ("http://10.0.0.1/", HOST_NOT_ALLOWED),
        ("http://192.168.1.1/", HOST_NOT_ALLOWED),
        (f"http://0x7f000001:{o}/", HOST_NOT_ALLOWED),
        (f"http://2130706433:{o}/", HOST_NOT_ALLOWED),
        (f"http://0177.0.0.1:{o}/", HOST_NOT_ALLOWED),
        (f"http://127.1:{o}/", HOST_NOT_ALLOWED),
        (f"http://0x7f.1:{o}/", HOST_NOT_ALLOWED),
        ("http://0xa9fea9fe/latest/meta-data/", HOST_NOT_ALLOWED),      # 169.254.169.254
        ("http://2852039166/latest/meta-data/", HOST_NOT_ALLOWED),      # 169.254.169.254
        (f"http://localhost:{p}/", HOST_NOT_ALLOWED),
        (f"http://LOCALHOST:{p}/", HOST_NOT_ALLOWED),
        (f"http://localhost.:{p}/", HOST_NOT_ALLOWED),
        (f"http://[::ffff:127.0.0.1]:{p}/", HOST_NOT_ALLOWED),
        (f"http://[::ffff:7f00:1]:{p}/", HOST_NOT_ALLOWED),
        (f"http://[::127.0.0.1]:{p}/", HOST_NOT_ALLOWED),
        (f"http://[0:0:0:0:0:0:0:1]:{p}/", HOST_NOT_ALLOWED),
        (f"http://0.0.0.0:{p}/", HOST_NOT_ALLOWED),
        (f"http://0:{p}/", HOST_NOT_ALLOWED),
        (f"http://127.0.0.1.:{p}/", HOST_NOT_ALLOWED),                 # trailing dot
        (f"https://127.0.0.1:{p}/", HOST_NOT_ALLOWED),                 # other scheme
        (f"http://api.example.com@127.0.0.1:{p}/", INVALID_URL),       # userinfo tricks
        (f"http://127.0.0.1:{p}@127.0.0.1:{o}/", INVALID_URL),
        (f"http://user:pass@127.0.0.1:{p}/", INVALID_URL),
        (f"http://@127.0.0.1:{p}/", INVALID_URL),
        (f"http://127.0.0.1:{o}\\@127.0.0.1:{p}/", INVALID_URL),
        (f"http://127.0.0.1:{o}#@127.0.0.1:{p}/", HOST_NOT_ALLOWED),   # the fragment hides nothing
        (f"http://127.0.0.1:{p}%40127.0.0.1:{o}/", EITHER),
        (f"http://127.0.0.1%2f@127.0.0.1:{o}/", INVALID_URL),
        ("file:///etc/passwd", INVALID_URL),                           # scheme tricks
        (f"file://127.0.0.1:{p}/etc/passwd", INVALID_URL),
        (f"gopher://127.0.0.1:{p}/_POST%20/v1/refunds", INVALID_URL),
        (f"ftp://127.0.0.1:{p}/", INVALID_URL),
        (f"dict://127.0.0.1:{p}/", INVALID_URL),
        (f"ldap://127.0.0.1:{p}/", INVALID_URL),
        (f"ws://127.0.0.1:{p}/", INVALID_URL),
        ("javascript:alert(1)", INVALID_URL),
        (f"//127.0.0.1:{p}/v1/refunds", INVALID_URL),
        (f"/v1/refunds", INVALID_URL),
        (f"http:127.0.0.1:{p}/", INVALID_URL),
        (f"http://127.0.0.1:{p}:{o}/", INVALID_URL),
        (f"http://127.0.0.1:{p} /", INVALID_URL),
        (f"http://127.0.0.1:{p}/\r\nHost: 127.0.0.1:{o}", INVALID_URL),
        (f"http://127.0.0.1%00.evil:{p}/", INVALID_URL),
        (f"http://[fe80::1%25lo]:{p}/", INVALID_URL),
    ]
    ext = [
        ("http://api.example.com/", HOST_NOT_ALLOWED),                 # plain http: not allowed
        ("https://api.example.com:8443/", HOST_NOT_ALLOWED),
        ("https://api.example.com./", HOST_NOT_ALLOWED),               # trailing dot
        ("https://api.example.com.evil.example/", HOST_NOT_ALLOWED),
        ("https://evilapi.example.com/", HOST_NOT_ALLOWED),
        ("https://xn--pi-7ld.example.com/", HOST_NOT_ALLOWED),         # punycode of the next one
        ("https://\u0430pi.example.com/", EITHER),                     # Cyrillic a
        ("https://api.ex\u0430mple.com/", EITHER),
        ("https://api.example\u3002com/", EITHER),                     # ideographic full stop
        ("https://\uff41\uff50\uff49.example.com/", EITHER),           # fullwidth "api"
        ("https://api.example.com\u200b/", EITHER),                    # zero-width space
        ("https://api.example.com@127.0.0.1/", INVALID_URL),
        ("https://api.example.com:443@127.0.0.1/", INVALID_URL),
        ("https://api.example.com%40127.0.0.1/", INVALID_URL),
        ("https://127.0.0.1#@api.example.com/", HOST_NOT_ALLOWED),
        ("https://api.example.com\\.127.0.0.1/", INVALID_URL),
        ("https://169.254.169.254/", HOST_NOT_ALLOWED),
        (f"https://127.0.0.1:{p}/", HOST_NOT_ALLOWED),
        (f"https://0x7f000001:{p}/", HOST_NOT_ALLOWED),
        (f"https://2130706433:{p}/", HOST_NOT_ALLOWED),
        (f"https://0177.0.0.1:{p}/", HOST_NOT_ALLOWED),
        (f"https://127.1:{p}/", HOST_NOT_ALLOWED),
        (f"https://localhost:{p}/", HOST_NOT_ALLOWED),
        (f"https://[::1]:{p}/", HOST_NOT_ALLOWED),
        (f"https://[::ffff:127.0.0.1]:{p}/", HOST_NOT_ALLOWED),
        ("file:///etc/passwd", INVALID_URL),
        ("gopher://api.example.com/", INVALID_URL),
        ("ftp://api.example.com/", INVALID_URL),
    ]
    base = f"http://127.0.0.1:{p}"
    pathy = [                                                          # base .../v1
        (f"{base}/v10", HOST_NOT_ALLOWED),
        (f"{base}/v1x/refunds", HOST_NOT_ALLOWED),
        (f"{base}/v1../admin", HOST_NOT_ALLOWED),
        (f"{base}/V1/refunds", HOST_NOT_ALLOWED),
        (f"{base}/", HOST_NOT_ALLOWED),
        (f"{base}/admin", HOST_NOT_ALLOWED),
        (f"{base}/v1/../admin", HOST_NOT_ALLOWED),
        (f"{base}/v1/./../admin", HOST_NOT_ALLOWED),
        (f"{base}/v1/x/../../admin", HOST_NOT_ALLOWED),
        (f"{base}/v1/..", HOST_NOT_ALLOWED),
        (f"{base}/v1;/../admin", HOST_NOT_ALLOWED),
        (f"{base}//v1/../admin", INVALID_URL),      # empty segments are refused outright
        (f"{base}/admin?/v1", HOST_NOT_ALLOWED),
        (f"{base}/admin#/v1", HOST_NOT_ALLOWED),
        (f"{base}/v1/%2e%2e/admin", INVALID_URL),
        (f"{base}/v1/%2E%2E/admin", INVALID_URL),
        (f"{base}/v1/.%2e/admin", INVALID_URL),
        (f"{base}/v1/%2e./admin", INVALID_URL),
        (f"{base}/v1%2f..", INVALID_URL),
        (f"{base}/v1%2F..%2Fadmin", INVALID_URL),
        (f"{base}/v1/..%2fadmin", INVALID_URL),
        (f"{base}/v1\\..\\admin", INVALID_URL),
        (f"{base}/v1/%5c..%5cadmin", INVALID_URL),
        (f"{base}/v1/..%5cadmin", INVALID_URL),
    ]
    return ([("stripe", u, e) for u, e in stripe] + [("ext", u, e) for u, e in ext]
            + [("pathy", u, e) for u, e in pathy])


def assert_refused(r: Any, expect: Any, what: str) -> None:
    if expect == EITHER:
        assert (r.status_code, error_code(r)) in (HOST_NOT_ALLOWED, INVALID_URL), (what, r.text)
    else:
        assert (r.status_code, error_code(r)) == expect, (what, r.text)
    assert r.json()["error"]["message"], what


def test_disallowed_destinations_refused_at_submission_over_http(d: Deployment,
                                                                  decoy: StubProvider) -> None:
    before = d.system.sql("SELECT count(*) FROM approvals")[0][0]
    cases = ssrf_cases(d.stub.port, decoy.port)
    assert len(cases) > 90
    for grant, url, expect in cases:
        for amount in (5, 500):  # would run inline / would wait for a vote
            r = d.submit(url, grant=grant, amount=amount)
            assert_refused(r, expect, f"{grant} {url!r}")
    assert d.system.sql("SELECT count(*) FROM approvals")[0][0] == before
    time.sleep(0.5)
    assert d.stub.count() == 0 and decoy.count() == 0


def test_disallowed_destinations_dead_lettered_over_kafka(d: Deployment,
                                                           decoy: StubProvider) -> None:
    s = d.system
    cases = ssrf_cases(d.stub.port, decoy.port)
    envs = [s.envelope(f"ssrf-{i}", amount=5, url=url, grant_id=grant)
            for i, (grant, url, _) in enumerate(cases)]
    s.produce(*envs)
    dead = {m["key"]: m["value"] for m in s.topic("dlq", expect=len(cases), timeout=60)}
    for i, (grant, url, expect) in enumerate(cases):
        v = dead.get(f"ssrf-{i}")
        assert v is not None, f"{grant} {url!r} was not dead-lettered"
        allowed = {"host_not_allowed", "invalid_url"} if expect == EITHER else {expect[1]}
        assert v["reason"] in allowed, (grant, url, v)
    assert s.sql("SELECT count(*) FROM approvals WHERE request_id LIKE 'ssrf-%%'")[0][0] == 0
    assert d.stub.count() == 0 and decoy.count() == 0


def test_path_parameters_cannot_move_the_call(d: Deployment, decoy: StubProvider) -> None:
    """path_params are filled before the allow-list check and cannot climb, add a
    host or a port: each is refused."""
    base = d.stub.url
    cases = [
        (f"{base}/v1/{{p}}/x", {"p": ".."}, (400, "invalid_request")),
        (f"{base}/v1/{{p}}", {"p": "../admin"}, INVALID_URL),             # '/' is encoded
        (f"{base}/v1/{{p}}", {"p": "..\\admin"}, INVALID_URL),
        (f"http://{{h}}/v1/refunds", {"h": f"127.0.0.1:{decoy.port}"}, INVALID_URL),
        (f"http://{{h}}/v1/refunds", {"h": "169.254.169.254"}, HOST_NOT_ALLOWED),
        (f"http://127.0.0.1:{{port}}/v1/refunds", {"port": decoy.port}, HOST_NOT_ALLOWED),
        (f"http://{{u}}@127.0.0.1:{d.stub.port}/", {"u": "x"}, INVALID_URL),
    ]
    for url, params, expect in cases:
        r = d.submit(url, grant="pathy", amount=5, path_params=params)
        assert_refused(r, expect, f"{url} {params}")
    r = d.submit(f"{base}/v1/refunds", grant="pathy", amount=5,
                 query_params={"next": f"http://127.0.0.1:{decoy.port}/"})
    assert r.status_code == 200, r.text                       # a query parameter is only data
    (call,) = d.stub.requests("/v1/refunds?next=")
    assert call.headers["host"] == f"127.0.0.1:{d.stub.port}"
    assert decoy.count() == 0


def test_numeric_forms_of_the_allowed_ip_are_normalised_not_a_bypass(d: Deployment) -> None:
    """Alternative spellings of 127.0.0.1 on the allowed port are the allowed base itself:
    they are stored (and shown to approvers) as the literal the grant names."""
    p = d.stub.port
    spellings = ("0x7f000001", "2130706433", "0177.0.0.1", "127.1", "127.000.000.001")
    for i, host in enumerate(spellings):
        aid = d.pending(url=f"http://{host}:{p}/v1/refunds/n{i}")
        st = d.http.get(f"/v1/approvals/{aid}", headers=d.auth()).json()
        assert st["url"] == f"http://127.0.0.1:{p}/v1/refunds/n{i}", st
        page = d.client().get(d.page(aid))
        assert f"http://127.0.0.1:{p}/v1/refunds/n{i}" in page.text and host not in page.text
        assert d.http.post(f"/v1/approvals/{aid}/cancel", headers=d.auth()).status_code == 200
    # Upper case is the same host: normalised, and only ever the allowed one.
    aid = d.pending(url="HTTPS://API.EXAMPLE.COM/v1/refunds", grant="ext")
    assert d.system.approval_by_id(aid)["url"] == "https://api.example.com/v1/refunds"
    assert d.http.post(f"/v1/approvals/{aid}/cancel", headers=d.auth()).status_code == 200


def test_path_parameter_segment_cannot_escape_the_base_path(d: Deployment) -> None:
    """'..;' is a dot-segment to Java servlet containers (Tomcat, Jetty: the ';...'
    path parameter is stripped before normalising), so /v1/..;/admin reaches /admin
    there: a secret scoped to /v1 must not be sent to it."""
    base = f"http://127.0.0.1:{d.stub.port}"
    for url in (f"{base}/v1/..;/admin", f"{base}/v1/..;x=1/admin", f"{base}/v1/.;/../admin",
                f"{base}/v1/refunds/..;/..;/admin"):
        r = d.submit(url, grant="pathy", amount=5)
        assert r.status_code in (400, 403), (url, r.status_code, r.text)
    assert d.stub.count("/v1/..;") == 0 and d.stub.count("/v1/refunds/..;") == 0


def test_names_resolving_to_private_addresses_refused_at_connect(d: Deployment) -> None:
    """A base given by NAME never receives a secret at a private address (only a base
    naming the IP literally may): inline over HTTP, over Kafka, and after a vote."""
    s = d.system
    names = private_names()
    assert "localhost" in names
    p = d.stub.port
    for i, n in enumerate(names):
        r = d.submit(f"http://{n}:{p}/v1/refunds/name{i}", grant="named", amount=5)
        assert r.status_code == 502 and error_code(r) == "execution_failed", r.text
        assert r.json()["error"]["details"]["error_code"] == "host_not_allowed", r.text
    s.produce(*[s.envelope(f"named-k{i}", amount=5, grant_id="named",
                           url=f"http://{n}:{p}/v1/refunds/k{i}") for i, n in enumerate(names)])
    for i, _ in enumerate(names):
        f = s.wait_status(f"named-k{i}", "failed", timeout=30)
        assert f["error_code"] == "host_not_allowed" and "private address" in f["error_message"]
    aid = d.pending(url=f"http://localhost:{p}/v1/refunds/voted", grant="named")
    s.cli("approval", "approve", aid, "--as", "alice")
    f = d.wait_id(aid, "failed")
    assert f["error_code"] == "host_not_allowed"
    r = d.http.get(f"/v1/approvals/{aid}/result", headers=d.auth())
    assert r.status_code == 502 and r.json()["error"]["details"]["error_code"] == "host_not_allowed"
    time.sleep(0.3)
    for prefix in ("/v1/refunds/name", "/v1/refunds/k", "/v1/refunds/voted"):
        assert d.stub.count(prefix) == 0, prefix


def _put_grant(d: Deployment, grant: str, secret: str, bases: list[str],
               agents: list[str], **extra: Any) -> None:
    r = d.http.put(f"/v1/admin/grants/{grant}", headers=d.admin(),
                   json={"secret": secret, "policy_id": "pay", "allowed_bases": bases,
                         "agents": agents, **extra})
    assert r.status_code in (200, 201), r.text


def test_grant_narrowed_or_unbound_before_execution_refused(d: Deployment) -> None:
    """Approved, then the grant's hosts change (or the agent is unbound): the executor
    checks the grant as it is now, fails the call and sends nothing."""
    s = d.system
    sec = "sk_moving_" + secrets.token_hex(12)
    d.secrets.append(sec)
    _put_grant(d, "moving", sec, [d.stub.url], ["bot1"])
    _put_grant(d, "leaving", sec, [d.stub.url], ["bot1"])
    moved = d.pending(grant="moving", path="/v1/refunds/moved")
    left = d.pending(grant="leaving", path="/v1/refunds/left")
    time.sleep(2.5)  # older than any cache of the grant (CS_CATALOG_TTL_MS, 2 s)
    s.cli("grant", "allow", "moving", "https://api.example.com")
    s.cli("grant", "unbind", "leaving", "bot1")
    s.cli("approval", "approve", moved, "--as", "alice")
    s.cli("approval", "approve", left, "--as", "alice")
    assert d.wait_id(moved, "failed")["error_code"] == "host_not_allowed"
    assert d.wait_id(left, "failed")["error_code"] == "forbidden"
    assert d.stub.count("/v1/refunds/moved") == 0 and d.stub.count("/v1/refunds/left") == 0

    def published() -> dict[str, Any]:
        got = {m["key"]: m["value"] for m in s.topic("results", timeout=5)}
        return got if moved in got and left in got else {}

    results = wait_for(published, 30, interval=0.5, what="both results published")
    assert results[moved]["error_code"] == "host_not_allowed"
    assert results[left]["error_code"] == "forbidden"


def _changed_while_cached(d: Deployment, grant: str, change: Callable[[str], None],
                          code: str, what: str) -> None:
    """A worker has just executed a call of `grant` (so it may hold the grant cached);
    `change(secret)` changes the grant, and only then is a pending call approved: it
    must fail with `code` and reach nobody."""
    sec = f"sk_{grant}_" + secrets.token_hex(12)
    d.secrets.append(sec)
    _put_grant(d, grant, sec, [d.stub.url], ["bot1"])
    aid = d.pending(grant=grant, path=f"/v1/refunds/{grant}-pending")
    warm = d.submit(grant=grant, amount=5, path=f"/v1/refunds/{grant}-warm")
    assert warm.status_code == 200, warm.text  # executed by a worker: grant loaded there
    change(sec)
    r = d.http.post(f"/v1/admin/approvals/{aid}/decide", headers=d.admin(),
                    json={"approver": "alice", "decision": "approve"})
    assert r.status_code == 200, r.text
    f = d.wait_id(aid, {"failed", "executed"})
    assert d.stub.count(f"/v1/refunds/{grant}-pending") == 0, f"{what} (stale grant cache)"
    assert f["status"] == "failed" and f["error_code"] == code


def test_grant_narrowed_while_cached_refused(d: Deployment) -> None:
    """The same attack without waiting: the operator narrows the grant's hosts right
    after a worker used it. The approval must not go to the host no longer allowed."""
    _changed_while_cached(
        d, "cached",
        lambda sec: _put_grant(d, "cached", sec, ["https://api.example.com"], ["bot1"]),
        "host_not_allowed", "the secret went to a host the grant no longer allowed")


def test_agent_unbound_while_cached_refused(d: Deployment) -> None:
    """As above, but what changes is the grant's bound agents (grant_agents, not the
    grant's own row): the executor's cached copy must not outlive the unbinding."""
    _changed_while_cached(
        d, "unbound", lambda _: d.system.cli("grant", "unbind", "unbound", "bot1"),
        "forbidden", "the call ran for an agent the grant no longer binds")


def test_grant_narrowed_between_retries_refused(d: Deployment) -> None:
    """A call the provider answered 503 waits to be retried (Retry-After 3 s). Meanwhile
    the operator narrows the grant's hosts: the retry must not send the secret again."""
    s = d.system
    sec = "sk_retry_" + secrets.token_hex(12)
    d.secrets.append(sec)
    _put_grant(d, "retrying", sec, [d.stub.url], ["bot1"], idempotency_keys=True)
    d.stub.program("/v1/refunds/retrying", status=503, retry_after=3, times=1)
    s.produce(s.envelope("retrying", amount=5, grant_id="retrying", path="/v1/refunds/retrying"))
    d.stub.wait_for(1, "/v1/refunds/retrying", timeout=30)
    _put_grant(d, "retrying", sec, ["https://api.example.com"], ["bot1"],
               idempotency_keys=True)
    a = s.wait_status("retrying", {"failed", "executed"}, timeout=40)
    assert d.stub.count("/v1/refunds/retrying") == 1, \
        "the retry sent the secret to a host the grant no longer allows"
    assert a["status"] == "failed" and a["error_code"] == "host_not_allowed"
