"""Local infrastructure without Docker: a single-node Kafka and a PostgreSQL cluster.

Everything lives in ``<repo>/.local/`` (git-ignored), the repo root being two levels
above this package (``shared/ops/..``)::

    .local/
      m2/                      Maven repository cache (kept by clean())
      kafka/libs/              Kafka + Log4j2 jars from deploy/local/pom.xml (kept by clean())
      kafka/libs.stamp         sha256 of the pom the jars were resolved from
      kafka/cluster.id         KRaft cluster id, generated once
      kafka/server.properties  rendered from deploy/local/kafka/server.properties.template
      kafka/data/              KRaft metadata + topic logs
      kafka/kafka.pid          pid of the broker we started; kafka/state.json: its ports
      pg/data/                 PostgreSQL cluster (owned by the ``postgres`` OS user when root)
      pg/run/                  unix socket directory
      pg/superuser.password    password of the ``postgres`` superuser (0600)
      pg/location              where the cluster lives, if not in .local/pg (see below)
      logs/kafka.log, logs/postgres.log

Decisions
---------
Kafka
    Apache Kafka 4.x (version pinned in deploy/local/pom.xml) resolved from Maven
    Central by ``mvn dependency:copy-dependencies`` into ``.local/kafka/libs`` using the
    project-local ``.local/m2`` cache; skipped while ``libs.stamp`` matches the pom's
    hash.  Run on the system JDK (17+) in KRaft combined mode (broker+controller,
    node id 1, ``--standalone`` dynamic quorum), listeners on 127.0.0.1 only: broker on
    ``kafka_port`` (9092), controller on ``kafka_port + 1`` (9093).  Heap 256-512 MiB.
    Started detached (own session), stdout/stderr appended to ``.local/logs/kafka.log``.
    A pid file whose process is gone (kill -9, reboot) is treated as stale; a pid is
    only trusted when ``/proc/<pid>/cmdline`` names our ``server.properties``.

PostgreSQL
    Debian's server binaries (``/usr/lib/postgresql/15/bin``, or ``$OMS_PG_BIN``, or the
    newest ``/usr/lib/postgresql/*/bin``); if none and we are root, ``apt-get install
    postgresql`` and Debian's own ``main`` cluster is stopped and set to ``manual``.
    Port ``pg_port`` (5433), ``listen_addresses=127.0.0.1``, unix socket in
    ``<pg base>/run``, ``max_connections=200``, ``shared_buffers=256MB``, ``fsync=on``,
    ``synchronous_commit=on``, ``full_page_writes=on``, data checksums enabled.

    Auth: ``scram-sha-256`` for every connection (host *and* local socket).  The
    superuser is ``postgres`` with a random password generated at initdb time and
    stored in ``.local/pg/superuser.password`` (mode 0600).

    initdb/postgres refuse to run as root, so as root they run as the ``postgres`` OS
    user (``runuser -u postgres --``); the data and socket folders are chowned to it.
    That user must be able to traverse every parent of ``.local/pg``.  We never chmod
    anything outside ``.local``: if ``runuser -u postgres -- test -x .local/pg`` fails
    (e.g. the repo is under a 0700 home directory), the cluster goes to
    ``/var/tmp/oms-pg-<sha1(repo path)[:12]>`` instead, the choice is recorded in
    ``.local/pg/location`` (so data never silently "moves"), the server log is written
    there and symlinked as ``.local/logs/postgres.log``.  Not root: everything runs as
    the current user directly in ``.local/pg``.

Service roles (provision_database)
    Database ``oms``; per service a LOGIN role named like the service with the
    deterministic password ``<service>-dev-password`` (dev only, loopback only; makes
    DSNs computable by any process and keeps provisioning idempotent against any
    server; override with ``passwords=``), a schema of the same name owned by it,
    ``ALTER ROLE x SET search_path = x``, ``GRANT CONNECT ON DATABASE``; ``PUBLIC`` loses
    all database privileges and all rights on schema ``public``.  Roles are cluster-wide
    in PostgreSQL, so several databases provisioned in one server share them.

CLI: ``python -m shared.ops.localinfra up|down|status|clean`` prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Coroutine, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

log = logging.getLogger(__name__)
_T = TypeVar("_T")

# --------------------------------------------------------------------------- paths

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL_DIR = REPO_ROOT / ".local"
DEPLOY_DIR = REPO_ROOT / "deploy" / "local"
POM_FILE = DEPLOY_DIR / "pom.xml"
KAFKA_TEMPLATE = DEPLOY_DIR / "kafka" / "server.properties.template"
KAFKA_LOG4J = DEPLOY_DIR / "kafka" / "log4j2.xml"

LOGS_DIR = LOCAL_DIR / "logs"
M2_DIR = LOCAL_DIR / "m2"
LOCK_FILE = LOCAL_DIR / ".lock"

KAFKA_DIR = LOCAL_DIR / "kafka"
KAFKA_LIBS = KAFKA_DIR / "libs"
KAFKA_STAMP = KAFKA_DIR / "libs.stamp"
KAFKA_DATA = KAFKA_DIR / "data"
KAFKA_PID = KAFKA_DIR / "kafka.pid"
KAFKA_STATE = KAFKA_DIR / "state.json"
KAFKA_CLUSTER_ID = KAFKA_DIR / "cluster.id"
KAFKA_PROPS = KAFKA_DIR / "server.properties"
KAFKA_LOG = LOGS_DIR / "kafka.log"

PG_DIR = LOCAL_DIR / "pg"
PG_SUPERUSER_PASSWORD = PG_DIR / "superuser.password"
PG_LOCATION = PG_DIR / "location"
PG_LOG = LOGS_DIR / "postgres.log"

# ------------------------------------------------------------------------ settings

SERVICES = ("order_intake", "inventory", "payment", "fulfilment", "returns")
DEFAULT_DATABASE = "oms"
PG_SUPERUSER = "postgres"
PG_OS_USER = "postgres"
PG_DEFAULT_BIN = Path("/usr/lib/postgresql/15/bin")
KAFKA_NODE_ID = 1
KAFKA_HEAP = ("-Xms256m", "-Xmx512m")
KAFKA_START_TIMEOUT = 90.0
KAFKA_STOP_TIMEOUT = 60.0
PG_START_TIMEOUT = 60
LOG_ROTATE_BYTES = 50 * 1024 * 1024
_IDENT = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_PROVISION_LOCK_KEY = 0x6F6D73_0001  # pg_advisory_lock key ("oms" 1)


class InfraError(RuntimeError):
    """Local infrastructure could not be brought up / down."""


@dataclass(frozen=True)
class Infra:
    kafka_bootstrap: str  # "127.0.0.1:9092"
    admin_database_url: str  # superuser URL to the database "oms"
    service_database_urls: dict[str, str]  # per-service role DSN
    started: tuple[str, ...]  # parts this call started ("kafka", "postgres")


# ======================================================================= utilities


def _is_root() -> bool:
    return os.geteuid() == 0


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _write_private(path: Path, text: str) -> None:
    """Atomically write a 0600 file."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return None


def _log_tail(path: Path, lines: int = 40) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode(errors="replace")
    except OSError as e:
        return f"(no log at {path}: {e})"
    return "\n".join(data.splitlines()[-lines:])


def _rotate_log(path: Path) -> None:
    with contextlib.suppress(OSError):
        if path.stat().st_size > LOG_ROTATE_BYTES:
            os.replace(path, path.with_name(path.name + ".1"))


def _clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for child processes, without libpq variables that could redirect them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.setdefault("LC_ALL", "C.UTF-8" if _has_c_utf8() else "C")
    if extra:
        env.update(extra)
    return env


def _run(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    what: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = 600,
    check: bool = True,
    new_session: bool = False,
    log_hint: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    args = [str(c) for c in cmd]
    log.debug("run: %s", " ".join(args))
    try:
        proc = subprocess.run(
            args,
            cwd=cwd,
            env=dict(env) if env is not None else _clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            start_new_session=new_session,
        )
    except FileNotFoundError as e:
        raise InfraError(f"{what}: command not found: {args[0]}") from e
    except subprocess.TimeoutExpired as e:
        out = e.stdout if isinstance(e.stdout, str) else (e.stdout or b"").decode(errors="replace")
        raise InfraError(f"{what}: timed out after {timeout}s\n{out[-4000:]}") from e
    if check and proc.returncode != 0:
        msg = f"{what} failed (exit {proc.returncode}): {' '.join(args)}\n{proc.stdout[-4000:]}"
        if log_hint is not None:
            msg += f"\n--- tail of {log_hint} ---\n{_log_tail(log_hint)}"
        raise InfraError(msg)
    return proc


def _run_coro(coro: Coroutine[Any, Any, _T]) -> _T:
    """asyncio.run(), also when called from inside a running event loop (own thread)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as e:
            box["error"] = e

    t = threading.Thread(target=target, name="localinfra-async", daemon=True)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    value: _T = box["value"]
    return value


def _port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _proc_cmdline(pid: int) -> list[str] | None:
    """Command line of a live (non-zombie) process, or None."""
    proc = Path(f"/proc/{pid}")
    if Path("/proc/self").exists():
        try:
            stat = (proc / "stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                return None
            raw = (proc / "cmdline").read_bytes()
        except (OSError, IndexError):
            return None
        if not raw:
            return None
        return [a.decode(errors="replace") for a in raw.rstrip(b"\0").split(b"\0")]
    try:  # no procfs (macOS): ask ps
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    out = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True)
    return out.stdout.split() or None


def _pid_matches(pid: int | None, *markers: str) -> bool:
    if not pid:
        return False
    cmd = _proc_cmdline(pid)
    if not cmd:
        return False
    joined = " ".join(cmd)
    return all(m in joined for m in markers)


def _rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


_HAS_C_UTF8: bool | None = None


def _has_c_utf8() -> bool:
    global _HAS_C_UTF8
    if _HAS_C_UTF8 is None:
        try:
            out = subprocess.run(
                ["locale", "-a"], capture_output=True, text=True, timeout=10
            ).stdout
            _HAS_C_UTF8 = any(x.strip().lower() in ("c.utf8", "c.utf-8") for x in out.splitlines())
        except (OSError, subprocess.SubprocessError):
            _HAS_C_UTF8 = False
    return _HAS_C_UTF8


def _apt_install(*packages: str) -> None:
    if not _is_root():
        raise InfraError(
            f"missing {' '.join(packages)}: install them (needs root), e.g. apt-get install {' '.join(packages)}"
        )
    env = _clean_env({"DEBIAN_FRONTEND": "noninteractive"})
    log.warning("installing %s with apt-get (one-time)", " ".join(packages))
    _run(["apt-get", "update"], what="apt-get update", env=env, timeout=900)
    _run(
        ["apt-get", "install", "-y", "--no-install-recommends", *packages],
        what=f"apt-get install {' '.join(packages)}",
        env=env,
        timeout=1800,
    )


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """Serialise up/down/clean across processes (e.g. parallel test workers)."""
    _mkdir(LOCAL_DIR)
    with open(LOCK_FILE, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# =========================================================================== Kafka


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        _apt_install("openjdk-17-jre-headless")
        java = shutil.which("java")
    if java is None:
        raise InfraError("no java on PATH (Kafka 4 needs a JDK/JRE 17+)")
    return java


def _pom_hash() -> str:
    return hashlib.sha256(POM_FILE.read_bytes()).hexdigest()


def _libs_ready() -> bool:
    return _read_text(KAFKA_STAMP) == _pom_hash() and any(KAFKA_LIBS.glob("kafka_2.13-*.jar"))


def kafka_version() -> str | None:
    """Version of the downloaded Kafka jars (None before the first download)."""
    for jar in KAFKA_LIBS.glob("kafka_2.13-*.jar"):
        return jar.name[len("kafka_2.13-") : -len(".jar")]
    return None


def _ensure_kafka_libs() -> bool:
    """Resolve the pom into .local/kafka/libs unless already done. True if downloaded."""
    if _libs_ready():
        return False
    mvn = shutil.which("mvn")
    if mvn is None:
        _apt_install("maven")
        mvn = shutil.which("mvn")
    if mvn is None:
        raise InfraError("mvn not found: install Maven (apt-get install maven)")
    _mkdir(KAFKA_DIR)
    _mkdir(M2_DIR)
    tmp = KAFKA_DIR / "libs.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    log.warning("resolving Kafka jars with Maven into %s (first run only)", KAFKA_LIBS)
    t0 = time.monotonic()
    _run(
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
        env=_clean_env(),
        timeout=1200,
    )
    if not any(tmp.glob("kafka_2.13-*.jar")):
        raise InfraError(f"Maven finished but no kafka_2.13 jar in {tmp}")
    shutil.rmtree(KAFKA_LIBS, ignore_errors=True)
    os.replace(tmp, KAFKA_LIBS)
    _write_atomic(KAFKA_STAMP, _pom_hash() + "\n")
    log.warning("Kafka jars ready (%.1fs)", time.monotonic() - t0)
    return True


def _new_cluster_id() -> str:
    # Same format as Kafka's Uuid.randomUuid().toString(): url-safe base64, no padding,
    # never starting with '-' (would look like a CLI flag).
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def _cluster_id() -> str:
    cid = _read_text(KAFKA_CLUSTER_ID)
    if not cid:
        cid = _new_cluster_id()
        _write_atomic(KAFKA_CLUSTER_ID, cid + "\n")
    return cid


def _render_kafka_props(port: int, controller_port: int) -> None:
    template = string.Template(KAFKA_TEMPLATE.read_text())
    text = template.substitute(
        broker_port=port,
        controller_port=controller_port,
        data_dir=str(KAFKA_DATA),
        node_id=KAFKA_NODE_ID,
    )
    _write_atomic(KAFKA_PROPS, text)


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
    _mkdir(KAFKA_DATA)
    cid = _cluster_id()
    log.info("formatting Kafka storage (cluster id %s)", cid)
    _run(
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


def _find_kafka_pid() -> int | None:
    """Pid of the broker started from our server.properties, or None (stale pid file removed)."""
    pid_text = _read_text(KAFKA_PID)
    if pid_text and pid_text.isdigit() and _pid_matches(int(pid_text), *_kafka_markers()):
        return int(pid_text)
    # Pid file missing/stale: look for an orphan of ours before declaring it dead.
    found = None
    proc = Path("/proc")
    if proc.is_dir():
        for entry in proc.iterdir():
            if entry.name.isdigit() and _pid_matches(int(entry.name), *_kafka_markers()):
                found = int(entry.name)
                break
    if found is not None:
        _write_atomic(KAFKA_PID, f"{found}\n")
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
    java = _java()
    _ensure_kafka_libs()
    _mkdir(LOGS_DIR)
    for p, name in ((port, "broker"), (controller_port, "controller")):
        if _port_open(p):
            raise InfraError(
                f"cannot start Kafka: {name} port 127.0.0.1:{p} is already in use by another process "
                f"(pass kafka_port=..., or kafka_bootstrap=... to use a running Kafka)"
            )
    _render_kafka_props(port, controller_port)
    _format_kafka_storage(java)
    _rotate_log(KAFKA_LOG)
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
            env=_clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    _CHILDREN[child.pid] = child
    _write_atomic(KAFKA_PID, f"{child.pid}\n")
    _write_atomic(
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


def _wait_kafka(bootstrap: str, pid: int | None, timeout: float = KAFKA_START_TIMEOUT) -> None:
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
                if not _pid_matches(pid, *_kafka_markers()):
                    KAFKA_PID.unlink(missing_ok=True)
                    raise InfraError(
                        f"Kafka (pid {pid}) exited during startup.\n--- tail of {KAFKA_LOG} ---\n{_log_tail(KAFKA_LOG)}"
                    )
            if _port_open(port, host or "127.0.0.1") and _run_coro(_kafka_answers(bootstrap)):
                return
            if time.monotonic() > deadline:
                raise InfraError(
                    f"Kafka did not answer on {bootstrap} within {timeout:.0f}s.\n"
                    f"--- tail of {KAFKA_LOG} ---\n{_log_tail(KAFKA_LOG)}"
                )
            time.sleep(0.5)
    finally:
        aiokafka_log.setLevel(old_level)


def _ensure_kafka(port: int, controller_port: int) -> tuple[bool, int]:
    """Start our broker unless running. Returns (started, pid); does not wait for readiness."""
    _mkdir(KAFKA_DIR)
    pid = _find_kafka_pid()
    if pid is not None:
        state = json.loads(_read_text(KAFKA_STATE) or "{}")
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


def _stop_kafka(timeout: float = KAFKA_STOP_TIMEOUT) -> bool:
    pid = _find_kafka_pid()
    if pid is None:
        return False
    log.info("stopping Kafka pid %s", pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not _pid_matches(pid, *_kafka_markers()):
            break
        time.sleep(0.2)
    else:
        log.warning("Kafka pid %s did not stop within %.0fs: SIGKILL", pid, timeout)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        for _ in range(50):
            _reap(pid)
            if not _pid_matches(pid, *_kafka_markers()):
                break
            time.sleep(0.1)
    _reap(pid)
    KAFKA_PID.unlink(missing_ok=True)
    return True


async def ensure_topics(
    bootstrap: str, topics: Iterable[Any], replication_factor: int = 1
) -> list[str]:
    """Create the topics that do not exist yet; return the names created.

    ``topics`` is any iterable of objects with ``.name``, ``.partitions`` and ``.config``
    (a mapping of topic configs, may be None/empty).  Existing topics are left alone,
    even if their partition count or config differ.  Waits until created topics show
    up in the metadata with leaders for all partitions.
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    wanted: dict[str, Any] = {}
    for t in topics:
        wanted.setdefault(t.name, t)
    if not wanted:
        return []
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [
            NewTopic(
                name=name,
                num_partitions=int(t.partitions),
                replication_factor=replication_factor,
                topic_configs={
                    str(k): _config_value(v) for k, v in (getattr(t, "config", None) or {}).items()
                },
            )
            for name, t in wanted.items()
            if name not in existing
        ]
        if not new:
            return []
        response = await admin.create_topics(new, timeout_ms=30000)
        created: list[str] = []
        errors: list[str] = []
        for entry in response.topic_errors:
            name, code = entry[0], entry[1]
            message = entry[2] if len(entry) > 2 else None
            if code == 0:
                created.append(name)
            elif code == 36:  # TOPIC_ALREADY_EXISTS: someone else was faster
                continue
            else:
                errors.append(f"{name}: error {code} {message or ''}".strip())
        if errors:
            raise InfraError("creating Kafka topics failed: " + "; ".join(errors))
        await _wait_topics_ready(admin, created)
        return created
    finally:
        await admin.close()


def _config_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


async def _wait_topics_ready(admin: Any, names: list[str], timeout: float = 30.0) -> None:
    if not names:
        return
    deadline = time.monotonic() + timeout
    while True:
        described = await admin.describe_topics(names)
        ok = {
            d["topic"]
            for d in described
            if d.get("error_code", 0) == 0
            and d.get("partitions")
            and all(p.get("leader", -1) >= 0 for p in d["partitions"])
        }
        if ok >= set(names):
            return
        if time.monotonic() > deadline:
            raise InfraError(f"topics not ready after {timeout:.0f}s: {sorted(set(names) - ok)}")
        await asyncio.sleep(0.2)


# ====================================================================== PostgreSQL


@dataclass(frozen=True)
class _PgPaths:
    bin: Path
    base: Path  # contains data/ and run/
    data: Path
    run: Path
    log: Path
    as_user: str | None  # OS user to run server binaries as (None: ourselves)


def _pg_bin() -> Path:
    candidates: list[Path] = []
    if os.environ.get("OMS_PG_BIN"):
        candidates.append(Path(os.environ["OMS_PG_BIN"]))
    candidates.append(PG_DEFAULT_BIN)

    def versions() -> list[Path]:
        found = []
        for p in Path("/usr/lib/postgresql").glob("*/bin"):
            with contextlib.suppress(ValueError):
                found.append((int(p.parent.name), p))
        return [p for _, p in sorted(found, reverse=True)]

    for c in [*candidates, *versions()]:
        if (c / "initdb").exists() and (c / "pg_ctl").exists():
            return c
    pg_config = shutil.which("pg_config")
    if pg_config:
        bindir = Path(
            subprocess.run([pg_config, "--bindir"], capture_output=True, text=True).stdout.strip()
        )
        if (bindir / "initdb").exists():
            return bindir
    _install_postgres()
    for c in [*candidates, *versions()]:
        if (c / "initdb").exists() and (c / "pg_ctl").exists():
            return c
    raise InfraError(
        "PostgreSQL server binaries not found (set OMS_PG_BIN to the folder with initdb/pg_ctl)"
    )


def _install_postgres() -> None:
    """apt-get install postgresql, then stop and disable Debian's own cluster(s)."""
    _apt_install("postgresql")
    if shutil.which("pg_lsclusters") is None:
        return
    out = _run(["pg_lsclusters", "--no-header"], what="pg_lsclusters", check=False).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue
        version, name, status = parts[0], parts[1], parts[3]
        if status.startswith("online"):
            log.warning("stopping Debian's PostgreSQL cluster %s/%s", version, name)
            _run(["pg_ctlcluster", version, name, "stop"], what="pg_ctlcluster stop", check=False)
        start_conf = Path(f"/etc/postgresql/{version}/{name}/start.conf")
        if start_conf.exists():
            start_conf.write_text("manual\n")


def _pg_uid_gid() -> tuple[int, int]:
    import pwd

    try:
        pw = pwd.getpwnam(PG_OS_USER)
    except KeyError as e:
        raise InfraError(
            f"OS user {PG_OS_USER!r} does not exist (install Debian's postgresql package)"
        ) from e
    return pw.pw_uid, pw.pw_gid


def _pg_can_reach(path: Path) -> bool:
    proc = subprocess.run(
        ["runuser", "-u", PG_OS_USER, "--", "test", "-x", str(path)],
        cwd="/",
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )
    return proc.returncode == 0


def _pg_paths(create: bool = True) -> _PgPaths:
    """Where the cluster lives; creates folders with the right owners when create=True."""
    root = _is_root()
    located = _read_text(PG_LOCATION)
    if located:
        base = Path(located)
    elif not root:
        base = PG_DIR
    else:
        if not create:
            base = PG_DIR
        else:
            _mkdir(PG_DIR)
            for d in (LOCAL_DIR, PG_DIR):  # our own folders: make them traversable
                d.chmod(d.stat().st_mode | 0o111)
            if _pg_can_reach(PG_DIR):
                base = PG_DIR
            else:
                digest = hashlib.sha1(str(REPO_ROOT).encode()).hexdigest()[:12]
                base = Path(f"/var/tmp/oms-pg-{digest}")
                log.warning(
                    "OS user %s cannot traverse %s; keeping the PostgreSQL cluster in %s",
                    PG_OS_USER,
                    PG_DIR,
                    base,
                )
            if base != PG_DIR:
                _write_atomic(PG_LOCATION, str(base) + "\n")
    log_path = PG_LOG if base == PG_DIR else base / "postgres.log"
    paths = _PgPaths(
        bin=_pg_bin()
        if create
        else (
            PG_DEFAULT_BIN if not os.environ.get("OMS_PG_BIN") else Path(os.environ["OMS_PG_BIN"])
        ),
        base=base,
        data=base / "data",
        run=base / "run",
        log=log_path,
        as_user=PG_OS_USER if root else None,
    )
    if create:
        _prepare_pg_dirs(paths)
    return paths


def _prepare_pg_dirs(p: _PgPaths) -> None:
    _mkdir(PG_DIR)
    _mkdir(LOGS_DIR)
    _mkdir(p.base)
    for d in (p.data, p.run):
        d.mkdir(parents=True, exist_ok=True)
    p.data.chmod(0o700)
    p.log.touch(exist_ok=True)
    if p.log != PG_LOG:
        with contextlib.suppress(OSError):
            if PG_LOG.is_symlink() or not PG_LOG.exists():
                PG_LOG.unlink(missing_ok=True)
                PG_LOG.symlink_to(p.log)
    if p.as_user:
        uid, gid = _pg_uid_gid()
        LOGS_DIR.chmod(LOGS_DIR.stat().st_mode | 0o111)
        p.base.chmod(p.base.stat().st_mode | 0o111)
        if p.data.stat().st_uid != uid:
            for dirpath, dirnames, filenames in os.walk(p.data):
                os.chown(dirpath, uid, gid)
                for n in (*dirnames, *filenames):
                    os.lchown(os.path.join(dirpath, n), uid, gid)
        os.chown(p.run, uid, gid)
        os.chown(p.log, uid, gid)
        p.log.chmod(0o640)


def _pg_cmd(p: _PgPaths, tool: str, *args: str | os.PathLike[str]) -> list[str]:
    cmd = [str(p.bin / tool), *(str(a) for a in args)]
    if p.as_user:
        cmd = ["runuser", "-u", p.as_user, "--", *cmd]
    return cmd


def _pg_initialized(p: _PgPaths) -> bool:
    return (p.data / "PG_VERSION").exists()


def _pg_superuser_password() -> str:
    pw = _read_text(PG_SUPERUSER_PASSWORD)
    if not pw:
        raise InfraError(
            f"{PG_SUPERUSER_PASSWORD} is missing but the cluster exists: cannot log in as {PG_SUPERUSER}. "
            f"Run clean() (drops the local data) and up() again."
        )
    return pw


def _pg_init(p: _PgPaths) -> None:
    password = secrets.token_urlsafe(24)
    _write_private(PG_SUPERUSER_PASSWORD, password + "\n")
    pwfile = p.base / ".initdb-pwfile"
    _write_private(pwfile, password + "\n")
    try:
        if p.as_user:
            uid, gid = _pg_uid_gid()
            os.chown(pwfile, uid, gid)
        log.info("initdb %s", p.data)
        _run(
            _pg_cmd(
                p,
                "initdb",
                "-D",
                p.data,
                "-U",
                PG_SUPERUSER,
                "--auth-host=scram-sha-256",
                "--auth-local=scram-sha-256",
                f"--pwfile={pwfile}",
                "--encoding=UTF8",
                f"--locale={'C.UTF-8' if _has_c_utf8() else 'C'}",
                "--data-checksums",
            ),
            what="initdb",
            cwd=p.base,
            timeout=300,
        )
    finally:
        pwfile.unlink(missing_ok=True)


def _pg_write_conf(p: _PgPaths, port: int) -> None:
    """Our settings live in oms.conf, included from postgresql.conf (rewritten each start)."""
    conf = "\n".join(
        [
            "# Written by shared/ops/localinfra.py on every start; do not edit.",
            "listen_addresses = '127.0.0.1'",
            f"port = {port}",
            f"unix_socket_directories = '{p.run}'",
            "max_connections = 200",
            "shared_buffers = 256MB",
            "fsync = on",
            "synchronous_commit = on",
            "full_page_writes = on",
            "password_encryption = 'scram-sha-256'",
            "timezone = 'UTC'",
            "log_timezone = 'UTC'",
            "logging_collector = off",
            "log_line_prefix = '%m [%p] %q%u@%d '",
            "",
        ]
    )
    oms_conf = p.data / "oms.conf"
    _write_atomic(oms_conf, conf)
    main_conf = p.data / "postgresql.conf"
    text = main_conf.read_text()
    if "include_if_exists = 'oms.conf'" not in text:
        main_conf.write_text(
            text.rstrip("\n") + "\n\n# local dev settings\ninclude_if_exists = 'oms.conf'\n"
        )
    if p.as_user:
        uid, gid = _pg_uid_gid()
        os.chown(oms_conf, uid, gid)
        oms_conf.chmod(0o600)


def _pg_postmaster(p: _PgPaths) -> tuple[int | None, int | None]:
    """(pid, port) of the running postmaster for our data dir, from postmaster.pid."""
    try:
        lines = (p.data / "postmaster.pid").read_text().splitlines()
    except OSError:
        return None, None
    if not lines or not lines[0].strip().isdigit():
        return None, None
    pid = int(lines[0])
    if not _pid_matches(pid, str(p.data)):
        return None, None
    port = int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None
    return pid, port


def _pg_running(p: _PgPaths) -> bool:
    # Not `pg_ctl status`: it uses kill(pid, 0), which also succeeds for a killed
    # postmaster that is still a zombie waiting to be reaped by init.
    return _pg_postmaster(p)[0] is not None


def _pg_start(p: _PgPaths, attempts: int = 4) -> None:
    """pg_ctl start, retried briefly: after a kill -9 the old postmaster may linger as a
    zombie (postmaster.pid "in use") or its backends may still hold shared memory."""
    for attempt in range(1, attempts + 1):
        try:
            _run(
                _pg_cmd(
                    p,
                    "pg_ctl",
                    "-D",
                    p.data,
                    "-l",
                    p.log,
                    "-w",
                    "-t",
                    str(PG_START_TIMEOUT),
                    "start",
                ),
                what="pg_ctl start",
                cwd=p.base,
                timeout=PG_START_TIMEOUT + 30,
                new_session=True,
                log_hint=p.log,
            )
            return
        except InfraError:
            if attempt == attempts or _pg_running(p):
                raise
            log.info("pg_ctl start failed (attempt %d), retrying", attempt)
            time.sleep(2.0 * attempt)


def _ensure_postgres(port: int) -> tuple[str, bool]:
    """Initialise/start the local cluster. Returns (admin URL to db 'postgres', started)."""
    p = _pg_paths(create=True)
    if not _pg_initialized(p):
        _pg_init(p)
    password = _pg_superuser_password()
    started = False
    if _pg_running(p):
        _, running_port = _pg_postmaster(p)
        if running_port is not None and running_port != port:
            raise InfraError(
                f"local PostgreSQL already running on port {running_port}, asked for {port}: run down() first"
            )
    else:
        if _port_open(port):
            raise InfraError(
                f"cannot start PostgreSQL: 127.0.0.1:{port} is already in use by another process "
                f"(pass pg_port=..., or database_url=... to use a running PostgreSQL)"
            )
        _pg_write_conf(p, port)
        _rotate_log(p.log)
        log.info("starting PostgreSQL on 127.0.0.1:%s", port)
        _pg_start(p)
        started = True
    return _local_pg_url(p, port, password), started


_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes on Linux, with room for the NUL


def _local_pg_url(p: _PgPaths, port: int, password: str) -> str:
    """The URL local processes use: the cluster's Unix socket when its path fits (cheaper per
    statement than TCP on loopback, and every statement counts), else 127.0.0.1."""
    credentials = f"{PG_SUPERUSER}:{quote(password, safe='')}"
    socket = p.run / f".s.PGSQL.{port}"
    if len(str(socket)) <= _SOCKET_PATH_MAX:
        return f"postgresql://{credentials}@/postgres?host={quote(str(p.run))}&port={port}"
    return f"postgresql://{credentials}@127.0.0.1:{port}/postgres"


def _stop_postgres(mode: str = "fast") -> bool:
    try:
        p = _pg_paths(create=False)
    except InfraError:
        return False
    if not _pg_initialized(p):
        return False
    if not p.bin.exists():
        p = dataclasses.replace(p, bin=_pg_bin())
    if not _pg_running(p):
        return False
    log.info("stopping PostgreSQL (%s, %s)", p.data, mode)
    _run(
        _pg_cmd(p, "pg_ctl", "-D", p.data, "-m", mode, "-w", "-t", "120", "stop"),
        what=f"pg_ctl stop -m {mode}",
        cwd=p.base,
        timeout=150,
        log_hint=p.log,
    )
    return True


# ------------------------------------------------------------ database provisioning


def service_password(service: str) -> str:
    """Deterministic dev password of a service role (see module docstring)."""
    return f"{service}-dev-password"


def _normalise_url(url: str) -> str:
    """postgres:// / postgresql+driver:// -> postgresql:// (what asyncpg accepts)."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in ("postgres", "postgresql"):
        raise ValueError(f"not a PostgreSQL URL: {url!r}")
    return urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, parts.fragment))


def with_database(url: str, database: str) -> str:
    """The same server URL (TCP or Unix socket), another database."""
    parts = urlsplit(_normalise_url(url))
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(database, safe=""), parts.query, ""))


def _dsn(admin_url: str, user: str, password: str, database: str) -> str:
    parts = urlsplit(_normalise_url(admin_url))
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(("postgresql", netloc, "/" + quote(database, safe=""), parts.query, ""))


async def _sql(conn: Any, template: str, *args: str) -> None:
    """Run a utility statement built server-side with format() (%I identifiers, %L literals)."""
    placeholders = ", ".join(f"${i + 1}::text" for i in range(len(args)))
    statement = await conn.fetchval(f"SELECT format('{template}', {placeholders})", *args)
    await conn.execute(statement)


async def _connect(url: str, wait: float = 30.0) -> Any:
    """asyncpg.connect, waiting while the server says it is starting up / recovering."""
    import asyncpg

    deadline = time.monotonic() + wait
    while True:
        try:
            return await asyncpg.connect(url, timeout=30)
        except asyncpg.CannotConnectNowError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def provision_database_async(
    admin_url: str,
    database: str = DEFAULT_DATABASE,
    services: Iterable[str] = SERVICES,
    *,
    passwords: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Create ``database`` and one role+schema per service on any PostgreSQL (idempotent).

    ``admin_url`` must be a role that can create databases and roles (superuser in
    practice); any database in it works (if it does not exist, ``postgres`` is used).
    Returns ``{service: "postgresql://<service>:<pw>@<admin host>:<admin port>/<database>"}``.
    """
    import asyncpg

    services = list(dict.fromkeys(services))
    for name in (database, *services):
        if not _IDENT.fullmatch(name):
            raise ValueError(f"invalid name {name!r}: use lowercase letters, digits and _")
    pw_of = {s: (passwords or {}).get(s) or service_password(s) for s in services}
    admin_url = _normalise_url(admin_url)

    try:
        conn = await _connect(admin_url)
    except asyncpg.InvalidCatalogNameError:
        conn = await _connect(with_database(admin_url, "postgres"))
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _PROVISION_LOCK_KEY)
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database):
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):  # concurrent creator
                await _sql(conn, "CREATE DATABASE %I", database)
        for svc in services:
            exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", svc)
            verb = "ALTER" if exists else "CREATE"
            try:
                await _sql(
                    conn,
                    verb
                    + " ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD %L",
                    svc,
                    pw_of[svc],
                )
            except asyncpg.DuplicateObjectError:  # created concurrently by another server user
                await _sql(conn, "ALTER ROLE %I WITH LOGIN PASSWORD %L", svc, pw_of[svc])
            await _sql(conn, "ALTER ROLE %I SET search_path = %I", svc, svc)
    finally:
        with contextlib.suppress(Exception):
            await conn.execute("SELECT pg_advisory_unlock($1)", _PROVISION_LOCK_KEY)
        await conn.close()

    conn = await _connect(with_database(admin_url, database))
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _PROVISION_LOCK_KEY)
        await _sql(conn, "REVOKE ALL ON DATABASE %I FROM PUBLIC", database)
        await conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
        for svc in services:
            owner = await conn.fetchval(
                "SELECT r.rolname FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner WHERE n.nspname = $1",
                svc,
            )
            if owner is None:
                await _sql(conn, "CREATE SCHEMA %I AUTHORIZATION %I", svc, svc)
            elif owner != svc:
                await _sql(conn, "ALTER SCHEMA %I OWNER TO %I", svc, svc)
            await _sql(conn, "REVOKE ALL ON SCHEMA %I FROM PUBLIC", svc)
            await _sql(conn, "GRANT CONNECT ON DATABASE %I TO %I", database, svc)
    finally:
        with contextlib.suppress(Exception):
            await conn.execute("SELECT pg_advisory_unlock($1)", _PROVISION_LOCK_KEY)
        await conn.close()

    return {svc: _dsn(admin_url, svc, pw_of[svc], database) for svc in services}


def provision_database(
    admin_url: str,
    database: str = DEFAULT_DATABASE,
    services: Iterable[str] = SERVICES,
    *,
    passwords: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Sync wrapper of :func:`provision_database_async` (also usable inside a running loop)."""
    return _run_coro(provision_database_async(admin_url, database, services, passwords=passwords))


# ====================================================================== public API


def crash_kafka(kafka_port: int = 9092, kafka_controller_port: int | None = None) -> None:
    """For chaos runs: SIGKILL the local broker (no clean shutdown), start it again and wait
    until it answers."""
    controller_port = kafka_controller_port or kafka_port + 1
    with _locked():
        pid = _find_kafka_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _stop_kafka()
        # A killed JVM leaves /proc before its sockets are closed: wait for the ports.
        deadline = time.monotonic() + 60
        while (_port_open(kafka_port) or _port_open(controller_port)) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.2)
        _, pid = _ensure_kafka(kafka_port, controller_port)
        _wait_kafka(f"127.0.0.1:{kafka_port}", pid)


def crash_postgres(pg_port: int = 5433) -> None:
    """For chaos runs: stop the local cluster as a crash would (`pg_ctl -m immediate`: every
    backend killed, WAL recovery at the next start), then start it again."""
    with _locked():
        _stop_postgres(mode="immediate")
        _ensure_postgres(pg_port)


def up(
    *,
    kafka_bootstrap: str | None = None,
    database_url: str | None = None,
    services: Iterable[str] = SERVICES,
    kafka_port: int = 9092,
    pg_port: int = 5433,
    database: str = DEFAULT_DATABASE,
    kafka_controller_port: int | None = None,
) -> Infra:
    """Bring up (or reuse) Kafka and PostgreSQL and provision the service roles.

    ``kafka_bootstrap`` given: no local Kafka is started, that one is used as is.
    ``database_url`` given: no local PostgreSQL; it must be an admin (superuser) URL,
    used to create ``database`` and the roles.  Idempotent; data survives down()/up().
    """
    services = tuple(services)
    controller_port = kafka_controller_port or kafka_port + 1
    started: list[str] = []
    with _locked():
        kafka_pid: int | None = None
        if kafka_bootstrap is None:
            kafka_started, kafka_pid = _ensure_kafka(kafka_port, controller_port)
            if kafka_started:
                started.append("kafka")
            bootstrap = f"127.0.0.1:{kafka_port}"
        else:
            bootstrap = kafka_bootstrap

        # PostgreSQL starts while the JVM boots.
        if database_url is None:
            admin_base, pg_started = _ensure_postgres(pg_port)
            if pg_started:
                started.append("postgres")
        else:
            admin_base = database_url
        service_urls = provision_database(admin_base, database, services)

        if kafka_bootstrap is None:
            _wait_kafka(bootstrap, kafka_pid)
    return Infra(
        kafka_bootstrap=bootstrap,
        admin_database_url=with_database(admin_base, database),
        service_database_urls=service_urls,
        started=tuple(started),
    )


def down() -> None:
    """Stop what this module started (Kafka by pid file, PostgreSQL by pg_ctl -m fast). Idempotent."""
    with _locked():
        _stop_kafka()
        _stop_postgres()


def status() -> dict[str, Any]:
    """What is running, ports, pids, data dirs (no secrets)."""
    kafka_pid = _find_kafka_pid() if KAFKA_DIR.exists() else None
    state = json.loads(_read_text(KAFKA_STATE) or "{}")
    kafka: dict[str, Any] = {
        "running": kafka_pid is not None,
        "pid": kafka_pid,
        "rss_kib": _rss_kib(kafka_pid) if kafka_pid else None,
        "bootstrap": f"127.0.0.1:{state['port']}" if state.get("port") else None,
        "port": state.get("port"),
        "controller_port": state.get("controller_port"),
        "version": kafka_version(),
        "libs_ready": KAFKA_LIBS.exists() and _libs_ready(),
        "formatted": (KAFKA_DATA / "meta.properties").exists(),
        "cluster_id": _read_text(KAFKA_CLUSTER_ID),
        "data_dir": str(KAFKA_DATA),
        "log": str(KAFKA_LOG),
    }
    p = _pg_paths(create=False)
    pg_pid, pg_port = _pg_postmaster(p)
    pg_rss = None
    if pg_pid:
        pg_rss = 0
        children = [pg_pid]
        with contextlib.suppress(OSError):
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    with contextlib.suppress(OSError, IndexError, ValueError):
                        if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pg_pid:
                            children.append(int(entry.name))
        pg_rss = sum(_rss_kib(c) or 0 for c in children)
    postgres: dict[str, Any] = {
        "running": pg_pid is not None,
        "pid": pg_pid,
        "rss_kib_total": pg_rss,
        "port": pg_port,
        "url_without_password": f"postgresql://{PG_SUPERUSER}@127.0.0.1:{pg_port}/{DEFAULT_DATABASE}"
        if pg_port
        else None,
        "initialized": _pg_initialized(p),
        "data_dir": str(p.data),
        "socket_dir": str(p.run),
        "log": str(p.log),
        "bin": str(p.bin),
        "run_as": p.as_user,
        "superuser": PG_SUPERUSER,
        "superuser_password_file": str(PG_SUPERUSER_PASSWORD),
    }
    return {"local_dir": str(LOCAL_DIR), "kafka": kafka, "postgres": postgres}


def clean() -> None:
    """down(), then delete Kafka and PostgreSQL data (keeps .local/kafka/libs and .local/m2)."""
    with _locked():
        _stop_kafka()
        _stop_postgres()
        located = _read_text(PG_LOCATION)
        for path in (
            KAFKA_DATA,
            KAFKA_CLUSTER_ID,
            KAFKA_PROPS,
            KAFKA_PID,
            KAFKA_STATE,
            KAFKA_DIR / "libs.tmp",
            PG_DIR,
            LOGS_DIR,
            *([Path(located)] if located else []),
        ):
            if path.is_symlink() or path.is_file():
                path.unlink(missing_ok=True)
            elif path.exists():
                shutil.rmtree(path)


# ============================================================================= CLI


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared.ops.localinfra", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start/reuse Kafka and PostgreSQL, provision roles")
    p_up.add_argument("--kafka-bootstrap", default=os.environ.get("OMS_KAFKA_BOOTSTRAP"))
    p_up.add_argument(
        "--database-url",
        default=os.environ.get("OMS_DATABASE_URL"),
        help="admin URL of an existing PostgreSQL",
    )
    p_up.add_argument("--kafka-port", type=int, default=9092)
    p_up.add_argument("--pg-port", type=int, default=5433)
    p_up.add_argument(
        "--services", default=",".join(SERVICES), help="comma-separated service names"
    )
    sub.add_parser("down", help="stop what up started")
    sub.add_parser("status", help="show what is running")
    sub.add_parser("clean", help="down and delete local data (keeps downloaded jars)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("asyncio").setLevel(logging.WARNING)
    try:
        if args.command == "up":
            result: Any = dataclasses.asdict(
                up(
                    kafka_bootstrap=args.kafka_bootstrap,
                    database_url=args.database_url,
                    services=[s for s in args.services.split(",") if s],
                    kafka_port=args.kafka_port,
                    pg_port=args.pg_port,
                )
            )
        elif args.command == "down":
            down()
            result = status()
        elif args.command == "status":
            result = status()
        else:
            clean()
            result = status()
    except InfraError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
