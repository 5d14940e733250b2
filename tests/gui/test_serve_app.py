"""The app lets other programs use the farm (the setting, off by default): Krita's IOPaint request
through the app's own farm, shown in its queue; switched off, the port closes."""

from __future__ import annotations

from dataclasses import replace
from io import BytesIO

import aiohttp
import pytest
from PIL import Image

from gui.app import LanFarmApp
from gui.settings import AppSettings, SettingsStore
from tests.conftest import REPO
from tests.farm.api.clients import krita_inpaint
from tests.gui.conftest import running, until

SAMPLES = REPO / "resources" / "samples"


def test_the_setting_is_off_by_default() -> None:
    assert AppSettings().serve_api is False


def test_other_programs_use_the_farm_through_the_app(qloop, store: SettingsStore) -> None:  # type: ignore[no-untyped-def]
    store.save(replace(store.load(), serve_api=True, serve_port=0))  # port 0: any free one (a test)
    app = LanFarmApp(store=store, use_tray=False)
    image, mask = (SAMPLES / "dusk.png").read_bytes(), (SAMPLES / "masks" / "dusk.png").read_bytes()

    async def scenario() -> None:
        async with running(app):
            c = app.controller
            await until(lambda: bool(c.serving_url), what="the API for other programs")
            url = c.serving_url
            assert url.startswith("http://127.0.0.1:")
            async with (
                aiohttp.ClientSession() as http,
                http.post(f"{url}/api/v1/inpaint", json=krita_inpaint(image, mask)) as resp,
            ):
                assert resp.status == 200, await resp.text()
                edited = await resp.read()
            with Image.open(BytesIO(edited)) as out, Image.open(SAMPLES / "dusk.png") as src:
                assert out.size == src.size
            await until(lambda: c.queue.counts().done >= 1, what="the program's edit in the app's queue")

            page = app.window.settings_page
            page.serve_api.setChecked(False)
            page.apply_button.click()
            await until(lambda: not c.serving_url, what="the API switched off")
            async with aiohttp.ClientSession() as http:
                with pytest.raises(aiohttp.ClientConnectionError):
                    await http.get(f"{url}/api/v1/server-config")

    qloop(scenario())
