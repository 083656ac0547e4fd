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

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING, Any

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
    "verify",
]


if TYPE_CHECKING:
    # Type checkers see the parameters of Environment. At run time open()
    # passes its keyword arguments on to Environment unchanged.
    def open(  # noqa: A001 - mirrors lmdb.open()
        path: str | bytes | os.PathLike[str] | os.PathLike[bytes],
        *,
        map_size: int = 10485760,
        subdir: bool = True,
        readonly: bool = False,
        create: bool = True,
        max_readers: int = 126,
        max_dbs: int = 0,
        sync: bool = True,
        metasync: bool = True,
        map_async: bool = False,
        writemap: bool = False,
        readahead: bool = True,
        lock: bool = True,
        meminit: bool = True,
        mode: int = 0o644,
        map_grow: bool = False,
    ) -> Environment:
        """Open an Environment; the same as Environment(path, **options)."""

else:

    def open(path, **options):  # noqa: A001 - mirrors lmdb.open()
        """Open an Environment; the same as Environment(path, **options)."""
        return Environment(path, **options)


def verify(
    path: str | bytes | os.PathLike[str] | os.PathLike[bytes], *, subdir: bool = True
) -> dict[str, Any]:
    """Check the data file of the environment at path page by page.

    Returns the dict of Environment.verify(); its problems list is empty
    for a sound file. A ShareDB store this process has open is checked
    through its own environment. Any other is opened read-only for the
    check, so writers elsewhere may keep working meanwhile. A data file
    too short for its pages, which LMDB would refuse to open, gives a
    report with that one problem and no counts.
    """
    from sharedb import _registry

    name = os.fsdecode(os.fspath(path))
    shared = _registry.find(name) if subdir else None
    if shared is not None and not shared.env.closed:
        return shared.env.verify()
    data_file = os.path.join(name, "data.mdb") if subdir else name
    if os.path.isfile(data_file) and os.path.getsize(data_file) == 0:
        # LMDB would start a new environment in an empty file.
        return _unreadable(f"the data file {data_file} is empty")
    try:
        env = Environment(name, subdir=subdir, readonly=True)
    except CorruptedError as exc:
        return _unreadable(str(exc))
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        # Without write access to the lock file nothing can write the
        # store through it, so reading without the lock is safe.
        try:
            env = Environment(
                name, subdir=subdir, readonly=True, lock=False
            )
        except CorruptedError as exc2:
            return _unreadable(str(exc2))
    with env:
        return env.verify()


def _unreadable(problem: str) -> dict[str, Any]:
    counts = dict.fromkeys(
        (
            "pages",
            "branch_pages",
            "leaf_pages",
            "overflow_pages",
            "free_pages",
            "unreachable_pages",
            "entries",
            "databases",
            "last_pgno",
            "txnid",
            "page_size",
        )
    )
    return {"problems": [problem], **counts}
