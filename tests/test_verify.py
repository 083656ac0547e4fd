"""Environment.verify() and the check of the data file's length at open.

The damaged files here are made by editing a sound one at places the
page layout gives: the meta record of pages 0 and 1 names the root of
each database, and a page lists its nodes by offset.  Every open of a
damaged file runs in a child process, so a crash fails the test instead
of ending the run.
"""

import os
import struct
import subprocess
import sys
import textwrap

import pytest

import sharedb
from sharedb import lmdb

WORD = struct.calcsize("N")
W = "Q" if WORD == 8 else "I"
HEADER = WORD + 8
# The database record: pad, flags, depth, then five words.
DB_RECORD = struct.Struct(f"=IHH{5 * W}")
# The meta record after the page header: magic, version, address, map
# size, the free-page and main database records, last page, txnid.
META = struct.Struct(f"=II{W}{W}{DB_RECORD.size}s{DB_RECORD.size}s{W}{W}")

pytestmark = pytest.mark.skipif(
    WORD != 8, reason="the edits assume the 64-bit page layout"
)


def read_meta(data, page_size, pgno):
    fields = META.unpack_from(data, pgno * page_size + HEADER)
    magic, version, _, _, free_db, main_db, last_pgno, txnid = fields
    assert magic == 0xBEEFC0DE
    assert version == 1
    free = DB_RECORD.unpack(free_db)
    main = DB_RECORD.unpack(main_db)
    return {
        "free_root": free[7],
        "main_root": main[7],
        "main_depth": main[2],
        "last_pgno": last_pgno,
        "txnid": txnid,
    }


def current_meta(path):
    with open(os.path.join(path, "data.mdb"), "rb") as file:
        data = file.read()
    page_size = struct.unpack_from("=I", data, HEADER + 8 + 2 * WORD)[0]
    # The page size sits in the pad of the free-page database record of
    # page 0; LMDB stores it there.
    metas = [read_meta(data, page_size, 0), read_meta(data, page_size, 1)]
    return max(metas, key=lambda meta: meta["txnid"]), page_size


def run_child(code, *args, timeout=60):
    """Run code in a fresh interpreter and return the finished process."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def fill(path, count, value_size, writemap=True):
    env = lmdb.Environment(path, map_size=1 << 28, writemap=writemap)
    with env:
        with env.begin(write=True) as txn:
            for i in range(count):
                txn.put(b"key%06d" % i, bytes([i % 251]) * value_size)


def test_sound_store_has_no_problems(tmp_path):
    db = sharedb.ShareDB(str(tmp_path / "store"))
    db.multiset((i, "v" * (i % 5000)) for i in range(3000))
    list(db.multipop(range(0, 3000, 4)))
    report = lmdb.verify(db.path)
    assert report["problems"] == []
    assert report["entries"] == len(db) == 2250
    assert report["overflow_pages"] > 0
    assert report["branch_pages"] > 0
    # Every page is a meta page, in a tree, or free.
    assert (
        report["pages"] + report["free_pages"] + 2 == report["last_pgno"] + 1
    )
    assert report["unreachable_pages"] == 0
    db.close()


def test_verify_of_closed_store_opens_it_read_only(tmp_path):
    path = str(tmp_path / "store")
    with sharedb.ShareDB(path) as db:
        db.multiset((i, i) for i in range(100))
        store_path = db.path
    report = lmdb.verify(store_path)
    assert report["problems"] == []
    assert report["entries"] == 100


def test_verify_closed_environment_raises(tmp_path):
    env = lmdb.Environment(str(tmp_path))
    env.close()
    with pytest.raises(lmdb.ClosedError):
        env.verify()


def test_verify_while_another_process_writes(tmp_path):
    path = str(tmp_path / "store")
    db = sharedb.ShareDB(path)
    db[0] = 0
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import sys, sharedb
                db = sharedb.ShareDB(sys.argv[1])
                for round in range(40):
                    db.multiset((i, "x" * (i % 700)) for i in range(round, 3000))
                    db.multipop(range(round, 3000, 3))
                """
            ),
            path,
        ]
    )
    try:
        reports = []
        while writer.poll() is None:
            reports.append(db._env.verify())
        reports.append(db._env.verify())
    finally:
        writer.wait(timeout=120)
    assert writer.returncode == 0
    assert all(report["problems"] == [] for report in reports)
    assert len({report["txnid"] for report in reports}) > 1
    db.close()


def test_out_of_order_keys_are_reported(tmp_path):
    fill(str(tmp_path), 20, 10)
    meta, page_size = current_meta(str(tmp_path))
    assert meta["main_depth"] == 1
    data_path = tmp_path / "data.mdb"
    data = bytearray(data_path.read_bytes())
    page = meta["main_root"] * page_size
    # Swap the offsets of the first two nodes of the leaf.
    first = page + HEADER
    data[first : first + 4] = data[first + 2 : first + 4] + data[first : first + 2]
    data_path.write_bytes(data)
    report = lmdb.verify(str(tmp_path))
    assert any("out of order" in problem for problem in report["problems"])


def test_child_past_the_last_page_is_reported(tmp_path):
    fill(str(tmp_path), 3000, 100)
    meta, page_size = current_meta(str(tmp_path))
    assert meta["main_depth"] >= 2
    data_path = tmp_path / "data.mdb"
    data = bytearray(data_path.read_bytes())
    # The second node of the root branch page: point its child far away.
    page = meta["main_root"] * page_size
    (offset,) = struct.unpack_from("=H", data, page + HEADER + 2)
    struct.pack_into("=HH", data, page + offset, 0xFFFF, 0x7FFF)
    data_path.write_bytes(data)
    report = lmdb.verify(str(tmp_path))
    assert any("past the last page" in problem for problem in report["problems"])
    # The walk goes on past the broken branch, so most of the tree is
    # still counted.
    assert report["leaf_pages"] > 0


def test_page_claimed_twice_is_reported(tmp_path):
    fill(str(tmp_path), 3000, 100)
    meta, page_size = current_meta(str(tmp_path))
    data_path = tmp_path / "data.mdb"
    data = bytearray(data_path.read_bytes())
    page = meta["main_root"] * page_size
    first_offset, second_offset = struct.unpack_from("=HH", data, page + HEADER)
    # Point the second child at the first child's page.
    data[page + second_offset : page + second_offset + 2] = data[
        page + first_offset : page + first_offset + 2
    ]
    data[page + second_offset + 2 : page + second_offset + 4] = data[
        page + first_offset + 2 : page + first_offset + 4
    ]
    data[page + second_offset + 4 : page + second_offset + 6] = data[
        page + first_offset + 4 : page + first_offset + 6
    ]
    data_path.write_bytes(data)
    report = lmdb.verify(str(tmp_path))
    assert any("reachable twice" in problem for problem in report["problems"])


def test_wrong_entry_count_is_reported(tmp_path):
    fill(str(tmp_path), 50, 10)
    data_path = tmp_path / "data.mdb"
    data = bytearray(data_path.read_bytes())
    _, page_size = current_meta(str(tmp_path))
    for pgno in (0, 1):
        start = pgno * page_size + HEADER + 8 + 2 * WORD + DB_RECORD.size
        fields = list(DB_RECORD.unpack_from(data, start))
        fields[6] += 7
        DB_RECORD.pack_into(data, start, *fields)
    data_path.write_bytes(data)
    report = lmdb.verify(str(tmp_path))
    assert any(
        "records 57 entries, but has 50" in problem for problem in report["problems"]
    )


def test_truncated_tree_is_refused_at_open(tmp_path):
    fill(str(tmp_path), 3000, 100)
    meta, page_size = current_meta(str(tmp_path))
    data_path = tmp_path / "data.mdb"
    # Cut the file just before the root page.
    os.truncate(data_path, meta["main_root"] * page_size)
    child = run_child(
        """
        import sys
        from sharedb import lmdb
        try:
            lmdb.Environment(sys.argv[1])
        except lmdb.CorruptedError as exc:
            print(exc)
        """,
        str(tmp_path),
    )
    assert child.returncode == 0, child.stderr
    assert "truncated or damaged" in child.stdout
    assert "restore it from a backup" in child.stdout
    report = lmdb.verify(str(tmp_path))
    assert len(report["problems"]) == 1
    assert "truncated" in report["problems"][0]


def test_huge_last_page_raises_memory_error(tmp_path):
    """A meta page whose last page number is too large to map makes
    opening fail with MemoryError that names the path and the cause."""
    fill(str(tmp_path), 100, 10)
    meta, page_size = current_meta(str(tmp_path))
    data_path = tmp_path / "data.mdb"
    with open(data_path, "r+b") as file:
        data = bytearray(file.read())
        newest = 0 if read_meta(data, page_size, 0)["txnid"] == meta["txnid"] else 1
        last_pgno_at = newest * page_size + HEADER + META.size - 2 * WORD
        struct.pack_into(f"={W}", data, last_pgno_at, 1 << 45)
        file.seek(0)
        file.write(data)

    with pytest.raises(MemoryError) as raised:
        lmdb.Environment(str(tmp_path), readonly=True)
    message = str(raised.value)
    assert repr(str(tmp_path) + "/") in message or repr(str(tmp_path)) in message
    assert "meta page" in message


def test_file_ending_before_free_pages_opens_and_grows(tmp_path):
    """A file may end before pages on its free list, since LMDB does not
    write a page freed in the transaction that allocated it.  Such a file
    opens, and writes that reuse those pages grow it first."""
    env = lmdb.Environment(str(tmp_path), map_size=1 << 26, writemap=False)
    with env:
        with env.begin(write=True) as txn:
            for i in range(10):
                txn.put(b"k%d" % i, b"v" * 100)
        with env.begin(write=True) as txn:
            txn.put(b"big", b"x" * 400_000)
        with env.begin(write=True) as txn:
            txn.delete(b"big")
        # Two more commits move both trees back to low pages, leaving the
        # pages of the deleted value free at the end.
        for key in (b"k1", b"k2"):
            with env.begin(write=True) as txn:
                txn.put(key, b"w")
    meta, page_size = current_meta(str(tmp_path))
    assert meta["main_depth"] == 1
    tree_end = max(meta["main_root"], meta["free_root"]) + 1
    assert tree_end < meta["last_pgno"], "the freed pages should be at the end"
    os.truncate(tmp_path / "data.mdb", tree_end * page_size)
    child = run_child(
        """
        import sys
        from sharedb import lmdb
        env = lmdb.Environment(sys.argv[1], map_size=1 << 26, writemap=True)
        assert env.verify()["problems"] == []
        with env.begin(write=True) as txn:
            txn.put(b"big2", b"y" * 300_000)
        with env.begin() as txn:
            assert txn.get(b"big2") == b"y" * 300_000
            assert txn.get(b"k3") == b"v" * 100
            assert txn.get(b"k2") == b"w"
        print(env.verify()["problems"])
        """,
        str(tmp_path),
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == "[]"


def test_damaged_page_read_raises_corrupted(tmp_path):
    """A branch node that points past the file, read through LMDB,
    raises CorruptedError or PageNotFoundError instead of crashing."""
    fill(str(tmp_path), 3000, 100)
    meta, page_size = current_meta(str(tmp_path))
    data_path = tmp_path / "data.mdb"
    data = bytearray(data_path.read_bytes())
    page = meta["main_root"] * page_size
    # The second node's offset now leaves no room for its header.
    struct.pack_into("=H", data, page + HEADER + 2, page_size - 2)
    data_path.write_bytes(data)
    child = run_child(
        """
        import sys
        from sharedb import lmdb
        env = lmdb.Environment(sys.argv[1])
        try:
            with env.begin() as txn:
                for _ in txn.cursor():
                    pass
        except lmdb.CorruptedError as exc:
            print(type(exc).__name__, exc.code, exc.call)
            print(exc)
        """,
        str(tmp_path),
    )
    assert child.returncode == 0, child.stderr
    first, message = child.stdout.splitlines()
    assert first == f"CorruptedError {lmdb.CorruptedError.code} mdb_cursor_get"
    assert "the data file is damaged" in message


def test_error_classes_carry_code_and_call():
    assert lmdb.Error.code is None
    assert lmdb.Error.call is None
    assert lmdb.ClosedError.code is None
    assert lmdb.MapFullError.code == -30792
    assert lmdb.KeyTooLongError.code == lmdb.BadValsizeError.code
    assert lmdb.CorruptedError.call is None
