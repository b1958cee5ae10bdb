"""Untrusted input on the requests topic, and where a secret may go."""

from __future__ import annotations

import base64
import json

from harness import System


def test_malformed_and_refused_messages_go_to_dead_letter(system: System) -> None:
    system.setup()
    system.worker()
    bad_header = system.envelope("h1", amount=50, headers={"Authorization": "Bearer mine"})
    unknown_agent = system.envelope("u1", amount=50, agent="nobody")
    unknown_grant = system.envelope("g1", amount=50, grant_id="nope")
    other_host = system.envelope("x1", amount=50, url="https://evil.example/v1/refunds")
    missing = system.envelope("m1", amount=50)
    del missing["url"]
    wrong_type = system.envelope("w1", amount=50, reason=42)
    extra_field = system.envelope("e1", amount=50, api_key="cs_x")
    system.produce(b"{not json", b"", bad_header, unknown_agent, unknown_grant, other_host,
                   missing, wrong_type, extra_field, system.envelope("fine", amount=50))
    system.wait_status("fine", "executed")
    dlq = system.topic("dlq", expect=9)
    reasons = sorted(m["value"]["reason"] for m in dlq)
    # The unknown agent's envelope is signed with bot1's key (harness.signed).
    assert reasons == sorted(["malformed_json", "invalid_request", "forbidden_header",
                              "unauthenticated", "unknown_grant", "host_not_allowed",
                              "invalid_request", "invalid_request", "invalid_request"])
    for m in dlq:
        v = m["value"]
        assert v["topic"] == system.topics["requests"] and v["message"]
        assert isinstance(v["offset"], int)
    originals = [base64.b64decode(m["value"]["original_b64"]) for m in dlq]
    assert b"{not json" in originals
    msgs = {m["value"]["reason"] + ":" + m["value"]["message"] for m in dlq}
    assert any('"url" is required' in x for x in msgs)
    assert any('"reason" must be a string' in x for x in msgs)
    assert any('unknown field "api_key"' in x for x in msgs)
    assert any(x.startswith("unauthenticated:wrong agent: key csk_") and '"nobody"' in x
               for x in msgs)
    assert system.sql("SELECT count(*) FROM approvals")[0][0] == 1
    assert system.stub.count() == 1


def test_agent_name_the_schema_accepts_is_ingested(system: System) -> None:
    """An agent name the CLI and the database accept (agents.name allows @) is
    accepted on the requests topic too: one rule, lib/cs_ident.c. A name the
    schema refuses is refused by the CLI and dead-lettered with the rule."""
    system.setup()
    ops = system.cli_json("agent", "create", "ops@acme")["agent_id"]
    system.cli("grant", "set", "stripe", "--policy", "pay", "--agents", "bot1,ops@acme",
               "--secret-stdin", "--allow", system.stub.url, input=system.secret + "\n")
    refused = system.cli("agent", "create", "@acme", check=False)
    assert refused.returncode != 0
    assert "1-64 letters, digits and ._:@- starting with a letter or digit" in refused.stderr
    system.worker()
    system.produce(system.envelope("ops1", amount=50, agent="ops@acme"),
                   system.envelope("ops2", amount=50, agent="@acme"))
    executed = system.wait_status("ops1", "executed")
    assert str(executed["agent_id"]) == ops
    (dead,) = system.topic("dlq", expect=1)
    assert dead["value"]["reason"] == "invalid_request"
    assert '"agent" must be 1-64 letters, digits and ._:@-' in dead["value"]["message"]
    assert system.approval("ops2") is None


def test_disallowed_host_at_execution_fails_without_sending(system: System) -> None:
    """The grant's hosts are checked again at execution: an approval for a host the
    grant no longer allows fails, and the secret never leaves the process."""
    system.setup()
    system.worker()
    system.produce(system.envelope("r1"))
    a = system.wait_status("r1", "pending")
    system.cli("grant", "allow", "stripe", "https://api.stripe.com")
    system.cli("approval", "approve", str(a["id"]), "--as", "alice")
    f = system.wait_status("r1", "failed", timeout=20)
    assert f["error_code"] == "host_not_allowed"
    assert system.stub.count() == 0
    (res,) = system.topic("results", expect=1)
    assert res["value"]["error_code"] == "host_not_allowed"


def test_name_resolving_to_private_address_refused(system: System) -> None:
    """A base given by name never receives a secret at a private address;
    only a base that names the IP literally may (the stub on 127.0.0.1)."""
    port = system.stub.port
    system.setup(bases=(f"http://localhost:{port}",))
    system.worker()
    system.produce(system.envelope("r1", amount=50, url=f"http://localhost:{port}/v1/refunds"))
    f = system.wait_status("r1", "failed", timeout=20)
    assert f["error_code"] == "host_not_allowed"
    assert "private address" in f["error_message"]
    assert system.stub.count() == 0


def test_redirect_not_followed(system: System) -> None:
    system.setup()
    system.worker()
    system.stub.program("/v1/refunds", status=302,
                        headers={"Location": "https://attacker.example/steal"})
    system.produce(system.envelope("r1", amount=50))
    e = system.wait_status("r1", "executed")
    assert e["response_status"] == 302
    assert e["response_headers"]["location"] == "https://attacker.example/steal"
    assert system.stub.count() == 1


def test_secret_in_no_log_or_kafka_message(system: System) -> None:
    """Runs every path a secret could leak through, then searches for it."""
    # Nothing listens on 127.0.0.2:9: never sent, so retried until a short deadline.
    system.setup(bases=(system.stub.url, "http://127.0.0.2:9"), exec_deadline=3)
    system.worker()
    system.scheduler()
    system.stub.program("/v1/refunds/fail", status=500, body=b"boom")
    system.produce(system.envelope("ok", amount=50),
                   system.envelope("pending", amount=500),
                   system.envelope("fail", amount=50, path="/v1/refunds/fail"),
                   system.envelope("refused", amount=50, url="http://127.0.0.2:9/x"),
                   system.envelope("bad", amount=50, headers={"Cookie": "x"}))
    system.wait_status("ok", "executed")
    system.wait_status("fail", "executed")
    system.wait_status("refused", "failed", timeout=30)
    p = system.wait_status("pending", "pending")
    system.cli("approval", "deny", str(p["id"]), "--as", "alice", "--reason", "no")
    system.wait_status("pending", "denied")
    secret = system.secret.encode()
    for name in ("events", "results", "dlq"):
        for m in system.topic(name):
            assert secret not in m["raw"], f"secret found on {name}"
    audit = system.sql("SELECT detail::text FROM audit")
    assert audit and all(system.secret not in row[0] for row in audit)
    stored = system.sql("SELECT encode(secret, 'escape') FROM grants")[0][0]
    assert system.secret not in stored, "the secret is stored in clear"
    grants = system.cli("grant", "list").stdout
    assert system.secret not in grants
    # The stub (the allowed provider) did receive it, as intended.
    assert system.stub.requests("/v1/refunds")[0].headers["authorization"].endswith(system.secret)
    assert json.dumps(system.sql("SELECT * FROM approvals")[0], default=str).find(system.secret) < 0


def test_a_row_the_database_refuses_is_dead_lettered_alone(system: System) -> None:
    """A row that passes validation but that the database refuses (simulated with a
    constraint the test adds) must not stall its batch: the others are stored, it
    alone goes to the dead-letter topic."""
    system.setup(mode="never", rules=[])
    system.sql("ALTER TABLE approval_requests ADD CONSTRAINT test_poison CHECK (reason <> 'poison')")
    system.worker(CS_INGEST_LINGER_MS="500")
    system.produce(system.envelope("before"), system.envelope("poison", reason="poison"),
                   system.envelope("after"))
    system.wait_status("before", "executed")
    system.wait_status("after", "executed")
    (dead,) = system.topic("dlq", expect=1)
    assert dead["value"]["reason"] == "invalid_request"
    assert "test_poison" in dead["value"]["message"]
    assert system.approval("poison") is None
