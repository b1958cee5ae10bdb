"""pytest fixtures for every suite (tests/integration, tests/security, tests/fault):
one Postgres and one Kafka broker per run, a System per test.

The services start once per run in temporary folders (see integration/services.py).
A migrated template database is made once with `countersign db roles --apply`
(as the superuser) and `countersign migrate` (as countersign_owner); each test's
database is a clone of it, and each process connects as its own role (harness.py).

In parallel (pytest-xdist, `make integration` passes `-n`): every xdist worker
uses the same Postgres and Kafka. The first worker that needs one starts it
under a file lock in a folder the controller made, and writes where it listens;
the others read that; the controller stops them when the run ends. Files are
spread whole (`make integration` uses `--dist loadfile`: a module's own
module-scoped fixtures, such as the security suite's deployments with fixed
database names, are made once, on one worker). Tests marked `private_services`
kill or restart Postgres or Kafka: under xdist they run on a Postgres and a
Kafka of their worker's own, started when first needed. (`--dist loadgroup`
cannot be used: pytest 9 no longer lets xdist rename the tests it groups.)
Without xdist everything runs on the one pair, as before.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "integration"))
import contextlib
import fcntl
import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator

import pytest

from harness import BUILD_DIR, System, safe_name
from services import Kafka, Postgres, StubProvider, free_port

TEMPLATE = "cs_template"
PRIVATE = "private_services"
SHARED_DIR_KEY = "cs_shared_dir"


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):  # type: ignore[no-untyped-def]
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


# ---- parallel runs (pytest-xdist) ---------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{PRIVATE}: the test kills or restarts Postgres or Kafka; under xdist it "
                   "runs on a Postgres and a Kafka of its worker's own")
    if _is_controller(config) and config.pluginmanager.hasplugin("xdist") \
            and config.getoption("numprocesses", None):
        # The folder where the workers start the shared services; the postgres
        # user must be able to traverse it (tools/pg.sh).
        d = tempfile.mkdtemp(prefix="cs-shared-")
        os.chmod(d, 0o755)
        config.stash[_shared_key] = d


_shared_key = pytest.StashKey[str]()


def _is_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")


def _shared_dir(config: pytest.Config) -> str | None:
    """The controller's folder of shared services when this is an xdist worker, else None."""
    workerinput = getattr(config, "workerinput", None)
    return workerinput.get(SHARED_DIR_KEY) if workerinput else None


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:  # type: ignore[no-untyped-def]
    """xdist, in the controller: tell each worker where the shared services live."""
    d = node.config.stash.get(_shared_key, None)
    if d is not None:
        node.workerinput[SHARED_DIR_KEY] = d


def pytest_unconfigure(config: pytest.Config) -> None:
    """In the controller, after every worker ended: stop the shared services."""
    d = config.stash.get(_shared_key, None)
    if d is None:
        return
    state = _read_state(Path(d))
    with contextlib.suppress(Exception):
        if "pg" in state:
            Postgres(state["pg"]["dir"], state["pg"]["port"]).stop()
    with contextlib.suppress(Exception):
        if "kafka" in state:
            k = state["kafka"]
            Kafka(k["dir"], k["port"], k["controller_port"]).stop()
    shutil.rmtree(d, ignore_errors=True)


def _read_state(d: Path) -> dict[str, dict[str, object]]:
    f = d / "services.json"
    return json.loads(f.read_text()) if f.exists() else {}


@contextlib.contextmanager
def _locked(d: Path) -> Iterator[dict[str, dict[str, object]]]:
    """The shared services' state, under an exclusive lock; written back on exit."""
    with open(d / "services.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        state = _read_state(d)
        yield state
        tmp = d / "services.json.tmp"
        tmp.write_text(json.dumps(state))
        tmp.replace(d / "services.json")


# ---- the services ------------------------------------------------------------------


def _start_pg(d: str) -> Postgres:
    server = Postgres(d, free_port())  # Postgres cannot report a port it picked: probed
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
    return server


def _start_kafka(d: str) -> Kafka:
    # KRaft names its controller's port in its own config before it starts: probed ports.
    broker = Kafka(d, free_port(), free_port())
    broker.start()
    return broker


def _own_pg() -> Iterator[Postgres]:
    d = tempfile.mkdtemp(prefix="cs-pg-")
    server = _start_pg(d)
    yield server
    server.stop()
    shutil.rmtree(d, ignore_errors=True)


def _own_kafka() -> Iterator[Kafka]:
    d = tempfile.mkdtemp(prefix="cs-kafka-")
    broker = _start_kafka(d)
    yield broker
    broker.stop()
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def pg(pytestconfig: pytest.Config) -> Iterator[Postgres]:
    shared = _shared_dir(pytestconfig)
    if shared is None:
        yield from _own_pg()
        return
    with _locked(Path(shared)) as state:
        if "pg" not in state:
            d = Path(shared) / "pg"
            d.mkdir(mode=0o755)
            server = _start_pg(str(d))
            state["pg"] = {"dir": str(d), "port": server.port}
        p = state["pg"]
    yield Postgres(str(p["dir"]), int(str(p["port"])))


@pytest.fixture(scope="session")
def kafka(pytestconfig: pytest.Config) -> Iterator[Kafka]:
    shared = _shared_dir(pytestconfig)
    if shared is None:
        yield from _own_kafka()
        return
    with _locked(Path(shared)) as state:
        if "kafka" not in state:
            d = Path(shared) / "kafka"
            d.mkdir(mode=0o755)
            broker = _start_kafka(str(d))
            state["kafka"] = {"dir": str(d), "port": broker.port,
                              "controller_port": broker.controller_port}
        k = state["kafka"]
    yield Kafka(str(k["dir"]), int(str(k["port"])), int(str(k["controller_port"])))


@pytest.fixture(scope="session")
def private_pg() -> Iterator[Postgres]:
    """A Postgres of this worker's own, for the tests marked private_services."""
    yield from _own_pg()


@pytest.fixture(scope="session")
def private_kafka() -> Iterator[Kafka]:
    """A Kafka broker of this worker's own, for the tests marked private_services."""
    yield from _own_kafka()


@pytest.fixture
def stub() -> Iterator[StubProvider]:
    with StubProvider() as s:
        yield s


@pytest.fixture
def system(request: pytest.FixtureRequest, stub: StubProvider) -> Iterator[System]:
    """One deployment on the shared services, or on this worker's own ones when the
    test is marked private_services and runs under xdist."""
    private = request.node.get_closest_marker(PRIVATE) is not None \
        and _shared_dir(request.config) is not None
    pg: Postgres = request.getfixturevalue("private_pg" if private else "pg")
    kafka: Kafka = request.getfixturevalue("private_kafka" if private else "kafka")
    s = System(safe_name(request.node.nodeid), pg, kafka, stub, TEMPLATE)
    yield s
    rep = getattr(request.node, "rep_call", None)
    s.close(failed=bool(rep and rep.failed))
    pg.drop_database(s.db_name)
