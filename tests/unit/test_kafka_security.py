"""The Kafka client options a service's settings give (plaintext locally, TLS + SCRAM in prod)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from faststream.security import SASLScram512
from pydantic import SecretStr

from shared.platform.kafka_security import (
    KafkaSecurityError,
    aiokafka_options,
    faststream_security,
)
from shared.platform.settings import ServiceSettings


def settings(**values: object) -> ServiceSettings:
    return ServiceSettings(service_name="payment", db_schema="payment", http_port=1, **values)  # type: ignore[arg-type]


def test_plaintext_by_default():
    assert aiokafka_options(settings()) == {"security_protocol": "PLAINTEXT"}
    assert faststream_security(settings()) is None


def test_tls_with_scram_per_service_user():
    ca = Path(ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt")
    secure = settings(
        kafka_security_protocol="SASL_SSL",
        kafka_username="oms-payment",
        kafka_password=SecretStr("s3cret"),
        kafka_ca_file=ca,
    )
    options = aiokafka_options(secure)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == (
        "oms-payment",
        "s3cret",
    )
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert options["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    broker_security = faststream_security(secure)
    assert isinstance(broker_security, SASLScram512) and broker_security.use_ssl


def test_sasl_without_credentials_is_refused():
    with pytest.raises(KafkaSecurityError, match="OMS_KAFKA_USERNAME"):
        aiokafka_options(settings(kafka_security_protocol="SASL_SSL"))
