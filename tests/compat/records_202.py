"""Data set and digest shared by the ShareDB 2.0.2 compatibility fixtures.

make_fixtures_202.py and run_202.py import this module under ShareDB 2.0.2, and our
tests import it under the new implementation, so it uses only the standard library.
"""

from __future__ import annotations

import hashlib
import math

# Settings used for every store written with 2.0.2. The small map keeps data.mdb
# small, and the odd buffer size makes the saved ShareDB.config easy to recognise.
MAP_SIZE = 2**22
READERS = 16
BUFFER_SIZE = 777

# Fixture store name -> (serial, compress). Each is saved as fixtures_202/NAME.ShareDB/.
FIXTURE_STORES = {
    "pickle_plain": ("pickle", False),
    "pickle_zlib": ("pickle", True),
    "msgpack_plain": ("msgpack", False),
    "msgpack_zlib": ("msgpack", True),
}

SERIALS = ("pickle", "msgpack")


def _pseudo_random_bytes(seed: str, size: int) -> bytes:
    """Return size bytes of SHA-256 output in counter mode.

    Unlike the random module, this gives the same bytes on every Python version.
    """
    chunks = []
    counter = 0
    while len(chunks) * 32 < size:
        chunks.append(hashlib.sha256(f"{seed}:{counter}".encode()).digest())
        counter += 1
    return b"".join(chunks)[:size]


def _pseudo_random_text(seed: str, size: int, alphabet: str) -> str:
    """Return size characters drawn from alphabet, so zlib cannot shrink them much."""
    return "".join(
        alphabet[b % len(alphabet)] for b in _pseudo_random_bytes(seed, size)
    )


_ASCII_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ."
_UNICODE_ALPHABET = (
    "абвгдежзийклмнопрстуфхцчшщыэюяαβγδεζηθικλμνξοπρστυφχψω中文字鍵値東京€ñü😀🔑"
)


def _small_int_value(i: int) -> object:
    """Return a value for key i, cycling through the value types 2.0.2 stores."""
    kind = i % 8
    if kind == 0:
        return [i, -i, i * 1.5, str(i)]
    if kind == 1:
        return {
            "id": i,
            "name": f"item-{i}",
            "tags": ["red", "green", "blue"][: i % 4],
            "nested": {"even": i % 2 == 0, "ratio": i / 8, "raw": bytes([i])},
        }
    if kind == 2:
        return f"value-{i}"
    if kind == 3:
        return f"значение-{i}-値"
    if kind == 4:
        return bytes(range(i, i + 10))
    if kind == 5:
        return i * -1_000_003
    if kind == 6:
        return i / 3
    return i % 3 == 0


def _common_records() -> list[tuple[object, object]]:
    """Return the records that both pickle and msgpack stores hold."""
    records: list[tuple[object, object]] = []

    # int keys: small, negative and the 64-bit edges msgpack can still encode.
    records += [(i, _small_int_value(i)) for i in range(100)]
    records += [(-i, [f"negative-{i}", -i]) for i in range(1, 31)]
    large_ints = [2**31, 2**32, 2**53 + 1, 10**18, 2**63 - 1, 2**64 - 1, -(2**32)]
    large_ints.append(-(2**63))
    records += [(n, {"int": n, "hex": hex(n)}) for n in large_ints]

    # float keys. 1.0 and True are distinct keys from the int 1 because their
    # serialized bytes differ, although all three compare equal in Python.
    floats = [0.5, -1.75, 1e-300, 1e300, math.pi, math.inf, -math.inf, 1.0]
    floats += [2.0**53, -123.456]
    records += [(x, [x, repr(x)]) for x in floats]

    records += [(True, "bool-true"), (False, ["bool", "false"])]

    # str keys: ASCII, non-ASCII, empty, and one long key near LMDB's 511-byte limit.
    records += [(f"key-{i:03d}", f"ascii value {i}") for i in range(80)]
    non_ascii = [
        "ключ",
        "鍵",
        "clé",
        "Ünïcödé",
        "e\u0301",
        "🔑 emoji",
        "עברית",
        "Ελληνικά",
    ]
    records += [(word, {"word": word, "length": len(word)}) for word in non_ascii]
    records.append(("", "empty-str-key"))
    records.append(("long-key-" + "k" * 380, "long key value"))

    # Falsy values: 2.0.2 treats only None as absent, so these must read back as is.
    records += [
        ("falsy-empty-str", ""),
        ("falsy-empty-bytes", b""),
        ("falsy-zero", 0),
        ("falsy-false", False),
        ("falsy-empty-list", []),
        ("falsy-empty-dict", {}),
    ]

    # Large values go to LMDB overflow pages, which hold any record over about 2 KB
    # with 4 KB pages. The three pseudo-random ones stay over that after zlib.
    records += [
        ("large-ascii", _pseudo_random_text("ascii", 6000, _ASCII_ALPHABET)),
        ("large-unicode", _pseudo_random_text("unicode", 2500, _UNICODE_ALPHABET)),
        ("large-bytes", _pseudo_random_bytes("bytes", 5000)),
        ("large-repetitive", "ShareDB " * 1000),
        ("large-list", list(range(0, 600 * 7919, 7919))),
        (
            "large-dict",
            {f"field-{i:03d}": {"n": i, "s": "v" * (i % 40)} for i in range(100)},
        ),
    ]
    records.append(("tuple-value", ("t", 1, (2, 3), [4, (5,)])))

    # bytes keys.
    records += [
        (b"", "empty-bytes-key"),
        (b"\x00", "nul-byte-key"),
        (b"\xff\xfe", "non-utf8-bytes-key"),
        (bytes(range(256)), "all-byte-values-key"),
    ]
    records += [(f"bytes-key-{i}".encode(), bytes([i]) * i) for i in range(1, 11)]

    # Tuple keys. repeated is built at run time, so both slots hold one str object.
    # pickle then writes the second slot as a memo reference, and an equal tuple of
    # two distinct str objects pickles to other bytes, which 2.0.2 does not find.
    repeated = "".join(["wiederholt", "-", "ключ"])
    records += [
        ((repeated, repeated), "tuple-repeating-one-str-object"),
        ((1, "a"), "tuple-int-str"),
        ((-7, 2.5, b"raw"), "tuple-int-float-bytes"),
        (("clé", True), "tuple-str-bool"),
        (("with-none", None), "tuple-containing-none"),
        ((), "empty-tuple"),
        (((1, 2), ("nested", b"\x00")), "nested-tuple"),
        ((2**63 - 1, -(2**63)), "tuple-64-bit-edges"),
        ((False, 0, 0.0), "tuple-false-zero-zero-float"),
    ]
    return records


def _pickle_only_records() -> list[tuple[object, object]]:
    """Return records that msgpack cannot encode, or that 2.0.2 cannot read back."""
    return [
        (2**64, "int-key-past-64-bits"),
        (2**100, "int-key-2-pow-100"),
        (-(2**100), "int-key-minus-2-pow-100"),
        # 2.0.2 accepts unhashable keys. pickle keeps list and tuple keys apart.
        ([1, 2, 3], "list-key"),
        # Only ints: str hashes vary per process, and so do set order and pickle bytes.
        (frozenset({1, 2, 3}), "frozenset-key"),
        ("pickle-set-value", {3, 1, 2}),
        ("pickle-big-int-value", 2**200),
        # msgpack writes int map keys, but 2.0.2 then fails to read them back because
        # msgpack 1.x unpacks with strict_map_key=True.
        ("pickle-int-key-dict", {1: "one", 2: "two"}),
    ]


def expected_records(serial: str) -> list[tuple[object, object]]:
    """Return the (key, value) pairs written to a 2.0.2 store with this serial.

    The list is the same on every call. Keys that compare equal in Python (1, 1.0,
    True) are separate records, so do not turn the list into a dict. Look keys up
    with the objects returned here, because the tuple key that repeats one str
    object pickles differently from an equal tuple of two str objects.
    """
    if serial not in SERIALS:
        raise ValueError(f"serial must be one of {SERIALS}, not {serial!r}")
    records = _common_records()
    if serial == "pickle":
        records += _pickle_only_records()
    return records


def as_read_back(obj: object, serial: str) -> object:
    """Return obj as 2.0.2 returns it after a round trip through serial.

    msgpack has no tuple type, so tuples come back as lists at every depth.
    """
    if serial == "pickle":
        return obj
    if isinstance(obj, (tuple, list)):
        return [as_read_back(item, serial) for item in obj]
    if isinstance(obj, dict):
        return {key: as_read_back(value, serial) for key, value in obj.items()}
    return obj


def digest(items) -> dict:
    """Return a JSON-safe digest of (key, value) pairs: their count and sorted reprs.

    The digest ignores iteration order, but repr keeps dict insertion order and the
    difference between 1, 1.0 and True.
    """
    records = sorted([repr(key), repr(value)] for key, value in items)
    return {"count": len(records), "records": records}


def expected_digest(serial: str) -> dict:
    """Return the digest of expected_records(serial) as 2.0.2 reads it back."""
    return digest(
        (as_read_back(key, serial), as_read_back(value, serial))
        for key, value in expected_records(serial)
    )
