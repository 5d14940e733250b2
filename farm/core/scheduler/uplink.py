"""This PC's one link to the nodes that share it: the uploads sent over it, one after another.

The dispatcher sends one upload at a time over this PC's link, whichever node it goes to (unless a node's
own slow link is what bounds it). A node's next upload therefore waits behind the other nodes' uploads,
not only behind its own; counted per node, two 40 MB inputs sent at once to two nodes would each look due
in one upload's time, and the second would end a whole upload later than promised.

The line holds bytes, not seconds: the first uploads of a batch are sent before any link is measured,
and their time is known only once the first of them has arrived.
"""

from __future__ import annotations

Key = tuple[str, str]  # (job, worker): a job and its backup copy are two uploads


class SharedUplink:
    """The uploads sent over this PC's link and not known to have arrived, in the order they were sent:
    the first of them under way since ``since``, the rest after it."""

    __slots__ = ("_bytes", "_pending", "_since")

    def __init__(self) -> None:
        self._pending: dict[Key, float] = {}  # in sending order -> its bytes
        self._bytes = 0.0  # the bytes of the pending uploads
        self._since = 0.0  # when the first pending upload began (the previous one arrived, or it was sent)

    def sent(self, key: Key, nbytes: float, now: float) -> None:
        """An upload joins the line (it starts once those before it have ended)."""
        if key in self._pending:
            return
        if not self._pending:
            self._since = now
        self._pending[key] = nbytes
        self._bytes += nbytes

    def arrived(self, key: Key, now: float, rate: float | None) -> bool:
        """An upload is over, and the next one in line starts from ``now`` (uploads take the link in the
        order they are ready, not always the order they were sent). True if that brings the line's end
        sooner than expected at ``rate`` bytes per second."""
        if key not in self._pending:
            return False
        before = self.end(now, rate)
        nbytes = self._pending.pop(key)
        self._bytes = self._bytes - nbytes if self._pending else 0.0
        self._since = now
        return self.end(now, rate) < before

    def dropped(self, key: Key) -> None:
        """An upload will not happen (or not finish): the line is that much shorter."""
        nbytes = self._pending.pop(key, None)
        if nbytes is not None:
            self._bytes = self._bytes - nbytes if self._pending else 0.0

    def end(self, now: float, rate: float | None) -> float:
        """When the uploads in line are expected to have ended at ``rate`` bytes per second (``now`` if none
        are, or the rate is not known yet)."""
        if not self._pending or not rate:
            return now
        return max(now, self._since + self._bytes / rate)

    def __len__(self) -> int:
        return len(self._pending)
