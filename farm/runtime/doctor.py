"""The checks behind `lanfarm doctor` and the app's "Why isn't my PC here?": one verdict per check, with the fix.

It checks what a support thread asks first: which interfaces discovery uses; whether multicast works
here (this PC hears its own mDNS advert); and for each saved, given or found node: is the port open,
is it LAN Farm, does it speak this protocol, is it the node whose TLS certificate is pinned, does it
take this farm's token. Everything it sends stays on the LAN (mDNS on the chosen interfaces, HTTP(S)
to the nodes).
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp

from farm.core.address import Address
from farm.core.protocol import PROTOCOL_VERSION
from farm.engines.registry import Registry
from farm.local.pins import colons
from farm.runtime.client import (
    NodeClient,
    NodeRejected,
    NodeUnauthorised,
    NodeUnavailable,
    NodeUnreachable,
    NodeUntrusted,
    connector,
)
from farm.runtime.farm import Farm, FarmSettings
from farm.runtime.trust import Trust

FIREWALL = (
    "open TCP {port} on that PC's firewall (Windows: allow lanfarm in Windows Defender Firewall; "
    "Linux: `sudo ufw allow {port}/tcp`; macOS: System Settings > Network > Firewall)"
)
MDNS_FIX = (
    "mDNS (UDP 5353, multicast 224.0.0.251) is blocked here: allow it in this PC's firewall, or add "
    "nodes by address (`lanfarm nodes add HOST:PORT`); Wi-Fi with client isolation blocks it too"
)


@dataclass(frozen=True, slots=True)
class Verdict:
    """One check: what was checked, whether it is fine, and what to do when it is not."""

    subject: str
    ok: bool
    finding: str
    fix: str = ""

    def text(self) -> str:
        """The verdict as `lanfarm doctor` prints it: ``ok`` or ``FIX``, then the fix on its own line."""
        head = f"{'ok ' if self.ok else 'FIX'}  {self.subject}: {self.finding}"
        return head + (f"\n     -> {self.fix}" if self.fix else "")


async def examine(
    token: str, peers: list[Address], only_on: list[str], *, mdns: bool, wait: float, trust: Trust | None = None
) -> list[Verdict]:
    """Every check, in order: the token, mDNS here (when ``mdns``), then each node given or found."""
    trust = trust or Trust()
    verdicts = [
        Verdict(
            "token",
            bool(token),
            "this PC has the farm token" if token else "no farm token here",
            "" if token else "run `lanfarm token` on a PC of the farm and pass it with --token-file",
        )
    ]
    found: list[Address] = []
    if mdns:
        where = ", ".join(only_on) if only_on else "every interface"
        verdicts.append(Verdict("interfaces", True, f"mDNS discovery listens on {where}"))
        verdicts.append(await hears_itself(only_on, wait))
        settings = FarmSettings(token=token, use_local=False, mdns=True, interfaces=tuple(only_on))
        async with Farm.open(settings, registry=Registry([])) as farm:
            await farm.wait_for_nodes(wait, mdns_grace=wait)
            found = [n.address for n in farm.nodes()] + [u.address for u in farm.unreached()]
        verdicts.append(Verdict("mDNS", True, f"{len(found)} node(s) answered over mDNS"))
    else:
        verdicts.append(Verdict("mDNS", True, "discovery is off: only the given and saved peers are checked"))
    async with aiohttp.ClientSession(connector=connector()) as session:
        nodes = [await check_node(session, address, token, trust=trust) for address in dict.fromkeys([*peers, *found])]
    verdicts += nodes
    if mdns and not found and any(v.ok for v in nodes):
        verdicts.append(blocked_between_pcs(sum(v.ok for v in nodes)))
    if not peers and not found:
        verdicts.append(
            Verdict(
                "nodes",
                False,
                "no node found and none given",
                "start `lanfarm node` on the spare PC, then `lanfarm nodes add HOST:PORT` here",
            )
        )
    return verdicts


def blocked_between_pcs(reached: int) -> Verdict:
    """Nodes answer by address but none over mDNS: multicast does not cross between the PCs."""
    return Verdict(
        "mDNS between PCs",
        False,
        f"{reached} node(s) answer by address but none was found over mDNS: multicast is blocked between the PCs",
        MDNS_FIX,
    )


async def hears_itself(only_on: list[str], wait: float) -> Verdict:
    """Advertise a throwaway service from one mDNS socket set and browse for it from another: multicast
    works on these interfaces if the second hears the first (one instance would answer from its cache)."""
    from zeroconf import InterfaceChoice, IPVersion, ServiceInfo
    from zeroconf.asyncio import AsyncServiceBrowser, AsyncZeroconf

    kind = "_lanfarm-doctor._tcp.local."
    name = f"doctor-{uuid.uuid4().hex[:8]}.{kind}"
    heard = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_change(**kw: object) -> None:
        if kw.get("name") == name:
            loop.call_soon_threadsafe(heard.set)

    choice: Any = only_on or InterfaceChoice.All
    try:
        speaker = AsyncZeroconf(interfaces=choice, ip_version=IPVersion.V4Only)
        listener = AsyncZeroconf(interfaces=choice, ip_version=IPVersion.V4Only)
    except (OSError, ValueError) as exc:
        return Verdict("multicast", False, f"mDNS cannot start here ({exc})", MDNS_FIX)
    info = ServiceInfo(kind, name, addresses=[socket.inet_aton(only_on[0] if only_on else "127.0.0.1")], port=9)
    browser = AsyncServiceBrowser(listener.zeroconf, kind, handlers=[on_change])
    try:
        await speaker.async_register_service(info, allow_name_change=True)
        try:
            await asyncio.wait_for(heard.wait(), wait)
        except TimeoutError:
            return Verdict("multicast", False, f"mDNS sent here was not heard back within {wait:g} s", MDNS_FIX)
        finally:
            await speaker.async_unregister_service(info)
    finally:
        await browser.async_cancel()
        await listener.async_close()
        await speaker.async_close()
    return Verdict("multicast", True, "mDNS works on this PC's interfaces")


async def check_node(
    session: aiohttp.ClientSession, address: Address, token: str, *, trust: Trust | None = None
) -> Verdict:
    """Port open? TLS? LAN Farm? This protocol? The pinned certificate? This farm's token? One verdict with
    the fix. ``trust``: the farm's pins (default: this PC's file); a node met for the first time is pinned
    once it proves the token, as the farm would."""
    subject = f"node {address}"
    trust = trust or Trust()
    client = NodeClient(session, address.url, token, timeout=aiohttp.ClientTimeout(total=4), trust=trust)
    try:
        node_id = await client.health()
    except NodeUnreachable:
        return Verdict(
            subject,
            False,
            f"nothing listens on port {address.port}",
            "is `lanfarm node` running there? If it is, " + FIREWALL.format(port=address.port),
        )
    except NodeUntrusted as exc:
        return Verdict(subject, False, str(exc), f"`lanfarm nodes trust {_name(trust, exc.node_id)}` if you know why")
    except NodeRejected as exc:
        if exc.code == "protocol":
            return Verdict(
                subject,
                False,
                str(exc).split(": ", 1)[-1],
                f"update LAN Farm on that PC or this one (this PC speaks protocol {PROTOCOL_VERSION})",
            )
        return Verdict(subject, False, exc.reason, "another program answers on that port: check the address")
    except NodeUnavailable as exc:
        if exc.reason.startswith("TLS handshake failed"):
            return Verdict(
                subject,
                False,
                "it does not speak TLS (a node started with --no-tls?)",
                f"add it as http://{address} (plain HTTP), or restart that node without --no-tls",
            )
        if not address.tls and "disconnected" in exc.reason.lower():
            return Verdict(
                subject,
                False,
                f"it hangs up on plain HTTP ({exc.reason}): it serves https, as nodes do by default",
                f"add it as {Address(address.host, address.port).text} (https), not http://",
            )
        return Verdict(subject, False, f"no answer ({exc.reason})", FIREWALL.format(port=address.port))
    pinned_before = node_id in trust.pins()
    try:
        info = await client.info()
    except NodeUnauthorised:
        return Verdict(
            subject,
            False,
            f"node {node_id} refuses this farm's token",
            "give it this PC's token: `lanfarm token` here, then `--token-file` on that PC",
        )
    except NodeUntrusted as exc:
        return Verdict(
            subject,
            False,
            str(exc),
            "check what answers at that address: only a node holding this farm's token is trusted",
        )
    except (NodeRejected, NodeUnavailable) as exc:
        return Verdict(subject, False, f"/v1/info failed ({exc})", "see that node's log (`lanfarm -v node`)")
    if info.tls:
        how = "pinned earlier" if pinned_before else "pinned now"
        tls = f"TLS, certificate {colons(info.fingerprint)} {how}"
    else:
        tls = "plain HTTP (--no-tls: anyone on the LAN can read the images)"
    return Verdict(subject, True, f"{info.name} answers, takes this farm's token, LAN Farm {info.version}; {tls}")


def _name(trust: Trust, node_id: str) -> str:
    pin = trust.pins().get(node_id)
    return pin.name if pin else "NAME"
