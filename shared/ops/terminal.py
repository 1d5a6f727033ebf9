"""What the `oms` commands share on the terminal: an API client whose failures become one clear
line on stderr and exit code 1, and JSON output."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import NoReturn

import typer
from rich.console import Console
from rich.text import Text

from shared.ops.client import OpsClient, ServiceRefused, ServiceUnreachable
from shared.platform.settings import OpsSettings


def fail(message: str) -> NoReturn:
    Console(stderr=True, soft_wrap=True).print(Text(f"error: {message}", style="bold red"))
    raise typer.Exit(1)


@contextlib.contextmanager
def ops_client(make: Callable[[OpsSettings], OpsClient] = OpsClient) -> Iterator[OpsClient]:
    """An API client; service failures become one clear line on stderr and exit code 1."""
    client = make(OpsSettings())
    try:
        yield client
    except ServiceRefused as exc:
        fail(f"{exc.service} refused ({exc.status} {exc.code}): {exc.message}")
    except ServiceUnreachable as exc:
        fail(f"{exc.service} is unreachable at {exc.url} ({exc.cause})")
    finally:
        client.close()


def print_json(data: object) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))
