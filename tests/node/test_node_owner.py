"""The owner's levers on a node in-process: pause/resume routes, the state in /v1/info and load events,
what happens to queued and running jobs, the schedule on the node's clock, the status page and /metrics."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from farm.core.availability import State
from node import keys
from node.config import ConfigError, resolve
from tests.node.conftest import Clock, make_app
from tests.node.helpers import SIGNED, TOKEN, check_schema, job_body, mask_png, png
from tests.node.test_node_api import SLOW, submit, upload, wait_state

IMG, MASK = png(), mask_png()


async def state_of(client: Any) -> dict[str, Any]:
    body = await (await client.get("/v1/info")).json()
    check_schema("Info", body)
    return body


async def test_pause_refuses_new_jobs_and_resume_takes_them_again(node_client: Any) -> None:
    client = await node_client()
    await upload(client, IMG, MASK)
    resp = await client.post("/v1/pause", json={"for": 7200, "reason": "gaming"})
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    check_schema("Availability", body)
    assert body["state"] == "paused" and body["reason"] == "gaming" and body["until"] > 0
    info = await state_of(client)
    assert (info["state"], info["reason"]) == ("paused", "gaming")
    refused = await client.post("/v1/jobs", json=job_body("while-paused", IMG, MASK))
    assert refused.status == 503
    error = (await refused.json())["error"]
    assert error["code"] == "not_available" and "paused: gaming" in error["message"]
    resumed = await client.post("/v1/resume")
    assert (await resumed.json())["state"] == "available"
    await submit(client, "after-resume")
    assert (await wait_state(client, "after-resume", "done"))["state"] == "done"


async def test_pause_and_resume_need_a_signed_request(node_client: Any, aiohttp_client: Any) -> None:
    client = await node_client()
    unsigned = await aiohttp_client(client.app)  # the same app, no signing middleware
    for path in ("/v1/pause", "/v1/resume"):
        resp = await unsigned.post(path, json={})
        assert resp.status == 401
    assert (await state_of(client))["state"] == "available"


@pytest.mark.parametrize(
    "body", [{"for": -1}, {"for": "2h"}, {"for": True}, {"for": 1e12}, {"until": 5}, {"reason": 5}, [1]]
)
async def test_a_bad_pause_is_400_and_changes_nothing(node_client: Any, body: Any) -> None:
    client = await node_client()
    resp = await client.post("/v1/pause", json=body)
    assert resp.status == 400
    check_schema("Error", await resp.json())
    assert (await state_of(client))["state"] == "available"


async def test_a_timed_pause_ends_on_the_nodes_clock(aiohttp_client: Any) -> None:
    clock = Clock()
    client = await aiohttp_client(make_app(clock=clock), middlewares=SIGNED)
    await client.post("/v1/pause", json={"for": 60})
    steward = client.app[keys.STEWARD]
    clock.now += 59
    assert steward.check().state is State.PAUSED
    clock.now += 1
    assert steward.check().state is State.AVAILABLE
    assert (await state_of(client))["state"] == "available"


async def test_pause_lets_the_running_job_finish_and_hands_queued_ones_back(node_client: Any) -> None:
    client = await node_client()  # one slot: the second job waits
    await upload(client, IMG, MASK)
    await submit(client, "running-one", **SLOW)
    await submit(client, "queued-one", **SLOW)
    await wait_state(client, "running-one", "running")
    await client.post("/v1/pause", json={})
    queued = await wait_state(client, "queued-one", "cancelled")
    assert "handed back" in (queued["error"] or "")
    assert (await wait_state(client, "running-one", "done", timeout=15))["state"] == "done"  # on_pause = finish


async def test_on_pause_yield_hands_the_running_job_back(node_client: Any) -> None:
    client = await node_client(on_pause="yield")
    await upload(client, IMG, MASK)
    await submit(client, "yielded-job", **SLOW)
    await wait_state(client, "yielded-job", "running")
    await client.post("/v1/pause", json={})
    job = await wait_state(client, "yielded-job", "cancelled")
    assert "handed back: this node is paused" in job["error"]


async def test_nimby_yields_by_default_and_offers_the_node_again(node_client: Any) -> None:
    client = await node_client()
    await upload(client, IMG, MASK)
    await submit(client, "at-the-pc", **SLOW)
    await wait_state(client, "at-the-pc", "running")
    steward = client.app[keys.STEWARD]
    user: dict[str, str] = {"now": "its user is at the PC"}
    steward.nimby = lambda now: (user["now"], None)  # a stand-in probe: the X11 one is tested under Xvfb
    assert steward.check().state is State.NIMBY
    assert (await wait_state(client, "at-the-pc", "cancelled"))["error"].startswith("handed back")
    user["now"] = ""
    assert steward.check().available


async def test_the_state_reaches_event_subscribers_at_once(node_client: Any) -> None:
    client = await node_client()
    async with client.ws_connect("/v1/events") as ws:
        for _ in range(2):  # a heartbeat and a load on connect
            await ws.receive_json(timeout=5)
        await client.post("/v1/pause", json={"reason": "rendering"})
        while True:
            msg = await ws.receive_json(timeout=5)
            if msg["type"] == "load":
                break
    check_schema("LoadEvent", msg)
    assert (msg["state"], msg["reason"]) == ("paused", "rendering")


async def test_drain_is_reversible(node_client: Any) -> None:
    client = await node_client()
    await upload(client, IMG, MASK)
    await client.post("/v1/drain")
    assert (await state_of(client))["state"] == "draining"
    assert (await client.post("/v1/jobs", json=job_body("drained-job", IMG, MASK))).status == 503
    await client.post("/v1/resume")
    info = await state_of(client)
    assert info["state"] == "available" and info["draining"] is False
    await submit(client, "undrained-job")


async def test_outside_the_schedule_takes_no_jobs(aiohttp_client: Any) -> None:
    # 1_000_000 s after the epoch is a Monday, 13:46 UTC: this window is closed then
    clock = Clock()
    app = make_app(clock=clock, schedule=("mon 20:00-22:00",), timezone="UTC")
    client = await aiohttp_client(app, middlewares=SIGNED)
    info = await state_of(client)
    assert info["state"] == "schedule" and info["until"] == 1_000_000 - 13 * 3600 - 46 * 60 - 40 + 20 * 3600
    clock.now = info["until"]
    assert client.app[keys.STEWARD].check().available


def test_bad_schedule_and_settings_are_refused_by_name() -> None:
    with pytest.raises(ConfigError, match=r"schedule.*'mon-fry 19:00-08:00'.*unknown day"):
        resolve({}, {"LANFARM_SCHEDULE": "sat-sun; mon-fry 19:00-08:00"}, {})
    with pytest.raises(ConfigError, match="on_nimby"):
        resolve({}, {}, {"on_nimby": "later"})
    with pytest.raises(ConfigError, match="timezone"):
        resolve({}, {}, {"timezone": "Mars/Olympus"})
    config, origin = resolve({}, {}, {"schedule": ["mon-fri 19:00-08:00", "sat-sun"]})
    assert config.schedule == ("mon-fri 19:00-08:00", "sat-sun") and origin["schedule"] == "file"


async def test_status_page_is_public_and_never_holds_the_token(node_client: Any, aiohttp_client: Any) -> None:
    client = await node_client()
    await client.post("/v1/pause", json={"reason": "gaming"})
    unsigned = await aiohttp_client(client.app)
    resp = await unsigned.get("/")
    assert resp.status == 200 and resp.content_type == "text/html"
    page = await resp.text()
    assert TOKEN not in page
    assert 'id="state">paused<' in page and "gaming" in page and "lanfarm token" in page


async def test_metrics_are_signed_unless_opened(node_client: Any, aiohttp_client: Any) -> None:
    client = await node_client()
    await upload(client, IMG, MASK)
    await submit(client, "counted-job")
    await wait_state(client, "counted-job", "done")
    await client.post("/v1/pause", json={})
    assert (await (await aiohttp_client(client.app)).get("/metrics")).status == 401
    text = await (await client.get("/metrics")).text()
    assert 'lanfarm_node_jobs_total{engine="sim",outcome="done"} 1.0' in text
    assert 'lanfarm_node_job_seconds_count{engine="sim"} 1.0' in text
    assert 'lanfarm_node_availability{state="paused"} 1.0' in text
    assert "lanfarm_node_queue_jobs 0.0" in text and "lanfarm_node_busy_slots 0.0" in text
    opened = await node_client(metrics_open=True)
    assert (await (await aiohttp_client(opened.app)).get("/metrics")).status == 200


async def test_two_apps_keep_their_own_counters(node_client: Any) -> None:
    a, b = await node_client(), await node_client()
    await upload(a, IMG, MASK)
    await submit(a, "only-on-a-job")
    await wait_state(a, "only-on-a-job", "done")
    await asyncio.sleep(0)
    assert 'outcome="done"' not in await (await b.get("/metrics")).text()
