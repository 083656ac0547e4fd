"""Tests of a store whose writers and readers are killed with SIGKILL.

A writer process runs a fixed sequence of operations (set, multiset,
pop, clear), one numbered step each. After each call returns it writes
the step number to a pipe, which gives the parent the last step that
was surely committed. The parent kills the writer at a random moment
and compares the store with a model of the sequence. The store must
contain exactly the records after the last acknowledged step, or after
the next one, which may have committed just before the kill. Anything
else is a lost write or a partial batch.

A killed process leaves committed pages in the operating system's page
cache, so even without durable=True nothing committed may be missing.

Run as a script for a long run with a summary, for example:

    python tests/test_crash.py --kills 200 --durable
"""

from __future__ import annotations

import argparse
import itertools
import os
import pickle
import random
import select
import signal
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from sharedb import ShareDB, lmdb

# Maximum wait for a child process, a thread or a pipe before the test
# fails.
TIMEOUT = 60

# Key spaces of the workload: single sets and pops use SINGLE_KEYS keys,
# batches BATCH_KEYS keys, so the store stays small however long it runs.
SINGLE_KEYS = 64
BATCH_KEYS = 256

# Key the parent writes and deletes after each kill to show that the store
# still takes writes. The workload never uses it.
PROBE_KEY = "probe"


# Child processes -------------------------------------------------------


# Children forked by fork_child() and not reaped yet; kill_leftovers()
# kills them after a test that failed while they ran.
_running: set[int] = set()


@pytest.fixture(autouse=True)
def kill_leftovers() -> Iterator[None]:
    yield
    while _running:
        kill_child(_running.pop())


def fork_child(body: Callable[[], object]) -> int:
    """Fork a child that runs body() and exits with 0.

    An exception prints its traceback and exits with 99. The child always
    leaves by os._exit, so the pytest code it inherited never runs there.
    """
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            body()
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    _running.add(pid)
    return pid


def wait_child(pid: int, timeout: float = TIMEOUT) -> int:
    """Reap a child and return its exit code (-signal if killed).

    A child still running after timeout is killed and the test fails.
    """
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            _running.discard(pid)
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            _running.discard(pid)
            pytest.fail(f"child {pid} still ran after {timeout} s")
        time.sleep(0.001)


def kill_child(pid: int) -> int:
    """Kill a child with SIGKILL, reap it and return its exit code."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return wait_child(pid)


def read_byte(fd: int, timeout: float = TIMEOUT) -> bytes:
    """Read one byte from a pipe, failing after timeout."""
    ready, _, _ = select.select([fd], [], [], timeout)
    if not ready:
        pytest.fail(f"no byte on the pipe in {timeout} s")
    return os.read(fd, 1)


def call_with_timeout(function: Callable[[], object], timeout: float = TIMEOUT) -> None:
    """Run function() in a thread and fail if it has not returned after
    timeout, which means it waits for a lock that no process releases."""
    failures: list[BaseException] = []

    def run() -> None:
        try:
            function()
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        pytest.fail(f"{function} still ran after {timeout} s")
    if failures:
        raise failures[0]


class AckPipe:
    """Read end of a pipe on which a writer child writes one step number
    a line after each committed step.

    Lines are shorter than PIPE_BUF, so every write arrives whole.
    """

    def __init__(self, fd: int, last: int) -> None:
        self.fd = fd
        self.last = last
        self.count = 0
        self.closed = False
        self._buffer = b""

    def read(self, timeout: float) -> bool:
        """Read what arrives within timeout seconds; return False if
        nothing did."""
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not ready:
            return False
        data = os.read(self.fd, 65536)
        if not data:
            self.closed = True
            return True
        lines = (self._buffer + data).split(b"\n")
        self._buffer = lines.pop()
        for line in lines:
            step = int(line)
            assert step == self.last + 1, f"step {step} acknowledged after {self.last}"
            self.last = step
            self.count += 1
        return True

    def read_for(self, seconds: float) -> None:
        """Read for seconds, stopping early at end of file."""
        deadline = time.monotonic() + seconds
        while not self.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.read(left)

    def read_until(self, step: int, timeout: float = TIMEOUT) -> None:
        """Read until step is acknowledged, failing after timeout or at end
        of file."""
        deadline = time.monotonic() + timeout
        while self.last < step:
            if self.closed:
                pytest.fail(f"the writer ended before acknowledging step {step}")
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"step {step} not acknowledged in {timeout} s")
            self.read(left)

    def read_to_end(self) -> None:
        """Read until end of file; call after the writer is dead."""
        while not self.closed:
            if not self.read(TIMEOUT):
                pytest.fail(
                    f"no end of file on the pipe {TIMEOUT} s after the writer died"
                )
        os.close(self.fd)


# The workload ----------------------------------------------------------


def operation(seed: int, step: int) -> tuple:
    """Return the operation of step number step of workload seed.

    The operation depends only on seed and step, so the parent and every
    writer child compute the same sequence. Keys are strings and values
    lists, which pickle and msgpack both return unchanged.
    """
    rng = random.Random(f"{seed}:{step}")
    roll = rng.random()
    if roll < 0.40:
        return ("set", f"s{rng.randrange(SINGLE_KEYS):02d}", make_value(rng, step, 0))
    if roll < 0.75:
        if rng.random() < 0.05:
            # Hundreds of values of a few KiB: a commit of many pages.
            size, big = rng.randrange(100, BATCH_KEYS), True
        else:
            size, big = rng.randrange(2, 40), False
        keys = rng.sample(range(BATCH_KEYS), size)
        pairs = [
            (f"b{key:03d}", make_value(rng, step, index, big))
            for index, key in enumerate(keys)
        ]
        return ("multiset", pairs)
    if roll < 0.99:
        space = rng.choice(["s", "b"])
        number = rng.randrange(SINGLE_KEYS if space == "s" else BATCH_KEYS)
        return ("pop", f"{space}{number:0{2 if space == 's' else 3}d}")
    return ("clear",)


def make_value(rng: random.Random, step: int, index: int, big: bool = False) -> list:
    """Return [step, index, payload]: unique to its step and position."""
    if big or rng.random() < 0.03:
        length = rng.randrange(1000, 12000)
    else:
        length = rng.randrange(0, 200)
    # Half the payloads repeat a pattern (which zlib shrinks), half are
    # random bytes.
    if rng.random() < 0.5:
        payload = (b"%08d" % step) * (length // 8)
    else:
        payload = rng.randbytes(length)
    return [step, index, payload]


def apply_operation(model: dict, op: tuple) -> None:
    """Apply op to the model, a dict of the records."""
    kind = op[0]
    if kind == "set":
        model[op[1]] = op[2]
    elif kind == "multiset":
        model.update(op[1])
    elif kind == "pop":
        model.pop(op[1], None)
    else:
        model.clear()


def perform(db: ShareDB, op: tuple) -> None:
    """Run op on the store, as one committed transaction."""
    kind = op[0]
    if kind == "set":
        db[op[1]] = op[2]
    elif kind == "multiset":
        db.multiset(op[1])
    elif kind == "pop":
        db.pop(op[1], None)
    else:
        db.clear()


class Model:
    """The records of the workload seed after a given step, replayed from
    the empty store (step -1)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.step = -1
        self.records: dict = {}

    def advance(self) -> None:
        """Apply the next step."""
        self.step += 1
        apply_operation(self.records, operation(self.seed, self.step))

    def advance_to(self, step: int) -> None:
        while self.step < step:
            self.advance()


def write_steps(
    path: str, seed: int, first_step: int, durable: bool, ack_fd: int
) -> None:
    """Run the workload from first_step on, forever, acknowledging each
    step on ack_fd after its call has returned."""
    db = ShareDB(path, durable=durable)
    for step in itertools.count(first_step):
        perform(db, operation(seed, step))
        os.write(ack_fd, b"%d\n" % step)


def start_writer(
    path: str, seed: int, first_step: int, durable: bool
) -> tuple[int, AckPipe]:
    """Fork a writer child from first_step on and return its pid and the
    read end of its acknowledgements."""
    read_fd, write_fd = os.pipe()

    def body() -> None:
        os.close(read_fd)
        write_steps(path, seed, first_step, durable, write_fd)

    pid = fork_child(body)
    os.close(write_fd)
    return pid, AckPipe(read_fd, first_step - 1)


def kill_writer(pid: int, acks: AckPipe) -> None:
    """Kill a writer that must still run and read its last
    acknowledgements."""
    if acks.closed:
        code = wait_child(pid)
        pytest.fail(f"the writer ended by itself with exit code {code}")
    assert kill_child(pid) == -signal.SIGKILL
    acks.read_to_end()


def describe_difference(store: dict, expected: dict, limit: int = 5) -> str:
    """Return the keys that are missing, extra or changed in store."""
    missing = sorted(expected.keys() - store.keys())
    extra = sorted(store.keys() - expected.keys())
    changed = sorted(
        key for key in store.keys() & expected.keys() if store[key] != expected[key]
    )
    return (
        f"{len(missing)} missing {missing[:limit]}, {len(extra)} extra "
        f"{extra[:limit]}, {len(changed)} changed {changed[:limit]}"
    )


# The kill loop -----------------------------------------------------------


@dataclass
class CrashReport:
    """Counts of one run of run_kill_loop()."""

    kills: int = 0
    # Steps that writers acknowledged before they were killed, all found
    # in the store.
    acknowledged: int = 0
    # Kills after which the step in flight (begun, not acknowledged) had
    # committed.
    in_flight_committed: int = 0
    # Kills that came before the writer acknowledged any step.
    early_kills: int = 0
    # Records compared with the model, summed over the checks.
    records_checked: int = 0


def check_after_kill(db: ShareDB, model: Model, acknowledged: int) -> int:
    """Check the store after a writer died having acknowledged step
    acknowledged; return the number of records compared.

    The store must equal the model after step acknowledged or after the
    next step, and the model is left at the step that matched.
    """
    model.advance_to(acknowledged)
    store = dict(db.items())
    if store != model.records:
        before = describe_difference(store, model.records)
        model.advance()
        if store != model.records:
            after = describe_difference(store, model.records)
            pytest.fail(
                f"workload {model.seed}: the store matches neither step "
                f"{acknowledged}, the last acknowledged ({before}), nor "
                f"step {model.step} ({after})"
            )
    problems = lmdb.verify(db.path)["problems"]
    assert problems == [], f"workload {model.seed}, step {model.step}: {problems}"
    return len(store)


def probe_writes(db: ShareDB, number: int) -> None:
    """Write, read back and delete PROBE_KEY, failing if a write hangs."""

    def probe() -> None:
        db[PROBE_KEY] = number
        assert db[PROBE_KEY] == number
        del db[PROBE_KEY]

    call_with_timeout(probe)
    assert PROBE_KEY not in db


def kill_delay(rng: random.Random, durable: bool) -> float:
    """Return seconds to let a writer run: some kills land while it opens
    the store, most after tens or hundreds of steps.

    A durable writer flushes every commit to disk, which takes
    milliseconds, so it gets three times as long.
    """
    scale = 3.0 if durable else 1.0
    kind = rng.random()
    if kind < 0.2:
        return rng.uniform(0.0, 0.005)
    if kind < 0.8:
        return scale * rng.uniform(0.005, 0.05)
    return scale * rng.uniform(0.05, 0.2)


def run_kill_loop(
    path: str,
    kills: int,
    seed: int,
    durable: bool = False,
    serial: str = "pickle",
    compress: bool = False,
) -> CrashReport:
    """Start and kill writers kills times, checking the store after each.

    The parent keeps the store open throughout, so a new writer never
    opens it alone and must recover the lock state the dead one left. On
    every fourth kill the parent also closes and reopens the store.
    """
    report = CrashReport()
    rng = random.Random(seed)
    model = Model(seed)
    db = ShareDB(path, reset=True, serial=serial, compress=compress)
    try:
        next_step = 0
        for kill in range(kills):
            pid, acks = start_writer(db.path, seed, next_step, durable)
            acks.read_for(kill_delay(rng, durable))
            kill_writer(pid, acks)
            report.kills += 1
            report.acknowledged += acks.count
            report.early_kills += acks.count == 0
            if kill % 4 == 3:
                db.close()
                db = ShareDB(path)
            report.records_checked += check_after_kill(db, model, acks.last)
            report.in_flight_committed += model.step > acks.last
            probe_writes(db, kill)
            next_step = model.step + 1
    finally:
        db.close()
    return report


@pytest.mark.parametrize(
    ("durable", "serial", "compress"),
    [(False, "pickle", False), (True, "msgpack", True)],
    ids=["nosync-pickle", "durable-msgpack-zlib"],
)
def test_killed_writers_lose_nothing(tmp_path, durable, serial, compress):
    seed = random.randrange(1 << 30)
    report = run_kill_loop(
        str(tmp_path / "store"), 20, seed, durable, serial, compress
    )

    assert report.kills == 20
    # The writers got far enough to be killed after committed steps.
    assert report.acknowledged > 0, report


@pytest.mark.slow
@pytest.mark.parametrize("durable", [False, True], ids=["nosync", "durable"])
def test_killed_writers_lose_nothing_long(tmp_path, durable):
    seed = random.randrange(1 << 30)
    report = run_kill_loop(str(tmp_path / "store"), 200, seed, durable)
    print(f"workload {seed}, durable={durable}: {report}")

    assert report.kills == 200
    assert report.acknowledged > 0, report


# A reader with an open snapshot while writers die -----------------------


def read_snapshot_slowly(path: str, ready_fd: int, go_fd: int, output: str) -> None:
    """Read a non-empty snapshot slowly and pickle its records to output.

    Writes a byte to ready_fd once the snapshot is taken, reads up to 100
    records while the writers run, then waits for a byte on go_fd before
    it reads the rest.
    """
    db = ShareDB(path)
    while True:
        items = db.items()
        first = next(items, None)
        if first is not None:
            break
    os.write(ready_fd, b"r")
    records = [first]
    for item in itertools.islice(items, 100):
        records.append(item)
        time.sleep(0.001)
    read_byte(go_fd)
    for item in items:
        records.append(item)
        time.sleep(0.0002)
    with open(output, "wb") as file:
        pickle.dump(records, file)


def test_reader_snapshot_survives_writer_kills(tmp_path):
    seed = random.randrange(1 << 30)
    db = ShareDB(str(tmp_path / "store"))
    first_writer, acks = start_writer(db.path, seed, 0, durable=False)
    acks.read_until(200)
    # Every step acknowledged before the reader starts is in its snapshot.
    lower = acks.last
    ready_read, ready_write = os.pipe()
    go_read, go_write = os.pipe()
    output = str(tmp_path / "snapshot.pickle")

    def body() -> None:
        read_snapshot_slowly(db.path, ready_write, go_read, output)

    reader = fork_child(body)
    os.close(ready_write)
    os.close(go_read)
    assert read_byte(ready_read) == b"r"
    acks.read(0)
    # A step that commits after the snapshot cannot be acknowledged
    # before it, so the snapshot is at most one step past this.
    upper = acks.last + 1
    acks.read_until(upper + 200)
    kill_writer(first_writer, acks)
    # A second writer rewrites and clears the records many times, so the
    # pages of the snapshot would be reused if the reader did not keep
    # them.
    second_writer, second_acks = start_writer(db.path, seed, acks.last + 1, False)
    second_acks.read_until(acks.last + 2000)
    kill_writer(second_writer, second_acks)
    os.write(go_write, b"g")
    reader_code = wait_child(reader)
    os.close(ready_read)
    os.close(go_write)

    assert reader_code == 0
    with open(output, "rb") as file:
        snapshot = dict(pickle.load(file))
    model = Model(seed)
    model.advance_to(lower)
    matches = []
    while model.step <= upper:
        if model.records == snapshot:
            matches.append(model.step)
        model.advance()
    assert matches != [], (
        f"workload {seed}: the snapshot matches no step from {lower} to {upper}"
    )
    check_after_kill(db, model, second_acks.last)
    db.close()


# Writers killed while they hold the write lock --------------------------


def hold_write_lock(path: str, ready_fd: int) -> None:
    """Begin a write transaction on the store, put records that span many
    pages, report on ready_fd and wait to be killed."""
    db = ShareDB(path)
    txn = db._env.begin(write=True)
    for number in range(2000):
        txn.put(b"uncommitted-%d" % number, b"x" * 300)
    os.write(ready_fd, b"r")
    time.sleep(TIMEOUT * 2)


def write_after_kill(path: str, writer: int) -> None:
    """Write a single record and a batch of 50 owned by writer."""
    db = ShareDB(path)
    db[f"after-{writer}"] = writer
    db.multiset((f"batch-{writer}-{number}", number) for number in range(50))
    db.close()


def test_writer_killed_holding_lock_next_writers_proceed(tmp_path):
    db = ShareDB(str(tmp_path / "store"))
    db.multiset((f"base-{number}", number) for number in range(100))
    expected = {f"base-{number}": number for number in range(100)}
    rounds, next_writers = 5, 3
    for round_number in range(rounds):
        ready_read, ready_write = os.pipe()

        def body(ready_write=ready_write) -> None:
            hold_write_lock(db.path, ready_write)

        holder = fork_child(body)
        os.close(ready_write)
        assert read_byte(ready_read) == b"r"
        os.close(ready_read)
        # A write of this process waits for the lock while the holder dies.
        waiting = threading.Thread(
            target=db.set, args=(f"parent-{round_number}", round_number), daemon=True
        )
        waiting.start()
        assert kill_child(holder) == -signal.SIGKILL
        writers = []
        for number in range(next_writers):
            writer = round_number * next_writers + number
            pid = fork_child(lambda writer=writer: write_after_kill(db.path, writer))
            writers.append(pid)
            expected[f"after-{writer}"] = writer
            expected.update({f"batch-{writer}-{item}": item for item in range(50)})
        codes = [wait_child(pid) for pid in writers]
        waiting.join(TIMEOUT)
        expected[f"parent-{round_number}"] = round_number

        assert codes == [0] * next_writers
        assert not waiting.is_alive(), "the parent's write still waits for the lock"
    with db._env.begin() as txn:
        uncommitted = txn.get(b"uncommitted-0")

    assert uncommitted is None
    assert dict(db.items()) == expected
    assert lmdb.verify(db.path)["problems"] == []
    db.close()


def large_batch_key(round_number: int, index: int) -> str:
    return f"r{round_number:03d}-{index:05d}"


def large_batch(
    round_number: int, size: int, ready_fd: int
) -> Iterator[tuple[str, list]]:
    """Yield the pairs of the batch of round round_number, then write a
    byte to ready_fd: multiset() has packed the batch by then and begins
    its write transaction right after."""
    for index in range(size):
        yield (large_batch_key(round_number, index), [round_number, index, b"v" * 40])
    os.write(ready_fd, b"r")


@pytest.mark.parametrize(
    "rounds",
    [pytest.param(6, id="6"), pytest.param(60, id="60", marks=pytest.mark.slow)],
)
def test_writer_killed_in_large_multiset_is_atomic(tmp_path, rounds):
    db = ShareDB(str(tmp_path / "store"))
    size = 50_000
    rng = random.Random()
    committed = 0
    stored_batches = 0
    for round_number in range(rounds):
        ready_read, ready_write = os.pipe()

        def body(round_number=round_number, ready_write=ready_write) -> None:
            writer = ShareDB(db.path)
            writer.multiset(large_batch(round_number, size, ready_write))
            time.sleep(TIMEOUT * 2)

        pid = fork_child(body)
        os.close(ready_write)
        assert read_byte(ready_read) == b"r"
        os.close(ready_read)
        # Writing the batch takes tens of milliseconds, so many kills land
        # before its commit.
        time.sleep(rng.uniform(0.0, 0.05))
        assert kill_child(pid) == -signal.SIGKILL
        keys = [large_batch_key(round_number, index) for index in range(size)]
        values = list(db.multiget(keys))
        expected = [[round_number, index, b"v" * 40] for index in range(size)]
        if values[0] is not None:
            committed += 1
            stored_batches += 1

        assert values == expected or values == [None] * size
        assert len(db) == stored_batches * size
        next_writer = fork_child(
            lambda number=round_number: write_after_kill(db.path, number)
        )
        assert wait_child(next_writer) == 0
        assert db[f"after-{round_number}"] == round_number
        db.multiremove(
            [f"after-{round_number}"] + [f"batch-{round_number}-{n}" for n in range(50)]
        )
        if stored_batches == 3:
            db.clear()
            stored_batches = 0
    print(f"{committed} of {rounds} batches committed before the kill")

    assert lmdb.verify(db.path)["problems"] == []
    db.close()


# A store created by a process killed while it opens ----------------------


def test_store_killed_during_creation_opens(tmp_path):
    rng = random.Random()
    for round_number in range(10):
        path = str(tmp_path / f"store-{round_number}")

        def body(path=path) -> None:
            db = ShareDB(path, serial="msgpack", compress=True)
            db["created"] = 1

        pid = fork_child(body)
        time.sleep(rng.uniform(0.0, 0.01))
        code = kill_child(pid)
        db = ShareDB(path, serial="msgpack", compress=True)
        db["reopened"] = 2

        assert code in (0, -signal.SIGKILL)
        assert db.serial == "msgpack"
        assert db.compress is True
        assert db.get("created") in (None, 1)
        assert db["reopened"] == 2
        assert lmdb.verify(db.path)["problems"] == []
        db.close()


# Reader slots of killed readers -------------------------------------------


def hold_snapshot(path: str, ready_fd: int) -> None:
    """Open the store, read one record of a snapshot, report on ready_fd
    and wait to be killed; exit with 3 if the record is wrong."""
    db = ShareDB(path)
    items = db.items()
    if next(items) != (0, 0):
        os._exit(3)
    os.write(ready_fd, b"r")
    time.sleep(TIMEOUT * 2)


def start_snapshot_holders(path: str, count: int) -> list[int]:
    """Start count children that each hold a snapshot, and return their
    pids once all of them do."""
    pids = []
    pipes = []
    for _ in range(count):
        ready_read, ready_write = os.pipe()

        def body(ready_write=ready_write) -> None:
            hold_snapshot(path, ready_write)

        pids.append(fork_child(body))
        os.close(ready_write)
        pipes.append(ready_read)
    for pid, ready_read in zip(pids, pipes):
        byte = read_byte(ready_read)
        os.close(ready_read)
        if byte != b"r":
            pytest.fail(f"reader {pid} failed with exit code {wait_child(pid)}")
    return pids


def read_forever(path: str) -> None:
    """Open the store and read it whole, again and again."""
    db = ShareDB(path)
    while True:
        for _item in db.items():
            pass


def read_in_child(path: str) -> int:
    """Return the exit code of a child that opens the store and reads it
    once: 0, or 4 if either step raised for want of a reader slot."""

    def body() -> None:
        try:
            db = ShareDB(path)
            db[0]
        except lmdb.ReadersFullError:
            os._exit(4)

    return wait_child(fork_child(body))


@pytest.mark.parametrize(
    "waves",
    [pytest.param(4, id="4"), pytest.param(40, id="40", marks=pytest.mark.slow)],
)
def test_killed_readers_slots_reclaimed(tmp_path, waves):
    slots, records = 4, 100
    db = ShareDB(str(tmp_path / "store"), readers=slots)
    db.multiset((number, number) for number in range(records))
    # This process keeps one slot for its next read, so children can hold
    # slots - 1 snapshots at once.
    db[0]
    holders = slots - 1
    killed = 0
    for _ in range(waves):
        pids = start_snapshot_holders(db.path, holders)
        # Every slot is taken by a live process now.
        full_code = read_in_child(db.path)
        codes = [kill_child(pid) for pid in pids]
        killed += len(pids)

        assert full_code == 4
        assert codes == [-signal.SIGKILL] * holders
    # Readers killed at random moments, some while they take a slot: the
    # lock of the reader table must not stay with a dead process.
    rng = random.Random()
    random_codes = []
    for _ in range(waves * holders):
        pid = fork_child(lambda: read_forever(db.path))
        time.sleep(rng.uniform(0.0, 0.01))
        random_codes.append(kill_child(pid))
        killed += 1
    # Writes go on while the dead readers' snapshots are released.
    for round_number in range(5):
        db.multiset((number, number + round_number) for number in range(records))
    db.multiset((number, number) for number in range(records))
    # As many readers as there are slots, at once: this process and
    # holders children.
    snapshot = db.items()
    first = next(snapshot)
    pids = start_snapshot_holders(db.path, holders)
    rest = list(snapshot)
    final_codes = [kill_child(pid) for pid in pids]

    assert killed == 2 * waves * holders
    assert killed > slots
    assert random_codes == [-signal.SIGKILL] * (waves * holders)
    assert final_codes == [-signal.SIGKILL] * holders
    assert [first, *rest] == [(number, number) for number in range(records)]
    assert read_in_child(db.path) == 0
    assert lmdb.verify(db.path)["problems"] == []
    db.close()


# Script ---------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Kill writer processes of a store at random moments and "
        "check after each kill that no committed write is lost."
    )
    parser.add_argument(
        "--kills", type=int, default=200, help="number of writers to kill (default 200)"
    )
    parser.add_argument(
        "--durable", action="store_true", help="open the writers with durable=True"
    )
    parser.add_argument(
        "--serial",
        choices=["pickle", "msgpack"],
        default="pickle",
        help="serializer of a new store (default pickle)",
    )
    parser.add_argument("--compress", action="store_true", help="zlib-compress values")
    parser.add_argument(
        "--seed",
        type=int,
        help="seed of the workload and of the kill delays (default: random)",
    )
    arguments = parser.parse_args()

    seed = arguments.seed if arguments.seed is not None else random.randrange(1 << 30)
    with tempfile.TemporaryDirectory() as directory:
        started = time.monotonic()
        report = run_kill_loop(
            os.path.join(directory, "store"),
            arguments.kills,
            seed,
            arguments.durable,
            arguments.serial,
            arguments.compress,
        )
        elapsed = time.monotonic() - started

    print(f"workload seed {seed}, durable={arguments.durable}, {elapsed:.1f} s")
    for name, value in vars(report).items():
        print(f"  {name}: {value}")
    print("  lost: 0 (every acknowledged step was found after every kill)")


if __name__ == "__main__":
    main()
