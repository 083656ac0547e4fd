"""Tests of sharedb.lmdb.Cursor: positioning, reading, writing, iteration."""

import pytest

from sharedb import lmdb

RECORDS = [(b"a", b"1"), (b"b", b"2"), (b"c", b"3"), (b"d", b"4"), (b"e", b"5")]
KEYS = [key for key, _ in RECORDS]
VALUES = [value for _, value in RECORDS]


def fill(env, records=RECORDS, db=None):
    with env.begin(write=True) as txn:
        txn.putmulti(records, db=db)


def key_or_none(cursor):
    """Return the key under cursor, or None when it is not placed."""
    try:
        return cursor.key()
    except lmdb.NotFoundError:
        return None


@pytest.fixture
def rtxn(env):
    """A read transaction on env holding RECORDS."""
    fill(env)
    txn = env.begin()
    yield txn
    txn.abort()


@pytest.fixture
def cursor(rtxn):
    """A fresh cursor over RECORDS."""
    return rtxn.cursor()


@pytest.fixture
def wtxn(env):
    """A write transaction on env holding RECORDS, aborted at teardown."""
    fill(env)
    txn = env.begin(write=True)
    yield txn
    txn.abort()


@pytest.fixture
def empty_cursor(env):
    txn = env.begin()
    yield txn.cursor()
    txn.abort()


# ---------------------------------------------------------------------------
# Positioning


def test_first_returns_true(cursor):
    assert cursor.first() is True


def test_first_places_on_first(cursor):
    cursor.first()
    assert cursor.key() == b"a"


def test_last_returns_true(cursor):
    assert cursor.last() is True


def test_last_places_on_last(cursor):
    cursor.last()
    assert cursor.key() == b"e"


def test_next_walks_forward(cursor):
    cursor.first()
    keys = [cursor.key()]
    while cursor.next():
        keys.append(cursor.key())
    assert keys == KEYS


def test_prev_walks_backward(cursor):
    cursor.last()
    keys = [cursor.key()]
    while cursor.prev():
        keys.append(cursor.key())
    assert keys == KEYS[::-1]


def test_next_past_end_false(cursor):
    cursor.last()
    assert cursor.next() is False


def test_next_past_end_unplaces(cursor):
    cursor.last()
    cursor.next()
    assert key_or_none(cursor) is None


def test_prev_before_start_false(cursor):
    cursor.first()
    assert cursor.prev() is False


def test_prev_before_start_unplaces(cursor):
    cursor.first()
    cursor.prev()
    assert key_or_none(cursor) is None


def test_next_unplaced_goes_first(cursor):
    assert cursor.next() is True
    assert cursor.key() == b"a"


def test_prev_unplaced_goes_last(cursor):
    assert cursor.prev() is True
    assert cursor.key() == b"e"


def test_next_returns_true(cursor):
    cursor.first()
    assert cursor.next() is True


def test_set_key_present(cursor):
    assert cursor.set_key(b"c") is True


def test_set_key_places(cursor):
    cursor.set_key(b"c")
    assert cursor.item() == (b"c", b"3")


@pytest.mark.parametrize("key", [b"0", b"bb", b"z"])
def test_set_key_missing(cursor, key):
    assert cursor.set_key(key) is False


@pytest.mark.parametrize("key", [b"0", b"bb", b"z"])
def test_set_key_missing_unplaces(cursor, key):
    cursor.first()
    cursor.set_key(key)
    assert key_or_none(cursor) is None


def test_set_key_empty(cursor):
    assert cursor.set_key(b"") is False


def test_set_key_empty_unplaces(cursor):
    cursor.first()
    cursor.set_key(b"")
    assert key_or_none(cursor) is None


@pytest.mark.parametrize(
    ("key", "found"),
    [(b"c", b"c"), (b"bb", b"c"), (b"0", b"a"), (b"", b"a"), (b"d\x00", b"e")],
    ids=["exact", "between", "before-first", "empty", "just-after"],
)
def test_set_range_finds(cursor, key, found):
    assert cursor.set_range(key) is True
    assert cursor.key() == found


def test_set_range_after_last(cursor):
    assert cursor.set_range(b"z") is False


def test_set_range_after_last_unplaces(cursor):
    cursor.first()
    cursor.set_range(b"z")
    assert key_or_none(cursor) is None


def test_set_key_then_next(cursor):
    cursor.set_key(b"b")
    cursor.next()
    assert cursor.key() == b"c"


def test_set_range_then_prev(cursor):
    cursor.set_range(b"bb")
    cursor.prev()
    assert cursor.key() == b"b"


# A failed move leaves the cursor unplaced.  The docstrings say that next()
# then moves to the first record and prev() to the last, as on a new cursor.


@pytest.mark.parametrize("key", [b"0", b"bb", b"z"])
def test_next_after_set_key_miss(cursor, key):
    cursor.set_key(key)
    assert cursor.next() is True
    assert cursor.key() == b"a"


@pytest.mark.parametrize("key", [b"0", b"bb", b"z"])
def test_prev_after_set_key_miss(cursor, key):
    cursor.set_key(key)
    assert cursor.prev() is True
    assert cursor.key() == b"e"


def test_prev_after_past_end(cursor):
    cursor.last()
    cursor.next()
    assert cursor.prev() is True
    assert cursor.key() == b"e"


def test_next_again_after_past_end(cursor):
    cursor.last()
    cursor.next()
    assert cursor.next() is True
    assert cursor.key() == b"a"


def test_prev_again_before_start(cursor):
    cursor.first()
    cursor.prev()
    assert cursor.prev() is True
    assert cursor.key() == b"e"


def test_next_after_before_start(cursor):
    cursor.first()
    cursor.prev()
    assert cursor.next() is True
    assert cursor.key() == b"a"


# ---------------------------------------------------------------------------
# Reading the current record


def test_key_returns_bytes(cursor):
    cursor.first()
    assert type(cursor.key()) is bytes


def test_value(cursor):
    cursor.set_key(b"d")
    assert cursor.value() == b"4"


def test_value_returns_bytes(cursor):
    cursor.first()
    assert type(cursor.value()) is bytes


def test_item(cursor):
    cursor.last()
    assert cursor.item() == (b"e", b"5")


@pytest.mark.parametrize("method", ["key", "value", "item"])
def test_read_unplaced_raises(cursor, method):
    with pytest.raises(lmdb.NotFoundError, match="not placed"):
        getattr(cursor, method)()


@pytest.mark.parametrize("method", ["key", "value", "item"])
def test_read_after_miss_raises(cursor, method):
    cursor.first()
    cursor.set_key(b"missing")
    with pytest.raises(lmdb.NotFoundError):
        getattr(cursor, method)()


def test_item_outlives_txn(env):
    fill(env)
    txn = env.begin()
    cursor = txn.cursor()
    cursor.first()
    item = cursor.item()
    txn.abort()
    assert item == (b"a", b"1")


def test_large_value(env):
    value = bytes(range(256)) * 4096
    fill(env, [(b"big", value)])
    with env.begin() as txn:
        cursor = txn.cursor()
        cursor.first()
        assert cursor.value() == value


def test_cursors_independent(rtxn):
    first = rtxn.cursor()
    second = rtxn.cursor()
    first.first()
    second.last()
    assert first.key() == b"a"
    assert second.key() == b"e"


def test_txn_property(rtxn, cursor):
    assert cursor.txn is rtxn


# ---------------------------------------------------------------------------
# Writing


def test_put_returns_true(wtxn):
    assert wtxn.cursor().put(b"bb", b"new") is True


def test_put_places_cursor(wtxn):
    cursor = wtxn.cursor()
    cursor.put(b"bb", b"new")
    assert cursor.item() == (b"bb", b"new")


def test_put_visible_in_txn(wtxn):
    wtxn.cursor().put(b"bb", b"new")
    assert wtxn.get(b"bb") == b"new"


def test_put_then_next(wtxn):
    cursor = wtxn.cursor()
    cursor.put(b"bb", b"new")
    cursor.next()
    assert cursor.key() == b"c"


def test_put_overwrites(wtxn):
    cursor = wtxn.cursor()
    cursor.put(b"b", b"new")
    assert wtxn.get(b"b") == b"new"


def test_put_overwrite_false_existing(wtxn):
    assert wtxn.cursor().put(b"b", b"new", overwrite=False) is False


def test_put_overwrite_false_keeps_value(wtxn):
    cursor = wtxn.cursor()
    cursor.put(b"b", b"new", overwrite=False)
    assert wtxn.get(b"b") == b"2"


def test_put_overwrite_false_places_on_existing(wtxn):
    cursor = wtxn.cursor()
    cursor.put(b"b", b"new", overwrite=False)
    assert cursor.item() == (b"b", b"2")


def test_put_append(wtxn):
    cursor = wtxn.cursor()
    for key in [b"f", b"g", b"h"]:
        cursor.put(key, b"v", append=True)
    assert wtxn.stat()["entries"] == len(RECORDS) + 3


def test_put_append_out_of_order(wtxn):
    with pytest.raises(lmdb.KeyExistsError):
        wtxn.cursor().put(b"c", b"v", append=True)


def test_put_append_unordered_no_overwrite(wtxn):
    with pytest.raises(lmdb.KeyExistsError):
        wtxn.cursor().put(b"bb", b"v", append=True, overwrite=False)


def test_put_commits(env, wtxn):
    wtxn.cursor().put(b"bb", b"new")
    wtxn.commit()
    with env.begin() as txn:
        assert txn.get(b"bb") == b"new"


def test_put_empty_key(wtxn):
    with pytest.raises(lmdb.BadValsizeError):
        wtxn.cursor().put(b"", b"v")


def test_put_long_key(env, wtxn):
    with pytest.raises(lmdb.BadValsizeError):
        wtxn.cursor().put(b"k" * (env.max_key_size() + 1), b"v")


@pytest.mark.parametrize(
    ("key", "value"),
    [("k", b"v"), (b"k", "v")],
    ids=["str-key", "str-value"],
)
def test_put_str_raises(wtxn, key, value):
    with pytest.raises(TypeError, match="encode"):
        wtxn.cursor().put(key, value)


def test_put_bytes_like(wtxn):
    cursor = wtxn.cursor()
    cursor.put(bytearray(b"bb"), memoryview(b"new"))
    assert cursor.item() == (b"bb", b"new")


def test_delete_returns_true(wtxn):
    cursor = wtxn.cursor()
    cursor.set_key(b"b")
    assert cursor.delete() is True


def test_delete_removes(wtxn):
    cursor = wtxn.cursor()
    cursor.set_key(b"b")
    cursor.delete()
    assert wtxn.get(b"b") is None


def test_delete_moves_to_next(wtxn):
    cursor = wtxn.cursor()
    cursor.set_key(b"b")
    cursor.delete()
    assert cursor.item() == (b"c", b"3")


def test_delete_then_next(wtxn):
    cursor = wtxn.cursor()
    cursor.set_key(b"b")
    cursor.delete()
    cursor.next()
    assert cursor.key() == b"d"


def test_delete_then_prev(wtxn):
    cursor = wtxn.cursor()
    cursor.set_key(b"b")
    cursor.delete()
    cursor.prev()
    assert cursor.key() == b"a"


def test_delete_last_unplaces(wtxn):
    cursor = wtxn.cursor()
    cursor.last()
    cursor.delete()
    assert key_or_none(cursor) is None


def test_delete_last_then_next(wtxn):
    # Deleting the last record unplaces the cursor, so next() starts over.
    cursor = wtxn.cursor()
    cursor.last()
    cursor.delete()
    assert cursor.next() is True
    assert cursor.key() == b"a"


def test_delete_unplaced_returns_false(wtxn):
    assert wtxn.cursor().delete() is False


def test_delete_unplaced_changes_nothing(wtxn):
    wtxn.cursor().delete()
    assert wtxn.stat()["entries"] == len(RECORDS)


def test_delete_loop_empties(wtxn):
    cursor = wtxn.cursor()
    cursor.first()
    deleted = 0
    while cursor.delete():
        deleted += 1
    assert deleted == len(RECORDS)


def test_delete_loop_leaves_nothing(wtxn):
    cursor = wtxn.cursor()
    cursor.first()
    while cursor.delete():
        pass
    assert wtxn.stat()["entries"] == 0


def test_delete_loop_across_pages(env):
    # Enough records for many leaf pages, so deletes cross page bounds.
    records = [(b"%05d" % index, b"v" * 50) for index in range(2000)]
    fill(env, records)
    with env.begin(write=True) as txn:
        cursor = txn.cursor()
        cursor.first()
        seen = []
        while True:
            key = key_or_none(cursor)
            if key is None:
                break
            seen.append(key)
            cursor.delete()
        assert seen == [key for key, _ in records]
        assert txn.stat()["entries"] == 0


def test_delete_every_other(env):
    records = [(b"%05d" % index, b"v" * 50) for index in range(1000)]
    fill(env, records)
    with env.begin(write=True) as txn:
        cursor = txn.cursor()
        placed = cursor.first()
        while placed:
            if int(cursor.key()) % 2 == 0:
                cursor.delete()
                placed = key_or_none(cursor) is not None
            else:
                placed = cursor.next()
        keys = [key for key, _ in txn.cursor()]
    assert keys == [b"%05d" % index for index in range(1, 1000, 2)]


@pytest.mark.parametrize(
    "call",
    [lambda cursor: cursor.put(b"k", b"v"), lambda cursor: cursor.delete()],
    ids=["put", "delete"],
)
def test_readonly_txn_refuses_write(cursor, call):
    cursor.first()
    with pytest.raises(lmdb.ReadonlyError, match="read-only"):
        call(cursor)


# ---------------------------------------------------------------------------
# Iteration


def test_iter_yields_items(cursor):
    assert list(cursor) == RECORDS


def test_iter_items_are_bytes(cursor):
    assert {type(part) for item in cursor for part in item} == {bytes}


def test_iternext_items(cursor):
    assert list(cursor.iternext()) == RECORDS


def test_iternext_keys(cursor):
    assert list(cursor.iternext(values=False)) == KEYS


def test_iternext_values(cursor):
    assert list(cursor.iternext(keys=False)) == VALUES


def test_iterprev_items(cursor):
    assert list(cursor.iterprev()) == RECORDS[::-1]


def test_iterprev_keys(cursor):
    assert list(cursor.iterprev(values=False)) == KEYS[::-1]


def test_iterprev_values(cursor):
    assert list(cursor.iterprev(keys=False)) == VALUES[::-1]


@pytest.mark.parametrize("method", ["iternext", "iterprev"])
def test_iter_neither_keys_nor_values(cursor, method):
    with pytest.raises(ValueError, match="cannot both be False"):
        getattr(cursor, method)(keys=False, values=False)


def test_iternext_from_current(cursor):
    cursor.set_key(b"c")
    assert list(cursor.iternext(values=False)) == [b"c", b"d", b"e"]


def test_iterprev_from_current(cursor):
    cursor.set_key(b"c")
    assert list(cursor.iterprev(values=False)) == [b"c", b"b", b"a"]


def test_iter_from_current(cursor):
    cursor.set_range(b"cc")
    assert list(cursor) == RECORDS[3:]


def test_iternext_from_last(cursor):
    cursor.last()
    assert list(cursor.iternext(values=False)) == [b"e"]


def test_iternext_leaves_cursor_unplaced(cursor):
    list(cursor.iternext())
    assert key_or_none(cursor) is None


def test_iternext_again_starts_at_first(cursor):
    list(cursor.iternext())
    assert list(cursor.iternext(values=False)) == KEYS


def test_iternext_partial_moves_cursor(cursor):
    iterator = cursor.iternext(values=False)
    next(iterator)
    next(iterator)
    assert cursor.key() == b"b"


def test_iternext_interleaved_moves(cursor):
    iterator = cursor.iternext(values=False)
    next(iterator)
    cursor.set_key(b"d")
    assert list(iterator) == [b"e"]


def test_iterator_is_own_iterator(cursor):
    iterator = cursor.iternext()
    assert iter(iterator) is iterator


def test_iterator_exhausted_stays(cursor):
    iterator = cursor.iternext()
    list(iterator)
    assert list(iterator) == []


def test_iter_sees_uncommitted(wtxn):
    wtxn.put(b"bb", b"new")
    assert list(wtxn.cursor().iternext(values=False)) == [
        b"a",
        b"b",
        b"bb",
        b"c",
        b"d",
        b"e",
    ]


def test_iter_many_records(env):
    records = [(b"%05d" % index, b"%d" % index) for index in range(3000)]
    fill(env, records)
    with env.begin() as txn:
        assert list(txn.cursor()) == records


# ---------------------------------------------------------------------------
# Named and empty databases


def test_named_db_records(env):
    named = env.open_db(b"named")
    fill(env, db=named)
    with env.begin() as txn:
        assert list(txn.cursor(db=named)) == RECORDS


def test_named_db_separate_from_main(env):
    named = env.open_db(b"named")
    fill(env, db=named)
    fill(env, [(b"main", b"record")])
    with env.begin() as txn:
        assert list(txn.cursor(named).iternext(values=False)) == KEYS


def test_named_db_put_and_delete(env):
    named = env.open_db(b"named")
    with env.begin(write=True) as txn:
        cursor = txn.cursor(named)
        cursor.put(b"x", b"1")
        cursor.put(b"y", b"2")
        cursor.first()
        cursor.delete()
    with env.begin() as txn:
        assert list(txn.cursor(named)) == [(b"y", b"2")]


def test_named_db_empty(env):
    named = env.open_db(b"named")
    fill(env)
    with env.begin() as txn:
        assert list(txn.cursor(named)) == []


@pytest.mark.parametrize("method", ["first", "last", "next", "prev"])
def test_empty_db_moves_false(empty_cursor, method):
    assert getattr(empty_cursor, method)() is False


@pytest.mark.parametrize("method", ["set_key", "set_range"])
def test_empty_db_seek_false(empty_cursor, method):
    assert getattr(empty_cursor, method)(b"a") is False


@pytest.mark.parametrize("method", ["iternext", "iterprev"])
def test_empty_db_iterates_nothing(empty_cursor, method):
    assert list(getattr(empty_cursor, method)()) == []


def test_empty_db_key_raises(empty_cursor):
    empty_cursor.first()
    with pytest.raises(lmdb.NotFoundError):
        empty_cursor.key()


def test_empty_db_delete_false(env):
    with env.begin(write=True) as txn:
        cursor = txn.cursor()
        cursor.first()
        assert cursor.delete() is False


def test_empty_db_put_places(env):
    with env.begin(write=True) as txn:
        cursor = txn.cursor()
        cursor.put(b"only", b"1")
        assert cursor.item() == (b"only", b"1")


# ---------------------------------------------------------------------------
# close and the context manager


def test_close_returns_none(cursor):
    assert cursor.close() is None


def test_close_twice(cursor):
    cursor.close()
    assert cursor.close() is None


@pytest.mark.parametrize(
    "call",
    [
        lambda cursor: cursor.first(),
        lambda cursor: cursor.next(),
        lambda cursor: cursor.set_key(b"a"),
        lambda cursor: cursor.key(),
        lambda cursor: cursor.item(),
        lambda cursor: cursor.iternext(),
        lambda cursor: iter(cursor),
    ],
    ids=["first", "next", "set_key", "key", "item", "iternext", "iter"],
)
def test_closed_cursor_raises(cursor, call):
    cursor.close()
    with pytest.raises(lmdb.ClosedError, match="cursor is closed"):
        call(cursor)


def test_close_keeps_txn_usable(rtxn, cursor):
    cursor.close()
    assert rtxn.get(b"a") == b"1"


def test_close_during_iteration(cursor):
    iterator = cursor.iternext()
    next(iterator)
    cursor.close()
    with pytest.raises(lmdb.ClosedError):
        next(iterator)


def test_context_manager_returns_cursor(cursor):
    with cursor as entered:
        assert entered is cursor


def test_context_manager_closes(rtxn):
    with rtxn.cursor() as cursor:
        cursor.first()
    with pytest.raises(lmdb.ClosedError):
        cursor.key()


def test_context_manager_closes_on_error(rtxn):
    with pytest.raises(KeyError):
        with rtxn.cursor() as cursor:
            raise KeyError("boom")
    with pytest.raises(lmdb.ClosedError):
        cursor.first()


def test_context_manager_closed_cursor(cursor):
    cursor.close()
    with pytest.raises(lmdb.ClosedError):
        with cursor:
            pass
