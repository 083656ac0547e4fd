"""Model-based test of ShareDB: random call sequences checked against a dict.

A Hypothesis state machine calls the public data methods of a ShareDB
in a random order and applies the same calls to a model, a dict from the
canonical form of each key to its record. The model encodes where ShareDB
departs from a dict:

- Removing an absent key is a no-op, for ``del`` too.
- Keys are distinguished by their serialized bytes, so 1, 1.0 and True
  are three keys, as are 0.0 and -0.0. Equal keys built from different
  objects address one record.
- Under msgpack, tuples come back as lists, inside keys too, so results
  are compared through a canonical form in which tuples are lists.
- Iteration, popitem() and multipopitem() follow the byte order of the
  packed keys.
- None is never a key or a value.

Besides the data methods, steps close and reopen the store, and
ShareDB(path) then reads the saved settings. Other steps drop and recreate
the store, open a second handle on it (as a context manager, or by
pickling), and copy, compact and inspect it with stats(). A fork step
writes through the inherited instance in a child, which reports through a
pipe whether its results matched the model. After every step, invariants
compare len() and the full contents, in order, and check that
pending_writes stays below buffer_size.

Each of the four serial and compress settings runs 30 examples of up to 30
steps. The tests marked slow run 300 examples of up to 60 steps per
setting::

    python -m pytest tests/test_model.py --run-slow
"""

from __future__ import annotations

import math
import operator
import os
import pathlib
import pickle
import random
import select
import shutil
import signal
import struct
import tempfile
import time
import traceback
from typing import Any, NamedTuple

import msgpack
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from conftest import SETTING_IDS, SETTINGS
from sharedb import ShareDB, ShareDBWarning, _serial

FAST_SETTINGS = settings(max_examples=30, stateful_step_count=30, deadline=None)
SLOW_SETTINGS = settings(max_examples=300, stateful_step_count=60, deadline=None)

# The buffer_size of ShareDB() when none is given.
DEFAULT_BUFFER_SIZE = 100_000

# LMDB's maximum key size in this build.
MAX_KEY_SIZE = 511

# Seconds the parent waits for a forked child before it kills it.
CHILD_TIMEOUT = 60

# A default that no stored value can be, to tell "absent" from any value.
MISSING = object()

ITERATOR_KINDS = ["keys", "values", "items", "iter", "reversed"]

BAD_PAIR_KINDS = [
    "none_key",
    "none_value",
    "unserializable_key",
    "unserializable_value",
    "key_too_long",
    "not_a_pair",
]

BAD_KEY_KINDS = ["none_key", "unserializable_key", "key_too_long"]

WRITE_KINDS = ["set", "remove", "pop", "multiset", "clear", "popitem"]


# Canonical forms and packed keys ------------------------------------------


def canonical(obj: object, serial: str) -> object:
    """Return a hashable form of obj that distinguishes what the serializer
    distinguishes.

    Each object is tagged with its type, so 1, 1.0 and True differ, and
    floats are compared by their bits, so 0.0 and -0.0 differ and a NaN
    equals itself. Under msgpack a tuple has the form of a list.
    """
    kind = type(obj)
    if kind in (bool, int, str, bytes):
        return (kind.__name__, obj)
    if kind is float:
        return ("float", struct.pack("<d", obj))
    if kind is complex:
        return ("complex", struct.pack("<dd", obj.real, obj.imag))
    if kind is list or kind is tuple:
        tag = "list" if serial == "msgpack" else kind.__name__
        return (tag, tuple(canonical(item, serial) for item in obj))
    if kind is dict:
        return (
            "dict",
            frozenset(
                (canonical(key, serial), canonical(value, serial))
                for key, value in obj.items()
            ),
        )
    if kind is set or kind is frozenset:
        return (kind.__name__, frozenset(canonical(item, serial) for item in obj))
    raise TypeError(f"no canonical form for {obj!r} of {kind}")


def packed_key(key: object, serial: str) -> bytes:
    """Return the bytes a key is stored under, whose order is the order of
    iteration."""
    if serial == "msgpack":
        return msgpack.packb(key, use_bin_type=True)
    if type(key) in (int, float, str, bytes, bool):
        return pickle.dumps(key, protocol=pickle.HIGHEST_PROTOCOL)
    # NOTE: ShareDB makes the pickle bytes of a composite key canonical but
    # does not document them (it writes a frozenset in an order it chooses),
    # so the order of composite keys comes from its own key packer. Which
    # keys are equal is still decided by canonical().
    packed = _serial.pickle_key(key)
    if isinstance(packed, tuple):
        return packed[0]
    return packed


def equal_copy(obj: Any, as_lists: bool) -> Any:
    """Return a copy of obj built from new strs and bytes, with tuples
    turned into lists if as_lists is true and lists into tuples if not.

    A key rebuilt this way must address the same record, because whether
    CPython shares equal strings changes their plain pickle bytes.
    """
    kind = type(obj)
    if kind is str or kind is bytes:
        if len(obj) > 1:
            return obj[:1] + obj[1:]
        return obj
    if kind is tuple or kind is list:
        items = [equal_copy(item, as_lists) for item in obj]
        if as_lists:
            return items
        return tuple(items)
    if kind is frozenset:
        return frozenset(equal_copy(item, as_lists) for item in obj)
    return obj


def new_generator() -> Any:
    """Return a generator object, which neither pickle nor msgpack
    serializes."""
    return (item for item in ())


# Strategies -----------------------------------------------------------


def scalar_strategy(serial: str, allow_nan: bool) -> st.SearchStrategy[Any]:
    """Build ints, floats, strs, bytes and bools, with many collisions."""
    if serial == "msgpack":
        big_ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)
    else:
        big_ints = st.integers(min_value=-(2**200), max_value=2**200)
    return st.one_of(
        st.sampled_from([0, 1, 0.0, -0.0, 1.0, True, False, "1", b"1", "", b""]),
        st.integers(min_value=-5, max_value=30),
        st.text(alphabet="ab\u00e9\u20ac\U0001f600", max_size=6),
        st.text(st.characters(codec="utf-8"), max_size=4),
        st.binary(max_size=6),
        st.floats(allow_nan=allow_nan),
        big_ints,
        st.booleans(),
    )


def hashable_strategy(serial: str) -> st.SearchStrategy[Any]:
    """Build NaN-free hashable objects, for dict keys and set items.

    A NaN is left out because two NaN objects are distinct set items while
    their canonical forms are equal.
    """
    scalars = scalar_strategy(serial, allow_nan=False)
    if serial == "msgpack":
        return st.one_of(scalars, st.lists(scalars, max_size=3).map(tuple))
    atoms = st.one_of(scalars, st.complex_numbers(allow_nan=False))
    return st.one_of(
        atoms,
        st.lists(atoms, max_size=3).map(tuple),
        st.frozensets(atoms, max_size=3),
    )


def key_strategy(serial: str) -> st.SearchStrategy[Any]:
    """Build keys that pack to at most MAX_KEY_SIZE bytes."""
    leaves = scalar_strategy(serial, allow_nan=True)
    if serial == "pickle":
        atoms = scalar_strategy(serial, allow_nan=False)
        leaves = st.one_of(
            leaves,
            st.complex_numbers(),
            st.frozensets(atoms, max_size=3),
        )
    keys = st.recursive(
        leaves, lambda children: st.lists(children, max_size=3).map(tuple), max_leaves=6
    )
    return keys.filter(lambda key: len(packed_key(key, serial)) <= MAX_KEY_SIZE)


def big_value_strategy() -> st.SearchStrategy[Any]:
    """Build values of a few KB, compressible or not."""
    return st.one_of(
        st.builds(
            operator.mul,
            st.binary(min_size=1, max_size=8),
            st.integers(min_value=200, max_value=600),
        ),
        st.integers(min_value=0, max_value=2**32 - 1).map(
            lambda seed: random.Random(seed).randbytes(4096)
        ),
        st.builds(
            operator.mul,
            st.text(min_size=1, max_size=4),
            st.integers(min_value=200, max_value=500),
        ),
        st.integers(min_value=0, max_value=2**40).map(
            lambda start: list(range(start, start + 300 * 2**33, 2**33))
        ),
    )


def value_strategy(serial: str) -> st.SearchStrategy[Any]:
    """Build None-free values that the serializer round-trips."""
    dict_keys = hashable_strategy(serial)
    leaves = scalar_strategy(serial, allow_nan=True)
    if serial == "pickle":
        leaves = st.one_of(
            leaves,
            st.complex_numbers(),
            st.sets(dict_keys, max_size=4),
            st.frozensets(dict_keys, max_size=4),
        )

    def containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(
            st.lists(children, max_size=4),
            st.lists(children, max_size=4).map(tuple),
            st.dictionaries(dict_keys, children, max_size=4),
        )

    nested = st.recursive(leaves, containers, max_leaves=12)
    return st.one_of(nested, big_value_strategy())


KEYS = {serial: key_strategy(serial) for serial in ("pickle", "msgpack")}
VALUES = {serial: value_strategy(serial) for serial in ("pickle", "msgpack")}
KWARG_NAMES = st.one_of(
    st.sampled_from(["other", "self", "kv_iter", "key"]),
    st.text(alphabet="abc_\u00e9", min_size=1, max_size=5),
)


# The model ------------------------------------------------------------


class Record(NamedTuple):
    """A key and value as given to the store, with the packed key bytes and
    the canonical forms of both, computed once."""

    key: Any
    value: Any
    packed: bytes
    key_form: object
    value_form: object


class Model:
    """Expected contents of the store, as records by canonical key."""

    def __init__(self, serial: str) -> None:
        self.serial = serial
        self.records: dict[object, Record] = {}

    def copy(self) -> Model:
        model = Model(self.serial)
        model.records = dict(self.records)
        return model

    def __len__(self) -> int:
        return len(self.records)

    def canonical(self, obj: object) -> object:
        return canonical(obj, self.serial)

    def get(self, key: object) -> Record | None:
        return self.records.get(self.canonical(key))

    def ordered(self) -> list[Record]:
        return sorted(self.records.values(), key=lambda record: record.packed)

    def first(self) -> Record | None:
        if not self.records:
            return None
        return min(self.records.values(), key=lambda record: record.packed)

    def set(self, key: object, value: object) -> None:
        key_form = self.canonical(key)
        value_form = self.canonical(value)
        packed = packed_key(key, self.serial)
        self.records[key_form] = Record(key, value, packed, key_form, value_form)

    def remove(self, key: object) -> None:
        self.records.pop(self.canonical(key), None)

    def clear(self) -> None:
        self.records.clear()

    def apply(self, op: tuple[Any, ...]) -> None:
        """Apply a write operation built by ShareDBMachine.draw_writes()."""
        kind = op[0]
        if kind == "set":
            self.set(op[1], op[2])
        elif kind in ("remove", "pop"):
            self.remove(op[1])
        elif kind == "multiset":
            for key, value in op[1]:
                self.set(key, value)
        elif kind == "clear":
            self.clear()
        elif kind == "popitem":
            record = self.first()
            if record is not None:
                self.remove(record.key)
        else:
            raise ValueError(f"unknown operation {kind!r}")

    def assert_same(self, actual: object, expected: object, context: str) -> None:
        """Assert that the store returned an object equal to expected, in
        canonical form."""
        assert self.canonical(actual) == self.canonical(expected), (
            f"{context}: the store returned {actual!r}, the model expects {expected!r}"
        )

    def assert_key(self, actual: object, record: Record, context: str) -> None:
        assert self.canonical(actual) == record.key_form, (
            f"{context}: the store returned the key {actual!r}, the model "
            f"expects {record.key!r}"
        )

    def assert_value(self, actual: object, record: Record, context: str) -> None:
        assert self.canonical(actual) == record.value_form, (
            f"{context}: the store returned {actual!r}, the model expects "
            f"{record.value!r}"
        )

    def check_contents(self, db: ShareDB) -> None:
        """Assert that db contains exactly the model's records, in key
        order."""
        expected = self.ordered()
        length = db.length()
        assert length == len(expected), (
            f"length() is {length}, the model has {len(expected)} records"
        )
        assert len(db) == length, f"len() is {len(db)}, length() is {length}"
        items = list(db.items())
        actual_keys = [self.canonical(key) for key, _ in items]
        expected_keys = [record.key_form for record in expected]
        assert actual_keys == expected_keys, (
            f"keys in order: the store has {[key for key, _ in items]!r}, the "
            f"model expects {[record.key for record in expected]!r}"
        )
        for (key, value), record in zip(items, expected, strict=True):
            self.assert_value(value, record, f"value of {key!r}")


def perform(db: ShareDB, model: Model, op: tuple[Any, ...]) -> None:
    """Apply a write operation to db and to the model, asserting that db
    returns what the model expects."""
    kind = op[0]
    if kind == "set":
        assert db.set(op[1], op[2]) is db
    elif kind == "remove":
        assert db.remove(op[1]) is db
    elif kind == "pop":
        record = model.get(op[1])
        result = db.pop(op[1], MISSING)
        if record is None:
            assert result is MISSING, f"pop({op[1]!r}) of an absent key"
        else:
            model.assert_value(result, record, f"pop({op[1]!r})")
    elif kind == "multiset":
        assert db.multiset(op[1]) is db
    elif kind == "clear":
        assert db.clear() is db
    elif kind == "popitem":
        record = model.first()
        if record is None:
            with pytest.raises(KeyError):
                db.popitem()
        else:
            key, value = db.popitem()
            model.assert_key(key, record, "popitem() key")
            model.assert_value(value, record, "popitem() value")
    else:
        raise ValueError(f"unknown operation {kind!r}")
    model.apply(op)


# Forked children --------------------------------------------------------


def run_child(db: ShareDB, model: Model, ops: list[Any], report_fd: int) -> None:
    """Run ops on the inherited db in a forked child, write "ok" or the
    failure to report_fd, and exit with status 0 if they matched the
    model, 1 otherwise. Never returns."""
    status = 1
    report = b"the child stopped before reporting"
    try:
        for op in ops:
            perform(db, model, op)
        model.check_contents(db)
        status = 0
        report = b"ok"
    except BaseException:
        report = traceback.format_exc().encode("utf-8", "replace")[-8000:]
    finally:
        try:
            view = memoryview(report)
            while view:
                view = view[os.write(report_fd, view) :]
        finally:
            os._exit(status)


def wait_for_child(pid: int, report_fd: int) -> tuple[int, str]:
    """Read a forked child's report until it exits, and return its exit
    code and report. Kill the child if it has not finished in
    CHILD_TIMEOUT seconds."""
    chunks = []
    deadline = time.monotonic() + CHILD_TIMEOUT
    try:
        while True:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([report_fd], [], [], max(remaining, 0))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                pytest.fail(f"the forked child did not finish in {CHILD_TIMEOUT} s")
            chunk = os.read(report_fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(report_fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode()


# The state machine ----------------------------------------------------


class ShareDBMachine(RuleBasedStateMachine):
    """Drive a ShareDB and a Model with the same calls.

    Subclasses set serial and compress.
    """

    serial = "pickle"
    compress = False

    def __init__(self) -> None:
        super().__init__()
        self.directory = tempfile.mkdtemp(prefix="sharedb-model-")
        self.path = os.path.join(self.directory, "store")
        self.db = ShareDB(self.path, serial=self.serial, compress=self.compress)
        self.buffer_size = DEFAULT_BUFFER_SIZE
        self.copies = 0
        self.model = Model(self.serial)
        self.new_keys = KEYS[self.serial]
        self.new_values = VALUES[self.serial]

    def teardown(self) -> None:
        try:
            self.db.close()
        finally:
            shutil.rmtree(self.directory)

    # Drawing arguments ---------------------------------------------------

    def draw_key(self, data: st.DataObject, hashable: bool = False) -> Any:
        """Draw a stored key about half of the time, rebuilt from new
        objects, or else a new key. Under msgpack, a rebuilt key sometimes
        has lists for tuples, unless hashable is true."""
        if self.model.records and data.draw(st.booleans(), label="use a stored key"):
            stored = [record.key for record in self.model.ordered()]
            key = data.draw(st.sampled_from(stored), label="stored key")
            as_lists = (
                self.serial == "msgpack"
                and not hashable
                and data.draw(st.booleans(), label="tuples as lists")
            )
            return equal_copy(key, as_lists)
        return data.draw(self.new_keys, label="new key")

    def draw_keys(self, data: st.DataObject, max_size: int = 5) -> list[Any]:
        count = data.draw(st.integers(min_value=0, max_value=max_size))
        return [self.draw_key(data) for _ in range(count)]

    def draw_pairs(self, data: st.DataObject, max_size: int = 6) -> list[Any]:
        count = data.draw(st.integers(min_value=0, max_value=max_size))
        return [(self.draw_key(data), data.draw(self.new_values)) for _ in range(count)]

    def draw_writes(self, data: st.DataObject, max_size: int) -> list[Any]:
        """Draw write operations for perform() and Model.apply()."""
        kinds = data.draw(st.lists(st.sampled_from(WRITE_KINDS), max_size=max_size))
        ops: list[Any] = []
        for kind in kinds:
            if kind == "set":
                ops.append((kind, self.draw_key(data), data.draw(self.new_values)))
            elif kind in ("remove", "pop"):
                ops.append((kind, self.draw_key(data)))
            elif kind == "multiset":
                ops.append((kind, self.draw_pairs(data, max_size=3)))
            else:
                ops.append((kind,))
        return ops

    def bad_item(self, kind: str) -> tuple[Any, int | None]:
        """Return a key or pair that the store rejects, and the packed size
        of its key if that is too long."""
        if kind == "key_too_long":
            key = "x" * 600
            return (key, 0), len(packed_key(key, self.serial))
        bad = {
            "none_key": (None, 0),
            "none_value": (0, None),
            "unserializable_key": (new_generator(), 0),
            "unserializable_value": (0, new_generator()),
            "not_a_pair": (0, 1, 2),
        }
        return bad[kind], None

    # Writes --------------------------------------------------------------

    @initialize(data=st.data())
    def populate(self, data: st.DataObject) -> None:
        """Start most examples with some records, so that order and
        iteration are checked on more than a handful of keys."""
        pairs = self.draw_pairs(data, max_size=30)
        assert self.db.multiset(pairs) is self.db
        for key, value in pairs:
            self.model.set(key, value)

    @rule(data=st.data(), subscript=st.booleans())
    def set_value(self, data: st.DataObject, subscript: bool) -> None:
        key = self.draw_key(data)
        value = data.draw(self.new_values)
        if subscript:
            self.db[key] = value
        else:
            assert self.db.set(key, value) is self.db
        self.model.set(key, value)

    @rule(data=st.data(), as_iterator=st.booleans())
    def multiset(self, data: st.DataObject, as_iterator: bool) -> None:
        pairs = self.draw_pairs(data, max_size=8)
        argument = iter(pairs) if as_iterator else pairs
        assert self.db.multiset(argument) is self.db
        for key, value in pairs:
            self.model.set(key, value)

    @rule(
        data=st.data(),
        method=st.sampled_from(["multiset", "update", "multiremove"]),
    )
    def batch_with_bad_item(self, data: st.DataObject, method: str) -> None:
        """A batch that fails in the middle writes nothing."""
        if method == "multiremove":
            kind = data.draw(st.sampled_from(BAD_KEY_KINDS))
            (bad, _), too_long_size = self.bad_item(kind)
            items = self.draw_keys(data) + [bad] + self.draw_keys(data)
        else:
            kind = data.draw(st.sampled_from(BAD_PAIR_KINDS))
            bad, too_long_size = self.bad_item(kind)
            items = self.draw_pairs(data) + [bad] + self.draw_pairs(data)
        with pytest.raises(Exception) as info:
            getattr(self.db, method)(items)
        if too_long_size is None:
            assert isinstance(info.value, TypeError), repr(info.value)
        else:
            message = str(info.value)
            assert str(MAX_KEY_SIZE) in message, message
            assert f"{too_long_size} bytes" in message, message

    @rule(
        data=st.data(),
        form=st.sampled_from(
            ["mapping", "pairs", "other_keyword", "kwargs", "mapping_kwargs"]
        ),
    )
    def update(self, data: st.DataObject, form: str) -> None:
        """Update from a mapping, pairs or keyword arguments.

        ShareDB 2.0.2 defined update(self, other), so update(other=mapping)
        alone must still store the pairs of the mapping. With a positional
        argument or other keywords, every keyword is a pair, as in
        dict.update().
        """
        kwargs_strategy = st.dictionaries(KWARG_NAMES, self.new_values, max_size=3)
        pairs: list[tuple[Any, Any]] = []
        kwargs: dict[str, Any] = {}
        if form == "pairs":
            # Unlike a mapping, pairs may have keys that a dict cannot
            # hold, such as lists under msgpack.
            pairs = self.draw_pairs(data, max_size=5)
            result = self.db.update(pairs)
        elif form == "kwargs":
            # A lone keyword named other is the 2.0.2 call above.
            kwargs = data.draw(
                kwargs_strategy.filter(lambda names: list(names) != ["other"])
            )
            result = self.db.update(**kwargs)
        else:
            mapping = {}
            for _ in range(data.draw(st.integers(min_value=0, max_value=5))):
                key = self.draw_key(data, hashable=True)
                mapping[key] = data.draw(self.new_values)
            pairs = list(mapping.items())
            if form == "mapping":
                result = self.db.update(mapping)
            elif form == "other_keyword":
                result = self.db.update(other=mapping)
            else:
                kwargs = data.draw(kwargs_strategy)
                result = self.db.update(mapping, **kwargs)
        assert result is self.db
        for key, value in [*pairs, *kwargs.items()]:
            self.model.set(key, value)

    @rule(data=st.data())
    def setdefault(self, data: st.DataObject) -> None:
        key = self.draw_key(data)
        default = data.draw(self.new_values)
        record = self.model.get(key)
        result = self.db.setdefault(key, default)
        if record is None:
            self.model.assert_same(result, default, f"setdefault({key!r}) inserted")
            self.model.set(key, default)
        else:
            self.model.assert_value(result, record, f"setdefault({key!r})")

    # Reads ---------------------------------------------------------------

    @rule(data=st.data(), call=st.sampled_from(["get", "get_default", "subscript"]))
    def get_value(self, data: st.DataObject, call: str) -> None:
        key = self.draw_key(data)
        record = self.model.get(key)
        if call == "subscript" and record is None:
            with pytest.raises(KeyError) as info:
                self.db[key]
            message = info.value.args[0]
            assert message.endswith(f" of {type(key)!r} is absent"), message
            return
        if call == "subscript":
            result = self.db[key]
        elif call == "get":
            result = self.db.get(key)
        else:
            result = self.db.get(key, MISSING)
        if record is not None:
            self.model.assert_value(result, record, f"{call} of {key!r}")
        elif call == "get":
            assert result is None, f"get({key!r}) of an absent key"
        else:
            assert result is MISSING, f"get({key!r}, default) of an absent key"

    @rule(data=st.data())
    def contains(self, data: st.DataObject) -> None:
        key = self.draw_key(data)
        present = self.model.get(key) is not None
        assert (key in self.db) is present, f"{key!r} in db"
        assert self.db.has_key(key) is present, f"has_key({key!r})"

    @rule(data=st.data(), with_default=st.booleans())
    def multiget(self, data: st.DataObject, with_default: bool) -> None:
        keys = self.draw_keys(data)
        if with_default:
            results = list(self.db.multiget(keys, MISSING))
        else:
            results = list(self.db.multiget(keys))
        assert len(results) == len(keys)
        default = MISSING if with_default else None
        for key, result in zip(keys, results, strict=True):
            record = self.model.get(key)
            if record is None:
                assert result is default, f"multiget of absent {key!r}"
            else:
                self.model.assert_value(result, record, f"multiget {key!r}")

    @rule(data=st.data())
    def has_multikey(self, data: st.DataObject) -> None:
        keys = self.draw_keys(data)
        expected = [self.model.get(key) is not None for key in keys]
        assert list(self.db.has_multikey(keys)) == expected, f"has_multikey {keys!r}"

    @rule(data=st.data(), kind=st.sampled_from(ITERATOR_KINDS))
    def iterate(self, data: st.DataObject, kind: str) -> None:
        """Consume an iterator fully, or take a prefix and drop it, which
        must not block the writes of later steps."""
        expected = self.expected_iteration(kind)
        steps = data.draw(
            st.none() | st.integers(min_value=0, max_value=len(expected)),
            label="steps taken, None for all",
        )
        iterator = self.open_iterator(kind)
        if steps is None:
            actual = self.yielded_forms(kind, iterator)
            assert actual == expected, kind
            return
        prefix = [next(iterator) for _ in range(steps)]
        assert self.yielded_forms(kind, prefix) == expected[:steps], kind
        del iterator

    @rule(data=st.data(), kind=st.sampled_from(ITERATOR_KINDS))
    def iterate_while_writing(self, data: st.DataObject, kind: str) -> None:
        """An iterator yields the snapshot taken at its first step, whatever
        is written after that step."""
        expected = self.expected_iteration(kind)
        iterator = self.open_iterator(kind)
        first = next(iterator, MISSING)
        for op in self.draw_writes(data, max_size=4):
            perform(self.db, self.model, op)
        rest = list(iterator)
        if first is MISSING:
            assert expected == [], f"{kind}() of a non-empty store yielded nothing"
            assert rest == [], f"{kind}() went on after it ended"
            return
        assert self.yielded_forms(kind, [first, *rest]) == expected, kind

    def open_iterator(self, kind: str) -> Any:
        if kind == "iter":
            return iter(self.db)
        if kind == "reversed":
            return reversed(self.db)
        return getattr(self.db, kind)()

    def yielded_forms(self, kind: str, objects: Any) -> list[object]:
        """Return the canonical forms of what an iterator of kind yielded."""
        if kind == "items":
            return [
                (self.model.canonical(key), self.model.canonical(value))
                for key, value in objects
            ]
        return [self.model.canonical(obj) for obj in objects]

    def expected_iteration(self, kind: str) -> list[object]:
        """Return the canonical forms that an iterator of kind should
        yield."""
        records = self.model.ordered()
        if kind == "reversed":
            records.reverse()
        if kind == "values":
            return [record.value_form for record in records]
        if kind == "items":
            return [(record.key_form, record.value_form) for record in records]
        return [record.key_form for record in records]

    # Removals ------------------------------------------------------------

    @rule(data=st.data(), statement=st.booleans())
    def remove(self, data: st.DataObject, statement: bool) -> None:
        key = self.draw_key(data)
        if statement:
            del self.db[key]
        else:
            assert self.db.remove(key) is self.db
        self.model.remove(key)

    @rule(data=st.data())
    def multiremove(self, data: st.DataObject) -> None:
        keys = self.draw_keys(data)
        assert self.db.multiremove(keys) is self.db
        for key in keys:
            self.model.remove(key)

    @rule(data=st.data(), with_default=st.booleans())
    def pop(self, data: st.DataObject, with_default: bool) -> None:
        key = self.draw_key(data)
        record = self.model.get(key)
        if with_default:
            result = self.db.pop(key, MISSING)
        elif record is None:
            with pytest.raises(KeyError):
                self.db.pop(key)
            return
        else:
            result = self.db.pop(key)
        if record is None:
            assert result is MISSING, f"pop({key!r}, default) of an absent key"
            return
        self.model.assert_value(result, record, f"pop({key!r})")
        self.model.remove(key)

    @rule(data=st.data())
    def multipop(self, data: st.DataObject) -> None:
        """Consume the iterator fully, or take some values and drop it. The
        values not handed out stay in the store."""
        keys = self.draw_keys(data)
        steps = data.draw(
            st.none() | st.integers(min_value=0, max_value=len(keys)),
            label="steps taken, None for all",
        )
        iterator = self.db.multipop(keys)
        for index, key in enumerate(keys):
            if index == steps:
                break
            record = self.model.get(key)
            if record is None:
                with pytest.raises(KeyError):
                    next(iterator)
                break
            value = next(iterator, MISSING)
            assert value is not MISSING, f"multipop stopped before {key!r}"
            self.model.assert_value(value, record, f"multipop {key!r}")
            self.model.remove(key)
        else:
            assert next(iterator, MISSING) is MISSING, "multipop went on"
        del iterator

    @rule()
    def popitem(self) -> None:
        perform(self.db, self.model, ("popitem",))

    @rule(
        data=st.data(),
        count=st.one_of(
            st.none(),
            st.integers(min_value=-2, max_value=6),
            st.floats(min_value=-2, max_value=6.5),
            st.just(math.inf),
        ),
    )
    def multipopitem(self, data: st.DataObject, count: float | None) -> None:
        """Pop up to count pairs, a float count rounded up, as ShareDB 2.0.2
        did (it took keys while it had fewer than num_items)."""
        if count is None:
            iterator = self.db.multipopitem()
            expected = min(1, len(self.model))
        else:
            iterator = self.db.multipopitem(count)
            expected = len(self.model) if count > len(self.model) else math.ceil(count)
            expected = max(expected, 0)
        steps = data.draw(
            st.none() | st.integers(min_value=0, max_value=expected),
            label="steps taken, None for all",
        )
        pops = expected if steps is None else steps
        call = f"multipopitem({'' if count is None else repr(count)})"
        for index in range(pops):
            record = self.model.first()
            item = next(iterator, MISSING)
            assert item is not MISSING, (
                f"{call} stopped after {index} pairs, the model expects {expected}"
            )
            key, value = item
            self.model.assert_key(key, record, f"{call} key")
            self.model.assert_value(value, record, f"{call} value")
            self.model.remove(record.key)
        if steps is None:
            assert next(iterator, MISSING) is MISSING, (
                f"{call} yielded more than the {expected} pairs the model expects"
            )
        del iterator

    @rule()
    def clear(self) -> None:
        assert self.db.clear() is self.db
        assert self.db.pending_writes == 0
        self.model.clear()

    # Lifecycle -----------------------------------------------------------

    @rule()
    def sync(self) -> None:
        assert self.db.sync() is self.db
        assert self.db.pending_writes == 0

    def check_closed(self, db: ShareDB) -> None:
        """Assert that data methods of a closed or dropped db raise
        RuntimeError."""
        assert not db.is_alive
        calls = [
            lambda: db.get(0),
            lambda: db.set(0, 0),
            lambda: len(db),
            lambda: list(db.items()),
            lambda: db.multiset([(0, 0)]),
        ]
        for call in calls:
            with pytest.raises(RuntimeError, match="has been closed or dropped"):
                call()

    @rule(
        data=st.data(),
        buffer_size=st.one_of(st.none(), st.sampled_from([1, 3, DEFAULT_BUFFER_SIZE])),
        durable=st.booleans(),
        contradict=st.booleans(),
    )
    def close_and_reopen(
        self,
        data: st.DataObject,
        buffer_size: int | None,
        durable: bool,
        contradict: bool,
    ) -> None:
        """Reopen by path, so that the saved serial and compress apply.

        A buffer_size given at reopen is saved for the next reopen. A serial
        or compress that contradicts the saved one is ignored with a
        warning that names both values.
        """
        assert self.db.close() is True
        assert self.db.close() is False
        self.check_closed(self.db)
        spelling = data.draw(
            st.sampled_from(
                [
                    self.path,
                    self.path + "/",
                    self.path + ".ShareDB",
                    self.path + ".ShareDB/",
                    pathlib.Path(self.path),
                ]
            )
        )
        arguments: dict[str, Any] = {"durable": durable}
        if buffer_size is not None:
            arguments["buffer_size"] = buffer_size
            self.buffer_size = buffer_size
        if contradict:
            name = data.draw(st.sampled_from(["serial", "compress"]))
            saved = getattr(self, name)
            if name == "serial":
                contradicting: object = "pickle" if saved == "msgpack" else "msgpack"
            else:
                contradicting = not saved
            arguments[name] = contradicting
            with pytest.warns(ShareDBWarning) as warned:
                self.db = ShareDB(spelling, **arguments)
            messages = [str(warning.message) for warning in warned]
            assert any(
                f"{name}={saved!r}" in message
                and f"{name}={contradicting!r}" in message
                for message in messages
            ), messages
        else:
            self.db = ShareDB(spelling, **arguments)
        assert self.db.serial == self.serial
        assert self.db.compress == self.compress
        assert self.db.sync_threshold == self.buffer_size
        assert self.db.pending_writes == 0

    @rule()
    def drop_and_recreate(self) -> None:
        assert self.db.drop() is True
        assert self.db.drop() is False
        self.check_closed(self.db)
        assert not os.path.exists(self.path + ".ShareDB")
        self.db = ShareDB(self.path, serial=self.serial, compress=self.compress)
        self.buffer_size = DEFAULT_BUFFER_SIZE
        self.model.clear()

    @rule(data=st.data(), pickled=st.booleans())
    def second_handle(self, data: st.DataObject, pickled: bool) -> None:
        """Open a second ShareDB on the store, by path or by unpickling the
        first, and write through both. Closing the second at the end of
        its with block leaves the first open."""
        if pickled:
            other = pickle.loads(pickle.dumps(self.db))
        else:
            other = ShareDB(self.path)
        with other as entered:
            assert entered is other
            assert other.sync_threshold == self.buffer_size
            for op in self.draw_writes(data, max_size=4):
                use_other = data.draw(st.booleans(), label="write through the second")
                perform(other if use_other else self.db, self.model, op)
            self.model.check_contents(other)
        self.check_closed(other)
        assert self.db.is_alive

    @rule(compact=st.booleans())
    def copy(self, compact: bool) -> None:
        """A copy opens as a store with the same settings and records."""
        self.copies += 1
        destination = os.path.join(self.directory, f"copy{self.copies}")
        copy_path = self.db.copy(destination, compact=compact)
        assert copy_path == destination + ".ShareDB/"
        with ShareDB(copy_path) as copied:
            assert copied.serial == self.serial
            assert copied.compress == self.compress
            self.model.check_contents(copied)
        shutil.rmtree(copy_path)

    @rule()
    def compact(self) -> None:
        sizes = self.db.compact()
        assert sizes["after"] <= sizes["before"], sizes

    @rule()
    def stats(self) -> None:
        figures = self.db.stats()
        assert figures["entries"] == len(self.model)
        assert figures["config"]["serial"] == self.serial
        assert figures["config"]["compress"] == self.compress
        assert figures["config"]["bcsize"] == self.buffer_size

    @rule(data=st.data())
    def fork_and_write(self, data: st.DataObject) -> None:
        """A forked child writes through the inherited instance, and the
        parent then reads its writes."""
        ops = self.draw_writes(data, max_size=5)
        reader, writer = os.pipe()
        pid = os.fork()
        if pid == 0:
            # The child must never return into Hypothesis or pytest.
            try:
                os.close(reader)
                run_child(self.db, self.model.copy(), ops, writer)
            finally:
                os._exit(1)
        os.close(writer)
        exit_code, report = wait_for_child(pid, reader)
        assert report == "ok", f"the forked child failed:\n{report}"
        assert exit_code == 0
        for op in ops:
            self.model.apply(op)

    # Invariants ----------------------------------------------------------

    @invariant()
    def contents_match(self) -> None:
        self.model.check_contents(self.db)

    @invariant()
    def pending_writes_below_threshold(self) -> None:
        """Writes sync automatically once buffer_size of them are pending."""
        assert 0 <= self.db.pending_writes < self.db.sync_threshold


def machine_for(serial: str, compress: bool) -> type[ShareDBMachine]:
    name = f"{serial.capitalize()}{'Zlib' if compress else 'Plain'}Machine"
    return type(name, (ShareDBMachine,), {"serial": serial, "compress": compress})


@pytest.mark.parametrize(("serial", "compress"), SETTINGS, ids=SETTING_IDS)
def test_model(serial, compress):
    run_state_machine_as_test(machine_for(serial, compress), settings=FAST_SETTINGS)


@pytest.mark.slow
@pytest.mark.parametrize(("serial", "compress"), SETTINGS, ids=SETTING_IDS)
def test_model_long(serial, compress):
    run_state_machine_as_test(machine_for(serial, compress), settings=SLOW_SETTINGS)
