"""The TypeScript SDK (sdk/typescript) against the real system.

The SDK is built once per session (`npm ci` when node_modules is missing, then
`npm run build`). Its own tests (unit tests on a local HTTP server and the
README's examples) run as one test; `sdk/typescript/test/system.test.mjs` runs
against a real deployment (api, worker, scheduler, Postgres, Kafka, the stub
provider) once per scenario:

- ``main``: policy window 1 h -- inline results, approve/deny by approvers who
  sign in with one-time links, local timeout then success, execution failure,
  cancel, idempotency, bad key, forbidden header, unknown grant;
- ``expiry``: policy window 2 s -- the approval expires undecided;
- ``batch``: policy "always" -- submitBatch of 10 refunds approved all but 2 on
  the batch page (awaitBatch: 8 executed, 2 denied), resubmission, a
  conflicting seal, a member after the seal, a member with another grant.

Afterwards the provider side is checked here: what the stub received, and that
denied, cancelled and expired calls never reached it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import BUILD_DIR, System
from services import REPO_ROOT, scaled

SDK = REPO_ROOT / "sdk" / "typescript"
NODE_MAJOR_MIN = 20


def _node() -> str:
    node = shutil.which("node")
    assert node, "node (>= 20) is needed for the TypeScript SDK tests"
    major = int(subprocess.run([node, "--version"], capture_output=True, text=True,
                               check=True).stdout.strip().lstrip("v").split(".")[0])
    assert major >= NODE_MAJOR_MIN, f"node {major} is too old; the SDK needs node >= {NODE_MAJOR_MIN}"
    return node


def _run(args: list[str], env: dict[str, str] | None = None, timeout: float = 600) -> str:
    res = subprocess.run(args, cwd=SDK, env=env or os.environ.copy(), capture_output=True,
                         text=True, timeout=scaled(timeout))
    assert res.returncode == 0, (f"{' '.join(args)} exited {res.returncode}\n"
                                 f"--- stdout ---\n{res.stdout}\n--- stderr ---\n{res.stderr}")
    return res.stdout


@pytest.fixture(scope="session")
def ts_sdk() -> str:
    """Builds the SDK into sdk/typescript/dist; returns the node executable."""
    node = _node()
    npm = shutil.which("npm")
    assert npm, "npm is needed to build the TypeScript SDK"
    lock = json.loads((SDK / "package-lock.json").read_text())
    want = lock["packages"]["node_modules/typescript"]["version"]
    installed = SDK / "node_modules" / "typescript" / "package.json"
    if not installed.exists() or json.loads(installed.read_text())["version"] != want:
        _run([npm, "ci", "--no-audit", "--no-fund"], timeout=300)
    _run([npm, "run", "build"], timeout=300)
    return node


def _passed(tap: str) -> int:
    """Checks node's TAP summary: something ran, nothing failed, was skipped or cancelled."""
    counts = {k: int(v) for k, v in re.findall(r"^# (pass|fail|skipped|cancelled|todo) (\d+)$",
                                                 tap, re.M)}
    assert counts.get("pass", 0) > 0, f"no test ran:\n{tap}"
    for k in ("fail", "skipped", "cancelled", "todo"):
        assert counts.get(k, 0) == 0, f"{counts.get(k)} {k}:\n{tap}"
    return counts["pass"]


def test_sdk_typescript_unit_and_readme(ts_sdk: str) -> None:
    out = _run([ts_sdk, "--test", "--test-reporter=tap", "test/unit.test.mjs",
                "test/readme.test.mjs"], timeout=300)
    assert _passed(out) >= 50


def _start(system: System, **setup: object) -> tuple[str, str]:
    """Setup, worker, scheduler, api; returns (api url, bot1's API key)."""
    system.setup(**setup)  # type: ignore[arg-type]
    system.worker()
    system.scheduler()
    api = system.api()
    return str(api.url), system.api_key()  # type: ignore[attr-defined]


def _system_tests(system: System, node: str, url: str, key: str, scenario: str) -> int:
    env = {
        **system.env,
        "COUNTERSIGN_URL": url,
        "COUNTERSIGN_API_KEY": key,
        "CS_STUB_URL": system.stub.url,
        "CS_CLI": str(BUILD_DIR / "countersign"),
        "CS_SDK_SCENARIO": scenario,
    }
    out = _run([node, "--test", "--test-reporter=tap", "test/system.test.mjs"], env=env,
               timeout=600)
    assert key not in out, "the API key appears in the test output"
    return _passed(out)


def test_sdk_typescript_main(system: System, ts_sdk: str) -> None:
    stub = system.stub
    stub.program("/v1/refunds/approve", status=201, body=b'{"refund":"re_approved"}',
                 headers={"Content-Type": "application/json", "X-Provider": "stub"})
    stub.program("/v1/refunds/later", status=201, body=b'{"refund":"re_later"}',
                 headers={"Content-Type": "application/json"})
    stub.program("/v1/refunds/broken", close_without_response=True)
    url, key = _start(system)

    passed = _system_tests(system, ts_sdk, url, key, "main")
    assert passed >= 14, passed

    # The approved call reached the provider once, with the secret injected by
    # Countersign, the agent's extra header and the exact JSON body.
    (call,) = stub.requests("/v1/refunds/approve")
    assert call.method == "POST"
    assert call.json() == {"charge": "ch_approve", "amount": 500}
    assert call.headers["authorization"] == f"Bearer {system.secret}"
    assert call.headers["idempotency-key"].startswith("countersign-")
    assert call.headers["x-trace"] == "sdk-ts-approve"
    assert stub.count("/v1/refunds/later") == 1
    assert stub.count("/v1/refunds/small") == 1
    (upload,) = stub.requests("/v1/files/receipt-17")
    assert upload.method == "PUT" and upload.body == bytes([0, 1, 2, 253, 254, 255])
    assert upload.headers["content-type"] == "application/octet-stream"
    # Not idempotent: a call whose connection broke after sending is never re-sent.
    # (libcurl re-sends by itself a request whose reused connection died without
    # an answer, unless the executor forbids connection reuse for such calls.)
    sent = {p: [(round(r.monotonic, 4), r.headers.get("idempotency-key")) for r in stub.requests(p)]
            for p in ("/v1/refunds/broken/approved", "/v1/refunds/broken/inline")}
    assert all(len(v) == 1 for v in sent.values()), sent
    # Denied, cancelled, refused and still pending calls never reached it.
    for path in ("/v1/refunds/deny", "/v1/refunds/cancel", "/v1/refunds/idem",
                 "/v1/refunds/abort", "/v1/refunds/hdr", "/v1/refunds/nogrant",
                 "/v1/refunds/x"):
        assert stub.count(path) == 0, path
    # Nothing stolen through extra headers.
    assert not any("sk_live_stolen" in json.dumps(r.headers) for r in stub.requests())


def test_sdk_typescript_expiry(system: System, ts_sdk: str) -> None:
    url, key = _start(system, window=2)
    passed = _system_tests(system, ts_sdk, url, key, "expiry")
    assert passed >= 1, passed
    assert system.stub.count() == 0


def test_sdk_typescript_batch(system: System, ts_sdk: str) -> None:
    url, key = _start(system, mode="always", rules=[], approvers=("alice", "bob"), quorum=1)
    system.cli("policy", "set", "other", "--mode", "always", "--quorum", "1", "--approvers",
               "alice")
    system.cli("grant", "set", "second", "--policy", "other", "--agents", "bot1", "--allow",
               system.stub.url, "--secret-stdin", input="sk_second\n")
    passed = _system_tests(system, ts_sdk, url, key, "batch")
    assert passed >= 6, passed
    # The 8 approved members reached the provider once each; the denied ones,
    # the refused and the never-decided ones did not.
    paths = sorted(r.path for r in system.stub.requests("/v1/refunds/batch/"))
    assert paths == sorted(f"/v1/refunds/batch/{i}" for i in range(10) if i not in (2, 5))
    assert system.stub.count() == 8
    rows = dict(system.sql("SELECT request_id, status FROM approvals "
                           "WHERE batch_id = 'ts-nightly'"))
    assert rows == {f"ts-nightly:{i}": "denied" if i in (2, 5) else "executed"
                    for i in range(10)}
    assert system.sql("SELECT count(*) FROM approvals WHERE batch_id = 'ts-late'")[0][0] == 2


def test_sdk_is_self_contained() -> None:
    """No runtime dependencies; the compiler and linters (dev only) pinned exactly; dist/ is
    not committed."""
    pkg = json.loads((SDK / "package.json").read_text())
    assert pkg["name"] == "countersign"
    assert "dependencies" not in pkg
    assert sorted(pkg["devDependencies"]) == ["@eslint/js", "eslint", "typescript",
                                              "typescript-eslint"]
    for name, version in pkg["devDependencies"].items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), (name, version)
    lock = json.loads((SDK / "package-lock.json").read_text())
    # Everything the lock installs is for development: nothing ships with the SDK.
    assert "dependencies" not in lock["packages"][""]
    runtime = [p for p, v in lock["packages"].items() if p and not v.get("dev")]
    assert runtime == [], runtime[:5]
    assert Path(SDK / ".gitignore").read_text().count("/dist/") == 1
