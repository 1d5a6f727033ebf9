"""Schemathesis (a fuzzer no one here wrote) against the OpenAPI documents of the five running
services, with an admin token: no 5xx, and every answer — status code, content type, headers,
body — is one the document states. Bounded: SCHEMATHESIS_MAX_EXAMPLES test cases per operation and phase, one
fixed seed (so a failure replays), one worker per service."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from shared.topics import SERVICES
from tests.support import auth
from tests.support.env import Infra, new_env
from tests.support.services import ServiceProcess

pytestmark = pytest.mark.integration

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "40"))
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


def _fuzz(service: str, url: str, report: Path) -> tuple[int, str, int]:
    done = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{url}/openapi.json",
            "--checks",
            ",".join(CHECKS),
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            "20261130",
            "--workers",
            "1",
            "--request-timeout",
            "15",
            # An admin token: every operation is exercised past authorisation (the route-table
            # test covers who may call what).
            "--header",
            f"Authorization: Bearer {auth.token('admin', subject='schemathesis')}",
            "--report",
            "ndjson",
            "--report-ndjson-path",
            str(report),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_TELEMETRY": "false"},
        timeout=600,
    )
    generated = re.search(r"(\d+) generated", done.stdout)
    return (
        done.returncode,
        done.stdout[-6000:] + done.stderr[-2000:],
        int(generated.group(1) if generated else 0),
    )


# Seven services fuzzed one after another (about 8,500 cases): 2.5 to 6 minutes on a 2-core
# machine (alone or beside another test worker), past the suite's 300 s default; each service's
# run is bounded by _fuzz's own timeout.
@pytest.mark.timeout(900)
async def test_every_api_answers_what_its_openapi_document_says(
    infra: Infra, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    env = await new_env(infra)
    processes = [
        ServiceProcess(name, f"services.{name}", env.service_env(name)).start() for name in SERVICES
    ]
    try:
        await asyncio.gather(*(p.wait_ready(timeout_s=90) for p in processes))
        requests = {}
        for process in processes:
            code, output, generated = await asyncio.to_thread(
                _fuzz, process.name, process.url, tmp_path / f"{process.name}.ndjson"
            )
            assert code == 0, f"schemathesis found problems in {process.name}:\n{output}"
            assert generated > 0, output
            requests[process.name] = generated
        record_property("schemathesis_test_cases", requests)
        print(f"schemathesis test cases per service: {requests}, total {sum(requests.values())}")
    finally:
        for process in processes:
            process.stop()
