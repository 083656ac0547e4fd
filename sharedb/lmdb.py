"""LMDB bindings: environments, transactions and cursors.

This module exposes the LMDB library that ShareDB is built on, for
programs that want byte-level access. Keys and values are bytes-like
objects and come back as bytes.

    from sharedb import lmdb

    with lmdb.Environment("/tmp/example", map_size=1 << 30) as env:
        with env.begin(write=True) as txn:
            txn.put(b"key", b"value")
        with env.begin() as txn:
            assert txn.get(b"key") == b"value"

Every error LMDB reports raises a subclass of Error named after its code
(MapFullError for MDB_MAP_FULL, and so on); system errors raise OSError.
Using an ended transaction or cursor, or a closed environment, raises
ClosedError, a RuntimeError.
"""

from sharedb._lmdb import (
    LMDB_VERSION,
    LMDB_VERSION_STRING,
    BadDbiError,
    BadRslotError,
    BadTxnError,
    BadValsizeError,
    ClosedError,
    CorruptedError,
    Cursor,
    CursorFullError,
    Database,
    DbsFullError,
    Environment,
    Error,
    IncompatibleError,
    InvalidError,
    KeyExistsError,
    KeyTooLongError,
    MapFullError,
    MapResizedError,
    NotFoundError,
    PageFullError,
    PageNotFoundError,
    PanicError,
    ReadersFullError,
    ReadonlyError,
    TlsFullError,
    Transaction,
    TxnFullError,
    VersionMismatchError,
)

__all__ = [
    "LMDB_VERSION",
    "LMDB_VERSION_STRING",
    "BadDbiError",
    "BadRslotError",
    "BadTxnError",
    "BadValsizeError",
    "ClosedError",
    "CorruptedError",
    "Cursor",
    "CursorFullError",
    "Database",
    "DbsFullError",
    "Environment",
    "Error",
    "IncompatibleError",
    "InvalidError",
    "KeyExistsError",
    "KeyTooLongError",
    "MapFullError",
    "MapResizedError",
    "NotFoundError",
    "PageFullError",
    "PageNotFoundError",
    "PanicError",
    "ReadersFullError",
    "ReadonlyError",
    "TlsFullError",
    "Transaction",
    "TxnFullError",
    "VersionMismatchError",
    "open",
]


def open(path, **options):  # noqa: A001 - mirrors lmdb.open()
    """Open an Environment; the same as Environment(path, **options)."""
    return Environment(path, **options)
