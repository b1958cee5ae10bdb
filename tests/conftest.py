"""pytest fixtures for every suite (tests/integration, tests/security, tests/fault):
one Postgres and one Kafka broker per run, a System per test.

The services start once per session in temporary folders on free ports (see
integration/services.py). A migrated template database is made once with
`countersign db roles --apply` (as the superuser) and `countersign migrate`
(as countersign_owner); each test's database is a clone of it, and each
process connects as its own role (harness.py).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "integration"))
import shutil
import subprocess
import tempfile
from collections.abc import Iterator

import pytest

from harness import BUILD_DIR, System, safe_name
from services import Kafka, Postgres, StubProvider, free_port

TEMPLATE = "cs_template"


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):  # type: ignore[no-untyped-def]
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture(scope="session")
def pg() -> Iterator[Postgres]:
    d = tempfile.mkdtemp(prefix="cs-pg-")
    server = Postgres(d, free_port())
    server.start()
    server.drop_database(TEMPLATE)
    server.create_database(TEMPLATE)
    # The roles of migration 009, made by an administrator (the superuser), then
    # the schema migrated by its owner; every test database is a clone.
    cli = str(BUILD_DIR / "countersign")
    subprocess.run([cli, "db", "roles", "--apply"], check=True, capture_output=True,
                   env={**os.environ, "CS_PG_URL": server.url(TEMPLATE)})
    subprocess.run([cli, "migrate"], check=True, capture_output=True,
                   env={**os.environ, "CS_PG_URL": server.url(TEMPLATE),
                        "CS_PG_OWNER_URL": server.role_url("countersign_owner", TEMPLATE)})
    # migrate made the template's event slot; the clones make their own.
    server.drop_event_slots(TEMPLATE)
    yield server
    server.stop()
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka() -> Iterator[Kafka]:
    d = tempfile.mkdtemp(prefix="cs-kafka-")
    broker = Kafka(d, free_port(), free_port())
    broker.start()
    yield broker
    broker.stop()
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def stub() -> Iterator[StubProvider]:
    with StubProvider() as s:
        yield s


@pytest.fixture
def system(request: pytest.FixtureRequest, pg: Postgres, kafka: Kafka,
           stub: StubProvider) -> Iterator[System]:
    s = System(safe_name(request.node.nodeid), pg, kafka, stub, TEMPLATE)
    yield s
    rep = getattr(request.node, "rep_call", None)
    s.close(failed=bool(rep and rep.failed))
    if kafka.is_running():
        pass
    pg.drop_database(s.db_name)
