"""The `oms` command for operators and developers (typer + rich)."""

from __future__ import annotations

import asyncio
import json

import typer
from rich.console import Console
from rich.table import Table

from shared.platform.settings import OpsSettings
from shared.topics import SERVICES

app = typer.Typer(no_args_is_help=True, help="Operate the OMS: local infrastructure, dead letters.")
infra_app = typer.Typer(no_args_is_help=True, help="Local Kafka and Postgres (no Docker needed).")
dlq_app = typer.Typer(no_args_is_help=True, help="Dead letters: list and replay.")
app.add_typer(infra_app, name="infra")
app.add_typer(dlq_app, name="dlq")
console = Console()


@infra_app.command("up")
def infra_up() -> None:
    """Start Kafka and Postgres (or use OMS_KAFKA_BOOTSTRAP / OMS_DATABASE_URL), create topics,
    provision one schema and role per service, and apply migrations."""
    from shared.ops import runner

    env = runner.prepare()
    applied = runner.migrate_all(env)
    console.print(f"Kafka {env.kafka_bootstrap}; Postgres ready; topics created.")
    for service, names in applied.items():
        if names:
            console.print(f"  {service}: applied {', '.join(names)}")


@infra_app.command("down")
def infra_down() -> None:
    """Stop what `infra up` started (data is kept)."""
    from shared.ops import localinfra

    localinfra.down()
    console.print("stopped")


@infra_app.command("status")
def infra_status() -> None:
    from shared.ops import localinfra

    console.print_json(json.dumps(localinfra.status(), default=str))


@infra_app.command("clean")
def infra_clean() -> None:
    """Stop and delete local data (downloaded Kafka jars are kept)."""
    from shared.ops import localinfra

    localinfra.clean()
    console.print("cleaned")


@app.command("migrate")
def migrate() -> None:
    """Apply pending migrations of every service."""
    from shared.ops import runner

    env = runner.prepare()
    for service, names in runner.migrate_all(env).items():
        console.print(f"{service}: {', '.join(names) if names else 'up to date'}")


@app.command("run")
def run() -> None:
    """Start the infrastructure and all five services in the foreground (Ctrl-C stops them)."""
    from shared.ops import runner

    env = runner.prepare()
    runner.migrate_all(env)
    raise typer.Exit(runner.run_all(env))


def _bootstrap(settings: OpsSettings) -> str:
    if settings.kafka_bootstrap:
        return settings.kafka_bootstrap
    return f"127.0.0.1:{settings.kafka_port}"


def _check_service(service: str) -> str:
    if service not in SERVICES:
        raise typer.BadParameter(f"unknown service {service!r}; one of {', '.join(SERVICES)}")
    return service


@dlq_app.command("list")
def dlq_list(
    service: str = typer.Argument(..., help="consumer group (service) whose dead letters to list"),
    show_all: bool = typer.Option(False, "--all", help="include dead letters already replayed"),
) -> None:
    from shared.ops.dlq import list_dead_letters

    settings = OpsSettings()
    letters = asyncio.run(
        list_dead_letters(
            _bootstrap(settings), _check_service(service), prefix=settings.topic_prefix
        )
    )
    table = Table(title=f"dead letters of {service}")
    for column in ("offset", "type", "reason", "attempts", "from", "error", "replayed"):
        table.add_column(column)
    for d in letters:
        if d.replayed and not show_all:
            continue
        table.add_row(
            str(d.offset),
            d.message_type,
            d.reason,
            d.headers.get("x-dlq-attempts", ""),
            f"{d.original_topic}/{d.headers.get('x-dlq-original-partition', '')}"
            f"@{d.headers.get('x-dlq-original-offset', '')}",
            d.error[:120],
            "yes" if d.replayed else "",
        )
    console.print(table)


@dlq_app.command("replay")
def dlq_replay(
    service: str = typer.Argument(
        ..., help="consumer group (service) whose dead letters to replay"
    ),
    offset: list[int] = typer.Option(None, "--offset", help="replay only these offsets"),
) -> None:
    """Send dead letters back to the topic they came from (all not yet replayed, or --offset)."""
    from shared.ops.dlq import replay_dead_letters

    settings = OpsSettings()
    replayed = asyncio.run(
        replay_dead_letters(
            _bootstrap(settings),
            _check_service(service),
            prefix=settings.topic_prefix,
            offsets=set(offset) if offset else None,
        )
    )
    console.print(f"replayed {len(replayed)} dead letter(s): {[d.offset for d in replayed]}")


def main() -> None:
    app()
