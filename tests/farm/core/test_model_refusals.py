"""A node that refused a model is asked again once that can have changed: more room, an engine or memory
it lacked, a restart, or a backoff that doubles with each further refusal (time passed in, no clocks)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from farm.core.model_plan import RETRY_FIRST, RETRY_MAX, NodeState, Refusal

GB = 1 << 30
NODE = NodeState(space=2 * GB, engines=frozenset({"upscale"}), memory_mb=8000, started=100.0)
REFUSED = Refusal("m" * 64, 5 * GB, at=1000.0, node=NODE)


def test_a_refusal_stands_while_nothing_changed() -> None:
    later = replace(NODE, space=2 * GB + (1 << 20))  # a few files deleted: still no room for 5 GB
    assert REFUSED.stands(NODE, 1000.0) and REFUSED.stands(later, 1000.0 + RETRY_FIRST - 1)
    assert REFUSED.stands(replace(NODE, memory_mb=4000, started=104.0), 1001.0)  # less memory; same process


@pytest.mark.parametrize(
    "node",
    [
        replace(NODE, space=5 * GB),  # its budget grew to fit the model
        replace(NODE, space=7 * GB + 1),  # room for one more model of that size
        replace(NODE, engines=frozenset({"upscale", "sd"})),  # an engine it lacked
        replace(NODE, memory_mb=16000),  # a bigger GPU
        replace(NODE, started=900.0),  # restarted (its start moved past the slack)
    ],
    ids=["room-for-it", "room-grew-by-its-size", "new-engine", "more-memory", "restarted"],
)
def test_it_ends_when_the_node_changed(node: NodeState) -> None:
    assert not REFUSED.stands(node, 1001.0)


def test_it_ends_after_a_backoff_that_doubles_with_each_refusal() -> None:
    assert not REFUSED.stands(NODE, 1000.0 + RETRY_FIRST)
    second = REFUSED.again(1000.0 + RETRY_FIRST, NODE)
    assert second.stands(NODE, second.at + RETRY_FIRST) and not second.stands(NODE, second.at + 2 * RETRY_FIRST)
    many = REFUSED
    for _ in range(20):
        many = many.again(many.retry_at, NODE)
    assert many.retry_at - many.at == RETRY_MAX
