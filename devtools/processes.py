"""What the local Kafka, PostgreSQL and Jaeger have in common: the `.local/` folder they keep
their state in, child processes started detached and recognised again by their command line,
files written atomically, a lock serialising start and stop across processes, and a JSON CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)
_T = TypeVar("_T")

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCAL_DIR = REPO_ROOT / ".local"  # git-ignored
LOGS_DIR = LOCAL_DIR / "logs"
RECIPES_DIR = REPO_ROOT / "deploy" / "local"
LOG_ROTATE_BYTES = 50 * 1024 * 1024


class InfraError(RuntimeError):
    """Local infrastructure could not be brought up / down."""


def is_root() -> bool:
    return os.geteuid() == 0


def mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_private(path: Path, text: str) -> None:
    """Atomically write a 0600 file."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_text(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return None


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode(errors="replace")
    except OSError as e:
        return f"(no log at {path}: {e})"
    return "\n".join(data.splitlines()[-lines:])


def rotate_log(path: Path) -> None:
    with contextlib.suppress(OSError):
        if path.stat().st_size > LOG_ROTATE_BYTES:
            os.replace(path, path.with_name(path.name + ".1"))


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for child processes, without libpq variables that could redirect them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.setdefault("LC_ALL", "C.UTF-8" if has_c_utf8() else "C")
    if extra:
        env.update(extra)
    return env


def run(
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
            env=dict(env) if env is not None else clean_env(),
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
            msg += f"\n--- tail of {log_hint} ---\n{log_tail(log_hint)}"
        raise InfraError(msg)
    return proc


def run_coro(coro: Coroutine[Any, Any, _T]) -> _T:
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


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def proc_cmdline(pid: int) -> list[str] | None:
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


def pid_matches(pid: int | None, *markers: str) -> bool:
    """True while `pid` is a live process whose command line names every marker: a pid from a
    file is only trusted this way (the process may be gone and its pid reused)."""
    if not pid:
        return False
    cmd = proc_cmdline(pid)
    if not cmd:
        return False
    joined = " ".join(cmd)
    return all(m in joined for m in markers)


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


_HAS_C_UTF8: bool | None = None


def has_c_utf8() -> bool:
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


def apt_install(*packages: str) -> None:
    if not is_root():
        raise InfraError(
            f"missing {' '.join(packages)}: install them (needs root), e.g. apt-get install {' '.join(packages)}"
        )
    env = clean_env({"DEBIAN_FRONTEND": "noninteractive"})
    log.warning("installing %s with apt-get (one-time)", " ".join(packages))
    run(["apt-get", "update"], what="apt-get update", env=env, timeout=900)
    run(
        ["apt-get", "install", "-y", "--no-install-recommends", *packages],
        what=f"apt-get install {' '.join(packages)}",
        env=env,
        timeout=1800,
    )


def installed_command(name: str, package: str, why: str) -> str:
    """The path of a command, installed with apt-get first when missing (as root)."""
    found = shutil.which(name)
    if found is None:
        apt_install(package)
        found = shutil.which(name)
    if found is None:
        raise InfraError(f"no {name} on PATH ({why}; apt-get install {package})")
    return found


def ensure_zbarimg() -> str:
    """The path of `zbarimg` (Debian's zbar-tools), installed with apt-get when missing and we
    are root; InfraError otherwise. Tests decode the barcodes we print with it."""
    return installed_command("zbarimg", "zbar-tools", "tests decode printed barcodes with it")


@contextlib.contextmanager
def locked(lock_file: Path) -> Iterator[None]:
    """Serialise start/stop across processes (e.g. parallel test workers) on `lock_file`."""
    mkdir(lock_file.parent)
    with open(lock_file, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def json_command(action: Callable[[], object], error_prefix: str) -> int:
    """Run one CLI command: its result printed as JSON (exit 0), or its InfraError as one line
    on stderr (exit 1)."""
    try:
        result = action()
    except InfraError as exc:
        print(f"{error_prefix}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0
