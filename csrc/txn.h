/* sharedb.lmdb.Transaction: a read or write transaction. */

#ifndef SHAREDB_TXN_H
#define SHAREDB_TXN_H

#include "env.h"

typedef struct CursorObject CursorObject;

struct TxnObject {
    PyObject_HEAD
    PyObject *weakreflist;
    EnvObject *env;             /* strong */
    TxnObject *parent;          /* strong, for a nested transaction */
    TxnObject *child;           /* borrowed; the open nested transaction */
    MDB_txn *txn;               /* NULL once ended */
    int write;
    unsigned long thread;       /* thread that began a write transaction */

    /* Nonzero while a method uses the transaction: while the GIL is
       released, or while it reads values that point into the map and
       builds Python objects, which can run arbitrary code through the
       garbage collector.  close() of the environment does not end a busy
       transaction; the method ends it when it finishes. */
    int busy;

    /* Why the transaction ended, for the message of later calls. */
    const char *end_reason;

    CursorObject *cursors;      /* open cursors, borrowed */
    TxnObject *prev_open;       /* links of EnvObject.txns */
    TxnObject *next_open;
};

int sharedb_txn_setup_type(PyObject *module, sharedb_state *state);

/* Begin a transaction object on env.  Returns a new reference or NULL
   with an exception set. */
TxnObject *sharedb_txn_begin(EnvObject *env, TxnObject *parent, int write);

/* Check that txn can be used by this thread now: it has not ended, its
   environment is open and in this process, no other call uses it, and a
   write transaction is used by the thread that began it.  Returns -1
   with an exception set otherwise. */
int sharedb_txn_check(TxnObject *txn);

/* End txn (and its nested children and cursors) on behalf of close() of
   the environment, if no call is using it.  Returns 1 if it ended, 0 if
   it must be left to the call that uses it. */
int sharedb_txn_end_for_close(TxnObject *txn);

/* Abort txn and record reason; a no-op for an ended transaction. */
void sharedb_txn_abort(TxnObject *txn, const char *reason);

/* Remove cursor from the list of open cursors of txn. */
void sharedb_txn_link_cursor(TxnObject *txn, CursorObject *cursor);
void sharedb_txn_unlink_cursor(TxnObject *txn, CursorObject *cursor);

/* Convert a bytes-like key or value argument.  name is used in the
   TypeError message.  The caller releases view with PyBuffer_Release. */
int sharedb_get_buffer(PyObject *obj, Py_buffer *view, const char *name);

/* Raise BadValsizeError unless view is a key LMDB can store in env: 1
   to max_key_size() bytes.  Returns -1 with the exception set. */
int sharedb_check_key_size(EnvObject *env, const Py_buffer *view);

/* Raise the error of a put that returned rc, as sharedb_raise_lmdb()
   does.  The message of a KeyExistsError of a put with append set
   states that the key is out of order.  Always returns NULL. */
PyObject *sharedb_raise_put(EnvObject *env, int rc, const char *call,
                            PyObject *context, int append);

#endif /* SHAREDB_TXN_H */
