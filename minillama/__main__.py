"""``python -m minillama …``: the same functions the notebooks call."""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand modules; each exposes add_parser(subparsers) and sets args.func
COMMAND_MODULES = ["minillama.cli_model", "minillama.cli_data", "minillama.cli_train", "minillama.cli_long",
                   "minillama.cli_instruct", "minillama.cli_eval"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m minillama", description=__doc__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
