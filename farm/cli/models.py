"""``lanfarm models [--json]`` lists the AI models in the models folder; ``lanfarm models add PATH``
copies (or ``--link``s) one in after checking that it loads; ``lanfarm models push MODEL`` copies one
to nodes (farm/cli/models_push.py)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from farm.cli import models_push
from farm.engines.catalogue import (
    AI_EXTRA_HINT,
    AI_MODULES,
    IOPAINT_LAMA_NAME,
    SD_MODULES,
    ModelDetails,
    ModelIndex,
    classify,
    describe,
    iopaint_lama_path,
    missing_modules,
    scan_models,
)
from farm.engines.installed import add_model, inspect_model
from farm.errors import FarmError, OutputError
from farm.local.paths import models_dir


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        nargs="?",
        default="list",
        choices=["list", "add", "push"],
        help="list (default), add a model, or push one to nodes",
    )
    parser.add_argument(
        "path",
        nargs="?",
        type=Path,
        metavar="FILE_OR_FOLDER",
        help="for add: a .safetensors/.pth file, big-lama.pt, or a diffusers folder; for push: also a name "
        "in the models folder",
    )
    parser.add_argument(
        "--link", action="store_true", help="for add: link to the model where it is instead of copying it"
    )
    parser.add_argument("--models-dir", type=Path, help="models folder (default: the app's, or LANFARM_MODELS_DIR)")
    parser.add_argument("--no-hash", action="store_true", help="skip sha256 (faster on first listing)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    models_push.configure(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    folder: Path = args.models_dir or models_dir()
    if args.action == "add":
        return _add(args, folder)
    if args.action == "push":
        return models_push.handle_push(args, folder)
    if args.path is not None:
        print(
            f"lanfarm models list: takes no argument (got {str(args.path)!r}); to add a model: "
            f"lanfarm models add {args.path}",
            file=sys.stderr,
        )
        return 2
    return _list(args, folder)


def _hints(folder: Path, details: list[ModelDetails], missing: list[str]) -> list[str]:
    hints = []
    if missing:
        hints.append(f"{', '.join(missing)} not installed. {AI_EXTRA_HINT}")
    found = iopaint_lama_path()
    if found is not None and not any(d.model.name == IOPAINT_LAMA_NAME for d in details):
        hints.append(f"found IOPaint's {IOPAINT_LAMA_NAME} at {found}; add it with `lanfarm models add {found}`")
    if not details:
        hints.append(f"no models in {folder}: add one with `lanfarm models add FILE_OR_FOLDER`")
    return hints


def _list(args: argparse.Namespace, folder: Path) -> int:
    missing = missing_modules(dict.fromkeys(AI_MODULES + SD_MODULES))
    index = ModelIndex()
    try:
        details = describe(
            scan_models(folder), index, inspect=None if missing else inspect_model, hashes=not args.no_hash
        )
    finally:
        with contextlib.suppress(OSError, OutputError):  # a read-only cache only costs speed next time
            index.save()
    hints = _hints(folder, details, missing)
    if args.json:
        print(
            json.dumps(
                {
                    "models_dir": str(folder),
                    "ai_installed": not missing,
                    "models": [d.to_dict() for d in details],
                    "hints": hints,
                },
                indent=2,
            )
        )
        return 0
    out = Console(highlight=False, soft_wrap=True, markup=False)  # "lanfarm[ai]" is no markup
    out.print(f"models folder: {folder}")
    if details:
        problems = any(d.to_dict()["error"] for d in details)
        table = Table("name", "engine", "architecture", "scale", "size", "sha256", *(["problem"] if problems else []))
        for d in details:
            row = [
                d.model.name,
                d.model.kind,
                d.architecture or "?",
                f"{d.scale}x" if d.scale else "",
                f"{d.model.size_mb:.1f} MB",
                (d.sha256 or "")[:12],
            ]
            table.add_row(*row, *([str(d.to_dict()["error"] or "")] if problems else []))
        out.print(table)
    for hint in hints:
        out.print(hint)
    return 0


def _add(args: argparse.Namespace, folder: Path) -> int:
    if args.path is None:
        print("lanfarm models add: give the model file or diffusers folder to add", file=sys.stderr)
        return 2
    source: Path = args.path
    model = classify(source) if source.exists() else None
    needs = SD_MODULES if model is not None and model.kind == "sd-inpaint" else AI_MODULES
    missing = missing_modules(needs)
    if missing:
        print(
            f"lanfarm models add: cannot check the model: {', '.join(missing)} not installed. {AI_EXTRA_HINT}",
            file=sys.stderr,
        )
        return 2
    try:
        added = add_model(source, folder, link=args.link)
    except (FarmError, OSError) as exc:
        print(f"lanfarm models add: refused: {exc}", file=sys.stderr)
        return 1
    verb = "linked" if args.link else "copied"
    if args.json:
        print(json.dumps({"added": added.name, "engine": added.kind, "path": str(added.path)}))
    else:
        print(f"{verb} {added.name} ({added.kind}) into {folder}")
    return 0
