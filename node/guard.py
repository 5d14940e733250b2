"""A node no stranger on the LAN can knock over.

Without a token nobody can use a node, but anybody who reaches its port can open connections. So:
connections are capped (in total and per source address, the excess closed at once), a connection
that does not finish a request head within ``idle_timeout`` is closed, the soft open-file limit is
raised to the hard one at start, a malformed request is answered with a fixed 400 that never echoes
what was sent (a header may hold the farm token), and repeated errors are logged once per minute.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from node.errors import TooSlow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Limits:
    """What one node accepts from the network at once."""

    max_connections: int = 1024
    max_per_source: int = 128
    idle_timeout: float = 15.0  # seconds a connection may take to send a request head (and idle after one)


class ConnectionBook:
    """Open connections per source address; decides who gets in."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.by_source: Counter[str] = Counter()
        self.total = 0
        self.refused = 0

    def admit(self, source: str) -> bool:
        if self.total >= self.limits.max_connections or self.by_source[source] >= self.limits.max_per_source:
            self.refused += 1
            return False
        self.total += 1
        self.by_source[source] += 1
        return True

    def release(self, source: str) -> None:
        self.total -= 1
        self.by_source[source] -= 1
        if self.by_source[source] <= 0:
            del self.by_source[source]


class OncePerMinute(logging.Filter):
    """Lets the first record of each kind through, then one a minute with how many were dropped."""

    def __init__(self, period: float = 60.0) -> None:
        super().__init__()
        self.period = period
        self._last: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = time.monotonic()
        last, dropped = self._last.get(key, (-self.period, 0))
        if now - last < self.period:
            self._last[key] = (last, dropped + 1)
            return False
        self._last[key] = (now, 0)
        if dropped:
            record.msg = f"{record.msg} (and {dropped} more like it in the last minute)"
        return True


class _GuardedHandler(RequestHandler):
    """aiohttp's request handler behind the connection book, answering malformed requests tersely."""

    def __init__(self, manager: web.Server, book: ConnectionBook, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._book = book
        self._source: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        source = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        if not self._book.admit(source):
            log.warning("too many connections (from %s or in all): closing new ones", source)
            transport.close()  # nothing was read or written yet: close, never linger
            return
        self._source = source
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._source is None:
            return  # refused: its bytes are not read
        super().data_received(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._source is None:
            return  # refused in connection_made: aiohttp never saw it
        self._book.release(self._source)
        self._source = None
        super().connection_lost(exc)

    def log_exception(self, *args: Any, **kw: Any) -> None:
        exc = kw.get("exc_info")
        if isinstance(exc, ConnectionError):  # the client went away mid-request: its event, not our error
            log.info("a client aborted its request (%s)", exc)
            return
        super().log_exception(*args, **kw)

    def handle_error(
        self, request: Any, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        if status == 500:
            return super().handle_error(request, status, exc, message)
        # A request the parser refused: say so without repeating any of it (a header may be the token).
        log.info("malformed request from %s answered %d", getattr(request, "remote", "?"), status)
        if request.writer.output_size > 0:
            raise ConnectionError("response already started; cannot send the error")
        resp = web.json_response({"error": {"code": "bad_request", "message": "malformed HTTP request"}}, status=status)
        resp.force_close()
        return resp


class GuardedSite(web.SockSite):
    """``web.SockSite`` whose connections go through a :class:`ConnectionBook`."""

    __slots__ = ("_limits", "book")

    def __init__(self, runner: web.AppRunner, sock: socket.socket, *, limits: Limits | None = None, **kw: Any) -> None:
        super().__init__(runner, sock, **kw)
        self._limits = limits or Limits()
        self.book = ConnectionBook(self._limits)

    async def start(self) -> None:
        await web.BaseSite.start(self)
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None

        def handler() -> _GuardedHandler:
            return _GuardedHandler(server, self.book, loop=loop, keepalive_timeout=self._limits.idle_timeout)

        # with TLS the handler sees a connection only once its handshake is done: a stranger that never
        # finishes one is dropped after the same deadline as a request head
        handshake = self._limits.idle_timeout if self._ssl_context else None
        self._server = await loop.create_server(
            handler, sock=self._sock, ssl=self._ssl_context, backlog=self._backlog, ssl_handshake_timeout=handshake
        )


@dataclass(frozen=True, slots=True)
class UploadPace:
    """How slow an upload may be: a trickle that would hold a connection for hours is cut off."""

    min_rate: float = 16 * 1024  # bytes per second on average, once ``grace`` has passed
    grace: float = 10.0  # seconds before the average counts (TCP slow start, a busy link)
    stall: float = 30.0  # seconds without a byte at any time

    async def paced(
        self, chunks: AsyncIterator[bytes], clock: Callable[[], float] = time.monotonic
    ) -> AsyncIterator[bytes]:
        """``chunks`` as they come; TooSlow once they come slower than this pace allows."""
        began, received = clock(), 0
        iterator = aiter(chunks)
        while True:
            try:
                async with asyncio.timeout(self.stall):
                    chunk = await anext(iterator)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise TooSlow(f"the upload stalled: nothing arrived for {self.stall:g} s") from None
            received += len(chunk)
            elapsed = clock() - began
            if elapsed > self.grace and received / elapsed < self.min_rate:
                raise TooSlow(
                    f"the upload is too slow ({received / elapsed / 1024:.1f} KB/s; "
                    f"at least {self.min_rate / 1024:g} KB/s is needed)"
                )
            yield chunk


UPLOADS: web.AppKey[UploadPace] = web.AppKey("upload_pace")


def raise_open_file_limit() -> int:
    """Raise the soft open-file limit to the hard one (Unix); returns the limit in effect."""
    try:
        import resource
    except ImportError:  # Windows: no such limit to raise
        return -1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 16)
    if wanted > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            return wanted
        except (ValueError, OSError) as exc:
            log.debug("cannot raise the open-file limit: %s", exc)
    return soft


def quiet_repeated_errors() -> None:
    """Repeated errors from asyncio and aiohttp's server are logged once a minute, not per request."""
    for name in ("asyncio", "aiohttp.server", "aiohttp.access", __name__):
        logging.getLogger(name).addFilter(OncePerMinute())


def guard_limits() -> Limits:
    """The limits for this process: the open-file limit raised first, the caps kept well under it."""
    quiet_repeated_errors()
    files = raise_open_file_limit()
    if files <= 0:
        return Limits()
    default = Limits()
    total = max(64, min(default.max_connections, files - 128))
    return Limits(max_connections=total, max_per_source=min(default.max_per_source, total))
