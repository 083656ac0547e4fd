"""Shared fixtures: stores and environments under pytest's tmp_path."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager

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


def child_environment() -> dict[str, str]:
    """Return the environment for a child interpreter that imports this
    sharedb: the parent's, with its sys.path, so it tests the same build."""
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return environment


def run_python(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run code in a new interpreter that imports this sharedb."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_environment(),
    )


@contextmanager
def running_writer(code: str, path: str) -> Iterator[None]:
    """Run code with path as its argument in a new interpreter while the
    block runs. The code prints "ready" once it writes; the block fails if
    it stopped before the block ended."""
    writer = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), path],
        stdout=subprocess.PIPE,
        env=child_environment(),
    )
    assert writer.stdout is not None
    assert writer.stdout.readline() == b"ready\n"
    try:
        yield
        assert writer.poll() is None, "the writer stopped before the block ended"
    finally:
        writer.kill()
        writer.wait()
