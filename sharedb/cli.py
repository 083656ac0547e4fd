"""The sharedb command: python -m sharedb, or sharedb once installed."""

from __future__ import annotations

import argparse
import sys

from sharedb import _demo


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sharedb",
        description="Inspect and manage ShareDB stores.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    demo = commands.add_parser(
        "demo",
        help="store the standard library's source text, read it back from "
        "other processes while writing, and check every record",
        description=_demo.__doc__,
    )
    _demo.add_arguments(demo)
    demo.set_defaults(handler=lambda args: _demo.run(
        args.records, args.readers, args.dir, args.keep))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
