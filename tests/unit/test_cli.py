"""The `vigil` command line against the registry API on fakes."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from registry.api import Registry, create_app
from tests.access import ADMIN_KEY, FakeAuditLog, fake_guard
from tests.unit.fakes import FakeBus, FakeCatalog
from vigil.cli import main


@pytest.fixture
def registry() -> Iterator[TestClient]:
    audit = FakeBus()
    adapters = Registry(FakeBus(), FakeCatalog(), audit_log=FakeAuditLog(audit))
    with TestClient(create_app(adapters=adapters, guard=fake_guard(audit=audit))) as client:
        yield client


def _run(
    registry: TestClient, capsys: pytest.CaptureFixture[str], *argv: str, key: str = ADMIN_KEY
) -> tuple[int, object, str]:
    code = main(["--url", "http://registry", "--key", key, *argv], client=registry)
    out, err = capsys.readouterr()
    return code, json.loads(out) if out else None, err


def test_keys_are_created_listed_rotated_and_revoked(
    registry: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    code, created, _ = _run(
        registry,
        capsys,
        "keys",
        "create",
        "--name",
        "app",
        "--role",
        "producer",
        "--model",
        "credit-risk",
    )
    assert code == 0 and isinstance(created, dict)
    assert created["roles"] == ["producer"] and created["models"] == ["credit-risk"]
    code, listed, _ = _run(registry, capsys, "keys", "list", "--principal", "app")
    assert code == 0 and isinstance(listed, list) and [k["id"] for k in listed] == [created["id"]]
    assert created["key"] not in json.dumps(listed)
    code, rotated, _ = _run(registry, capsys, "keys", "rotate", created["id"])
    assert code == 0 and isinstance(rotated, dict) and rotated["key"] != created["key"]
    code, revoked, _ = _run(registry, capsys, "keys", "revoke", rotated["id"])
    assert code == 0 and isinstance(revoked, dict) and revoked["revoked_at"] is not None
    code, trail, _ = _run(registry, capsys, "audit", "--principal", "admin")
    assert code == 0 and isinstance(trail, dict)
    assert [e["action"] for e in trail["events"]] == [
        "DELETE /v1/keys/{key_id}",
        "POST /v1/keys/{key_id}/rotate",
        "POST /v1/keys",
    ]


def test_a_refusal_is_printed_with_the_servers_reason_and_exits_1(
    registry: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(registry, capsys, "keys", "list", key="vgl_nope")
    assert code == 1 and "401" in err and "not known" in err
