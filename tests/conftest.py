"""Shared fixtures: stores and environments under pytest's tmp_path."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator

import pytest

from sharedb import ShareDB, lmdb

SETTINGS = [("pickle", False), ("pickle", True), ("msgpack", False), ("msgpack", True)]
SETTING_IDS = [f"{serial}-{'zlib' if compress else 'plain'}" for serial, compress in SETTINGS]


def pytest_addoption(parser):
    parser.addoption(
        "--run-slow",
        action="store_true",
        help="also run the long tests marked slow (many kills, fuzzing)",
    )


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="a long run; select it with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def store_path(tmp_path) -> str:
    """Path of a store that does not exist yet."""
    return str(tmp_path / "store")


@pytest.fixture
def open_store(tmp_path) -> Iterator[Callable[..., ShareDB]]:
    """Factory of stores under tmp_path, closed at teardown.

    open_store(name="store", **kwargs) opens ShareDB(tmp_path / name, ...).
    """
    opened: list[ShareDB] = []

    def factory(name: str = "store", **kwargs) -> ShareDB:
        store = ShareDB(str(tmp_path / name), **kwargs)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()


@pytest.fixture(params=SETTINGS, ids=SETTING_IDS)
def settings(request) -> dict[str, object]:
    """serial and compress, over every combination."""
    serial, compress = request.param
    return {"serial": serial, "compress": compress}


@pytest.fixture
def db(open_store, settings) -> ShareDB:
    """An empty store, once for every serial and compress setting."""
    return open_store(**settings)


@pytest.fixture
def msgpack_db(open_store) -> ShareDB:
    return open_store(serial="msgpack")


@pytest.fixture
def env(tmp_path) -> Iterator[lmdb.Environment]:
    """An Environment with room for 4 named databases, closed at teardown."""
    environment = lmdb.Environment(str(tmp_path / "env"), map_size=1 << 26, max_dbs=4)
    yield environment
    environment.close()


def run_python(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run code in a new interpreter that imports this sharedb.

    The child gets the parent's sys.path, so it tests the same build.
    """
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
    )
