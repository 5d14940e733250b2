"""``lanfarm token [--regenerate] [--path]``: show (or replace) this PC's farm token."""

from __future__ import annotations

import argparse

from farm.local.token import load_or_create_token, new_token, save_token, token_path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--regenerate", action="store_true", help="make a new token (every app and node of the farm then needs it)"
    )
    parser.add_argument("--path", action="store_true", help="print where the token is kept instead")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    if args.path:
        print(token_path())
        return 0
    if args.regenerate:
        print(save_token(new_token(), token_path()))
        return 0
    print(load_or_create_token(token_path()))
    return 0
