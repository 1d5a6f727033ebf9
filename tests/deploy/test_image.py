"""The image cannot be built here (no container engine): check the Dockerfile's structure and
its build context, and run its `uv sync` lines into a scratch venv to see what it installs."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from shared.topics import SERVICES
from tests.deploy import support

DOCKER = support.REPO / "deploy" / "docker"
UV = support.REPO / ".tools" / "bin" / "uv"


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
    # uv, pinned by hash, installs the lock's runtime group: never a resolution at build time.
    runs = builder.all("RUN")
    assert "pip install --require-hashes --no-deps -r /build/uv-requirements.txt" in runs
    syncs = [run for run in runs if run.startswith("uv ")]
    assert syncs and all(re.match(r"uv sync --locked --no-dev\b", run) for run in syncs), syncs
    assert "--no-editable" in syncs[-1]
    assert _env(builder)["UV_PROJECT_ENVIRONMENT"] == "/opt/oms"


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
    assert allowed == {
        "pyproject.toml",
        "shared/",
        "services/",
        "uv.lock",
        "deploy/uv-requirements.txt",
    }


def _uv() -> str:
    assert UV.exists(), "uv is installed by `make install` into .tools/ (run `make install`)"
    return str(UV)


def _lock_runtime_closure() -> dict[str, str]:
    """{distribution: version} of the lock's runtime group that applies to this platform."""
    exported = subprocess.run(
        [
            _uv(),
            "export",
            "--frozen",
            "--offline",
            "--no-dev",
            "--no-emit-project",
            "--no-hashes",
            "--no-header",
            "--no-annotate",
            "--format",
            "requirements-txt",
        ],
        cwd=support.REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    closure: dict[str, str] = {}
    for line in exported.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate():
            (spec,) = requirement.specifier
            closure[canonicalize_name(requirement.name)] = spec.version
    return closure


def test_lock_agrees_with_pyproject(tmp_path: Path) -> None:
    """uv's own check, without the network: the lock is what pyproject.toml asks for."""
    check = [_uv(), "lock", "--check", "--offline"]
    subprocess.run(check, cwd=support.REPO, check=True, capture_output=True)
    # Control: a dependency added to pyproject.toml and not locked fails the same check.
    for name in ("pyproject.toml", "uv.lock"):
        shutil.copy(support.REPO / name, tmp_path / name)
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace('    "httpx>=0.28",\n', '    "httpx>=0.28",\n    "six",\n', 1)
    )
    assert '"six"' in pyproject.read_text()
    stale = subprocess.run(check, cwd=tmp_path, capture_output=True, text=True)
    assert stale.returncode != 0, stale.stderr


def _builder_copies(builder: Stage) -> list[tuple[str, str]]:
    """(source, destination) of the builder's COPY lines from the build context."""
    copies = []
    for args in builder.all("COPY"):
        words = [w for w in shlex.split(args) if not w.startswith("--")]
        *sources, destination = words
        copies += [(source, destination) for source in sources]
    return copies


def _build_context(builder: Stage, context: Path) -> None:
    """What the builder's COPY lines put in its WORKDIR (/build), from this checkout."""
    for source, destination in _builder_copies(builder):
        target = context / destination.removeprefix("/build/").removeprefix("./")
        if destination.endswith("/") or destination in (".", "./"):
            target = target / Path(source).name
        origin = support.REPO / source
        target.parent.mkdir(parents=True, exist_ok=True)
        if origin.is_dir():
            shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(origin, target)


def test_the_image_copies_no_dev_tooling() -> None:
    _, stages = _stages()
    sources = {source for source, _ in _builder_copies(stages[0])}
    assert {"shared", "services"} <= sources
    assert not sources & {"devtools", "bench", "tests", "."}, sources
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text()
    assert "!devtools" not in ignore and "!bench" not in ignore


def test_the_image_installs_the_lock_runtime_group(tmp_path: Path) -> None:
    """Run the builder's own `uv sync` lines (offline, from the cache `make install` filled) into
    a scratch venv: it holds exactly the lock's runtime closure and the oms package, no dev tool."""
    _, stages = _stages()
    builder = stages[0]
    context = tmp_path / "build"
    context.mkdir()
    _build_context(builder, context)
    venv = tmp_path / "opt-oms"
    env = {
        **os.environ,
        **_env(builder),
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_PYTHON": sys._base_executable,
        "UV_NO_CACHE": "0",  # reuse the warm cache instead of the network
        "UV_COMPILE_BYTECODE": "0",
        "UV_OFFLINE": "1",
    }
    env.pop("VIRTUAL_ENV", None)
    for run in builder.all("RUN"):
        if run.startswith("uv "):
            command = [_uv(), *shlex.split(run)[1:]]
            done = subprocess.run(command, cwd=context, env=env, capture_output=True, text=True)
            assert done.returncode == 0, f"{run}: {done.stderr}"
    listed = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import json, importlib.metadata as m;"
            "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))",
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    ).stdout
    installed = {canonicalize_name(name): version for name, version in json.loads(listed).items()}
    assert installed.pop("oms") == "0.1.0"
    expected = _lock_runtime_closure()
    assert installed == expected
    assert "pytest" not in installed and "mypy" not in installed
    # The project itself is installed as a package (not a link to the build context), without
    # the dev tooling: every service and the cluster's commands import, devtools does not, and
    # `oms` answers its development commands with one line.
    shutil.rmtree(context)
    python = str(venv / "bin" / "python")
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    installed_packages = {p.name for p in Path(site).iterdir() if p.is_dir()}
    assert {"shared", "services"} <= installed_packages
    assert not installed_packages & {"devtools", "bench", "tests"}
    assert not list(Path(site).glob("shared/ops/localinfra*"))
    # Every data file the services read at run time (migrations, the console's templates and
    # static files) is in the package: what git tracks under services/ and shared/.
    tracked = subprocess.run(
        ["git", "ls-files", "services", "shared"],
        cwd=support.REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    data_files = [f for f in tracked if not f.endswith(".py") and not Path(f).name.startswith(".")]
    missing = [f for f in data_files if not (Path(site) / f).is_file()]
    assert data_files and not missing, f"not in the image: {missing}"

    image_env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "PYTHONSAFEPATH": "1",
        "HOME": str(tmp_path),
    }
    services = [f"services.{name}.app" for name in SERVICES]
    cluster_commands = ["shared.ops.migrate", "shared.ops.topics", "shared.ops.cli"]
    imported = subprocess.run(
        [
            python,
            "-c",
            f"import importlib; [importlib.import_module(m) for m in {services + cluster_commands}]",
        ],
        cwd=tmp_path,
        env=image_env,
        capture_output=True,
        text=True,
    )
    assert imported.returncode == 0, imported.stderr
    for module in ("devtools", "devtools.localinfra", "shared.ops.localinfra", "shared.ops.jaeger"):
        absent = subprocess.run(
            [python, "-c", f"import {module}"], cwd=tmp_path, env=image_env, capture_output=True
        )
        assert absent.returncode != 0, f"{module} is in the image"

    oms = str(venv / "bin" / "oms")
    for args in (["--help"], ["dlq", "--help"], ["orders", "--help"]):
        helped = subprocess.run(
            [oms, *args], cwd=tmp_path, env=image_env, capture_output=True, text=True
        )
        assert helped.returncode == 0, helped.stderr
    for args in (["infra", "up"], ["run"], ["migrate"], ["token", "issue", "--role", "admin"]):
        refused = subprocess.run(
            [oms, *args], cwd=tmp_path, env=image_env, capture_output=True, text=True
        )
        assert refused.returncode == 1
        (line,) = refused.stderr.strip().splitlines()
        assert "development command" in line and "devtools" in line, line
        assert "Traceback" not in refused.stdout + refused.stderr
