"""The OpenAPI contract (api/openapi.json) against a property-based fuzzer.

Schemathesis (tests/requirements.txt) reads the document and sends the live
api what it describes, and what it does not: schema-valid requests must be
accepted, schema-invalid ones refused, every status and header answered must
be documented, undeclared methods must get 405 with Allow, and so on (all its
checks). The agent routes run with an API key, the admin routes with
CS_ADMIN_TOKEN set. The fuzzer also draws real identifiers half the
time (an approval, an open batch, the test's grant and its stub provider's
URL) so the requests reach past "not found". The approval is an executed one,
so a long-poll on it answers at once (a pending one would hold a worker for
the up to 60 s the fuzzer may ask).

One deliberate setting: schema-valid data may be answered 422. That is the
server's answer to a body that is well-formed but whose fields contradict each
other (a quorum above the approvers named, a delegation that ends before it
starts, a regular expression that does not compile), which JSON Schema cannot
say; each such 422 is documented on its route.

The run is bounded (CS_FUZZ_EXAMPLES per operation and phase, a fixed seed,
CS_FUZZ_SEED to change it) and has a deadline; a response slower than 15 s
(scaled by CS_TEST_TIMEOUT_MULT) fails it. Its report and output stay in
tests/log/<test>/schemathesis.*.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx

from harness import System
from services import REPO_ROOT, scaled

ADMIN_TOKEN = "fuzz-admin-token"
EXAMPLES = int(os.environ.get("CS_FUZZ_EXAMPLES", "6"))
SEED = int(os.environ.get("CS_FUZZ_SEED", "20261202"))

CONFIG = """\
[auth.openapi.bearer]
bearer = "{key}"
[auth.openapi.admin]
bearer = "{admin}"

[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]

[dictionaries.approvals]
values = ["{executed}"]
[dictionaries.batches]
values = ["{batch}"]
[dictionaries.grants]
values = ["stripe"]
[dictionaries.urls]
values = ["{stub}/v1/refunds"]

[parameters]
"path.approval_id" = {{ dictionary = "approvals", probability = 0.5 }}
"path.batch_id" = {{ dictionary = "batches", probability = 0.5 }}
"body.grant_id" = {{ dictionary = "grants", probability = 0.5 }}
"body.url" = {{ dictionary = "urls", probability = 0.5 }}
"""


def test_schemathesis_finds_no_failure(system: System) -> None:
    system.setup()
    system.worker()
    system.scheduler()
    api = system.api(CS_ADMIN_TOKEN=ADMIN_TOKEN)
    url: str = api.url  # type: ignore[attr-defined]
    key = system.api_key()
    auth = {"Authorization": f"Bearer {key}"}
    refund = {"method": "POST", "url": f"{system.stub.url}/v1/refunds", "grant_id": "stripe",
              "json": {"amount": 500}, "reason": "fuzz"}
    executed = httpx.post(f"{url}/v1/proxy", json={**refund, "json": {"amount": 50}}, headers=auth,
                          timeout=scaled(30))
    assert executed.status_code == 200, executed.text
    member = httpx.post(f"{url}/v1/proxy", json={**refund, "batch_id": "fuzz-batch"},
                        headers=auth, timeout=scaled(30))
    assert member.status_code == 202, member.text

    out = system.log_dir
    config = out / "schemathesis.toml"
    config.write_text(CONFIG.format(key=key, admin=ADMIN_TOKEN, batch="fuzz-batch",
                                    executed=executed.json()["approval_id"], stub=system.stub.url))
    report = out / "schemathesis.report.json"
    cmd = [sys.executable, "-c", "from schemathesis.cli import schemathesis; schemathesis()",
           "--config-file", str(config), "--no-color",
           "run", str(REPO_ROOT / "api" / "openapi.json"), "--url", url,
           "--include-path-regex", "^/v1/", "--checks", "all",
           "--max-examples", str(EXAMPLES), "--seed", str(SEED), "--workers", "2",
           "--request-timeout", str(scaled(70)), "--max-response-time", str(scaled(15)),
           "--report", "json", "--report-json-path", str(report)]
    # A bound, not a timing: alone it takes ~60 s; beside the other xdist workers on a
    # 2-core CI machine it took over 170 s.
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=scaled(600),
                         cwd=out)
    (out / "schemathesis.log").write_text(res.stdout + res.stderr)
    summary = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else res.stderr[-2000:]
    print(f"schemathesis (seed {SEED}, {EXAMPLES} examples): {summary}")
    assert res.returncode == 0, f"schemathesis failed; see {out}/schemathesis.log:\n" \
                                f"{res.stdout[-12000:]}{res.stderr[-3000:]}"
    data = json.loads(report.read_text())
    cases, ops = data["test_cases"], data["operations"]
    print(f"schemathesis: {ops['tested']} operations, {cases['generated']} test cases, "
          f"{cases['with_failures']} with failures, {len(data['errors'])} errors, "
          f"{data['running_time']:.0f} s")
    assert data["complete"] and not data["failures"] and not data["errors"], data
    assert ops["tested"] == ops["selected"] >= 30 and cases["with_failures"] == 0


def test_what_the_fuzzer_found_stays_fixed(system: System) -> None:
    """The server-side answers changed for the contract, one by one (schemathesis
    finds them again, but only with luck and time)."""
    system.setup()
    api = system.api(CS_ADMIN_TOKEN=ADMIN_TOKEN)
    url: str = api.url  # type: ignore[attr-defined]
    key = system.api_key()
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    http = httpx.Client(base_url=url, timeout=scaled(30))

    def code(r: httpx.Response) -> tuple[int, str]:
        return r.status_code, str(r.json()["error"]["code"]) if r.status_code >= 400 else ""

    # JSON Schema's integer: 16761.0 is one (1.5 is not).
    seal = http.post("/v1/batches/b-1/seal", json={"count": 2.0},
                     headers={"Authorization": f"Bearer {key}"})
    assert seal.status_code == 200 and seal.json()["expected"] == 2, seal.text
    half = http.post("/v1/batches/b-2/seal", content=b'{"count": 1.5}',
                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    assert code(half) == (400, "invalid_request")
    r = http.post("/v1/admin/agents/bot1/signing-keys/rotate", json={"overlap_seconds": 60.0},
                  headers=admin)
    assert r.status_code == 201, r.text
    # An agent named in the path that does not exist is 404, as a grant is.
    assert code(http.post("/v1/admin/agents/nobody/keys", json={}, headers=admin)) == \
        (404, "unknown_agent")
    # Scopes: submit and read, comma-separated, nothing else.
    for scopes in (",submit", "submit,,read", "read,", ","):
        assert code(http.post("/v1/admin/agents/bot1/keys", json={"scopes": scopes},
                              headers=admin)) == (400, "invalid_request"), scopes
    assert http.post("/v1/admin/agents/bot1/keys", json={"scopes": "read,submit"},
                     headers=admin).status_code == 201
    # A name holding U+0000 would reach SQL cut short ("bot1").
    grant = {"secret": "s", "policy_id": "pay", "allowed_bases": [system.stub.url]}
    r = http.put("/v1/admin/grants/g1", json={**grant, "agents": ["bot1\u0000x"]}, headers=admin)
    assert code(r) == (400, "invalid_request") and "NUL" in r.text
    # A link lifetime out of range is refused even when the mode is signin.
    pol = {"mode": "always", "approvers": ["alice"]}
    r = http.put("/v1/admin/policies/p1", json={**pol, "link_lifetime_s": 86401}, headers=admin)
    assert code(r) == (400, "invalid_request")
    # Well-formed, but contradicting itself: 422.
    r = http.put("/v1/admin/policies/p1", json={**pol, "approvers": ["alice"],
                                                "escalation": ["alice"]}, headers=admin)
    assert code(r) == (422, "unprocessable")
    r = http.put("/v1/admin/grants/g1", json={**grant, "in_progress_pattern": "("}, headers=admin)
    assert code(r) == (422, "unprocessable")
    for body in ({"approver": "alice", "delegate": "alice", "ends_at": "2099-01-01T00:00:00Z"},
                 {"approver": "alice", "delegate": "bob", "ends_at": "2000-01-01T00:00:00Z"}):
        assert code(http.post("/v1/admin/delegations", json=body, headers=admin)) == \
            (422, "unprocessable"), body
    # The admin API disabled answers 404 on every route, as documented.
    off = system.api(name="api-off")
    r = httpx.get(f"{off.url}/v1/admin/agents", headers=admin)  # type: ignore[attr-defined]
    assert code(r) == (404, "not_found")
