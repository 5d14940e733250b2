"""The LAN lab: host network namespaces joined by a bridge namespace, for tests that need a real LAN.

Recipe (docs: tests/lab/README.md): a namespace ``<name>-br`` holds bridge ``br0`` with multicast
snooping off; each host namespace gets a veth pair created *inside* the bridge namespace, one end moved
into the host as ``eth0`` with ``10.77.0.N/24``, multicast on and ``224.0.0.0/4`` routed to it. Hosts
have no default route and nothing is created in the root namespace, so no traffic can leave the box.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

PREFIX = "lflab"
SUBNET = "10.77.0"
REPO_ROOT = Path(__file__).resolve().parents[2]
_seq = itertools.count(1)
_NAME = re.compile(rf"^{PREFIX}-(\d+)-")


class LabError(RuntimeError):
    """A lab command failed; the message holds the command and its stderr."""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``ip ARGS``; LabError with stderr when it fails and ``check`` is set."""
    return _cmd(["ip", *args], check=check)


def _cmd(argv: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=30, check=False)
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(argv)}: exit {proc.returncode}: {proc.stderr.strip()}")
    return proc


def available() -> str | None:
    """None when this process can build a lab, else the reason it cannot (not root, no ``ip``)."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    try:
        ip("netns", "list")
    except (OSError, LabError) as exc:
        return f"ip netns unusable: {exc}"
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def namespaces() -> list[str]:
    out = ip("netns", "list").stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _kill_netns_processes(netns: str) -> None:
    for pid in ip("netns", "pids", netns, check=False).stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


def delete_netns(netns: str) -> None:
    """Kill whatever still runs in ``netns`` and delete it (its veth ends go with it)."""
    _kill_netns_processes(netns)
    ip("netns", "del", netns, check=False)


def cleanup_stale() -> list[str]:
    """Delete lab namespaces left by runs whose process is gone (a crashed or killed test run)."""
    removed = []
    for netns in namespaces():
        m = _NAME.match(netns)
        if m and not _pid_alive(int(m.group(1))):
            delete_netns(netns)
            removed.append(netns)
    return removed


class Lines:
    """The stdout of a lab process, line by line, read by a thread so tests can wait with a timeout."""

    def __init__(self, stream: IO[str] | None) -> None:
        if stream is None:
            raise ValueError("the process has no stdout pipe")
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        with contextlib.suppress(ValueError, OSError):  # closed at teardown
            for line in stream:
                self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def expect(self, predicate: Callable[[str], bool], timeout: float) -> str:
        """The next line that satisfies ``predicate``; LabError on timeout or end of output."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise LabError(f"no matching line within {timeout} s; seen: {self.seen[-20:]}") from None
            if line is None:
                raise LabError(f"output ended; seen: {self.seen[-20:]}")
            self.seen.append(line)
            if predicate(line):
                return line

    def expect_json(self, predicate: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
        """The next JSON-object line that satisfies ``predicate`` (other lines are skipped)."""

        def match(line: str) -> bool:
            try:
                obj = json.loads(line)
            except ValueError:
                return False
            return isinstance(obj, dict) and predicate(obj)

        return dict(json.loads(self.expect(match, timeout)))


class Host:
    """One PC of the lab: a namespace with ``eth0`` at ``ip``; runs commands inside it."""

    def __init__(self, lab: Lab, index: int, netns: str, address: str) -> None:
        self.lab = lab
        self.index = index
        self.netns = netns
        self.ip = address
        #: the CPUs this host's processes may use (``taskset``), so that lab PCs need not share cores
        self.cpus: str | None = None

    def __repr__(self) -> str:
        return f"Host({self.netns}, {self.ip})"

    def _argv(self, argv: Sequence[str]) -> list[str]:
        pin = ["taskset", "-c", self.cpus] if self.cpus else []
        return ["ip", "netns", "exec", self.netns, *pin, *argv]

    def _env(self, env: Mapping[str, str] | None) -> dict[str, str]:
        merged = {**os.environ, **(env or {})}
        # Inside a lab host mDNS is allowed: the test-wide guard that keeps discovery off does not apply.
        if "LANFARM_DISCOVERY" not in (env or {}):
            merged.pop("LANFARM_DISCOVERY", None)
        # Child Pythons import this checkout (tests, farm, node) whatever is installed in the venv.
        merged["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), merged.get("PYTHONPATH", "")) if p)
        return merged

    def popen(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, **kwargs: object
    ) -> subprocess.Popen[str]:
        """Start ``argv`` inside the host; the lab kills it at teardown. Pipes stdout/stderr by default."""
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
        proc: subprocess.Popen[str] = subprocess.Popen(  # type: ignore[call-overload]
            self._argv(argv), env=self._env(env), text=True, start_new_session=True, **kwargs
        )
        self.lab.processes.append(proc)
        return proc

    def run(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, check: bool = True, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the host to completion; LabError if it fails and ``check`` is set."""
        proc = subprocess.run(
            self._argv(argv), env=self._env(env), capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise LabError(f"[{self.netns}] {' '.join(argv)}: exit {proc.returncode}: {proc.stderr.strip()}")
        return proc

    def python(
        self, code: str, *args: str, env: Mapping[str, str] | None = None, **kwargs: object
    ) -> subprocess.Popen[str]:
        """Start ``python -c code args...`` (this interpreter, unbuffered) inside the host."""
        env = {"PYTHONUNBUFFERED": "1", **(env or {})}
        return self.popen([sys.executable, "-c", code, *args], env=env, **kwargs)


class Lab:
    """``hosts`` namespaces on one bridge; use as a context manager, which always tears it down.

    ``rate`` (e.g. ``"1gbit"``) shapes every link both ways with ``tbf`` (this kernel has no netem).
    """

    def __init__(self, hosts: int = 2, *, rate: str | None = None) -> None:
        if not 1 <= hosts <= 200:
            raise ValueError("a lab has 1..200 hosts")
        self.name = f"{PREFIX}-{os.getpid()}-{next(_seq)}"
        self.bridge_netns = f"{self.name}-br"
        self.rate = rate
        self.n_hosts = hosts
        self.hosts: list[Host] = []
        self.processes: list[subprocess.Popen[str]] = []
        self._created: list[str] = []

    def __enter__(self) -> Lab:
        try:
            self.build()
        except BaseException:
            self.teardown()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.teardown()

    @property
    def bridge(self) -> Host:
        """The bridge namespace as a host (no address of its own): run a capture there, or block
        multicast between the hosts (``block_multicast``)."""
        return Host(self, 0, self.bridge_netns, "")

    def block_multicast(self) -> None:
        """Multicast no longer crosses between the hosts (each still hears its own): the bridge stops
        flooding it to its ports, as a switch or Wi-Fi with client isolation would."""
        for i in range(1, self.n_hosts + 1):
            _cmd(
                [
                    "ip",
                    "netns",
                    "exec",
                    self.bridge_netns,
                    "bridge",
                    "link",
                    "set",
                    "dev",
                    f"v{i}",
                    "mcast_flood",
                    "off",
                ]
            )

    def _add_netns(self, netns: str) -> None:
        ip("netns", "add", netns)
        self._created.append(netns)

    def build(self) -> None:
        br = self.bridge_netns
        self._add_netns(br)
        ip("-n", br, "link", "set", "lo", "up")
        ip("-n", br, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
        ip("-n", br, "link", "set", "br0", "up")
        for i in range(1, self.n_hosts + 1):
            netns, address = f"{self.name}-h{i}", f"{SUBNET}.{i}"
            self._add_netns(netns)
            ip("-n", br, "link", "add", f"v{i}", "type", "veth", "peer", "name", "eth0", "netns", netns)
            ip("-n", br, "link", "set", f"v{i}", "master", "br0")
            ip("-n", br, "link", "set", f"v{i}", "up")
            ip("-n", netns, "link", "set", "lo", "up")
            ip("-n", netns, "link", "set", "eth0", "multicast", "on")
            ip("-n", netns, "addr", "add", f"{address}/24", "dev", "eth0")
            ip("-n", netns, "link", "set", "eth0", "up")
            ip("-n", netns, "route", "add", "224.0.0.0/4", "dev", "eth0")
            if self.rate:
                self._shape(netns, "eth0")
                self._shape(br, f"v{i}")
            self.hosts.append(Host(self, i, netns, address))

    def _shape(self, netns: str, dev: str) -> None:
        _cmd(
            [
                "ip",
                "netns",
                "exec",
                netns,
                "tc",
                "qdisc",
                "add",
                "dev",
                dev,
                "root",
                "tbf",
                "rate",
                str(self.rate),
                "burst",
                "256kb",
                "latency",
                "10ms",
            ]
        )

    def teardown(self) -> None:
        """Kill every process started in the lab, then delete its namespaces. Safe to call twice."""
        for proc in self.processes:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            for stream in (proc.stdout, proc.stderr, proc.stdin):
                if stream:
                    stream.close()
        self.processes.clear()
        for netns in reversed(self._created):
            delete_netns(netns)
        self._created.clear()
        self.hosts.clear()
