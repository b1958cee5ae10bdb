"""Real local services for Countersign's integration tests.

Everything here runs on 127.0.0.1 without Docker:

* :class:`Postgres` -- a throw-away PostgreSQL 15 cluster (``tools/pg.sh``).
* :class:`Kafka` -- a single-node Apache Kafka 4.1.0 KRaft broker (``tools/kafka.sh``).
* :class:`StubProvider` -- a programmable HTTP/1.1 server that stands in for an
  external provider and records every request it receives.
* :func:`wait_for` and :func:`free_port` helpers.

The module has no pytest dependency, so scripts and benchmarks can use it too.
``psycopg`` and ``confluent_kafka`` are imported only when a method needs them.

Every timeout is multiplied by ``float(os.environ["CS_TEST_TIMEOUT_MULT"])``
(default 1) -- set it on slow machines or under valgrind. The shell scripts
honour the same variable.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS_DIR = REPO_ROOT / "tools"
PG_SH = TOOLS_DIR / "pg.sh"
KAFKA_SH = TOOLS_DIR / "kafka.sh"

T = TypeVar("T")


def timeout_mult() -> float:
    """The CS_TEST_TIMEOUT_MULT multiplier (1.0 if unset, empty or invalid)."""
    raw = os.environ.get("CS_TEST_TIMEOUT_MULT") or "1"
    try:
        value = float(raw)
    except ValueError:
        return 1.0
    return value if value > 0 else 1.0


def scaled(seconds: float) -> float:
    """`seconds` multiplied by CS_TEST_TIMEOUT_MULT."""
    return seconds * timeout_mult()


def wait_for(
    predicate: Callable[[], T],
    timeout: float,
    interval: float = 0.05,
    what: str = "",
) -> T:
    """Poll `predicate` until it returns a truthy value, and return that value.

    `timeout` is scaled by CS_TEST_TIMEOUT_MULT. Raises TimeoutError (naming
    `what`) when the deadline passes; the predicate is always tried at least
    once, and once more right at the deadline.
    """
    limit = scaled(timeout)
    deadline = time.monotonic() + limit
    while True:
        result = predicate()
        if result:
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"timed out after {limit:.1f}s waiting for {what or 'condition'}")
        time.sleep(min(interval, remaining))


def worker_ready(log: str) -> bool:
    """Whether a countersign-worker's log holds its ready line, the documented interface
    (worker/README.md): {"subsystem":"worker","msg":"ready"} once every role works."""
    for line in log.splitlines():
        if '"ready"' in line:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("subsystem") == "worker" and rec.get("msg") == "ready":
                return True
    return False


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening_socket() -> socket.socket:
    """A TCP socket bound to 127.0.0.1:0 and listening: hand its fd to a server process
    (the api's CS_HTTP_FD) and the port is known, and held, before the server starts."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def npm_ci(folder: Path, package: str) -> None:
    """`npm ci` in `folder` (from its lockfile) unless ``node_modules/<package>`` is there.
    Under a file lock in `folder`: parallel test workers install once, never over each other."""
    import fcntl

    with open(folder / ".npm-ci.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        if not (folder / "node_modules" / package).is_dir():
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=folder, check=True,
                           capture_output=True, timeout=scaled(300))


class ServiceError(RuntimeError):
    """A tools/*.sh command failed; the message carries its stderr."""


def _run_tool(args: Sequence[object], timeout: float) -> str:
    """Run a tools/ script, return its stdout, raise ServiceError on failure."""
    cmd = ["bash", *[str(a) for a in args]]
    try:
        proc = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=scaled(timeout),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ServiceError(f"{' '.join(cmd)} did not finish within {scaled(timeout):.0f}s") from exc
    if proc.returncode != 0:
        raise ServiceError(
            f"{' '.join(cmd)} failed with exit code {proc.returncode}:\n{proc.stderr.strip()}"
        )
    return proc.stdout


# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------


class Postgres:
    """A PostgreSQL 15 server in `dir`, listening on 127.0.0.1:`port`.

    The superuser is ``cs`` (trust auth); database ``countersign`` is created on
    start. As root, `dir`'s parents must be traversable by the ``postgres`` user:
    use ``tempfile.mkdtemp()`` rather than pytest's ``tmp_path``.
    """

    def __init__(self, dir: str | os.PathLike[str], port: int) -> None:
        self.dir = Path(dir)
        self.port = int(port)

    def start(self) -> None:
        """initdb (first time only), start, wait until ready, create ``countersign``."""
        _run_tool([PG_SH, "start", self.dir, self.port], timeout=240)

    def stop(self) -> None:
        """Fast shutdown; no-op when not running."""
        _run_tool([PG_SH, "stop", self.dir], timeout=90)

    def restart(self) -> None:
        """Immediate-mode stop (crash-like, WAL replay follows) and start again."""
        _run_tool([PG_SH, "restart", self.dir, self.port], timeout=180)

    def kill(self) -> None:
        """SIGKILL the postmaster and wait until all its processes are gone."""
        _run_tool([PG_SH, "kill", self.dir], timeout=90)

    def is_running(self) -> bool:
        """True if the postmaster for `dir` is alive."""
        try:
            _run_tool([PG_SH, "status", self.dir], timeout=30)
        except ServiceError:
            return False
        return True

    def url(self, dbname: str = "countersign") -> str:
        """libpq URL of `dbname`, e.g. ``postgresql://cs@127.0.0.1:5432/countersign``."""
        return f"postgresql://cs@127.0.0.1:{self.port}/{dbname}"

    def role_url(self, role: str, dbname: str = "countersign") -> str:
        """libpq URL of `dbname` as `role` (trust auth): ``countersign_api``,
        ``countersign_worker``, ``countersign_scheduler`` or ``countersign_owner``
        once ``countersign db roles --apply`` made them (sql/queries/roles.sql)."""
        return f"postgresql://{role}@127.0.0.1:{self.port}/{dbname}"

    def _admin_execute(self, statement: Any) -> None:
        import psycopg  # local import: only needed by callers that touch Postgres

        with psycopg.connect(self.url("postgres"), autocommit=True, connect_timeout=10) as conn:
            conn.execute(statement)

    def create_database(self, name: str, template: str | None = None) -> str:
        """CREATE DATABASE `name` (optionally from `template`); returns its URL."""
        from psycopg import sql

        stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            stmt = sql.SQL("{} TEMPLATE {}").format(stmt, sql.Identifier(template))
        self._admin_execute(stmt)
        return self.url(name)

    def drop_event_slots(self, name: str) -> None:
        """Drop the replication slots of database `name`, ending the relays reading them
        (a terminated walsender lets its slot go a moment later: wait for that)."""
        import psycopg
        from psycopg import sql

        db = sql.Literal(name)
        with psycopg.connect(self.url("postgres"), autocommit=True, connect_timeout=10) as conn:
            def left() -> bool:
                conn.execute(sql.SQL(
                    "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
                    "WHERE database = {} AND active_pid IS NOT NULL").format(db))
                try:
                    conn.execute(sql.SQL(
                        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                        "WHERE database = {} AND NOT active").format(db))
                except psycopg.errors.ObjectInUse:
                    return False  # taken again between the check and the drop: next round
                row = conn.execute(sql.SQL("SELECT count(*) FROM pg_replication_slots "
                                           "WHERE database = {}").format(db)).fetchone()
                return bool(row and row[0] == 0)

            wait_for(left, 30, interval=0.1, what=f"the replication slots of {name} to go")

    def drop_database(self, name: str) -> None:
        """DROP DATABASE IF EXISTS `name`, disconnecting its sessions first."""
        from psycopg import sql

        self.drop_event_slots(name)
        self._admin_execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )

    def __enter__(self) -> Postgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"Postgres(dir={str(self.dir)!r}, port={self.port})"


# ---------------------------------------------------------------------------
# Kafka
# ---------------------------------------------------------------------------


class Kafka:
    """A single-node Kafka 4.1.0 KRaft broker in `dir` on 127.0.0.1:`port`.

    Topics are not auto-created: call :meth:`create_topics` first.
    """

    def __init__(self, dir: str | os.PathLike[str], port: int, controller_port: int) -> None:
        self.dir = Path(dir)
        self.port = int(port)
        self.controller_port = int(controller_port)
        self._producer: Any = None

    @property
    def bootstrap(self) -> str:
        """``bootstrap.servers`` value, ``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start (formatting storage the first time) and wait until it answers metadata."""
        # kafka.sh's own deadline is 60 s (scaled); a first run may also fetch jars.
        _run_tool([KAFKA_SH, "start", self.dir, self.port, self.controller_port], timeout=400)

    def stop(self) -> None:
        """Clean shutdown (SIGTERM; SIGKILL after 30 s); no-op when not running."""
        self._close_producer(flush=True)
        _run_tool([KAFKA_SH, "stop", self.dir], timeout=90)

    def kill(self) -> None:
        """SIGKILL the broker (crash simulation) and wait for it to exit."""
        self._close_producer(flush=False)
        _run_tool([KAFKA_SH, "kill", self.dir], timeout=60)

    def restart(self) -> None:
        """Start again on the same dir and ports (stopping first if still running)."""
        if self.is_running():
            self.stop()
        self.start()

    def is_running(self) -> bool:
        """True if the broker process for `dir` is alive."""
        try:
            _run_tool([KAFKA_SH, "status", self.dir], timeout=30)
        except ServiceError:
            return False
        return True

    def _config(self, **extra: Any) -> dict[str, Any]:
        return {"bootstrap.servers": self.bootstrap, **extra}

    def create_topics(self, names: Iterable[str], partitions: int = 4, timeout: float = 30,
                      config: dict[str, str] | None = None) -> None:
        """Create `names` (replication factor 1, topic settings `config`); existing
        topics are fine (and keep their settings).

        Returns once every partition of every topic has a leader, so producers
        and consumers can use the topics right away.
        """
        from confluent_kafka import KafkaError, KafkaException
        from confluent_kafka.admin import AdminClient, NewTopic

        names = list(names)
        if not names:
            return
        limit = scaled(timeout)
        admin = AdminClient(self._config())
        futures = admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})
             for name in names],
            operation_timeout=limit,
            request_timeout=limit,
        )
        for name, future in futures.items():
            try:
                future.result(timeout=limit)
            except KafkaException as exc:
                err = exc.args[0] if exc.args else None
                if not (isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS):
                    raise RuntimeError(f"creating topic {name!r} failed: {exc}") from exc

        def all_led() -> bool:
            meta = admin.list_topics(timeout=5)
            for name in names:
                topic = meta.topics.get(name)
                if topic is None or topic.error is not None or not topic.partitions:
                    return False
                if any(p.leader < 0 for p in topic.partitions.values()):
                    return False
            return True

        wait_for(all_led, timeout, interval=0.05, what=f"leaders for topics {names}")

    def _get_producer(self) -> Any:
        if self._producer is None:
            from confluent_kafka import Producer

            self._producer = Producer(self._config(**{"enable.idempotence": True, "linger.ms": 1}))
        return self._producer

    def _close_producer(self, flush: bool) -> None:
        producer, self._producer = self._producer, None
        if producer is not None and flush:
            producer.flush(scaled(10))

    def produce(
        self,
        topic: str,
        key: bytes | str | None,
        value: bytes | str | None,
        headers: Sequence[tuple[str, bytes | str]] | None = None,
        timeout: float = 30,
    ) -> None:
        """Produce one message and wait until the broker acknowledged it."""
        self.produce_many(topic, [(key, value, headers)], timeout=timeout)

    def produce_many(
        self,
        topic: str,
        messages: Iterable[tuple[Any, Any] | tuple[Any, Any, Any]],
        timeout: float = 30,
    ) -> None:
        """Produce (key, value[, headers]) tuples, then flush once; raise on any failure."""
        producer = self._get_producer()
        errors: list[str] = []

        def on_delivery(err: Any, _msg: Any) -> None:
            if err is not None:
                errors.append(str(err))

        count = 0
        for message in messages:
            key, value, *rest = message
            headers = rest[0] if rest else None
            while True:
                try:
                    producer.produce(topic, key=key, value=value, headers=headers, on_delivery=on_delivery)
                    break
                except BufferError:  # local queue full: let deliveries drain
                    producer.poll(0.1)
            count += 1
        remaining = producer.flush(scaled(timeout))
        if remaining:
            raise TimeoutError(
                f"{remaining} of {count} messages to {topic!r} not delivered within {scaled(timeout):.0f}s"
            )
        if errors:
            raise RuntimeError(f"{len(errors)} of {count} messages to {topic!r} failed: {errors[0]}")

    def consume_all(
        self,
        topic: str,
        expect: int | None = None,
        timeout: float = 30,
    ) -> list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]]:
        """Read `topic` from the beginning with a fresh group id.

        Stops once `expect` messages were read, or -- when `expect` is None -- once
        every partition reached its end. Returns what was read when `timeout`
        (scaled) passes first; the caller asserts on the count. Each item is
        (key, value, headers), headers a list of (name, value) pairs.
        Partitions are assigned directly (no group rebalance), and nothing is
        committed.
        """
        from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

        deadline = time.monotonic() + scaled(timeout)
        consumer = Consumer(
            self._config(
                **{
                    "group.id": f"cs-test-{uuid.uuid4()}",
                    "enable.auto.commit": False,
                    "auto.offset.reset": "earliest",
                    "enable.partition.eof": True,
                    # Report end-of-partition quickly instead of long-polling 500 ms.
                    "fetch.wait.max.ms": 50,
                }
            )
        )
        out: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]] = []
        try:
            partitions: list[int] = []
            while not partitions:
                meta = consumer.list_topics(topic, timeout=max(0.1, min(5.0, deadline - time.monotonic())))
                info = meta.topics.get(topic)
                if info is not None and info.error is None and info.partitions:
                    partitions = sorted(info.partitions)
                elif time.monotonic() >= deadline:
                    return out
                else:
                    time.sleep(0.05)
            consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
            at_eof: set[int] = set()
            while time.monotonic() < deadline:
                if expect is not None and len(out) >= expect:
                    break
                if expect is None and len(at_eof) == len(partitions):
                    break
                msg = consumer.poll(max(0.0, min(0.2, deadline - time.monotonic())))
                if msg is None:
                    continue
                if msg.error() is not None:
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        at_eof.add(msg.partition())
                        continue
                    if msg.error().fatal():
                        raise RuntimeError(f"consuming {topic!r} failed: {msg.error()}")
                    continue  # transient (e.g. broker restarting): librdkafka retries
                at_eof.discard(msg.partition())
                out.append((msg.key(), msg.value(), list(msg.headers() or [])))
        finally:
            consumer.close()
        return out

    def __enter__(self) -> Kafka:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"Kafka(dir={str(self.dir)!r}, port={self.port}, controller_port={self.controller_port})"


# ---------------------------------------------------------------------------
# Stub HTTP provider
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the stub received it."""

    method: str
    path: str  # path with query string, as sent on the request line
    headers: dict[str, str]  # lower-cased names; repeated headers joined with ", "
    body: bytes
    time: float  # time.time() when the request (with its body) had arrived
    monotonic: float  # time.monotonic() at the same moment
    status: int = 0  # the status the stub decided to answer (0: closed without one)

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass
class _Rule:
    path_prefix: str
    status: int
    body: bytes
    headers: dict[str, str]
    delay: float
    retry_after: int | float | str | None
    close_without_response: bool
    times: int | None  # None = until reprogrammed or reset
    seq: int = field(default=0)
    done: threading.Event | None = None  # idempotent mode: set when the first request finished


class _StubServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True

    stub: StubProvider


class _StubHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like real providers
    # An answer is two writes (headers, then body). With Nagle's algorithm on,
    # the body waits for the client's ACK of the headers, which the client
    # delays (40 ms on Linux): every answer on a kept-alive connection took
    # 44 ms, and under load 90-200 ms, however fast the stub decided. Real
    # providers' front ends set TCP_NODELAY; so does the stub.
    disable_nagle_algorithm = True
    server: _StubServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # keep test output clean; everything is in StubProvider.requests()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size_line = self.rfile.readline(65537)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)  # CRLF after the chunk
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        body = self._read_body()
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        stub = self.server.stub
        request = RecordedRequest(method=self.command, path=self.path, headers=headers, body=body,
                                  time=time.time(), monotonic=time.monotonic())
        with stub._active_lock:
            stub._active += 1
            stub.max_concurrent = max(stub.max_concurrent, stub._active)
        self._counted = True
        try:
            self._answer(stub, request)
        finally:
            self._done_counting(stub)

    def _done_counting(self, stub: StubProvider) -> None:
        # A request stops counting as concurrent when its answer starts: the
        # client cannot start another call on the strength of this one's answer
        # before that, whenever this thread gets to run again.
        if self._counted:
            self._counted = False
            with stub._active_lock:
                stub._active -= 1

    def _answer(self, stub: StubProvider, request: RecordedRequest) -> None:
        rule = stub._record_and_match(request)
        if rule is None:
            status = 200
            payload = json.dumps({"ok": True, "path": self.path}).encode()
            extra: dict[str, str] = {"Content-Type": "application/json"}
            delay, close, retry_after = 0.0, False, None
        else:
            status, payload, extra = rule.status, rule.body, dict(rule.headers)
            delay, close, retry_after = rule.delay, rule.close_without_response, rule.retry_after
        if rule is not None and rule.done is not None:
            # An idempotent provider: wait for the first request of this key to finish.
            if stub._closing.wait(delay):
                close = True
            else:
                rule.done.set()
            delay = 0.0
        if delay > 0 and stub._closing.wait(delay):
            close = True  # the stub is shutting down: do not answer late
        self._done_counting(stub)
        if close:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(status)
        if retry_after is not None:
            self.send_header("Retry-After", str(retry_after))
        if not any(k.lower() == "content-type" for k in extra) and payload:
            extra["Content-Type"] = "application/json"
        for name, value in extra.items():
            if name.lower() != "content-length":
                self.send_header(name, str(value))
        self.send_header("Content-Length", str(len(payload)))
        try:
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
        except OSError:
            self.close_connection = True  # the client gave up (its timeout): nothing to do

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


class StubProvider:
    """A programmable HTTP/1.1 server on 127.0.0.1 standing in for a provider.

    Every request is recorded (see :class:`RecordedRequest`) before it is
    answered. By default the answer is ``200 {"ok":true,"path":PATH}``;
    :meth:`program` changes that per path prefix. Each request runs in its own
    thread, so a delayed answer never holds up other requests.

    Usage::

        with StubProvider() as stub:
            stub.program("/v1/send", status=429, retry_after=2, times=1)
            ...  # point the code under test at stub.url
            stub.wait_for(2, "/v1/send", timeout=10)
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._requests: list[RecordedRequest] = []
        self._rules: list[_Rule] = []
        self._seq = 0
        self._closing = threading.Event()
        self._init_modes()
        self._server = _StubServer(("127.0.0.1", 0), _StubHandler)
        self._server.stub = self
        self.port: int = int(self._server.server_address[1])
        self._thread = self._serve()

    def _init_modes(self) -> None:
        """The state of the concurrency count and of the rate-limit and idempotency modes
        (a subclass that builds its own server calls this too)."""
        self._active_lock = threading.Lock()
        self._active = 0
        self.max_concurrent = 0  # most requests being handled at once (arrival to answer start)
        self._buckets: dict[str, list[float]] = {}  # prefix -> [rate, burst, tokens, at, retry_after]
        self._keys: dict[str, tuple[threading.Event, float]] = {}  # idempotency: key -> (done, delay)
        self._idem: dict[str, tuple[int, float]] = {}  # prefix -> (slow_every, slow_delay)

    def _serve(self) -> threading.Thread:
        thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"stub-provider-{self.port}",
            daemon=True,
        )
        thread.start()
        return thread

    def down(self) -> None:
        """Stop listening (connections are refused) until :meth:`up`; same port after."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=scaled(5))

    def up(self) -> None:
        """Listen again on the same port after :meth:`down`."""
        self._server = _StubServer(("127.0.0.1", self.port), _StubHandler)
        self._server.stub = self
        self._thread = self._serve()

    def rate_limit(self, path_prefix: str, rate: float, burst: int, retry_after: int = 1) -> None:
        """Requests under `path_prefix` draw from a token bucket (`rate` per second,
        `burst` deep, full at first); without a token the answer is 429 with
        Retry-After: `retry_after`, as a rate-limited provider answers."""
        with self._lock:
            self._buckets[path_prefix] = [float(rate), float(burst), float(burst),
                                          time.monotonic(), float(retry_after)]

    def idempotent(self, path_prefix: str, slow_every: int, slow_delay: float) -> None:
        """Requests under `path_prefix` behave as Stripe's idempotency keys do: the
        first request of a key is processed (every `slow_every`-th key takes
        `slow_delay` s), a request of a key still in progress is answered 409
        idempotency_key_in_use at once, and one of a finished key replays 200."""
        with self._lock:
            self._idem[path_prefix] = (slow_every, slow_delay)

    @property
    def url(self) -> str:
        """Base URL, ``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    def program(
        self,
        path_prefix: str,
        status: int = 200,
        body: bytes | str = b"",
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
        retry_after: int | float | str | None = None,
        close_without_response: bool = False,
        times: int | None = None,
    ) -> None:
        """Set how requests whose path starts with `path_prefix` are answered.

        `delay` seconds pass before the answer (or before the connection is
        closed when `close_without_response` is set). `retry_after` adds a
        Retry-After header. With `times` the rule applies to the next `times`
        matching requests only; without, until reprogrammed or :meth:`reset`.

        Matching: the longest matching prefix wins; for the same prefix,
        counted rules are used up first (oldest first), then the open-ended
        rule. Programming an open-ended rule replaces the previous open-ended
        rule of that prefix. Unmatched requests get the default echo answer.
        """
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 (or None)")
        if isinstance(body, str):
            body = body.encode()
        with self._lock:
            self._seq += 1
            rule = _Rule(
                path_prefix=path_prefix,
                status=int(status),
                body=bytes(body),
                headers=dict(headers or {}),
                delay=float(delay),
                retry_after=retry_after,
                close_without_response=bool(close_without_response),
                times=times,
                seq=self._seq,
            )
            if times is None:
                self._rules = [r for r in self._rules if not (r.path_prefix == path_prefix and r.times is None)]
            self._rules.append(rule)

    def _special(self, request: RecordedRequest) -> _Rule | None:
        """The rate-limit and idempotency modes (with the lock held)."""
        for prefix, b in self._buckets.items():
            if request.path.startswith(prefix):
                now = time.monotonic()
                b[2] = min(b[1], b[2] + (now - b[3]) * b[0])
                b[3] = now
                if b[2] < 1:
                    return _Rule(prefix, 429, b'{"error":{"type":"rate_limit_error"}}', {}, 0.0,
                                 int(b[4]), False, None)
                b[2] -= 1
        for prefix, (every, slow) in self._idem.items():
            if not request.path.startswith(prefix):
                continue
            key = request.headers.get("idempotency-key", "")
            if key in self._keys:
                done, _ = self._keys[key]
                if done.is_set():
                    return _Rule(prefix, 200, b'{"replayed":true}', {"Idempotent-Replayed": "true"},
                                 0.0, None, False, None)
                return _Rule(prefix, 409, b'{"error":{"code":"idempotency_key_in_use","type":'
                             b'"idempotency_error"}}', {}, 0.0, None, False, None)
            delay = slow if len(self._keys) % every == 0 else 0.0
            self._keys[key] = (threading.Event(), delay)
            return _Rule(prefix, 200, b'{"processed":true}', {}, delay, None, False, None,
                         done=self._keys[key][0])
        return None

    def processed_keys(self) -> int:
        """Idempotency keys the stub processed (each once, whatever the retries)."""
        with self._lock:
            return len(self._keys)

    def _record_and_match(self, request: RecordedRequest) -> _Rule | None:
        with self._lock:
            special = self._special(request)
            if special is not None:
                self._requests.append(replace(request, status=special.status))
                self._changed.notify_all()
                return special
            candidates = [r for r in self._rules if request.path.startswith(r.path_prefix)]
            rule: _Rule | None = None
            if candidates:
                longest = max(len(r.path_prefix) for r in candidates)
                same = [r for r in candidates if len(r.path_prefix) == longest]
                counted = sorted((r for r in same if r.times is not None), key=lambda r: r.seq)
                rule = counted[0] if counted else next((r for r in same if r.times is None), None)
                if rule is not None and rule.times is not None:
                    rule.times -= 1
                    if rule.times <= 0:
                        self._rules.remove(rule)
            answer = 0 if rule is not None and rule.close_without_response else \
                (rule.status if rule is not None else 200)
            self._requests.append(replace(request, status=answer))
            self._changed.notify_all()
            return rule

    def requests(self, path_prefix: str | None = None) -> list[RecordedRequest]:
        """Recorded requests in arrival order, optionally only those under `path_prefix`."""
        with self._lock:
            return self._select(path_prefix)

    def _select(self, path_prefix: str | None) -> list[RecordedRequest]:
        if path_prefix is None:
            return list(self._requests)
        return [r for r in self._requests if r.path.startswith(path_prefix)]

    def count(self, path_prefix: str | None = None) -> int:
        """Number of recorded requests (under `path_prefix` if given)."""
        return len(self.requests(path_prefix))

    def wait_for(self, count: int, path_prefix: str | None = None, timeout: float = 10) -> list[RecordedRequest]:
        """Block until at least `count` requests (under `path_prefix`) arrived; return them.

        `timeout` is scaled by CS_TEST_TIMEOUT_MULT; raises TimeoutError.
        """
        limit = scaled(timeout)
        deadline = time.monotonic() + limit
        with self._changed:
            while True:
                selected = self._select(path_prefix)
                if len(selected) >= count:
                    return selected
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    where = f" under {path_prefix!r}" if path_prefix is not None else ""
                    raise TimeoutError(
                        f"timed out after {limit:.1f}s waiting for {count} requests{where}; got {len(selected)}"
                    )
                self._changed.wait(remaining)

    def reset(self) -> None:
        """Forget recorded requests and programmed rules."""
        with self._lock:
            self._requests.clear()
            self._rules.clear()

    def close(self) -> None:
        """Stop serving; delayed requests in flight are dropped without an answer."""
        if self._closing.is_set():
            return
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=scaled(5))

    def __enter__(self) -> StubProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"StubProvider(url={self.url!r})"


class SlowAcceptProvider:
    """A provider with a small accept queue that accepts slowly, as Python's
    ThreadingHTTPServer does under load: listen(`backlog`), then one accept()
    every `accept_every` seconds. Each connection is read to the end of its
    request (or EOF) and answered 200 with Connection: close. Its own log,
    :attr:`arrivals`, says which requests' bytes arrived (idempotency key,
    bytes, time), so a test can tell "never sent" from "sent, maybe late".
    """

    def __init__(self, backlog: int = 1, accept_every: float = 0.05) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(backlog)
        self._sock.settimeout(0.1)
        self.port: int = int(self._sock.getsockname()[1])
        self.accept_every = accept_every
        self.arrivals: list[dict[str, Any]] = []  # {"key", "bytes", "time"}
        self.empty = 0  # connections accepted that carried no request byte
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name=f"slow-accept-{self.port}")
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _loop(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()
            self._closing.wait(self.accept_every)

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        data = b""
        with contextlib.suppress(OSError), conn:
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            head, _, rest = data.partition(b"\r\n\r\n")
            fields = dict(line.split(b":", 1) for line in head.split(b"\r\n")[1:] if b":" in line)
            fields = {k.strip().lower(): v.strip() for k, v in fields.items()}
            need = int(fields.get(b"content-length", b"0"))
            while len(rest) < need:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                rest += chunk
            with self._lock:
                if data:
                    self.arrivals.append({"key": fields.get(b"idempotency-key", b"").decode(),
                                          "bytes": len(data), "time": time.time()})
                else:
                    self.empty += 1
            if data:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: 11\r\nConnection: close\r\n\r\n{\"ok\":true}")

    def close(self) -> None:
        self._closing.set()
        self._thread.join(timeout=scaled(5))
        self._sock.close()


# ---------------------------------------------------------------------------
# SMTP sink
# ---------------------------------------------------------------------------


@dataclass
class Mail:
    """One message the SMTP sink accepted."""

    sender: str
    recipients: list[str]
    data: bytes

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


class SmtpSink:
    """A minimal SMTP server on 127.0.0.1 that keeps every message it accepts.

    Speaks enough of RFC 5321 for libcurl (EHLO/HELO, MAIL, RCPT, DATA with
    dot-unstuffing, RSET, NOOP, QUIT). `fail_next(n)` answers the next n
    DATA commands with a temporary failure (451).
    """

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self.mails: list[Mail] = []
        self._fail = 0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = int(self._sock.getsockname()[1])
        self._closing = False
        threading.Thread(target=self._accept, daemon=True, name=f"smtp-{self.port}").start()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def fail_next(self, n: int) -> None:
        with self._lock:
            self._fail = n

    def wait_for(self, count: int, timeout: float = 10) -> list[Mail]:
        limit = time.monotonic() + scaled(timeout)
        with self._lock:
            while len(self.mails) < count:
                left = limit - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self.mails)} of {count} mails arrived")
                self._lock.wait(left)
            return list(self.mails)

    def close(self) -> None:
        self._closing = True
        self._sock.close()

    def _accept(self) -> None:
        while not self._closing:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        f = conn.makefile("rwb")

        def say(line: str) -> None:
            f.write(line.encode() + b"\r\n")
            f.flush()

        sender, rcpts = "", []
        try:
            say("220 sink ESMTP")
            while True:
                line = f.readline()
                if not line:
                    return
                cmd = line.decode(errors="replace").strip()
                up = cmd.upper()
                if up.startswith(("EHLO", "HELO")):
                    say("250 sink")
                elif up.startswith("MAIL FROM:"):
                    sender, rcpts = cmd[10:].strip(), []
                    say("250 ok")
                elif up.startswith("RCPT TO:"):
                    rcpts.append(cmd[8:].strip())
                    say("250 ok")
                elif up == "DATA":
                    say("354 go ahead")
                    data = b""
                    while True:
                        chunk = f.readline()
                        if chunk in (b".\r\n", b".\n", b""):
                            break
                        data += chunk[1:] if chunk.startswith(b"..") else chunk
                    with self._lock:
                        if self._fail > 0:
                            self._fail -= 1
                            say("451 try again later")
                            continue
                        self.mails.append(Mail(sender, rcpts, data))
                        self._lock.notify_all()
                    say("250 queued")
                elif up in ("RSET", "NOOP"):
                    say("250 ok")
                elif up == "QUIT":
                    say("221 bye")
                    return
                else:
                    say("502 not implemented")
        except OSError:
            return
        finally:
            conn.close()
