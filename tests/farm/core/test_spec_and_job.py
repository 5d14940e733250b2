from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import Phase, assume, example, find, given, settings
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


# --- parsing whatever arrives: a valid spec's dict, mutated --------------------------------------

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and the infinities too: Python's json reads and writes them
    | st.text(max_size=12)
)
JUNK = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
# values next to the valid ones: the bounds and one past them, the wrong type of the right value
NEAR_MISSES = st.sampled_from(
    [True, False, 0, -1, 1, 15, 16, 100, 101, 127, 128, 1 << 14, (1 << 14) + 1, 1 << 16, (1 << 16) + 1, 2**64]
    + [800.0, 1.5, "", "800", "png", "jpg", "JPEG", "webp", "crop", "inpaint", "upscale", "cv2", "x" * 64, "x" * 65]
    + ["m" * 255, "m" * 256, None, [], {}, [1], {"strategy": "crop"}, {"format": "png"}, {"radius": 3}]
)
VALUES = NEAR_MISSES | JUNK
PARAM_VALUES = st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
FIELDS = {
    None: ["schema", "op", "engine", "params", "hd", "output", "model"],
    "hd": ["strategy", "trigger", "margin", "resize_limit"],
    "output": ["format", "quality"],
    "params": ["radius", "method", "steps", "prompt"],
}
VALID_SPECS = st.fixed_dictionaries(
    {"schema": st.just(1), "op": st.sampled_from(["inpaint", "upscale"]), "engine": st.text(min_size=1, max_size=64)},
    optional={
        "params": st.dictionaries(st.text(max_size=12), PARAM_VALUES, max_size=4),
        "hd": st.fixed_dictionaries(
            {},
            optional={
                "strategy": st.sampled_from(["original", "crop", "resize"]),
                "trigger": st.integers(16, 1 << 16),
                "margin": st.integers(0, 1 << 14),
                "resize_limit": st.integers(16, 1 << 16),
            },
        ),
        "output": st.fixed_dictionaries(
            {}, optional={"format": st.sampled_from(["png", "jpeg", "jpg", "webp"]), "quality": st.integers(1, 100)}
        ),
        "model": st.none() | st.text(min_size=1, max_size=255),
    },
)


@st.composite
def mutated_specs(draw: st.DrawFn) -> dict[str, Any]:
    """A valid spec dict with a few keys dropped, values changed, unknown keys added, junk nested."""
    data: dict[str, Any] = draw(VALID_SPECS)
    if draw(st.sampled_from(range(16))) == 15:
        return draw(JUNK)  # not even an object
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(list(FIELDS)))
        target = data if where is None else data.setdefault(where, {})
        if not isinstance(target, dict):  # replaced by junk already: mutate the top level instead
            where, target = None, data
        action = draw(st.sampled_from(["drop", "change", "change", "unknown"]))
        if action == "drop" and target:
            del target[draw(st.sampled_from(sorted(target)))]
        elif action == "change":
            target[draw(st.sampled_from(FIELDS[where]))] = draw(VALUES)
        else:
            target[draw(st.text(max_size=8))] = draw(VALUES)
    return data


def _parses(data: Any) -> bool:
    try:
        EditSpec.from_dict(data)
    except SpecError:
        return False
    return True


def _finite(spec: EditSpec) -> bool:
    return all(not isinstance(v, float) or math.isfinite(v) for v in spec.params.values())


@settings(max_examples=1000)
@given(mutated_specs())
# cases found before, kept: an unhashable output format or HD strategy, a NaN param, a true schema
@example({"schema": 1, "op": "inpaint", "engine": "cv2", "output": {"format": []}})
@example({"schema": 1, "op": "inpaint", "engine": "cv2", "hd": {"strategy": {"crop": 1}}})
@example({"schema": 1, "op": "inpaint", "engine": "cv2", "params": {"radius": float("nan")}})
@example({"schema": True, "op": "upscale", "engine": "x"})
def test_mutated_specs_parse_and_round_trip_or_raise_spec_error(data: Any) -> None:
    """Whatever parses comes back the same through to_dict and through JSON; all else is a SpecError
    (any other exception escapes, and hypothesis shows the input)."""
    try:
        wire = json.dumps(data)
    except ValueError:  # a mutation made the dict contain itself: no JSON (so no wire) can carry that
        assume(False)
    try:
        spec = EditSpec.from_dict(data)
    except SpecError:
        with pytest.raises(SpecError):
            EditSpec.from_json(wire)
        return
    assert isinstance(spec, EditSpec)
    assert EditSpec.from_dict(spec.to_dict()) == spec
    text = spec.to_json()
    again = EditSpec.from_json(text)
    assert again.to_json() == text
    if _finite(spec):  # NaN is never equal to itself, not even to the NaN that JSON read back
        assert again == spec
    assert EditSpec.from_json(wire).to_json() == text  # the wire form of the same dict: the same spec


def test_the_mutations_reach_every_part_of_the_parser() -> None:
    """The examples above are neither all valid nor all refused at the first check: each of these is
    found among them (hypothesis.find raises NoSuchExample if it is not)."""
    search = settings(phases=[Phase.generate], max_examples=2000, database=None)  # the first found will do
    find(mutated_specs(), _parses, settings=search)
    for message in (
        *("spec must be", "unsupported spec schema", "unknown field", "op must be", "engine must be"),
        *("params must be", "param ", "model must be", "hd must be", "in hd", "hd.strategy", "hd.trigger"),
        *("hd.margin", "hd.resize_limit", "output must be", "in output", "output.format", "output.quality"),
    ):
        find(mutated_specs(), lambda d, m=message: _refused_with(d, m), settings=search)


def _refused_with(data: Any, message: str) -> bool:
    try:
        EditSpec.from_dict(data)
    except SpecError as exc:
        return message in str(exc)
    except Exception:  # the property test above reports these
        return False
    return False


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

    from farm.core.descriptor import merge_descriptors
    from farm.engines import EngineDescriptor

    sim = default_registry(simulate=True).descriptor("sim")
    assert EngineDescriptor.from_dict(sim.to_dict()).to_dict() == sim.to_dict()
    local = default_registry().descriptors() + [replace(sim, available=False, unavailable_reason="no GPU")]
    node = [replace(sim, models=("a.pth",)), replace(default_registry().descriptor("cv2"), models=())]
    merged = {d.id: d for d in merge_descriptors(local, node)}
    assert merged["sim"].available and merged["sim"].models == ("a.pth",)
    assert merged["cv2"] == default_registry().descriptor("cv2")
