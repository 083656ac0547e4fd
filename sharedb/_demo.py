"""The demo job: store the standard library's source text and read it back.

One process writes every line of the interpreter's own standard library
into a store, a batch per transaction, while reader processes read the
store as it grows. Every process rebuilds the same data in memory from
the same files, so each record read is checked against an independent
computation. At the end the readers and the writer check every record.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import shutil
import sys
import sysconfig
import tempfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sharedb import ShareDB

PROGRESS_KEY = "demo:progress"
BATCH_SIZE = 2_000


def source_files() -> list[str]:
    """Return the .py files of the standard library, sorted, as paths
    relative to its directory."""
    root = sysconfig.get_paths()["stdlib"]
    found = []
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = sorted(
            name
            for name in subdirectories
            if name not in ("site-packages", "__pycache__", "dist-packages")
        )
        for name in sorted(files):
            if name.endswith(".py"):
                found.append(os.path.relpath(os.path.join(directory, name), root))
    return found


def build_records(limit: int | None) -> list[tuple[str, list[object]]]:
    """Return up to limit records: one per line of the standard library.

    The key is "<file>:<line number>"; the value is [line number, text,
    CRC-32 of the text]. Undecodable bytes are replaced, so every process
    computes the same text.
    """
    root = sysconfig.get_paths()["stdlib"]
    records: list[tuple[str, list[object]]] = []
    for relative in source_files():
        with open(os.path.join(root, relative), "rb") as file:
            text = file.read().decode("utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), start=1):
            records.append(
                (f"{relative}:{number}", [number, line, zlib.crc32(line.encode())])
            )
            if limit is not None and len(records) >= limit:
                return records
    return records


@dataclass
class ReaderReport:
    """What one reader process did."""

    reads: int
    read_seconds: int | float
    mismatches: int
    records_checked_at_end: int
    final_seconds: float


def batches(
    records: list[tuple[str, list[object]]],
) -> Iterator[list[tuple[str, object]]]:
    """Split records into lists of BATCH_SIZE, each a new list that the
    writer may extend."""
    for start in range(0, len(records), BATCH_SIZE):
        batch: list[tuple[str, object]] = list(records[start : start + BATCH_SIZE])
        yield batch


def read_while_writing(
    path: str, limit: int | None, seed: int, ready: Any, reports: Any
) -> None:
    """Check records at random while the writer runs, then check all, and
    put a ReaderReport on reports."""
    records = build_records(limit)
    expected = dict(records)
    rng = random.Random(seed)
    reads = 0
    mismatches = 0
    store = ShareDB(path)
    ready.wait()
    started = time.perf_counter()
    while True:
        written = store.get(PROGRESS_KEY, 0)
        if written > 0:
            sample = [records[rng.randrange(written)] for _ in range(200)]
            for key, value in sample:
                if store.get(key) != value:
                    mismatches += 1
            keys = [key for key, _ in sample]
            for (key, value), stored in zip(sample, store.multiget(keys)):
                if stored != value:
                    mismatches += 1
            reads += 2 * len(sample)
        if written >= len(records):
            break
        time.sleep(0.001)
    read_seconds = time.perf_counter() - started

    started = time.perf_counter()
    checked = 0
    for key, value in store.items():
        if key == PROGRESS_KEY:
            continue
        checked += 1
        if expected.get(key) != value:
            mismatches += 1
    if checked != len(expected):
        mismatches += abs(len(expected) - checked)
    store.close()
    reports.put(
        ReaderReport(
            reads=reads,
            read_seconds=read_seconds,
            mismatches=mismatches,
            records_checked_at_end=checked,
            final_seconds=time.perf_counter() - started,
        )
    )


def run(
    limit: int | None, reader_count: int, directory: str | None, keep: bool
) -> int:
    """Run the demo and print what it did; return the exit status."""
    work = directory or tempfile.mkdtemp(prefix="sharedb-demo-")
    path = os.path.join(work, "stdlib")
    print(f"ShareDB demo: Python {sys.version.split()[0]}, store {path}.ShareDB/")

    started = time.perf_counter()
    records = build_records(limit)
    source_bytes = sum(len(str(value[1])) for _, value in records)
    print(
        f"read {len(records):,} lines ({source_bytes / 1e6:.1f} MB of text) "
        f"of {len(source_files()):,} standard library files in "
        f"{time.perf_counter() - started:.2f} s"
    )
    if limit is not None and len(records) < limit:
        print(f"note: the standard library has only {len(records):,} lines")

    store = ShareDB(path, reset=True, serial="msgpack")
    store[PROGRESS_KEY] = 0
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(reader_count + 1)
    queue = context.Queue()
    readers = [
        context.Process(
            target=read_while_writing, args=(path, limit, seed, ready, queue)
        )
        for seed in range(reader_count)
    ]
    for reader in readers:
        reader.start()
    # The readers build their own copy of the data first; writing starts
    # when all of them are ready to read.
    ready.wait(timeout=600)
    started = time.perf_counter()
    written = 0
    transactions = 0
    for batch in batches(records):
        written += len(batch)
        batch.append((PROGRESS_KEY, written))
        store.multiset(batch)
        transactions += 1
    write_seconds = time.perf_counter() - started
    print(
        f"wrote {written:,} records in {transactions:,} transactions "
        f"in {write_seconds:.2f} s ({written / write_seconds:,.0f} records/s)"
    )
    reports = [queue.get(timeout=600) for _ in readers]
    for reader in readers:
        reader.join(timeout=60)
    failed_readers = sum(1 for reader in readers if reader.exitcode != 0)

    started = time.perf_counter()
    expected = dict(records)
    mismatches = sum(1 for key, value in records if store[key] != value)
    check_seconds = time.perf_counter() - started
    print(
        f"writer read back {len(expected):,} records with db[key] in "
        f"{check_seconds:.2f} s ({len(expected) / check_seconds:,.0f} gets/s): "
        f"{mismatches} mismatches"
    )
    for number, report in enumerate(reports, start=1):
        rate = report.reads / report.read_seconds if report.read_seconds else 0.0
        print(
            f"reader {number}: {report.reads:,} reads while the writer ran "
            f"({rate:,.0f}/s), then checked {report.records_checked_at_end:,} "
            f"records in {report.final_seconds:.2f} s: "
            f"{report.mismatches} mismatches"
        )
        mismatches += report.mismatches
    mismatches += failed_readers
    size = os.path.getsize(os.path.join(path + ".ShareDB", "data.mdb"))
    print(f"store: {len(store) - 1:,} records, data.mdb {size / 1e6:.1f} MB")
    store.close()
    if not keep and directory is None:
        shutil.rmtree(work)
    if mismatches:
        print(f"FAILED: {mismatches} records differ from the source text")
        return 1
    print("OK: every record matches the source text in every process")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--records",
        type=int,
        default=None,
        help="number of standard library lines to store (default: all, "
        "about 850000 on CPython 3.11)",
    )
    parser.add_argument(
        "--readers",
        type=int,
        default=2,
        help="number of reader processes (default: 2)",
    )
    parser.add_argument(
        "--dir",
        help="directory for the store (default: a new temporary directory, "
        "deleted at the end)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary store at the end"
    )
