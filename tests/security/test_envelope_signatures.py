"""Kafka producers prove who they are (issue 12, section 1).

Before this, a record on the requests topic only *named* its agent: anyone who
could write the topic ran no-approval calls with any agent's grant and filed
requests under another agent's name (getting around "an approver never votes
on their own agent's request"). Now each record carries
``countersign-signature: t=<unix>,k=<key id>,v1=<HMAC-SHA256>`` (README
"Signed envelopes") and the worker refuses, as a dead letter with reason
``unauthenticated`` and a message saying which check failed: an unsigned
record, a forged or altered one, one signed too long ago or in the future,
one signed with a key that is unknown, revoked or past its rotation overlap,
and one signed with another agent's key -- envelopes and seals alike. A
replay inside the window is a duplicate request id (a no-op); past it, it is
stale. Unsigned records pass only when the operator turns that on, and the
worker says so at start. The signing secrets appear in no log, listing,
dead letter or response other than the one that issued them.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest

from attack_kit import Deployment, deployment
from harness import System
from services import Kafka, Postgres, scaled, wait_for

from countersign.signing import SIGNATURE_HEADER, sign_envelope

WINDOW = 5  # CS_KAFKA_SIGNATURE_WINDOW_S of this module's worker (its minimum)


@pytest.fixture(scope="module")
def d(request: pytest.FixtureRequest, pg: Postgres, kafka: Kafka) -> Iterator[Deployment]:
    with deployment(request, pg, kafka, "sec_envsig") as d:
        s = d.system
        d.ids = s.setup(rules=[{"method": "POST", "path": "/v1/refunds*", "field": "amount",
                                "op": ">", "value": 100}])
        for agent in ("bot2", "rot"):
            s.cli("agent", "create", agent)
            s.cli("grant", "bind", "stripe", agent)
        s.signing_key("bot2")
        d.start_api()
        s.worker(CS_KAFKA_SIGNATURE_WINDOW_S=str(WINDOW))
        yield d


def envelope(d: Deployment, rid: str, agent: str = "bot1", amount: int = 5) -> dict[str, Any]:
    return d.system.envelope(rid, agent=agent, amount=amount, path=f"/v1/refunds/{rid}")


def value_of(env: dict[str, Any]) -> bytes:
    return json.dumps(env).encode()


def header(value: bytes, key: tuple[str, str], t: int | None = None) -> list[tuple[str, bytes]]:
    return [(SIGNATURE_HEADER, sign_envelope(value, key[0], key[1], t).encode())]


def send(d: Deployment, key: str, value: bytes, headers: list[tuple[str, bytes]]) -> None:
    d.system.kafka.produce(d.system.topics["requests"], key.encode(), value, headers)


def dead_letter(d: Deployment, key: str, timeout: float = 30) -> dict[str, Any]:
    """The dead letter of the record produced under Kafka key `key`."""
    def find() -> dict[str, Any] | None:
        for m in d.system.topic("dlq", timeout=5):
            if m["key"] == key:
                return m["value"]  # type: ignore[no-any-return]
        return None
    return wait_for(find, timeout, interval=0.2, what=f"the dead letter of {key}")


def refused(d: Deployment, key: str, starts: str) -> dict[str, Any]:
    dl = dead_letter(d, key)
    assert dl["reason"] == "unauthenticated", dl
    assert dl["message"].startswith(starts), dl["message"]
    return dl


def stored(d: Deployment, rid: str, agent: str = "bot1") -> None:
    row = d.system.wait_status(rid, "executed")
    (name,) = d.system.sql("SELECT name FROM agents WHERE id = %s", row["agent_id"])[0]
    assert name == agent


def nothing_of(d: Deployment, rid: str) -> None:
    assert d.system.approval(rid) is None
    assert d.stub.count(f"/v1/refunds/{rid}") == 0


# ---- unsigned, forged, stale ----------------------------------------------

def test_unsigned_envelope_and_seal_are_refused(d: Deployment) -> None:
    """The attack of the issue: write the topic, name an agent, get a call made."""
    env = envelope(d, "unsigned-1")
    send(d, "unsigned-1", value_of(env), [])
    seal = json.dumps({"type": "seal", "agent": "bot1", "batch_id": "ub", "count": 1}).encode()
    send(d, "unsigned-seal", seal, [])
    send(d, "unsigned-empty-header", value_of(envelope(d, "unsigned-2")), [(SIGNATURE_HEADER, b"")])
    d.system.produce(envelope(d, "signed-control"))
    stored(d, "signed-control")
    assert "CS_KAFKA_ALLOW_UNSIGNED" not in "".join(
        p.text() for p in d.system.procs if p.name.startswith("worker"))
    refused(d, "unsigned-1", "unsigned: no countersign-signature header")
    refused(d, "unsigned-seal", "unsigned")
    refused(d, "unsigned-empty-header", "malformed signature header")
    nothing_of(d, "unsigned-1")
    nothing_of(d, "unsigned-2")
    assert not d.system.sql("SELECT id FROM batches WHERE id = 'ub'")


def test_forged_and_altered_signatures_are_refused(d: Deployment) -> None:
    s = d.system
    kid, secret = s.signing["bot1"]
    # A MAC under a guessed secret, with bot1's real key id.
    env = envelope(d, "forged-1")
    send(d, "forged-1", value_of(env), header(value_of(env), (kid, secrets.token_hex(32))))
    # A genuine signature over a value then changed (the amount raised past the rule).
    env2 = envelope(d, "forged-2", amount=5)
    sig = header(value_of(env2), (kid, secret))
    env2["json"] = {"amount": 5000}
    send(d, "forged-2", value_of(env2), sig)
    # Another record's genuine header on this record.
    other = envelope(d, "forged-other")
    send(d, "forged-3", value_of(envelope(d, "forged-3")), header(value_of(other), (kid, secret)))
    # The header's t moved (the MAC covers it).
    env4 = envelope(d, "forged-4")
    h = sign_envelope(value_of(env4), kid, secret)
    t = int(h.split(",")[0][2:])
    send(d, "forged-4", value_of(env4), [(SIGNATURE_HEADER, h.replace(f"t={t}", f"t={t + 1}").encode())])
    # A key id nobody issued; a malformed header; two signature headers.
    env5 = envelope(d, "forged-5")
    send(d, "forged-5", value_of(env5), header(value_of(env5), ("csk_" + secrets.token_hex(8), secret)))
    send(d, "forged-6", value_of(envelope(d, "forged-6")), [(SIGNATURE_HEADER, b"t=1,v1=00")])
    env7 = envelope(d, "forged-7")
    good = header(value_of(env7), (kid, secret))
    send(d, "forged-7", value_of(env7), good + good)
    for key in ("forged-1", "forged-2", "forged-3", "forged-4"):
        dl = refused(d, key, "bad signature")
        assert kid in dl["message"] and secret not in json.dumps(dl)
    refused(d, "forged-5", "unknown key: csk_")
    refused(d, "forged-6", "malformed signature header")
    refused(d, "forged-7", "malformed signature header: more than one")
    for rid in ("forged-1", "forged-2", "forged-3", "forged-4", "forged-5", "forged-6", "forged-7"):
        nothing_of(d, rid)


def test_stale_and_future_signatures_are_refused(d: Deployment) -> None:
    key = d.system.signing["bot1"]
    now = int(time.time())
    for name, t in (("stale-past", now - 1000), ("stale-future", now + 1000),
                    ("stale-edge", now - 3 * WINDOW)):
        env = envelope(d, name)
        send(d, name, value_of(env), header(value_of(env), key, t))
    for name in ("stale-past", "stale-future", "stale-edge"):
        dl = refused(d, name, "stale: signed at t=")
        # The worker made the topic with LogAppendTime: the broker's clock is the reference.
        assert "broker's append time" in dl["message"], dl["message"]
        nothing_of(d, name)


# ---- another agent's key ------------------------------------------------------

def test_another_agents_key_cannot_act_as_it(d: Deployment) -> None:
    """bot2 holds a live key of its own; it signs envelopes and a seal naming bot1."""
    s = d.system
    bot2 = s.signing["bot2"]
    env = envelope(d, "as-bot1", agent="bot1", amount=5)
    send(d, "as-bot1", value_of(env), header(value_of(env), bot2))
    big = envelope(d, "as-bot1-big", agent="bot1", amount=5000)
    send(d, "as-bot1-big", value_of(big), header(value_of(big), bot2))
    seal = json.dumps({"type": "seal", "agent": "bot1", "batch_id": "x2", "count": 1}).encode()
    send(d, "as-bot1-seal", seal, header(seal, bot2))
    own = envelope(d, "bot2-own", agent="bot2", amount=5)
    send(d, "bot2-own", value_of(own), header(value_of(own), bot2))
    stored(d, "bot2-own", agent="bot2")
    for key in ("as-bot1", "as-bot1-big", "as-bot1-seal"):
        dl = refused(d, key, "wrong agent: key " + bot2[0])
        assert 'belongs to agent "bot2", not "bot1"' in dl["message"]
    nothing_of(d, "as-bot1")
    nothing_of(d, "as-bot1-big")
    assert not s.sql("SELECT id FROM batches WHERE id = 'x2'")


# ---- rotation and revocation ------------------------------------------------

_tries = iter(range(1_000_000))


def key_refused(d: Deployment, key: tuple[str, str], prefix: str) -> bool:
    """Produces one envelope of agent rot signed with `key`: True once it is refused
    as an unknown key, False when it was not dead-lettered within 5 s."""
    rid = f"{prefix}-{next(_tries)}"
    e = envelope(d, rid, agent="rot")
    send(d, rid, value_of(e), header(value_of(e), key))
    try:
        dl = dead_letter(d, rid, timeout=5)
    except TimeoutError:
        return False
    assert dl["message"].startswith("unknown key: " + key[0]), dl
    return True


def test_rotation_keeps_two_keys_live_for_the_overlap_only(d: Deployment) -> None:
    s = d.system
    old = s.signing_key("rot")
    e1 = envelope(d, "rot-old-1", agent="rot")
    send(d, "rot-old-1", value_of(e1), header(value_of(e1), old))
    stored(d, "rot-old-1", agent="rot")
    overlap = int(scaled(6))
    new = s.signing_key("rot", rotate=True, overlap=overlap)
    rotated = time.monotonic()
    assert new[0] != old[0]
    # A third live key is refused: two at once, no more.
    third = s.cli("agent", "key", "create", "rot", check=False)
    assert third.returncode != 0 and "two live signing keys" in third.stderr
    for key, rid in ((old, "rot-old-2"), (new, "rot-new-1")):
        e = envelope(d, rid, agent="rot")
        send(d, rid, value_of(e), header(value_of(e), key))
    stored(d, "rot-old-2", agent="rot")
    stored(d, "rot-new-1", agent="rot")
    assert time.monotonic() - rotated < overlap, "too slow to test inside the overlap"
    # After the overlap (and the catalog's TTL), the old key is refused.
    wait_for(lambda: time.monotonic() - rotated > overlap and key_refused(d, old, "rot-late"),
             overlap + 30, interval=0.5, what="the old key to stop working")
    e = envelope(d, "rot-new-2", agent="rot")
    send(d, "rot-new-2", value_of(e), header(value_of(e), new))
    stored(d, "rot-new-2", agent="rot")
    states = {line.split("\t")[0]: line.split("\t")[-1]
              for line in s.cli("agent", "key", "list", "rot").stdout.splitlines()}
    assert states == {old[0]: "expired", new[0]: "live"}, states
    # Revoked: refused once the catalog reloads it (CS_CATALOG_TTL_MS, 2 s).
    s.cli("agent", "key", "revoke", new[0])
    wait_for(lambda: key_refused(d, new, "rot-revoked"), 30, interval=0.5,
             what="the revoked key to stop working")
    listing = s.cli("agent", "key", "list").stdout
    assert old[1] not in listing and new[1] not in listing and "revoked" in listing


def test_a_disabled_agents_key_is_unknown(d: Deployment) -> None:
    s = d.system
    s.cli("agent", "create", "gone")
    key = s.signing_key("gone")
    s.cli("agent", "disable", "gone")
    e = envelope(d, "gone-1", agent="gone")
    send(d, "gone-1", value_of(e), header(value_of(e), key))
    refused(d, "gone-1", "unknown key: " + key[0])


# ---- replay -------------------------------------------------------------------------

def test_replay_is_a_no_op_inside_the_window_and_stale_after(d: Deployment) -> None:
    s = d.system
    env = envelope(d, "replay-1", amount=5)
    value = value_of(env)
    captured = header(value, s.signing["bot1"])
    send(d, "replay-1", value, captured)
    stored(d, "replay-1")
    for i in range(3):  # replayed at once: the same (agent, request_id)
        send(d, f"replay-1-again-{i}", value, captured)
    send(d, "replay-fence", value_of(envelope(d, "replay-fence")),
         header(value_of(envelope(d, "replay-fence")), s.signing["bot1"]))
    stored(d, "replay-fence")
    assert s.sql("SELECT count(*) FROM approvals WHERE request_id = 'replay-1'")[0][0] == 1
    assert d.stub.count("/v1/refunds/replay-1") == 1
    assert not [m for m in s.topic("dlq", timeout=5) if m["key"].startswith("replay-1-again")]
    # Past the window the same bytes are stale, whatever became of the request id.
    time.sleep(WINDOW + 2)  # the window itself is what is tested
    send(d, "replay-1-late", value, captured)
    refused(d, "replay-1-late", "stale")
    assert d.stub.count("/v1/refunds/replay-1") == 1


# ---- keys through the admin API, and where secrets go -----------------------------

def test_admin_api_manages_signing_keys(d: Deployment) -> None:
    s = d.system
    s.cli("agent", "create", "apibot")
    s.cli("grant", "bind", "stripe", "apibot")
    r = d.http.post("/v1/admin/agents/apibot/signing-keys", headers=d.admin())
    assert r.status_code == 201, r.text
    first = r.json()
    assert set(first) == {"key_id", "agent", "secret"} and first["agent"] == "apibot"
    r = d.http.post("/v1/admin/agents/apibot/signing-keys/rotate", headers=d.admin(),
                    json={"overlap_seconds": 0})
    assert r.status_code == 201, r.text
    second = r.json()
    r = d.http.post("/v1/admin/agents/nobody/signing-keys", headers=d.admin())
    assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"
    r = d.http.post("/v1/admin/agents/apibot/signing-keys/rotate", headers=d.admin(),
                    json={"overlap_seconds": -1})
    assert r.status_code == 400
    r = d.http.get("/v1/admin/signing-keys?agent=apibot", headers=d.admin())
    assert r.status_code == 200
    items = {i["id"]: i for i in r.json()["items"]}
    assert set(items) == {first["key_id"], second["key_id"]}
    assert first["secret"] not in r.text and second["secret"] not in r.text
    # overlap 0: the first key ended at the rotation.
    e = envelope(d, "api-old", agent="apibot")
    send(d, "api-old", value_of(e), header(value_of(e), (first["key_id"], first["secret"])))
    e2 = envelope(d, "api-new", agent="apibot")
    send(d, "api-new", value_of(e2), header(value_of(e2), (second["key_id"], second["secret"])))
    stored(d, "api-new", agent="apibot")
    refused(d, "api-old", "unknown key")
    r = d.http.post(f"/v1/admin/signing-keys/{second['key_id']}/revoke", headers=d.admin())
    assert r.status_code == 200 and r.json()["items"][0]["name"] == "apibot"
    assert d.http.post("/v1/admin/agents/apibot/signing-keys").status_code == 401
    # No signing secret in any process log, dead letter or stored row (cli.log is
    # the harness's transcript of what the CLI printed, issuing keys included).
    everything = "".join(p.read_text(errors="replace") for p in s.log_dir.glob("*.log")
                         if p.name != "cli.log")
    everything += json.dumps([m["value"] for m in s.topic("dlq", timeout=5)])
    everything += json.dumps(s.sql("SELECT id, encode(secret, 'hex') FROM agent_signing_keys"))
    for sec in [first["secret"], second["secret"], *(v[1] for v in s.signing.values())]:
        assert sec not in everything


def test_unsigned_accepted_only_when_turned_on(system: System) -> None:
    """CS_KAFKA_ALLOW_UNSIGNED=1: unsigned envelopes pass as the agent they name, the
    worker says so at start, and a record that is signed is still checked."""
    system.setup()
    worker = system.worker(CS_KAFKA_ALLOW_UNSIGNED="1")
    assert "CS_KAFKA_ALLOW_UNSIGNED is on" in worker.text()
    env = system.envelope("loose-1", amount=5)
    system.produce(env, sign=False)
    system.wait_status("loose-1", "executed")
    bad = system.envelope("loose-2", amount=5)
    system.kafka.produce(system.topics["requests"], b"loose-2", value_of(bad),
                         header(value_of(bad), (system.signing["bot1"][0], "0" * 64)))
    (dl,) = system.topic("dlq", expect=1)
    assert dl["value"]["reason"] == "unauthenticated"
    assert dl["value"]["message"].startswith("bad signature")
    assert system.approval("loose-2") is None
