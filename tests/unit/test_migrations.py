from __future__ import annotations

from pathlib import Path

import pytest

from shared.platform.migrations import MigrationError, all_migrations, discover

SERVICES = Path(__file__).resolve().parents[2] / "services"


def test_discovers_in_order_and_platform_first(tmp_path: Path):
    (tmp_path / "0002_second.sql").write_text("SELECT 2;")
    (tmp_path / "0001_first.sql").write_text("SELECT 1;")
    found = all_migrations(tmp_path)
    assert found[0].component == "platform"
    service = [m for m in found if m.component == "service"]
    assert [(m.version, m.name) for m in service] == [(1, "first"), (2, "second")]
    assert service[0].checksum != service[1].checksum


def test_rejects_badly_named_and_duplicate_files(tmp_path: Path):
    (tmp_path / "init.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="NNNN_name"):
        discover("service", tmp_path)
    (tmp_path / "init.sql").unlink()
    (tmp_path / "0001_a.sql").write_text("")
    (tmp_path / "0001_b.sql").write_text("")
    with pytest.raises(MigrationError, match="duplicate"):
        discover("service", tmp_path)


@pytest.mark.parametrize(
    "service", ["order_intake", "inventory", "payment", "fulfilment", "returns"]
)
def test_every_service_has_well_formed_migrations(service: str):
    assert discover("service", SERVICES / service / "migrations")
