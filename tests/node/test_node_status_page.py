"""The node's status page in real headless Chromium against a real node process: it renders, its buttons
work with the farm token (signed in the page) and refuse without or with a wrong one, and the token
never crosses the wire (the page's requests carry only signatures)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import aiohttp

from farm.runtime.client import NodeClient
from tests.node.chromium import chromium
from tests.node.helpers import REPO, TOKEN, start_node, stop_node

# LANFARM_SCREENSHOTS=1 refreshes the screenshot in docs/; otherwise it goes to the test's own folder
DOCS_SCREENSHOT = REPO / "docs" / "screenshots" / "node-status-page.png"


async def test_status_page_buttons_work_with_the_token_and_refuse_without(tmp_path: Path) -> None:
    proc, url = start_node(
        tmp_path / "home", "--host", "127.0.0.1", "--port", "0", "--no-advertise", "--simulate", "--name", "render-pc"
    )
    try:
        async with chromium() as page, aiohttp.ClientSession() as http:
            node = NodeClient(http, url, TOKEN)
            await page.call("Network.enable")
            await page.goto(url + "/")
            assert await page.eval("document.title") == "render-pc - LAN Farm node"
            assert await page.eval("document.getElementById('state').textContent") == "available"
            assert TOKEN not in await page.eval("document.documentElement.outerHTML")

            # no token: the page says so and sends nothing
            await page.eval("document.getElementById('pause').click()")
            await page.wait_for("document.getElementById('msg').textContent.startsWith('Enter the farm token')")
            # a wrong token: signed with it, refused by the node
            await page.eval("document.getElementById('token').value = 'not-the-farm-token'")
            await page.eval("document.getElementById('pause').click()")
            await page.wait_for("document.getElementById('msg').textContent.startsWith('Refused: missing or wrong')")
            assert (await node.info()).availability.available

            # the farm token: paused for 2 hours, and the page shows it
            await page.eval(f"document.getElementById('token').value = {json.dumps(TOKEN)}")
            await page.eval("document.getElementById('for').value = '7200'")
            await page.eval("document.getElementById('pause').click()")
            await page.wait_for("document.getElementById('msg').textContent === 'Done: the node is paused.'")
            info = await node.info()
            assert info.availability.state == "paused" and info.availability.until is not None
            await page.wait_for("document.getElementById('state').textContent === 'paused'")
            shot = DOCS_SCREENSHOT if os.environ.get("LANFARM_SCREENSHOTS") == "1" else tmp_path / "page.png"
            await page.screenshot(shot)
            assert shot.read_bytes().startswith(b"\x89PNG")

            await page.eval("document.getElementById('resume').click()")
            await page.wait_for("document.getElementById('msg').textContent === 'Done: the node is available.'")
            assert (await node.info()).availability.available
            await page.eval("1")  # drain the events that came meanwhile
            posts = [r for r in page.requests() if r["method"] == "POST"]
            assert [r["url"].removeprefix(url) for r in posts] == ["/v1/pause", "/v1/pause", "/v1/resume"]
            assert all(r["headers"]["Authorization"].startswith("LANFarm-HMAC ts=") for r in posts)
            assert TOKEN not in json.dumps(page.requests())  # only signatures crossed the wire
    finally:
        stop_node(proc)
