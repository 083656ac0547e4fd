"""Read or write a store with ShareDB 2.0.2, for tests that compare against it.

Run it with the Python of a virtualenv that has sharedb==2.0.2 installed:

    python run_202.py read STORE_PATH
    python run_202.py check STORE_PATH
    python run_202.py write STORE_PATH SERIAL COMPRESS

read prints JSON with the store's config and records_202.digest() of every record.
check looks up each key of records_202.expected_records() for the store's serial and
prints JSON with the keys that 2.0.2 misses or reads with another value. It catches
keys that decode to the right object but are not byte-equal to what 2.0.2 writes.
write stores expected_records(SERIAL) in a new store, with COMPRESS "true" or "false",
and the map size, readers and buffer size from records_202.

2.0.2 opens every store for writing, so read and check create lock.mdb and grow
data.mdb to the map size: pass them a copy of a fixture, not the fixture itself.
STORE_PATH may omit the ".ShareDB" suffix, as with ShareDB() itself. Exit status 2
means a bad command line, or a store that is missing (read, check) or present (write).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from ShareDB import ShareDB

import records_202


def store_dir(path: str) -> str:
    """Return the directory 2.0.2 uses for path: the path ending in ".ShareDB"."""
    path = path.rstrip("/")
    if not path.endswith(".ShareDB"):
        path += ".ShareDB"
    return path


def write_store(path: str, serial: str, compress: bool) -> None:
    """Write expected_records(serial) to a new 2.0.2 store at path."""
    db = ShareDB(
        path,
        reset=False,
        serial=serial,
        compress=compress,
        readers=records_202.READERS,
        buffer_size=records_202.BUFFER_SIZE,
        map_size=records_202.MAP_SIZE,
    )
    records = records_202.expected_records(serial)
    half = len(records) // 2
    # One transaction per record, then one transaction for the rest, so both of
    # 2.0.2's write paths (set and multiset) produce part of the store.
    for key, value in records[:half]:
        db[key] = value
    db.multiset(records[half:])

    # Add, overwrite and delete records, so that LMDB's free list is not empty, as
    # in a store that has been in use.
    scratch = [(f"scratch-{i}", "x" * (i * 100)) for i in range(1, 11)]
    scratch.append(("scratch-overflow", "x" * 5000))
    db.multiset(scratch)
    db.multiremove(key for key, _ in scratch)
    db.multiset((key, "placeholder") for key, _ in records[:10])
    db.multiset(records[:10])
    db.close()


def read_store(path: str) -> dict:
    """Open path with 2.0.2 and return its config, length and record digest."""
    db = ShareDB(path)
    try:
        return {
            "config": {
                "serial": db.serial,
                "compress": db.compress,
                "readers": db.max_readers,
                "buffer_size": db.sync_threshold,
                "map_size": db.max_map_size,
            },
            "length": len(db),
            "digest": records_202.digest(db.items()),
        }
    finally:
        db.close()


def check_lookups(path: str) -> dict:
    """Look up every expected key with 2.0.2 and return those that fail."""
    db = ShareDB(path)
    try:
        failures = []
        records = records_202.expected_records(db.serial)
        for key, value in records:
            expected = repr(records_202.as_read_back(value, db.serial))
            found = db.get(key)
            if found is None:
                failures.append({"key": repr(key), "problem": "missing"})
            elif repr(found) != expected:
                failures.append({"key": repr(key), "problem": f"value {found!r}"})
        return {"checked": len(records), "failures": failures}
    finally:
        db.close()


def parse_bool(text: str) -> bool:
    """Parse a COMPRESS argument, rejecting anything but true/false/1/0."""
    lowered = text.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    read = commands.add_parser("read", help="print config and record digest")
    read.add_argument("store_path")
    check = commands.add_parser("check", help="look up every expected key")
    check.add_argument("store_path")
    write = commands.add_parser("write", help="write expected_records(SERIAL)")
    write.add_argument("store_path")
    write.add_argument("serial", choices=records_202.SERIALS)
    write.add_argument("compress", type=parse_bool)
    args = parser.parse_args(argv)

    directory = store_dir(args.store_path)
    if args.command == "write":
        if os.path.exists(directory):
            print(f"{directory} already exists", file=sys.stderr)
            return 2
        write_store(directory, args.serial, args.compress)
        return 0

    # Without this check, 2.0.2 would quietly create an empty store at a wrong path.
    if not os.path.isfile(os.path.join(directory, "ShareDB.config")):
        print(f"{directory} is not a ShareDB store", file=sys.stderr)
        return 2
    if args.command == "read":
        result = read_store(directory)
    else:
        result = check_lookups(directory)
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
