"""Provider faults, table-driven in one System: each gives the outcome README.md
("Execution") documents, for a grant whose provider honours idempotency keys
and for one whose provider does not. Both grants have a DEADLINE_S execution
deadline, so that calls retried without using an attempt (never sent,
throttled) end within the test.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faultlib import TlsStubProvider, keys_by_approval, make_certs, results_by_approval
from harness import System
from services import free_port, wait_for

TIMEOUT_MS = 1500   # the policies' execution timeout
ATTEMPTS = 3
DEADLINE_S = 5      # the grants' execution deadline


@dataclass
class Case:
    name: str
    idempotent: bool
    where: str                       # "http" stub, "tls" stub, "refused" port
    program: dict[str, Any] = field(default_factory=dict)
    status: str = "executed"
    error: str | None = None
    code: int | None = None          # stored provider status
    calls: int | None = None         # requests the provider received
    attempts: int | None = None
    min_gap: float | None = None     # seconds between the first and the last call
    own_grant: bool = False          # a grant of its own (a 429 makes its whole grant wait)
    waits: int | None = None         # at least this many retries that used no attempt
    failures: int | None = None      # attempts used up (failures)
    # Also accepted: on a reused keep-alive connection that dies before any
    # answer, libcurl itself re-sends once within the same attempt (only
    # where the grant honours idempotency keys: worker/call.c forbids reuse
    # otherwise), so the provider still sees `calls` with one key.
    attempts_too: tuple[int, ...] = ()


CASES = [
    # No answer within the policy's timeout: failed/timeout, or retried with the same key.
    Case("slow", False, "http", {"delay": 4}, "failed", "timeout", calls=1, attempts=1),
    Case("slow-idem", True, "http", {"delay": 4, "times": 1}, code=200, calls=2, attempts=2),
    # 5xx: executed with the 5xx stored; retried when idempotent, up to the attempts.
    Case("5xx", False, "http", {"status": 503, "body": "down"}, code=503, calls=1, attempts=1),
    Case("5xx-idem", True, "http", {"status": 502, "body": "bad"}, code=502, calls=ATTEMPTS,
         attempts=ATTEMPTS),
    Case("5xx-idem-once", True, "http", {"status": 500, "times": 1}, code=200, calls=2,
         attempts=2),
    # 429 (with Retry-After): the grant waits as told and the call is retried, keys or not
    # (the provider did not process it), using no attempt; still throttled at the deadline:
    # failed/rate_limited, never stored as a 429.
    Case("429", False, "http", {"status": 429, "retry_after": 2, "times": 1}, code=200,
         calls=2, attempts=2, min_gap=2.0, waits=1, failures=0, own_grant=True),
    Case("429-idem", True, "http", {"status": 429, "retry_after": 2, "times": 1}, code=200,
         calls=2, attempts=2, min_gap=2.0, waits=1, failures=0, own_grant=True),
    Case("429-always", False, "http", {"status": 429, "retry_after": 2}, "failed",
         "rate_limited", waits=1, failures=0, own_grant=True),
    # Connection refused: nothing was sent, so retried either way without using an attempt,
    # until the deadline: failed/connect_failed.
    Case("refused", False, "refused", {}, "failed", "connect_failed", calls=0, waits=2,
         failures=0),
    Case("refused-idem", True, "refused", {}, "failed", "connect_failed", calls=0, waits=2,
         failures=0),
    # An untrusted certificate: the handshake fails before any request byte: retried
    # until the deadline as never sent, then failed/tls_error; nothing sent.
    Case("tls", False, "tls", {}, "failed", "tls_error", calls=0, waits=2, failures=0),
    Case("tls-idem", True, "tls", {}, "failed", "tls_error", calls=0, waits=2, failures=0),
    # The connection closed after the call was sent: outcome_unknown unless idempotent.
    Case("cut", False, "http", {"close_without_response": True}, "failed", "outcome_unknown",
         calls=1, attempts=1),
    Case("cut-idem", True, "http", {"close_without_response": True, "times": 1}, code=200,
         calls=2, attempts=2, attempts_too=(1,)),
]
# After the worker is restarted with CS_EXEC_CA_FILE pointing at the CA.
TRUSTED = [
    Case("tls-trusted", False, "tls", {}, code=200, calls=1, attempts=1),
    Case("tls-trusted-idem", True, "tls", {"status": 503, "times": 1}, code=200, calls=2,
         attempts=2),
]


def _check(system: System, bases: dict[str, Any], case: Case) -> dict[str, Any]:
    a = system.wait_status(case.name, {"executed", "failed"}, timeout=30)
    got = {"status": a["status"], "error": a["error_code"], "attempts": a["attempts"]}
    trail = system.sql("SELECT at, actor, action, detail::text FROM audit WHERE approval_id = %s "
                       "ORDER BY id", a["id"])
    if case.waits is not None:
        assert a["waits"] >= case.waits, \
            f"{case.name}: {a['waits']} retries without an attempt; audit: {trail}"
    if case.failures is not None:
        assert a["failures"] == case.failures, \
            f"{case.name}: {a['failures']} attempts used; audit: {trail}"
    stub = bases["stub"] if case.where == "http" else bases["tls_stub"]
    calls = [] if case.where == "refused" else stub.requests(f"/v1/refunds/{case.name}/")
    want = {"status": case.status, "error": case.error,
            "attempts": a["attempts"] if case.attempts is None or a["attempts"] in case.attempts_too
            else case.attempts}
    assert got == want, f"{case.name}: {got} (message: {a['error_message']}), wanted {want}"
    if case.code is not None:
        assert a["response_status"] == case.code, f"{case.name}: stored {a['response_status']}"
    if case.calls is not None:
        assert len(calls) == case.calls, f"{case.name}: the provider saw {len(calls)} calls"
    if calls:
        assert set(keys_by_approval(calls)) == {str(a["id"])}, \
            f"{case.name}: repeated deliveries carry different keys"
        assert all(c.headers.get("authorization") == f"Bearer {system.secret}" for c in calls)
    if case.min_gap is not None:
        gap = calls[-1].monotonic - calls[0].monotonic
        assert gap >= case.min_gap - 0.05, f"{case.name}: retried after {gap:.2f}s"
    return a


def test_provider_faults_give_the_documented_outcome(system: System) -> None:
    certs_dir = Path(tempfile.mkdtemp(prefix="cs-fault-tls-"))
    tls = TlsStubProvider(**{k: v for k, v in make_certs(certs_dir).items() if k != "ca"})
    try:
        refused = f"http://127.0.0.1:{free_port()}"   # nothing listens there
        bases = {"http": system.stub.url, "tls": tls.url, "refused": refused,
                 "stub": system.stub, "tls_stub": tls}
        allow = (system.stub.url, tls.url, refused)
        system.setup(mode="never", rules=[], timeout_ms=TIMEOUT_MS, attempts=ATTEMPTS,
                     bases=allow)
        system.cli("policy", "set", "pay-idem", "--mode", "never", "--rules", "[]", "--quorum",
                   "1", "--approvers", "alice,bob", "--timeout", str(TIMEOUT_MS),
                   "--attempts", str(ATTEMPTS))
        own = [(f"g-{c.name}", "pay-idem" if c.idempotent else "pay",
                ["--idempotency-keys"] if c.idempotent else []) for c in CASES if c.own_grant]
        for grant, policy, extra in [("stripe", "pay", []),
                                     ("stripe-idem", "pay-idem", ["--idempotency-keys"]), *own]:
            args = ["grant", "set", grant, "--policy", policy, "--agents", "bot1",
                    "--secret-stdin", "--deadline", str(DEADLINE_S), *extra]
            for b in allow:
                args += ["--allow", b]
            system.cli(*args, input=system.secret + "\n")

        def envelope(case: Case) -> dict[str, Any]:
            return system.envelope(case.name, url=f"{bases[case.where]}/v1/refunds/{case.name}/",
                                   grant_id=f"g-{case.name}" if case.own_grant else
                                   "stripe-idem" if case.idempotent else "stripe")

        for case in CASES + TRUSTED:
            if case.program:
                stub = system.stub if case.where == "http" else tls
                stub.program(f"/v1/refunds/{case.name}/", **case.program)

        # Phase 1: a worker that trusts only the system store.
        w1 = system.worker("untrusting")
        system.scheduler()
        system.produce(*[envelope(c) for c in CASES])
        outcomes = {c.name: _check(system, bases, c) for c in CASES}
        assert tls.requests() == [] and tls.handshake_failures >= 2
        assert w1.stop() == 0

        # Phase 2: the same TLS stub, with CS_EXEC_CA_FILE naming its CA.
        system.worker("trusting", CS_EXEC_CA_FILE=str(certs_dir / "ca.pem"))
        system.produce(*[envelope(c) for c in TRUSTED])
        outcomes.update({c.name: _check(system, bases, c) for c in TRUSTED})

        # Retries are audited, one per retry, and only where the table says so.
        retries = dict(system.sql(
            "SELECT a.request_id, count(*) FROM audit x JOIN approvals a ON a.id = x.approval_id "
            "WHERE x.action = 'execution.retry' GROUP BY 1"))
        waits = dict(system.sql("SELECT request_id, waits + failures FROM approvals"))
        for name in ("refused", "refused-idem", "tls", "429", "429-always", "5xx-idem"):
            assert retries.get(name) == waits[name] >= 1, (name, retries.get(name), waits[name])
        assert "slow" not in retries and "cut" not in retries and "5xx" not in retries

        # Every outcome reached the results topic as stored.
        grouped = results_by_approval(system, {str(a["id"]) for a in outcomes.values()})
        for name, a in outcomes.items():
            (msg, *_) = grouped[str(a["id"])]
            assert (msg["status"], msg.get("error_code")) == (a["status"], a["error_code"]), name
            if a["status"] == "executed":
                assert msg["status_code"] == a["response_status"], name
        wait_for(lambda: system.sql("SELECT count(*) FROM approvals WHERE status NOT IN "
                                    "('executed', 'failed')")[0][0] == 0, 5)
        print(json.dumps({n: [a["status"], a["error_code"], a["response_status"], a["attempts"]]
                          for n, a in outcomes.items()}))
    finally:
        tls.close()
        shutil.rmtree(certs_dir, ignore_errors=True)
