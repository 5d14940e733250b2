"""Where a cut model push resumes (farm/core/push_resume.py): inside the chunk the node kept a prefix of."""

from __future__ import annotations

from farm.core.push_resume import Stream, bytes_held, chunk_span, streams

MB = 1 << 20


def test_a_stream_starts_at_the_byte_the_node_kept() -> None:
    sizes = [10 * MB]
    plan = streams(sizes, 4 * MB, [(0, 1), (0, 2)], [(0, 1, 3 * MB)])
    assert plan == [Stream(0, 1, 3 * MB, 7 * MB, 3 * MB)]
    assert bytes_held(sizes, 4 * MB, [(0, 1), (0, 2)], plan) == 7 * MB


def test_nothing_kept_starts_at_the_first_missing_chunk_of_each_file() -> None:
    sizes = [5 * MB, 0, 3 * MB]
    plan = streams(sizes, 2 * MB, [(2, 1), (0, 2), (0, 1), (1, 0)])
    assert plan == [Stream(0, 1, 0, 2 * MB, 3 * MB), Stream(1, 0, 0, 0, 0), Stream(2, 1, 0, 2 * MB, MB)]
    assert bytes_held(sizes, 2 * MB, [(2, 1), (0, 2), (0, 1), (1, 0)], plan) == 2 * MB + 2 * MB


def test_a_prefix_counts_only_within_the_first_missing_chunk() -> None:
    sizes = [10 * MB]
    # kept of a later chunk (the stream re-sends it whole anyway), or as much as the whole chunk: ignored
    assert streams(sizes, 4 * MB, [(0, 1), (0, 2)], [(0, 2, MB)])[0].skip == 0
    assert streams(sizes, 4 * MB, [(0, 1)], [(0, 1, 4 * MB)])[0].skip == 0
    assert streams(sizes, 4 * MB, [(0, 2)], [(0, 2, 2 * MB)])[0] == Stream(0, 2, 0, 8 * MB, 2 * MB)  # 2 MB chunk
    assert chunk_span(10 * MB, 4 * MB, 2) == (8 * MB, 2 * MB)
