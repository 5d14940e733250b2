"""``lanfarm run INPUT... --mask MASK_OR_DIR --out DIR``: a batch of edits from the command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from farm.auth import load_or_create_token, read_token
from farm.batch import Problem, plan
from farm.engines import Registry, default_registry
from farm.errors import FarmError
from farm.job import Job, JobState
from farm.params import ParamValue
from farm.runtime import Farm, FarmEvent, FarmOptions, JobEvent, WorkerStats
from farm.spec import EditSpec, HdStrategy, OutputSpec
from farm.store import QueueStore, batch_key


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="image files or folders")
    parser.add_argument("--mask", type=Path, help="one mask for all inputs, or a folder of masks "
                        "named like the inputs (default: NAME_mask.* beside each input)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (created if missing)")
    parser.add_argument("--op", default="inpaint", choices=["inpaint", "upscale"])
    parser.add_argument("--engine", default="cv2", help="engine id (default: cv2, OpenCV inpainting)")
    parser.add_argument("--model", help="model file name in the models folder, for engines that use one")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="engine parameter, e.g. --param radius=6 (repeatable)")
    parser.add_argument("--hd", default="crop", choices=["original", "crop", "resize"],
                        help="strategy for big images (default: crop around the mask)")
    parser.add_argument("--format", default="png", choices=["png", "jpeg", "jpg", "webp"])
    parser.add_argument("--quality", type=int, default=95, help="JPEG/WebP quality 1-100")
    parser.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1),
                        help="edits at once on this PC")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--resize-mask", action="store_true",
                        help="scale masks of another size to the image instead of refusing them")
    parser.add_argument("--max-megapixels", type=float, default=100.0,
                        help="refuse images larger than this (decompression-bomb guard)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    farm = parser.add_argument_group("farm")
    farm.add_argument("--peer", action="append", default=[], metavar="HOST:PORT",
                      help="use this node (repeatable)")
    farm.add_argument("--no-local", action="store_true", help="do not edit on this PC, only on nodes")
    farm.add_argument("--local-only", action="store_true", help="use no nodes, only this PC")
    farm.add_argument("--token-file", type=Path, help="file holding the farm token")
    parser.add_argument("--fresh", action="store_true",
                        help="start over even if the same run was interrupted before (default: resume it)")
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
        spec = EditSpec(op=args.op, engine=args.engine, model=args.model,
                        params=dict(parse_param(p) for p in args.param),
                        hd=HdStrategy(strategy=args.hd),
                        output=OutputSpec.from_dict({"format": args.format, "quality": args.quality}))
        registry = default_registry()
        if not args.peer and not args.no_local:
            registry.resolve(spec)  # fail fast when only this PC would run it
        out_dir: Path = args.out
        if out_dir.exists() and not out_dir.is_dir():
            raise FarmError(f"output folder {out_dir} is a file")
        out_dir.mkdir(parents=True, exist_ok=True)
        token = _token(args) if args.peer else ""
    except (FarmError, OSError, ValueError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        return 2
    options = FarmOptions(use_local=not args.no_local, local_slots=max(1, args.jobs), overwrite=args.overwrite,
                          resize_mask=args.resize_mask, max_pixels=int(args.max_megapixels * 1e6))
    store = QueueStore()
    key = batch_key(*sorted(p.resolve() for p in args.inputs), args.mask and args.mask.resolve(),
                    out_dir.resolve(), spec.to_json(), args.overwrite, args.resize_mask)
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
        jobs, stats = asyncio.run(_run(todo, None if resuming else batch, store, registry, token, options,
                                       args.peer, err))
        if all(j.state is JobState.DONE for j in jobs):
            store.finish_batch(batch)
    finally:
        store.close()
    failed = [(str(j.input), j.error or j.state.value) for j in jobs if j.state is not JobState.DONE]
    failed += [(str(p.path), p.reason) for p in problems]
    done = earlier + [j for j in jobs if j.state is JobState.DONE]
    if args.json:
        print(json.dumps({"done": [str(j.output) for j in done],
                          "failed": [{"input": i, "error": e} for i, e in failed],
                          "workers": {w: {"name": s.name, "done": s.done, "failed": s.failed}
                                      for w, s in stats.items()}}, indent=2))
    else:
        for path, reason in failed:
            print(f"failed: {path}: {reason}", file=sys.stderr)
        if len(stats) > 1 or args.peer:
            for s in stats.values():
                print(f"  {s.name:24s} done {s.done:4d}  failed attempts {s.failed}")
        print(f"done {len(done)}, failed {len(failed)}; outputs in {out_dir}")
    return 1 if failed else 0


def _token(args: argparse.Namespace) -> str:
    return read_token(args.token_file) if args.token_file else load_or_create_token()


async def _run(jobs: list[Job], batch: int | None, store: QueueStore, registry: Registry, token: str,
               options: FarmOptions, peers: list[str], err: Console) -> tuple[list[Job], dict[str, WorkerStats]]:
    async with Farm(registry, token=token, options=options, store=store) as farm:
        for peer in peers:
            url = peer if "://" in peer else f"http://{peer}"
            try:
                await farm.add_peer(url)
            except FarmError as exc:
                err.print(f"[yellow]warning:[/yellow] peer {peer} not used: {exc}", highlight=False)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=err, transient=True, disable=not err.is_terminal) as bar:
            task = bar.add_task("editing", total=len(jobs))

            def on_event(event: FarmEvent) -> None:
                if isinstance(event, JobEvent) and event.progress is None and event.job.state.finished:
                    bar.advance(task)
                    if event.job.state is JobState.FAILED and err.is_terminal:
                        bar.console.print(f"[red]failed[/red] {event.job.input}: {event.job.error}",
                                          highlight=False)
                    per_node = ", ".join(f"{s.name} {s.done}" for s in farm.stats.values())
                    bar.update(task, description=f"editing ({per_node})")

            farm.subscribe(on_event)
            await farm.enqueue(jobs, batch=batch)
            farm.fail_unrunnable()
            await farm.wait()
        return jobs, dict(farm.stats)
