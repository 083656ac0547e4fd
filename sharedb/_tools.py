"""Library functions behind the sharedb command.

Each function takes the path of a store as ShareDB() does ('x', 'x/' or
'x.ShareDB' all name the directory x.ShareDB/), or the path of a plain
LMDB directory (one holding data.mdb and no '.ShareDB' suffix).
Functions that only read (stats, dump, check, keys, get) open the LMDB
environment read-only and never create anything at a missing path. They
work while other processes write the store, because each reads one
committed snapshot.

Expected failures raise ToolError with a one-sentence message naming the
path and the cause.

The formats of dump() and load() are described in sharedb._dumpformat.
"""

from __future__ import annotations

import ast
import ctypes
import errno
import json
import os
import pickle
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any

from sharedb import _config, _lmdb, _mapsize, _registry, _serial, lmdb
from sharedb._dumpformat import (
    DUPSORT,
    FLAG_NAMES,
    ORDER_FLAGS,
    DumpFormatError,
    Header,
    LineReader,
    encode_item,
    format_header,
    from_json,
    json_line,
    parse_header,
    read_records,
    show_bytes,
)

SUFFIX = ".ShareDB"
DATA_FILE = "data.mdb"
LOCK_FILE = "lock.mdb"

# Progress callbacks get (done, total) in the unit of the operation:
# records for dump and check, bytes for copy, compact and load. A total
# of 0 means that the total is unknown.
Progress = Callable[[int, int], None]

# LMDB's defaults, as mdb_load uses them for a dump header without
# mapsize= or maxreaders= lines.
_DEFAULT_LOAD_MAP_SIZE = 1 << 20
_DEFAULT_MAX_READERS = 126

# Records written per write transaction by load(), and the bytes of keys
# and values at which a transaction commits early. Without writemap
# LMDB keeps every page a transaction changes in a list of at most
# 128 Ki pages, so one transaction cannot load a large dump.
_LOAD_BATCH_RECORDS = 20_000
_LOAD_BATCH_BYTES = 64 << 20


class ToolError(RuntimeError):
    """An operation failed; the message is one sentence naming the path
    and the cause."""


# Locating stores ------------------------------------------------------


@dataclass(frozen=True)
class Location:
    """A store directory and its kind.

    kind is 'sharedb' for a ShareDB store (a directory ending in
    '.ShareDB') and 'lmdb' for a plain LMDB directory.
    """

    path: str
    kind: str

    @property
    def data_file(self) -> str:
        return os.path.join(self.path, DATA_FILE)

    def __str__(self) -> str:
        return self.path + "/"


def _strip(path: str) -> str:
    if not path:
        raise ToolError("the store path is empty; give a directory such as ./data")
    if "\0" in path:
        raise ToolError(f"the store path {path!r} contains a null character")
    return path.rstrip("/") or "/"


def locate(path: str) -> Location:
    """Return the existing store that path names.

    'x', 'x/' and 'x.ShareDB' name the ShareDB store x.ShareDB/; a
    directory holding data.mdb names itself. Raises ToolError if neither
    exists.
    """
    bare = _strip(path)
    if bare.endswith(SUFFIX):
        if os.path.isdir(bare):
            return Location(bare, "sharedb")
    elif os.path.isdir(bare + SUFFIX):
        return Location(bare + SUFFIX, "sharedb")
    elif os.path.isfile(os.path.join(bare, DATA_FILE)):
        return Location(bare, "lmdb")
    if bare.endswith(SUFFIX):
        raise ToolError(f"no store found at {bare}/: the directory does not exist")
    raise ToolError(
        f"no store found at {path}: neither {bare}{SUFFIX}/ nor {bare}/{DATA_FILE} "
        f"exists"
    )


def locate_target(path: str, plain: bool = False) -> Location:
    """Return the store that path names, existing or to be created.

    An existing store is found as by locate(). A missing one is the
    ShareDB store x.ShareDB/, or with plain=True the LMDB directory at
    path itself.
    """
    bare = _strip(path)
    if plain:
        if bare.endswith(SUFFIX):
            raise ToolError(
                f"{bare} ends in {SUFFIX}, so it names a ShareDB store, not a "
                f"plain LMDB directory; drop the suffix or the plain option"
            )
        return Location(bare, "lmdb")
    try:
        return locate(path)
    except ToolError:
        pass
    if bare.endswith(SUFFIX):
        return Location(bare, "sharedb")
    if os.path.isdir(bare) and os.listdir(bare):
        raise ToolError(
            f"{bare}/ exists but contains no {DATA_FILE}; name a store 'x' for "
            f"x{SUFFIX}/, or pass the plain option to make {bare}/ an LMDB "
            f"directory"
        )
    return Location(bare + SUFFIX, "sharedb")


def read_config(location: Location) -> _config.Config | None:
    """Return the ShareDB.config settings of location, or None if it has
    none. Raises ToolError for an invalid file."""
    try:
        return _config.load(location.path)
    except FileNotFoundError:
        return None
    except _config.ConfigError as exc:
        raise ToolError(str(exc)) from exc


# Meta pages -----------------------------------------------------------

# LMDB's data file starts with two meta pages; readers use the one with
# the higher transaction id. Layouts from MDB_page, MDB_meta and MDB_db
# in LMDB 0.9.36's mdb.c, in native byte order and alignment.
_PAGE_HEADER = struct.Struct("@NHHHH")  # mp_pgno, pad, flags, lower, upper
_DB = "IHHNNNNN"  # md_pad, md_flags, md_depth, branch, leaf, overflow,
# entries, root
_META = struct.Struct("@IIPN" + _DB + _DB + "NN")
_DB_RECORD = struct.Struct("@" + _DB)
_MAGIC = 0xBEEFC0DE
_DATA_VERSION = 1
_P_META = 0x08


@dataclass(frozen=True)
class Meta:
    """The current meta page of a data file."""

    page_size: int
    map_size: int
    last_pgno: int
    txnid: int
    main_flags: int
    free_db_pages: int  # pages of LMDB's free-page B-tree
    valid_metas: int  # meta pages with a valid magic and version (0-2)


def _parse_meta(page: bytes) -> tuple[int, ...] | None:
    if len(page) < _PAGE_HEADER.size + _META.size:
        return None
    flags = _PAGE_HEADER.unpack_from(page)[2]
    fields = _META.unpack_from(page, _PAGE_HEADER.size)
    if not flags & _P_META or fields[0] != _MAGIC or fields[1] != _DATA_VERSION:
        return None
    return fields


def read_meta(data_file: str) -> Meta:
    """Read the meta page that LMDB would use from data_file.

    Raises ToolError if the file is missing or neither meta page is
    valid.
    """
    try:
        with open(data_file, "rb") as file:
            first = file.read(_PAGE_HEADER.size + _META.size)
            meta0 = _parse_meta(first)
            page_size = meta0[4] if meta0 else 0
            meta1 = None
            if page_size:
                file.seek(page_size)
                meta1 = _parse_meta(file.read(_PAGE_HEADER.size + _META.size))
    except FileNotFoundError:
        raise ToolError(f"{data_file} does not exist") from None
    except OSError as exc:
        raise ToolError(f"cannot read {data_file}: {exc.strerror}") from exc
    candidates = [meta for meta in (meta0, meta1) if meta is not None]
    if not candidates:
        raise ToolError(
            f"{data_file} is not an LMDB data file: no valid meta page at its start"
        )
    fields = max(candidates, key=lambda meta: meta[-1])
    free_pages = fields[7] + fields[8] + fields[9]
    return Meta(
        page_size=fields[4],
        map_size=fields[3],
        last_pgno=fields[-2],
        txnid=fields[-1],
        main_flags=fields[13],
        free_db_pages=free_pages,
        valid_metas=len(candidates),
    )


# Opening environments -------------------------------------------------


def _read_map_size(location: Location, meta: Meta) -> int:
    """Return a map size for reading location while others write it.

    ShareDB writers map the whole disk, so a map of the disk's size
    covers every page they can commit. With a smaller map, read
    transactions fail with MapResizedError once the data outgrows it.
    """
    size = max(meta.map_size, _mapsize.disk_size(location.path))
    return min(size, _mapsize.max_map_size())


@contextmanager
def open_read(location: Location, max_dbs: int = 0) -> Iterator[lmdb.Environment]:
    """Open the environment of location read-only, creating nothing.

    On a read-only file system the lock file is skipped, as ShareDB does,
    since no process can write there. A lock file created here gets the
    reader slots of the store's settings, as ShareDB would create it.
    A ShareDB store this process has open is read through its open
    environment, since LMDB allows one environment per file in a process.
    """
    if location.kind == "sharedb":
        shared = _registry.find(location.path)
        if shared is not None and not shared.env.closed:
            yield shared.env
            return
    meta = read_meta(location.data_file)
    config = read_config(location)
    options: dict[str, Any] = {
        "readonly": True,
        "create": False,
        "map_size": _read_map_size(location, meta),
        "max_dbs": max_dbs,
        "max_readers": config.readers if config else _DEFAULT_MAX_READERS,
        "readahead": False,
    }
    try:
        try:
            env = lmdb.Environment(location.path, **options)
        except OSError as exc:
            if exc.errno != errno.EROFS:
                raise
            env = lmdb.Environment(location.path, lock=False, **options)
    except lmdb.CorruptedError as exc:
        raise ToolError(f"{location} is corrupted: {exc}") from exc
    except PermissionError as exc:
        raise ToolError(
            f"cannot open {location}: {exc.strerror}; readers need write access "
            f"to its {LOCK_FILE} to register there"
        ) from exc
    except (lmdb.Error, OSError) as exc:
        raise ToolError(f"cannot open {location}: {_cause(exc)}") from exc
    try:
        yield env
    finally:
        env.close()


def _cause(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _attach_reader(env: lmdb.Environment, config: _config.Config) -> Any:
    """Return a ShareDB core attached to env, which decodes records
    exactly as a ShareDB object with these settings does.

    NOTE: this uses the private _lmdb.Store._attach, because ShareDB has
    no read-only mode.
    """
    store = _lmdb.Store()
    _serial.attach(store, env, config)
    return store


@contextmanager
def open_decoded(path: str) -> Iterator[Any]:
    """Open the store at path read-only, as an object with the reading
    methods of ShareDB (get, keys, values, items, len)."""
    location = locate(path)
    config = read_config(location)
    if config is None:
        raise ToolError(
            f"{location} has no {_config.FILE_NAME}, so the serializer of its "
            f"records is unknown; read it with dump, which writes raw bytes"
        )
    with open_read(location) as env:
        store = _attach_reader(env, config)
        try:
            yield store
        finally:
            store._detach()


def _named_databases(
    location: Location, env: lmdb.Environment, txn: lmdb.Transaction
) -> list[tuple[bytes, int]]:
    """Return (name, flags) of each named database of a plain LMDB
    environment, in name order.

    A named database is a record of the main database whose value is
    LMDB's 48-byte database record. Only open_db() can tell it from a
    plain record of that size, so env needs max_dbs above the number of
    such records. ShareDB stores have no named databases.
    """
    if location.kind != "lmdb":
        return []
    found = []
    for name, value in txn.cursor():
        if len(value) != _DB_RECORD.size or b"\0" in name:
            continue
        try:
            env.open_db(name, create=False)
        except (lmdb.IncompatibleError, lmdb.NotFoundError):
            continue
        found.append((name, _DB_RECORD.unpack(value)[1]))
    return found


def _count_database_candidates(env: lmdb.Environment) -> int:
    with env.begin() as txn:
        return sum(
            1
            for value in txn.cursor().iternext(keys=False)
            if len(value) == _DB_RECORD.size
        )


@contextmanager
def _open_with_databases(
    location: Location,
) -> Iterator[tuple[lmdb.Environment, list[tuple[bytes, int]]]]:
    """Open location read-only with a handle for each named database."""
    candidates = 0
    if location.kind == "lmdb":
        with open_read(location) as env:
            candidates = _count_database_candidates(env)
    with open_read(location, max_dbs=candidates + 1 if candidates else 0) as env:
        if not candidates:
            yield env, []
            return
        with env.begin() as txn:
            names = _named_databases(location, env, txn)
        yield env, names


# Statistics -----------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reader_summary(env: lmdb.Environment) -> dict[str, Any]:
    """Sort the reader slots of env's lock file by state.

    A slot is stale when its process no longer exists; slots of this
    process are left out. NOTE: opening an Environment frees the stale
    slots it finds, so a fresh open reports only processes that died
    since.
    """
    me = os.getpid()
    active = idle = stale = 0
    processes = set()
    slots = []
    for pid, thread, txnid in env.readers():
        if pid == me:
            continue
        alive = _pid_alive(pid)
        slots.append({"pid": pid, "thread": thread, "txnid": txnid, "alive": alive})
        if not alive:
            stale += 1
            continue
        processes.add(pid)
        if txnid is None:
            idle += 1
        else:
            active += 1
    return {
        "readers_active": active,
        "readers_idle": idle,
        "readers_stale": stale,
        "reader_processes": sorted(processes),
        "reader_slots": slots,
    }


def _file_sizes(data_file: str) -> tuple[int, int]:
    status = os.stat(data_file)
    return status.st_size, status.st_blocks * 512


def stats(path: str) -> dict[str, Any]:
    """Return figures about the store at path.

    Keys, with sizes in bytes:
    - path, kind ('sharedb' or 'lmdb'), page_size, last_txnid;
    - depth, branch_pages, leaf_pages, overflow_pages and entries
      (records) of the main B-tree, and used_bytes, its pages times the
      page size;
    - named_databases and named_database_pages, for plain LMDB only;
    - last_pgno and high_water_bytes, the bytes up to the last page in
      use;
    - free_pages: pages below the last one that no B-tree uses, which are
      LMDB's free list plus any leaked pages (None if a commit came
      between the two reads it is computed from);
    - map_size as recorded in the data file, cap (the size cap of a
      ShareDB store, or None), and fill_percent, high_water_bytes as a
      percentage of the cap, or of map_size;
    - file_size and file_allocated: data.mdb's apparent size and the disk
      space allocated to it;
    - max_readers and the keys of reader_summary();
    - config: the ShareDB.config settings (serial, compress, readers,
      bcsize, mslimit, msauto), or None.
    """
    location = locate(path)
    config = read_config(location)
    with _open_with_databases(location) as (env, names):
        with env.begin() as txn:
            main = txn.stat()
            named_pages = 0
            for name, _flags in names:
                named = txn.stat(env.open_db(name, create=False))
                named_pages += (
                    named["branch_pages"]
                    + named["leaf_pages"]
                    + named["overflow_pages"]
                )
            snapshot = txn.id
            meta = read_meta(location.data_file)
        info = env.info()
        readers = reader_summary(env)
    page_size = main["psize"]
    main_pages = main["branch_pages"] + main["leaf_pages"] + main["overflow_pages"]
    # The free pages follow from the meta page of the snapshot that the
    # B-tree statistics came from; a later commit may have replaced it.
    free_pages = None
    last_pgno = info["last_pgno"]
    if meta.txnid == snapshot:
        last_pgno = meta.last_pgno
        used = 2 + main_pages + named_pages + meta.free_db_pages
        free_pages = last_pgno + 1 - used
    cap = None
    if config is not None and not config.map_auto:
        cap = config.map_size
    high_water = (last_pgno + 1) * page_size
    size, allocated = _file_sizes(location.data_file)
    result: dict[str, Any] = {
        "path": str(location),
        "kind": location.kind,
        "page_size": page_size,
        "depth": main["depth"],
        "branch_pages": main["branch_pages"],
        "leaf_pages": main["leaf_pages"],
        "overflow_pages": main["overflow_pages"],
        "entries": main["entries"],
        "used_bytes": main_pages * page_size,
        "last_pgno": last_pgno,
        "high_water_bytes": high_water,
        "free_pages": free_pages,
        "map_size": meta.map_size,
        "cap": cap,
        "fill_percent": round(100.0 * high_water / (cap or meta.map_size), 3),
        "file_size": size,
        "file_allocated": allocated,
        "max_readers": info["max_readers"],
        **readers,
        "last_txnid": snapshot,
        "config": None,
    }
    if location.kind == "lmdb":
        result["named_databases"] = [os.fsdecode(name) for name, _ in names]
        result["named_database_pages"] = named_pages
    if config is not None:
        result["config"] = {
            "serial": config.serial,
            "compress": config.compress,
            "readers": config.readers,
            "bcsize": config.sync_threshold,
            "mslimit": config.map_size,
            "msauto": config.map_auto,
        }
    return result


# Copying and compacting -------------------------------------------------


def _fsync_path(path: str) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _watch_file(path: str, total: int, progress: Progress | None) -> Callable[[], None]:
    """Report the growing size of path to progress from a thread until
    the returned function is called."""
    if progress is None:
        return lambda: None
    done = threading.Event()

    def poll() -> None:
        while not done.wait(0.1):
            try:
                progress(os.path.getsize(path), total)
            except OSError:
                pass

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()

    def stop() -> None:
        done.set()
        thread.join()
        try:
            progress(os.path.getsize(path), total)
        except OSError:
            pass

    return stop


def _copy_size(env: lmdb.Environment, compact: bool) -> int:
    """Estimate the bytes env.copy() writes, for the progress bar."""
    info = env.info()
    stat = env.stat()
    if compact:
        pages = stat["branch_pages"] + stat["leaf_pages"] + stat["overflow_pages"]
        return (pages + 2) * stat["psize"]
    return int((info["last_pgno"] + 1) * stat["psize"])


def _copy_config(source: Location, directory: str) -> None:
    config_file = _config.config_path(source.path)
    if not os.path.exists(config_file):
        return
    target = _config.config_path(directory)
    shutil.copyfile(config_file, target)
    _fsync_path(target)


def _copy_into(
    env: lmdb.Environment,
    source: Location,
    directory: str,
    compact: bool,
    progress: Progress | None,
) -> None:
    """Copy env and its ShareDB.config into the new directory, and flush
    both to disk."""
    stop = _watch_file(
        os.path.join(directory, DATA_FILE), _copy_size(env, compact), progress
    )
    try:
        env.copy(directory, compact=compact)
    finally:
        stop()
    _copy_config(source, directory)
    _fsync_path(os.path.join(directory, DATA_FILE))
    _fsync_path(directory)


def _remove_tree(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)


def copy(
    path: str,
    dest: str,
    compact: bool = False,
    progress: Progress | None = None,
) -> Location:
    """Write a consistent copy of the store at path to dest.

    The copy is the snapshot of the last commit, taken while other
    processes go on writing, with the ShareDB.config file. dest is
    resolved like path: a ShareDB store is copied to dest.ShareDB/, a
    plain LMDB directory to dest itself. The copy is built in a hidden
    directory beside dest and renamed into place, so dest never contains a
    partial copy. compact=True leaves out free pages. Returns the
    location of the copy.
    """
    source = locate(path)
    bare = _strip(dest)
    if source.kind == "sharedb":
        target = Location(bare if bare.endswith(SUFFIX) else bare + SUFFIX, "sharedb")
    else:
        target = Location(bare, "lmdb")
    if os.path.exists(target.path) and (
        not os.path.isdir(target.path) or os.listdir(target.path)
    ):
        raise ToolError(
            f"cannot copy {source} to {target}: the destination exists and is not "
            f"an empty directory"
        )
    parent, name = os.path.split(os.path.abspath(target.path))
    building = os.path.join(parent, f".{name}.copy-{os.getpid()}")
    try:
        with open_read(source) as env:
            _copy_into(env, source, building, compact, progress)
        os.rename(building, target.path)
        _fsync_path(parent)
    except lmdb.Error as exc:
        raise ToolError(f"cannot copy {source} to {target}: {exc}") from exc
    except OSError as exc:
        raise ToolError(f"cannot copy {source} to {target}: {_cause(exc)}") from exc
    finally:
        _remove_tree(building)
    return target


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(first: str, second: str) -> bool:
    """Swap two directories in one atomic rename, with Linux's
    renameat2(RENAME_EXCHANGE). Returns False where that is missing or
    the file system does not support it."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    renameat2.restype = ctypes.c_int
    result = renameat2(
        _AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE
    )
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), first, None, second)


@dataclass
class CompactResult:
    """Sizes of data.mdb before and after compact(), in bytes, and the
    processes that had the store open."""

    before: int
    after: int
    other_processes: list[int] = field(default_factory=list)


def _compact_names(location: Location) -> tuple[str, str, str]:
    parent, name = os.path.split(os.path.abspath(location.path))
    return (
        parent,
        os.path.join(parent, f".{name}.compacting"),
        os.path.join(parent, f".{name}.compact-old"),
    )


def _recover_compaction(location: Location) -> None:
    """Clean up after a compact() that was killed.

    The building directory contains a partial copy, or after the swap the
    old store. The store path contains a whole store in both cases, so
    the building directory is deleted. Only the two-rename swap can leave
    the store path missing, with the old store whole under its old name,
    which then goes back.
    """
    _parent, building, old = _compact_names(location)
    if os.path.isdir(old):
        if not os.path.exists(location.path):
            os.rename(old, location.path)
        else:
            _remove_tree(old)
    _remove_tree(building)


def _locate_for_compaction(path: str) -> Location:
    """Locate the store at path, also where a killed compact() left it
    moved aside by the two-rename swap."""
    try:
        return locate(path)
    except ToolError:
        bare = _strip(path)
        for candidate in (
            Location(bare if bare.endswith(SUFFIX) else bare + SUFFIX, "sharedb"),
            Location(bare, "lmdb"),
        ):
            old = _compact_names(candidate)[2]
            if os.path.isdir(old) and not os.path.exists(candidate.path):
                return candidate
        raise


def _swap_in(location: Location, building: str, old: str) -> None:
    """Put the directory building in place of the store directory.

    With renameat2(RENAME_EXCHANGE), one system call swaps the two
    names, so the store path contains the old or the new store at every
    moment. Elsewhere two renames move the old store aside and the new
    one in. Between them the store path is missing: a crash there leaves
    the old store whole as `old`, which the next compact() moves back.
    """
    if _exchange(building, location.path):
        os.rename(building, old)
        return
    os.rename(location.path, old)
    os.rename(building, location.path)


def compact(
    path: str, force: bool = False, progress: Progress | None = None
) -> CompactResult:
    """Rewrite the store at path without its free pages, in place.

    Steps:
    1. Take LMDB's writer lock, so that no process commits until the end.
    2. Copy the store with compaction into a hidden directory beside it,
       with its ShareDB.config, and flush both to disk.
    3. Swap the two directories (see _swap_in()).
    4. Release the lock and delete the old directory.

    A crash before the swap leaves the old store in place, and a crash
    after it the new one. Both are whole, because the copy is on disk
    before the swap. The next compact() deletes what is left over.

    Processes that have the store open keep the old files: they go on
    reading the old snapshot, and their writes after the swap go to
    files that are deleted, so they are lost. So compact() raises
    ToolError while other live processes are registered as readers of
    the store, unless force=True.
    """
    location = _locate_for_compaction(path)
    parent, building, old = _compact_names(location)
    try:
        _recover_compaction(location)
    except OSError as exc:
        raise ToolError(
            f"cannot clean up an earlier compaction of {location}: {_cause(exc)}"
        ) from exc
    before = os.path.getsize(location.data_file)
    config = read_config(location)
    meta = read_meta(location.data_file)
    try:
        env = lmdb.Environment(
            location.path,
            create=False,
            map_size=_read_map_size(location, meta),
            max_readers=config.readers if config else _DEFAULT_MAX_READERS,
        )
    except (lmdb.Error, OSError) as exc:
        raise ToolError(f"cannot open {location} for writing: {_cause(exc)}") from exc
    try:
        others = _other_processes(location, env, force)
        with _writer_lock(env):
            _copy_into(env, location, building, True, progress)
            # A process that opened the store during the copy would keep
            # the old files too; this narrows the window to the swap.
            others = sorted(set(others) | set(_other_processes(location, env, force)))
            _swap_in(location, building, old)
            _fsync_path(parent)
    except lmdb.Error as exc:
        _remove_tree(building)
        raise ToolError(f"cannot compact {location}: {exc}") from exc
    except OSError as exc:
        _remove_tree(building)
        raise ToolError(f"cannot compact {location}: {_cause(exc)}") from exc
    finally:
        env.close()
    _remove_tree(old)
    after = os.path.getsize(location.data_file)
    return CompactResult(before=before, after=after, other_processes=others)


def _other_processes(
    location: Location, env: lmdb.Environment, force: bool
) -> list[int]:
    """Return the live processes registered as readers of env, and raise
    ToolError if there are any, unless force is true."""
    others: list[int] = reader_summary(env)["reader_processes"]
    if others and not force:
        listed = ", ".join(str(pid) for pid in others)
        raise ToolError(
            f"cannot compact {location}: process{'es' if len(others) > 1 else ''} "
            f"{listed} {'have' if len(others) > 1 else 'has'} it open and would "
            f"lose later writes; close {'them' if len(others) > 1 else 'it'} "
            f"first, or force the compaction"
        )
    return others


@contextmanager
def _writer_lock(env: lmdb.Environment) -> Iterator[None]:
    """Hold env's writer lock, which no process can commit without,
    from another thread: the copy runs its own read transaction in this
    one, and LMDB allows one transaction per thread."""
    taken = threading.Event()
    release = threading.Event()
    failure: list[BaseException] = []

    def hold() -> None:
        try:
            txn = env.begin(write=True)
        except BaseException as exc:  # noqa: BLE001 - raised in the caller below
            failure.append(exc)
            taken.set()
            return
        taken.set()
        release.wait()
        txn.abort()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    taken.wait()
    if failure:
        thread.join()
        raise failure[0]
    try:
        yield
    finally:
        release.set()
        thread.join()


# Dump ---------------------------------------------------------------------


def dump(
    path: str,
    out: IO[bytes],
    printable: bool = False,
    decoded: bool = False,
    database: str | None = None,
    all_databases: bool = False,
    progress: Progress | None = None,
) -> int:
    """Write the records of the store at path to out; return their number.

    The output is in mdb_dump's format (bytevalue, or print with
    printable=True), and for the main database equals what mdb_dump
    writes, except for backslashes in print format (see the module
    docstring). decoded=True writes JSON lines instead (see to_json()).
    database names one named database of a plain LMDB directory, and
    all_databases=True dumps each named database, after the main
    database's plain records if it has any (mdb_dump -a leaves those
    out).
    """
    if decoded:
        if database is not None or all_databases:
            raise ToolError("a decoded dump reads the main database only")
        return _dump_decoded(path, out, progress)
    location = locate(path)
    with _open_with_databases(location) as (env, names):
        if database is not None:
            name = os.fsencode(database)
            flags = dict(names).get(name)
            if flags is None:
                raise ToolError(f"{location} has no named database {database!r}")
            sections: list[tuple[bytes | None, int]] = [(name, flags)]
        elif all_databases:
            sections = [(name, flags) for name, flags in names]
        else:
            sections = [(None, -1)]
        try:
            with env.begin() as txn:
                return _dump_sections(
                    location,
                    env,
                    txn,
                    sections,
                    names,
                    printable,
                    all_databases,
                    out,
                    progress,
                )
        except lmdb.Error as exc:
            raise ToolError(f"cannot read {location}: {exc}") from exc


def _dump_sections(
    location: Location,
    env: lmdb.Environment,
    txn: lmdb.Transaction,
    sections: list[tuple[bytes | None, int]],
    names: list[tuple[bytes, int]],
    printable: bool,
    all_databases: bool,
    out: IO[bytes],
    progress: Progress | None,
) -> int:
    meta = read_meta(location.data_file)
    info = env.info()
    page_size = txn.stat()["psize"]
    map_size = max(meta.map_size, (info["last_pgno"] + 1) * page_size)
    total = 0
    if all_databases:
        named = {name for name, _flags in names}
        plain = [(key, value) for key, value in txn.cursor() if key not in named]
        if plain:
            header = Header(
                printable,
                None,
                map_size,
                info["max_readers"],
                meta.main_flags,
                page_size,
            )
            total += _dump_records(out, header, plain, len(plain), progress, 0)
    for name, flags in sections:
        db = None if name is None else env.open_db(name, create=False)
        header = Header(
            printable,
            name,
            map_size,
            info["max_readers"],
            meta.main_flags if name is None else flags,
            page_size,
        )
        total += _dump_records(
            out, header, txn.cursor(db), txn.stat(db)["entries"], progress, total
        )
    return total


def _dump_records(
    out: IO[bytes],
    header: Header,
    records: Iterable[tuple[bytes, bytes]],
    entries: int,
    progress: Progress | None,
    done: int,
) -> int:
    out.write(format_header(header))
    count = 0
    lines = []
    for key, value in records:
        lines.append(encode_item(key, header.printable))
        lines.append(encode_item(value, header.printable))
        count += 1
        if len(lines) >= 2048:
            out.write(b"".join(lines))
            lines.clear()
            if progress is not None:
                progress(done + count, done + entries)
    out.write(b"".join(lines))
    out.write(b"DATA=END\n")
    if progress is not None:
        progress(done + count, done + entries)
    return count


def _dump_decoded(path: str, out: IO[bytes], progress: Progress | None) -> int:
    with open_decoded(path) as store:
        total = len(store)
        count = 0
        try:
            for key, value in store.items():
                out.write(json_line(key, value))
                count += 1
                if progress is not None and count % 1024 == 0:
                    progress(count, total)
        except lmdb.Error as exc:
            raise ToolError(f"cannot read {path}: {exc}") from exc
        if progress is not None:
            progress(count, max(total, count))
        return count


# Load ---------------------------------------------------------------------


def _input_size(stream: IO[bytes]) -> int:
    """Return the size of the regular file behind stream, or 0."""
    try:
        status = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return 0
    return status.st_size if stat.S_ISREG(status.st_mode) else 0


def _batches(
    records: Iterable[tuple[bytes, bytes]],
) -> Iterator[list[tuple[bytes, bytes]]]:
    batch: list[tuple[bytes, bytes]] = []
    size = 0
    for key, value in records:
        batch.append((key, value))
        size += len(key) + len(value)
        if len(batch) >= _LOAD_BATCH_RECORDS or size >= _LOAD_BATCH_BYTES:
            yield batch
            batch = []
            size = 0
    if batch:
        yield batch


@dataclass
class LoadResult:
    """Counts of one load(): records read and stored, the store loaded into,
    and warnings about the input."""

    read: int = 0
    stored: int = 0
    location: Location | None = None
    warnings: list[str] = field(default_factory=list)


def load(
    path: str,
    inp: IO[bytes],
    decoded: bool = False,
    plain: bool = False,
    serial: str | None = None,
    compress: bool | None = None,
    overwrite: bool = True,
    progress: Progress | None = None,
) -> LoadResult:
    """Store the records of a dump read from inp in the store at path.

    inp holds mdb_dump's format (from dump() or mdb_dump), or with
    decoded=True the JSON lines of a decoded dump. A missing store is
    created: a ShareDB store with serial and compress (default 'pickle'
    and False, like ShareDB(); for a raw dump they are detected from
    its first records when not given), or with plain=True a plain LMDB
    directory at path, with the dump's mapsize and maxreaders. Named
    database sections go to plain LMDB directories only. overwrite=False
    keeps the value of a key that is already there. Records commit in
    batches, so a failed load leaves the batches before the failure.
    """
    target = locate_target(path, plain)
    if decoded:
        if target.kind != "sharedb":
            raise ToolError(
                f"{target} is a plain LMDB directory; a decoded dump loads into a "
                f"ShareDB store only"
            )
        return _load_decoded(target, inp, serial, compress, overwrite, progress)
    result = LoadResult(location=target)
    reader = LineReader(inp)
    size = _input_size(inp)

    def report() -> None:
        if progress is not None:
            progress(reader.bytes_read, size)

    try:
        while True:
            header = parse_header(reader, result.warnings.append)
            if header is None:
                break
            _check_loadable(target, header, reader)
            records = read_records(reader, header.printable)
            if target.kind == "lmdb":
                _load_plain_section(target, header, records, overwrite, result, report)
            else:
                _load_store_section(
                    target,
                    header,
                    records,
                    serial,
                    compress,
                    overwrite,
                    result,
                    report,
                )
    except DumpFormatError as exc:
        raise ToolError(f"cannot load the dump into {target}: {exc}") from exc
    except lmdb.Error as exc:
        raise ToolError(f"cannot load the dump into {target}: {exc}") from exc
    except OSError as exc:
        raise ToolError(f"cannot load the dump into {target}: {_cause(exc)}") from exc
    if result.read == 0 and reader.number == 0:
        raise ToolError(f"cannot load the dump into {target}: the input is empty")
    report()
    return result


def _check_loadable(target: Location, header: Header, reader: LineReader) -> None:
    if header.flags:
        names = [name for bit, name in FLAG_NAMES if header.flags & bit]
        raise reader.error(
            f"the database uses {', '.join(names)}, which sharedb.lmdb cannot "
            f"create; load this dump with mdb_load"
        )
    if header.database is not None and target.kind != "lmdb":
        raise reader.error(
            f"the section of named database {show_bytes(header.database)} can only "
            f"load into a plain LMDB directory, not a ShareDB store"
        )


def _put_batches(
    env: lmdb.Environment,
    db: lmdb.Database | None,
    records: Iterable[tuple[bytes, bytes]],
    overwrite: bool,
    result: LoadResult,
    report: Callable[[], None],
    grow: bool,
) -> None:
    for batch in _batches(records):
        while True:
            try:
                with env.begin(write=True) as txn:
                    _consumed, added = txn.putmulti(batch, overwrite=overwrite, db=db)
                break
            except lmdb.MapFullError:
                if not grow:
                    raise
                env.set_mapsize(env.info()["map_size"] * 2)
        result.read += len(batch)
        result.stored += added
        report()


def _load_plain_section(
    target: Location,
    header: Header,
    records: Iterable[tuple[bytes, bytes]],
    overwrite: bool,
    result: LoadResult,
    report: Callable[[], None],
) -> None:
    """Load one section into a plain LMDB directory, as mdb_load does:
    the map size and reader slots come from the header, and the map
    doubles whenever it fills."""
    os.makedirs(target.path, exist_ok=True)
    env = lmdb.Environment(
        target.path,
        map_size=header.map_size or _DEFAULT_LOAD_MAP_SIZE,
        max_readers=header.max_readers or _DEFAULT_MAX_READERS,
        max_dbs=1 if header.database is not None else 0,
    )
    try:
        db = None
        if header.database is not None:
            db = env.open_db(header.database, create=True)
        _put_batches(env, db, records, overwrite, result, report, grow=True)
    finally:
        env.close()


def _detect_settings(records: list[tuple[bytes, bytes]]) -> tuple[str, bool] | None:
    """Return the (serial, compress) that decode every record given, if
    exactly one does."""
    fitting = [
        (serial, compress)
        for serial in ("pickle", "msgpack")
        for compress in (False, True)
        if _decodes(records, serial, compress)
    ]
    return fitting[0] if len(fitting) == 1 else None


def _decodes(records: list[tuple[bytes, bytes]], serial: str, compress: bool) -> bool:
    decode = pickle.loads if serial == "pickle" else _lmdb.msgpack_unpack
    try:
        for key, value in records:
            decode(key)
            decode(zlib.decompress(value) if compress else value)
    except Exception:  # noqa: BLE001 - any failure rules the setting out
        return False
    return True


def _open_store_for_load(
    target: Location,
    serial: str | None,
    compress: bool | None,
    readers: int | None,
    sample: list[tuple[bytes, bytes]] | None,
    warnings: list[str],
) -> Any:
    """Open the ShareDB store that load() writes to, creating it if it is
    missing.

    sample is the first records of a raw dump (None for a decoded one):
    they set the serializer of a new store unless serial and compress are
    given, and must decode with the settings of an existing one.
    """
    from sharedb.store import ShareDB

    existing = read_config(target) if os.path.isdir(target.path) else None
    if existing is not None:
        for name, given, kept in (
            ("serial", serial, existing.serial),
            ("compress", compress, existing.compress),
        ):
            if given is not None and given != kept:
                warnings.append(
                    f"{target} keeps its {name}={kept}, so the given {name}={given} "
                    f"is ignored"
                )
        if sample and not _decodes(sample, existing.serial, existing.compress):
            raise ToolError(
                f"cannot load the dump into {target}: its records do not decode "
                f"with the store's serial={existing.serial} and "
                f"compress={existing.compress}; load it into a new store"
            )
        return ShareDB(target.path)
    if (serial is None or compress is None) and sample:
        detected = _detect_settings(sample)
        if detected is None:
            raise ToolError(
                f"cannot tell the serializer of the records loaded into the new "
                f"store {target}; give serial and compress"
            )
        serial = detected[0] if serial is None else serial
        compress = detected[1] if compress is None else compress
    options: dict[str, Any] = {
        "serial": serial or "pickle",
        "compress": bool(compress),
    }
    if readers:
        options["readers"] = readers
    return ShareDB(target.path, **options)


def _load_store_section(
    target: Location,
    header: Header,
    records: Iterator[tuple[bytes, bytes]],
    serial: str | None,
    compress: bool | None,
    overwrite: bool,
    result: LoadResult,
    report: Callable[[], None],
) -> None:
    """Load one section of raw records into a ShareDB store, through a
    ShareDB object, which opens the store with its map and size cap.

    NOTE: writing raw records needs the store's Environment, which
    ShareDB exposes only as the private _env.
    """
    sample = []
    for record in records:
        sample.append(record)
        if len(sample) >= 16:
            break
    store = _open_store_for_load(
        target, serial, compress, header.max_readers, sample, result.warnings
    )
    try:
        env = store._env
        _put_batches(env, None, sample, overwrite, result, report, grow=False)
        _put_batches(env, None, records, overwrite, result, report, grow=False)
        env.sync(True)
    finally:
        store.close()


def _load_decoded(
    target: Location,
    inp: IO[bytes],
    serial: str | None,
    compress: bool | None,
    overwrite: bool,
    progress: Progress | None,
) -> LoadResult:
    result = LoadResult(location=target)
    size = _input_size(inp)
    done = 0
    number = 0

    def records() -> Iterator[tuple[Any, Any]]:
        nonlocal done, number
        for line in inp:
            number += 1
            done += len(line)
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                key = from_json(record["key"])
                value = from_json(record["value"])
            except (ValueError, KeyError, TypeError) as exc:
                raise ToolError(
                    f"cannot load line {number} into {target}: {_cause(exc)}"
                ) from exc
            yield key, value

    store = _open_store_for_load(target, serial, compress, None, None, result.warnings)
    try:
        batch: list[tuple[Any, Any]] = []
        for item in records():
            batch.append(item)
            if len(batch) >= _LOAD_BATCH_RECORDS:
                _store_decoded(store, batch, overwrite, result, number)
                if progress is not None:
                    progress(done, size)
        _store_decoded(store, batch, overwrite, result, number)
        store.sync()
    finally:
        store.close()
    if progress is not None:
        progress(done, size)
    return result


def _store_decoded(
    store: Any,
    batch: list[tuple[Any, Any]],
    overwrite: bool,
    result: LoadResult,
    line: int,
) -> None:
    if not batch:
        return
    if not overwrite:
        present = store.has_multikey([key for key, _ in batch])
        batch[:] = [item for item, found in zip(batch, present) if not found]
    try:
        store.multiset(batch)
    except Exception as exc:  # serializers raise errors of many types
        raise ToolError(
            f"cannot store the records before line {line + 1} in {store.path}: "
            f"{_cause(exc)}"
        ) from exc
    result.read += len(batch)
    result.stored += len(batch)
    batch.clear()


# Check --------------------------------------------------------------------


@dataclass
class CheckReport:
    """The outcome of check_report()."""

    method: str
    problems: list[str]
    entries: int = 0
    pages: int = 0


FALLBACK_METHOD = (
    "fallback check, since sharedb.lmdb.verify is not available: every record "
    "was read in one read transaction and the counts compared with the B-tree "
    "statistics; pages that no record leads to were not checked"
)


def check(path: str, progress: Progress | None = None) -> list[str]:
    """Verify the store at path; return the problems found (none: [])."""
    return check_report(path, progress).problems


def check_report(path: str, progress: Progress | None = None) -> CheckReport:
    """Verify the store at path.

    With sharedb.lmdb.verify() every page is checked. Without it, the
    fallback reads every record in a child process, so that a page
    corrupted badly enough to crash LMDB is reported instead of ending
    this process, and compares the counts with stat().
    """
    location = locate(path)
    verify = getattr(lmdb, "verify", None)
    if verify is not None:
        # verify() reports no progress, so the bar shows only the start
        # and the end.
        if progress is not None:
            progress(0, 0)
        try:
            outcome = verify(location.path)
        except (lmdb.Error, OSError) as exc:
            return CheckReport("sharedb.lmdb.verify", [f"{location}: {_cause(exc)}"])
        entries = int(outcome.get("entries") or 0)
        if progress is not None:
            progress(entries, entries)
        return CheckReport(
            "sharedb.lmdb.verify: every page was checked",
            [str(problem) for problem in outcome["problems"]],
            # A file too short to open gives None counts.
            entries=entries,
            pages=int(outcome.get("pages") or 0),
        )
    problems = []
    try:
        meta = read_meta(location.data_file)
    except ToolError as exc:
        return CheckReport(FALLBACK_METHOD, [str(exc)])
    if meta.valid_metas < 2:
        problems.append(
            f"{location.data_file}: one of the two meta pages is invalid; LMDB "
            f"uses the other"
        )
    size = os.path.getsize(location.data_file)
    needed = (meta.last_pgno + 1) * meta.page_size
    if size < needed:
        problems.append(
            f"{location.data_file} is truncated: it has {size} bytes, but its last "
            f"page in use ends at byte {needed}"
        )
        return CheckReport(FALLBACK_METHOD, problems)
    scan = _scan_in_child(location, progress)
    problems.extend(scan.get("problems", []))
    return CheckReport(
        FALLBACK_METHOD,
        problems,
        int(scan.get("entries", 0)),
        int(scan.get("pages", 0)),
    )


def _scan_command(location: Location) -> list[str]:
    return [
        sys.executable,
        "-m",
        "sharedb._tools",
        "scan",
        location.path,
        location.kind,
    ]


def _scan_in_child(location: Location, progress: Progress | None) -> dict[str, Any]:
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(path for path in sys.path if path)
    result: dict[str, Any] = {}
    with tempfile.TemporaryFile() as errors:
        child = subprocess.Popen(
            _scan_command(location),
            stdout=subprocess.PIPE,
            stderr=errors,
            env=environment,
        )
        assert child.stdout is not None
        for line in child.stdout:
            kind, _space, rest = line.partition(b" ")
            if kind == b"progress" and progress is not None:
                done, total = rest.split()
                progress(int(done), int(total))
            elif kind == b"result":
                result = json.loads(rest)
        code = child.wait()
        errors.seek(0)
        stderr = errors.read().decode(errors="replace")
    if code < 0:
        name = _signal_name(-code)
        crash = (
            f"reading the records of {location} crashed the reading process with "
            f"{name}: a page of the data file is corrupted"
        )
        return {"problems": [crash]}
    if code != 0 or not result:
        last = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit {code}"
        return {"problems": [f"reading the records of {location} failed: {last}"]}
    return result


def _signal_name(number: int) -> str:
    import signal

    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _scan(location: Location, emit: Callable[[str], None]) -> dict[str, Any]:
    """Read every record of location and compare the counts with the
    statistics of each B-tree. Runs in the child process of check()."""
    problems: list[str] = []
    try:
        with _open_with_databases(location) as (env, names), env.begin() as txn:
            return _scan_snapshot(location, env, txn, names, problems, emit)
    except ToolError as exc:
        problems.append(str(exc))
    except lmdb.Error as exc:
        problems.append(f"reading {location} failed: {exc}")
    return {"problems": problems, "entries": 0, "pages": 0}


def _scan_snapshot(
    location: Location,
    env: lmdb.Environment,
    txn: lmdb.Transaction,
    names: list[tuple[bytes, int]],
    problems: list[str],
    emit: Callable[[str], None],
) -> dict[str, Any]:
    meta = read_meta(location.data_file)
    databases: list[tuple[lmdb.Database | None, str, int]] = [
        (None, "the main database", meta.main_flags)
    ]
    for name, flags in names:
        label = f"database {os.fsdecode(name)!r}"
        databases.append((env.open_db(name, create=False), label, flags))
    expected = sum(txn.stat(db)["entries"] for db, _label, _flags in databases)
    entries = pages = 0
    for db, label, flags in databases:
        stat = txn.stat(db)
        count = _scan_database(txn, db, flags, label, problems, emit, entries, expected)
        if count != stat["entries"]:
            problems.append(
                f"{label} of {location} has {count} records, but its B-tree "
                f"statistics count {stat['entries']}"
            )
        entries += count
        pages += stat["branch_pages"] + stat["leaf_pages"] + stat["overflow_pages"]
    last_pgno = env.info()["last_pgno"]
    # Only the meta page of this snapshot records the size of its free list.
    if meta.txnid == txn.id and pages + meta.free_db_pages + 2 > last_pgno + 1:
        problems.append(
            f"the B-trees of {location} count {pages + meta.free_db_pages} pages, "
            f"more than the {last_pgno - 1} pages after the two meta pages"
        )
    return {"problems": problems, "entries": entries, "pages": pages}


def _scan_database(
    txn: lmdb.Transaction,
    db: lmdb.Database | None,
    flags: int,
    label: str,
    problems: list[str],
    emit: Callable[[str], None],
    done: int,
    expected: int,
) -> int:
    byte_order = not flags & ORDER_FLAGS
    duplicates = bool(flags & DUPSORT)
    previous: bytes | None = None
    count = 0
    for key, value in txn.cursor(db):
        # The cursor copies each value into a bytes object, which reads
        # every byte, overflow pages included.
        if (
            byte_order
            and previous is not None
            and (key < previous or (key == previous and not duplicates))
        ):
            problems.append(
                f"{label}: key {key[:40]!r} comes after {previous[:40]!r}, out of order"
            )
        previous = key
        count += 1
        if count % 4096 == 0:
            emit(f"progress {done + count} {expected}")
    return count


# Decoded inspection -------------------------------------------------------


def parse_key(text: str) -> Any:
    """Return the Python literal in text, such as 'name', 42 or (1, 'a').

    Raises ValueError with the cause for text that is not a literal.
    """
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
        raise ValueError(
            f"{text!r} is not a Python literal ({type(exc).__name__}: "
            f"{getattr(exc, 'msg', None) or exc}); quote a str key, as in \"'name'\""
        ) from None


def keys(path: str) -> Iterator[Any]:
    """Yield the decoded keys of the store at path, in key order."""
    with open_decoded(path) as store:
        try:
            yield from store.keys()
        except lmdb.Error as exc:
            raise ToolError(f"cannot read {path}: {exc}") from exc


def get(path: str, key: str) -> Any:
    """Return the decoded value of key, given as a Python literal, in the
    store at path. Raises ToolError for an invalid or absent key."""
    try:
        parsed = parse_key(key)
    except ValueError as exc:
        raise ToolError(f"invalid key: {exc}") from None
    with open_decoded(path) as store:
        try:
            value = store.get(parsed)
        except lmdb.Error as exc:
            raise ToolError(f"cannot read {path}: {exc}") from exc
        except (TypeError, ValueError) as exc:
            raise ToolError(f"invalid key {key}: {_cause(exc)}") from exc
    if value is None:
        raise ToolError(f"key {parsed!r} not found in {locate(path)}")
    return value


def _main(argv: list[str]) -> int:
    """Run the record scan of check() in a child process: argv is
    ['scan', directory, kind]. Writes progress lines and one result line
    to stdout."""
    if len(argv) != 3 or argv[0] != "scan":
        print("usage: python -m sharedb._tools scan DIRECTORY KIND", file=sys.stderr)
        return 2

    def emit(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    result = _scan(Location(argv[1], argv[2]), emit)
    emit("result " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
