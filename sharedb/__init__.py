"""ShareDB: a dict-like key-value store on disk, shared by processes.

    from sharedb import ShareDB

    db = ShareDB("./example", serial="msgpack")
    db["name"] = ["Ada", 1815]
    print(db["name"])
    db.close()

The store lives in LMDB files in the directory ``./example.ShareDB/``.
Many processes may read and write it at once; reads never wait for
writes. sharedb.lmdb exposes the LMDB bindings underneath.
"""

from sharedb._config import ConfigError
from sharedb._version import __version__
from sharedb.lmdb import ClosedError, KeyTooLongError, MapFullError
from sharedb.store import InvalidArgumentError, ShareDB, ShareDBWarning

__all__ = [
    "ClosedError",
    "ConfigError",
    "InvalidArgumentError",
    "KeyTooLongError",
    "MapFullError",
    "ShareDB",
    "ShareDBWarning",
    "__version__",
]
