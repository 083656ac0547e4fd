"""The benchmark's workload: keys, values, key orders and expected checksums.

Both the driver (bench.py) and every worker (_worker.py) import this module,
so all systems in a round use the same keys in the same order. It uses only
the standard library because it runs in each system's virtualenv.
"""

from __future__ import annotations

import hashlib
import random
from array import array

# Values are [k, 2 * k, TEXT]. Overwrites in the set operation store
# NEW_TEXT, of the same length, so the overwrite changes the stored bytes
# but not their size.
TEXT = "abcdefgh"
NEW_TEXT = "ABCDEFGH"


def value(key: int) -> list:
    return [key, 2 * key, TEXT]


def new_value(key: int) -> list:
    return [key, 2 * key, NEW_TEXT]


def absent_count(records: int) -> int:
    """Return how many absent keys the contains operation looks up."""
    return max(1, records // 10)


def _shuffled(count: int, rng: random.Random) -> list[int]:
    keys = list(range(count))
    rng.shuffle(keys)
    return keys


class Plan:
    """Key orders of one round, all drawn from one seed.

    Keys are 0 .. records - 1. The contains order adds absent_count(records)
    keys from records upwards. Every list is drawn in a fixed sequence from
    random.Random(seed), so two processes on the same Python release build
    the same lists. The driver compares digests to check that they did.
    """

    def __init__(self, records: int, seed: int, write_sample: int) -> None:
        rng = random.Random(seed)
        self.records = records
        self.load_order = _shuffled(records, rng)
        self.get_order = _shuffled(records, rng)
        self.contains_order = _shuffled(records + absent_count(records), rng)
        sample = min(records, write_sample)
        self.set_keys = rng.sample(range(records), sample)
        self.delete_keys = rng.sample(range(records), sample)

    def digest(self) -> str:
        """Return a hash of every key order, to compare across processes."""
        hasher = hashlib.blake2b(digest_size=16)
        for keys in (
            self.load_order,
            self.get_order,
            self.contains_order,
            self.set_keys,
            self.delete_keys,
        ):
            hasher.update(array("Q", keys).tobytes())
        return hasher.hexdigest()


def big_plan(records: int, seed: int, reads: int) -> tuple[list[int], list[int]]:
    """Return (load order, read keys) for the large-store run.

    The read keys are a random sample of min(reads, records) distinct keys.
    """
    rng = random.Random(seed)
    load_order = _shuffled(records, rng)
    read_keys = rng.sample(range(records), min(reads, records))
    return load_order, read_keys


def read_order(records: int, seed: int, reads: int) -> list[int]:
    """Return reads keys: shuffled passes over all keys, cut to length."""
    keys = _shuffled(records, random.Random(seed))
    passes = -(-reads // records)
    return (keys * passes)[:reads]


def key_digest(keys: list[int]) -> str:
    return hashlib.blake2b(array("Q", keys).tobytes(), digest_size=16).hexdigest()


def value_checksum(keys: list[int]) -> int:
    """Return the checksum of reading the values of keys: sum of v[0] + v[1]."""
    return 3 * sum(keys)


def expected_checksums(
    records: int, write_sample: int, len_calls: int
) -> dict[str, int]:
    """Return the checksum each operation of a correct system reports.

    Read operations sum v[0] + v[1] over the values they return, contains
    counts the keys found, len returns the length, and load, set and delete
    report the length of the store after them (delete before re-inserting).
    """
    all_keys = 3 * records * (records - 1) // 2
    sample = min(records, write_sample)
    return {
        "load": records,
        "get": all_keys,
        "get_method": all_keys,
        "contains": records,
        "multiget": all_keys,
        "items": all_keys,
        "len": records,
        "set": records,
        "delete": records - sample,
    }
