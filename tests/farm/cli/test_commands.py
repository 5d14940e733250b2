"""`lanfarm nodes`, `engines`, `node`, `app`, `models` and the names of things, as a new user meets
them (issue 17): tables that fit, exit codes, pipes, clean help. Real commands, real nodes."""

from __future__ import annotations

import io
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from farm.cli import main
from farm.cli.nodes import print_table
from farm.core.address import Address
from farm.core.nodetable import Unreached
from tests.conftest import LANFARM, subprocess_env
from tests.farm.cli.test_run import run_cli
from tests.node.helpers import TOKEN, node_env, start_node, stop_node


@pytest.fixture
def node(tmp_path: Path) -> Iterator[str]:
    """A real node on 127.0.0.1 (no mDNS) with a long name; yields its ``host:port``."""
    home = tmp_path / "node"
    args = ("--host", "127.0.0.1", "--port", "0", "--no-advertise", "--name", "workshop-gpu-box", "--simulate")
    proc, url = start_node(home, *args, env=node_env(home))
    try:
        yield url.removeprefix("https://")
    finally:
        stop_node(proc)


def _token(tmp_path: Path) -> str:
    path = tmp_path / "token"
    path.write_text(TOKEN)
    return str(path)


# 6 ------------------------------------------------------------------------------------------------
def test_the_nodes_table_fits_80_columns_and_never_cuts_the_address(node: str, tmp_path: Path) -> None:
    dead = "127.0.0.1:9"
    result = subprocess.run(
        [*LANFARM, "nodes", "--no-discovery", "--peer", node, "--peer", dead, "--token-file", _token(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=subprocess_env(COLUMNS="80"),
        check=False,
    )
    assert result.returncode == 0, result.stderr  # one usable node
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), result.stdout
    assert any(node in line for line in lines) and any(dead in line for line in lines)
    header = next(line for line in lines if "Address" in line)
    for column in ("Name", "State", "GPU", "VRAM", "Engines", "Models", "Free", "Version"):
        assert column in header
    row = next(line for line in lines if node in line)
    assert "online" in row and "0.1.0" in row
    assert "lama" not in result.stdout  # engines the node cannot run (no model) are not listed
    wide = run_cli("nodes", "--no-discovery", "--peer", node, "--token-file", _token(tmp_path), "--wide")
    assert "sim" in wide.stdout and "+" not in next(line for line in wide.stdout.splitlines() if node in line)


def test_an_ipv6_address_is_printed_as_it_is() -> None:
    out = io.StringIO()
    misses = [Unreached(Address.parse("[fe80::1]:7788"), "peer", "timed out")]
    print_table([], misses, Console(file=out, width=80))
    assert "[fe80::1]:7788" in out.getvalue()


def test_nodes_exit_1_when_no_node_is_usable(node: str, tmp_path: Path) -> None:
    unauthorised = run_cli("nodes", "--no-discovery", "--peer", node)  # no token: it refuses us
    assert unauthorised.returncode == 1 and "unauthorised" in unauthorised.stdout
    offline = run_cli("nodes", "--no-discovery", "--peer", "127.0.0.1:9", "--json")
    assert offline.returncode == 1
    assert json.loads(offline.stdout)["unreached"][0]["error"] == "connection refused"
    usable = run_cli("nodes", "--no-discovery", "--peer", node, "--token-file", _token(tmp_path), "--wait", "600")
    assert usable.returncode == 0  # and --wait 600 is a cap: the answers ended the wait


def test_nodes_json_into_a_closed_pipe_says_nothing(node: str, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [*LANFARM, "nodes", "--no-discovery", "--peer", node, "--token-file", _token(tmp_path), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=subprocess_env(),
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader (`head`) is gone before anything is written
    with proc.stderr:
        err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141
    assert err == "", err


# 7 ------------------------------------------------------------------------------------------------
def test_app_without_a_display_says_to_run_a_node_instead() -> None:
    env = {k: v for k, v in subprocess_env().items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    result = subprocess.run([*LANFARM, "app"], capture_output=True, text=True, timeout=60, env=env, check=False)
    assert result.returncode == 2
    assert "there is no display" in result.stderr and "run `lanfarm node` instead" in result.stderr
    assert "Qt platform plugin" not in result.stderr


def test_node_print_config_shows_the_name_it_will_use_and_gpu_sets_the_device(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import socket

    assert main(["node", "--print-config", "--gpu", "1", "--advertise-on", "127.0.0.1"]) == 0
    out = capsys.readouterr().out
    assert f'name = "{socket.gethostname()}"' in out and 'name = ""' not in out
    assert 'device = "cuda:1"' in out and 'interfaces = ["127.0.0.1"]' in out
    assert main(["node", "--print-config", "--interface", "10.0.0.2"]) == 0  # the old name still works
    assert 'interfaces = ["10.0.0.2"]' in capsys.readouterr().out
    assert main(["node", "--print-config", "--gpu", "1", "--device", "cpu"]) == 2
    assert "disagree" in capsys.readouterr().err
    assert main(["node", "--print-config", "--device", "tpu"]) == 2


def test_models_list_refuses_a_stray_argument(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list", "extra"]) == 2
    assert "takes no argument (got 'extra')" in capsys.readouterr().err


# 8 ------------------------------------------------------------------------------------------------
def test_engines_lists_names_operations_and_params_with_ranges_and_defaults() -> None:
    result = run_cli("engines")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "opencv (also: cv2): OpenCV inpaint" in text
    assert "does: inpaint; needs a mask" in text
    assert "radius           int 1..64" in text and "default 4" in text
    assert "method           one of ns|telea" in text
    data = json.loads(run_cli("engines", "--json").stdout)
    cv = next(e for e in data if e["name"] == "opencv")
    assert cv["id"] == "cv2" and cv["aliases"] == ["cv2"] and cv["operations"] == ["inpaint"]


# 9 ------------------------------------------------------------------------------------------------
def test_one_name_per_idea(capsys: pytest.CaptureFixture[str]) -> None:
    from farm.engines.registry import ENGINE_NAMES, engine_id

    assert engine_id("opencv") == engine_id("cv2") == "cv2"
    assert engine_id("ESRGAN") == engine_id("upscale") == "upscale"
    assert engine_id("stable-diffusion") == engine_id("sd-inpaint") == "sd-inpaint"
    assert len(set(ENGINE_NAMES.values())) == len(ENGINE_NAMES)
    with pytest.raises(SystemExit):
        main(["--help"])
    listing = capsys.readouterr().out
    assert "engines" in listing and "version" not in listing.split("options:")[0].split("COMMAND", 2)[-1]
    assert main(["version"]) == 0 and capsys.readouterr().out.startswith("lanfarm ")


def test_discovery_options_name_what_they_do(tmp_path: Path) -> None:
    nodes = run_cli("nodes", "--help").stdout
    run = run_cli("run", "--help").stdout
    node = run_cli("node", "--help").stdout
    assert "--discover-on ADDR" in nodes and "--discover-on ADDR" in run and "--advertise-on ADDR" in node
    for text in (nodes, run, node):
        assert "--interface" not in text and "--simulate" not in text
    old = run_cli("nodes", "--no-discovery", "--interface", "127.0.0.1", "--peer", "127.0.0.1:9")
    assert old.returncode == 1 and "Traceback" not in old.stderr  # the old spelling still parses
