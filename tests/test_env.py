"""Tests of sharedb.lmdb.Environment: opening, options and whole-file calls."""

import inspect
import os
import pathlib
import subprocess
import threading
import weakref

import pytest
from conftest import run_python

from sharedb import _lmdb, lmdb

RECORDS = [(b"apple", b"1"), (b"banana", b"2"), (b"cherry", b"3")]


def fill(env, records=RECORDS, db=None):
    with env.begin(write=True) as txn:
        for key, value in records:
            txn.put(key, value, db=db)


def read_all(env, db=None):
    with env.begin() as txn:
        return list(txn.cursor(db=db))


@pytest.fixture
def open_env(tmp_path):
    """Factory of environments under tmp_path, closed at teardown.

    An Environment collected while open emits a ResourceWarning, so every
    environment a test opens goes through here.
    """
    opened = []

    def factory(name="env", **options):
        environment = lmdb.Environment(str(tmp_path / name), **options)
        opened.append(environment)
        return environment

    yield factory
    for environment in opened:
        environment.close()


# ---------------------------------------------------------------------------
# Opening


def test_open_creates_directory(tmp_path, open_env):
    open_env("created")
    assert sorted(os.listdir(tmp_path / "created")) == ["data.mdb", "lock.mdb"]


def test_open_creates_missing_parents(tmp_path, open_env):
    open_env("a/b/c")
    assert (tmp_path / "a" / "b" / "c" / "data.mdb").is_file()


def test_open_single_file(tmp_path, open_env):
    env = open_env("single", subdir=False)
    fill(env)
    assert sorted(os.listdir(tmp_path)) == ["single", "single-lock"]


def test_open_single_file_flags(open_env):
    env = open_env("single", subdir=False)
    assert env.flags()["subdir"] is False


def test_open_single_file_reopens(tmp_path):
    path = str(tmp_path / "single")
    with lmdb.Environment(path, subdir=False) as env:
        fill(env)
    with lmdb.Environment(path, subdir=False) as env:
        assert read_all(env) == RECORDS


def test_open_keeps_records(tmp_path):
    path = str(tmp_path / "env")
    with lmdb.Environment(path) as env:
        fill(env)
    with lmdb.Environment(path) as env:
        assert read_all(env) == RECORDS


@pytest.mark.parametrize("subdir", [True, False], ids=["subdir", "single-file"])
def test_open_create_false_missing(tmp_path, subdir):
    path = tmp_path / "missing"
    with pytest.raises(FileNotFoundError, match="create=False"):
        lmdb.Environment(str(path), create=False, subdir=subdir)
    assert not path.exists()


def test_open_create_false_existing(tmp_path):
    path = str(tmp_path / "env")
    lmdb.Environment(path).close()
    with lmdb.Environment(path, create=False) as env:
        assert env.closed is False


def test_open_readonly_missing(tmp_path):
    path = tmp_path / "missing"
    with pytest.raises(FileNotFoundError):
        lmdb.Environment(str(path), readonly=True)
    assert not path.exists()


def test_open_not_lmdb_file(tmp_path):
    path = tmp_path / "garbage"
    path.write_bytes(b"x" * 16384)
    with pytest.raises(lmdb.InvalidError, match="MDB_INVALID"):
        lmdb.Environment(str(path), subdir=False)


def test_open_error_code_and_call(tmp_path):
    path = tmp_path / "garbage"
    path.write_bytes(b"x" * 16384)
    with pytest.raises(lmdb.InvalidError) as caught:
        lmdb.Environment(str(path), subdir=False)
    assert caught.value.code == -30793
    assert caught.value.call == "mdb_env_open"


@pytest.mark.parametrize(
    "make_path",
    [str, os.fsencode, pathlib.Path],
    ids=["str", "bytes", "pathlike"],
)
def test_open_path_types(tmp_path, make_path):
    path = tmp_path / "env"
    with lmdb.Environment(make_path(path)) as env:
        assert env.path == str(path)


def test_open_function_same_as_class(tmp_path):
    with lmdb.open(str(tmp_path / "env"), max_dbs=2) as env:
        assert isinstance(env, lmdb.Environment)


@pytest.mark.parametrize("mode", [0o600, 0o640])
def test_open_mode_sets_permissions(tmp_path, open_env, mode):
    old_umask = os.umask(0)
    try:
        open_env("env", mode=mode)
    finally:
        os.umask(old_umask)
    assert (tmp_path / "env" / "data.mdb").stat().st_mode & 0o777 == mode


# ---------------------------------------------------------------------------
# Option validation


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"map_size": 0}, ValueError, "map_size must be a positive"),
        ({"map_size": -4096}, ValueError, "map_size must be a positive"),
        (
            {"map_size": 1 << 62},
            ValueError,
            "map_size must be a positive int of at most",
        ),
        ({"map_size": "big"}, TypeError, "str"),
        ({"map_size": 1.5}, TypeError, "float"),
        ({"max_readers": 0}, ValueError, "max_readers must be an int from 1 to"),
        ({"max_readers": None}, TypeError, "NoneType"),
        ({"max_dbs": -1}, ValueError, "max_dbs must be an int from 0 to 32765"),
        ({"max_dbs": 32766}, ValueError, "max_dbs must be an int from 0 to 32765"),
        ({"max_dbs": "4"}, TypeError, "str"),
        ({"mode": -1}, ValueError, "mode must be a permission mode"),
        ({"mode": 0o10000}, ValueError, "mode must be a permission mode"),
        ({"mode": "644"}, TypeError, "str"),
        ({"lock": False}, ValueError, "lock=False requires readonly=True"),
        ({"max_size": 1}, TypeError, "max_size"),
    ],
)
def test_open_invalid_option(tmp_path, options, error, message):
    path = tmp_path / "env"
    with pytest.raises(error, match=message):
        lmdb.Environment(str(path), **options)
    assert not path.exists()


def test_open_options_keyword_only(tmp_path):
    with pytest.raises(TypeError, match="positional"):
        lmdb.Environment(str(tmp_path / "env"), 1 << 20)


@pytest.mark.parametrize(
    ("path", "error"),
    [
        (None, TypeError),
        (5, TypeError),
        (object(), TypeError),
        ("a\0b", ValueError),
        (b"a\0b", ValueError),
    ],
    ids=["none", "int", "object", "str-null", "bytes-null"],
)
def test_open_invalid_path(path, error):
    with pytest.raises(error):
        lmdb.Environment(path)


@pytest.mark.parametrize(
    "options",
    [{}, {"readonly": True}, {"create": False}],
    ids=["default", "readonly", "no-create"],
)
def test_open_path_is_file_suggests_subdir_false(tmp_path, options):
    path = tmp_path / "file"
    path.write_bytes(b"kept")
    with pytest.raises(OSError) as info:
        lmdb.Environment(str(path), **options)
    assert "subdir=False" in str(info.value)
    assert info.value.filename == str(path)
    assert path.read_bytes() == b"kept"


@pytest.mark.parametrize(
    ("option", "value", "error", "accepted"),
    [
        ("map_size", True, TypeError, "a positive int of at most"),
        ("map_size", None, TypeError, "a positive int of at most"),
        ("max_readers", 2**31, ValueError, "an int from 1 to 2147483647"),
        ("max_readers", False, TypeError, "an int from 1 to 2147483647"),
        ("max_dbs", 2**64, ValueError, "an int from 0 to 32765"),
        ("mode", True, TypeError, "a permission mode"),
        ("mode", 10**5000, ValueError, "a permission mode"),
    ],
    ids=[
        "map_size-bool",
        "map_size-none",
        "max_readers-2**31",
        "max_readers-bool",
        "max_dbs-2**64",
        "mode-bool",
        "mode-5001-digits",
    ],
)
def test_open_integer_option_message(tmp_path, option, value, error, accepted):
    with pytest.raises(error) as info:
        lmdb.Environment(str(tmp_path / "env"), **{option: value})
    message = str(info.value)
    assert message.startswith(f"{option} must be {accepted}")
    assert len(message) < 400


def test_open_integer_option_index_accepted(tmp_path):
    class Index:
        def __index__(self) -> int:
            return 3

    with lmdb.Environment(str(tmp_path / "env"), max_readers=Index()) as env:
        assert env.max_readers() == 3


# ---------------------------------------------------------------------------
# Signatures

BINDING_TYPES = [lmdb.Environment, lmdb.Transaction, lmdb.Cursor, _lmdb.Store]


def public_methods(cls: type) -> list[str]:
    return [
        name
        for name, member in vars(cls).items()
        if callable(member) and (not name.startswith("_") or name in DUNDERS)
    ]


DUNDERS = {"__enter__", "__exit__", "__reversed__"}


@pytest.mark.parametrize("cls", BINDING_TYPES, ids=lambda cls: cls.__name__)
def test_methods_have_signatures(cls):
    methods = public_methods(cls)
    assert methods
    for name in methods:
        signature = inspect.signature(getattr(cls, name))
        first = next(iter(signature.parameters.values()))
        assert first.name == "self", name
        assert first.kind is inspect.Parameter.POSITIONAL_ONLY, name


def test_signature_positional_only_matches_calls(env):
    with env.begin(write=True) as txn:
        cursor = txn.cursor()
        assert "key" in inspect.signature(cursor.set_key).parameters
        kind = inspect.signature(cursor.set_key).parameters["key"].kind
        assert kind is inspect.Parameter.POSITIONAL_ONLY
        with pytest.raises(TypeError):
            cursor.set_key(key=b"a")
        txn.put(key=b"a", value=b"1")
        assert txn.get(key=b"a") == b"1"


# ---------------------------------------------------------------------------
# Read-only and lock=False


@pytest.fixture
def filled_path(tmp_path):
    """Path of a closed environment with RECORDS and a named database."""
    path = str(tmp_path / "filled")
    with lmdb.Environment(path, max_dbs=2) as env:
        fill(env)
        fill(env, [(b"k", b"v")], db=env.open_db(b"named"))
    return path


def test_readonly_reads_records(filled_path):
    with lmdb.Environment(filled_path, readonly=True) as env:
        # The name of the named database follows RECORDS in the main one.
        assert read_all(env)[: len(RECORDS)] == RECORDS


def test_readonly_property(filled_path):
    with lmdb.Environment(filled_path, readonly=True) as env:
        assert env.readonly is True


def test_readonly_property_false(env):
    assert env.readonly is False


def test_readonly_flags(filled_path):
    with lmdb.Environment(filled_path, readonly=True) as env:
        assert env.flags()["readonly"] is True


def test_readonly_begin_write_raises(filled_path):
    with lmdb.Environment(filled_path, readonly=True) as env:
        with pytest.raises(lmdb.ReadonlyError, match="readonly=True"):
            env.begin(write=True)


def test_readonly_set_sync_raises(filled_path):
    with lmdb.Environment(filled_path, readonly=True) as env:
        with pytest.raises(lmdb.ReadonlyError):
            env.set_sync(False)


def test_readonly_sync_does_nothing(filled_path):
    with lmdb.Environment(filled_path, readonly=True) as env:
        assert env.sync(force=True) is None


def test_readonly_open_existing_db(filled_path):
    with lmdb.Environment(filled_path, readonly=True, max_dbs=2) as env:
        named = env.open_db(b"named")
        with env.begin() as txn:
            assert txn.get(b"k", db=named) == b"v"


def test_readonly_open_missing_db(filled_path):
    with lmdb.Environment(filled_path, readonly=True, max_dbs=2) as env:
        with pytest.raises(lmdb.NotFoundError):
            env.open_db(b"absent")


def test_lock_false_reads_records(filled_path):
    with lmdb.Environment(filled_path, readonly=True, lock=False) as env:
        assert read_all(env)[: len(RECORDS)] == RECORDS


def test_lock_false_flags(filled_path):
    with lmdb.Environment(filled_path, readonly=True, lock=False) as env:
        assert env.flags()["lock"] is False


def test_lock_false_has_no_readers(filled_path):
    with lmdb.Environment(filled_path, readonly=True, lock=False) as env:
        with env.begin():
            assert env.readers() == []


def test_lock_false_reader_check(filled_path):
    with lmdb.Environment(filled_path, readonly=True, lock=False) as env:
        assert env.reader_check() == 0


# ---------------------------------------------------------------------------
# Opening a data file twice in one process


def test_open_twice_raises(env):
    with pytest.raises(lmdb.Error, match="already open in this process"):
        lmdb.Environment(env.path)


def test_open_twice_not_closed_error(env):
    with pytest.raises(lmdb.Error) as caught:
        lmdb.Environment(env.path)
    assert not isinstance(caught.value, lmdb.ClosedError)


def test_open_twice_readonly_raises(env):
    with pytest.raises(lmdb.Error, match="already open"):
        lmdb.Environment(env.path, readonly=True)


def test_open_twice_through_symlink(env, tmp_path):
    link = tmp_path / "link"
    link.symlink_to(env.path)
    with pytest.raises(lmdb.Error, match="already open"):
        lmdb.Environment(str(link))


def test_open_twice_single_file(open_env, tmp_path):
    open_env("single", subdir=False)
    with pytest.raises(lmdb.Error, match="already open"):
        lmdb.Environment(str(tmp_path / "single"), subdir=False)


def test_open_twice_keeps_first_usable(env):
    with pytest.raises(lmdb.Error):
        lmdb.Environment(env.path)
    fill(env)
    assert read_all(env) == RECORDS


def test_open_again_after_close(env):
    env.close()
    with lmdb.Environment(env.path) as again:
        assert again.closed is False


# ---------------------------------------------------------------------------
# stat, info, flags


def test_stat_empty(env):
    assert env.stat()["entries"] == 0


def test_stat_counts_entries(env):
    fill(env)
    assert env.stat()["entries"] == len(RECORDS)


def test_stat_keys(env):
    assert set(env.stat()) == {
        "psize",
        "depth",
        "branch_pages",
        "leaf_pages",
        "overflow_pages",
        "entries",
    }


def test_stat_page_size(env):
    assert env.stat()["psize"] >= 4096


def test_stat_leaf_pages(env):
    fill(env)
    assert env.stat()["leaf_pages"] == 1


def test_info_map_size(env):
    assert env.info()["map_size"] == 1 << 26


def test_info_max_readers(open_env):
    env = open_env(max_readers=7)
    assert env.info()["max_readers"] == 7


def test_info_last_txnid_counts_commits(env):
    before = env.info()["last_txnid"]
    fill(env)
    fill(env)
    assert env.info()["last_txnid"] == before + 2


def test_info_abort_keeps_txnid(env):
    before = env.info()["last_txnid"]
    env.begin(write=True).abort()
    assert env.info()["last_txnid"] == before


def test_info_num_readers(env):
    with env.begin():
        assert env.info()["num_readers"] >= 1


def test_flags_defaults(env):
    assert env.flags() == {
        "subdir": True,
        "readonly": False,
        "sync": True,
        "metasync": True,
        "map_async": False,
        "writemap": False,
        "readahead": True,
        "lock": True,
        "meminit": True,
        "map_grow": False,
    }


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("sync", False),
        ("metasync", False),
        ("map_async", True),
        ("writemap", True),
        ("readahead", False),
        ("meminit", False),
        ("map_grow", True),
    ],
)
def test_flags_reflect_option(open_env, option, value):
    env = open_env(**{option: value})
    assert env.flags()[option] is value


@pytest.mark.parametrize(
    "options",
    [{"writemap": True}, {"sync": False, "metasync": False}, {"meminit": False}],
    ids=["writemap", "nosync", "nomeminit"],
)
def test_flags_options_store_records(open_env, options):
    env = open_env(**options)
    fill(env)
    assert read_all(env) == RECORDS


def test_map_grow_after_map_full(open_env):
    # The docstring says that map_grow=True doubles the map whenever it
    # fills, so the map is larger once the failed transaction ended.
    env = open_env(map_size=1 << 16, map_grow=True)
    txn = env.begin(write=True)
    with pytest.raises(lmdb.MapFullError):
        for index in range(100):
            txn.put(b"%04d" % index, b"x" * 1000)
    txn.abort()
    assert env.info()["map_size"] > 1 << 16


@pytest.mark.skipif(os.name == "nt", reason="LMDB sizes the file to the map")
def test_open_writemap_with_map_grow(open_env):
    env = open_env(writemap=True, map_grow=True)
    fill(env)
    assert read_all(env) == RECORDS


# ---------------------------------------------------------------------------
# sync and set_sync


@pytest.mark.parametrize("force", [False, True])
def test_sync_returns_none(env, force):
    fill(env)
    assert env.sync(force) is None


def test_sync_force_keyword(open_env):
    env = open_env(sync=False)
    fill(env)
    assert env.sync(force=True) is None


def test_set_sync_off(env):
    env.set_sync(False)
    assert env.flags()["sync"] is False


def test_set_sync_on_again(env):
    env.set_sync(False)
    env.set_sync(True)
    assert env.flags()["sync"] is True


def test_set_sync_off_still_commits(env):
    env.set_sync(False)
    fill(env)
    env.sync(force=True)
    assert read_all(env) == RECORDS


def test_set_sync_with_open_write_raises(env):
    with env.begin(write=True):
        with pytest.raises(lmdb.BadTxnError, match="already has a write"):
            env.set_sync(False)


# ---------------------------------------------------------------------------
# set_mapsize


def test_set_mapsize_grows(env):
    env.set_mapsize(1 << 27)
    assert env.info()["map_size"] == 1 << 27


def test_set_mapsize_keeps_records(env):
    fill(env)
    env.set_mapsize(1 << 27)
    assert read_all(env) == RECORDS


def test_set_mapsize_rounds_up_to_data(env):
    fill(env)
    env.set_mapsize(1)
    info = env.info()
    assert info["map_size"] >= (info["last_pgno"] + 1) * env.stat()["psize"]


def test_set_mapsize_with_open_txn_raises(env):
    with env.begin():
        with pytest.raises(lmdb.Error, match="while transactions"):
            env.set_mapsize(1 << 27)


def test_set_mapsize_after_txn_ends(env):
    env.begin().abort()
    env.set_mapsize(1 << 27)
    assert env.info()["map_size"] == 1 << 27


@pytest.mark.parametrize("size", [0, -1, 1 << 62])
def test_set_mapsize_invalid_size(env, size):
    with pytest.raises(ValueError, match="size must be a positive int of at most"):
        env.set_mapsize(size)


@pytest.mark.parametrize("size", ["1024", None, 1.5])
def test_set_mapsize_wrong_type(env, size):
    with pytest.raises(TypeError):
        env.set_mapsize(size)


# ---------------------------------------------------------------------------
# Sizes and reader slots


def test_max_key_size(env):
    assert env.max_key_size() == 511


@pytest.mark.parametrize("count", [1, 7, 126])
def test_max_readers(open_env, count):
    env = open_env(max_readers=count)
    assert env.max_readers() == count


def test_readers_lists_open_txn(env):
    with env.begin() as txn:
        readers = env.readers()
        assert (os.getpid(), threading.get_ident(), txn.id) in readers


def test_readers_idle_slot(env):
    env.begin().abort()
    assert (os.getpid(), threading.get_ident(), None) in env.readers()


def test_readers_entries_are_triples(env):
    with env.begin():
        assert all(len(entry) == 3 for entry in env.readers())


def test_reader_check_nothing_dead(env):
    with env.begin():
        assert env.reader_check() == 0


def test_reader_check_frees_dead_process(env):
    # The child takes a reader slot and exits without closing anything.
    result = run_python(
        """
        import os, sys
        from sharedb import lmdb
        env = lmdb.Environment(sys.argv[1])
        txn = env.begin()
        os._exit(0)
        """,
        env.path,
    )
    assert result.returncode == 0, result.stderr
    assert env.reader_check() == 1


def test_reader_check_then_nothing(env):
    run_python(
        """
        import os, sys
        from sharedb import lmdb
        env = lmdb.Environment(sys.argv[1])
        txn = env.begin()
        os._exit(0)
        """,
        env.path,
    )
    env.reader_check()
    assert env.reader_check() == 0


@pytest.mark.parametrize("max_readers", [2, 3])
def test_idle_env_keeps_one_slot(open_env, max_readers):
    # Ended read transactions give their reader slots back, but one: an
    # idle environment keeps one slot for its next read, so another
    # process still reads when all but one slot are free.
    env = open_env(max_readers=max_readers)
    fill(env)
    readers = [env.begin() for _ in range(max_readers)]
    for txn in readers:
        txn.abort()
    result = run_python(
        """
        import sys
        from sharedb import lmdb
        with lmdb.Environment(sys.argv[1], max_readers=int(sys.argv[2])) as env:
            with env.begin() as txn:
                print(txn.get(b"apple"))
        """,
        env.path,
        str(max_readers),
    )
    assert result.stdout == "b'1'\n", result.stderr


# ---------------------------------------------------------------------------
# copy


@pytest.mark.parametrize("compact", [False, True])
def test_copy_has_same_records(env, tmp_path, compact):
    fill(env)
    target = str(tmp_path / "copy")
    env.copy(target, compact=compact)
    with lmdb.Environment(target) as copy:
        assert read_all(copy) == RECORDS


def test_copy_has_named_db(env, tmp_path):
    named = env.open_db(b"named")
    fill(env, db=named)
    target = str(tmp_path / "copy")
    env.copy(target)
    with lmdb.Environment(target, max_dbs=1) as copy:
        assert read_all(copy, db=copy.open_db(b"named", create=False)) == RECORDS


def test_copy_creates_directory(env, tmp_path):
    env.copy(str(tmp_path / "a" / "b"))
    assert (tmp_path / "a" / "b" / "data.mdb").is_file()


def test_copy_is_a_snapshot(env, tmp_path):
    fill(env)
    target = str(tmp_path / "copy")
    env.copy(target)
    fill(env, [(b"later", b"4")])
    with lmdb.Environment(target) as copy:
        assert read_all(copy) == RECORDS


def test_copy_compact_not_larger(env, tmp_path):
    fill(env, [(b"%05d" % i, b"x" * 100) for i in range(2000)])
    with env.begin(write=True) as txn:
        txn.drop()
    env.copy(str(tmp_path / "plain"))
    env.copy(str(tmp_path / "compact"), compact=True)
    compact_size = (tmp_path / "compact" / "data.mdb").stat().st_size
    plain_size = (tmp_path / "plain" / "data.mdb").stat().st_size
    assert compact_size < plain_size


def test_copy_single_file(open_env, tmp_path):
    env = open_env("single", subdir=False)
    fill(env)
    target = str(tmp_path / "copy.mdb")
    env.copy(target)
    with lmdb.Environment(target, subdir=False) as copy:
        assert read_all(copy) == RECORDS


def test_copy_onto_existing_raises(env, tmp_path):
    target = str(tmp_path / "copy")
    env.copy(target)
    with pytest.raises(FileExistsError):
        env.copy(target)


def test_copy_compact_with_open_write_txn(env, tmp_path):
    fill(env)
    target = str(tmp_path / "copy")
    with env.begin(write=True) as txn:
        txn.put(b"uncommitted", b"x")
        env.copy(target, compact=True)
    with lmdb.Environment(target) as copy:
        assert read_all(copy) == RECORDS


def test_copy_with_open_write_txn_raises(tmp_path):
    # A plain copy takes LMDB's writer lock, which this thread holds, so
    # the call must raise as begin(write=True) does instead of waiting.
    code = """
        import sys
        from sharedb import lmdb
        with lmdb.Environment(sys.argv[1]) as env:
            with env.begin(write=True):
                try:
                    env.copy(sys.argv[1] + "-copy")
                except lmdb.Error as error:
                    print(type(error).__name__)
                else:
                    print("copied")
        """
    try:
        result = run_python(code, str(tmp_path / "env"), timeout=5)
    except subprocess.TimeoutExpired:
        pytest.fail("copy() waited for the writer lock that its own thread holds")
    assert result.stdout == "BadTxnError\n"


# ---------------------------------------------------------------------------
# Named databases


def test_open_db_main(env):
    main = env.open_db()
    fill(env, db=main)
    assert env.stat()["entries"] == len(RECORDS)


def test_open_db_main_name_none(env):
    assert env.open_db().name is None


def test_open_db_name_bytes(env):
    assert env.open_db(b"named").name == b"named"


def test_open_db_str_name_is_utf8(env):
    assert env.open_db("café").name == "café".encode()


def test_open_db_str_same_as_bytes(env):
    fill(env, db=env.open_db("named"))
    assert read_all(env, db=env.open_db(b"named")) == RECORDS


def test_open_db_separate_from_main(env):
    fill(env, db=env.open_db(b"named"))
    with env.begin() as txn:
        assert txn.get(b"apple") is None


def test_open_db_name_is_main_key(env):
    env.open_db(b"named")
    with env.begin() as txn:
        assert list(txn.cursor().iternext(values=False)) == [b"named"]


def test_open_db_records_persist(tmp_path):
    path = str(tmp_path / "env")
    with lmdb.Environment(path, max_dbs=1) as env:
        fill(env, db=env.open_db(b"named"))
    with lmdb.Environment(path, max_dbs=1) as env:
        assert read_all(env, db=env.open_db(b"named", create=False)) == RECORDS


def test_open_db_max_dbs_zero(open_env):
    env = open_env(max_dbs=0)
    with pytest.raises(lmdb.DbsFullError, match="MDB_DBS_FULL"):
        env.open_db(b"named")


def test_open_db_beyond_max_dbs(env):
    for index in range(4):
        env.open_db(b"db%d" % index)
    with pytest.raises(lmdb.DbsFullError):
        env.open_db(b"one-too-many")


def test_open_db_same_name_again(env):
    first = env.open_db(b"named")
    fill(env, db=first)
    assert read_all(env, db=env.open_db(b"named")) == RECORDS


def test_open_db_create_false_missing(env):
    with pytest.raises(lmdb.NotFoundError):
        env.open_db(b"absent", create=False)


def test_open_db_create_false_existing(env):
    env.open_db(b"named")
    assert env.open_db(b"named", create=False).name == b"named"


def test_open_db_plain_record_name(env):
    fill(env, [(b"plain", b"value")])
    with pytest.raises(lmdb.IncompatibleError):
        env.open_db(b"plain")


@pytest.mark.parametrize("name", [b"", "", b"a\0b", "a\0b"])
def test_open_db_invalid_name(env, name):
    with pytest.raises(ValueError, match="non-empty and contain no null byte"):
        env.open_db(name)


@pytest.mark.parametrize("name", [5, bytearray(b"named"), object()])
def test_open_db_wrong_name_type(env, name):
    with pytest.raises(TypeError, match="name must be str, bytes or None"):
        env.open_db(name)


def test_open_db_with_open_write_raises(env):
    with env.begin(write=True):
        with pytest.raises(lmdb.BadTxnError):
            env.open_db(b"named")


def test_open_db_repr(env):
    expected = f"<sharedb.lmdb.Database b'named' of {env.path!r}>"
    assert repr(env.open_db(b"named")) == expected


# ---------------------------------------------------------------------------
# close, context manager and properties


def test_close_sets_closed(env):
    env.close()
    assert env.closed is True


def test_closed_false_while_open(env):
    assert env.closed is False


def test_close_twice(env):
    env.close()
    assert env.close() is None


def test_context_manager_returns_env(tmp_path):
    env = lmdb.Environment(str(tmp_path / "env"))
    with env as entered:
        assert entered is env


def test_context_manager_closes(tmp_path):
    with lmdb.Environment(str(tmp_path / "env")) as env:
        pass
    assert env.closed is True


def test_context_manager_closes_on_error(tmp_path):
    env = lmdb.Environment(str(tmp_path / "env"))
    with pytest.raises(KeyError):
        with env:
            raise KeyError("boom")
    assert env.closed is True


def test_context_manager_closed_env(env):
    env.close()
    with pytest.raises(lmdb.ClosedError):
        with env:
            pass


def test_path_property(env, tmp_path):
    assert env.path == str(tmp_path / "env")


def test_path_after_close(env, tmp_path):
    env.close()
    assert env.path == str(tmp_path / "env")


def test_repr_open(env):
    assert repr(env) == f"<sharedb.lmdb.Environment {env.path!r}>"


def test_repr_closed(env):
    env.close()
    assert repr(env) == f"<sharedb.lmdb.Environment {env.path!r} (closed)>"


@pytest.mark.parametrize(
    "call",
    [
        lambda env: env.begin(),
        lambda env: env.begin(write=True),
        lambda env: env.stat(),
        lambda env: env.info(),
        lambda env: env.sync(),
        lambda env: env.set_sync(True),
        lambda env: env.set_mapsize(1 << 27),
        lambda env: env.max_key_size(),
        lambda env: env.max_readers(),
        lambda env: env.readers(),
        lambda env: env.reader_check(),
        lambda env: env.copy(env.path + "-copy"),
        lambda env: env.open_db(b"named"),
        lambda env: env.open_db(),
    ],
    ids=[
        "begin",
        "begin-write",
        "stat",
        "info",
        "sync",
        "set_sync",
        "set_mapsize",
        "max_key_size",
        "max_readers",
        "readers",
        "reader_check",
        "copy",
        "open_db",
        "open_db-main",
    ],
)
def test_closed_env_raises(env, call):
    env.close()
    with pytest.raises(lmdb.ClosedError, match="is closed"):
        call(env)


def test_closed_error_is_runtime_error():
    assert issubclass(lmdb.ClosedError, RuntimeError)


def test_closed_error_is_lmdb_error():
    assert issubclass(lmdb.ClosedError, lmdb.Error)


def test_env_weakref(env):
    assert weakref.ref(env)() is env


# ---------------------------------------------------------------------------
# Collection of an unclosed environment


def test_unclosed_env_warns_once(tmp_path):
    # The warning is shown and recorded, so any reference it keeps to the
    # environment outlives the environment's deallocation.
    result = run_python(
        """
        import gc, sys, warnings
        from sharedb import lmdb
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            env = lmdb.Environment(sys.argv[1])
            del env
            gc.collect()
        print(len(caught), caught[0].category.__name__, caught[0].message)
        del caught
        gc.collect()
        print("done")
        """,
        str(tmp_path / "env"),
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"1 ResourceWarning unclosed Environment {str(tmp_path / 'env')!r}",
        "done",
    ]


def test_unclosed_env_warning_printed(tmp_path):
    result = run_python(
        """
        import sys, warnings
        from sharedb import lmdb
        warnings.simplefilter("always")
        env = lmdb.Environment(sys.argv[1])
        del env
        print("done")
        """,
        str(tmp_path / "env"),
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr.count("ResourceWarning: unclosed Environment") == 1


def test_unclosed_env_releases_file(tmp_path):
    result = run_python(
        """
        import gc, sys, warnings
        from sharedb import lmdb
        warnings.simplefilter("ignore")
        env = lmdb.Environment(sys.argv[1])
        del env
        gc.collect()
        with lmdb.Environment(sys.argv[1]) as env:
            print(env.closed)
        """,
        str(tmp_path / "env"),
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "False\n"


def test_closed_env_collected_silently(tmp_path):
    result = run_python(
        """
        import gc, sys, warnings
        from sharedb import lmdb
        warnings.simplefilter("error")
        env = lmdb.Environment(sys.argv[1])
        env.close()
        del env
        gc.collect()
        print("done")
        """,
        str(tmp_path / "env"),
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
