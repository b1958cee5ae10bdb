"""The C client (include/countersign.h, client/) against the real system.

Each test starts the api, a worker (and a scheduler where expiry matters) on
its own database and runs the C test program ``$CS_BUILD_DIR/tests/test_client``
(client/test_client.c, built with the project's sanitizer flags by
client/client.mk) for one scenario. The program decides as people do: it takes
a one-time sign-in link from ``countersign approval links`` (``CS_CLI``), POSTs
it (the session cookie), then POSTs the decision form of the page it leads to.
It prints TAP lines; here we check that it exited 0, that every check passed,
that nothing in its output is a sanitizer report (LeakSanitizer is on) and that
the API key never shows, and then what the stub provider received.

The examples (examples/*.c) run here too, against the same kind of system; a
person decides for them from here the same way (approver.py).
When the binaries are missing they are built with
``make -f Makefile -f client/client.mk BUILD=$CS_BUILD_DIR client``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from approver import batch_vote, vote
from harness import BUILD_DIR, SANITIZER_MARKERS, System
from services import REPO_ROOT, scaled

TEST_BIN = BUILD_DIR / "tests" / "test_client"
EXAMPLES = {name: BUILD_DIR / "examples" / name
            for name in ("submit_and_wait", "produce_request", "submit_batch")}
_build_lock = threading.Lock()


# ---- building and running ------------------------------------------------

def _sanitizer_of(build_dir: Path) -> str:
    """The SANITIZER the build directory's binaries were made with (read from
    the CLI binary's sanitizer runtime symbols; $CS_SANITIZER wins)."""
    if "CS_SANITIZER" in os.environ:
        return os.environ["CS_SANITIZER"]
    try:
        data = (build_dir / "countersign").read_bytes()
    except OSError:
        return ""
    return ",".join(name for name, symbol in (("address", b"__asan_init"),
                                                ("undefined", b"__ubsan_handle"),
                                                ("thread", b"__tsan_init")) if symbol in data)


@pytest.fixture(scope="session")
def c_bins() -> Path:
    """The C client's test program and examples, built when missing."""
    with _build_lock:
        wanted = [TEST_BIN, *EXAMPLES.values()]
        if not all(p.exists() for p in wanted):
            makefile = (REPO_ROOT / "Makefile").read_text()
            extra = [] if "client/client.mk" in makefile else ["-f", "client/client.mk"]
            res = subprocess.run(
                ["make", "-f", "Makefile", *extra, f"BUILD={BUILD_DIR}",
                 f"SANITIZER={_sanitizer_of(BUILD_DIR)}", "client"],
                cwd=REPO_ROOT, capture_output=True, text=True, timeout=scaled(900))
            assert res.returncode == 0, f"building the C client failed:\n{res.stdout}\n{res.stderr}"
        for p in wanted:
            assert p.exists(), f"{p} was not built"
    return TEST_BIN


def _env(system: System, url: str, key: str) -> dict[str, str]:
    kid, secret = system.signing.get("bot1", ("", ""))
    return {
        **system.env,
        "COUNTERSIGN_URL": url,
        "COUNTERSIGN_API_KEY": key,
        "COUNTERSIGN_SIGNING_KEY_ID": kid,
        "COUNTERSIGN_SIGNING_SECRET": secret,
        "CS_STUB_URL": system.stub.url,
        "CS_CLI": str(BUILD_DIR / "countersign"),
    }


def _clean(system: System, name: str, key: str, res: subprocess.CompletedProcess[str]) -> str:
    """Keeps the program's output with the system's logs; checks sanitizers and the key."""
    out = f"--- stdout ---\n{res.stdout}\n--- stderr ---\n{res.stderr}"
    (system.log_dir / f"{name}.out").write_text(out)
    for marker in SANITIZER_MARKERS:
        assert marker not in res.stdout + res.stderr, f"{name}: {marker}\n{out}"
    assert key not in res.stdout + res.stderr, f"{name}: the API key appears in the output"
    return out


def run_c(system: System, url: str, key: str, *scenarios: str, min_checks: int = 1,
          timeout: float = 300) -> str:
    """Runs test_client SCENARIOS; asserts exit 0 and a clean TAP run; returns stdout."""
    res = subprocess.run([str(TEST_BIN), *scenarios], env=_env(system, url, key),
                         capture_output=True, text=True, timeout=scaled(timeout))
    out = _clean(system, "test_client-" + "-".join(scenarios), key, res)
    assert res.returncode == 0, f"test_client {' '.join(scenarios)} exited {res.returncode}\n{out}"
    assert not re.search(r"^not ok", res.stdout, re.M), out
    m = re.search(r"^(\d+) passed, (\d+) failed$", res.stdout, re.M)
    assert m and m.group(2) == "0" and int(m.group(1)) >= min_checks, out
    return res.stdout


def start(system: System, *, scheduler: bool = False, **setup: Any) -> tuple[str, str]:
    """Policy/grant/agent (system.setup), api, worker [, scheduler]; (api URL, bot1's key)."""
    system.setup(**setup)
    api = system.api()
    system.worker()
    if scheduler:
        system.scheduler()
    return str(api.url), system.api_key()  # type: ignore[attr-defined]


# ---- the scenarios -------------------------------------------------------

def test_c_immediate_result_bodies_and_parameters(system: System, c_bins: Path) -> None:
    stub = system.stub
    stub.program("/v1/refunds/small", status=201, body=b'{"id":"re_1","amount":50}',
                 headers={"Content-Type": "application/json", "X-Request-Id": "req_1"})
    url, key = start(system)
    run_c(system, url, key, "immediate", min_checks=10)
    (call,) = stub.requests("/v1/refunds/small")
    assert call.method == "POST" and call.json() == {"amount": 50}
    assert call.headers["authorization"] == f"Bearer {system.secret}"
    assert call.headers["idempotency-key"].startswith("countersign-")
    (put,) = stub.requests("/v1/files/")
    path, _, query = put.path.partition("?")
    assert put.method == "PUT" and path == "/v1/files/file_9"
    assert put.body == bytes(range(256)) * 4
    assert parse_qs(query) == {"purpose": ["dispute_evidence"], "tag": ["a", "b"]}
    assert put.headers["content-type"] == "application/octet-stream"
    assert put.headers["x-trace"] == "t-1"
    (ping,) = stub.requests("/v1/ping")
    assert ping.body == b"null" and ping.headers["content-type"] == "application/json"


def test_c_pending_then_approved_through_the_link(system: System, c_bins: Path) -> None:
    system.stub.program("/v1/refunds/approve", status=201, body=b'{"refund":"re_approved"}',
                        headers={"Content-Type": "application/json"})
    url, key = start(system)
    run_c(system, url, key, "approved", min_checks=10)
    (call,) = system.stub.requests("/v1/refunds/approve")
    assert call.json() == {"amount": 500}
    assert call.headers["authorization"] == f"Bearer {system.secret}"


def test_c_denied_carries_the_approvers_reason(system: System, c_bins: Path) -> None:
    url, key = start(system)
    run_c(system, url, key, "denied", min_checks=8)
    assert system.stub.count() == 0


def test_c_expired(system: System, c_bins: Path) -> None:
    url, key = start(system, scheduler=True, window=2)
    run_c(system, url, key, "expired", min_checks=4)
    assert system.stub.count() == 0


def test_c_local_timeout_then_a_later_await_succeeds(system: System, c_bins: Path) -> None:
    system.stub.program("/v1/refunds/later", status=201, body=b'{"refund":"re_later"}')
    url, key = start(system)
    run_c(system, url, key, "timeout", min_checks=8)
    assert system.stub.count("/v1/refunds/later") == 1


def test_c_execution_failure(system: System, c_bins: Path) -> None:
    system.stub.program("/v1/refunds/broken", close_without_response=True)
    url, key = start(system)  # the grant does not say the provider honours idempotency keys
    run_c(system, url, key, "failure", min_checks=6)
    assert system.stub.count("/v1/refunds/broken") == 1  # never re-run blindly


def test_c_cancel(system: System, c_bins: Path) -> None:
    url, key = start(system)
    run_c(system, url, key, "cancel", min_checks=6)
    assert system.stub.count() == 0


def test_c_errors_bad_key_forbidden_header_unknown_grant(system: System, c_bins: Path) -> None:
    """Bad key, forbidden header, unknown grant, local refusals, idempotency, no server."""
    url, key = start(system)
    run_c(system, url, key, "errors", min_checks=20)
    assert system.stub.count() == 0
    rows = system.sql("SELECT request_id, status FROM approvals")
    assert rows == [("refund-ticket-4312", "pending")], rows


def test_c_kafka_producer(system: System, c_bins: Path) -> None:
    url, key = start(system)
    run_c(system, url, key, "produce", min_checks=5)
    pending = system.wait_status("c-produce-1", "pending")
    assert pending["reason"] == "customer charged twice, ticket #4312"
    system.wait_status("c-produce-2", "executed")
    (call,) = system.stub.requests("/v1/refunds/kafka")
    assert call.json() == {"amount": 20} and call.headers["x-trace"] == "c-kafka"
    keys = {m["key"] for m in system.topic("requests", expect=2)}
    assert {"c-produce-1", "c-produce-2"} <= keys, keys


def test_c_retry_policy(stub: Any, c_bins: Path, tmp_path: Path) -> None:
    """The stub provider plays the API: which failures are retried, how often."""
    status = {"approval_id": "00000000-0000-0000-0000-0000000000aa", "status": "pending",
              "is_terminal": False, "has_result": False, "approvals_received": 0,
              "approvals_required": 2, "expires_at": "2030-01-01T00:00:00Z"}
    unavailable = b'{"error":{"code":"unavailable","message":"try later"}}'
    ids = {k: f"/v1/approvals/00000000-0000-0000-0000-0000000000{k}" for k in
           ("aa", "bb", "cc", "dd", "ee", "ff")}
    stub.program(ids["aa"], status=503, body=unavailable, times=2)
    stub.program(ids["aa"], status=200, body=json.dumps(status))
    stub.program(ids["cc"], status=429, retry_after=1, times=1)
    stub.program(ids["cc"], status=200, body=json.dumps(status))
    stub.program(ids["ee"], status=500, body=b"<html><body>oops</body></html>")
    stub.program(ids["bb"], status=502, body=json.dumps({"error": {
        "code": "execution_failed", "message": "the call failed",
        "details": {"error_code": "connect_failed", "error_message": "refused"}}}))
    stub.program(ids["dd"], status=503, body=unavailable, times=2)
    stub.program(ids["dd"], status=200, body=json.dumps({
        "type": "result", "approval_id": "00000000-0000-0000-0000-0000000000dd",
        "status": "executed", "status_code": 200, "headers": {"Content-Type": "text/plain"},
        "body_b64": "b2s=", "body_truncated": False}))
    stub.program(ids["ff"], status=200, body=b"not json")
    stub.program("/v1/proxy", status=503, body=unavailable)
    batch = {"batch_id": "rb-await", "batch_uid": "00000000-0000-0000-0000-0000000000b1",
             "status": "decided", "expected": 2, "members": 2, "counts": {"approved": 2},
             "digest": "ab" * 32, "is_terminal": False, "grant_id": None}
    stub.program("/v1/batches/rb-await", status=503, body=unavailable, times=2)
    stub.program("/v1/batches/rb-await", status=200, body=json.dumps(batch), times=1)
    stub.program("/v1/batches/rb-await", status=200, body=json.dumps({
        **batch, "counts": {"executed": 2}, "is_terminal": True,
        "finished_at": "2030-01-01T00:00:00Z"}))
    stub.program("/v1/batches/rb-seal/seal", status=503, body=unavailable, times=1)
    stub.program("/v1/batches/rb-seal/seal", status=200, body=json.dumps({
        "batch_id": "rb-seal", "status": "open", "expected": 3, "members": 1,
        "counts": {"pending": 1}, "is_terminal": False, "digest": None}))
    stub.program("/v1/batches/rb-bad", status=200, body=json.dumps({
        "batch_id": "rb-bad", "status": "open", "members": 0, "counts": [],
        "is_terminal": False}))
    stub.program("/v1/batches/rb-gone", status=404, body=json.dumps({
        "error": {"code": "not_found", "message": "no such batch"}}))
    key = "cs_retry_test_key_0123456789"
    env = {**os.environ, "COUNTERSIGN_URL": "http://127.0.0.1:1", "COUNTERSIGN_API_KEY": key,
           "CS_STUB_URL": stub.url, "CS_CLI": "/bin/false",
           "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=99"}
    res = subprocess.run([str(TEST_BIN), "retries"], env=env, capture_output=True, text=True,
                         timeout=scaled(120))
    out = f"--- stdout ---\n{res.stdout}\n--- stderr ---\n{res.stderr}"
    assert res.returncode == 0 and "not ok" not in res.stdout, out
    assert not any(m in res.stdout + res.stderr for m in SANITIZER_MARKERS), out
    assert key not in res.stdout + res.stderr
    assert stub.count(ids["aa"]) == 3 and stub.count(ids["cc"]) == 2
    assert stub.count(ids["ee"]) == 4  # 1 + max_retries
    assert stub.count(ids["bb"]) == 1  # execution_failed is an outcome, not a failure
    assert stub.count(ids["dd"] + "/result") == 3
    assert stub.count(ids["ff"]) == 1
    assert stub.count("/v1/proxy") == 1 + 4  # without a key once; with one, 1 + 3 retries
    assert stub.count("/v1/batches/rb-await") == 4  # 503, 503, not terminal, terminal
    seals = stub.requests("/v1/batches/rb-seal/seal")
    assert len(seals) == 2 and all(r.method == "POST" and r.json() == {"count": 3} for r in seals)
    assert stub.count("/v1/batches/rb-bad") == 1 and stub.count("/v1/batches/rb-gone") == 1
    first = stub.requests(ids["aa"])[0]
    assert first.headers["authorization"] == f"Bearer {key}"
    assert first.headers["user-agent"].startswith("countersign-c/0.1.0 ")
    assert first.headers["user-agent"].endswith(" c-test/1")
    (wait,) = [r for r in stub.requests(ids["dd"]) if "wait=" in r.path][:1]
    assert re.search(r"wait=\d+$", wait.path), wait.path
    sub = stub.requests("/v1/proxy")[0]
    assert sub.method == "POST" and sub.json() == {
        "grant_id": "stripe", "method": "POST", "url": "https://x.test/", "reason": "retry test"}


# ---- batches -------------------------------------------------------------

def test_c_batch_approve_all_but_one_on_the_batch_page(system: System, c_bins: Path) -> None:
    """countersign_submit_batch of 6 (local refusals first, then submitted,
    resubmitted, a conflicting seal), approved all but cb6:2 on the batch page,
    awaited: 5 executed, 1 denied; a batch with a refused member stays unsealed."""
    system.stub.program("/v1/batch/", status=201, body=b'{"refund":"re_batch"}',
                        headers={"Content-Type": "application/json"})
    url, key = start(system, scheduler=True)  # the scheduler finishes batches
    run_c(system, url, key, "batch", min_checks=35)
    calls = system.stub.requests("/v1/batch/cb6/")
    assert sorted(c.path for c in calls) == [f"/v1/batch/cb6/{i}" for i in (0, 1, 3, 4, 5)]
    assert all(c.headers["authorization"] == f"Bearer {system.secret}" for c in calls)
    assert len({c.headers["idempotency-key"] for c in calls}) == 5
    rows = {r: (st, reason) for r, st, reason in system.sql(
        "SELECT request_id, status, decision_reason FROM approvals WHERE batch_id = 'cb6'")}
    assert {r: st for r, (st, _) in rows.items()} == {
        f"cb6:{i}": "denied" if i == 2 else "executed" for i in range(6)}, rows
    assert "already refunded" in (rows["cb6:2"][1] or ""), rows
    # The member with the unknown grant was never stored; nothing after it went
    # out until the requests were submitted again; cbr waits for its approvers.
    cbr = system.sql("SELECT request_id, status FROM approvals WHERE batch_id = 'cbr' "
                     "ORDER BY request_id")
    assert cbr == [(f"cbr:{i}", "pending") for i in range(4)], cbr
    assert system.stub.count("/v1/batch/cbr/") == 0
    ((expected, status),) = system.sql("SELECT expected, status FROM batches WHERE id = 'cbr'")
    assert (expected, status) == (4, "decidable")
    assert not system.sql("SELECT id FROM batches WHERE id NOT IN ('cb6', 'cbr')")


def test_c_batch_over_kafka_sealed_by_the_producer(system: System, c_bins: Path) -> None:
    """Members through countersign_produce_request with batch_id, sealed with
    countersign_produce_seal (last for ckb, first for ckf): both decidable; ckb
    approved and awaited over HTTP."""
    system.stub.program("/v1/batch/", status=201, body=b'{"refund":"re_kafka_batch"}')
    url, key = start(system, scheduler=True)
    run_c(system, url, key, "batch_kafka", min_checks=12)
    msgs = system.topic("requests", expect=7)
    seals = {m["key"]: m["value"] for m in msgs if m["value"].get("type") == "seal"}
    assert seals == {
        "ckb": {"type": "seal", "agent": "bot1", "batch_id": "ckb", "count": 3},
        "ckf": {"type": "seal", "agent": "bot1", "batch_id": "ckf", "count": 2},
    }, seals
    members = [m["value"] for m in msgs if m["value"].get("type") != "seal"]
    assert sorted(m["request_id"] for m in members) == ["ckb-0", "ckb-1", "ckb-2", "ckf-0",
                                                         "ckf-1"]
    assert all(m["batch_id"] == m["request_id"][:3] for m in members)
    assert not system.topic("dlq", timeout=1)
    assert sorted(c.path for c in system.stub.requests("/v1/batch/")) == [
        f"/v1/batch/ckb/{i}" for i in range(3)]
    assert dict(system.sql("SELECT id, status FROM batches")) == {"ckb": "decided",
                                                                  "ckf": "decidable"}


# ---- the examples --------------------------------------------------------

def test_c_examples_run(system: System, c_bins: Path) -> None:
    """examples/submit_and_wait (approved through alice's link when it says it
    waits, then inline) and examples/produce_request, as built."""
    system.stub.program("/v1/refunds", status=201, body=b'{"refund":"re_example"}')
    url, key = start(system)
    env = _env(system, url, key)
    provider = f"{system.stub.url}/v1/refunds"

    p = subprocess.Popen([str(EXAMPLES["submit_and_wait"]), provider, "500"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = p.stdout.readline() if p.stdout else ""
    m = re.match(r"waiting for approval: (\S+)$", first.strip())
    try:
        assert m and m.group(1).startswith(f"{url}/status/"), first
        ((aid,),) = system.sql("SELECT id FROM approvals WHERE status = 'pending'")
        vote(system, str(aid), "alice", "approve", "checked the ticket (C example)", expect=200)
        stdout, stderr = p.communicate(timeout=scaled(90))
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    res = subprocess.CompletedProcess(p.args, p.returncode, first + stdout, stderr)
    out = _clean(system, "submit_and_wait", key, res)
    assert p.returncode == 0 and "provider answered 201 {\"refund\":\"re_example\"}" in stdout, out

    res = subprocess.run([str(EXAMPLES["submit_and_wait"]), provider, "50"], env=env,
                         capture_output=True, text=True, timeout=scaled(90))
    out = _clean(system, "submit_and_wait_inline", key, res)
    assert res.returncode == 0 and "waiting" not in res.stdout, out
    assert "provider answered 201" in res.stdout, out
    assert system.stub.count("/v1/refunds") == 2

    res = subprocess.run([str(EXAMPLES["produce_request"]), "example-1", provider, "700"],
                         env=env, capture_output=True, text=True, timeout=scaled(90))
    out = _clean(system, "produce_request", key, res)
    assert res.returncode == 0 and "enqueued example-1" in res.stdout, out
    row = system.wait_status("example-1", "pending")
    assert json.loads(bytes(row["body"])) == {"charge": "ch_1", "amount": 700}
    headers = {k.lower(): v for k, v in row["headers"].items()}
    assert headers.get("stripe-version") == "2024-06-20", row["headers"]


def test_c_example_submit_batch(system: System, c_bins: Path) -> None:
    """examples/submit_batch: 3 refunds as one batch; alice approves all but
    the second on the batch page; it prints the counts and exits 1 (not all
    executed)."""
    system.stub.program("/v1/refunds/", status=201, body=b'{"refund":"re_batch_example"}')
    url, key = start(system, scheduler=True)
    env = _env(system, url, key)
    p = subprocess.Popen([str(EXAMPLES["submit_batch"]), "eb1", f"{system.stub.url}/v1/refunds",
                          "3"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    first = p.stdout.readline() if p.stdout else ""
    try:
        assert first.strip() == "batch eb1: 3 members, decidable; waiting for the approvers", first
        batch_vote(system, "eb1", "alice", "approve", "order 2001 was refunded by hand",
                   expect=200, **{"except": "eb1:1"})
        stdout, stderr = p.communicate(timeout=scaled(120))
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    res = subprocess.CompletedProcess(p.args, p.returncode, first + stdout, stderr)
    out = _clean(system, "submit_batch", key, res)
    assert p.returncode == 1, out
    assert "batch eb1 approved: executed 2, denied 1, failed 0, expired 0" in stdout, out
    assert sorted(c.path for c in system.stub.requests("/v1/refunds/")) == [
        "/v1/refunds/0", "/v1/refunds/2"]
    reasons = dict(system.sql("SELECT request_id, reason FROM approvals WHERE batch_id = 'eb1'"))
    assert reasons["eb1:1"] == "order 2001 was shipped twice and charged twice (ticket #4401)"


def test_c_readme_and_header_compile() -> None:
    """Every ``c`` block of client/README.md compiles against the public header
    alone, and the header is valid C11 and C++11 on its own."""
    cc = shutil.which(os.environ.get("CC", "cc")) or "cc"
    text = (REPO_ROOT / "client" / "README.md").read_text()
    blocks = re.findall(r"^```c\n(.*?)^```", text, flags=re.S | re.M)
    assert blocks, "client/README.md has no c block"
    for n, block in enumerate(blocks, 1):
        res = subprocess.run([cc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic-errors",
                              f"-I{REPO_ROOT / 'include'}", "-x", "c", "-fsyntax-only", "-"],
                             input=block, capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, f"client/README.md c block {n}:\n{res.stderr}"
    for lang, std in (("c", "-std=c11"), ("c++", "-std=c++11")):
        compiler = cc if lang == "c" else shutil.which("c++")
        if compiler is None:
            continue
        res = subprocess.run([compiler, std, "-Wall", "-Wextra", "-Werror", "-pedantic-errors",
                              f"-I{REPO_ROOT / 'include'}", "-x", lang, "-fsyntax-only", "-"],
                             input='#include "countersign.h"\n', capture_output=True, text=True,
                             timeout=60)
        assert res.returncode == 0, f"countersign.h as {lang}:\n{res.stderr}"
