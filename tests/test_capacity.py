"""Tests of a store's map size: a capped store filling up, and an
uncapped one growing.

The contract says that a full capped map raises an exception that is a
MemoryError (sharedb.MapFullError), that the failed transaction is
rolled back and that every earlier write stays readable. Deleting
records from a full store works and frees room for new writes. With
map_size=None the store grows while other processes have it open, and a
larger map_size given at reopen takes effect and is saved.
"""

from __future__ import annotations

import configparser
import errno
import json
import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest
from conftest import run_python

from sharedb import InvalidArgumentError, MapFullError, ShareDB

# Map size of the capped stores: 1 MiB holds a few hundred records.
CAP = 1 << 20
# Value of the records that fill a store, about a quarter of a page.
VALUE = b"v" * 1000
# Maximum wait for a child process before the test fails.
TIMEOUT = 60


def fill(db: ShareDB, start: int = 0) -> int:
    """Write VALUE under start, start + 1, ... until the map is full.

    Returns the first key that did not fit.
    """
    key = start
    while True:
        try:
            db[key] = VALUE
        except MapFullError:
            return key
        key += 1
        if key - start > 100_000:
            pytest.fail("a capped store never filled up")


def full_error(db: ShareDB, key: object = "one more") -> BaseException:
    """Return the exception of a write to the full store db."""
    with pytest.raises(Exception) as caught:
        db[key] = VALUE
    return caught.value


@pytest.fixture
def full(open_store) -> tuple[ShareDB, int]:
    """A store capped at CAP, filled with VALUE under 0 ... count - 1."""
    db = open_store(map_size=CAP)
    return db, fill(db)


# A full capped store ----------------------------------------------------


def test_capacity_full_map_raises_memory_error(full):
    db, _ = full

    assert isinstance(full_error(db), MemoryError)


def test_capacity_full_map_raises_map_full_error(full):
    db, _ = full

    assert isinstance(full_error(db), MapFullError)


def test_capacity_full_map_keeps_earlier_records(full):
    db, count = full
    full_error(db)

    assert count > 100
    assert len(db) == count
    assert all(db[key] == VALUE for key in range(count))


def test_capacity_failed_write_not_visible(full):
    db, count = full
    full_error(db, "failed")

    assert "failed" not in db
    assert db.get(count) is None


def test_capacity_failed_multiset_writes_nothing(full):
    db, count = full
    with pytest.raises(MemoryError):
        db.multiset((("batch", number), VALUE) for number in range(50))

    assert len(db) == count
    assert (
        list(db.has_multikey(("batch", number) for number in range(50))) == [False] * 50
    )


def test_capacity_full_store_readable_elsewhere(full):
    db, count = full
    result = run_python(
        """
        import sys
        from sharedb import ShareDB

        db = ShareDB(sys.argv[1])
        print(len(db), all(db[key] == b"v" * 1000 for key in range(len(db))))
        """,
        db.path,
        timeout=TIMEOUT,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{count} True\n"


# Deleting from a full store ----------------------------------------------


def delete_half(db: ShareDB, count: int, method: str) -> None:
    """Delete the first half of the records in key order (every record
    for clear) with method.

    A contiguous half frees whole pages. Deleting every other record
    would leave most pages half full, which frees little room for new
    keys.
    """
    first_half = list(db.keys())[: count // 2]
    if method == "del":
        for key in first_half:
            del db[key]
    elif method == "pop":
        for key in first_half:
            db.pop(key)
    elif method == "multiremove":
        db.multiremove(first_half)
    else:
        db.clear()


def left_after(count: int, method: str) -> int:
    return 0 if method == "clear" else count - count // 2


METHODS = ["del", "pop", "multiremove", "clear"]


def test_capacity_full_store_del_one(full):
    db, _ = full
    del db[0]

    assert 0 not in db


def test_capacity_full_store_pop_one(full):
    db, _ = full

    assert db.pop(0) == VALUE
    assert 0 not in db


def test_capacity_full_store_multiremove(full):
    db, count = full
    db.multiremove(range(10))

    assert len(db) == count - 10
    assert not any(db.has_multikey(range(10)))


def test_capacity_full_store_clear(full):
    db, _ = full
    db.clear()

    assert len(db) == 0


@pytest.mark.parametrize("method", METHODS)
def test_capacity_deletes_leave_other_records(full, method):
    db, count = full
    second_half = list(db.keys())[count // 2 :]
    delete_half(db, count, method)
    remaining = [] if method == "clear" else second_half

    assert len(db) == left_after(count, method)
    assert list(db.keys()) == remaining
    assert all(db[key] == VALUE for key in remaining)


@pytest.mark.parametrize("method", METHODS)
def test_capacity_writes_continue_after_deletes(full, method):
    db, count = full
    delete_half(db, count, method)
    new = {("new", number): bytes([number]) * 1000 for number in range(50)}
    for key, value in new.items():
        db[key] = value

    assert len(db) == left_after(count, method) + 50
    assert all(db[key] == value for key, value in new.items())


def test_capacity_delete_after_listing_full_store(full):
    """Deleting the keys listed from a full store works once the listing
    is done."""
    db, count = full
    for key in list(db.keys()):
        if key % 2 == 0:
            del db[key]

    assert len(db) == count // 2
    assert all(key % 2 == 1 for key in db.keys())


def test_capacity_delete_under_snapshot_fails_cleanly(full):
    """An open iteration keeps every page of its snapshot, so deletes from
    a full store under it run out of the room kept for deletes. That is
    a documented limit: the delete raises MapFullError and loses
    nothing."""
    db, count = full
    deleted = 0
    with pytest.raises(MemoryError):
        for key in db.keys():
            del db[key]
            deleted += 1

    assert deleted > 0
    assert len(db) == count - deleted
    assert all(db[key] == VALUE for key in db.keys())


def test_capacity_cap_holds_after_delete_cycles(full):
    """The room a delete at the cap borrows is given back: refilling the
    store after deletes never takes it past map_size."""
    db, count = full
    data_file = os.path.join(db.path, "data.mdb")
    next_key = count
    sizes = []
    for cycle in range(60):
        keys = list(db.keys())
        if cycle % 3 == 0:
            db.multiremove(keys[: len(keys) // 2])
        elif cycle % 3 == 1:
            for key in keys[:50]:
                del db[key]
        else:
            db.clear()
        next_key = fill(db, next_key)
        sizes.append(os.path.getsize(data_file))

    assert max(sizes) <= CAP


# Caps below two pages, and the data file at the cap -------------------------

# Caps below two 4 KiB pages. A page limit computed from such a cap can
# round down to 0, which is the value that means no limit.
TINY_CAPS = [1, 4096, 8191]
TEN_MIB = 10 << 20


def fill_in_batches(db: ShareDB, size: int = 100) -> int:
    """Write batches of size VALUEs with multiset until the map is full.

    Returns the number of batches written.
    """
    batch = 0
    while True:
        try:
            db.multiset(((batch, item), VALUE) for item in range(size))
        except MapFullError:
            return batch
        batch += 1
        if batch > 10_000:
            pytest.fail("a capped store never filled up")


@pytest.mark.parametrize("cap", TINY_CAPS)
def test_capacity_tiny_cap_rejected_at_open(tmp_path, cap):
    """A cap too small for any record is refused before anything is
    written, and no settings are saved."""
    path = str(tmp_path / "store")
    with pytest.raises(InvalidArgumentError, match="map_size"):
        ShareDB(path, map_size=cap)

    assert not os.path.exists(os.path.join(path + ".ShareDB", "ShareDB.config"))


@pytest.mark.parametrize("method", ["set", "multiset"])
def test_capacity_data_file_within_cap(open_store, method):
    db = open_store(map_size=TEN_MIB)
    if method == "set":
        fill(db)
    else:
        fill_in_batches(db)
    size = os.path.getsize(os.path.join(db.path, "data.mdb"))

    assert len(db) > 1000
    assert size <= TEN_MIB


# Raising the cap -----------------------------------------------------------


def test_capacity_larger_map_size_raises_cap(full, open_store):
    db, count = full
    db.close()
    reopened = open_store(map_size=4 * CAP)
    more = fill(reopened, count)

    assert reopened.max_map_size == 4 * CAP
    assert more >= 3 * count
    assert all(reopened[key] == VALUE for key in range(more))


def test_capacity_larger_map_size_is_saved(full, open_store):
    db, _ = full
    db.close()
    reopened = open_store(map_size=4 * CAP)
    config = configparser.ConfigParser()
    config.read(os.path.join(reopened.path, "ShareDB.config"))
    result = run_python(
        """
        import sys
        from sharedb import ShareDB

        print(ShareDB(sys.argv[1]).max_map_size)
        """,
        reopened.path,
        timeout=TIMEOUT,
    )

    assert config.getint("ShareDB Config", "mslimit") == 4 * CAP
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{4 * CAP}\n"


def test_capacity_cap_raised_elsewhere_keeps_reads(full):
    """Another process raises the cap and writes past the old one while
    this process has an iteration open: reads here keep working."""
    db, count = full
    iterator = db.keys()
    next(iterator)
    result = run_python(
        """
        import sys
        from sharedb import ShareDB

        db = ShareDB(sys.argv[1], map_size=int(sys.argv[2]))
        count = int(sys.argv[3])
        db.multiset((("other", number), b"o" * 1000) for number in range(count))
        """,
        db.path,
        str(8 * CAP),
        str(count),
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, result.stderr

    assert db[1] == VALUE
    assert db[("other", count - 1)] == b"o" * 1000
    assert len(list(iterator)) == count - 1


# An uncapped store growing ---------------------------------------------------


def test_capacity_unlimited_map_grows_across_processes(open_store):
    """One process writes 200 MiB into a store another process has open;
    the other reads all of it."""
    db = open_store("growing")
    db["start"] = 1
    records, size = 200, 1 << 20
    try:
        result = run_python(
            """
            import sys
            from sharedb import ShareDB

            db = ShareDB(sys.argv[1])
            for number in range(int(sys.argv[2])):
                db[number] = bytes([number % 256]) * int(sys.argv[3])
            db.close()
            """,
            db.path,
            str(records),
            str(size),
            timeout=TIMEOUT,
        )
        assert result.returncode == 0, result.stderr
        file_size = os.path.getsize(os.path.join(db.path, "data.mdb"))
        intact = all(
            db[number] == bytes([number % 256]) * size for number in range(records)
        )

        assert file_size >= records * size
        assert len(db) == records + 1
        assert intact
    finally:
        db.drop()


# A full disk -----------------------------------------------------------------

# Size of the tmpfs that stands for a full disk.
SMALL_DISK_SIZE = "24m"

# Fills the store argv[1] with batches of 100 records of 2000 bytes until
# the disk is full, deletes the first half of the batches, then writes 200
# records at once, and prints what happened as JSON.
FILL_DISK_DELETE_WRITE = """
    import json
    import os
    import sys

    from sharedb import ShareDB

    db = ShareDB(sys.argv[1])
    batches = 0
    full_errno = None
    while batches < 1000:
        try:
            db.multiset(((batches, item), os.urandom(2000)) for item in range(100))
        except OSError as error:
            full_errno = error.errno
            break
        batches += 1
    db.multiremove(
        (batch, item) for batch in range(batches // 2) for item in range(100)
    )
    try:
        db.multiset((("after", item), "x" * 1000) for item in range(200))
        write_error = None
    except OSError as error:
        write_error = repr(error)
    print(json.dumps({
        "full_errno": full_errno,
        "batches": batches,
        "write_error": write_error,
        "length": len(db),
        "last_after": db.get(("after", 199)),
    }))
    db.close()
"""


@pytest.fixture
def small_disk(tmp_path) -> Iterator[str]:
    """Path of a directory on a 24 MiB tmpfs mounted for the test."""
    if getattr(os, "geteuid", lambda: -1)() != 0:
        pytest.skip("mounting a tmpfs to fill up needs root")
    if shutil.which("mount") is None or shutil.which("umount") is None:
        pytest.skip("mount and umount are needed to mount a tmpfs to fill up")
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SMALL_DISK_SIZE}", "tmpfs", mount_point],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill up: {mounted.stderr.strip()}")
    try:
        yield str(mount_point)
    finally:
        subprocess.run(["umount", mount_point], check=True)


def test_capacity_full_disk_write_after_delete(small_disk):
    """After a delete on a full disk, the next write reuses the freed pages
    without another commit first."""
    result = run_python(
        FILL_DISK_DELETE_WRITE, os.path.join(small_disk, "store"), timeout=TIMEOUT
    )

    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    records_left = (outcome["batches"] - outcome["batches"] // 2) * 100
    assert outcome["full_errno"] == errno.ENOSPC, outcome
    assert outcome["write_error"] is None, outcome
    assert outcome["length"] == records_left + 200
    assert outcome["last_after"] == "x" * 1000


# Fills an uncapped store on a full disk with small records one commit at
# a time, then tries each kind of delete in a new process, as a reopened
# store would. Prints what failed as JSON.
FILL_DISK_THEN_DELETE = """
import errno
import json
import sys

from sharedb import ShareDB

path = sys.argv[1]
db = ShareDB(path)
count = 0
full_errno = None
while True:
    try:
        db[count] = "v"
    except OSError as exc:
        full_errno = exc.errno
        break
    count += 1
db.close()

db = ShareDB(path)
failures = {}
steps = [
    ("remove", lambda: db.remove(0)),
    ("pop", lambda: db.pop(1)),
    ("popitem", lambda: db.popitem()),
    ("multiremove", lambda: db.multiremove(range(10, 2000))),
    ("clear", lambda: db.clear()),
    ("write_after", lambda: db.multiset((n, "w") for n in range(1000))),
]
for name, step in steps:
    try:
        step()
    except Exception as exc:
        failures[name] = f"{type(exc).__name__}: {exc}"
print(json.dumps({"count": count, "full_errno": full_errno,
                  "failures": failures, "length": len(db)}))
"""


def test_capacity_full_disk_deletes_work(small_disk):
    """An uncapped store keeps room at the end of its data file, so every
    kind of delete still commits once a full disk stops writes."""
    result = run_python(
        FILL_DISK_THEN_DELETE, os.path.join(small_disk, "store"), timeout=TIMEOUT * 4
    )

    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["full_errno"] == errno.ENOSPC, outcome
    assert outcome["count"] > 2000, outcome
    assert outcome["failures"] == {}, outcome
    assert outcome["length"] == 1000
