"""Tests that stores move both ways between ShareDB 2.0.2 and this release.

The stores in compat/fixtures_202 were written by 2.0.2 (see compat/README.md),
so the first half of this file runs everywhere. The second half runs 2.0.2
itself through compat/run_202.py. It needs the environment variable
SHAREDB_202_PYTHON to name the Python of a virtualenv that has
sharedb==2.0.2 installed, and is skipped without it.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest

import sharedb
from sharedb import ShareDB, ShareDBWarning

COMPAT_DIR = Path(__file__).parent / "compat"
FIXTURES_DIR = COMPAT_DIR / "fixtures_202"
RUN_202 = COMPAT_DIR / "run_202.py"


def load_records_module():
    spec = importlib.util.spec_from_file_location(
        "records_202", COMPAT_DIR / "records_202.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


records_202 = load_records_module()

FIXTURE_NAMES = list(records_202.FIXTURE_STORES)
SETTINGS = list(records_202.FIXTURE_STORES.values())
SETTING_IDS = list(records_202.FIXTURE_STORES)

# Records this release adds to a store written by 2.0.2, and 2.0.2 then reads.
EXTRA_RECORDS = [
    ("added-by-new-release", {"list": [1, 2, 3], "text": "новый"}),
    (("added", 2), "tuple key"),
    (b"added-bytes", b"\x00" * 100),
    (123456789, "x" * 5000),
]


def copy_fixture(name: str, tmp_path: Path) -> Path:
    """Copy a fixture store to tmp_path and return its directory."""
    target = tmp_path / f"{name}.ShareDB"
    shutil.copytree(FIXTURES_DIR / f"{name}.ShareDB", target)
    return target


def open_quietly(path: Path | str) -> ShareDB:
    """Open a store without arguments, failing on any ShareDBWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", ShareDBWarning)
        return ShareDB(str(path))


def record_mismatches(db: ShareDB, records: list) -> list[str]:
    """Return a line for each record that db does not read back as expected.

    Values are compared by repr, so that 1, 1.0 and True are distinguished.
    """
    mismatches = []
    for key, value in records:
        expected = repr(records_202.as_read_back(value, db.serial))
        found = db.get(key)
        if found is None:
            mismatches.append(f"{key!r:.80}: missing")
        elif repr(found) != expected:
            mismatches.append(f"{key!r:.80}: read {found!r:.80}")
    return mismatches


def expected_digest_with(serial: str, extra: list) -> dict:
    records = records_202.expected_records(serial) + extra
    return records_202.digest(
        (
            records_202.as_read_back(key, serial),
            records_202.as_read_back(value, serial),
        )
        for key, value in records
    )


@pytest.fixture
def fixture_store(request, tmp_path) -> tuple[str, Path]:
    """A copy of one 2.0.2 fixture store: (serial, directory)."""
    name = request.param
    serial, _ = records_202.FIXTURE_STORES[name]
    return serial, copy_fixture(name, tmp_path)


# Stores written by 2.0.2, read by this release -------------------------


def test_fixtures_all_present():
    for name in FIXTURE_NAMES:
        assert (FIXTURES_DIR / f"{name}.ShareDB" / "data.mdb").is_file(), name


@pytest.mark.parametrize("fixture_store", FIXTURE_NAMES, indirect=True)
def test_fixture_every_record_read(fixture_store):
    serial, path = fixture_store
    with open_quietly(path) as db:
        mismatches = record_mismatches(db, records_202.expected_records(serial))
    assert mismatches == []


@pytest.mark.parametrize("fixture_store", FIXTURE_NAMES, indirect=True)
def test_fixture_digest_matches(fixture_store):
    serial, path = fixture_store
    with open_quietly(path) as db:
        digest = records_202.digest(db.items())
    assert digest == records_202.expected_digest(serial)


@pytest.mark.parametrize("fixture_store", FIXTURE_NAMES, indirect=True)
def test_fixture_length_matches(fixture_store):
    serial, path = fixture_store
    with open_quietly(path) as db:
        assert len(db) == len(records_202.expected_records(serial))
        assert len(list(db.keys())) == len(db)
        assert len(list(db.values())) == len(db)


@pytest.mark.parametrize("name", ["pickle_plain", "pickle_zlib"])
def test_fixture_frozenset_key_found(tmp_path, name):
    """2.0.2 wrote frozenset({1, 2, 3}) with pickle's FROZENSET opcode."""
    with open_quietly(copy_fixture(name, tmp_path)) as db:
        assert db.get(frozenset({1, 2, 3})) == "frozenset-key"
        assert frozenset({1, 2, 3}) in db


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_settings_from_config(tmp_path, name):
    serial, compress = records_202.FIXTURE_STORES[name]
    with open_quietly(copy_fixture(name, tmp_path)) as db:
        assert db.serial == serial
        assert db.compress is compress
        assert db.max_readers == records_202.READERS
        assert db.sync_threshold == records_202.BUFFER_SIZE
        assert db.max_map_size == records_202.MAP_SIZE


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_config_file_preserved(tmp_path, name):
    path = copy_fixture(name, tmp_path)
    original = (FIXTURES_DIR / f"{name}.ShareDB" / "ShareDB.config").read_bytes()
    with open_quietly(path) as db:
        db["written"] = "by the new release"
    assert (path / "ShareDB.config").read_bytes() == original


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_other_arguments_keep_config(tmp_path, name):
    serial, compress = records_202.FIXTURE_STORES[name]
    other_serial = "pickle" if serial == "msgpack" else "msgpack"
    path = copy_fixture(name, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ShareDBWarning)
        db = ShareDB(str(path), serial=other_serial, compress=not compress)
    with db:
        assert db.serial == serial
        assert db.compress is compress
        mismatches = record_mismatches(db, records_202.expected_records(serial))
    assert mismatches == []


@pytest.mark.parametrize("fixture_store", FIXTURE_NAMES, indirect=True)
def test_fixture_write_more_and_reopen(fixture_store):
    serial, path = fixture_store
    records = records_202.expected_records(serial)
    with open_quietly(path) as db:
        db.multiset(EXTRA_RECORDS)
        db["added-by-set"] = 1
        db.remove(records[0][0])
    with open_quietly(path) as db:
        assert record_mismatches(db, records[1:] + EXTRA_RECORDS) == []
        assert records[0][0] not in db
        assert db["added-by-set"] == 1
        assert len(db) == len(records) - 1 + len(EXTRA_RECORDS) + 1


@pytest.mark.parametrize("fixture_store", FIXTURE_NAMES, indirect=True)
def test_fixture_pop_every_record(fixture_store):
    serial, path = fixture_store
    with open_quietly(path) as db:
        popped = list(db.multipopitem(len(db)))
        assert len(db) == 0
    assert records_202.digest(popped) == records_202.expected_digest(serial)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_missing_config_names_settings(tmp_path, name):
    serial, compress = records_202.FIXTURE_STORES[name]
    path = copy_fixture(name, tmp_path)
    (path / "ShareDB.config").unlink()

    with pytest.raises(sharedb.ConfigError) as info:
        ShareDB(str(path))

    assert f"serial={serial!r}, compress={compress!r}" in str(info.value)
    assert not (path / "ShareDB.config").exists()


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_missing_config_wrong_settings_rejected(tmp_path, name):
    serial, compress = records_202.FIXTURE_STORES[name]
    other_serial = "pickle" if serial == "msgpack" else "msgpack"
    path = copy_fixture(name, tmp_path)
    (path / "ShareDB.config").unlink()

    for wrong in (
        {"serial": other_serial, "compress": compress},
        {"serial": serial, "compress": not compress},
    ):
        with pytest.raises(sharedb.ConfigError) as info:
            ShareDB(str(path), **wrong)
        message = str(info.value)
        assert f"written with serial={serial!r}, compress={compress!r}" in message
        assert not (path / "ShareDB.config").exists()


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_missing_config_right_settings_open(tmp_path, name):
    serial, compress = records_202.FIXTURE_STORES[name]
    path = copy_fixture(name, tmp_path)
    (path / "ShareDB.config").unlink()

    with ShareDB(str(path), serial=serial, compress=compress) as db:
        mismatches = record_mismatches(db, records_202.expected_records(serial))

    assert mismatches == []
    assert (path / "ShareDB.config").exists()


# Keyword arguments of 2.0.2 ---------------------------------------------------

# The parameters of the public methods of ShareDB 2.0.2, which callers may
# pass by keyword there.
PARAMETERS_202 = {
    "set": ["key", "val"],
    "multiset": ["kv_iter"],
    "get": ["key", "default"],
    "setdefault": ["key", "default"],
    "multiget": ["key_iter", "default"],
    "has_key": ["key"],
    "has_multikey": ["key_iter"],
    "remove": ["key"],
    "multiremove": ["key_iter"],
    "pop": ["key", "default"],
    "multipop": ["key_iter"],
    "multipopitem": ["num_items"],
}


@pytest.mark.parametrize("method", list(PARAMETERS_202))
def test_method_parameters_match_202(method):
    signature = inspect.signature(getattr(ShareDB, method))
    parameters = list(signature.parameters.values())[1:]
    assert [parameter.name for parameter in parameters] == PARAMETERS_202[method]
    for parameter in parameters:
        assert parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD, parameter


def test_methods_take_202_keywords(tmp_path):
    with ShareDB(path=str(tmp_path / "store"), reset=True, serial="msgpack") as db:
        assert db.set(key="a", val=1) is db
        assert db.multiset(kv_iter=[("b", 2)]) is db
        assert db.update(other={"c": 3}) is db
        assert db.get(key="a", default=None) == 1
        assert db.setdefault(key="d", default=4) == 4
        assert list(db.multiget(key_iter=["a", "x"], default=0)) == [1, 0]
        assert db.has_key(key="a") is True
        assert list(db.has_multikey(key_iter=["a", "x"])) == [True, False]
        assert db.remove(key="a") is db
        assert db.multiremove(key_iter=["b"]) is db
        assert db.pop(key="c", default=None) == 3
        assert db.pop(key="c", default=None) is None
        assert list(db.multipop(key_iter=["d"])) == [4]
        db["e"] = 5
        assert list(db.multipopitem(num_items=1)) == [("e", 5)]
        assert len(db) == 0


def test_update_other_keyword_alone_is_202_form(tmp_path):
    with ShareDB(str(tmp_path / "store")) as db:
        db.update(other=[("a", 1), ("b", 2)])
        assert dict(db.items()) == {"a": 1, "b": 2}


def test_update_other_keyword_with_others_is_pair(tmp_path):
    with ShareDB(str(tmp_path / "store")) as db:
        db.update(other=1, new=2)
        db.update({"a": 3}, other=4)
        assert dict(db.items()) == {"other": 4, "new": 2, "a": 3}


# Both directions through 2.0.2 itself ---------------------------------------


@pytest.fixture
def python_202() -> str:
    """The Python of a virtualenv with sharedb==2.0.2, from SHAREDB_202_PYTHON."""
    python = os.environ.get("SHAREDB_202_PYTHON")
    if not python:
        pytest.skip(
            "SHAREDB_202_PYTHON is not set; set it to the python of a virtualenv "
            "with sharedb==2.0.2 installed to test against 2.0.2"
        )
    if not os.access(python, os.X_OK):
        pytest.fail(f"SHAREDB_202_PYTHON={python} is not an executable file")
    return python


def run_202(python: str, *args: str) -> subprocess.CompletedProcess:
    """Run compat/run_202.py with 2.0.2's Python."""
    return subprocess.run(
        [python, str(RUN_202), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def run_202_json(python: str, *args: str) -> dict:
    result = run_202(python, *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def write_records(path: Path, serial: str, compress: bool, **kwargs) -> None:
    """Write expected_records(serial) with this release, half of them one by
    one and the rest with multiset, as run_202.py write does with 2.0.2."""
    options = {
        "readers": records_202.READERS,
        "buffer_size": records_202.BUFFER_SIZE,
        "map_size": records_202.MAP_SIZE,
    }
    options.update(kwargs)
    records = records_202.expected_records(serial)
    half = len(records) // 2
    with ShareDB(str(path), serial=serial, compress=compress, **options) as db:
        for key, value in records[:half]:
            db[key] = value
        db.multiset(records[half:])


@pytest.mark.parametrize(("serial", "compress"), SETTINGS, ids=SETTING_IDS)
def test_202_reads_our_store(python_202, tmp_path, serial, compress):
    path = tmp_path / "ours.ShareDB"
    write_records(path, serial, compress)
    result = run_202_json(python_202, "read", str(path))
    assert result["config"] == {
        "serial": serial,
        "compress": compress,
        "readers": records_202.READERS,
        "buffer_size": records_202.BUFFER_SIZE,
        "map_size": records_202.MAP_SIZE,
    }
    assert result["length"] == len(records_202.expected_records(serial))
    assert result["digest"] == records_202.expected_digest(serial)


@pytest.mark.parametrize(("serial", "compress"), SETTINGS, ids=SETTING_IDS)
def test_202_finds_our_keys(python_202, tmp_path, serial, compress):
    path = tmp_path / "ours.ShareDB"
    write_records(path, serial, compress)
    result = run_202_json(python_202, "check", str(path))
    assert result["checked"] == len(records_202.expected_records(serial))
    assert result["failures"] == []


@pytest.mark.parametrize("serial", ["pickle", "msgpack"])
def test_202_reads_default_settings_store(python_202, tmp_path, serial):
    """A store opened with every default, so map_size=None, opens in 2.0.2."""
    path = tmp_path / "defaults.ShareDB"
    write_records(path, serial, False, readers=256, buffer_size=100_000, map_size=None)
    result = run_202_json(python_202, "read", str(path))
    assert result["length"] == len(records_202.expected_records(serial))
    assert result["digest"] == records_202.expected_digest(serial)
    with open_quietly(path) as db:
        assert len(db) == len(records_202.expected_records(serial))


@pytest.mark.parametrize(("serial", "compress"), SETTINGS, ids=SETTING_IDS)
def test_we_read_202_written_store(python_202, tmp_path, serial, compress):
    path = tmp_path / "theirs.ShareDB"
    result = run_202(python_202, "write", str(path), serial, str(compress).lower())
    assert result.returncode == 0, result.stderr
    with open_quietly(path) as db:
        assert db.serial == serial
        assert db.compress is compress
        mismatches = record_mismatches(db, records_202.expected_records(serial))
        digest = records_202.digest(db.items())
    assert mismatches == []
    assert digest == records_202.expected_digest(serial)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_202_reads_fixture_we_appended(python_202, tmp_path, name):
    serial, _ = records_202.FIXTURE_STORES[name]
    path = copy_fixture(name, tmp_path)
    with open_quietly(path) as db:
        db.multiset(EXTRA_RECORDS)
    result = run_202_json(python_202, "read", str(path))
    assert result["length"] == len(records_202.expected_records(serial)) + len(
        EXTRA_RECORDS
    )
    assert result["digest"] == expected_digest_with(serial, EXTRA_RECORDS)


@pytest.mark.parametrize(("serial", "compress"), SETTINGS, ids=SETTING_IDS)
def test_we_append_after_202_wrote(python_202, tmp_path, serial, compress):
    path = tmp_path / "theirs.ShareDB"
    result = run_202(python_202, "write", str(path), serial, str(compress).lower())
    assert result.returncode == 0, result.stderr
    with open_quietly(path) as db:
        db.multiset(EXTRA_RECORDS)
    check = run_202_json(python_202, "check", str(path))
    assert check["failures"] == []
    with open_quietly(path) as db:
        mismatches = record_mismatches(db, EXTRA_RECORDS)
    assert mismatches == []
