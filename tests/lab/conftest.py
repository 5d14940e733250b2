"""Fixtures of the LAN lab. Lab tests need root; they are skipped elsewhere but never in CI (root)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.lab import netlab


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Lab tests (``pytestmark = pytest.mark.lab``) are skipped only outside CI when no lab can be built."""
    here = os.path.dirname(__file__)
    lab_items = [item for item in items if str(item.path).startswith(here)]
    reason = netlab.available() if lab_items else None
    for item in lab_items:
        if reason and not os.environ.get("CI"):
            item.add_marker(pytest.mark.skip(reason=f"LAN lab: {reason}"))


@pytest.fixture(scope="session", autouse=True)
def _stale_lab_namespaces() -> None:
    """Namespaces of earlier runs that crashed before their teardown."""
    if netlab.available() is None:
        netlab.cleanup_stale()


@pytest.fixture
def lab() -> Iterator[netlab.Lab]:
    """Two hosts, 10.77.0.1 and 10.77.0.2, on one bridge; torn down even when the test fails."""
    with netlab.Lab(2) as built:
        yield built
