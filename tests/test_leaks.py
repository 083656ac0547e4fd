"""Tests that repeated operations leave no memory behind.

Each test runs one kind of operation many times after a warm-up and
compares the resources in use by the process before and after the loop:

- objects tracked by the garbage collector, for leaked objects;
- the reference counts of the objects that the loop passes to sharedb
  (keys, values, None, the store), for leaked references, which add no
  memory;
- memory traced by tracemalloc, for leaked Python allocations;
- bytes that malloc has handed out (glibc's mallinfo2), for leaked C
  allocations that bypass Python's allocator;
- anonymous resident memory (RssAnon in /proc/self/status), for anything
  else. The store's memory map is backed by its file, so it is not part
  of RssAnon;
- open file descriptors and memory maps (lines of /proc/self/maps).

Release builds of CPython lack sys.gettotalrefcount, hence these
measures. Each limit is a fixed allowance for noise plus a little per
operation (see Limits). Default runs do 20,000 operations of each kind,
and slow runs (--run-slow) 1,000,000. ShareDB operations split that count
over the four serializer settings (5,000 or 250,000 each). Opening and
closing costs more, so those loops run fewer times (see
STORE_OPEN_DIVISOR).

Run as a script to print the measurements of each case with its verdict,
for example under valgrind:

    python tests/test_leaks.py --count 1000000 store-set lmdb-get
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import gc
import os
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import pytest

from conftest import SETTING_IDS, SETTINGS
from sharedb import ClosedError, KeyTooLongError, ShareDB, lmdb

DEFAULT_COUNT = 20_000
SLOW_COUNT = 1_000_000

# The records every store and environment starts with. The values
# compress well, so compress=True stores them compressed.
RECORD_COUNT = 8
KEYS = [f"key{index}" for index in range(RECORD_COUNT)]
VALUE = {"text": "value " * 40, "numbers": [1, 2.5, -3]}
RAW_KEYS = [key.encode() for key in KEYS]
RAW_VALUE = b"value " * 40
ABSENT = "absent"
TOO_LONG = "x" * 600

# Objects whose reference counts every loop checks, besides those of its
# store or environment.
COMMON_PROBES: tuple[object, ...] = (
    None,
    True,
    False,
    *KEYS,
    VALUE,
    *VALUE.values(),
    *RAW_KEYS,
    RAW_VALUE,
    ABSENT,
    TOO_LONG,
    KeyError,
    TypeError,
    ClosedError,
    KeyTooLongError,
)

# A sanitizer's allocator keeps freed memory in quarantine and does not
# update mallinfo2, so these measures mean nothing under it.
pytestmark = pytest.mark.skipif(
    bool(os.environ.get("SHAREDB_SANITIZED")),
    reason="memory measures are not valid under a sanitizer",
)


# Measures ------------------------------------------------------------------


class _MallInfo2(ctypes.Structure):
    # struct mallinfo2 of glibc 2.33 and later, all fields size_t.
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _find_mallinfo2() -> Callable[[], _MallInfo2] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        function = libc.mallinfo2
    except (OSError, AttributeError):
        return None
    function.restype = _MallInfo2
    function.argtypes = []
    return function


_mallinfo2 = _find_mallinfo2()


def malloc_in_use() -> int | None:
    """Bytes allocated through malloc and not freed, or None off glibc."""
    if _mallinfo2 is None:
        return None
    info = _mallinfo2()
    # uordblks counts chunks in the heap, hblkhd chunks given their own
    # mmap() because they are large.
    return int(info.uordblks + info.hblkhd)


def anonymous_rss() -> int | None:
    """Resident bytes not backed by a file, or None where unknown."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def open_descriptors() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


def reference_count(probes: Sequence[object]) -> int:
    """Sum of the reference counts of probes."""
    return sum(sys.getrefcount(probe) for probe in probes)


def memory_maps() -> int | None:
    try:
        with open("/proc/self/maps", encoding="ascii", errors="replace") as maps:
            return sum(1 for _ in maps)
    except OSError:
        return None


@dataclass
class Usage:
    """Resources in use by the process at one moment, None where not measurable."""

    objects: int
    references: int
    traced: int
    heap: int | None
    rss: int | None
    descriptors: int | None
    maps: int | None


def measure(probes: Sequence[object]) -> Usage:
    # CPython's method cache keeps up to 4096 attribute names alive, a
    # bounded amount that would otherwise look like growth.
    sys._clear_type_cache()
    gc.collect()
    return Usage(
        objects=len(gc.get_objects()),
        references=reference_count(probes),
        traced=tracemalloc.get_traced_memory()[0],
        heap=malloc_in_use(),
        rss=anonymous_rss(),
        descriptors=open_descriptors(),
        maps=memory_maps(),
    )


@dataclass
class Growth:
    """Differences of Usage between the start and end of a loop."""

    count: int
    objects: int
    references: int
    traced: int
    heap: int | None
    rss: int | None
    descriptors: int | None
    maps: int | None
    seconds: float

    @staticmethod
    def between(before: Usage, after: Usage, count: int, seconds: float) -> Growth:
        def difference(start: int | None, end: int | None) -> int | None:
            if start is None or end is None:
                return None
            return end - start

        return Growth(
            count=count,
            objects=after.objects - before.objects,
            references=after.references - before.references,
            traced=after.traced - before.traced,
            heap=difference(before.heap, after.heap),
            rss=difference(before.rss, after.rss),
            descriptors=difference(before.descriptors, after.descriptors),
            maps=difference(before.maps, after.maps),
            seconds=seconds,
        )

    def describe(self) -> str:
        def per_operation(value: int | None) -> str:
            if value is None:
                return "n/a"
            return f"{value:+d} B ({value / self.count:+.2f} B/op)"

        def difference(value: int | None) -> str:
            return "n/a" if value is None else f"{value:+d}"

        return (
            f"{self.count} ops in {self.seconds:.1f} s: "
            f"objects {self.objects:+d}, references {self.references:+d}, "
            f"traced {per_operation(self.traced)}, "
            f"malloc {per_operation(self.heap)}, RssAnon {per_operation(self.rss)}, "
            f"descriptors {difference(self.descriptors)}, maps {difference(self.maps)}"
        )


# Allowance for allocator noise in the limits of traced and malloc memory.
NOISE_BYTES = 32 * 1024


@dataclass(frozen=True)
class Limits:
    """Largest growth accepted over a loop of count operations.

    Each limit is an allowance for noise plus a little per operation. In
    loops of 5,000 operations or more, a leak of 16 bytes per operation
    exceeds the traced and malloc limits. A leak of one reference per
    operation exceeds the references limit. The allowances are estimates from
    runs with CPython 3.11 on Linux with glibc 2.36, where loops grew by
    less than 10 KiB of traced and malloc memory and by no reference after
    the warm-up.
    """

    count: int

    @property
    def objects(self) -> int:
        return 100 + self.count // 1000

    @property
    def references(self) -> int:
        return 100 + self.count // 1000

    @property
    def traced(self) -> int:
        return NOISE_BYTES + 2 * self.count

    @property
    def heap(self) -> int:
        return NOISE_BYTES + 4 * self.count

    @property
    def rss(self) -> int:
        return 2 * 1024 * 1024 + 8 * self.count

    @property
    def maps(self) -> int:
        return 16 + self.count // 1000


def run_loop(
    operation: Callable[[int], object],
    count: int,
    warmup: int | None = None,
    probes: Sequence[object] = (),
) -> Growth:
    """Run operation(0 .. count - 1) after a warm-up and return the growth.

    The warm-up, by default a tenth of count and at least 1000 calls,
    fills caches and free lists that would otherwise look like growth.
    The reference counts of probes and of COMMON_PROBES are checked.
    """
    if warmup is None:
        warmup = max(count // 10, 1000)
    probes = (*COMMON_PROBES, *probes)
    started_tracing = not tracemalloc.is_tracing()
    if started_tracing:
        tracemalloc.start()
    try:
        for index in range(warmup):
            operation(index)
        # The first call of measure() fills caches of its own, such as
        # those of ctypes, which would show up as growth of the loop.
        measure(probes)
        before = measure(probes)
        start = time.perf_counter()
        for index in range(count):
            operation(index)
        seconds = time.perf_counter() - start
        after = measure(probes)
    finally:
        if started_tracing:
            tracemalloc.stop()
    return Growth.between(before, after, count, seconds)


def check_growth(growth: Growth) -> None:
    limits = Limits(growth.count)
    summary = growth.describe()
    assert growth.objects <= limits.objects, summary
    assert growth.references <= limits.references, summary
    assert growth.traced <= limits.traced, summary
    if growth.heap is not None:
        assert growth.heap <= limits.heap, summary
    if growth.rss is not None:
        assert growth.rss <= limits.rss, summary
    if growth.descriptors is not None:
        assert growth.descriptors <= 0, summary
    if growth.maps is not None:
        assert growth.maps <= limits.maps, summary


def expect_error(
    error: type[BaseException], function: Callable[..., object], *args: object
) -> None:
    """Call function(*args) and check that it raises error."""
    try:
        function(*args)
    except error:
        return
    raise AssertionError(f"{function} did not raise {error.__name__}")


# ShareDB operations --------------------------------------------------------


@dataclass
class StoreSubject:
    """A store filled with the standard records, and a closed instance of it."""

    db: ShareDB
    closed: ShareDB


def store_set(subject: StoreSubject, index: int) -> None:
    subject.db[KEYS[index % RECORD_COUNT]] = VALUE


def store_set_method(subject: StoreSubject, index: int) -> None:
    subject.db.set(KEYS[index % RECORD_COUNT], VALUE)


def store_get(subject: StoreSubject, index: int) -> None:
    assert subject.db[KEYS[index % RECORD_COUNT]] == VALUE


def store_get_method(subject: StoreSubject, index: int) -> None:
    assert subject.db.get(KEYS[index % RECORD_COUNT]) == VALUE
    assert subject.db.get(ABSENT, 0) == 0


def store_contains(subject: StoreSubject, index: int) -> None:
    assert KEYS[index % RECORD_COUNT] in subject.db
    assert ABSENT not in subject.db


def store_multiset(subject: StoreSubject, index: int) -> None:
    subject.db.multiset([(KEYS[index % RECORD_COUNT], VALUE), (KEYS[0], VALUE)])


def store_multiget(subject: StoreSubject, index: int) -> None:
    values = list(subject.db.multiget([KEYS[index % RECORD_COUNT], ABSENT]))
    assert values == [VALUE, None]


def store_has_multikey(subject: StoreSubject, index: int) -> None:
    found = list(subject.db.has_multikey([KEYS[index % RECORD_COUNT], ABSENT]))
    assert found == [True, False]


def store_pop(subject: StoreSubject, index: int) -> None:
    key = KEYS[index % RECORD_COUNT]
    assert subject.db.pop(key) == VALUE
    subject.db[key] = VALUE


def store_pop_default(subject: StoreSubject, index: int) -> None:
    assert subject.db.pop(ABSENT, 0) == 0


def store_delete(subject: StoreSubject, index: int) -> None:
    subject.db["spare"] = VALUE
    del subject.db["spare"]


def store_remove_absent(subject: StoreSubject, index: int) -> None:
    subject.db.remove(ABSENT)


def store_setdefault(subject: StoreSubject, index: int) -> None:
    assert subject.db.setdefault(KEYS[index % RECORD_COUNT], 0) == VALUE


def store_items(subject: StoreSubject, index: int) -> None:
    assert len(list(subject.db.items())) == RECORD_COUNT


def store_keys(subject: StoreSubject, index: int) -> None:
    assert len(list(subject.db.keys())) == RECORD_COUNT


def store_values(subject: StoreSubject, index: int) -> None:
    assert len(list(subject.db.values())) == RECORD_COUNT


def store_reversed(subject: StoreSubject, index: int) -> None:
    assert len(list(reversed(subject.db))) == RECORD_COUNT


def store_iterate_partly(subject: StoreSubject, index: int) -> None:
    # The iterator is dropped with its read transaction still open.
    assert next(iter(subject.db.items()))[1] == VALUE


def store_update(subject: StoreSubject, index: int) -> None:
    # The keyword argument is one of KEYS, so the records stay the same.
    subject.db.update({KEYS[index % RECORD_COUNT]: VALUE}, key0=VALUE)


def store_len(subject: StoreSubject, index: int) -> None:
    assert len(subject.db) == RECORD_COUNT


def store_popitem(subject: StoreSubject, index: int) -> None:
    key, value = subject.db.popitem()
    assert value == VALUE
    subject.db[key] = value


def store_clear(subject: StoreSubject, index: int) -> None:
    subject.db.clear()
    subject.db.multiset((key, VALUE) for key in KEYS)


def store_missing_key_error(subject: StoreSubject, index: int) -> None:
    expect_error(KeyError, subject.db.__getitem__, ABSENT)
    expect_error(KeyError, subject.db.pop, ABSENT)


def store_type_error(subject: StoreSubject, index: int) -> None:
    expect_error(TypeError, subject.db.__setitem__, None, VALUE)
    expect_error(TypeError, subject.db.__setitem__, KEYS[0], None)
    expect_error(TypeError, subject.db.__getitem__, None)


def store_serialize_error(subject: StoreSubject, index: int) -> None:
    # Neither serializer can store a lambda.
    expect_error(TypeError, subject.db.__setitem__, KEYS[0], lambda: None)


def store_key_too_long(subject: StoreSubject, index: int) -> None:
    expect_error(KeyTooLongError, subject.db.__setitem__, TOO_LONG, VALUE)
    expect_error(KeyTooLongError, subject.db.__getitem__, TOO_LONG)


def store_closed_error(subject: StoreSubject, index: int) -> None:
    expect_error(ClosedError, subject.closed.__getitem__, KEYS[0])
    expect_error(ClosedError, subject.closed.__setitem__, KEYS[0], VALUE)
    expect_error(ClosedError, subject.closed.items)


STORE_OPERATIONS: dict[str, Callable[[StoreSubject, int], None]] = {
    "set": store_set,
    "set-method": store_set_method,
    "get": store_get,
    "get-method": store_get_method,
    "contains": store_contains,
    "multiset": store_multiset,
    "multiget": store_multiget,
    "has-multikey": store_has_multikey,
    "pop": store_pop,
    "pop-default": store_pop_default,
    "delete": store_delete,
    "remove-absent": store_remove_absent,
    "setdefault": store_setdefault,
    "items": store_items,
    "keys": store_keys,
    "values": store_values,
    "reversed": store_reversed,
    "iterate-partly": store_iterate_partly,
    "update": store_update,
    "len": store_len,
    "popitem": store_popitem,
    "clear": store_clear,
    "missing-key-error": store_missing_key_error,
    "type-error": store_type_error,
    "serialize-error": store_serialize_error,
    "key-too-long-error": store_key_too_long,
    "closed-error": store_closed_error,
}


def open_store_subject(directory: str, serial: str, compress: bool) -> StoreSubject:
    path = os.path.join(directory, "store")
    db = ShareDB(path, serial=serial, compress=compress)
    db.multiset((key, VALUE) for key in KEYS)
    # A second instance on the same store, closed: the first one stays open.
    closed = ShareDB(path)
    closed.close()
    return StoreSubject(db, closed)


def measure_store_operation(
    directory: str, name: str, serial: str, compress: bool, count: int
) -> Growth:
    subject = open_store_subject(directory, serial, compress)
    operation = STORE_OPERATIONS[name]
    probes = (subject.db, subject.closed)
    try:
        return run_loop(lambda index: operation(subject, index), count, probes=probes)
    finally:
        subject.db.close()


def measure_store_open_close(
    directory: str, serial: str, compress: bool, count: int
) -> Growth:
    path = os.path.join(directory, "reopened")
    ShareDB(path, serial=serial, compress=compress).close()

    def open_and_close(index: int) -> None:
        db = ShareDB(path)
        assert len(db) == 0
        db.close()

    return run_loop(open_and_close, count, warmup=max(count // 10, 50))


# sharedb.lmdb operations ---------------------------------------------------


@dataclass
class EnvironmentSubject:
    """An environment with the standard records in its main and a named
    database, and a closed environment and an ended transaction."""

    env: lmdb.Environment
    named: lmdb.Database
    closed_env: lmdb.Environment
    ended_txn: lmdb.Transaction
    _reader: lmdb.Transaction | None = field(default=None)

    @property
    def reader(self) -> lmdb.Transaction:
        """A read transaction that lasts for the whole loop.

        It begins on first use only: a long reader keeps LMDB from reusing
        the pages that later commits free, so the write loops do without.
        """
        if self._reader is None:
            self._reader = self.env.begin()
        return self._reader

    def close(self) -> None:
        if self._reader is not None:
            self._reader.abort()
        self.env.close()


def lmdb_begin_abort(subject: EnvironmentSubject, index: int) -> None:
    subject.env.begin().abort()


def lmdb_read_transaction(subject: EnvironmentSubject, index: int) -> None:
    with subject.env.begin() as txn:
        assert txn.get(RAW_KEYS[index % RECORD_COUNT]) == RAW_VALUE


def lmdb_dropped_transaction(subject: EnvironmentSubject, index: int) -> None:
    # Neither committed nor aborted: deallocation ends it.
    txn = subject.env.begin()
    assert txn.get(RAW_KEYS[0]) == RAW_VALUE


def lmdb_put_commit(subject: EnvironmentSubject, index: int) -> None:
    with subject.env.begin(write=True) as txn:
        assert txn.put(RAW_KEYS[index % RECORD_COUNT], RAW_VALUE)


def lmdb_put_abort(subject: EnvironmentSubject, index: int) -> None:
    txn = subject.env.begin(write=True)
    txn.put(RAW_KEYS[index % RECORD_COUNT], b"discarded")
    txn.abort()


def lmdb_nested_commit(subject: EnvironmentSubject, index: int) -> None:
    with subject.env.begin(write=True) as parent:
        with subject.env.begin(write=True, parent=parent) as child:
            child.put(RAW_KEYS[index % RECORD_COUNT], RAW_VALUE)


def lmdb_get(subject: EnvironmentSubject, index: int) -> None:
    assert subject.reader.get(RAW_KEYS[index % RECORD_COUNT]) == RAW_VALUE
    assert subject.reader.get(b"absent", b"0") == b"0"


def lmdb_get_named(subject: EnvironmentSubject, index: int) -> None:
    key = RAW_KEYS[index % RECORD_COUNT]
    assert subject.reader.get(key, db=subject.named) == RAW_VALUE


def lmdb_getmulti(subject: EnvironmentSubject, index: int) -> None:
    values = subject.reader.getmulti([RAW_KEYS[index % RECORD_COUNT], b"absent"])
    assert values == [RAW_VALUE, None]


def lmdb_putmulti(subject: EnvironmentSubject, index: int) -> None:
    pairs = [(RAW_KEYS[index % RECORD_COUNT], RAW_VALUE), (RAW_KEYS[0], RAW_VALUE)]
    with subject.env.begin(write=True) as txn:
        assert txn.putmulti(pairs) == (2, 2)


def lmdb_replace(subject: EnvironmentSubject, index: int) -> None:
    with subject.env.begin(write=True) as txn:
        assert txn.replace(RAW_KEYS[index % RECORD_COUNT], RAW_VALUE) == RAW_VALUE


def lmdb_pop(subject: EnvironmentSubject, index: int) -> None:
    with subject.env.begin(write=True) as txn:
        txn.put(b"spare", RAW_VALUE)
        assert txn.pop(b"spare") == RAW_VALUE
        assert txn.pop(b"absent") is None


def lmdb_delete(subject: EnvironmentSubject, index: int) -> None:
    with subject.env.begin(write=True) as txn:
        txn.put(b"spare", RAW_VALUE)
        assert txn.delete(b"spare")
        assert not txn.delete(b"absent")


def lmdb_cursor_iterate(subject: EnvironmentSubject, index: int) -> None:
    with subject.reader.cursor(db=subject.named) as cursor:
        assert len(list(cursor)) == RECORD_COUNT


def lmdb_cursor_iternext_keys(subject: EnvironmentSubject, index: int) -> None:
    with subject.reader.cursor(db=subject.named) as cursor:
        assert len(list(cursor.iternext(values=False))) == RECORD_COUNT


def lmdb_cursor_iterprev(subject: EnvironmentSubject, index: int) -> None:
    with subject.reader.cursor(db=subject.named) as cursor:
        cursor.last()
        assert len(list(cursor.iterprev())) == RECORD_COUNT


def lmdb_cursor_dropped(subject: EnvironmentSubject, index: int) -> None:
    # Neither the cursor nor its iterator is closed before deallocation.
    assert next(iter(subject.reader.cursor(db=subject.named)))[1] == RAW_VALUE


def lmdb_cursor_navigate(subject: EnvironmentSubject, index: int) -> None:
    cursor = subject.reader.cursor(db=subject.named)
    assert cursor.set_key(RAW_KEYS[index % RECORD_COUNT])
    assert cursor.item()[1] == RAW_VALUE
    assert cursor.set_range(b"key")
    assert cursor.first()
    assert cursor.next()
    assert cursor.last()
    assert cursor.prev()
    assert cursor.key() in RAW_KEYS
    assert cursor.value() == RAW_VALUE
    assert not cursor.set_key(b"absent")
    cursor.close()


def lmdb_cursor_put_delete(subject: EnvironmentSubject, index: int) -> None:
    with subject.env.begin(write=True) as txn:
        with txn.cursor() as cursor:
            assert cursor.put(b"spare", RAW_VALUE)
            assert cursor.set_key(b"spare")
            assert cursor.delete()


def lmdb_stat(subject: EnvironmentSubject, index: int) -> None:
    assert subject.env.stat()["entries"] == RECORD_COUNT + 1
    assert subject.env.info()["map_size"] > 0
    assert subject.reader.stat(db=subject.named)["entries"] == RECORD_COUNT


def lmdb_open_db(subject: EnvironmentSubject, index: int) -> None:
    assert subject.env.open_db(b"named").name == b"named"


def lmdb_type_error(subject: EnvironmentSubject, index: int) -> None:
    expect_error(TypeError, subject.reader.get, "text")
    expect_error(TypeError, subject.reader.get, index)


def lmdb_bad_key_error(subject: EnvironmentSubject, index: int) -> None:
    with subject.env.begin(write=True) as txn:
        expect_error(lmdb.BadValsizeError, txn.put, b"", RAW_VALUE)
        expect_error(lmdb.BadValsizeError, txn.put, TOO_LONG.encode(), RAW_VALUE)


def lmdb_readonly_error(subject: EnvironmentSubject, index: int) -> None:
    expect_error(lmdb.ReadonlyError, subject.reader.put, b"key", RAW_VALUE)


def lmdb_closed_error(subject: EnvironmentSubject, index: int) -> None:
    expect_error(ClosedError, subject.ended_txn.get, RAW_KEYS[0])
    expect_error(ClosedError, subject.ended_txn.cursor)
    expect_error(ClosedError, subject.closed_env.begin)


LMDB_OPERATIONS: dict[str, Callable[[EnvironmentSubject, int], None]] = {
    "begin-abort": lmdb_begin_abort,
    "read-transaction": lmdb_read_transaction,
    "dropped-transaction": lmdb_dropped_transaction,
    "put-commit": lmdb_put_commit,
    "put-abort": lmdb_put_abort,
    "nested-commit": lmdb_nested_commit,
    "get": lmdb_get,
    "get-named": lmdb_get_named,
    "getmulti": lmdb_getmulti,
    "putmulti": lmdb_putmulti,
    "replace": lmdb_replace,
    "pop": lmdb_pop,
    "delete": lmdb_delete,
    "cursor-iterate": lmdb_cursor_iterate,
    "cursor-iternext-keys": lmdb_cursor_iternext_keys,
    "cursor-iterprev": lmdb_cursor_iterprev,
    "cursor-dropped": lmdb_cursor_dropped,
    "cursor-navigate": lmdb_cursor_navigate,
    "cursor-put-delete": lmdb_cursor_put_delete,
    "stat": lmdb_stat,
    "open-db": lmdb_open_db,
    "type-error": lmdb_type_error,
    "bad-key-error": lmdb_bad_key_error,
    "readonly-error": lmdb_readonly_error,
    "closed-error": lmdb_closed_error,
}


def open_environment_subject(directory: str) -> EnvironmentSubject:
    # sync=False: the loops commit many times, and durability is not
    # what they test.
    env = lmdb.Environment(
        os.path.join(directory, "env"), map_size=1 << 26, max_dbs=2, sync=False
    )
    named = env.open_db(b"named")
    with env.begin(write=True) as txn:
        for key in RAW_KEYS:
            txn.put(key, RAW_VALUE)
            txn.put(key, RAW_VALUE, db=named)
    closed_env = lmdb.Environment(os.path.join(directory, "closed"), map_size=1 << 20)
    closed_env.close()
    ended_txn = env.begin()
    ended_txn.abort()
    return EnvironmentSubject(env, named, closed_env, ended_txn)


def measure_lmdb_operation(directory: str, name: str, count: int) -> Growth:
    subject = open_environment_subject(directory)
    operation = LMDB_OPERATIONS[name]
    probes = (subject.env, subject.named, subject.closed_env, subject.ended_txn)
    try:
        return run_loop(lambda index: operation(subject, index), count, probes=probes)
    finally:
        subject.close()


def measure_environment_open_close(directory: str, count: int) -> Growth:
    path = os.path.join(directory, "reopened")

    def open_and_close(index: int) -> None:
        env = lmdb.Environment(path, map_size=1 << 20)
        with env.begin() as txn:
            assert txn.get(b"absent") is None
        env.close()

    return run_loop(open_and_close, count, warmup=max(count // 10, 50))


# Tests ---------------------------------------------------------------------

COUNTS = [
    pytest.param(DEFAULT_COUNT, id="20k"),
    pytest.param(SLOW_COUNT, id="1M", marks=pytest.mark.slow),
]
# ShareDB operations split the count of a kind over the four serializer
# settings, which keeps the slow run near 15 minutes on 2 cores.
STORE_COUNTS = [
    pytest.param(DEFAULT_COUNT // len(SETTINGS), id="5k"),
    pytest.param(SLOW_COUNT // len(SETTINGS), id="250k", marks=pytest.mark.slow),
]

# Opening costs far more than the other operations (about 5 ms for a
# store and 0.3 ms for an environment on a 2-core Linux machine), so the
# open and close loops run count // divisor times, with a short warm-up.
STORE_OPEN_DIVISOR = 200
ENVIRONMENT_OPEN_DIVISOR = 20


@pytest.mark.parametrize("count", STORE_COUNTS)
@pytest.mark.parametrize(("serial", "compress"), SETTINGS, ids=SETTING_IDS)
@pytest.mark.parametrize("name", list(STORE_OPERATIONS))
def test_store_operation_no_growth(tmp_path, name, serial, compress, count):
    growth = measure_store_operation(str(tmp_path), name, serial, compress, count)
    print(growth.describe())

    check_growth(growth)


@pytest.mark.parametrize("count", COUNTS)
@pytest.mark.parametrize(("serial", "compress"), SETTINGS, ids=SETTING_IDS)
def test_store_open_close_no_growth(tmp_path, serial, compress, count):
    opens = count // STORE_OPEN_DIVISOR
    growth = measure_store_open_close(str(tmp_path), serial, compress, opens)
    print(growth.describe())

    check_growth(growth)


@pytest.mark.parametrize("count", COUNTS)
@pytest.mark.parametrize("name", list(LMDB_OPERATIONS))
def test_lmdb_operation_no_growth(tmp_path, name, count):
    growth = measure_lmdb_operation(str(tmp_path), name, count)
    print(growth.describe())

    check_growth(growth)


@pytest.mark.parametrize("count", COUNTS)
def test_environment_open_close_no_growth(tmp_path, count):
    opens = count // ENVIRONMENT_OPEN_DIVISOR
    growth = measure_environment_open_close(str(tmp_path), opens)
    print(growth.describe())

    check_growth(growth)


def test_check_growth_catches_leak():
    """A loop that keeps 16 bytes per operation fails the check."""
    retained: list[bytes] = []

    def leak(index: int) -> None:
        retained.append(bytes(16))

    growth = run_loop(leak, DEFAULT_COUNT)

    with pytest.raises(AssertionError):
        check_growth(growth)


def test_check_growth_catches_leaked_reference():
    """A loop that leaks a reference to VALUE per operation fails the check,
    though it allocates nothing."""
    prototype = ctypes.PYFUNCTYPE(None, ctypes.py_object)
    increment = prototype(("Py_IncRef", ctypes.pythonapi))
    decrement = prototype(("Py_DecRef", ctypes.pythonapi))
    calls = 0

    def leak(index: int) -> None:
        nonlocal calls
        increment(VALUE)
        calls += 1

    try:
        growth = run_loop(leak, DEFAULT_COUNT)
    finally:
        for _ in range(calls):
            decrement(VALUE)

    assert growth.references >= DEFAULT_COUNT, growth.describe()
    assert growth.traced <= Limits(DEFAULT_COUNT).traced, growth.describe()
    with pytest.raises(AssertionError):
        check_growth(growth)


@pytest.mark.skipif(_mallinfo2 is None, reason="needs mallinfo2 (glibc 2.33 or later)")
def test_check_growth_catches_malloc_leak():
    """A loop that keeps a 16-byte malloc() block per operation fails the
    check, though tracemalloc traces none of it."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    malloc = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_size_t)(("malloc", libc))
    free = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(("free", libc))
    warmup = 1000
    # Allocated before the loop, so that storing the pointers adds nothing.
    pointers = (ctypes.c_void_p * (warmup + DEFAULT_COUNT))()
    calls = 0

    def leak(index: int) -> None:
        nonlocal calls
        pointers[calls] = malloc(16)
        calls += 1

    try:
        growth = run_loop(leak, DEFAULT_COUNT, warmup=warmup)
    finally:
        for pointer in pointers[:calls]:
            free(pointer)

    assert growth.heap is not None
    assert growth.heap >= 16 * DEFAULT_COUNT, growth.describe()
    assert growth.traced <= Limits(DEFAULT_COUNT).traced, growth.describe()
    with pytest.raises(AssertionError):
        check_growth(growth)


# Script --------------------------------------------------------------------


def _script_cases() -> Iterator[tuple[str, Callable[[str, int], Growth]]]:
    """Yield (name, measure(directory, count)) of every case."""
    for name in STORE_OPERATIONS:
        for (serial, compress), setting in zip(SETTINGS, SETTING_IDS):
            yield (
                f"store-{name}[{setting}]",
                lambda directory, count, name=name, serial=serial, compress=compress: (
                    measure_store_operation(directory, name, serial, compress, count)
                ),
            )
    for (serial, compress), setting in zip(SETTINGS, SETTING_IDS):
        yield (
            f"store-open-close[{setting}]",
            lambda directory, count, serial=serial, compress=compress: (
                measure_store_open_close(
                    directory, serial, compress, count // STORE_OPEN_DIVISOR
                )
            ),
        )
    for name in LMDB_OPERATIONS:
        yield (
            f"lmdb-{name}",
            lambda directory, count, name=name: measure_lmdb_operation(
                directory, name, count
            ),
        )
    yield (
        "lmdb-open-close",
        lambda directory, count: measure_environment_open_close(
            directory, count // ENVIRONMENT_OPEN_DIVISOR
        ),
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Print the memory growth of repeated operations of sharedb."
    )
    parser.add_argument(
        "--count",
        type=int,
        default=DEFAULT_COUNT,
        help="operations per case, divided for the open and close cases "
        "(default %(default)s)",
    )
    parser.add_argument(
        "cases",
        nargs="*",
        help="case names or prefixes, such as store-set or lmdb-get (default: all)",
    )
    arguments = parser.parse_args()
    failed = 0
    for case, run in _script_cases():
        selected = not arguments.cases or any(
            case.startswith(prefix) for prefix in arguments.cases
        )
        if not selected:
            continue
        with tempfile.TemporaryDirectory() as directory:
            growth = run(directory, arguments.count)
        try:
            check_growth(growth)
            verdict = "ok"
        except AssertionError:
            verdict = "OVER LIMIT"
            failed += 1
        print(f"{case}: {growth.describe()} {verdict}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
