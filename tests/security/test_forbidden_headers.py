"""Security invariant 5 (and 7), headers callers may not set: credentials, Host,
the grant's own injection header, Countersign's Idempotency-Key, framing and
hop-by-hop headers, in any case; header injection through CR/LF or NUL in names
or values; unknown fields. Over HTTP (400) and Kafka (dead letter); nothing is
stored and the provider receives nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from attack_kit import Deployment, deployment, error_code
from services import Kafka, Postgres, wait_for

FORBIDDEN = ["Authorization", "Cookie", "Proxy-Authorization", "X-Api-Key", "Host",
             "Idempotency-Key", "Content-Length", "Transfer-Encoding", "Connection", "TE",
             "Upgrade", "Expect", "Keep-Alive", "Proxy-Connection", "Trailer"]
INJECT_HEADER = "X-Provider-Key"


def spellings(name: str) -> list[str]:
    return [name, name.lower(), name.upper(), name.swapcase(),
            "".join(c.upper() if i % 2 else c.lower() for i, c in enumerate(name))]


def forbidden_cases() -> list[tuple[str, dict[str, Any], set[str]]]:
    """(grant, headers, acceptable error codes): all refused."""
    fh = {"forbidden_header"}
    bad = {"invalid_request"}
    either = fh | bad
    cases: list[tuple[str, dict[str, Any], set[str]]] = []
    for name in FORBIDDEN:
        for s in spellings(name):
            cases.append(("stripe", {s: "x"}, fh))
        for s in (f"{name} ", f" {name}", f"{name}\t", f"\t{name}", f"{name}:", f"{name}\r\n",
                  f"{name}\n", f"{name}\x00", f"X-Ok\r\n{name}", f"X-Ok\n{name}",
                  f"X-Ok: y\r\n{name}", f"{name}\u200b", f"\ufeff{name}"):
            # A NUL in any JSON name is refused by the JSON reader itself.
            cases.append(("stripe", {s: "x"}, either | {"malformed_json"} if "\x00" in s
                          else either))
        cases.append(("stripe", {"X-Ok": "fine", name: "x"}, fh))  # not only as the first one
    for s in spellings(INJECT_HEADER):
        cases.append(("hdr", {s: "mine"}, fh))
    cases.append(("hdr", {f"{INJECT_HEADER} ": "mine"}, either))
    cases.append(("hdr", {"X-Ok\r\n" + INJECT_HEADER: "mine"}, either))
    # Header injection through values.
    for v in ("a\r\nAuthorization: Bearer mine", "a\nAuthorization: Bearer mine",
              "a\rAuthorization: Bearer mine", f"a\r\n{INJECT_HEADER}: mine",
              "a\r\n\r\nGET /admin HTTP/1.1", "a\x00b", "a\x0bb", "a\x0cb", "a\x1bb"):
        cases.append(("stripe", {"X-Trace": v}, bad))
        cases.append(("hdr", {"X-Trace": v}, bad))
    # Names that are not tokens, and non-string values.
    for n in ("", ":authority", ":path", "X Trace", "X-Trace:", "X-Tr\u0430ce",
              "\u0410uthorization", "X-Trace(", "X-Trace@", "X/Trace", "X-Trace\x7f"):
        cases.append(("stripe", {n: "v"}, bad))
    for value in (1, None, ["a", "b"], {"a": "b"}, True):
        cases.append(("stripe", {"X-Trace": value}, bad))
    cases.append(("stripe", {"X-Trace": "a", "x-trace": "b"}, bad))   # the same header twice
    cases.append(("stripe", {"X-Trace": "v" * 9000}, bad))
    cases.append(("stripe", {f"X-H{i}": "v" for i in range(200)}, bad))
    return cases


@pytest.fixture(scope="module")
def d(request: pytest.FixtureRequest, pg: Postgres, kafka: Kafka) -> Iterator[Deployment]:
    with deployment(request, pg, kafka, "sec_headers") as d:
        d.system.setup()
        d.add_grant("hdr", "sk_hdr_" + d.system.secret[-16:] + "x", [d.stub.url],
                    inject="header", header=INJECT_HEADER)
        d.start_api()
        d.system.worker()
        d.key = d.new_key()
        yield d


def test_forbidden_and_malformed_headers_refused_over_http(d: Deployment) -> None:
    cases = forbidden_cases()
    for grant, headers, codes in cases:
        for amount in (5, 500):
            r = d.submit(grant=grant, amount=amount, extra_headers=headers)
            assert r.status_code == 400 and error_code(r) in codes, (grant, headers, r.text)
            assert r.json()["error"]["message"]
    assert d.system.sql("SELECT count(*) FROM approvals")[0][0] == 0
    time.sleep(0.3)
    assert d.stub.count() == 0


def test_forbidden_and_malformed_headers_dead_lettered_over_kafka(d: Deployment) -> None:
    s = d.system
    cases = forbidden_cases()
    s.produce(*[s.envelope(f"h-{i}", amount=5, grant_id=grant, headers=headers)
                for i, (grant, headers, _) in enumerate(cases)])
    dead = {m["key"]: m["value"] for m in s.topic("dlq", expect=len(cases), timeout=60)}
    for i, (grant, headers, codes) in enumerate(cases):
        v = dead.get(f"h-{i}")
        assert v is not None and v["reason"] in codes, (grant, headers, v)
    assert s.sql("SELECT count(*) FROM approvals WHERE request_id LIKE 'h-%%'")[0][0] == 0
    assert d.stub.count() == 0


def test_unknown_fields_refused(d: Deployment) -> None:
    s = d.system
    fields: tuple[tuple[str, Any], ...] = (
        ("headers", {"X-Trace": "a"}), ("api_key", "cs_x"), ("secret", "x"),
        ("Authorization", "Bearer x"), ("agent", "bot2"), ("request_id", "r1"),
        ("allowed_bases", ["http://10.0.0.1"]), ("inject", "header"), ("grant_secret", "x"),
        ("URL", "http://10.0.0.1/"), ("extra_headers ", {"Authorization": "x"}))
    for field, value in fields:
        extra: dict[str, Any] = {field: value}
        r = d.submit(amount=5, **extra)
        assert r.status_code == 400 and error_code(r) == "invalid_request", (field, r.text)
        assert "unknown field" in r.json()["error"]["message"], r.text
    bad_fields: tuple[tuple[str, Any], ...] = (
        ("extra_headers", {"X-Trace": "a"}), ("api_key", "cs_x"), ("secret", "x"),
        ("idempotency_key", "k"), ("Authorization", "Bearer x"), ("allowed_bases", []),
        ("Headers", {"Authorization": "x"}))
    envs = []
    for i, (field, value) in enumerate(bad_fields):
        e = s.envelope(f"u-{i}", amount=5)
        e[field] = value
        envs.append(e)
    s.produce(*envs)

    def unknown() -> dict[str, Any]:
        got = {m["key"]: m["value"] for m in s.topic("dlq", timeout=5) if m["key"].startswith("u-")}
        return got if len(got) == len(envs) else {}

    dead = wait_for(unknown, 30, interval=0.5, what="the dead letters")
    assert all(v["reason"] == "invalid_request" and "unknown field" in v["message"]
               for v in dead.values()), dead
    assert d.stub.count() == 0


def test_the_provider_gets_exactly_one_credential_and_our_idempotency_key(d: Deployment) -> None:
    """Control: allowed caller headers pass; the credential and Idempotency-Key are
    ours alone, sent once; Host is the allowed base's."""
    r = d.submit(grant="hdr", amount=5, path="/v1/refunds/ok",
                 extra_headers={"X-Trace": "abc", "Accept": "application/json"})
    assert r.status_code == 200, r.text
    (call,) = d.stub.requests("/v1/refunds/ok")
    assert call.headers["x-trace"] == "abc"
    assert call.headers[INJECT_HEADER.lower()].startswith("sk_hdr_")
    assert "," not in call.headers[INJECT_HEADER.lower()]
    assert "authorization" not in call.headers and "cookie" not in call.headers
    assert call.headers["idempotency-key"] == f"countersign-{r.json()['approval_id']}"
    assert call.headers["host"] == f"127.0.0.1:{d.stub.port}"
