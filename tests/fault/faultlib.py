"""Helpers of the fault suite: the long-mode switch, a TLS stub provider, a
producer that keeps producing (and retrying) through a broker outage, an
HTTP client that retries through a database outage, the approval pages as
the events topic announces them, and the checks every fault test ends with.

Nothing here starts Postgres or Kafka: the session fixtures of
tests/conftest.py do (`pg`, `kafka`), and a test's `system` owns its
processes (tests/integration/harness.py).
"""

from __future__ import annotations

import collections
import json
import os
import random
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from harness import TERMINAL, Proc, System
from services import RecordedRequest, StubProvider, _StubHandler, _StubServer, scaled, wait_for

# ---------------------------------------------------------------------------
# Bounded (CI) or long mode
# ---------------------------------------------------------------------------

LONG = os.environ.get("CS_FAULT_LONG", "") not in ("", "0")


def scale(bounded: int, long: int) -> int:
    """`bounded` in CI, `long` with CS_FAULT_LONG=1."""
    return long if LONG else bounded


def seed() -> int:
    """The random seed of this run: CS_FAULT_SEED, else a fresh one (printed by the tests)."""
    raw = os.environ.get("CS_FAULT_SEED")
    return int(raw) if raw else random.SystemRandom().randrange(1 << 30)


# ---------------------------------------------------------------------------
# TLS stub provider
# ---------------------------------------------------------------------------


def make_certs(directory: Path) -> dict[str, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1 it signed, made with openssl.

    Returns the paths: ca (CA certificate, what CS_EXEC_CA_FILE points at),
    cert and key (the server's).
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    ca, ca_key = d / "ca.pem", d / "ca.key"
    cert, key, csr, ext = d / "server.pem", d / "server.key", d / "server.csr", d / "server.ext"
    ext.write_text("subjectAltName = IP:127.0.0.1\nbasicConstraints = critical, CA:FALSE\n"
                   "keyUsage = critical, digitalSignature, keyEncipherment\n"
                   "extendedKeyUsage = serverAuth\n")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=scaled(60))

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca), "-days", "2",
            "-subj", "/CN=Countersign fault-suite CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl("req", *ec, "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
            "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext))
    return {"ca": ca, "cert": cert, "key": key}


class _TlsServer(_StubServer):
    """The stub's threading HTTP server, speaking TLS; the handshake runs in the request's thread."""

    def __init__(self, addr: tuple[str, int], ctx: ssl.SSLContext) -> None:
        self.ctx = ctx
        self.handshake_failures = 0
        self._hs_lock = threading.Lock()
        super().__init__(addr, _StubHandler)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            request.settimeout(scaled(10))
            conn = self.ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            with self._hs_lock:
                self.handshake_failures += 1
            self.shutdown_request(request)
            return
        conn.settimeout(None)
        try:
            self.finish_request(conn, client_address)
        except (ssl.SSLError, OSError):
            pass  # the client went away: nothing to report
        finally:
            self.shutdown_request(conn)


class TlsStubProvider(StubProvider):
    """:class:`services.StubProvider` over TLS, at ``https://127.0.0.1:PORT``.

    Same recording and programming API; `handshake_failures` counts clients
    that gave up during the handshake (e.g. an untrusted certificate).
    """

    def __init__(self, cert: Path, key: Path) -> None:  # noqa: D107 - see the class
        # StubProvider.__init__ builds a plain-HTTP server; build the same state over TLS.
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert), str(key))
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._requests: list[RecordedRequest] = []
        self._rules: list[Any] = []
        self._seq = 0
        self._closing = threading.Event()
        self._init_modes()
        self._server = _TlsServer(("127.0.0.1", 0), ctx)
        self._server.stub = self
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"tls-stub-{self.port}", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def handshake_failures(self) -> int:
        return self._server.handshake_failures  # type: ignore[attr-defined,no-any-return]


# ---------------------------------------------------------------------------
# Load generators that retry through outages
# ---------------------------------------------------------------------------


class RetryingProducer:
    """Produces request envelopes to Kafka from a thread, at `rate` per second, until stopped.

    A message whose delivery fails (the broker is down longer than the
    producer's own retries) is produced again, so every envelope is
    eventually acknowledged: what a careful producer does. `acked` holds the
    request ids the broker acknowledged; `redelivered` counts re-productions.
    `sign(value, agent)` gives each value's signature headers (System.signed),
    made again at every re-production, as a real producer signs when it sends.
    """

    def __init__(self, bootstrap: str, topic: str, make: Callable[[int], dict[str, Any]],
                 rate: float, *, sign: Callable[[bytes, str], list[tuple[str, bytes]]],
                 limit: int | None = None) -> None:
        from confluent_kafka import Producer

        self.topic = topic
        self.make = make
        self.sign = sign
        self.rate = rate
        self.limit = limit
        self.produced: list[str] = []
        self.acked: set[str] = set()
        self.redelivered = 0
        self.errors: list[str] = []
        self._retry: collections.deque[dict[str, Any]] = collections.deque()
        self._stop = threading.Event()
        self._producer: Any = Producer({
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "linger.ms": 5,
            "message.timeout.ms": int(scaled(60) * 1000),
            "reconnect.backoff.ms": 100,
            "reconnect.backoff.max.ms": 1000,
            "error_cb": lambda e: self.errors.append(str(e)),
        })
        self._thread = threading.Thread(target=self._run, name="retrying-producer", daemon=True)

    def start(self) -> RetryingProducer:
        self._thread.start()
        return self

    def _send(self, env: dict[str, Any]) -> None:
        rid = env["request_id"]

        def on_delivery(err: Any, _msg: Any) -> None:
            if err is None:
                self.acked.add(rid)
            else:
                self.errors.append(str(err))
                self._retry.append(env)

        while True:
            try:
                value = json.dumps(env).encode()
                self._producer.produce(self.topic, key=rid.encode(), value=value,
                                       headers=self.sign(value, str(env.get("agent", "bot1"))),
                                       on_delivery=on_delivery)
                return
            except BufferError:
                self._producer.poll(0.1)

    def _run(self) -> None:
        i = 0
        start = time.monotonic()
        while not self._stop.is_set() and (self.limit is None or i < self.limit):
            due = start + i / self.rate
            now = time.monotonic()
            if due > now:
                self._producer.poll(min(due - now, 0.1))
                continue
            env = self.make(i)
            self.produced.append(env["request_id"])
            self._send(env)
            i += 1
            self._flush_retries()
            self._producer.poll(0)
        # Drain: everything produced must be acknowledged.
        while len(self.acked) < len(set(self.produced)):
            self._flush_retries()
            self._producer.poll(0.1)
            if self._stop_deadline and time.monotonic() > self._stop_deadline:
                break

    _stop_deadline: float | None = None

    def _flush_retries(self) -> None:
        while self._retry:
            self.redelivered += 1
            self._send(self._retry.popleft())

    def stop(self, timeout: float = 120) -> None:
        """Stops producing new envelopes and waits until every one was acknowledged."""
        self._stop_deadline = time.monotonic() + scaled(timeout)
        self._stop.set()
        self._thread.join(scaled(timeout) + 5)
        self._producer.flush(scaled(5))
        self._producer = None  # destroys the client: no reconnect noise after the test
        missing = set(self.produced) - self.acked
        assert not missing, (f"{len(missing)} produced envelopes never acknowledged by the broker "
                             f"(errors: {self.errors[-5:]})")


class HttpLoad:
    """Agents submitting through the api from a thread, each call retried until accepted.

    Every submission carries an idempotency_key, so a retry after a 503 (or a
    lost answer) can never store a request twice. `answers` counts the status
    codes seen, `timeline` keeps (monotonic time, status) for the assertions
    about the outage.
    """

    def __init__(self, urls: list[str], key: str, make: Callable[[int], dict[str, Any]],
                 rate: float, name: str = "http-load") -> None:
        self.urls = urls
        self.key = key
        self.make = make
        self.rate = rate
        self.accepted: dict[str, int] = {}     # idempotency_key -> first 2xx status
        self.approval_ids: dict[str, str] = {}  # idempotency_key -> approval id
        self.answers: collections.Counter[int | str] = collections.Counter()
        self.timeline: list[tuple[float, int | str]] = []
        self.unexpected: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> HttpLoad:
        self._thread.start()
        return self

    def _submit(self, client: httpx.Client, url: str, body: dict[str, Any]) -> None:
        give_up = time.monotonic() + scaled(120)
        while time.monotonic() < give_up:
            try:
                r = client.post(f"{url}/v1/proxy", json=body,
                                headers={"Authorization": f"Bearer {self.key}"})
                code: int | str = r.status_code
            except httpx.HTTPError as e:
                code = type(e).__name__
                r = None
            self.answers[code] += 1
            self.timeline.append((time.monotonic(), code))
            if r is not None and r.status_code in (200, 202):
                self.accepted[body["idempotency_key"]] = r.status_code
                data = r.json()
                self.approval_ids[body["idempotency_key"]] = data.get("approval_id", "")
                return
            if r is not None and r.status_code != 503:
                self.unexpected.append(f"{r.status_code} {r.text[:300]}")
                return
            time.sleep(0.1)
        self.unexpected.append(f"{body['idempotency_key']}: never accepted")

    def _run(self) -> None:
        with httpx.Client(timeout=scaled(70)) as client:
            i = 0
            start = time.monotonic()
            while not self._stop.is_set():
                due = start + i / self.rate
                if due > time.monotonic():
                    time.sleep(min(due - time.monotonic(), 0.05))
                    continue
                self._submit(client, self.urls[i % len(self.urls)], self.make(i))
                i += 1

    def stop(self, timeout: float = 150) -> None:
        self._stop.set()
        self._thread.join(scaled(timeout))
        assert not self._thread.is_alive(), "the HTTP load did not finish"

    def saw_between(self, t0: float, t1: float) -> collections.Counter[int | str]:
        return collections.Counter(code for t, code in self.timeline if t0 <= t <= t1)


# ---------------------------------------------------------------------------
# Reading the outcome
# ---------------------------------------------------------------------------


class ApprovalPages:
    """Each approval's page (its approval_url) as the approval.pending events on the
    events topic announce it -- what a notifier integration reads -- as a path
    ("/status/<token>") to join with whichever api a person uses. Call poll()
    from one thread; it reads what arrived since the last call."""

    def __init__(self, system: System) -> None:
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        topic = system.topics["events"]
        self.paths: dict[str, str] = {}
        self._c = Consumer({"bootstrap.servers": system.kafka.bootstrap,
                            "group.id": f"fault-pages-{uuid.uuid4()}",
                            "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        info = wait_for(lambda: self._c.list_topics(topic, timeout=5).topics.get(topic), 30,
                        what=f"topic {topic}")
        self._c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in info.partitions])

    def poll(self) -> None:
        for m in self._c.consume(num_messages=1000, timeout=0.01):
            value = m.value()
            if m.error() is not None or not value:
                continue
            e = json.loads(value)
            if e.get("type") == "approval.pending" and e.get("approval_url"):
                self.paths[str(e["approval_id"])] = urlsplit(e["approval_url"]).path

    def close(self) -> None:
        self._c.close()


def statuses(system: System) -> dict[str, int]:
    return dict(system.sql("SELECT status, count(*) FROM approvals GROUP BY status"))


def wait_all_terminal(system: System, expected: int | None, timeout: float) -> dict[str, int]:
    """Waits until every approval (and at least `expected` of them) is terminal; returns the counts."""

    def done() -> dict[str, int] | None:
        s = statuses(system)
        total = sum(s.values())
        if expected is not None and total < expected:
            return None
        return s if all(k in TERMINAL for k in s) else None

    try:
        return wait_for(done, timeout, interval=0.2, what="every approval to be terminal")
    except TimeoutError:
        stuck = system.sql("SELECT request_id, status, lease_owner, lease_expires_at, attempts "
                           "FROM approvals WHERE status NOT IN "
                           "('executed','failed','denied','expired','cancelled') LIMIT 20")
        raise AssertionError(f"approvals stuck: {statuses(system)}; e.g. {stuck}") from None


def keys_by_approval(requests: Iterable[RecordedRequest]) -> collections.Counter[str]:
    """How many times the provider saw each approval: by Idempotency-Key."""
    out: collections.Counter[str] = collections.Counter()
    for r in requests:
        key = r.headers.get("idempotency-key", "")
        assert key.startswith("countersign-"), f"a call without an Idempotency-Key: {r.path}"
        out[key.removeprefix("countersign-")] += 1
    return out


def results_by_approval(system: System, expect_keys: set[str],
                        timeout: float = 60) -> dict[str, list[dict[str, Any]]]:
    """The results topic grouped by key; waits until every key in `expect_keys` is there."""
    grouped: dict[str, list[dict[str, Any]]] = {}

    def have_all() -> bool:
        grouped.clear()
        for m in system.topic("results", timeout=30):
            grouped.setdefault(m["key"], []).append(m["value"])
        return expect_keys <= set(grouped)

    try:
        wait_for(have_all, timeout, interval=1, what="every outcome on the results topic")
    except TimeoutError:
        missing = expect_keys - set(grouped)
        raise AssertionError(f"{len(missing)} outcomes never published, e.g. "
                             f"{sorted(missing)[:5]}; event slot lag: "
                             f"{system.event_lag()} bytes") from None
    return grouped


def assert_one_outcome_each(grouped: dict[str, list[dict[str, Any]]]) -> int:
    """Each approval's result messages carry one event_id (duplicates allowed: at least once).

    Returns how many duplicate deliveries there were.
    """
    dups = 0
    for key, msgs in grouped.items():
        ids = {m["event_id"] for m in msgs if not str(key).startswith("batch:")}
        assert len(ids) <= 1, f"approval {key} has different outcomes on results: {sorted(ids)}"
        dups += len(msgs) - 1
    return dups


def alive_and_same(procs: Iterable[Proc], pids: dict[str, int]) -> None:
    """Every process is still running, with the pid it was started with (never restarted)."""
    for p in procs:
        assert p.alive(), f"{p.name} died (status {p.p.returncode}):\n{p.text()[-3000:]}"
        assert pids[p.name] == p.pid


def audit_verify(system: System) -> dict[str, Any]:
    res = system.cli("audit", "verify", check=False)
    report = json.loads(res.stdout) if res.stdout.strip() else {}
    assert res.returncode == 0 and report.get("ok"), f"audit verify: {res.stdout}{res.stderr}"
    return report


def wait_sealed(system: System, timeout: float = 30) -> dict[str, Any]:
    """Waits until the scheduler sealed the whole audit log, then verifies the chain."""

    def sealed() -> dict[str, Any] | None:
        r = audit_verify(system)
        return r if r.get("unsealed_tail", 1) == 0 else None

    return wait_for(sealed, timeout, interval=0.5, what="the audit log to be sealed")
