"""A local double of the Stripe answers stripe-mock cannot give (it approves everything): a real
HTTP server (stdlib, 127.0.0.1, a free port, a background thread) answering from Stripe's
documented shapes (docs.stripe.com/api/errors, /api/payment_intents/object):

- card errors: HTTP 402 `{"error": {"type": "card_error", "code", "decline_code", "message",
  "payment_intent": {...}}}`;
- a PaymentIntent that needs 3-D Secure: 200, `status: requires_action`, `next_action`;
- server errors: HTTP 500 `{"error": {"type": "api_error", ...}}`.

`answer` is what the next POST /v1/payment_intents gets; `requests` records (method, path,
Idempotency-Key) of every request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.services import free_port


def card_error(code: str, decline_code: str | None, message: str) -> tuple[int, dict[str, Any]]:
    return 402, {
        "error": {
            "type": "card_error",
            "code": code,
            "decline_code": decline_code,
            "message": message,
            "param": "",
            "payment_intent": {
                "id": "pi_declined",
                "object": "payment_intent",
                "status": "requires_payment_method",
            },
        }
    }


def requires_action() -> tuple[int, dict[str, Any]]:
    return 200, {
        "id": "pi_3ds",
        "object": "payment_intent",
        "amount": 5000,
        "currency": "eur",
        "capture_method": "manual",
        "status": "requires_action",
        "client_secret": "pi_3ds_secret_x",
        "next_action": {"type": "use_stripe_sdk", "use_stripe_sdk": {}},
        "last_payment_error": None,
    }


def signed_event(event_id: str, kind: str, obj: dict[str, Any], secret: str) -> tuple[bytes, str]:
    """A Stripe event and its Stripe-Signature header, as Stripe signs them: HMAC-SHA256 of
    `"{timestamp}.{body}"` with the endpoint's secret, sent as `t=...,v1=...`."""
    timestamp = int(time.time())
    event = {
        "id": event_id,
        "object": "event",
        "type": kind,
        "api_version": "2025-01-01",
        "created": timestamp,
        "data": {"object": obj},
    }
    body = json.dumps(event).encode()
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return body, f"t={timestamp},v1={digest}"


def server_error() -> tuple[int, dict[str, Any]]:
    return 500, {"error": {"type": "api_error", "message": "An unknown error occurred"}}


class StripeDouble:
    def __init__(self) -> None:
        self.port = free_port()
        self.answer: tuple[int, dict[str, Any]] = server_error()
        self.requests: list[tuple[str, str, str | None]] = []
        double = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                double.requests.append(("POST", self.path, self.headers.get("Idempotency-Key")))
                status, body = double.answer
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Request-Id", "req_double")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def stripe_double() -> Iterator[StripeDouble]:
    double = StripeDouble()
    thread = threading.Thread(target=double._server.serve_forever, daemon=True)
    thread.start()
    try:
        yield double
    finally:
        double._server.shutdown()
        double._server.server_close()
