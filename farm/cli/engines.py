"""``lanfarm engines``: the engines this PC has: name, old id, operations, whether it needs a mask,
models, availability, and each parameter with its type, range and default (``--json`` for scripts)."""

from __future__ import annotations

import argparse
import json

from farm.core.descriptor import EngineDescriptor
from farm.core.params import ParamSpec
from farm.engines.registry import ENGINE_ALIASES, engine_name


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON (each engine as nodes describe it)")
    parser.add_argument("--simulate", action="store_true", help=argparse.SUPPRESS)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from farm.engines.installed import default_registry

    descriptors = default_registry(simulate=args.simulate).descriptors()
    if args.json:
        print(
            json.dumps(
                [{"name": engine_name(d.id), "aliases": aliases(d.id), **d.to_dict()} for d in descriptors], indent=2
            )
        )
        return 0
    for d in descriptors:
        print(describe(d))
    print("Use one with: lanfarm run INPUT --out DIR --engine NAME [--param NAME=VALUE ...]")
    return 0


def aliases(engine_id: str) -> list[str]:
    """Other spellings ``--engine`` accepts for it (the old id first)."""
    name = engine_name(engine_id)
    others = [a for a, target in ENGINE_ALIASES.items() if target == engine_id and a not in (name, engine_id)]
    return ([engine_id] if engine_id != name else []) + others


def describe(d: EngineDescriptor) -> str:
    also = aliases(d.id)
    also_text = f" (also: {', '.join(also)})" if also else ""
    head = f"{engine_name(d.id)}{also_text}: {d.title}"
    lines = [head, f"  does: {', '.join(sorted(d.operations))}{'; needs a mask' if d.needs_mask else ''}"]
    lines.append("  status: available" if d.available else f"  status: not available: {d.unavailable_reason}")
    if d.models:
        lines.append(f"  models: {', '.join(d.models)} (--model NAME; default: the first)")
    if d.params.params:
        lines.append("  params:")
        for p in d.params.params:
            lines.append(f"    {p.name:<16} {_kind(p):<28} default {json.dumps(p.default)}{_help(p)}")
    else:
        lines.append("  params: none")
    return "\n".join(lines)


def _kind(p: ParamSpec) -> str:
    if p.choices:
        return "one of " + "|".join(p.choices)
    if p.minimum is not None or p.maximum is not None:
        low = "" if p.minimum is None else _num(p.minimum)
        high = "" if p.maximum is None else _num(p.maximum)
        return f"{p.kind} {low}..{high}"
    return str(p.kind)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _help(p: ParamSpec) -> str:
    text = p.help or p.label
    return f"  ({text})" if text else ""
