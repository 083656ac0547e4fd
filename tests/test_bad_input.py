"""Tests of every public call given bad input.

The inputs are wrong types, None, objects the serializer cannot handle,
keys past the maximum key size, huge values and numbers out of range.
Iterables that fail or yield the wrong shapes are given too, and store
directories whose files are damaged or out of reach. Each case checks
three things:

- the exception class that the API promises;
- that the message names the bad value or its type, and what is
  accepted;
- that the records stored before the call are all still there,
  unchanged, and that the store still takes a write and a read.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import Any

import msgpack
import pytest
from conftest import run_python

import sharedb
from sharedb import ShareDB, lmdb

# Records that read back equal under both serializers. Tuple keys find
# their record under msgpack too, although iteration returns them as
# lists.
RECORDS = [
    ("alpha", "first"),
    (7, [1, 2, 3]),
    (b"raw", {"nested": {"x": 1.5}}),
    (("tuple", 2), "under a tuple key"),
    (-3.25, True),
    ("unicode-κλειδί", "τιμή"),
]

# (serial, compress) of the stores that the matrices run on: both
# serializers, and both with and without compression.
SETTINGS = [("pickle", False), ("msgpack", True)]
SETTING_IDS = ["pickle", "msgpack-zlib"]

MAX_KEY_SIZE = 511

# User and group id of "nobody", which the permission tests run as.
NOBODY = 65534

# Seconds a child process may take. Far more than it needs, so that a
# timeout means it hung.
CHILD_TIMEOUT = 60


class CallerError(Exception):
    """Raised by the iterables and mappings that the tests pass in."""


def fill(db: ShareDB) -> ShareDB:
    db.multiset(RECORDS)
    return db


def assert_intact(db: ShareDB) -> None:
    """Check that db contains exactly RECORDS and still writes and reads."""
    assert len(db) == len(RECORDS)
    for key, value in RECORDS:
        assert db[key] == value, f"record {key!r} changed"
    db["written-after"] = "bad call"
    assert db["written-after"] == "bad call"
    db.remove("written-after")
    assert len(db) == len(RECORDS)


def assert_reopened_intact(path: str) -> None:
    """Open the store at path anew and check its records."""
    with ShareDB(path) as db:
        assert_intact(db)


def assert_message(error: BaseException, parts: list[str]) -> None:
    message = str(error)
    for part in parts:
        assert part in message, f"{part!r} is missing from the message {message!r}"


def packed_size(serial: str, key: object) -> int:
    if serial == "pickle":
        return len(pickle.dumps(key, pickle.HIGHEST_PROTOCOL))
    return len(msgpack.packb(key, use_bin_type=True))


def key_of_packed_size(serial: str, size: int) -> str:
    """Return a str key that packs to exactly size bytes."""
    for length in range(size):
        key = "k" * length
        if packed_size(serial, key) == size:
            return key
    raise AssertionError(f"no str key packs to {size} bytes with {serial}")


def read_bytes(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read()


def sha256_of(path: str) -> str:
    return hashlib.sha256(read_bytes(path)).hexdigest()


@pytest.fixture(params=SETTINGS, ids=SETTING_IDS)
def filled(request, open_store) -> ShareDB:
    """A store of RECORDS, once per entry of SETTINGS."""
    serial, compress = request.param
    return fill(open_store(serial=serial, compress=compress))


# Keys and values ----------------------------------------------------------


def make_local_function() -> Callable[[], None]:
    """Return a function that pickle cannot serialize, because it is
    defined inside another."""

    def inner() -> None:
        return None

    return inner


# A key that packs to far more than MAX_KEY_SIZE bytes.
LONG_KEY = "x" * 600

# Calls that take one key, with every argument but the key valid.
KEY_CALLS: dict[str, Callable[[ShareDB, Any], Any]] = {
    "get": lambda db, key: db.get(key),
    "get-default": lambda db, key: db.get(key, "default"),
    "getitem": lambda db, key: db[key],
    "contains": lambda db, key: key in db,
    "has_key": lambda db, key: db.has_key(key),
    "set": lambda db, key: db.set(key, "value"),
    "setitem": lambda db, key: db.__setitem__(key, "value"),
    "delitem": lambda db, key: db.__delitem__(key),
    "remove": lambda db, key: db.remove(key),
    "pop": lambda db, key: db.pop(key),
    "pop-default": lambda db, key: db.pop(key, "default"),
    "setdefault": lambda db, key: db.setdefault(key, "value"),
    "multiget": lambda db, key: list(db.multiget(["alpha", key])),
    "has_multikey": lambda db, key: list(db.has_multikey(["alpha", key])),
    "multiremove": lambda db, key: db.multiremove(["alpha", key]),
    "multipop": lambda db, key: list(db.multipop([key])),
    "multiset": lambda db, key: db.multiset([("new", 1), (key, "value")]),
    "update": lambda db, key: db.update([("new", 1), (key, "value")]),
}

# Calls that take one value, with a valid key that is not stored.
VALUE_CALLS: dict[str, Callable[[ShareDB, Any], Any]] = {
    "set": lambda db, value: db.set("new", value),
    "setitem": lambda db, value: db.__setitem__("new", value),
    "setdefault": lambda db, value: db.setdefault("new", value),
    "multiset": lambda db, value: db.multiset([("other", 1), ("new", value)]),
    "update-mapping": lambda db, value: db.update({"other": 1, "new": value}),
    "update-pairs": lambda db, value: db.update([("other", 1), ("new", value)]),
    "update-keyword": lambda db, value: db.update(other=1, new=value),
}


def bad_keys(serial: str) -> list[tuple[str, Callable[[], Any], type, list[str]]]:
    """Return (id, key factory, exception class, message parts) rows of
    keys that serial cannot store."""
    rows: list[tuple[str, Callable[[], Any], type, list[str]]] = [
        ("none", lambda: None, TypeError, ["NoneType", "as keys"]),
        (
            "too-long",
            lambda: LONG_KEY,
            sharedb.KeyTooLongError,
            [
                f"packs to {packed_size(serial, LONG_KEY)} bytes",
                f"maximum key size of {MAX_KEY_SIZE} bytes",
            ],
        ),
    ]
    if serial == "pickle":
        rows += [
            ("local-function", make_local_function, TypeError, ["function", "pickle"]),
            ("lock", threading.Lock, TypeError, ["_thread.lock", "pickle"]),
        ]
    else:
        rows += [
            ("set", lambda: {1, 2}, TypeError, ["set", "serialize"]),
            ("object", object, TypeError, ["object", "serialize"]),
            ("int-2**64", lambda: 2**64, TypeError, [str(2**64), "out of range"]),
            (
                "int-below-int64",
                lambda: -(2**63) - 1,
                TypeError,
                [str(-(2**63) - 1), "out of range"],
            ),
        ]
    return rows


def bad_values(serial: str) -> list[tuple[str, Callable[[], Any], type, list[str]]]:
    """Return (id, value factory, exception class, message parts) rows of
    values that serial cannot store."""
    rows: list[tuple[str, Callable[[], Any], type, list[str]]] = [
        ("none", lambda: None, TypeError, ["NoneType", "as values"]),
    ]
    if serial == "pickle":
        rows += [
            ("local-function", make_local_function, TypeError, ["function", "pickle"]),
            ("lock", threading.Lock, TypeError, ["_thread.lock", "pickle"]),
        ]
    else:
        rows += [
            ("set", lambda: {1, 2}, TypeError, ["set", "serialize"]),
            ("object", object, TypeError, ["object", "serialize"]),
            ("int-2**64", lambda: 2**64, TypeError, [str(2**64), "out of range"]),
        ]
    return rows


def setting_rows(rows_of: Callable[[str], list], calls: dict) -> list:
    params = []
    for (serial, compress), setting_id in zip(SETTINGS, SETTING_IDS):
        for row_id, factory, error, parts in rows_of(serial):
            for call in calls:
                params.append(
                    pytest.param(
                        serial,
                        compress,
                        call,
                        factory,
                        error,
                        parts,
                        id=f"{setting_id}-{row_id}-{call}",
                    )
                )
    return params


@pytest.mark.parametrize(
    ("serial", "compress", "call", "make_key", "error", "parts"),
    setting_rows(bad_keys, KEY_CALLS),
)
def test_bad_key(open_store, serial, compress, call, make_key, error, parts):
    db = fill(open_store(serial=serial, compress=compress))
    key = make_key()
    with pytest.raises(error) as info:
        KEY_CALLS[call](db, key)
    assert_message(info.value, parts)
    assert_intact(db)


@pytest.mark.parametrize(
    ("serial", "compress", "call", "make_value", "error", "parts"),
    setting_rows(bad_values, VALUE_CALLS),
)
def test_bad_value(open_store, serial, compress, call, make_value, error, parts):
    db = fill(open_store(serial=serial, compress=compress))
    with pytest.raises(error) as info:
        VALUE_CALLS[call](db, make_value())
    assert_message(info.value, parts)
    assert "new" not in db
    assert "other" not in db
    assert_intact(db)


@pytest.mark.parametrize(("serial", "compress"), SETTINGS, ids=SETTING_IDS)
def test_key_at_size_limit_stored(open_store, serial, compress):
    db = fill(open_store(serial=serial, compress=compress))
    key = key_of_packed_size(serial, MAX_KEY_SIZE)
    db[key] = "at the limit"
    assert db[key] == "at the limit"
    db.remove(key)
    assert_intact(db)


@pytest.mark.parametrize(("serial", "compress"), SETTINGS, ids=SETTING_IDS)
def test_key_past_size_limit_message(open_store, serial, compress):
    db = fill(open_store(serial=serial, compress=compress))
    key = key_of_packed_size(serial, MAX_KEY_SIZE + 1)
    with pytest.raises(sharedb.KeyTooLongError) as info:
        db[key] = "one byte too long"
    assert_message(info.value, [f"{MAX_KEY_SIZE + 1} bytes", f"{MAX_KEY_SIZE} bytes"])
    assert_intact(db)


# Deeply nested and self-referencing objects recurse in the serializers,
# so they run in a child interpreter, where a crash cannot end the run.
# Arguments: store path, serial. Prints one JSON line per case.
NESTED_OBJECTS = """
    import json
    import sys

    from sharedb import ShareDB

    db = ShareDB(sys.argv[1], serial=sys.argv[2])
    db["kept"] = "old"

    deep = []
    for _ in range(100_000):
        deep = [deep]
    looped = []
    looped.append(looped)
    cases = {
        "deep-key": lambda: db.set(deep, 1),
        "deep-value": lambda: db.set("new", deep),
        "looped-key": lambda: db.set(looped, 1),
    }
    if sys.argv[2] == "msgpack":
        cases["looped-value"] = lambda: db.set("new", looped)
    for name, call in cases.items():
        try:
            call()
            outcome = {"case": name, "error": None}
        except Exception as error:
            outcome = {
                "case": name,
                "error": type(error).__name__,
                "message": str(error)[-300:],
            }
        outcome["records"] = dict(db.items())
        print(json.dumps(outcome), flush=True)
"""


@pytest.mark.parametrize("serial", ["pickle", "msgpack"])
def test_nested_objects_raise_cleanly(tmp_path, serial):
    result = run_python(
        NESTED_OBJECTS, str(tmp_path / "nested"), serial, timeout=CHILD_TIMEOUT
    )
    assert result.returncode == 0, result.stderr
    outcomes = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(outcomes) == (4 if serial == "msgpack" else 3)
    for outcome in outcomes:
        assert outcome["error"] == "TypeError", outcome
        assert "recursion" in outcome["message"], outcome
        assert outcome["records"] == {"kept": "old"}, outcome


# Other arguments of the methods -------------------------------------------


def pairs_then_fail() -> Iterator[tuple[str, int]]:
    yield ("new", 1)
    raise CallerError("the pairs failed midway")


def present_keys_then_fail() -> Iterator[str]:
    yield "alpha"
    raise CallerError("the keys failed midway")


def keys_failing_at_once() -> Iterator[str]:
    raise CallerError("the keys failed at once")
    yield "never"  # makes this function a generator


class FailingMapping:
    """A mapping whose second item cannot be read."""

    def keys(self) -> list[str]:
        return ["new", "other"]

    def __getitem__(self, key: str) -> int:
        if key == "other":
            raise CallerError("the mapping failed midway")
        return 1


# (id, call, exception class, message parts). Every call leaves the store
# as it was.
ARGUMENT_CASES: list[tuple[str, Callable[[ShareDB], Any], Any, list[str]]] = [
    # multiset(kv_iter)
    (
        "multiset-int",
        lambda db: db.multiset(5),
        TypeError,
        ["5", "int", "not iterable"],
    ),
    (
        "multiset-none",
        lambda db: db.multiset(None),
        TypeError,
        ["NoneType", "not iterable"],
    ),
    (
        "multiset-item-int",
        lambda db: db.multiset([("new", 1), 7]),
        TypeError,
        ["cannot unpack", "int"],
    ),
    (
        "multiset-item-3-tuple",
        lambda db: db.multiset([("new", 1), (1, 2, 3)]),
        TypeError,
        ["(1, 2, 3)", "expected 2"],
    ),
    (
        "multiset-item-1-tuple",
        lambda db: db.multiset([("new", 1), (1,)]),
        TypeError,
        ["(1,)", "expected 2"],
    ),
    (
        "multiset-item-3-char-str",
        lambda db: db.multiset([("new", 1), "xyz"]),
        TypeError,
        ["xyz", "expected 2"],
    ),
    (
        "multiset-dict",
        lambda db: db.multiset({"new": 1}),
        TypeError,
        ["dict", "expected 2"],
    ),
    (
        "multiset-generator-3-tuples",
        lambda db: db.multiset((key, key, key) for key in ("new", "other")),
        TypeError,
        ["generator", "expected 2"],
    ),
    (
        "multiset-generator-none",
        lambda db: db.multiset(None for _ in range(2)),
        TypeError,
        ["NoneType", "unpack"],
    ),
    (
        "multiset-fails-midway",
        lambda db: db.multiset(pairs_then_fail()),
        CallerError,
        ["the pairs failed midway"],
    ),
    (
        "multiset-no-argument",
        lambda db: db.multiset(),
        TypeError,
        ["multiset", "kv_iter"],
    ),
    # update(other, **kwargs)
    ("update-int", lambda db: db.update(5), TypeError, ["5", "int", "not iterable"]),
    (
        "update-none",
        lambda db: db.update(None),
        TypeError,
        ["NoneType", "not iterable"],
    ),
    (
        "update-item-3-tuple",
        lambda db: db.update([("new", 1), (1, 2, 3)]),
        TypeError,
        ["(1, 2, 3)", "expected 2"],
    ),
    ("update-str", lambda db: db.update("ab"), TypeError, ["ab", "str", "expected 2"]),
    (
        "update-fails-midway",
        lambda db: db.update(pairs_then_fail()),
        CallerError,
        ["the pairs failed midway"],
    ),
    (
        "update-mapping-fails-midway",
        lambda db: db.update(FailingMapping()),
        CallerError,
        ["the mapping failed midway"],
    ),
    # The message should name the keyword whose value was rejected.
    (
        "update-keyword-none",
        lambda db: db.update(new=1, colour=None),
        TypeError,
        ["colour", "NoneType"],
    ),
    (
        "update-two-positional",
        lambda db: db.update({}, {}),
        TypeError,
        ["update", "positional"],
    ),
    # multiget(key_iter, default), has_multikey(key_iter)
    ("multiget-int", lambda db: list(db.multiget(5)), TypeError, ["5", "not iterable"]),
    (
        "multiget-none",
        lambda db: list(db.multiget(None)),
        TypeError,
        ["NoneType", "not iterable"],
    ),
    (
        "multiget-fails-midway",
        lambda db: list(db.multiget(present_keys_then_fail())),
        CallerError,
        ["the keys failed midway"],
    ),
    (
        "has_multikey-int",
        lambda db: list(db.has_multikey(5)),
        TypeError,
        ["5", "not iterable"],
    ),
    (
        "has_multikey-fails-midway",
        lambda db: list(db.has_multikey(present_keys_then_fail())),
        CallerError,
        ["the keys failed midway"],
    ),
    # multiremove(key_iter)
    ("multiremove-int", lambda db: db.multiremove(5), TypeError, ["5", "not iterable"]),
    (
        "multiremove-none",
        lambda db: db.multiremove(None),
        TypeError,
        ["NoneType", "not iterable"],
    ),
    (
        "multiremove-fails-midway",
        lambda db: db.multiremove(present_keys_then_fail()),
        CallerError,
        ["the keys failed midway"],
    ),
    # multipop(key_iter)
    ("multipop-int", lambda db: list(db.multipop(5)), TypeError, ["5", "not iterable"]),
    (
        "multipop-none",
        lambda db: list(db.multipop(None)),
        TypeError,
        ["NoneType", "not iterable"],
    ),
    (
        "multipop-fails-at-once",
        lambda db: list(db.multipop(keys_failing_at_once())),
        CallerError,
        ["the keys failed at once"],
    ),
    # multipopitem(num_items)
    (
        "multipopitem-str",
        lambda db: list(db.multipopitem("3")),
        TypeError,
        ["3", "str", "integer/long/float"],
    ),
    (
        "multipopitem-bool",
        lambda db: list(db.multipopitem(True)),
        TypeError,
        ["True", "bool", "integer/long/float"],
    ),
    (
        "multipopitem-complex",
        lambda db: list(db.multipopitem(1j)),
        TypeError,
        ["1j", "complex", "integer/long/float"],
    ),
    (
        "multipopitem-nan",
        lambda db: list(db.multipopitem(math.nan)),
        ValueError,
        ["num_items", "nan"],
    ),
    # Calls with too few or too many arguments.
    ("get-no-key", lambda db: db.get(), TypeError, ["get", "key"]),
    ("get-3-arguments", lambda db: db.get(1, 2, 3), TypeError, ["get", "at most 2"]),
    ("set-no-value", lambda db: db.set("new"), TypeError, ["set", "val"]),
    ("pop-no-key", lambda db: db.pop(), TypeError, ["pop", "key"]),
    ("pop-3-arguments", lambda db: db.pop(1, 2, 3), TypeError, ["pop", "at most 2"]),
    ("setdefault-no-key", lambda db: db.setdefault(), TypeError, ["setdefault", "key"]),
    ("popitem-argument", lambda db: db.popitem(1), TypeError, ["popitem", "argument"]),
    (
        "multipopitem-two-arguments",
        lambda db: db.multipopitem(1, 2),
        TypeError,
        ["multipopitem", "positional"],
    ),
    ("items-argument", lambda db: db.items(1), TypeError, ["items", "no arguments"]),
    ("keys-argument", lambda db: db.keys(1), TypeError, ["keys", "no arguments"]),
    ("values-argument", lambda db: db.values(1), TypeError, ["values", "no arguments"]),
    ("length-argument", lambda db: db.length(1), TypeError, ["length", "no arguments"]),
    ("sync-argument", lambda db: db.sync(1), TypeError, ["sync", "no arguments"]),
    ("clear-argument", lambda db: db.clear(1), TypeError, ["clear", "no arguments"]),
    ("close-argument", lambda db: db.close(1), TypeError, ["close", "positional"]),
    ("drop-argument", lambda db: db.drop(1), TypeError, ["drop", "positional"]),
    (
        "get-unknown-keyword",
        lambda db: db.get("alpha", fallback=1),
        TypeError,
        ["fallback"],
    ),
    # Attributes
    (
        "sync_threshold-negative",
        lambda db: setattr(db, "sync_threshold", -1),
        ValueError,
        ["sync_threshold", "positive int", "-1"],
    ),
    (
        "sync_threshold-zero",
        lambda db: setattr(db, "sync_threshold", 0),
        ValueError,
        ["sync_threshold", "positive int", "0"],
    ),
    (
        "sync_threshold-str",
        lambda db: setattr(db, "sync_threshold", "10"),
        TypeError,
        ["sync_threshold", "positive int", "str"],
    ),
    (
        "sync_threshold-none",
        lambda db: setattr(db, "sync_threshold", None),
        TypeError,
        ["sync_threshold", "positive int", "NoneType"],
    ),
    (
        "sync_threshold-float",
        lambda db: setattr(db, "sync_threshold", 2.5),
        TypeError,
        ["sync_threshold", "positive int", "float"],
    ),
    (
        "sync_threshold-bool",
        lambda db: setattr(db, "sync_threshold", True),
        TypeError,
        ["sync_threshold", "positive int", "bool"],
    ),
    (
        "sync_threshold-2**80",
        lambda db: setattr(db, "sync_threshold", 2**80),
        (ValueError, OverflowError),
        ["sync_threshold", str(2**80)],
    ),
    (
        "pending_writes-str",
        lambda db: setattr(db, "pending_writes", "3"),
        TypeError,
        ["pending_writes", "str"],
    ),
    (
        "pending_writes-delete",
        lambda db: delattr(db, "pending_writes"),
        AttributeError,
        ["pending_writes"],
    ),
    (
        "is_alive-assign",
        lambda db: setattr(db, "is_alive", False),
        AttributeError,
        ["is_alive"],
    ),
]


@pytest.mark.parametrize(
    ("call", "error", "parts"),
    [pytest.param(*row[1:], id=row[0]) for row in ARGUMENT_CASES],
)
def test_bad_argument(filled, call, error, parts):
    threshold = filled.sync_threshold
    with pytest.raises(error) as info:
        call(filled)
    assert_message(info.value, parts)
    assert filled.sync_threshold == threshold
    assert "new" not in filled
    assert "other" not in filled
    assert_intact(filled)


@pytest.mark.parametrize("num_items", [0, -1, -0.5, -math.inf])
def test_multipopitem_non_positive_pops_nothing(filled, num_items):
    assert list(filled.multipopitem(num_items)) == []
    assert_intact(filled)


# A ShareDB made by __new__ without __init__, as a subclass leaves it when
# its __init__ does not call super().__init__().
UNOPENED_CALLS = {
    "get": lambda db: db.get("alpha"),
    "set": lambda db: db.set("new", 1),
    "len": len,
    "items": lambda db: list(db.items()),
    "multipop": lambda db: list(db.multipop(["alpha"])),
    "update": lambda db: db.update({"new": 1}),
    "sync": lambda db: db.sync(),
}


@pytest.mark.parametrize("call", list(UNOPENED_CALLS))
def test_unopened_instance_raises_runtime_error(call):
    unopened = ShareDB.__new__(ShareDB)
    with pytest.raises(RuntimeError) as info:
        UNOPENED_CALLS[call](unopened)
    assert_message(info.value, ["ShareDB"])


def test_unopened_instance_repr():
    unopened = ShareDB.__new__(ShareDB)
    assert "ShareDB" in repr(unopened)


# The constructor, on a store that contains records -------------------------


# (id, call with the store path, exception class, message parts). Rows
# of test_store.py that check the same argument and value on a new path
# are left out.
CONSTRUCTOR_CASES: list[tuple[str, Callable[[str], Any], Any, list[str]]] = [
    ("path-list", lambda path: ShareDB([path]), TypeError, ["path", "list"]),
    ("path-bool", lambda path: ShareDB(True), TypeError, ["path", "bool"]),
    (
        "path-empty-str",
        lambda path: ShareDB(""),
        ValueError,
        ["path", "does not name a store"],
    ),
    (
        "path-empty-bytes",
        lambda path: ShareDB(b""),
        ValueError,
        ["path", "does not name a store"],
    ),
    (
        "path-null-byte",
        lambda path: ShareDB(path + "\0x"),
        ValueError,
        ["path", "null character"],
    ),
    (
        "path-bytes-null-byte",
        lambda path: ShareDB(os.fsencode(path) + b"\0x"),
        ValueError,
        ["path", "null character"],
    ),
    (
        "reset-str",
        lambda path: ShareDB(path, reset="yes"),
        TypeError,
        ["reset", "yes", "True or False"],
    ),
    (
        "reset-none",
        lambda path: ShareDB(path, reset=None),
        TypeError,
        ["reset", "None", "True or False"],
    ),
    (
        "reset-2",
        lambda path: ShareDB(path, reset=2),
        TypeError,
        ["reset", "2", "True or False"],
    ),
    (
        "reset-float",
        lambda path: ShareDB(path, reset=1.0),
        TypeError,
        ["reset", "1.0", "True or False"],
    ),
    (
        "durable-str",
        lambda path: ShareDB(path, durable="yes"),
        TypeError,
        ["durable", "yes", "True or False"],
    ),
    (
        "durable-none",
        lambda path: ShareDB(path, durable=None),
        TypeError,
        ["durable", "None", "True or False"],
    ),
    (
        "durable-positional",
        lambda path: ShareDB(path, False, "pickle", False, 256, 100, None, True),
        TypeError,
        ["positional"],
    ),
    (
        "serial-empty",
        lambda path: ShareDB(path, serial=""),
        TypeError,
        ["serial", "'msgpack' or 'pickle'"],
    ),
    (
        "serial-bytes",
        lambda path: ShareDB(path, serial=b"pickle"),
        TypeError,
        ["serial", "bytes", "'msgpack' or 'pickle'"],
    ),
    (
        "compress-none",
        lambda path: ShareDB(path, compress=None),
        TypeError,
        ["compress", "None", "True or False"],
    ),
    (
        "compress-float",
        lambda path: ShareDB(path, compress=1.0),
        TypeError,
        ["compress", "1.0", "True or False"],
    ),
    (
        "compress-str",
        lambda path: ShareDB(path, compress="True"),
        TypeError,
        ["compress", "str", "True or False"],
    ),
    (
        "readers-bool",
        lambda path: ShareDB(path, readers=True),
        TypeError,
        ["readers", "bool", "positive int"],
    ),
    (
        "readers-none",
        lambda path: ShareDB(path, readers=None),
        TypeError,
        ["readers", "None", "positive int"],
    ),
    (
        "readers-nan",
        lambda path: ShareDB(path, readers=math.nan),
        TypeError,
        ["readers", "nan", "positive int"],
    ),
    (
        "buffer_size-bool",
        lambda path: ShareDB(path, buffer_size=True),
        TypeError,
        ["buffer_size", "bool", "positive int"],
    ),
    (
        "buffer_size-none",
        lambda path: ShareDB(path, buffer_size=None),
        TypeError,
        ["buffer_size", "None", "positive int"],
    ),
    (
        "buffer_size-inf",
        lambda path: ShareDB(path, buffer_size=math.inf),
        TypeError,
        ["buffer_size", "inf", "positive int"],
    ),
    (
        "map_size-bool",
        lambda path: ShareDB(path, map_size=True),
        TypeError,
        ["map_size", "bool", "positive int"],
    ),
    (
        "map_size-inf",
        lambda path: ShareDB(path, map_size=math.inf),
        TypeError,
        ["map_size", "inf", "positive int"],
    ),
    (
        "map_size-2**64",
        lambda path: ShareDB(path, map_size=2**64),
        TypeError,
        ["map_size", f"not {2**64}", "at most"],
    ),
    ("unknown-keyword", lambda path: ShareDB(path, bogus=1), TypeError, ["bogus"]),
]


@pytest.mark.parametrize(
    ("call", "error", "parts"),
    [pytest.param(*row[1:], id=row[0]) for row in CONSTRUCTOR_CASES],
)
def test_bad_constructor_argument(
    open_store, tmp_path, monkeypatch, call, error, parts
):
    # Relative paths resolve under tmp_path, where a stray store would show.
    monkeypatch.chdir(tmp_path)
    db = fill(open_store("kept"))
    config_file = os.path.join(db.path, "ShareDB.config")
    saved = read_bytes(config_file)
    with pytest.raises(error) as info:
        call(str(tmp_path / "kept"))
    assert_message(info.value, parts)
    assert read_bytes(config_file) == saved
    assert db.is_alive
    assert_intact(db)
    assert os.listdir(tmp_path) == ["kept.ShareDB"]


def test_path_name_too_long(open_store, tmp_path):
    db = fill(open_store("kept"))
    path = str(tmp_path / ("n" * 300))
    with pytest.raises(sharedb.InvalidArgumentError) as info:
        ShareDB(path)
    assert_message(info.value, ["cannot create the store directory", "name too long"])
    assert_intact(db)


def test_path_existing_file_suggests_reset(tmp_path):
    (tmp_path / "f.ShareDB").write_bytes(b"not a store")
    with pytest.raises(sharedb.InvalidArgumentError) as info:
        ShareDB(str(tmp_path / "f"))
    assert_message(info.value, ["is a file", "reset=True"])
    assert (tmp_path / "f.ShareDB").read_bytes() == b"not a store"


def test_map_size_below_data_keeps_deletes(open_store, tmp_path):
    """A cap below the data is either rejected or leaves room to delete."""
    db = open_store("capped")
    db.multiset((number, "v" * 100) for number in range(1000))
    db.close()
    try:
        capped = open_store("capped", map_size=4096)
    except sharedb.InvalidArgumentError as error:
        assert_message(error, ["map_size", "4096"])
        with ShareDB(str(tmp_path / "capped")) as again:
            assert len(again) == 1000
        return
    capped.remove(0)
    assert 0 not in capped
    assert len(capped) == 999


def test_map_size_one_byte_new_store(open_store):
    """A cap too small for any record is either rejected or stores one."""
    try:
        db = open_store("tiny", map_size=1)
    except sharedb.InvalidArgumentError as error:
        assert_message(error, ["map_size", "1"])
        return
    db["k"] = "v"
    assert db["k"] == "v"


# The ShareDB.config file ----------------------------------------------------


@pytest.fixture
def closed_store(tmp_path) -> str:
    """Path of a closed pickle store of RECORDS."""
    path = str(tmp_path / "store")
    with ShareDB(path) as db:
        fill(db)
    return path


def config_of(path: str) -> str:
    return os.path.join(path + ".ShareDB", "ShareDB.config")


def data_of(path: str) -> str:
    return os.path.join(path + ".ShareDB", "data.mdb")


def half(text: bytes) -> bytes:
    """Cut text in the middle of its 'readers' line."""
    return text[: text.index(b"readers") + len(b"readers ")]


def replace_line(option: bytes, line: bytes) -> Callable[[bytes], bytes]:
    """Return a function that replaces the line of option in a config."""

    def edit(text: bytes) -> bytes:
        lines = text.split(b"\n")
        edited = [line if entry.startswith(option + b" ") else entry for entry in lines]
        assert edited != lines, f"no line for {option!r}"
        return b"\n".join(edited)

    return edit


# (id, edit of the saved config bytes, message parts). The message always
# names the file too.
CONFIG_CASES: list[tuple[str, Callable[[bytes], bytes], list[str]]] = [
    ("empty", lambda text: b"", ["no [ShareDB Config] section"]),
    ("half", half, ["cannot read", "parsing errors"]),
    (
        "serial-foo",
        replace_line(b"serial", b"serial = foo"),
        ["'serial'", "'msgpack' or 'pickle'", "'foo'"],
    ),
    (
        "readers-negative",
        replace_line(b"readers", b"readers = -1"),
        ["'readers'", "positive integer", "-1"],
    ),
    (
        "readers-not-a-number",
        replace_line(b"readers", b"readers = many"),
        ["'readers'", "positive integer", "'many'"],
    ),
    (
        "compress-maybe",
        replace_line(b"compress", b"compress = maybe"),
        ["'compress'", "True or False", "'maybe'"],
    ),
    (
        "bcsize-zero",
        replace_line(b"bcsize", b"bcsize = 0"),
        ["'bcsize'", "positive integer", "not 0"],
    ),
    (
        "mslimit-negative",
        replace_line(b"mslimit", b"mslimit = -5"),
        ["'mslimit'", "positive integer", "-5"],
    ),
    (
        "msauto-maybe",
        replace_line(b"msauto", b"msauto = maybe"),
        ["'msauto'", "True or False", "'maybe'"],
    ),
    ("serial-missing", replace_line(b"serial", b""), ["no 'serial' option"]),
    (
        "section-header-missing",
        lambda text: text.replace(b"[ShareDB Config]\n", b""),
        ["no section headers"],
    ),
    (
        "section-renamed",
        lambda text: text.replace(b"[ShareDB Config]", b"[Settings]"),
        ["no [ShareDB Config] section"],
    ),
    (
        "option-twice",
        lambda text: text + b"serial = msgpack\n",
        ["'serial'", "already exists"],
    ),
    ("garbage", lambda text: bytes(range(256)) * 4, ["cannot read", "utf-8"]),
    (
        "not-utf8",
        lambda text: text.replace(b"serial = pickle", b"serial = pickl\xe9"),
        ["cannot read", "utf-8"],
    ),
    ("null-bytes", lambda text: b"\0" * 100, ["no section headers"]),
]


@pytest.mark.parametrize(
    ("edit", "parts"),
    [pytest.param(*row[1:], id=row[0]) for row in CONFIG_CASES],
)
def test_bad_config_file(closed_store, edit, parts):
    config_file = config_of(closed_store)
    saved = read_bytes(config_file)
    data_hash = sha256_of(data_of(closed_store))
    bad = edit(saved)
    with open(config_file, "wb") as file:
        file.write(bad)

    with pytest.raises(sharedb.ConfigError) as info:
        ShareDB(closed_store)

    assert_message(info.value, [config_file, *parts])
    assert read_bytes(config_file) == bad
    assert sha256_of(data_of(closed_store)) == data_hash
    with open(config_file, "wb") as file:
        file.write(saved)
    assert_reopened_intact(closed_store)


def test_bad_config_file_leaves_open_store(open_store, tmp_path):
    db = fill(open_store("open"))
    config_file = os.path.join(db.path, "ShareDB.config")
    with open(config_file, "wb") as file:
        file.write(bytes(range(256)))
    with pytest.raises(sharedb.ConfigError):
        ShareDB(str(tmp_path / "open"))
    assert_intact(db)


def test_config_file_is_directory(closed_store):
    config_file = config_of(closed_store)
    saved = read_bytes(config_file)
    os.remove(config_file)
    os.mkdir(config_file)
    with pytest.raises(sharedb.ConfigError) as info:
        ShareDB(closed_store)
    assert_message(info.value, [config_file, "Is a directory"])
    os.rmdir(config_file)
    with open(config_file, "wb") as file:
        file.write(saved)
    assert_reopened_intact(closed_store)


@pytest.mark.parametrize(
    "extra",
    [b"colour = blue\n", b"\n[Other Section]\nname = value\n"],
    ids=["unknown-option", "unknown-section"],
)
def test_config_unknown_entries_ignored(closed_store, extra):
    config_file = config_of(closed_store)
    with open(config_file, "ab") as file:
        file.write(extra)
    assert_reopened_intact(closed_store)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"serial": "pickle"}, {"compress": False}],
    ids=["no-arguments", "serial-only", "compress-only"],
)
def test_config_missing_with_records(closed_store, kwargs):
    config_file = config_of(closed_store)
    os.remove(config_file)
    with pytest.raises(sharedb.ConfigError) as info:
        ShareDB(closed_store, **kwargs)
    assert_message(info.value, [config_file, "is missing", "serial=", "compress="])
    assert not os.path.exists(config_file)
    assert len(os.listdir(closed_store + ".ShareDB")) == 2


def test_config_missing_given_settings_open(closed_store):
    os.remove(config_of(closed_store))
    with ShareDB(closed_store, serial="pickle", compress=False) as db:
        assert_intact(db)
    assert os.path.exists(config_of(closed_store))
    assert_reopened_intact(closed_store)


@pytest.mark.parametrize(
    ("kwargs", "parts"),
    [
        ({"serial": "msgpack", "compress": False}, ["serial", "msgpack"]),
        ({"serial": "pickle", "compress": True}, ["compress", "True"]),
    ],
    ids=["wrong-serial", "wrong-compress"],
)
def test_config_missing_wrong_settings_rejected(closed_store, kwargs, parts):
    """Settings that cannot read the records must not be saved for them."""
    os.remove(config_of(closed_store))
    with pytest.raises(sharedb.ConfigError) as info:
        ShareDB(closed_store, **kwargs)
    assert_message(info.value, parts)
    assert not os.path.exists(config_of(closed_store))


def test_config_missing_empty_store_opens(tmp_path):
    path = str(tmp_path / "empty")
    ShareDB(path).close()
    os.remove(config_of(path))
    with ShareDB(path, serial="msgpack") as db:
        assert db.serial == "msgpack"
        fill(db)
        assert_intact(db)


# Permissions --------------------------------------------------------------


@pytest.fixture
def shared_directory() -> Iterator[str]:
    """A new directory that "nobody" may enter, unlike pytest's tmp_path."""
    if getattr(os, "geteuid", lambda: -1)() != 0:
        pytest.skip(f"running a child as another user (uid {NOBODY}) needs root")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is needed to run a child as another user")
    directory = tempfile.mkdtemp(prefix="sharedb-bad-input-")
    os.chmod(directory, 0o755)
    yield directory
    shutil.rmtree(directory)


def run_as_nobody(code: str, *args: str) -> subprocess.CompletedProcess:
    """Run code in a new interpreter as the user "nobody"."""
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(path for path in sys.path if path)
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
        timeout=CHILD_TIMEOUT,
        env=environment,
    )


# Opens the store argv[1], then reads and writes it, and prints how each
# step went as JSON.
OPEN_READ_WRITE = """
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
    sys.exit()
outcome = {"opened": True, "records": len(db), "alpha": db.get("alpha")}
try:
    db["from-nobody"] = 1
    outcome["write"] = None
except Exception as error:
    outcome["write"] = f"{type(error).__name__}: {error}"
db.close()
print(json.dumps(outcome))
"""


def create_filled_store(directory: str) -> str:
    """Create a store of RECORDS in directory and return its path."""
    path = os.path.join(directory, "store")
    with ShareDB(path) as db:
        fill(db)
    return path


def remove_written_record(path: str) -> None:
    with ShareDB(path) as db:
        db.remove("from-nobody")


def test_unwritable_parent_directory(shared_directory):
    parent = os.path.join(shared_directory, "parent")
    os.mkdir(parent)
    os.chown(parent, NOBODY, NOBODY)
    os.chmod(parent, 0o500)

    result = run_as_nobody(OPEN_READ_WRITE, os.path.join(parent, "store"))

    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["opened"] is False, outcome
    assert outcome["error"] == "InvalidArgumentError", outcome
    assert_message(
        Exception(outcome["message"]),
        ["cannot create the store directory", parent, "Permission denied"],
    )
    assert os.listdir(parent) == []


def test_read_only_directory_writable_files(shared_directory):
    path = create_filled_store(shared_directory)
    store_dir = path + ".ShareDB"
    for name in os.listdir(store_dir):
        os.chmod(os.path.join(store_dir, name), 0o666)
    os.chmod(store_dir, 0o555)

    result = run_as_nobody(OPEN_READ_WRITE, path)

    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome == {
        "opened": True,
        "records": len(RECORDS),
        "alpha": "first",
        "write": None,
    }
    os.chmod(store_dir, 0o755)
    remove_written_record(path)
    assert_reopened_intact(path)


def test_read_only_data_file(shared_directory):
    """LMDB reads a data file it cannot write if the lock file is
    writable, so the store either opens for reading or names data.mdb."""
    path = create_filled_store(shared_directory)
    store_dir = path + ".ShareDB"
    os.chmod(os.path.join(store_dir, "lock.mdb"), 0o666)
    os.chmod(os.path.join(store_dir, "data.mdb"), 0o444)
    os.chmod(os.path.join(store_dir, "ShareDB.config"), 0o444)
    os.chmod(store_dir, 0o555)

    result = run_as_nobody(OPEN_READ_WRITE, path)

    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    if outcome["opened"]:
        assert outcome["records"] == len(RECORDS), outcome
        assert outcome["alpha"] == "first", outcome
        assert outcome["write"] is not None, outcome
    else:
        assert outcome["error"] == "PermissionError", outcome
        assert "data.mdb" in outcome["message"], outcome
    os.chmod(store_dir, 0o755)
    assert_reopened_intact(path)


def test_read_only_directory_without_lock_file(shared_directory):
    path = create_filled_store(shared_directory)
    store_dir = path + ".ShareDB"
    os.remove(os.path.join(store_dir, "lock.mdb"))
    for name in os.listdir(store_dir):
        os.chmod(os.path.join(store_dir, name), 0o666)
    os.chmod(store_dir, 0o555)

    result = run_as_nobody(OPEN_READ_WRITE, path)

    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["opened"] is False, outcome
    assert outcome["error"] == "PermissionError", outcome
    assert outcome["errno"] == errno.EACCES, outcome
    assert "lock.mdb" in outcome["message"], outcome
    os.chmod(store_dir, 0o755)
    assert_reopened_intact(path)


def test_unreadable_config_file(shared_directory):
    path = create_filled_store(shared_directory)
    store_dir = path + ".ShareDB"
    for name in ("data.mdb", "lock.mdb"):
        os.chmod(os.path.join(store_dir, name), 0o666)
    os.chmod(os.path.join(store_dir, "ShareDB.config"), 0o000)

    result = run_as_nobody(OPEN_READ_WRITE, path)

    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["opened"] is False, outcome
    assert outcome["error"] == "ConfigError", outcome
    assert_message(
        Exception(outcome["message"]),
        [os.path.join(store_dir, "ShareDB.config"), "Permission denied"],
    )
    os.chmod(os.path.join(store_dir, "ShareDB.config"), 0o644)
    assert_reopened_intact(path)


# A read-only file system --------------------------------------------------


@pytest.fixture(scope="module")
def read_only_mount(tmp_path_factory) -> Iterator[str]:
    """A tmpfs mounted read-only, containing the msgpack store "store" with
    RECORDS."""
    if getattr(os, "geteuid", lambda: -1)() != 0:
        pytest.skip("mounting a tmpfs needs root")
    if shutil.which("mount") is None or shutil.which("umount") is None:
        pytest.skip("mount and umount are needed to mount a tmpfs")
    mount_point = str(tmp_path_factory.mktemp("read-only-mount"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", mount_point],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    try:
        with ShareDB(os.path.join(mount_point, "store"), serial="msgpack") as db:
            fill(db)
        remounted = subprocess.run(
            ["mount", "-o", "remount,ro", mount_point],
            capture_output=True,
            text=True,
        )
        if remounted.returncode != 0:
            reason = remounted.stderr.strip()
            pytest.skip(f"cannot remount the tmpfs read-only: {reason}")
        yield mount_point
    finally:
        unmounted = subprocess.run(["umount", mount_point], capture_output=True)
        if unmounted.returncode != 0:
            # A store left open keeps the mount busy: detach it anyway.
            subprocess.run(["umount", "--lazy", mount_point], check=True)


def assert_records_readable(db: ShareDB) -> None:
    """Check the records of a store that cannot be written."""
    assert len(db) == len(RECORDS)
    for key, value in RECORDS:
        assert db[key] == value, f"record {key!r} changed"


@pytest.fixture
def read_only_store(read_only_mount) -> Iterator[ShareDB]:
    db = ShareDB(os.path.join(read_only_mount, "store"))
    yield db
    db.close()


def test_read_only_fs_store_reads(read_only_store):
    assert read_only_store._env.readonly is True
    assert_records_readable(read_only_store)
    assert len(list(read_only_store.items())) == len(RECORDS)


READ_ONLY_WRITES: dict[str, Callable[[ShareDB], Any]] = {
    "set": lambda db: db.set("new", 1),
    "setitem": lambda db: db.__setitem__("alpha", "changed"),
    "delitem": lambda db: db.__delitem__("alpha"),
    "remove": lambda db: db.remove("alpha"),
    "pop": lambda db: db.pop("alpha"),
    "popitem": lambda db: db.popitem(),
    "setdefault": lambda db: db.setdefault("new", 1),
    "multiset": lambda db: db.multiset([("new", 1)]),
    "update": lambda db: db.update({"new": 1}),
    "multiremove": lambda db: db.multiremove(["alpha"]),
    "multipop": lambda db: list(db.multipop(["alpha"])),
    "multipopitem": lambda db: list(db.multipopitem(2)),
    "clear": lambda db: db.clear(),
}


@pytest.mark.parametrize("call", list(READ_ONLY_WRITES))
def test_read_only_fs_write_raises(read_only_store, call):
    with pytest.raises(lmdb.ReadonlyError) as info:
        READ_ONLY_WRITES[call](read_only_store)
    assert_message(info.value, [read_only_store.path, "read-only file system"])
    assert_records_readable(read_only_store)


def test_read_only_fs_new_store_raises(read_only_mount):
    path = os.path.join(read_only_mount, "new")
    with pytest.raises(sharedb.InvalidArgumentError) as info:
        ShareDB(path)
    assert_message(info.value, ["cannot create the store directory", path, "Read-only"])


def test_read_only_fs_reset_raises(read_only_mount):
    path = os.path.join(read_only_mount, "store")
    with pytest.raises(sharedb.InvalidArgumentError) as info:
        ShareDB(path, reset=True)
    assert_message(info.value, ["reset=True", path, "Read-only"])
    with ShareDB(path) as db:
        assert_records_readable(db)


def test_read_only_fs_drop_names_store(read_only_mount):
    db = ShareDB(os.path.join(read_only_mount, "store"))
    with pytest.raises(OSError) as info:
        db.drop()
    assert info.value.errno == errno.EROFS
    assert_message(info.value, [db.path.rstrip("/")])
    with ShareDB(os.path.join(read_only_mount, "store")) as again:
        assert_records_readable(again)


def test_read_only_fs_environment_write_open(read_only_mount):
    path = os.path.join(read_only_mount, "store.ShareDB")
    with pytest.raises(OSError) as info:
        lmdb.Environment(path)
    assert info.value.errno == errno.EROFS
    assert_message(info.value, [path])
    with lmdb.Environment(path, readonly=True, lock=False) as env:
        assert env.stat()["entries"] == len(RECORDS)


# The LMDB layer -----------------------------------------------------------

RAW_RECORDS = [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")]


@pytest.fixture
def raw(tmp_path) -> Iterator[dict[str, Any]]:
    """A filled environment with a write transaction and a cursor on it,
    and a named database of another environment."""
    env = lmdb.Environment(str(tmp_path / "env"), map_size=1 << 26, max_dbs=2)
    with env.begin(write=True) as txn:
        txn.putmulti(RAW_RECORDS)
    other = lmdb.Environment(str(tmp_path / "other"), map_size=1 << 22, max_dbs=2)
    other_db = other.open_db(b"elsewhere")
    txn = env.begin(write=True)
    objects = {
        "env": env,
        "txn": txn,
        "cursor": txn.cursor(),
        "other_db": other_db,
    }
    yield objects
    if not txn.ended:
        txn.abort()
    env.close()
    other.close()


def assert_raw_intact(objects: dict[str, Any]) -> None:
    """Check that the write transaction still works and that, once it
    commits, the environment contains RAW_RECORDS and its write."""
    txn = objects["txn"]
    txn.put(b"written-after", b"bad call")
    txn.commit()
    with objects["env"].begin() as reader:
        assert list(reader.cursor()) == [*RAW_RECORDS, (b"written-after", b"bad call")]


def strided() -> memoryview:
    """Return a bytes-like object that is not contiguous, which LMDB
    cannot take."""
    return memoryview(bytes(range(20)))[::2]


# (id, call, exception class, message parts). Rows of test_misuse.py and
# test_txn.py that check the same argument and value are left out.
RAW_CASES: list[tuple[str, Callable[[dict[str, Any]], Any], Any, list[str]]] = [
    # Keys of 0 and of 512 bytes.
    (
        "txn.get-empty-key",
        lambda o: o["txn"].get(b""),
        lmdb.BadValsizeError,
        ["0 bytes", "1 to 511 bytes"],
    ),
    (
        "txn.get-long-key",
        lambda o: o["txn"].get(b"k" * 512),
        lmdb.BadValsizeError,
        ["512 bytes", "1 to 511 bytes"],
    ),
    (
        "txn.put-empty-key",
        lambda o: o["txn"].put(b"", b"v"),
        lmdb.BadValsizeError,
        ["0 bytes", "1 to 511 bytes"],
    ),
    (
        "txn.put-long-key",
        lambda o: o["txn"].put(b"k" * 512, b"v"),
        lmdb.BadValsizeError,
        ["512 bytes", "1 to 511 bytes"],
    ),
    (
        "txn.delete-empty-key",
        lambda o: o["txn"].delete(b""),
        lmdb.BadValsizeError,
        ["0 bytes", "1 to 511 bytes"],
    ),
    (
        "txn.delete-long-key",
        lambda o: o["txn"].delete(b"k" * 512),
        lmdb.BadValsizeError,
        ["512 bytes", "1 to 511 bytes"],
    ),
    (
        "cursor.put-empty-key",
        lambda o: o["cursor"].put(b"", b"v"),
        lmdb.BadValsizeError,
        ["0 bytes", "1 to 511 bytes"],
    ),
    (
        "cursor.put-long-key",
        lambda o: o["cursor"].put(b"k" * 512, b"v"),
        lmdb.BadValsizeError,
        ["512 bytes", "1 to 511 bytes"],
    ),
    # Wrong types of keys and values.
    (
        "txn.get-float",
        lambda o: o["txn"].get(1.5),
        TypeError,
        ["key", "bytes-like", "float"],
    ),
    (
        "txn.get-bool",
        lambda o: o["txn"].get(True),
        TypeError,
        ["key", "bytes-like", "bool"],
    ),
    (
        "txn.get-strided-memoryview",
        lambda o: o["txn"].get(strided()),
        TypeError,
        ["key", "contiguous"],
    ),
    (
        "txn.put-strided-memoryview",
        lambda o: o["txn"].put(b"k", strided()),
        TypeError,
        ["value", "contiguous"],
    ),
    (
        "cursor.set_key-float",
        lambda o: o["cursor"].set_key(1.5),
        TypeError,
        ["key", "bytes-like", "float"],
    ),
    (
        "cursor.set_range-none",
        lambda o: o["cursor"].set_range(None),
        TypeError,
        ["key", "bytes-like", "NoneType"],
    ),
    # append=True with a key that sorts before the last one.
    (
        "txn.put-append-out-of-order",
        lambda o: o["txn"].put(b"0", b"v", append=True),
        lmdb.KeyExistsError,
        ["append"],
    ),
    (
        "cursor.put-append-out-of-order",
        lambda o: o["cursor"].put(b"0", b"v", append=True),
        lmdb.KeyExistsError,
        ["append"],
    ),
    # A database of another environment.
    (
        "txn.get-db-of-other-env",
        lambda o: o["txn"].get(b"a", db=o["other_db"]),
        ValueError,
        ["b'elsewhere'", "belongs to"],
    ),
    (
        "txn.put-db-of-other-env",
        lambda o: o["txn"].put(b"a", b"v", db=o["other_db"]),
        ValueError,
        ["b'elsewhere'", "belongs to"],
    ),
    (
        "txn.delete-db-of-other-env",
        lambda o: o["txn"].delete(b"a", db=o["other_db"]),
        ValueError,
        ["b'elsewhere'", "belongs to"],
    ),
    (
        "txn.cursor-db-of-other-env",
        lambda o: o["txn"].cursor(db=o["other_db"]),
        ValueError,
        ["b'elsewhere'", "belongs to"],
    ),
    (
        "txn.drop-db-of-other-env",
        lambda o: o["txn"].drop(o["other_db"], delete=True),
        ValueError,
        ["b'elsewhere'", "belongs to"],
    ),
    (
        "database-name-assign",
        lambda o: setattr(o["other_db"], "name", b"x"),
        AttributeError,
        ["name"],
    ),
    # Other arguments.
    (
        "txn.delete-value-argument",
        lambda o: o["txn"].delete(b"a", b"1"),
        TypeError,
        ["delete", "positional"],
    ),
    (
        "txn.commit-argument",
        lambda o: o["txn"].commit(1),
        TypeError,
        ["commit", "no arguments"],
    ),
    (
        "txn.abort-argument",
        lambda o: o["txn"].abort(1),
        TypeError,
        ["abort", "no arguments"],
    ),
    (
        "cursor.iternext-nothing",
        lambda o: o["cursor"].iternext(keys=False, values=False),
        ValueError,
        ["keys", "values"],
    ),
    (
        "cursor.iterprev-nothing",
        lambda o: o["cursor"].iterprev(False, False),
        ValueError,
        ["keys", "values"],
    ),
    (
        "cursor.next-argument",
        lambda o: o["cursor"].next(1),
        TypeError,
        ["next", "no arguments"],
    ),
    (
        "cursor.key-argument",
        lambda o: o["cursor"].key(1),
        TypeError,
        ["key", "no arguments"],
    ),
    (
        "cursor.delete-argument",
        lambda o: o["cursor"].delete(1),
        TypeError,
        ["delete", "no arguments"],
    ),
    (
        "env.begin-read-parent",
        lambda o: o["env"].begin(write=False, parent=o["txn"]),
        ValueError,
        ["write=True", "parent"],
    ),
    (
        "env.reader_check-argument",
        lambda o: o["env"].reader_check(1),
        TypeError,
        ["reader_check", "no arguments"],
    ),
    (
        "env.open_db-missing",
        lambda o: o["env"].open_db(b"missing", create=False),
        lmdb.NotFoundError,
        ["b'missing'"],
    ),
]


@pytest.mark.parametrize(
    ("call", "error", "parts"),
    [pytest.param(*row[1:], id=row[0]) for row in RAW_CASES],
)
def test_bad_lmdb_argument(raw, call, error, parts):
    with pytest.raises(error) as info:
        call(raw)
    assert_message(info.value, parts)
    assert_raw_intact(raw)


# Calls made with no transaction open, which some of them need.
RAW_ENV_CASES: list[tuple[str, Callable[[lmdb.Environment], Any], Any, list[str]]] = [
    (
        "set_mapsize-bool",
        lambda env: env.set_mapsize(True),
        TypeError,
        ["size", "bool"],
    ),
    (
        "set_mapsize-2**100",
        lambda env: env.set_mapsize(2**100),
        (ValueError, OverflowError),
        [str(2**100)],
    ),
]


@pytest.mark.parametrize(
    ("call", "error", "parts"),
    [pytest.param(*row[1:], id=row[0]) for row in RAW_ENV_CASES],
)
def test_bad_environment_method_argument(env, call, error, parts):
    with env.begin(write=True) as txn:
        txn.putmulti(RAW_RECORDS)
    with pytest.raises(error) as info:
        call(env)
    assert_message(info.value, parts)
    with env.begin(write=True) as txn:
        txn.put(b"written-after", b"bad call")
    with env.begin() as txn:
        assert list(txn.cursor()) == [*RAW_RECORDS, (b"written-after", b"bad call")]


def test_copy_into_non_empty_directory(env, tmp_path):
    with env.begin(write=True) as txn:
        txn.putmulti(RAW_RECORDS)
    target = tmp_path / "target"
    target.mkdir()
    (target / "data.mdb").write_bytes(b"kept")
    with pytest.raises(FileExistsError) as info:
        env.copy(str(target))
    assert_message(info.value, [str(target)])
    assert (target / "data.mdb").read_bytes() == b"kept"
    with env.begin() as txn:
        assert list(txn.cursor()) == RAW_RECORDS


# (id, options, exception class, message parts) of Environment(). Each
# integer option must name itself when it rejects a value.
ENVIRONMENT_CASES: list[tuple[str, dict[str, Any], Any, list[str]]] = [
    ("map_size-none", {"map_size": None}, TypeError, ["map_size", "NoneType"]),
    ("map_size-bool", {"map_size": True}, TypeError, ["map_size", "bool"]),
    ("map_size-2**64", {"map_size": 2**64}, (ValueError, OverflowError), ["map_size"]),
    ("max_readers-negative", {"max_readers": -1}, ValueError, ["max_readers", "-1"]),
    ("max_readers-float", {"max_readers": 1.5}, TypeError, ["max_readers", "float"]),
    ("max_readers-bool", {"max_readers": True}, TypeError, ["max_readers", "bool"]),
    (
        "max_readers-2**31",
        {"max_readers": 2**31},
        (ValueError, OverflowError),
        ["max_readers"],
    ),
    ("max_dbs-none", {"max_dbs": None}, TypeError, ["max_dbs", "NoneType"]),
    ("max_dbs-float", {"max_dbs": 1.5}, TypeError, ["max_dbs", "float"]),
    ("max_dbs-bool", {"max_dbs": True}, TypeError, ["max_dbs", "bool"]),
    ("max_dbs-2**64", {"max_dbs": 2**64}, (ValueError, OverflowError), ["max_dbs"]),
    ("mode-none", {"mode": None}, TypeError, ["mode", "NoneType"]),
    ("mode-float", {"mode": 420.0}, TypeError, ["mode", "float"]),
    ("mode-bool", {"mode": True}, TypeError, ["mode", "bool"]),
    ("mode-2**64", {"mode": 2**64}, (ValueError, OverflowError), ["mode"]),
]


@pytest.mark.parametrize(
    ("options", "error", "parts"),
    [pytest.param(*row[1:], id=row[0]) for row in ENVIRONMENT_CASES],
)
def test_bad_environment_option(tmp_path, options, error, parts):
    path = str(tmp_path / "env")
    with lmdb.Environment(path) as env:
        with env.begin(write=True) as txn:
            txn.putmulti(RAW_RECORDS)
    data_hash = sha256_of(os.path.join(path, "data.mdb"))
    with pytest.raises(error) as info:
        lmdb.Environment(path, **options)
    assert_message(info.value, parts)
    assert sha256_of(os.path.join(path, "data.mdb")) == data_hash
    with lmdb.Environment(path) as env:
        with env.begin() as txn:
            assert list(txn.cursor()) == RAW_RECORDS


def test_environment_path_is_file(tmp_path):
    path = tmp_path / "file"
    path.write_bytes(b"kept")
    with pytest.raises(OSError) as info:
        lmdb.Environment(str(path))
    assert_message(info.value, [str(path), "subdir=False"])
    assert path.read_bytes() == b"kept"


# Huge values --------------------------------------------------------------

HUGE_VALUE_SIZE = 300 << 20

# Free memory that the huge-value tests ask for. They peaked at about
# 1.2 GiB of resident memory on Linux with Python 3.11 (the value, its
# serialized copy and the copy read back), and this leaves room above it.
HUGE_VALUE_MEMORY = 3 << 30


def available_memory() -> int:
    """Return MemAvailable of /proc/meminfo in bytes, or 0 if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as file:
            for line in file:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@pytest.fixture
def huge_value() -> bytes:
    if available_memory() < HUGE_VALUE_MEMORY:
        pytest.skip(f"the huge-value tests need {HUGE_VALUE_MEMORY >> 30} GiB free")
    return bytes(range(256)) * (HUGE_VALUE_SIZE // 256)


@pytest.mark.slow
def test_huge_value_round_trip(filled, huge_value):
    filled["huge"] = huge_value
    assert filled["huge"] == huge_value
    filled.remove("huge")
    assert_intact(filled)


@pytest.mark.slow
def test_huge_value_in_capped_store(open_store, huge_value):
    db = fill(open_store("capped", map_size=64 << 20))
    with pytest.raises(sharedb.MapFullError) as info:
        db.multiset([("new", 1), ("huge", huge_value)])
    assert isinstance(info.value, MemoryError)
    assert_message(info.value, [db.path, "map_size"])
    assert "new" not in db
    assert_intact(db)


@pytest.mark.slow
def test_huge_value_in_small_map(tmp_path, huge_value):
    path = str(tmp_path / "env")
    with lmdb.Environment(path, map_size=64 << 20) as env:
        with env.begin(write=True) as txn:
            txn.putmulti(RAW_RECORDS)
        txn = env.begin(write=True)
        with pytest.raises(lmdb.MapFullError) as info:
            txn.put(b"huge", huge_value)
        txn.abort()
        assert_message(info.value, ["MDB_MAP_FULL"])
        with env.begin(write=True) as txn:
            txn.put(b"written-after", b"bad call")
        with env.begin() as txn:
            assert list(txn.cursor()) == [*RAW_RECORDS, (b"written-after", b"bad call")]
