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
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from attack_kit import Deployment, deployment, error_code
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
