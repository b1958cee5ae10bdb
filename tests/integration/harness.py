"""The Countersign system under test: real binaries on a private Postgres and Kafka.

A :class:`System` is one isolated deployment for one test: its own database
(cloned from a migrated template), its own topic prefix and consumer group, its
own master key, and the worker/scheduler processes the test starts. Process
output goes to ``tests/log/<test>/<name>.log``; on teardown the logs are
checked for sanitizer reports and for the grant secret, and printed when the
test failed.

Binaries come from ``$CS_BUILD_DIR`` (``make integration`` sets it; the default
is ``build/``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg

from services import (REPO_ROOT, Kafka, Postgres, StubProvider, listening_socket, scaled,
                      wait_for, worker_ready)

import sys  # noqa: E402  (the SDK's signer, from this checkout)
sys.path.insert(0, str(REPO_ROOT / "sdk" / "python"))
from countersign.signing import SIGNATURE_HEADER, sign_envelope  # noqa: E402

BUILD_DIR = Path(os.environ.get("CS_BUILD_DIR", REPO_ROOT / "build"))
LOG_ROOT = REPO_ROOT / "tests" / "log"
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "WARNING: ThreadSanitizer")
TERMINAL = {"executed", "failed", "denied", "expired", "cancelled"}


def _sanitizer_report(text: str, marker: str) -> str:
    """The first report after marker, condensed to one line: the summary line of
    a failed test is often all a CI log keeps, so the frames go there."""
    lines = text[text.index(marker):].splitlines()[:60]
    keep = [ln.strip() for ln in lines
            if ln.strip() and not ln.startswith("{") and "/usr/lib/" not in ln]
    return " | ".join(keep)[:4000]


class Proc:
    """A Countersign process started by a test."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path,
                 pass_fds: tuple[int, ...] = ()) -> None:
        self.name = name
        self.log = log
        self._fh = open(log, "ab")
        self.p = subprocess.Popen(argv, env=env, stdout=self._fh, stderr=subprocess.STDOUT,
                                  start_new_session=True, pass_fds=pass_fds)
        self.ended_by_test = False  # stop() or kill(): any other exit is checked in close()

    @property
    def pid(self) -> int:
        return self.p.pid

    def alive(self) -> bool:
        return self.p.poll() is None

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM and wait; returns the exit status."""
        self.ended_by_test = True
        if self.alive():
            self.p.send_signal(signal.SIGTERM)
        try:
            return self.p.wait(timeout=scaled(timeout))
        finally:
            self._fh.close()

    def kill(self) -> None:
        """SIGKILL and reap."""
        self.ended_by_test = True
        if self.alive():
            self.p.kill()
        self.p.wait(timeout=scaled(30))
        self._fh.close()

    def text(self) -> str:
        return self.log.read_text(errors="replace")


class System:
    """One isolated Countersign deployment (see the module docstring)."""

    def __init__(self, name: str, pg: Postgres, kafka: Kafka, stub: StubProvider,
                 template: str) -> None:
        self.name = name
        self.pg = pg
        self.kafka = kafka
        self.stub = stub
        self.db_name = f"t_{name}"[:60]
        pg.drop_database(self.db_name)
        # db_url is the superuser's, for the tests' own reads and tamperings; the
        # processes connect as their roles (role_urls), the CLI as the api's.
        self.db_url = pg.create_database(self.db_name, template=template)
        self.role_urls = {kind: pg.role_url(f"countersign_{kind}", self.db_name)
                          for kind in ("api", "worker", "scheduler", "owner", "relay")}
        # The clone's own event slot, made as in production: `countersign migrate` as the
        # owner (with REPLICATION) makes it; the processes refuse to write without it.
        subprocess.run([str(BUILD_DIR / "countersign"), "migrate"], check=True,
                       capture_output=True, timeout=scaled(60),
                       env={**os.environ, "CS_PG_URL": self.role_urls["api"],
                            "CS_PG_OWNER_URL": self.role_urls["owner"]})
        self.prefix = f"t.{name}"[:100]
        self.secret = "sk_live_" + secrets.token_hex(16)
        self.master_key = base64.b64encode(secrets.token_bytes(32)).decode()
        self.log_dir = LOG_ROOT / name
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for old in self.log_dir.glob("*.log"):
            old.unlink()
        self.procs: list[Proc] = []
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CS_")},
            "CS_TEST_TIMEOUT_MULT": os.environ.get("CS_TEST_TIMEOUT_MULT", "1"),
            "CS_PG_URL": self.role_urls["api"],
            "CS_RELAY_PG_URL": self.role_urls["relay"],
            "CS_KAFKA_BROKERS": kafka.bootstrap,
            "CS_TOPIC_PREFIX": self.prefix,
            "CS_KAFKA_GROUP": f"{self.prefix}.ingest",
            "CS_KAFKA_PARTITIONS": "4",
            "CS_KAFKA_SESSION_TIMEOUT_MS": "6000",
            "CS_MASTER_KEY": self.master_key,
            "CS_PUBLIC_URL": "http://127.0.0.1:8080",
            "CS_SWEEP_INTERVAL_MS": "200",
            "CS_POLL_INTERVAL_MS": "500",
            "CS_LOG_LEVEL": "debug",
            "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=99",
            "UBSAN_OPTIONS": "print_stacktrace=1",
            # Read by the SANITIZER=thread build only (make tsan); TSAN_OPTIONS from
            # the environment is appended and wins.
            "TSAN_OPTIONS": f"suppressions={REPO_ROOT}/tests/tsan.supp halt_on_error=0 "
                            f"second_deadlock_stack=1 {os.environ.get('TSAN_OPTIONS', '')}".strip(),
        }
        self.topics = {t: f"{self.prefix}.{t}" for t in ("requests", "events", "results", "dlq")}
        self._n = 0
        # Envelope-signing keys made through the CLI: agent -> (key id, secret).
        self.signing: dict[str, tuple[str, str]] = {}

    # ---- processes -------------------------------------------------------

    def _start(self, kind: str, name: str | None, env: dict[str, str] | None,
               pass_fds: tuple[int, ...] = ()) -> Proc:
        self._n += 1
        name = name or f"{kind}{self._n}"
        full_env = {**self.env, "CS_INSTANCE_ID": name, "CS_PG_URL": self.role_urls[kind],
                    **(env or {})}
        proc = Proc(name, [str(BUILD_DIR / f"countersign-{kind}")], full_env,
                    self.log_dir / f"{name}.log", pass_fds)
        self.procs.append(proc)
        return proc

    def worker(self, name: str | None = None, wait_ready: bool = True, **env: str) -> Proc:
        """Starts a worker; by default waits for its ready line (every role works)."""
        proc = self._start("worker", name, env)
        if wait_ready:
            wait_for(lambda: worker_ready(proc.text()) or not proc.alive(), 60,
                     what=f"{proc.name} to start")
            assert proc.alive(), proc.text()[-3000:]
        return proc

    def scheduler(self, name: str | None = None, **env: str) -> Proc:
        return self._start("scheduler", name, env)

    def api(self, name: str | None = None, host: str = "127.0.0.1", **env: str) -> Proc:
        """Starts an api and waits for /healthz; its base URL is `.url`. The test binds
        127.0.0.1:0 and the api serves that socket (CS_HTTP_FD), so the port is known
        before it starts and never raced for. `host` names it in CS_PUBLIC_URL and
        `.url`: "localhost" for WebAuthn (a browser refuses an IP literal as the RP ID);
        it listens on 127.0.0.1 either way."""
        with listening_socket() as sock:
            port = sock.getsockname()[1]
            fd = sock.fileno()
            proc = self._start("api", name, {"CS_HTTP_FD": str(fd), "CS_HTTP_PORT": str(port),
                                             "CS_PUBLIC_URL": f"http://{host}:{port}", **env},
                               pass_fds=(fd,))
        proc.url = f"http://{host}:{port}"  # type: ignore[attr-defined]

        def up() -> bool:
            if not proc.alive():
                return True
            try:
                return httpx.get(f"{proc.url}/healthz", timeout=1).status_code == 200  # type: ignore[attr-defined]
            except httpx.HTTPError:
                return False

        wait_for(up, 30, what=f"{proc.name} to listen")
        assert proc.alive(), proc.text()[-3000:]
        self.env["CS_PUBLIC_URL"] = proc.url  # type: ignore[attr-defined]
        return proc

    def api_key(self, agent: str = "bot1") -> str:
        """Issues a new API key for `agent` (printed once by the CLI)."""
        return str(self.cli_json("key", "create", agent)["api_key"])

    def signing_key(self, agent: str = "bot1", rotate: bool = False,
                    overlap: int | None = None) -> tuple[str, str]:
        """Creates (or rotates to) an envelope-signing key for `agent`; produce() signs
        that agent's envelopes with it from now on. Returns (key id, secret)."""
        args = ["agent", "key", "rotate" if rotate else "create", agent]
        if overlap is not None:
            args += ["--overlap", str(overlap)]
        out = self.cli_json(*args)
        self.signing[agent] = (str(out["key_id"]), str(out["secret"]))
        return self.signing[agent]

    def signed(self, value: bytes, agent: str = "bot1",
               timestamp: int | None = None) -> list[tuple[str, bytes]]:
        """The signature header of `value` under `agent`'s key, made on first use.
        When the agent has none and can have none (it does not exist), bot1's
        key signs, so the envelope's other faults are still reached (and it is
        refused as signed with another agent's key); unsigned when neither has."""
        if agent not in self.signing:
            res = self.cli("agent", "key", "create", agent, check=False)
            if res.returncode == 0:
                out = json.loads(res.stdout)
                self.signing[agent] = (str(out["key_id"]), str(out["secret"]))
        kid_secret = self.signing.get(agent) or self.signing.get("bot1")
        if kid_secret is None:
            return []
        kid, secret = kid_secret
        return [(SIGNATURE_HEADER, sign_envelope(value, kid, secret, timestamp).encode())]

    def links(self, approval_id: str) -> list[dict[str, Any]]:
        """One line per approver slot (countersign approval links): approver_id,
        approver, voter_id (who holds the slot now) and url, a fresh one-time
        sign-in link for that person leading to the approval's page. Each call
        mints new links. Signing in and deciding: approver.py."""
        out = self.cli("approval", "links", str(approval_id)).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def batch_links(self, batch_id: str, agent: str = "bot1") -> list[dict[str, Any]]:
        """The same for a batch (countersign batch links AGENT BATCH_ID); the
        links lead to the batch's page."""
        out = self.cli("batch", "links", agent, batch_id).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def cli(self, *args: str, input: str | None = None, check: bool = True,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Runs `countersign ARGS`; with check, a non-zero exit fails the test."""
        res = subprocess.run([str(BUILD_DIR / "countersign"), *args], input=input,
                             capture_output=True, text=True, env={**self.env, **(env or {})},
                             timeout=scaled(60))
        with open(self.log_dir / "cli.log", "a") as fh:
            fh.write(f"$ countersign {' '.join(args)}\n{res.stdout}{res.stderr}")
        if check:
            assert res.returncode == 0, f"countersign {' '.join(args)}: {res.stderr}"
        return res

    def cli_json(self, *args: str, input: str | None = None) -> Any:
        return json.loads(self.cli(*args, input=input).stdout)

    # ---- fixtures of data ------------------------------------------------

    def setup(self, *, approvers: tuple[str, ...] = ("alice", "bob"), quorum: int = 1,
              mode: str = "rules", rules: list[dict[str, Any]] | None = None,
              window: int = 3600, timeout_ms: int = 10000, attempts: int = 3,
              idempotency_keys: bool = False, bases: tuple[str, ...] | None = None,
              operator_of_agent: tuple[str, ...] = (),
              approver_args: dict[str, tuple[str, ...]] | None = None,
              exec_deadline: int | None = None) -> dict[str, Any]:
        """Agent bot1, approvers, policy 'pay' and grant 'stripe' aimed at the stub.

        Default rule: POST /v1/refunds* with amount > 100 needs approval.
        `operator_of_agent` names approvers created as operators of bot1;
        `approver_args` gives more `approver create` arguments per approver
        (``{"alice": ("--oidc-subject", "a1")}``).
        """
        ids: dict[str, Any] = {"agent": self.cli_json("agent", "create", "bot1")["agent_id"]}
        self.signing_key("bot1")
        for a in approvers:
            extra = ["--agent", "bot1"] if a in operator_of_agent else []
            extra += (approver_args or {}).get(a, ())
            ids[a] = self.cli_json("approver", "create", a, *extra)["approver_id"]
        if rules is None:
            rules = [{"method": "POST", "path": "/v1/refunds*", "field": "amount", "op": ">",
                      "value": 100}]
        self.cli("policy", "set", "pay", "--mode", mode, "--rules", json.dumps(rules),
                 "--quorum", str(quorum), "--approvers", ",".join(approvers),
                 "--window", str(window), "--timeout", str(timeout_ms),
                 "--attempts", str(attempts))
        args = ["grant", "set", "stripe", "--policy", "pay", "--agents", "bot1",
                "--secret-stdin"]
        for b in bases or (self.stub.url,):
            args += ["--allow", b]
        if idempotency_keys:
            args.append("--idempotency-keys")
        if exec_deadline is not None:  # seconds a never-sent call is retried (README, "Execution")
            args += ["--deadline", str(exec_deadline)]
        self.cli(*args, input=self.secret + "\n")
        return ids

    def envelope(self, request_id: str, *, amount: int = 500, path: str = "/v1/refunds",
                 url: str | None = None, **extra: Any) -> dict[str, Any]:
        env: dict[str, Any] = {
            "request_id": request_id, "agent": "bot1", "grant_id": "stripe", "method": "POST",
            "url": url or f"{self.stub.url}{path}", "json": {"amount": amount},
            "reason": f"refund for {request_id}",
        }
        env.update(extra)
        return env

    def produce(self, *envelopes: dict[str, Any] | bytes, sign: bool = True) -> None:
        """Produces envelopes (dicts, keyed by request_id; a seal by its batch_id)
        and raw values to the requests topic, each signed with its agent's key
        (raw values with bot1's) unless sign is False."""
        msgs = []
        for e in envelopes:
            if isinstance(e, dict):
                value = json.dumps(e).encode()
                key = str(e.get("request_id") or e.get("batch_id") or "raw").encode()
                agent = str(e.get("agent", "bot1"))
            else:
                value, key, agent = e, b"raw", "bot1"
            msgs.append((key, value, self.signed(value, agent) if sign else []))
        self.kafka.produce_many(self.topics["requests"], msgs)

    def produce_raw(self, key: bytes, value: bytes, agent: str = "bot1") -> None:
        """Produces one value under Kafka key `key`, signed with `agent`'s key."""
        self.kafka.produce(self.topics["requests"], key, value, self.signed(value, agent))

    # ---- reading state ---------------------------------------------------

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    def event_lag(self) -> int:
        """Bytes of WAL this database's event slot holds back: events not yet confirmed
        published (plus whatever other WAL was written since the relay last confirmed)."""
        return int(self.sql(
            "SELECT coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)), 0)"
            "::bigint FROM pg_replication_slots WHERE database = current_database()")[0][0])

    def wait_events_published(self, timeout: float, what: str = "every event published") -> None:
        """Wait until the relay confirmed every event committed before this call: the slot's
        confirmed position passes the WAL position read now."""
        lsn = self.sql("SELECT pg_current_wal_lsn()::text")[0][0]
        wait_for(lambda: self.sql(
            "SELECT coalesce(bool_or(confirmed_flush_lsn >= %s::pg_lsn), false) "
            "FROM pg_replication_slots WHERE database = current_database()", lsn)[0][0],
            timeout, what=what)

    def approval(self, request_id: str) -> dict[str, Any] | None:
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            cur = conn.execute("SELECT * FROM approvals WHERE request_id = %s", (request_id,))
            row = cur.fetchone()
            if row is None:
                return None
            return dict(zip([d.name for d in cur.description], row))

    def approval_by_id(self, approval_id: str) -> dict[str, Any]:
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            cur = conn.execute("SELECT * FROM approvals WHERE id = %s", (approval_id,))
            row = cur.fetchone()
            assert row is not None, f"no approval {approval_id}"
            return dict(zip([d.name for d in cur.description], row))

    def wait_status(self, request_id: str, status: str | set[str], timeout: float = 30) -> dict[str, Any]:
        want = {status} if isinstance(status, str) else status

        def check() -> dict[str, Any] | None:
            a = self.approval(request_id)
            return a if a and a["status"] in want else None

        try:
            return wait_for(check, timeout, what=f"{request_id} to become {sorted(want)}")
        except TimeoutError:
            a = self.approval(request_id)
            raise AssertionError(f"{request_id} is {a and a['status']}, wanted {sorted(want)}; "
                                 f"error={a and a.get('error_code')}") from None

    def topic(self, name: str, expect: int | None = None, timeout: float = 30) -> list[dict[str, Any]]:
        """Messages of one of our topics, as dicts with key and value (parsed JSON)."""
        out = []
        for key, value, _ in self.kafka.consume_all(self.topics[name], expect=expect, timeout=timeout):
            out.append({"key": key.decode() if key else None,
                        "value": json.loads(value) if value else None,
                        "raw": value or b""})
        return out

    # ---- teardown checks -------------------------------------------------

    def close(self, failed: bool) -> None:
        problems = []
        for p in self.procs:
            if not p.alive() and not p.ended_by_test and p.p.returncode != 0:
                problems.append(f"{p.name} exited on its own with status {p.p.returncode}")
            if p.alive():
                status = p.stop()
                if status != 0:
                    failed = True
                    print(f"{p.name} exited with {status}")
        for log in sorted(self.log_dir.glob("*.log")):
            text = log.read_text(errors="replace")
            if self.secret in text:
                problems.append(f"{log.name}: the grant secret appears in the log")
            for marker in SANITIZER_MARKERS:
                if marker in text:
                    problems.append(f"{log.name}: {_sanitizer_report(text, marker)}")
            for line in text.splitlines():
                if line.startswith("{") and not _json_line(line):
                    problems.append(f"{log.name}: not a JSON log line: {line[:200]}")
                    break
        if failed or problems:
            for log in sorted(self.log_dir.glob("*.log")):
                tail = log.read_text(errors="replace")[-6000:]
                print(f"\n===== {log} (tail) =====\n{tail}")
        assert not problems, problems


def _json_line(line: str) -> bool:
    try:
        json.loads(line)
        return True
    except ValueError:
        return False


def safe_name(nodeid: str) -> str:
    """A database/topic-safe name, unique per test id (a hash keeps long names apart)."""
    base = re.sub(r"[^a-z0-9_]", "_", nodeid.split("::")[-1].lower())
    return f"{base[:32]}_{hashlib.sha1(nodeid.encode()).hexdigest()[:7]}"


def deadline(seconds: float) -> float:
    return time.monotonic() + scaled(seconds)
