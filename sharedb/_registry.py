"""Environments shared by the ShareDB objects of one process.

LMDB's locks are per process: if a process opens one environment twice
and closes one handle, the locks of the other go with it. So every
ShareDB object on a store directory in a process uses one Environment,
counted here, and the Environment closes when the last one is released.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Callable

from sharedb import lmdb


@dataclass(eq=False)
class Shared:
    """An Environment and the number of ShareDB objects using it."""

    key: tuple[int, int]
    env: lmdb.Environment
    users: int = 0
    durable: bool = False
    closed: bool = field(default=False)


_lock = threading.Lock()
_reopen_lock = threading.Lock()
_shared: dict[tuple[int, int], Shared] = {}


def _forget_after_fork() -> None:
    """Start empty in a forked child: inherited environments are unusable
    there, and another thread of the parent may have held the locks."""
    global _lock, _reopen_lock
    _lock = threading.Lock()
    _reopen_lock = threading.Lock()
    _shared.clear()


def reopen_lock() -> threading.Lock:
    """Return the lock that serializes reopening stores after fork()."""
    return _reopen_lock


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def directory_key(path: str) -> tuple[int, int]:
    status = os.stat(path)
    return (status.st_dev, status.st_ino)


def acquire(
    path: str, durable: bool, open_env: Callable[[], lmdb.Environment]
) -> Shared:
    """Return the shared environment of the store directory path, opened
    with open_env() if no object of this process has it open, and count
    one more user of it."""
    key = directory_key(path)
    with _lock:
        shared = _shared.get(key)
        if shared is None or shared.env.closed:
            shared = Shared(key=key, env=open_env())
            _shared[key] = shared
        shared.users += 1
        try:
            if durable and not shared.durable:
                shared.env.set_sync(True)
                shared.durable = True
        except BaseException:
            _release_locked(shared)
            raise
        return shared


def _release_locked(shared: Shared) -> None:
    shared.users -= 1
    if shared.users <= 0 and not shared.closed:
        shared.closed = True
        if _shared.get(shared.key) is shared:
            del _shared[shared.key]
        shared.env.close()


def release(shared: Shared) -> None:
    """Count one user less, closing the environment after the last."""
    with _lock:
        _release_locked(shared)


def find(path: str) -> Shared | None:
    """Return the shared environment of path if this process has it open."""
    try:
        key = directory_key(path)
    except OSError:
        return None
    with _lock:
        return _shared.get(key)


def close_all(shared: Shared) -> None:
    """Close the environment for every user, as drop() and reset need."""
    with _lock:
        if not shared.closed:
            shared.closed = True
            if _shared.get(shared.key) is shared:
                del _shared[shared.key]
            shared.env.close()
