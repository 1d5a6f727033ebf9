"""Typed settings for routes and app wiring; WHERE clauses of listings."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.platform.db import Filters
from shared.platform.saga.idempotency import request_hash
from shared.platform.saga.settings import SagaSettings
from shared.platform.service import ServiceSpec, settings_as
from shared.platform.settings import ServiceSettings


class ThisSettings(ServiceSettings):
    service_name: str = "this"
    db_schema: str = "this"
    http_port: int = 1


class OtherSettings(SagaSettings):
    service_name: str = "other"
    db_schema: str = "other"
    http_port: int = 2


def test_settings_are_handed_out_as_the_service_own_class_only():
    settings = ThisSettings()
    assert settings_as(ThisSettings, settings) is settings
    assert settings_as(ServiceSettings, settings) is settings
    with pytest.raises(TypeError, match="runs with ThisSettings, not OtherSettings"):
        settings_as(OtherSettings, settings)
    spec = ServiceSpec(settings=settings, title="t", description="d", migrations=Path("."))
    assert spec.settings_as(ThisSettings) is settings


def test_filters_number_their_arguments_and_skip_unset_ones():
    filters = Filters()
    filters.equal("order_id", None)
    filters.equal("status", "OPEN")
    filters.condition(f"created_at < {filters.param('2026-01-01')}")
    assert filters.where == "WHERE status = $1 AND created_at < $2"
    assert f"LIMIT {filters.param(10)}" == "LIMIT $3"
    assert filters.args == ["OPEN", "2026-01-01", 10]
    assert Filters().where == ""


def test_a_request_hash_ignores_key_order():
    assert request_hash({"a": 1, "b": [1, 2]}) == request_hash({"b": [1, 2], "a": 1})
    assert request_hash({"a": 1}) != request_hash({"a": 2})
