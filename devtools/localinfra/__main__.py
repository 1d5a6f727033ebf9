"""`python -m devtools.localinfra up|down|status|clean`: prints JSON."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from devtools.localinfra import lifecycle
from devtools.processes import json_command
from shared.topics import SERVICES


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.localinfra",
        description="Local Kafka and PostgreSQL without Docker.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start/reuse Kafka and PostgreSQL, provision roles")
    p_up.add_argument("--kafka-bootstrap", default=os.environ.get("OMS_KAFKA_BOOTSTRAP"))
    p_up.add_argument(
        "--database-url",
        default=os.environ.get("OMS_DATABASE_URL"),
        help="admin URL of an existing PostgreSQL",
    )
    p_up.add_argument("--kafka-port", type=int, default=9092)
    p_up.add_argument("--pg-port", type=int, default=5433)
    p_up.add_argument(
        "--services", default=",".join(SERVICES), help="comma-separated service names"
    )
    sub.add_parser("down", help="stop what up started")
    sub.add_parser("status", help="show what is running")
    sub.add_parser("clean", help="down and delete local data (keeps downloaded jars)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("asyncio").setLevel(logging.WARNING)

    def command() -> Any:
        if args.command == "up":
            return dataclasses.asdict(
                lifecycle.up(
                    kafka_bootstrap=args.kafka_bootstrap,
                    database_url=args.database_url,
                    services=[s for s in args.services.split(",") if s],
                    kafka_port=args.kafka_port,
                    pg_port=args.pg_port,
                )
            )
        if args.command == "down":
            lifecycle.down()
        elif args.command == "clean":
            lifecycle.clean()
        return lifecycle.status()

    return json_command(command, "error")


if __name__ == "__main__":
    sys.exit(main())
