"""One system's side of the benchmark, run in that system's own interpreter.

bench.py starts this script with the Python of the system under test and
writes one JSON job on its first stdin line. The script prints JSON lines
on stdout: its result as the last line, and for the "reader" job a
{"ready": true} line first, after which it waits for one more stdin line
before it starts the timed reads. Timings are taken inside this process,
so process startup and imports are never part of a measured loop.

Jobs ("mode"):
    round   load a new store and time every operation once
    make    load a store and leave it for reader and rss jobs
    reader  time random gets over an existing store
    rss     measure resident memory before and after random gets
    big     time the load and random gets of a large store
    flags   return the LMDB flags ShareDB opens a store with

Every timed loop is written once, below, and runs unchanged on every
system; only the store object differs.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import resource
import shutil
import sys
import time
from collections.abc import Callable
from typing import Any

import _workload as workload

# Map size for the lmdb binding, in bytes: far more than the 10M-record run
# needs, at about 50 bytes a record on disk. Without writemap LMDB only
# reserves this much address space and the file grows as pages are used.
# With writemap the lmdb package's LMDB makes the file this large at once,
# as a sparse file.
LMDB_MAP_SIZE = 1 << 36

# -- Systems -----------------------------------------------------------------


class LmdbMsgpackStore:
    """A dict-like store over the lmdb package and msgpack.

    This is the code a competent user writes by hand: one read transaction
    per lookup, one write transaction per single write, one transaction for
    a batch, a cursor for scans and env.stat() for the length. Keys and
    values go through one cached msgpack.Packer, which returns the same
    bytes as msgpack.packb(obj, use_bin_type=True) without building a
    Packer per call. Like ShareDB, deleting an absent key is not an error
    and multiget returns None for absent keys.
    """

    def __init__(self, path: str, create: bool, writemap: bool = False) -> None:
        import lmdb
        import msgpack

        if create:
            shutil.rmtree(path, ignore_errors=True)
        # sync=False is LMDB's MDB_NOSYNC, as ShareDB uses with its default
        # durable=False: commits reach the page cache, not the disk. This
        # store never calls env.sync(), which ShareDB runs every 100,000
        # writes and at close.
        self.env = lmdb.open(
            path,
            map_size=LMDB_MAP_SIZE,
            sync=False,
            readahead=False,
            writemap=writemap,
            max_readers=256,
        )
        self._begin = self.env.begin
        self._stat = self.env.stat
        self._pack = msgpack.Packer(use_bin_type=True).pack
        self._unpackb = msgpack.unpackb

    def __getitem__(self, key: Any) -> Any:
        # py-lmdb ends the read transaction when CPython frees it, right
        # after the get. That ends the snapshot as early as a with block
        # and was faster with lmdb 3.0.0 on CPython 3.11.
        raw = self._begin().get(self._pack(key))
        if raw is None:
            raise KeyError(key)
        return self._unpackb(raw, raw=False)

    def get(self, key: Any, default: Any = None) -> Any:
        raw = self._begin().get(self._pack(key))
        if raw is None:
            return default
        return self._unpackb(raw, raw=False)

    def __contains__(self, key: Any) -> bool:
        return self._begin().get(self._pack(key)) is not None

    def __setitem__(self, key: Any, value: Any) -> None:
        pack = self._pack
        with self._begin(write=True) as txn:
            txn.put(pack(key), pack(value))

    def __delitem__(self, key: Any) -> None:
        with self._begin(write=True) as txn:
            txn.delete(self._pack(key))

    def __len__(self) -> int:
        return self._stat()["entries"]

    def multiset(self, pairs: Any) -> None:
        pack = self._pack
        with self._begin(write=True) as txn:
            txn.cursor().putmulti((pack(k), pack(v)) for k, v in pairs)

    def multiget(self, keys: Any) -> list:
        pack = self._pack
        unpackb = self._unpackb
        with self._begin() as txn:
            get = txn.get
            return [
                None if (raw := get(pack(key))) is None else unpackb(raw, raw=False)
                for key in keys
            ]

    def items(self) -> list:
        unpackb = self._unpackb
        with self._begin() as txn:
            return [
                (unpackb(k, raw=False), unpackb(v, raw=False)) for k, v in txn.cursor()
            ]

    def close(self) -> None:
        self.env.close()


def open_store(system: str, path: str, create: bool) -> Any:
    """Open the store of system at path; create=True starts it empty."""
    if system == "sharedb":
        from sharedb import ShareDB

        return ShareDB(path, reset=create, serial="msgpack")
    if system == "sharedb202":
        from ShareDB import ShareDB

        return ShareDB(path, reset=create, serial="msgpack")
    if system == "lmdb":
        return LmdbMsgpackStore(path, create)
    if system == "lmdb_wm":
        return LmdbMsgpackStore(path, create, writemap=True)
    if system == "dict":
        return {}
    raise ValueError(f"unknown system {system!r}")


def close_store(store: Any) -> None:
    if not isinstance(store, dict):
        store.close()


def versions(system: str) -> dict[str, str]:
    """Return the versions of the packages this system runs on."""
    from importlib import metadata

    found = {"python": platform.python_version()}
    if system == "sharedb":
        import sharedb

        found["sharedb"] = sharedb.__version__
        found["sharedb_path"] = os.path.dirname(sharedb.__file__)
    packages = {
        "sharedb": ("msgpack",),
        "sharedb202": ("sharedb", "lmdb", "msgpack"),
        "lmdb": ("lmdb", "msgpack"),
        "lmdb_wm": ("lmdb", "msgpack"),
    }
    for name in packages.get(system, ()):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


# -- Timed loops ---------------------------------------------------------------
#
# dict has no multiset or multiget, so it runs the closest dict idiom for
# those two. Every other loop is the same code for every system.


def do_load(store: Any, pairs: list) -> None:
    if isinstance(store, dict):
        store.update(pairs)
    else:
        store.multiset(pairs)


def do_get(store: Any, keys: list) -> list:
    return [store[k] for k in keys]


def do_get_method(store: Any, keys: list) -> list:
    return [store.get(k) for k in keys]


def do_contains(store: Any, keys: list) -> list:
    return [k in store for k in keys]


def do_multiget(store: Any, keys: list) -> list:
    if isinstance(store, dict):
        return list(map(store.get, keys))
    return list(store.multiget(keys))


def do_items(store: Any) -> list:
    return list(store.items())


def do_len(store: Any, calls: int) -> int:
    length = -1
    for _ in range(calls):
        length = len(store)
    return length


def do_set(store: Any, pairs: list) -> None:
    for k, v in pairs:
        store[k] = v


def do_delete(store: Any, keys: list) -> None:
    for k in keys:
        del store[k]


def timed(function: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """Run function(*args) with the garbage collector off; return its
    result and the seconds it took."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        result = function(*args)
        seconds = time.perf_counter() - start
    finally:
        gc.enable()
    return result, seconds


# -- Checks ------------------------------------------------------------------


def check_values(
    keys: list, values: list, make: Callable[[int], list] = workload.value
) -> tuple[int, list[str]]:
    """Compare values read for keys with what was stored.

    Returns (checksum, errors), with the checksum from value_sum().
    """
    errors = []
    if len(values) != len(keys):
        errors.append(f"returned {len(values)} values for {len(keys)} keys")
    for k, v in zip(keys, values):
        if v != make(k):
            errors.append(f"key {k}: expected {make(k)!r}, got {v!r}")
            break
    return value_sum(values), errors


def value_sum(values: list) -> int:
    """Return the sum of v[0] + v[1], or -1 if some value is not a list of
    two numbers and a text."""
    try:
        return sum(v[0] + v[1] for v in values)
    except (TypeError, IndexError, KeyError):
        return -1


def check_items(pairs: list, records: int) -> tuple[int, list[str]]:
    """Check that a full scan returned every key once with its value."""
    keys = sorted(k for k, _ in pairs)
    errors = []
    if keys != list(range(records)):
        errors.append(f"scan returned {len(keys)} keys, not the {records} stored")
    checksum, value_errors = check_values([k for k, _ in pairs], [v for _, v in pairs])
    return checksum, errors + value_errors


def check_contains(keys: list, found: list, records: int) -> tuple[int, list[str]]:
    errors = []
    for k, present in zip(keys, found):
        if present is not (k < records):
            errors.append(f"key {k} in store returned {present!r}")
            break
    if len(found) != len(keys):
        errors.append(f"returned {len(found)} answers for {len(keys)} keys")
    return sum(1 for present in found if present is True), errors


def check_length(store: Any, expected: int) -> tuple[int, list[str]]:
    length = len(store)
    if length != expected:
        return length, [f"len() is {length}, expected {expected}"]
    return length, []


def result(seconds: float, count: int, checksum: int, errors: list[str]) -> dict:
    return {"seconds": seconds, "count": count, "checksum": checksum, "errors": errors}


# -- Jobs --------------------------------------------------------------------


def store_path(job: dict) -> str:
    return os.path.join(job["dir"], "store")


def run_round(job: dict) -> dict:
    """Load a new store, time every operation once, then delete the store."""
    records = job["records"]
    plan = workload.Plan(records, job["seed"], job["write_sample"])
    store = open_store(job["system"], store_path(job), create=True)
    out: dict[str, Any] = {"digest": plan.digest(), "ops": {}}
    ops = out["ops"]

    pairs = [(k, workload.value(k)) for k in plan.load_order]
    _, seconds = timed(do_load, store, pairs)
    ops["load"] = result(seconds, records, *check_length(store, records))
    del pairs

    for name, loop in (("get", do_get), ("get_method", do_get_method)):
        values, seconds = timed(loop, store, plan.get_order)
        ops[name] = result(seconds, records, *check_values(plan.get_order, values))
        del values

    found, seconds = timed(do_contains, store, plan.contains_order)
    checked = check_contains(plan.contains_order, found, records)
    ops["contains"] = result(seconds, len(plan.contains_order), *checked)
    del found

    values, seconds = timed(do_multiget, store, plan.get_order)
    ops["multiget"] = result(seconds, records, *check_values(plan.get_order, values))
    del values

    scanned, seconds = timed(do_items, store)
    ops["items"] = result(seconds, records, *check_items(scanned, records))
    del scanned

    length, seconds = timed(do_len, store, job["len_calls"])
    errors = [] if length == records else [f"len() is {length}, expected {records}"]
    ops["len"] = result(seconds, job["len_calls"], length, errors)

    pairs = [(k, workload.new_value(k)) for k in plan.set_keys]
    _, seconds = timed(do_set, store, pairs)
    length, errors = check_length(store, records)
    _, value_errors = check_values(
        plan.set_keys, [store[k] for k in plan.set_keys], workload.new_value
    )
    ops["set"] = result(seconds, len(pairs), length, errors + value_errors)
    del pairs

    _, seconds = timed(do_delete, store, plan.delete_keys)
    length, errors = check_length(store, records - len(plan.delete_keys))
    left = [k for k in plan.delete_keys if k in store]
    if left:
        errors.append(f"{len(left)} deleted keys are still there, e.g. {left[0]}")
    do_load(store, [(k, workload.value(k)) for k in plan.delete_keys])
    errors += check_length(store, records)[1]
    ops["delete"] = result(seconds, len(plan.delete_keys), length, errors)

    close_store(store)
    return out


def run_make(job: dict) -> dict:
    records = job["records"]
    plan = workload.Plan(records, job["seed"], 0)
    store = open_store(job["system"], store_path(job), create=True)
    do_load(store, [(k, workload.value(k)) for k in plan.load_order])
    length, errors = check_length(store, records)
    close_store(store)
    return {"length": length, "errors": errors}


def run_reader(job: dict) -> dict:
    """Time random gets over an existing store after a start signal.

    The dict system builds its own dict of the records first, as the
    reference for how the same Python work scales on this machine.
    """
    keys = workload.read_order(job["records"], job["seed"], job["reads"])
    store = open_store(job["system"], store_path(job), create=False)
    if isinstance(store, dict):
        do_load(store, [(k, workload.value(k)) for k in range(job["records"])])
    print(json.dumps({"ready": True}), flush=True)
    sys.stdin.readline()

    # CLOCK_MONOTONIC is one clock for all processes on the machine, so the
    # driver can compare the start and end of several readers.
    gc.collect()
    gc.disable()
    start = time.clock_gettime(time.CLOCK_MONOTONIC)
    values = do_get(store, keys)
    end = time.clock_gettime(time.CLOCK_MONOTONIC)
    gc.enable()
    # The first pass reads every key once: compare those values one by one,
    # and the rest, repeats of the same keys, through the checksum.
    records = job["records"]
    _, errors = check_values(keys[:records], values[:records])
    if len(values) != len(keys):
        errors.append(f"returned {len(values)} values for {len(keys)} keys")
    checksum = value_sum(values)
    close_store(store)
    return {
        "start": start,
        "end": end,
        "count": len(keys),
        "checksum": checksum,
        "errors": errors,
    }


def memory_status() -> dict[str, int]:
    """Return VmRSS, VmHWM, RssAnon, RssFile and RssShmem in KiB.

    Where /proc is missing, returns only the peak resident size from
    getrusage() as VmHWM (KiB on Linux, bytes on macOS).
    """
    fields = ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem")
    try:
        with open("/proc/self/status") as status:
            lines = status.read().splitlines()
    except OSError:
        return {"VmHWM": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
    found = {}
    for line in lines:
        name, _, rest = line.partition(":")
        if name in fields:
            found[name] = int(rest.split()[0])
    return found


def run_rss(job: dict) -> dict:
    """Measure resident memory of a reader: at start, after opening the
    store, and after a get of every key in random order."""
    keys = workload.Plan(job["records"], job["seed"], 0).get_order
    stages = {"started": memory_status()}
    store = open_store(job["system"], store_path(job), create=False)
    stages["opened"] = memory_status()

    # Each value is dropped once read, so the heap keeps no results.
    checksum = 0
    for k in keys:
        v = store[k]
        checksum += v[0] + v[1]
    stages["after_gets"] = memory_status()
    close_store(store)
    # ShareDB and 2.0.2 keep the store in PATH.ShareDB/, the lmdb binding in PATH/.
    data = os.path.join(store_path(job) + ".ShareDB", "data.mdb")
    if not os.path.exists(data):
        data = os.path.join(store_path(job), "data.mdb")
    return {
        "stages": stages,
        "checksum": checksum,
        "data_bytes": os.path.getsize(data),
    }


def run_big(job: dict) -> dict:
    """Time the load of a large store and random gets of a sample of it."""
    records = job["records"]
    load_order, read_keys = workload.big_plan(records, job["seed"], job["reads"])
    store = open_store(job["system"], store_path(job), create=True)
    ops: dict[str, Any] = {}

    pairs = [(k, workload.value(k)) for k in load_order]
    del load_order
    _, seconds = timed(do_load, store, pairs)
    ops["load"] = result(seconds, records, *check_length(store, records))
    del pairs

    values, seconds = timed(do_get, store, read_keys)
    ops["get"] = result(seconds, len(read_keys), *check_values(read_keys, values))
    del values
    close_store(store)
    return {"digest": workload.key_digest(read_keys), "ops": ops}


def run_flags(job: dict) -> dict:
    """Return the LMDB flags of a new ShareDB store, for the C loop.

    NOTE: this reads the private attribute _env; bench.py falls back to
    ShareDB's documented flags if it is missing.
    """
    store = open_store(job["system"], store_path(job), create=True)
    env = getattr(store, "_env", None)
    flags = env.flags() if env is not None else None
    close_store(store)
    return {"flags": flags}


JOBS = {
    "round": run_round,
    "make": run_make,
    "reader": run_reader,
    "rss": run_rss,
    "big": run_big,
    "flags": run_flags,
}


def main() -> None:
    job = json.loads(sys.stdin.readline())
    out = JOBS[job["mode"]](job)
    out["versions"] = versions(job["system"])
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
