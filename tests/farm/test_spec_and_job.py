from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from farm import EditSpec, IllegalTransition, Job, JobState, SpecError, default_registry
from farm.core.spec import HdStrategy, OutputSpec


def test_spec_round_trips_through_json() -> None:
    spec = EditSpec(
        op="inpaint",
        engine="cv2",
        params={"radius": 7, "method": "telea"},
        hd=HdStrategy("resize", trigger=900, margin=64, resize_limit=1024),
        output=OutputSpec("webp", 80),
        model=None,
    )
    again = EditSpec.from_json(spec.to_json())
    assert again == spec
    assert json.loads(spec.to_json())["schema"] == 1


def test_unknown_schema_version_is_refused_with_a_message() -> None:
    data = EditSpec().to_dict() | {"schema": 99}
    with pytest.raises(SpecError, match="unsupported spec schema version 99"):
        EditSpec.from_dict(data)


def test_unknown_param_is_refused_naming_it() -> None:
    spec = EditSpec(params={"radius": 3, "colour": "red"})
    with pytest.raises(SpecError, match="unknown param 'colour'"):
        default_registry().resolve(spec)


def test_params_are_typed_and_bounded() -> None:
    reg = default_registry()
    _, params = reg.resolve(EditSpec(params={"radius": 5.0}))
    assert params == {"method": "ns", "radius": 5}
    with pytest.raises(SpecError, match="at most 64"):
        reg.resolve(EditSpec(params={"radius": 500}))
    with pytest.raises(SpecError, match="one of ns, telea"):
        reg.resolve(EditSpec(params={"method": "magic"}))
    with pytest.raises(SpecError, match="must be a number"):
        reg.resolve(EditSpec(params={"radius": True}))


def test_unknown_field_and_bad_json_are_refused() -> None:
    with pytest.raises(SpecError, match="unknown field 'colour'"):
        EditSpec.from_dict(EditSpec().to_dict() | {"colour": 1})
    with pytest.raises(SpecError, match="not valid JSON"):
        EditSpec.from_json("{nope")


@given(
    st.dictionaries(
        st.text(max_size=8),
        st.one_of(st.none(), st.integers(), st.text(max_size=8), st.lists(st.integers(), max_size=2)),
        max_size=6,
    )
)
def test_random_dicts_either_parse_or_raise_spec_error(data: dict[str, object]) -> None:
    with contextlib.suppress(SpecError):
        EditSpec.from_dict(data | {"schema": 1})


def _job() -> Job:
    return Job(input=Path("a.png"), spec=EditSpec(), output=Path("out/a.png"))


def test_job_happy_path_counts_attempts() -> None:
    job = _job()
    for state in (
        JobState.DISPATCHED,
        JobState.RUNNING,
        JobState.QUEUED,
        JobState.DISPATCHED,
        JobState.RUNNING,
        JobState.DONE,
    ):
        job.move(state)
    assert job.attempts == 2
    assert job.state.finished


@pytest.mark.parametrize(
    ("start", "to"),
    [
        (JobState.DONE, JobState.QUEUED),
        (JobState.QUEUED, JobState.RUNNING),
        (JobState.QUEUED, JobState.DONE),
        (JobState.CANCELLED, JobState.RUNNING),
    ],
)
def test_illegal_transitions_raise(start: JobState, to: JobState) -> None:
    job = _job()
    job.state = start
    with pytest.raises(IllegalTransition, match=f"from {start} to {to}"):
        job.move(to)


def test_failed_job_keeps_its_error_until_requeued() -> None:
    job = _job()
    job.move(JobState.DISPATCHED)
    job.move(JobState.FAILED, error="boom")
    assert job.error == "boom"
    job.move(JobState.QUEUED)
    assert job.error is None


def test_engine_descriptors_cross_the_wire_and_merge() -> None:
    from dataclasses import replace

    from farm.engines import EngineDescriptor
    from farm.engines.base import merge_descriptors

    sim = default_registry(simulate=True).descriptor("sim")
    assert EngineDescriptor.from_dict(sim.to_dict()).to_dict() == sim.to_dict()
    local = default_registry().descriptors() + [replace(sim, available=False, unavailable_reason="no GPU")]
    node = [replace(sim, models=("a.pth",)), replace(default_registry().descriptor("cv2"), models=())]
    merged = {d.id: d for d in merge_descriptors(local, node)}
    assert merged["sim"].available and merged["sim"].models == ("a.pth",)
    assert merged["cv2"] == default_registry().descriptor("cv2")
