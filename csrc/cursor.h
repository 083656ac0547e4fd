/* sharedb.lmdb.Cursor: a position in one database of a transaction. */

#ifndef SHAREDB_CURSOR_H
#define SHAREDB_CURSOR_H

#include "txn.h"

/* Where a cursor is.  A cursor is unplaced until it is placed on a
   record, and again after a failed search, a step past either end or
   the deletion of the last record; stepping an unplaced cursor starts
   at the first or last record. */
enum {
    SHAREDB_CURSOR_UNPLACED = 0,
    SHAREDB_CURSOR_ON_RECORD = 1,
};

struct CursorObject {
    PyObject_HEAD
    PyObject *weakreflist;
    TxnObject *txn;             /* strong */
    MDB_cursor *cursor;         /* NULL once closed */
    MDB_dbi dbi;
    int positioned;             /* SHAREDB_CURSOR_* */
    CursorObject *prev_open;    /* links of TxnObject.cursors */
    CursorObject *next_open;
};

int sharedb_cursor_setup_type(PyObject *module, sharedb_state *state);

/* Open a cursor on dbi in txn.  Returns a new reference or NULL with an
   exception set. */
CursorObject *sharedb_cursor_open(TxnObject *txn, MDB_dbi dbi);

/* Close the LMDB cursor before its transaction ends. */
void sharedb_cursor_close_handle(CursorObject *cursor);

#endif /* SHAREDB_CURSOR_H */
