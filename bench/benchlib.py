"""Helpers of the Countersign benchmark (bench/bench.py): processes, one
isolated Countersign deployment per scenario, a tiny asyncio HTTP/1.1 client,
statistics, /proc readings and progress lines.

Postgres and Kafka are started with the integration tests' helpers
(tests/integration/services.py, which drive tools/pg.sh and tools/kafka.sh).
Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(REPO_ROOT / "tests" / "integration"))
sys.path.insert(0, str(REPO_ROOT / "sdk" / "python"))

from countersign.signing import SIGNATURE_HEADER, sign_envelope  # noqa: E402
from services import Kafka, Postgres, free_port, wait_for, worker_ready  # noqa: E402

__all__ = ["Kafka", "Postgres", "free_port", "wait_for"]

BUILD_DIR = Path(os.environ.get("CS_BUILD_DIR", REPO_ROOT / "build"))
PROVIDER_BIN = BENCH_DIR / ".build" / "provider"


# ---------------------------------------------------------------------------
# small utilities
# ---------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (0..100) with linear interpolation; nan when empty."""
    if not values:
        return math.nan
    v = sorted(values)
    if len(v) == 1:
        return v[0]
    k = (len(v) - 1) * p / 100.0
    lo = math.floor(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def fmt_rate(x: float) -> str:
    if x != x:  # nan
        return "n/a"
    if x >= 1e4:
        return f"{x / 1e3:.1f}k"
    if x >= 1e3:
        return f"{x / 1e3:.2f}k"
    return f"{x:.0f}"


def fmt_ms(x: float) -> str:
    if x != x:
        return "n/a"
    return f"{x:.1f} ms" if x < 100 else f"{x:.0f} ms"


def rss_kb(pid: int) -> int | None:
    """VmRSS of a process in kB, None if gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


_CLK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            data = fh.read()
    except OSError:
        return None
    return data[data.rindex(")") + 2:].split()


def cpu_seconds(pid: int, children: bool = False) -> float:
    """user+system CPU seconds of pid (plus its reaped children's with children=True)."""
    f = _stat_fields(pid)
    if f is None:
        return 0.0
    # fields after the command: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
    t = int(f[11]) + int(f[12])
    if children:
        t += int(f[13]) + int(f[14])
    return t / _CLK


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores), from /proc/stat."""
    with open("/proc/stat") as fh:
        f = [int(x) for x in fh.readline().split()[1:]]
    idle = f[3] + (f[4] if len(f) > 4 else 0)
    return (sum(f[:8]) - idle) / _CLK


def children_of(ppid: int) -> list[int]:
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        f = _stat_fields(int(name))
        if f is not None and int(f[1]) == ppid:
            out.append(int(name))
    return out


def postgres_cpu(postmaster: int) -> float:
    """CPU seconds of a Postgres cluster: the postmaster, its reaped children and live ones."""
    return cpu_seconds(postmaster, children=True) + sum(cpu_seconds(p) for p in children_of(postmaster))


class Progress:
    """One status line per scenario: rewritten in place on a terminal, else every 5 s."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.tty = sys.stderr.isatty()
        self.last = 0.0
        self.t0 = time.monotonic()
        self.text = ""

    def update(self, text: str, force: bool = False) -> None:
        now = time.monotonic()
        self.text = text
        if self.tty:
            if force or now - self.last >= 0.25:
                sys.stderr.write(f"\r\x1b[K  [{self.label}] {text}  ({now - self.t0:.0f}s)")
                sys.stderr.flush()
                self.last = now
        elif force or now - self.last >= 5:
            sys.stderr.write(f"  [{self.label}] {text}  ({now - self.t0:.0f}s)\n")
            sys.stderr.flush()
            self.last = now

    def done(self, text: str) -> None:
        if self.tty:
            sys.stderr.write("\r\x1b[K")
        sys.stderr.write(f"  [{self.label}] {text}  ({time.monotonic() - self.t0:.1f}s)\n")
        sys.stderr.flush()


def say(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def http_get(url: str, timeout: float = 10) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - loopback only
        return r.read().decode()


def http_post(url: str, body: bytes = b"", timeout: float = 10) -> str:
    req = urllib.request.Request(url, data=body, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 - loopback only
        return r.read().decode()


_METRIC = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$')


def scrape(port: int) -> dict[str, float]:
    """Prometheus text of 127.0.0.1:port/metrics as {name{labels}: value}."""
    out: dict[str, float] = {}
    for line in http_get(f"http://127.0.0.1:{port}/metrics", timeout=5).splitlines():
        m = _METRIC.match(line)
        if m:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def hist_quantile(metrics: dict[str, float], name: str, q: float) -> float:
    """Quantile (0..1) of a Prometheus histogram, interpolated within its bucket (seconds)."""
    buckets = []
    for k, v in metrics.items():
        if k.startswith(name + "_bucket{"):
            m = re.search(r'le="([^"]+)"', k)
            if m:
                buckets.append((math.inf if m.group(1) == "+Inf" else float(m.group(1)), v))
    buckets.sort()
    if not buckets or buckets[-1][1] == 0:
        return math.nan
    total = buckets[-1][1]
    rank = q * total
    prev_le, prev_c = 0.0, 0.0
    for le, c in buckets:
        if c >= rank:
            if le == math.inf:
                return prev_le
            if c == prev_c:
                return le
            return prev_le + (le - prev_le) * (rank - prev_c) / (c - prev_c)
        prev_le, prev_c = le, c
    return math.nan


def hist_merge(samples: list[dict[str, float]], name: str) -> dict[str, float]:
    """Sums the buckets of one histogram over several scrapes (several workers)."""
    out: dict[str, float] = {}
    for s in samples:
        for k, v in s.items():
            if k.startswith(name + "_"):
                out[k] = out.get(k, 0.0) + v
    return out


def hist_diff(after: dict[str, float], before: dict[str, float], name: str) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if k.startswith(name + "_")}


# ---------------------------------------------------------------------------
# processes
# ---------------------------------------------------------------------------


class Proc:
    """A process of ours, in its own session, output to a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        self._fh = open(log, "ab")
        self.p = subprocess.Popen(argv, env=env, stdout=self._fh, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
        self.metrics_port: int | None = None
        self.url: str | None = None

    @property
    def pid(self) -> int:
        return self.p.pid

    def alive(self) -> bool:
        return self.p.poll() is None

    def stop(self, timeout: float = 30) -> int | None:
        if self.alive():
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(timeout=10)
        self._fh.close()
        return self.p.returncode

    def text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, n: int = 3000) -> str:
        return self.text()[-n:]


class Provider:
    """bench/provider.c on a free loopback port."""

    def __init__(self, log_dir: Path, threads: int = 1, capacity: int = 2_000_000) -> None:
        self.port = free_port()
        self.proc = Proc("provider", [str(PROVIDER_BIN), str(self.port), str(threads), str(capacity)],
                         dict(os.environ), log_dir / "provider.log")
        self.url = f"http://127.0.0.1:{self.port}"
        wait_for(lambda: "listening" in self.proc.text() or not self.proc.alive(), 10,
                 what="the provider to listen")
        if not self.proc.alive():
            raise RuntimeError(f"provider did not start: {self.proc.tail()}")

    def reset(self, record: bool) -> None:
        http_post(f"{self.url}/__reset?record={1 if record else 0}")

    def stats(self) -> tuple[int, int, int]:
        """(calls, first arrival us, last arrival us) since the last reset."""
        c, first, last, _ = http_get(f"{self.url}/__stats").split()
        return int(c), int(first), int(last)

    def arrivals(self) -> dict[str, int]:
        """approval id -> first arrival (us, CLOCK_REALTIME) of the recorded calls."""
        out: dict[str, int] = {}
        for line in http_get(f"{self.url}/__dump", timeout=60).splitlines():
            key, us = line.split()
            if key not in out:
                out[key] = int(us)
        return out

    def stop(self) -> None:
        self.proc.stop()


# ---------------------------------------------------------------------------
# one Countersign deployment
# ---------------------------------------------------------------------------

TEMPLATE_DB = "cs_bench_template"


def make_template(pg: Postgres, pg_stats: bool = False) -> None:
    pg.drop_database(TEMPLATE_DB)
    pg.create_database(TEMPLATE_DB)
    # The roles of migration 009 (the superuser as administrator), then the
    # schema migrated by its owner; the processes connect as their roles.
    cli = str(BUILD_DIR / "countersign")
    subprocess.run([cli, "db", "roles", "--apply"], check=True, capture_output=True,
                   env={**os.environ, "CS_PG_URL": pg.url(TEMPLATE_DB)})
    subprocess.run([cli, "migrate"], check=True, capture_output=True,
                   env={**os.environ, "CS_PG_URL": pg.url(TEMPLATE_DB),
                        "CS_PG_OWNER_URL": pg.role_url("countersign_owner", TEMPLATE_DB)})
    pg.drop_event_slots(TEMPLATE_DB)  # each clone gets its own (Deployment)
    if pg_stats:
        import psycopg

        for db in ("postgres", TEMPLATE_DB):
            with psycopg.connect(pg.url(db), autocommit=True) as c:
                c.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")


class Deployment:
    """An isolated Countersign: its own database (from the migrated template),
    topic prefix, consumer group, master key and processes."""

    def __init__(self, name: str, pg: Postgres, kafka: Kafka, provider: Provider, log_root: Path,
                 partitions: int = 6, **env: str) -> None:
        self.name = name
        self.pg = pg
        self.kafka = kafka
        self.provider = provider
        self.db_name = f"b_{name}"
        pg.drop_database(self.db_name)
        self.db_url = pg.create_database(self.db_name, template=TEMPLATE_DB)
        # The clone's event slot: `countersign migrate` as the owner makes it.
        subprocess.run([str(BUILD_DIR / "countersign"), "migrate"], check=True,
                       capture_output=True,
                       env={**os.environ, "CS_PG_URL": pg.role_url("countersign_api", self.db_name),
                            "CS_PG_OWNER_URL": pg.role_url("countersign_owner", self.db_name)})
        self.prefix = f"bench.{name}.{secrets.token_hex(3)}"
        self.log_dir = log_root / name
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.admin_token = secrets.token_hex(16)
        self.partitions = partitions
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CS_")},
            "CS_PG_URL": pg.role_url("countersign_api", self.db_name),
            "CS_RELAY_PG_URL": pg.role_url("countersign_relay", self.db_name),
            "CS_KAFKA_BROKERS": kafka.bootstrap,
            "CS_TOPIC_PREFIX": self.prefix,
            "CS_KAFKA_GROUP": f"{self.prefix}.ingest",
            "CS_KAFKA_PARTITIONS": str(partitions),
            "CS_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
            "CS_PUBLIC_URL": "http://127.0.0.1:9",
            "CS_HTTP_ADDR": "127.0.0.1",
            "CS_ADMIN_TOKEN": self.admin_token,
            "CS_MIGRATE_ON_START": "0",
            **env,
        }
        self.topics = {t: f"{self.prefix}.{t}" for t in ("requests", "events", "results", "dlq")}
        self.procs: list[Proc] = []
        self.workers: list[Proc] = []
        self.api_proc: Proc | None = None
        self.scheduler_proc: Proc | None = None
        self.api_key = ""
        self._n = 0
        self._conn: Any = None

    # ---- set-up through the real CLI ---------------------------------------

    def cli(self, *args: str, input: str | None = None) -> str:
        res = subprocess.run([str(BUILD_DIR / "countersign"), *args], input=input, capture_output=True,
                             text=True, env=self.env, timeout=60)
        if res.returncode != 0:
            raise RuntimeError(f"countersign {' '.join(args)}: {res.stderr.strip()}")
        return res.stdout

    def setup(self, mode: str, window: int = 3600, idempotency_keys: bool = True,
              rules: list[dict[str, Any]] | None = None, amount_field: str | None = None) -> None:
        """Agent bot1 (+ API key), approver alice (no channels: no notifications),
        policy 'pay' in `mode` (summing `amount_field` on batch pages), grant 'stripe'
        aimed at the loopback provider."""
        self.cli("agent", "create", "bot1")
        self.api_key = json.loads(self.cli("key", "create", "bot1"))["api_key"]
        key = json.loads(self.cli("agent", "key", "create", "bot1"))
        self.signing_key: tuple[str, str] = (key["key_id"], key["secret"])
        self.cli("approver", "create", "alice")
        args = ["policy", "set", "pay", "--mode", mode, "--quorum", "1", "--approvers", "alice",
                "--window", str(window), "--timeout", "10000", "--attempts", "3"]
        if rules is not None:
            args += ["--rules", json.dumps(rules)]
        if amount_field:
            args += ["--amount-field", amount_field]
        self.cli(*args)
        # The loopback provider has no limits to protect: no in-flight cap below what
        # the workers can run (the default, 16, is for real providers).
        g = ["grant", "set", "stripe", "--policy", "pay", "--agents", "bot1", "--secret-stdin",
             "--allow", self.provider.url, "--max-in-flight", "10000"]
        if idempotency_keys:
            g.append("--idempotency-keys")
        self.cli(*g, input="sk_bench_" + secrets.token_hex(12) + "\n")

    def create_topics(self) -> None:
        """The topics as the worker makes them: the requests topic stamped by the broker
        (LogAppendTime), so a backlog is measured against its append time, not aged
        by the bench's wait (the signatures' replay window)."""
        self.kafka.create_topics([self.topics["requests"]], partitions=self.partitions,
                                 config={"message.timestamp.type": "LogAppendTime"})
        self.kafka.create_topics([t for k, t in self.topics.items() if k != "requests"],
                                 partitions=self.partitions)

    # ---- processes ------------------------------------------------------------

    def _start(self, kind: str, env: dict[str, str]) -> Proc:
        self._n += 1
        name = f"{kind}{self._n}"
        proc = Proc(name, [str(BUILD_DIR / f"countersign-{kind}")],
                    {**self.env, "CS_INSTANCE_ID": name,
                     "CS_PG_URL": self.pg.role_url(f"countersign_{kind}", self.db_name), **env},
                    self.log_dir / f"{name}.log")
        self.procs.append(proc)
        return proc

    def start_worker(self, wait: bool = True, **env: str) -> Proc:
        port = free_port()
        p = self._start("worker", {"CS_METRICS_PORT": str(port), **env})
        p.metrics_port = port
        self.workers.append(p)
        if wait:
            self.wait_worker(p)
        return p

    def start_workers(self, n: int) -> None:
        """n workers started together, then until each runs and the consumer group is stable."""
        for _ in range(n):
            self.start_worker(wait=False)
        for w in self.workers:
            self.wait_worker(w)
        self.wait_group_stable(n)

    def wait_worker(self, p: Proc) -> None:
        wait_for(lambda: worker_ready(p.text()) or not p.alive(), 60, what=f"{p.name} to start")
        if not p.alive():
            raise RuntimeError(f"{p.name} exited: {p.tail()}")

    def start_scheduler(self, **env: str) -> Proc:
        port = free_port()
        p = self._start("scheduler", {"CS_METRICS_PORT": str(port), **env})
        p.metrics_port = port
        self.scheduler_proc = p
        wait_for(lambda: _listening(port) or not p.alive(), 30, what="the scheduler")
        if not p.alive():
            raise RuntimeError(f"scheduler exited: {p.tail()}")
        return p

    def start_api(self, **env: str) -> Proc:
        port = free_port()
        p = self._start("api", {"CS_HTTP_PORT": str(port), "CS_PUBLIC_URL": f"http://127.0.0.1:{port}",
                                **env})
        p.url = f"http://127.0.0.1:{port}"
        p.metrics_port = port
        self.api_proc = p

        def up() -> bool:
            if not p.alive():
                return True
            try:
                return "ok" in http_get(f"{p.url}/healthz", timeout=1)
            except OSError:
                return False

        wait_for(up, 30, what="the api")
        if not p.alive():
            raise RuntimeError(f"api exited: {p.tail()}")
        return p

    def stop_workers(self) -> None:
        for w in self.workers:
            w.stop()
        self.workers = []

    def worker_metrics(self) -> list[dict[str, float]]:
        out = []
        for w in self.workers:
            try:
                out.append(scrape(w.metrics_port or 0))
            except OSError:
                out.append({})
        return out

    def worker_sum(self, name: str) -> float:
        return sum(m.get(name, 0.0) for m in self.worker_metrics())

    def wait_group_stable(self, members: int, timeout: float = 60) -> None:
        """Until the ingest consumer group is stable with `members` members, each assigned."""
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.kafka.bootstrap})
        group = self.env["CS_KAFKA_GROUP"]

        def stable() -> bool:
            try:
                desc = admin.describe_consumer_groups([group])[group].result(timeout=5)
            except Exception:  # noqa: BLE001 - not there yet
                return False
            state = str(desc.state).split(".")[-1].upper()
            if state != "STABLE" or len(desc.members) != members:
                return False
            return all(m.assignment and m.assignment.topic_partitions for m in desc.members)

        wait_for(stable, timeout, interval=0.2, what=f"consumer group {group} to be stable")

    # ---- SQL ------------------------------------------------------------------

    def conn(self) -> Any:
        import psycopg

        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.db_url, autocommit=True)
        return self._conn

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        cur = self.conn().execute(query, params)
        return cur.fetchall() if cur.description else []

    def one(self, query: str, *params: Any) -> Any:
        rows = self.sql(query, *params)
        return rows[0][0] if rows else None

    # ---- Kafka ------------------------------------------------------------------

    def envelope(self, request_id: str, amount: int = 500, batch_id: str | None = None) -> bytes:
        return (
            '{"request_id":"%s","agent":"bot1","grant_id":"stripe","method":"POST",'
            '"url":"%s/v1/refunds","json":{"amount":%d,"currency":"eur","charge":"ch_%s"},'
            '"reason":"benchmark refund %s","context":{"ticket":%d}%s}'
            % (request_id, self.provider.url, amount, request_id, request_id, len(request_id),
               ',"batch_id":"%s"' % batch_id if batch_id else "")
        ).encode()

    def signed(self, value: bytes) -> list[tuple[str, bytes]]:
        """The signature header of value under bot1's key (made in setup())."""
        kid, secret = self.signing_key
        return [(SIGNATURE_HEADER, sign_envelope(value, kid, secret).encode())]

    @staticmethod
    def seal(batch_id: str, count: int) -> bytes:
        """The seal message of bot1's batch (README: Kafka topics and messages)."""
        return json.dumps({"type": "seal", "agent": "bot1", "batch_id": batch_id, "count": count}).encode()

    def batch_link(self, batch_id: str, approver: str = "alice") -> str:
        """A one-time sign-in link of the approver leading to the batch's page, as
        `countersign batch links` prints it (each call mints a fresh one), on this api."""
        assert self.api_proc and self.api_proc.url
        for line in self.cli("batch", "links", "bot1", batch_id).splitlines():
            link = json.loads(line)
            if link["approver"] == approver:
                return self.api_proc.url + urllib.parse.urlsplit(link["url"]).path
        raise RuntimeError(f"no batch link of {approver} for {batch_id}")

    def template_row(self, amount: int = 500) -> str:
        """Submits one request through Kafka (the real ingest) and returns its approval id:
        the model that bench rows are cloned from (same request, same digest)."""
        producer = producer_for(self.kafka)
        rid = f"template-{secrets.token_hex(4)}"
        value = self.envelope(rid, amount)
        producer.produce(self.topics["requests"], key=rid.encode(), value=value,
                         headers=self.signed(value))
        producer.flush(30)
        return wait_for(lambda: self.one("SELECT id::text FROM approvals WHERE request_id = %s", rid),
                        60, interval=0.05, what="the template approval to be ingested")

    def clone(self, template: str, prefix: str, lo: int, hi: int, status: str,
              expires: str = "now() + interval '1 hour'") -> int:
        """Inserts approvals lo..hi (inclusive) copied from `template` (same request and
        digest, so the executor's digest check passes), ids time-ordered like UUIDv7."""
        decided = "clock_timestamp()" if status == "approved" else "NULL"
        decided_by = "'policy'" if status == "approved" else "NULL"
        cur = self.conn().execute(
            f"""
            WITH src AS (
                SELECT encode(overlay(uuid_send(gen_random_uuid()) PLACING
                           substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint)
                                     FROM 3) FROM 1 FOR 6), 'hex')::uuid AS id,
                       %s || g AS request_id, t.agent_id, t.grant_id, t.policy_id, t.method,
                       t.url, t.headers, t.body, t.reason, t.context, t.digest, t.policy,
                       t.approvers, t.quorum
                FROM approvals t, generate_series(%s::int, %s::int) g
                WHERE t.id = %s::uuid
            ), req AS (
                INSERT INTO approval_requests (id, request_id, agent_id, grant_id, policy_id,
                    method, url, headers, body, reason, context, digest, policy)
                SELECT id, request_id, agent_id, grant_id, policy_id, method, url, headers,
                       body, reason, context, digest, policy FROM src
            )
            INSERT INTO approval_states (id, grant_id, approvers, quorum, status, expires_at,
                decided_at, decided_by)
            SELECT id, grant_id, approvers, quorum, %s, {expires}, {decided}, {decided_by}
            FROM src
            """,
            (prefix, lo, hi, template, status),
        )
        return cur.rowcount

    # ---- teardown -----------------------------------------------------------------

    def close(self, drop: bool = True) -> None:
        for p in self.procs:
            if p.alive():
                p.stop()
        if self._conn is not None:
            self._conn.close()
        if drop:
            try:
                self.pg.drop_database(self.db_name)
            except Exception as exc:  # noqa: BLE001 - best effort
                say(f"  (could not drop {self.db_name}: {exc})")


def _listening(port: int) -> bool:
    try:
        http_get(f"http://127.0.0.1:{port}/healthz", timeout=1)
        return True
    except OSError:
        return False


def producer_for(kafka: Kafka, **extra: Any) -> Any:
    from confluent_kafka import Producer

    return Producer({"bootstrap.servers": kafka.bootstrap, "enable.idempotence": True, "acks": "all",
                     "linger.ms": 5, "queue.buffering.max.messages": 2_000_000,
                     "queue.buffering.max.kbytes": 2_000_000, **extra})


# ---------------------------------------------------------------------------
# a minimal asyncio HTTP/1.1 client (keep-alive, Content-Length bodies)
# ---------------------------------------------------------------------------


class HttpConn:
    """One keep-alive connection; requests run one at a time on it."""

    def __init__(self, host: str, port: int, source: str | None = None) -> None:
        self.host, self.port, self.source = host, port, source
        self.r: asyncio.StreamReader | None = None
        self.w: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        local = (self.source, 0) if self.source else None
        self.r, self.w = await asyncio.open_connection(self.host, self.port, local_addr=local)

    async def send(self, method: str, path: str, headers: dict[str, str] | None = None,
                   body: bytes | None = None) -> None:
        if self.w is None:
            await self.open()
        assert self.w is not None
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        for k, v in (headers or {}).items():
            lines.append(f"{k}: {v}")
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")
        self.w.write(data)

    async def receive(self) -> tuple[int, bytes]:
        assert self.r is not None
        head = await self.r.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        close = False
        chunked = False
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            k = k.strip().lower()
            if k == b"content-length":
                length = int(v)
            elif k == b"connection" and v.strip().lower() == b"close":
                close = True
            elif k == b"transfer-encoding" and b"chunked" in v.lower():
                chunked = True
        if chunked:
            body = b""
            while True:
                size = int((await self.r.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await self.r.readuntil(b"\r\n")
                    break
                body += await self.r.readexactly(size + 2)
        else:
            body = await self.r.readexactly(length) if length else b""
        if close:
            await self.close()
        return status, body

    async def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                      body: bytes | None = None) -> tuple[int, bytes]:
        await self.send(method, path, headers, body)
        return await self.receive()

    async def close(self) -> None:
        if self.w is not None:
            self.w.close()
            try:
                await self.w.wait_closed()
            except OSError:
                pass
        self.r = self.w = None
