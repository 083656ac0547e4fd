"""Tests of how ShareDB turns keys and values into bytes.

Plain keys must be stored with the bytes ShareDB 2.0.2 wrote, so that stores
move between the two releases. Equal keys must reach one record, and every
value that set() accepts must read back equal.
"""

from __future__ import annotations

import datetime
import decimal
import fractions
import json
import math
import os
import pickle
import zlib

import msgpack
import pytest

from conftest import run_python

from sharedb import KeyTooLongError, ShareDB, _serial, lmdb

MAX_KEY_SIZE = 511


def pack(obj: object, serial: str) -> bytes:
    """Return the bytes ShareDB 2.0.2 writes for obj as a key."""
    if serial == "msgpack":
        return msgpack.packb(obj, use_bin_type=True)
    return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def pack_value(obj: object, serial: str, compress: bool) -> bytes:
    """Return the bytes ShareDB 2.0.2 writes for obj as a value."""
    packed = pack(obj, serial)
    return zlib.compress(packed) if compress else packed


def raw_records(db: ShareDB) -> dict[bytes, bytes]:
    """Return every record of the store as LMDB stores it."""
    assert isinstance(db._env, lmdb.Environment)
    with db._env.begin() as txn:
        return dict(txn.cursor())


def as_read_back(obj: object, serial: str) -> object:
    """Return obj as it reads back: msgpack turns tuples into lists.

    Dict keys stay as they are, because a list cannot be a dict key and the
    msgpack decoder reads arrays inside map keys as tuples.
    """
    if serial == "pickle":
        return obj
    if isinstance(obj, (tuple, list)):
        return [as_read_back(item, serial) for item in obj]
    if isinstance(obj, dict):
        return {key: as_read_back(value, serial) for key, value in obj.items()}
    return obj


def build_str(*parts: str) -> str:
    """Return the concatenation of parts as a new str object, never interned."""
    return "".join(parts)


# Keys of the plain types: int, float, str, bytes, bool and tuples of them.
PLAIN_KEYS = [
    0,
    1,
    -1,
    127,
    128,
    255,
    256,
    -33,
    65535,
    2**31,
    2**32,
    2**53 + 1,
    2**63 - 1,
    2**64 - 1,
    -(2**31),
    -(2**63),
    0.5,
    -1.75,
    1e300,
    -0.0,
    math.pi,
    math.inf,
    -math.inf,
    "",
    "a",
    "plain ascii key",
    "ключ",
    "鍵",
    "🔑 emoji",
    "x" * 300,
    b"",
    b"\x00",
    b"\xff\xfe",
    bytes(range(256)),
    True,
    False,
    (),
    (1, "a"),
    (-7, 2.5, b"raw"),
    ("clé", True),
    ((1, 2), ("nested", b"\x00")),
    (2**63 - 1, -(2**63)),
    (False, 0, 0.0),
]
PICKLE_ONLY_KEYS = [2**64, 2**100, -(2**100), -(2**63) - 1]


def plain_key_cases() -> list[tuple[str, object]]:
    cases = [(serial, key) for serial in ("pickle", "msgpack") for key in PLAIN_KEYS]
    cases += [("pickle", key) for key in PICKLE_ONLY_KEYS]
    return cases


PLAIN_KEY_CASES = plain_key_cases()
PLAIN_KEY_IDS = [f"{serial}-{key!r:.40}" for serial, key in PLAIN_KEY_CASES]


# Byte compatibility with 2.0.2 ------------------------------------------


@pytest.mark.parametrize(("serial", "key"), PLAIN_KEY_CASES, ids=PLAIN_KEY_IDS)
@pytest.mark.parametrize("compress", [False, True], ids=["plain", "zlib"])
def test_plain_key_bytes_match_202(open_store, serial, key, compress):
    db = open_store(serial=serial, compress=compress)
    db[key] = "value"
    assert list(raw_records(db)) == [pack(key, serial)]


@pytest.mark.parametrize(("serial", "key"), PLAIN_KEY_CASES, ids=PLAIN_KEY_IDS)
def test_plain_key_found_by_raw_bytes(open_store, serial, key):
    """A record put with 2.0.2's bytes is found by the key object."""
    db = open_store(serial=serial)
    with db._env.begin(write=True) as txn:
        txn.put(pack(key, serial), pack_value("raw", serial, False))
    assert db[key] == "raw"


VALUE_SAMPLES = [
    "text",
    "значение",
    b"\x00\x01",
    12345,
    -(2**63),
    2.5,
    True,
    [1, "two", 3.0],
    {"a": [1, 2], "b": {"c": b"d"}},
    "ShareDB " * 500,
]


@pytest.mark.parametrize(
    "value", VALUE_SAMPLES, ids=[f"{v!r:.30}" for v in VALUE_SAMPLES]
)
def test_value_bytes_match_202(db, value):
    db["k"] = value
    records = raw_records(db)
    assert records[pack("k", db.serial)] == pack_value(value, db.serial, db.compress)


def test_compressed_value_default_level(open_store):
    db = open_store(compress=True)
    value = "compressible " * 1000
    db["k"] = value
    packed = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stored = raw_records(db)[pack("k", "pickle")]
    assert stored == zlib.compress(packed, zlib.Z_DEFAULT_COMPRESSION)
    assert zlib.decompress(stored) == packed


def test_keys_never_compressed(open_store):
    db = open_store(compress=True)
    key = "compressible key " * 10
    db[key] = 1
    assert list(raw_records(db)) == [pack(key, "pickle")]


def test_value_read_from_raw_202_bytes(db):
    value = {"list": [1, 2, 3], "text": "ok"}
    with db._env.begin(write=True) as txn:
        txn.put(pack("k", db.serial), pack_value(value, db.serial, db.compress))
    assert db["k"] == value


def test_iteration_in_packed_key_order(db):
    keys = [10, -5, 300, "b", "a", "ab", b"z", b"", 2.5, True, (1, "x")]
    db.multiset((key, str(key)) for key in keys)
    read_order = [pack(key, db.serial) for key in db.keys()]
    assert read_order == sorted(pack(key, db.serial) for key in keys)


def test_reversed_in_packed_key_order(db):
    keys = [10, -5, 300, "b", "a", "ab", b"z"]
    db.multiset((key, 1) for key in keys)
    read_order = [pack(key, db.serial) for key in reversed(db)]
    assert read_order == sorted((pack(key, db.serial) for key in keys), reverse=True)


def test_popitem_first_packed_key(db):
    keys = [300, "b", "a", b"z", -5]
    db.multiset((key, 1) for key in keys)
    key, _ = db.popitem()
    assert pack(key, db.serial) == min(pack(key, db.serial) for key in keys)


# 1, 1.0 and True -----------------------------------------------------------


def test_one_float_true_distinct_keys(db):
    db[1] = "int"
    db[1.0] = "float"
    db[True] = "bool"
    assert len(db) == 3
    assert db[1] == "int"
    assert db[1.0] == "float"
    assert db[True] == "bool"


def test_int_key_not_found_as_float(db):
    db[1] = "int"
    assert db.get(1.0) is None
    assert db.get(True) is None


def test_zero_false_distinct_keys(db):
    db[0] = "int"
    db[0.0] = "float"
    db[False] = "bool"
    assert len(db) == 3
    assert db[False] == "bool"


def test_bool_key_reads_back_bool(db):
    db[True] = 1
    (key,) = db.keys()
    assert key is True


# Canonical keys ------------------------------------------------------------


def test_equal_str_keys_one_record(db):
    first = build_str("same ", "string")
    second = build_str("same ", "string")
    assert first is not second
    db[first] = 1
    db[second] = 2
    assert len(db) == 1
    assert db[first] == 2


def test_tuple_same_or_distinct_strs(db):
    text = build_str("wiederholt-", "ключ")
    other = build_str("wiederholt-", "ключ")
    assert text is not other
    db[(text, text)] = "same object"
    assert db.get((text, other)) == "same object"
    db[(text, other)] = "distinct objects"
    assert len(db) == 1


def test_tuple_repeated_str_keeps_202_bytes(open_store):
    """A tuple that repeats one str object keeps the bytes 2.0.2 wrote."""
    db = open_store(serial="pickle")
    text = build_str("wiederholt-", "ключ")
    other = build_str("wiederholt-", "ключ")
    db[(text, other)] = 1
    assert list(raw_records(db)) == [pack((text, text), "pickle")]


def test_equal_tuples_built_separately(db):
    first = tuple([build_str("part-", "a"), 1, (build_str("in", "ner"), 2.5)])
    second = (build_str("part-", "a"),) + (1,) + ((build_str("in", "ner"), 2.5),)
    assert first == second
    db[first] = "first"
    db[second] = "second"
    assert len(db) == 1
    assert db[first] == "second"


def test_tuple_key_built_in_child(db):
    key = (build_str("child-", "key"), build_str("child-", "key"), 7)
    result = run_python(
        """
        import sys
        from sharedb import ShareDB

        part = "".join(["child-", "key"])
        with ShareDB(sys.argv[1]) as db:
            db[(part, "child-key", 7)] = "from child"
        """,
        db.path,
    )
    assert result.returncode == 0, result.stderr
    assert db[key] == "from child"
    assert len(db) == 1


@pytest.mark.parametrize("serial", ["pickle", "msgpack"])
def test_dict_keys_any_insertion_order(open_store, serial):
    db = open_store(serial=serial)
    db[{"a": 1, "b": 2, "c": [3]}] = "first"
    db[{"c": [3], "b": 2, "a": 1}] = "second"
    assert len(db) == 1
    assert db.get({"b": 2, "c": [3], "a": 1}) == "second"


def test_msgpack_int_dict_keys_order(open_store):
    db = open_store(serial="msgpack")
    db[{1: 2, 3: 4}] = "first"
    assert db.get({3: 4, 1: 2}) == "first"


def test_frozenset_key_same_process(open_store):
    db = open_store(serial="pickle")
    words = [f"word-{i}" for i in range(12)]
    db[frozenset(words)] = "set"
    assert db[frozenset(reversed(words))] == "set"


def test_frozenset_key_other_hash_seed(open_store, monkeypatch):
    """A frozenset key written under one hash seed is found under another."""
    db = open_store(serial="pickle")
    code = """
        import json, sys
        from sharedb import ShareDB

        words = [f"word-{i}" for i in range(12)]
        with ShareDB(sys.argv[1]) as db:
            if sys.argv[2] == "write":
                db[frozenset(words)] = "set"
                db[("tag", frozenset(words))] = "tuple"
            found = [db.get(frozenset(words)), db.get(("tag", frozenset(words)))]
        print(json.dumps({"order": list(frozenset(words)), "found": found}))
    """
    monkeypatch.setenv("PYTHONHASHSEED", "1")
    writer = run_python(code, db.path, "write")
    monkeypatch.setenv("PYTHONHASHSEED", "2")
    reader = run_python(code, db.path, "read")
    assert writer.returncode == 0, writer.stderr
    assert reader.returncode == 0, reader.stderr

    written = json.loads(writer.stdout)
    read = json.loads(reader.stdout)
    # The seeds must iterate the set in different orders for the test to mean anything.
    assert written["order"] != read["order"]
    assert read["found"] == ["set", "tuple"]
    words = [f"word-{i}" for i in range(12)]
    assert db[frozenset(words)] == "set"
    assert len(db) == 2


@pytest.mark.parametrize("key", [frozenset({4, 5}), {4, 5}, frozenset({"a"})], ids=repr)
def test_set_key_202_record_found(open_store, key):
    """A set key whose 2.0.2 bytes do not depend on the hash seed is found."""
    db = open_store(serial="pickle")
    with db._env.begin(write=True) as txn:
        txn.put(pack(key, "pickle"), pack_value("from 2.0.2", "pickle", False))
    assert db.get(key) == "from 2.0.2"


def test_frozenset_key_reads_back(open_store):
    db = open_store(serial="pickle")
    key = frozenset({"b", "a", 3})
    db[key] = 1
    assert list(db.keys()) == [key]


# Keys that 2.0.2 pickled from separate equal strings --------------------------

# 2.0.2 pickled a key as given. Pickle writes an object that appears twice
# once and then as a reference to it (its memo). So a tuple of two equal
# strings that are separate objects, such as strings read from a file or
# made by split(), got different bytes from a tuple that repeats one string
# object. This release writes the second form and finds both.
VALUE_202 = "written by 2.0.2"


def separate_equal_words() -> tuple[str, str]:
    """Return ("user", "user") made of two separate str objects."""
    words = tuple("user user".split())
    assert words[0] is not words[1]
    return words


@pytest.fixture
def store_202(open_store) -> ShareDB:
    """A pickle store with a record under the 2.0.2 bytes of the key
    ("user", "user") made of separate strings, and one record under "other"."""
    db = open_store(serial="pickle")
    with db._env.begin(write=True) as txn:
        txn.put(
            pack(separate_equal_words(), "pickle"),
            pack_value(VALUE_202, "pickle", False),
        )
        txn.put(pack("other", "pickle"), pack_value(1, "pickle", False))
    return db


def test_tuple_key_202_bytes_not_canonical():
    word = "user"
    canonical = pack((word, word), "pickle")
    assert pack(separate_equal_words(), "pickle") != canonical


LOOKUPS_202 = {
    "get": lambda db, key: db.get(key),
    "getitem": lambda db, key: db[key],
    "multiget": lambda db, key: list(db.multiget([key]))[0],
    "setdefault": lambda db, key: db.setdefault(key, "new"),
    "pop": lambda db, key: db.pop(key),
}


@pytest.mark.parametrize("call", list(LOOKUPS_202))
def test_tuple_key_202_value_found(store_202, call):
    key = separate_equal_words()
    assert LOOKUPS_202[call](store_202, key) == VALUE_202


@pytest.mark.parametrize(
    "key",
    [("user", "user"), separate_equal_words()],
    ids=["one-str-object", "separate-str-objects"],
)
def test_tuple_key_202_contained(store_202, key):
    assert key in store_202


def test_tuple_key_202_has_multikey(store_202):
    key = separate_equal_words()
    assert list(store_202.has_multikey([key, ("absent", "absent")])) == [True, False]


def test_tuple_key_202_setdefault_keeps_record(store_202):
    store_202.setdefault(separate_equal_words(), "new")
    assert len(store_202) == 2


REMOVALS_202 = {
    "pop": lambda db, key: db.pop(key),
    "delitem": lambda db, key: db.__delitem__(key),
    "remove": lambda db, key: db.remove(key),
    "multiremove": lambda db, key: db.multiremove([key]),
}


@pytest.mark.parametrize("call", list(REMOVALS_202))
def test_tuple_key_202_removed(store_202, call):
    REMOVALS_202[call](store_202, separate_equal_words())
    assert list(raw_records(store_202)) == [pack("other", "pickle")]


WRITES_202 = {
    "set": lambda db, key: db.set(key, "new"),
    "setitem": lambda db, key: db.__setitem__(key, "new"),
    "multiset": lambda db, key: db.multiset([(key, "new")]),
    "update": lambda db, key: db.update({key: "new"}),
}


@pytest.mark.parametrize("call", list(WRITES_202))
def test_tuple_key_202_write_replaces_record(store_202, call):
    WRITES_202[call](store_202, separate_equal_words())
    assert len(store_202) == 2
    assert store_202[separate_equal_words()] == "new"


@pytest.mark.parametrize("call", list(WRITES_202))
def test_tuple_key_202_write_canonical_bytes(store_202, call):
    WRITES_202[call](store_202, separate_equal_words())
    word = "user"
    expected = {pack((word, word), "pickle"), pack("other", "pickle")}
    assert set(raw_records(store_202)) == expected


DAY = datetime.date(2024, 5, 1)
AMOUNT = decimal.Decimal("1.5")
THIRD = fractions.Fraction(1, 3)

# (key repeating one object, equal key built from separate objects)
REPEATED_PART_KEYS = {
    "date": ((DAY, DAY), (datetime.date(2024, 5, 1), datetime.date(2024, 5, 1))),
    "date-in-longer-tuple": (
        ("start-end", DAY, DAY),
        ("start-end", datetime.date(2024, 5, 1), datetime.date(2024, 5, 1)),
    ),
    "decimal": ((AMOUNT, AMOUNT), (decimal.Decimal("1.5"), decimal.Decimal("1.5"))),
    "fraction": (
        (THIRD, THIRD),
        (fractions.Fraction(1, 3), fractions.Fraction(1, 3)),
    ),
}


@pytest.mark.parametrize("case", list(REPEATED_PART_KEYS))
def test_repeated_equal_parts_key_found(open_store, case):
    repeated, separate = REPEATED_PART_KEYS[case]
    assert separate[-1] is not separate[-2]
    db = open_store(serial="pickle")
    db[repeated] = "value"
    assert separate in db


@pytest.mark.parametrize("case", list(REPEATED_PART_KEYS))
def test_repeated_equal_parts_one_record(open_store, case):
    repeated, separate = REPEATED_PART_KEYS[case]
    db = open_store(serial="pickle")
    db[repeated] = "first"
    db[separate] = "second"
    assert len(db) == 1
    assert db[repeated] == "second"


# Round trips -----------------------------------------------------------------


class Point:
    """A user class that pickle stores by reference to this module."""

    def __init__(self, x: int, y: int) -> None:
        self.x = x
        self.y = y

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)

    def __repr__(self) -> str:
        return f"Point({self.x}, {self.y})"


COMMON_VALUES = {
    "int": 42,
    "negative-int": -(2**63),
    "max-uint64": 2**64 - 1,
    "float": 1.5,
    "inf": math.inf,
    "true": True,
    "false": False,
    "zero": 0,
    "empty-str": "",
    "unicode": "ключ 鍵 clé 🔑 e\u0301",
    "bytes": bytes(range(256)),
    "empty-bytes": b"",
    "list": [1, "two", 3.0, b"four", None, True],
    "nested": {"a": [1, {"b": (2, 3)}], "c": {"d": None}},
    "tuple": ("t", 1, (2, 3), [4, (5,)]),
    "empty-list": [],
    "empty-dict": {},
    "int-key-dict": {1: "one", 2: "two", -3: [3]},
    "tuple-key-dict": {(1, 2): "pair", ("a", (3, 4)): (5, 6)},
    "mixed-key-dict": {1: "int", "1": "str", b"1": "bytes", 1.5: "float"},
}
PICKLE_VALUES = {
    "set": {3, 1, 2},
    "frozenset": frozenset({"a", "b"}),
    "big-int": 2**200,
    "complex": 1 + 2j,
    "datetime": datetime.datetime(2020, 1, 2, 3, 4, 5),
    "decimal": decimal.Decimal("1.10"),
    "user-class": Point(1, 2),
}


@pytest.mark.parametrize("name", list(COMMON_VALUES))
def test_value_round_trip(db, name):
    value = COMMON_VALUES[name]
    db["k"] = value
    assert repr(db["k"]) == repr(as_read_back(value, db.serial))


@pytest.mark.parametrize("name", list(COMMON_VALUES))
def test_value_round_trip_multiset(db, name):
    value = COMMON_VALUES[name]
    db.multiset([("k", value)])
    assert repr(db["k"]) == repr(as_read_back(value, db.serial))


@pytest.mark.parametrize("name", list(PICKLE_VALUES))
@pytest.mark.parametrize("compress", [False, True], ids=["plain", "zlib"])
def test_pickle_value_round_trip(open_store, name, compress):
    db = open_store(serial="pickle", compress=compress)
    value = PICKLE_VALUES[name]
    db["k"] = value
    assert db["k"] == value
    assert type(db["k"]) is type(value)


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "zlib"])
def test_msgpack_tuple_reads_as_list(open_store, compress):
    db = open_store(serial="msgpack", compress=compress)
    db["k"] = (1, (2, 3))
    assert db["k"] == [1, [2, 3]]


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "zlib"])
def test_msgpack_tuple_key_reads_as_list(open_store, compress):
    db = open_store(serial="msgpack", compress=compress)
    db[("a", 1)] = "v"
    assert list(db.keys()) == [["a", 1]]
    assert db[["a", 1]] == "v"


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "zlib"])
def test_msgpack_int_key_dict_round_trip(open_store, compress):
    db = open_store(serial="msgpack", compress=compress)
    db["k"] = {1: "one", 2: {3: "three"}}
    assert db["k"] == {1: "one", 2: {3: "three"}}
    assert list(db.items()) == [("k", {1: "one", 2: {3: "three"}})]


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "zlib"])
def test_msgpack_tuple_key_dict_round_trip(open_store, compress):
    db = open_store(serial="msgpack", compress=compress)
    db["k"] = {(1, 2): (3, 4), ("a", (5,)): "x"}
    assert db["k"] == {(1, 2): [3, 4], ("a", (5,)): "x"}


def test_pickle_tuple_and_list_distinct(open_store):
    db = open_store(serial="pickle")
    db[(1, 2)] = "tuple"
    db[[1, 2]] = "list"
    assert len(db) == 2
    assert db[(1, 2)] == "tuple"


def test_msgpack_tuple_and_list_same(open_store):
    db = open_store(serial="msgpack")
    db[(1, 2)] = "tuple"
    db[[1, 2]] = "list"
    assert len(db) == 1
    assert db[(1, 2)] == "list"


def test_large_bytes_round_trip(db):
    value = os.urandom(3 << 20)
    db["large"] = value
    assert db["large"] == value


def test_large_unicode_round_trip(db):
    value = "ключ鍵🔑é" * 100_000
    db["large"] = value
    assert db["large"] == value


def test_large_list_round_trip(db):
    value = list(range(200_000))
    db["large"] = value
    assert db["large"] == value


def test_many_records_round_trip(db):
    records = {f"key-{i}": [i, str(i), i * 0.5] for i in range(2000)}
    db.update(records)
    assert dict(db.items()) == records


def test_unicode_and_bytes_keys_round_trip(db):
    keys = ["ключ", "鍵", "🔑", "e\u0301", b"\x00\xff", b"", ""]
    db.multiset((key, i) for i, key in enumerate(keys))
    assert sorted(db.keys(), key=repr) == sorted(keys, key=repr)


# Values that cannot be read back --------------------------------------------


def _raise_on_load() -> object:
    raise ValueError("cannot rebuild this object")


class FailsOnLoad:
    """Pickles fine, but loading the pickle raises."""

    def __reduce__(self):
        return (_raise_on_load, ())


class FailsOnSetState:
    """Pickles fine, but __setstate__ raises when the pickle loads."""

    def __init__(self) -> None:
        self.payload = 1

    def __setstate__(self, state: dict) -> None:
        raise RuntimeError("state rejected")


UNLOADABLE_PICKLE_VALUES = [FailsOnLoad(), FailsOnSetState()]
UNLOADABLE_IDS = ["reduce-raises", "setstate-raises"]


@pytest.mark.parametrize("value", UNLOADABLE_PICKLE_VALUES, ids=UNLOADABLE_IDS)
@pytest.mark.parametrize("compress", [False, True], ids=["plain", "zlib"])
def test_pickle_unloadable_value_rejected(open_store, value, compress):
    db = open_store(serial="pickle", compress=compress)
    with pytest.raises(TypeError) as info:
        db["k"] = value
    assert info.value.args[0].startswith(
        f"Given value={value} of {type(value)}, raised: "
    )
    assert len(db) == 0


@pytest.mark.parametrize("value", UNLOADABLE_PICKLE_VALUES, ids=UNLOADABLE_IDS)
def test_pickle_unloadable_keeps_old_value(open_store, value):
    db = open_store(serial="pickle")
    db["k"] = "old"
    with pytest.raises(TypeError):
        db.set("k", value)
    assert db["k"] == "old"


@pytest.mark.parametrize("value", UNLOADABLE_PICKLE_VALUES, ids=UNLOADABLE_IDS)
def test_pickle_unloadable_multiset_stores_nothing(open_store, value):
    db = open_store(serial="pickle")
    with pytest.raises(TypeError):
        db.multiset([("a", 1), ("k", value), ("b", 2)])
    assert len(db) == 0


@pytest.mark.parametrize("value", UNLOADABLE_PICKLE_VALUES, ids=UNLOADABLE_IDS)
def test_pickle_unloadable_setdefault_rejected(open_store, value):
    db = open_store(serial="pickle")
    with pytest.raises(TypeError):
        db.setdefault("k", value)
    assert "k" not in db


def nested_lists(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


MSGPACK_REJECTED_VALUES = {
    "set": {1, 2},
    "object": object(),
    "datetime": datetime.datetime(2020, 1, 1),
    "complex": 1j,
    "int-past-uint64": 2**64,
    "int-below-int64": -(2**63) - 1,
    "lone-surrogate": "\ud800",
    "too-deep": nested_lists(1100),
    "set-inside-list": [1, {2}],
}


@pytest.mark.parametrize("name", list(MSGPACK_REJECTED_VALUES))
@pytest.mark.parametrize("compress", [False, True], ids=["plain", "zlib"])
def test_msgpack_rejected_value_stores_nothing(open_store, name, compress):
    db = open_store(serial="msgpack", compress=compress)
    value = MSGPACK_REJECTED_VALUES[name]
    with pytest.raises(TypeError) as info:
        db["k"] = value
    assert info.value.args[0].startswith("Given value=")
    assert len(db) == 0


@pytest.mark.parametrize("name", list(MSGPACK_REJECTED_VALUES))
def test_msgpack_rejected_in_multiset(open_store, name):
    db = open_store(serial="msgpack")
    with pytest.raises(TypeError):
        db.multiset([("a", 1), ("k", MSGPACK_REJECTED_VALUES[name])])
    assert len(db) == 0


def test_msgpack_deepest_accepted_reads_back(open_store):
    """The deepest nesting msgpack.packb accepts also reads back."""
    db = open_store(serial="msgpack")
    value = nested_lists(1024)
    db["k"] = value
    assert msgpack.packb(db["k"]) == msgpack.packb(value)


def test_msgpack_ext_and_timestamp_round_trip(open_store):
    db = open_store(serial="msgpack")
    values = [msgpack.ExtType(5, b"payload"), msgpack.Timestamp(-1, 5)]
    db["k"] = values
    assert db["k"] == values


# Keys longer than LMDB's maximum -------------------------------------------


def str_key_of_packed_size(size: int, serial: str) -> str:
    """Return a str key that packs to exactly size bytes."""
    for length in range(size):
        key = "k" * length
        if len(pack(key, serial)) == size:
            return key
    raise AssertionError(f"no str key packs to {size} bytes with {serial}")


def test_key_at_max_size_stored(db):
    key = str_key_of_packed_size(MAX_KEY_SIZE, db.serial)
    db[key] = "longest"
    assert db[key] == "longest"


def test_key_over_max_size_raises(db):
    key = str_key_of_packed_size(MAX_KEY_SIZE + 1, db.serial)
    with pytest.raises(KeyTooLongError) as info:
        db[key] = "too long"
    message = str(info.value)
    assert str(MAX_KEY_SIZE) in message
    assert str(MAX_KEY_SIZE + 1) in message
    assert len(db) == 0


def test_key_too_long_is_typeerror(db):
    key = "k" * 2000
    with pytest.raises(TypeError) as info:
        db.set(key, 1)
    assert isinstance(info.value, KeyTooLongError)
    assert str(len(pack(key, db.serial))) in str(info.value)


@pytest.mark.parametrize(
    "call",
    [
        lambda db, key: db.get(key),
        lambda db, key: db[key],
        lambda db, key: key in db,
        lambda db, key: db.pop(key, None),
        lambda db, key: db.setdefault(key, 1),
        lambda db, key: db.remove(key),
    ],
    ids=["get", "getitem", "contains", "pop", "setdefault", "remove"],
)
def test_key_too_long_other_methods(db, call):
    key = "k" * 2000
    with pytest.raises(KeyTooLongError) as info:
        call(db, key)
    assert str(MAX_KEY_SIZE) in str(info.value)


def test_key_too_long_multiset_nothing(db):
    pairs = [("a", 1), ("k" * 2000, 2), ("b", 3)]
    with pytest.raises(TypeError):
        db.multiset(pairs)
    assert len(db) == 0


def test_long_value_not_limited(db):
    value = "v" * 100_000
    db["k"] = value
    assert db["k"] == value


# Keys with a dict, whose 2.0.2 bytes keep the dict's insertion order.
DICT_KEYS_202 = [
    {"b": 1, "a": 2},
    ("k", {"z": [1], "y": {"x": 2}}),
]


@pytest.mark.parametrize("key", DICT_KEYS_202, ids=["dict", "tuple-with-dict"])
def test_dict_key_202_found_and_replaced(open_store, key):
    older = pickle.dumps(key, pickle.HIGHEST_PROTOCOL)
    db = open_store(serial="pickle")
    canonical, looked_up_too = _serial.pickle_key(key)
    assert canonical != older
    assert looked_up_too == older
    with db._env.begin(write=True) as txn:
        txn.put(older, pack_value("old", "pickle", False))
    assert db[key] == "old"
    assert key in db
    assert list(db.multiget([key])) == ["old"]
    db[key] = "new"
    assert len(db) == 1
    assert db[key] == "new"
    with db._env.begin() as txn:
        assert txn.get(older) is None
