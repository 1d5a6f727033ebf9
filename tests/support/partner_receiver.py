"""A 3PL's webhook endpoint for the tests: a real HTTP server on 127.0.0.1 (a random port, or
the one it had before a restart) that checks each request's signature on its own (HMAC-SHA256
over `timestamp.body`, computed here, not with the service's code) and keeps what it got."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    signature_valid: bool

    def json(self) -> Any:
        return json.loads(self.body)


class PartnerReceiver:
    def __init__(self, secret: bytes, *, answer: int = 200) -> None:
        self.secret = secret
        self.answer = answer
        self.received: list[Received] = []
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/oms/requests"

    def valid(self, timestamp: str, signature: str, body: bytes) -> bool:
        expected = hmac.new(self.secret, f"{timestamp}.".encode() + body, hashlib.sha256)
        fresh = abs(time.time() - int(timestamp)) <= 300 if timestamp.isdigit() else False
        return fresh and hmac.compare_digest(f"sha256={expected.hexdigest()}", signature)

    def start(self) -> PartnerReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                valid = receiver.valid(
                    headers.get("x-oms-timestamp", ""), headers.get("x-oms-signature", ""), body
                )
                receiver.received.append(Received(self.path, headers, body, valid))
                status = receiver.answer if valid else 401
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": true}' if status < 300 else b'{"error": "refused"}')

            def log_message(self, format: str, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Down: the port refuses connections until `start` again (on the same port)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
