"""Fixtures for node tests: an in-process node app (simulated engine) with its own LANFARM_HOME."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from farm.engines.installed import default_registry
from farm.local.hardware import Hardware
from node.app import create_app
from node.config import NodeConfig
from tests.node.helpers import SIGNED, TOKEN

FAKE_HW = Hardware(cpu="Test CPU", cpu_count=2, ram_total=1 << 33)


def _slot_threads() -> int:
    return sum(t.name.startswith(("lanfarm-slot", "lanfarm-cpu")) for t in threading.enumerate())


@pytest.fixture(autouse=True)
def no_leaked_slot_threads() -> Iterator[None]:
    """Every app a test starts must join its job-slot and CPU-pool threads when it stops."""
    before = _slot_threads()
    yield
    assert _slot_threads() <= before, "job slot or CPU pool threads outlived their app"


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("LANFARM_TOKEN", "LANFARM_MODELS_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LANFARM_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


class Clock:
    """A clock the test moves by hand (retention tests)."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_app(*, sim_fail: bool = False, clock: Callable[[], float] | None = None, **settings: Any) -> web.Application:
    config = NodeConfig(**{"advertise": False, "slots": 1, **settings})
    kwargs: dict[str, Any] = {"clock": clock} if clock else {}
    return create_app(
        config,
        registry=default_registry(simulate=True, sim_fail=sim_fail),
        token=TOKEN,
        node_id="testnode0001",
        hardware=FAKE_HW,
        **kwargs,
    )


NodeClient = TestClient[web.Request, web.Application]


@pytest.fixture
def node_client(aiohttp_client: Any) -> Callable[..., Awaitable[NodeClient]]:
    """``await node_client(**settings)``: a test client of a fresh node app; auth headers preset."""

    async def factory(**settings: Any) -> NodeClient:
        return await aiohttp_client(make_app(**settings), middlewares=SIGNED)

    return factory
