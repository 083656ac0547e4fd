/* sharedb.lmdb.Transaction: a read or write transaction. */


#include "cursor.h"
#include "errors.h"
#include "txn.h"

/* A put of a value at least this large copies enough memory to be worth
   releasing the GIL around it. */
#define LARGE_VALUE_SIZE (1 << 20)

/* Batch calls release the GIL once per this many records. */
#define BATCH_SIZE 1024

int
sharedb_get_buffer(PyObject *obj, Py_buffer *view, const char *name)
{
    if (PyUnicode_Check(obj)) {
        PyErr_Format(PyExc_TypeError,
                     "%s must be a bytes-like object, not str; encode it "
                     "first", name);
        return -1;
    }
    if (PyObject_GetBuffer(obj, view, PyBUF_SIMPLE) < 0) {
        if (PyObject_CheckBuffer(obj)) {
            /* A buffer that exists but is not one block of memory, such
               as a memoryview taken with a step. */
            PyErr_Format(PyExc_TypeError,
                         "%s must be a contiguous bytes-like object, but "
                         "the %.200s given is not contiguous; pass "
                         "bytes(%s) instead", name, Py_TYPE(obj)->tp_name,
                         name);
        }
        else {
            PyErr_Format(PyExc_TypeError,
                         "%s must be a bytes-like object, not %.200s", name,
                         Py_TYPE(obj)->tp_name);
        }
        return -1;
    }
    return 0;
}

int
sharedb_check_key_size(EnvObject *env, const Py_buffer *view)
{
    int max_size = env->max_key_size;

    if (view->len == 0 || view->len > max_size) {
        PyErr_Format(env->state->lmdb_errors[MDB_BAD_VALSIZE - MDB_KEYEXIST],
                     "a key of %zd bytes cannot be stored (MDB_BAD_VALSIZE): "
                     "LMDB keys are 1 to %d bytes", view->len, max_size);
        return -1;
    }
    return 0;
}

/* Raise BadValsizeError unless view is a key LMDB can store: 1 to
   max_key_size() bytes.  Lookups check it too, so that a key that can
   never be stored is an error everywhere, not a silent miss. */
static int
check_key_size(TxnObject *txn, const Py_buffer *view)
{
    return sharedb_check_key_size(txn->env, view);
}

PyObject *
sharedb_raise_put(EnvObject *env, int rc, const char *call,
                  PyObject *context, int append)
{
    if (rc == MDB_KEYEXIST && append) {
        return sharedb_raise_lmdb_hint(
            env->state, rc, call, context,
            "; append=True needs each key to be greater than the last key "
            "of the database, and this key is not: put it without "
            "append=True, or sort the keys first");
    }
    return sharedb_raise_lmdb(env->state, rc, call, context);
}

static inline MDB_val
view_to_val(const Py_buffer *view)
{
    MDB_val val;

    val.mv_size = (size_t)view->len;
    val.mv_data = view->buf;
    return val;
}

/* ------------------------------------------------------------------ */
/* Life cycle                                                          */

static int
txn_is_current_thread(TxnObject *self)
{
    return !self->write || self->thread == PyThread_get_thread_ident();
}

/* True if self or a nested child of it is in use. */
static int
txn_tree_busy(TxnObject *self)
{
    for (TxnObject *txn = self; txn != NULL; txn = txn->child) {
        if (txn->busy) {
            return 1;
        }
    }
    return 0;
}

/* Close the cursors of self; LMDB requires it before the end of a read
   transaction, and it keeps cursor objects from using freed handles. */
static void
txn_close_cursors(TxnObject *self)
{
    while (self->cursors != NULL) {
        sharedb_cursor_close_handle(self->cursors);
    }
}

/* Forget a transaction LMDB has already ended, together with a parent's
   commit or abort. */
static void
txn_forget(TxnObject *self, const char *reason)
{
    EnvObject *env = self->env;

    txn_close_cursors(self);
    self->txn = NULL;
    self->end_reason = reason;
    sharedb_env_unlink_txn(env, self);
    if (self->parent != NULL) {
        self->parent->child = NULL;
    }
    env->live_txns--;
    sharedb_env_unpin(env);
}

/* End self and its nested children.  Returns the LMDB code of the
   commit, or 0.  The children end with their parent inside LMDB; here
   they are only marked ended, innermost first. */
static int
txn_end(TxnObject *self, int commit, const char *reason)
{
    EnvObject *env = self->env;
    MDB_txn *txn = self->txn;
    int top_level = self->parent == NULL;
    int rc = 0;

    if (txn == NULL) {
        return 0;
    }
    while (self->child != NULL) {
        TxnObject *innermost = self->child;

        while (innermost->child != NULL) {
            innermost = innermost->child;
        }
        txn_forget(innermost, commit ? "its parent transaction was "
                   "committed" : "its parent transaction was aborted");
    }
    txn_close_cursors(self);

    if (sharedb_fork_count() != env->fork_count) {
        /* Inherited through fork(): the parent process owns the LMDB
           transaction, so it is left as it is. */
        self->txn = NULL;
        self->end_reason = reason;
        sharedb_env_unlink_txn(env, self);
        env->live_txns--;
        env->pins--;
        return 0;
    }
    if (!self->write) {
        self->txn = NULL;
        self->end_reason = reason;
        sharedb_env_unlink_txn(env, self);
        sharedb_env_read_end(env, txn);
        return 0;
    }

    /* A commit writes pages and may flush them to disk. */
    self->busy = 1;
    Py_BEGIN_ALLOW_THREADS
    rc = sharedb_env_write_end_nogil(env, txn, top_level, commit);
    Py_END_ALLOW_THREADS
    self->busy = 0;
    if (rc != 0) {
        reason = "its commit failed";
    }
    txn_forget(self, reason);
    if (rc == MDB_MAP_FULL && env->map_grow) {
        env->grow_pending = 1;
    }
    if (env->grow_pending && env->pins == 0 && !env->closed) {
        /* The write that found the map full has ended, and with it the
           last transaction of this process, so the map can grow now;
           if it cannot, the next write transaction tries again. */
        PyObject *type;
        PyObject *value;
        PyObject *traceback;

        PyErr_Fetch(&type, &value, &traceback);
        if (sharedb_env_remap(env, MDB_MAP_FULL) == 0) {
            env->grow_pending = 0;
        }
        else {
            PyErr_Clear();
        }
        PyErr_Restore(type, value, traceback);
    }
    return rc;
}

void
sharedb_txn_abort(TxnObject *self, const char *reason)
{
    txn_end(self, 0, reason);
}

int
sharedb_txn_end_for_close(TxnObject *self)
{
    if (self->txn == NULL || txn_tree_busy(self) ||
        !txn_is_current_thread(self)) {
        return 0;
    }
    txn_end(self, 0, "its environment was closed");
    return 1;
}

/* Check that the transaction can be used, or ended if allow_child is
   set, by this thread now.  A transaction whose environment was closed,
   or that this process inherited through fork(), ends here. */
static int
txn_check_state(TxnObject *self, int allow_child)
{
    EnvObject *env = self->env;

    if (self->txn == NULL) {
        sharedb_raise_closed(env->state, "the transaction has ended: %s",
                             self->end_reason);
        return -1;
    }
    if (!txn_is_current_thread(self)) {
        PyErr_Format(env->state->lmdb_errors[MDB_BAD_TXN - MDB_KEYEXIST],
                     "a write transaction can only be used by the thread "
                     "that began it");
        return -1;
    }
    if (self->busy) {
        PyErr_SetString(env->state->error,
                        "the transaction is in use by another call");
        return -1;
    }
    if (env->closed || env->env == NULL ||
        env->fork_count != sharedb_fork_count()) {
        txn_end(self, 0, env->fork_count != sharedb_fork_count()
                ? "it was begun before fork(), in another process"
                : "its environment was closed");
        sharedb_env_check(env);
        return -1;
    }
    if (!allow_child && self->child != NULL) {
        PyErr_Format(env->state->lmdb_errors[MDB_BAD_TXN - MDB_KEYEXIST],
                     "the transaction has an open nested transaction; "
                     "commit or abort that first");
        return -1;
    }
    return 0;
}

int
sharedb_txn_check(TxnObject *self)
{
    return txn_check_state(self, 0);
}

static int
txn_check_write(TxnObject *self)
{
    if (sharedb_txn_check(self) < 0) {
        return -1;
    }
    if (!self->write) {
        PyErr_SetString(self->env->state->readonly_error,
                        "this is a read-only transaction; begin one with "
                        "write=True to change the database");
        return -1;
    }
    return 0;
}

TxnObject *
sharedb_txn_begin(EnvObject *env, TxnObject *parent, int write)
{
    unsigned long thread = PyThread_get_thread_ident();
    TxnObject *self;
    MDB_txn *txn = NULL;
    int rc;

    if (parent != NULL) {
        if (sharedb_txn_check(parent) < 0) {
            return NULL;
        }
        if (!parent->write) {
            PyErr_SetString(PyExc_ValueError,
                            "parent must be a write transaction");
            return NULL;
        }
    }
    else if (write && sharedb_env_check_writable(env) < 0) {
        return NULL;
    }
    else if (write && env->grow_pending && env->pins == 0) {
        /* A write of an earlier transaction found the map full; with
           no transaction of this process left, it can grow now. */
        if (sharedb_env_remap(env, MDB_MAP_FULL) < 0) {
            return NULL;
        }
        env->grow_pending = 0;
    }
    else if (sharedb_env_check(env) < 0) {
        return NULL;
    }

    /* Allocate first: allocation can run arbitrary code through the
       garbage collector, which must not happen while the writer lock is
       held without an owner object. */
    self = PyObject_New(TxnObject, env->state->txn_type);
    if (self == NULL) {
        return NULL;
    }
    self->weakreflist = NULL;
    self->env = (EnvObject *)Py_NewRef(env);
    self->parent = (TxnObject *)Py_XNewRef(parent);
    self->child = NULL;
    self->txn = NULL;
    self->write = write;
    self->thread = thread;
    self->busy = 0;
    self->end_reason = "it was never begun";
    self->cursors = NULL;
    self->prev_open = NULL;
    self->next_open = NULL;

    if (!write) {
        txn = sharedb_env_read_begin(env);
        if (txn == NULL) {
            Py_DECREF(self);
            return NULL;
        }
    }
    else {
        for (;;) {
            MDB_txn *parent_txn = parent != NULL ? parent->txn : NULL;

            /* Beginning waits for the writer lock, which another process
               or thread may hold for long. */
            sharedb_env_pin(env);
            if (parent != NULL) {
                parent->busy = 1;
            }
            Py_BEGIN_ALLOW_THREADS
            rc = sharedb_env_write_begin_nogil(env, parent_txn, thread,
                                               &txn);
            Py_END_ALLOW_THREADS
            if (parent != NULL) {
                parent->busy = 0;
            }
            if (rc == 0 && env->closed) {
                Py_BEGIN_ALLOW_THREADS
                sharedb_env_write_end_nogil(env, txn, parent == NULL, 0);
                Py_END_ALLOW_THREADS
                sharedb_env_unpin(env);
                sharedb_env_check(env);
                Py_DECREF(self);
                return NULL;
            }
            if (rc == 0) {
                break;
            }
            sharedb_env_unpin(env);
            if (rc == MDB_MAP_RESIZED && parent == NULL &&
                sharedb_env_remap(env, rc) == 0) {
                continue;
            }
            if (!PyErr_Occurred() && sharedb_env_check(env) == 0) {
                sharedb_raise_lmdb(env->state, rc, "mdb_txn_begin",
                                   env->path);
            }
            Py_DECREF(self);
            return NULL;
        }
        env->live_txns++;
    }

    self->txn = txn;
    self->end_reason = NULL;
    sharedb_env_link_txn(env, self);
    if (parent != NULL) {
        parent->child = self;
    }
    return self;
}

static void
txn_dealloc(TxnObject *self)
{
    PyTypeObject *type = Py_TYPE(self);

    if (self->txn != NULL) {
        if (txn_is_current_thread(self)) {
            txn_end(self, 0, "it was deleted");
        }
        else {
            PyObject *type;
            PyObject *value;
            PyObject *traceback;

            /* LMDB's writer lock can only be released by the thread
               that took it, so the transaction and its environment are
               left open: other writers wait until that thread exits. */
            PyErr_Fetch(&type, &value, &traceback);
            if (PyErr_WarnFormat(PyExc_ResourceWarning, 1,
                                 "a write transaction on %R was deleted in "
                                 "a thread other than the one that began "
                                 "it, so it cannot be aborted; its writer "
                                 "lock stays held", self->env->path) < 0) {
                PyErr_WriteUnraisable(NULL);
            }
            PyErr_Restore(type, value, traceback);
            sharedb_env_unlink_txn(self->env, self);
            if (self->parent != NULL) {
                self->parent->child = NULL;
            }
            /* The pin stays, so the environment is never closed under
               the open transaction. */
            Py_INCREF(self->env);
        }
    }
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    Py_CLEAR(self->parent);
    Py_CLEAR(self->env);
    PyObject_Free(self);
    Py_DECREF(type);
}

/* ------------------------------------------------------------------ */
/* Reads and writes                                                    */

static int
txn_parse_dbi(TxnObject *self, PyObject *db, MDB_dbi *dbi)
{
    return sharedb_env_dbi(self->env, db, dbi);
}

/* Copy a value out of the map.  Must run with self busy: building the
   bytes object can run arbitrary code. */
static PyObject *
txn_copy_val(const MDB_val *val)
{
    return PyBytes_FromStringAndSize((const char *)val->mv_data,
                                     (Py_ssize_t)val->mv_size);
}

static PyObject *
txn_raise(TxnObject *self, int rc, const char *call, PyObject *key)
{
    EnvObject *env = self->env;

    if (rc == MDB_MAP_FULL && env->map_grow) {
        env->grow_pending = 1;
    }
    if (rc == EINVAL) {
        /* Every argument LMDB checks is valid here but the handle: LMDB
           rejects a database opened after the transaction began. */
        return PyErr_Format(
            env->state->lmdb_errors[MDB_BAD_DBI - MDB_KEYEXIST],
            "%s failed: the database handle is not valid in this "
            "transaction, which began before open_db() opened it; begin a "
            "new transaction", call);
    }
    return sharedb_raise_lmdb(env->state, rc, call, key);
}

PyDoc_STRVAR(txn_get_doc,
"get($self, /, key, default=None, *, db=None)\n"
"--\n"
"\n"
"Return the value of key as bytes, or default if key is absent.\n"
"\n"
"Raises ClosedError, TypeError for a key that is not bytes-like,\n"
"BadValsizeError for an empty key or one over max_key_size().");

static PyObject *
txn_get(TxnObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"key", "default", "db", NULL};
    PyObject *key;
    PyObject *default_value = Py_None;
    PyObject *db = Py_None;
    PyObject *result = NULL;
    Py_buffer key_view;
    MDB_val key_val;
    MDB_val value;
    MDB_dbi dbi;
    int rc;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|O$O:get", keywords,
                                     &key, &default_value, &db)) {
        return NULL;
    }
    if (sharedb_txn_check(self) < 0 || txn_parse_dbi(self, db, &dbi) < 0) {
        return NULL;
    }
    if (sharedb_get_buffer(key, &key_view, "key") < 0) {
        return NULL;
    }
    if (check_key_size(self, &key_view) < 0) {
        PyBuffer_Release(&key_view);
        return NULL;
    }
    key_val = view_to_val(&key_view);
    self->busy = 1;
    rc = mdb_get(self->txn, dbi, &key_val, &value);
    if (rc == 0) {
        result = txn_copy_val(&value);
    }
    else if (rc == MDB_NOTFOUND) {
        result = Py_NewRef(default_value);
    }
    else {
        txn_raise(self, rc, "mdb_get", key);
    }
    self->busy = 0;
    PyBuffer_Release(&key_view);
    return result;
}

/* Store key and value with flags; returns an LMDB code.  Large values
   are copied with the GIL released. */
static int
txn_put_views(TxnObject *self, MDB_dbi dbi, Py_buffer *key_view,
              Py_buffer *value_view, unsigned int flags)
{
    MDB_val key = view_to_val(key_view);
    MDB_val value = view_to_val(value_view);
    MDB_txn *txn = self->txn;
    int rc;

    self->busy = 1;
    if (value_view->len >= LARGE_VALUE_SIZE) {
        Py_BEGIN_ALLOW_THREADS
        rc = mdb_put(txn, dbi, &key, &value, flags);
        Py_END_ALLOW_THREADS
    }
    else {
        rc = mdb_put(txn, dbi, &key, &value, flags);
    }
    self->busy = 0;
    return rc;
}

static unsigned int
put_flags(int overwrite, int append)
{
    unsigned int flags = 0;

    if (!overwrite) {
        flags |= MDB_NOOVERWRITE;
    }
    if (append) {
        flags |= MDB_APPEND;
    }
    return flags;
}

PyDoc_STRVAR(txn_put_doc,
"put($self, /, key, value, *, overwrite=True, append=False, db=None)\n"
"--\n"
"\n"
"Store value under key; return False if key existed and overwrite is\n"
"False, else True.\n"
"\n"
"append=True is a fast path for keys given in ascending order; a key\n"
"not above the last one raises KeyExistsError.  Raises ClosedError,\n"
"ReadonlyError, TypeError for arguments that are not bytes-like,\n"
"BadValsizeError for an empty or too long key, MapFullError.");

static PyObject *
txn_put(TxnObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"key", "value", "overwrite", "append", "db",
                               NULL};
    PyObject *key;
    PyObject *value;
    PyObject *db = Py_None;
    Py_buffer key_view;
    Py_buffer value_view;
    MDB_dbi dbi;
    int overwrite = 1;
    int append = 0;
    int rc;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|$ppO:put", keywords,
                                     &key, &value, &overwrite, &append,
                                     &db)) {
        return NULL;
    }
    if (txn_check_write(self) < 0 || txn_parse_dbi(self, db, &dbi) < 0) {
        return NULL;
    }
    if (sharedb_get_buffer(key, &key_view, "key") < 0) {
        return NULL;
    }
    if (check_key_size(self, &key_view) < 0) {
        PyBuffer_Release(&key_view);
        return NULL;
    }
    if (sharedb_get_buffer(value, &value_view, "value") < 0) {
        PyBuffer_Release(&key_view);
        return NULL;
    }
    rc = txn_put_views(self, dbi, &key_view, &value_view,
                       put_flags(overwrite, append));
    PyBuffer_Release(&key_view);
    PyBuffer_Release(&value_view);
    /* With append, MDB_KEYEXIST also means a key out of order, which
       is an error whatever overwrite says. */
    if (rc == MDB_KEYEXIST && !overwrite && !append) {
        Py_RETURN_FALSE;
    }
    if (rc == MDB_KEYEXIST) {
        return sharedb_raise_put(self->env, rc, "mdb_put", key, append);
    }
    if (rc != 0) {
        return txn_raise(self, rc, "mdb_put", key);
    }
    Py_RETURN_TRUE;
}

/* Read the old value of key, then store value or delete the record.
   Shared by replace() and pop(). */
static PyObject *
txn_swap(TxnObject *self, PyObject *key, PyObject *value, PyObject *db,
         PyObject *default_value)
{
    PyObject *old = NULL;
    Py_buffer key_view;
    Py_buffer value_view;
    MDB_val key_val;
    MDB_val old_val;
    MDB_dbi dbi;
    int rc;

    if (txn_check_write(self) < 0 || txn_parse_dbi(self, db, &dbi) < 0) {
        return NULL;
    }
    if (sharedb_get_buffer(key, &key_view, "key") < 0) {
        return NULL;
    }
    if (check_key_size(self, &key_view) < 0) {
        PyBuffer_Release(&key_view);
        return NULL;
    }
    if (value != NULL &&
        sharedb_get_buffer(value, &value_view, "value") < 0) {
        PyBuffer_Release(&key_view);
        return NULL;
    }
    key_val = view_to_val(&key_view);
    self->busy = 1;
    rc = mdb_get(self->txn, dbi, &key_val, &old_val);
    if (rc == 0) {
        /* Copied before the write, which may reuse the old page. */
        old = txn_copy_val(&old_val);
        if (old == NULL) {
            self->busy = 0;
            goto done;
        }
    }
    else if (rc != MDB_NOTFOUND) {
        self->busy = 0;
        txn_raise(self, rc, "mdb_get", key);
        goto done;
    }
    self->busy = 0;

    if (value != NULL) {
        rc = txn_put_views(self, dbi, &key_view, &value_view, 0);
        if (rc != 0) {
            Py_CLEAR(old);
            txn_raise(self, rc, "mdb_put", key);
            goto done;
        }
    }
    else if (old != NULL) {
        rc = mdb_del(self->txn, dbi, &key_val, NULL);
        if (rc != 0) {
            Py_CLEAR(old);
            txn_raise(self, rc, "mdb_del", key);
            goto done;
        }
    }
    if (old == NULL) {
        old = Py_NewRef(default_value);
    }

done:
    PyBuffer_Release(&key_view);
    if (value != NULL) {
        PyBuffer_Release(&value_view);
    }
    return old;
}

PyDoc_STRVAR(txn_replace_doc,
"replace($self, /, key, value, *, db=None)\n"
"--\n"
"\n"
"Store value under key and return the old value, or None.\n"
"\n"
"Raises the errors of put().");

static PyObject *
txn_replace(TxnObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"key", "value", "db", NULL};
    PyObject *key;
    PyObject *value;
    PyObject *db = Py_None;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|$O:replace",
                                     keywords, &key, &value, &db)) {
        return NULL;
    }
    return txn_swap(self, key, value, db, Py_None);
}

PyDoc_STRVAR(txn_pop_doc,
"pop($self, /, key, default=None, *, db=None)\n"
"--\n"
"\n"
"Delete key and return its value, or default if key is absent.\n"
"\n"
"Raises the errors of put().");

static PyObject *
txn_pop(TxnObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"key", "default", "db", NULL};
    PyObject *key;
    PyObject *default_value = Py_None;
    PyObject *db = Py_None;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|O$O:pop", keywords,
                                     &key, &default_value, &db)) {
        return NULL;
    }
    return txn_swap(self, key, NULL, db, default_value);
}

PyDoc_STRVAR(txn_delete_doc,
"delete($self, /, key, *, db=None)\n"
"--\n"
"\n"
"Delete key; return True if it was present.\n"
"\n"
"Raises ClosedError, ReadonlyError, TypeError, BadValsizeError.");

static PyObject *
txn_delete(TxnObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"key", "db", NULL};
    PyObject *key;
    PyObject *db = Py_None;
    Py_buffer key_view;
    MDB_val key_val;
    MDB_dbi dbi;
    int rc;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|$O:delete", keywords,
                                     &key, &db)) {
        return NULL;
    }
    if (txn_check_write(self) < 0 || txn_parse_dbi(self, db, &dbi) < 0) {
        return NULL;
    }
    if (sharedb_get_buffer(key, &key_view, "key") < 0) {
        return NULL;
    }
    if (check_key_size(self, &key_view) < 0) {
        PyBuffer_Release(&key_view);
        return NULL;
    }
    key_val = view_to_val(&key_view);
    rc = mdb_del(self->txn, dbi, &key_val, NULL);
    PyBuffer_Release(&key_view);
    if (rc == MDB_NOTFOUND) {
        Py_RETURN_FALSE;
    }
    if (rc != 0) {
        return txn_raise(self, rc, "mdb_del", key);
    }
    Py_RETURN_TRUE;
}

PyDoc_STRVAR(txn_drop_doc,
"drop($self, /, db=None, delete=False)\n"
"--\n"
"\n"
"Delete every record of db; with delete=True also delete the named\n"
"database itself, which makes its handle invalid.\n"
"\n"
"The main database can only be emptied.  Raises ClosedError,\n"
"ReadonlyError.");

static PyObject *
txn_drop(TxnObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"db", "delete", NULL};
    PyObject *db = Py_None;
    MDB_txn *txn;
    MDB_dbi dbi;
    int delete = 0;
    int rc;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|Op:drop", keywords,
                                     &db, &delete)) {
        return NULL;
    }
    if (txn_check_write(self) < 0 || txn_parse_dbi(self, db, &dbi) < 0) {
        return NULL;
    }
    if (dbi == self->env->main_dbi) {
        delete = 0;
    }

    /* Dropping walks and frees every page of the database. */
    txn = self->txn;
    self->busy = 1;
    Py_BEGIN_ALLOW_THREADS
    rc = mdb_drop(txn, dbi, delete);
    Py_END_ALLOW_THREADS
    self->busy = 0;
    if (rc != 0) {
        return txn_raise(self, rc, "mdb_drop", self->env->path);
    }
    if (delete) {
        sharedb_env_forget_db(self->env, db);
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(txn_stat_doc,
"stat($self, /, db=None)\n"
"--\n"
"\n"
"Return the statistics of db as seen by this transaction.\n"
"\n"
"Keys: psize, depth, branch_pages, leaf_pages, overflow_pages,\n"
"entries.  Raises ClosedError.");

static PyObject *
txn_stat(TxnObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"db", NULL};
    PyObject *db = Py_None;
    MDB_stat stat;
    MDB_dbi dbi;
    int rc;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:stat", keywords,
                                     &db)) {
        return NULL;
    }
    if (sharedb_txn_check(self) < 0 || txn_parse_dbi(self, db, &dbi) < 0) {
        return NULL;
    }
    rc = mdb_stat(self->txn, dbi, &stat);
    if (rc != 0) {
        return txn_raise(self, rc, "mdb_stat", self->env->path);
    }
    return Py_BuildValue(
        "{s:I,s:I,s:n,s:n,s:n,s:n}",
        "psize", stat.ms_psize,
        "depth", stat.ms_depth,
        "branch_pages", (Py_ssize_t)stat.ms_branch_pages,
        "leaf_pages", (Py_ssize_t)stat.ms_leaf_pages,
        "overflow_pages", (Py_ssize_t)stat.ms_overflow_pages,
        "entries", (Py_ssize_t)stat.ms_entries);
}

PyDoc_STRVAR(txn_cursor_doc,
"cursor($self, /, db=None)\n"
"--\n"
"\n"
"Open a cursor on db, valid until the transaction ends.\n"
"\n"
"Raises ClosedError.");

static PyObject *
txn_cursor(TxnObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"db", NULL};
    PyObject *db = Py_None;
    MDB_dbi dbi;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:cursor", keywords,
                                     &db)) {
        return NULL;
    }
    if (sharedb_txn_check(self) < 0 || txn_parse_dbi(self, db, &dbi) < 0) {
        return NULL;
    }
    return (PyObject *)sharedb_cursor_open(self, dbi);
}

/* ------------------------------------------------------------------ */
/* Batch calls                                                         */

/* One record of a batch, with the buffers it borrows. */
typedef struct {
    Py_buffer key;
    Py_buffer value;
    int has_value;
} batch_record;

static void
batch_release(batch_record *records, Py_ssize_t count)
{
    for (Py_ssize_t i = 0; i < count; i++) {
        PyBuffer_Release(&records[i].key);
        if (records[i].has_value) {
            PyBuffer_Release(&records[i].value);
        }
    }
}

/* Fill up to BATCH_SIZE records from iterator; pairs says whether each
   item is a (key, value) pair or a key.  Returns the number of records
   filled.  If reading or converting an item failed, *failed is set and
   the exception is left set, after the records read before it. */
static Py_ssize_t
batch_fill(TxnObject *txn, PyObject *iterator, batch_record *records,
           int pairs, int *failed)
{
    Py_ssize_t count = 0;
    PyObject *item;

    *failed = 0;
    while (count < BATCH_SIZE && (item = PyIter_Next(iterator)) != NULL) {
        batch_record *record = &records[count];
        PyObject *key = item;
        PyObject *value = NULL;
        int rc;

        if (pairs) {
            if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
                PyErr_Format(PyExc_TypeError,
                             "each item must be a (key, value) tuple, not "
                             "%.200s", Py_TYPE(item)->tp_name);
                Py_DECREF(item);
                *failed = 1;
                return count;
            }
            key = PyTuple_GET_ITEM(item, 0);
            value = PyTuple_GET_ITEM(item, 1);
        }
        rc = sharedb_get_buffer(key, &record->key, "key");
        if (rc == 0 && check_key_size(txn, &record->key) < 0) {
            PyBuffer_Release(&record->key);
            rc = -1;
        }
        if (rc == 0 && value != NULL) {
            rc = sharedb_get_buffer(value, &record->value, "value");
            if (rc < 0) {
                PyBuffer_Release(&record->key);
            }
        }
        Py_DECREF(item);
        if (rc < 0) {
            *failed = 1;
            return count;
        }
        record->has_value = value != NULL;
        count++;
    }
    *failed = PyErr_Occurred() != NULL;
    return count;
}

PyDoc_STRVAR(txn_putmulti_doc,
"putmulti($self, /, items, *, overwrite=True, append=False, db=None)\n"
"--\n"
"\n"
"Store each (key, value) pair of the iterable items.\n"
"\n"
"Returns (consumed, added): the pairs read and the pairs stored.\n"
"With overwrite=False existing keys are skipped.  The records are\n"
"stored with the GIL released, a block at a time.  On an error the\n"
"pairs before it stay stored in the transaction.  Raises the errors\n"
"of put().");

static PyObject *
txn_putmulti(TxnObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"items", "overwrite", "append", "db", NULL};
    batch_record *records = NULL;
    PyObject *items;
    PyObject *iterator = NULL;
    PyObject *db = Py_None;
    PyObject *result = NULL;
    Py_ssize_t consumed = 0;
    Py_ssize_t added = 0;
    unsigned int flags;
    MDB_dbi dbi;
    int overwrite = 1;
    int append = 0;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|$ppO:putmulti",
                                     keywords, &items, &overwrite, &append,
                                     &db)) {
        return NULL;
    }
    if (txn_check_write(self) < 0 || txn_parse_dbi(self, db, &dbi) < 0) {
        return NULL;
    }
    flags = put_flags(overwrite, append);
    iterator = PyObject_GetIter(items);
    if (iterator == NULL) {
        return NULL;
    }
    records = PyMem_New(batch_record, BATCH_SIZE);
    if (records == NULL) {
        PyErr_NoMemory();
        goto done;
    }

    for (;;) {
        PyObject *type = NULL;
        PyObject *value = NULL;
        PyObject *traceback = NULL;
        Py_ssize_t count;
        Py_ssize_t stored = 0;
        Py_ssize_t i;
        MDB_txn *txn;
        int failed;
        int rc = 0;

        /* Reading the iterable runs Python code, which may end or use
           the transaction, so it is checked again for each block.  The
           records read before a bad item are stored before it raises. */
        count = batch_fill(self, iterator, records, 1, &failed);
        if (count == 0 && !failed) {
            break;
        }
        PyErr_Fetch(&type, &value, &traceback);
        if (count > 0 && txn_check_write(self) < 0) {
            batch_release(records, count);
            Py_XDECREF(type);
            Py_XDECREF(value);
            Py_XDECREF(traceback);
            goto done;
        }
        txn = self->txn;
        self->busy = 1;
        Py_BEGIN_ALLOW_THREADS
        for (i = 0; i < count; i++) {
            MDB_val key = view_to_val(&records[i].key);
            MDB_val data = view_to_val(&records[i].value);

            rc = mdb_put(txn, dbi, &key, &data, flags);
            if (rc == MDB_KEYEXIST && !overwrite && !append) {
                rc = 0;
                continue;
            }
            if (rc != 0) {
                break;
            }
            stored++;
        }
        Py_END_ALLOW_THREADS
        self->busy = 0;
        consumed += i;
        added += stored;
        batch_release(records, count);
        if (rc != 0) {
            Py_XDECREF(type);
            Py_XDECREF(value);
            Py_XDECREF(traceback);
            if (rc == MDB_KEYEXIST) {
                sharedb_raise_put(self->env, rc, "mdb_put", self->env->path,
                                  append);
            }
            else {
                txn_raise(self, rc, "mdb_put", self->env->path);
            }
            goto done;
        }
        if (failed) {
            PyErr_Restore(type, value, traceback);
            goto done;
        }
        if (PyErr_CheckSignals() < 0) {
            goto done;
        }
    }
    result = Py_BuildValue("(nn)", consumed, added);

done:
    PyMem_Free(records);
    Py_XDECREF(iterator);
    return result;
}

PyDoc_STRVAR(txn_getmulti_doc,
"getmulti($self, /, keys, *, db=None)\n"
"--\n"
"\n"
"Return a list with the value of each key of the iterable keys, as\n"
"bytes, or None for an absent key.\n"
"\n"
"Raises the errors of get().");

static PyObject *
txn_getmulti(TxnObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"keys", "db", NULL};
    batch_record *records = NULL;
    MDB_val *values = NULL;
    int *found = NULL;
    PyObject *keys;
    PyObject *iterator = NULL;
    PyObject *db = Py_None;
    PyObject *result = NULL;
    MDB_dbi dbi;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|$O:getmulti",
                                     keywords, &keys, &db)) {
        return NULL;
    }
    if (sharedb_txn_check(self) < 0 || txn_parse_dbi(self, db, &dbi) < 0) {
        return NULL;
    }
    iterator = PyObject_GetIter(keys);
    if (iterator == NULL) {
        return NULL;
    }
    records = PyMem_New(batch_record, BATCH_SIZE);
    values = PyMem_New(MDB_val, BATCH_SIZE);
    found = PyMem_New(int, BATCH_SIZE);
    result = PyList_New(0);
    if (records == NULL || values == NULL || found == NULL) {
        PyErr_NoMemory();
        Py_CLEAR(result);
    }
    if (result == NULL) {
        goto done;
    }

    for (;;) {
        Py_ssize_t i;
        MDB_txn *txn;
        int failed;
        int rc = 0;
        Py_ssize_t count = batch_fill(self, iterator, records, 0, &failed);

        if (failed) {
            batch_release(records, count);
            Py_CLEAR(result);
            break;
        }
        if (count == 0) {
            break;
        }
        if (sharedb_txn_check(self) < 0) {
            batch_release(records, count);
            Py_CLEAR(result);
            break;
        }

        /* Look the keys up without the GIL, then copy the values with
           it; the transaction stays busy so the pages stay mapped. */
        txn = self->txn;
        self->busy = 1;
        Py_BEGIN_ALLOW_THREADS
        for (i = 0; i < count; i++) {
            MDB_val key = view_to_val(&records[i].key);

            rc = mdb_get(txn, dbi, &key, &values[i]);
            found[i] = rc == 0;
            if (rc == MDB_NOTFOUND) {
                rc = 0;
            }
            if (rc != 0) {
                break;
            }
        }
        Py_END_ALLOW_THREADS
        if (rc != 0) {
            self->busy = 0;
            batch_release(records, count);
            txn_raise(self, rc, "mdb_get", self->env->path);
            Py_CLEAR(result);
            break;
        }
        for (i = 0; i < count; i++) {
            PyObject *value;

            if (found[i]) {
                value = txn_copy_val(&values[i]);
            }
            else {
                value = Py_NewRef(Py_None);
            }
            if (value == NULL || PyList_Append(result, value) < 0) {
                Py_XDECREF(value);
                Py_CLEAR(result);
                break;
            }
            Py_DECREF(value);
        }
        self->busy = 0;
        batch_release(records, count);
        if (result == NULL) {
            break;
        }
    }

done:
    PyMem_Free(records);
    PyMem_Free(values);
    PyMem_Free(found);
    Py_XDECREF(iterator);
    return result;
}

/* ------------------------------------------------------------------ */
/* Ending                                                              */

PyDoc_STRVAR(txn_commit_doc,
"commit($self, /)\n"
"--\n"
"\n"
"Commit the transaction; a nested transaction's changes go to its\n"
"parent.\n"
"\n"
"Open nested transactions are committed first.  After a failed commit\n"
"the transaction is aborted.  Raises ClosedError, MapFullError, OSError.");

static PyObject *
txn_commit(TxnObject *self, PyObject *Py_UNUSED(ignored))
{
    int rc;

    if (txn_check_state(self, 1) < 0) {
        return NULL;
    }
    rc = txn_end(self, 1, "it was committed");
    if (rc != 0) {
        return txn_raise(self, rc, "mdb_txn_commit", self->env->path);
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(txn_abort_doc,
"abort($self, /)\n"
"--\n"
"\n"
"Abort the transaction, discarding its changes.\n"
"\n"
"Aborting an ended transaction does nothing.  Raises BadTxnError for a\n"
"write transaction of another thread.");

static PyObject *
txn_abort(TxnObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->txn == NULL) {
        Py_RETURN_NONE;
    }
    if (!txn_is_current_thread(self) || self->busy) {
        sharedb_txn_check(self);
        return NULL;
    }
    txn_end(self, 0, "it was aborted");
    Py_RETURN_NONE;
}

PyDoc_STRVAR(txn_enter_doc,
"__enter__($self, /)\n"
"--\n"
"\n"
"Return the transaction.  Raises ClosedError if it has ended.");

PyDoc_STRVAR(txn_exit_doc,
"__exit__($self, exc_type=None, exc_value=None, traceback=None, /)\n"
"--\n"
"\n"
"Commit the transaction if exc_type is None, else abort it; return\n"
"False.  Does nothing to an ended transaction.");

static PyObject *
txn_enter(TxnObject *self, PyObject *Py_UNUSED(ignored))
{
    if (sharedb_txn_check(self) < 0) {
        return NULL;
    }
    return Py_NewRef(self);
}

static PyObject *
txn_exit(TxnObject *self, PyObject *args)
{
    PyObject *exc_type = Py_None;
    PyObject *exc_value = Py_None;
    PyObject *traceback = Py_None;

    if (!PyArg_UnpackTuple(args, "__exit__", 0, 3, &exc_type, &exc_value,
                           &traceback)) {
        return NULL;
    }
    if (self->txn == NULL) {
        Py_RETURN_FALSE;
    }
    if (exc_type == Py_None) {
        PyObject *result = txn_commit(self, NULL);

        if (result == NULL) {
            return NULL;
        }
        Py_DECREF(result);
    }
    else {
        PyObject *result = txn_abort(self, NULL);

        if (result == NULL) {
            return NULL;
        }
        Py_DECREF(result);
    }
    Py_RETURN_FALSE;
}

static PyObject *
txn_get_id(TxnObject *self, void *Py_UNUSED(closure))
{
    if (sharedb_txn_check(self) < 0) {
        return NULL;
    }
    return PyLong_FromSize_t(mdb_txn_id(self->txn));
}

static PyObject *
txn_get_write(TxnObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->write);
}

static PyObject *
txn_get_ended(TxnObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->txn == NULL);
}

static PyObject *
txn_get_env(TxnObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->env);
}

static PyMethodDef txn_methods[] = {
    {"get", (PyCFunction)(void (*)(void))txn_get,
     METH_VARARGS | METH_KEYWORDS, txn_get_doc},
    {"put", (PyCFunction)(void (*)(void))txn_put,
     METH_VARARGS | METH_KEYWORDS, txn_put_doc},
    {"replace", (PyCFunction)(void (*)(void))txn_replace,
     METH_VARARGS | METH_KEYWORDS, txn_replace_doc},
    {"pop", (PyCFunction)(void (*)(void))txn_pop,
     METH_VARARGS | METH_KEYWORDS, txn_pop_doc},
    {"delete", (PyCFunction)(void (*)(void))txn_delete,
     METH_VARARGS | METH_KEYWORDS, txn_delete_doc},
    {"drop", (PyCFunction)(void (*)(void))txn_drop,
     METH_VARARGS | METH_KEYWORDS, txn_drop_doc},
    {"stat", (PyCFunction)(void (*)(void))txn_stat,
     METH_VARARGS | METH_KEYWORDS, txn_stat_doc},
    {"cursor", (PyCFunction)(void (*)(void))txn_cursor,
     METH_VARARGS | METH_KEYWORDS, txn_cursor_doc},
    {"putmulti", (PyCFunction)(void (*)(void))txn_putmulti,
     METH_VARARGS | METH_KEYWORDS, txn_putmulti_doc},
    {"getmulti", (PyCFunction)(void (*)(void))txn_getmulti,
     METH_VARARGS | METH_KEYWORDS, txn_getmulti_doc},
    {"commit", (PyCFunction)txn_commit, METH_NOARGS, txn_commit_doc},
    {"abort", (PyCFunction)txn_abort, METH_NOARGS, txn_abort_doc},
    {"__enter__", (PyCFunction)txn_enter, METH_NOARGS,
     txn_enter_doc},
    {"__exit__", (PyCFunction)txn_exit, METH_VARARGS, txn_exit_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef txn_getset[] = {
    {"id", (getter)txn_get_id, NULL,
     "The LMDB transaction id: the id of the snapshot a read transaction "
     "sees, or the id a write transaction commits as.", NULL},
    {"write", (getter)txn_get_write, NULL,
     "True for a write transaction.", NULL},
    {"ended", (getter)txn_get_ended, NULL,
     "True once the transaction is committed or aborted.", NULL},
    {"env", (getter)txn_get_env, NULL, "The Environment.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef txn_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(TxnObject, weakreflist),
     READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

PyDoc_STRVAR(txn_doc,
"A transaction, from Environment.begin().\n"
"\n"
"A read transaction sees the snapshot of the last commit when it\n"
"began; a write transaction holds the writer lock of all processes\n"
"until it ends.  As a context manager it commits when the block ends\n"
"normally and aborts on an exception.  Keys and values are bytes-like\n"
"and come back as bytes.");

static PyType_Slot txn_slots[] = {
    {Py_tp_doc, (void *)txn_doc},
    {Py_tp_dealloc, txn_dealloc},
    {Py_tp_methods, txn_methods},
    {Py_tp_getset, txn_getset},
    {Py_tp_members, txn_members},
    {0, NULL},
};

static PyType_Spec txn_spec = {
    .name = "sharedb.lmdb.Transaction",
    .basicsize = sizeof(TxnObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = txn_slots,
};

int
sharedb_txn_setup_type(PyObject *module, sharedb_state *state)
{
    state->txn_type = (PyTypeObject *)PyType_FromModuleAndSpec(
        module, &txn_spec, NULL);
    if (state->txn_type == NULL) {
        return -1;
    }
    return PyModule_AddType(module, state->txn_type);
}
