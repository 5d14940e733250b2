"""The native farm API (/farm/v1): submit uploads and paths, follow over the WebSocket, results,
cancel, nodes, engines; bad input refused with the node protocol's error shape."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from farm.core.scheduler import LOCAL
from farm.runtime.farm import FarmSettings
from tests.farm.api.helpers import Served, box, check_schema, decode, encode, scene, serving
from tests.farm.runtime.test_farm import samples

V1 = "/farm/v1"


def form(spec: dict[str, Any], image: bytes, mask: bytes | None) -> aiohttp.FormData:
    data = aiohttp.FormData()
    data.add_field("spec", json.dumps(spec), content_type="application/json")
    data.add_field("image", io.BytesIO(image), filename="image.png", content_type="image/png")
    if mask is not None:
        data.add_field("mask", io.BytesIO(mask), filename="mask.png", content_type="image/png")
    return data


def spec(engine: str = "cv2", **params: Any) -> dict[str, Any]:
    return {"schema": 1, "op": "inpaint", "engine": engine, "params": params}


async def submit(s: Served, body: aiohttp.FormData | dict[str, Any]) -> tuple[int, dict[str, Any]]:
    kwargs: dict[str, Any] = {"json": body} if isinstance(body, dict) else {"data": body}
    async with s.http.post(s.url + V1 + "/edits", **kwargs) as r:
        return r.status, await r.json()


async def test_an_upload_is_followed_over_the_websocket_and_its_result_fetched(tmp_path: Path) -> None:
    img, mask = scene(320, 240), box(320, 240, (40, 40, 160, 160))
    async with serving(tmp_path) as s, s.http.ws_connect(s.url + V1 + "/events") as ws:
        hello = await ws.receive_json()
        assert hello["type"] == "hello" and hello["api"] == 1
        check_schema("Event", hello)
        status, body = await submit(s, form(spec("sim", seconds_per_mp=1.0), encode(img), encode(mask)))
        assert status == 202, body
        check_schema("Submitted", body)
        [edit] = body["edits"]
        kinds = []
        async with asyncio.timeout(30):
            while True:
                msg = await ws.receive_json()
                check_schema("Event", msg)
                kinds.append(msg["type"])
                if msg["type"] == "edit" and msg["edit"]["id"] == edit["id"] and msg["edit"]["state"] == "done":
                    break
        assert "progress" in kinds  # the simulated engine reports its steps
        async with s.http.get(f"{s.url}{V1}/edits/{edit['id']}") as r:
            now = await r.json()
        check_schema("Edit", now)
        assert now["state"] == "done" and now["worker"] == LOCAL and now["progress"] == 1.0
        async with s.http.get(f"{s.url}{V1}/edits/{edit['id']}/result") as r:
            assert r.status == 200 and r.content_type == "image/png"
            out = decode(await r.read())
    expected = img.copy()
    expected[mask > 0] = 255 - expected[mask > 0]
    assert np.array_equal(out, expected)


async def test_paths_on_the_serving_pc_are_edited_into_the_given_folder(tmp_path: Path) -> None:
    folder, out = samples(tmp_path), tmp_path / "out"
    async with serving(tmp_path) as s:
        status, body = await submit(s, {"spec": spec(), "paths": [str(folder)], "out_dir": str(out)})
        assert status == 202, body
        check_schema("Submitted", body)
        assert len(body["edits"]) == 4 and body["problems"] == [] and body["unmasked"] == []
        await s.farm.wait()
        async with s.http.get(s.url + V1 + "/edits") as r:
            listed = (await r.json())["edits"]
    assert {e["state"] for e in listed} == {"done"}
    assert sorted(p.name for p in out.iterdir()) == ["dusk.png", "harbour.png", "meadow.png", "studio.png"]
    assert {Path(e["output"]).parent for e in listed} == {out}


async def test_cancel_ends_a_queued_edit(tmp_path: Path) -> None:
    img, mask = encode(scene(64, 64)), encode(box(64, 64, (8, 8, 32, 32)))
    async with serving(tmp_path, FarmSettings(nodes=False, use_local=False)) as s:  # no worker: it stays queued
        status, body = await submit(s, form(spec(), img, mask))
        assert status == 202
        edit_id = body["edits"][0]["id"]
        async with s.http.get(f"{s.url}{V1}/edits/{edit_id}/result") as r:
            assert r.status == 409 and (await r.json())["error"]["code"] == "not_done"
        async with s.http.delete(f"{s.url}{V1}/edits/{edit_id}") as r:
            assert r.status == 200
        async with s.http.get(f"{s.url}{V1}/edits/{edit_id}") as r:
            assert (await r.json())["state"] == "cancelled"
        async with s.http.get(f"{s.url}{V1}/edits/nope") as r:
            assert r.status == 404 and (await r.json())["error"]["code"] == "not_found"


async def test_engines_nodes_and_info(tmp_path: Path) -> None:
    async with serving(tmp_path) as s:
        async with s.http.get(s.url + V1 + "/engines") as r:
            listed = await r.json()
        for engine in listed["engines"]:
            check_schema("Engine", engine)
        engines = {e["id"]: e for e in listed["engines"]}
        assert {"cv2", "sim"} <= set(engines) and engines["cv2"]["params"][0]["name"] == "method"
        async with s.http.get(s.url + V1 + "/nodes") as r:
            nodes = await r.json()
        check_schema("Nodes", nodes)
        assert nodes["nodes"] == [] and [w["id"] for w in nodes["workers"]] == [LOCAL]
        async with s.http.get(s.url + V1 + "/info") as r:
            info = await r.json()
        check_schema("Info", info)
        assert info["api"] == 1 and info["workers"] == 1


async def test_bad_submissions_are_refused_with_what_is_wrong(tmp_path: Path) -> None:
    img, mask = encode(scene(64, 64)), encode(box(64, 64, (8, 8, 32, 32)))
    async with serving(tmp_path, max_body=1 << 20) as s:
        cases = [
            (form({"schema": 9, "op": "inpaint", "engine": "cv2"}, img, mask), 422, "bad_spec", "schema version"),
            (form(spec("nope"), img, mask), 422, "engine", "no worker of the farm has engine 'nope'"),
            (form(spec(radius=999), img, mask), 422, "bad_spec", "radius"),
            (form(spec(), b"not an image", mask), 422, "bad_image", "not an image"),
            (form(spec(), img, encode(box(32, 32))), 422, "bad_image", "mask is 32x32 but the image is 64x64"),
            (form(spec(), b"\0" * (2 << 20), None), 413, "too_large", "limit"),
            ({"spec": spec(), "paths": [str(tmp_path / "gone.png")], "out_dir": str(tmp_path)}, 422, "invalid", "not"),
            ({"spec": spec(), "paths": [str(tmp_path)], "out_dir": "relative/out"}, 422, "invalid", "absolute"),
        ]
        for body, status, code, words in cases:
            got, answer = await submit(s, body)
            assert (got, answer["error"]["code"]) == (status, code), answer
            check_schema("Error", answer)
            assert words in answer["error"]["message"]
        async with s.http.post(s.url + V1 + "/edits", data=b"{", headers={"Content-Type": "application/json"}) as r:
            assert r.status == 400 and (await r.json())["error"]["code"] == "bad_request"
        assert s.farm.jobs == {}  # nothing bad reached the queue
        got, answer = await submit(s, form(spec(), img, mask))  # and a good one goes through
        assert got == 202
