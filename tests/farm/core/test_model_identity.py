"""Model identity in the pure core: specs carry the model's content id, /v1/info's models parse with theirs,
routing matches ids, and the just-in-time plan weighs transfers against running elsewhere."""

from __future__ import annotations

import pytest

from farm.core.model_plan import DEFAULT_RATE, Candidate, ModelNeed, fits, plan_transfers
from farm.core.nodeinfo import ModelEntry, NodeInfo
from farm.core.scheduler import JobRequest, WorkerCaps
from farm.core.spec import EditSpec
from farm.errors import SpecError

A, B = "a" * 64, "b" * 64
MB = 1 << 20


def test_a_spec_carries_the_model_id_and_checks_it() -> None:
    spec = EditSpec(op="upscale", engine="upscale", model="x.pth", model_id=A)
    assert EditSpec.from_dict(spec.to_dict()) == spec
    assert "model_id" not in EditSpec(model="x.pth").to_dict()  # older nodes see the spec they know
    with pytest.raises(SpecError, match="64 lower-case hex"):
        EditSpec.from_dict({**spec.to_dict(), "model_id": "A" * 64})
    with pytest.raises(SpecError, match="needs model"):
        EditSpec.from_dict({**EditSpec().to_dict(), "model_id": A})


def test_info_models_parse_with_ids_and_older_nodes_say_none() -> None:
    info = NodeInfo.from_dict(
        {
            "id": "n1",
            "models": [{"id": A, "name": "x.pth", "kind": "upscale", "architecture": "ESRGAN", "scale": 2, "size": 9}],
            "model_space": 5 * MB,
        }
    )
    assert info.models == (ModelEntry("x.pth", 9, id=A, kind="upscale", architecture="ESRGAN", scale=2),)
    assert info.model_ids() == {"upscale": frozenset({A})} and info.model_space == 5 * MB
    assert NodeInfo.from_dict(info.to_dict()) == info
    old = NodeInfo.from_dict({"id": "n2", "models": [{"name": "x.pth", "size": 9}]})
    assert old.model_ids() is None and old.model_space is None


def test_routing_matches_the_id_never_the_name() -> None:
    job = JobRequest("j1", "upscale", model="x.pth", model_id=A)
    same_name_other_file = WorkerCaps(
        "n1",
        engines=frozenset({"upscale"}),
        models={"upscale": frozenset({"x.pth"})},
        model_ids={"upscale": frozenset({B})},
    )
    right = WorkerCaps(
        "n2",
        engines=frozenset({"upscale"}),
        models={"upscale": frozenset({"y.pth"})},
        model_ids={"upscale": frozenset({A})},
    )
    says_no_ids = WorkerCaps("local", engines=frozenset({"upscale"}), models={"upscale": frozenset({"x.pth"})})
    assert not same_name_other_file.can_run(job)
    assert right.can_run(job)  # the same content under another name
    assert says_no_ids.can_run(job)  # this PC (its file is the one the id was taken from) and older nodes: by name
    assert job.kind != JobRequest("j2", "upscale", model="x.pth", model_id=B).kind  # queued apart


def need(**kw: object) -> ModelNeed:
    base: dict[str, object] = {"model_id": A, "engine": "upscale", "size": 100 * MB, "memory_mb": 1024, "jobs": 10}
    return ModelNeed(**{**base, **kw})  # type: ignore[arg-type]


def node(node_id: str, **kw: object) -> Candidate:
    base: dict[str, object] = {"engines": frozenset({"upscale"}), "memory_mb": 8192, "space": 10_000 * MB}
    return Candidate(node_id, **{**base, **kw})  # type: ignore[arg-type]


def test_nobody_holds_it_every_able_node_gets_it_once() -> None:
    nodes = [
        node("fast", rate=100e6),
        node("slow"),
        node("no-engine", engines=frozenset({"cv2"})),
        node("small-memory", memory_mb=512),
        node("no-room", space=10 * MB),
        node("old", space=None),
        node("busy", busy=True),
        node("refused-it", refused=frozenset({A})),
        node("has-it", holds=frozenset({A})),
    ]
    plan = plan_transfers([need()], nodes)
    assert sorted(t.node_id for t in plan) == ["fast", "slow"]
    assert {t.node_id: t.seconds for t in plan} == {"fast": 100 * MB / 100e6, "slow": 100 * MB / DEFAULT_RATE}


def test_one_transfer_per_node_the_most_wanted_model_first() -> None:
    plan = plan_transfers([need(model_id=B, jobs=2), need(model_id=A, jobs=9)], [node("n1")])
    assert [(t.node_id, t.model_id) for t in plan] == [("n1", A)]


def test_with_holders_the_transfer_must_beat_running_elsewhere() -> None:
    quick_jobs = need(holders=1, jobs=10, seconds_per_job=0.1)  # holders finish in 1 s; a transfer takes ~8 s
    long_jobs = need(holders=1, jobs=10, seconds_per_job=60.0)  # 600 s of work left: worth sending
    # not measured yet: DEFAULT_JOB_SECONDS each, so 10 jobs are 10 s of work for the one holder
    unknown_big = need(holders=1, seconds_per_job=None, size=200 * MB)  # 16.8 s at the assumed 100 Mbit/s
    unknown_small = need(holders=1, seconds_per_job=None, size=1 * MB)
    assert plan_transfers([quick_jobs], [node("n1")]) == []
    assert [t.node_id for t in plan_transfers([long_jobs], [node("n1")])] == ["n1"]
    assert plan_transfers([unknown_big], [node("n1")]) == []
    assert [t.node_id for t in plan_transfers([unknown_small], [node("n1")])] == ["n1"]
    assert fits(need(), node("n1")) and not fits(need(size=20_000 * MB), node("n1"))
