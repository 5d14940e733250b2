"""Fan-out of event messages to WebSocket subscribers; a slow subscriber loses its oldest messages."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)

Message = dict[str, Any]


class EventHub:
    """``publish`` from the loop; each subscriber reads its own bounded queue."""

    def __init__(self, *, backlog: int = 1000) -> None:
        self._backlog = backlog
        self._subscribers: set[asyncio.Queue[Message]] = set()

    def __len__(self) -> int:
        return len(self._subscribers)

    def subscribe(self) -> asyncio.Queue[Message]:
        queue: asyncio.Queue[Message] = asyncio.Queue(self._backlog)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Message]) -> None:
        self._subscribers.discard(queue)

    def publish(self, message: Message) -> None:
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()  # drop the oldest: a stalled viewer must not grow memory
                log.debug("event subscriber is behind; dropped a message")
            queue.put_nowait(message)


def heartbeat(now: float) -> Message:
    return {"type": "heartbeat", "time": now}
