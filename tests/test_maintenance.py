"""ShareDB.stats(), copy() and compact() on open stores."""

import subprocess
import sys
import textwrap

import pytest

from sharedb import ShareDB, lmdb
from sharedb._tools import ToolError

WRITER = textwrap.dedent(
    """
    import sys
    from sharedb import ShareDB
    db = ShareDB(sys.argv[1])
    print("ready", flush=True)
    batch = 0
    while True:
        db.multiset((("batch", batch, i), batch) for i in range(50))
        db["last"] = batch
        batch += 1
    """
)


def test_stats_counts_records(open_store):
    db = open_store()
    db.multiset((i, "v" * 100) for i in range(1000))
    figures = db.stats()
    assert figures["entries"] == 1000
    assert figures["kind"] == "sharedb"
    assert figures["used_bytes"] > 100_000
    assert figures["config"]["serial"] == db.serial


def test_copy_while_other_process_writes(open_store, tmp_path):
    db = open_store("source")
    db["start"] = 1
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, db.path],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "ready"
        copies = [db.copy(tmp_path / f"copy{n}", compact=n % 2 == 1) for n in range(4)]
    finally:
        writer.kill()
        writer.wait()
    for path in copies:
        assert lmdb.verify(path)["problems"] == []
        with ShareDB(path) as copy:
            last = copy.get("last")
            # Every batch up to the last one committed is whole.
            for batch in range(last + 1 if last is not None else 0):
                values = copy.multiget(("batch", batch, i) for i in range(50))
                assert list(values) == [batch] * 50


def test_copy_into_nonempty_directory_rejected(open_store, tmp_path):
    db = open_store()
    db["a"] = 1
    target = tmp_path / "taken.ShareDB"
    target.mkdir()
    (target / "other").write_text("x")
    with pytest.raises(ToolError, match="destination exists"):
        db.copy(tmp_path / "taken")
    assert (target / "other").read_text() == "x"


def test_compact_shrinks_and_keeps_records(open_store):
    db = open_store()
    db.multiset((i, "v" * 2000) for i in range(3000))
    db.multiremove(range(0, 3000, 2))
    sizes = db.compact()
    assert sizes["after"] < sizes["before"]
    assert len(db) == 1500
    assert db[1] == "v" * 2000
    db[0] = "back"
    assert db[0] == "back"
    assert lmdb.verify(db.path)["problems"] == []


def test_compact_with_other_object_open_rejected(open_store, tmp_path):
    db = open_store()
    other = ShareDB(str(tmp_path / "store"))
    db["a"] = 1
    with pytest.raises(ToolError, match="other ShareDB objects"):
        db.compact()
    assert other["a"] == 1
    other.close()
    assert db.compact()["after"] > 0
    assert db["a"] == 1


def test_compact_with_other_process_open_rejected(open_store):
    db = open_store()
    db["a"] = 1
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from sharedb import ShareDB; db = ShareDB(sys.argv[1]);"
            " db['a']; print('ready', flush=True); sys.stdin.read()",
            db.path,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout.readline().strip() == "ready"
        with pytest.raises(ToolError, match="has it open"):
            db.compact()
        assert db["a"] == 1
    finally:
        reader.stdin.close()
        reader.wait()


def test_maintenance_on_closed_store_raises(open_store, tmp_path):
    db = open_store()
    db.close()
    with pytest.raises(lmdb.ClosedError):
        db.stats()
    with pytest.raises(lmdb.ClosedError):
        db.copy(tmp_path / "x")
    with pytest.raises(lmdb.ClosedError):
        db.compact()
