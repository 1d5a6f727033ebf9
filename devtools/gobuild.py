"""Building tools from the Go module proxy (Jaeger, stripe-mock): one module and build cache
under `.local/go`, `go` commands run with their output logged, and the stamp file that says
what a built binary was built from."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from devtools.processes import LOCAL_DIR, InfraError

GO_DIR = LOCAL_DIR / "go"


def go_env(gobin: Path | None = None) -> dict[str, str]:
    """The environment of a build: the shared module and build cache (kept writable so
    `make clean` can remove it), no cgo, and where `go install` puts binaries."""
    env = dict(os.environ)
    flags = env.get("GOFLAGS", "").split()
    if "-modcacherw" not in flags:
        flags.append("-modcacherw")
    env.update(
        GOPATH=str(GO_DIR),
        GOMODCACHE=str(GO_DIR / "pkg" / "mod"),
        GOCACHE=str(GO_DIR / "cache"),
        GOFLAGS=" ".join(flags),
        CGO_ENABLED="0",
    )
    if gobin is not None:
        env["GOBIN"] = str(gobin)
    return env


def run_go(
    args: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    log: Any,
    timeout: float,
    error: type[InfraError],
    missing: str,
) -> str:
    """Run `go <args>`, its stderr appended to `log`; its stdout. `error` (with the last lines
    of stderr) when it fails, or with `missing` when Go is not on PATH."""
    go = shutil.which("go")
    if go is None:
        raise error(missing)
    log.write(f"$ go {' '.join(args)}\n")
    log.flush()
    proc = subprocess.run(
        [go, *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    log.write(proc.stderr)
    log.flush()
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise error(f"`go {args[0]}` failed (exit {proc.returncode}):\n{tail}")
    return proc.stdout


def read_stamp(stamp: Path) -> dict[str, Any]:
    """What the stamp file says the binary was built from ({} when missing or unreadable)."""
    try:
        found = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def write_stamp(stamp: Path, facts: dict[str, Any]) -> None:
    stamp.write_text(json.dumps(facts, indent=2) + "\n")
