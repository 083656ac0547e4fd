"""Use the LMDB bindings of sharedb.lmdb: environments, named databases,
transactions and cursors, with bytes keys and values.

Run it with `python examples/raw_lmdb.py`. The environment is created in
a temporary directory, which is deleted at the end.
"""

from __future__ import annotations

import os
import tempfile

from sharedb import lmdb


def fill(env: lmdb.Environment, users: lmdb.Database) -> None:
    """Write the example records, in two transactions."""
    with env.begin(write=True) as txn:
        consumed, added = txn.putmulti(
            (f"user:{number:04d}".encode(), f"name {number}".encode())
            for number in range(1, 1001)
        )
        print(f"putmulti read {consumed} pairs and stored {added}")
        # A named database keeps its records apart from the main database.
        txn.put(b"user:0001", b"admin", db=users)
        txn.put(b"user:0002", b"guest", db=users)

    with env.begin(write=True) as txn:
        stored = txn.put(b"user:0001", b"someone else", overwrite=False)
        print("overwrote an existing key:", stored)
        old = txn.replace(b"user:0002", b"renamed")
        print("value before replace:", old)
        txn.delete(b"user:0003")


def scan(env: lmdb.Environment, users: lmdb.Database) -> None:
    """Read the records back with get(), getmulti() and cursors."""
    with env.begin() as txn:
        print("user:0002 =", txn.get(b"user:0002"))
        print("user:0003 =", txn.get(b"user:0003", b"<deleted>"))
        print("getmulti:", txn.getmulti([b"user:0004", b"user:9999"]))
        print("role of user:0001:", txn.get(b"user:0001", db=users))

        # Keys are in byte order, so a prefix is one range of the cursor.
        with txn.cursor() as cursor:
            found = cursor.set_range(b"user:0500")
            print("set_range found a record:", found)
            keys = []
            for key in cursor.iternext(values=False):
                if not key.startswith(b"user:05"):
                    break
                keys.append(key)
            print(f"{len(keys)} keys from {keys[0]!r} to {keys[-1]!r}")

        with txn.cursor(db=users) as cursor:
            cursor.last()
            print("last record of users:", cursor.item())
            print("users backward:", [key for key, _ in cursor.iterprev()])

        # 999 user records, and the name of the named database, which
        # LMDB stores as a key of the main database.
        print("entries in the main database:", txn.stat()["entries"])


def main() -> None:
    print(lmdb.LMDB_VERSION_STRING)
    with tempfile.TemporaryDirectory(prefix="sharedb-lmdb-") as work:
        path = os.path.join(work, "env")
        # max_dbs=1 leaves room for one named database.
        with lmdb.open(path, map_size=64 << 20, max_dbs=1) as env:
            users = env.open_db("users")
            fill(env, users)
            scan(env, users)

            # A nested transaction whose changes are dropped when it aborts.
            with env.begin(write=True) as parent:
                child = env.begin(write=True, parent=parent)
                child.put(b"temporary", b"value")
                child.abort()
                print("after the child aborted:", parent.get(b"temporary"))

            try:
                with env.begin() as txn:
                    txn.put(b"key", b"value")
            except lmdb.ReadonlyError as exc:
                print("a write in a read transaction raised:", exc)
            print("readers in use:", env.readers())
            print("options:", env.flags())
        print("closed:", env.closed)


if __name__ == "__main__":
    main()
