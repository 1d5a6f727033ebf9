"""The local Kafka broker: Apache Kafka 4.x in KRaft combined mode, no Docker.

Apache Kafka (version pinned in deploy/local/pom.xml) is resolved from Maven Central by
``mvn dependency:copy-dependencies`` into ``.local/kafka/libs`` using the project-local
``.local/m2`` cache; skipped while ``libs.stamp`` matches the pom's hash.  Run on the system
JDK (17+) in KRaft combined mode (broker+controller, node id 1, ``--standalone`` dynamic quorum),
listeners on 127.0.0.1 only: broker on ``kafka_port`` (9092), controller on ``kafka_port + 1``
(9093).  Heap 256-512 MiB.  Started detached (own session), stdout/stderr appended to
``.local/logs/kafka.log``.  A pid file whose process is gone (kill -9, reboot) is treated as
stale; a pid is only trusted when ``/proc/<pid>/cmdline`` names our ``server.properties``.

Files: ``.local/kafka/`` holds ``libs/`` (kept by clean()), ``libs.stamp``, ``cluster.id``
(generated once), ``server.properties`` (rendered from
deploy/local/kafka/server.properties.template), ``data/`` (KRaft metadata and topic logs),
``kafka.pid`` and ``state.json`` (the ports of the broker we started).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import os
import shutil
import signal
import string
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from devtools.processes import (
    LOCAL_DIR,
    LOGS_DIR,
    RECIPES_DIR,
    REPO_ROOT,
    InfraError,
    clean_env,
    installed_command,
    log_tail,
    mkdir,
    pid_matches,
    port_open,
    read_text,
    rotate_log,
    rss_kib,
    run,
    run_coro,
    write_atomic,
)

log = logging.getLogger(__name__)

POM_FILE = RECIPES_DIR / "pom.xml"
KAFKA_TEMPLATE = RECIPES_DIR / "kafka" / "server.properties.template"
KAFKA_LOG4J = RECIPES_DIR / "kafka" / "log4j2.xml"
M2_DIR = LOCAL_DIR / "m2"

KAFKA_DIR = LOCAL_DIR / "kafka"
KAFKA_LIBS = KAFKA_DIR / "libs"
KAFKA_STAMP = KAFKA_DIR / "libs.stamp"
KAFKA_DATA = KAFKA_DIR / "data"
KAFKA_PID = KAFKA_DIR / "kafka.pid"
KAFKA_STATE = KAFKA_DIR / "state.json"
KAFKA_CLUSTER_ID = KAFKA_DIR / "cluster.id"
KAFKA_PROPS = KAFKA_DIR / "server.properties"
KAFKA_LOG = LOGS_DIR / "kafka.log"

KAFKA_NODE_ID = 1
KAFKA_HEAP = ("-Xms256m", "-Xmx512m")
KAFKA_START_TIMEOUT = 90.0
KAFKA_STOP_TIMEOUT = 60.0


def java_command() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    return installed_command("java", "openjdk-17-jre-headless", "Kafka 4 needs a JDK/JRE 17+")


def _pom_hash() -> str:
    return hashlib.sha256(POM_FILE.read_bytes()).hexdigest()


def libs_ready() -> bool:
    return read_text(KAFKA_STAMP) == _pom_hash() and any(KAFKA_LIBS.glob("kafka_2.13-*.jar"))


def kafka_version() -> str | None:
    """Version of the downloaded Kafka jars (None before the first download)."""
    for jar in KAFKA_LIBS.glob("kafka_2.13-*.jar"):
        return jar.name[len("kafka_2.13-") : -len(".jar")]
    return None


def ensure_libs() -> bool:
    """Resolve the pom into .local/kafka/libs unless already done. True if downloaded."""
    if libs_ready():
        return False
    mvn = installed_command("mvn", "maven", "install Maven")
    mkdir(KAFKA_DIR)
    mkdir(M2_DIR)
    tmp = KAFKA_DIR / "libs.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    log.warning("resolving Kafka jars with Maven into %s (first run only)", KAFKA_LIBS)
    t0 = time.monotonic()
    run(
        [
            mvn,
            "-q",
            "-B",
            "-f",
            POM_FILE,
            f"-Dmaven.repo.local={M2_DIR}",
            "dependency:copy-dependencies",
            f"-DoutputDirectory={tmp}",
            "-DincludeScope=runtime",
        ],
        what="mvn dependency:copy-dependencies",
        cwd=REPO_ROOT,
        env=clean_env(),
        timeout=1200,
    )
    if not any(tmp.glob("kafka_2.13-*.jar")):
        raise InfraError(f"Maven finished but no kafka_2.13 jar in {tmp}")
    shutil.rmtree(KAFKA_LIBS, ignore_errors=True)
    os.replace(tmp, KAFKA_LIBS)
    write_atomic(KAFKA_STAMP, _pom_hash() + "\n")
    log.warning("Kafka jars ready (%.1fs)", time.monotonic() - t0)
    return True


def new_cluster_id() -> str:
    # Same format as Kafka's Uuid.randomUuid().toString(): url-safe base64, no padding,
    # never starting with '-' (would look like a CLI flag).
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def _cluster_id() -> str:
    cid = read_text(KAFKA_CLUSTER_ID)
    if not cid:
        cid = new_cluster_id()
        write_atomic(KAFKA_CLUSTER_ID, cid + "\n")
    return cid


def _render_kafka_props(port: int, controller_port: int) -> None:
    template = string.Template(KAFKA_TEMPLATE.read_text())
    text = template.substitute(
        broker_port=port,
        controller_port=controller_port,
        data_dir=str(KAFKA_DATA),
        node_id=KAFKA_NODE_ID,
    )
    write_atomic(KAFKA_PROPS, text)


def _java_base_cmd(java: str) -> list[str]:
    return [
        java,
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={KAFKA_LOG4J}",
        f"-Dkafka.logs.dir={LOGS_DIR}",
        "-cp",
        f"{KAFKA_LIBS}/*",
    ]


def _format_kafka_storage(java: str) -> None:
    if (KAFKA_DATA / "meta.properties").exists():
        return
    mkdir(KAFKA_DATA)
    cid = _cluster_id()
    log.info("formatting Kafka storage (cluster id %s)", cid)
    run(
        [
            *_java_base_cmd(java),
            "kafka.tools.StorageTool",
            "format",
            "--cluster-id",
            cid,
            "--config",
            KAFKA_PROPS,
            "--standalone",
            "--ignore-formatted",
        ],
        what="kafka-storage format",
        cwd=KAFKA_DIR,
        timeout=120,
    )


def _kafka_markers() -> tuple[str, str]:
    return ("kafka.Kafka", str(KAFKA_PROPS))


def find_kafka_pid() -> int | None:
    """Pid of the broker started from our server.properties, or None (stale pid file removed)."""
    pid_text = read_text(KAFKA_PID)
    if pid_text and pid_text.isdigit() and pid_matches(int(pid_text), *_kafka_markers()):
        return int(pid_text)
    # Pid file missing/stale: look for an orphan of ours before declaring it dead.
    found = None
    proc = Path("/proc")
    if proc.is_dir():
        for entry in proc.iterdir():
            if entry.name.isdigit() and pid_matches(int(entry.name), *_kafka_markers()):
                found = int(entry.name)
                break
    if found is not None:
        write_atomic(KAFKA_PID, f"{found}\n")
    elif pid_text is not None:
        log.info("removing stale Kafka pid file (pid %s is gone)", pid_text)
        KAFKA_PID.unlink(missing_ok=True)
    return found


# Popen objects of brokers started by this process: kept so they are never garbage
# collected while running (no ResourceWarning) and can be reaped after they exit.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _reap(pid: int) -> None:
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        _CHILDREN.pop(pid, None)


def _start_kafka(port: int, controller_port: int) -> int:
    java = java_command()
    ensure_libs()
    mkdir(LOGS_DIR)
    for p, name in ((port, "broker"), (controller_port, "controller")):
        if port_open(p):
            raise InfraError(
                f"cannot start Kafka: {name} port 127.0.0.1:{p} is already in use by another process "
                f"(pass kafka_port=..., or kafka_bootstrap=... to use a running Kafka)"
            )
    _render_kafka_props(port, controller_port)
    _format_kafka_storage(java)
    rotate_log(KAFKA_LOG)
    extra_opts = os.environ.get("OMS_KAFKA_JAVA_OPTS", "").split()
    cmd = [
        java,
        "-server",
        *KAFKA_HEAP,
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-XX:InitiatingHeapOccupancyPercent=35",
        "-XX:+ExplicitGCInvokesConcurrent",
        *extra_opts,
        *_java_base_cmd(java)[1:],
        "kafka.Kafka",
        str(KAFKA_PROPS),
    ]
    with open(KAFKA_LOG, "ab") as logf:
        logf.write(
            f"\n===== localinfra: starting Kafka {time.strftime('%Y-%m-%dT%H:%M:%S')} =====\n".encode()
        )
        logf.flush()
        child = subprocess.Popen(
            cmd,
            cwd=KAFKA_DIR,
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    _CHILDREN[child.pid] = child
    write_atomic(KAFKA_PID, f"{child.pid}\n")
    write_atomic(
        KAFKA_STATE,
        json.dumps({"pid": child.pid, "port": port, "controller_port": controller_port}) + "\n",
    )
    log.info("started Kafka pid %s on 127.0.0.1:%s", child.pid, port)
    return child.pid


async def _kafka_answers(bootstrap: str, timeout_s: float = 5.0) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000)
    )
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        info = await asyncio.wait_for(admin.describe_cluster(), timeout_s)
        return bool(info.get("brokers"))
    except Exception as e:
        log.debug("kafka not ready yet: %r", e)
        return False
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


def wait_kafka(bootstrap: str, pid: int | None, timeout: float = KAFKA_START_TIMEOUT) -> None:
    host, _, port_s = bootstrap.rpartition(":")
    port = int(port_s)
    deadline = time.monotonic() + timeout
    aiokafka_log = logging.getLogger("aiokafka")
    old_level = aiokafka_log.level
    aiokafka_log.setLevel(logging.CRITICAL)  # connection errors while starting are expected
    try:
        while True:
            if pid is not None:
                _reap(pid)
                if not pid_matches(pid, *_kafka_markers()):
                    KAFKA_PID.unlink(missing_ok=True)
                    raise InfraError(
                        f"Kafka (pid {pid}) exited during startup.\n--- tail of {KAFKA_LOG} ---\n{log_tail(KAFKA_LOG)}"
                    )
            if port_open(port, host or "127.0.0.1") and run_coro(_kafka_answers(bootstrap)):
                return
            if time.monotonic() > deadline:
                raise InfraError(
                    f"Kafka did not answer on {bootstrap} within {timeout:.0f}s.\n"
                    f"--- tail of {KAFKA_LOG} ---\n{log_tail(KAFKA_LOG)}"
                )
            time.sleep(0.5)
    finally:
        aiokafka_log.setLevel(old_level)


def ensure_kafka(port: int, controller_port: int) -> tuple[bool, int]:
    """Start our broker unless running. Returns (started, pid); does not wait for readiness."""
    mkdir(KAFKA_DIR)
    pid = find_kafka_pid()
    if pid is not None:
        state = json.loads(read_text(KAFKA_STATE) or "{}")
        if (
            state.get("port", port) != port
            or state.get("controller_port", controller_port) != controller_port
        ):
            raise InfraError(
                f"local Kafka already running (pid {pid}) on port {state.get('port')}/{state.get('controller_port')}, "
                f"asked for {port}/{controller_port}: run down() first"
            )
        return False, pid
    return True, _start_kafka(port, controller_port)


def stop_kafka(timeout: float = KAFKA_STOP_TIMEOUT) -> bool:
    pid = find_kafka_pid()
    if pid is None:
        return False
    log.info("stopping Kafka pid %s", pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not pid_matches(pid, *_kafka_markers()):
            break
        time.sleep(0.2)
    else:
        log.warning("Kafka pid %s did not stop within %.0fs: SIGKILL", pid, timeout)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        for _ in range(50):
            _reap(pid)
            if not pid_matches(pid, *_kafka_markers()):
                break
            time.sleep(0.1)
    _reap(pid)
    KAFKA_PID.unlink(missing_ok=True)
    return True


def status() -> dict[str, Any]:
    """The broker's part of `localinfra.status()`."""
    kafka_pid = find_kafka_pid() if KAFKA_DIR.exists() else None
    state = json.loads(read_text(KAFKA_STATE) or "{}")
    return {
        "running": kafka_pid is not None,
        "pid": kafka_pid,
        "rss_kib": rss_kib(kafka_pid) if kafka_pid else None,
        "bootstrap": f"127.0.0.1:{state['port']}" if state.get("port") else None,
        "port": state.get("port"),
        "controller_port": state.get("controller_port"),
        "version": kafka_version(),
        "libs_ready": KAFKA_LIBS.exists() and libs_ready(),
        "formatted": (KAFKA_DATA / "meta.properties").exists(),
        "cluster_id": read_text(KAFKA_CLUSTER_ID),
        "data_dir": str(KAFKA_DATA),
        "log": str(KAFKA_LOG),
    }
