"""Tests of the local test services in services.py (real Postgres, Kafka, HTTP stub).

Run: python3 -m pytest -q tests/integration/test_services.py
Needs: PostgreSQL 15 binaries, java 17, kcat, and the Kafka jars (tools/kafka.sh
fetch; a first start fetches them automatically). Kafka starts once per module.
"""

from __future__ import annotations

import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from services import Kafka, Postgres, StubProvider, free_port, scaled, wait_for  # noqa: E402

MESSAGES = 100


# ---------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg() -> Iterator[Postgres]:
    # Not tmp_path: as root the postgres user must be able to reach the directory,
    # and /tmp/pytest-of-root is mode 0700.
    workdir = tempfile.mkdtemp(prefix="cs-it-pg-")
    server = Postgres(workdir, free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def kafka() -> Iterator[Kafka]:
    workdir = tempfile.mkdtemp(prefix="cs-it-kafka-")
    broker = Kafka(workdir, free_port(), free_port())
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def events_topic(kafka: Kafka) -> str:
    """A topic holding MESSAGES keyed messages with a header each."""
    topic = "cs.test.events"
    kafka.create_topics([topic], partitions=4)
    kafka.produce_many(
        topic,
        [(f"key-{i}", f"value-{i}".encode(), [("seq", str(i).encode())]) for i in range(MESSAGES)],
    )
    return topic


@pytest.fixture(scope="module")
def stub_server() -> Iterator[StubProvider]:
    with StubProvider() as server:
        yield server


@pytest.fixture()
def stub(stub_server: StubProvider) -> StubProvider:
    stub_server.reset()
    return stub_server


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def test_free_port_is_bindable() -> None:
    port = free_port()
    assert 1024 <= port < 65536
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_wait_for_returns_value_and_times_out_with_description() -> None:
    calls: list[int] = []

    def third_call_succeeds() -> str | None:
        calls.append(1)
        return "done" if len(calls) >= 3 else None

    assert wait_for(third_call_succeeds, timeout=5, interval=0.01) == "done"
    assert len(calls) == 3
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="the moon"):
        wait_for(lambda: False, timeout=0.2, interval=0.01, what="the moon")
    assert time.monotonic() - started < scaled(0.2) + 1.0


# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------


def test_postgres_select_1(pg: Postgres) -> None:
    assert pg.url() == f"postgresql://cs@127.0.0.1:{pg.port}/countersign"
    with psycopg.connect(pg.url()) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
        assert conn.execute("show max_connections").fetchone() == ("400",)
        assert conn.execute("select current_user").fetchone() == ("cs",)


def test_postgres_create_and_drop_database(pg: Postgres) -> None:
    url = pg.create_database("cs_it_scratch")
    with psycopg.connect(url) as conn:
        conn.execute("create table t (id int primary key)")
        conn.execute("insert into t values (42)")
    # A database made from a template carries the template's tables.
    pg.create_database("cs_it_copy", template="cs_it_scratch")
    with psycopg.connect(pg.url("cs_it_copy")) as conn:
        assert conn.execute("select id from t").fetchall() == [(42,)]
    # drop works even with a session still connected (WITH (FORCE)).
    lingering = psycopg.connect(pg.url("cs_it_copy"))
    try:
        pg.drop_database("cs_it_copy")
    finally:
        lingering.close()
    pg.drop_database("cs_it_scratch")
    pg.drop_database("cs_it_scratch")  # IF EXISTS: no error
    with psycopg.connect(pg.url()) as conn:
        names = {r[0] for r in conn.execute("select datname from pg_database")}
    assert not names & {"cs_it_scratch", "cs_it_copy"}
    assert "countersign" in names


def test_postgres_survives_kill_and_restart(pg: Postgres) -> None:
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        conn.execute("create table if not exists durable (v text)")
        conn.execute("insert into durable values ('committed')")
    pg.kill()
    assert not pg.is_running()
    pg.start()
    pg.restart()  # immediate-mode stop + start: crash recovery again
    with psycopg.connect(pg.url()) as conn:
        assert conn.execute("select v from durable").fetchall() == [("committed",)]


# ---------------------------------------------------------------------------
# Kafka
# ---------------------------------------------------------------------------


def _assert_all_messages(records: list) -> None:
    assert len(records) == MESSAGES
    by_key = {key: (value, headers) for key, value, headers in records}
    assert len(by_key) == MESSAGES
    for i in range(MESSAGES):
        value, headers = by_key[f"key-{i}".encode()]
        assert value == f"value-{i}".encode()
        assert headers == [("seq", str(i).encode())]


def test_kafka_produce_and_consume(kafka: Kafka, events_topic: str) -> None:
    assert kafka.bootstrap == f"127.0.0.1:{kafka.port}"
    _assert_all_messages(kafka.consume_all(events_topic, expect=MESSAGES, timeout=30))
    # expect=None reads to the end of every partition.
    _assert_all_messages(kafka.consume_all(events_topic, timeout=30))


def test_kafka_create_topics_is_idempotent_and_empty_topic_reads_empty(kafka: Kafka) -> None:
    kafka.create_topics(["cs.test.empty"], partitions=2)
    kafka.create_topics(["cs.test.empty"], partitions=2)  # TOPIC_ALREADY_EXISTS tolerated
    started = time.monotonic()
    assert kafka.consume_all("cs.test.empty", timeout=20) == []
    assert time.monotonic() - started < scaled(10)


def test_kafka_single_produce(kafka: Kafka) -> None:
    kafka.create_topics(["cs.test.single"])
    kafka.produce("cs.test.single", b"k", b"v")
    assert kafka.consume_all("cs.test.single", expect=1, timeout=20) == [(b"k", b"v", [])]


def test_kafka_messages_survive_kill_and_restart(kafka: Kafka, events_topic: str) -> None:
    kafka.kill()
    assert not kafka.is_running()
    kafka.restart()
    assert kafka.is_running()
    _assert_all_messages(kafka.consume_all(events_topic, expect=MESSAGES, timeout=30))
    # The restarted broker accepts writes too.
    kafka.produce(events_topic, b"after-restart", b"yes")
    records = kafka.consume_all(events_topic, expect=MESSAGES + 1, timeout=30)
    assert (b"after-restart", b"yes", []) in records


# ---------------------------------------------------------------------------
# StubProvider
# ---------------------------------------------------------------------------


def test_stub_records_method_path_headers_body(stub: StubProvider) -> None:
    with httpx.Client(base_url=stub.url, timeout=10) as client:
        resp = client.post(
            "/v1/notify?attempt=1",
            content=b'{"hello":"world"}',
            headers={"X-Countersign-Signature": "abc", "Content-Type": "application/json"},
        )
        assert resp.status_code == 200
        assert resp.json() == {"ok": True, "path": "/v1/notify?attempt=1"}
        client.get("/health")
    reqs = stub.requests()
    assert [r.method for r in reqs] == ["POST", "GET"]
    first = reqs[0]
    assert first.path == "/v1/notify?attempt=1"
    assert first.headers["x-countersign-signature"] == "abc"
    assert first.headers["content-length"] == "17"
    assert first.body == b'{"hello":"world"}'
    assert first.json() == {"hello": "world"}
    assert first.time <= reqs[1].time
    assert stub.count("/v1/") == 1
    assert stub.count() == 2
    assert stub.requests("/health")[0].body == b""


def test_stub_reads_chunked_bodies(stub: StubProvider) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"part1-"
        yield b"part2"

    with httpx.Client(base_url=stub.url, timeout=10) as client:
        assert client.put("/chunked", content=chunks()).status_code == 200
    (req,) = stub.requests("/chunked")
    assert req.headers.get("transfer-encoding") == "chunked"
    assert req.body == b"part1-part2"


def test_stub_delays_concurrently(stub: StubProvider) -> None:
    stub.program("/slow", delay=1.0)
    results: list[int] = []
    errors: list[BaseException] = []

    def call(i: int) -> None:
        try:
            with httpx.Client(timeout=10) as client:
                results.append(client.post(f"{stub.url}/slow/{i}", content=b"x").status_code)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    started = time.monotonic()
    threads = [threading.Thread(target=call, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    # The stub records on arrival, before the delay.
    assert len(stub.wait_for(2, "/slow", timeout=5)) == 2
    for t in threads:
        t.join(timeout=scaled(10))
    elapsed = time.monotonic() - started
    assert not errors, errors
    assert results == [200, 200]
    assert 1.0 <= elapsed < 1.8, f"two 1 s delayed requests took {elapsed:.2f}s"


def test_stub_programmed_status_retry_after_and_times(stub: StubProvider) -> None:
    stub.program("/v1/send", status=429, body=b'{"error":"slow down"}', retry_after=7, times=2)
    stub.program("/v1/send/special", status=503, headers={"X-Why": "maintenance"})
    with httpx.Client(base_url=stub.url, timeout=10) as client:
        for _ in range(2):
            resp = client.post("/v1/send", content=b"{}")
            assert resp.status_code == 429
            assert resp.headers["retry-after"] == "7"
            assert resp.json() == {"error": "slow down"}
        resp = client.post("/v1/send", content=b"{}")  # times used up: default echo
        assert resp.status_code == 200
        assert resp.json() == {"ok": True, "path": "/v1/send"}
        assert "retry-after" not in resp.headers
        resp = client.get("/v1/send/special/1")  # longest prefix wins, no limit
        assert resp.status_code == 503
        assert resp.headers["x-why"] == "maintenance"
        assert client.get("/v1/send/special/2").status_code == 503
    assert stub.count("/v1/send") == 5


def test_stub_close_without_response(stub: StubProvider) -> None:
    stub.program("/drop", close_without_response=True, times=1)
    with httpx.Client(base_url=stub.url, timeout=10) as client:
        with pytest.raises(httpx.TransportError):
            client.post("/drop", content=b"payload")
        assert client.post("/drop", content=b"again").status_code == 200
    assert [r.body for r in stub.requests("/drop")] == [b"payload", b"again"]


def test_stub_wait_for_times_out(stub: StubProvider) -> None:
    with pytest.raises(TimeoutError, match="3 requests under '/never'; got 0"):
        stub.wait_for(3, "/never", timeout=0.2)
