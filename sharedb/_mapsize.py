"""How large a store's LMDB map is, and how its size cap is kept.

LMDB reads and writes a store through one memory map of fixed size, and
moving the map needs every transaction of the process to end first. On
64-bit POSIX systems the vendored LMDB grows the data file with the data,
so the map can cover the whole disk without costing disk space: it never
has to move, and a size cap (map_size) is kept by limiting where LMDB may
allocate pages instead. Where the map would size the file (Windows) or
the address space is small (32-bit builds), the map is the cap itself,
and an uncapped map starts small and doubles when it fills.

A capped store keeps some room below the cap for deletes: LMDB copies
each page a transaction changes, so a delete needs free pages too, and
without that room a full store could not be emptied.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass

# Maps are capped below this on 32-bit platforms, which cannot map more.
_MAX_32BIT_MAP = 1 << 30

# First size of a map that doubles when it fills.
INITIAL_GROWING_MAP = 64 << 20

# Room kept below the cap for deletes: a 64th of the cap, at least this.
_MIN_DELETE_ROOM = 64 << 10

# The map can cover the disk without sizing the data file to it.
VIRTUAL_MAP = sys.platform != "win32" and sys.maxsize > 2**32


@dataclass
class MapPlan:
    """How to open the environment of a store."""

    open_size: int  # map size in bytes
    grow: bool  # double the map when it fills
    insert_limit: int  # data file cap in bytes for writes that add; 0: none
    delete_limit: int  # the cap for writes that only delete; 0: none


def max_map_size() -> int:
    return _MAX_32BIT_MAP if sys.maxsize < 2**32 else sys.maxsize // 4


def disk_size(path: str) -> int:
    return shutil.disk_usage(path).total


def cap_limits(cap: int) -> tuple[int, int]:
    """Return (insert limit, delete limit) in bytes for a cap."""
    room = max(_MIN_DELETE_ROOM, cap // 64)
    insert = cap - room if cap > 2 * room else cap // 2
    # 0 would mean no limit; a cap too small for any record stays a cap.
    return max(insert, 1), cap


def plan(path: str, map_size: int, map_auto: bool) -> MapPlan:
    """Plan the map of the store directory path.

    map_size is the cap in bytes, ignored if map_auto (no cap).
    """
    if VIRTUAL_MAP:
        size = disk_size(path)
        if map_auto:
            return MapPlan(min(size, max_map_size()), True, 0, 0)
        insert, delete = cap_limits(map_size)
        return MapPlan(min(max(size, map_size), max_map_size()), False, insert, delete)
    if map_auto:
        try:
            used = os.path.getsize(os.path.join(path, "data.mdb"))
        except OSError:
            used = 0
        return MapPlan(max(INITIAL_GROWING_MAP, 2 * used), True, 0, 0)
    insert, _ = cap_limits(map_size)
    return MapPlan(min(map_size, max_map_size()), False, insert, 0)
