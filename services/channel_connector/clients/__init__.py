"""One client per channel API: the module `<channel>.py` here, with a
`create(account, settings) -> ChannelClient` (see base.py), found by the account's `channel`;
modules named `_*.py` are a client's own helpers, not channels.
Tests register their own factories with `register`.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable

from services.channel_connector.clients.base import ChannelClient
from services.channel_connector.settings import AccountSettings, ChannelConnectorSettings

ClientFactory = Callable[[AccountSettings, ChannelConnectorSettings], ChannelClient]

_REGISTERED: dict[str, ClientFactory] = {}
_NOT_CHANNELS = frozenset({"base"})


def register(channel: str, factory: ClientFactory) -> None:
    _REGISTERED[channel] = factory


def channels() -> list[str]:
    """The channels a client exists for."""
    modules = {
        m.name
        for m in pkgutil.iter_modules(__path__)
        if m.name not in _NOT_CHANNELS and not m.name.startswith("_")
    }
    return sorted(modules | set(_REGISTERED))


def client_for(account: AccountSettings, settings: ChannelConnectorSettings) -> ChannelClient:
    factory = _REGISTERED.get(account.channel)
    if factory is None:
        if account.channel not in channels():
            raise ValueError(
                f"account {account.name}: no client for channel {account.channel!r}"
                f" (known: {', '.join(channels()) or 'none'})"
            )
        module = importlib.import_module(f"{__name__}.{account.channel}")
        factory = module.create
    return factory(account, settings)
