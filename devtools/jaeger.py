"""Local Jaeger v2: built from the Go module proxy, run detached on loopback.

Everything lives in ``<repo>/.local/`` (git-ignored)::

    .local/
      go/                        GOPATH, GOMODCACHE (go/pkg/mod) and GOCACHE (go/cache) of the build
      jaeger/bin/jaeger          the binary
      jaeger/bin/jaeger.stamp    JSON: what the binary was built from (see ``_expected_inputs``)
      jaeger/jaeger.pid          pid of the Jaeger we started
      logs/jaeger.log, logs/jaeger-build.log

Decisions
---------
Build
    ``deploy/local/jaeger/go.mod`` pins ``github.com/jaegertracing/jaeger`` and declares
    ``cmd/jaeger`` as a ``tool``; its ``go.sum`` started from Jaeger's own, so every module is
    checked against the hashes Jaeger was released with.  Jaeger tags each release twice (v1.N
    and v2.M on one commit) and its module path has no ``/v2``, so the proxy serves Jaeger v2
    under the v1 tag (v1.76.0 is Jaeger v2.13.0); the v2 name is read from the module's
    CHANGELOG and linked into the binary so ``jaeger version`` tells it.  ``go build`` from that
    module (not ``go install pkg@version``, which refuses modules with ``replace`` directives)
    with ``CGO_ENABLED=0 -trimpath -ldflags=-s -w``, GOPATH/GOMODCACHE/GOCACHE under
    ``.local/go`` (``-modcacherw`` so ``rm -rf .local`` works).  Skipped while the stamp matches
    the sha256 of go.mod + go.sum + this recipe's version.  The Go toolchain named by go.mod
    (>= 1.24) must be on PATH.

    The Jaeger UI (a separate JavaScript project, not part of the Go module) is not embedded:
    http://127.0.0.1:16686/ serves Jaeger's placeholder page, and the query API under
    ``/api/`` (services, traces, operations, dependencies) works in full.

Run
    ``deploy/local/jaeger/config.yaml``: in-memory storage, OTLP on 127.0.0.1:4317 (gRPC) and
    127.0.0.1:4318 (HTTP), UI/API on 127.0.0.1:16686.  Started in its own session, output
    appended to ``.local/logs/jaeger.log``; ready when ``/api/services`` answers and both OTLP
    ports accept connections.  A pid is only trusted while ``/proc/<pid>/cmdline`` names our
    binary.  If another Jaeger already serves those ports (e.g. from another checkout),
    ``start()`` reuses it rather than failing; ``stop()`` only ever stops the one we started.

CLI: ``python -m devtools.jaeger build|start|stop|status`` prints JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from devtools.gobuild import go_env, read_stamp, run_go, write_stamp
from devtools.processes import (
    LOCAL_DIR,
    LOGS_DIR,
    RECIPES_DIR,
    InfraError,
    json_command,
    locked,
    log_tail,
    pid_matches,
    port_open,
    rss_kib,
)

BUILD_MODULE_DIR = RECIPES_DIR / "jaeger"
GO_MOD = BUILD_MODULE_DIR / "go.mod"
GO_SUM = BUILD_MODULE_DIR / "go.sum"
CONFIG_FILE = BUILD_MODULE_DIR / "config.yaml"

JAEGER_DIR = LOCAL_DIR / "jaeger"
BIN_DIR = JAEGER_DIR / "bin"
BINARY = BIN_DIR / "jaeger"
STAMP = BIN_DIR / "jaeger.stamp"
PID_FILE = JAEGER_DIR / "jaeger.pid"
LOCK_FILE = JAEGER_DIR / ".lock"
LOG_FILE = LOGS_DIR / "jaeger.log"
BUILD_LOG = LOGS_DIR / "jaeger-build.log"

JAEGER_MODULE = "github.com/jaegertracing/jaeger"
JAEGER_PACKAGE = f"{JAEGER_MODULE}/cmd/jaeger"
# Bump when the build command changes, so existing binaries are rebuilt.
RECIPE_VERSION = "1"

HOST = "127.0.0.1"
QUERY_PORT = 16686
OTLP_GRPC_PORT = 4317
OTLP_HTTP_PORT = 4318
UI_URL = f"http://{HOST}:{QUERY_PORT}/"
OTLP_HTTP_ENDPOINT = f"http://{HOST}:{OTLP_HTTP_PORT}"
OTLP_GRPC_ENDPOINT = f"http://{HOST}:{OTLP_GRPC_PORT}"

START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
BUILD_TIMEOUT = 45 * 60.0


class JaegerError(InfraError):
    """Jaeger could not be built, started or stopped."""


# Jaeger processes this interpreter started: kept so they are reaped, not left as zombies.
_started: dict[int, subprocess.Popen[bytes]] = {}


# ============================================================================= build


def pinned_version() -> str:
    """The version of the Jaeger Go module that go.mod requires (e.g. ``v1.76.0``)."""
    match = re.search(
        rf"^\s*(?:require\s+)?{re.escape(JAEGER_MODULE)}\s+(v\S+)", GO_MOD.read_text(), re.M
    )
    if not match:
        raise JaegerError(f"{GO_MOD} does not require {JAEGER_MODULE}")
    return match.group(1)


def _expected_inputs() -> str:
    digest = hashlib.sha256()
    for part in (GO_MOD.read_bytes(), GO_SUM.read_bytes(), RECIPE_VERSION.encode()):
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()


def _is_current() -> bool:
    return (
        BINARY.is_file()
        and os.access(BINARY, os.X_OK)
        and read_stamp(STAMP).get("inputs") == _expected_inputs()
    )


def available() -> bool:
    """True when the binary is built from the pinned version (``make jaeger`` was run)."""
    return _is_current()


def _run_go(args: list[str], env: dict[str, str], log: Any, timeout: float) -> str:
    return run_go(
        args,
        cwd=BUILD_MODULE_DIR,
        env=env,
        log=log,
        timeout=timeout,
        error=JaegerError,
        missing="Go is not on PATH: install Go (the version go.mod names or newer) to build Jaeger",
    )


def _release_name(module_dir: Path, version: str) -> str:
    """Jaeger's CHANGELOG heads each release ``v1.N.0 / v2.M.0 (date)``: take the v2 name."""
    try:
        changelog = (module_dir / "CHANGELOG.md").read_text(errors="replace")
    except OSError:
        return version
    match = re.search(rf"^{re.escape(version)}\s*/\s*(v2\.\d+\.\d+)", changelog, re.M)
    return match.group(1) if match else version


def build(force: bool = False) -> Path:
    """Build Jaeger v2 into ``.local/jaeger/bin/jaeger`` (skipped while the stamp is current)."""
    BIN_DIR.mkdir(parents=True, exist_ok=True)
    LOGS_DIR.mkdir(parents=True, exist_ok=True)
    with locked(LOCK_FILE):
        if not force and _is_current():
            return BINARY
        version = pinned_version()
        env = go_env()
        started = time.monotonic()
        with BUILD_LOG.open("a") as log:
            log.write(f"\n=== {_now()} building {JAEGER_PACKAGE} {version}\n")
            downloaded = json.loads(
                _run_go(["mod", "download", "-json", JAEGER_MODULE], env, log, BUILD_TIMEOUT)
            )
            release = _release_name(Path(downloaded["Dir"]), version)
            go_version = _run_go(["env", "GOVERSION"], env, log, 60).strip()
            partial = BIN_DIR / "jaeger.partial"
            ldflags = f"-s -w -X {JAEGER_MODULE}/internal/version.latestVersion={release}"
            ldflags += f" -X {JAEGER_MODULE}/internal/version.date={_now()}"
            _run_go(
                ["build", "-trimpath", "-ldflags", ldflags, "-o", str(partial), JAEGER_PACKAGE],
                env,
                log,
                BUILD_TIMEOUT,
            )
            partial.replace(BINARY)
            seconds = round(time.monotonic() - started, 1)
            log.write(f"=== built {BINARY} ({release}) in {seconds} s\n")
        write_stamp(
            STAMP,
            {
                "module": JAEGER_MODULE,
                "version": version,
                "release": release,
                "go": go_version,
                "inputs": _expected_inputs(),
                "built_at": _now(),
                "build_seconds": seconds,
            },
        )
        return BINARY


# ============================================================================= run


def _read_pid() -> int | None:
    try:
        return int(PID_FILE.read_text().strip())
    except (OSError, ValueError):
        return None


def _is_our_jaeger(pid: int) -> bool:
    return pid_matches(pid, str(BINARY))


def _running_pid() -> int | None:
    pid = _read_pid()
    if pid is not None and _is_our_jaeger(pid):
        return pid
    return None


def _query_api_answers() -> bool:
    try:
        with urllib.request.urlopen(f"{UI_URL}api/services", timeout=2.0) as response:
            body = json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        return False
    return isinstance(body, dict) and "data" in body


def _ready() -> bool:
    return _query_api_answers() and _port_open(OTLP_HTTP_PORT) and _port_open(OTLP_GRPC_PORT)


def _endpoints() -> dict[str, Any]:
    return {
        "ui": UI_URL,
        "query_api": f"{UI_URL}api/",
        "otlp_http": OTLP_HTTP_ENDPOINT,
        "otlp_grpc": OTLP_GRPC_ENDPOINT,
    }


def start() -> dict[str, Any]:
    """Start Jaeger detached (or reuse a running one) and wait until it accepts spans."""
    JAEGER_DIR.mkdir(parents=True, exist_ok=True)
    LOGS_DIR.mkdir(parents=True, exist_ok=True)
    with locked(LOCK_FILE):
        pid = _running_pid()
        if pid is not None:
            _wait_ready(pid)
            return {"pid": pid, "reused": True, "log": str(LOG_FILE), **_endpoints()}
        if _ready():
            # Not ours (another checkout, or a Jaeger started by hand): use it, never stop it.
            return {"pid": None, "reused": True, "external": True, **_endpoints()}
        busy = [p for p in (QUERY_PORT, OTLP_HTTP_PORT, OTLP_GRPC_PORT) if _port_open(p)]
        if busy:
            raise JaegerError(f"ports {busy} on {HOST} are taken by something that is not Jaeger")
        if not available():
            raise JaegerError("Jaeger is not built for the pinned version: run `make jaeger`")
        with LOG_FILE.open("a") as log:
            log.write(f"\n=== {_now()} starting {BINARY} --config {CONFIG_FILE}\n")
            log.flush()
            proc = subprocess.Popen(
                [str(BINARY), "--config", str(CONFIG_FILE)],
                cwd=JAEGER_DIR,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        PID_FILE.write_text(f"{proc.pid}\n")
        _started[proc.pid] = proc
        try:
            _wait_ready(proc.pid, proc)
        except JaegerError:
            _terminate(proc.pid)
            PID_FILE.unlink(missing_ok=True)
            raise
        return {"pid": proc.pid, "reused": False, "log": str(LOG_FILE), **_endpoints()}


def _wait_ready(pid: int, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise JaegerError(f"Jaeger exited with {proc.returncode} at start:\n{_log_tail()}")
        if proc is None and not _is_our_jaeger(pid):
            raise JaegerError(f"Jaeger (pid {pid}) exited:\n{_log_tail()}")
        if _ready():
            return
        time.sleep(0.2)
    raise JaegerError(f"Jaeger did not become ready within {START_TIMEOUT:.0f} s:\n{_log_tail()}")


def _terminate(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline:
        _reap(pid)
        if not _is_our_jaeger(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    _reap(pid)


def _reap(pid: int) -> None:
    # Only this interpreter's own children can be reaped; otherwise init does it.
    proc = _started.get(pid)
    if proc is not None and proc.poll() is not None:
        del _started[pid]


def stop() -> dict[str, Any]:
    """Stop the Jaeger we started (a Jaeger we did not start is left alone)."""
    if not JAEGER_DIR.exists():
        return {"stopped": False, "pid": None}
    with locked(LOCK_FILE):
        pid = _running_pid()
        if pid is not None:
            _terminate(pid)
        PID_FILE.unlink(missing_ok=True)
        return {"stopped": pid is not None, "pid": pid}


def status() -> dict[str, Any]:
    stamp = read_stamp(STAMP)
    pid = _running_pid()
    return {
        "built": BINARY.is_file(),
        "current": _is_current(),
        "binary": str(BINARY),
        "pinned": f"{JAEGER_MODULE}@{pinned_version()}",
        "release": stamp.get("release"),
        "running": pid is not None,
        "pid": pid,
        "rss_kib": rss_kib(pid) if pid is not None else None,
        "ready": _ready(),
        "log": str(LOG_FILE),
        **_endpoints(),
    }


# ============================================================================= helpers


def _port_open(port: int) -> bool:
    return port_open(port, HOST, timeout=1.0)


def _log_tail() -> str:
    return log_tail(LOG_FILE, 20)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ============================================================================= CLI


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.jaeger", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    build_cmd = sub.add_parser("build", help="build Jaeger into .local/jaeger/bin (cached)")
    build_cmd.add_argument("--force", action="store_true", help="rebuild even if current")
    sub.add_parser("start", help="start Jaeger detached, or reuse a running one")
    sub.add_parser("stop", help="stop the Jaeger we started")
    sub.add_parser("status", help="built? running? where?")
    args = parser.parse_args(argv)

    def command() -> dict[str, Any]:
        if args.command == "build":
            return {"binary": str(build(force=args.force)), **read_stamp(STAMP)}
        if args.command == "start":
            return start()
        if args.command == "stop":
            return stop()
        return status()

    return json_command(command, "jaeger")


if __name__ == "__main__":
    raise SystemExit(_main())
