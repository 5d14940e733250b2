"""What several ``lanfarm`` commands share: argument types that refuse bad numbers up front, the
discovery options, waiting for the first node, and keeping native libraries' stderr noise (libpng's
"PNG input buffer is incomplete", say) off the terminal."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterator

from farm.core.nodetable import NodeState
from farm.core.scheduler import LOCAL
from farm.local.settings import INTERFACES_ENV
from farm.runtime.farm import Farm, FarmEvent, NodeEvent


def number_in(kind: type[int] | type[float], low: float, high: float) -> Callable[[str], float]:
    """An argparse ``type`` for a number from ``low`` to ``high``; argparse turns its error into one
    line and exit 2, before any work starts."""

    def parse(text: str) -> float:
        value = _number(kind, text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is not from {low:g} to {high:g}")
        return value

    parse.__name__ = _what(kind)
    return parse


def positive(kind: type[int] | type[float]) -> Callable[[str], float]:
    """An argparse ``type`` for a number above 0."""

    def parse(text: str) -> float:
        value = _number(kind, text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text} is not above 0")
        return value

    parse.__name__ = _what(kind)
    return parse


def _number(kind: type[int] | type[float], text: str) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a {_what(kind)}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _what(kind: type) -> str:
    return "whole number" if kind is int else "number"


def add_discover_on(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--discover-on ADDR``: where this command looks for nodes (``--interface``, its old name, still works)."""
    parser.add_argument(
        "--discover-on",
        dest="interface",
        action="append",
        default=[],
        metavar="ADDR",
        help=f"look for nodes only on the interface with this IPv4 address (repeatable; also {INTERFACES_ENV})",
    )
    parser.add_argument("--interface", dest="interface", action="append", help=argparse.SUPPRESS)


def answered(event: FarmEvent) -> bool:
    """A node answered: it is up (and took our token), or it refused the token."""
    return isinstance(event, NodeEvent) and event.worker_id != LOCAL and (event.online or not event.authorised)


async def wait_for_answer(farm: Farm, cap: float, *, mdns: bool, usable_only: bool = True) -> None:
    """Until the first node answers (``usable_only``: one that takes our token), or, without mDNS,
    until every peer answered or failed; ``cap`` seconds at most."""

    def usable(event: FarmEvent) -> bool:
        return isinstance(event, NodeEvent) and event.worker_id != LOCAL and event.online and event.authorised

    wanted = usable if usable_only else answered
    got = asyncio.Event()
    unsubscribe = farm.subscribe(lambda event: got.set() if wanted(event) else None)
    try:
        if any(n.state is NodeState.ONLINE or not usable_only for n in farm.nodes()):
            return
        waits: list[asyncio.Future[object]] = [asyncio.ensure_future(got.wait())]
        if not mdns:
            waits.append(asyncio.ensure_future(farm.wait_for_nodes(cap, mdns_grace=0)))
        _done, pending = await asyncio.wait(waits, timeout=cap, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    finally:
        unsubscribe()


@contextlib.contextmanager
def native_stderr_quiet(enabled: bool = True) -> Iterator[None]:
    """While it lasts, what C libraries write to file descriptor 2 goes to a temp file, not the
    terminal; Python's own stderr (messages, logging, tracebacks) still reaches it."""
    if not enabled:
        yield
        return
    try:
        sys.stderr.flush()
        real = sys.stderr.fileno() == 2  # not when stderr is captured in-process (tests), or is no file
        saved = os.dup(2) if real else -1
    except (OSError, ValueError, AttributeError):  # no real stderr (a GUI launcher, say)
        real = False
    if not real:
        yield
        return
    with tempfile.TemporaryFile() as sink:
        python_err = os.fdopen(os.dup(saved), "w", buffering=1, encoding=sys.stderr.encoding, errors="replace")
        old_err = sys.stderr
        handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)]
        old_streams = [h.stream for h in handlers]
        os.dup2(sink.fileno(), 2)
        sys.stderr = python_err
        for h in handlers:
            if h.stream is old_err:
                h.setStream(python_err)
        try:
            yield
        finally:
            python_err.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sys.stderr = old_err
            for h, stream in zip(handlers, old_streams, strict=True):
                h.setStream(stream)
            python_err.close()
