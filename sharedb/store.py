"""The ShareDB class: a dict-like store on disk, shared by processes."""

from __future__ import annotations

import collections.abc
import errno
import logging
import math
import numbers
import os
import shutil
import sys
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol, TypeVar, cast

from sharedb import _config, _lmdb, _mapsize, _registry, _serial
from sharedb._config import Config, ConfigError
from sharedb._version import __version__

logger = logging.getLogger(__name__)

_SUFFIX = ".ShareDB"

# Opening a store on a read-only file system needs a read-only open
# without LMDB's lock file, which is safe there since no process can write.
_READ_ONLY_FILE_SYSTEM = errno.EROFS

# Writes go through a writable map where the vendored LMDB grows the file
# with the data (POSIX): a commit then costs no write system call.
_WRITEMAP = sys.platform != "win32"

_ShareDBT = TypeVar("_ShareDBT", bound="ShareDB")

# The smallest map_size accepted, in bytes. A capped store keeps at least
# 64 KiB of it free for deletes, and LMDB's two meta pages and the first
# pages of the B-tree take some more.
_MIN_MAP_SIZE = 1 << 20

# Records read to find the serializer of a store whose ShareDB.config is
# missing.
_SAMPLE_RECORDS = 8

# Errors at open that are not about an argument: no access to the files,
# a data file that is damaged or not an LMDB file of this build, or no
# free reader slot. They reach the caller as they are.
_FILE_ERRORS = (
    PermissionError,
    _lmdb.CorruptedError,
    _lmdb.InvalidError,
    _lmdb.VersionMismatchError,
    _lmdb.ReadersFullError,
)


class InvalidArgumentError(TypeError, ValueError):
    """An argument of ShareDB() has the wrong type or value.

    It is a TypeError, as ShareDB 2.0.2 raised, and a ValueError.
    """


class ShareDBWarning(UserWarning):
    """An argument of ShareDB() was overridden by the saved settings."""


class _KeysAndGetItem(Protocol):
    """An object that update() reads as a mapping, through keys() and []."""

    def keys(self) -> Iterable[Any]: ...

    def __getitem__(self, key: Any, /) -> Any: ...


class _Default:
    """Marker for an argument that was not given.

    Each one compares equal to the default it stands for and prints as it,
    so the signature reads as documented, while __init__ can tell a given
    argument from an omitted one by identity.
    """

    def __init__(self, value: object) -> None:
        self.value = value

    def __repr__(self) -> str:
        return repr(self.value)

    def __eq__(self, other: object) -> bool:
        return bool(self.value == other)

    def __hash__(self) -> int:
        return hash(self.value)


_DEFAULT_SERIAL: Any = _Default("pickle")
_DEFAULT_COMPRESS: Any = _Default(False)
_DEFAULT_READERS: Any = _Default(256)
_DEFAULT_BUFFER_SIZE: Any = _Default(100_000)
_NO_PAIRS: Any = _Default(())


def _given(value: object) -> bool:
    return not isinstance(value, _Default)


def _value(value: object) -> Any:
    return value.value if isinstance(value, _Default) else value


def _describe(value: object) -> str:
    """Return str(value) cut to 200 characters, as the C core does."""
    try:
        text = str(value)
    except Exception:
        text = f"<{type(value).__name__} object>"
    if len(text) > 200:
        text = text[:200] + "..."
    return text


def _store_path(path: object) -> str:
    """Return the store directory named by path, ending in '.ShareDB/'."""
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, str):
        raise InvalidArgumentError(
            f"path must be a str or os.PathLike, not {type(path).__name__} "
            f"({_describe(path)})"
        )
    if "\0" in path:
        raise InvalidArgumentError(f"path {path!r} contains a null character")
    name = path.rstrip("/")
    if name in ("", _SUFFIX):
        raise InvalidArgumentError(
            f"path {path!r} does not name a store; give a directory name "
            f"such as './data'"
        )
    path = name
    if path.endswith(_SUFFIX):
        path = path[: -len(_SUFFIX)]
    return path + _SUFFIX + "/"


def _check_flag(name: str, value: object) -> bool:
    if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
        return bool(value)
    raise InvalidArgumentError(
        f"{name} must be True or False, not {_describe(value)} of "
        f"{type(value)}"
    )


def _check_positive(name: str, value: object, unit: str, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(
            f"{name} must be a positive int ({unit}), not {_describe(value)} "
            f"of {type(value)}"
        )
    if not 0 < value <= maximum:
        raise InvalidArgumentError(
            f"{name} must be a positive int ({unit}) of at most {maximum}, "
            f"not {value}"
        )
    return value


def _check_serial(value: object) -> str:
    if not isinstance(value, str) or value.lower() not in ("msgpack", "pickle"):
        raise InvalidArgumentError(
            f"serial must be 'msgpack' or 'pickle', not {_describe(value)} of "
            f"{type(value)}"
        )
    return value.lower()


def _first_records(env: _lmdb.Environment) -> list[tuple[bytes, bytes]]:
    with env.begin() as txn:
        records = []
        for record in txn.cursor():
            records.append(record)
            if len(records) == _SAMPLE_RECORDS:
                break
        return records


def _minimum_cap(used: int) -> int:
    """Return the smallest map_size, in bytes, that keeps used bytes below
    the limit for inserts, with the room for deletes above them."""
    cap = max(_MIN_MAP_SIZE, used)
    insert = _mapsize.cap_limits(cap)[0]
    while insert < used:
        cap += used - insert
        insert = _mapsize.cap_limits(cap)[0]
    return cap


def _remove(path: str) -> None:
    """Delete the directory or file at path, if anything is there."""
    bare = path.rstrip("/")
    if os.path.isdir(bare) and not os.path.islink(bare):
        shutil.rmtree(bare)
    elif os.path.lexists(bare):
        os.remove(bare)


class ShareDB(_lmdb.Store):
    """A persistent key-value store with the interface of a dict.

    Data lives in an LMDB environment in the directory ``<path>.ShareDB/``,
    so it outlives the process and many processes can read and write it at
    once. Keys and values are any objects the chosen serializer handles,
    except None.

    Arguments:
        path: directory of the store; a trailing '/' and '.ShareDB' are
            removed, then '.ShareDB/' is appended.
        reset: delete whatever is at the path first.
        serial: 'pickle' or 'msgpack', how keys and values become bytes.
            A store keeps the serializer it was created with.
        compress: zlib-compress values (never keys). Kept like serial.
        readers: reader slots, the maximum number of read transactions of
            all processes at once.
        buffer_size: number of writes after which sync() runs by itself.
        map_size: None for no limit but the disk, or a cap in bytes.
        durable: if True, every commit is on disk before it returns;
            otherwise an operating-system crash can undo the writes since
            the last sync().

    Raises InvalidArgumentError (a TypeError and ValueError) for invalid
    arguments or a path that cannot hold a store.
    """

    __version__ = __version__

    path: str
    durable: bool
    serial: str
    compress: bool
    max_readers: int
    max_map_size: int

    def __init__(
        self,
        path: str | bytes | os.PathLike[str] | os.PathLike[bytes],
        reset: bool = False,
        serial: str = _DEFAULT_SERIAL,
        compress: bool = _DEFAULT_COMPRESS,
        readers: int = _DEFAULT_READERS,
        buffer_size: int = _DEFAULT_BUFFER_SIZE,
        map_size: int | None = None,
        *,
        durable: bool = False,
    ) -> None:
        if self.is_alive:
            raise RuntimeError(f"{self!r} is already open")
        store_path = _store_path(path)
        reset = _check_flag("reset", reset)
        durable = _check_flag("durable", durable)
        serial_given = _check_serial(_value(serial))
        compress_given = _check_flag("compress", _value(compress))
        readers_given = _check_positive(
            "readers", _value(readers), "reader slots", _config.MAX_READERS
        )
        buffer_given = _check_positive(
            "buffer_size",
            _value(buffer_size),
            "writes between syncs",
            _config.MAX_SYNC_THRESHOLD,
        )
        if map_size is not None:
            _check_positive("map_size", map_size, "bytes", _mapsize.max_map_size())
            if map_size < _MIN_MAP_SIZE:
                raise InvalidArgumentError(
                    f"map_size={map_size} is below the minimum of "
                    f"{_MIN_MAP_SIZE} bytes (1 MiB) for a store; pass "
                    f"map_size={_MIN_MAP_SIZE} or more, or map_size=None for "
                    f"no cap"
                )

        self.path = store_path
        self.durable = durable
        if reset:
            self._reset(store_path)
        self._make_directory(store_path)
        config, saved = self._settle_config(
            store_path,
            serial_given if _given(serial) else None,
            compress_given if _given(compress) else None,
            readers_given if _given(readers) else None,
            buffer_given if _given(buffer_size) else None,
            map_size,
            defaults=(serial_given, compress_given, readers_given, buffer_given),
        )
        if map_size is not None:
            self._check_map_size_fits(store_path, map_size)
        self._adopt(config)
        self._open(config)
        try:
            self._save_config(store_path, config, saved)
        except BaseException:
            self._detach()
            self._release()
            raise
        self.pending_writes = 0

    # Opening ---------------------------------------------------------

    @staticmethod
    def _reset(store_path: str) -> None:
        shared = _registry.find(store_path)
        if shared is not None:
            _registry.close_all(shared)
        try:
            _remove(store_path)
        except OSError as exc:
            raise InvalidArgumentError(
                f"reset=True could not delete {store_path}: {exc}"
            ) from exc

    @staticmethod
    def _make_directory(store_path: str) -> None:
        bare = store_path.rstrip("/")
        if os.path.lexists(bare) and not os.path.isdir(bare):
            kind = "a broken symbolic link" if os.path.islink(bare) else "a file"
            raise InvalidArgumentError(
                f"path {store_path} exists and is {kind}, not a store "
                f"directory; pass reset=True to replace it"
            )
        try:
            os.makedirs(bare, exist_ok=True)
        except OSError as exc:
            raise InvalidArgumentError(
                f"cannot create the store directory {store_path}: {exc}"
            ) from exc

    def _settle_config(
        self,
        store_path: str,
        serial: str | None,
        compress: bool | None,
        readers: int | None,
        buffer_size: int | None,
        map_size: int | None,
        defaults: tuple[str, bool, int, int],
    ) -> tuple[Config, Config | None]:
        """Merge the saved settings with the given arguments.

        Returns the settings to open with and the saved ones (None for a
        new store). Nothing is written here: the settings are saved once
        the store has opened with them.
        """
        try:
            saved: Config | None = _config.load(store_path)
        except FileNotFoundError:
            saved = None
        if saved is None:
            self._check_missing_config(store_path, serial, compress)
            config = Config(
                serial=defaults[0],
                compress=defaults[1],
                readers=defaults[2],
                sync_threshold=defaults[3],
                map_size=0,
                map_auto=map_size is None,
            )
        else:
            self._check_data_file(store_path)
            config = Config(**vars(saved))
            for name, given, kept in (
                ("serial", serial, saved.serial),
                ("compress", compress, saved.compress),
            ):
                if given is not None and given != kept:
                    warnings.warn(
                        f"{store_path} was created with {name}={kept!r}, so "
                        f"its records stay readable with that; ignoring "
                        f"{name}={given!r}",
                        ShareDBWarning,
                        stacklevel=3,
                    )
            if readers is not None:
                config.readers = readers
            if buffer_size is not None:
                config.sync_threshold = buffer_size
            if not saved.map_auto and saved.map_size >= _mapsize.disk_size(
                store_path
            ):
                # A 2.0.2 store opened with map_size=None saved the size
                # of the disk; treat it as uncapped.
                config.map_auto = True
            if map_size is not None:
                config.map_auto = False

        if config.map_auto:
            config.map_size = _mapsize.disk_size(store_path)
        elif map_size is not None:
            config.map_size = map_size
        return config, saved

    @staticmethod
    def _check_map_size_fits(store_path: str, map_size: int) -> None:
        """Reject a cap that leaves no room below it for the pages the
        store already uses and the room a capped store keeps for deletes.

        Under such a cap no write fits, deletes included, so the store
        could never be emptied.
        """
        from sharedb import _tools

        data = os.path.join(store_path, "data.mdb")
        try:
            if os.path.getsize(data) == 0:
                return
            meta = _tools.read_meta(data)
        except (OSError, _tools.ToolError):
            # No data file yet, or one LMDB reports on when it opens.
            return
        used = (meta.last_pgno + 1) * meta.page_size
        minimum = _minimum_cap(used)
        if map_size < minimum:
            raise InvalidArgumentError(
                f"map_size={map_size} is too small for {store_path}: its data "
                f"file uses {used} bytes, and a capped store keeps max(64 KiB, "
                f"map_size/64) bytes free below the cap for deletes; pass "
                f"map_size={minimum} or more, or map_size=None for no cap"
            )

    def _adopt(self, config: Config) -> None:
        self.serial = config.serial
        self.compress = config.compress
        self.max_readers = config.readers
        self.max_map_size = config.map_size
        self._map_auto = config.map_auto
        self.sync_threshold = config.sync_threshold

    def _save_config(
        self, store_path: str, config: Config, saved: Config | None
    ) -> None:
        """Save the settings the store opened with, if they are new.

        A new store's settings are saved only if no other process saved
        some first; if one did, its serializer is the one to use.
        """
        if saved is not None and config == saved:
            return
        try:
            if _config.save(store_path, config, exclusive=saved is None):
                return
        except OSError as exc:
            if saved is None:
                raise InvalidArgumentError(
                    f"cannot write the settings of {store_path}: {exc}"
                ) from exc
            logger.warning(
                "cannot save the new settings of %s, keeping the old file: %s",
                store_path,
                exc,
            )
            return
        # Another process created the store at the same time and saved
        # its settings first; nothing was written here yet, so take them.
        winner = _config.load(store_path)
        if (winner.serial, winner.compress) != (config.serial, config.compress):
            warnings.warn(
                f"{store_path} was created at the same time by another process "
                f"with serial={winner.serial!r}, compress={winner.compress!r}; "
                f"using those",
                ShareDBWarning,
                stacklevel=3,
            )
        self._attach_settings(winner)

    def _attach_settings(self, config: Config) -> None:
        # Runs after _open(), which attached the environment.
        env = cast(_lmdb.Environment, self._env)
        self._adopt(config)
        _serial.attach(self, env, config)

    def _check_missing_config(
        self, store_path: str, serial: str | None, compress: bool | None
    ) -> None:
        """Reject a store whose records exist without their settings,
        unless serial and compress are both given and can read them."""
        sample = self._sample_records(store_path)
        if sample == []:
            return
        config_file = _config.config_path(store_path)
        detected = _config.detect_settings(sample) if sample else None
        found = ""
        if detected is not None:
            found = f"serial={detected[0]!r}, compress={detected[1]!r}"
            wrong = [
                f"{name}={given!r}"
                for name, given, kept in (
                    ("serial", serial, detected[0]),
                    ("compress", compress, detected[1]),
                )
                if given is not None and given != kept
            ]
            if wrong:
                raise ConfigError(
                    f"{config_file} is missing, and the records in "
                    f"{store_path} were written with {found}, so "
                    f"{' and '.join(wrong)} cannot read them; open the store "
                    f"with {found}"
                )
        if serial is not None and compress is not None:
            return
        hint = f" (its first records read as {found})" if found else ""
        raise ConfigError(
            f"{config_file} is missing, so the serializer of the records in "
            f"{store_path} is unknown; pass serial= and compress= to open it "
            f"with the settings it was written with{hint}"
        )

    @staticmethod
    def _sample_records(store_path: str) -> list[tuple[bytes, bytes]] | None:
        """Return the first records of the store at store_path, as bytes:
        an empty list if it has no data file or no records, and None if
        it may have records that cannot be read here."""
        data = os.path.join(store_path, "data.mdb")
        if not os.path.exists(data) or os.path.getsize(data) == 0:
            return []
        shared = _registry.find(store_path)
        if shared is not None and not shared.env.closed:
            return _first_records(shared.env)
        try:
            env = _lmdb.Environment(
                store_path, readonly=True, create=False, map_size=1 << 20
            )
        except _lmdb.Error as exc:
            if "already open" not in str(exc):
                raise
            # Opened by this process outside the registry, which only
            # sharedb.lmdb does: its records cannot be read here.
            return None
        with env:
            return _first_records(env)

    @staticmethod
    def _check_data_file(store_path: str) -> None:
        """Refuse a data file emptied behind the store's back.

        LMDB would start an empty store in it, hiding the loss.
        """
        data = os.path.join(store_path, "data.mdb")
        try:
            size = os.path.getsize(data)
        except OSError:
            return
        if size == 0:
            raise _lmdb.CorruptedError(
                f"{data} is empty, but the store has saved settings, so its "
                f"records were lost; restore the file from a backup, or pass "
                f"reset=True to start an empty store"
            )

    def _open_env(self, config: Config, plan: _mapsize.MapPlan) -> _lmdb.Environment:
        """Open the environment, with a smaller map if the address space
        cannot hold the first choice."""
        size = plan.open_size
        smallest = max(
            _mapsize.INITIAL_GROWING_MAP, 0 if config.map_auto else config.map_size
        )
        while True:
            try:
                return _lmdb.Environment(
                    self.path,
                    map_size=size,
                    max_readers=config.readers,
                    sync=self.durable,
                    readahead=False,
                    writemap=_WRITEMAP,
                    map_grow=plan.grow,
                    create=True,
                )
            except (MemoryError, OSError) as exc:
                # mmap() refuses a map larger than the address space
                # allows (ENOMEM, or EINVAL under some limits, such as
                # valgrind's): try half.
                errno_value = getattr(exc, "errno", None)
                if isinstance(exc, MemoryError) or errno_value == errno.EINVAL:
                    if size // 2 < smallest:
                        raise
                    size //= 2
                    continue
                if errno_value in (errno.EACCES, errno.EPERM):
                    return self._open_env_without_access(config, size, exc)
                if errno_value != _READ_ONLY_FILE_SYSTEM:
                    raise
                # No process can write on a read-only file system, so
                # reading without the lock file is safe.
                logger.info("opening %s read-only: %s", self.path, exc)
                return _lmdb.Environment(
                    self.path,
                    map_size=size,
                    max_readers=config.readers,
                    readonly=True,
                    lock=False,
                    readahead=False,
                )

    def _open_env_without_access(
        self, config: Config, size: int, exc: OSError
    ) -> _lmdb.Environment:
        """Open the environment read-only if only its data file is not
        writable, or raise PermissionError naming the files at fault.

        Readers register in lock.mdb, so that writers of other processes
        keep the pages they read. A writable lock.mdb keeps that working
        for a reader that cannot write data.mdb.
        """
        data = os.path.join(self.path, "data.mdb")
        lock = os.path.join(self.path, "lock.mdb")
        data_writable = not os.path.exists(data) or os.access(data, os.W_OK)
        lock_usable = os.path.exists(lock) and os.access(lock, os.R_OK | os.W_OK)
        if not data_writable and lock_usable:
            logger.info("opening %s read-only: %s is not writable", self.path, data)
            return _lmdb.Environment(
                self.path,
                map_size=size,
                max_readers=config.readers,
                readonly=True,
                readahead=False,
            )

        faults = []
        if not data_writable:
            faults.append(f"{data} is not writable")
        if os.path.exists(lock):
            if not lock_usable:
                faults.append(f"{lock} is not writable")
        elif not os.access(self.path, os.W_OK):
            faults.append(
                f"{lock} is missing and the directory is not writable, so it "
                f"cannot be created"
            )
        reason = "; ".join(faults) if faults else exc.strerror
        raise PermissionError(
            exc.errno,
            f"cannot open {self.path}: {reason}. Readers need write access to "
            f"its lock.mdb as well, since they register there so that "
            f"writers keep their pages; grant it, or copy the store",
            exc.filename,
        ) from exc

    def _open(self, config: Config) -> None:
        plan = _mapsize.plan(self.path, config.map_size, config.map_auto)
        try:
            shared = _registry.acquire(
                self.path, self.durable, lambda: self._open_env(config, plan)
            )
        except _FILE_ERRORS:
            # These are not bad arguments. The message describes what is
            # wrong with the files, and the class lets callers tell.
            raise
        except (_lmdb.Error, OSError) as exc:
            raise InvalidArgumentError(
                f"cannot open the store {self.path}: {exc}"
            ) from exc
        try:
            if not shared.env.readonly:
                shared.env._set_alloc_limits(plan.insert_limit, plan.delete_limit)
            _serial.attach(self, shared.env, config)
        except BaseException:
            _registry.release(shared)
            raise
        self._shared = shared
        self._release = weakref.finalize(self, _registry.release, shared)
        logger.debug("opened %s", self.path)

    def _saved_config(self) -> Config:
        return Config(
            serial=self.serial,
            compress=self.compress,
            readers=self.max_readers,
            sync_threshold=self.sync_threshold,
            map_size=self.max_map_size,
            map_auto=self._map_auto,
        )

    def _reopen_after_fork(self) -> None:
        """Open the store again in a child process created by fork().

        Several threads of the child may get here at once; the first one
        reopens, and the others find the store already reopened.
        """
        with _registry.reopen_lock():
            if self._env is not None and not self._env.closed:
                return
            self._release.detach()
            pending = self.pending_writes
            self._open(self._saved_config())
            self.pending_writes = pending
            # A forked child often ends with os._exit(), which closes
            # nothing: reads here release their reader slot as they end.
            cast(_lmdb.Environment, self._env)._set_read_pool(0)

    def _reload_map_size(self) -> None:
        """Adopt a larger cap that another process saved; called by the C
        core when a capped store is full."""
        try:
            saved = _config.load(self.path)
        except (OSError, ConfigError):
            return
        env = self._env
        if env is None or env.readonly:
            return
        if saved.map_auto and _mapsize.VIRTUAL_MAP:
            self._map_auto = True
            self.max_map_size = saved.map_size
            env._set_alloc_limits(0, 0)
        elif not saved.map_auto and saved.map_size > self.max_map_size:
            self.max_map_size = saved.map_size
            plan = _mapsize.plan(self.path, saved.map_size, False)
            if plan.open_size <= env.info()["map_size"]:
                env._set_alloc_limits(plan.insert_limit, plan.delete_limit)

    # Closing ---------------------------------------------------------

    def close(self) -> bool:
        """Sync and close the store.

        Returns True, or False if it was already closed. Other ShareDB
        objects on the same store keep working.
        """
        if not self.is_alive:
            return False
        try:
            # A live store has an environment attached.
            if not cast(_lmdb.Environment, self._env).closed:
                self.sync()
        finally:
            self._detach()
            self._release()
        logger.debug("closed %s", self.path)
        return True

    def drop(self) -> bool:
        """Close the store and delete its directory.

        Every ShareDB object of this process on the store is closed too.
        Returns True, or False if the store was already closed.
        """
        if not self.is_alive:
            return False
        shared = self._shared
        self._detach()
        self._release.detach()
        _registry.close_all(shared)
        _registry.release(shared)
        try:
            _remove(self.path)
        except OSError as exc:
            # The store is closed, but its directory, or what rmtree()
            # left of it, is still there.
            raise OSError(
                exc.errno,
                f"drop() closed the store {self.path} but could not delete "
                f"it: {exc.strerror} on {exc.filename}",
                self.path.rstrip("/"),
            ) from exc
        logger.debug("dropped %s", self.path)
        return True

    # Maintenance -----------------------------------------------------

    def _closed_error(self, consequence: str = "") -> _lmdb.ClosedError:
        """Return the ClosedError for a call on a store that is not open."""
        if getattr(self, "_shared", None) is None:
            # Made by __new__() alone, or by a subclass whose __init__()
            # does not call ShareDB.__init__(); the C core raises the same message.
            return _lmdb.ClosedError(
                f"this {type(self).__name__} object is not open: "
                f"ShareDB.__init__ did not run; open a store with "
                f"ShareDB(path), or call super().__init__(path) from the "
                f"__init__ of a subclass"
            )
        return _lmdb.ClosedError(
            f"Access to {self!r} has been closed or dropped{consequence}"
        )

    def _check_alive(self) -> None:
        if not self.is_alive:
            raise self._closed_error()

    def stats(self) -> dict[str, Any]:
        """Return figures about the store, as `sharedb stat --json` prints.

        Among them: entries, depth and the branch, leaf and overflow
        pages of the B-tree, used_bytes, map_size, file_size on disk,
        readers in use and stale, last_txnid, and the settings. Sizes are
        in bytes. Raises ClosedError if the store is closed.
        """
        from sharedb import _tools

        self._check_alive()
        return _tools.stats(self.path)

    def copy(self, dest: str | os.PathLike[str], *, compact: bool = False) -> str:
        """Write a consistent copy of the store to dest.ShareDB/.

        The copy is the last committed snapshot, taken while this and
        other processes keep writing, with the settings file. The copy is
        built beside dest and renamed into place, so dest never holds a
        partial copy. compact=True leaves out free pages. Returns the
        path of the copy. Raises ClosedError if the store is closed, and
        ToolError (a RuntimeError) if dest exists and is not empty or the
        copy fails.
        """
        from sharedb import _tools

        self._check_alive()
        _check_flag("compact", compact)
        return str(_tools.copy(self.path, os.fspath(dest), compact=compact))

    def compact(self, *, force: bool = False) -> dict[str, int]:
        """Rewrite the store in place without its free pages.

        Writers wait during the rewrite, and the result replaces the store
        in one atomic step: a crash leaves the old store or the new one,
        whole. Processes that have the store open would keep the old
        files and lose their later writes, so compact() raises ToolError
        (a RuntimeError) while other live processes have it open, unless
        force=True. Other ShareDB objects of this process must be closed
        first. Returns the data file's size before and after, in bytes.
        """
        from sharedb import _tools

        self._check_alive()
        _check_flag("force", force)
        if self._shared.users > 1:
            raise _tools.ToolError(
                f"cannot compact {self.path}: {self._shared.users - 1} other "
                f"ShareDB objects of this process have it open; close them first"
            )
        config = self._saved_config()
        pending = self.pending_writes
        self.sync()
        self._detach()
        self._release()
        try:
            result = _tools.compact(self.path, force=force)
        finally:
            self._open(config)
            self.pending_writes = pending
        return {"before": result.before, "after": result.after}

    def __enter__(self: _ShareDBT) -> _ShareDBT:
        self._check_alive()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __reduce__(
        self,
    ) -> tuple[Callable[[str, bool, int], ShareDB], tuple[str, bool, int]]:
        if not self.is_alive:
            raise self._closed_error(", so it cannot be pickled")
        return (_reopen, (self.path, self.durable, self.sync_threshold))

    def __repr__(self) -> str:
        path = getattr(self, "path", None)
        if path is None:
            return (
                f"<{type(self).__name__} object, not open: ShareDB.__init__ "
                f"did not run>"
            )
        return f"ShareDB instantiated from {path}"

    __str__ = __repr__

    # Methods built on the C core --------------------------------------

    def __delitem__(self, key: object) -> None:
        self.remove(key)

    def update(
        self: _ShareDBT,
        other: _KeysAndGetItem | Iterable[tuple[Any, Any]] = _NO_PAIRS,
        /,
        **kwargs: object,
    ) -> _ShareDBT:
        """Store the pairs of a mapping or an iterable of pairs, and the
        keyword arguments, in one transaction; return the store.

        The calls ShareDB 2.0.2 accepted work as there: update(other=d)
        alone stores the pairs of d. In every other call the keyword
        arguments are pairs, as for dict.update().
        """
        source: Any = other
        if source is _NO_PAIRS:
            source = ()
            if list(kwargs) == ["other"]:
                source = kwargs.pop("other")
        # The checks below pick the protocol, as dict.update() does, so
        # other is used untyped.
        pairs: Iterable[Any]
        if isinstance(source, Mapping) or hasattr(source, "items"):
            pairs = source.items()
        elif hasattr(source, "keys"):
            pairs = ((key, source[key]) for key in source.keys())
        else:
            pairs = source
        self._update_pairs(pairs, source, kwargs)
        return self

    def popitem(self) -> tuple[Any, Any]:
        """Delete the first record in key order and return (key, value).

        Raises KeyError on an empty store.
        """
        return self._pop_first()

    def multipop(self, key_iter: Iterable[Any]) -> Iterator[Any]:
        """Return an iterator that deletes each key of key_iter and yields
        its value as it goes.

        Each step is its own transaction: values not yet handed out stay
        in the store. An absent key raises KeyError at its step.
        """
        self._check_alive()
        return self._multipop(key_iter)

    def _multipop(self, key_iter: Iterable[Any]) -> Iterator[Any]:
        try:
            keys = iter(key_iter)
        except TypeError as exc:
            raise TypeError(_given_message("key_iter", key_iter, exc)) from exc
        for key in keys:
            try:
                value = self.pop(key)
            except KeyError as exc:
                raise KeyError(
                    _given_message("key_iter", key_iter, exc)
                ) from exc
            yield value

    def multipopitem(self, num_items: float = 1) -> Iterator[tuple[Any, Any]]:
        """Return an iterator that deletes up to num_items records, first
        in key order, yielding each (key, value) as it goes.

        Each step is its own transaction. Raises TypeError if num_items is
        not a number.
        """
        if isinstance(num_items, bool) or not isinstance(num_items, numbers.Real):
            raise TypeError(
                f"num_items={_describe(num_items)} of {type(num_items)} must "
                f"be an integer/long/float"
            )
        if math.isnan(num_items):
            raise InvalidArgumentError("num_items must be a number, not nan")
        self._check_alive()
        return self._multipopitem(num_items)

    def _multipopitem(self, num_items: float) -> Iterator[tuple[Any, Any]]:
        count = 0
        while count < num_items:
            try:
                item = self._pop_first()
            except KeyError:
                return
            count += 1
            yield item


def _given_message(name: str, iterable: object, exc: BaseException) -> str:
    return f"Given {name}={_describe(iterable)} of {type(iterable)}, raised: {exc}"


def _reopen(path: str, durable: bool, sync_threshold: int) -> ShareDB:
    """Open a pickled ShareDB again, in another process."""
    store = ShareDB(path, durable=durable)
    store.sync_threshold = sync_threshold
    return store


collections.abc.MutableMapping.register(ShareDB)
