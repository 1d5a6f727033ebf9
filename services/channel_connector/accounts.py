"""The channel accounts this connector serves, each with its client."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from services.channel_connector.clients import client_for
from services.channel_connector.clients.base import Capability, ChannelClient
from services.channel_connector.settings import AccountSettings, ChannelConnectorSettings

_ENABLED_BY = {
    Capability.POLL_ORDERS: "poll_orders",
    Capability.STOCK: "push_stock",
    Capability.SHIPMENTS: "push_shipments",
    Capability.CANCELLATIONS: "push_cancellations",
    Capability.REFUNDS: "push_refunds",
}


@dataclass(frozen=True)
class Account:
    settings: AccountSettings
    client: ChannelClient

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def channel(self) -> str:
        return self.settings.channel

    def wants(self, capability: Capability) -> bool:
        """The account's settings did not turn it off (whether the client can or not)."""
        flag = _ENABLED_BY.get(capability)
        return flag is None or bool(getattr(self.settings, flag))

    def does(self, capability: Capability) -> bool:
        """The client can, and the account's settings did not turn it off."""
        if capability not in self.client.capabilities:
            return False
        flag = _ENABLED_BY.get(capability)
        return flag is None or bool(getattr(self.settings, flag))


class Accounts:
    def __init__(self, accounts: list[Account]) -> None:
        names = [account.name for account in accounts]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"connector accounts named twice: {', '.join(duplicates)}")
        self._by_name = {account.name: account for account in accounts}

    @classmethod
    def from_settings(cls, settings: ChannelConnectorSettings) -> Accounts:
        return cls([Account(a, client_for(a, settings)) for a in settings.connector_accounts])

    def __iter__(self) -> Iterator[Account]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def get(self, name: str) -> Account | None:
        return self._by_name.get(name)

    def names(self) -> list[str]:
        return list(self._by_name)

    def channels(self) -> set[str]:
        return {account.channel for account in self}

    def doing(self, capability: Capability, channel: str | None = None) -> list[Account]:
        return [
            account
            for account in self
            if account.does(capability) and (channel is None or account.channel == channel)
        ]

    def serving(self, channel: str, preferred: str | None = None) -> Account | None:
        """The account a channel order belongs to: the one that handed it in (polled or
        fetched), else the first account of the channel."""
        if preferred is not None:
            found = self._by_name.get(preferred)
            if found is not None and found.channel == channel:
                return found
        return next((account for account in self if account.channel == channel), None)
