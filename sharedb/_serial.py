"""Canonical pickle bytes for keys.

Pickle writes a reference to an earlier object when the same object
appears twice (its memo), so two equal tuples of strings can pickle to
different bytes depending on which strings are the same object, and a set
pickles in its iteration order, which for strings depends on the hash
seed of the process. A key must address the same record whatever objects
it was built from and in whichever process, so before pickling, keys are
rebuilt: equal parts become one object, and sets get a fixed order.

Keys that are a lone int, float, str, bytes or bool never reach this
module: the C core pickles them directly.
"""

from __future__ import annotations

import io
import pickle
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, cast

if TYPE_CHECKING:
    from sharedb import _lmdb
    from sharedb._config import Config

PROTOCOL = pickle.HIGHEST_PROTOCOL

# Types whose equal instances are merged into one object. Pickle memoizes
# these among the builtins, so merging them decides whether it writes a
# reference or a second copy; ints, floats, bools and None are never
# memoized.
_MERGED_ATOMS = (str, bytes)

# Types whose hash does not depend on the hash seed, so a set of them
# iterates in the same order in every process.
_STABLE_HASH_TYPES = (int, float, bool, complex, type(None))

# Builtin types that pickle reads back without importing anything.
_PLAIN_TYPES = (str, bytes, bytearray, int, float, bool, complex, type(None))


def pickle_key(key: object) -> bytes | tuple[bytes, bytes]:
    """Return the canonical pickle bytes of key.

    Tuples of ints, floats, strs, bytes and bools keep the bytes that
    pickle.dumps gives when their equal strs and bytes are one object,
    and sets of numbers the bytes it gives for a set built in sorted
    order. A key with equal parts that were merged, or with a dict or set
    that was put in order, returns (canonical bytes, older bytes): ShareDB
    2.0.2 pickled keys as given, so a key it wrote from separate equal
    strings, or with a dict in its insertion order, is stored under the
    older bytes, which the store looks for too. A set of strs pickles in
    an order that depends on the hash seed, so its older bytes only match
    a record written by a process with the same seed. Raises what pickling raises, and
    TypeError for a key whose pickle cannot be loaded back.
    """
    canonicalizer = _Canonicalizer()
    rebuilt = canonicalizer.rebuild(key)
    if canonicalizer.fixed_order_sets:
        buffer = io.BytesIO()
        _FixedOrderPickler(buffer, PROTOCOL).dump(rebuilt)
        data = buffer.getvalue()
    else:
        data = pickle.dumps(rebuilt, PROTOCOL)
    if not _is_plain(key, 0):
        try:
            pickle.loads(data)
        except Exception as exc:
            raise TypeError(
                f"the pickle of this key cannot be loaded back ({exc}), so it "
                f"cannot be stored"
            ) from exc
    if canonicalizer.repeats or canonicalizer.reordered:
        older = pickle.dumps(_unshared(key), PROTOCOL)
        if older != data:
            return data, older
    return data


def _unshared(obj: object) -> object:
    """Rebuild the plain parts of a key so that no two are one object.

    Strs and bytes of one character, and empty ones, stay shared: CPython
    keeps a single object for each of them.
    """
    if type(obj) is str and len(obj) > 1:
        return (obj + "\0")[:-1]
    if type(obj) is bytes and len(obj) > 1:
        return bytes(bytearray(obj))
    if type(obj) is tuple:
        return tuple(_unshared(item) for item in obj)
    return obj


def _is_plain(obj: object, depth: int) -> bool:
    """True if obj is made only of builtin types that pickle loads back
    without importing anything."""
    if depth > 50:
        return False
    kind = type(obj)
    if kind in _PLAIN_TYPES:
        return True
    if kind in (tuple, list, set, frozenset):
        items = cast("Iterable[object]", obj)
        return all(_is_plain(item, depth + 1) for item in items)
    if type(obj) is dict:
        return all(
            _is_plain(key, depth + 1) and _is_plain(value, depth + 1)
            for key, value in obj.items()
        )
    return False


class _FixedOrderSet:
    """A set or frozenset to pickle with its items in a given order."""

    __slots__ = ("kind", "items")

    def __init__(self, kind: type, items: list[object]) -> None:
        self.kind = kind
        self.items = items

    def __iter__(self) -> Iterator[object]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


class _FixedOrderPickler(pickle._Pickler):
    """The pure-Python pickler, which writes the same bytes as the C one,
    writing each _FixedOrderSet with the set opcodes of its kind and its
    items in their given order."""

    # typeshed leaves out the undocumented save_* methods of _Pickler.
    def save_fixed_order_set(self, obj: _FixedOrderSet) -> None:
        if obj.kind is frozenset:
            self.save_frozenset(obj)  # type: ignore[attr-defined]
        else:
            self.save_set(obj)  # type: ignore[attr-defined]

    # typeshed types the handlers of _Pickler.dispatch as taking an
    # Unpickler, but they take the pickler.
    dispatch: ClassVar[dict[type, Callable[[Any, Any], None]]] = dict(
        pickle._Pickler.dispatch
    )
    dispatch[_FixedOrderSet] = save_fixed_order_set


class _Canonicalizer:
    """Rebuild a key so that equal parts are one object and sets have a
    fixed order."""

    def __init__(self) -> None:
        # Maps a signature of exact type and value to the first object
        # with it. The signature tells 1, 1.0 and True apart, which
        # compare equal but pickle differently.
        self.merged: dict[object, object] = {}
        self.fixed_order_sets = False
        self.repeats = 0  # parts equal to an earlier part
        self.reordered = False  # a dict or set was put in a fixed order

    def rebuild(self, obj: object) -> object:
        return self._rebuild(obj)[0]

    def _share(self, signature: object, obj: object) -> object:
        if signature in self.merged:
            self.repeats += 1
            return self.merged[signature]
        self.merged[signature] = obj
        return obj

    def _rebuild(self, obj: object) -> tuple[object, object]:
        """Return (canonical object, signature) for obj."""
        # The branches test type(obj) rather than kind so that type
        # checkers narrow obj.
        kind = type(obj)
        signature: object
        if kind in _MERGED_ATOMS:
            signature = (kind, obj)
            return self._share(signature, obj), signature
        if type(obj) is tuple or type(obj) is list:
            parts = [self._rebuild(item) for item in obj]
            signature = (kind, tuple(part[1] for part in parts))
            items = [part[0] for part in parts]
            rebuilt = tuple(items) if kind is tuple else items
            return self._share(signature, rebuilt), signature
        if type(obj) is dict:
            return self._rebuild_dict(obj)
        if type(obj) is set or type(obj) is frozenset:
            return self._rebuild_set(type(obj), obj)
        return self._rebuild_other(obj)

    def _rebuild_other(self, obj: object) -> tuple[object, object]:
        """Merge equal hashable objects of one type, such as two equal
        dates, which pickle writes once and then as a reference when they
        are one object."""
        kind = type(obj)
        if obj is None or kind in (int, bool, float, complex):
            return obj, _leaf_signature(obj)
        signature = ("equal", kind, obj)
        try:
            return self._share(signature, obj), signature
        except Exception:
            # Unhashable, or __hash__ or __eq__ raised: kept as it is.
            return obj, (kind, id(obj))

    def _rebuild_dict(self, obj: dict[Any, Any]) -> tuple[object, object]:
        self.reordered = True
        entries = []
        for key, value in obj.items():
            rebuilt_key, key_signature = self._rebuild(key)
            rebuilt_value, value_signature = self._rebuild(value)
            order = pickle.dumps(rebuilt_key, PROTOCOL)
            entries.append(
                (order, rebuilt_key, rebuilt_value, key_signature, value_signature)
            )
        entries.sort(key=lambda entry: entry[0])
        signature = (dict, tuple((entry[3], entry[4]) for entry in entries))
        rebuilt = {entry[1]: entry[2] for entry in entries}
        return self._share(signature, rebuilt), signature

    def _rebuild_set(
        self,
        kind: type[set[Any] | frozenset[Any]],
        obj: set[Any] | frozenset[Any],
    ) -> tuple[object, object]:
        self.reordered = True
        parts = [self._rebuild(item) for item in obj]
        parts.sort(key=lambda part: pickle.dumps(part[0], PROTOCOL))
        items = [part[0] for part in parts]
        signature = (kind, tuple(part[1] for part in parts))
        rebuilt: object
        if all(_has_stable_hash(item) for item in items):
            # Built from sorted items, the set iterates in the same order
            # in every process, as a set of the same numbers built in
            # that order does.
            rebuilt = kind(items)
        else:
            rebuilt = _FixedOrderSet(kind, items)
            self.fixed_order_sets = True
        return self._share(signature, rebuilt), signature


def _has_stable_hash(obj: object) -> bool:
    if type(obj) in _STABLE_HASH_TYPES:
        return True
    if type(obj) is tuple or type(obj) is frozenset:
        return all(_has_stable_hash(item) for item in obj)
    return False


def _leaf_signature(obj: object) -> object:
    """Return the signature of an object that is not rebuilt.

    Ints, bools and None pickle by value. Floats are told apart by their
    bits, so that 0.0 and -0.0, which compare equal, stay distinct.
    Anything else is only ever equal to itself.
    """
    kind = type(obj)
    if obj is None or kind is int or kind is bool:
        return (kind, obj)
    if kind is float:
        return (kind, struct.pack("<d", obj))
    if type(obj) is complex:
        return (kind, struct.pack("<dd", obj.real, obj.imag))
    return (kind, id(obj))


def attach(store: _lmdb.Store, env: _lmdb.Environment, config: Config) -> None:
    """Attach env to store with the serializer, compression and sync
    threshold of config, and the pickle and zlib functions they use."""
    store._attach(
        env,
        config.serial,
        config.compress,
        config.sync_threshold,
        pickle_key,
        pickle.dumps,
        pickle.loads,
        PROTOCOL,
        zlib.compress,
        zlib.decompress,
    )
