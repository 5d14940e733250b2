"""``lanfarm run INPUT... --mask MASK_OR_DIR --out DIR``: a batch of edits from the command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from farm.core.address import Address
from farm.core.job import Job, JobState
from farm.core.params import ParamValue
from farm.core.spec import EditSpec, HdStrategy, OutputSpec
from farm.engines import Registry
from farm.engines.installed import default_registry
from farm.errors import FarmError
from farm.local.peers import load_peers
from farm.local.store import QueueStore, batch_key
from farm.local.token import find_token, load_or_create_token
from farm.runtime.discovery import (
    DISCOVERY_ENV,
    INTERFACES_ENV,
    Discovery,
    NodeRecord,
    interfaces_from_env,
    mdns_switched_off,
)
from farm.runtime.dispatch import DiscoveryBridge, Farm, FarmEvent, FarmOptions, JobEvent, WorkerStats
from farm.runtime.planning import Problem, plan

NODE_WAIT = 5.0


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="image files or folders")
    parser.add_argument(
        "--mask",
        type=Path,
        help="one mask for all inputs, or a folder of masks "
        "named like the inputs (default: NAME_mask.* beside each input)",
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder (created if missing)")
    parser.add_argument("--op", default="inpaint", choices=["inpaint", "upscale"])
    parser.add_argument("--engine", default="cv2", help="engine id (default: cv2, OpenCV inpainting)")
    parser.add_argument("--model", help="model file name in the models folder, for engines that use one")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="engine parameter, e.g. --param radius=6 (repeatable)",
    )
    parser.add_argument(
        "--hd",
        default="crop",
        choices=["original", "crop", "resize"],
        help="strategy for big images (default: crop around the mask)",
    )
    parser.add_argument("--format", default="png", choices=["png", "jpeg", "jpg", "webp"])
    parser.add_argument("--quality", type=int, default=95, help="JPEG/WebP quality 1-100")
    parser.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1), help="edits at once on this PC")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument(
        "--resize-mask", action="store_true", help="scale masks of another size to the image instead of refusing them"
    )
    parser.add_argument(
        "--max-megapixels", type=float, default=100.0, help="refuse images larger than this (decompression-bomb guard)"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument(
        "--simulate",
        action="store_true",
        help="also offer the SIMULATED GPU engine `sim` on this PC (tests and benchmarks)",
    )
    farm = parser.add_argument_group("farm (by default: this PC, nodes found over mDNS and saved peers)")
    farm.add_argument(
        "--peer", action="append", default=[], metavar="HOST:PORT", help="also use this node (repeatable)"
    )
    farm.add_argument("--no-local", action="store_true", help="do not edit on this PC, only on nodes")
    farm.add_argument("--local-only", action="store_true", help="use no nodes, only this PC")
    farm.add_argument(
        "--no-discovery", action="store_true", help=f"no mDNS, only saved and given peers (also {DISCOVERY_ENV}=off)"
    )
    farm.add_argument(
        "--interface",
        action="append",
        default=[],
        metavar="ADDR",
        help=f"discover only on this interface address (repeatable; also {INTERFACES_ENV})",
    )
    farm.add_argument("--token-file", type=Path, help="file holding the farm token")
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="start over even if the same run was interrupted before (default: resume it)",
    )
    parser.set_defaults(handler=handle)


def parse_param(text: str) -> tuple[str, ParamValue]:
    """``name=value``; the value is read as JSON when it parses (numbers, true/false), else as text."""
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise FarmError(f"--param {text!r}: expected NAME=VALUE")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    if not isinstance(value, bool | int | float | str):
        value = raw
    return name.strip(), value


def handle(args: argparse.Namespace) -> int:
    err = Console(stderr=True)
    try:
        spec = EditSpec(
            op=args.op,
            engine=args.engine,
            model=args.model,
            params=dict(parse_param(p) for p in args.param),
            hd=HdStrategy(strategy=args.hd),
            output=OutputSpec.from_dict({"format": args.format, "quality": args.quality}),
        )
        registry = default_registry(simulate=args.simulate)
        if args.local_only and args.no_local:
            raise FarmError("--local-only and --no-local leave no worker")
        nodes = NodeOptions.from_args(args)
        if not nodes.wanted:
            registry.resolve(spec)  # only this PC will run it: say now what it lacks (a model file, say)
        out_dir: Path = args.out
        if out_dir.exists() and not out_dir.is_dir():
            raise FarmError(f"output folder {out_dir} is a file")
        out_dir.mkdir(parents=True, exist_ok=True)
        token = _token(args) if nodes.wanted else ""
    except (FarmError, OSError, ValueError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        return 2
    options = FarmOptions(
        use_local=not args.no_local,
        local_slots=max(1, args.jobs),
        overwrite=args.overwrite,
        resize_mask=args.resize_mask,
        max_pixels=int(args.max_megapixels * 1e6),
    )
    store = QueueStore()
    key = batch_key(
        *sorted(p.resolve() for p in args.inputs),
        args.mask and args.mask.resolve(),
        out_dir.resolve(),
        spec.to_json(),
        args.overwrite,
        args.resize_mask,
    )
    batch = None if args.fresh else store.unfinished_batch(key)
    resuming = batch is not None
    problems: list[Problem] = []
    earlier: list[Job] = []
    if batch is not None:
        resumed = store.resume(batch)
        todo, earlier = resumed.todo, resumed.done
        err.print(f"resuming an interrupted run: {len(earlier)} already done, {len(todo)} to do", highlight=False)
    else:
        items, problems = plan(args.inputs, args.mask, out_dir, spec.output.suffix, overwrite=args.overwrite)
        batch = store.new_batch(key)
        todo = [Job(input=i.input, spec=spec, output=i.output, mask=i.mask) for i in items]
    try:
        # resumed jobs are in the store already; new ones are recorded before any work starts
        jobs, stats, elapsed = asyncio.run(
            _run(todo, None if resuming else batch, store, registry, token, options, nodes, err)
        )
        if all(j.state is JobState.DONE for j in jobs):
            store.finish_batch(batch)
    finally:
        store.close()
    failed = [(str(j.input), j.error or j.state.value) for j in jobs if j.state is not JobState.DONE]
    failed += [(str(p.path), p.reason) for p in problems]
    done = earlier + [j for j in jobs if j.state is JobState.DONE]
    if args.json:
        print(
            json.dumps(
                {
                    "elapsed": round(elapsed, 3),
                    "done": [str(j.output) for j in done],
                    "failed": [{"input": i, "error": e} for i, e in failed],
                    "workers": {
                        w: {
                            "name": s.name,
                            "done": s.done,
                            "failed": s.failed,
                            "busy_seconds": round(s.busy_seconds, 3),
                        }
                        for w, s in stats.items()
                    },
                },
                indent=2,
            )
        )
    else:
        for path, reason in failed:
            print(f"failed: {path}: {reason}", file=sys.stderr)
        if len(stats) > 1 or nodes.wanted:
            for s in stats.values():
                print(f"  {s.name:24s} done {s.done:4d}  failed attempts {s.failed}")
        print(f"done {len(done)}, failed {len(failed)}; outputs in {out_dir}")
    return 1 if failed else 0


def _token(args: argparse.Namespace) -> str:
    """The farm token to talk to nodes with; one is created (and saved) on first use."""
    return find_token(args.token_file) or load_or_create_token()


@dataclass(frozen=True, slots=True)
class NodeOptions:
    """Which nodes a run uses: mDNS discovery (on unless switched off) and peers by address."""

    mdns: bool
    peers: tuple[Address, ...]
    interfaces: tuple[str, ...]

    @property
    def wanted(self) -> bool:
        return self.mdns or bool(self.peers)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> NodeOptions:
        if args.local_only:
            return cls(False, (), ())
        peers = (*load_peers(), *(Address.parse(p) for p in args.peer))
        return cls(
            not (args.no_discovery or mdns_switched_off()),
            tuple(dict.fromkeys(peers)),
            tuple(args.interface or interfaces_from_env()),
        )


RunResult = tuple[list[Job], dict[str, WorkerStats], float]


async def _run(
    jobs: list[Job],
    batch: int | None,
    store: QueueStore,
    registry: Registry,
    token: str,
    options: FarmOptions,
    nodes: NodeOptions,
    err: Console,
) -> RunResult:
    async with Farm(registry, token=token, options=options, store=store) as farm, contextlib.AsyncExitStack() as stack:
        if nodes.wanted:

            def unauthorised(record: NodeRecord) -> None:
                err.print(
                    f"[yellow]warning:[/yellow] node {record.name} at {record.address} refused the farm "
                    "token: not used (give it this PC's `lanfarm token`)",
                    highlight=False,
                )

            discovery = Discovery(
                token,
                session=farm.session,
                mdns=nodes.mdns,
                interfaces=nodes.interfaces,
                peers=nodes.peers,
                listeners=[DiscoveryBridge(farm, on_unauthorised=unauthorised)],
            )
            await stack.enter_async_context(discovery)
            if not options.use_local:  # nothing can start before the nodes are known
                await discovery.async_wait_probed(NODE_WAIT)
                if nodes.mdns:
                    await asyncio.sleep(1.0)
            for miss in discovery.unreached():
                err.print(f"[yellow]warning:[/yellow] peer {miss.address} not reached: {miss.error}", highlight=False)
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=True,
            disable=not err.is_terminal,
        ) as bar:
            task = bar.add_task("editing", total=len(jobs))

            def on_event(event: FarmEvent) -> None:
                if isinstance(event, JobEvent) and event.progress is None and event.job.state.finished:
                    bar.advance(task)
                    if event.job.state is JobState.FAILED and err.is_terminal:
                        bar.console.print(f"[red]failed[/red] {event.job.input}: {event.job.error}", highlight=False)
                    per_node = ", ".join(f"{s.name} {s.done}" for s in farm.stats.values())
                    bar.update(task, description=f"editing ({per_node})")

            farm.subscribe(on_event)
            started = time.monotonic()
            await farm.enqueue(jobs, batch=batch)
            watchdog = asyncio.create_task(_fail_when_no_worker(farm))
            try:
                await farm.wait()
            finally:
                watchdog.cancel()
        return jobs, dict(farm.stats), time.monotonic() - started


async def _fail_when_no_worker(farm: Farm, grace: float = NODE_WAIT) -> None:
    """Jobs that no worker of the farm can run end failed once that has lasted ``grace`` seconds
    (a batch never hangs because every node went away and this PC takes no jobs)."""
    since: float | None = None
    while True:
        if farm.scheduler.queued() and not farm.could_run_queued():
            since = since if since is not None else asyncio.get_running_loop().time()
            if asyncio.get_running_loop().time() - since >= grace:
                farm.fail_unrunnable()
                since = None
        else:
            since = None
        await asyncio.sleep(0.5)
