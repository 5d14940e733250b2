"""What a node accepts by name and from its own disk: whole-match ids and hashes, damaged blobs repaired."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

from tests.node.helpers import job_body, mask_png, png, sha
from tests.node.test_node_api import upload, wait_state

IMG, MASK = png(seed=3), mask_png()


async def submit(client: Any, job_id: str) -> None:
    resp = await client.post("/v1/jobs", json=job_body(job_id, IMG, MASK))
    assert resp.status == 202, await resp.text()


async def test_ids_and_hashes_must_match_whole(node_client: Any) -> None:
    client = await node_client()
    await upload(client, IMG, MASK)
    body = job_body("newline-id\n", IMG, MASK)
    resp = await client.post("/v1/jobs", json=body)
    assert resp.status == 422, await resp.text()
    resp = await client.put(f"/v1/blobs/{sha(IMG)}%0A", data=IMG)
    assert resp.status in (400, 401, 404, 422)  # never stored under a name with a newline
    assert (await client.head(f"/v1/blobs/{sha(IMG)}%0A")).status in (400, 401, 404, 422)


async def test_a_damaged_blob_fails_as_the_nodes_fault_and_a_re_upload_repairs_it(node_client: Any, home: Path) -> None:
    client = await node_client()
    await upload(client, IMG, MASK)
    [stored] = [p for p in home.rglob(sha(IMG)) if p.is_file()]
    stored.write_bytes(IMG[: len(IMG) // 2])  # cut short, as by a crash before the data reached the disk
    await submit(client, "damaged-job-1")
    failed = await wait_state(client, "damaged-job-1", "failed")
    assert failed["error_kind"] == "engine" and "damaged" in failed["error"]
    assert (await client.head(f"/v1/blobs/{sha(IMG)}")).status == 404  # dropped: not "already stored"
    resp = await client.put(f"/v1/blobs/{sha(IMG)}", data=IMG)
    assert resp.status == 201 and (await resp.json())["stored"] is True
    await submit(client, "repaired-job-1")
    assert (await wait_state(client, "repaired-job-1", "done"))["state"] == "done"


async def test_a_cancelled_job_never_ends_done(node_client: Any) -> None:
    """DELETE at every moment of a short job's life, 200 times: what was running when the node took the
    DELETE ends cancelled, never done (before, about 1 in 15 raced into "done")."""
    client = await node_client(slots=2)
    await upload(client, IMG, MASK)
    rng = random.Random(5)
    for i in range(200):
        job_id = f"race-job-{i:04d}"
        body = job_body(job_id, IMG, MASK, seconds_per_mp=rng.choice([0.5, 2.0, 5.0]))
        assert (await client.post("/v1/jobs", json=body)).status == 202
        await asyncio.sleep(rng.random() * 0.012)
        answer = await (await client.delete(f"/v1/jobs/{job_id}")).json()
        final = await wait_state(client, job_id, "done", "failed", "cancelled")
        if answer["state"] in ("queued", "running"):
            assert final["state"] == "cancelled", (i, answer["state"], final["state"])
            resp = await client.get(f"/v1/jobs/{job_id}/result")
            assert resp.status != 200, "a cancelled job's result was served"
