"""Write the ShareDB 2.0.2 fixture stores that the compatibility tests read.

Run it with the Python of a virtualenv that has sharedb==2.0.2 installed:

    python make_fixtures_202.py [OUT_DIR]

OUT_DIR defaults to fixtures_202/ beside this script. For each entry of
records_202.FIXTURE_STORES, the script writes OUT_DIR/NAME.ShareDB/ with 2.0.2,
deletes lock.mdb, truncates data.mdb to the pages in use, and then checks that both
the lmdb package and 2.0.2 still read every record. It replaces stores of the same
name in OUT_DIR and leaves other files there alone.
"""

from __future__ import annotations

import argparse
import os
import pickle
import shutil
import sys
import tempfile
import zlib

import lmdb
import msgpack
from ShareDB import ShareDB

import records_202
import run_202

DEFAULT_OUT_DIR = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "fixtures_202"
)


def truncate_to_used_pages(path: str) -> int:
    """Delete lock.mdb and cut data.mdb after its last used page. Return the new size.

    2.0.2 opens LMDB with writemap, which makes LMDB grow data.mdb to the full map
    size with ftruncate (mdb_env_map in LMDB 0.9.36), so the file is mostly a hole.
    Cutting it is safe because:
    - LMDB stores the number of the last page in use in its meta pages, and a
      reader without writemap never touches a page past it, so it never reads
      past the end of the shorter file.
    - 2.0.2 and any other writer with writemap call ftruncate again on open, which
      grows the file back to the map size. A writer without writemap appends
      pages with pwrite, which also grows the file.
    lock.mdb holds only the reader table, which LMDB rebuilds on open.
    """
    env = lmdb.open(path, readonly=True, lock=False)
    try:
        used_size = (env.info()["last_pgno"] + 1) * env.stat()["psize"]
    finally:
        env.close()

    data_path = os.path.join(path, "data.mdb")
    with open(data_path, "rb") as data_file:
        data_file.seek(used_size)
        # The cut part should be the never-written hole. Anything else would be a
        # page LMDB wrote but does not count as used, and worth a look.
        while block := data_file.read(1 << 20):
            if block.count(0) != len(block):
                raise RuntimeError(f"{data_path} has data past its last used page")
    os.truncate(data_path, used_size)
    os.remove(os.path.join(path, "lock.mdb"))
    return used_size


def pack_key(key: object, serial: str) -> bytes:
    """Serialize a key as 2.0.2 does, to check the fixture's key bytes exactly."""
    if serial == "pickle":
        return pickle.dumps(key, protocol=pickle.HIGHEST_PROTOCOL)
    return msgpack.packb(key, use_bin_type=True)


def unpack(raw: bytes, serial: str) -> object:
    """Deserialize a key or an uncompressed value as 2.0.2 does."""
    if serial == "pickle":
        return pickle.loads(raw)
    return msgpack.unpackb(raw, raw=False, use_list=True)


def verify_with_lmdb(path: str, serial: str, compress: bool) -> None:
    """Check every record of the truncated store using the lmdb package alone."""
    data_path = os.path.join(path, "data.mdb")
    size_before = os.path.getsize(data_path)
    # readonly=True drops writemap, and lock=False stops LMDB creating lock.mdb.
    env = lmdb.open(path, readonly=True, lock=False)
    try:
        with env.begin() as txn:
            raw_items = list(txn.cursor())
    finally:
        env.close()
    if os.path.getsize(data_path) != size_before:
        raise RuntimeError(f"reading {data_path} with lmdb changed its size")
    if os.path.exists(os.path.join(path, "lock.mdb")):
        raise RuntimeError(f"reading {path} with lmdb created lock.mdb")

    records = records_202.expected_records(serial)
    expected_keys = sorted(pack_key(key, serial) for key, _ in records)
    if sorted(raw_key for raw_key, _ in raw_items) != expected_keys:
        raise RuntimeError(f"{path}: raw keys are not {serial} of expected_records()")

    decoded = []
    for raw_key, raw_value in raw_items:
        if compress:
            raw_value = zlib.decompress(raw_value)
        decoded.append((unpack(raw_key, serial), unpack(raw_value, serial)))
    if records_202.digest(decoded) != records_202.expected_digest(serial):
        raise RuntimeError(f"{path}: records read with lmdb differ from expected")


def verify_with_sharedb(path: str, serial: str, compress: bool) -> None:
    """Check that 2.0.2 reopens a copy of the truncated store and can use it."""
    expected_config = {
        "serial": serial,
        "compress": compress,
        "readers": records_202.READERS,
        "buffer_size": records_202.BUFFER_SIZE,
        "map_size": records_202.MAP_SIZE,
    }
    expected_count = len(records_202.expected_records(serial))
    with tempfile.TemporaryDirectory() as temp_dir:
        copy = shutil.copytree(path, os.path.join(temp_dir, "copy.ShareDB"))
        result = run_202.read_store(copy)
        if result["config"] != expected_config:
            raise RuntimeError(f"{path}: 2.0.2 read config {result['config']}")
        if result["length"] != expected_count:
            raise RuntimeError(f"{path}: 2.0.2 counted {result['length']} records")
        if result["digest"] != records_202.expected_digest(serial):
            raise RuntimeError(f"{path}: records read with 2.0.2 differ from expected")
        lookups = run_202.check_lookups(copy)
        if lookups["failures"]:
            raise RuntimeError(f"{path}: 2.0.2 lookups failed: {lookups['failures']}")

        # Opening with writemap must have grown data.mdb back to the map size.
        grown_size = os.path.getsize(os.path.join(copy, "data.mdb"))
        if grown_size != records_202.MAP_SIZE:
            raise RuntimeError(f"{path}: 2.0.2 left data.mdb at {grown_size} bytes")

        # Write past the old end of the file, then read it back after a reopen.
        new_value = "appended after truncation " * 400
        db = ShareDB(copy)
        db["appended"] = new_value
        db.close()
        db = ShareDB(copy)
        try:
            if db["appended"] != new_value or len(db) != expected_count + 1:
                raise RuntimeError(f"{path}: 2.0.2 could not write to the copy")
        finally:
            db.close()


def make_store(out_dir: str, name: str, serial: str, compress: bool) -> int:
    """Write, truncate and verify one fixture store. Return its data.mdb size."""
    path = os.path.join(out_dir, name + ".ShareDB")
    if os.path.exists(path):
        shutil.rmtree(path)
    run_202.write_store(path, serial, compress)
    size = truncate_to_used_pages(path)
    verify_with_lmdb(path, serial, compress)
    verify_with_sharedb(path, serial, compress)
    return size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", default=DEFAULT_OUT_DIR)
    args = parser.parse_args(argv)

    os.makedirs(args.out_dir, exist_ok=True)
    for name, (serial, compress) in records_202.FIXTURE_STORES.items():
        size = make_store(args.out_dir, name, serial, compress)
        count = len(records_202.expected_records(serial))
        print(f"{name}: {count} records, data.mdb {size} bytes, verified")
    print(
        f"ShareDB {ShareDB.__version__}, lmdb {lmdb.__version__}"
        f" (LMDB {'.'.join(map(str, lmdb.version()))}),"
        f" msgpack {'.'.join(map(str, msgpack.version))},"
        f" zlib {zlib.ZLIB_VERSION}, Python {sys.version.split()[0]}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
