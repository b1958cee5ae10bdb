"""Approver notifications: email over SMTP, Slack-compatible and signed webhooks,
retries, and delegation. Each message carries the approval's page and a one-time
sign-in link of its own recipient."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterator

import pytest

from approver import Approver
from harness import System
from services import SmtpSink, wait_for


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    yield sink
    sink.close()


def setup_people(system: System, smtp: SmtpSink) -> None:
    """alice by email, bob by signed webhook, carol by Slack; quorum 1 of 3."""
    stub = system.stub
    system.cli("agent", "create", "bot1")
    system.cli("approver", "create", "alice", "--email", "alice@example.com")
    system.cli("approver", "create", "bob", "--webhook", f"{stub.url}/hooks/bob")
    system.cli("approver", "create", "carol", "--slack", f"{stub.url}/slack/carol")
    system.cli("policy", "set", "pay", "--mode", "always", "--quorum", "1",
               "--approvers", "alice,bob,carol")
    system.cli("grant", "set", "stripe", "--policy", "pay", "--agents", "bot1", "--allow",
               stub.url, "--secret-stdin", input=system.secret)


def test_each_channel_gets_its_own_link(system: System, smtp: SmtpSink) -> None:
    setup_people(system, smtp)
    api = system.api()
    system.worker(CS_SMTP_URL=smtp.url, CS_SMTP_FROM="approvals@countersign.test")
    system.produce(system.envelope("r1"))
    a = system.wait_status("r1", "pending")

    (mail,) = smtp.wait_for(1)
    assert mail.recipients == ["<alice@example.com>"]
    text = mail.text()
    assert "Subject: Approval needed: POST" in text and "refund for r1" in text
    page = re.search(r"(http://\S+/status/\S+)", text).group(1)  # type: ignore[union-attr]
    mail_link = re.search(r"(http://\S+/signin/\S+)", text).group(1)  # type: ignore[union-attr]
    assert "Sign in as alice with this one-time link" in text

    (hook,) = system.stub.wait_for(1, "/hooks/bob")
    body = hook.body
    key = bytes.fromhex(system.cli("webhook-key").stdout.strip())
    ts = hook.headers["x-countersign-timestamp"]
    want = hmac.new(key, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert hook.headers["x-countersign-signature"] == f"v1={want}"
    event = json.loads(body)
    assert event["type"] == "approval.requested" and event["approval_id"] == str(a["id"])
    assert event["recipient"] == "bob" and event["approval_url"] == page
    assert "/signin/" in event["signin_url"] and event["signin_url"] != mail_link

    (slack,) = system.stub.wait_for(1, "/slack/carol")
    slack_text = json.loads(slack.body)["text"]
    assert page in slack_text and "Sign in as carol" in slack_text
    slack_link = re.search(r"(http://\S+/signin/\S+)", slack_text).group(1)  # type: ignore[union-attr]
    assert page.startswith(f"{api.url}/status/")  # type: ignore[attr-defined]

    # Each sign-in link is its recipient's: it signs in that person, to the approval's page.
    for who, signin in (("bob", event["signin_url"]), ("carol", slack_link)):
        with Approver() as person:
            assert f"Continue as {who}" in person.continue_page(signin)
            assert person.sign_in(signin) == page
            assert f"Signed in as <b>{who}</b>" in person.page(page)
    # alice's link votes as alice.
    with Approver() as alice:
        assert alice.sign_in(mail_link) == page
        r = alice.decide(page, "approve")
    assert r.status_code == 200
    system.wait_status("r1", "executed")
    sent = system.sql("SELECT detail->>'channel' FROM audit WHERE action = 'notification.sent' "
                      "ORDER BY 1")
    assert [s[0] for s in sent] == ["email", "slack", "webhook"]
    ids = dict(system.sql("SELECT name, id::text FROM approvers"))
    assert system.sql("SELECT actor FROM audit WHERE action = 'vote.approve'")[0][0] == \
        f"approver:{ids['alice']}"


def test_failures_are_retried_audited_and_never_block(system: System, smtp: SmtpSink) -> None:
    setup_people(system, smtp)
    smtp.fail_next(2)
    system.stub.program("/hooks/bob", status=500, times=3)
    system.worker(CS_SMTP_URL=smtp.url, CS_NOTIFY_BACKOFF_MS="200", CS_NOTIFY_MAX_ATTEMPTS="3")
    system.produce(system.envelope("r1"))
    a = system.wait_status("r1", "pending")
    smtp.wait_for(1, timeout=20)  # third try succeeds
    wait_for(lambda: system.sql("SELECT status FROM notifications WHERE channel = 'webhook'")[0][0]
             == "failed", 20, what="the webhook to give up")
    rows = dict(system.sql("SELECT channel, attempts FROM notifications"))
    assert rows == {"email": 3, "webhook": 3, "slack": 1}
    failures = system.sql("SELECT detail->>'channel', (detail->>'final')::bool FROM audit "
                          "WHERE action = 'notification.failed' ORDER BY id")
    assert failures.count(("email", False)) == 2 and ("webhook", True) in failures
    # The approval is untouched and can still be decided.
    assert system.approval("r1")["status"] == "pending"
    system.cli("approval", "approve", str(a["id"]), "--as", "carol")
    system.wait_status("r1", "executed")


def test_delegate_gets_the_link_and_votes_on_behalf(system: System, smtp: SmtpSink) -> None:
    setup_people(system, smtp)
    system.cli("approver", "create", "dave", "--email", "dave@example.com")
    system.cli("delegate", "alice", "dave", "--until", "2099-01-01T00:00:00Z")
    loop = system.cli("delegate", "dave", "alice", "--until", "2099-01-01T00:00:00Z", check=False)
    assert loop.returncode == 1 and "loop" in loop.stderr
    api = system.api()
    system.worker(CS_SMTP_URL=smtp.url)
    system.produce(system.envelope("r1"))
    a = system.wait_status("r1", "pending")
    (mail,) = smtp.wait_for(1)
    assert mail.recipients == ["<dave@example.com>"] and "on behalf of alice" in mail.text()
    link = re.search(r"(http://\S+/signin/\S+)", mail.text()).group(1)  # type: ignore[union-attr]
    assert link.startswith(f"{api.url}/signin/")  # type: ignore[attr-defined]
    with Approver() as dave:
        page = dave.sign_in(link)
        assert "Signed in as <b>dave</b>" in dave.page(page)
        assert dave.decide(page, "approve").status_code == 200
    system.wait_status("r1", "executed")
    vote = system.sql("SELECT detail FROM audit WHERE action = 'vote.approve'")[0][0]
    ids = dict(system.sql("SELECT name, id::text FROM approvers"))
    assert vote["approver_id"] == ids["alice"] and vote["cast_by"] == ids["dave"]
    assert vote["on_behalf_of"] == ids["alice"]
    assert str(a["id"]) in json.dumps(system.sql("SELECT approval_id::text FROM votes"))

