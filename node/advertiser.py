"""mDNS advert of this node (``_lanfarm._tcp.local.``) with zeroconf's asyncio API; TXT follows the load.

Registration runs in a task owned by the advertiser, so the node answers HTTP while zeroconf probes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence

import ifaddr
from aiohttp import web
from zeroconf import InterfaceChoice, IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from farm.core.advert import NodeAdvert
from farm.core.protocol import PROTOCOL_VERSION, SERVICE_TYPE
from farm.version import __version__
from node import keys

log = logging.getLogger(__name__)

MIN_UPDATE_INTERVAL = 2.0


def instance_label(name: str) -> str:
    """A DNS-SD instance label from a node name (no dots, at most 63 bytes)."""
    label = name.replace(".", "-").strip() or "lanfarm-node"
    return label.encode()[:63].decode(errors="ignore")


def host_label(name: str, node_id: str) -> str:
    base = re.sub(r"[^A-Za-z0-9-]+", "-", name).strip("-")[:40] or "lanfarm"
    return f"{base}-{node_id[:8]}.local."


def advert_addresses(host: str, interfaces: Sequence[str]) -> list[str]:
    """The IPv4 addresses to publish: the chosen interfaces, the bound host, or every non-loopback one."""
    if interfaces:
        return list(interfaces)
    if host not in ("", "0.0.0.0", "::"):
        return [host]
    found = [
        ip.ip
        for adapter in ifaddr.get_adapters()
        for ip in adapter.ips
        if isinstance(ip.ip, str) and not ip.ip.startswith("127.")
    ]
    return found or ["127.0.0.1"]


class Advertiser:
    """Registers the advert, re-sends TXT when it changes (at most every ``min_interval`` s), says goodbye."""

    def __init__(
        self,
        advert: Callable[[], NodeAdvert],
        *,
        port: int,
        addresses: Sequence[str],
        interfaces: Sequence[str] = (),
        min_interval: float = MIN_UPDATE_INTERVAL,
    ) -> None:
        self._advert = advert
        self._port = port
        self._addresses = list(addresses)
        self._interfaces = list(interfaces)
        self._min_interval = min_interval
        self._dirty = asyncio.Event()
        self._zc: AsyncZeroconf | None = None
        self._info: AsyncServiceInfo | None = None
        self._task: asyncio.Task[None] | None = None
        self.current: NodeAdvert | None = None
        self.registered = asyncio.Event()

    def changed(self) -> None:
        """The load may have changed: send a new TXT soon (rate-limited)."""
        self._dirty.set()

    def _service_info(self, advert: NodeAdvert, name: str | None = None) -> AsyncServiceInfo:
        return AsyncServiceInfo(
            SERVICE_TYPE,
            name or f"{instance_label(advert.name)}.{SERVICE_TYPE}",
            port=self._port,
            properties=advert.to_txt(),
            server=host_label(advert.name, advert.id),
            parsed_addresses=self._addresses,
        )

    async def start(self) -> None:
        """Start zeroconf and register in the background; without a usable network the node still serves."""
        try:
            self._zc = AsyncZeroconf(interfaces=self._interfaces or InterfaceChoice.All, ip_version=IPVersion.V4Only)
        except (OSError, ValueError) as exc:
            log.warning("no mDNS advert (add this node in the app by address): %s", exc)
            return
        self._task = asyncio.get_running_loop().create_task(self._run(), name="mdns advert")

    async def _run(self) -> None:
        try:
            await self._advertise()
        except asyncio.CancelledError:
            raise
        except Exception:  # the advert is a convenience: HTTP must keep serving without it
            log.exception("mDNS advert failed; add this node in the app by address")

    async def _advertise(self) -> None:
        assert self._zc is not None
        self.current = self._advert()
        self._info = self._service_info(self.current)
        await (await self._zc.async_register_service(self._info, allow_name_change=True))
        self.registered.set()
        log.info("advertised as %s", self._info.name)
        last = time.monotonic()
        while True:
            await self._dirty.wait()
            await asyncio.sleep(max(0.0, last + self._min_interval - time.monotonic()))
            self._dirty.clear()
            advert = self._advert()
            if advert == self.current:
                continue
            self.current = advert
            self._info = self._service_info(advert, self._info.name)
            await (await self._zc.async_update_service(self._info))
            last = time.monotonic()

    async def stop(self) -> None:
        """Unregister (goodbye packets, so browsers drop the node at once) and close zeroconf."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._zc is None:
            return
        try:
            if self.registered.is_set() and self._info is not None:
                await (await self._zc.async_unregister_service(self._info))
        finally:
            await self._zc.async_close()
            self._zc = None


ADVERTISER = web.AppKey("advertiser", Advertiser)


def node_advert(app: web.Application) -> NodeAdvert:
    config, runner, hardware = app[keys.CONFIG], app[keys.RUNNER], app[keys.HARDWARE]
    return NodeAdvert(
        id=app[keys.NODE_ID],
        name=config.display_name,
        version=__version__,
        proto=PROTOCOL_VERSION,
        gpu=hardware.gpu_label,
        vram_mb=hardware.vram_mb,
        engines=tuple(d.id for d in app[keys.REGISTRY].descriptors() if d.available),
        slots=runner.slots,
        free=runner.free if app[keys.STEWARD].current.available else 0,
        state=str(app[keys.STEWARD].current.state),
        tls=bool(app[keys.FINGERPRINT]),
        fingerprint=app[keys.FINGERPRINT],
    )


async def advertiser_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[keys.CONFIG]
    adv = Advertiser(
        lambda: node_advert(app),
        port=config.port,
        addresses=advert_addresses(config.host, config.interfaces),
        interfaces=config.interfaces,
    )
    app[ADVERTISER] = adv
    app[keys.RUNNER].listeners.append(adv.changed)
    await adv.start()
    yield
    await adv.stop()
