/* Module state and the helpers every file of sharedb._lmdb shares. */

#ifndef SHAREDB_MODULE_H
#define SHAREDB_MODULE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include "lmdb.h"

/* Number of entries of the caches of decoded short strings and ints;
   powers of two. */
#define SHAREDB_STRING_CACHE_SIZE 1024
#define SHAREDB_INT_CACHE_SIZE 1024

/* Objects the msgpack codec borrows from the msgpack package, imported on
   first use so that importing the extension does not import msgpack, and
   the codec's cache of decoded strings. */
typedef struct {
    PyObject *ext_type;         /* msgpack.ExtType */
    PyObject *timestamp_type;   /* msgpack.Timestamp */
    PyObject *packb;            /* msgpack.packb, for ExtType and Timestamp */
    PyObject *unpackb;          /* msgpack.unpackb, for ext records */

    /* Short ASCII strings decoded recently, by a hash of their bytes.
       Records repeat the same dict keys and short values, and handing
       out an existing str saves creating and later freeing one. */
    PyObject *strings[SHAREDB_STRING_CACHE_SIZE];

    /* Ints past CPython's own small-int cache decoded recently, by
       value: a record often repeats a number of its key or of the record
       before, and sharing the object saves creating one. */
    PyObject *ints[SHAREDB_INT_CACHE_SIZE];
    long long int_values[SHAREDB_INT_CACHE_SIZE];  /* of ints[i] */
} sharedb_codec;

/* Number of LMDB error codes, MDB_KEYEXIST (-30799) to MDB_BAD_DBI
   (-30780); each has its own exception class. */
#define SHAREDB_LMDB_ERROR_COUNT (MDB_LAST_ERRCODE - MDB_KEYEXIST + 1)

typedef struct {
    PyTypeObject *env_type;
    PyTypeObject *database_type;
    PyTypeObject *txn_type;
    PyTypeObject *cursor_type;
    PyTypeObject *cursor_iter_type;
    PyTypeObject *store_type;
    PyTypeObject *store_iter_type;

    PyObject *error;            /* sharedb.lmdb.Error, base of the rest */
    PyObject *closed_error;     /* use of an ended handle; a RuntimeError */
    PyObject *readonly_error;   /* a write in a read-only environment */
    PyObject *key_too_long_error;   /* a packed key over the maximum */
    PyObject *lmdb_errors[SHAREDB_LMDB_ERROR_COUNT];

    sharedb_codec codec;
} sharedb_state;

extern PyModuleDef sharedb_module_def;

static inline sharedb_state *
sharedb_state_from_module(PyObject *module)
{
    return (sharedb_state *)PyModule_GetState(module);
}

/* Find the module state through the MRO of type, which may be a Python
   subclass of one of our types.  Returns NULL with an exception set if no
   base class belongs to this module. */
sharedb_state *sharedb_state_from_type(PyTypeObject *type);

/* Count of fork() calls this process has seen in a child.  An object that
   records the count when it opens LMDB handles can tell it was inherited:
   LMDB handles must not be used across fork(). */
unsigned long sharedb_fork_count(void);

/* Import msgpack and fill state->codec unless already done.  Returns -1
   with an exception set on failure. */
int sharedb_codec_load(sharedb_state *state);

#endif /* SHAREDB_MODULE_H */
