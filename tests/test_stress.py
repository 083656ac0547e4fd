"""Stress tests: writer and reader processes, and threads, on one store.

Every writer owns its keys ("w3-0000000", "w3-0000001", ...) and commits
them in index order, in multiset batches and single sets, together with
its counter key ("w3.count"), the number of keys committed so far. A
batch writes its keys and the counter in one transaction. A single set
commits the key and then, in a second transaction, the counter. So every
snapshot must show, for each writer, keys 0 to n - 1 with their exact
values and nothing after them, and a counter of n or n - 1. Readers
check this on whole snapshots, and check point reads against the
counters, while the writers run.

Every wait has a timeout, so a deadlock fails the test.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import threading
import time
from collections.abc import Iterable

import pytest

# kill_leftovers is an autouse fixture: importing it applies it here too.
from test_crash import (  # noqa: F401
    TIMEOUT,
    fork_child,
    kill_child,
    kill_leftovers,
    wait_child,
)

from sharedb import ShareDB, lmdb

WRITERS = 8
READERS = 8

# Maximum number of problems a reader lists. It counts the others.
MAX_PROBLEMS = 20


# Keys and values ---------------------------------------------------------


def record_key(owner: str, index: int) -> str:
    return f"{owner}-{index:07d}"


def record_value(owner: str, index: int) -> list:
    return [owner, index, b"x" * (index % 97)]


def counter_key(owner: str) -> str:
    return f"{owner}.count"


def scratch_key(owner: str) -> str:
    """Key that its owner sets and pops again, never left in the store."""
    return f"{owner}.scratch"


def check_snapshot(
    records: dict, owners: Iterable[str]
) -> tuple[list[str], dict[str, int]]:
    """Check the records of one snapshot against the invariants of the
    module docstring; return the problems and each owner's counter."""
    problems = []
    indexes: dict[str, list[int]] = {owner: [] for owner in owners}
    counters: dict[str, int] = {}
    for key, value in records.items():
        owner, _, rest = key.partition("-")
        if rest:
            indexes.setdefault(owner, []).append(int(rest))
            if value != record_value(owner, int(rest)):
                problems.append(f"{key} has the value {value!r}")
        elif key.endswith(".count"):
            counters[key[: -len(".count")]] = value
        elif not key.endswith(".scratch"):
            problems.append(f"unexpected key {key!r}")
    for owner, found in indexes.items():
        found.sort()
        count = counters.get(owner, 0)
        if found != list(range(len(found))):
            missing = sorted(set(range(len(found))) - set(found))
            problems.append(f"{owner} has a gap: missing {missing[:5]}")
        if not len(found) - 1 <= count <= len(found):
            problems.append(f"{owner} has {len(found)} keys but counter {count}")
    return problems, counters


# Processes ---------------------------------------------------------------


def write_records(path: str, owner: str, deadline: float, ack_fd: int) -> None:
    """Commit owner's records until deadline (time.monotonic(), which
    all processes share), resuming at the count in the store.

    Writes the counter to ack_fd after each commit of it, and a final
    "done" line.
    """
    db = ShareDB(path)
    rng = random.Random()
    count = db.get(counter_key(owner), 0)
    while time.monotonic() < deadline:
        kind = rng.random()
        if kind < 0.5:
            size = rng.randrange(1, 30)
            pairs = [
                (record_key(owner, index), record_value(owner, index))
                for index in range(count, count + size)
            ]
            pairs.append((counter_key(owner), count + size))
            db.multiset(pairs)
            count += size
        elif kind < 0.85:
            db[record_key(owner, count)] = record_value(owner, count)
            count += 1
            db[counter_key(owner)] = count
        else:
            db[scratch_key(owner)] = count
            if db.pop(scratch_key(owner)) != count:
                raise AssertionError(f"{owner} lost its scratch value {count}")
            continue
        os.write(ack_fd, b"%d\n" % count)
    os.write(ack_fd, b"done\n")
    db.close()


def read_and_check(path: str, owners: list[str], stop_fd: int, report_fd: int) -> None:
    """Check snapshots and point reads until stop_fd is readable, then
    write a JSON report to report_fd."""
    db = ShareDB(path)
    rng = random.Random()
    problems: list[str] = []
    problem_count = 0
    snapshots = point_reads = 0
    last_counters = dict.fromkeys(owners, 0)
    while True:
        found, counters = check_snapshot(dict(db.items()), owners)
        snapshots += 1
        for owner, count in counters.items():
            if count < last_counters[owner]:
                found.append(
                    f"{owner} counter went back from {last_counters[owner]} to {count}"
                )
            last_counters[owner] = count

        for _ in range(20):
            owner = rng.choice(owners)
            count = db.get(counter_key(owner), 0)
            point_reads += 1
            if count == 0:
                continue
            # The counter commits after its keys, so they are all there.
            start = rng.randrange(count)
            indexes = range(start, min(count, start + 50))
            values = list(db.multiget(record_key(owner, index) for index in indexes))
            if values != [record_value(owner, index) for index in indexes]:
                found.append(f"{owner} misses keys below its counter {count}")

        problem_count += len(found)
        problems.extend(found[: MAX_PROBLEMS - len(problems)])
        if select.select([stop_fd], [], [], 0)[0]:
            break

    report = {
        "snapshots": snapshots,
        "point_reads": point_reads,
        "problem_count": problem_count,
        "problems": problems,
    }
    os.write(report_fd, json.dumps(report).encode() + b"\n")
    db.close()


class Writer:
    """A writer child of one owner and the pipe of its acknowledgements."""

    def __init__(self, path: str, owner: str, deadline: float) -> None:
        self.owner = owner
        self.deadline = deadline
        read_fd, write_fd = os.pipe()
        self.pid = fork_child(lambda: write_records(path, owner, deadline, write_fd))
        os.close(write_fd)
        self.fd = read_fd
        # Last counter this writer committed and acknowledged, or None.
        self.acknowledged: int | None = None
        self.done = False
        self._buffer = b""

    def read(self) -> bool:
        """Read what is in the pipe; return False at end of file."""
        data = os.read(self.fd, 65536)
        lines = (self._buffer + data).split(b"\n")
        self._buffer = lines.pop()
        for line in lines:
            if line == b"done":
                self.done = True
            else:
                self.acknowledged = int(line)
        return bool(data)

    def kill(self) -> bool:
        """Kill the writer and return True, or False if it had already
        finished by itself, which it may do only after its deadline."""
        code = kill_child(self.pid)
        while self.read():
            pass
        os.close(self.fd)
        if code == 0:
            assert self.done and time.monotonic() >= self.deadline
            return False
        assert code == -signal.SIGKILL
        return True

    def finish(self) -> int:
        """Reap the writer and return its exit code."""
        code = wait_child(self.pid)
        while self.read():
            pass
        os.close(self.fd)
        return code


def read_json_line(fd: int, timeout: float = TIMEOUT) -> dict:
    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(b"\n"):
        if not select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
            pytest.fail(f"no report from a reader in {timeout} s")
        chunk = os.read(fd, 65536)
        if not chunk:
            pytest.fail(f"a reader ended without a report, after {data!r}")
        data += chunk
    return json.loads(data)


def run_writers_and_readers(path: str, seconds: float, kill_writers: bool) -> dict:
    """Run WRITERS writers and READERS readers on the store for seconds,
    then check the reports and the final store, and return counts.

    With kill_writers, random writers are killed with SIGKILL and
    restarted as they run.
    """
    db = ShareDB(path)
    owners = [f"w{number}" for number in range(WRITERS)]
    readers = []
    for _ in range(READERS):
        stop_read, stop_write = os.pipe()
        report_read, report_write = os.pipe()
        pid = fork_child(
            lambda stop_read=stop_read, report_write=report_write: read_and_check(
                db.path, owners, stop_read, report_write
            )
        )
        os.close(stop_read)
        os.close(report_write)
        readers.append((pid, stop_write, report_read))
    deadline = time.monotonic() + seconds
    writers = {owner: Writer(db.path, owner, deadline) for owner in owners}
    acknowledged = dict.fromkeys(owners, 0)
    kills = 0
    rng = random.Random()
    next_kill = time.monotonic() + rng.uniform(0.05, 0.3)
    # In the kill run, at least one kill even on a machine so slow that
    # the first one comes after the deadline.
    while time.monotonic() < deadline or (kill_writers and kills == 0):
        fds = {writer.fd: writer for writer in writers.values()}
        ready, _, _ = select.select(list(fds), [], [], 0.02)
        for fd in ready:
            fds[fd].read()
        if kill_writers and time.monotonic() >= next_kill:
            owner = rng.choice(owners)
            kills += writers[owner].kill()
            last = writers[owner].acknowledged or 0
            acknowledged[owner] = max(acknowledged[owner], last)
            # A writer started after the deadline still runs for a second,
            # so that the next kill finds it running.
            writers[owner] = Writer(
                db.path, owner, max(deadline, time.monotonic() + 1.0)
            )
            next_kill = time.monotonic() + rng.uniform(0.05, 0.3)
    codes = {owner: writer.finish() for owner, writer in writers.items()}
    for owner, writer in writers.items():
        acknowledged[owner] = max(acknowledged[owner], writer.acknowledged or 0)
    for _pid, stop_write, _report_read in readers:
        os.write(stop_write, b"s")
    reports = [read_json_line(report_read) for _pid, _stop, report_read in readers]
    reader_codes = [wait_child(pid) for pid, _stop, _report in readers]
    for _pid, stop_write, report_read in readers:
        os.close(stop_write)
        os.close(report_read)

    assert codes == dict.fromkeys(owners, 0)
    assert all(writer.done for writer in writers.values())
    assert reader_codes == [0] * READERS
    assert [report["problems"] for report in reports] == [[]] * READERS
    assert all(report["snapshots"] >= 1 for report in reports)
    store = dict(db.items())
    problems, counters = check_snapshot(store, owners)
    assert problems == []
    for owner in owners:
        # No acknowledged write is lost, killed writers included.
        assert counters.get(owner, 0) >= acknowledged[owner]
        # The last writer of each owner ended by itself, after committing
        # and acknowledging its last counter.
        if writers[owner].acknowledged is not None:
            assert counters[owner] == writers[owner].acknowledged
    if not kill_writers:
        # A killed writer may leave a scratch key, or a key its counter
        # does not count yet; without kills there is neither.
        assert len(store) == sum(counters.values()) + len(counters)
    assert lmdb.verify(db.path)["problems"] == []
    db.close()
    return {
        "records": len(store),
        "kills": kills,
        "snapshots": sum(report["snapshots"] for report in reports),
        "point_reads": sum(report["point_reads"] for report in reports),
    }


@pytest.mark.parametrize(
    ("seconds", "kill_writers"),
    [
        pytest.param(2.0, False, id="2s"),
        pytest.param(2.0, True, id="2s-kills"),
        pytest.param(30.0, False, id="30s", marks=pytest.mark.slow),
        pytest.param(30.0, True, id="30s-kills", marks=pytest.mark.slow),
    ],
)
def test_processes_keep_snapshot_invariants(tmp_path, seconds, kill_writers):
    counts = run_writers_and_readers(str(tmp_path / "store"), seconds, kill_writers)
    print(counts)

    assert counts["records"] > WRITERS
    assert (counts["kills"] > 0) == kill_writers


# Threads -----------------------------------------------------------------


@pytest.mark.parametrize(
    "rounds",
    [
        pytest.param(150, id="150"),
        pytest.param(1000, id="1000", marks=pytest.mark.slow),
    ],
)
def test_threads_keep_snapshot_invariants(tmp_path, rounds):
    db = ShareDB(str(tmp_path / "store"))
    threads = 8
    owners = [f"t{number}" for number in range(threads)]
    counts = dict.fromkeys(owners, 0)
    failures: list[str] = []
    barrier = threading.Barrier(threads, timeout=TIMEOUT)
    # Operations done by each thread, read by the watchdog below.
    progress = dict.fromkeys(owners, 0)

    def work(owner: str) -> None:
        rng = random.Random(owner)
        count = 0
        try:
            barrier.wait()
            for _ in range(rounds):
                kind = rng.random()
                if kind < 0.3:
                    size = rng.randrange(1, 20)
                    pairs = [
                        (record_key(owner, index), record_value(owner, index))
                        for index in range(count, count + size)
                    ]
                    db.multiset([*pairs, (counter_key(owner), count + size)])
                    count += size
                elif kind < 0.55:
                    db[record_key(owner, count)] = record_value(owner, count)
                    count += 1
                    db[counter_key(owner)] = count
                elif kind < 0.65:
                    db[scratch_key(owner)] = count
                    if db.pop(scratch_key(owner)) != count:
                        failures.append(f"{owner} lost its scratch value {count}")
                elif kind < 0.7:
                    problems, _ = check_snapshot(dict(db.items()), owners)
                    failures.extend(problems)
                else:
                    other = rng.choice(owners)
                    seen = db.get(counter_key(other), 0)
                    if seen and db.get(record_key(other, seen - 1)) is None:
                        failures.append(
                            f"{other} misses a key below its counter {seen}"
                        )
                    if other == owner and seen != count:
                        failures.append(
                            f"{owner} reads its counter as {seen}, not {count}"
                        )
                progress[owner] += 1
            counts[owner] = count
        except Exception as exc:
            failures.append(f"{owner}: {exc!r}")

    workers = [
        threading.Thread(target=work, args=(owner,), daemon=True) for owner in owners
    ]
    for worker in workers:
        worker.start()
    # A long run may take minutes on a busy machine, so the watchdog fails
    # the test only if no thread finishes an operation for TIMEOUT s.
    last_progress, last_change = -1, time.monotonic()
    while any(worker.is_alive() for worker in workers):
        total = sum(progress.values())
        if total != last_progress:
            last_progress, last_change = total, time.monotonic()
        elif time.monotonic() - last_change > TIMEOUT:
            stuck = {owner: done for owner, done in progress.items() if done < rounds}
            pytest.fail(
                f"no thread made progress in {TIMEOUT} s; operations done: {stuck}"
            )
        workers[0].join(0.1)
    assert failures == []
    store = dict(db.items())
    problems, counters = check_snapshot(store, owners)
    assert problems == []
    assert counters == {owner: count for owner, count in counts.items() if count}
    assert len(store) == sum(counts.values()) + len(counters)
    db.close()
