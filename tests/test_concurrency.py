"""Tests of one store shared by processes and threads.

The contract ("Processes and durability") says that writers in several
processes lose nothing and that readers see whole transactions. An
instance keeps working in a child after fork() and in a worker it was
pickled to. Threads may share one instance, and close() makes the calls
of the other threads raise. A writer killed while it holds the write
lock does not block the others.

Every wait has a timeout, so a hang fails the test instead of blocking
the run.
"""

from __future__ import annotations

import contextlib
import errno
import json
import multiprocessing
import os
import pickle
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator

import pytest
from conftest import child_environment, run_python

from sharedb import ShareDB

# Maximum wait for a child process or thread before the test fails.
TIMEOUT = 60

# Code of a process that holds the write lock of a store: it begins a
# write transaction, puts records it never commits, prints "locked",
# sleeps, then aborts. Arguments: store path, map size, writemap (0 or
# 1, as the store uses it), seconds.
HOLD_WRITE_LOCK = """
import sys
import time

from sharedb import lmdb

env = lmdb.Environment(
    sys.argv[1], map_size=int(sys.argv[2]), writemap=sys.argv[3] == "1"
)
txn = env.begin(write=True)
for number in range(100):
    txn.put(b"uncommitted-%d" % number, b"x" * 100)
print("locked", flush=True)
time.sleep(float(sys.argv[4]))
txn.abort()
env.close()
"""


# Helpers -------------------------------------------------------------


def read_line(process: subprocess.Popen, timeout: float = TIMEOUT) -> str:
    """Return the next line the process prints, failing after timeout."""
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    if not ready:
        pytest.fail(f"no output from the child process in {timeout} s")
    return process.stdout.readline()


def stop(process: subprocess.Popen) -> None:
    """Kill the process if it still runs and reap it."""
    if process.poll() is None:
        process.kill()
    process.wait(timeout=TIMEOUT)


@contextlib.contextmanager
def write_lock_held(db: ShareDB, seconds: float) -> Iterator[subprocess.Popen]:
    """Run a process that holds the write lock of db for seconds.

    The block runs once the lock is held. The process is killed on exit
    if it still runs.
    """
    map_size = db._env.info()["map_size"]
    writemap = db._env.flags()["writemap"]
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            HOLD_WRITE_LOCK,
            db.path,
            str(map_size),
            "1" if writemap else "0",
            str(seconds),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=child_environment(),
    )
    try:
        assert read_line(process) == "locked\n"
        yield process
    finally:
        stop(process)


def fork_child(body: Callable[[], int | None]) -> int:
    """Fork a child that runs body() and exits with its return value.

    None counts as 0. An exception prints its traceback and exits with
    99. The child always leaves by os._exit, so the pytest code it
    inherited never runs there.
    """
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            result = body()
            code = 0 if result is None else int(result)
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    return pid


def wait_child(pid: int, timeout: float = TIMEOUT) -> int:
    """Reap a forked child and return its exit code (-signal if killed).

    A child still running after timeout is killed and the test fails.
    """
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"child {pid} still ran after {timeout} s")
        time.sleep(0.001)


def read_byte(fd: int, timeout: float = TIMEOUT) -> bytes:
    """Read one byte from a pipe, failing after timeout."""
    ready, _, _ = select.select([fd], [], [], timeout)
    if not ready:
        pytest.fail(f"no signal on the pipe in {timeout} s")
    return os.read(fd, 1)


def run_threads(target: Callable[[int], None], count: int) -> None:
    """Run target(0) ... target(count - 1) in threads and join them."""
    threads = [
        threading.Thread(target=target, args=(number,), daemon=True)
        for number in range(count)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + TIMEOUT
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    hung = [thread.name for thread in threads if thread.is_alive()]
    assert hung == [], f"threads still running after {TIMEOUT} s"


def write_in_thread(db: ShareDB, key: object, value: object) -> threading.Event:
    """Start db[key] = value in a thread and return an event set when it
    is done."""
    done = threading.Event()

    def write():
        db[key] = value
        done.set()

    threading.Thread(target=write, daemon=True).start()
    return done


def dead_reader_pids(db: ShareDB) -> list[int]:
    """Return the pids of reader slots whose process no longer exists."""
    dead = []
    for pid, _thread, _txnid in db._env.readers():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            dead.append(pid)
        except PermissionError:
            pass
    return dead


# Module-level targets, so that spawn and forkserver workers can import
# them.


def write_disjoint_keys(path: str, writer: int, count: int) -> None:
    """Write count single keys and one multiset of count // 4 keys, all
    owned by this writer."""
    db = ShareDB(path)
    for number in range(count):
        db[("single", writer, number)] = number
    db.multiset((("batch", writer, number), -number) for number in range(count // 4))
    db.close()


def write_batches(path: str, batches: int, size: int) -> None:
    """Commit batches of size keys, each with the marker key set to the
    number of the batch, in one multiset."""
    db = ShareDB(path)
    for batch in range(batches):
        pairs = [
            (f"{batch:04d}-{item:02d}", batch * 1000 + item) for item in range(size)
        ]
        pairs.append(("marker", batch))
        db.multiset(pairs)
        time.sleep(0.002)
    db.close()


def expected_prefix(marker: int, size: int) -> dict[object, int]:
    """The records after the batch numbered marker has been committed."""
    records: dict[object, int] = {
        f"{batch:04d}-{item:02d}": batch * 1000 + item
        for batch in range(marker + 1)
        for item in range(size)
    }
    if marker >= 0:
        records["marker"] = marker
    return records


def read_snapshots(path: str, size: int, started, writer_done, results) -> None:
    """Read whole snapshots until the writer is done.

    Puts (half batches, markers going back, distinct markers, errors) on
    results.
    """
    half_batches = 0
    backwards = 0
    markers: set[int] = set()
    errors: list[str] = []
    try:
        db = ShareDB(path)
        started.set()
        last = -1
        while True:
            finished = writer_done.is_set()
            snapshot = dict(db.items())
            marker = snapshot.get("marker", -1)
            if snapshot != expected_prefix(marker, size):
                half_batches += 1
            if marker < last:
                backwards += 1
            last = marker
            markers.add(marker)
            single = db.get("marker", -1)
            if single >= 0 and db.get(f"{single:04d}-{size - 1:02d}") is None:
                half_batches += 1
            if finished:
                break
        db.close()
    except Exception as exc:
        errors.append(repr(exc))
    results.put((half_batches, backwards, len(markers), errors))


def use_pickled_store(db: ShareDB, count: int) -> None:
    """In a worker: check the parent's records and settings, then write.

    Exits with 3 if a record or setting differs.
    """
    same = all(db[("parent", number)] == [number, "x"] for number in range(count))
    same = same and db.serial == "msgpack" and db.compress is True
    db.multiset((("worker", number), number * 2) for number in range(count))
    db["worker pid"] = os.getpid()
    db.close()
    sys.exit(0 if same else 3)


# Writers in several processes -----------------------------------------


def test_writers_parallel_processes_lose_nothing(open_store):
    db = open_store()
    writers, count = 4, 2000
    context = multiprocessing.get_context("fork")
    processes = [
        context.Process(target=write_disjoint_keys, args=(db.path, writer, count))
        for writer in range(writers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(TIMEOUT)
    expected = {}
    for writer in range(writers):
        expected.update({("single", writer, number): number for number in range(count)})
        expected.update(
            {("batch", writer, number): -number for number in range(count // 4)}
        )

    assert [process.exitcode for process in processes] == [0] * writers
    assert len(db) == writers * (count + count // 4)
    assert dict(db.items()) == expected


# Readers while a writer runs -------------------------------------------


def test_readers_never_see_half_batches(open_store):
    db = open_store()
    batches, size, readers = 150, 20, 2
    context = multiprocessing.get_context("fork")
    writer_done = context.Event()
    results = context.Queue()
    started = [context.Event() for _ in range(readers)]
    reader_processes = [
        context.Process(
            target=read_snapshots,
            args=(db.path, size, started[number], writer_done, results),
        )
        for number in range(readers)
    ]
    for process in reader_processes:
        process.start()
    assert all(event.wait(TIMEOUT) for event in started)
    writer = context.Process(target=write_batches, args=(db.path, batches, size))
    writer.start()
    writer.join(TIMEOUT)
    writer_done.set()
    outcomes = [results.get(timeout=TIMEOUT) for _ in range(readers)]
    for process in reader_processes:
        process.join(TIMEOUT)

    assert writer.exitcode == 0
    assert [process.exitcode for process in reader_processes] == [0] * readers
    assert [errors for _, _, _, errors in outcomes] == [[]] * readers
    assert [half for half, _, _, _ in outcomes] == [0] * readers
    assert [back for _, back, _, _ in outcomes] == [0] * readers
    # The readers ran while the writer did, not only before or after it.
    assert all(seen >= 2 for _, _, seen, _ in outcomes)
    assert db["marker"] == batches - 1


# Instances inherited by fork() -----------------------------------------


@pytest.fixture
def filled(open_store) -> ShareDB:
    """A store with the records i: i for i in range(100)."""
    db = open_store()
    db.multiset((number, number) for number in range(100))
    return db


def test_fork_child_reads_inherited_instance(filled):
    def body():
        values = [filled[number] for number in range(100)]
        return 0 if values == list(range(100)) else 1

    assert wait_child(fork_child(body)) == 0


def test_fork_child_writes_visible_in_parent(filled):
    def body():
        filled["from child"] = os.getpid()
        filled.multiset((("child", number), number) for number in range(10))

    pid = fork_child(body)

    assert wait_child(pid) == 0
    assert filled["from child"] == pid
    assert list(filled.multiget(("child", number) for number in range(10))) == list(
        range(10)
    )


def test_fork_parent_handle_works_after_child(filled):
    def body():
        filled["from child"] = 1
        assert filled[5] == 5
        filled.close()

    assert wait_child(fork_child(body)) == 0
    filled["from parent"] = 2
    assert filled.is_alive
    assert filled[7] == 7
    assert filled["from parent"] == 2
    assert len(filled) == 102


def test_fork_parent_snapshot_survives_child(open_store):
    db = open_store()
    db.multiset((number, bytes([number]) * 2000) for number in range(200))
    snapshot = db.items()
    first = next(snapshot)

    def body():
        db["from child"] = b"child"
        assert db[3] == bytes([3]) * 2000
        db.close()

    assert wait_child(fork_child(body)) == 0
    # Another process frees dead readers and rewrites every record in
    # many transactions, so pages of the snapshot would be reused if its
    # reader slot had been lost.
    result = run_python(
        """
        import sys
        from sharedb import ShareDB

        db = ShareDB(sys.argv[1])
        db._env.reader_check()
        for _ in range(3):
            db.clear()
            for number in range(200):
                db[number] = b"new" * 500
        """,
        db.path,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    rest = list(snapshot)

    assert [first, *rest] == [(number, bytes([number]) * 2000) for number in range(200)]


def test_fork_iterator_from_parent_raises_in_child(filled):
    iterator = filled.keys()
    next(iterator)

    def body():
        try:
            next(iterator)
        except RuntimeError:
            return 0
        return 1

    assert wait_child(fork_child(body)) == 0
    assert next(iterator) == 1


def test_fork_many_children_leave_no_readers(filled):
    # A read leaves this process's pooled reader slot in the table.
    filled[0]
    own_before = [pid for pid, _, _ in filled._env.readers() if pid == os.getpid()]

    def body():
        return 0 if filled[42] == 42 else 1

    codes = [wait_child(fork_child(body)) for _ in range(300)]
    filled._env.reader_check()
    own_after = [pid for pid, _, _ in filled._env.readers() if pid == os.getpid()]

    assert codes == [0] * 300
    assert dead_reader_pids(filled) == []
    assert len(own_after) <= len(own_before)


@pytest.mark.parametrize("keep_slot", [False, True], ids=["default", "pooled"])
def test_fork_child_reads_leave_no_slot(filled, keep_slot):
    """Children that read through an inherited instance and end with
    os._exit() leave no reader slot, unless the child keeps a pooled read
    transaction, which shows that the check sees left slots."""
    filled[0]

    def body():
        found = filled[42] == 42
        if keep_slot:
            filled._env._set_read_pool(1)
        found = found and filled[42] == 42 and len(list(filled.items())) == 100
        return 0 if found else 1

    children = [fork_child(body) for _ in range(10)]
    codes = [wait_child(pid) for pid in children]
    slot_pids = {pid for pid, _, _ in filled._env.readers()}

    assert codes == [0] * 10
    if keep_slot:
        assert slot_pids & set(children)
    else:
        assert slot_pids <= {os.getpid()}


@pytest.mark.parametrize("ending", ["exit", "sigkill"])
def test_fork_dead_readers_free_their_slots(open_store, ending):
    db = open_store(readers=8)
    db.multiset((number, number) for number in range(50))
    # A read leaves this process's pooled reader slot in the table.
    db[0]
    waves, per_wave = 3, 6
    codes = []
    for _ in range(waves):
        children = []
        for _ in range(per_wave):
            ready_read, ready_write = os.pipe()
            go_read, go_write = os.pipe()

            def body(ready_write=ready_write, go_read=go_read):
                snapshot = db.items()
                next(snapshot)
                os.write(ready_write, b"r")
                read_byte(go_read)
                # Leave while the snapshot is still open.
                return 0

            children.append((fork_child(body), ready_read, go_write))
            os.close(ready_write)
            os.close(go_read)
        for pid, ready_read, go_write in children:
            assert read_byte(ready_read) == b"r"
            if ending == "sigkill":
                os.kill(pid, signal.SIGKILL)
            else:
                os.write(go_write, b"g")
            codes.append(wait_child(pid))
            os.close(ready_read)
            os.close(go_write)
    # As many snapshots as there are slots minus one, at once, in this
    # process: the slots of the dead children must be taken back.
    snapshots = [db.values() for _ in range(db.max_readers - 1)]
    firsts = [next(snapshot) for snapshot in snapshots]
    # End them, so that the next process finds free slots.
    del snapshots
    result = run_python(
        """
        import sys
        from sharedb import ShareDB

        db = ShareDB(sys.argv[1])
        print(db[49], len(db))
        """,
        db.path,
        timeout=TIMEOUT,
    )

    expected_code = 0 if ending == "exit" else -signal.SIGKILL
    assert codes == [expected_code] * (waves * per_wave)
    assert firsts == [0] * (db.max_readers - 1)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "49 50\n"
    assert db[49] == 49


def test_fork_child_threads_share_inherited_instance(filled):
    """Threads of a forked child that use the inherited instance at once
    must all work, though the first use reopens the store."""

    def body():
        failures = []
        barrier = threading.Barrier(8, timeout=TIMEOUT)

        def use(number):
            try:
                barrier.wait()
                if filled[number] != number:
                    failures.append(f"wrong value for {number}")
                filled[("thread", number)] = number
            except Exception as exc:
                failures.append(repr(exc))

        threads = [threading.Thread(target=use, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT)
        if failures:
            print(
                f"{len(failures)} of 8 threads failed: {failures[0]}", file=sys.stderr
            )
        return 1 if failures else 0

    codes = [wait_child(fork_child(body)) for _ in range(20)]

    assert codes == [0] * 20


# Instances pickled to spawn and forkserver workers ---------------------


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_pickle_worker_reopens_same_store(open_store, method):
    db = open_store(serial="msgpack", compress=True)
    count = 50
    db.multiset((("parent", number), (number, "x")) for number in range(count))
    context = multiprocessing.get_context(method)
    worker = context.Process(target=use_pickled_store, args=(db, count))
    worker.start()
    worker.join(TIMEOUT)

    assert worker.exitcode == 0
    assert db["worker pid"] == worker.pid
    assert [db[("worker", number)] for number in range(count)] == [
        number * 2 for number in range(count)
    ]


def test_pickle_closed_instance_raises(open_store):
    db = open_store()
    db.close()

    with pytest.raises(RuntimeError):
        pickle.dumps(db)


# Threads sharing one instance ------------------------------------------


def test_threads_mixed_operations_keep_writes(open_store):
    db = open_store()
    threads, rounds = 8, 300
    expected: list[dict[object, int]] = [{} for _ in range(threads)]
    failures: list[str] = []
    barrier = threading.Barrier(threads, timeout=TIMEOUT)

    def work(thread):
        mine = expected[thread]
        try:
            barrier.wait()
            for number in range(rounds):
                db[(thread, number)] = number
                mine[(thread, number)] = number
                if db.get((thread, number)) != number:
                    failures.append(f"{thread} lost its write {number}")
                if number % 10 == 9:
                    batch = {(thread, "m", number, item): item for item in range(5)}
                    db.multiset(batch.items())
                    mine.update(batch)
                if number % 7 == 6:
                    del db[(thread, number - 3)]
                    mine.pop((thread, number - 3), None)
                if number % 50 == 49:
                    missing = mine.keys() - set(db.keys())
                    if missing:
                        failures.append(f"{thread} misses {sorted(missing)[:3]}")
        except Exception as exc:
            failures.append(repr(exc))

    run_threads(work, threads)
    merged = {key: value for mine in expected for key, value in mine.items()}

    assert failures == []
    assert len(db) == len(merged)
    assert dict(db.items()) == merged


def test_threads_reads_continue_while_write_waits(open_store):
    db = open_store()
    db.multiset((number, number) for number in range(100))
    written = threading.Event()
    failures: list[str] = []

    def write():
        try:
            db["waited"] = 1
        except Exception as exc:
            failures.append(repr(exc))
        written.set()

    latencies = []
    wrong_reads = 0
    with write_lock_held(db, seconds=1.0):
        started = time.monotonic()
        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        while not written.is_set() and time.monotonic() - started < TIMEOUT:
            before = time.monotonic()
            number = len(latencies) % 100
            wrong_reads += db[number] != number
            if len(latencies) % 200 == 0:
                # 101 once the write has committed.
                wrong_reads += len(list(db.keys())) < 100
            latencies.append(time.monotonic() - before)
        waited = time.monotonic() - started
    writer.join(TIMEOUT)

    assert failures == []
    assert wrong_reads == 0
    # The write really waited for the other process ...
    assert waited >= 0.5
    # ... while this thread kept reading without waiting for it.
    assert len(latencies) >= 100
    assert max(latencies) < 0.5
    assert db["waited"] == 1


def test_threads_close_makes_calls_raise(tmp_path):
    path = str(tmp_path / "store")
    outcomes: list[str] = []
    for round_number in range(50):
        db = ShareDB(path)
        db.multiset((number, number) for number in range(200))
        barrier = threading.Barrier(9, timeout=TIMEOUT)

        def work(thread, db=db, barrier=barrier):
            barrier.wait()
            number = thread
            while True:
                number = (number * 7 + 3) % 300
                try:
                    operation = number % 6
                    if operation == 0:
                        db[number] = thread
                    elif operation == 1:
                        db.get(number)
                    elif operation == 2:
                        db.remove(number)
                    elif operation == 3:
                        db.multiset((key, thread) for key in range(number, 300))
                    elif operation == 4:
                        sum(1 for _ in db.items())
                    else:
                        len(db)
                except RuntimeError:
                    outcomes.append("RuntimeError")
                    return
                except Exception as exc:
                    outcomes.append(repr(exc))
                    return

        threads = [
            threading.Thread(target=work, args=(n,), daemon=True) for n in range(8)
        ]
        for thread in threads:
            thread.start()
        barrier.wait()
        time.sleep((round_number % 10) * 0.002)
        db.close()
        for thread in threads:
            thread.join(TIMEOUT)
        assert not any(thread.is_alive() for thread in threads), "a thread hung"

    assert outcomes == ["RuntimeError"] * 400


def test_threads_reopen_after_close_keeps_snapshot(tmp_path):
    """close() while a thread waits for the write lock, then a new
    ShareDB on the same store: the new object's snapshot must stay
    protected when the old handle finally closes. Opening waits for the
    old handle to close, so the late write is in the snapshot or not
    depending on timing; the other records must be there unchanged."""
    path = str(tmp_path / "store")
    db = ShareDB(path)
    db.multiset((number, bytes([number]) * 3000) for number in range(200))

    def write_late():
        with contextlib.suppress(RuntimeError):
            db["late"] = 1

    with write_lock_held(db, seconds=0.5):
        writer = threading.Thread(target=write_late, daemon=True)
        writer.start()
        time.sleep(0.1)
        db.close()
        reopened = ShareDB(path)
        snapshot = reopened.items()
        first = next(snapshot)
        writer.join(TIMEOUT)
    try:
        result = run_python(
            """
            import sys
            from sharedb import ShareDB

            db = ShareDB(sys.argv[1])
            for _ in range(3):
                db.clear()
                for number in range(200):
                    db[number] = b"new" * 1000
            """,
            path,
            timeout=TIMEOUT,
        )
        assert result.returncode == 0, result.stderr
        rest = list(snapshot)
    finally:
        reopened.close()

    seen = [item for item in [first, *rest] if item != ("late", 1)]
    assert seen == [(number, bytes([number]) * 3000) for number in range(200)]


# A writer killed while it holds the write lock -------------------------


def test_killed_writer_releases_lock_promptly(filled):
    with write_lock_held(filled, seconds=TIMEOUT) as holder:
        holder.kill()
        holder.wait(TIMEOUT)
        started = time.monotonic()
        done = write_in_thread(filled, "after", 1)

        assert done.wait(10)
        assert time.monotonic() - started < 2


def test_killed_writer_wakes_waiting_thread(filled):
    with write_lock_held(filled, seconds=TIMEOUT) as holder:
        done = write_in_thread(filled, "after", 1)
        assert not done.wait(0.3)
        holder.kill()
        holder.wait(TIMEOUT)
        started = time.monotonic()

        assert done.wait(10)
        assert time.monotonic() - started < 2


def test_killed_writer_leaves_store_intact(filled):
    with write_lock_held(filled, seconds=TIMEOUT) as holder:
        holder.kill()
        holder.wait(TIMEOUT)
    filled["after"] = 1
    with filled._env.begin() as txn:
        uncommitted = txn.get(b"uncommitted-0")

    assert uncommitted is None
    assert len(filled) == 101
    assert dict(filled.items()) == {**{n: n for n in range(100)}, "after": 1}


# A reader of another user ------------------------------------------------------

# uid and gid of the unprivileged account "nobody" on most Linux systems.
NOBODY = 65534

# Opens the store argv[1], counts its records if the open succeeds, and
# prints how it went as JSON.
OPEN_AND_COUNT = """
import json
import sys

from sharedb import ShareDB

try:
    db = ShareDB(sys.argv[1])
except Exception as error:
    print(json.dumps({
        "opened": False,
        "error": type(error).__name__,
        "errno": getattr(error, "errno", None),
        "message": str(error),
    }))
else:
    print(json.dumps({"opened": True, "records": len(db)}))
"""


@pytest.fixture
def shared_directory() -> Iterator[str]:
    """A new directory that every user can enter, unlike pytest's tmp_path,
    which only the user running the tests can."""
    if getattr(os, "geteuid", lambda: -1)() != 0:
        pytest.skip(f"running a reader as another user (uid {NOBODY}) needs root")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is needed to run a reader as another user")
    directory = tempfile.mkdtemp(prefix="sharedb-test-")
    os.chmod(directory, 0o755)
    yield directory
    shutil.rmtree(directory)


@pytest.fixture
def read_only_store(shared_directory) -> str:
    """Path of a store with 100 records whose files other users may read
    but not write: directory mode 755, files 644."""
    path = os.path.join(shared_directory, "store")
    db = ShareDB(path)
    db.multiset((number, number) for number in range(100))
    db.close()
    os.chmod(db.path, 0o755)
    for name in os.listdir(db.path):
        os.chmod(os.path.join(db.path, name), 0o644)
    return path


def run_python_as_nobody(code: str, *args: str) -> subprocess.CompletedProcess:
    """Run code in a new interpreter as the user "nobody" (uid NOBODY)."""
    return subprocess.run(
        [
            "setpriv",
            f"--reuid={NOBODY}",
            f"--regid={NOBODY}",
            "--clear-groups",
            sys.executable,
            "-c",
            code,
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=child_environment(),
    )


def test_reader_without_lock_access_rejected(read_only_store):
    """A reader that cannot write lock.mdb cannot take a reader slot, so
    writers could reuse the pages it reads: the open must fail."""
    result = run_python_as_nobody(OPEN_AND_COUNT, read_only_store)

    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["opened"] is False, outcome
    assert outcome["error"] == "PermissionError", outcome
    assert outcome["errno"] == errno.EACCES, outcome
    assert "lock.mdb" in outcome["message"]


def test_reader_with_write_access_opens(read_only_store):
    store_directory = read_only_store + ".ShareDB"
    os.chmod(store_directory, 0o777)
    for name in os.listdir(store_directory):
        os.chmod(os.path.join(store_directory, name), 0o666)

    result = run_python_as_nobody(OPEN_AND_COUNT, read_only_store)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"opened": True, "records": 100}


# Ctrl-C during a batch write -----------------------------------------------------

# Writes a multiset of 3 million plain tuple keys into the store argv[1].
# The generator prints "ready" at the first pair, so the parent's SIGINT
# arrives while the batch is read. Prints the outcome and the number of
# records as JSON. The child installs the default SIGINT handler itself,
# because Python keeps SIGINT ignored if it starts with it ignored, as the
# background jobs of a shell without job control do.
MULTISET_UNTIL_INTERRUPTED = """
import json
import signal
import sys

from sharedb import ShareDB

signal.signal(signal.SIGINT, signal.default_int_handler)
db = ShareDB(sys.argv[1])


def pairs():
    print("ready", flush=True)
    for number in range(3_000_000):
        yield ((0, number), number)


try:
    db.multiset(pairs())
    outcome = "completed"
except KeyboardInterrupt:
    outcome = "KeyboardInterrupt"
except BaseException as error:
    outcome = f"{type(error).__name__}: {error}"[:300]
print(json.dumps({"outcome": outcome, "records": len(db)}))
db.close()
"""


def test_sigint_during_multiset_raises_keyboard_interrupt(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-c", MULTISET_UNTIL_INTERRUPTED, str(tmp_path / "store")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_environment(),
    )
    try:
        assert read_line(process) == "ready\n"
        process.send_signal(signal.SIGINT)
        output, errors = process.communicate(timeout=TIMEOUT)
    finally:
        stop(process)

    assert process.returncode == 0, errors
    outcome = json.loads(output)
    assert outcome["outcome"] == "KeyboardInterrupt"
    assert outcome["records"] == 0
