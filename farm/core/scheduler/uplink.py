"""This PC's one link to the nodes that share it: the uploads sent over it, one after another.

The dispatcher sends one upload at a time over this PC's link, whichever node it goes to (unless a node's
own slow link is what bounds it). A node's next upload therefore waits behind the other nodes' uploads,
not only behind its own; counted per node, two 40 MB inputs sent at once to two nodes would each look due
in one upload's time, and the second would end a whole upload later than promised.
"""

from __future__ import annotations

Key = tuple[str, str]  # (job, worker): a job and its backup copy are two uploads


class SharedUplink:
    """The uploads sent over this PC's link and not known to have arrived, in the order they were sent,
    and when the last of them is expected to end (each its estimated seconds, each from its dispatch at
    the earliest)."""

    __slots__ = ("_end", "_pending", "_sum")

    def __init__(self) -> None:
        self._pending: dict[Key, float] = {}  # in sending order -> its estimated seconds
        self._sum = 0.0  # the seconds of the pending uploads
        self._end = float("-inf")  # when the last pending upload is expected to end

    def sent(self, key: Key, seconds: float, now: float) -> None:
        """An upload of ``seconds`` joins the line (it starts once those before it have ended)."""
        if key in self._pending:
            return
        self._pending[key] = seconds
        self._sum += seconds
        self._end = max(self._end, now) + seconds

    def arrived(self, key: Key, now: float) -> bool:
        """An upload is over: so are those sent before it (one line), and the rest start from ``now``.
        True if that brings the line's end sooner than expected."""
        if key not in self._pending:
            return False
        pending = self._pending
        while pending:
            first = next(iter(pending))
            self._sum -= pending.pop(first)
            if first == key:
                break
        if not pending:
            self._sum = 0.0
        sooner = now + self._sum < self._end
        self._end = min(self._end, now + self._sum)
        return sooner

    def dropped(self, key: Key) -> None:
        """An upload will not happen (or not finish): the line is that much shorter."""
        seconds = self._pending.pop(key, None)
        if seconds is not None:
            self._sum -= seconds
            self._end -= seconds
            if not self._pending:
                self._sum, self._end = 0.0, float("-inf")

    def end(self, now: float) -> float:
        """When the uploads in line are expected to have ended (``now`` if none are)."""
        return max(self._end, now) if self._pending else now

    def __len__(self) -> int:
        return len(self._pending)
