"""Countersign on a Kafka that requires SASL over TLS with client certificates.

The test makes a CA, a broker certificate (for 127.0.0.1) and a client
certificate with openssl, starts its own broker (tools/kafka.sh) with a
SASL_SSL listener (SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN; TLS client
authentication required) beside the PLAINTEXT one kafka.sh uses to see it is
up, and creates the SCRAM users through the Admin API (AlterUserScramCredentials,
what kafka-configs --add-config 'SCRAM-SHA-256=[...]' does). Countersign is
then given only the SASL_SSL address, with its librdkafka settings as
CS_KAFKA_PROP_<NAME> variables or a CS_KAFKA_PROPERTIES_FILE (README "Kafka
security settings"): the worker creates its topics, ingests a signed
envelope and publishes its events and result; the api reaches the broker for
/readyz. A wrong password ingests nothing, and no password or key password
appears in any log.

SCRAM and librdkafka: before 2.6.1 librdkafka sent a SCRAM nonce that Kafka
4.x brokers reject (librdkafka #4895), so Debian 12's librdkafka 2.0.2 does
PLAIN and TLS client certificates against this Kafka 4.1 broker but not
SCRAM. The SCRAM cases run the binaries with a fixed librdkafka loaded first
(LD_PRELOAD of the one the confluent-kafka wheel, a test dependency, ships)
when the system's is older; the PLAIN cases use the system's library.
"""

from __future__ import annotations

import ctypes
import glob
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness import System, safe_name
from services import Kafka, Postgres, StubProvider, free_port, scaled, wait_for
from test_sdk_c import c_bins, run_c, start  # noqa: F401 (c_bins is a fixture)

SCRAM_USER, SCRAM_PASS = "cs-scram", "scram-" + secrets.token_hex(12)
PLAIN_USER, PLAIN_PASS = "cs-plain", "plain-" + secrets.token_hex(12)
KEY_PASS = "keypass-" + secrets.token_hex(8)


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True,
                   timeout=scaled(60))


def make_pki(d: Path) -> None:
    """ca.pem; broker.pem (key + certificate, for 127.0.0.1); client.pem and
    client.key (encrypted with KEY_PASS), both signed by the CA."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=countersign-test-ca", cwd=d)
    for name, ext in (("broker", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
                      ("client", "extendedKeyUsage=clientAuth")):
        (d / f"{name}.ext").write_text(ext + "\n")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.plain.key", "-out",
                f"{name}.csr", "-subj", f"/CN=countersign-test-{name}", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext",
                cwd=d)
    (d / "broker.keystore.pem").write_text((d / "broker.plain.key").read_text()
                                           + (d / "broker.pem").read_text())
    openssl("pkcs8", "-topk8", "-in", "client.plain.key", "-out", "client.key", "-v2",
            "aes-256-cbc", "-passout", f"pass:{KEY_PASS}", cwd=d)


class SaslKafka(Kafka):
    """A broker whose clients (the test's and Countersign's) use its SASL_SSL listener."""

    def __init__(self, d: Path, port: int, cport: int, sasl_port: int) -> None:
        super().__init__(d, port, cport)
        self.sasl_port = sasl_port
        self.pki = d / "pki"
        self.plaintext = f"127.0.0.1:{port}"

    @property
    def bootstrap(self) -> str:  # type: ignore[override]
        return f"127.0.0.1:{self.sasl_port}"

    def client_props(self, mechanism: str = "SCRAM-SHA-256") -> dict[str, str]:
        user, password = (PLAIN_USER, PLAIN_PASS) if mechanism == "PLAIN" else (SCRAM_USER,
                                                                                 SCRAM_PASS)
        return {"security.protocol": "SASL_SSL", "sasl.mechanisms": mechanism,
                "sasl.username": user, "sasl.password": password,
                "ssl.ca.location": str(self.pki / "ca.pem"),
                "ssl.certificate.location": str(self.pki / "client.pem"),
                "ssl.key.location": str(self.pki / "client.key"),
                "ssl.key.password": KEY_PASS}

    def _config(self, **extra: Any) -> dict[str, Any]:
        return {"bootstrap.servers": self.bootstrap, **self.client_props(), **extra}


@pytest.fixture(scope="module")
def sasl_kafka() -> Iterator[SaslKafka]:
    d = Path(tempfile.mkdtemp(prefix="cs-kafka-sasl-"))
    (d / "pki").mkdir()
    make_pki(d / "pki")
    broker = SaslKafka(d, free_port(), free_port(), free_port())
    jaas = "org.apache.kafka.common.security.{0}.{1}LoginModule required"
    (d / "extra.properties").write_text("\n".join([
        f"listeners=PLAINTEXT://127.0.0.1:{broker.port},CONTROLLER://127.0.0.1:"
        f"{broker.controller_port},SASL_SSL://127.0.0.1:{broker.sasl_port}",
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{broker.port},"
        f"SASL_SSL://127.0.0.1:{broker.sasl_port}",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL",
        "sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512,PLAIN",
        "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=" + jaas.format("scram", "Scram") + ";",
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=" + jaas.format("scram", "Scram") + ";",
        "listener.name.sasl_ssl.plain.sasl.jaas.config=" + jaas.format("plain", "Plain")
        + f' user_{PLAIN_USER}="{PLAIN_PASS}";',
        "listener.name.sasl_ssl.ssl.client.auth=required",
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={d / 'pki' / 'broker.keystore.pem'}",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={d / 'pki' / 'ca.pem'}",
        "",
    ]))
    old = os.environ.get("CS_KAFKA_EXTRA_PROPS_FILE")
    os.environ["CS_KAFKA_EXTRA_PROPS_FILE"] = str(d / "extra.properties")
    try:
        broker.start()
    finally:
        if old is None:
            del os.environ["CS_KAFKA_EXTRA_PROPS_FILE"]
        else:
            os.environ["CS_KAFKA_EXTRA_PROPS_FILE"] = old
    from confluent_kafka.admin import (AdminClient, ScramCredentialInfo, ScramMechanism,
                                       UserScramCredentialUpsertion)
    admin = AdminClient({"bootstrap.servers": broker.plaintext})
    for m in (ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512):
        up = UserScramCredentialUpsertion(SCRAM_USER, ScramCredentialInfo(m, 4096),
                                          SCRAM_PASS.encode())
        for f in admin.alter_user_scram_credentials([up]).values():
            f.result(timeout=scaled(30))
    yield broker
    broker.stop()
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def secure(request: pytest.FixtureRequest, pg: Postgres, sasl_kafka: SaslKafka,
           stub: StubProvider) -> Iterator[System]:
    from conftest import TEMPLATE
    s = System(safe_name(request.node.nodeid), pg, sasl_kafka, stub, TEMPLATE)
    yield s
    rep = getattr(request.node, "rep_call", None)
    s.close(failed=bool(rep and rep.failed))
    pg.drop_database(s.db_name)
    logs = "".join(p.read_text(errors="replace") for p in s.log_dir.glob("*.log"))
    for secret in (SCRAM_PASS, PLAIN_PASS, KEY_PASS):
        assert secret not in logs, "a Kafka password appears in a log"


def scram_capable() -> dict[str, str]:
    """Process environment for SCRAM against Kafka 4.x: nothing when the system's
    librdkafka is 2.6.1 or later, else the wheel's librdkafka preloaded."""
    system = ctypes.CDLL("librdkafka.so.1").rd_kafka_version()
    if system >= 0x020601FF:
        return {}
    import confluent_kafka
    site = Path(confluent_kafka.__file__).resolve().parent.parent
    libs = sorted(glob.glob(str(site / "confluent_kafka.libs" / "librdkafka*.so*")))
    assert libs, ("SCRAM against Kafka 4.x needs librdkafka >= 2.6.1; the system has "
                  f"{system:#x} and the confluent-kafka wheel ships none")
    asan = os.environ.get("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:exitcode=99")
    return {"LD_PRELOAD": libs[0], "ASAN_OPTIONS": asan + ":verify_asan_link_order=0"}


def env_props(props: dict[str, str]) -> dict[str, str]:
    """CS_KAFKA_PROP_<NAME> for each librdkafka property ("." -> "_", "_" -> "__")."""
    return {"CS_KAFKA_PROP_" + k.replace("_", "__").replace(".", "_").upper(): v
            for k, v in props.items()}


def ingest_and_publish(s: System, rid: str, **worker_env: str) -> None:
    s.setup()
    w = s.worker(**worker_env)
    s.produce(s.envelope(rid, amount=5))
    row = s.wait_status(rid, "executed", timeout=60)
    results = wait_for(lambda: [m for m in s.topic("results", timeout=10)
                                if m["key"] == str(row["id"])], 60, what="the result published")
    assert results[0]["value"]["status"] == "executed"
    assert w.alive()


def test_plain_and_client_certificate_from_variables(secure: System,
                                                     sasl_kafka: SaslKafka) -> None:
    """With the system's librdkafka: SASL PLAIN over TLS with a client certificate."""
    props = env_props(sasl_kafka.client_props("PLAIN"))
    assert props["CS_KAFKA_PROP_SSL_KEY_PASSWORD"] == KEY_PASS
    secure.env.update(props)
    ingest_and_publish(secure, "sasl-plain")
    api = secure.api()
    r = httpx.get(f"{api.url}/readyz", timeout=30)  # type: ignore[attr-defined]
    assert r.status_code == 200, r.text


def test_scram_sha256_from_variables(secure: System, sasl_kafka: SaslKafka) -> None:
    secure.env.update(scram_capable())
    secure.env.update(env_props(sasl_kafka.client_props("SCRAM-SHA-256")))
    ingest_and_publish(secure, "sasl-256")


def test_scram_sha512_from_a_properties_file(secure: System, sasl_kafka: SaslKafka,
                                             tmp_path: Path) -> None:
    f = tmp_path / "kafka.properties"
    f.write_text("# Countersign's Kafka client settings\n\n" + "".join(
        f"{k} = {v}\n" for k, v in sasl_kafka.client_props("SCRAM-SHA-512").items()))
    secure.env.update(scram_capable())
    secure.env["CS_KAFKA_PROPERTIES_FILE"] = str(f)
    ingest_and_publish(secure, "sasl-512")


def test_variables_win_over_the_file(secure: System, sasl_kafka: SaslKafka,
                                     tmp_path: Path) -> None:
    """The file names PLAIN with a wrong password; the variable, which wins, the right one."""
    f = tmp_path / "kafka.properties"
    wrong = {**sasl_kafka.client_props("PLAIN"), "sasl.password": "wrong"}
    f.write_text("".join(f"{k}={v}\n" for k, v in wrong.items()))
    secure.env["CS_KAFKA_PROPERTIES_FILE"] = str(f)
    secure.env.update(env_props({"sasl.password": PLAIN_PASS}))
    ingest_and_publish(secure, "sasl-override")


def test_a_wrong_password_ingests_nothing_and_is_not_logged(secure: System,
                                                             sasl_kafka: SaslKafka) -> None:
    secure.setup()
    bad = {**sasl_kafka.client_props("PLAIN"), "sasl.password": PLAIN_PASS + "x"}
    secure.env.update(env_props(bad))
    sasl_kafka.create_topics(secure.topics.values())
    w = secure.worker(wait_ready=False)
    secure.produce(secure.envelope("sasl-denied", amount=5))
    wait_for(lambda: "uthentication" in w.text(), 60, what="the authentication failure logged")
    assert secure.approval("sasl-denied") is None
    assert PLAIN_PASS not in w.text()


def test_locked_unknown_and_malformed_properties_are_refused(secure: System) -> None:
    res = secure.cli("topics", "create", check=False,
                     env={"CS_KAFKA_PROP_ENABLE_IDEMPOTENCE": "false"})
    assert res.returncode != 0 and "enable.idempotence is set by Countersign" in res.stderr
    res = secure.cli("topics", "create", check=False, env={"CS_KAFKA_PROP_NO_SUCH_THING": "1"})
    assert res.returncode != 0 and "no.such.thing" in res.stderr
    res = secure.cli("topics", "create", check=False, env={"CS_KAFKA_PROP_SASL-USERNAME": "x"})
    assert res.returncode != 0 and "CS_KAFKA_PROP_SASL-USERNAME" in res.stderr


def test_c_client_producer_over_sasl_ssl(secure: System, sasl_kafka: SaslKafka,
                                         c_bins: Path) -> None:
    """The C client's producer (countersign_producer_new_props) with PLAIN and a client
    certificate: its signed envelopes are ingested like any other."""
    secure.env.update(env_props(sasl_kafka.client_props("PLAIN")))
    secure.env["COUNTERSIGN_TEST_KAFKA_PROPS"] = "\n".join(
        f"{k}={v}" for k, v in sasl_kafka.client_props("PLAIN").items())
    url, key = start(secure)
    out = run_c(secure, url, key, "produce", min_checks=5)
    assert PLAIN_PASS not in out and KEY_PASS not in out
    secure.wait_status("c-produce-1", "pending")
    secure.wait_status("c-produce-2", "executed")
