"""The image cannot be built here (no container engine): check the Dockerfile's structure,
its build context and its pins instead."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from tests.deploy import image_pins, support

DOCKER = support.REPO / "deploy" / "docker"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def _stages() -> tuple[dict[str, str], list[Stage]]:
    text = (DOCKER / "Dockerfile").read_text()
    logical = re.sub(r"\\\n", " ", text)  # join continuation lines
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name.strip()] = default.strip()
        elif keyword == "FROM":
            words = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], words[0])
            stages.append(Stage(base, words[2] if len(words) > 2 else None))
        else:
            stages[-1].instructions.append((keyword, rest))
    return args, stages


def _env(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for args in stage.all("ENV"):
        for pair in shlex.split(args):
            key, _, value = pair.partition("=")
            env[key] = value
    return env


def test_dockerfile_is_multi_stage_on_slim_python_311() -> None:
    _, stages = _stages()
    assert len(stages) >= 2
    builder, runtime = stages[0], stages[-1]
    assert builder.name == "builder"
    for stage in (builder, runtime):
        assert re.fullmatch(r"python:3\.11-slim(-\w+)?", stage.base), stage.base
    # The runtime gets the built virtualenv, not the sources or the build tools.
    copies = runtime.all("COPY")
    assert copies == ["--from=builder /opt/oms /opt/oms"]
    assert not runtime.all("ADD")
    assert any("pip wheel" in run and "pip install" in run for run in builder.all("RUN"))


def test_runtime_runs_as_a_non_root_user_with_a_healthcheck(
    overlays: dict[str, list[dict[str, Any]]],
) -> None:
    _, stages = _stages()
    runtime = stages[-1]
    (user,) = runtime.all("USER")
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000, "USER must be a numeric non-root uid"
    # Kubernetes runs the pods as that same uid (runAsNonRoot needs it numeric).
    for objects in overlays.values():
        deployment = support.one(objects, "Deployment", "payment")
        assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == int(uid)
    (healthcheck,) = runtime.all("HEALTHCHECK")
    assert "/health/live" in healthcheck and "OMS_HTTP_PORT" in healthcheck
    env = _env(runtime)
    assert env["OMS_HTTP_HOST"] == "0.0.0.0"
    assert runtime.all("EXPOSE") == [env["OMS_HTTP_PORT"]]
    assert env["PYTHONDONTWRITEBYTECODE"] == "1" and env["TMPDIR"] == "/tmp"
    assert runtime.all("ENTRYPOINT") == ['["python", "-m"]']
    for objects in overlays.values():
        config = support.config_map_data(objects, "oms-config")
        assert config["OMS_HTTP_PORT"] == env["OMS_HTTP_PORT"]


def test_no_secrets_in_the_image() -> None:
    args, stages = _stages()
    names = list(args) + [name for stage in stages for name in _env(stage)]
    for name in names:
        assert not re.search(r"PASSWORD|SECRET|TOKEN|API_KEY|DATABASE_URL", name, re.I), name
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
    # Everything is excluded, then only what the image needs is let back in.
    patterns = [line for line in ignore if line and not line.startswith("#")]
    assert patterns[0] == "*"
    allowed = {line[1:] for line in patterns if line.startswith("!")}
    assert allowed == {"pyproject.toml", "shared/", "services/", "deploy/docker/constraints.txt"}


def test_image_pins_are_the_tested_versions() -> None:
    assert (DOCKER / "constraints.txt").read_text() == image_pins.render(), (
        "deploy/docker/constraints.txt differs from the venv: regenerate it with\n"
        "  .venv/bin/python -m tests.deploy.image_pins > deploy/docker/constraints.txt"
    )
