"""NodeTable transitions with a fake clock: no sockets, time passed in."""

from __future__ import annotations

from typing import Any

import pytest

from farm.core.address import Address
from farm.core.advert import NodeAdvert
from farm.core.nodeinfo import NodeInfo
from farm.core.nodetable import Failed, Healthy, NodeChanged, NodeDown, NodeTable, NodeUp, Probe, Unauthorised

A = Address("10.0.0.1", 7788)
A2 = Address("192.168.1.9", 7788)
B = Address("10.0.0.2", 7788)
SVC = "pc1._lanfarm._tcp.local."
ADVERT = NodeAdvert(
    id="n1",
    name="pc1",
    version="0.1.0",
    proto=1,
    gpu="RTX 4090",
    vram_mb=24564,
    engines=("cv2", "lama"),
    slots=2,
    free=2,
)


def info(node_id: str = "n1", name: str = "pc1", free: int = 2) -> NodeInfo:
    return NodeInfo.from_dict(
        {
            "id": node_id,
            "name": name,
            "protocol": 1,
            "hardware": {"gpus": [{"index": 0, "name": "RTX 4090", "vram_total": 24564 << 20}]},
            "engines": [{"id": "cv2"}, {"id": "lama"}],
            "slots": {"total": 2, "free": free},
        }
    )


def table() -> NodeTable:
    return NodeTable(heartbeat_interval=2.0, misses=3, info_interval=10.0)


def probe_all(t: NodeTable, now: float, outcome: Any) -> list[Any]:
    """Probe everything due at ``now`` with one outcome; the changes it caused."""
    changes = []
    for probe in t.due(now):
        changes += t.result(probe.address, outcome, now)
    return changes


def test_peer_comes_up_after_a_full_probe() -> None:
    t = table()
    t.add_peer(A, now=0)
    assert t.due(0) == [Probe(A, full=True)]
    assert t.due(0) == []  # in flight
    [up] = t.result(A, Healthy("n1", info()), now=0.1)
    assert isinstance(up, NodeUp)
    r = up.record
    assert (r.id, r.name, r.address, r.source, r.state) == ("n1", "pc1", A, "peer", "online")
    assert (r.gpu, r.vram_mb, r.engines, r.slots) == ("RTX 4090", 24564, ("cv2", "lama"), (2, 2))
    assert t.next_due() == pytest.approx(2.1)
    assert t.due(2.0) == []
    assert t.due(2.1) == [Probe(A, full=False)]  # heartbeat: /v1/health only
    assert t.result(A, Healthy("n1"), now=2.2) == []
    assert t.get("n1").last_seen == 2.2  # type: ignore[union-attr]
    t.due(12.2)  # info is 12 s old: a full probe again
    [changed] = t.result(A, Healthy("n1", info(free=0)), now=12.3)
    assert isinstance(changed, NodeChanged) and changed.record.slots == (0, 2)


def test_one_node_under_two_addresses_and_two_sources_counts_once() -> None:
    t = table()
    t.mdns_service(SVC, [A, A2], ADVERT, now=0)
    t.add_peer(A2, now=0)
    assert {p.address for p in t.due(0)} == {A, A2}
    [up] = t.result(A, Healthy("n1", info()), now=0.1)
    assert t.result(A2, Healthy("n1", info()), now=0.2) == [NodeChanged(t.get("n1"))]  # type: ignore[arg-type]
    [r] = t.nodes()
    assert isinstance(up, NodeUp) and r.address == A and r.addresses == (A, A2) and r.source == "mdns"
    assert r.advert == ADVERT


def test_misses_fail_over_to_another_address_then_take_the_node_down() -> None:
    t = table()
    t.add_peer(A, now=0)
    t.add_peer(A2, now=0)
    probe_all(t, 0, Healthy("n1", info()))
    for k in (1, 2):
        t.due(2 * k)
        assert t.result(A, Failed("connection refused"), 2 * k) == []
        t.result(A2, Healthy("n1"), 2 * k)
        assert t.get("n1").misses == k  # type: ignore[union-attr]
    t.due(6)
    [moved] = t.result(A, Failed("connection refused"), 6)
    assert isinstance(moved, NodeChanged) and moved.record.address == A2
    assert [u.address for u in t.unreached()] == [A]
    t.result(A2, Failed("timeout"), 6)
    assert probe_all(t, 8, Failed("timeout")) == []
    [down] = probe_all(t, 10, Failed("timeout"))  # A2's third miss
    assert isinstance(down, NodeDown) and down.reason == "timeout" and down.record.state == "offline"
    assert t.nodes() == [] and {u.address for u in t.unreached()} == {A, A2}


def test_recovery_after_going_down_and_misses_reset_on_an_answer() -> None:
    t = table()
    t.add_peer(A, now=0)
    probe_all(t, 0, Healthy("n1", info()))
    probe_all(t, 2, Failed("x"))
    probe_all(t, 4, Healthy("n1"))
    assert t.get("n1").misses == 0  # type: ignore[union-attr]
    for now in (6, 8, 10):
        changes = probe_all(t, now, Failed("x"))
    assert [type(c) for c in changes] == [NodeDown]
    assert t.due(12) == [Probe(A, full=True)]  # still probed, and fully: it has no node now
    [up] = t.result(A, Healthy("n1", info()), 12)
    assert isinstance(up, NodeUp)


def test_goodbye_takes_the_node_down_at_once_even_with_a_peer_address() -> None:
    t = table()
    t.mdns_service(SVC, [A], ADVERT, now=0)
    t.add_peer(A2, now=0)
    probe_all(t, 0, Healthy("n1", info()))
    [down] = t.mdns_goodbye(SVC, now=1)
    assert isinstance(down, NodeDown) and down.reason == "goodbye"
    assert t.nodes() == [] and t.peers() == [A2]
    assert t.due(1) == []  # the peer address waits a heartbeat before it may bring the node back
    assert t.due(3) == [Probe(A2, full=True)]
    assert isinstance(t.result(A2, Healthy("n1", info()), 3)[0], NodeUp)


def test_a_probe_that_was_in_flight_at_goodbye_is_ignored() -> None:
    t = table()
    t.mdns_service(SVC, [A], ADVERT, now=0)
    probe_all(t, 0, Healthy("n1", info()))
    t.due(2)
    t.mdns_goodbye(SVC, now=2.1)
    assert t.result(A, Healthy("n1"), 2.2) == [] and t.nodes() == []


def test_unauthorised_is_kept_then_recovers_when_the_token_is_fixed() -> None:
    t = table()
    t.mdns_service(SVC, [A], ADVERT, now=0)
    [up] = probe_all(t, 0, Unauthorised("n1"))
    r = up.record
    assert (r.state, r.name, r.gpu, r.slots, r.info) == ("unauthorised", "pc1", "RTX 4090", (2, 2), None)
    assert t.due(2) == [Probe(A, full=False)]
    assert t.result(A, Healthy("n1"), 2) == []  # health alone keeps it, still unauthorised
    assert t.get("n1").state == "unauthorised"  # type: ignore[union-attr]
    t.invalidate_info()
    assert t.due(2.5) == [Probe(A, full=True)]
    [changed] = t.result(A, Healthy("n1", info()), 2.5)
    assert isinstance(changed, NodeChanged) and changed.record.state == "online"


def test_advert_update_is_a_change_and_moving_addresses_drops_the_old_one() -> None:
    t = table()
    t.mdns_service(SVC, [A], ADVERT, now=0)
    probe_all(t, 0, Unauthorised("n1"))
    [changed] = t.mdns_service(SVC, [A], ADVERT.__class__(**{**_fields(ADVERT), "free": 0}), now=1)
    assert isinstance(changed, NodeChanged) and changed.record.slots == (0, 2)
    [down] = t.mdns_service(SVC, [B], ADVERT, now=2)  # the node's only address went away
    assert isinstance(down, NodeDown) and down.reason == "removed"
    assert t.due(2) == [Probe(B, full=True)]


def test_another_node_answering_at_a_known_address_replaces_it() -> None:
    t = table()
    t.add_peer(A, now=0)
    probe_all(t, 0, Healthy("n1", info()))
    changes = probe_all(t, 2, Healthy("n2"))  # health-only probe, but a different id answered
    assert [type(c) for c in changes] == [NodeDown]
    assert t.due(4) == [Probe(A, full=True)]
    [up] = t.result(A, Healthy("n2", info("n2", "pc2")), 4)
    assert isinstance(up, NodeUp) and up.record.name == "pc2"


def test_removing_a_peer_takes_its_node_down_and_unknown_peers_are_ignored() -> None:
    t = table()
    t.add_peer(A, now=0)
    assert t.all_probed() is False
    probe_all(t, 0, Healthy("n1", info()))
    assert t.all_probed() is True
    assert t.remove_peer(B, now=1) == []
    [down] = t.remove_peer(A, now=1)
    assert isinstance(down, NodeDown) and down.reason == "removed"
    assert t.due(10) == [] and t.next_due() is None


def _fields(advert: NodeAdvert) -> dict[str, Any]:
    return {f: getattr(advert, f) for f in advert.__slots__}  # type: ignore[attr-defined]


def test_an_untrusted_node_is_listed_with_why_and_is_trusted_again_once_it_proves_itself() -> None:
    from farm.core.nodetable import NodeState, Untrusted

    t = NodeTable(heartbeat_interval=1.0, misses=3, info_interval=10.0)
    t.add_peer(A, 0.0)
    [probe] = t.due(0.0)
    [up] = t.result(probe.address, Untrusted("n1", "shows a new TLS certificate"), 0.0)
    assert isinstance(up, NodeUp) and up.record.state is NodeState.UNTRUSTED
    assert up.record.problem == "shows a new TLS certificate" and up.record.info is None
    [probe] = t.due(1.0)
    assert t.result(probe.address, Healthy("n1"), 1.0) == []  # health alone does not make it trusted
    assert t.get("n1").state is NodeState.UNTRUSTED  # type: ignore[union-attr]
    [probe] = t.due(2.0)
    [changed] = t.result(probe.address, Healthy("n1", info()), 2.0)
    assert isinstance(changed, NodeChanged) and changed.record.state is NodeState.ONLINE
    assert changed.record.problem == ""
