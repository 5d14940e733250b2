"""Pure parts of the node: fair queue, job book, retention, throttle, blob cache, config, hardware, token."""

from __future__ import annotations

import importlib.machinery
import sys
import types
from pathlib import Path

import pytest

from farm.cli import main
from farm.core.job import JobState
from farm.core.spec import EditSpec
from farm.local import hardware
from node.advertiser import advert_addresses, host_label, instance_label
from node.blobs import BlobStore, write_blob
from node.config import ConfigError, NodeConfig, describe, load_or_create_node_id, read_file, resolve
from node.jobs import FairQueue, JobBook, NodeJob, Phase, ProgressThrottle, ResultInfo

SHA = "a" * 64


def job(job_id: str, client: str = "c", priority: int = 0) -> NodeJob:
    return NodeJob(
        id=job_id, spec=EditSpec(engine="sim"), image=SHA, mask=None, client=client, priority=priority, created=0.0
    )


def test_queue_serves_clients_round_robin() -> None:
    q = FairQueue()
    for i in range(4):
        q.push(job(f"a{i}", "alice"))
    for i in range(2):
        q.push(job(f"b{i}", "bob"))
    q.push(job("c0", "carol"))
    order = [q.pop().id for _ in range(len(q))]  # type: ignore[union-attr]
    assert order == ["a0", "b0", "c0", "a1", "b1", "a2", "a3"]
    assert q.pop() is None


def test_queue_priority_within_a_client_and_remove() -> None:
    q = FairQueue()
    low, high, mid = job("low", priority=0), job("high", priority=5), job("mid", priority=1)
    for j in (low, high, mid):
        q.push(j)
    assert q.remove(mid) and not q.remove(mid)
    assert [q.pop().id, q.pop().id] == ["high", "low"]  # type: ignore[union-attr]
    only = job("only", "dave")
    q.push(only)
    assert q.remove(only) and len(q) == 0 and q.pop() is None


def test_book_lifecycle_idempotence_and_counters() -> None:
    book = JobBook(retention=10)
    first, new = book.submit(job("j1"))
    again, new2 = book.submit(job("j1"))
    assert new and not new2 and again is first
    running = book.start_next(now=1.0)
    assert running is first and first.state is JobState.RUNNING and first.started == 1.0
    assert book.progress(first, 0.5) and first.progress == 0.5
    assert book.succeed(first, ResultInfo(SHA, 3, "image/png"), now=2.0)
    assert not book.fail(first, "late", now=3.0)  # finished jobs stay finished
    assert (book.done, book.failed) == (1, 0)
    assert book.expire(now=11.0) == [] and book.expire(now=12.0) == [first]


def test_book_cancel_queued_at_once_running_by_token() -> None:
    book = JobBook(retention=10)
    a, b = job("a"), job("b")
    book.submit(a)
    book.submit(b)
    book.start_next(0.0)
    assert book.cancel(b, 1.0) and b.state is JobState.CANCELLED and len(book.queue) == 0
    assert not book.cancel(a, 1.0) and a.cancel.cancelled and a.state is JobState.RUNNING
    assert book.cancelled(a, 2.0) and a.state is JobState.CANCELLED


def test_progress_throttle() -> None:
    t = ProgressThrottle(0.1)
    assert t.allow("j", 0.1, 0.0)
    assert not t.allow("j", 0.2, 0.05)
    assert t.allow("j", 1.0, 0.06)  # the end always passes
    assert t.allow("j", 0.3, 0.2)


def test_blob_cache_evicts_lru_but_never_pinned(tmp_path: Path) -> None:
    store = BlobStore(tmp_path, budget=250, max_size=1000)
    names = [write_blob(tmp_path, bytes([i]) * 100) for i in range(3)]
    store.pin([names[0]])
    store.added(names[0], 100)
    store.added(names[1], 100)
    assert store.has(names[1])
    store.added(names[2], 100)  # 300 > 250: the least recently used unpinned blob goes
    assert names[0] in store and names[2] in store and names[1] not in store
    assert not (tmp_path / names[1]).exists()
    store.unpin([names[0]])
    store.budget = 100
    store.evict()
    assert names[0] not in store and names[2] in store


def test_blob_cache_rescans_and_drops_partial_writes(tmp_path: Path) -> None:
    name = write_blob(tmp_path, b"hello")
    (tmp_path / f".{name}.1.abcd.part").write_bytes(b"hel")
    store = BlobStore(tmp_path, budget=1000, max_size=1000)
    assert store.has(name) and store.size(name) == 5 and len(list(tmp_path.iterdir())) == 1


def test_config_precedence_cli_env_file_default() -> None:
    file = {"port": 1111, "name": "from-file", "slots": 3, "job_timeout": 5}
    env = {"LANFARM_PORT": "2222", "LANFARM_NAME": "from-env", "LANFARM_INTERFACES": "10.0.0.2, 10.0.0.3"}
    cli = {"port": 3333, "name": None, "models_dir": Path("~/models")}
    config, origin = resolve(cli, env, file)
    assert (config.port, config.name, config.slots, config.host) == (3333, "from-env", 3, "0.0.0.0")
    assert config.interfaces == ("10.0.0.2", "10.0.0.3")
    assert config.models_dir == Path("~/models").expanduser()
    assert origin["port"] == "cli" and origin["name"] == "env" and origin["slots"] == "file"
    assert origin["host"] == "default"
    text = describe(config, origin)
    assert "port = 3333" in text and "# cli" in text


@pytest.mark.parametrize(
    ("cli", "env", "file", "words"),
    [
        ({}, {"LANFARM_PORT": "99999"}, {}, "LANFARM_PORT"),
        ({}, {}, {"bogus": 1}, "unknown setting 'bogus'"),
        ({"slots": 0}, {}, {}, "--slots"),
        ({}, {"LANFARM_ADVERTISE": "maybe"}, {}, "LANFARM_ADVERTISE"),
        ({"cert": "c.pem"}, {}, {}, "both --cert and --key"),
    ],
)
def test_config_errors_name_the_setting(cli: dict, env: dict, file: dict, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        resolve(cli, env, file)


def test_config_file_and_node_id(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text('[node]\nname = "spare"\nadvertise = false\n', encoding="utf-8")
    assert read_file(path) == {"name": "spare", "advertise": False}
    assert read_file(tmp_path / "missing.toml") == {}
    path.write_text("not = [toml", encoding="utf-8")
    with pytest.raises(ConfigError):
        read_file(path)
    first = load_or_create_node_id(tmp_path)
    assert first == load_or_create_node_id(tmp_path) and len(first) == 16


def test_print_config_via_cli(home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    (home / "config").mkdir(parents=True)
    (home / "config" / "node.toml").write_text("slots = 2\nport = 9000\n", encoding="utf-8")
    monkeypatch.setenv("LANFARM_PORT", "9001")
    assert main(["node", "--print-config", "--name", "box"]) == 0
    out = capsys.readouterr().out
    assert "slots = 2" in out and "port = 9001" in out and 'name = "box"' in out
    assert main(["node", "--print-config", "--port", "-5"]) == 2


def test_print_config_says_where_the_token_comes_from(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["node", "--print-config"]) == 0
    assert "# farm token: none yet" in capsys.readouterr().out
    monkeypatch.setenv("LANFARM_TOKEN", "e" * 32)
    assert main(["node", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "# farm token: from LANFARM_TOKEN (env)" in out and "e" * 32 not in out
    given = tmp_path / "tok"
    given.write_text("g" * 32)
    assert main(["node", "--print-config", "--token-file", str(given)]) == 0
    assert "# farm token: from --token-file (cli)" in capsys.readouterr().out
    assert main(["node", "--print-config", "--token-file", str(tmp_path / "missing")]) == 0
    assert "# farm token: cannot be read" in capsys.readouterr().out


def test_node_token_order_cli_env_node_toml_saved(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from farm.local.token import save_token
    from node.cli import node_token

    named = tmp_path / "named"
    named.write_text("n" * 32)
    save_token("s" * 32)
    config, origin = resolve({}, {}, {"token_file": str(named)})
    assert node_token(config, origin["token_file"]) == "n" * 32  # node.toml's token_file beats the saved one
    monkeypatch.setenv("LANFARM_TOKEN", "e" * 32)
    assert node_token(config, origin["token_file"]) == "e" * 32  # ... and loses to LANFARM_TOKEN
    config, origin = resolve({"token_file": named}, {}, {})
    assert node_token(config, origin["token_file"]) == "n" * 32  # --token-file beats LANFARM_TOKEN
    monkeypatch.delenv("LANFARM_TOKEN")
    assert node_token(NodeConfig()) == "s" * 32


def test_defaults() -> None:
    c = NodeConfig()
    assert (c.host, c.port, c.advertise, c.max_upload_bytes) == ("0.0.0.0", 7788, True, 256 << 20)


def test_token_command(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token"]) == 0
    token = capsys.readouterr().out.strip()
    assert main(["token"]) == 0 and capsys.readouterr().out.strip() == token
    assert main(["token", "--path"]) == 0
    assert capsys.readouterr().out.strip() == str(home / "config" / "farm-token")
    assert main(["token", "--regenerate"]) == 0
    assert capsys.readouterr().out.strip() not in ("", token)


def test_hardware_degrades_to_cpu_here() -> None:
    hw = hardware.probe()
    assert hw.backend == "cpu" and hw.gpus == () and hw.cpu_count >= 1 and hw.ram_total > 0
    assert hw.gpu_label == "cpu" and hw.vram_mb == 0 and hardware.refresh(hw) is hw


def _fake_module(name: str, **attrs: object) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__spec__ = importlib.machinery.ModuleSpec(name, None)
    mod.__dict__.update(attrs)
    return mod


def test_hardware_reads_gpus_from_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    cuda = types.SimpleNamespace(
        is_available=lambda: True,
        device_count=lambda: 1,
        mem_get_info=lambda i: (3 << 30, 8 << 30),
        get_device_name=lambda i: "NVIDIA GeForce RTX 3070",
    )
    torch = _fake_module(
        "torch", cuda=cuda, version=types.SimpleNamespace(cuda="12.4", hip=None), backends=types.SimpleNamespace()
    )
    monkeypatch.setitem(sys.modules, "torch", torch)
    hw = hardware.probe()
    assert hw.backend == "cuda" and hw.gpus[0].vram_total == 8 << 30 and hw.gpus[0].driver == "12.4"
    assert hw.vram_mb == 8192 and hw.gpu_label == "NVIDIA GeForce RTX 3070"


def test_hardware_survives_a_broken_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom() -> None:
        raise RuntimeError("NVMLError_LibraryNotFound")

    monkeypatch.setitem(sys.modules, "pynvml", _fake_module("pynvml", nvmlInit=boom))
    monkeypatch.setattr(hardware, "_torch_gpus", lambda: None)
    assert hardware.probe_gpus() == ("cpu", [])


def test_advert_names_and_addresses() -> None:
    assert instance_label("studio.pc") == "studio-pc" and instance_label("") == "lanfarm-node"
    assert len(instance_label("é" * 64).encode()) <= 63
    assert host_label("Studio PC!", "0123456789abcdef") == "Studio-PC-01234567.local."
    assert advert_addresses("0.0.0.0", ["10.0.0.2"]) == ["10.0.0.2"]
    assert advert_addresses("192.168.1.5", []) == ["192.168.1.5"]
    assert all(not a.startswith("127.") for a in advert_addresses("0.0.0.0", [])) or advert_addresses(
        "0.0.0.0", []
    ) == ["127.0.0.1"]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _store(tmp_path: Path, budget: int, clock: FakeClock) -> tuple[BlobStore, list[str]]:
    """A store with the node's grace period and ten distinct 100-byte blobs written (not yet added)."""
    store = BlobStore(tmp_path, budget=budget, max_size=1000, clock=clock, grace=60.0)
    return store, [write_blob(tmp_path, bytes([i]) * 100) for i in range(10)]


def test_fresh_upload_survives_a_cache_full_of_held_results(tmp_path: Path) -> None:
    clock = FakeClock()
    store, (r1, r2, r3, up, *_) = _store(tmp_path, 300, clock)
    for r in (r1, r2, r3):
        store.add_result(r, 100)  # results held for retention fill the budget
    clock.now = 1000.0
    store.added(up, 100)  # an upload; its job's POST comes next
    assert up in store and (tmp_path / up).exists()
    assert r1 not in store and not store.pinned(r1)  # results over the cap went, the oldest first
    assert r2 in store and r3 in store and store.total == 300
    store.release_result(r1)  # the job's retention ends later: a no-op for an evicted result
    assert store.pinned(r2)


def test_results_over_their_share_go_oldest_first_and_only_while_over_budget(tmp_path: Path) -> None:
    clock = FakeClock()
    store, (r1, r2, r3, r4, u1, u2, u3, *_) = _store(tmp_path, 400, clock)  # results may keep 200 bytes
    for r in (r1, r2, r3, r4):
        store.add_result(r, 100)
    assert store.total == 400 and len(store) == 4  # within budget: results stay whatever their share
    clock.now = 100.0
    store.added(u1, 100)
    assert r1 not in store and store.total == 400
    store.added(u2, 100)
    assert r2 not in store and [r in store for r in (r3, r4)] == [True, True]
    store.added(u3, 100)  # held results are down to their share; fresh uploads may overrun the budget
    assert store.total == 500 and store.held_total == 200
    clock.now = 200.0  # grace over: plain LRU among unheld blobs, held results within their share stay
    assert store.evict() == [u1]
    assert store.pinned(r3) and store.pinned(r4)


def test_grace_protects_fresh_results_and_blobs_found_again(tmp_path: Path) -> None:
    clock = FakeClock()
    store, (old, r1, r2, r3, *_) = _store(tmp_path, 300, clock)
    store.added(old, 100)
    clock.now = 100.0
    assert store.has(old)  # a PUT or HEAD found it: the job POST that follows must find it too
    for r in (r1, r2, r3):
        store.add_result(r, 100)
    assert store.total == 400 and all(s in store for s in (old, r1, r2, r3))  # all fresh: nothing goes
    clock.now = 161.0
    assert store.evict() == [old]  # now the least recently used unheld blob goes first
    store.budget = 100
    assert store.evict() == [r1, r2]  # then results over half the budget, oldest first


def test_a_jobs_input_is_never_evicted_even_if_it_is_a_held_result(tmp_path: Path) -> None:
    clock = FakeClock()
    store, (r1, r2, *_) = _store(tmp_path, 100, clock)
    store.add_result(r1, 100)
    store.pin([r1])  # a client sent a former result back as a job's image
    store.add_result(r2, 100)
    clock.now = 100.0
    assert store.evict() == [r2] and r1 in store
    store.unpin([r1])
    assert store.pinned(r1)  # still held for its retention


def test_job_book_takes_in_fair_order_and_starts_only_queued_jobs() -> None:
    book = JobBook(retention=10.0)
    a, b = job("job-aaaa", client="x"), job("job-bbbb", client="y")
    book.submit(a)
    book.submit(b)
    assert book.take_next() is a and a.state is JobState.QUEUED and len(book.queue) == 1
    assert book.take_next() is b
    assert book.cancel(b, 1.0) and b.state is JobState.CANCELLED and b.phase is Phase.ENDED
    assert not book.start(b, 2.0) and b.started is None
    assert book.start(a, 2.0) and a.state is JobState.RUNNING and a.started == 2.0 and book.running == [a]
    a.phase = Phase.ENCODING  # slot released: no longer counted among the engines
    assert book.running == [] and book.succeed(a, ResultInfo("f" * 64, 1, "image/png"), 3.0)
