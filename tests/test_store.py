"""Tests of the ShareDB class: opening, settings, methods and closing.

Expected messages are those of ShareDB 2.0.2 wherever 2.0.2 had one, so
that code written for 2.0.2 keeps working.
"""

from __future__ import annotations

import collections.abc
import configparser
import errno
import json
import os
import pathlib
import shutil
import subprocess
import sys
import threading
import time
import warnings

import pytest
from conftest import run_python

import sharedb
from sharedb import ShareDB, ShareDBWarning

CONFIG_SECTION = "ShareDB Config"
CONFIG_OPTIONS = ("serial", "compress", "readers", "bcsize", "mslimit")

# Seconds a child process may take to open a store and write one record.
# Far more than it needs, so that a timeout means it was blocked.
CHILD_WRITE_TIMEOUT = 20


def closed_message(db: ShareDB) -> str:
    return f"Access to ShareDB instantiated from {db.path} has been closed or dropped"


def read_config(store_dir: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser()
    with open(os.path.join(store_dir, "ShareDB.config"), encoding="utf-8") as file:
        parser.read_file(file)
    return parser


def write_from_child(
    store_dir: str, key: str, value: str
) -> subprocess.CompletedProcess:
    """Open the store in a new interpreter and set one record there.

    Fails the test if the child does not finish within CHILD_WRITE_TIMEOUT,
    which means that something held the write lock.
    """
    code = """
        import sys
        from sharedb import ShareDB

        db = ShareDB(sys.argv[1])
        db[sys.argv[2]] = sys.argv[3]
        db.close()
    """
    try:
        return run_python(code, store_dir, key, value, timeout=CHILD_WRITE_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(
            f"a write from another process did not finish in "
            f"{CHILD_WRITE_TIMEOUT} s: the write lock is held"
        )


# Opening: the path ----------------------------------------------------


@pytest.mark.parametrize("name", ["x", "x/", "x.ShareDB", "x.ShareDB/"])
def test_path_normalised_to_sharedb_dir(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    db = ShareDB("./" + name)
    try:
        assert db.path == "./x.ShareDB/"
        assert os.path.isdir(tmp_path / "x.ShareDB")
    finally:
        db.close()


def test_path_spellings_share_one_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with ShareDB("./x") as db:
        db["k"] = "v"
    for name in ("./x/", "./x.ShareDB", "./x.ShareDB/"):
        with ShareDB(name) as db:
            assert db["k"] == "v"
    assert os.listdir(tmp_path) == ["x.ShareDB"]


def test_path_relative_stays_relative(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with ShareDB("rel") as db:
        assert repr(db) == "ShareDB instantiated from rel.ShareDB/"


def test_path_accepts_pathlike(tmp_path):
    db = ShareDB(tmp_path / "p")
    try:
        assert db.path == f"{tmp_path}/p.ShareDB/"
        assert os.path.isdir(tmp_path / "p.ShareDB")
    finally:
        db.close()


def test_path_pathlike_same_store_as_str(tmp_path):
    with ShareDB(pathlib.Path(tmp_path, "p")) as db:
        db["k"] = 1
    with ShareDB(str(tmp_path / "p")) as db:
        assert db["k"] == 1


@pytest.mark.parametrize("path", [None, 123, 1.5])
def test_path_invalid_type_raises(tmp_path, path):
    with pytest.raises(TypeError) as info:
        ShareDB(path)
    message = str(info.value)
    assert "path" in message
    assert str(path) in message


def test_path_existing_file_raises(tmp_path):
    (tmp_path / "f.ShareDB").write_text("not a store")
    with pytest.raises(TypeError) as info:
        ShareDB(str(tmp_path / "f"))
    assert str(tmp_path / "f.ShareDB") in str(info.value)
    assert (tmp_path / "f.ShareDB").read_text() == "not a store"


def test_path_existing_file_is_valueerror(tmp_path):
    (tmp_path / "f.ShareDB").write_text("not a store")
    with pytest.raises(ValueError):
        ShareDB(str(tmp_path / "f"))


def test_path_uncreatable_directory_raises(tmp_path):
    (tmp_path / "plain-file").write_text("")
    path = str(tmp_path / "plain-file" / "sub")
    with pytest.raises(TypeError) as info:
        ShareDB(path)
    assert "plain-file" in str(info.value)


@pytest.mark.parametrize("name", ["x//", "x///", "x.ShareDB//"])
def test_path_repeated_slashes_stripped(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    with ShareDB(name) as db:
        assert db.path == "x.ShareDB/"
    assert os.listdir(tmp_path) == ["x.ShareDB"]


@pytest.mark.parametrize("name", [".ShareDB", ".ShareDB/", ".ShareDB//"])
def test_path_without_name_rejected(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(sharedb.InvalidArgumentError) as info:
        ShareDB(name)
    assert "does not name a store" in str(info.value)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name", ["/", "//"])
def test_path_root_directory_rejected(name):
    # The private path check is called directly: ShareDB(name) would
    # create /.ShareDB if the check let the name through.
    with pytest.raises(sharedb.InvalidArgumentError) as info:
        sharedb.store._store_path(name)
    assert "does not name a store" in str(info.value)


def test_path_broken_symlink_named(tmp_path):
    link = tmp_path / "s.ShareDB"
    link.symlink_to(tmp_path / "missing-target")
    with pytest.raises(sharedb.InvalidArgumentError) as info:
        ShareDB(str(tmp_path / "s"))
    assert "a broken symbolic link" in str(info.value)
    assert os.path.islink(link)


def test_path_broken_symlink_replaced_by_reset(open_store, tmp_path):
    link = tmp_path / "s.ShareDB"
    link.symlink_to(tmp_path / "missing-target")
    db = open_store("s", reset=True)
    db["k"] = "v"
    assert not os.path.islink(link)
    assert os.path.isdir(link)
    assert not os.path.exists(tmp_path / "missing-target")


def test_reset_replaces_directory_store(open_store, tmp_path):
    db = open_store("r", serial="msgpack")
    db["old"] = 1
    db.close()
    (tmp_path / "r.ShareDB" / "stray-file").write_text("x")
    db = open_store("r", reset=True)
    assert len(db) == 0
    assert db.serial == "pickle"
    assert not (tmp_path / "r.ShareDB" / "stray-file").exists()


def test_reset_replaces_file(open_store, tmp_path):
    (tmp_path / "f.ShareDB").write_text("not a store")
    db = open_store("f", reset=True)
    db["k"] = "v"
    assert os.path.isdir(tmp_path / "f.ShareDB")
    assert db["k"] == "v"


def test_reset_of_missing_path_creates(open_store, tmp_path):
    db = open_store("new", reset=True)
    assert len(db) == 0
    assert os.path.isdir(tmp_path / "new.ShareDB")


def test_open_positional_arguments_as_202(tmp_path):
    db = ShareDB(str(tmp_path / "pos"), True, "msgpack", True, 16, 777, 2**22)
    try:
        assert db.serial == "msgpack"
        assert db.compress is True
        assert db.max_readers == 16
        assert db.sync_threshold == 777
        assert db.max_map_size == 2**22
    finally:
        db.close()


def test_serial_case_insensitive_as_202(open_store):
    db = open_store(serial="MsgPack")
    assert db.serial == "msgpack"


# Opening: invalid arguments --------------------------------------------

# (keyword arguments, text naming the value, text naming what is accepted)
INVALID_ARGUMENTS = [
    ({"serial": "json"}, "json", "'msgpack' or 'pickle'"),
    ({"serial": 3}, "3", "'msgpack' or 'pickle'"),
    ({"serial": None}, "None", "'msgpack' or 'pickle'"),
    ({"compress": "maybe"}, "maybe", "True or False"),
    ({"compress": 2}, "2", "True or False"),
    ({"readers": 0}, "0", "positive int"),
    ({"readers": -3}, "-3", "positive int"),
    ({"readers": "many"}, "many", "positive int"),
    ({"readers": 2.5}, "2.5", "positive int"),
    ({"buffer_size": 0}, "0", "positive int"),
    ({"buffer_size": -1}, "-1", "positive int"),
    ({"buffer_size": 1.5}, "1.5", "positive int"),
    ({"buffer_size": "10"}, "10", "positive int"),
    ({"map_size": 0}, "0", "positive int"),
    ({"map_size": -4096}, "-4096", "positive int"),
    ({"map_size": "1"}, "1", "positive int"),
    ({"map_size": 2.0**30}, "1073741824.0", "positive int"),
]

# Maximum of each integer argument. The error message for a value out of
# range names it.
MAX_READERS = sharedb._config.MAX_READERS
MAX_BUFFER_SIZE = sharedb._config.MAX_SYNC_THRESHOLD
MAX_MAP_SIZE = sharedb._mapsize.max_map_size()

# (keyword arguments, maximum): integers out of range, from 0 to values
# that a C int, a C long or the address space cannot hold.
OUT_OF_RANGE_ARGUMENTS = [
    ({"readers": 0}, MAX_READERS),
    ({"readers": 2**31}, MAX_READERS),
    ({"readers": 10**30}, MAX_READERS),
    ({"buffer_size": 10**30}, MAX_BUFFER_SIZE),
    ({"map_size": 10**30}, MAX_MAP_SIZE),
]
OUT_OF_RANGE_IDS = [
    f"{name}={value!r}"
    for kwargs, _ in OUT_OF_RANGE_ARGUMENTS
    for name, value in kwargs.items()
]
INVALID_IDS = [
    f"{name}={value!r}"
    for kwargs, _, _ in INVALID_ARGUMENTS
    for name, value in kwargs.items()
]


@pytest.mark.parametrize(
    ("kwargs", "value_text", "accepted"), INVALID_ARGUMENTS, ids=INVALID_IDS
)
def test_invalid_argument_raises_typeerror(tmp_path, kwargs, value_text, accepted):
    with pytest.raises(TypeError):
        ShareDB(str(tmp_path / "bad"), **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "value_text", "accepted"), INVALID_ARGUMENTS, ids=INVALID_IDS
)
def test_invalid_argument_is_valueerror(tmp_path, kwargs, value_text, accepted):
    with pytest.raises(ValueError):
        ShareDB(str(tmp_path / "bad"), **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "value_text", "accepted"), INVALID_ARGUMENTS, ids=INVALID_IDS
)
def test_invalid_argument_message_names_all(tmp_path, kwargs, value_text, accepted):
    (name,) = kwargs
    with pytest.raises(TypeError) as info:
        ShareDB(str(tmp_path / "bad"), **kwargs)
    message = str(info.value)
    assert name in message
    assert value_text in message
    assert accepted in message


@pytest.mark.parametrize(
    "kwargs", [kwargs for kwargs, _, _ in INVALID_ARGUMENTS], ids=INVALID_IDS
)
def test_invalid_argument_leaves_path_usable(tmp_path, kwargs):
    with pytest.raises(TypeError):
        ShareDB(str(tmp_path / "bad"), **kwargs)
    with ShareDB(str(tmp_path / "bad")) as db:
        db["k"] = "v"
        assert db["k"] == "v"


@pytest.mark.parametrize(
    ("kwargs", "maximum"), OUT_OF_RANGE_ARGUMENTS, ids=OUT_OF_RANGE_IDS
)
def test_out_of_range_argument_rejected(tmp_path, kwargs, maximum):
    with pytest.raises(sharedb.InvalidArgumentError):
        ShareDB(str(tmp_path / "bad"), **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "maximum"), OUT_OF_RANGE_ARGUMENTS, ids=OUT_OF_RANGE_IDS
)
def test_out_of_range_argument_message_names_maximum(tmp_path, kwargs, maximum):
    ((name, value),) = kwargs.items()
    with pytest.raises(sharedb.InvalidArgumentError) as info:
        ShareDB(str(tmp_path / "bad"), **kwargs)
    message = str(info.value)
    assert name in message
    assert f"at most {maximum}" in message
    assert f"not {value}" in message


@pytest.mark.parametrize(
    ("kwargs", "maximum"), OUT_OF_RANGE_ARGUMENTS, ids=OUT_OF_RANGE_IDS
)
def test_out_of_range_argument_keeps_saved_config(
    open_store, tmp_path, kwargs, maximum
):
    db = open_store("kept")
    db["k"] = "v"
    db.close()
    config_file = tmp_path / "kept.ShareDB" / "ShareDB.config"
    saved_text = config_file.read_text()
    with pytest.raises(sharedb.InvalidArgumentError):
        ShareDB(str(tmp_path / "kept"), **kwargs)
    assert config_file.read_text() == saved_text
    assert open_store("kept")["k"] == "v"


def test_config_readers_out_of_range_raises(open_store, tmp_path):
    open_store("c").close()
    config_file = tmp_path / "c.ShareDB" / "ShareDB.config"
    text = config_file.read_text()
    assert "readers = 256\n" in text
    config_file.write_text(text.replace("readers = 256\n", "readers = 99999999999\n"))
    with pytest.raises(sharedb.ConfigError) as info:
        ShareDB(str(tmp_path / "c"))
    message = str(info.value)
    assert str(config_file) in message
    assert "'readers'" in message
    assert f"at most {MAX_READERS}" in message


# Opening: the saved config -----------------------------------------------


def test_config_exact_202_format(open_store, tmp_path):
    open_store(
        "c",
        serial="msgpack",
        compress=True,
        readers=16,
        buffer_size=777,
        map_size=4194304,
    )
    text = (tmp_path / "c.ShareDB" / "ShareDB.config").read_text()
    expected_prefix = (
        "[ShareDB Config]\n"
        "serial = msgpack\n"
        "compress = True\n"
        "readers = 16\n"
        "bcsize = 777\n"
        "mslimit = 4194304\n"
    )
    assert text.startswith(expected_prefix)
    assert text.endswith("\n\n")


def test_config_has_one_section(open_store, tmp_path):
    open_store("c")
    parser = read_config(str(tmp_path / "c.ShareDB"))
    assert parser.sections() == [CONFIG_SECTION]


@pytest.mark.parametrize("option", CONFIG_OPTIONS)
def test_config_has_202_option(open_store, tmp_path, option):
    open_store("c")
    parser = read_config(str(tmp_path / "c.ShareDB"))
    assert parser.has_option(CONFIG_SECTION, option)


def test_config_values_of_arguments(open_store, tmp_path):
    open_store(
        "c", serial="msgpack", compress=True, readers=7, buffer_size=9, map_size=2**23
    )
    options = dict(read_config(str(tmp_path / "c.ShareDB")).items(CONFIG_SECTION))
    assert options["serial"] == "msgpack"
    assert options["compress"] == "True"
    assert options["readers"] == "7"
    assert options["bcsize"] == "9"
    assert options["mslimit"] == str(2**23)


def test_config_defaults_saved(open_store, tmp_path):
    open_store("c")
    options = dict(read_config(str(tmp_path / "c.ShareDB")).items(CONFIG_SECTION))
    assert options["serial"] == "pickle"
    assert options["compress"] == "False"
    assert options["readers"] == "256"
    assert options["bcsize"] == "100000"


def test_config_mslimit_disk_size_uncapped(open_store, tmp_path):
    open_store("c", map_size=None)
    store_dir = str(tmp_path / "c.ShareDB")
    options = dict(read_config(store_dir).items(CONFIG_SECTION))
    assert options["mslimit"] == str(shutil.disk_usage(store_dir).total)


# Reopening ---------------------------------------------------------------


def test_reopen_uses_saved_serial_compress(open_store):
    db = open_store("s", serial="msgpack", compress=True)
    db["k"] = ("a", 1)
    db.close()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ShareDBWarning)
        db = open_store("s", serial="pickle", compress=False)
    assert db.serial == "msgpack"
    assert db.compress is True
    assert db["k"] == ["a", 1]


def test_reopen_without_arguments_uses_saved(open_store):
    open_store("s", serial="msgpack", compress=True).close()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ShareDBWarning)
        db = open_store("s")
    assert db.serial == "msgpack"
    assert db.compress is True


def test_reopen_matching_arguments_no_warning(open_store):
    open_store("s", serial="msgpack", compress=True).close()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ShareDBWarning)
        db = open_store("s", serial="msgpack", compress=True)
    assert db.serial == "msgpack"


def test_reopen_other_serial_warns_both(open_store):
    open_store("s", serial="msgpack").close()
    with pytest.warns(ShareDBWarning) as record:
        open_store("s", serial="pickle")
    messages = [str(warning.message) for warning in record]
    assert len(messages) == 1
    assert "serial" in messages[0]
    assert "msgpack" in messages[0]
    assert "pickle" in messages[0]


def test_reopen_other_compress_warns_both(open_store):
    open_store("s", compress=True).close()
    with pytest.warns(ShareDBWarning) as record:
        open_store("s", compress=False)
    messages = [str(warning.message) for warning in record]
    assert len(messages) == 1
    assert "compress" in messages[0]
    assert "True" in messages[0]
    assert "False" in messages[0]


def test_reopen_warning_points_at_caller(open_store):
    db = open_store("s", serial="msgpack")
    db.close()
    with pytest.warns(ShareDBWarning) as record:
        ShareDB(db.path, serial="pickle").close()
    assert record[0].filename == __file__


def test_reopen_larger_map_size_takes_effect(open_store):
    open_store("m", map_size=2**20).close()
    db = open_store("m", map_size=2**24)
    payload = os.urandom(4096)
    db.multiset((i, payload) for i in range(1000))
    assert db.max_map_size == 2**24
    assert len(db) == 1000


def test_reopen_larger_map_size_saved(open_store, tmp_path):
    open_store("m", map_size=2**20).close()
    open_store("m", map_size=2**24).close()
    options = dict(read_config(str(tmp_path / "m.ShareDB")).items(CONFIG_SECTION))
    assert options["mslimit"] == str(2**24)
    db = open_store("m")
    assert db.max_map_size == 2**24


# Reopening a damaged data file ---------------------------------------------

# Opens the store argv[1], reads every record if the open succeeds, and
# prints how it went as JSON. A crash (SIGBUS on a page past the end of
# the file) ends the child with a negative return code instead.
OPEN_AND_READ = """
    import json
    import sys

    from sharedb import ShareDB, lmdb

    try:
        db = ShareDB(sys.argv[1])
    except Exception as error:
        print(json.dumps({
            "opened": False,
            "error": type(error).__name__,
            "is_corrupted": isinstance(error, lmdb.CorruptedError),
            "message": str(error),
        }))
    else:
        records = sum(1 for _ in db.items())
        print(json.dumps({"opened": True, "records": records}))
"""


def test_truncated_data_file_rejected_at_open(open_store, tmp_path):
    db = open_store("whole")
    db.multiset((number, os.urandom(200)) for number in range(5000))
    used_bytes = (db._env.info()["last_pgno"] + 1) * db._env.stat()["psize"]
    db.close()
    shutil.copytree(tmp_path / "whole.ShareDB", tmp_path / "cut.ShareDB")
    data_file = tmp_path / "cut.ShareDB" / "data.mdb"
    cut_size = os.path.getsize(data_file) // 2
    assert cut_size < used_bytes, "the cut must remove pages in use"
    os.truncate(data_file, cut_size)

    result = run_python(OPEN_AND_READ, str(tmp_path / "cut"))

    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["opened"] is False, outcome
    assert outcome["is_corrupted"] is True, outcome
    assert "truncated" in outcome["message"]


def test_copied_data_file_opens_whole(open_store, tmp_path):
    db = open_store("whole")
    db.multiset((number, os.urandom(200)) for number in range(5000))
    db.close()
    shutil.copytree(tmp_path / "whole.ShareDB", tmp_path / "copy.ShareDB")

    result = run_python(OPEN_AND_READ, str(tmp_path / "copy"))

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"opened": True, "records": 5000}


def test_emptied_data_file_raises_corrupted(open_store, tmp_path):
    db = open_store("emptied")
    db["k"] = "v"
    db.close()
    data_file = tmp_path / "emptied.ShareDB" / "data.mdb"
    os.truncate(data_file, 0)
    assert (tmp_path / "emptied.ShareDB" / "ShareDB.config").exists()
    with pytest.raises(sharedb.lmdb.CorruptedError) as info:
        ShareDB(str(tmp_path / "emptied"))
    assert str(data_file) in str(info.value)
    assert os.path.getsize(data_file) == 0


# Attributes, repr and str ------------------------------------------------


def test_attributes_after_open(open_store, tmp_path):
    db = open_store(
        "a",
        serial="msgpack",
        compress=True,
        readers=16,
        buffer_size=777,
        map_size=2**22,
    )
    assert db.path == f"{tmp_path}/a.ShareDB/"
    assert db.is_alive is True
    assert db.serial == "msgpack"
    assert db.compress is True
    assert db.max_readers == 16
    assert db.sync_threshold == 777
    assert db.pending_writes == 0
    assert db.max_map_size == 2**22


def test_attributes_defaults(open_store, tmp_path):
    db = open_store("a")
    assert db.serial == "pickle"
    assert db.compress is False
    assert db.max_readers == 256
    assert db.sync_threshold == 100_000
    assert db.max_map_size == shutil.disk_usage(tmp_path).total


def test_readers_sets_reader_slots(open_store):
    db = open_store("a", readers=16)
    assert db._env.info()["max_readers"] == 16


def test_map_size_sets_max_map_size(open_store):
    db = open_store("a", map_size=2**22)
    assert db.max_map_size == 2**22


def test_attributes_is_alive_after_close(open_store):
    db = open_store()
    db.close()
    assert db.is_alive is False


def test_version_of_class_and_package():
    assert isinstance(sharedb.__version__, str)
    assert ShareDB.__version__ == sharedb.__version__


def test_repr_names_path(open_store, tmp_path):
    db = open_store("r")
    assert repr(db) == f"ShareDB instantiated from {tmp_path}/r.ShareDB/"


def test_str_names_path(open_store, tmp_path):
    db = open_store("r")
    assert str(db) == f"ShareDB instantiated from {tmp_path}/r.ShareDB/"


def test_repr_unchanged_after_close(open_store, tmp_path):
    db = open_store("r")
    db.close()
    assert repr(db) == f"ShareDB instantiated from {tmp_path}/r.ShareDB/"


def test_store_is_mutable_mapping(db):
    assert isinstance(db, collections.abc.MutableMapping)


# Return values and chaining ---------------------------------------------


def test_set_returns_self(db):
    assert db.set("k", "v") is db


def test_setitem_returns_none(db):
    assert db.__setitem__("k", "v") is None


def test_set_chains(db):
    db.set(1, 2).set(3, 4).sync()
    assert db[1] == 2
    assert db[3] == 4


def test_set_overwrites(db):
    db["k"] = "old"
    db["k"] = "new"
    assert db["k"] == "new"
    assert len(db) == 1


def test_multiset_returns_self(db):
    assert db.multiset([("a", 1)]) is db


def test_update_returns_self(db):
    assert db.update({"a": 1}) is db


def test_remove_returns_self(db):
    db["k"] = 1
    assert db.remove("k") is db


def test_delitem_returns_none(db):
    db["k"] = 1
    assert db.__delitem__("k") is None


def test_multiremove_returns_self(db):
    assert db.multiremove(["a"]) is db


def test_sync_returns_self(db):
    assert db.sync() is db


def test_clear_returns_self(db):
    assert db.clear() is db


def test_chain_of_every_self_method(db):
    result = (
        db.set("a", 1)
        .multiset([("b", 2), ("c", 3)])
        .update({"d": 4})
        .remove("a")
        .multiremove(["b"])
        .sync()
    )
    assert result is db
    assert sorted(db.keys()) == ["c", "d"]


# Reading -------------------------------------------------------------------


def test_get_present_key(db):
    db["k"] = "v"
    assert db.get("k") == "v"


def test_get_absent_returns_none(db):
    assert db.get("absent") is None


def test_get_absent_returns_default(db):
    assert db.get("absent", "fallback") == "fallback"


@pytest.mark.parametrize("value", ["", b"", 0, 0.0, False, [], {}])
def test_getitem_falsy_values_read_back(db, value):
    db["k"] = value
    assert db["k"] == value


@pytest.mark.parametrize(
    ("key", "text"),
    [
        ("zz", "key=zz of <class 'str'> is absent"),
        (b"ab", "key=b'ab' of <class 'bytes'> is absent"),
        (("a", 1), "key=('a', 1) of <class 'tuple'> is absent"),
        (49.0, "key=49.0 of <class 'float'> is absent"),
        (7, "key=7 of <class 'int'> is absent"),
        ("x" * 300, f"key={'x' * 300} of <class 'str'> is absent"),
    ],
    ids=["str", "bytes", "tuple", "float", "int", "long-str"],
)
def test_getitem_absent_keyerror_message(db, key, text):
    with pytest.raises(KeyError) as info:
        db[key]
    assert info.value.args == (text,)


def test_has_key_true_and_false(db):
    db["k"] = 1
    assert db.has_key("k") is True
    assert db.has_key("absent") is False


def test_contains_true_and_false(db):
    db["k"] = 1
    assert ("k" in db) is True
    assert ("absent" in db) is False


def test_length_and_len(db):
    db.multiset((i, i) for i in range(5))
    assert db.length() == 5
    assert len(db) == 5


def test_length_of_empty_store(db):
    assert len(db) == 0


def test_multiget_values_and_default(db):
    db.multiset([("a", 1), ("b", 2)])
    assert list(db.multiget(["b", "absent", "a"])) == [2, None, 1]
    assert list(db.multiget(["absent", "a"], default=0)) == [0, 1]


class Fragile:
    """A value whose unpickling fails while Fragile.broken is true."""

    broken = False

    def __getstate__(self):
        return {"part": 1}

    def __setstate__(self, state):
        if Fragile.broken:
            raise ValueError("cannot rebuild this value")
        self.__dict__.update(state)


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "zlib"])
def test_multiget_unreadable_value_ends_results(open_store, compress, monkeypatch):
    db = open_store(serial="pickle", compress=compress)
    db.multiset((number, number * 10) for number in range(10))
    db[7] = Fragile()
    monkeypatch.setattr(Fragile, "broken", True)
    results = []

    with pytest.raises(TypeError, match="cannot be read"):
        for value in db.multiget([3, 1, 7, 2]):
            results.append(value)

    # The values of the keys before the unreadable one come out first,
    # in the order asked, whatever the order of the lookups.
    assert results == [30, 10]
    assert list(db.has_multikey([3, 7, 11])) == [True, True, False]


class Reentrant:
    """A value whose unpickling calls next() on Reentrant.iterator."""

    iterator = None
    errors: list = []

    def __getstate__(self):
        return {"part": 1}

    def __setstate__(self, state):
        if Reentrant.iterator is not None:
            try:
                next(Reentrant.iterator)
            except ValueError as exc:
                Reentrant.errors.append(str(exc))
        self.__dict__.update(state)


@pytest.mark.parametrize("method", ["multiget", "values"])
def test_iterator_reentered_while_decoding_raises(open_store, method, monkeypatch):
    db = open_store(serial="pickle")
    db["k"] = Reentrant()
    monkeypatch.setattr(Reentrant, "errors", [])
    iterator = db.multiget(["k"]) if method == "multiget" else db.values()
    monkeypatch.setattr(Reentrant, "iterator", iterator)

    values = list(iterator)

    assert len(values) == 1
    assert isinstance(values[0], Reentrant)
    assert Reentrant.errors == ["this iterator is already running a next() call"]


def test_multiget_returns_iterator(db):
    result = db.multiget(["a"])
    assert iter(result) is result


def test_multiget_one_read_transaction(db):
    db.multiset([("a", 1), ("b", 1)])
    iterator = db.multiget(["a", "b"])
    assert next(iterator) == 1
    db["b"] = 2
    assert next(iterator) == 1


def test_has_multikey_one_read_transaction(db):
    db.multiset([("a", 1), ("b", 1)])
    iterator = db.has_multikey(["a", "b"])
    assert next(iterator) is True
    del db["b"]
    assert next(iterator) is True


def test_has_multikey_bools(db):
    db["a"] = 1
    result = db.has_multikey(["a", "absent", "a"])
    assert iter(result) is result
    assert list(result) == [True, False, True]


# Removing ----------------------------------------------------------------


def test_remove_present_key(db):
    db.multiset([("a", 1), ("b", 2)])
    db.remove("a")
    assert "a" not in db
    assert len(db) == 1


def test_remove_absent_key_noop(db):
    db["a"] = 1
    db.remove("absent")
    assert len(db) == 1


def test_delitem_present_key(db):
    db["a"] = 1
    del db["a"]
    assert "a" not in db


def test_delitem_absent_key_noop(db):
    db["a"] = 1
    del db["absent"]
    assert len(db) == 1


def test_multiremove_present_and_absent(db):
    db.multiset((i, i) for i in range(5))
    db.multiremove([0, 2, "absent", 4])
    assert sorted(db.keys()) == [1, 3]


def test_multiremove_all_or_nothing(db):
    db.multiset([("a", 1), ("b", 2)])
    with pytest.raises(TypeError):
        db.multiremove(["a", None, "b"])
    assert len(db) == 2


def test_multiremove_iterator_failure_rolls_back(db):
    db.multiset([("a", 1), ("b", 2)])

    def keys():
        yield "a"
        raise OSError("source of keys failed")

    with pytest.raises(OSError):
        db.multiremove(keys())
    assert "a" in db


# pop, popitem, multipop and multipopitem ---------------------------------


def test_pop_present_key(db):
    db["k"] = "v"
    assert db.pop("k") == "v"
    assert "k" not in db


def test_pop_absent_keyerror_message(db):
    with pytest.raises(KeyError) as info:
        db.pop("zz")
    assert info.value.args == ("key=zz of <class 'str'> is absent",)


def test_pop_absent_returns_default(db):
    assert db.pop("absent", "fallback") == "fallback"


def test_pop_absent_default_none(db):
    assert db.pop("absent", None) is None


def test_pop_default_keyword(db):
    assert db.pop("absent", default="fallback") == "fallback"


def test_pop_present_ignores_default(db):
    db["k"] = "v"
    assert db.pop("k", "fallback") == "v"
    assert len(db) == 0


def test_popitem_first_in_key_order(db):
    db.multiset([("b", 2), ("a", 1), ("c", 3)])
    assert db.popitem() == ("a", 1)
    assert sorted(db.keys()) == ["b", "c"]


def test_popitem_until_empty(db):
    db.multiset([(2, "two"), (1, "one")])
    popped = [db.popitem(), db.popitem()]
    assert sorted(popped) == [(1, "one"), (2, "two")]
    assert len(db) == 0


def test_popitem_empty_store_keyerror(db):
    with pytest.raises(KeyError) as info:
        db.popitem()
    assert info.value.args == ("popitem(): ShareDB is empty",)


def test_multipopitem_default_one(db):
    db.multiset([("b", 2), ("a", 1)])
    assert list(db.multipopitem()) == [("a", 1)]
    assert list(db.keys()) == ["b"]


@pytest.mark.parametrize("num_items", [3, 3.0])
def test_multipopitem_count_int_or_float(db, num_items):
    db.multiset((f"k{i}", i) for i in range(5))
    popped = list(db.multipopitem(num_items))
    assert popped == [("k0", 0), ("k1", 1), ("k2", 2)]
    assert sorted(db.keys()) == ["k3", "k4"]


def test_multipopitem_more_than_stored(db):
    db.multiset((f"k{i}", i) for i in range(3))
    assert len(list(db.multipopitem(15))) == 3
    assert len(db) == 0


def test_multipopitem_length_as_float(db):
    db.multiset((i, i) for i in range(10))
    assert len(list(db.multipopitem(len(db) * 1.0))) == 10
    assert 1 not in db


def test_multipopitem_empty_store(db):
    assert list(db.multipopitem(3)) == []


@pytest.mark.parametrize("num_items", ["x", None, [1]])
def test_multipopitem_invalid_type_message(db, num_items):
    with pytest.raises(TypeError) as info:
        list(db.multipopitem(num_items))
    assert info.value.args == (
        f"num_items={num_items} of {type(num_items)} must be an integer/long/float",
    )


def test_multipopitem_removes_as_handed_out(db):
    db.multiset((f"k{i}", i) for i in range(4))
    iterator = db.multipopitem(3)
    assert next(iterator) == ("k0", 0)
    assert "k0" not in db
    assert "k1" in db
    assert len(db) == 3


def test_multipopitem_stopping_early_keeps_rest(db):
    db.multiset((f"k{i}", i) for i in range(4))
    iterator = db.multipopitem(3)
    next(iterator)
    iterator.close()
    assert sorted(db.keys()) == ["k1", "k2", "k3"]


def test_multipop_values_in_order(db):
    db.multiset([("a", 1), ("b", 2), ("c", 3)])
    assert list(db.multipop(["c", "a"])) == [3, 1]
    assert list(db.keys()) == ["b"]


def test_multipop_removes_as_handed_out(db):
    db.multiset([("a", 1), ("b", 2), ("c", 3)])
    iterator = db.multipop(["a", "b"])
    assert next(iterator) == 1
    assert "a" not in db
    assert "b" in db


def test_multipop_stopping_early_keeps_rest(db):
    db.multiset([("a", 1), ("b", 2), ("c", 3)])
    iterator = db.multipop(["a", "b", "c"])
    next(iterator)
    del iterator
    assert sorted(db.keys()) == ["b", "c"]


def test_multipop_absent_key_raises_at_step(db):
    db.multiset([("a", 1), ("b", 2)])
    iterator = db.multipop(["a", "absent", "b"])
    assert next(iterator) == 1
    with pytest.raises(KeyError):
        next(iterator)
    assert "a" not in db
    assert db["b"] == 2


def test_multipop_absent_key_message(db):
    with pytest.raises(KeyError) as info:
        list(db.multipop(["zz"]))
    assert info.value.args == (
        "Given key_iter=['zz'] of <class 'list'>, raised: "
        "\"key=zz of <class 'str'> is absent\"",
    )


# multiset and update -------------------------------------------------------


def test_empty_batches_change_nothing(db):
    db["a"] = 1
    assert db.multiset([]) is db
    assert db.update() is db
    assert db.multiremove([]) is db
    assert list(db.multiget([])) == []
    assert list(db.multipop([])) == []
    assert list(db.items()) == [("a", 1)]


def test_multiset_stores_all_pairs(db):
    db.multiset((f"k{i}", i) for i in range(50))
    assert len(db) == 50
    assert db["k49"] == 49


@pytest.mark.parametrize(
    "bad_pair",
    [("bad", None), (None, "value"), 5, ("one",), ("a", "b", "c")],
    ids=["none-value", "none-key", "not-a-pair", "short-pair", "long-pair"],
)
def test_multiset_bad_pair_stores_nothing(db, bad_pair):
    db["a"] = "old"
    pairs = [("a", "new"), ("b", 1), bad_pair, ("c", 2)]
    with pytest.raises((TypeError, ValueError)):
        db.multiset(pairs)
    assert db["a"] == "old"
    assert "b" not in db
    assert "c" not in db
    assert len(db) == 1


def test_multiset_unserializable_stores_nothing(db):
    def unserializable():
        return None

    pairs = [("a", 1), ("b", unserializable), ("c", 2)]
    with pytest.raises(TypeError):
        db.multiset(pairs)
    assert len(db) == 0


def test_multiset_iterator_failure_stores_nothing(db):
    def pairs():
        yield ("a", 1)
        raise OSError("source of pairs failed")

    with pytest.raises(OSError):
        db.multiset(pairs())
    assert len(db) == 0


def test_multiset_none_value_message(db):
    with pytest.raises(Exception) as info:
        db.multiset([("x", 1), ("y", None)])
    assert info.value.args == (
        "Given kv_iter=[('x', 1), ('y', None)] of <class 'list'>, raised: "
        "ShareDB cannot use <class 'NoneType'> objects as values",
    )


def test_multiset_not_pairs_message(db):
    with pytest.raises(Exception) as info:
        db.multiset([1, 2])
    assert info.value.args == (
        "Given kv_iter=[1, 2] of <class 'list'>, raised: "
        "cannot unpack non-iterable int object",
    )


def test_multiset_not_iterable_message(db):
    with pytest.raises(Exception) as info:
        db.multiset(5)
    assert info.value.args == (
        "Given kv_iter=5 of <class 'int'>, raised: 'int' object is not iterable",
    )


def test_update_with_mapping(db):
    db.update({"a": 1, "b": 2})
    assert db["a"] == 1
    assert db["b"] == 2


def test_update_with_pairs(db):
    db.update([("a", 1), ("b", 2)])
    assert db["a"] == 1
    assert db["b"] == 2


def test_update_with_keywords(db):
    db.update(a=1, b=2)
    assert db["a"] == 1
    assert db["b"] == 2


def test_update_mapping_and_keywords(db):
    db.update({"a": 1, "b": 2}, b=3, c=4)
    assert db["a"] == 1
    assert db["b"] == 3
    assert db["c"] == 4


def test_update_with_another_store(db, open_store):
    other = open_store("other")
    other.multiset([("a", 1), ("b", 2)])
    db.update(other)
    assert db["a"] == 1
    assert db["b"] == 2


def test_update_bad_pair_stores_nothing(db):
    with pytest.raises(TypeError):
        db.update([("a", 1), ("b", None), ("c", 3)])
    assert len(db) == 0


def test_update_bad_keyword_stores_nothing(db):
    with pytest.raises(TypeError):
        db.update({"a": 1}, b=None)
    assert len(db) == 0


# Exceptions raised by the caller's code ---------------------------------------


class Interrupt(BaseException):
    """A BaseException that is neither KeyboardInterrupt nor SystemExit."""


BASE_EXCEPTIONS = [KeyboardInterrupt, SystemExit, Interrupt]


class FailingKey:
    """A key whose pickling raises the given exception from __reduce__."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __reduce__(self):
        raise self.error


class FailingValue:
    """A value whose pickling raises the given exception from __getstate__."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __getstate__(self):
        raise self.error


def pairs_then_raise(error: BaseException):
    yield ("new", 1)
    raise error


def keys_then_raise(error: BaseException):
    yield "kept"
    raise error


# Calls on a store that contains only "kept". The caller's code raises
# error while the store serializes a key or a value, or reads the iterable.
FAILING_CALLS = {
    "set-key": lambda db, error: db.set(FailingKey(error), 1),
    "set-value": lambda db, error: db.set("new", FailingValue(error)),
    "setitem-value": lambda db, error: db.__setitem__("new", FailingValue(error)),
    "setdefault-value": lambda db, error: db.setdefault("new", FailingValue(error)),
    "multiset-key": lambda db, error: db.multiset(
        [("new", 1), (FailingKey(error), 1)]
    ),
    "multiset-value": lambda db, error: db.multiset(
        [("new", 1), ("other", FailingValue(error))]
    ),
    "multiset-iterator": lambda db, error: db.multiset(pairs_then_raise(error)),
    "update-value": lambda db, error: db.update(
        {"new": 1, "other": FailingValue(error)}
    ),
    "update-iterator": lambda db, error: db.update(pairs_then_raise(error)),
    "multiget-key": lambda db, error: list(db.multiget(["kept", FailingKey(error)])),
    "multiget-iterator": lambda db, error: list(db.multiget(keys_then_raise(error))),
    "has_multikey-iterator": lambda db, error: list(
        db.has_multikey(keys_then_raise(error))
    ),
    "multiremove-key": lambda db, error: db.multiremove(["kept", FailingKey(error)]),
    "multiremove-iterator": lambda db, error: db.multiremove(keys_then_raise(error)),
}
BASE_EXCEPTION_IDS = [exception_class.__name__ for exception_class in BASE_EXCEPTIONS]


@pytest.mark.parametrize("call", list(FAILING_CALLS))
@pytest.mark.parametrize("exception_class", BASE_EXCEPTIONS, ids=BASE_EXCEPTION_IDS)
def test_base_exception_propagates_unchanged(open_store, exception_class, call):
    db = open_store(serial="pickle")
    db["kept"] = "old"
    error = exception_class("raised by the caller's code")
    with pytest.raises(exception_class) as info:
        FAILING_CALLS[call](db, error)
    assert info.value is error


@pytest.mark.parametrize("call", list(FAILING_CALLS))
@pytest.mark.parametrize("exception_class", BASE_EXCEPTIONS, ids=BASE_EXCEPTION_IDS)
def test_base_exception_writes_nothing(open_store, exception_class, call):
    db = open_store(serial="pickle")
    db["kept"] = "old"
    with pytest.raises(exception_class):
        FAILING_CALLS[call](db, exception_class("raised by the caller's code"))
    assert dict(db.items()) == {"kept": "old"}


def test_system_exit_in_iterator_keeps_status(tmp_path):
    result = run_python(
        """
        import sys

        from sharedb import ShareDB

        def pairs():
            yield (1, 1)
            sys.exit(3)

        db = ShareDB(sys.argv[1])
        db.multiset(pairs())
        """,
        str(tmp_path / "exit"),
    )
    assert result.returncode == 3
    assert result.stderr == ""


class QuotaExceeded(Exception):
    """An exception whose __init__ requires other arguments than a message."""

    def __init__(self, user: str, limit: int) -> None:
        super().__init__(f"{user} is over the quota of {limit}")
        self.user = user
        self.limit = limit


# name: (function returning a new exception, attributes it must keep)
ITERATOR_ERRORS = {
    "custom-init": (lambda: QuotaExceeded("bob", 10), ("user", "limit")),
    "oserror-errno": (
        lambda: OSError(errno.EIO, "Input/output error", "input.csv"),
        ("errno", "strerror", "filename"),
    ),
    "unicode-decode": (
        lambda: UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
        ("encoding", "object", "start", "end", "reason"),
    ),
}

# name: (call on a store and an iterable, generator function that yields
# one item and then raises the given exception)
ITERATOR_CALLS = {
    "multiset": (lambda db, iterable: db.multiset(iterable), pairs_then_raise),
    "update": (lambda db, iterable: db.update(iterable), pairs_then_raise),
    "multiget": (lambda db, iterable: list(db.multiget(iterable)), keys_then_raise),
    "has_multikey": (
        lambda db, iterable: list(db.has_multikey(iterable)),
        keys_then_raise,
    ),
    "multiremove": (lambda db, iterable: db.multiremove(iterable), keys_then_raise),
}


def raise_from_iterator(db: ShareDB, call: str, error: BaseException):
    """Run call with a generator that raises error, and return the
    generator and the exception that call raised."""
    method, generator_function = ITERATOR_CALLS[call]
    iterable = generator_function(error)
    with pytest.raises(BaseException) as info:
        method(db, iterable)
    return iterable, info.value


@pytest.mark.parametrize("call", list(ITERATOR_CALLS))
@pytest.mark.parametrize("error_name", list(ITERATOR_ERRORS))
def test_iterator_error_keeps_class(db, error_name, call):
    error = ITERATOR_ERRORS[error_name][0]()
    _, raised = raise_from_iterator(db, call, error)
    assert type(raised) is type(error)


@pytest.mark.parametrize("call", list(ITERATOR_CALLS))
@pytest.mark.parametrize("error_name", list(ITERATOR_ERRORS))
def test_iterator_error_keeps_args(db, error_name, call):
    error = ITERATOR_ERRORS[error_name][0]()
    expected_args = error.args
    _, raised = raise_from_iterator(db, call, error)
    assert raised.args == expected_args


@pytest.mark.parametrize("call", list(ITERATOR_CALLS))
@pytest.mark.parametrize("error_name", list(ITERATOR_ERRORS))
def test_iterator_error_keeps_attributes(db, error_name, call):
    make_error, names = ITERATOR_ERRORS[error_name]
    error = make_error()
    expected = {name: getattr(error, name) for name in names}
    _, raised = raise_from_iterator(db, call, error)
    assert {name: getattr(raised, name, "missing") for name in names} == expected


@pytest.mark.skipif(
    sys.version_info < (3, 11), reason="exception notes are new in Python 3.11"
)
@pytest.mark.parametrize("call", list(ITERATOR_CALLS))
@pytest.mark.parametrize("error_name", list(ITERATOR_ERRORS))
def test_iterator_error_note_names_iterable(db, error_name, call):
    error = ITERATOR_ERRORS[error_name][0]()
    iterable, raised = raise_from_iterator(db, call, error)
    notes = getattr(raised, "__notes__", [])
    assert any(str(iterable) in note for note in notes), notes


# setdefault ------------------------------------------------------------------


def test_setdefault_inserts_absent(db):
    assert db.setdefault("k", "default") == "default"
    assert db["k"] == "default"


def test_setdefault_keeps_present(db):
    db["k"] = "stored"
    assert db.setdefault("k", "default") == "stored"
    assert db["k"] == "stored"


def test_setdefault_none_default_message(db):
    with pytest.raises(TypeError) as info:
        db.setdefault("k", None)
    assert info.value.args == (
        "ShareDB cannot use <class 'NoneType'> objects as values",
    )


def test_setdefault_one_winner_across_processes(open_store, tmp_path):
    """Processes racing to setdefault one key all get the first value."""
    open_store("race").close()
    store_dir = str(tmp_path / "race.ShareDB")
    go_file = tmp_path / "go"
    code = """
        import os, sys, time
        from sharedb import ShareDB

        store_dir, name, go_file = sys.argv[1:]
        db = ShareDB(store_dir)
        open(os.path.join(os.path.dirname(go_file), "ready-" + name), "w").close()
        while not os.path.exists(go_file):
            time.sleep(0.001)
        print(db.setdefault("winner", name))
        db.close()
    """
    names = [f"child-{i}" for i in range(4)]
    results: dict[str, subprocess.CompletedProcess] = {}

    def run(name: str) -> None:
        results[name] = run_python(code, store_dir, name, str(go_file), timeout=60)

    threads = [threading.Thread(target=run, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while (
        len(list(tmp_path.glob("ready-*"))) < len(names) and time.monotonic() < deadline
    ):
        time.sleep(0.01)
    go_file.touch()
    for thread in threads:
        thread.join()

    assert [results[name].returncode for name in names] == [0] * len(names)
    answers = {results[name].stdout.strip() for name in names}
    assert len(answers) == 1
    with ShareDB(store_dir) as db:
        assert {db["winner"]} == answers


# Iteration -------------------------------------------------------------------


def test_keys_values_items_iter(db):
    db.multiset([("b", 2), ("a", 1)])
    assert list(db.keys()) == ["a", "b"]
    assert list(db.values()) == [1, 2]
    assert list(db.items()) == [("a", 1), ("b", 2)]
    assert list(db) == ["a", "b"]


def test_reversed_order(db):
    db.multiset([("b", 2), ("a", 1), ("c", 3)])
    assert list(reversed(db)) == ["c", "b", "a"]


@pytest.mark.parametrize(
    "method", ["keys", "values", "items", "__iter__", "__reversed__"]
)
def test_iterators_are_iterators(db, method):
    result = getattr(db, method)()
    assert iter(result) is result


ITERATION_METHODS = {
    "keys": lambda db: db.keys(),
    "values": lambda db: db.values(),
    "items": lambda db: db.items(),
    "iter": lambda db: iter(db),
    "reversed": lambda db: reversed(db),
}


@pytest.mark.parametrize("method", list(ITERATION_METHODS))
def test_iteration_snapshot_ignores_writes(db, method):
    db.multiset((f"k{i}", i) for i in range(5))
    start = ITERATION_METHODS[method]
    expected = list(start(db))
    iterator = start(db)
    seen = [next(iterator)]
    db["k0"] = "changed"
    db["k9"] = 9
    del db["k2"]
    del db["k4"]
    db["new"] = "added"
    seen.extend(iterator)
    assert seen == expected


def test_iteration_writes_each_key(db):
    db.multiset((i, i) for i in range(20))
    for key in db.keys():
        db[key + 100] = key
    assert len(db) == 40


def test_iteration_deletes_each_key(db):
    db.multiset((i, i) for i in range(20))
    for key in db:
        del db[key]
    assert len(db) == 0


# No write lock held between iterator steps ---------------------------


def test_paused_multipop_no_write_lock(open_store, tmp_path):
    db = open_store("lock")
    db.multiset([("a", 1), ("b", 2), ("c", 3)])
    iterator = db.multipop(["a", "b", "c"])
    assert next(iterator) == 1
    result = write_from_child(db.path, "from-child", "written")
    assert result.returncode == 0, result.stderr
    assert db["from-child"] == "written"
    assert list(iterator) == [2, 3]


def test_paused_multipopitem_no_write_lock(open_store, tmp_path):
    db = open_store("lock")
    db.multiset([("a", 1), ("b", 2), ("c", 3)])
    iterator = db.multipopitem(3)
    assert next(iterator) == ("a", 1)
    result = write_from_child(db.path, "d", "from-child")
    assert result.returncode == 0, result.stderr
    assert db["d"] == "from-child"
    assert list(iterator) == [("b", 2), ("c", 3)]


def test_paused_items_no_write_lock(open_store, tmp_path):
    db = open_store("lock")
    db.multiset([("a", 1), ("b", 2)])
    iterator = db.items()
    assert next(iterator) == ("a", 1)
    result = write_from_child(db.path, "c", "from-child")
    assert result.returncode == 0, result.stderr
    assert db["c"] == "from-child"
    assert list(iterator) == [("b", 2)]


def test_abandoned_multipop_no_write_lock(open_store, tmp_path):
    db = open_store("lock")
    db.multiset([("a", 1), ("b", 2)])
    iterator = db.multipop(["a", "b"])
    next(iterator)
    result = write_from_child(db.path, "c", "from-child")
    assert result.returncode == 0, result.stderr
    del iterator
    assert sorted(db.keys()) == ["b", "c"]


# pending_writes, sync, clear and buffer_size ------------------------------


def test_pending_writes_counts_sets(db):
    db["a"] = 1
    db["b"] = 2
    assert db.pending_writes == 2


def test_sync_resets_pending_writes(db):
    db["a"] = 1
    db.sync()
    assert db.pending_writes == 0


def test_clear_removes_everything(db):
    db.multiset((i, i) for i in range(10))
    db.clear()
    assert len(db) == 0
    assert list(db.keys()) == []


def test_clear_resets_pending_writes(db):
    db.multiset((i, i) for i in range(10))
    db.clear()
    assert db.pending_writes == 0


def test_clear_then_write_works(db):
    db["a"] = 1
    db.clear().set("b", 2)
    assert list(db.items()) == [("b", 2)]


def test_buffer_size_auto_syncs(open_store):
    db = open_store(buffer_size=3)
    db["a"] = 1
    db["b"] = 2
    assert db.pending_writes == 2
    db["c"] = 3
    assert db.pending_writes == 0
    db["d"] = 4
    assert db.pending_writes == 1


def test_buffer_size_auto_syncs_multiset(open_store):
    db = open_store(buffer_size=5)
    db.multiset((i, i) for i in range(7))
    assert db.pending_writes < 5


# close, drop and the context manager ---------------------------------------


def test_close_true_then_false(db):
    assert db.close() is True
    assert db.close() is False


def test_close_keeps_data(open_store):
    db = open_store("c")
    db["k"] = "v"
    db.close()
    assert open_store("c")["k"] == "v"


def test_drop_true_then_false(open_store):
    db = open_store("d")
    assert db.drop() is True
    assert db.drop() is False


def test_drop_deletes_directory(open_store, tmp_path):
    db = open_store("d")
    db["k"] = "v"
    db.drop()
    assert not os.path.exists(tmp_path / "d.ShareDB")


def test_drop_after_close_returns_false(open_store, tmp_path):
    db = open_store("d")
    db.close()
    assert db.drop() is False
    assert os.path.isdir(tmp_path / "d.ShareDB")


def test_close_after_drop_returns_false(open_store):
    db = open_store("d")
    db.drop()
    assert db.close() is False


DATA_CALLS = {
    "get": lambda db: db.get("k"),
    "getitem": lambda db: db["k"],
    "has_key": lambda db: db.has_key("k"),
    "contains": lambda db: "k" in db,
    "set": lambda db: db.set("k", 1),
    "setitem": lambda db: db.__setitem__("k", 1),
    "remove": lambda db: db.remove("k"),
    "delitem": lambda db: db.__delitem__("k"),
    "length": lambda db: db.length(),
    "len": lambda db: len(db),
    "pop": lambda db: db.pop("k"),
    "pop_default": lambda db: db.pop("k", 0),
    "popitem": lambda db: db.popitem(),
    "setdefault": lambda db: db.setdefault("k", 1),
    "multiset": lambda db: db.multiset([("k", 1)]),
    "update": lambda db: db.update({"k": 1}),
    "multiremove": lambda db: db.multiremove(["k"]),
    "multiget": lambda db: list(db.multiget(["k"])),
    "has_multikey": lambda db: list(db.has_multikey(["k"])),
    "multipop": lambda db: list(db.multipop(["k"])),
    "multipopitem": lambda db: list(db.multipopitem(1)),
    "keys": lambda db: list(db.keys()),
    "values": lambda db: list(db.values()),
    "items": lambda db: list(db.items()),
    "iter": lambda db: list(db),
    "reversed": lambda db: list(reversed(db)),
    "clear": lambda db: db.clear(),
    "sync": lambda db: db.sync(),
    "enter": lambda db: db.__enter__(),
}


@pytest.mark.parametrize("call", list(DATA_CALLS))
def test_closed_store_raises_runtimeerror(open_store, call):
    db = open_store("closed")
    db["k"] = 1
    db.close()
    with pytest.raises(RuntimeError) as info:
        DATA_CALLS[call](db)
    assert info.value.args == (closed_message(db),)


@pytest.mark.parametrize("call", list(DATA_CALLS))
def test_dropped_store_raises_runtimeerror(open_store, call):
    db = open_store("dropped")
    db["k"] = 1
    db.drop()
    with pytest.raises(RuntimeError) as info:
        DATA_CALLS[call](db)
    assert info.value.args == (closed_message(db),)


def test_closed_message_exact_202(open_store, tmp_path):
    db = open_store("p_pickle")
    db.close()
    with pytest.raises(RuntimeError) as info:
        db.get(1)
    assert str(info.value) == (
        f"Access to ShareDB instantiated from {tmp_path}/p_pickle.ShareDB/ "
        f"has been closed or dropped"
    )


def test_context_manager_returns_store(tmp_path):
    with ShareDB(str(tmp_path / "cm")) as db:
        assert isinstance(db, ShareDB)
        assert db.is_alive is True


def test_context_manager_closes_on_exit(tmp_path):
    with ShareDB(str(tmp_path / "cm")) as db:
        db["k"] = "v"
    assert db.is_alive is False
    with ShareDB(str(tmp_path / "cm")) as db:
        assert db["k"] == "v"


def test_context_manager_closes_on_error(tmp_path):
    with pytest.raises(LookupError):
        with ShareDB(str(tmp_path / "cm")) as db:
            db["k"] = "v"
            raise LookupError("failure inside the with block")
    assert db.is_alive is False


# durable -------------------------------------------------------------------


def test_durable_store_reads_and_writes(open_store):
    db = open_store("d", durable=True)
    db.multiset([("a", 1), ("b", 2)])
    db["c"] = 3
    assert list(db.items()) == [("a", 1), ("b", 2), ("c", 3)]


def test_durable_writes_seen_by_child(open_store):
    db = open_store("d", durable=True)
    db["k"] = "durable"
    result = run_python(
        """
        import sys
        from sharedb import ShareDB

        with ShareDB(sys.argv[1]) as db:
            print(db["k"])
        """,
        db.path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "durable"


def test_durable_is_keyword_only(tmp_path):
    with pytest.raises(TypeError):
        ShareDB(str(tmp_path / "d"), False, "pickle", False, 256, 100_000, None, True)


# One store opened twice in one process ------------------------------------


def test_two_objects_share_data(open_store):
    first = open_store("shared")
    second = open_store("shared")
    first["a"] = 1
    second["b"] = 2
    assert second["a"] == 1
    assert first["b"] == 2


def test_closing_one_object_keeps_other(open_store):
    first = open_store("shared")
    second = open_store("shared")
    first["a"] = 1
    first.close()
    second["b"] = 2
    assert second["a"] == 1
    assert dict(second.items()) == {"a": 1, "b": 2}


def test_closed_object_leaves_other_iterating(open_store):
    first = open_store("shared")
    second = open_store("shared")
    first.multiset((i, i) for i in range(10))
    iterator = second.keys()
    next(iterator)
    first.close()
    assert list(iterator) == list(range(1, 10))


def test_reopen_after_both_closed(open_store):
    first = open_store("shared")
    second = open_store("shared")
    first["a"] = 1
    first.close()
    second.close()
    assert open_store("shared")["a"] == 1


def test_reset_closes_older_object(open_store):
    older = open_store("reset")
    older["a"] = 1
    open_store("reset", reset=True)
    assert older.is_alive is False


def test_reset_older_drop_deletes_nothing(open_store, tmp_path):
    older = open_store("reset")
    older["a"] = 1
    newer = open_store("reset", reset=True)
    newer["important"] = "data"
    assert older.drop() is False
    assert os.path.isdir(tmp_path / "reset.ShareDB")
    assert newer.is_alive is True
    assert dict(newer.items()) == {"important": "data"}


def test_reset_newer_data_survives_reopen(open_store):
    older = open_store("reset")
    older["a"] = 1
    newer = open_store("reset", reset=True)
    newer["important"] = "data"
    older.drop()
    newer["more"] = 1
    newer.close()
    assert dict(open_store("reset").items()) == {"important": "data", "more": 1}


def test_drop_closes_other_object(open_store):
    first = open_store("dropped")
    second = open_store("dropped")
    first.drop()
    assert second.is_alive is False
    assert second.drop() is False


# Disk usage ----------------------------------------------------------------


def test_empty_store_data_file_small(open_store, tmp_path):
    db = open_store("small", map_size=None)
    db["k"] = "v"
    db.sync()
    size = os.path.getsize(tmp_path / "small.ShareDB" / "data.mdb")
    assert size <= 1 << 20


def test_data_file_apparent_size_tracks_data(open_store, tmp_path):
    db = open_store("sized", map_size=None)
    payload = os.urandom(1000)
    db.multiset((i, payload) for i in range(2000))
    db.sync()
    data_bytes = 2000 * len(payload)
    size = os.path.getsize(tmp_path / "sized.ShareDB" / "data.mdb")
    assert size >= data_bytes
    assert size <= 4 * data_bytes


def test_data_file_size_after_close(open_store, tmp_path):
    db = open_store("sized", map_size=None)
    payload = os.urandom(1000)
    db.multiset((i, payload) for i in range(2000))
    db.close()
    size = os.path.getsize(tmp_path / "sized.ShareDB" / "data.mdb")
    assert size <= 4 * 2000 * len(payload)


# None and unserializable keys and values ------------------------------------

NONE_KEY_CALLS = {
    "get": lambda db: db.get(None),
    "getitem": lambda db: db[None],
    "has_key": lambda db: db.has_key(None),
    "contains": lambda db: None in db,
    "set": lambda db: db.set(None, 1),
    "setitem": lambda db: db.__setitem__(None, 1),
    "pop": lambda db: db.pop(None),
    "pop_default": lambda db: db.pop(None, 0),
    "setdefault": lambda db: db.setdefault(None, 1),
    "remove": lambda db: db.remove(None),
    "delitem": lambda db: db.__delitem__(None),
}


@pytest.mark.parametrize("call", list(NONE_KEY_CALLS))
def test_none_key_typeerror_message(db, call):
    with pytest.raises(TypeError) as info:
        NONE_KEY_CALLS[call](db)
    assert info.value.args == ("ShareDB cannot use <class 'NoneType'> objects as keys",)


@pytest.mark.parametrize(
    "call",
    [
        lambda db: list(db.multiget([None])),
        lambda db: list(db.has_multikey([None])),
        lambda db: db.multiremove([None]),
    ],
    ids=["multiget", "has_multikey", "multiremove"],
)
def test_none_key_in_batch_message(db, call):
    with pytest.raises(Exception) as info:
        call(db)
    assert info.value.args == (
        "Given key_iter=[None] of <class 'list'>, raised: "
        "ShareDB cannot use <class 'NoneType'> objects as keys",
    )


@pytest.mark.parametrize(
    "call",
    [lambda db: db.set("k", None), lambda db: db.__setitem__("k", None)],
    ids=["set", "setitem"],
)
def test_none_value_typeerror_message(db, call):
    with pytest.raises(TypeError) as info:
        call(db)
    assert info.value.args == (
        "ShareDB cannot use <class 'NoneType'> objects as values",
    )
    assert len(db) == 0


def test_none_value_keeps_old_value(db):
    db["k"] = "old"
    with pytest.raises(TypeError):
        db["k"] = None
    assert db["k"] == "old"


def test_none_inside_tuple_key_allowed(db):
    db[("with-none", None)] = "ok"
    assert db[("with-none", None)] == "ok"


def unserializable_object(serial: str) -> object:
    """Return an object that serial cannot serialize."""

    def local_function():
        return None

    return local_function if serial == "pickle" else {1, 2}


def test_unserializable_key_message(db):
    key = unserializable_object(db.serial)
    with pytest.raises(TypeError) as info:
        db[key] = "value"
    assert info.value.args[0].startswith(f"Given key={key} of {type(key)}, raised: ")


def test_unserializable_key_stores_nothing(db):
    key = unserializable_object(db.serial)
    with pytest.raises(TypeError):
        db.set(key, "value")
    assert len(db) == 0


def test_unserializable_value_message(db):
    value = unserializable_object(db.serial)
    with pytest.raises(TypeError) as info:
        db["k"] = value
    assert info.value.args[0].startswith(
        f"Given value={value} of {type(value)}, raised: "
    )


def test_unserializable_value_stores_nothing(db):
    value = unserializable_object(db.serial)
    with pytest.raises(TypeError):
        db.set("k", value)
    assert len(db) == 0


def test_unserializable_value_keeps_old(db):
    db["k"] = "old"
    with pytest.raises(TypeError):
        db["k"] = unserializable_object(db.serial)
    assert db["k"] == "old"


def test_msgpack_set_value_message_202(msgpack_db):
    with pytest.raises(TypeError) as info:
        msgpack_db["k"] = {1}
    assert info.value.args == (
        "Given value={1} of <class 'set'>, raised: can not serialize 'set' object",
    )


def test_msgpack_int_out_of_range_message(msgpack_db):
    with pytest.raises(TypeError) as info:
        msgpack_db[2**64] = "big"
    assert info.value.args == (
        "Given key=18446744073709551616 of <class 'int'>, raised: "
        "Integer value out of range",
    )


# A full capped map ---------------------------------------------------------

FULL_MAP_SIZE = 1 << 20
RECORD_SIZE = 10_000


def fill_store(db: ShareDB) -> int:
    """Write records of RECORD_SIZE bytes until the map is full, and return
    their count."""
    count = 0
    while True:
        try:
            db[count] = os.urandom(RECORD_SIZE)
        except MemoryError:
            return count
        count += 1
        assert count < FULL_MAP_SIZE // RECORD_SIZE, "the map never filled"


def test_full_map_raises_memoryerror(open_store):
    db = open_store("full", map_size=FULL_MAP_SIZE)
    count = fill_store(db)
    with pytest.raises(MemoryError):
        db["one-more"] = os.urandom(RECORD_SIZE)
    assert count > 0


def test_value_larger_than_map_raises(open_store):
    db = open_store("full", map_size=FULL_MAP_SIZE)
    db["kept"] = "earlier write"
    with pytest.raises(MemoryError):
        db["huge"] = os.urandom(2 * FULL_MAP_SIZE)
    assert db["kept"] == "earlier write"
    assert "huge" not in db


def test_full_map_earlier_writes_readable(open_store):
    db = open_store("full", map_size=FULL_MAP_SIZE)
    count = fill_store(db)
    assert len(db) == count
    assert all(len(db[i]) == RECORD_SIZE for i in range(count))


def test_full_map_multiset_rolled_back(open_store):
    db = open_store("full", map_size=FULL_MAP_SIZE)
    fill_store(db)
    before = len(db)
    with pytest.raises(MemoryError):
        db.multiset([("small", 1), ("large", os.urandom(10 * RECORD_SIZE))])
    assert "small" not in db
    assert len(db) == before


def test_full_map_remove_frees_room(open_store):
    db = open_store("full", map_size=FULL_MAP_SIZE)
    count = fill_store(db)
    for i in range(count // 2):
        db.remove(i)
    db["after-remove"] = os.urandom(RECORD_SIZE)
    assert "after-remove" in db


def test_full_map_multiremove_frees_room(open_store):
    db = open_store("full", map_size=FULL_MAP_SIZE)
    count = fill_store(db)
    db.multiremove(range(count // 2))
    db["after-multiremove"] = os.urandom(RECORD_SIZE)
    assert "after-multiremove" in db


def test_full_map_clear_frees_room(open_store):
    db = open_store("full", map_size=FULL_MAP_SIZE)
    fill_store(db)
    db.clear()
    db["after-clear"] = os.urandom(RECORD_SIZE)
    assert "after-clear" in db


def test_full_map_value_larger_than_cap_message(open_store):
    db = open_store("full", map_size=FULL_MAP_SIZE)
    db["kept"] = "earlier write"
    with pytest.raises(sharedb.MapFullError) as info:
        db["huge"] = os.urandom(2 * FULL_MAP_SIZE)
    message = str(info.value)
    assert "deleting records cannot make room" in message
    assert "larger map_size" in message


def test_full_map_empty_store_message(open_store):
    db = open_store("full", map_size=FULL_MAP_SIZE)
    # 95 values of RECORD_SIZE bytes fit in the insert limit of the cap
    # (a cap of 1 MiB keeps 64 KiB for deletes), but each takes three
    # 4 KiB pages, which do not.
    records = [(number, os.urandom(RECORD_SIZE)) for number in range(95)]
    with pytest.raises(sharedb.MapFullError) as info:
        db.multiset(records)
    message = str(info.value)
    assert "even with no records stored" in message
    assert "delete records" not in message


def test_full_map_store_with_records_suggests_delete(open_store):
    db = open_store("full", map_size=FULL_MAP_SIZE)
    fill_store(db)
    with pytest.raises(sharedb.MapFullError) as info:
        db["one-more"] = os.urandom(RECORD_SIZE)
    assert "delete records" in str(info.value)


# A cap that cannot hold the store -------------------------------------------


def test_map_size_below_minimum_rejected(store_path):
    with pytest.raises(sharedb.InvalidArgumentError) as info:
        ShareDB(store_path, map_size=(1 << 20) - 1)
    message = str(info.value)
    assert "map_size=1048575" in message
    assert "minimum of 1048576 bytes" in message
    assert not os.path.exists(store_path + ".ShareDB")


def test_map_size_minimum_accepted(store_path):
    with ShareDB(store_path, map_size=1 << 20) as db:
        db["k"] = "v"
        assert db["k"] == "v"
        assert db.max_map_size == 1 << 20


def minimum_in_message(message: str) -> int:
    """Return N of the "pass map_size=N or more" part of a message."""
    marker = "pass map_size="
    start = message.index(marker) + len(marker)
    return int(message[start : message.index(" or more", start)])


def test_map_size_below_data_rejected(open_store, tmp_path):
    db = open_store("big")
    db.multiset((number, os.urandom(1000)) for number in range(3000))
    db.close()
    config_file = tmp_path / "big.ShareDB" / "ShareDB.config"
    saved = config_file.read_bytes()

    with pytest.raises(sharedb.InvalidArgumentError) as info:
        open_store("big", map_size=2 << 20)

    message = str(info.value)
    assert "map_size=2097152" in message
    assert "its data file uses" in message
    assert minimum_in_message(message) > 3_000_000
    assert config_file.read_bytes() == saved
    with ShareDB(str(tmp_path / "big")) as again:
        assert len(again) == 3000


def test_map_size_at_data_minimum_deletes(open_store):
    db = open_store("big")
    db.multiset((number, os.urandom(1000)) for number in range(3000))
    db.close()
    with pytest.raises(sharedb.InvalidArgumentError) as info:
        open_store("big", map_size=2 << 20)
    minimum = minimum_in_message(str(info.value))

    capped = open_store("big", map_size=minimum)

    assert capped.max_map_size == minimum
    capped.multiremove(range(100))
    assert len(capped) == 2900
    capped["after-delete"] = os.urandom(1000)
    assert "after-delete" in capped


# pending_writes and sync_threshold ------------------------------------------


@pytest.mark.parametrize(
    ("value", "error", "shown"),
    [
        (-1, ValueError, "-1"),
        (True, TypeError, "bool"),
        (1.0, TypeError, "float"),
        (2**63, ValueError, str(2**63)),
    ],
    ids=["negative", "bool", "float", "2**63"],
)
def test_pending_writes_invalid_rejected(open_store, value, error, shown):
    db = open_store()
    db["k"] = 1
    with pytest.raises(error) as info:
        db.pending_writes = value
    assert "pending_writes must be an int of 0 or more" in str(info.value)
    assert shown in str(info.value)
    assert db.pending_writes == 1


def test_pending_writes_zero_accepted(open_store):
    db = open_store()
    db["k"] = 1
    db.pending_writes = 0
    assert db.pending_writes == 0


def test_sync_threshold_maximum_accepted(open_store):
    db = open_store()
    db.sync_threshold = sharedb._config.MAX_SYNC_THRESHOLD
    assert db.sync_threshold == sharedb._config.MAX_SYNC_THRESHOLD
    with pytest.raises(ValueError) as info:
        db.sync_threshold = sharedb._config.MAX_SYNC_THRESHOLD + 1
    assert str(sharedb._config.MAX_SYNC_THRESHOLD) in str(info.value)


# An instance whose ShareDB.__init__ did not run -----------------------------


class SkipsInit(ShareDB):
    """A subclass whose __init__ does not call ShareDB.__init__."""

    def __init__(self, path: str) -> None:
        self.where = path


@pytest.mark.parametrize(
    "call",
    [
        lambda db: db.get("k"),
        lambda db: db.has_key("k"),
        lambda db: "k" in db,
        lambda db: db.remove("k"),
        lambda db: db.multiset([("k", 1)]),
        lambda db: list(db.multiget(["k"])),
        lambda db: list(db.keys()),
        lambda db: db.popitem(),
        lambda db: list(db.multipopitem(1)),
        lambda db: db.stats(),
        lambda db: db.__enter__(),
        lambda db: db.clear(),
    ],
    ids=[
        "get",
        "has_key",
        "contains",
        "remove",
        "multiset",
        "multiget",
        "keys",
        "popitem",
        "multipopitem",
        "stats",
        "enter",
        "clear",
    ],
)
def test_subclass_skipping_init_raises_closed(tmp_path, call):
    db = SkipsInit(str(tmp_path / "never"))
    with pytest.raises(sharedb.ClosedError) as info:
        call(db)
    assert "SkipsInit object is not open" in str(info.value)
    assert "ShareDB.__init__ did not run" in str(info.value)
    assert not os.path.exists(tmp_path / "never.ShareDB")


def test_subclass_skipping_init_repr_close(tmp_path):
    db = SkipsInit(str(tmp_path / "never"))
    assert repr(db) == "<SkipsInit object, not open: ShareDB.__init__ did not run>"
    assert db.is_alive is False
    assert db.close() is False
    assert db.drop() is False


@pytest.mark.parametrize("limit", [1, 4096, 8191])
def test_alloc_limit_below_two_pages_limits(open_store, limit):
    """A limit below two 4 KiB pages rounds up to one page, which no write
    fits in, never down to 0, which means no limit."""
    db = open_store(map_size=1 << 20)
    db._env._set_alloc_limits(limit, limit)
    with pytest.raises(sharedb.MapFullError):
        db["k"] = os.urandom(RECORD_SIZE)
    with pytest.raises(sharedb.MapFullError):
        db.multiset((number, os.urandom(RECORD_SIZE)) for number in range(100))
    assert len(db) == 0
