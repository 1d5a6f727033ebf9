"""`oms.channel.orders.v1`: channel orders arriving over Kafka (`ChannelOrderReceived`).

The same adapters and the same intake as the webhook endpoint, inside the consumer's
transaction. What differs from HTTP:

- a message that can never become an order (unknown channel, not JSON, a payload that does not
  map, a signature that does not match) raises `PermanentFailure`: nothing is written and the
  message goes to `oms.dlq.order_intake.v1` at once (reason `rejected`, the error naming the
  field), where an operator can read, fix and replay it;
- a forwarded webhook's signature is verified when the message carries it; messages without
  one are trusted (the broker authenticates the producers);
- a channel cancellation the saga refuses (the order shipped) is not an error: it is recorded
  in the order's timeline with an operator alert, and the message is acknowledged.

The inbox drops a redelivered message (same message id); a re-sent one (new message id) is
deduped like a webhook: on its delivery id header, and on (channel, external order id).
"""

from __future__ import annotations

import logging

from services.order_intake.channels.adapters.base import lower_keys
from services.order_intake.channels.service import find_adapter, read_delivery, take_in
from services.order_intake.domain.saga import SagaPolicy
from services.order_intake.rejected_requests.refusal import IntakeRefused
from services.order_intake.settings import OrderIntakeSettings
from shared.contracts.channels import ChannelOrderReceived
from shared.envelope import Envelope
from shared.platform.consumer import Handler, PermanentFailure
from shared.platform.outbox import UnitOfWork

log = logging.getLogger(__name__)


def channel_order_handlers(settings: OrderIntakeSettings, policy: SagaPolicy) -> dict[str, Handler]:
    async def on_channel_order(
        uow: UnitOfWork, envelope: Envelope, message: ChannelOrderReceived
    ) -> None:
        headers = lower_keys(message.headers)
        raw = message.payload.encode(errors="replace")
        try:
            adapter = find_adapter(message.channel)
            if len(raw) > settings.max_body_bytes:
                raise IntakeRefused(
                    413, "payload_too_large", f"the payload exceeds {settings.max_body_bytes} bytes"
                )
            if adapter.is_ping is not None and adapter.is_ping(raw, headers):
                return
            result = read_delivery(adapter, settings, headers, raw, signature_required=False)
        except IntakeRefused as refused:
            raise PermanentFailure(refused.code, refused.message) from refused
        outcome = await take_in(uow, policy, adapter, headers, raw, result)
        log.info(
            "%s order %s from Kafka: %s%s (order %s)",
            adapter.name,
            outcome.external_id,
            outcome.kind,
            " (repeat)" if outcome.duplicate else "",
            outcome.order_id,
        )

    return {ChannelOrderReceived.TYPE: on_channel_order}
