"""stripe-mock (Stripe's own mock of its API), built from the Go module proxy, for the Stripe
gateway's tests.

Everything lives in ``<repo>/.local/`` (git-ignored)::

    .local/
      go/                              GOPATH, GOMODCACHE and GOCACHE (shared with Jaeger's build)
      stripe-mock/bin/stripe-mock      the binary
      stripe-mock/bin/stripe-mock.stamp  JSON: version, Go, build time
      stripe-mock/fixtures.json        its bundled fixtures, with the changes below
      logs/stripe-mock-build.log

Build
    ``go install github.com/stripe/stripe-mock@<STRIPE_MOCK_VERSION>`` (checked against the Go
    checksum database like any module), ``CGO_ENABLED=0 -trimpath -ldflags=-s -w``. About
    35 s on a fresh machine (download and compile), then skipped while the stamp names the
    pinned version and this recipe's version. Needs Go 1.22 or newer on PATH.

Fixtures
    stripe-mock is stateless: it validates each request against Stripe's OpenAPI spec and
    answers with one fixed object per resource, echoing parameters it got (``amount``,
    ``currency``, ``capture_method``). Its bundled PaymentIntent is ``requires_payment_method``
    (what a failed confirmation leaves), so ``fixtures.json`` changes it into what a confirmed
    manual-capture card authorisation is: ``requires_capture``, its ``latest_charge`` a charge
    with multicapture ``available``. It cannot decline a card, remember a capture, or send a
    webhook: those are tested against doubles of Stripe's documented shapes.

Run
    ``running()`` starts it on a free loopback port, HTTP only, and stops it afterwards (the
    tests' session fixture).

CLI: ``python -m devtools.stripe_mock build|status`` prints JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from devtools.gobuild import go_env, read_stamp, run_go, write_stamp
from devtools.processes import LOCAL_DIR, LOGS_DIR, InfraError, json_command, locked, port_open

STRIPE_MOCK_MODULE = "github.com/stripe/stripe-mock"
STRIPE_MOCK_VERSION = "v0.203.0"
# Bump when the build command or the fixture changes, so existing builds are redone.
RECIPE_VERSION = "1"

HOME = LOCAL_DIR / "stripe-mock"
BIN_DIR = HOME / "bin"
BINARY = BIN_DIR / "stripe-mock"
STAMP = BIN_DIR / "stripe-mock.stamp"
FIXTURES = HOME / "fixtures.json"
LOCK_FILE = HOME / ".lock"
BUILD_LOG = LOGS_DIR / "stripe-mock-build.log"

BUILD_TIMEOUT = 15 * 60.0
START_TIMEOUT = 30.0
HOST = "127.0.0.1"


class StripeMockError(InfraError):
    """stripe-mock could not be built or started."""


def _expected() -> dict[str, str]:
    return {"version": STRIPE_MOCK_VERSION, "recipe": RECIPE_VERSION}


def available() -> bool:
    """True when the pinned version is built (with its fixtures)."""
    stamp = read_stamp(STAMP)
    return (
        BINARY.is_file()
        and os.access(BINARY, os.X_OK)
        and FIXTURES.is_file()
        and all(stamp.get(k) == v for k, v in _expected().items())
    )


def go_missing_reason() -> str | None:
    """Why stripe-mock cannot be built here, or None when Go is on PATH."""
    if shutil.which("go") is None:
        return "Go is not on PATH: stripe-mock is built from the Go module proxy (Go >= 1.22)"
    return None


def _run_go(args: list[str], log: Any) -> str:
    return run_go(
        args,
        cwd=HOME,
        env=go_env(gobin=BIN_DIR),
        log=log,
        timeout=BUILD_TIMEOUT,
        error=StripeMockError,
        missing=go_missing_reason() or "Go is not on PATH",
    )


def authorisation_fixtures(bundled: dict[str, Any]) -> dict[str, Any]:
    """The bundled fixtures, with the PaymentIntent a confirmed manual-capture authorisation."""
    fixtures = json.loads(json.dumps(bundled))
    resources = fixtures["resources"]
    charge = resources["charge"]
    card = charge.setdefault("payment_method_details", {}).setdefault("card", {})
    card["multicapture"] = {"status": "available"}
    intent = resources["payment_intent"]
    intent.update(
        status="requires_capture",
        capture_method="manual",
        amount_capturable=intent.get("amount", 0),
        last_payment_error=None,
        next_action=None,
        latest_charge=charge["id"],
    )
    return fixtures  # type: ignore[no-any-return]


def build(force: bool = False) -> Path:
    """Build stripe-mock into ``.local/stripe-mock/bin`` (skipped while current)."""
    BIN_DIR.mkdir(parents=True, exist_ok=True)
    LOGS_DIR.mkdir(parents=True, exist_ok=True)
    with locked(LOCK_FILE):
        if not force and available():
            return BINARY
        started = time.monotonic()
        package = f"{STRIPE_MOCK_MODULE}@{STRIPE_MOCK_VERSION}"
        with BUILD_LOG.open("a") as log:
            log.write(f"\n=== building {package}\n")
            _run_go(["install", "-trimpath", "-ldflags=-s -w", package], log)
            module = json.loads(_run_go(["mod", "download", "-json", package], log))
            bundled = Path(module["Dir"]) / "embedded" / "openapi" / "fixtures3.json"
            FIXTURES.write_text(json.dumps(authorisation_fixtures(json.loads(bundled.read_text()))))
            go_version = _run_go(["env", "GOVERSION"], log).strip()
            seconds = round(time.monotonic() - started, 1)
            log.write(f"=== built {BINARY} in {seconds} s\n")
        write_stamp(STAMP, {**_expected(), "go": go_version, "build_seconds": seconds})
        return BINARY


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running(*, fixtures: Path | None = FIXTURES) -> Iterator[str]:
    """stripe-mock on a free loopback port (HTTP only) until the block ends; yields its base
    URL. `fixtures` None: its bundled fixtures."""
    if not available():
        raise StripeMockError("stripe-mock is not built: run `make stripe-mock`")
    port = _free_port()
    # stripe-mock also opens HTTPS, on :12112 unless told otherwise: a port of the system's
    # choosing, so that several test sessions (and a `make stripe-mock` one) run side by side.
    args = [str(BINARY), "-http-addr", f"{HOST}:{port}", "-https-addr", f"{HOST}:"]
    if fixtures is not None:
        args += ["-fixtures", str(fixtures)]
    LOGS_DIR.mkdir(parents=True, exist_ok=True)
    with (LOGS_DIR / "stripe-mock.log").open("a") as log:
        proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not port_open(port, HOST, timeout=0.5):
            if proc.poll() is not None:
                raise StripeMockError(f"stripe-mock exited with {proc.returncode} at start")
            if time.monotonic() > deadline:
                raise StripeMockError(f"stripe-mock did not listen within {START_TIMEOUT} s")
            time.sleep(0.1)
        yield f"http://{HOST}:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def status() -> dict[str, Any]:
    return {
        "built": BINARY.is_file(),
        "current": available(),
        "binary": str(BINARY),
        "fixtures": str(FIXTURES),
        "pinned": f"{STRIPE_MOCK_MODULE}@{STRIPE_MOCK_VERSION}",
        **read_stamp(STAMP),
    }


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.stripe_mock", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    build_cmd = sub.add_parser("build", help="build stripe-mock into .local/stripe-mock (cached)")
    build_cmd.add_argument("--force", action="store_true", help="rebuild even if current")
    sub.add_parser("status", help="built? which version?")
    args = parser.parse_args(argv)

    def command() -> dict[str, Any]:
        if args.command == "build":
            build(force=args.force)
        return status()

    return json_command(command, "stripe-mock")


if __name__ == "__main__":
    raise SystemExit(_main())
