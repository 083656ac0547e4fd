"""Tests of sharedb.lmdb.Transaction: reads, writes, batches and nesting."""

import array

import pytest

from sharedb import lmdb

RECORDS = [(b"apple", b"1"), (b"banana", b"2"), (b"cherry", b"3")]


def fill(env, records=RECORDS, db=None):
    with env.begin(write=True) as txn:
        for key, value in records:
            txn.put(key, value, db=db)


def read_all(env, db=None):
    with env.begin() as txn:
        return list(txn.cursor(db=db))


@pytest.fixture
def filled(env):
    """The env fixture holding RECORDS in its main database."""
    fill(env)
    return env


@pytest.fixture
def wtxn(env):
    """A write transaction on env, aborted at teardown if still open."""
    txn = env.begin(write=True)
    yield txn
    txn.abort()


@pytest.fixture
def rtxn(filled):
    """A read transaction on the filled environment."""
    txn = filled.begin()
    yield txn
    txn.abort()


# ---------------------------------------------------------------------------
# get and put


def test_get_present(rtxn):
    assert rtxn.get(b"banana") == b"2"


def test_get_missing_none(rtxn):
    assert rtxn.get(b"durian") is None


def test_get_missing_default(rtxn):
    assert rtxn.get(b"durian", b"none") == b"none"


def test_get_default_keyword(rtxn):
    assert rtxn.get(b"durian", default=0) == 0


def test_get_returns_bytes(rtxn):
    assert type(rtxn.get(b"apple")) is bytes


def test_put_returns_true(wtxn):
    assert wtxn.put(b"key", b"value") is True


def test_put_then_get(wtxn):
    wtxn.put(b"key", b"value")
    assert wtxn.get(b"key") == b"value"


def test_put_overwrites(wtxn):
    wtxn.put(b"key", b"old")
    wtxn.put(b"key", b"new")
    assert wtxn.get(b"key") == b"new"


def test_put_overwrite_false_existing(wtxn):
    wtxn.put(b"key", b"old")
    assert wtxn.put(b"key", b"new", overwrite=False) is False


def test_put_overwrite_false_keeps_value(wtxn):
    wtxn.put(b"key", b"old")
    wtxn.put(b"key", b"new", overwrite=False)
    assert wtxn.get(b"key") == b"old"


def test_put_overwrite_false_new_key(wtxn):
    assert wtxn.put(b"key", b"value", overwrite=False) is True


def test_put_append_ascending(wtxn):
    for index in range(100):
        wtxn.put(b"%03d" % index, b"v", append=True)
    assert wtxn.stat()["entries"] == 100


@pytest.mark.parametrize("key", [b"a", b"b"], ids=["below", "equal"])
def test_put_append_out_of_order(wtxn, key):
    wtxn.put(b"b", b"1")
    with pytest.raises(lmdb.KeyExistsError, match="MDB_KEYEXIST") as info:
        wtxn.put(key, b"2", append=True)
    assert "greater than the last key" in str(info.value)
    assert info.value.code == lmdb.KeyExistsError.code
    assert info.value.call == "mdb_put"


def test_put_overwrite_false_existing_message(wtxn):
    # Without append, KEYEXIST means only that the key is present.
    wtxn.put(b"b", b"1")
    assert wtxn.put(b"b", b"2", overwrite=False) is False
    assert wtxn.get(b"b") == b"1"


@pytest.mark.parametrize(
    "view",
    [memoryview(bytes(range(20)))[::2], memoryview(bytes(range(20)))[::-1]],
    ids=["step-2", "reversed"],
)
def test_put_non_contiguous_value_rejected(wtxn, view):
    with pytest.raises(TypeError, match="value must be a contiguous bytes-like"):
        wtxn.put(b"k", view)
    wtxn.put(b"k", bytes(view))
    assert wtxn.get(b"k") == bytes(view)


def test_put_append_unordered_no_overwrite(wtxn):
    # The key is absent, so overwrite=False does not apply.  The docstring
    # promises KeyExistsError for any key not above the last one.
    wtxn.put(b"b", b"1")
    with pytest.raises(lmdb.KeyExistsError):
        wtxn.put(b"a", b"2", append=True, overwrite=False)


def test_put_empty_value(wtxn):
    wtxn.put(b"key", b"")
    assert wtxn.get(b"key") == b""


def test_put_binary_key_order(wtxn):
    for key in [b"\xff", b"\x00", b"a\x00", b"a"]:
        wtxn.put(key, key)
    assert [key for key, _ in wtxn.cursor()] == [b"\x00", b"a", b"a\x00", b"\xff"]


def test_put_uncommitted_invisible_to_reader(env, wtxn):
    wtxn.put(b"key", b"value")
    with env.begin() as reader:
        assert reader.get(b"key") is None


def test_reader_keeps_snapshot(filled):
    with filled.begin() as reader:
        fill(filled, [(b"apple", b"changed")])
        assert reader.get(b"apple") == b"1"


# ---------------------------------------------------------------------------
# replace, pop, delete


def test_replace_returns_old(filled):
    with filled.begin(write=True) as txn:
        assert txn.replace(b"apple", b"new") == b"1"


def test_replace_stores_new(filled):
    with filled.begin(write=True) as txn:
        txn.replace(b"apple", b"new")
        assert txn.get(b"apple") == b"new"


def test_replace_missing_returns_none(wtxn):
    assert wtxn.replace(b"key", b"value") is None


def test_replace_missing_stores(wtxn):
    wtxn.replace(b"key", b"value")
    assert wtxn.get(b"key") == b"value"


def test_replace_large_old_value(wtxn):
    old = bytes(range(256)) * 8192
    wtxn.put(b"key", old)
    assert wtxn.replace(b"key", old[::-1]) == old


def test_pop_returns_value(filled):
    with filled.begin(write=True) as txn:
        assert txn.pop(b"apple") == b"1"


def test_pop_deletes(filled):
    with filled.begin(write=True) as txn:
        txn.pop(b"apple")
        assert txn.get(b"apple") is None


def test_pop_missing_none(wtxn):
    assert wtxn.pop(b"key") is None


def test_pop_missing_default(wtxn):
    assert wtxn.pop(b"key", b"default") == b"default"


def test_pop_missing_changes_nothing(filled):
    with filled.begin(write=True) as txn:
        txn.pop(b"durian")
        assert txn.stat()["entries"] == len(RECORDS)


def test_delete_present(filled):
    with filled.begin(write=True) as txn:
        assert txn.delete(b"apple") is True


def test_delete_removes(filled):
    with filled.begin(write=True) as txn:
        txn.delete(b"apple")
        assert txn.get(b"apple") is None


def test_delete_missing(wtxn):
    assert wtxn.delete(b"key") is False


def test_delete_committed(filled):
    with filled.begin(write=True) as txn:
        txn.delete(b"banana")
    assert read_all(filled) == [RECORDS[0], RECORDS[2]]


# ---------------------------------------------------------------------------
# drop


def test_drop_main_empties(filled):
    with filled.begin(write=True) as txn:
        txn.drop()
    assert read_all(filled) == []


def test_drop_main_delete_only_empties(filled):
    with filled.begin(write=True) as txn:
        txn.drop(delete=True)
    fill(filled)
    assert read_all(filled) == RECORDS


def test_drop_named_empties(env):
    named = env.open_db(b"named")
    fill(env, db=named)
    with env.begin(write=True) as txn:
        txn.drop(named)
    assert read_all(env, db=named) == []


def test_drop_named_keeps_db(env):
    named = env.open_db(b"named")
    fill(env, db=named)
    with env.begin(write=True) as txn:
        txn.drop(named)
    assert env.open_db(b"named", create=False).name == b"named"


def test_drop_named_delete_removes_db(env):
    named = env.open_db(b"named")
    fill(env, db=named)
    with env.begin(write=True) as txn:
        txn.drop(named, delete=True)
    with pytest.raises(lmdb.NotFoundError):
        env.open_db(b"named", create=False)


def test_drop_named_delete_removes_name(env):
    named = env.open_db(b"named")
    with env.begin(write=True) as txn:
        txn.drop(db=named, delete=True)
    assert read_all(env) == []


def test_drop_named_delete_aborted(env):
    named = env.open_db(b"named")
    fill(env, db=named)
    with env.begin(write=True) as txn:
        txn.drop(named, delete=True)
        txn.abort()
    assert env.open_db(b"named", create=False).name == b"named"


def test_drop_named_delete_aborted_reopens(env):
    named = env.open_db(b"named")
    fill(env, db=named)
    with env.begin(write=True) as txn:
        txn.drop(named, delete=True)
        txn.abort()
    assert read_all(env, db=env.open_db(b"named", create=False)) == RECORDS


def test_drop_delete_same_txn_handle_raises(env):
    named = env.open_db(b"named")
    with env.begin(write=True) as txn:
        txn.drop(named, delete=True)
        with pytest.raises(lmdb.BadDbiError):
            txn.put(b"key", b"value", db=named)


def test_drop_named_delete_recreate_empty(env):
    named = env.open_db(b"named")
    fill(env, db=named)
    with env.begin(write=True) as txn:
        txn.drop(named, delete=True)
    assert read_all(env, db=env.open_db(b"named")) == []


def test_drop_delete_stale_handle_raises(env):
    # After the delete, a new database may take the dropped handle's slot.
    # The old handle must not read that database's records.
    dropped = env.open_db(b"dropped")
    with env.begin(write=True) as txn:
        txn.drop(dropped, delete=True)
    fill(env, db=env.open_db(b"other"))
    with env.begin() as txn:
        with pytest.raises(lmdb.BadDbiError):
            txn.get(b"apple", db=dropped)


def test_drop_keeps_other_db(env):
    first = env.open_db(b"first")
    second = env.open_db(b"second")
    fill(env, db=first)
    fill(env, db=second)
    with env.begin(write=True) as txn:
        txn.drop(first, delete=True)
    assert read_all(env, db=second) == RECORDS


# ---------------------------------------------------------------------------
# stat and properties


def test_stat_counts_uncommitted(wtxn):
    wtxn.put(b"key", b"value")
    assert wtxn.stat()["entries"] == 1


def test_stat_named_db(env):
    named = env.open_db(b"named")
    fill(env, db=named)
    with env.begin() as txn:
        assert txn.stat(named)["entries"] == len(RECORDS)


def test_stat_main_counts_db_names(env):
    fill(env, db=env.open_db(b"named"))
    with env.begin() as txn:
        assert txn.stat()["entries"] == 1


def test_stat_matches_env_stat(filled):
    with filled.begin() as txn:
        assert txn.stat() == filled.stat()


def test_id_read_is_last_commit(filled):
    with filled.begin() as txn:
        assert txn.id == filled.info()["last_txnid"]


def test_id_write_is_next_commit(filled):
    with filled.begin(write=True) as txn:
        assert txn.id == filled.info()["last_txnid"] + 1


def test_id_advances_with_commits(env):
    with env.begin() as before:
        first = before.id
    fill(env)
    with env.begin() as after:
        assert after.id == first + 1


@pytest.mark.parametrize("write", [False, True])
def test_write_property(env, write):
    with env.begin(write=write) as txn:
        assert txn.write is write


def test_ended_false_while_open(wtxn):
    assert wtxn.ended is False


@pytest.mark.parametrize("end", ["commit", "abort"])
def test_ended_after_end(env, end):
    txn = env.begin(write=True)
    getattr(txn, end)()
    assert txn.ended is True


def test_env_property(env, wtxn):
    assert wtxn.env is env


def test_env_property_after_end(env):
    txn = env.begin()
    txn.abort()
    assert txn.env is env


# ---------------------------------------------------------------------------
# putmulti


def test_putmulti_counts(wtxn):
    assert wtxn.putmulti(RECORDS) == (3, 3)


def test_putmulti_stores(env):
    with env.begin(write=True) as txn:
        txn.putmulti(RECORDS)
    assert read_all(env) == RECORDS


def test_putmulti_overwrites(filled):
    with filled.begin(write=True) as txn:
        txn.putmulti([(b"apple", b"new")])
        assert txn.get(b"apple") == b"new"


def test_putmulti_overwrite_false_counts(filled):
    items = [(b"apple", b"new"), (b"durian", b"4")]
    with filled.begin(write=True) as txn:
        assert txn.putmulti(items, overwrite=False) == (2, 1)


def test_putmulti_overwrite_false_keeps(filled):
    with filled.begin(write=True) as txn:
        txn.putmulti([(b"apple", b"new")], overwrite=False)
        assert txn.get(b"apple") == b"1"


def test_putmulti_empty(wtxn):
    assert wtxn.putmulti([]) == (0, 0)


def test_putmulti_generator(wtxn):
    items = ((b"%d" % index, b"v") for index in range(10))
    assert wtxn.putmulti(items) == (10, 10)


@pytest.mark.parametrize("count", [1023, 1024, 1025, 3000])
def test_putmulti_across_blocks(env, count):
    items = [(b"%06d" % index, b"%d" % index) for index in range(count)]
    with env.begin(write=True) as txn:
        assert txn.putmulti(items) == (count, count)
    assert read_all(env) == items


def test_putmulti_append_ascending(env):
    items = [(b"%06d" % index, b"v") for index in range(2500)]
    with env.begin(write=True) as txn:
        assert txn.putmulti(items, append=True) == (2500, 2500)


def test_putmulti_append_out_of_order(wtxn):
    with pytest.raises(lmdb.KeyExistsError) as info:
        wtxn.putmulti([(b"b", b"1"), (b"a", b"2")], append=True)
    assert "append=True needs each key to be greater than the last key" in str(
        info.value
    )


def test_putmulti_append_unordered_no_overwrite(wtxn):
    wtxn.put(b"b", b"1")
    with pytest.raises(lmdb.KeyExistsError):
        wtxn.putmulti([(b"c", b"3"), (b"a", b"2")], append=True, overwrite=False)


def test_putmulti_named_db(env):
    named = env.open_db(b"named")
    with env.begin(write=True) as txn:
        txn.putmulti(RECORDS, db=named)
    assert read_all(env, db=named) == RECORDS


def test_putmulti_duplicate_keys_last_wins(wtxn):
    wtxn.putmulti([(b"key", b"1"), (b"key", b"2")])
    assert wtxn.get(b"key") == b"2"


@pytest.mark.parametrize(
    "item",
    [
        b"key",
        [b"key", b"value"],
        (b"key",),
        (b"key", b"value", b"extra"),
        (None, b"value"),
        (b"key", None),
        (1, b"value"),
        (b"key", object()),
    ],
    ids=["bytes", "list", "1-tuple", "3-tuple", "none-key", "none-value", "int", "obj"],
)
def test_putmulti_bad_item(wtxn, item):
    with pytest.raises(TypeError, match="must be"):
        wtxn.putmulti([(b"good", b"1"), item])


@pytest.mark.parametrize("where", [0, 1])
def test_putmulti_str_mentions_encode(wtxn, where):
    item = [b"key", b"value"]
    item[where] = "text"
    with pytest.raises(TypeError, match="encode"):
        wtxn.putmulti([tuple(item)])


def test_putmulti_not_iterable(wtxn):
    with pytest.raises(TypeError):
        wtxn.putmulti(5)


def test_putmulti_lmdb_error_keeps_earlier(wtxn):
    # The empty key fails inside LMDB, after the pairs before it.
    with pytest.raises(lmdb.BadValsizeError):
        wtxn.putmulti([(b"a", b"1"), (b"b", b"2"), (b"", b"3")])
    assert wtxn.getmulti([b"a", b"b"]) == [b"1", b"2"]


def test_putmulti_later_block_error_keeps_earlier(wtxn):
    items = [(b"%06d" % index, b"v") for index in range(1500)] + [(b"", b"v")]
    with pytest.raises(lmdb.BadValsizeError):
        wtxn.putmulti(items)
    assert wtxn.stat()["entries"] == 1500


def test_putmulti_bad_item_keeps_earlier(wtxn):
    # The docstring promises that the pairs before a failing one stay.
    with pytest.raises(TypeError):
        wtxn.putmulti([(b"a", b"1"), (b"b", b"2"), 5])
    assert wtxn.getmulti([b"a", b"b"]) == [b"1", b"2"]


def test_putmulti_iterator_error_propagates(wtxn):
    def items():
        yield b"a", b"1"
        raise KeyError("from the iterator")

    with pytest.raises(KeyError, match="from the iterator"):
        wtxn.putmulti(items())


# ---------------------------------------------------------------------------
# getmulti


def test_getmulti_values(rtxn):
    assert rtxn.getmulti([b"cherry", b"apple"]) == [b"3", b"1"]


def test_getmulti_missing_none(rtxn):
    assert rtxn.getmulti([b"apple", b"durian"]) == [b"1", None]


def test_getmulti_empty(rtxn):
    assert rtxn.getmulti([]) == []


def test_getmulti_duplicates(rtxn):
    assert rtxn.getmulti([b"apple", b"apple"]) == [b"1", b"1"]


def test_getmulti_generator(rtxn):
    keys = (key for key, _ in RECORDS)
    assert rtxn.getmulti(keys) == [value for _, value in RECORDS]


def test_getmulti_returns_bytes(rtxn):
    assert {type(value) for value in rtxn.getmulti([b"apple", b"cherry"])} == {bytes}


@pytest.mark.parametrize("count", [1024, 1025, 2500])
def test_getmulti_across_blocks(env, count):
    items = [(b"%06d" % index, b"%d" % index) for index in range(0, 2 * count, 2)]
    with env.begin(write=True) as txn:
        txn.putmulti(items)
    keys = [b"%06d" % index for index in range(2 * count)]
    with env.begin() as txn:
        values = txn.getmulti(keys)
    expected = [b"%d" % index if index % 2 == 0 else None for index in range(2 * count)]
    assert values == expected


def test_getmulti_named_db(env):
    named = env.open_db(b"named")
    fill(env, db=named)
    with env.begin() as txn:
        assert txn.getmulti([b"apple"], db=named) == [b"1"]


def test_getmulti_uncommitted(wtxn):
    wtxn.put(b"key", b"value")
    assert wtxn.getmulti([b"key"]) == [b"value"]


@pytest.mark.parametrize("key", [None, 1, object(), (b"a", b"b")])
def test_getmulti_bad_key(rtxn, key):
    with pytest.raises(TypeError, match="key must be a bytes-like object"):
        rtxn.getmulti([b"apple", key])


def test_getmulti_str_mentions_encode(rtxn):
    with pytest.raises(TypeError, match="encode"):
        rtxn.getmulti(["apple"])


def test_getmulti_not_iterable(rtxn):
    with pytest.raises(TypeError):
        rtxn.getmulti(None)


def test_getmulti_empty_key(rtxn):
    with pytest.raises(lmdb.BadValsizeError):
        rtxn.getmulti([b"apple", b""])


# ---------------------------------------------------------------------------
# commit, abort and the context manager


def test_commit_visible_to_new_txn(env):
    txn = env.begin(write=True)
    txn.put(b"key", b"value")
    txn.commit()
    with env.begin() as reader:
        assert reader.get(b"key") == b"value"


def test_commit_returns_none(env):
    txn = env.begin(write=True)
    assert txn.commit() is None


def test_abort_discards(env):
    txn = env.begin(write=True)
    txn.put(b"key", b"value")
    txn.abort()
    with env.begin() as reader:
        assert reader.get(b"key") is None


def test_abort_twice(env):
    txn = env.begin(write=True)
    txn.abort()
    assert txn.abort() is None


def test_abort_after_commit(env):
    txn = env.begin(write=True)
    txn.put(b"key", b"value")
    txn.commit()
    txn.abort()
    assert read_all(env) == [(b"key", b"value")]


def test_commit_read_txn(filled):
    txn = filled.begin()
    txn.commit()
    assert txn.ended is True


def test_context_manager_returns_txn(env):
    txn = env.begin(write=True)
    with txn as entered:
        assert entered is txn


def test_context_manager_commits(env):
    with env.begin(write=True) as txn:
        txn.put(b"key", b"value")
    assert read_all(env) == [(b"key", b"value")]


def test_context_manager_ends_txn(env):
    with env.begin(write=True) as txn:
        pass
    assert txn.ended is True


def test_context_manager_aborts_on_error(env):
    with pytest.raises(KeyError):
        with env.begin(write=True) as txn:
            txn.put(b"key", b"value")
            raise KeyError("boom")
    assert read_all(env) == []


def test_context_manager_propagates_error(env):
    with pytest.raises(KeyError, match="boom"):
        with env.begin(write=True):
            raise KeyError("boom")


def test_context_manager_after_explicit_abort(env):
    with env.begin(write=True) as txn:
        txn.put(b"key", b"value")
        txn.abort()
    assert read_all(env) == []


def test_context_manager_after_explicit_commit(env):
    with env.begin(write=True) as txn:
        txn.put(b"key", b"value")
        txn.commit()
    assert read_all(env) == [(b"key", b"value")]


def test_write_after_writer_ends(env):
    with env.begin(write=True) as txn:
        txn.put(b"a", b"1")
    with env.begin(write=True) as txn:
        txn.put(b"b", b"2")
    assert read_all(env) == [(b"a", b"1"), (b"b", b"2")]


def test_deleted_write_txn_aborts(env):
    txn = env.begin(write=True)
    txn.put(b"key", b"value")
    del txn
    with env.begin(write=True) as again:
        assert again.get(b"key") is None


def test_many_read_txns_at_once(filled):
    readers = [filled.begin() for _ in range(20)]
    values = [reader.get(b"apple") for reader in readers]
    for reader in readers:
        reader.abort()
    assert values == [b"1"] * 20


# ---------------------------------------------------------------------------
# Nested transactions


def test_nested_sees_parent_writes(wtxn, env):
    wtxn.put(b"key", b"parent")
    child = env.begin(write=True, parent=wtxn)
    assert child.get(b"key") == b"parent"
    child.abort()


def test_nested_commit_visible_in_parent(wtxn, env):
    child = env.begin(write=True, parent=wtxn)
    child.put(b"key", b"child")
    child.commit()
    assert wtxn.get(b"key") == b"child"


def test_nested_commit_then_parent_commit(env):
    with env.begin(write=True) as parent:
        with env.begin(write=True, parent=parent) as child:
            child.put(b"key", b"child")
    assert read_all(env) == [(b"key", b"child")]


def test_nested_abort_discards(wtxn, env):
    wtxn.put(b"key", b"parent")
    child = env.begin(write=True, parent=wtxn)
    child.put(b"key", b"child")
    child.put(b"other", b"child")
    child.abort()
    assert wtxn.getmulti([b"key", b"other"]) == [b"parent", None]


def test_nested_context_manager_aborts(wtxn, env):
    with pytest.raises(KeyError):
        with env.begin(write=True, parent=wtxn) as child:
            child.put(b"key", b"child")
            raise KeyError("boom")
    assert wtxn.get(b"key") is None


def test_nested_parent_abort_discards_child(env):
    parent = env.begin(write=True)
    child = env.begin(write=True, parent=parent)
    child.put(b"key", b"child")
    child.commit()
    parent.abort()
    assert read_all(env) == []


def test_parent_commit_with_open_child(env):
    parent = env.begin(write=True)
    child = env.begin(write=True, parent=parent)
    child.put(b"key", b"child")
    parent.commit()
    assert read_all(env) == [(b"key", b"child")]


def test_parent_commit_ends_child(env):
    parent = env.begin(write=True)
    child = env.begin(write=True, parent=parent)
    parent.commit()
    assert child.ended is True


def test_parent_commit_child_use_raises(env):
    parent = env.begin(write=True)
    child = env.begin(write=True, parent=parent)
    parent.commit()
    with pytest.raises(lmdb.ClosedError, match="parent transaction was committed"):
        child.get(b"key")


def test_parent_abort_with_open_child(env):
    parent = env.begin(write=True)
    child = env.begin(write=True, parent=parent)
    child.put(b"key", b"child")
    parent.abort()
    assert read_all(env) == []


def test_parent_abort_child_use_raises(env):
    parent = env.begin(write=True)
    child = env.begin(write=True, parent=parent)
    parent.abort()
    with pytest.raises(lmdb.ClosedError, match="parent transaction was aborted"):
        child.put(b"key", b"value")


@pytest.mark.parametrize(
    "call",
    [
        lambda txn: txn.get(b"key"),
        lambda txn: txn.put(b"key", b"value"),
        lambda txn: txn.delete(b"key"),
        lambda txn: txn.stat(),
        lambda txn: txn.cursor(),
        lambda txn: txn.getmulti([b"key"]),
        lambda txn: txn.putmulti([(b"key", b"value")]),
        lambda txn: txn.drop(),
        lambda txn: txn.id,
    ],
    ids=[
        "get",
        "put",
        "delete",
        "stat",
        "cursor",
        "getmulti",
        "putmulti",
        "drop",
        "id",
    ],
)
def test_parent_unusable_while_child_open(wtxn, env, call):
    child = env.begin(write=True, parent=wtxn)
    with pytest.raises(lmdb.BadTxnError, match="open nested transaction"):
        call(wtxn)
    child.abort()


def test_parent_usable_after_child_ends(wtxn, env):
    env.begin(write=True, parent=wtxn).abort()
    wtxn.put(b"key", b"value")
    assert wtxn.get(b"key") == b"value"


def test_parent_second_child_raises(wtxn, env):
    child = env.begin(write=True, parent=wtxn)
    with pytest.raises(lmdb.BadTxnError):
        env.begin(write=True, parent=wtxn)
    child.abort()


def test_nested_grandchild_commit(env):
    with env.begin(write=True) as parent:
        with env.begin(write=True, parent=parent) as child:
            with env.begin(write=True, parent=child) as grandchild:
                grandchild.put(b"key", b"grandchild")
    assert read_all(env) == [(b"key", b"grandchild")]


def test_nested_grandchild_ended_by_root(env):
    parent = env.begin(write=True)
    child = env.begin(write=True, parent=parent)
    grandchild = env.begin(write=True, parent=child)
    parent.abort()
    assert child.ended is True
    assert grandchild.ended is True


def test_nested_write_property(wtxn, env):
    child = env.begin(write=True, parent=wtxn)
    assert child.write is True
    child.abort()


def test_nested_requires_write(wtxn, env):
    with pytest.raises(ValueError, match="write=True"):
        env.begin(parent=wtxn)


def test_nested_parent_must_write(rtxn, filled):
    with pytest.raises(ValueError, match="parent must be a write transaction"):
        filled.begin(write=True, parent=rtxn)


def test_nested_ended_parent_raises(env):
    parent = env.begin(write=True)
    parent.abort()
    with pytest.raises(lmdb.ClosedError):
        env.begin(write=True, parent=parent)


def test_nested_parent_of_other_env(env, tmp_path):
    with lmdb.Environment(str(tmp_path / "other")) as other:
        with other.begin(write=True) as foreign:
            with pytest.raises(ValueError, match="another environment"):
                env.begin(write=True, parent=foreign)


def test_nested_id_same_as_parent(wtxn, env):
    parent_id = wtxn.id
    child = env.begin(write=True, parent=wtxn)
    assert child.id == parent_id
    child.abort()


# ---------------------------------------------------------------------------
# Read-only transactions


@pytest.mark.parametrize(
    "call",
    [
        lambda txn: txn.put(b"key", b"value"),
        lambda txn: txn.replace(b"apple", b"value"),
        lambda txn: txn.pop(b"apple"),
        lambda txn: txn.delete(b"apple"),
        lambda txn: txn.drop(),
        lambda txn: txn.putmulti([(b"key", b"value")]),
    ],
    ids=["put", "replace", "pop", "delete", "drop", "putmulti"],
)
def test_readonly_txn_refuses_write(rtxn, call):
    with pytest.raises(lmdb.ReadonlyError, match="read-only transaction"):
        call(rtxn)


def test_readonly_txn_write_changes_nothing(rtxn, filled):
    with pytest.raises(lmdb.ReadonlyError):
        rtxn.delete(b"apple")
    assert read_all(filled) == RECORDS


def test_readonly_txn_still_usable(rtxn):
    with pytest.raises(lmdb.ReadonlyError):
        rtxn.put(b"key", b"value")
    assert rtxn.get(b"apple") == b"1"


# ---------------------------------------------------------------------------
# Key and value types


BYTES_LIKE = [bytes, bytearray, memoryview, lambda data: array.array("B", data)]
BYTES_LIKE_IDS = ["bytes", "bytearray", "memoryview", "array"]


@pytest.mark.parametrize("make", BYTES_LIKE, ids=BYTES_LIKE_IDS)
def test_key_bytes_like(wtxn, make):
    wtxn.put(make(b"key"), b"value")
    assert wtxn.get(make(b"key")) == b"value"


@pytest.mark.parametrize("make", BYTES_LIKE, ids=BYTES_LIKE_IDS)
def test_value_bytes_like(wtxn, make):
    wtxn.put(b"key", make(b"value"))
    assert wtxn.get(b"key") == b"value"


@pytest.mark.parametrize("make", BYTES_LIKE, ids=BYTES_LIKE_IDS)
def test_value_returned_as_bytes(wtxn, make):
    wtxn.put(b"key", make(b"value"))
    assert type(wtxn.get(b"key")) is bytes


@pytest.mark.parametrize("make", BYTES_LIKE, ids=BYTES_LIKE_IDS)
def test_bytes_like_everywhere(wtxn, make):
    wtxn.putmulti([(make(b"a"), make(b"1"))])
    wtxn.replace(make(b"b"), make(b"2"))
    assert wtxn.getmulti([make(b"a"), make(b"b")]) == [b"1", b"2"]


def test_memoryview_slice(wtxn):
    data = memoryview(b"xxkeyxx")[2:5]
    wtxn.put(data, data)
    assert wtxn.get(b"key") == b"key"


def test_bytearray_changed_after_put(wtxn):
    value = bytearray(b"before")
    wtxn.put(b"key", value)
    value[:] = b"after!"
    assert wtxn.get(b"key") == b"before"


def test_non_contiguous_memoryview(wtxn):
    with pytest.raises(TypeError, match="bytes-like"):
        wtxn.put(memoryview(b"abcdef")[::2], b"value")


@pytest.mark.parametrize(
    "call",
    [
        lambda txn: txn.get("key"),
        lambda txn: txn.put("key", b"value"),
        lambda txn: txn.put(b"key", "value"),
        lambda txn: txn.replace("key", b"value"),
        lambda txn: txn.replace(b"key", "value"),
        lambda txn: txn.pop("key"),
        lambda txn: txn.delete("key"),
    ],
    ids=[
        "get",
        "put-key",
        "put-value",
        "replace-key",
        "replace-value",
        "pop",
        "delete",
    ],
)
def test_str_raises_mentions_encode(wtxn, call):
    with pytest.raises(TypeError, match="not str; encode it first"):
        call(wtxn)


# ---------------------------------------------------------------------------
# Key and value sizes


KEY_CALLS = [
    lambda txn, key: txn.get(key),
    lambda txn, key: txn.put(key, b"value"),
    lambda txn, key: txn.replace(key, b"value"),
    lambda txn, key: txn.pop(key),
    lambda txn, key: txn.delete(key),
    lambda txn, key: txn.getmulti([key]),
    lambda txn, key: txn.putmulti([(key, b"value")]),
]
KEY_CALL_IDS = ["get", "put", "replace", "pop", "delete", "getmulti", "putmulti"]


@pytest.mark.parametrize("call", KEY_CALLS, ids=KEY_CALL_IDS)
def test_empty_key_raises(wtxn, call):
    with pytest.raises(lmdb.BadValsizeError):
        call(wtxn, b"")


@pytest.mark.parametrize("call", KEY_CALLS, ids=KEY_CALL_IDS)
def test_long_key_raises(env, wtxn, call):
    with pytest.raises(lmdb.BadValsizeError):
        call(wtxn, b"k" * (env.max_key_size() + 1))


def test_bad_valsize_is_value_error():
    assert issubclass(lmdb.BadValsizeError, ValueError)


def test_empty_key_caught_as_value_error(wtxn):
    with pytest.raises(ValueError):
        wtxn.put(b"", b"value")


def test_max_size_key_stored(env, wtxn):
    key = b"k" * env.max_key_size()
    wtxn.put(key, b"value")
    assert wtxn.get(key) == b"value"


@pytest.mark.parametrize("size", [1 << 20, 5 << 20, (3 << 20) + 7])
def test_large_value_round_trip(env, size):
    value = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    with env.begin(write=True) as txn:
        txn.put(b"big", value)
    with env.begin() as txn:
        assert txn.get(b"big") == value


def test_large_value_overflow_pages(env):
    with env.begin(write=True) as txn:
        txn.put(b"big", b"x" * (4 << 20))
        assert txn.stat()["overflow_pages"] >= (4 << 20) // txn.stat()["psize"]


def test_large_values_many(env):
    values = [bytes([index]) * (2 << 20) for index in range(5)]
    with env.begin(write=True) as txn:
        txn.putmulti([(b"%d" % index, value) for index, value in enumerate(values)])
    with env.begin() as txn:
        assert txn.getmulti([b"%d" % index for index in range(5)]) == values


# ---------------------------------------------------------------------------
# A full map


@pytest.fixture
def tiny_env(tmp_path):
    """An environment of 64 KiB holding one committed record."""
    environment = lmdb.Environment(str(tmp_path / "tiny"), map_size=1 << 16)
    with environment.begin(write=True) as txn:
        txn.put(b"kept", b"value")
    yield environment
    environment.close()


def fill_until_full(txn):
    for index in range(10000):
        txn.put(b"%06d" % index, b"x" * 1000)


def test_map_full_raises(tiny_env):
    txn = tiny_env.begin(write=True)
    with pytest.raises(lmdb.MapFullError, match="MDB_MAP_FULL"):
        fill_until_full(txn)
    txn.abort()


def test_map_full_is_memory_error(tiny_env):
    txn = tiny_env.begin(write=True)
    with pytest.raises(MemoryError):
        fill_until_full(txn)
    txn.abort()


def test_map_full_large_value(tiny_env):
    txn = tiny_env.begin(write=True)
    with pytest.raises(lmdb.MapFullError):
        txn.put(b"big", b"x" * (1 << 17))
    txn.abort()


def test_map_full_txn_then_unusable(tiny_env):
    txn = tiny_env.begin(write=True)
    with pytest.raises(lmdb.MapFullError):
        fill_until_full(txn)
    with pytest.raises(lmdb.BadTxnError):
        txn.put(b"more", b"x")
    txn.abort()


def test_map_full_commit_fails(tiny_env):
    txn = tiny_env.begin(write=True)
    with pytest.raises(lmdb.MapFullError):
        fill_until_full(txn)
    with pytest.raises(lmdb.BadTxnError):
        txn.commit()


def test_map_full_keeps_committed(tiny_env):
    with pytest.raises(lmdb.MapFullError):
        with tiny_env.begin(write=True) as txn:
            fill_until_full(txn)
    assert read_all(tiny_env) == [(b"kept", b"value")]


def test_map_full_then_write_again(tiny_env):
    with pytest.raises(lmdb.MapFullError):
        with tiny_env.begin(write=True) as txn:
            fill_until_full(txn)
    with tiny_env.begin(write=True) as txn:
        txn.put(b"after", b"value")
    assert read_all(tiny_env) == [(b"after", b"value"), (b"kept", b"value")]


def test_map_full_putmulti(tiny_env):
    items = [(b"%06d" % index, b"x" * 1000) for index in range(1000)]
    txn = tiny_env.begin(write=True)
    with pytest.raises(lmdb.MapFullError):
        txn.putmulti(items)
    txn.abort()


def test_map_full_after_set_mapsize(tiny_env):
    tiny_env.set_mapsize(1 << 24)
    with tiny_env.begin(write=True) as txn:
        fill_until_full(txn)
    assert tiny_env.stat()["entries"] == 10001


# ---------------------------------------------------------------------------
# Database handles


def test_db_of_other_env(wtxn, tmp_path):
    with lmdb.Environment(str(tmp_path / "other"), max_dbs=1) as other:
        foreign = other.open_db(b"named")
        with pytest.raises(ValueError, match="belongs to the environment"):
            wtxn.get(b"key", db=foreign)


def test_db_from_closed_env_rejected(env):
    named = env.open_db(b"named")
    env.close()
    with lmdb.Environment(env.path, max_dbs=4) as again:
        with again.begin() as txn:
            with pytest.raises(ValueError, match="belongs to the environment"):
                txn.get(b"key", db=named)


def test_db_none_is_main(filled):
    with filled.begin() as txn:
        assert txn.get(b"apple", db=None) == b"1"


def test_db_main_handle_is_main(filled):
    main = filled.open_db()
    with filled.begin() as txn:
        assert txn.get(b"apple", db=main) == b"1"


def test_db_handle_in_txn_begun_before(env):
    # LMDB does not know the handle in a transaction begun before it was
    # opened, and returns EINVAL.
    reader = env.begin()
    named = env.open_db(b"named")
    with pytest.raises((lmdb.Error, OSError)):
        reader.get(b"key", db=named)
    reader.abort()
