"""Canonical pickle bytes for keys.

Pickle writes a reference to an earlier object when the same object
appears twice (its memo), so two equal tuples of strings can pickle to
different bytes depending on which strings are the same object, and a set
pickles in an order that depends on the string hash seed. A key must
address the same record whatever objects it was built from, so before
pickling, keys are rebuilt so that equal parts are the same object and
sets come out in a fixed order.

Keys that are a lone int, float, str, bytes or bool never reach this
module: the C core pickles them directly.
"""

from __future__ import annotations

import pickle
import struct
from typing import Any

PROTOCOL = pickle.HIGHEST_PROTOCOL

# Types whose equal instances are merged into one object. Pickle memoizes
# exactly these among the builtins, so merging them decides whether it
# writes a reference or a second copy. Values of other builtin types
# (int, float, bool, None) are never memoized.
_MERGED_ATOMS = (str, bytes)


class _SortedSet:
    """Stand-in for a set or frozenset that pickles its items sorted.

    Unpickling calls the original type with the sorted list, so the key
    reads back as the set it was.
    """

    __slots__ = ("kind", "items")

    def __init__(self, kind: type, items: list[Any]) -> None:
        self.kind = kind
        self.items = items

    def __reduce__(self) -> tuple[type, tuple[list[Any]]]:
        return (self.kind, (self.items,))


def pickle_key(key: object) -> bytes:
    """Return the canonical pickle bytes of key.

    Tuples of ints, floats, strs, bytes and bools whose equal strs and
    bytes are already one object keep the bytes plain pickle.dumps gives.
    """
    return pickle.dumps(_Canonicalizer().rebuild(key), PROTOCOL)


class _Canonicalizer:
    """Rebuild a key so that equal parts are one object."""

    def __init__(self) -> None:
        # Maps a signature of exact type and value to the first object
        # with it. The signature tells 1, 1.0 and True apart, which
        # compare equal but pickle differently.
        self.merged: dict[object, object] = {}

    def rebuild(self, obj: object) -> object:
        return self._rebuild(obj)[0]

    def _share(self, signature: object, obj: object) -> object:
        return self.merged.setdefault(signature, obj)

    def _rebuild(self, obj: object) -> tuple[object, object]:
        """Return (canonical object, signature) for obj."""
        kind = type(obj)
        if kind in _MERGED_ATOMS:
            signature = (kind, obj)
            return self._share(signature, obj), signature
        if kind is tuple:
            parts = [self._rebuild(item) for item in obj]  # type: ignore[attr-defined]
            signature = (tuple, tuple(part[1] for part in parts))
            rebuilt = tuple(part[0] for part in parts)
            return self._share(signature, rebuilt), signature
        if kind is list:
            parts = [self._rebuild(item) for item in obj]  # type: ignore[attr-defined]
            signature = (list, tuple(part[1] for part in parts))
            rebuilt_list = [part[0] for part in parts]
            return self._share(signature, rebuilt_list), signature
        if kind is dict:
            return self._rebuild_dict(obj)  # type: ignore[arg-type]
        if kind is set or kind is frozenset:
            return self._rebuild_set(kind, obj)  # type: ignore[arg-type]
        return obj, _leaf_signature(obj)

    def _rebuild_dict(self, obj: dict[Any, Any]) -> tuple[object, object]:
        entries = []
        for key, value in obj.items():
            rebuilt_key, key_signature = self._rebuild(key)
            rebuilt_value, value_signature = self._rebuild(value)
            order = pickle.dumps(rebuilt_key, PROTOCOL)
            entries.append((order, rebuilt_key, rebuilt_value, key_signature,
                            value_signature))
        entries.sort(key=lambda entry: entry[0])
        signature = (dict, tuple((entry[3], entry[4]) for entry in entries))
        rebuilt = {entry[1]: entry[2] for entry in entries}
        return self._share(signature, rebuilt), signature

    def _rebuild_set(self, kind: type, obj: Any) -> tuple[object, object]:
        parts = [self._rebuild(item) for item in obj]
        parts.sort(key=lambda part: pickle.dumps(part[0], PROTOCOL))
        signature = (kind, tuple(part[1] for part in parts))
        rebuilt = _SortedSet(kind, [part[0] for part in parts])
        return self._share(signature, rebuilt), signature


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
    if kind is complex:
        return (kind, struct.pack("<dd", obj.real, obj.imag))  # type: ignore[attr-defined]
    return (kind, id(obj))
