"""Tests of the msgpack codec of sharedb._lmdb against msgpack-python.

The encoder must write the bytes msgpack.packb(obj, use_bin_type=True)
writes, and the decoder must read what msgpack.unpackb reads, except that
arrays inside map keys decode as tuples.  Malformed input must raise a
clean exception, never crash or read past the data.
"""

import array
import collections
import datetime
import enum
import random
import reprlib
import struct

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from msgpack import ExtType, Timestamp

from sharedb._lmdb import msgpack_pack, msgpack_unpack

# Deepest nesting that msgpack.packb 1.2.4 packs.  One more level raises
# ValueError("recursion limit exceeded.").
NEST_LIMIT = 1024

DECODE_ERRORS = (ValueError, UnicodeDecodeError, TypeError)


def packb(obj, **options):
    return msgpack.packb(obj, use_bin_type=True, **options)


def unpackb(data):
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def same(a, b):
    """Return whether a and b are equal with the same types throughout.

    Floats compare by their bits, so NaN matches NaN and -0.0 does not
    match 0.0, and dicts must also agree on order.
    """
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack(">d", a) == struct.pack(">d", b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict):
        return len(a) == len(b) and all(
            same(key_a, key_b) and same(value_a, value_b)
            for (key_a, value_a), (key_b, value_b)
            in zip(a.items(), b.items())
        )
    return a == b


def nest(depth, leaf=None):
    """Return leaf inside depth single-item lists."""
    for _ in range(depth):
        leaf = [leaf]
    return leaf


class Int(int):
    pass


class Float(float):
    pass


class Str(str):
    pass


class Bytes(bytes):
    pass


class ByteArray(bytearray):
    pass


class List(list):
    pass


class Tuple(tuple):
    pass


class Dict(dict):
    pass


class Color(enum.IntEnum):
    RED = 1
    BIG = 2**40


class HashableList(list):
    def __hash__(self):
        return id(self)


class HashableDict(dict):
    def __hash__(self):
        return id(self)


class TimestampSubclass(Timestamp):
    pass


class ExtTypeSubclass(ExtType):
    pass


Point = collections.namedtuple("Point", "x y")


def moved_ordered_dict():
    ordered = collections.OrderedDict(a=1, b=2, c=3)
    ordered.move_to_end("a")
    return ordered


# Boundaries of every msgpack int encoding, with the values on both sides.
INTS = [
    0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32,
    2**63 - 1, 2**63, 2**64 - 1,
    -1, -32, -33, -128, -129, -32768, -32769, -2**31, -2**31 - 1,
    -2**63,
]

FLOATS = [
    0.0, -0.0, 1.5, -2.25, 1e308, 5e-324, float("inf"), float("-inf"),
    float("nan"), 3.141592653589793,
]

# Lengths on both sides of the str, bin, array and map header widths.
LENGTHS = [0, 1, 15, 16, 31, 32, 255, 256, 65535, 65536]

EDGE_VALUES = (
    [None, True, False]
    + INTS
    + FLOATS
    + ["x" * n for n in LENGTHS]
    + ["\u00e9" * 20, "\u20ac" * 100, "\U0001f600" * 70000, "a\x00b"]
    + [b"\xff" * n for n in LENGTHS]
    + [bytearray(b"y" * n) for n in (0, 31, 256, 65536)]
    + [
        memoryview(b"abc"),
        memoryview(b"q" * 300),
        memoryview(array.array("i", [1, 2, 3])),
        memoryview(b"abcd").cast("B", shape=[2, 2]),
        memoryview(bytearray(70000)),
    ]
    + [
        Int(5), Int(-2**63), Float(2.5), Str("sub"), Bytes(b"sub"),
        ByteArray(b"sub"), List([1, 2]), Tuple((3, 4)), Dict(a=1),
        Color.RED, Color.BIG, Point(1, 2), HashableList([7]),
        moved_ordered_dict(), collections.defaultdict(int, z=1),
        collections.Counter("hello"),
    ]
    + [list(range(n)) for n in (0, 15, 16, 65535, 65536)]
    + [tuple(range(n)) for n in (0, 16)]
    + [{i: i for i in range(n)} for n in (0, 15, 16, 65535, 65536)]
    + [
        [[], {}, [[1, [2, [3]]]], {"a": {"b": {"c": [None]}}}],
        {(1, 2): [3], (1, (2, "x")): {}, None: 0, 1.5: b"f", b"k": "v"},
        {"list": [1, 2.0, "three", b"four", None, True]},
    ]
    + [
        ExtType(0, b""), ExtType(127, b"x"), ExtType(5, b"ab"),
        ExtType(5, b"abcd"), ExtType(5, b"12345678"),
        ExtType(5, b"0123456789abcdef"), ExtType(5, b"abc"),
        ExtType(5, b"z" * 17), ExtType(5, b"z" * 256),
        ExtType(5, b"z" * 65536),
        Timestamp(0, 0), Timestamp(2**32 - 1, 0), Timestamp(1, 1),
        Timestamp(2**34 - 1, 999999999), Timestamp(2**34, 0),
        Timestamp(-1, 0), Timestamp(-2**63, 999999999),
        [ExtType(1, b"in list"), {"ts": Timestamp(5, 6)}],
        {ExtType(2, b"key"): Timestamp(7, 8)}, ExtTypeSubclass(9, b"sub"),
    ]
)

# The deepest values msgpack.packb packs.  msgpack.unpackb rejects the
# last two, which hold one more container.
DEEP_VALUES = [nest(NEST_LIMIT), nest(NEST_LIMIT, []), nest(NEST_LIMIT, {})]


def value_id(value):
    text = reprlib.repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__}:{text}"


# Strategies for the property tests.

def leaf_values(floats=st.floats()):
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-2**63, max_value=2**64 - 1),
        floats,
        st.text(),
        st.binary(),
    )


def ext_values():
    return st.one_of(
        st.builds(ExtType, st.integers(0, 127), st.binary(max_size=40)),
        st.builds(
            Timestamp,
            st.integers(min_value=-2**63, max_value=2**63 - 1),
            st.integers(min_value=0, max_value=999999999),
        ),
    )


def scalar_keys(floats=st.floats(allow_nan=False)):
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-2**63, max_value=2**64 - 1),
        floats,
        st.text(),
        st.binary(),
    )


def tuple_keys():
    return st.recursive(
        scalar_keys(),
        lambda children: st.lists(children, max_size=4).map(tuple),
        max_leaves=8,
    )


def values(keys, leaves):
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=6),
            st.lists(children, max_size=6).map(tuple),
            st.dictionaries(keys, children, max_size=6),
        ),
        max_leaves=30,
    )


ANY_VALUES = values(tuple_keys(), st.one_of(leaf_values(), ext_values()))

# Values whose every map key is a scalar, which msgpack.unpackb decodes
# exactly as ours does.
PLAIN_VALUES = values(scalar_keys(), st.one_of(leaf_values(), ext_values()))

# Values that msgpack.packb(use_single_float=True) can pack, because it
# raises OverflowError for floats outside the float32 range.
SINGLE_FLOAT_VALUES = values(
    scalar_keys(floats=st.floats(width=32, allow_nan=False)),
    leaf_values(floats=st.floats(width=32)),
)

PROPERTY_SETTINGS = settings(max_examples=400, deadline=None)


def decoded_form(value, in_key=False):
    """Return what msgpack_unpack(msgpack_pack(value)) must return."""
    if isinstance(value, ExtType):
        return ExtType(value.code, value.data)
    if isinstance(value, Timestamp):
        return value
    if isinstance(value, dict):
        return {
            decoded_form(key, True): decoded_form(item)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        items = [decoded_form(item, in_key) for item in value]
        return tuple(items) if in_key else items
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise AssertionError(f"unexpected test value {value!r}")


# Encoding: byte identity with msgpack.packb.

@pytest.mark.parametrize("value", EDGE_VALUES + DEEP_VALUES, ids=value_id)
def test_codec_pack_matches_msgpack(value):
    assert msgpack_pack(value) == packb(value)


@PROPERTY_SETTINGS
@given(ANY_VALUES)
def test_codec_pack_matches_msgpack_property(value):
    assert msgpack_pack(value) == packb(value)


def test_codec_pack_canonical_keyword_false():
    value = {"b": 1, "a": 2}
    assert msgpack_pack(value, canonical=False) == packb(value)


def test_codec_pack_canonical_positional():
    assert msgpack_pack({"b": 1, "a": 2}, True) == b"\x82\xa1a\x02\xa1b\x01"


def test_codec_pack_grows_buffer_repeatedly():
    value = ["s" * 1000] * 5000
    assert msgpack_pack(value) == packb(value)


# Canonical mode.

def test_codec_canonical_sorts_by_packed_key():
    value = {"a": 0, b"a": 1, 2: 2, 1: 3, None: 4}
    # Packed keys: 0x01, 0x02, 0xa1 0x61, 0xc0, 0xc4 0x01 0x61.
    expected = b"\x85\x01\x03\x02\x02\xa1a\x00\xc0\x04\xc4\x01a\x01"
    assert msgpack_pack(value, canonical=True) == expected


def test_codec_canonical_ignores_insertion_order():
    first = {"x": 1, "y": 2, "z": 3}
    second = {"z": 3, "x": 1, "y": 2}
    assert (msgpack_pack(first, canonical=True)
            == msgpack_pack(second, canonical=True))


def test_codec_canonical_sorts_nested_maps():
    first = [{"outer": {"b": 1, "a": {"d": 1, "c": 2}}, "k": 0}]
    second = [{"k": 0, "outer": {"a": {"c": 2, "d": 1}, "b": 1}}]
    assert (msgpack_pack(first, canonical=True)
            == msgpack_pack(second, canonical=True))


def test_codec_canonical_sorts_dict_subclasses():
    first = moved_ordered_dict()
    second = Dict(c=3, b=2, a=1)
    assert (msgpack_pack(first, canonical=True)
            == msgpack_pack(second, canonical=True))


def test_codec_canonical_sorts_large_maps():
    keys = list(range(70000))
    shuffled = keys[:]
    random.Random(1).shuffle(shuffled)
    first = {key: str(key) for key in keys}
    second = {key: str(key) for key in shuffled}
    assert (msgpack_pack(first, canonical=True)
            == msgpack_pack(second, canonical=True))


def test_codec_canonical_decodes_to_equal_dict():
    value = {"b": [1, {"y": 2, "x": 1}], "a": None, 3: b"c"}
    assert msgpack_unpack(msgpack_pack(value, canonical=True)) == value


@pytest.mark.parametrize(
    "value",
    [1, "text", [3, 2, 1], (b"a", 2.5), {}, {"only": 1}, ExtType(1, b"x")],
    ids=value_id,
)
def test_codec_canonical_keeps_other_values(value):
    assert msgpack_pack(value, canonical=True) == packb(value)


@PROPERTY_SETTINGS
@given(ANY_VALUES, st.randoms(use_true_random=False))
def test_codec_canonical_order_independent_property(value, rng):
    def reorder(item):
        if isinstance(item, dict):
            pairs = [(key, reorder(entry)) for key, entry in item.items()]
            rng.shuffle(pairs)
            return dict(pairs)
        if isinstance(item, list):
            return [reorder(entry) for entry in item]
        if isinstance(item, tuple) and type(item) is tuple:
            return tuple(reorder(entry) for entry in item)
        return item

    assert (msgpack_pack(reorder(value), canonical=True)
            == msgpack_pack(value, canonical=True))


# Round trip through our encoder and decoder.

@pytest.mark.parametrize("value", EDGE_VALUES, ids=value_id)
def test_codec_round_trip_edge_values(value):
    assert same(msgpack_unpack(msgpack_pack(value)), decoded_form(value))


@PROPERTY_SETTINGS
@given(ANY_VALUES)
def test_codec_round_trip_property(value):
    assert same(msgpack_unpack(msgpack_pack(value)), decoded_form(value))


def test_codec_round_trip_tuple_becomes_list():
    assert same(msgpack_unpack(msgpack_pack((1, (2, 3)))), [1, [2, 3]])


def test_codec_round_trip_tuple_key_stays_tuple():
    value = {(1, (2, "x"), ()): "v"}
    assert same(msgpack_unpack(msgpack_pack(value)), value)


def test_codec_round_trip_int_keys():
    value = {1: "a", -2**63: "b", 2**64 - 1: "c"}
    assert same(msgpack_unpack(msgpack_pack(value)), value)


def test_codec_round_trip_mixed_keys():
    value = {None: 1, True: 2, 2.5: 3, b"k": 4, "k": 5, Timestamp(1, 2): 6}
    assert same(msgpack_unpack(msgpack_pack(value)), value)


@pytest.mark.parametrize("value", DEEP_VALUES, ids=["none", "list", "dict"])
def test_codec_round_trip_deepest_values(value):
    # Comparing values this deep would exceed Python's recursion limit,
    # so the decoded value is compared by packing it again.
    data = msgpack_pack(value)
    assert msgpack_pack(msgpack_unpack(data)) == data


# Decoding: agreement with msgpack.unpackb.

@PROPERTY_SETTINGS
@given(PLAIN_VALUES)
def test_codec_unpack_matches_msgpack_property(value):
    data = packb(value)
    assert same(msgpack_unpack(data), unpackb(data))


@PROPERTY_SETTINGS
@given(SINGLE_FLOAT_VALUES)
def test_codec_unpack_single_float_property(value):
    data = packb(value, use_single_float=True)
    assert same(msgpack_unpack(data), unpackb(data))


def has_array_key(value):
    """Return whether value contains a map with a tuple key.

    msgpack.unpackb(use_list=True) raises TypeError for an array used as
    a map key, where our decoder returns a tuple.
    """
    if isinstance(value, dict):
        return (any(type(key) is tuple for key in value)
                or any(map(has_array_key, value.values())))
    if isinstance(value, (list, tuple)):
        return any(map(has_array_key, value))
    return False


@pytest.mark.parametrize(
    "value", [v for v in EDGE_VALUES if not has_array_key(v)],
    ids=value_id,
)
def test_codec_unpack_matches_msgpack_edges(value):
    data = packb(value)
    assert same(msgpack_unpack(data), unpackb(data))


# Encodings that msgpack.packb never writes but the specification allows,
# such as ints and lengths in wider forms than needed, and float32.
WIDE_ENCODINGS = [
    b"\xcc\x01", b"\xcd\x00\x01", b"\xce\x00\x00\x00\x01",
    b"\xcf\x00\x00\x00\x00\x00\x00\x00\x01",
    b"\xd0\x01", b"\xd0\xff", b"\xd1\xff\xfe", b"\xd2\xff\xff\xff\xfd",
    b"\xd3\xff\xff\xff\xff\xff\xff\xff\xfc",
    b"\xd3\x80\x00\x00\x00\x00\x00\x00\x00",
    b"\xca\x3f\xc0\x00\x00", b"\xca\x7f\xc0\x00\x01", b"\xca\x80\x00\x00\x00",
    b"\xca\x7f\x80\x00\x00", b"\xca\x00\x00\x00\x01",
    b"\xd9\x01a", b"\xda\x00\x01a", b"\xdb\x00\x00\x00\x01a",
    b"\xd9\x00", b"\xc4\x00", b"\xc5\x00\x01b", b"\xc6\x00\x00\x00\x01b",
    b"\xdc\x00\x01\xc0", b"\xdd\x00\x00\x00\x01\xc0", b"\xdc\x00\x00",
    b"\xde\x00\x01\x01\x02", b"\xdf\x00\x00\x00\x01\xa1k\xc3",
    b"\xc7\x01\x05x", b"\xc8\x00\x01\x05x", b"\xc9\x00\x00\x00\x01\x05x",
    b"\xc7\x00\x05", b"\xd6\xff\x00\x00\x00\x01",
    b"\x82\x01\x02\x01\x03",
]


@pytest.mark.parametrize("data", WIDE_ENCODINGS, ids=bytes.hex)
def test_codec_unpack_wide_encodings(data):
    assert same(msgpack_unpack(data), unpackb(data))


@pytest.mark.parametrize(
    "data", [b"\x92\x01\xa1x", bytearray(b"\x92\x01\xa1x"),
             memoryview(b"\x92\x01\xa1x")],
    ids=lambda data: type(data).__name__,
)
def test_codec_unpack_accepts_bytes_like(data):
    assert msgpack_unpack(data) == [1, "x"]


def test_codec_unpack_array_key_as_tuple():
    assert same(msgpack_unpack(b"\x81\x92\x01\x02\xc0"), {(1, 2): None})


def test_codec_unpack_nested_key_arrays():
    data = b"\x81\x92\x01\x92\x02\x90\xc0"
    assert same(msgpack_unpack(data), {(1, (2, ())): None})


def test_codec_unpack_duplicate_keys_last_wins():
    assert msgpack_unpack(b"\x82\x01\x02\x01\x03") == {1: 3}


# Encoding errors.

class Unnamed:
    pass


LongName = type("L" + "o" * 300 + "ng", (), {})

UNSUPPORTED = [
    object(), {1, 2}, frozenset(), 1j, type, len, Unnamed(), LongName(),
    datetime.datetime(2020, 1, 1),
    datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc),
    TimestampSubclass(1, 2), [1, object()], {"k": {2}},
]


def error_of(function, *args):
    """Return the exception function(*args) raises."""
    with pytest.raises(Exception) as info:
        function(*args)
    return info.value


@pytest.mark.parametrize("value", UNSUPPORTED, ids=value_id)
def test_codec_pack_unsupported_type_error(value):
    error = error_of(msgpack_pack, value)
    expected = error_of(packb, value)
    assert type(error) is TypeError
    assert str(error) == str(expected)


@pytest.mark.parametrize(
    "value", [2**64, -2**63 - 1, 2**200, -2**200, Int(2**64)],
    ids=value_id,
)
def test_codec_pack_int_out_of_range(value):
    error = error_of(msgpack_pack, value)
    assert type(error) is OverflowError
    assert str(error) == "Integer value out of range"


@pytest.mark.parametrize(
    "value",
    [nest(NEST_LIMIT + 1), nest(NEST_LIMIT, [1]), nest(NEST_LIMIT, {1: 2}),
     nest(NEST_LIMIT + 1, ExtType(1, b"")), nest(NEST_LIMIT + 1, object())],
    ids=["list", "inner-list", "inner-dict", "ext", "unsupported"],
)
def test_codec_pack_nesting_limit(value):
    error = error_of(msgpack_pack, value)
    expected = error_of(packb, value)
    assert type(error) is ValueError
    assert str(error) == str(expected)


def test_codec_pack_self_referencing_list():
    value = [1]
    value.append(value)
    error = error_of(msgpack_pack, value)
    assert type(error) is ValueError
    assert str(error) == "recursion limit exceeded."


def test_codec_pack_self_referencing_dict():
    value = {}
    value["self"] = value
    error = error_of(msgpack_pack, value, True)
    assert type(error) is ValueError
    assert str(error) == "recursion limit exceeded."


def test_codec_pack_lone_surrogate():
    error = error_of(msgpack_pack, ["ok", "\ud800"])
    expected = error_of(packb, ["ok", "\ud800"])
    assert type(error) is UnicodeEncodeError
    assert str(error) == str(expected)


def test_codec_pack_noncontiguous_memoryview():
    value = memoryview(b"abcdef")[::2]
    error = error_of(msgpack_pack, value)
    expected = error_of(packb, value)
    assert type(error) is BufferError
    assert str(error) == str(expected)


@pytest.mark.parametrize(
    "value, type_name",
    [
        ({HashableList([1]): 1}, "HashableList"),
        ({HashableDict(a=1): 1}, "HashableDict"),
        ({(1, HashableList([2])): 1}, "HashableList"),
        ({(1, (HashableDict(),)): 1}, "HashableDict"),
        ([{"k": {HashableList(): 1}}], "HashableList"),
    ],
    ids=["list", "dict", "list-in-tuple", "dict-in-tuple", "nested-map"],
)
@pytest.mark.parametrize("canonical", [False, True])
def test_codec_pack_rejects_unreadable_key(value, type_name, canonical):
    error = error_of(msgpack_pack, value, canonical)
    assert type(error) is TypeError
    assert f"'{type_name}'" in str(error)


def test_codec_pack_tuple_subclass_key():
    value = {Point(1, 2): "p"}
    assert msgpack_pack(value) == packb(value)


class MutatingDict(dict):
    """A dict whose items() first runs action, to mutate its container."""

    def __init__(self, action):
        super().__init__(inner=1)
        self.action = action

    def items(self):
        self.action()
        return super().items()


def test_codec_pack_dict_grows_during_packing():
    outer = {"a": None, "b": 2}
    outer["a"] = MutatingDict(lambda: outer.update(c=3))
    error = error_of(msgpack_pack, outer)
    assert type(error) is RuntimeError
    assert "changed size" in str(error)


def test_codec_pack_dict_cleared_during_packing():
    outer = {"a": None, "b": 2, "c": 3}
    outer["a"] = MutatingDict(outer.clear)
    error = error_of(msgpack_pack, outer)
    assert type(error) is RuntimeError
    assert "changed size" in str(error)


def test_codec_pack_dict_key_replaced_during_packing():
    outer = {"a": None, "b": 2}

    def replace():
        del outer["b"]
        outer["z"] = 9

    outer["a"] = MutatingDict(replace)
    assert len(msgpack_unpack(msgpack_pack(outer))) == 2


def test_codec_pack_list_cleared_during_packing():
    items = [None, 1, 2]
    items[0] = MutatingDict(items.clear)
    error = error_of(msgpack_pack, items)
    assert type(error) is RuntimeError
    assert "changed size" in str(error)


def test_codec_pack_list_grows_during_packing():
    items = [None, 1]
    items[0] = MutatingDict(lambda: items.append(5))
    assert msgpack_unpack(msgpack_pack(items)) == [{"inner": 1}, 1]


@pytest.mark.parametrize(
    "args, kwargs",
    [((), {}), ((1, False, 2), {}), ((1,), {"other": 1}),
     ((1, True), {"canonical": True}), ((), {"obj": 1})],
    ids=["none", "three", "unknown-keyword", "twice", "obj-keyword"],
)
def test_codec_pack_bad_arguments(args, kwargs):
    with pytest.raises(TypeError):
        msgpack_pack(*args, **kwargs)


@pytest.mark.parametrize(
    "args, kwargs",
    [((), {}), ((b"\x01", b"\x01"), {}), ((), {"data": b"\x01"}),
     (("text",), {}), ((memoryview(b"abcd")[::2],), {})],
    ids=["none", "two", "keyword", "str", "noncontiguous"],
)
def test_codec_unpack_bad_arguments(args, kwargs):
    with pytest.raises((TypeError, BufferError)):
        msgpack_unpack(*args, **kwargs)


# Decoding errors.

def test_codec_unpack_empty_input():
    error = error_of(msgpack_unpack, b"")
    assert type(error) is ValueError
    assert "truncated" in str(error)


def test_codec_unpack_trailing_bytes():
    error = error_of(msgpack_unpack, b"\x01\x02")
    assert type(error) is ValueError
    assert "extra data" in str(error)


def test_codec_unpack_reserved_byte():
    error = error_of(msgpack_unpack, b"\x91\xc1")
    assert type(error) is ValueError
    assert "0xc1" in str(error)


@pytest.mark.parametrize(
    "data", [b"\xa1\xff", b"\xa2\xc3\x28", b"\xa3\xed\xa0\x80",
             b"\x81\xa1\xfe\x01"],
    ids=bytes.hex,
)
def test_codec_unpack_invalid_utf8(data):
    error = error_of(msgpack_unpack, data)
    expected = error_of(unpackb, data)
    assert type(error) is UnicodeDecodeError
    assert str(error) == str(expected)


@pytest.mark.parametrize(
    "data", [b"\x81\x80\x01", b"\x81\x92\x01\x81\x01\x02\xc0",
             b"\x81\x91\x81\x01\x02\x03"],
    ids=bytes.hex,
)
def test_codec_unpack_unhashable_key(data):
    error = error_of(msgpack_unpack, data)
    assert type(error) is TypeError
    assert "unhashable" in str(error)


@pytest.mark.parametrize(
    "data",
    [b"\xd4\xfb\x00", b"\xd4\xff\x00", b"\xd7\xff" + b"\xff" * 8],
    ids=bytes.hex,
)
def test_codec_unpack_invalid_ext(data):
    error = error_of(msgpack_unpack, data)
    expected = error_of(unpackb, data)
    assert type(error) is ValueError
    assert str(error) == str(expected)


@pytest.mark.parametrize("depth", [NEST_LIMIT - 1, NEST_LIMIT])
def test_codec_unpack_deep_nesting_accepted(depth):
    data = b"\x91" * depth + b"\xc0"
    assert msgpack_pack(msgpack_unpack(data)) == data


@pytest.mark.parametrize(
    "data",
    [b"\x91" * (NEST_LIMIT + 1) + b"\xc0",
     b"\x91" * NEST_LIMIT + b"\x91\x90",
     b"\x91" * 100000,
     b"\x81" * 100000,
     b"\xdc\xff\xff" * 100000],
    ids=["limit", "empty-below-limit", "arrays", "map-keys", "array16"],
)
def test_codec_unpack_deep_nesting_rejected(data):
    error = error_of(msgpack_unpack, data)
    assert type(error) is ValueError
    assert "nested deeper than 1024" in str(error)


# Headers that declare up to 2**32 - 1 items or bytes in a few bytes of
# input.  Each must fail as truncated without allocating for the length.
HUGE_LENGTHS = [
    b"\xdd\xff\xff\xff\xff", b"\xdf\xff\xff\xff\xff",
    b"\xdd\xff\xff\xff\xff\x01\x02\x03",
    b"\xdf\xff\xff\xff\xff\x01\x02\x03",
    b"\xdc\xff\xff" + b"\x01" * 100, b"\xde\xff\xff" + b"\x01" * 100,
    b"\xc6\xff\xff\xff\xffxyz", b"\xdb\xff\xff\xff\xffxyz",
    b"\xc9\xff\xff\xff\xff\x01xyz", b"\xc9\xff\xff\xff\xfe\x01xyz",
    b"\x91\xc6\xff\xff\xff\xff", b"\x9f" + b"\x01" * 14,
    b"\x8f" + b"\x01" * 29,
]


@pytest.mark.parametrize("data", HUGE_LENGTHS, ids=bytes.hex)
def test_codec_unpack_huge_declared_length(data):
    error = error_of(msgpack_unpack, data)
    assert type(error) is ValueError
    assert "truncated" in str(error)


FUZZ_SEEDS = [
    None, True, 0, -1, 200, -200, 70000, -70000, 2**40, -2**40, 2**64 - 1,
    1.5, "", "short", "s" * 40, "\u20ac" * 100, "x" * 70000,
    b"", b"bin", b"b" * 300, b"b" * 70000,
    [], [1, "two", [3.0]], list(range(20)), list(range(70000)),
    {}, {"a": 1, "b": [2, {"c": None}]}, {i: i for i in range(20)},
    {(1, 2): b"t"}, ExtType(5, b"abcd"), ExtType(5, b"abc"),
    Timestamp(1, 0), Timestamp(2**34, 5), Timestamp(-1, 5),
    [ExtType(3, b"x" * 300), {"t": Timestamp(9, 9)}],
]


@pytest.mark.parametrize("value", FUZZ_SEEDS, ids=value_id)
def test_codec_unpack_every_truncation(value):
    data = msgpack_pack(value)
    # msgpack is a prefix code, so every proper prefix of an encoding is
    # truncated input.
    # Long encodings are cut only near their ends, where the headers and
    # the last items are, to keep the test fast.
    ends = range(len(data))
    if len(data) > 400:
        ends = [*ends[:200], *ends[-200:]]
    prefixes = [data[:end] for end in ends]
    messages = []
    for prefix in prefixes:
        with pytest.raises(ValueError) as info:
            msgpack_unpack(prefix)
        messages.append(str(info.value))
    assert all("truncated" in message for message in messages)


@pytest.mark.parametrize("value", FUZZ_SEEDS, ids=value_id)
def test_codec_unpack_every_extra_byte(value):
    data = msgpack_pack(value)
    with pytest.raises(ValueError) as info:
        msgpack_unpack(data + b"\xc0")
    assert "extra data" in str(info.value)


def check_against_msgpack(data):
    """Decode data with both decoders and return a failure, or None.

    Both must raise or both return the same object, except that ours may
    accept arrays nested inside map keys and one level more of nesting
    under an empty container, which msgpack.unpackb rejects.
    """
    try:
        expected = unpackb(data)
    except Exception as error:
        expected_error = error
    else:
        expected_error = None
    try:
        result = msgpack_unpack(data)
    except DECODE_ERRORS as error:
        if expected_error is None:
            return f"{data.hex()}: raised {error!r}, msgpack did not"
        return None
    except Exception as error:
        return f"{data.hex()}: unexpected {error!r}"
    if expected_error is None and not same(result, expected):
        return f"{data.hex()}: {result!r} != {expected!r}"
    return None


def fuzz_inputs(seed, count):
    """Generate count byte strings that are mostly near valid msgpack."""
    rng = random.Random(seed)
    encodings = [msgpack_pack(value) for value in FUZZ_SEEDS
                 if len(msgpack_pack(value)) < 400]
    interesting = bytes(range(0xc0, 0x100)) + b"\x00\x01\x7f\x80\x90\xa0"
    for _ in range(count):
        kind = rng.randrange(3)
        if kind == 0:
            length = rng.randrange(0, 24)
            yield bytes(rng.choice(interesting) if rng.random() < 0.5
                        else rng.randrange(256) for _ in range(length))
        elif kind == 1:
            data = bytearray(rng.choice(encodings))
            for _ in range(rng.randrange(1, 4)):
                if data:
                    data[rng.randrange(len(data))] = rng.randrange(256)
            yield bytes(data)
        else:
            first, second = rng.sample(encodings, 2)
            cut = rng.randrange(len(first) + 1)
            yield first[:cut] + second


@pytest.mark.parametrize("seed", range(4))
def test_codec_unpack_fuzz_matches_msgpack(seed):
    failures = [failure for failure in map(check_against_msgpack,
                                           fuzz_inputs(seed, 5000))
                if failure is not None]
    assert failures == []


@PROPERTY_SETTINGS
@given(st.binary(max_size=64))
def test_codec_unpack_random_bytes_property(data):
    assert check_against_msgpack(data) is None
