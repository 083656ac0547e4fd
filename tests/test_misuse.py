"""Tests of sharedb.lmdb used wrongly: after an end, across threads and forks.

Every misuse must raise a clean exception. None may crash, hang or touch
freed LMDB handles. Scenarios that would hang if the extension held the
GIL while it waits run in a child interpreter with a timeout.
"""

import gc
import itertools
import os
import subprocess
import threading
import time

import pytest
from conftest import run_python

from sharedb import lmdb

RECORDS = [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")]

# Seconds to wait for another thread or process.  The tests finish far
# sooner unless something is broken.
TIMEOUT = 10


def fill(env, records=RECORDS):
    with env.begin(write=True) as txn:
        txn.putmulti(records)


def run_child(code, *args):
    """Run code in a new interpreter, and fail the test if it hangs."""
    try:
        return run_python(code, *args, timeout=TIMEOUT * 2)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the child interpreter did not finish in {TIMEOUT * 2} s")


def start_thread(target, *args):
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def join(thread):
    thread.join(TIMEOUT)
    assert not thread.is_alive(), "the thread did not finish in time"


def call_in_thread(function, *args):
    """Call function in a new thread and return its result or error in a dict."""
    outcome = {}

    def run():
        try:
            outcome["result"] = function(*args)
        except BaseException as error:  # noqa: BLE001 - handed back to the test
            outcome["error"] = error

    join(start_thread(run))
    return outcome


@pytest.fixture
def filled(env):
    fill(env)
    return env


# ---------------------------------------------------------------------------
# A transaction after commit or abort


TXN_CALLS = {
    "get": lambda txn: txn.get(b"a"),
    "put": lambda txn: txn.put(b"k", b"v"),
    "replace": lambda txn: txn.replace(b"a", b"v"),
    "pop": lambda txn: txn.pop(b"a"),
    "delete": lambda txn: txn.delete(b"a"),
    "drop": lambda txn: txn.drop(),
    "stat": lambda txn: txn.stat(),
    "cursor": lambda txn: txn.cursor(),
    "putmulti": lambda txn: txn.putmulti([(b"k", b"v")]),
    "getmulti": lambda txn: txn.getmulti([b"a"]),
    "id": lambda txn: txn.id,
    "enter": lambda txn: txn.__enter__(),
}


@pytest.mark.parametrize("name", TXN_CALLS)
@pytest.mark.parametrize("end", ["commit", "abort"])
def test_txn_after_end_raises(filled, name, end):
    txn = filled.begin(write=True)
    getattr(txn, end)()
    with pytest.raises(lmdb.ClosedError, match="the transaction has ended"):
        TXN_CALLS[name](txn)


@pytest.mark.parametrize(
    ("end", "reason"),
    [("commit", "it was committed"), ("abort", "it was aborted")],
)
def test_txn_after_end_reason(env, end, reason):
    txn = env.begin(write=True)
    getattr(txn, end)()
    with pytest.raises(lmdb.ClosedError, match=reason):
        txn.get(b"a")


@pytest.mark.parametrize("end", ["commit", "abort"])
def test_txn_commit_after_end(env, end):
    txn = env.begin(write=True)
    getattr(txn, end)()
    with pytest.raises(lmdb.ClosedError):
        txn.commit()


def test_read_txn_after_end_raises(filled):
    txn = filled.begin()
    txn.abort()
    with pytest.raises(lmdb.ClosedError):
        txn.get(b"a")


def test_txn_properties_after_end(env):
    txn = env.begin(write=True)
    txn.commit()
    assert txn.ended is True
    assert txn.write is True
    assert txn.env is env


def test_txn_after_end_env_still_usable(filled):
    txn = filled.begin(write=True)
    txn.abort()
    with pytest.raises(lmdb.ClosedError):
        txn.put(b"k", b"v")
    with filled.begin() as reader:
        assert reader.get(b"a") == b"1"


def test_closed_error_is_runtime_error(env):
    txn = env.begin()
    txn.abort()
    with pytest.raises(RuntimeError):
        txn.get(b"a")


# ---------------------------------------------------------------------------
# A cursor after its transaction ended


CURSOR_CALLS = {
    "first": lambda cursor: cursor.first(),
    "last": lambda cursor: cursor.last(),
    "next": lambda cursor: cursor.next(),
    "prev": lambda cursor: cursor.prev(),
    "set_key": lambda cursor: cursor.set_key(b"a"),
    "set_range": lambda cursor: cursor.set_range(b"a"),
    "key": lambda cursor: cursor.key(),
    "value": lambda cursor: cursor.value(),
    "item": lambda cursor: cursor.item(),
    "put": lambda cursor: cursor.put(b"k", b"v"),
    "delete": lambda cursor: cursor.delete(),
    "iternext": lambda cursor: cursor.iternext(),
    "iterprev": lambda cursor: cursor.iterprev(),
    "iter": lambda cursor: iter(cursor),
    "enter": lambda cursor: cursor.__enter__(),
}


@pytest.mark.parametrize("name", CURSOR_CALLS)
@pytest.mark.parametrize("end", ["commit", "abort"])
def test_cursor_after_txn_end_raises(filled, name, end):
    txn = filled.begin(write=True)
    cursor = txn.cursor()
    cursor.first()
    getattr(txn, end)()
    with pytest.raises(lmdb.ClosedError, match="the transaction has ended"):
        CURSOR_CALLS[name](cursor)


def test_cursor_of_read_txn_after_end(filled):
    txn = filled.begin()
    cursor = txn.cursor()
    cursor.first()
    txn.abort()
    with pytest.raises(lmdb.ClosedError):
        cursor.key()


def test_cursor_close_after_txn_end(filled):
    txn = filled.begin()
    cursor = txn.cursor()
    txn.abort()
    assert cursor.close() is None


def test_iterator_after_txn_end(filled):
    txn = filled.begin()
    iterator = txn.cursor().iternext()
    next(iterator)
    txn.abort()
    with pytest.raises(lmdb.ClosedError):
        next(iterator)


def test_txn_aborted_inside_iteration(filled):
    txn = filled.begin()
    keys = []
    with pytest.raises(lmdb.ClosedError):
        for key, _ in txn.cursor():
            keys.append(key)
            txn.abort()
    assert keys == [b"a"]


def test_cursor_of_child_after_parent_commit(env):
    parent = env.begin(write=True)
    child = env.begin(write=True, parent=parent)
    cursor = child.cursor()
    parent.commit()
    with pytest.raises(lmdb.ClosedError):
        cursor.first()


def test_parent_cursor_while_child_open(filled):
    parent = filled.begin(write=True)
    cursor = parent.cursor()
    child = filled.begin(write=True, parent=parent)
    with pytest.raises(lmdb.BadTxnError):
        cursor.first()
    child.abort()
    parent.abort()


def test_parent_cursor_after_child_commit(filled):
    parent = filled.begin(write=True)
    cursor = parent.cursor()
    cursor.first()
    with filled.begin(write=True, parent=parent) as child:
        child.put(b"0", b"child")
    cursor.first()
    assert cursor.item() == (b"0", b"child")
    parent.abort()


def test_parent_cursor_closed_while_child_open(filled):
    parent = filled.begin(write=True)
    cursor = parent.cursor()
    child = filled.begin(write=True, parent=parent)
    cursor.close()
    child.put(b"0", b"child")
    child.commit()
    parent.commit()
    with filled.begin() as txn:
        assert txn.get(b"0") == b"child"


# ---------------------------------------------------------------------------
# Transactions and cursors after env.close()


@pytest.mark.parametrize("name", TXN_CALLS)
@pytest.mark.parametrize("write", [False, True], ids=["read", "write"])
def test_txn_after_env_close(filled, name, write):
    txn = filled.begin(write=write)
    filled.close()
    with pytest.raises(lmdb.ClosedError):
        TXN_CALLS[name](txn)


@pytest.mark.parametrize("write", [False, True], ids=["read", "write"])
def test_txn_after_env_close_reason(filled, write):
    txn = filled.begin(write=write)
    filled.close()
    with pytest.raises(lmdb.ClosedError, match="its environment was closed"):
        txn.get(b"a")


@pytest.mark.parametrize("write", [False, True], ids=["read", "write"])
def test_txn_ended_by_env_close(filled, write):
    txn = filled.begin(write=write)
    filled.close()
    assert txn.ended is True


@pytest.mark.parametrize("write", [False, True], ids=["read", "write"])
def test_txn_commit_after_env_close(filled, write):
    txn = filled.begin(write=write)
    filled.close()
    with pytest.raises(lmdb.ClosedError):
        txn.commit()


def test_txn_abort_after_env_close(filled):
    txn = filled.begin(write=True)
    filled.close()
    assert txn.abort() is None


def test_write_after_env_close_not_committed(filled):
    txn = filled.begin(write=True)
    txn.put(b"lost", b"v")
    filled.close()
    with lmdb.Environment(filled.path) as again:
        with again.begin() as reader:
            assert reader.get(b"lost") is None


def test_context_manager_env_closed_inside(filled):
    with filled.begin(write=True) as txn:
        txn.put(b"lost", b"v")
        filled.close()
    with lmdb.Environment(filled.path) as again:
        with again.begin() as reader:
            assert reader.get(b"lost") is None


@pytest.mark.parametrize("name", CURSOR_CALLS)
@pytest.mark.parametrize("write", [False, True], ids=["read", "write"])
def test_cursor_after_env_close(filled, name, write):
    txn = filled.begin(write=write)
    cursor = txn.cursor()
    cursor.first()
    filled.close()
    with pytest.raises(lmdb.ClosedError):
        CURSOR_CALLS[name](cursor)


def test_iterator_after_env_close(filled):
    txn = filled.begin()
    iterator = txn.cursor().iternext()
    next(iterator)
    filled.close()
    with pytest.raises(lmdb.ClosedError):
        next(iterator)


def test_cursor_closed_error_is_runtime_error(filled):
    cursor = filled.begin().cursor()
    filled.close()
    with pytest.raises(RuntimeError):
        cursor.first()


def test_database_after_env_close(filled):
    named = filled.open_db(b"named")
    filled.close()
    assert named.name == b"named"


def test_env_closed_inside_putmulti_iterable(filled):
    def items():
        yield b"k", b"v"
        filled.close()
        yield b"l", b"v"

    txn = filled.begin(write=True)
    with pytest.raises(lmdb.ClosedError):
        txn.putmulti(items())


def test_txn_aborted_inside_putmulti_iterable(env):
    txn = env.begin(write=True)

    def items():
        for index in range(3000):
            if index == 1500:
                txn.abort()
            yield b"%05d" % index, b"v"

    with pytest.raises(lmdb.ClosedError):
        txn.putmulti(items())


def test_txn_used_inside_putmulti_iterable(env):
    txn = env.begin(write=True)

    def items():
        for index in range(2000):
            txn.put(b"side%05d" % index, b"v")
            yield b"%05d" % index, b"v"

    txn.putmulti(items())
    assert txn.stat()["entries"] == 4000
    txn.abort()


def test_txn_aborted_inside_getmulti_iterable(filled):
    txn = filled.begin()

    def keys():
        for index in range(2000):
            if index == 1500:
                txn.abort()
            yield b"a"

    with pytest.raises(lmdb.ClosedError):
        txn.getmulti(keys())


def test_env_close_twice_with_txn(filled):
    txn = filled.begin()
    filled.close()
    filled.close()
    assert txn.ended is True


@pytest.mark.parametrize(
    "order",
    [
        (*order, "env")
        for order in itertools.permutations(["txn", "cursor", "iterator"])
    ],
    ids=lambda order: "-".join(order),
)
@pytest.mark.parametrize("write", [False, True], ids=["read", "write"])
def test_env_close_then_collect_any_order(tmp_path, order, write):
    # The environment is closed first, and the objects are dropped in
    # order.  A dropped object stays alive while another one refers to it.
    path = str(tmp_path / "env")
    objects = {"env": lmdb.Environment(path, sync=False)}
    fill(objects["env"])
    objects["txn"] = objects["env"].begin(write=write)
    objects["cursor"] = objects["txn"].cursor()
    objects["cursor"].first()
    objects["iterator"] = objects["cursor"].iternext()
    next(objects["iterator"])
    objects["env"].close()
    for name in order:
        del objects[name]
    gc.collect()
    # The data file is released, so it opens again in this process.
    with lmdb.Environment(path) as again:
        with again.begin() as txn:
            assert txn.get(b"a") == b"1"


@pytest.mark.parametrize(
    "order",
    list(itertools.permutations(["env", "txn", "cursor", "iterator"])),
    ids=lambda order: "-".join(order),
)
@pytest.mark.parametrize("write", [False, True], ids=["read", "write"])
def test_env_close_between_collects(tmp_path, order, write):
    # At "env" in order the environment is closed and dropped, so close()
    # meets transactions, cursors and iterators in every state of release.
    path = str(tmp_path / "env")
    objects = {"env": lmdb.Environment(path, sync=False)}
    fill(objects["env"])
    objects["txn"] = objects["env"].begin(write=write)
    objects["cursor"] = objects["txn"].cursor()
    objects["iterator"] = iter(objects["cursor"])
    next(objects["iterator"])
    for name in order:
        if name == "env":
            objects["env"].close()
        del objects[name]
    gc.collect()
    with lmdb.Environment(path) as again:
        with again.begin() as txn:
            assert txn.get(b"a") == b"1"


def test_database_outlives_env(tmp_path):
    env = lmdb.Environment(str(tmp_path / "env"), max_dbs=1)
    named = env.open_db(b"named")
    env.close()
    del env
    gc.collect()
    assert named.name == b"named"


@pytest.mark.parametrize(
    "order",
    list(itertools.permutations(["txn", "cursor", "iterator"])),
    ids=lambda order: "-".join(order),
)
def test_collect_before_env_close(filled, order):
    objects = {"txn": filled.begin(write=True)}
    objects["cursor"] = objects["txn"].cursor()
    objects["iterator"] = iter(objects["cursor"])
    next(objects["iterator"])
    for name in order:
        del objects[name]
    gc.collect()
    # The write transaction was aborted, so the writer lock is free.
    with filled.begin(write=True) as txn:
        txn.put(b"k", b"v")
    filled.close()
    assert filled.closed is True


def test_env_close_with_txn_in_cycle(tmp_path):
    path = str(tmp_path / "env")
    env = lmdb.Environment(path)
    txn = env.begin()
    holder = [txn]
    holder.append(holder)
    del txn
    env.close()
    del holder
    gc.collect()
    with lmdb.Environment(path) as again:
        assert again.closed is False


# ---------------------------------------------------------------------------
# One writer per thread


def test_write_txn_twice_same_thread(env):
    txn = env.begin(write=True)
    with pytest.raises(lmdb.BadTxnError, match="already has a write transaction"):
        env.begin(write=True)
    txn.abort()


def test_write_txn_twice_keeps_first(env):
    txn = env.begin(write=True)
    txn.put(b"k", b"v")
    with pytest.raises(lmdb.BadTxnError):
        env.begin(write=True)
    txn.commit()
    with env.begin() as reader:
        assert reader.get(b"k") == b"v"


def test_write_txn_again_after_end(env):
    env.begin(write=True).abort()
    txn = env.begin(write=True)
    assert txn.write is True
    txn.abort()


def test_read_txn_while_writing(filled):
    writer = filled.begin(write=True)
    writer.put(b"a", b"changed")
    with filled.begin() as reader:
        assert reader.get(b"a") == b"1"
    writer.abort()


# ---------------------------------------------------------------------------
# A write transaction used from another thread


@pytest.mark.parametrize("name", [name for name in TXN_CALLS if name != "enter"])
def test_write_txn_other_thread_raises(filled, name):
    txn = filled.begin(write=True)
    outcome = call_in_thread(TXN_CALLS[name], txn)
    txn.abort()
    assert isinstance(outcome.get("error"), lmdb.BadTxnError)


def test_write_txn_other_thread_message(filled):
    txn = filled.begin(write=True)
    outcome = call_in_thread(txn.get, b"a")
    txn.abort()
    assert "thread that began it" in str(outcome["error"])


@pytest.mark.parametrize("end", ["commit", "abort"])
def test_write_txn_end_other_thread(filled, end):
    txn = filled.begin(write=True)
    outcome = call_in_thread(getattr(txn, end))
    txn.abort()
    assert isinstance(outcome.get("error"), lmdb.BadTxnError)


def test_write_txn_usable_after_other_thread(filled):
    txn = filled.begin(write=True)
    call_in_thread(txn.put, b"k", b"v")
    txn.put(b"k", b"mine")
    txn.commit()
    with filled.begin() as reader:
        assert reader.get(b"k") == b"mine"


def test_write_cursor_other_thread(filled):
    txn = filled.begin(write=True)
    cursor = txn.cursor()
    outcome = call_in_thread(cursor.first)
    txn.abort()
    assert isinstance(outcome.get("error"), lmdb.BadTxnError)


def test_nested_begin_other_thread(filled):
    txn = filled.begin(write=True)
    outcome = call_in_thread(lambda: filled.begin(write=True, parent=txn))
    txn.abort()
    assert isinstance(outcome.get("error"), lmdb.BadTxnError)


# ---------------------------------------------------------------------------
# A read transaction shared by threads


def test_read_txn_shared_by_threads(env):
    records = [(b"%04d" % index, b"%d" % index) for index in range(500)]
    fill(env, records)
    txn = env.begin()
    results = [None] * 8

    def read(slot):
        results[slot] = list(txn.cursor())

    threads = [start_thread(read, slot) for slot in range(8)]
    for thread in threads:
        join(thread)
    txn.abort()
    assert results == [records] * 8


def test_read_txn_get_from_threads(filled):
    txn = filled.begin()
    outcomes = [call_in_thread(txn.get, key) for key, _ in RECORDS]
    txn.abort()
    assert [outcome["result"] for outcome in outcomes] == [b"1", b"2", b"3"]


def test_read_txn_ended_by_other_thread(filled):
    txn = filled.begin()
    call_in_thread(txn.abort)
    assert txn.ended is True


def test_read_txn_per_thread(filled):
    values = []

    def read():
        with filled.begin() as txn:
            values.append(txn.get(b"b"))

    threads = [start_thread(read) for _ in range(8)]
    for thread in threads:
        join(thread)
    assert values == [b"2"] * 8


def test_env_closed_while_thread_reads(env):
    fill(env, [(b"%04d" % index, b"v") for index in range(1000)])
    txn = env.begin()
    reading = threading.Event()
    outcome = {}

    def read():
        try:
            while True:
                for _ in txn.cursor():
                    reading.set()
        except lmdb.ClosedError as error:
            outcome["error"] = error

    thread = start_thread(read)
    assert reading.wait(TIMEOUT)
    env.close()
    join(thread)
    assert isinstance(outcome.get("error"), lmdb.ClosedError)


# ---------------------------------------------------------------------------
# Waiting for the writer lock: run in a child so a hang fails the test


WAIT_FOR_WRITER = """
import sys, threading
from sharedb import lmdb

env = lmdb.Environment(sys.argv[1])
holder = env.begin(write=True)
holder.put(b"first", b"1")
started = threading.Event()
done = threading.Event()
seen = []


def write():
    started.set()
    with env.begin(write=True) as txn:
        seen.append(txn.get(b"first"))
        txn.put(b"second", b"2")
    done.set()


thread = threading.Thread(target=write, daemon=True)
thread.start()
started.wait(10)
# The main thread runs here only if the waiting thread released the GIL.
print("waited", not done.wait(0.2))
holder.commit()
thread.join(10)
print("finished", done.is_set())
print("saw first", seen)
with env.begin() as txn:
    print("second", txn.get(b"second"))
env.close()
"""


def test_second_writer_waits_then_proceeds(tmp_path):
    result = run_child(WAIT_FOR_WRITER, str(tmp_path / "env"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "waited True",
        "finished True",
        "saw first [b'1']",
        "second b'2'",
    ]


WRITERS_IN_TURN = """
import sys, threading
from sharedb import lmdb

env = lmdb.Environment(sys.argv[1], sync=False)
errors = []


def write(thread_index):
    try:
        for index in range(50):
            with env.begin(write=True) as txn:
                count = int(txn.get(b"count", b"0"))
                txn.put(b"count", b"%d" % (count + 1))
    except BaseException as error:
        errors.append(error)


threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join(10)
with env.begin() as txn:
    print(txn.get(b"count"), errors, any(t.is_alive() for t in threads))
env.close()
"""


def test_writers_in_threads_take_turns(tmp_path):
    result = run_child(WRITERS_IN_TURN, str(tmp_path / "env"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "b'200' [] False\n"


CLOSE_WHILE_WAITING = """
import sys, threading, time
from sharedb import lmdb

path = sys.argv[1]
closer = sys.argv[2]
env = lmdb.Environment(path)
holder = env.begin(write=True)
holder.put(b"lost", b"v")
started = threading.Event()
outcome = []


def wait_for_writer():
    started.set()
    try:
        env.begin(write=True)
        outcome.append("began")
    except lmdb.ClosedError:
        outcome.append("ClosedError")


waiter = threading.Thread(target=wait_for_writer, daemon=True)
waiter.start()
started.wait(10)
time.sleep(0.05)
if closer == "holder":
    # close() in the holder's thread aborts its write transaction.
    env.close()
else:
    thread = threading.Thread(target=env.close, daemon=True)
    thread.start()
    thread.join(10)
    print("closer finished", not thread.is_alive())
    # The holder's transaction ends when its own thread next uses it.
    try:
        holder.put(b"k", b"v")
    except lmdb.ClosedError:
        print("holder ClosedError")
waiter.join(10)
print("waiter", outcome, waiter.is_alive())
print("holder ended", holder.ended)
with lmdb.Environment(path) as again:
    with again.begin() as txn:
        print("lost", txn.get(b"lost"))
"""


def test_close_in_holder_thread_wakes_waiter(tmp_path):
    result = run_child(CLOSE_WHILE_WAITING, str(tmp_path / "env"), "holder")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "waiter ['ClosedError'] False",
        "holder ended True",
        "lost None",
    ]


def test_close_in_third_thread_wakes_waiter(tmp_path):
    result = run_child(CLOSE_WHILE_WAITING, str(tmp_path / "env"), "third")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "closer finished True",
        "holder ClosedError",
        "waiter ['ClosedError'] False",
        "holder ended True",
        "lost None",
    ]


# ---------------------------------------------------------------------------
# fork()


def fork_and_check(child):
    """Run child() in a forked process and return (exit status, report).

    child returns a list of failed checks, which travels back through a
    pipe.  Whatever happens, the forked process ends with os._exit, so it
    never runs the rest of the test session.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 3
        try:
            os.close(read_end)
            failures = child()
            os.write(write_end, "\n".join(failures).encode())
            status = 0
        except BaseException as error:  # noqa: BLE001 - reported to the parent
            os.write(write_end, f"child raised {error!r}".encode())
            status = 2
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        report = pipe.read().decode()
    deadline = time.monotonic() + TIMEOUT
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the forked child did not finish in time")
        time.sleep(0.01)
    return os.waitstatus_to_exitcode(status), report


def expect_closed(failures, name, call, *args):
    """Append name to failures unless call(*args) raises ClosedError."""
    try:
        call(*args)
    except lmdb.ClosedError:
        return
    except BaseException as error:  # noqa: BLE001 - recorded as a failure
        failures.append(f"{name} raised {error!r}")
        return
    failures.append(f"{name} did not raise")


@pytest.fixture
def forked_objects(env):
    """Open handles of every kind on env, as they are at fork()."""
    fill(env)
    named = env.open_db(b"named")
    with env.begin(write=True) as txn:
        txn.put(b"x", b"named", db=named)
    reader = env.begin()
    cursor = reader.cursor()
    cursor.first()
    iterator = cursor.iternext()
    next(iterator)
    objects = {
        "env": env,
        "named": named,
        "reader": reader,
        "cursor": cursor,
        "iterator": iterator,
    }
    yield objects
    reader.abort()


def test_fork_child_every_use_raises(forked_objects):
    objects = dict(forked_objects)
    env = objects["env"]

    def child():
        failures = []
        env_calls = {
            "begin": lambda: env.begin(),
            "begin-write": lambda: env.begin(write=True),
            "stat": env.stat,
            "info": env.info,
            "sync": env.sync,
            "set_sync": lambda: env.set_sync(False),
            "set_mapsize": lambda: env.set_mapsize(1 << 27),
            "max_key_size": env.max_key_size,
            "max_readers": env.max_readers,
            "readers": env.readers,
            "reader_check": env.reader_check,
            "copy": lambda: env.copy(env.path + "-copy"),
            "open_db": lambda: env.open_db(b"named"),
        }
        for name, call in env_calls.items():
            expect_closed(failures, f"env.{name}", call)
        for name, call in TXN_CALLS.items():
            expect_closed(failures, f"txn.{name}", call, objects["reader"])
        expect_closed(failures, "txn.commit", objects["reader"].commit)
        for name, call in CURSOR_CALLS.items():
            expect_closed(failures, f"cursor.{name}", call, objects["cursor"])
        expect_closed(failures, "iterator", next, objects["iterator"])
        if env.closed is not True:
            failures.append("env.closed is not True")
        return failures

    status, report = fork_and_check(child)
    assert report == ""
    assert status == 0


def test_fork_child_write_txn_raises(env):
    fill(env)
    writer = env.begin(write=True)
    writer.put(b"parent", b"v")

    def child():
        failures = []
        expect_closed(failures, "put", lambda: writer.put(b"child", b"v"))
        expect_closed(failures, "commit", writer.commit)
        return failures

    status, report = fork_and_check(child)
    writer.commit()
    assert report == ""
    assert status == 0


def test_fork_child_leaves_parent_writer(env):
    fill(env)
    writer = env.begin(write=True)
    writer.put(b"parent", b"v")

    def child():
        writer.abort()
        env.close()
        return []

    status, report = fork_and_check(child)
    writer.commit()
    assert report == ""
    assert status == 0
    with env.begin() as reader:
        assert reader.get(b"parent") == b"v"


@pytest.mark.parametrize(
    "order",
    [
        ("env", "reader", "cursor", "iterator"),
        ("iterator", "cursor", "reader", "env"),
        ("reader", "env", "iterator", "cursor"),
        ("cursor", "iterator", "env", "reader"),
    ],
    ids=lambda order: "-".join(order),
)
def test_fork_child_collects_any_order(tmp_path, order):
    # Only the dict refers to the objects, so deleting its entries in the
    # child deallocates them there.
    objects = {"env": lmdb.Environment(str(tmp_path / "env"), sync=False)}
    fill(objects["env"])
    objects["reader"] = objects["env"].begin()
    objects["cursor"] = objects["reader"].cursor()
    objects["iterator"] = objects["cursor"].iternext()
    next(objects["iterator"])

    def child():
        for name in order:
            del objects[name]
        gc.collect()
        return []

    status, report = fork_and_check(child)
    objects["env"].close()
    assert report == ""
    assert status == 0


def test_fork_parent_keeps_working(forked_objects):
    env = forked_objects["env"]

    def child():
        env.close()
        gc.collect()
        return []

    status, report = fork_and_check(child)
    assert report == ""
    assert status == 0
    reader = forked_objects["reader"]
    cursor = forked_objects["cursor"]
    assert reader.get(b"a") == b"1"
    assert cursor.item() == (b"a", b"1")
    assert next(forked_objects["iterator"]) == (b"b", b"2")
    with env.begin(write=True) as txn:
        txn.put(b"after", b"fork")
    with env.begin() as txn:
        assert txn.get(b"after") == b"fork"
    assert env.closed is False


def test_fork_parent_read_txn_snapshot(forked_objects):
    env = forked_objects["env"]
    status, _ = fork_and_check(lambda: [])
    assert status == 0
    fill(env, [(b"a", b"changed")])
    assert forked_objects["reader"].get(b"a") == b"1"


def test_fork_child_reopens_path(forked_objects):
    env = forked_objects["env"]

    def child():
        failures = []
        with lmdb.Environment(env.path, max_dbs=4) as again:
            with again.begin() as txn:
                if txn.get(b"a") != b"1":
                    failures.append("child read a wrong value")
            with again.begin(write=True) as txn:
                txn.put(b"from-child", b"v")
        return failures

    status, report = fork_and_check(child)
    assert report == ""
    assert status == 0
    with env.begin() as txn:
        assert txn.get(b"from-child") == b"v"


def test_fork_grandchild(env):
    fill(env)

    def child():
        failures = []
        with lmdb.Environment(env.path) as again:
            with again.begin() as reader:
                status, report = fork_and_check(
                    lambda: [] if env.closed and again.closed else ["open after fork"]
                )
                if (status, report) != (0, ""):
                    failures.append(f"grandchild: {status} {report}")
                if reader.get(b"a") != b"1":
                    failures.append("child read after fork failed")
        return failures

    status, report = fork_and_check(child)
    assert report == ""
    assert status == 0


# ---------------------------------------------------------------------------
# Bad argument types


@pytest.fixture
def objects(env):
    """A write transaction and a cursor on env, ended at teardown."""
    fill(env)
    txn = env.begin(write=True)
    cursor = txn.cursor()
    yield {"env": env, "txn": txn, "cursor": cursor}
    txn.abort()


BAD_CALLS = {
    "env.begin-parent-int": (lambda o: o["env"].begin(write=True, parent=5), "parent"),
    "env.begin-parent-env": (
        lambda o: o["env"].begin(write=True, parent=o["env"]),
        "parent must be a Transaction",
    ),
    "env.open_db-int": (lambda o: o["env"].open_db(5), "name must be"),
    "env.open_db-object": (lambda o: o["env"].open_db(object()), "name must be"),
    "env.copy-none": (lambda o: o["env"].copy(None), "NoneType"),
    "env.copy-int": (lambda o: o["env"].copy(5), "int"),
    "env.set_mapsize-str": (lambda o: o["env"].set_mapsize("1"), "str"),
    "env.set_mapsize-none": (lambda o: o["env"].set_mapsize(None), "NoneType"),
    "env.stat-arg": (lambda o: o["env"].stat(1), "argument"),
    "txn.get-none": (lambda o: o["txn"].get(None), "key must be a bytes-like"),
    "txn.get-int": (lambda o: o["txn"].get(1), "key must be a bytes-like"),
    "txn.get-str": (lambda o: o["txn"].get("a"), "encode"),
    "txn.get-object": (lambda o: o["txn"].get(object()), "key must be a bytes-like"),
    "txn.get-list": (lambda o: o["txn"].get([1, 2]), "key must be a bytes-like"),
    "txn.get-db-str": (
        lambda o: o["txn"].get(b"a", db="main"),
        "db must be a Database",
    ),
    "txn.get-db-int": (lambda o: o["txn"].get(b"a", db=0), "db must be a Database"),
    "txn.get-db-txn": (lambda o: o["txn"].get(b"a", db=o["txn"]), "db must be"),
    "txn.get-no-key": (lambda o: o["txn"].get(), "key"),
    "txn.put-value-none": (lambda o: o["txn"].put(b"k", None), "value must be"),
    "txn.put-value-int": (lambda o: o["txn"].put(b"k", 5), "value must be"),
    "txn.put-key-none": (lambda o: o["txn"].put(None, b"v"), "key must be"),
    "txn.put-db-object": (
        lambda o: o["txn"].put(b"k", b"v", db=object()),
        "db must be",
    ),
    "txn.put-positional-flag": (
        lambda o: o["txn"].put(b"k", b"v", False),
        "positional",
    ),
    "txn.replace-none": (lambda o: o["txn"].replace(b"k", None), "value must be"),
    "txn.pop-int": (lambda o: o["txn"].pop(5), "key must be"),
    "txn.delete-none": (lambda o: o["txn"].delete(None), "key must be"),
    "txn.delete-db-str": (lambda o: o["txn"].delete(b"a", db="x"), "db must be"),
    "txn.drop-str": (lambda o: o["txn"].drop("main"), "db must be"),
    "txn.stat-int": (lambda o: o["txn"].stat(1), "db must be"),
    "txn.cursor-str": (lambda o: o["txn"].cursor("main"), "db must be"),
    "txn.cursor-object": (lambda o: o["txn"].cursor(db=object()), "db must be"),
    "txn.putmulti-int": (lambda o: o["txn"].putmulti(5), "not iterable"),
    "txn.putmulti-none": (lambda o: o["txn"].putmulti(None), "not iterable"),
    "txn.putmulti-dict": (lambda o: o["txn"].putmulti({b"k": b"v"}), "tuple"),
    "txn.putmulti-db": (lambda o: o["txn"].putmulti([], db=1), "db must be"),
    "txn.getmulti-int": (lambda o: o["txn"].getmulti(5), "not iterable"),
    "txn.getmulti-none": (lambda o: o["txn"].getmulti([None]), "key must be"),
    "txn.getmulti-str": (lambda o: o["txn"].getmulti("ab"), "encode"),
    "cursor.set_key-none": (lambda o: o["cursor"].set_key(None), "key must be"),
    "cursor.set_key-str": (lambda o: o["cursor"].set_key("a"), "encode"),
    "cursor.set_range-int": (lambda o: o["cursor"].set_range(1), "key must be"),
    "cursor.put-none": (lambda o: o["cursor"].put(None, b"v"), "key must be"),
    "cursor.put-value-object": (lambda o: o["cursor"].put(b"k", object()), "value"),
    "cursor.first-arg": (lambda o: o["cursor"].first(1), "argument"),
    "cursor.iternext-arg": (lambda o: o["cursor"].iternext(1, 2, 3), "argument"),
}


@pytest.mark.parametrize("name", BAD_CALLS)
def test_bad_argument_type(objects, name):
    call, message = BAD_CALLS[name]
    with pytest.raises(TypeError, match=message):
        call(objects)


def test_bad_argument_keeps_txn_usable(objects):
    with pytest.raises(TypeError):
        objects["txn"].put(b"k", None)
    objects["txn"].put(b"k", b"v")
    assert objects["txn"].get(b"k") == b"v"


# ---------------------------------------------------------------------------
# Types that only the extension creates


@pytest.mark.parametrize(
    "cls",
    [lmdb.Transaction, lmdb.Cursor, lmdb.Database],
    ids=["Transaction", "Cursor", "Database"],
)
def test_type_not_instantiable(cls):
    with pytest.raises(TypeError, match="cannot create"):
        cls()


def test_cursor_iterator_not_instantiable(objects):
    iterator_type = type(objects["cursor"].iternext())
    with pytest.raises(TypeError, match="cannot create"):
        iterator_type()


@pytest.mark.parametrize(
    "cls",
    [lmdb.Environment, lmdb.Transaction, lmdb.Cursor, lmdb.Database],
    ids=["Environment", "Transaction", "Cursor", "Database"],
)
def test_type_not_subclassable(cls):
    with pytest.raises(TypeError):
        type("Sub", (cls,), {})
