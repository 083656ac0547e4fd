/* sharedb._lmdb.Store: the C core of the ShareDB class.

   The dict-like methods that run per key (get, set, membership, delete,
   length, the batch calls and iteration) live here, so that a call from
   Python reaches LMDB without a Python frame in between.  The ShareDB
   class in sharedb/store.py derives from Store and adds opening,
   configuration, closing and the rarely used methods. */

#ifndef SHAREDB_STORE_H
#define SHAREDB_STORE_H

#include "env.h"

enum {
    SHAREDB_SERIAL_PICKLE = 0,
    SHAREDB_SERIAL_MSGPACK = 1,
};

typedef struct {
    PyObject_HEAD
    sharedb_state *state;       /* borrowed from module */
    PyObject *module;           /* strong */
    EnvObject *env;             /* strong; NULL until attached, and after
                                   the store is closed */
    int attached;               /* _attach() ran once: ShareDB.__init__
                                   opened the store */
    int serial;                 /* SHAREDB_SERIAL_PICKLE or _MSGPACK */
    int compress;               /* zlib-compress values */
    Py_ssize_t pending_writes;  /* writes since the last sync */
    Py_ssize_t sync_threshold;  /* sync after this many writes */

    /* Callables from the Python side, set by _attach(). */
    PyObject *pickle_key;       /* pickle bytes of a key that is not an
                                   int, float, str, bytes or bool */
    PyObject *pickle_dumps;
    PyObject *pickle_loads;
    PyObject *pickle_protocol;
    PyObject *zlib_compress;
    PyObject *zlib_decompress;
} StoreObject;

int sharedb_store_setup_type(PyObject *module, sharedb_state *state);

#endif /* SHAREDB_STORE_H */
