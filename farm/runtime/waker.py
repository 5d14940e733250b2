"""The farm's Wake-on-LAN: remember wakeable nodes, say which are asleep or waking, send the packets.

A node seen online with MACs (and a LAN address) is remembered; one that goes silent (discovery's
``timeout``: no goodbye, as when its PC sleeps) shows as ``asleep``; after a magic packet it shows
``waking`` until it answers or ``wake_timeout`` passes. A batch start wakes every sleeper when the
farm's ``wake_on_lan`` setting (and ``LANFARM_WAKE_ON_LAN``) allows it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from farm.core.nodetable import NodeRecord
from farm.core.wol import targets
from farm.local.sleepers import Sleeper, SleeperBook, wake_on_lan_enabled
from farm.runtime.wake import send_wake

log = logging.getLogger(__name__)
WAKE_TIMEOUT = 120.0


@dataclass(frozen=True, slots=True)
class SleepingNode:
    sleeper: Sleeper
    state: str  # "asleep" or "waking"


class Waker:
    """Owned by the farm; ``run_io`` runs a blocking call off the loop (the book's file writes)."""

    def __init__(
        self,
        book: SleeperBook,
        *,
        enabled: bool,
        clock: Callable[[], float],
        run_io: Callable[[Callable[[], None]], None],
        wake_timeout: float = WAKE_TIMEOUT,
        send: Callable[[Sleeper], list[tuple[str, int]]] = send_wake,
    ) -> None:
        self.book = book
        self.enabled = enabled
        self.clock = clock
        self.run_io = run_io
        self.wake_timeout = wake_timeout
        self.send = send
        self._waking: dict[str, float] = {}

    def seen(self, record: NodeRecord) -> None:
        info = record.info
        self._waking.pop(record.id, None)
        if info is None or not info.macs or not targets(record.address.host):
            return  # nothing to wake it with, or this PC (loopback)
        self.run_io(lambda: self.book.seen(record.id, record.name, str(record.address), info.macs))

    def left(self, node_id: str, reason: str) -> None:
        how = "timeout" if reason == "timeout" else "goodbye"
        self.run_io(lambda: self.book.left(node_id, how))

    def sleeping(self, online: Iterable[str]) -> list[SleepingNode]:
        """Known nodes that are not online now and did not say goodbye: asleep, or waking."""
        up, now = set(online), self.clock()
        out = []
        for s in self.book.all():
            if s.id in up or s.left == "goodbye":
                continue
            until = max(self._waking.get(s.id, 0.0), s.waking_until)
            out.append(SleepingNode(s, "waking" if until > now else "asleep"))
        return out

    def wake(self, sleeper: Sleeper) -> list[tuple[str, int]]:
        """Send its magic packets now (even with the setting off: a person asked); it shows waking."""
        sent = self.send(sleeper)
        if sent:
            until = self._waking[sleeper.id] = self.clock() + self.wake_timeout
            self.run_io(lambda: self.book.waking(sleeper.id, until))  # other shells show it waking too
            log.info("waking %s (%s) via %s", sleeper.name, ", ".join(sleeper.macs), sent)
        return sent

    def wake_all(self, online: Iterable[str]) -> int:
        """A batch starts: wake every sleeper not already waking (unless Wake-on-LAN is off)."""
        if not (self.enabled and wake_on_lan_enabled()):
            return 0
        return sum(1 for n in self.sleeping(online) if n.state == "asleep" and self.wake(n.sleeper))
