"""Local infrastructure without Docker: a single-node Kafka and a PostgreSQL cluster, for
`make run`, the tests and the bench. `kafka` runs the broker, `postgres` the cluster,
`provisioning` gives every service its role and schema on any PostgreSQL, `lifecycle` brings
both up and down together; `python -m devtools.localinfra up|down|status|clean` prints JSON.

Everything lives in ``<repo>/.local/`` (git-ignored)::

    .local/
      m2/                      Maven repository cache (kept by clean())
      kafka/                   the broker's jars, config, data, pid (see kafka.py)
      pg/                      the PostgreSQL cluster and its superuser password (see postgres.py)
      logs/kafka.log, logs/postgres.log
"""

from devtools.localinfra.kafka import kafka_version
from devtools.localinfra.lifecycle import (
    Infra,
    clean,
    crash_kafka,
    crash_postgres,
    down,
    status,
    up,
)
from devtools.localinfra.provisioning import (
    DEFAULT_DATABASE,
    provision_database,
    provision_database_async,
    service_password,
    with_database,
)
from devtools.processes import LOCAL_DIR, InfraError
from shared.topics import SERVICES

__all__ = [
    "DEFAULT_DATABASE",
    "LOCAL_DIR",
    "SERVICES",
    "Infra",
    "InfraError",
    "clean",
    "crash_kafka",
    "crash_postgres",
    "down",
    "kafka_version",
    "provision_database",
    "provision_database_async",
    "service_password",
    "status",
    "up",
    "with_database",
]
