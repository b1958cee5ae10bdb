"""Security invariant 5, redirects are not followed with credentials: the provider
answers 301/302/303/307/308 pointing at another host, a private address or another
path; the redirect target (a second StubProvider) receives nothing, the approval
ends executed with the 3xx response stored and published."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator

import pytest

from attack_kit import Deployment, deployment
from services import Kafka, Postgres, StubProvider


@pytest.fixture(scope="module")
def target() -> Iterator[StubProvider]:
    """The redirect target: an internal service that must never see the credential."""
    with StubProvider() as s:
        yield s


@pytest.fixture(scope="module")
def d(request: pytest.FixtureRequest, pg: Postgres, kafka: Kafka) -> Iterator[Deployment]:
    with deployment(request, pg, kafka, "sec_redirects") as d:
        d.system.setup()
        d.start_api()
        d.system.worker()
        d.key = d.new_key()
        yield d


def locations(d: Deployment, target: StubProvider) -> list[str]:
    t, p = target.port, d.stub.port
    return [f"http://127.0.0.1:{t}/steal", f"http://localhost:{t}/steal",
            f"http://[::1]:{t}/steal", "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.1/admin", "https://attacker.example/steal",
            f"http://127.0.0.1:{p}/v1/refunds/landing",  # the same allowed base: still not followed
            "/v1/refunds/landing-relative", f"//127.0.0.1:{t}/steal"]


def test_redirects_over_kafka_are_stored_not_followed(d: Deployment, target: StubProvider) -> None:
    s = d.system
    cases = []
    for code in (301, 302, 303, 307, 308):
        for i, loc in enumerate(locations(d, target)):
            path = f"/v1/refunds/r{code}-{i}"
            d.stub.program(path, status=code, headers={"Location": loc}, body=b"moved")
            cases.append((f"k{code}-{i}", path, code, loc))
    s.produce(*[s.envelope(rid, amount=5, path=path) for rid, path, _, _ in cases])
    for rid, path, code, loc in cases:
        a = s.wait_status(rid, {"executed", "failed"}, timeout=30)
        assert a["status"] == "executed", (rid, a["error_code"], a["error_message"])
        assert a["response_status"] == code and a["response_headers"]["location"] == loc
        assert bytes(a["response_body"]) == b"moved"
        assert d.stub.count(path) == 1, (path, "the call must run once, not re-run")
    results = {m["value"]["request_id"]: m["value"]
               for m in s.topic("results", expect=len(cases), timeout=30)
               if m["value"].get("request_id", "").startswith("k")}
    for rid, _, code, loc in cases:
        assert results[rid]["status_code"] == code and results[rid]["headers"]["location"] == loc
    time.sleep(0.5)
    assert target.count() == 0, [r.path for r in target.requests()]
    assert d.stub.count("/v1/refunds/landing") == 0
    assert d.stub.count("/steal") == 0


def test_redirects_over_http_inline_and_after_a_vote(d: Deployment, target: StubProvider) -> None:
    for code in (302, 307):
        path = f"/v1/refunds/h{code}"
        d.stub.program(path, status=code, headers={"Location": f"{target.url}/steal-h{code}"})
        r = d.submit(path=path, amount=5)  # no approval needed: executed inline
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status_code"] == code
        assert body["headers"]["location"] == f"{target.url}/steal-h{code}"
    d.stub.program("/v1/refunds/voted", status=308,
                   headers={"Location": f"{target.url}/steal-voted"})
    aid = d.pending(path="/v1/refunds/voted")
    assert d.vote(d.link(aid)).status_code == 200
    a = d.wait_id(aid, {"executed", "failed"})
    assert a["status"] == "executed" and a["response_status"] == 308
    r = d.http.get(f"/v1/approvals/{aid}/result?wait=10", headers=d.auth())
    assert r.status_code == 200 and r.json()["status_code"] == 308
    assert base64.b64decode(r.json()["body_b64"]) == b""
    (call,) = d.stub.requests("/v1/refunds/voted")
    assert call.headers["authorization"] == f"Bearer {d.system.secret}"
    time.sleep(0.5)
    assert target.count() == 0
