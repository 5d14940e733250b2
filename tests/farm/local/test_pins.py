"""Pinned certificates on disk: a private file, read back as written; a damaged one is an error that names
it, and the farm then pins nothing over it."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from farm.errors import FarmError
from farm.local.pins import Pin, colons, load_pins, save_pins
from farm.runtime.trust import Trust

FP = "ab" * 32


def test_pins_round_trip_in_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "new-folder" / "pins.json"
    pins = {"n1": Pin("n1", "gpu-box", "https://10.0.0.5:7788", FP)}
    save_pins(pins, path)
    assert load_pins(path) == pins and load_pins(tmp_path / "missing.json") == {}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert pins["n1"].matches("GPU-box") and pins["n1"].matches("n1") is False  # id prefixes need 6+
    assert colons(FP) == "AB:AB:AB:AB:AB:AB:AB:AB…" and colons(FP, 0).count(":") == 31


@pytest.mark.parametrize("text", ["not json", '{"pins": []}', '{"pins": {"n1": {"fingerprint": "xyz"}}}'])
def test_a_damaged_pin_file_is_named_and_pins_nothing(
    tmp_path: Path, text: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "pins.json"
    path.write_text(text)
    with pytest.raises(FarmError, match=r"pins\.json"):
        load_pins(path)
    with caplog.at_level(logging.WARNING):
        assert Trust(path).pins() == {}
    assert "pins.json" in caplog.text


async def test_a_pin_is_never_replaced_without_the_user(tmp_path: Path) -> None:
    trust = Trust(tmp_path / "pins.json")
    await trust.accept("https://a:1", "n1", "gpu-box", "https://a:1", FP)
    assert trust.check("n1", "cd" * 32, "https://a:1") is not None
    await trust.accept("https://a:1", "n1", "gpu-box", "https://a:1", "cd" * 32)
    assert load_pins(trust.path)["n1"].fingerprint == FP
    assert await trust.trust("gpu-box") == ["n1"] and load_pins(trust.path) == {}
    assert await trust.trust("gpu-box") == []


async def test_a_trust_given_elsewhere_is_seen_and_never_undone(tmp_path: Path) -> None:
    """`lanfarm nodes trust` while the app runs: the app's trust store reads the file again, and a later
    pin of its own does not bring the dropped one back."""
    app = Trust(tmp_path / "pins.json")
    await app.accept("https://a:1", "n1", "gpu-box", "https://a:1", FP)
    assert await Trust(tmp_path / "pins.json").trust("gpu-box") == ["n1"]  # the CLI, another process
    assert app.check("n1", "cd" * 32, "https://a:1") is None  # the new certificate may be pinned now
    await app.accept("https://b:1", "n2", "attic", "https://b:1", "ef" * 32)
    assert set(load_pins(tmp_path / "pins.json")) == {"n2"}
