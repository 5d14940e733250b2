"""The farm's Wake-on-LAN bookkeeping (farm.runtime.waker) with a stand-in sender and clock: who is
remembered, asleep, waking, woken at a batch start, and never a node of this PC (loopback)."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm.core.address import Address
from farm.core.nodeinfo import NodeInfo
from farm.core.nodetable import NodeRecord, NodeState
from farm.core.wol import magic_packet, parse_mac, targets
from farm.local.sleepers import Sleeper, SleeperBook
from farm.runtime.waker import Waker

MAC = "aa:bb:cc:dd:ee:ff"


def record(host: str, macs: tuple[str, ...] = (MAC,)) -> NodeRecord:
    info = NodeInfo(id="n1", name="gamer-pc", macs=macs)
    return NodeRecord("n1", "gamer-pc", Address(host, 7788), "peer", NodeState.ONLINE, info=info)


class Clock:
    now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def make(tmp_path: Path, *, enabled: bool = True) -> tuple[Waker, list[Sleeper], Clock]:
    sent: list[Sleeper] = []
    clock = Clock()

    def send(s: Sleeper) -> list[tuple[str, int]]:
        sent.append(s)
        return targets(s.host)

    waker = Waker(
        SleeperBook(tmp_path / "sleepers.json"), enabled=enabled, clock=clock, run_io=lambda f: f(), send=send
    )
    return waker, sent, clock


def test_the_magic_packet_and_where_it_goes() -> None:
    assert magic_packet(MAC) == b"\xff" * 6 + bytes.fromhex("aabbccddeeff") * 16
    assert parse_mac("AA-BB-CC-DD-EE-FF") == parse_mac("aabbccddeeff") == bytes.fromhex("aabbccddeeff")
    with pytest.raises(ValueError, match="not a MAC"):
        parse_mac("aa:bb:cc")
    assert targets("192.168.1.23") == [("192.168.1.255", 9), ("192.168.1.23", 9)]
    assert targets("127.0.0.1") == [] and targets("localhost") == []  # this PC: nothing to wake


def test_a_silent_node_is_asleep_then_waking_then_asleep_again(tmp_path: Path) -> None:
    waker, sent, clock = make(tmp_path)
    waker.seen(record("192.168.1.23"))
    assert waker.sleeping(["n1"]) == []  # online
    waker.left("n1", "timeout")
    [z] = waker.sleeping([])
    assert (z.sleeper.name, z.state, z.sleeper.macs) == ("gamer-pc", "asleep", (MAC,))
    assert waker.wake_all([]) == 1 and [s.id for s in sent] == ["n1"]
    assert waker.sleeping([])[0].state == "waking"
    assert waker.wake_all([]) == 0  # already waking: not sent again
    again = Waker(SleeperBook(tmp_path / "sleepers.json"), enabled=True, clock=clock, run_io=lambda f: f())
    assert again.sleeping([])[0].state == "waking"  # another shell sees it waking too (the book keeps it)
    clock.now += 121
    assert waker.sleeping([])[0].state == "asleep"  # no answer within the timeout
    waker.seen(record("192.168.1.23"))
    assert waker.sleeping(["n1"]) == []  # it answered


def test_a_stopped_node_is_not_asleep_and_loopback_or_macless_nodes_are_not_kept(tmp_path: Path) -> None:
    waker, _sent, _ = make(tmp_path)
    waker.seen(record("192.168.1.23"))
    waker.left("n1", "goodbye")
    assert waker.sleeping([]) == [] and waker.wake_all([]) == 0
    other, _, _ = make(tmp_path / "b")
    other.seen(record("127.0.0.1"))
    other.seen(record("10.0.0.9", macs=()))
    assert other.book.all() == []


def test_the_setting_stops_packets_at_batch_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    waker, sent, _ = make(tmp_path, enabled=False)
    waker.seen(record("192.168.1.23"))
    waker.left("n1", "timeout")
    assert waker.wake_all([]) == 0 and sent == []
    on, sent_on, _ = make(tmp_path / "c")
    on.seen(record("192.168.1.23"))
    monkeypatch.setenv("LANFARM_WAKE_ON_LAN", "off")
    assert on.wake_all([]) == 0 and sent_on == []
    assert on.wake(on.book.all()[0])  # asked by hand: sent all the same
