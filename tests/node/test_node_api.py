"""The /v1 API in-process (aiohttp_client): behaviour and responses checked against node/openapi.yaml."""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

import pytest

from farm.engines import installed
from node import keys
from node.app import create_app
from node.auth import BEARER_MESSAGE
from node.config import NodeConfig
from tests.node.conftest import FAKE_HW, Clock, NodeClient, make_app
from tests.node.helpers import SIGNED, TOKEN, check_schema, job_body, mask_png, png, sha

IMG, MASK = png(), mask_png()
SLOW = {"seconds_per_mp": 600.0}  # 64x64 -> about 2.5 s in 10 steps


async def upload(client: NodeClient, *blobs: bytes) -> None:
    for data in blobs:
        resp = await client.put(f"/v1/blobs/{sha(data)}", data=data)
        assert resp.status in (200, 201), await resp.text()


async def submit(client: NodeClient, job_id: str, **kw: Any) -> dict[str, Any]:
    resp = await client.post("/v1/jobs", json=job_body(job_id, IMG, MASK, **kw))
    assert resp.status == 202, await resp.text()
    body = await resp.json()
    check_schema("Job", body)
    return body


async def wait_state(client: NodeClient, job_id: str, *states: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = await (await client.get(f"/v1/jobs/{job_id}")).json()
        if body["state"] in states:
            check_schema("Job", body)
            return body
        assert time.monotonic() < deadline, f"job {job_id} stuck in {body['state']}"
        await asyncio.sleep(0.02)


async def test_health_needs_no_token(node_client: Any) -> None:
    client = await node_client()
    resp = await client.get("/v1/health", headers={"Authorization": ""})
    assert resp.status == 200
    body = await resp.json()
    check_schema("Health", body)
    assert body["id"] == "testnode0001"


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic dGVzdA==", "Bearer", "bearer  "])
async def test_wrong_or_missing_token_is_401_without_the_token(node_client: Any, header: str | None) -> None:
    client = await node_client()
    headers = {"Authorization": header} if header is not None else {"Authorization": ""}
    resp = await client.get("/v1/info", headers=headers)
    assert resp.status == 401
    body = await resp.json()
    check_schema("Error", body)
    bearer = (header or "").strip().lower().startswith("bearer ")
    assert body["error"]["message"] == (BEARER_MESSAGE if bearer else "missing or wrong farm token")
    assert TOKEN not in await resp.text()


async def test_info_matches_schema(node_client: Any, home: Any) -> None:
    client = await node_client(slots=2, models_dir=home / "models")
    (home / "models").mkdir(parents=True)
    (home / "models" / "big-lama.safetensors").write_bytes(b"x" * 10)
    body = await (await client.get("/v1/info")).json()
    check_schema("Info", body)
    assert body["slots"] == {"total": 2, "free": 2}
    assert body["hardware"]["backend"] == "cpu"
    # AI engines appear too where the ai extra is installed, unavailable without models
    assert {e["id"] for e in body["engines"] if e["available"]} == {"cv2", "sim", "sim-upscale"}
    assert [(m["name"], m["kind"], m["size"]) for m in body["models"]] == [("big-lama.safetensors", "lama", 10)]
    assert body["models"][0]["id"] == hashlib.sha256(b"x" * 10).hexdigest()  # content id, hashed once
    # lite comes from the registry: registered AI engines (even without a model) make the node not lite
    ai = {"lama", "upscale", "sd-inpaint"} & {e["id"] for e in body["engines"]}
    assert body["lite"] is (not ai)


@pytest.mark.parametrize(("missing", "lite"), [((), False), (("diffusers",), False), (("torch",), True)])
async def test_info_lite_is_the_registrys(
    aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch, missing: tuple[str, ...], lite: bool
) -> None:
    """/v1/info's lite says whether an AI engine is registered, not whether one particular library imports."""
    monkeypatch.setattr(installed, "missing_modules", lambda names: [n for n in names if n in missing])
    registry = installed.default_registry(simulate=True)
    app = create_app(
        NodeConfig(advertise=False, slots=1), registry=registry, token=TOKEN, node_id="testnode0001", hardware=FAKE_HW
    )
    client = await aiohttp_client(app, middlewares=SIGNED)
    body = await (await client.get("/v1/info")).json()
    assert body["lite"] is lite is registry.lite
    assert ("lama" in {e["id"] for e in body["engines"]}) is not lite


async def test_blob_put_head_and_dedupe(node_client: Any) -> None:
    client = await node_client()
    name = sha(IMG)
    assert (await client.head(f"/v1/blobs/{name}")).status == 404
    resp = await client.put(f"/v1/blobs/{name}", data=IMG)
    assert resp.status == 201
    check_schema("BlobStored", await resp.json())
    assert (await client.head(f"/v1/blobs/{name}")).status == 200
    again = await client.put(f"/v1/blobs/{name}", data=IMG)
    assert again.status == 200 and (await again.json())["stored"] is False


async def test_blob_hash_mismatch_is_422_and_not_stored(node_client: Any) -> None:
    client = await node_client()
    name = sha(b"something else")
    resp = await client.put(f"/v1/blobs/{name}", data=IMG)
    assert resp.status == 422
    body = await resp.json()
    check_schema("Error", body)
    assert body["error"]["code"] == "hash_mismatch"
    assert (await client.head(f"/v1/blobs/{name}")).status == 404
    blobs = client.app[keys.BLOBS]
    assert not [p for p in blobs.folder.iterdir()]


async def test_blob_bad_name_is_422(node_client: Any) -> None:
    client = await node_client()
    assert (await client.put("/v1/blobs/xyz", data=b"1")).status == 422


async def test_oversized_blob_is_413_streamed_and_declared(node_client: Any) -> None:
    client = await node_client(max_upload_mb=0.001)  # 1048 bytes
    big = b"x" * 5000
    resp = await client.put(f"/v1/blobs/{sha(big)}", data=big)
    assert resp.status == 413
    check_schema("Error", await resp.json())

    async def chunks() -> Any:
        for _ in range(5):
            yield b"x" * 1000

    resp = await client.put(f"/v1/blobs/{sha(big)}", data=chunks())
    assert resp.status == 413
    assert not list(client.app[keys.BLOBS].folder.iterdir())


async def test_job_runs_to_done_with_result_hash(node_client: Any) -> None:
    client = await node_client()
    await upload(client, IMG, MASK)
    await submit(client, "job-cv2-001", engine="cv2")
    done = await wait_state(client, "job-cv2-001", "done", "failed")
    assert done["state"] == "done", done["error"]
    assert done["progress"] == 1.0 and done["started"] and done["finished"]
    resp = await client.get("/v1/jobs/job-cv2-001/result")
    assert resp.status == 200 and resp.content_type == "image/png"
    data = await resp.read()
    assert sha(data) == resp.headers["X-Content-SHA256"] == done["result"]["sha256"]
    info = await (await client.get("/v1/info")).json()
    assert info["jobs"] == {"done": 1, "failed": 0}


async def test_resubmitting_an_id_returns_the_same_job_and_runs_once(node_client: Any) -> None:
    client = await node_client()
    await upload(client, IMG, MASK)
    await submit(client, "same-id-01", seconds_per_mp=1.0)
    resp = await client.post("/v1/jobs", json=job_body("same-id-01", IMG, MASK, seconds_per_mp=1.0))
    assert resp.status == 200
    assert (await resp.json())["id"] == "same-id-01"
    await wait_state(client, "same-id-01", "done")
    resp = await client.post("/v1/jobs", json=job_body("same-id-01", IMG, MASK))
    assert resp.status == 200 and (await resp.json())["state"] == "done"
    assert client.app[keys.RUNNER].book.done == 1


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"id": "short"}, 422, "invalid"),
        ({"id": "valid-id-1", "spec": {"schema": 99}, "image": "0" * 64}, 422, "bad_spec"),
        (
            {"id": "valid-id-2", "spec": {"schema": 1, "op": "inpaint", "engine": "nope"}, "image": "0" * 64},
            422,
            "engine",
        ),
        (
            {
                "id": "valid-id-3",
                "spec": {"schema": 1, "op": "inpaint", "engine": "sim", "params": {"seconds_per_mp": -1}},
                "image": "0" * 64,
            },
            422,
            "bad_spec",
        ),
        (
            {
                "id": "valid-id-4",
                "spec": {"schema": 1, "op": "inpaint", "engine": "sim"},
                "image": "0" * 64,
                "mask": "1" * 64,
            },
            409,
            "missing_blob",
        ),
        (
            {"id": "valid-id-5", "spec": {"schema": 1, "op": "inpaint", "engine": "sim"}, "image": "0" * 64},
            422,
            "invalid",
        ),
        ([1, 2], 422, "invalid"),
    ],
)
async def test_bad_jobs_get_readable_errors(node_client: Any, body: Any, status: int, code: str) -> None:
    client = await node_client()
    resp = await client.post("/v1/jobs", json=body)
    assert resp.status == status, await resp.text()
    err = await resp.json()
    check_schema("Error", err)
    assert err["error"]["code"] == code


async def test_not_json_is_400(node_client: Any) -> None:
    client = await node_client()
    resp = await client.post("/v1/jobs", data=b"{nope")
    assert resp.status == 400
    check_schema("Error", await resp.json())


async def test_unknown_route_and_job_are_json_404(node_client: Any) -> None:
    client = await node_client()
    for path in ("/v1/nope", "/v1/jobs/unknown-job-1"):
        resp = await client.get(path)
        assert resp.status == 404
        check_schema("Error", await resp.json())
    resp = await client.get("/v1/jobs/unknown-job-1/result")
    assert resp.status == 404


async def test_cancel_queued_and_running(node_client: Any) -> None:
    client = await node_client(slots=1)
    await upload(client, IMG, MASK)
    await submit(client, "running-01", **SLOW)
    await submit(client, "queued-001", **SLOW)
    await wait_state(client, "running-01", "running")
    resp = await client.delete("/v1/jobs/queued-001")
    assert (await resp.json())["state"] == "cancelled"
    resp = await client.delete("/v1/jobs/running-01")
    assert (await resp.json())["state"] in ("running", "cancelled")
    t0 = time.monotonic()
    cancelled = await wait_state(client, "running-01", "cancelled", "done", timeout=5)
    assert cancelled["state"] == "cancelled" and time.monotonic() - t0 < 1.5
    runner = client.app[keys.RUNNER]
    await asyncio.sleep(0.05)
    assert runner.free == 1 and runner.book.get("queued-001").started is None
    resp = await client.get("/v1/jobs/queued-001/result")
    assert resp.status == 409
    check_schema("Error", await resp.json())


async def test_timeout_fails_the_job_and_frees_the_slot(node_client: Any) -> None:
    client = await node_client(job_timeout=0.3)
    await upload(client, IMG, MASK)
    await submit(client, "slow-job-1", **SLOW)
    failed = await wait_state(client, "slow-job-1", "failed", "done")
    assert failed["error"] == "timed out after 0.3 s"
    await submit(client, "next-job-1", seconds_per_mp=1.0)
    assert (await wait_state(client, "next-job-1", "done", "failed"))["state"] == "done"


async def test_engine_failure_fails_only_that_job(aiohttp_client: Any) -> None:
    client = await aiohttp_client(make_app(sim_fail=True), middlewares=SIGNED)
    await upload(client, IMG, MASK)
    await submit(client, "broken-job", seconds_per_mp=0.0)
    failed = await wait_state(client, "broken-job", "failed", "done")
    assert "simulated GPU fault" in failed["error"]
    assert (await client.get("/v1/health")).status == 200
    info = await (await client.get("/v1/info")).json()
    assert info["jobs"]["failed"] == 1 and info["slots"]["free"] == 1


async def test_bad_image_fails_the_job_with_its_reason(node_client: Any) -> None:
    client = await node_client()
    junk = b"not an image at all"
    await upload(client, junk, MASK)
    resp = await client.post("/v1/jobs", json=job_body("junk-img-1", junk, MASK))
    assert resp.status == 202
    failed = await wait_state(client, "junk-img-1", "failed")
    assert "not an image" in failed["error"]


async def test_drain_refuses_new_jobs_with_503(node_client: Any) -> None:
    client = await node_client()
    await upload(client, IMG, MASK)
    await submit(client, "before-drain", seconds_per_mp=1.0)
    resp = await client.post("/v1/drain")
    check_schema("Drain", await resp.json())
    resp = await client.post("/v1/jobs", json=job_body("after-drain", IMG, MASK))
    assert resp.status == 503
    check_schema("Error", await resp.json())
    assert (await wait_state(client, "before-drain", "done"))["state"] == "done"


async def test_retention_forgets_finished_jobs_and_releases_results(aiohttp_client: Any) -> None:
    clock = Clock()
    app = make_app(clock=clock, result_retention=60.0)
    client = await aiohttp_client(app, middlewares=SIGNED)
    await upload(client, IMG, MASK)
    await submit(client, "retained-1", engine="cv2")
    done = await wait_state(client, "retained-1", "done")
    runner, blobs = app[keys.RUNNER], app[keys.BLOBS]
    assert blobs.pinned(done["result"]["sha256"])
    clock.now += 59
    assert runner.expire() == 0
    clock.now += 2
    assert runner.expire() == 1
    assert (await client.get("/v1/jobs/retained-1")).status == 404
    assert not blobs.pinned(done["result"]["sha256"])


async def test_events_show_a_jobs_whole_life(node_client: Any) -> None:
    client = await node_client()
    await upload(client, IMG, MASK)
    async with client.ws_connect("/v1/events") as ws:
        first = await ws.receive_json(timeout=5)
        check_schema("Event", first)
        await submit(client, "evented-01", seconds_per_mp=20.0)
        states, progress = [], []
        while "done" not in states:
            msg = await ws.receive_json(timeout=5)
            check_schema("Event", msg)
            if msg["type"] == "job" and msg["job"]["id"] == "evented-01":
                states.append(msg["job"]["state"])
            elif msg["type"] == "progress":
                progress.append(msg["progress"])
    assert states == ["queued", "running", "done"]
    assert progress and progress == sorted(progress) and len(progress) <= 10


async def test_events_need_the_token(node_client: Any) -> None:
    client = await node_client()
    resp = await client.get("/v1/events", headers={"Authorization": "Bearer nope"})
    assert resp.status == 401


async def test_load_messages_arrive_every_second(node_client: Any) -> None:
    client = await node_client()
    async with client.ws_connect("/v1/events") as ws:
        kinds = [(await ws.receive_json(timeout=3))["type"] for _ in range(3)]
    assert kinds[:2] == ["heartbeat", "load"] and kinds[2] == "load"


async def test_slots_limit_concurrency(node_client: Any) -> None:
    client = await node_client(slots=2)
    await upload(client, IMG, MASK)
    running_max = 0
    for i in range(5):
        await submit(client, f"concurrent-{i}", seconds_per_mp=30.0)
    runner = client.app[keys.RUNNER]
    deadline = time.monotonic() + 10
    while runner.book.done < 5:
        running_max = max(running_max, len(runner.book.running))
        assert runner.busy <= 2
        assert time.monotonic() < deadline
        await asyncio.sleep(0.005)
    assert running_max == 2
