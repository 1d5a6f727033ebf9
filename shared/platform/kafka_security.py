"""The Kafka client settings every producer and consumer of a service uses (DESIGN.md §9):
plaintext, TLS, or TLS with SCRAM (one Kafka user per service, ACLs limited to its topics)."""

from __future__ import annotations

import ssl
from typing import Any

from faststream.security import BaseSecurity, SASLScram256, SASLScram512

from shared.platform.settings import ServiceSettings


class KafkaSecurityError(ValueError):
    pass


def _ssl_context(settings: ServiceSettings) -> ssl.SSLContext | None:
    if settings.kafka_security_protocol not in ("SSL", "SASL_SSL"):
        return None
    cafile = str(settings.kafka_ca_file) if settings.kafka_ca_file else None
    return ssl.create_default_context(cafile=cafile)


def _credentials(settings: ServiceSettings) -> tuple[str, str]:
    if settings.kafka_username is None or settings.kafka_password is None:
        raise KafkaSecurityError(
            f"OMS_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol} needs"
            " OMS_KAFKA_USERNAME and OMS_KAFKA_PASSWORD"
        )
    return settings.kafka_username, settings.kafka_password.get_secret_value()


def aiokafka_options(settings: ServiceSettings) -> dict[str, Any]:
    """Keyword arguments for AIOKafkaProducer / AIOKafkaConsumer / AIOKafkaAdminClient."""
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {"security_protocol": protocol}
    context = _ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if protocol.startswith("SASL"):
        username, password = _credentials(settings)
        options.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=username,
            sasl_plain_password=password,
        )
    return options


def faststream_security(settings: ServiceSettings) -> BaseSecurity | None:
    """The same, as FastStream's KafkaBroker(security=...)."""
    protocol = settings.kafka_security_protocol
    context = _ssl_context(settings)
    if protocol.startswith("SASL"):
        username, password = _credentials(settings)
        scram = SASLScram512 if settings.kafka_sasl_mechanism == "SCRAM-SHA-512" else SASLScram256
        return scram(
            username=username,
            password=password,
            ssl_context=context,
            use_ssl=context is not None,
        )
    if context is not None:
        return BaseSecurity(ssl_context=context, use_ssl=True)
    return None
