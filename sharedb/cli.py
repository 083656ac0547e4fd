"""The sharedb command: python -m sharedb, or sharedb once installed.

Subcommands inspect and manage stores: stat, dump, load, copy, compact,
check, keys and get, built on sharedb._tools, and demo. PATH is a store
as ShareDB() names it ('x', 'x/' or 'x.ShareDB' for the directory
x.ShareDB/) or a plain LMDB directory holding data.mdb. stat, dump,
check, keys and get only read: they open the store read-only, work
while other processes write it, and create nothing.

Exit status: 0 on success, 1 when check finds problems or a command
fails (with one sentence on stderr naming the path and the cause), 2
for invalid usage.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from typing import IO, Any

from sharedb import _demo, _dumpformat, _tools, lmdb
from sharedb.store import InvalidArgumentError

_SERIALS = ("pickle", "msgpack")


class ProgressBar:
    """A progress bar on a terminal's stderr, redrawn at most ten times a
    second; it draws nothing when disabled."""

    def __init__(self, label: str, unit: str, enabled: bool) -> None:
        self.label = label
        self.unit = unit
        self.enabled = enabled
        self.shown = False
        self.last_draw = 0.0

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.last_draw < 0.1 and (not total or done < total):
            return
        self.last_draw = now
        self._draw(done, total)

    def _draw(self, done: int, total: int) -> None:
        width = shutil.get_terminal_size((80, 24)).columns
        count = f"{_amount(done, self.unit)}"
        if total:
            count += f" of {_amount(total, self.unit)}"
            fraction = min(done / total, 1.0)
            text = f"{self.label} {fraction:6.1%} {count} "
            bar_width = max(width - len(text) - 3, 10)
            filled = int(bar_width * fraction)
            line = f"{text}[{'#' * filled}{'.' * (bar_width - filled)}]"
        else:
            line = f"{self.label} {count}"
        sys.stderr.write("\r" + line[: width - 1])
        sys.stderr.flush()
        self.shown = True

    def finish(self) -> None:
        if self.shown:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.shown = False


def _amount(number: int, unit: str) -> str:
    if unit != "bytes":
        return f"{number:,} {unit}"
    value = float(number)
    for suffix in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or suffix == "TiB":
            return f"{value:.0f} {suffix}" if suffix == "B" else f"{value:.1f} {suffix}"
        value /= 1024
    return f"{number} B"


@contextlib.contextmanager
def _progress(args: argparse.Namespace, label: str, unit: str) -> Iterator[ProgressBar]:
    enabled = not args.quiet and sys.stderr.isatty()
    bar = ProgressBar(label, unit, enabled)
    try:
        yield bar
    finally:
        bar.finish()


# Subcommands ---------------------------------------------------------------


def _run_stat(args: argparse.Namespace) -> int:
    figures = _tools.stats(args.path)
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    sys.stdout.write(_format_stats(figures))
    return 0


def _format_stats(figures: dict[str, Any]) -> str:
    kind = "ShareDB store" if figures["kind"] == "sharedb" else "LMDB directory"
    cap = figures["cap"]
    rows = [
        ("Entries", f"{figures['entries']:,}"),
        ("B-tree depth", f"{figures['depth']}"),
        ("Branch pages", f"{figures['branch_pages']:,}"),
        ("Leaf pages", f"{figures['leaf_pages']:,}"),
        ("Overflow pages", f"{figures['overflow_pages']:,}"),
        ("Page size", f"{figures['page_size']:,} bytes"),
        ("Used by records", _amount(figures["used_bytes"], "bytes")),
        (
            "Last page in use",
            (
                f"{figures['last_pgno']:,} "
                f"({_amount(figures['high_water_bytes'], 'bytes')} of the file)"
            ),
        ),
    ]
    if figures["free_pages"] is not None:
        rows.append(("Free pages", f"{figures['free_pages']:,}"))
    if figures.get("named_databases"):
        rows.append(("Named databases", ", ".join(figures["named_databases"])))
    limit = _amount(cap or figures["map_size"], "bytes")
    processes = len(figures["reader_processes"])
    rows += [
        ("Map size", _amount(figures["map_size"], "bytes")),
        ("Size cap", _amount(cap, "bytes") if cap else "none"),
        ("Fill", f"{figures['fill_percent']:.2f}% of {limit}"),
        (
            "data.mdb size",
            (
                f"{_amount(figures['file_size'], 'bytes')} "
                f"({_amount(figures['file_allocated'], 'bytes')} allocated on disk)"
            ),
        ),
        ("Reader slots", f"{figures['max_readers']:,}"),
        (
            "Readers",
            (
                f"{figures['readers_active']} reading, "
                f"{figures['readers_idle']} idle, {figures['readers_stale']} stale, "
                f"in {processes} other processes"
            ),
        ),
        ("Last transaction", f"{figures['last_txnid']:,}"),
        ("Settings", _format_settings(figures["config"])),
    ]
    lines = [f"Store {figures['path']} ({kind})"]
    lines += [f"  {label + ':':<20}{value}" for label, value in rows]
    return "\n".join(lines) + "\n"


def _format_settings(config: dict[str, Any] | None) -> str:
    if config is None:
        return "none (no ShareDB.config)"
    return " ".join(f"{name}={value}" for name, value in config.items())


def _output(name: str | None) -> contextlib.AbstractContextManager[IO[bytes]]:
    if name is None or name == "-":
        return contextlib.nullcontext(sys.stdout.buffer)
    try:
        return open(name, "wb")  # the caller's with closes it
    except OSError as exc:
        raise _tools.ToolError(f"cannot write {name}: {exc.strerror}") from exc


def _input(name: str | None) -> contextlib.AbstractContextManager[IO[bytes]]:
    if name is None or name == "-":
        return contextlib.nullcontext(sys.stdin.buffer)
    try:
        return open(name, "rb")  # the caller's with closes it
    except OSError as exc:
        raise _tools.ToolError(f"cannot read {name}: {exc.strerror}") from exc


def _run_dump(args: argparse.Namespace) -> int:
    try:
        with _output(args.output) as out, _progress(args, "dump", "records") as bar:
            _tools.dump(
                args.path,
                out,
                printable=args.printable,
                decoded=args.decoded,
                database=args.database,
                all_databases=args.all,
                progress=bar,
            )
            out.flush()
    except BaseException:
        # Leave no partial dump behind.
        if args.output not in (None, "-") and os.path.isfile(args.output):
            os.remove(args.output)
        raise
    return 0


def _run_load(args: argparse.Namespace) -> int:
    with _input(args.input) as inp, _progress(args, "load", "bytes") as bar:
        result = _tools.load(
            args.path,
            inp,
            decoded=args.decoded,
            plain=args.plain,
            serial=args.serial,
            compress=args.compress,
            overwrite=not args.no_overwrite,
            progress=bar,
        )
    for warning in result.warnings:
        print(f"sharedb load: warning: {warning}", file=sys.stderr)
    if not args.quiet:
        skipped = result.read - result.stored
        note = f", {skipped:,} kept as they were" if skipped else ""
        print(
            f"Loaded {result.stored:,} records into {result.location}{note}.",
            file=sys.stderr,
        )
    return 0


def _run_copy(args: argparse.Namespace) -> int:
    with _progress(args, "copy", "bytes") as bar:
        target = _tools.copy(args.path, args.dest, compact=args.compact, progress=bar)
    if not args.quiet:
        print(f"Copied {args.path} to {target}.", file=sys.stderr)
    return 0


def _run_compact(args: argparse.Namespace) -> int:
    with _progress(args, "compact", "bytes") as bar:
        result = _tools.compact(args.path, force=args.force, progress=bar)
    if result.other_processes:
        print(
            f"sharedb compact: warning: processes "
            f"{', '.join(map(str, result.other_processes))} had the store open; "
            f"they keep the old files, and their later writes are lost",
            file=sys.stderr,
        )
    if not args.quiet:
        print(
            f"Compacted {args.path}: data.mdb went from "
            f"{_amount(result.before, 'bytes')} to {_amount(result.after, 'bytes')}.",
            file=sys.stderr,
        )
    return 0


def _run_check(args: argparse.Namespace) -> int:
    with _progress(args, "check", "records") as bar:
        report = _tools.check_report(args.path, progress=bar)
    for problem in report.problems:
        print(f"problem: {problem}")
    if not args.quiet:
        print(f"Method: {report.method}.", file=sys.stderr)
    if report.problems:
        count = len(report.problems)
        print(
            f"sharedb check: found {count} problem{'s' if count > 1 else ''} in "
            f"{args.path}",
            file=sys.stderr,
        )
        return 1
    if not args.quiet:
        print(
            f"{args.path}: no problems found in {report.entries:,} records and "
            f"{report.pages:,} pages."
        )
    return 0


def _show(value: object, as_json: bool) -> str:
    if as_json:
        return json.dumps(_dumpformat.to_json(value), ensure_ascii=False)
    return repr(value)


def _run_keys(args: argparse.Namespace) -> int:
    for key in _tools.keys(args.path):
        print(_show(key, args.json))
    return 0


def _run_get(args: argparse.Namespace) -> int:
    print(_show(_tools.get(args.path, args.key), args.json))
    return 0


def _key_literal(text: str) -> str:
    """Check at parse time that KEY is a Python literal."""
    try:
        _tools.parse_key(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


# The parser ----------------------------------------------------------------

_PATH_HELP = (
    "the store: 'x', 'x/' or 'x.ShareDB' for the ShareDB store x.ShareDB/, or a "
    "plain LMDB directory holding data.mdb"
)
_QUIET_HELP = "show no progress bar and no summary on stderr"


def _add_quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help=_QUIET_HELP)


def _add_stat(commands: Any) -> None:
    parser = commands.add_parser(
        "stat",
        help="show the size, pages, readers and settings of a store",
        description="Show the records, B-tree pages, map size and fill, data file "
        "size, reader slots and ShareDB.config settings of a store. Reads only, "
        "and works while other processes write the store.",
    )
    parser.add_argument("path", metavar="PATH", help=_PATH_HELP)
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the figures as one JSON object (sizes in bytes, counts in "
        "pages or records)",
    )
    parser.set_defaults(handler=_run_stat)


def _add_dump(commands: Any) -> None:
    parser = commands.add_parser(
        "dump",
        help="write the records of a store as text, in mdb_dump's format",
        description="Write every record of a store in the text format of LMDB's "
        "mdb_dump, which mdb_load and 'sharedb load' read back. Reads one "
        "snapshot, while other processes may write the store.",
    )
    parser.add_argument("path", metavar="PATH", help=_PATH_HELP)
    parser.add_argument(
        "-p",
        "--printable",
        action="store_true",
        help="write printable bytes as they are and others as \\XX hex escapes "
        "(mdb_dump -p); the default writes every byte as two hex digits",
    )
    parser.add_argument(
        "--decoded",
        action="store_true",
        help="decode keys and values with the store's serializer and write one "
        'JSON object {"key": ..., "value": ...} per line; bytes, tuples, sets '
        'and other non-JSON values become tagged objects such as {"$bytes": '
        'BASE64} and {"$tuple": [...]}, and objects without a JSON form '
        'become {"$repr": ..., "$pickle": BASE64}',
    )
    parser.add_argument(
        "-o", "--output", metavar="FILE", help="write to FILE instead of stdout"
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "-s",
        "--database",
        metavar="NAME",
        help="dump the named database NAME of a plain LMDB directory (mdb_dump -s)",
    )
    which.add_argument(
        "-a",
        "--all",
        action="store_true",
        help="dump every named database of a plain LMDB directory (mdb_dump -a), "
        "after the main database's other records if it has any",
    )
    _add_quiet(parser)
    parser.set_defaults(handler=_run_dump)


def _add_load(commands: Any) -> None:
    parser = commands.add_parser(
        "load",
        help="store the records of a dump in a store, creating it if missing",
        description="Store the records of a dump (from 'sharedb dump' or mdb_dump) "
        "in a store. A missing store is created: a ShareDB store x.ShareDB/, or "
        "with --plain an LMDB directory. Records commit in batches of up to "
        "20,000, so a failed load keeps the batches before the failure.",
    )
    parser.add_argument("path", metavar="PATH", help=_PATH_HELP)
    parser.add_argument(
        "-i", "--input", metavar="FILE", help="read the dump from FILE instead of stdin"
    )
    parser.add_argument(
        "--decoded",
        action="store_true",
        help="read JSON lines from 'sharedb dump --decoded' and store each record "
        "with the store's serializer; this unpickles $pickle values, so load only "
        "dumps you trust",
    )
    parser.add_argument(
        "--plain",
        action="store_true",
        help="create PATH itself as a plain LMDB directory if it is missing, "
        "instead of PATH.ShareDB/",
    )
    parser.add_argument(
        "--serial",
        choices=_SERIALS,
        help="serializer of a new ShareDB store (default: detected from the "
        "records of a raw dump, else pickle); an existing store keeps its own",
    )
    parser.add_argument(
        "--compress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="zlib-compress the values of a new ShareDB store (default: detected "
        "from the records of a raw dump, else no); an existing store keeps its own",
    )
    parser.add_argument(
        "-N",
        "--no-overwrite",
        action="store_true",
        help="keep the value of a key that is already in the store (mdb_load -N)",
    )
    _add_quiet(parser)
    parser.set_defaults(handler=_run_load)


def _add_copy(commands: Any) -> None:
    parser = commands.add_parser(
        "copy",
        help="write a consistent backup of a store while others write it",
        description="Copy the last committed snapshot of a store, with its "
        "ShareDB.config, to DEST while other processes go on writing. DEST is "
        "named like PATH: copying the store x to y creates y.ShareDB/.",
    )
    parser.add_argument("path", metavar="PATH", help=_PATH_HELP)
    parser.add_argument(
        "dest",
        metavar="DEST",
        help="the copy to create; it must not exist, or be an empty directory",
    )
    parser.add_argument(
        "--compact",
        action="store_true",
        help="leave out free pages and renumber the rest, so the copy takes only "
        "the space of the records",
    )
    _add_quiet(parser)
    parser.set_defaults(handler=_run_copy)


def _add_compact(commands: Any) -> None:
    parser = commands.add_parser(
        "compact",
        help="rewrite a store in place without its free pages",
        description="Copy a store without its free pages into a new directory "
        "beside it, then swap the directories, so a crash leaves the old or the "
        "new store whole. Holds LMDB's writer lock throughout, so no commit is "
        "lost. Rejected while other processes have the store open, since they "
        "would go on using the old files.",
    )
    parser.add_argument("path", metavar="PATH", help=_PATH_HELP)
    parser.add_argument(
        "--force",
        action="store_true",
        help="compact even while other processes have the store open; their "
        "writes after the swap are lost",
    )
    _add_quiet(parser)
    parser.set_defaults(handler=_run_compact)


def _add_check(commands: Any) -> None:
    parser = commands.add_parser(
        "check",
        help="verify every page and record of a store",
        description="Verify a store and print one line per problem found. Exits "
        "1 if there are problems. Reads only, and works while other processes "
        "write the store.",
    )
    parser.add_argument("path", metavar="PATH", help=_PATH_HELP)
    _add_quiet(parser)
    parser.set_defaults(handler=_run_check)


def _add_keys(commands: Any) -> None:
    parser = commands.add_parser(
        "keys",
        help="print the decoded keys of a ShareDB store, one per line",
        description="Print each key of a ShareDB store, decoded with its "
        "serializer, in key order, as a Python literal that 'sharedb get' "
        "accepts.",
    )
    parser.add_argument("path", metavar="PATH", help=_PATH_HELP)
    parser.add_argument(
        "--json",
        action="store_true",
        help="print each key in the JSON form of 'dump --decoded' instead",
    )
    parser.set_defaults(handler=_run_keys)


def _add_get(commands: Any) -> None:
    parser = commands.add_parser(
        "get",
        help="print the decoded value of one key of a ShareDB store",
        description="Print the value of KEY in a ShareDB store, decoded with its "
        "serializer, as Python's repr. Exits 1 if the key is absent.",
    )
    parser.add_argument("path", metavar="PATH", help=_PATH_HELP)
    parser.add_argument(
        "key",
        metavar="KEY",
        type=_key_literal,
        help="the key as a Python literal: \"'name'\" for the str name, 42, "
        "\"b'raw'\", \"(1, 'a')\"",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the value in the JSON form of 'dump --decoded' instead",
    )
    parser.set_defaults(handler=_run_get)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sharedb",
        description="Inspect and manage ShareDB stores and LMDB directories.",
        epilog="Exit status: 0 on success, 1 when check finds problems or a "
        "command fails, 2 for invalid usage.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    _add_stat(commands)
    _add_dump(commands)
    _add_load(commands)
    _add_copy(commands)
    _add_compact(commands)
    _add_check(commands)
    _add_keys(commands)
    _add_get(commands)

    demo = commands.add_parser(
        "demo",
        help="store the standard library's source text, read it back from "
        "other processes while writing, and check every record",
        description=_demo.__doc__,
    )
    _demo.add_arguments(demo)
    demo.set_defaults(
        handler=lambda args: _demo.run(args.records, args.readers, args.dir, args.keep)
    )
    return parser


def _report(command: str, message: str) -> int:
    sys.stdout.flush()
    print(f"sharedb {command}: {message}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warning_printer(args.command)
            return int(handler(args))
    except (_tools.ToolError, InvalidArgumentError) as exc:
        return _report(args.command, str(exc))
    except lmdb.Error as exc:
        return _report(args.command, f"{getattr(args, 'path', '')}: {exc}")
    except BrokenPipeError:
        # The reader of stdout went away, as with 'sharedb dump x | head'.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as exc:
        return _report(
            args.command,
            f"{exc.filename or getattr(args, 'path', '')}: {exc.strerror or exc}",
        )
    except KeyboardInterrupt:
        return _report(args.command, "interrupted")


def _warning_printer(command: str) -> Callable[..., None]:
    """Return a warnings.showwarning that prints one line per warning."""

    def show(message: Warning | str, *_args: object, **_kwargs: object) -> None:
        print(f"sharedb {command}: warning: {message}", file=sys.stderr)

    return show


if __name__ == "__main__":
    sys.exit(main())
