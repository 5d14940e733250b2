"""Property tests: random job bodies, ids and headers never make the node answer 500."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from farm.errors import FarmError
from node.requests import parse_job
from tests.node.conftest import make_app
from tests.node.helpers import auth_header

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)

spec_like = st.fixed_dictionaries(
    {"schema": st.sampled_from([1, 1, 2, "1", None])},
    optional={
        "op": st.sampled_from(["inpaint", "upscale", "", 3]),
        "engine": st.sampled_from(["sim", "cv2", "nope", "", None]),
        "params": st.dictionaries(st.sampled_from(["seconds_per_mp", "radius", "method", "x"]), json_values, max_size=3)
        | json_values,
        "hd": st.dictionaries(st.sampled_from(["strategy", "trigger", "margin", "y"]), json_values, max_size=3)
        | json_values,
        "output": st.dictionaries(st.sampled_from(["format", "quality"]), json_values) | json_values,
        "model": json_values,
    },
)

job_like = st.fixed_dictionaries(
    {},
    optional={
        "id": st.text(max_size=70) | st.from_regex(r"\A[A-Za-z0-9_-]{8,64}\Z") | json_values,
        "spec": spec_like | json_values,
        "image": st.from_regex(r"\A[0-9a-f]{64}\Z") | json_values,
        "mask": st.none() | st.from_regex(r"\A[0-9a-fA-F]{64}\Z") | json_values,
        "client": json_values,
        "priority": json_values,
        "extra": json_values,
    },
)


@given(job_like | json_values)
@settings(max_examples=300, deadline=None)
def test_job_parser_raises_only_readable_errors(body: Any) -> None:
    try:
        parse_job(body)
    except FarmError as exc:
        assert str(exc)


@pytest.fixture(scope="module")
def live_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """An in-process node served from a background thread, so sync hypothesis tests can call it."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    port: list[int] = []
    blob_dir = tmp_path_factory.mktemp("blobs")

    async def start() -> web.AppRunner:
        runner = web.AppRunner(make_app(), handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port.append(runner.addresses[0][1])
        return runner

    def serve() -> None:
        asyncio.set_event_loop(loop)
        runner = loop.run_until_complete(start())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=serve, name="live node", daemon=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LANFARM_HOME", str(blob_dir))
        thread.start()
        assert ready.wait(10)
    yield port[0]
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def request(
    port: int, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


header_names = st.from_regex(r"\A[A-Za-z][A-Za-z0-9-]{0,20}\Z").filter(
    lambda n: n.lower() not in {"content-length", "transfer-encoding", "host", "connection", "expect", "upgrade"}
)
header_values = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)


@given(
    body=job_like | json_values,
    headers=st.dictionaries(header_names, header_values, max_size=4),
    auth=st.sampled_from(["signed", "Bearer wrong", "", "Bearer " + "x" * 300]),
)
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_random_job_posts_never_500(live_node: int, body: Any, headers: dict[str, str], auth: str) -> None:
    data = json.dumps(body).encode()
    auth = auth_header("POST", "/v1/jobs", data) if auth == "signed" else auth
    headers = {**headers, "Authorization": auth, "Content-Type": "application/json"}
    status, data = request(live_node, "POST", "/v1/jobs", data, headers)
    assert status in (200, 202, 400, 401, 409, 413, 422), (status, data)
    assert "error" in json.loads(data) or status in (200, 202)


@given(
    method=st.sampled_from(["GET", "DELETE", "HEAD", "PUT", "POST"]),
    segment=st.text(
        st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="/?#%"), min_size=1, max_size=80
    ).filter(lambda s: s != "drain"),
    where=st.sampled_from(["/v1/jobs/{}", "/v1/jobs/{}/result", "/v1/blobs/{}", "/v1/{}"]),
)
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_random_paths_never_500(live_node: int, method: str, segment: str, where: str) -> None:
    body = b"x" if method in ("PUT", "POST") else None
    path = where.format(segment)
    signed_body: bytes | str = segment if (method == "PUT" and where == "/v1/blobs/{}") else (body or b"")
    status, _ = request(live_node, method, path, body, {"Authorization": auth_header(method, path, signed_body)})
    assert status < 500, status
