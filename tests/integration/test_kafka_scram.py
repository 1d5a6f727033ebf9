"""The services' Kafka security on a real locked-down broker (issue 13, DESIGN.md §9).

A second, throw-away broker is started from the same jars as the local one, configured the way
the production overlay configures Strimzi: a TLS listener with SCRAM-SHA-512, the StandardAuthorizer
with `allow.everyone.if.no.acl.found=false`, and for the service under test exactly the ACLs that
`shared.ops.topics.service_acls` generates for its KafkaUser (the same function renders
deploy/k8s/overlays/prod/kafka-users.yaml). The payment service then runs as a real process
against it with only its own credentials: it must start, consume a command and publish its event.
What its ACLs do not allow (another service's topic), a wrong password and a client without TLS
are refused.

The broker's internal listener is plaintext on loopback with ANONYMOUS as super user: only the
test uses it, to create topics and ACLs and to play order-intake's part.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devtools.localinfra.kafka import (
    KAFKA_LIBS,
    ensure_libs,
    find_kafka_pid,
    java_command,
    new_cluster_id,
)
from shared.contracts.order_intake import AuthorizePayment
from shared.envelope import Envelope
from shared.ops.topics import create_topics, kafka_user_name, service_acls
from shared.topics import INVENTORY_EVENTS, PAYMENT_COMMANDS, PAYMENT_EVENTS
from tests.support.env import Infra, new_env
from tests.support.services import ServiceProcess, free_port

pytestmark = pytest.mark.integration

SERVICE = "payment"
PASSWORD = "scram-" + uuid.uuid4().hex


@dataclass(frozen=True)
class SecuredKafka:
    secure_bootstrap: str  # SASL_SSL: what the services use
    internal_bootstrap: str  # PLAINTEXT, super user: the test's own admin access
    ca_file: Path


def _certificates(directory: Path) -> tuple[Path, Path]:
    """A CA and a broker certificate for 127.0.0.1 signed by it; returns (ca.pem, keystore.pem)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "oms test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    broker_key = ec.generate_private_key(ec.SECP256R1())
    broker_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(broker_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca_cert.public_bytes(pem))
    keystore = directory / "broker-keystore.pem"
    keystore.write_bytes(
        broker_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        + broker_cert.public_bytes(pem)
        + ca_cert.public_bytes(pem)
    )
    return ca_file, keystore


def _server_properties(
    directory: Path, keystore: Path, secure: int, internal: int, controller: int
) -> Path:
    props = directory / "server.properties"
    props.write_text(
        "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.bootstrap.servers=127.0.0.1:{controller}",
                f"listeners=SASL_SSL://127.0.0.1:{secure},INTERNAL://127.0.0.1:{internal},"
                f"CONTROLLER://127.0.0.1:{controller}",
                f"advertised.listeners=SASL_SSL://127.0.0.1:{secure},"
                f"INTERNAL://127.0.0.1:{internal},CONTROLLER://127.0.0.1:{controller}",
                "listener.security.protocol.map=SASL_SSL:SASL_SSL,INTERNAL:PLAINTEXT,"
                "CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name=INTERNAL",
                "controller.listener.names=CONTROLLER",
                "sasl.enabled.mechanisms=SCRAM-SHA-512",
                "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config="
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
                "ssl.keystore.type=PEM",
                f"ssl.keystore.location={keystore}",
                "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                "allow.everyone.if.no.acl.found=false",
                "super.users=User:ANONYMOUS",
                f"log.dirs={directory / 'data'}",
                "auto.create.topics.enable=false",
                "num.partitions=1",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=1",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "num.network.threads=1",
                "num.io.threads=2",
                "",
            ]
        )
    )
    return props


def _java_cmd(libs: Path, *args: str) -> list[str]:
    return [java_command(), "-Xmx384m", "-Djava.awt.headless=true", "-cp", f"{libs}/*", *args]


def _wait_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"secured broker exited:\n{log.read_text()[-3000:]}")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"secured broker not listening in 90 s:\n{log.read_text()[-3000:]}")


def _add_acls(
    libs: Path, internal_bootstrap: str, principal: str, acls: list[dict[str, Any]]
) -> None:
    for acl in acls:
        resource = acl["resource"]
        flag = {"topic": "--topic", "group": "--group"}[resource["type"]]
        operations = [arg for op in acl["operations"] for arg in ("--operation", op)]
        subprocess.run(
            _java_cmd(
                libs,
                "org.apache.kafka.tools.AclCommand",
                "--bootstrap-server",
                internal_bootstrap,
                "--add",
                "--allow-principal",
                f"User:{principal}",
                *operations,
                flag,
                resource["name"],
                "--resource-pattern-type",
                resource["patternType"],
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )


def _kafka_libs() -> Path:
    """The local broker's jars (deploy/local/pom.xml), which include Kafka's admin tools."""
    if not any(KAFKA_LIBS.glob("kafka-tools-*.jar")):
        if find_kafka_pid() is not None:
            # Re-resolving would replace the jars under the running local broker.
            pytest.fail(
                f"{KAFKA_LIBS} was resolved from an older deploy/local/pom.xml (no kafka-tools)"
                " and the local Kafka runs from it: `oms infra down && oms infra up`"
            )
        ensure_libs()
    return KAFKA_LIBS


@pytest.fixture(scope="module")
def secured_kafka(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredKafka]:
    libs = _kafka_libs()
    directory = tmp_path_factory.mktemp("secured-kafka")
    ca_file, keystore = _certificates(directory)
    secure, internal, controller = free_port(), free_port(), free_port()
    props = _server_properties(directory, keystore, secure, internal, controller)
    user = kafka_user_name(SERVICE)
    subprocess.run(
        _java_cmd(
            libs,
            "kafka.tools.StorageTool",
            "format",
            "--cluster-id",
            new_cluster_id(),
            "--config",
            str(props),
            "--standalone",
            "--add-scram",
            f"SCRAM-SHA-512=[name={user},password={PASSWORD}]",
        ),
        check=True,
        capture_output=True,
        timeout=120,
    )
    log = directory / "broker.log"
    with log.open("ab") as out:
        broker = subprocess.Popen(
            _java_cmd(libs, "kafka.Kafka", str(props)),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        _wait_port(secure, broker, log)
        internal_bootstrap = f"127.0.0.1:{internal}"
        asyncio.run(create_topics(internal_bootstrap, "", 1))
        consumed = [PAYMENT_COMMANDS]
        _add_acls(libs, internal_bootstrap, user, service_acls(SERVICE, consumed, ""))
        yield SecuredKafka(f"127.0.0.1:{secure}", internal_bootstrap, ca_file)
    finally:
        broker.kill()
        broker.wait(30)


def _client_security(kafka: SecuredKafka, password: str = PASSWORD) -> dict[str, object]:
    from shared.platform.kafka_security import aiokafka_options
    from shared.platform.settings import ServiceSettings

    settings = ServiceSettings(
        service_name=SERVICE,
        db_schema=SERVICE,
        http_port=0,
        kafka_bootstrap=kafka.secure_bootstrap,
        kafka_security_protocol="SASL_SSL",
        kafka_username=kafka_user_name(SERVICE),
        kafka_password=password,
        kafka_ca_file=kafka.ca_file,
        database_url="postgresql://unused/oms",
    )
    return aiokafka_options(settings)


async def _first_event(bootstrap: str, topic: str, order_id: str) -> Envelope:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    envelope = Envelope.model_validate(orjson.loads(record.value))
                    if envelope.payload.get("order_id") == order_id:
                        return envelope
        raise AssertionError(f"no event for {order_id} on {topic} in 60 s")
    finally:
        await consumer.stop()


async def test_payment_runs_on_scram_and_tls_with_only_its_own_acls(
    infra: Infra, secured_kafka: SecuredKafka
) -> None:
    env = await new_env(infra, services=[SERVICE], kafka=False)
    process = ServiceProcess(
        f"{SERVICE}-scram-{uuid.uuid4().hex[:8]}",  # its own log file
        f"services.{SERVICE}",
        {
            "OMS_KAFKA_BOOTSTRAP": secured_kafka.secure_bootstrap,
            "OMS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "OMS_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "OMS_KAFKA_USERNAME": kafka_user_name(SERVICE),
            "OMS_KAFKA_PASSWORD": PASSWORD,
            "OMS_KAFKA_CA_FILE": str(secured_kafka.ca_file),
            "OMS_DATABASE_URL": env.service_urls[SERVICE],
            "OMS_TOPIC_PREFIX": "",
        },
    ).start()
    try:
        await process.wait_ready(timeout_s=90)
        order_id = f"ord-{uuid.uuid4().hex[:8]}"
        command = AuthorizePayment(
            order_id=order_id,
            amount=Decimal("12.50"),
            currency="EUR",
            method="card",
            token="tok_visa",
            idempotency_key=f"{order_id}:authorize",
        )
        producer = AIOKafkaProducer(bootstrap_servers=secured_kafka.internal_bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(
                PAYMENT_COMMANDS,
                Envelope.wrap(command, correlation_id=order_id).to_bytes(),
                key=order_id.encode(),
            )
        finally:
            await producer.stop()
        event = await _first_event(secured_kafka.internal_bootstrap, PAYMENT_EVENTS, order_id)
        assert event.type == "PaymentAuthorized"
        assert event.payload["amount"] == "12.50"
    finally:
        process.stop()
    # Topics are the registry's to create: the service never tries (its ACLs have no Create).
    assert "create topic" not in process.log_tail(400)


async def test_a_service_cannot_write_another_services_topic(secured_kafka: SecuredKafka) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=secured_kafka.secure_bootstrap,
        request_timeout_ms=10_000,
        **_client_security(secured_kafka),
    )
    await producer.start()
    try:
        with pytest.raises(KafkaError) as refused:
            await producer.send_and_wait(INVENTORY_EVENTS, b"{}")
        assert "TopicAuthorizationFailed" in type(refused.value).__name__
        # Its own topic is writable with the same credentials.
        await producer.send_and_wait(PAYMENT_EVENTS, b"{}", key=b"probe")
    finally:
        await producer.stop()


async def test_only_the_right_password_over_tls_gets_in(secured_kafka: SecuredKafka) -> None:
    async def connects(**options: object) -> bool:
        producer = AIOKafkaProducer(
            bootstrap_servers=secured_kafka.secure_bootstrap, request_timeout_ms=5_000, **options
        )
        try:
            await producer.start()
        except KafkaConnectionError:
            return False
        finally:
            await producer.stop()
        return True

    assert await connects(**_client_security(secured_kafka))
    assert not await connects(**_client_security(secured_kafka, password="not-the-password"))
    assert not await connects()  # plaintext, no credentials
