"""Tests of the sharedb command, each run as `python -m sharedb ...` in a
subprocess on real stores, and of the library functions of
sharedb._tools behind it."""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import pytest
from conftest import child_environment, running_writer

from sharedb import ShareDB, _dumpformat, _tools, cli, lmdb

TIMEOUT = 60

# Records of the standard test store: keys and values of several types,
# including bytes with a backslash and a newline.
RECORDS: dict[object, object] = {
    "name": "Ada",
    42: [1, 2.5, None],
    b"raw\\key\n": b"\x00\xff",
    (1, "a"): {"nested": (True, frozenset({3}))},
    "fraction": Fraction(1, 3),
}


def run_cli(
    *args: str, cwd: Path | None = None, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run python -m sharedb with args; the child imports this sharedb."""
    return subprocess.run(
        [sys.executable, "-m", "sharedb", *args],
        input=stdin,
        capture_output=True,
        check=False,
        timeout=TIMEOUT,
        env=child_environment(),
        cwd=cwd,
    )


def make_store(
    path: Path, records: dict[object, object] = RECORDS, **options: object
) -> str:
    store = ShareDB(str(path), **options)  # type: ignore[arg-type]
    store.update(records)
    store.close()
    return str(path)


def stderr_text(result: subprocess.CompletedProcess[bytes]) -> str:
    return result.stderr.decode()


@pytest.fixture
def store(tmp_path: Path) -> str:
    return make_store(tmp_path / "store")


WRITER = """
import sys, time
from sharedb import ShareDB
store = ShareDB(sys.argv[1])
store.multiset((f"seed-{i:06d}", "s" * 50) for i in range(2000))
print("ready", flush=True)
batch = 0
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    store.multiset((f"w-{batch:06d}-{i:03d}", "v" * 300) for i in range(100))
    store.multiremove(f"w-{batch - 5:06d}-{i:03d}" for i in range(0, 100, 2))
    batch += 1
"""


@pytest.fixture
def busy_store(tmp_path: Path) -> Iterator[str]:
    """A store that another process writes while the test runs."""
    path = str(tmp_path / "busy")
    with running_writer(WRITER, path):
        yield path


# stat -----------------------------------------------------------------------


def test_stat_reports_entries_and_settings(store: str) -> None:
    result = run_cli("stat", store)
    text = result.stdout.decode()
    assert result.returncode == 0
    assert "Entries:            5" in text
    assert "serial=pickle" in text


def test_stat_json_figures(store: str) -> None:
    result = run_cli("stat", store, "--json")
    figures = json.loads(result.stdout)
    assert result.returncode == 0
    assert figures["entries"] == len(RECORDS)
    assert figures["kind"] == "sharedb"
    assert figures["config"]["serial"] == "pickle"
    assert figures["config"]["msauto"] is True
    assert figures["cap"] is None
    assert figures["used_bytes"] == figures["leaf_pages"] * figures["page_size"]
    assert figures["file_size"] >= figures["high_water_bytes"]
    assert figures["readers_stale"] == 0


def test_stat_capped_store_fill(tmp_path: Path) -> None:
    path = make_store(tmp_path / "capped", map_size=8 << 20)
    figures = json.loads(run_cli("stat", path, "--json").stdout)
    expected = 100 * figures["high_water_bytes"] / (8 << 20)
    assert figures["cap"] == 8 << 20
    assert figures["fill_percent"] == pytest.approx(expected, abs=0.001)


@pytest.mark.parametrize("spelling", ["{}", "{}/", "{}.ShareDB", "{}.ShareDB/"])
def test_stat_accepts_path_spellings(store: str, spelling: str) -> None:
    result = run_cli("stat", spelling.format(store), "--json")
    assert result.returncode == 0
    assert json.loads(result.stdout)["entries"] == len(RECORDS)


def test_stat_plain_lmdb_directory(tmp_path: Path) -> None:
    path = tmp_path / "plain"
    with (
        lmdb.Environment(str(path), map_size=1 << 22) as env,
        env.begin(write=True) as txn,
    ):
        txn.put(b"k", b"v")
    figures = json.loads(run_cli("stat", str(path), "--json").stdout)
    assert figures["kind"] == "lmdb"
    assert figures["config"] is None
    assert figures["entries"] == 1


HOLDER = """
import sys, time
from sharedb import ShareDB
store = ShareDB(sys.argv[1])
print(len(store), flush=True)
time.sleep(30)
"""


def test_stat_counts_other_process_readers(store: str) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, store],
        stdout=subprocess.PIPE,
        env=child_environment(),
    )
    assert holder.stdout is not None
    try:
        holder.stdout.readline()
        figures = json.loads(run_cli("stat", store, "--json").stdout)
    finally:
        holder.kill()
        holder.wait()
    assert figures["reader_processes"] == [holder.pid]
    assert figures["readers_idle"] == 1


def test_stat_missing_path_fails(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    result = run_cli("stat", str(missing))
    assert result.returncode == 1
    assert stderr_text(result).startswith("sharedb stat: no store found at ")
    assert str(missing) in stderr_text(result)
    assert "Traceback" not in stderr_text(result)


def test_read_commands_create_nothing(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing")
    for args in (
        ["stat", missing],
        ["dump", missing],
        ["check", missing],
        ["keys", missing],
        ["get", missing, "1"],
    ):
        result = run_cli(*args)
        assert result.returncode == 1, args
        assert "no store found" in stderr_text(result), args
    assert os.listdir(tmp_path) == []


def test_stat_during_concurrent_writes(busy_store: str) -> None:
    first = json.loads(run_cli("stat", busy_store, "--json").stdout)
    second = json.loads(run_cli("stat", busy_store, "--json").stdout)
    assert first["entries"] >= 2000
    assert second["last_txnid"] > first["last_txnid"]
    assert second["reader_processes"] != []


# dump and load ----------------------------------------------------------------


def test_dump_bytevalue_format(store: str) -> None:
    lines = run_cli("dump", store).stdout.split(b"\n")
    assert lines[:3] == [b"VERSION=3", b"format=bytevalue", b"type=btree"]
    assert lines[3].startswith(b"mapsize=")
    assert lines[4] == b"maxreaders=256"
    assert lines[5] == b"db_pagesize=4096"
    assert lines[6] == b"HEADER=END"
    assert lines[-2:] == [b"DATA=END", b""]
    assert len(lines) == 7 + 2 * len(RECORDS) + 2


def test_dump_printable_escapes(store: str) -> None:
    output = run_cli("dump", "-p", store).stdout
    assert b"format=print\n" in output
    assert b"raw\\\\key\\0a" in output


@pytest.mark.parametrize("printable", [False, True], ids=["bytevalue", "print"])
def test_dump_load_round_trip_bytes(
    store: str, tmp_path: Path, printable: bool
) -> None:
    flags = ["-p"] if printable else []
    original = run_cli("dump", *flags, store).stdout
    loaded = run_cli("load", str(tmp_path / "copy"), stdin=original)
    again = run_cli("dump", *flags, str(tmp_path / "copy")).stdout
    assert loaded.returncode == 0
    assert again == original


def test_load_detects_serializer(tmp_path: Path) -> None:
    source = make_store(
        tmp_path / "packed",
        {"name": "Ada", 7: [b"x"]},
        serial="msgpack",
        compress=True,
    )
    dump = run_cli("dump", source).stdout
    result = run_cli("load", str(tmp_path / "copy"), stdin=dump)
    config = (tmp_path / "copy.ShareDB" / "ShareDB.config").read_text()
    assert result.returncode == 0
    assert "serial = msgpack" in config
    assert "compress = True" in config
    copy = ShareDB(str(tmp_path / "copy"))
    assert copy["name"] == "Ada"
    copy.close()


def test_load_rejects_other_serializer(store: str, tmp_path: Path) -> None:
    packed = make_store(tmp_path / "packed", {"name": "Ada"}, serial="msgpack")
    result = run_cli("load", store, stdin=run_cli("dump", packed).stdout)
    assert result.returncode == 1
    assert "do not decode with the store's serial=pickle" in stderr_text(result)


def test_load_warns_ignored_serial(store: str) -> None:
    dump = run_cli("dump", "--decoded", store).stdout
    result = run_cli("load", "--decoded", "--serial", "msgpack", store, stdin=dump)
    assert result.returncode == 0
    assert "keeps its serial=pickle" in stderr_text(result)


def test_dump_output_file(store: str, tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    result = run_cli("dump", store, "-o", str(target))
    assert result.returncode == 0
    assert result.stdout == b""
    assert target.read_bytes() == run_cli("dump", store).stdout


def test_dump_decoded_json_lines(store: str) -> None:
    lines = run_cli("dump", "--decoded", store).stdout.decode().splitlines()
    records = [json.loads(line) for line in lines]
    by_key = {json.dumps(record["key"]): record["value"] for record in records}
    assert len(records) == len(RECORDS)
    assert by_key['"name"'] == "Ada"
    assert by_key["42"] == [1, 2.5, None]
    assert by_key['{"$bytes": "cmF3XGtleQo="}'] == {"$bytes": "AP8="}
    assert by_key['{"$tuple": [1, "a"]}'] == {
        "nested": {"$tuple": [True, {"$frozenset": [3]}]}
    }
    assert by_key['"fraction"']["$repr"] == "Fraction(1, 3)"
    assert "$pickle" in by_key['"fraction"']


def test_load_decoded_restores_values(store: str, tmp_path: Path) -> None:
    dump = run_cli("dump", "--decoded", store).stdout
    result = run_cli("load", "--decoded", str(tmp_path / "copy"), stdin=dump)
    copy = ShareDB(str(tmp_path / "copy"))
    restored = dict(copy.items())
    copy.close()
    assert result.returncode == 0
    assert restored == RECORDS


def test_json_representation_round_trip() -> None:
    values = [
        math.inf,
        -math.inf,
        2**20000,
        {"$odd": 1},
        {1: "a"},
        {1, 2},
        bytearray(b"x"),
        1 + 2j,
        "lone \udc80 surrogate",
        [(), {}],
    ]
    for value in values:
        line = _dumpformat.json_line("k", value)
        assert _dumpformat.from_json(json.loads(line)["value"]) == value, value
    nan = _dumpformat.from_json(
        json.loads(_dumpformat.json_line("k", math.nan))["value"]
    )
    assert math.isnan(nan)


def test_dump_during_concurrent_writes(busy_store: str) -> None:
    result = run_cli("dump", busy_store)
    lines = result.stdout.split(b"\n")
    records = (len(lines) - 10) // 2
    assert result.returncode == 0
    assert lines[-2] == b"DATA=END"
    assert records >= 2000


def test_dump_truncated_file_fails_cleanly(store: str) -> None:
    data = Path(store + ".ShareDB") / "data.mdb"
    os.truncate(data, 8192)
    result = run_cli("dump", store)
    assert result.returncode == 1
    assert stderr_text(result).startswith("sharedb dump: ")
    assert "truncated" in stderr_text(result)
    assert "Traceback" not in stderr_text(result)
    assert stderr_text(result).count("\n") == 1


def test_load_invalid_line_fails(tmp_path: Path) -> None:
    dump = b"VERSION=3\nformat=bytevalue\ntype=btree\nHEADER=END\n 6b\n zz\nDATA=END\n"
    result = run_cli("load", str(tmp_path / "bad"), stdin=dump)
    assert result.returncode == 1
    assert "line 6: invalid value" in stderr_text(result)


def test_load_rejects_dupsort_database(tmp_path: Path) -> None:
    dump = (
        b"VERSION=3\nformat=bytevalue\ntype=btree\nduplicates=1\ndupsort=1\n"
        b"HEADER=END\n 6b\n 76\nDATA=END\n"
    )
    result = run_cli("load", "--plain", str(tmp_path / "dup"), stdin=dump)
    assert result.returncode == 1
    assert "dupsort" in stderr_text(result)
    assert not (tmp_path / "dup").exists()


def test_load_no_overwrite_keeps_values(store: str, tmp_path: Path) -> None:
    dump = run_cli("dump", store).stdout
    changed = ShareDB(store)
    changed["name"] = "Grace"
    changed.close()
    result = run_cli("load", "-N", store, stdin=dump)
    value = run_cli("get", store, "'name'").stdout
    assert result.returncode == 0
    assert value == b"'Grace'\n"


def test_dump_named_database(tmp_path: Path) -> None:
    path = tmp_path / "named"
    with lmdb.Environment(str(path), map_size=1 << 22, max_dbs=2) as env:
        numbers = env.open_db(b"numbers")
        with env.begin(write=True) as txn:
            txn.put(b"plain", b"record")
            txn.put(b"a", b"1", db=numbers)
    single = run_cli("dump", "-s", "numbers", str(path)).stdout
    everything = run_cli("dump", "-a", str(path)).stdout
    assert b"database=numbers\n" in single
    assert single.endswith(b"HEADER=END\n 61\n 31\nDATA=END\n")
    assert everything.count(b"VERSION=3") == 2
    assert everything.endswith(single)


def test_load_named_database_plain(tmp_path: Path) -> None:
    dump = (
        b"VERSION=3\nformat=bytevalue\ndatabase=numbers\ntype=btree\n"
        b"mapsize=1048576\nmaxreaders=126\ndb_pagesize=4096\nHEADER=END\n"
        b" 61\n 31\nDATA=END\n"
    )
    result = run_cli("load", "--plain", str(tmp_path / "plain"), stdin=dump)
    again = run_cli("dump", "-s", "numbers", str(tmp_path / "plain")).stdout
    assert result.returncode == 0
    assert again == dump


# copy and compact -------------------------------------------------------------


def test_copy_matches_source(store: str, tmp_path: Path) -> None:
    result = run_cli("copy", store, str(tmp_path / "backup"))
    copy = ShareDB(str(tmp_path / "backup"))
    records = dict(copy.items())
    copy.close()
    assert result.returncode == 0
    assert records == RECORDS
    assert (tmp_path / "backup.ShareDB" / "ShareDB.config").exists()


def test_copy_existing_destination_fails(store: str, tmp_path: Path) -> None:
    make_store(tmp_path / "other", {"x": 1})
    result = run_cli("copy", store, str(tmp_path / "other"))
    assert result.returncode == 1
    assert "the destination exists" in stderr_text(result)
    assert "other.ShareDB" in stderr_text(result)


def test_copy_during_concurrent_writes(busy_store: str, tmp_path: Path) -> None:
    backup = str(tmp_path / "backup")
    result = run_cli("copy", "--compact", busy_store, backup)
    check = run_cli("check", backup)
    figures = json.loads(run_cli("stat", backup, "--json").stdout)
    assert result.returncode == 0
    assert check.returncode == 0
    assert figures["entries"] >= 2000
    assert figures["free_pages"] == 0


def test_compact_keeps_every_record(store: str) -> None:
    before = run_cli("dump", store).stdout
    result = run_cli("compact", store)
    after = run_cli("dump", store).stdout
    assert result.returncode == 0
    assert after == before


def test_compact_shrinks_after_deletions(tmp_path: Path) -> None:
    path = make_store(tmp_path / "sparse", {i: "x" * 3000 for i in range(4000)})
    sparse = ShareDB(path)
    sparse.multiremove([i for i in range(4000) if i % 20])
    sparse.close()
    data = Path(path + ".ShareDB") / "data.mdb"
    size_before = data.stat().st_size
    result = run_cli("compact", path)
    size_after = data.stat().st_size
    reopened = ShareDB(path)
    remaining = dict(reopened.items())
    reopened[-1] = "written after compaction"
    reopened.close()
    assert result.returncode == 0
    assert size_after < size_before / 5
    assert remaining == {i: "x" * 3000 for i in range(0, 4000, 20)}
    assert os.listdir(tmp_path) == ["sparse.ShareDB"]


def test_compact_rejects_open_store(busy_store: str) -> None:
    result = run_cli("compact", busy_store)
    assert result.returncode == 1
    assert "has it open" in stderr_text(result)


def test_compact_cleans_leftover_directory(store: str, tmp_path: Path) -> None:
    leftover = tmp_path / ".store.ShareDB.compacting"
    leftover.mkdir()
    (leftover / "data.mdb").write_bytes(b"partial")
    result = run_cli("compact", store)
    assert result.returncode == 0
    assert not leftover.exists()


def test_compact_restores_moved_store(store: str, tmp_path: Path) -> None:
    moved = tmp_path / ".store.ShareDB.compact-old"
    os.rename(store + ".ShareDB", moved)
    result = run_cli("compact", store)
    records = run_cli("dump", "--decoded", store).stdout.decode().splitlines()
    assert result.returncode == 0
    assert len(records) == len(RECORDS)


# check --------------------------------------------------------------------


def test_check_sound_store_passes(store: str) -> None:
    result = run_cli("check", store)
    assert result.returncode == 0
    assert b"no problems found in 5 records" in result.stdout


def test_check_truncated_file_fails(store: str) -> None:
    os.truncate(Path(store + ".ShareDB") / "data.mdb", 8192)
    result = run_cli("check", store)
    assert result.returncode == 1
    assert b"truncated" in result.stdout
    assert "found 1 problem in" in stderr_text(result)


def test_check_during_concurrent_writes(busy_store: str) -> None:
    result = run_cli("check", busy_store)
    assert result.returncode == 0
    assert result.stdout.startswith(busy_store.encode())


def test_check_fallback_counts_records(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(lmdb, "verify", raising=False)
    report = _tools.check_report(store)
    assert report.method == _tools.FALLBACK_METHOD
    assert report.problems == []
    assert report.entries == len(RECORDS)


def test_check_fallback_reports_truncation(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(lmdb, "verify", raising=False)
    os.truncate(Path(store + ".ShareDB") / "data.mdb", 8192)
    problems = _tools.check(store)
    assert len(problems) == 1
    assert "is truncated" in problems[0]


def test_check_fallback_reports_crash(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(lmdb, "verify", raising=False)
    monkeypatch.setattr(
        _tools,
        "_scan_command",
        lambda location: [sys.executable, "-c", "import os; os.abort()"],
    )
    problems = _tools.check(store)
    assert len(problems) == 1
    assert "SIGABRT" in problems[0]


# keys and get -------------------------------------------------------------


def test_keys_lists_decoded_keys(store: str) -> None:
    result = run_cli("keys", store)
    lines = result.stdout.decode().splitlines()
    assert result.returncode == 0
    assert sorted(lines) == sorted(repr(key) for key in RECORDS)


def test_get_prints_value(store: str) -> None:
    assert run_cli("get", store, "(1, 'a')").stdout == (
        repr(RECORDS[(1, "a")]).encode() + b"\n"
    )
    assert run_cli("get", store, "b'raw\\\\key\\n'").stdout == b"b'\\x00\\xff'\n"
    assert run_cli("get", store, "42", "--json").stdout == b"[1, 2.5, null]\n"


def test_keys_and_get_during_concurrent_writes(busy_store: str) -> None:
    keys = run_cli("keys", busy_store)
    listed = keys.stdout.decode().splitlines()
    value = run_cli("get", busy_store, "'seed-000123'")

    assert keys.returncode == 0
    assert sum(line.startswith("'seed-") for line in listed) == 2000
    assert value.returncode == 0
    assert value.stdout == repr("s" * 50).encode() + b"\n"


def test_load_during_concurrent_writes(busy_store: str, tmp_path: Path) -> None:
    loaded = {f"loaded-{i:03d}": [i, "x" * i] for i in range(50)}
    source = ShareDB(str(tmp_path / "source"))
    source.update(loaded)
    source.close()
    dump = run_cli("dump", "--decoded", str(tmp_path / "source"))

    result = run_cli("load", "--decoded", busy_store, stdin=dump.stdout)

    assert dump.returncode == 0
    assert result.returncode == 0, stderr_text(result)
    store = ShareDB(busy_store)
    try:
        assert {key: store[key] for key in loaded} == loaded
    finally:
        store.close()


def test_get_missing_key_fails(store: str) -> None:
    result = run_cli("get", store, "'absent'")
    assert result.returncode == 1
    assert stderr_text(result) == (
        f"sharedb get: key 'absent' not found in {store}.ShareDB/\n"
    )


def test_get_invalid_literal_exits_2(store: str) -> None:
    result = run_cli("get", store, "not a literal")
    assert result.returncode == 2
    assert "is not a Python literal" in stderr_text(result)


def test_keys_plain_directory_fails(tmp_path: Path) -> None:
    path = tmp_path / "plain"
    with (
        lmdb.Environment(str(path), map_size=1 << 22) as env,
        env.begin(write=True) as txn,
    ):
        txn.put(b"k", b"v")
    result = run_cli("keys", str(path))
    assert result.returncode == 1
    assert "has no ShareDB.config" in stderr_text(result)


# progress, help and usage ---------------------------------------------------


def test_progress_absent_without_terminal(store: str, tmp_path: Path) -> None:
    for args in (
        ["dump", store, "-o", str(tmp_path / "out")],
        ["check", "-q", store],
        ["copy", "-q", store, str(tmp_path / "copy")],
    ):
        result = run_cli(*args)
        assert result.returncode == 0, args
        assert result.stderr == b"", args


def run_with_terminal_stderr(*args: str) -> tuple[int, bytes]:
    """Run python -m sharedb with stderr on a pseudo-terminal; return the
    exit status and what it wrote there."""
    pty = pytest.importorskip("pty", reason="pseudo-terminals are POSIX only")
    primary, secondary = pty.openpty()
    child = subprocess.Popen(
        [sys.executable, "-m", "sharedb", *args],
        stdout=subprocess.DEVNULL,
        stderr=secondary,
        env=child_environment(),
    )
    os.close(secondary)
    output = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # EIO once the child has closed the terminal
            break
        if not chunk:
            break
        output += chunk
    os.close(primary)
    return child.wait(timeout=TIMEOUT), output


def test_progress_shown_under_terminal(store: str, tmp_path: Path) -> None:
    status, output = run_with_terminal_stderr("dump", store, "-o", str(tmp_path / "o"))
    assert status == 0
    assert b"\rdump 100.0% 5 records of 5 records" in output


def test_progress_quiet_under_terminal(store: str, tmp_path: Path) -> None:
    status, output = run_with_terminal_stderr(
        "dump", "-q", store, "-o", str(tmp_path / "o")
    )
    assert status == 0
    assert output == b""


def test_help_every_subcommand() -> None:
    # test_help_describes_every_option checks every subcommand in-process.
    for command in ("stat", "dump", "get"):
        result = run_cli(command, "--help")
        assert result.returncode == 0, command
        assert b"usage: sharedb " + command.encode() in result.stdout, command


def test_help_describes_every_option() -> None:
    parser = cli.build_parser()
    subcommands = next(
        action
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    for name, subparser in subcommands.choices.items():
        for action in subparser._actions:
            assert action.help, f"{name} {action.option_strings or action.dest}"


def test_usage_without_command_exits_2() -> None:
    result = run_cli()
    assert result.returncode == 2
    assert "required" in stderr_text(result)


def test_usage_unknown_option_exits_2(store: str) -> None:
    result = run_cli("stat", store, "--bogus")
    assert result.returncode == 2


def test_demo_runs_unchanged(tmp_path: Path) -> None:
    result = run_cli(
        "demo", "--records", "2000", "--readers", "1", "--dir", str(tmp_path)
    )
    assert result.returncode == 0, stderr_text(result)
