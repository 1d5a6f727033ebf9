"""Dead letters per service, read from Kafka, and replaying one back to the topic it came from.

A replay is done once: the letter is marked in the console's table (`dead_letter_replays`) in
the transaction that waits for Kafka's acknowledgement of the send. A second click — or a second
console — waits on that row and finds it, and sends nothing. Letters `oms dlq replay` already
sent back (below the replay group's committed offset) are shown as replayed and not offered.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from services.console.operations import replays
from services.console.operations.dead_letters import DeadLetters
from services.console.operations.forms import FormError, offset_param
from services.console.operations.replays import Replay
from services.console.web.actions import answer, refused_field
from services.console.web.pages import csrf_checked, render
from shared.ops.dlq import DeadLetterRecord
from shared.platform.auth import Permission, Principal, requires
from shared.platform.errors import ApiError
from shared.platform.service import RuntimeDep
from shared.topics import SERVICES

router = APIRouter(tags=["console dead letters"], include_in_schema=False)


@dataclass(frozen=True)
class Row:
    letter: DeadLetterRecord
    replay: Replay | None

    @property
    def replayed(self) -> bool:
        return self.letter.replayed or self.replay is not None

    @property
    def key(self) -> str:
        return "" if self.letter.key is None else self.letter.key.decode(errors="replace")

    @property
    def dom_id(self) -> str:
        return f"letter-{self.letter.partition}-{self.letter.offset}"


@router.get("/dead-letters", response_class=HTMLResponse)
async def index(
    request: Request, principal: Principal = requires(Permission.ORDERS_READ)
) -> Response:
    """Each service's dead-letter topic; the counts load one by one (htmx)."""
    return render(request, "dead_letters/index.html", principal, services=SERVICES)


@router.get("/dead-letters/{service}/summary", response_class=HTMLResponse)
async def summary(
    request: Request,
    service: str,
    runtime: RuntimeDep,
    principal: Principal = requires(Permission.ORDERS_READ),
) -> Response:
    """One service's counts: letters kept, and those not replayed yet."""
    letters = DeadLetters(runtime.settings)
    state = await letters.state(service)
    async with runtime.pool.acquire() as conn:
        by_console = await replays.replayed_since(conn, state.topic, state.committed)
    return render(
        request,
        "dead_letters/_summary.html",
        principal,
        service=service,
        kept=state.kept,
        waiting=max(0, state.after_bulk_replay - by_console),
    )


@router.get("/dead-letters/{service}", response_class=HTMLResponse)
async def letters_of(
    request: Request,
    service: str,
    runtime: RuntimeDep,
    before: str | None = None,
    principal: Principal = requires(Permission.ORDERS_READ),
) -> Response:
    """The newest dead letters of the service (100 a page), newest first."""
    try:
        until = offset_param("before", before)
    except FormError as exc:
        raise refused_field(exc) from exc
    letters = DeadLetters(runtime.settings)
    page = await letters.page(service, before=until)
    async with runtime.pool.acquire() as conn:
        marks = await replays.replays(
            conn, page.state.topic, [(d.partition, d.offset) for d in page.letters]
        )
    rows = [Row(d, marks.get((d.partition, d.offset))) for d in page.letters]
    return render(
        request,
        "dead_letters/service.html",
        principal,
        service=service,
        state=page.state,
        rows=rows,
        older=page.older,
    )


@router.post(
    "/dead-letters/{service}/{partition}/{offset}/replay",
    response_class=HTMLResponse,
)
async def replay(
    request: Request,
    service: str,
    partition: int,
    offset: int,
    runtime: RuntimeDep,
    principal: Principal = requires(Permission.ORDERS_OPERATE),
    _csrf: None = Depends(csrf_checked),
) -> Response:
    """Send the letter back to its original topic, once."""
    letters = DeadLetters(runtime.settings)
    topic = letters.topic(service)
    letter = await letters.one(service, partition, offset)
    if letter is None:
        raise ApiError(
            404,
            "dead_letter_not_found",
            f"{topic} has no letter at {partition}/{offset} (any more)",
        )
    if letter.truncated:
        raise ApiError(
            409,
            "dead_letter_truncated",
            "too large for the topic: the whole record is in the service's dead_letter_overflow"
            f" table (id {letter.headers.get('x-dlq-stored-id', '?')}); it is not replayed",
        )
    row = Row(letter, None)
    if letter.replayed:
        return _outcome(request, principal, service, row, "already", 409)
    async with runtime.pool.acquire() as conn, conn.transaction():
        mark = await replays.claim(
            conn,
            service=service,
            topic=topic,
            partition=partition,
            offset=offset,
            original_topic=letter.original_topic,
            by=principal.subject,
        )
        if mark is None:
            existing = await replays.replays(conn, topic, [(partition, offset)])
            row = Row(letter, existing.get((partition, offset)))
            return _outcome(request, principal, service, row, "already", 409)
        if not letter.original_topic:
            raise ApiError(409, "no_original_topic", "the letter does not say where it came from")
        await letters.publish_back(letter)
    return _outcome(request, principal, service, Row(letter, mark), "replayed", 200)


def _outcome(
    request: Request, principal: Principal, service: str, row: Row, outcome: str, status: int
) -> HTMLResponse:
    return answer(
        request,
        principal,
        page="dead_letters/replayed.html",
        fragment="dead_letters/_status.html",
        status_code=status,
        service=service,
        row=row,
        outcome=outcome,
    )
