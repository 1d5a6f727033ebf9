"""The local PostgreSQL cluster, on the operating system's server binaries.

Debian's server binaries (``/usr/lib/postgresql/15/bin``, or ``$OMS_PG_BIN``, or the newest
``/usr/lib/postgresql/*/bin``); if none and we are root, ``apt-get install postgresql`` and
Debian's own ``main`` cluster is stopped and set to ``manual``.  Port ``pg_port`` (5433),
``listen_addresses=127.0.0.1``, unix socket in ``<pg base>/run``, ``max_connections=200``,
``shared_buffers=256MB``, ``fsync=on``, ``synchronous_commit=on``, ``full_page_writes=on``, data
checksums enabled.

Auth: ``scram-sha-256`` for every connection (host *and* local socket).  The superuser is
``postgres`` with a random password generated at initdb time and stored in
``.local/pg/superuser.password`` (mode 0600).

initdb/postgres refuse to run as root, so as root they run as the ``postgres`` OS user
(``runuser -u postgres --``); the data and socket folders are chowned to it.  That user must be
able to traverse every parent of ``.local/pg``.  We never chmod anything outside ``.local``: if
``runuser -u postgres -- test -x .local/pg`` fails (e.g. the repo is under a 0700 home
directory), the cluster goes to ``/var/tmp/oms-pg-<sha1(repo path)[:12]>`` instead, the choice
is recorded in ``.local/pg/location`` (so data never silently "moves"), the server log is
written there and symlinked as ``.local/logs/postgres.log``.  Not root: everything runs as the
current user directly in ``.local/pg`` (``data/``, ``run/``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from devtools.localinfra.provisioning import DEFAULT_DATABASE
from devtools.processes import (
    LOCAL_DIR,
    LOGS_DIR,
    REPO_ROOT,
    InfraError,
    apt_install,
    has_c_utf8,
    is_root,
    mkdir,
    pid_matches,
    port_open,
    read_text,
    rotate_log,
    rss_kib,
    run,
    write_atomic,
    write_private,
)

log = logging.getLogger(__name__)

PG_DIR = LOCAL_DIR / "pg"
PG_SUPERUSER_PASSWORD = PG_DIR / "superuser.password"
PG_LOCATION = PG_DIR / "location"
PG_LOG = LOGS_DIR / "postgres.log"

PG_SUPERUSER = "postgres"
PG_OS_USER = "postgres"
PG_DEFAULT_BIN = Path("/usr/lib/postgresql/15/bin")
PG_START_TIMEOUT = 60


@dataclass(frozen=True)
class PgPaths:
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
    apt_install("postgresql")
    if shutil.which("pg_lsclusters") is None:
        return
    out = run(["pg_lsclusters", "--no-header"], what="pg_lsclusters", check=False).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue
        version, name, status = parts[0], parts[1], parts[3]
        if status.startswith("online"):
            log.warning("stopping Debian's PostgreSQL cluster %s/%s", version, name)
            run(["pg_ctlcluster", version, name, "stop"], what="pg_ctlcluster stop", check=False)
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


def pg_paths(create: bool = True) -> PgPaths:
    """Where the cluster lives; creates folders with the right owners when create=True."""
    root = is_root()
    located = read_text(PG_LOCATION)
    if located:
        base = Path(located)
    elif not root:
        base = PG_DIR
    else:
        if not create:
            base = PG_DIR
        else:
            mkdir(PG_DIR)
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
                write_atomic(PG_LOCATION, str(base) + "\n")
    log_path = PG_LOG if base == PG_DIR else base / "postgres.log"
    paths = PgPaths(
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


def _prepare_pg_dirs(p: PgPaths) -> None:
    mkdir(PG_DIR)
    mkdir(LOGS_DIR)
    mkdir(p.base)
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


def _pg_cmd(p: PgPaths, tool: str, *args: str | os.PathLike[str]) -> list[str]:
    cmd = [str(p.bin / tool), *(str(a) for a in args)]
    if p.as_user:
        cmd = ["runuser", "-u", p.as_user, "--", *cmd]
    return cmd


def pg_initialized(p: PgPaths) -> bool:
    return (p.data / "PG_VERSION").exists()


def _pg_superuser_password() -> str:
    pw = read_text(PG_SUPERUSER_PASSWORD)
    if not pw:
        raise InfraError(
            f"{PG_SUPERUSER_PASSWORD} is missing but the cluster exists: cannot log in as {PG_SUPERUSER}. "
            f"Run clean() (drops the local data) and up() again."
        )
    return pw


def _pg_init(p: PgPaths) -> None:
    password = secrets.token_urlsafe(24)
    write_private(PG_SUPERUSER_PASSWORD, password + "\n")
    pwfile = p.base / ".initdb-pwfile"
    write_private(pwfile, password + "\n")
    try:
        if p.as_user:
            uid, gid = _pg_uid_gid()
            os.chown(pwfile, uid, gid)
        log.info("initdb %s", p.data)
        run(
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
                f"--locale={'C.UTF-8' if has_c_utf8() else 'C'}",
                "--data-checksums",
            ),
            what="initdb",
            cwd=p.base,
            timeout=300,
        )
    finally:
        pwfile.unlink(missing_ok=True)


def _pg_write_conf(p: PgPaths, port: int) -> None:
    """Our settings live in oms.conf, included from postgresql.conf (rewritten each start)."""
    conf = "\n".join(
        [
            "# Written by devtools/localinfra/postgres.py on every start; do not edit.",
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
    write_atomic(oms_conf, conf)
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


def pg_postmaster(p: PgPaths) -> tuple[int | None, int | None]:
    """(pid, port) of the running postmaster for our data dir, from postmaster.pid."""
    try:
        lines = (p.data / "postmaster.pid").read_text().splitlines()
    except OSError:
        return None, None
    if not lines or not lines[0].strip().isdigit():
        return None, None
    pid = int(lines[0])
    if not pid_matches(pid, str(p.data)):
        return None, None
    port = int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None
    return pid, port


def _pg_running(p: PgPaths) -> bool:
    # Not `pg_ctl status`: it uses kill(pid, 0), which also succeeds for a killed
    # postmaster that is still a zombie waiting to be reaped by init.
    return pg_postmaster(p)[0] is not None


def _pg_start(p: PgPaths, attempts: int = 4) -> None:
    """pg_ctl start, retried briefly: after a kill -9 the old postmaster may linger as a
    zombie (postmaster.pid "in use") or its backends may still hold shared memory."""
    for attempt in range(1, attempts + 1):
        try:
            run(
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


def ensure_postgres(port: int) -> tuple[str, bool]:
    """Initialise/start the local cluster. Returns (admin URL to db 'postgres', started)."""
    p = pg_paths(create=True)
    if not pg_initialized(p):
        _pg_init(p)
    password = _pg_superuser_password()
    started = False
    if _pg_running(p):
        _, running_port = pg_postmaster(p)
        if running_port is not None and running_port != port:
            raise InfraError(
                f"local PostgreSQL already running on port {running_port}, asked for {port}: run down() first"
            )
    else:
        if port_open(port):
            raise InfraError(
                f"cannot start PostgreSQL: 127.0.0.1:{port} is already in use by another process "
                f"(pass pg_port=..., or database_url=... to use a running PostgreSQL)"
            )
        _pg_write_conf(p, port)
        rotate_log(p.log)
        log.info("starting PostgreSQL on 127.0.0.1:%s", port)
        _pg_start(p)
        started = True
    return _local_pg_url(p, port, password), started


_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes on Linux, with room for the NUL


def _local_pg_url(p: PgPaths, port: int, password: str) -> str:
    """The URL local processes use: the cluster's Unix socket when its path fits (cheaper per
    statement than TCP on loopback, and every statement counts), else 127.0.0.1."""
    credentials = f"{PG_SUPERUSER}:{quote(password, safe='')}"
    socket = p.run / f".s.PGSQL.{port}"
    if len(str(socket)) <= _SOCKET_PATH_MAX:
        return f"postgresql://{credentials}@/postgres?host={quote(str(p.run))}&port={port}"
    return f"postgresql://{credentials}@127.0.0.1:{port}/postgres"


def stop_postgres(mode: str = "fast") -> bool:
    try:
        p = pg_paths(create=False)
    except InfraError:
        return False
    if not pg_initialized(p):
        return False
    if not p.bin.exists():
        p = dataclasses.replace(p, bin=_pg_bin())
    if not _pg_running(p):
        return False
    log.info("stopping PostgreSQL (%s, %s)", p.data, mode)
    run(
        _pg_cmd(p, "pg_ctl", "-D", p.data, "-m", mode, "-w", "-t", "120", "stop"),
        what=f"pg_ctl stop -m {mode}",
        cwd=p.base,
        timeout=150,
        log_hint=p.log,
    )
    return True


def status() -> dict[str, Any]:
    """The cluster's part of `localinfra.status()` (no secrets)."""
    p = pg_paths(create=False)
    pg_pid, pg_port = pg_postmaster(p)
    pg_rss = None
    if pg_pid:
        children = [pg_pid]
        with contextlib.suppress(OSError):
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    with contextlib.suppress(OSError, IndexError, ValueError):
                        if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pg_pid:
                            children.append(int(entry.name))
        pg_rss = sum(rss_kib(c) or 0 for c in children)
    return {
        "running": pg_pid is not None,
        "pid": pg_pid,
        "rss_kib_total": pg_rss,
        "port": pg_port,
        "url_without_password": f"postgresql://{PG_SUPERUSER}@127.0.0.1:{pg_port}/{DEFAULT_DATABASE}"
        if pg_port
        else None,
        "initialized": pg_initialized(p),
        "data_dir": str(p.data),
        "socket_dir": str(p.run),
        "log": str(p.log),
        "bin": str(p.bin),
        "run_as": p.as_user,
        "superuser": PG_SUPERUSER,
        "superuser_password_file": str(PG_SUPERUSER_PASSWORD),
    }
