"""``lanfarm run INPUT... --out DIR``: a batch of edits from the command line.

Everything that can be known before work starts is checked first, with exit code 2 and one message
each: the arguments, the inputs and the mask given, the engine (the operation picks one, an engine
implies its operation), its params, and that some worker has it. A rerun of the same batch keeps
the outputs that still match their input and edit (the durable store records each output written).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from farm.cli.common import add_discover_on, native_stderr_quiet, number_in, positive, wait_for_answer
from farm.core.address import Address
from farm.core.descriptor import EngineDescriptor, merge_descriptors
from farm.core.job import Job, JobState
from farm.core.params import ParamValue
from farm.core.scheduler import LOCAL
from farm.core.spec import EditSpec, HdStrategy, OutputSpec
from farm.core.split_choice import parse_tiles
from farm.engines.base import Engine
from farm.engines.devices import device_override
from farm.engines.installed import default_registry
from farm.engines.registry import EngineEntry, Registry, engine_id, engine_name
from farm.errors import EngineError, FarmError
from farm.local.hardware import usable_cpus
from farm.local.measurements import measurements_path
from farm.local.peers import load_peers
from farm.local.settings import DISCOVERY_ENV, discovery_enabled, interfaces
from farm.local.store import QueueStore, default_store_path
from farm.local.token import load_or_create_token
from farm.runtime.dispatch import WorkerStats
from farm.runtime.farm import Batch, Farm, FarmEvent, FarmSettings, JobEvent, NodeEvent
from farm.runtime.model_sync import TransferDone
from farm.runtime.planning import collect_inputs

NODE_WAIT = 5.0  # seconds to wait for the first node when this PC cannot run the edit
PEER_PROBE = 4.0  # seconds the start-up check of peers may take
SPLIT_MDNS_GRACE = 1.0  # seconds mDNS gets to find nodes before a big upscale is cut for the workers known
PRIORITY_RANGE = (-1000, 1000)
#: The engine each operation uses when none is named, best first (the first available one wins).
PREFERRED: dict[str, tuple[str, ...]] = {"inpaint": ("cv2", "lama", "sd-inpaint"), "upscale": ("upscale",)}
OPERATIONS = ("inpaint", "upscale")
NO_MASK_HINT = (
    "give --mask FILE_OR_FOLDER, or put NAME_mask.png beside each image or NAME.png in a masks/ folder beside it"
)


class UsageError(FarmError):
    """Known before any work starts: exit 2."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "IOPaint spellings work too: --image (-i) for INPUT, --output (-o) for --out, "
        "--model ENGINE when no such model file exists. Exit codes: 0 every input done or up to date, "
        "1 some failed, 2 nothing started (bad arguments, missing inputs or mask, no worker for the edit)."
    )
    parser.add_argument("inputs", nargs="*", type=Path, metavar="INPUT", help="image files or folders")
    parser.add_argument("-i", "--image", dest="images", action="append", type=Path, default=[], help=argparse.SUPPRESS)
    parser.add_argument(
        "--mask",
        type=Path,
        metavar="FILE_OR_DIR",
        help="one mask for all inputs, or a folder of masks named like the inputs "
        "(default: NAME_mask.* beside each input, else masks/NAME.* in its folder)",
    )
    parser.add_argument(
        "-o",
        "--out",
        "--output",
        dest="out",
        type=Path,
        metavar="DIR",
        help="output folder (created; subfolders are mirrored)",
    )
    edit = parser.add_argument_group("the edit")
    edit.add_argument("--op", choices=OPERATIONS, help="inpaint (default) or upscale; picks the best engine for it")
    edit.add_argument(
        "--engine", help="engine by name (`lanfarm engines` lists them); implies its operation (default: opencv)"
    )
    edit.add_argument("--model", help="model file name in the models folder, for engines that use one")
    edit.add_argument(
        "--send-models",
        choices=["auto", "off"],
        default="auto",
        help="auto (default): send the model to nodes that can run its jobs but lack it; off: never",
    )
    edit.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="engine parameter, e.g. --param radius=6 (repeatable; `lanfarm engines` lists them)",
    )
    edit.add_argument(
        "--hd",
        default="crop",
        choices=["original", "crop", "resize"],
        help="strategy for big images (default: crop around the mask)",
    )
    edit.add_argument("--device", help="cpu, cuda, cuda:N or mps for this PC's AI engines (default: the best found)")
    out = parser.add_argument_group("outputs")
    out.add_argument(
        "--format",
        default="keep",
        choices=["keep", "png", "jpeg", "jpg", "webp"],
        help="output format (default keep: a JPEG stays a JPEG at about its own quality, with its EXIF; "
        "WebP stays WebP; anything else becomes PNG)",
    )
    out.add_argument(
        "--quality",
        type=number_in(int, 1, 100),
        default=95,
        metavar="1-100",
        help="JPEG/WebP quality (default 95; with --format keep a JPEG keeps its own)",
    )
    out.add_argument(
        "--overwrite", action="store_true", help="replace existing outputs (inputs never); redoes up-to-date ones"
    )
    out.add_argument(
        "--fresh",
        action="store_true",
        help="redo everything: no resuming an interrupted run, no keeping up-to-date outputs",
    )
    out.add_argument("--concat", action="store_true", help="write image | mask | result side by side (IOPaint's)")
    out.add_argument(
        "--resize-mask", action="store_true", help="scale masks of another size to the image instead of refusing them"
    )
    out.add_argument(
        "--max-megapixels",
        type=positive(float),
        default=100.0,
        metavar="MP",
        help="refuse images larger than this (decompression-bomb guard; default 100)",
    )
    out.add_argument("--json", action="store_true", help="print the summary as JSON")
    work = parser.add_argument_group("the farm (by default: this PC, nodes found over mDNS and saved peers)")
    work.add_argument(
        "--jobs", type=positive(int), default=min(4, usable_cpus()), metavar="N", help="edits at once on this PC"
    )
    work.add_argument(
        "--priority",
        type=number_in(int, *PRIORITY_RANGE),
        default=0,
        metavar="N",
        help=f"higher runs first, here and on each node ({PRIORITY_RANGE[0]} to {PRIORITY_RANGE[1]}; default 0)",
    )
    work.add_argument(
        "--peer", action="append", default=[], metavar="HOST:PORT", help="also use this node (repeatable)"
    )
    work.add_argument("--no-local", action="store_true", help="do not edit on this PC, only on nodes")
    work.add_argument("--local-only", action="store_true", help="use no nodes, only this PC")
    work.add_argument(
        "--ship",
        default="auto",
        choices=["auto", "crop", "whole"],
        help="what an inpaint sends a node: the crop its engine needs, the whole image, or auto (the crop, "
        "unless the link is fast enough that cutting it here costs more than it saves)",
    )
    work.add_argument(
        "--tiles",
        type=tiles_arg,
        default="auto",
        metavar="auto|off|N",
        help="cut a big upscale into N tiles for several PCs, stitched without seams (default auto: when that "
        "ends it clearly sooner than one PC alone; off: never)",
    )
    work.add_argument(
        "--no-discovery", action="store_true", help=f"no mDNS, only saved and given peers (also {DISCOVERY_ENV}=off)"
    )
    add_discover_on(work)
    work.add_argument(
        "--wait",
        type=positive(float),
        default=NODE_WAIT,
        metavar="SECONDS",
        help=f"when only nodes can do the edit: wait at most this long for the first (default {NODE_WAIT:g})",
    )
    work.add_argument("--token-file", type=Path, help="file holding the farm token")
    parser.add_argument("--simulate", action="store_true", help=argparse.SUPPRESS)  # tests and benchmarks
    parser.set_defaults(handler=handle)


def parse_param(text: str) -> tuple[str, ParamValue]:
    """``name=value``; the value is read as JSON when it parses (numbers, true/false), else as text."""
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise UsageError(f"--param {text!r}: expected NAME=VALUE")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    if not isinstance(value, bool | int | float | str):
        value = raw
    return name.strip(), value


def tiles_arg(text: str) -> str | int:
    """``--tiles``: auto, off or a number of tiles (argparse shows the ValueError's message)."""
    try:
        return parse_tiles(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


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


@dataclass(slots=True)
class Outcome:
    batch: Batch | None
    stats: dict[str, WorkerStats]
    elapsed: float
    code: int = 0
    skipped: list[Path] = field(default_factory=list)  # files that are not images, left out


def handle(args: argparse.Namespace) -> int:
    err = Console(stderr=True, soft_wrap=True)
    try:
        inputs, mask, out_dir = check_paths(args)
        if args.local_only and args.no_local:
            raise UsageError("--local-only and --no-local leave no worker")
        params = dict(parse_param(p) for p in args.param)
        device_override(args.device)  # a device name that cannot be is refused here, AI extra or not
        registry = default_registry(device=args.device, simulate=args.simulate)
        engine, model = engine_and_model(args, registry)
        spec = EditSpec(
            op=args.op or "inpaint",
            engine=engine or "cv2",
            model=model,
            params=params,
            hd=HdStrategy(strategy=args.hd),
            output=OutputSpec.from_dict({"format": args.format, "quality": args.quality}),
        )
        nodes = NodeOptions.from_args(args)
        if args.no_local and not nodes.wanted:
            raise UsageError(
                "--no-local leaves no worker: discovery is off and no peer is saved or given (--peer HOST:PORT)"
            )
        local_error: FarmError | None = None
        try:
            spec = choose_engine(args.op, engine, spec, registry.descriptors() if not args.no_local else [])
        except FarmError as exc:
            if not nodes.wanted:
                raise UsageError(str(exc)) from None
            local_error = exc  # a node may have it: asked once the nodes answer
        out_dir.mkdir(parents=True, exist_ok=True)
        token = load_or_create_token(token_file=args.token_file) if nodes.wanted else ""
    except (FarmError, OSError, ValueError) as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        return 2
    settings = FarmSettings(
        token=token,
        use_local=not args.no_local,
        local_slots=args.jobs,
        nodes=nodes.wanted,
        mdns=nodes.mdns,
        interfaces=nodes.interfaces,
        peers=nodes.peers,
        store=default_store_path(),
        measurements=measurements_path(),
        overwrite=args.overwrite,
        resize_mask=args.resize_mask,
        shipping=args.ship,
        tiles=args.tiles,
        max_pixels=int(args.max_megapixels * 1e6),
        unrunnable_after=args.wait,
        send_models=args.send_models,
        # a batch that ended (failures too) is finished: its rerun plans again, keeping what is up to
        # date and trying the failed and new inputs; only an interrupted one is resumed as it was
        retry_failed_on_resume=False,
    )
    with native_stderr_quiet(not args.verbose):
        try:
            outcome = asyncio.run(_run(args, inputs, mask, out_dir, spec, local_error, settings, registry, err))
        except KeyboardInterrupt:
            err.print("interrupted: run the same command again to resume", highlight=False)
            return 130
    if outcome.batch is None:
        return outcome.code
    return report(args, outcome, out_dir, err)


def check_paths(args: argparse.Namespace) -> tuple[list[Path], Path | None, Path]:
    inputs: list[Path] = [*args.inputs, *args.images]
    if not inputs:
        raise UsageError("no inputs: give image files or folders (lanfarm run INPUT... --out DIR)")
    if args.out is None:
        raise UsageError("no output folder: give --out DIR")
    missing = [str(p) for p in inputs if not p.exists()]
    if missing:
        raise UsageError(f"no such file or folder: {', '.join(missing)}")
    if args.mask is not None and not args.mask.exists():
        raise UsageError(f"mask {args.mask}: no such file or folder")
    out_dir: Path = args.out
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"output folder {out_dir} is a file")
    return inputs, args.mask, out_dir


def engine_and_model(args: argparse.Namespace, registry: Registry) -> tuple[str | None, str | None]:
    """--engine as an id; IOPaint's ``--model lama`` (an engine name where no such model file is) too."""
    engine = engine_id(args.engine) if args.engine else None
    model = args.model
    if engine is None and model is not None:
        named = engine_id(model)
        files = {m for d in registry.descriptors() for m in d.models}
        if model not in files and (named in registry.ids() or named != model.strip()):
            return named, None
    return engine, model


def choose_engine(
    op: str | None, engine: str | None, spec: EditSpec, descriptors: Sequence[EngineDescriptor]
) -> EditSpec:
    """The spec with its operation and engine settled and checked against ``descriptors``: an engine
    implies its operation; an operation alone picks the best available engine for it."""
    by_id = {d.id: d for d in descriptors if not d.simulated or d.id == engine}
    if engine is not None:
        desc = by_id.get(engine)
        if desc is None:
            raise EngineError(f"unknown engine {engine!r} (known here: {_names(by_id.values())})")
        if op is None:
            op = "inpaint" if "inpaint" in desc.operations else sorted(desc.operations)[0]
        elif op not in desc.operations:
            raise EngineError(
                f"engine {engine_name(desc.id)!r} cannot {op} (it does: {', '.join(sorted(desc.operations))}); "
                f"drop --engine to use the best engine for {op}"
            )
    else:
        op = op or "inpaint"
        able = [d for d in by_id.values() if op in d.operations]
        order = PREFERRED.get(op, ())
        able.sort(key=lambda d: (not d.available, order.index(d.id) if d.id in order else len(order)))
        if not able:
            raise EngineError(f"no engine here can {op} (known here: {_names(by_id.values())})")
        desc = able[0]
        if not desc.available:
            raise EngineError(f"no engine here can {op} now: {engine_name(desc.id)}: {desc.unavailable_reason}")
    spec = replace(spec, op=op, engine=desc.id)
    check = Registry([EngineEntry(desc, _no_factory)])
    check.resolve(spec)  # unavailable, a model not there, bad params: said now
    return spec


def _no_factory(_model: str | None) -> Engine:
    raise AssertionError("only used to check a spec")


def _names(descriptors: Iterable[EngineDescriptor]) -> str:
    names = [engine_name(d.id) for d in descriptors]
    return ", ".join(names) or "none"


def edit_key(spec: EditSpec, args: argparse.Namespace) -> str:
    """What an output was made with, for the up-to-date check: the edit, and what is done after it."""
    return json.dumps({"spec": spec.to_dict(), "concat": bool(args.concat), "resize_mask": bool(args.resize_mask)})


async def _run(
    args: argparse.Namespace,
    inputs: list[Path],
    mask: Path | None,
    out_dir: Path,
    spec: EditSpec,
    local_error: FarmError | None,
    settings: FarmSettings,
    registry: Registry,
    err: Console,
) -> Outcome:
    async with Farm.open(settings, registry=registry) as farm:

        def on_node(event: FarmEvent) -> None:
            if isinstance(event, NodeEvent) and event.untrusted:
                err.print(f"[yellow]warning:[/yellow] {escape(event.reason)}: not used", highlight=False)
            elif isinstance(event, NodeEvent) and not event.authorised:
                err.print(
                    f"[yellow]warning:[/yellow] node {escape(event.name)} at {Address.parse(event.address)} refused "
                    "the farm token: not used (give it this PC's `lanfarm token`)",
                    highlight=False,
                )

        farm.subscribe(on_node)
        farm.models.listeners.append(lambda done: err.print(escape(transfer_line(done)), highlight=False))
        warned: set[str] = set()

        def warn_unreached() -> None:
            for miss in farm.unreached():
                if str(miss.address) not in warned:
                    warned.add(str(miss.address))
                    err.print(
                        f"[yellow]warning:[/yellow] peer {miss.address} not reached: {escape(miss.error)}",
                        highlight=False,
                    )

        if local_error is not None or not settings.use_local:  # only nodes can start: wait for the first
            await wait_for_answer(farm, args.wait, mdns=settings.mdns)
            if settings.peers:  # the others named too: what is planned (models to send, tiles) knows them all
                await farm.wait_for_nodes(PEER_PROBE, mdns_grace=0)
            warn_unreached()
            remote = [e for w in farm.workers() if w.info is not None for e in w.info.engines]
            sends = args.send_models != "off" and args.model is not None  # this PC's model can go to nodes
            offered = merge_descriptors([] if args.no_local and not sends else registry.descriptors(), remote)
            try:
                spec = choose_engine(args.op, spec.engine if args.engine or args.model else None, spec, offered)
            except FarmError as exc:
                found = "no node answered" if not remote else "no node has it"
                err.print(f"[red]error:[/red] {escape(str(exc))} ({found})", highlight=False)
                return Outcome(None, {}, 0.0, code=2)
        elif spec.op == "upscale" and settings.nodes and settings.tiles != "off":
            # a big upscale is cut for the workers known when it is queued: let the nodes answer first
            await farm.wait_for_nodes(PEER_PROBE, mdns_grace=SPLIT_MDNS_GRACE if settings.mdns else 0.0)
        probe: asyncio.Future[None] | None = None
        if settings.use_local and local_error is None and settings.peers:  # this PC starts at once: peers said soon
            probe = asyncio.ensure_future(_report_peers(farm, warn_unreached))
        store = QueueStore(settings.store) if settings.store is not None else None
        finishing: set[asyncio.Future[None]] = set()  # --concat and recording, per done output
        try:
            key = edit_key(spec, args)
            return await _submit(args, farm, inputs, mask, out_dir, spec, store, key, finishing, err)
        finally:
            if probe is not None:
                probe.cancel()
                await asyncio.gather(probe, return_exceptions=True)
            while finishing:  # even when interrupted; an edit may end while the others are awaited
                pending = list(finishing)
                finishing.clear()
                await asyncio.gather(*pending, return_exceptions=True)
            if store is not None:
                store.close()


def transfer_line(done: TransferDone) -> str:
    """One line per model sent to a node just in time (or refused by it)."""
    if done.result is None:
        return f"warning: {done.node_name} did not take model {done.model}: {done.error}"
    if done.result.already:
        return f"{done.node_name} already had model {done.model}"
    return f"sent model {done.model} to {done.node_name} ({done.result.rate / 1e6:.1f} MB/s)"


async def _report_peers(farm: Farm, warn: Callable[[], None]) -> None:
    """Peers that do not answer are said at the start, while this PC already works."""
    await farm.wait_for_nodes(PEER_PROBE, mdns_grace=0)
    warn()


async def _submit(
    args: argparse.Namespace,
    farm: Farm,
    inputs: list[Path],
    mask: Path | None,
    out_dir: Path,
    spec: EditSpec,
    store: QueueStore | None,
    key: str,
    finishing: set[asyncio.Future[None]],
    err: Console,
) -> Outcome:
    started = time.monotonic()

    def up_to_date(image: Path, image_mask: Path | None, folder: Path) -> Path | None:
        if store is None or args.fresh or args.overwrite:
            return None
        return store.up_to_date(image, image_mask, key, folder)

    def finished(job: Job) -> None:
        """A done output: made side by side (--concat), then recorded for the next run's check."""

        def work() -> None:
            if args.concat:
                from farm.cli.concat import concat_output

                concat_output(job.input, job.mask, job.output, spec.output, max_pixels=farm.settings.max_pixels)
            if store is not None:
                store.record_output(job.output, job.input, job.mask, key)

        task = asyncio.ensure_future(asyncio.to_thread(work))
        finishing.add(task)

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
                if event.job.state is JobState.DONE:
                    finished(event.job)
                elif event.job.state is JobState.FAILED and err.is_terminal:
                    bar.console.print(
                        f"[red]failed[/red] {escape(str(event.job.input))}: {escape(event.job.error or '')}",
                        highlight=False,
                    )
                per_node = ", ".join(f"{s.name} {s.done}" for s in farm.stats().values())
                bar.update(task, description=f"editing ({per_node})")

        farm.subscribe(on_event)
        batch = await farm.submit_paths(
            inputs,
            mask,
            spec,
            out_dir,
            resumable=True,
            fresh=args.fresh,
            only_masked=True,
            up_to_date=up_to_date,
            priority=args.priority,
        )
        if batch.resumed:
            err.print(
                f"resuming an interrupted run: {len(batch.earlier)} already done, {len(batch.jobs)} to do "
                "(--fresh starts over)",
                highlight=False,
            )
        if batch.unmasked and not batch.jobs and not batch.current:
            err.print(
                f"[red]error:[/red] {_count(len(batch.unmasked), 'image')} without a mask, and "
                f"{engine_name(spec.engine)} needs one: {NO_MASK_HINT}",
                highlight=False,
            )
            return Outcome(None, {}, 0.0, code=2)
        bar.update(task, total=len(batch.jobs))
        await farm.wait()
        results = await asyncio.gather(*finishing, return_exceptions=True)
        for job_result in results:
            if isinstance(job_result, BaseException):
                err.print(f"[yellow]warning:[/yellow] {escape(str(job_result))}", highlight=False)
        for job in batch.earlier:
            if store is not None and job.output.exists():
                with contextlib.suppress(OSError):
                    store.record_output(job.output, job.input, job.mask, key)
    problems = batch.problems
    if batch.resumed:  # the stored batch was planned before: list the files it left out again
        skip = [out_dir] + ([mask] if mask is not None and mask.is_dir() else [])
        files, problems = await asyncio.to_thread(collect_inputs, inputs, skip=skip)
        planned = {j.input.resolve() for j in (*batch.jobs, *batch.earlier)}
        new = [f for f in files if f.resolve() not in planned]
        if new:
            err.print(
                f"note: {_count(len(new), 'file')} came after the interrupted run ({new[0].name}"
                f"{', ...' if len(new) > 1 else ''}): run the same command again to edit "
                f"{'it' if len(new) == 1 else 'them'}",
                highlight=False,
            )
    skipped = [p.path for p in problems if p.skipped]
    return Outcome(batch, farm.stats(), time.monotonic() - started, skipped=skipped)


def report(args: argparse.Namespace, outcome: Outcome, out_dir: Path, err: Console) -> int:
    batch = outcome.batch
    assert batch is not None
    failed = [(str(j.input), j.error or j.state.value) for j in batch.jobs if j.state is not JobState.DONE]
    failed += [(str(p.path), p.reason) for p in batch.problems if not p.skipped]
    unmasked = [str(p) for p in batch.unmasked]
    skipped = outcome.skipped
    done = batch.earlier + [j for j in batch.jobs if j.state is JobState.DONE]
    stats = outcome.stats
    if args.json:
        summary = {
            "elapsed": round(outcome.elapsed, 3),
            "done": [str(j.output) for j in done],
            "up_to_date": [str(p) for p in batch.current],
            "failed": [{"input": i, "error": e} for i, e in failed]
            + [{"input": i, "error": f"no mask ({NO_MASK_HINT})"} for i in unmasked],
            "skipped": [{"path": str(p), "reason": "not an image"} for p in skipped],
            "workers": {
                w: {
                    "name": s.name,
                    "done": s.done,
                    "parts": s.parts,  # tiles and regions of split edits
                    "failed": s.failed,
                    "busy_seconds": round(s.busy_seconds, 3),
                    "compute_seconds": round(s.compute_seconds, 3),
                }
                for w, s in stats.items()
            },
        }
        print(json.dumps(summary, indent=2))
    else:
        for path, reason in failed:
            print(f"failed: {path}: {reason}", file=sys.stderr)
        if unmasked:
            print(
                f"failed: {_count(len(unmasked), 'image')} without a mask ({', '.join(unmasked)}): {NO_MASK_HINT}",
                file=sys.stderr,
            )
        if any(worker != LOCAL for worker in stats):  # nodes took part: who did what
            split = any(s.parts for s in stats.values())
            for s in stats.values():
                pieces = f"  tiles/regions {s.parts:4d}" if split else ""
                print(f"  {s.name:24s} done {s.done:4d}{pieces}  failed attempts {s.failed}")
        parts = [f"done {len(done)}", f"failed {len(failed) + len(unmasked)}"]
        if batch.current:
            parts.append(f"up to date {len(batch.current)}")
        print(f"{', '.join(parts)}; outputs in {out_dir}")
        if batch.current and not batch.jobs and not failed and not unmasked:
            print(
                f"nothing to do: {_count(len(batch.current), 'output')} already match their inputs and this edit "
                "(--overwrite or --fresh redoes them)"
            )
        if skipped:
            names = ", ".join(str(p.name) for p in skipped[:5]) + (
                f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
            )
            verb = "is" if len(skipped) == 1 else "are"
            print(f"skipped {_count(len(skipped), 'file')} that {verb} not an image: {names}")
    return 1 if failed or unmasked else 0


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"
