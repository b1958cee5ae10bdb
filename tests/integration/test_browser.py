"""The approval page in real headless Chromium (tests/browser/approve.mjs): open the
one-time sign-in link, press Continue, land on the approval's page, decide."""

from __future__ import annotations

import os
import subprocess

from approver import link
from harness import BUILD_DIR, System
from services import REPO_ROOT, npm_ci, scaled

BROWSER_DIR = REPO_ROOT / "tests" / "browser"


def run_browser(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    npm_ci(BROWSER_DIR, "playwright-core")
    return subprocess.run(["node", "approve.mjs"], cwd=BROWSER_DIR, text=True, capture_output=True,
                          env={**os.environ, **env}, timeout=scaled(120))


def test_approve_in_chromium(system: System) -> None:
    system.setup()
    api = system.api()
    system.worker()
    system.stub.program("/v1/refunds", status=201, body=b'{"refund":"re_9"}')
    system.produce(system.envelope("r1", amount=4312, reason="customer charged twice, ticket #4312"))
    a = system.wait_status("r1", "pending")
    (pending,) = [e for e in system.topic("events", expect=1)
                  if e["value"]["type"] == "approval.pending"]
    shots = BUILD_DIR / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    out = run_browser({"CS_LINK": link(system, str(a["id"]), "alice")["url"],
                       "CS_PAGE": pending["value"]["approval_url"],
                       "CS_REASON": "customer charged twice, ticket #4312",
                       "CS_PAYLOAD": '"amount": 4312', "CS_SHOT": str(shots / "review-page.png")})
    assert out.returncode == 0, out.stdout + out.stderr
    assert (shots / "review-page.png").stat().st_size > 10_000
    done = system.wait_status("r1", "executed")
    assert done["response_status"] == 201
    assert system.stub.count("/v1/refunds") == 1
    vote = system.sql("SELECT reason FROM votes")[0][0]
    assert vote == "decided in Chromium: approve"
    ua = system.sql("SELECT user_agent FROM sessions")
    assert len(ua) == 1 and "Chrom" in ua[0][0], ua
    del api
