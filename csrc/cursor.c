/* sharedb.lmdb.Cursor: a position in one database of a transaction. */


#include "cursor.h"
#include "errors.h"

/* What a cursor iterator yields. */
enum {
    YIELD_KEYS = 1,
    YIELD_VALUES = 2,
    YIELD_ITEMS = YIELD_KEYS | YIELD_VALUES,
};

typedef struct {
    PyObject_HEAD
    CursorObject *cursor;       /* strong */
    MDB_cursor_op step;         /* MDB_NEXT or MDB_PREV */
    int what;                   /* YIELD_KEYS, YIELD_VALUES or YIELD_ITEMS */
    int started;
    int finished;               /* once exhausted, it stays exhausted */
} CursorIterObject;

/* ------------------------------------------------------------------ */
/* Life cycle                                                          */

void
sharedb_cursor_close_handle(CursorObject *self)
{
    if (self->cursor == NULL) {
        return;
    }
    mdb_cursor_close(self->cursor);
    self->cursor = NULL;
    self->positioned = SHAREDB_CURSOR_UNPLACED;
    sharedb_txn_unlink_cursor(self->txn, self);
}

void
sharedb_txn_link_cursor(TxnObject *txn, CursorObject *cursor)
{
    cursor->prev_open = NULL;
    cursor->next_open = txn->cursors;
    if (txn->cursors != NULL) {
        txn->cursors->prev_open = cursor;
    }
    txn->cursors = cursor;
}

void
sharedb_txn_unlink_cursor(TxnObject *txn, CursorObject *cursor)
{
    if (cursor->prev_open != NULL) {
        cursor->prev_open->next_open = cursor->next_open;
    }
    else if (txn->cursors == cursor) {
        txn->cursors = cursor->next_open;
    }
    if (cursor->next_open != NULL) {
        cursor->next_open->prev_open = cursor->prev_open;
    }
    cursor->prev_open = NULL;
    cursor->next_open = NULL;
}

CursorObject *
sharedb_cursor_open(TxnObject *txn, MDB_dbi dbi)
{
    CursorObject *self;
    int rc;

    self = PyObject_New(CursorObject, txn->env->state->cursor_type);
    if (self == NULL) {
        return NULL;
    }
    self->weakreflist = NULL;
    self->txn = (TxnObject *)Py_NewRef(txn);
    self->cursor = NULL;
    self->dbi = dbi;
    self->positioned = SHAREDB_CURSOR_UNPLACED;
    self->prev_open = NULL;
    self->next_open = NULL;

    /* The allocation above may have run code that ended txn. */
    if (sharedb_txn_check(txn) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    rc = mdb_cursor_open(txn->txn, dbi, &self->cursor);
    if (rc != 0) {
        self->cursor = NULL;
        Py_DECREF(self);
        return (CursorObject *)sharedb_raise_lmdb(
            txn->env->state, rc, "mdb_cursor_open", txn->env->path);
    }
    sharedb_txn_link_cursor(txn, self);
    return self;
}

static void
cursor_dealloc(CursorObject *self)
{
    PyTypeObject *type = Py_TYPE(self);

    /* A cursor of an inherited transaction belongs to the parent
       process's LMDB state; closing it only frees this process's copy
       of the memory, which is safe. */
    sharedb_cursor_close_handle(self);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    Py_CLEAR(self->txn);
    PyObject_Free(self);
    Py_DECREF(type);
}

/* Check that the cursor and its transaction can be used now.  Returns
   -1 with an exception set otherwise. */
static int
cursor_check(CursorObject *self)
{
    if (self->cursor == NULL) {
        if (self->txn->txn == NULL) {
            return sharedb_txn_check(self->txn);
        }
        sharedb_raise_closed(self->txn->env->state, "the cursor is closed");
        return -1;
    }
    return sharedb_txn_check(self->txn);
}

static PyObject *
cursor_raise(CursorObject *self, int rc, const char *call)
{
    return sharedb_raise_lmdb(self->txn->env->state, rc, call, NULL);
}

/* Move the cursor with op; key, if not NULL, is the search key.
   Returns 1 if it points at a record, 0 if there is none, -1 on error. */
static int
cursor_move(CursorObject *self, MDB_cursor_op op, MDB_val *key)
{
    MDB_val found_key;
    MDB_val value;
    int rc;

    if (key != NULL) {
        found_key = *key;
    }
    rc = mdb_cursor_get(self->cursor, &found_key, &value, op);
    if (rc == MDB_NOTFOUND) {
        self->positioned = SHAREDB_CURSOR_UNPLACED;
        return 0;
    }
    if (rc != 0) {
        self->positioned = SHAREDB_CURSOR_UNPLACED;
        cursor_raise(self, rc, "mdb_cursor_get");
        return -1;
    }
    self->positioned = SHAREDB_CURSOR_ON_RECORD;
    return 1;
}

/* Step the cursor forward (MDB_NEXT) or backward (MDB_PREV).  LMDB
   keeps a position after a failed search or a step past either end, so
   an unplaced cursor is sent to the first or last record instead.
   Returns as cursor_move(). */
static int
cursor_step_from_state(CursorObject *self, MDB_cursor_op op)
{
    if (self->positioned != SHAREDB_CURSOR_ON_RECORD) {
        op = op == MDB_NEXT ? MDB_FIRST : MDB_LAST;
    }
    return cursor_move(self, op, NULL);
}

/* Read the current record into key and value.  The pointers stay valid
   until the transaction changes, so the caller copies them at once.
   Returns 1, 0 if the cursor points at no record, or -1. */
static int
cursor_current(CursorObject *self, MDB_val *key, MDB_val *value)
{
    int rc;

    if (self->positioned != SHAREDB_CURSOR_ON_RECORD) {
        return 0;
    }
    rc = mdb_cursor_get(self->cursor, key, value, MDB_GET_CURRENT);
    if (rc == MDB_NOTFOUND || rc == EINVAL) {
        /* The record was deleted, and no record follows it. */
        self->positioned = SHAREDB_CURSOR_UNPLACED;
        return 0;
    }
    if (rc != 0) {
        cursor_raise(self, rc, "mdb_cursor_get");
        return -1;
    }
    return 1;
}

/* Build the bytes of the current key, value or (key, value) item.
   Returns NULL with no exception set if there is no current record. */
static PyObject *
cursor_build(CursorObject *self, int what)
{
    PyObject *key_bytes = NULL;
    PyObject *value_bytes = NULL;
    PyObject *result = NULL;
    MDB_val key;
    MDB_val value;
    int found;

    /* Building bytes can run arbitrary code through the garbage
       collector; busy keeps the pages mapped meanwhile. */
    self->txn->busy = 1;
    found = cursor_current(self, &key, &value);
    if (found <= 0) {
        goto done;
    }
    if (what & YIELD_KEYS) {
        key_bytes = PyBytes_FromStringAndSize((const char *)key.mv_data,
                                              (Py_ssize_t)key.mv_size);
        if (key_bytes == NULL) {
            goto done;
        }
    }
    if (what & YIELD_VALUES) {
        value_bytes = PyBytes_FromStringAndSize(
            (const char *)value.mv_data, (Py_ssize_t)value.mv_size);
        if (value_bytes == NULL) {
            goto done;
        }
    }
    if (what == YIELD_ITEMS) {
        result = PyTuple_Pack(2, key_bytes, value_bytes);
    }
    else if (what == YIELD_KEYS) {
        result = Py_NewRef(key_bytes);
    }
    else {
        result = Py_NewRef(value_bytes);
    }

done:
    self->txn->busy = 0;
    Py_XDECREF(key_bytes);
    Py_XDECREF(value_bytes);
    return result;
}

/* ------------------------------------------------------------------ */
/* Positioning                                                         */

static PyObject *
cursor_step(CursorObject *self, MDB_cursor_op op)
{
    int found;

    if (cursor_check(self) < 0) {
        return NULL;
    }
    if (op == MDB_NEXT || op == MDB_PREV) {
        found = cursor_step_from_state(self, op);
    }
    else {
        found = cursor_move(self, op, NULL);
    }
    if (found < 0) {
        return NULL;
    }
    return PyBool_FromLong(found);
}

PyDoc_STRVAR(cursor_first_doc,
"first($self, /)\n"
"--\n"
"\n"
"Move to the first record; return False if the database is empty.");

static PyObject *
cursor_first(CursorObject *self, PyObject *Py_UNUSED(ignored))
{
    return cursor_step(self, MDB_FIRST);
}

PyDoc_STRVAR(cursor_last_doc,
"last($self, /)\n"
"--\n"
"\n"
"Move to the last record; return False if the database is empty.");

static PyObject *
cursor_last(CursorObject *self, PyObject *Py_UNUSED(ignored))
{
    return cursor_step(self, MDB_LAST);
}

PyDoc_STRVAR(cursor_next_doc,
"next($self, /)\n"
"--\n"
"\n"
"Move to the next record, or to the first if the cursor is not placed;\n"
"return False past the end.");

static PyObject *
cursor_next(CursorObject *self, PyObject *Py_UNUSED(ignored))
{
    return cursor_step(self, MDB_NEXT);
}

PyDoc_STRVAR(cursor_prev_doc,
"prev($self, /)\n"
"--\n"
"\n"
"Move to the previous record, or to the last if the cursor is not\n"
"placed; return False before the start.");

static PyObject *
cursor_prev(CursorObject *self, PyObject *Py_UNUSED(ignored))
{
    return cursor_step(self, MDB_PREV);
}

static PyObject *
cursor_seek(CursorObject *self, PyObject *key, MDB_cursor_op op)
{
    Py_buffer view;
    MDB_val key_val;
    int found;

    if (cursor_check(self) < 0) {
        return NULL;
    }
    if (sharedb_get_buffer(key, &view, "key") < 0) {
        return NULL;
    }
    if (view.len == 0) {
        /* LMDB rejects an empty search key.  No record has one, so
           set_key finds nothing and set_range starts at the first. */
        PyBuffer_Release(&view);
        if (op == MDB_SET_RANGE) {
            found = cursor_move(self, MDB_FIRST, NULL);
        }
        else {
            self->positioned = SHAREDB_CURSOR_UNPLACED;
            found = 0;
        }
    }
    else {
        key_val.mv_size = (size_t)view.len;
        key_val.mv_data = view.buf;
        found = cursor_move(self, op, &key_val);
        PyBuffer_Release(&view);
    }
    if (found < 0) {
        return NULL;
    }
    return PyBool_FromLong(found);
}

PyDoc_STRVAR(cursor_set_key_doc,
"set_key($self, key, /)\n"
"--\n"
"\n"
"Move to the record of key; return False, unplacing the cursor, if key\n"
"is absent.");

static PyObject *
cursor_set_key(CursorObject *self, PyObject *key)
{
    return cursor_seek(self, key, MDB_SET_KEY);
}

PyDoc_STRVAR(cursor_set_range_doc,
"set_range($self, key, /)\n"
"--\n"
"\n"
"Move to the first record whose key is key or after it in byte order;\n"
"return False if there is none.");

static PyObject *
cursor_set_range(CursorObject *self, PyObject *key)
{
    return cursor_seek(self, key, MDB_SET_RANGE);
}

/* ------------------------------------------------------------------ */
/* Reading the current record                                          */

static PyObject *
cursor_read(CursorObject *self, int what)
{
    PyObject *result;

    if (cursor_check(self) < 0) {
        return NULL;
    }
    result = cursor_build(self, what);
    if (result == NULL && !PyErr_Occurred()) {
        PyErr_SetString(
            self->txn->env->state->lmdb_errors[MDB_NOTFOUND - MDB_KEYEXIST],
            "the cursor is not placed on a record; move it with first(), "
            "last(), set_key() or set_range()");
    }
    return result;
}

PyDoc_STRVAR(cursor_key_doc,
"key($self, /)\n"
"--\n"
"\n"
"Return the key of the current record as bytes.\n"
"\n"
"Raises NotFoundError when the cursor is not placed on a record.");

static PyObject *
cursor_key(CursorObject *self, PyObject *Py_UNUSED(ignored))
{
    return cursor_read(self, YIELD_KEYS);
}

PyDoc_STRVAR(cursor_value_doc,
"value($self, /)\n"
"--\n"
"\n"
"Return the value of the current record as bytes.\n"
"\n"
"Raises NotFoundError when the cursor is not placed on a record.");

static PyObject *
cursor_value(CursorObject *self, PyObject *Py_UNUSED(ignored))
{
    return cursor_read(self, YIELD_VALUES);
}

PyDoc_STRVAR(cursor_item_doc,
"item($self, /)\n"
"--\n"
"\n"
"Return the current record as a (key, value) tuple of bytes.\n"
"\n"
"Raises NotFoundError when the cursor is not placed on a record.");

static PyObject *
cursor_item(CursorObject *self, PyObject *Py_UNUSED(ignored))
{
    return cursor_read(self, YIELD_ITEMS);
}

/* ------------------------------------------------------------------ */
/* Writing                                                             */

static int
cursor_check_write(CursorObject *self)
{
    if (cursor_check(self) < 0) {
        return -1;
    }
    if (!self->txn->write) {
        PyErr_SetString(self->txn->env->state->readonly_error,
                        "the cursor belongs to a read-only transaction");
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(cursor_put_doc,
"put($self, /, key, value, *, overwrite=True, append=False)\n"
"--\n"
"\n"
"Store value under key and place the cursor on it; return False if\n"
"key existed and overwrite is False.\n"
"\n"
"Raises the errors of Transaction.put().");

static PyObject *
cursor_put(CursorObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"key", "value", "overwrite", "append", NULL};
    PyObject *key;
    PyObject *value;
    Py_buffer key_view;
    Py_buffer value_view;
    MDB_val key_val;
    MDB_val value_val;
    unsigned int flags = 0;
    int overwrite = 1;
    int append = 0;
    int rc;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|$pp:put", keywords,
                                     &key, &value, &overwrite, &append)) {
        return NULL;
    }
    if (cursor_check_write(self) < 0) {
        return NULL;
    }
    if (sharedb_get_buffer(key, &key_view, "key") < 0) {
        return NULL;
    }
    if (sharedb_check_key_size(self->txn->env, &key_view) < 0) {
        PyBuffer_Release(&key_view);
        return NULL;
    }
    if (sharedb_get_buffer(value, &value_view, "value") < 0) {
        PyBuffer_Release(&key_view);
        return NULL;
    }
    if (!overwrite) {
        flags |= MDB_NOOVERWRITE;
    }
    if (append) {
        flags |= MDB_APPEND;
    }
    key_val.mv_size = (size_t)key_view.len;
    key_val.mv_data = key_view.buf;
    value_val.mv_size = (size_t)value_view.len;
    value_val.mv_data = value_view.buf;
    rc = mdb_cursor_put(self->cursor, &key_val, &value_val, flags);
    PyBuffer_Release(&key_view);
    PyBuffer_Release(&value_view);
    if (rc == MDB_KEYEXIST && !overwrite && !append) {
        /* LMDB leaves the cursor on the existing record. */
        self->positioned = SHAREDB_CURSOR_ON_RECORD;
        Py_RETURN_FALSE;
    }
    if (rc != 0) {
        self->positioned = SHAREDB_CURSOR_UNPLACED;
        return sharedb_raise_put(self->txn->env, rc, "mdb_cursor_put", key,
                                 append);
    }
    self->positioned = SHAREDB_CURSOR_ON_RECORD;
    Py_RETURN_TRUE;
}

PyDoc_STRVAR(cursor_delete_doc,
"delete($self, /)\n"
"--\n"
"\n"
"Delete the current record; the cursor moves to the record after it.\n"
"Return False if the cursor was not placed on a record.");

static PyObject *
cursor_delete(CursorObject *self, PyObject *Py_UNUSED(ignored))
{
    MDB_val key;
    MDB_val value;
    int found;
    int rc;

    if (cursor_check_write(self) < 0) {
        return NULL;
    }
    found = cursor_current(self, &key, &value);
    if (found <= 0) {
        return found < 0 ? NULL : Py_NewRef(Py_False);
    }
    rc = mdb_cursor_del(self->cursor, 0);
    if (rc != 0) {
        return cursor_raise(self, rc, "mdb_cursor_del");
    }
    /* LMDB marks the cursor so that MDB_GET_CURRENT reads the record
       that moved into the deleted one's place, if there is one. */
    rc = mdb_cursor_get(self->cursor, &key, &value, MDB_GET_CURRENT);
    self->positioned = rc == 0 ? SHAREDB_CURSOR_ON_RECORD
                               : SHAREDB_CURSOR_UNPLACED;
    Py_RETURN_TRUE;
}

/* ------------------------------------------------------------------ */
/* Iteration                                                           */

static PyObject *
cursor_make_iter(CursorObject *self, PyObject *args, PyObject *kwargs,
                 MDB_cursor_op step, const char *format)
{
    static char *keywords[] = {"keys", "values", NULL};
    CursorIterObject *iter;
    int keys = 1;
    int values = 1;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, format, keywords, &keys,
                                     &values)) {
        return NULL;
    }
    if (!keys && !values) {
        PyErr_SetString(PyExc_ValueError,
                        "keys and values cannot both be False");
        return NULL;
    }
    if (cursor_check(self) < 0) {
        return NULL;
    }
    iter = PyObject_New(CursorIterObject,
                        self->txn->env->state->cursor_iter_type);
    if (iter == NULL) {
        return NULL;
    }
    iter->cursor = (CursorObject *)Py_NewRef(self);
    iter->step = step;
    iter->what = (keys ? YIELD_KEYS : 0) | (values ? YIELD_VALUES : 0);
    iter->started = 0;
    iter->finished = 0;
    return (PyObject *)iter;
}

PyDoc_STRVAR(cursor_iternext_doc,
"iternext($self, /, keys=True, values=True)\n"
"--\n"
"\n"
"Return an iterator forward from the current record, or from the\n"
"first if the cursor is not placed.\n"
"\n"
"It yields (key, value) tuples, or only keys or only values.");

static PyObject *
cursor_iternext(CursorObject *self, PyObject *args, PyObject *kwargs)
{
    return cursor_make_iter(self, args, kwargs, MDB_NEXT,
                            "|pp:iternext");
}

PyDoc_STRVAR(cursor_iterprev_doc,
"iterprev($self, /, keys=True, values=True)\n"
"--\n"
"\n"
"Return an iterator backward from the current record, or from the\n"
"last if the cursor is not placed.\n"
"\n"
"It yields (key, value) tuples, or only keys or only values.");

static PyObject *
cursor_iterprev(CursorObject *self, PyObject *args, PyObject *kwargs)
{
    return cursor_make_iter(self, args, kwargs, MDB_PREV,
                            "|pp:iterprev");
}

static PyObject *
cursor_iter(CursorObject *self)
{
    PyObject *args = PyTuple_New(0);
    PyObject *iter;

    if (args == NULL) {
        return NULL;
    }
    iter = cursor_iternext(self, args, NULL);
    Py_DECREF(args);
    return iter;
}

static PyObject *
cursor_iter_next(CursorIterObject *self)
{
    CursorObject *cursor = self->cursor;
    int found;

    if (cursor_check(cursor) < 0) {
        return NULL;
    }
    /* The first step yields the current record, if the cursor is on
       one; every step after moves first. */
    if (self->finished) {
        return NULL;
    }
    if (self->started || cursor->positioned != SHAREDB_CURSOR_ON_RECORD) {
        found = cursor_step_from_state(cursor, self->step);
        if (found <= 0) {
            self->finished = found == 0;
            return NULL;
        }
    }
    self->started = 1;
    return cursor_build(cursor, self->what);
}

static void
cursor_iter_dealloc(CursorIterObject *self)
{
    PyTypeObject *type = Py_TYPE(self);

    Py_CLEAR(self->cursor);
    PyObject_Free(self);
    Py_DECREF(type);
}

static PyObject *
cursor_close(CursorObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->cursor != NULL && self->txn->busy) {
        PyErr_SetString(self->txn->env->state->error,
                        "the cursor's transaction is in use by another "
                        "call");
        return NULL;
    }
    sharedb_cursor_close_handle(self);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(cursor_close_doc,
"close($self, /)\n"
"--\n"
"\n"
"Close the cursor.  Closing twice does nothing.");

PyDoc_STRVAR(cursor_enter_doc,
"__enter__($self, /)\n"
"--\n"
"\n"
"Return the cursor.  Raises ClosedError if it or its transaction has\n"
"ended.");

PyDoc_STRVAR(cursor_exit_doc,
"__exit__($self, /, *args)\n"
"--\n"
"\n"
"Close the cursor and return False.");

static PyObject *
cursor_enter(CursorObject *self, PyObject *Py_UNUSED(ignored))
{
    if (cursor_check(self) < 0) {
        return NULL;
    }
    return Py_NewRef(self);
}

static PyObject *
cursor_exit(CursorObject *self, PyObject *Py_UNUSED(args))
{
    PyObject *result = cursor_close(self, NULL);

    if (result == NULL) {
        return NULL;
    }
    Py_DECREF(result);
    Py_RETURN_FALSE;
}

static PyObject *
cursor_get_txn(CursorObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->txn);
}

static PyMethodDef cursor_methods[] = {
    {"first", (PyCFunction)cursor_first, METH_NOARGS, cursor_first_doc},
    {"last", (PyCFunction)cursor_last, METH_NOARGS, cursor_last_doc},
    {"next", (PyCFunction)cursor_next, METH_NOARGS, cursor_next_doc},
    {"prev", (PyCFunction)cursor_prev, METH_NOARGS, cursor_prev_doc},
    {"set_key", (PyCFunction)cursor_set_key, METH_O, cursor_set_key_doc},
    {"set_range", (PyCFunction)cursor_set_range, METH_O,
     cursor_set_range_doc},
    {"key", (PyCFunction)cursor_key, METH_NOARGS, cursor_key_doc},
    {"value", (PyCFunction)cursor_value, METH_NOARGS, cursor_value_doc},
    {"item", (PyCFunction)cursor_item, METH_NOARGS, cursor_item_doc},
    {"put", (PyCFunction)(void (*)(void))cursor_put,
     METH_VARARGS | METH_KEYWORDS, cursor_put_doc},
    {"delete", (PyCFunction)cursor_delete, METH_NOARGS, cursor_delete_doc},
    {"iternext", (PyCFunction)(void (*)(void))cursor_iternext,
     METH_VARARGS | METH_KEYWORDS, cursor_iternext_doc},
    {"iterprev", (PyCFunction)(void (*)(void))cursor_iterprev,
     METH_VARARGS | METH_KEYWORDS, cursor_iterprev_doc},
    {"close", (PyCFunction)cursor_close, METH_NOARGS, cursor_close_doc},
    {"__enter__", (PyCFunction)cursor_enter, METH_NOARGS,
     cursor_enter_doc},
    {"__exit__", (PyCFunction)cursor_exit, METH_VARARGS, cursor_exit_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef cursor_getset[] = {
    {"txn", (getter)cursor_get_txn, NULL, "The Transaction.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef cursor_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(CursorObject, weakreflist),
     READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

PyDoc_STRVAR(cursor_doc,
"A cursor over one database, from Transaction.cursor().\n"
"\n"
"Records are in byte order of their keys.  Iterating a cursor yields\n"
"(key, value) tuples of bytes forward from its position.");

static PyType_Slot cursor_slots[] = {
    {Py_tp_doc, (void *)cursor_doc},
    {Py_tp_dealloc, cursor_dealloc},
    {Py_tp_iter, cursor_iter},
    {Py_tp_methods, cursor_methods},
    {Py_tp_getset, cursor_getset},
    {Py_tp_members, cursor_members},
    {0, NULL},
};

static PyType_Spec cursor_spec = {
    .name = "sharedb.lmdb.Cursor",
    .basicsize = sizeof(CursorObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = cursor_slots,
};

static PyType_Slot cursor_iter_slots[] = {
    {Py_tp_dealloc, cursor_iter_dealloc},
    {Py_tp_iter, PyObject_SelfIter},
    {Py_tp_iternext, cursor_iter_next},
    {0, NULL},
};

static PyType_Spec cursor_iter_spec = {
    .name = "sharedb.lmdb.CursorIterator",
    .basicsize = sizeof(CursorIterObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = cursor_iter_slots,
};

int
sharedb_cursor_setup_type(PyObject *module, sharedb_state *state)
{
    state->cursor_type = (PyTypeObject *)PyType_FromModuleAndSpec(
        module, &cursor_spec, NULL);
    if (state->cursor_type == NULL) {
        return -1;
    }
    if (PyModule_AddType(module, state->cursor_type) < 0) {
        return -1;
    }
    state->cursor_iter_type = (PyTypeObject *)PyType_FromModuleAndSpec(
        module, &cursor_iter_spec, NULL);
    if (state->cursor_iter_type == NULL) {
        return -1;
    }
    return 0;
}
