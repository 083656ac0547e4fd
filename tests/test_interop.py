"""Tests against outside LMDB tools: Debian's lmdb-utils (mdb_dump,
mdb_load, mdb_stat) and the lmdb package from PyPI.

Stores written by ShareDB grow data.mdb with the data through a writable
map, so the file is far smaller than the map size recorded in it. The
outside tools must read it all the same. The lmdb-utils tests are
skipped where the tools are not installed (apt-get install lmdb-utils),
and the lmdb package tests where it is not importable.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from conftest import child_environment, running_writer

from sharedb import ShareDB, lmdb

TIMEOUT = 60

# CI sets SHAREDB_REQUIRE_INTEROP after installing the outside tools, so
# that a missing tool fails the run there instead of skipping.
REQUIRED = bool(os.environ.get("SHAREDB_REQUIRE_INTEROP"))
TOOLS_MISSING = (
    shutil.which("mdb_dump") is None
    or shutil.which("mdb_load") is None
    or shutil.which("mdb_stat") is None
)

if REQUIRED and TOOLS_MISSING:
    raise RuntimeError(
        "SHAREDB_REQUIRE_INTEROP is set but mdb_dump, mdb_load or mdb_stat is "
        "not on PATH; install Debian's lmdb-utils"
    )

needs_lmdb_utils = pytest.mark.skipif(
    TOOLS_MISSING,
    reason="Debian's lmdb-utils (mdb_dump, mdb_load, mdb_stat) are not installed",
)

# Records without a backslash byte: mdb_dump -p of LMDB 0.9.24 (Debian 12)
# writes a backslash unescaped, so only such records give the same print
# output from every version.
RECORDS = {
    "name": "Ada Lovelace",
    "numbers": list(range(50)),
    "long": "x" * 9000,  # an overflow page
    ("tuple", 1): {"nested": [1.5, None, True]},
    b"\x00\xff bytes": b"\x01\x02",
}


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        list(args), input=stdin, capture_output=True, check=False, timeout=TIMEOUT
    )


def run_cli(
    *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "sharedb", *args],
        input=stdin,
        capture_output=True,
        check=False,
        timeout=TIMEOUT,
        env=child_environment(),
    )


def checked(result: subprocess.CompletedProcess[bytes]) -> bytes:
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout


@pytest.fixture
def store(tmp_path: Path) -> str:
    """The directory of a ShareDB store holding RECORDS and some
    deleted records, so that it has free pages."""
    db = ShareDB(str(tmp_path / "store"))
    db.multiset((f"filler-{i:05d}", "f" * 100) for i in range(3000))
    db.multiremove(f"filler-{i:05d}" for i in range(0, 3000, 3))
    db.update(RECORDS)
    db.close()
    return str(tmp_path / "store.ShareDB")


@pytest.fixture
def py_lmdb() -> ModuleType:
    if REQUIRED:
        import lmdb as module
    else:
        module = pytest.importorskip("lmdb", reason="the lmdb package is not installed")
    return module


def read_records(path: str, name: bytes | None = None) -> list[tuple[bytes, bytes]]:
    """Read every record of path with sharedb.lmdb."""
    with lmdb.Environment(path, readonly=True, create=False, max_dbs=4) as env:
        db = None if name is None else env.open_db(name, create=False)
        with env.begin() as txn:
            return list(txn.cursor(db))


def mdb_stat_figures(output: bytes, section: str = "Main DB") -> dict[str, int]:
    """Parse one 'Status of ...' section of mdb_stat's output."""
    text = output.decode()
    start = text.index(f"Status of {section}")
    block = text[start:].split("\n")[1:6]
    figures = {}
    for line in block:
        label, _, value = line.strip().partition(": ")
        figures[label] = int(value)
    return figures


# mdb_dump and mdb_load ---------------------------------------------------------


@needs_lmdb_utils
def test_mdb_dump_reads_our_store(store: str) -> None:
    output = checked(run("mdb_dump", store))
    records = read_records(store)
    lines = output.split(b"\n")
    assert lines[7:-2] == [
        b" " + data.hex().encode() for record in records for data in record
    ]


@needs_lmdb_utils
def test_mdb_dump_equals_our_dump(store: str) -> None:
    theirs = checked(run("mdb_dump", store))
    ours = checked(run_cli("dump", store))
    assert ours == theirs


@needs_lmdb_utils
def test_mdb_dump_printable_equals_ours(store: str) -> None:
    theirs = checked(run("mdb_dump", "-p", store))
    ours = checked(run_cli("dump", "-p", store))
    assert b"\\" not in b"".join(k + v for k, v in read_records(store))
    assert ours == theirs


@needs_lmdb_utils
def test_mdb_load_reads_our_dump(store: str, tmp_path: Path) -> None:
    for flags in ([], ["-p"]):
        target = tmp_path / f"loaded{len(flags)}"
        target.mkdir()
        dump = checked(run_cli("dump", *flags, store))
        checked(run("mdb_load", str(target), stdin=dump))
        assert read_records(str(target)) == read_records(store), flags


@needs_lmdb_utils
def test_mdb_load_reads_backslash_bytevalue(tmp_path: Path) -> None:
    # Print format cannot carry a backslash to mdb_load 0.9.24, which
    # mangles the escape "\\" (LMDB ITS#9068, fixed after that release).
    # Bytevalue format carries every byte.
    source = tmp_path / "source"
    with (
        lmdb.Environment(str(source), map_size=1 << 22) as env,
        env.begin(write=True) as txn,
    ):
        txn.put(b"back\\slash", b"\\\\ and \\0a")
    dump = checked(run_cli("dump", str(source)))
    target = tmp_path / "target"
    target.mkdir()
    checked(run("mdb_load", str(target), stdin=dump))
    assert read_records(str(target)) == read_records(str(source))


@needs_lmdb_utils
def test_our_load_reads_mdb_dump(store: str, tmp_path: Path) -> None:
    for flags in ([], ["-p"]):
        dump = checked(run("mdb_dump", *flags, store))
        target = str(tmp_path / f"copy{len(flags)}")
        checked(run_cli("load", target, stdin=dump))
        copy = ShareDB(target)
        records = dict(copy.items())
        copy.close()
        assert records["name"] == "Ada Lovelace", flags
        assert len(records) == 2000 + len(RECORDS), flags


@needs_lmdb_utils
def test_mdb_load_database_read_by_sharedb(store: str, tmp_path: Path) -> None:
    target = tmp_path / "by_mdb_load"
    target.mkdir()
    checked(run("mdb_load", str(target), stdin=checked(run("mdb_dump", store))))
    assert read_records(str(target)) == read_records(store)
    assert checked(run_cli("dump", str(target))) == checked(
        run("mdb_dump", str(target))
    )


@needs_lmdb_utils
def test_mdb_load_named_databases(tmp_path: Path) -> None:
    dump = b"".join(
        b"VERSION=3\nformat=print\ndatabase=" + name + b"\ntype=btree\n"
        b"mapsize=1048576\nmaxreaders=126\ndb_pagesize=4096\nHEADER=END\n"
        b" key\n value " + name + b"\nDATA=END\n"
        for name in (b"first", b"second")
    )
    target = tmp_path / "named"
    target.mkdir()
    checked(run("mdb_load", str(target), stdin=dump))
    ours = checked(run_cli("dump", "-a", "-p", str(target)))
    assert read_records(str(target), b"second") == [(b"key", b"value second")]
    assert ours == checked(run("mdb_dump", "-a", "-p", str(target)))
    assert ours == dump


@needs_lmdb_utils
def test_mdb_stat_agrees_with_stat(store: str) -> None:
    figures = json.loads(checked(run_cli("stat", store, "--json")))
    theirs = mdb_stat_figures(checked(run("mdb_stat", store)))
    environment = checked(run("mdb_stat", "-e", store)).decode()
    free = checked(run("mdb_stat", "-ff", store)).decode()
    assert theirs["Entries"] == figures["entries"]
    assert theirs["Tree depth"] == figures["depth"]
    assert theirs["Branch pages"] == figures["branch_pages"]
    assert theirs["Leaf pages"] == figures["leaf_pages"]
    assert theirs["Overflow pages"] == figures["overflow_pages"]
    assert f"Page size: {figures['page_size']}\n" in environment
    assert f"Map size: {figures['map_size']}\n" in environment
    assert f"Number of pages used: {figures['last_pgno'] + 1}\n" in environment
    assert f"Last transaction ID: {figures['last_txnid']}\n" in environment
    assert f"Max readers: {figures['max_readers']}\n" in environment
    assert re.search(rf"Free pages: {figures['free_pages']}\n", free)


WRITER = """
import sys, time
from sharedb import ShareDB
store = ShareDB(sys.argv[1])
print("ready", flush=True)
batch = 0
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    store.multiset((f"w-{batch:06d}-{i:03d}", "v" * 300) for i in range(100))
    batch += 1
"""


@pytest.fixture
def busy_store(store: str) -> Iterator[str]:
    """The store, written by another process while the test runs."""
    with running_writer(WRITER, store):
        yield store


@needs_lmdb_utils
def test_mdb_dump_reads_busy_store(busy_store: str) -> None:
    output = checked(run("mdb_dump", busy_store))
    environment = checked(run("mdb_stat", "-e", busy_store))
    assert b"Number of readers used: " in environment
    assert output.endswith(b"DATA=END\n")
    assert output.count(b"\n") >= 9 + 2 * 2000


# The lmdb package ------------------------------------------------------------


def test_py_lmdb_reads_our_store(store: str, py_lmdb: ModuleType) -> None:
    env = py_lmdb.open(store, readonly=True, lock=True)
    try:
        with env.begin() as txn:
            theirs = list(txn.cursor())
        entries = env.stat()["entries"]
    finally:
        env.close()
    assert theirs == read_records(store)
    assert entries == 2000 + len(RECORDS)


def test_py_lmdb_database_read_by_sharedb(tmp_path: Path, py_lmdb: ModuleType) -> None:
    path = str(tmp_path / "by_py_lmdb")
    env = py_lmdb.open(path, map_size=1 << 24, max_dbs=2)
    named = env.open_db(b"named")
    # Random values without a backslash, which mdb_dump 0.9.24 -p writes
    # unescaped.
    records = [
        (b"key-%04d" % i, os.urandom(i * 7 % 5000).replace(b"\\", b"/"))
        for i in range(1, 400)
    ]
    with env.begin(write=True) as txn:
        for key, value in records:
            txn.put(key, value)
            txn.put(key, value[::-1], db=named)
    env.close()
    assert read_records(path)[:-1] == records
    assert read_records(path, b"named") == [(k, v[::-1]) for k, v in records]
    if shutil.which("mdb_dump") is not None:
        for flags in (["-a"], ["-s", "named"], ["-p", "-a"]):
            theirs = checked(run("mdb_dump", *flags, path))
            assert checked(run_cli("dump", *flags, path)).endswith(theirs), flags


def test_py_lmdb_reads_our_load(
    store: str, tmp_path: Path, py_lmdb: ModuleType
) -> None:
    target = str(tmp_path / "plain")
    checked(run_cli("load", "--plain", target, stdin=checked(run_cli("dump", store))))
    env = py_lmdb.open(target, readonly=True)
    try:
        with env.begin() as txn:
            theirs = list(txn.cursor())
    finally:
        env.close()
    assert theirs == read_records(store)
