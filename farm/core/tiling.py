"""The tile grid of a big upscale, one rule for both tilings (pure).

The upscale engine tiles inside one node (``farm.engines.upscale``) and the farm tiles one image
across nodes (``farm.imaging.tiles``); both cut each axis with :func:`tile_windows` after rounding the
tile down and the overlap up to the model's size multiple, so a farm tile sees exactly the context an
in-node tile would.
"""

from __future__ import annotations


def tile_windows(length: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Per tile along one axis: (core start, core end, window start, window end)."""
    out = []
    for start in range(0, length, tile):
        end = min(start + tile, length)
        out.append((start, end, max(0, start - overlap), min(length, end + overlap)))
    return out


def round_tile(tile: int, multiple: int) -> int:
    """A tile side rounded down to the model's size multiple (at least one multiple)."""
    return max(multiple, tile // multiple * multiple)


def round_overlap(overlap: int, multiple: int) -> int:
    """An overlap rounded up to the model's size multiple."""
    return -(-overlap // multiple) * multiple
