"""``lanfarm run INPUT... --mask MASK_OR_DIR --out DIR``: a batch of edits from the command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from farm.core.address import Address
from farm.core.job import JobState
from farm.core.params import ParamValue
from farm.core.spec import EditSpec, HdStrategy, OutputSpec
from farm.engines import Registry
from farm.engines.installed import default_registry
from farm.errors import FarmError
from farm.local.peers import load_peers
from farm.local.settings import DISCOVERY_ENV, INTERFACES_ENV, discovery_enabled, interfaces
from farm.local.store import default_store_path
from farm.local.token import load_or_create_token
from farm.runtime.dispatch import WorkerStats
from farm.runtime.farm import Batch, Farm, FarmEvent, FarmSettings, JobEvent, NodeEvent

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
    settings = FarmSettings(
        token=token,
        use_local=not args.no_local,
        local_slots=max(1, args.jobs),
        nodes=nodes.wanted,
        mdns=nodes.mdns,
        interfaces=nodes.interfaces,
        peers=nodes.peers,
        store=default_store_path(),
        overwrite=args.overwrite,
        resize_mask=args.resize_mask,
        max_pixels=int(args.max_megapixels * 1e6),
        unrunnable_after=NODE_WAIT,
    )
    batch, stats, elapsed = asyncio.run(_run(args, spec, settings, registry, err))
    jobs = batch.jobs
    failed = [(str(j.input), j.error or j.state.value) for j in jobs if j.state is not JobState.DONE]
    failed += [(str(p.path), p.reason) for p in batch.problems]
    done = batch.earlier + [j for j in jobs if j.state is JobState.DONE]
    if args.json:
        summary = {
            "elapsed": round(elapsed, 3),
            "done": [str(j.output) for j in done],
            "failed": [{"input": i, "error": e} for i, e in failed],
            "workers": {
                w: {"name": s.name, "done": s.done, "failed": s.failed, "busy_seconds": round(s.busy_seconds, 3)}
                for w, s in stats.items()
            },
        }
        print(json.dumps(summary, indent=2))
    else:
        for path, reason in failed:
            print(f"failed: {path}: {reason}", file=sys.stderr)
        if len(stats) > 1 or nodes.wanted:
            for s in stats.values():
                print(f"  {s.name:24s} done {s.done:4d}  failed attempts {s.failed}")
        print(f"done {len(done)}, failed {len(failed)}; outputs in {args.out}")
    return 1 if failed else 0


def _token(args: argparse.Namespace) -> str:
    """The farm token to talk to nodes with; one is created (and saved) on first use."""
    return load_or_create_token(token_file=args.token_file)


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
            discovery_enabled(False if args.no_discovery else None).value,
            tuple(dict.fromkeys(peers)),
            interfaces(args.interface).value,
        )


async def _run(
    args: argparse.Namespace, spec: EditSpec, settings: FarmSettings, registry: Registry, err: Console
) -> tuple[Batch, dict[str, WorkerStats], float]:
    async with Farm.open(settings, registry=registry) as farm:

        def on_node(event: FarmEvent) -> None:
            if isinstance(event, NodeEvent) and not event.authorised:
                err.print(
                    f"[yellow]warning:[/yellow] node {event.name} at {Address.parse(event.address)} refused the farm "
                    "token: not used (give it this PC's `lanfarm token`)",
                    highlight=False,
                )

        farm.subscribe(on_node)
        if not settings.use_local:  # nothing can start before the nodes are known
            await farm.wait_for_nodes(NODE_WAIT)
        for miss in farm.unreached():
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
            task = bar.add_task("editing")

            def on_event(event: FarmEvent) -> None:
                if isinstance(event, JobEvent) and event.progress is None and event.job.state.finished:
                    bar.advance(task)
                    if event.job.state is JobState.FAILED and err.is_terminal:
                        bar.console.print(f"[red]failed[/red] {event.job.input}: {event.job.error}", highlight=False)
                    per_node = ", ".join(f"{s.name} {s.done}" for s in farm.stats().values())
                    bar.update(task, description=f"editing ({per_node})")

            farm.subscribe(on_event)
            started = time.monotonic()
            batch = await farm.submit_paths(args.inputs, args.mask, spec, args.out, resumable=True, fresh=args.fresh)
            if batch.resumed:
                err.print(
                    f"resuming an interrupted run: {len(batch.earlier)} already done, {len(batch.jobs)} to do",
                    highlight=False,
                )
            bar.update(task, total=len(batch.jobs))
            await farm.wait()
        return batch, farm.stats(), time.monotonic() - started
