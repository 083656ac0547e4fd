/* sharedb.lmdb.Environment: one open LMDB environment. */

#ifndef SHAREDB_ENV_H
#define SHAREDB_ENV_H

#include "module.h"

typedef struct TxnObject TxnObject;

/* Reset read transactions kept for reuse.  mdb_txn_renew() on a kept
   transaction skips the reader-table lock and search of mdb_txn_begin(),
   but each kept transaction holds a reader slot, which other processes
   then cannot use: one per environment, as LMDB itself keeps one per
   thread without MDB_NOTLS. */
#define SHAREDB_READ_POOL_SIZE 1

typedef struct EnvObject {
    PyObject_HEAD
    PyObject *weakreflist;
    PyObject *module;           /* strong; keeps the module state alive */
    sharedb_state *state;       /* borrowed from module */
    MDB_env *env;               /* NULL once mdb_env_close() ran */
    PyObject *path;             /* str, the path as given */
    unsigned long fork_count;   /* sharedb_fork_count() at open */
    unsigned int flags;         /* flags given to mdb_env_open() */
    int closed;                 /* close() was called or open failed */

    /* Reasons the MDB_env must stay open: live transactions (from
       Transaction objects and from the store's single calls) and calls
       running with the GIL released.  close() with pins left only marks
       the object closed, and the call that removes the last pin closes
       the MDB_env. */
    Py_ssize_t pins;

    /* Transactions begun and not yet reset or ended.  The map may only
       be moved (mdb_env_set_mapsize) while this is zero, since a live
       transaction holds pointers into it. */
    Py_ssize_t live_txns;

    TxnObject *txns;            /* Transaction objects not yet ended */

    MDB_txn *read_pool[SHAREDB_READ_POOL_SIZE];
    int read_pool_count;
    /* Reset read transactions kept for reuse, at most
       SHAREDB_READ_POOL_SIZE.  A kept one holds a reader slot, which a
       process that ends without closing leaves behind until a reader
       check frees it. */
    int read_pool_limit;

    /* Identity of the thread whose write transaction holds LMDB's writer
       lock, or 0.  Only the holder writes it, while it holds the lock;
       other threads only compare it with their own identity, which no
       value they can observe equals.  It lets a thread that already
       writes get an error instead of waiting forever on itself. */
    unsigned long write_owner;

    int map_grow;               /* double the map when it fills */
    int grow_pending;           /* a write ran out of map; grow before the
                                   next write transaction begins */
    MDB_dbi main_dbi;           /* handle of the unnamed database */
    unsigned int page_size;     /* LMDB page size in bytes */
    int max_key_size;           /* mdb_env_get_maxkeysize() */

    /* Page limits below the map for writes by the store: one for writes
       that add records, a higher one for deletes, so that a full capped
       store keeps room to delete.  0 means no limit. */
    size_t insert_limit;
    size_t delete_limit;

    /* Identity of the data file, to refuse opening it twice in one
       process: LMDB's POSIX locks are per process, and closing a second
       handle would drop the locks of the first. */
    unsigned long long file_device;
    unsigned long long file_inode;
    struct EnvObject *next_open;    /* list of open environments */
} EnvObject;

int sharedb_env_setup_type(PyObject *module, sharedb_state *state);

/* Check that env is open and was opened in this process.  Returns -1
   with ClosedError set otherwise. */
int sharedb_env_check(EnvObject *env);

/* Add or remove a reason to keep the MDB_env open.  The last unpin of a
   closed environment closes it. */
void sharedb_env_pin(EnvObject *env);
void sharedb_env_unpin(EnvObject *env);

/* Begin a read transaction, reusing a kept one when possible, and pin
   the environment.  Handles a map grown by another process and stale
   reader slots.  Returns NULL with an exception set on failure. */
MDB_txn *sharedb_env_read_begin(EnvObject *env);

/* End a transaction from sharedb_env_read_begin() and unpin. */
void sharedb_env_read_end(EnvObject *env, MDB_txn *txn);

/* Raise unless this thread may begin a write transaction on env: the
   environment must be writable and the thread must not already hold
   the writer lock. */
int sharedb_env_check_writable(EnvObject *env);

static inline unsigned long
sharedb_env_load_owner(EnvObject *env)
{
#if defined(__GNUC__) || defined(__clang__)
    return __atomic_load_n(&env->write_owner, __ATOMIC_RELAXED);
#else
    return *(volatile unsigned long *)&env->write_owner;
#endif
}

static inline void
sharedb_env_store_owner(EnvObject *env, unsigned long owner)
{
#if defined(__GNUC__) || defined(__clang__)
    __atomic_store_n(&env->write_owner, owner, __ATOMIC_RELAXED);
#else
    *(volatile unsigned long *)&env->write_owner = owner;
#endif
}

/* Begin a write transaction (a child of parent if not NULL), and end
   one by commit or abort.  Beginning may wait for another writer, so
   these run with the GIL released, with env pinned.  They keep
   write_owner up to date for top-level transactions, and return an LMDB
   code. */
int sharedb_env_write_begin_nogil(EnvObject *env, MDB_txn *parent,
                                  unsigned long thread, MDB_txn **txn);
int sharedb_env_write_end_nogil(EnvObject *env, MDB_txn *txn,
                                int top_level, int commit);

/* After MDB_MAP_RESIZED (another process grew the map) or MDB_MAP_FULL
   with map growing on, remap the environment with a larger size if no
   transaction of this process is live.  Returns 0 when the caller may
   retry, or -1 with an exception set. */
int sharedb_env_remap(EnvObject *env, int rc);

/* Return the current map size in bytes, or 0 for a closed environment. */
size_t sharedb_env_map_size(EnvObject *env);

/* Move the map to size bytes (0: the size another process recorded).
   Needs no transaction of this process to be live; raises error_class
   otherwise.  Returns -1 with an exception set on failure. */
int sharedb_env_resize(EnvObject *env, size_t size, PyObject *error_class);

/* Validate a database handle argument: None means the main database.
   Returns -1 with an exception set for a handle not from open_db(). */
int sharedb_env_dbi(EnvObject *env, PyObject *arg, MDB_dbi *dbi);

/* Mark the Database object db (from sharedb_env_dbi) as deleted: LMDB
   closes its handle as soon as mdb_drop() deletes it. */
void sharedb_env_forget_db(EnvObject *env, PyObject *db);

/* Remove txn from the list of open Transaction objects. */
void sharedb_env_unlink_txn(EnvObject *env, TxnObject *txn);
void sharedb_env_link_txn(EnvObject *env, TxnObject *txn);

/* Defined by the vendored mdb.c (vendor/lmdb/patches/0002): new pages
   may only be allocated below pages, or anywhere in the map for 0. */
int mdb_env_set_alloclimit(MDB_env *env, size_t pages);
int mdb_env_set_growreserve(MDB_env *env, int on);

#endif /* SHAREDB_ENV_H */
