"""``lanfarm run INPUT... --mask MASK_OR_DIR --out DIR``: a batch of edits from the command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from farm.batch import plan
from farm.engines import default_registry
from farm.errors import FarmError
from farm.localrun import Outcome, run_local
from farm.params import ParamValue
from farm.spec import EditSpec, HdStrategy, OutputSpec


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
        registry.resolve(spec)
        out_dir: Path = args.out
        if out_dir.exists() and not out_dir.is_dir():
            raise FarmError(f"output folder {out_dir} is a file")
        out_dir.mkdir(parents=True, exist_ok=True)
    except (FarmError, OSError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        return 2
    items, problems = plan(args.inputs, args.mask, out_dir, spec.output.suffix, overwrite=args.overwrite)
    outcomes: list[Outcome] = []
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=err, transient=True,
                  disable=not err.is_terminal) as bar:
        task = bar.add_task("editing", total=len(items))

        def on_outcome(outcome: Outcome) -> None:
            outcomes.append(outcome)
            bar.advance(task)
            if not outcome.ok and err.is_terminal:
                bar.console.print(f"[red]failed[/red] {outcome.item.input}: {outcome.error}",
                                  highlight=False)

        run_local(items, spec, registry, jobs=max(1, args.jobs), on_outcome=on_outcome,
                  overwrite=args.overwrite, resize_mask=args.resize_mask,
                  max_pixels=int(args.max_megapixels * 1e6))
    failed = [(str(o.item.input), o.error) for o in outcomes if not o.ok]
    failed += [(str(p.path), p.reason) for p in problems]
    done = [o for o in outcomes if o.ok]
    if args.json:
        print(json.dumps({"done": [str(o.item.output) for o in done],
                          "failed": [{"input": i, "error": e} for i, e in failed]}, indent=2))
    else:
        for path, reason in failed:
            print(f"failed: {path}: {reason}", file=sys.stderr)
        print(f"done {len(done)}, failed {len(failed)}; outputs in {out_dir}")
    return 1 if failed else 0
