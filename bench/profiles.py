"""Where the services spend their CPU: py-spy records chosen services while orders flow, and
the collapsed stacks are summed up per frame and per package.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench.config import Config, env_option
from bench.system import Services


def start_profiles(
    config: Config, services: Services, out: Path, seconds: int
) -> list[subprocess.Popen[bytes]]:
    spy = Path(sys.executable).with_name("py-spy")
    started = []
    for service in config.profile:
        for process in services.of(service)[:1]:
            path = out / f"profile-{service}.txt"
            started.append(
                subprocess.Popen(
                    [
                        str(spy),
                        "record",
                        "--pid",
                        str(process.pid),
                        "--format",
                        "raw",
                        "--rate",
                        "97",
                        "--duration",
                        str(seconds),
                        # Native frames (asyncpg's Cython, C extensions) need the process paused
                        # for each sample: slower, so only on request.
                        *(
                            ["--native"]
                            if env_option("PROFILE_NATIVE", "") == "1"
                            else ["--nonblocking"]
                        ),
                        "--output",
                        str(path),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=(out / f"profile-{service}.log").open("wb"),
                )
            )
    return started


def summarise_profiles(config: Config, out: Path) -> dict[str, Any]:
    found = {}
    for service in config.profile:
        path = out / f"profile-{service}.txt"
        if path.exists():
            lines = path.read_text().splitlines()
            found[service] = {
                **top_frames(lines, 25),
                "self_by_package": self_by_package(lines),
                "samples": sum(int(x.rpartition(" ")[2]) for x in lines if x.strip()),
            }
    return found


def top_frames(collapsed: Iterable[str], n: int = 15) -> dict[str, list[tuple[str, float]]]:
    """From py-spy's collapsed stacks ("frame;frame;frame count" per line): the frames with the
    most samples on the stack (inclusive) and at its top (self), as % of all samples."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed:
        line = line.rstrip("\n")
        if not line:
            continue
        stack, _, count_text = line.rpartition(" ")
        try:
            count = int(count_text)
        except ValueError:
            continue
        frames = stack.split(";")
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
    if not total:
        return {"inclusive": [], "self": []}
    return {
        "inclusive": [(f, round(100 * c / total, 1)) for f, c in inclusive.most_common(n)],
        "self": [(f, round(100 * c / total, 1)) for f, c in own.most_common(n)],
    }


def _package(frame: str) -> str:
    """'Connection.execute (asyncpg/connection.py:377)' -> 'asyncpg'."""
    _, _, where = frame.rpartition(" (")
    path = where.split(":", 1)[0]
    if path.startswith("<"):
        return path
    parts = path.split("/")
    if parts[0] in ("services", "shared") and len(parts) > 1:
        return "/".join(parts[:2])
    return parts[0]


def self_by_package(collapsed: Iterable[str], n: int = 15) -> list[tuple[str, float]]:
    """Share of samples (%) whose innermost Python frame is in each package."""
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed:
        stack, _, count_text = line.rstrip("\n").rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        own[_package(stack.split(";")[-1])] += count
    return [(p, round(100 * c / total, 1)) for p, c in own.most_common(n)] if total else []
