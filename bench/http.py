"""A small HTTP/1.1 keep-alive client on asyncio streams, for the load generator.

A general-purpose client spends a few hundred microseconds of CPU per request; on a 2-core box
shared with everything under test that is load the benchmark would add itself. This one writes
the request bytes and reads the answer by Content-Length (or chunks), nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit


class HttpError(Exception):
    pass


class _Connection:
    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self._host, self._port)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        for attempt in (1, 2):
            try:
                if self._writer is None:
                    await self._open()
                return await self._exchange(method, path, body, headers)
            except (OSError, asyncio.IncompleteReadError) as exc:
                # A kept-alive connection the server closed meanwhile: reconnect once.
                self.close()
                if attempt == 2:
                    raise HttpError(f"{method} {path}: {exc!r}") from exc
        raise AssertionError("unreachable")

    async def _exchange(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        assert self._reader is not None and self._writer is not None
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self._host}:{self._port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        payload = body or b""
        if body is not None or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(payload)}")
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        length: int | None = None
        chunked = close = False
        for line in header_lines:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
            elif name == "connection" and value.strip().lower() == "close":
                close = True
        if chunked:
            data = await self._read_chunks()
        elif length is not None:
            data = await self._reader.readexactly(length)
        else:
            data = await self._reader.read()
            close = True
        if close:
            self.close()
        return status, data

    async def _read_chunks(self) -> bytes:
        assert self._reader is not None
        parts: list[bytes] = []
        while True:
            size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self._reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)


class HttpPool:
    """Up to `size` kept-alive connections to one origin; one request per connection at once."""

    def __init__(self, base_url: str, size: int, headers: dict[str, str] | None = None) -> None:
        parts = urlsplit(base_url)
        self._headers = headers or {}
        assert parts.hostname is not None and parts.port is not None
        self._idle: asyncio.Queue[_Connection] = asyncio.Queue()
        for _ in range(size):
            self._idle.put_nowait(_Connection(parts.hostname, parts.port))
        self._all = list(self._idle._queue)  # type: ignore[attr-defined]

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[_Connection]:
        conn = await self._idle.get()
        try:
            yield conn
        except BaseException:
            conn.close()
            raise
        finally:
            self._idle.put_nowait(conn)

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        async with self._connection() as conn:
            return await conn.request(method, path, body, {**self._headers, **(headers or {})})

    async def post_json(self, path: str, body: bytes) -> tuple[int, bytes]:
        return await self.request("POST", path, body, {"Content-Type": "application/json"})

    async def get(self, path: str) -> tuple[int, bytes]:
        return await self.request("GET", path)

    def close(self) -> None:
        for conn in self._all:
            conn.close()
