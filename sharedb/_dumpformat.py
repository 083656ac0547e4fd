"""The text formats of sharedb dump and load.

The dump format is the text format of LMDB's mdb_dump and mdb_load, as
written by mdb_dump of LMDB 0.9.24:

    VERSION=3
    format=bytevalue          ('print' with printable=True)
    database=NAME             (named databases only; the name's raw bytes)
    type=btree
    mapsize=BYTES             (map size recorded in the data file)
    maxreaders=SLOTS
    duplicates=1              (then one NAME=1 line per database flag)
    db_pagesize=BYTES
    HEADER=END
     <key>
     <value>
    DATA=END

Each key and value is on its own line after one space. In bytevalue
format it is lowercase hex. In print format, bytes 0x20-0x7e are written
as they are and any other byte as a backslash and two hex digits, and a
backslash as two backslashes. mdb_dump 0.9.24 (Debian 12) writes a
backslash bare and its mdb_load mangles an escaped one: LMDB fixed both
after that release (ITS#9068). Print dumps of data with backslashes pass
between sharedb and those tools only in bytevalue format.

The header lines are written in the order above, which is the order of
mdb_dump 0.9.24, so the output equals its output byte for byte. A
mapaddr= line (fixed-address maps, which ShareDB never uses) is neither
written nor expected.

The decoded format is JSON lines, {"key": K, "value": V} per record in
key order, with keys and values decoded by the store's serializer
(ShareDB.config) and written as JSON by to_json().
"""

from __future__ import annotations

import base64
import json
import math
import pickle
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from sharedb import _serial

# Database flags and the names mdb_dump gives them, in the order it
# writes them (ascending value).
FLAG_NAMES = (
    (0x02, "reversekey"),
    (0x04, "dupsort"),
    (0x08, "integerkey"),
    (0x10, "dupfixed"),
    (0x20, "integerdup"),
    (0x40, "reversedup"),
)
DUPSORT = 0x04
ORDER_FLAGS = 0x02 | 0x08  # reversekey, integerkey: not byte order


# The dump text format ---------------------------------------------------

_PRINTABLE_ESCAPE = re.compile(rb"[^\x20-\x5b\x5d-\x7e]")
_PRINT_TOKEN = re.compile(rb"\\(\\|[0-9a-fA-F]{2})?")
_HEX_LINE = re.compile(rb"(?:[0-9a-fA-F]{2})*")


def _escape_byte(match: re.Match[bytes]) -> bytes:
    byte = match.group()[0]
    if byte == 0x5C:
        return b"\\\\"
    return b"\\%02x" % byte


def encode_item(data: bytes, printable: bool) -> bytes:
    """Return one key or value as a dump line, newline included."""
    if printable:
        return b" " + _PRINTABLE_ESCAPE.sub(_escape_byte, data) + b"\n"
    return b" " + data.hex().encode() + b"\n"


def _unescape(match: re.Match[bytes]) -> bytes:
    token = match.group(1)
    if token is None:
        raise ValueError(
            "a backslash must be followed by a backslash or two hex digits"
        )
    if token == b"\\":
        return b"\\"
    return bytes((int(token, 16),))


def decode_item(line: bytes, printable: bool) -> bytes:
    """Return the bytes of one key or value line, without its newline.

    Raises ValueError for a line that is not in the format.
    """
    if not line.startswith(b" "):
        raise ValueError("a record line must start with a space")
    body = line[1:]
    if printable:
        return _PRINT_TOKEN.sub(_unescape, body)
    if not _HEX_LINE.fullmatch(body):
        raise ValueError("a bytevalue line must contain an even number of hex digits")
    return bytes.fromhex(body.decode("ascii"))


@dataclass
class Header:
    """The header of one database section of a dump."""

    printable: bool = False
    database: bytes | None = None
    map_size: int | None = None
    max_readers: int | None = None
    flags: int = 0
    page_size: int | None = None


def format_header(header: Header) -> bytes:
    lines = [
        b"VERSION=3",
        b"format=" + (b"print" if header.printable else b"bytevalue"),
    ]
    if header.database is not None:
        lines.append(b"database=" + header.database)
    lines.append(b"type=btree")
    lines.append(b"mapsize=%d" % (header.map_size or 0))
    lines.append(b"maxreaders=%d" % (header.max_readers or 0))
    if header.flags & DUPSORT:
        lines.append(b"duplicates=1")
    for bit, name in FLAG_NAMES:
        if header.flags & bit:
            lines.append(name.encode() + b"=1")
    lines.append(b"db_pagesize=%d" % (header.page_size or 0))
    lines.append(b"HEADER=END")
    return b"\n".join(lines) + b"\n"


class DumpFormatError(ValueError):
    """Input that is not in the mdb_dump format; the message names the
    line."""


class LineReader:
    """Lines of a binary stream, numbered, without their newlines."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.number = 0
        self.bytes_read = 0

    def next(self) -> bytes | None:
        line = self.stream.readline()
        if not line:
            return None
        self.number += 1
        self.bytes_read += len(line)
        if line.endswith(b"\n"):
            line = line[:-1]
        return line

    def error(self, message: str) -> DumpFormatError:
        return DumpFormatError(f"line {self.number}: {message}")


def parse_header(reader: LineReader, warn: Callable[[str], None]) -> Header | None:
    """Read one section header; return None at the end of the input."""
    line = reader.next()
    while line is not None and not line.strip():
        line = reader.next()
    if line is None:
        return None
    if line != b"VERSION=3":
        raise reader.error(
            f"expected VERSION=3 at the start of a section, not {show_bytes(line)}"
        )
    header = Header()
    flag_bits = {name.encode(): bit for bit, name in FLAG_NAMES}
    while True:
        line = reader.next()
        if line is None:
            raise reader.error("the input ends inside a header, before HEADER=END")
        if line == b"HEADER=END":
            return header
        name, equals, value = line.partition(b"=")
        if not equals:
            raise reader.error(
                f"expected NAME=VALUE in the header, not {show_bytes(line)}"
            )
        if name == b"format":
            if value not in (b"bytevalue", b"print"):
                raise reader.error(f"unknown format {show_bytes(value)}")
            header.printable = value == b"print"
        elif name == b"database":
            header.database = value
        elif name == b"type":
            if value != b"btree":
                raise reader.error(f"unsupported database type {show_bytes(value)}")
        elif name in (b"mapsize", b"maxreaders", b"db_pagesize"):
            number = _header_number(reader, name, value)
            if name == b"mapsize":
                header.map_size = number
            elif name == b"maxreaders":
                header.max_readers = number
            else:
                header.page_size = number
        elif name == b"duplicates" or name in flag_bits:
            if value not in (b"0", b"1"):
                raise reader.error(
                    f"{name.decode()} must be 0 or 1, not {show_bytes(value)}"
                )
            if value == b"1":
                header.flags |= flag_bits.get(name, DUPSORT)
        else:
            warn(f"line {reader.number}: ignored the unknown header {show_bytes(line)}")


def _header_number(reader: LineReader, name: bytes, value: bytes) -> int:
    if not value.isdigit():
        raise reader.error(
            f"{name.decode()} must be a decimal number, not {show_bytes(value)}"
        )
    return int(value)


def show_bytes(data: bytes) -> str:
    text = repr(data)[2:-1]
    return repr(text[:60] + ("..." if len(text) > 60 else ""))


def read_records(reader: LineReader, printable: bool) -> Iterator[tuple[bytes, bytes]]:
    """Yield the (key, value) pairs of one section, through DATA=END."""
    while True:
        line = reader.next()
        if line is None:
            raise reader.error("the input ends inside the data, before DATA=END")
        if line == b"DATA=END":
            return
        try:
            key = decode_item(line, printable)
        except ValueError as exc:
            raise reader.error(f"invalid key: {exc}") from None
        line = reader.next()
        if line is None or line == b"DATA=END":
            raise reader.error("a key has no value line after it")
        try:
            value = decode_item(line, printable)
        except ValueError as exc:
            hint = ""
            if printable and b"\\" in line:
                hint = (
                    " (mdb_dump before LMDB 0.9.25 writes a backslash unescaped "
                    "in print format; dump in bytevalue format instead)"
                )
            raise reader.error(f"invalid value: {exc}{hint}") from None
        if not key:
            raise reader.error("a key is empty, which LMDB cannot store")
        yield key, value


# The JSON representation of decoded records -------------------------------

# Python ints of more digits than this would need sys.set_int_max_str_digits()
# to read back from JSON text, so they are written as hex strings.
_MAX_JSON_INT_BITS = 4000 * 3


def to_json(obj: object) -> Any:
    """Return obj as a JSON-compatible value.

    None, bools, strs, ints and finite floats are themselves and lists are
    arrays. A dict whose keys are all strs not starting with '$' is an
    object. Everything else is an object with one tag:
    {"$tuple": [...]}, {"$bytes": base64}, {"$bytearray": base64},
    {"$set": [...]}, {"$frozenset": [...]}, {"$dict": [[key, value],
    ...]}, {"$float": "nan" | "inf" | "-inf"}, {"$int": hex},
    {"$complex": [real, imag]}, {"$ext": [code, base64]} (msgpack
    ExtType), {"$timestamp": [seconds, nanoseconds]} (msgpack
    Timestamp). Any other object is {"$repr": repr(obj), "$pickle":
    base64 of its pickle}, or only "$repr" if it cannot be pickled;
    from_json() reads it back by unpickling.
    """
    kind = type(obj)
    if obj is None or kind is bool or kind is str:
        return obj
    if kind is int:
        if abs(obj).bit_length() > _MAX_JSON_INT_BITS:  # type: ignore[arg-type]
            return {"$int": hex(obj)}  # type: ignore[arg-type]
        return obj
    if kind is float:
        if math.isfinite(obj):  # type: ignore[arg-type]
            return obj
        return {"$float": repr(obj)}
    if kind is list:
        return [to_json(item) for item in obj]  # type: ignore[attr-defined]
    if kind is dict:
        return _dict_to_json(obj)  # type: ignore[arg-type]
    if kind is tuple:
        return {"$tuple": [to_json(item) for item in obj]}  # type: ignore[attr-defined]
    if kind is bytes or kind is bytearray:
        tag = "$bytes" if kind is bytes else "$bytearray"
        return {tag: base64.b64encode(obj).decode("ascii")}  # type: ignore[arg-type]
    if kind is set or kind is frozenset:
        items = sorted(
            (to_json(item) for item in obj),  # type: ignore[attr-defined]
            key=lambda item: json.dumps(item, sort_keys=True),
        )
        return {"$set" if kind is set else "$frozenset": items}
    if kind is complex:
        return {"$complex": [to_json(obj.real), to_json(obj.imag)]}  # type: ignore[attr-defined]
    return _msgpack_to_json(obj)


def _dict_to_json(obj: dict[Any, Any]) -> Any:
    if all(type(key) is str and not key.startswith("$") for key in obj):
        return {key: to_json(value) for key, value in obj.items()}
    return {"$dict": [[to_json(key), to_json(value)] for key, value in obj.items()]}


def _msgpack_to_json(obj: object) -> Any:
    import msgpack

    if isinstance(obj, msgpack.ExtType) and type(obj) is msgpack.ExtType:
        return {"$ext": [obj.code, base64.b64encode(obj.data).decode("ascii")]}
    if isinstance(obj, msgpack.Timestamp) and type(obj) is msgpack.Timestamp:
        seconds, nanoseconds = divmod(obj.to_unix_nano(), 1_000_000_000)
        return {"$timestamp": [seconds, nanoseconds]}
    try:
        data = pickle.dumps(obj, _serial.PROTOCOL)
    except Exception:  # noqa: BLE001 - any pickling error leaves only $repr
        return {"$repr": repr(obj)}
    return {"$repr": repr(obj), "$pickle": base64.b64encode(data).decode("ascii")}


def from_json(value: Any) -> Any:
    """Return the object that to_json() wrote as value.

    Raises ValueError for an unknown tag, and for a "$repr" without
    "$pickle", which cannot be read back.
    """
    if isinstance(value, list):
        return [from_json(item) for item in value]
    if not isinstance(value, dict):
        return value
    tags = [key for key in value if key.startswith("$")]
    if not tags:
        return {key: from_json(item) for key, item in value.items()}
    if "$repr" in value:
        if "$pickle" not in value:
            raise ValueError(
                f"the object {value['$repr']} was written as its repr only, "
                f"so it cannot be read back"
            )
        return pickle.loads(base64.b64decode(value["$pickle"]))
    if len(value) != 1:
        raise ValueError(f"an object with a $ tag must have one key, not {tags}")
    tag, item = next(iter(value.items()))
    return _from_tag(tag, item)


def _from_tag(tag: str, item: Any) -> Any:
    if tag == "$tuple":
        return tuple(from_json(part) for part in item)
    if tag in ("$bytes", "$bytearray"):
        data = base64.b64decode(item, validate=True)
        return data if tag == "$bytes" else bytearray(data)
    if tag == "$set":
        return {from_json(part) for part in item}
    if tag == "$frozenset":
        return frozenset(from_json(part) for part in item)
    if tag == "$dict":
        return {from_json(key): from_json(part) for key, part in item}
    if tag == "$float":
        return float(item)
    if tag == "$int":
        return int(item, 16)
    if tag == "$complex":
        return complex(from_json(item[0]), from_json(item[1]))
    if tag == "$ext":
        import msgpack

        return msgpack.ExtType(item[0], base64.b64decode(item[1], validate=True))
    if tag == "$timestamp":
        import msgpack

        return msgpack.Timestamp(item[0], item[1])
    raise ValueError(f"unknown tag {tag!r}")


def json_line(key: object, value: object) -> bytes:
    """Return one record of a decoded dump as a JSON line."""
    record = {"key": to_json(key), "value": to_json(value)}
    try:
        text = json.dumps(record, ensure_ascii=False, allow_nan=False)
        return text.encode("utf-8") + b"\n"
    except UnicodeEncodeError:
        # A str with lone surrogates, which pickle keeps but UTF-8 cannot
        # hold: JSON's \u escapes can.
        return json.dumps(record, allow_nan=False).encode("ascii") + b"\n"
