/* sharedb.lmdb.Environment: one open LMDB environment, and the Database
   handles it gives out. */

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#ifdef _WIN32
#include <windows.h>
#endif


#include "cursor.h"
#include "env.h"
#include "errors.h"
#include "txn.h"
#include "verify.h"

/* A named or unnamed database of one environment. */
typedef struct {
    PyObject_HEAD
    EnvObject *env;             /* strong */
    PyObject *name;             /* bytes, or None for the main database */
    MDB_dbi dbi;
    int deleted;                /* dropped with delete=True */
} DatabaseObject;

/* Environments open in this process, so that no data file is opened
   twice.  Guarded by the GIL; open_lock is held across the steps of an
   open, which release the GIL. */
static EnvObject *open_envs = NULL;
static PyThread_type_lock open_lock = NULL;

static const Py_ssize_t DEFAULT_MAP_SIZE = 10485760;

/* Map sizes stay below this, so that doubling the map cannot overflow. */
static const size_t MAX_MAP_SIZE = ((size_t)-1) / 4;

/* The map sizes accepted, for messages; the number is MAX_MAP_SIZE. */
#if SIZE_MAX > 0xFFFFFFFFu
#define MAP_SIZE_ACCEPTED "a positive int of at most 4611686018427387903 bytes"
#else
#define MAP_SIZE_ACCEPTED "a positive int of at most 1073741823 bytes"
#endif

/* ------------------------------------------------------------------ */
/* Pins, checks and the pool of read transactions                      */

static int
env_is_inherited(EnvObject *self)
{
    return self->fork_count != sharedb_fork_count();
}

int
sharedb_env_check(EnvObject *self)
{
    if (self->env == NULL || self->closed) {
        sharedb_raise_closed(self->state, "Environment %R is closed",
                             self->path);
        return -1;
    }
    if (env_is_inherited(self)) {
        sharedb_raise_closed(self->state,
                             "Environment %R was opened before fork(); "
                             "LMDB handles cannot be used in a child "
                             "process, so open it again here", self->path);
        return -1;
    }
    return 0;
}

static void
env_unlink_open(EnvObject *self)
{
    EnvObject **link = &open_envs;

    while (*link != NULL) {
        if (*link == self) {
            *link = self->next_open;
            self->next_open = NULL;
            return;
        }
        link = &(*link)->next_open;
    }
}

/* Close the MDB_env.  Called only with no pins left, so no other thread
   uses the handle.  mdb_env_close() takes no lock that another process
   could hold, so the GIL stays held.  The environment leaves the list of
   open ones only now, so that its file cannot be opened a second time
   while the first handle still exists. */
static void
env_close_handle(EnvObject *self)
{
    MDB_env *env = self->env;

    env_unlink_open(self);
    if (env == NULL) {
        return;
    }
    self->env = NULL;
    while (self->read_pool_count > 0) {
        mdb_txn_abort(self->read_pool[--self->read_pool_count]);
    }
    mdb_env_close(env);
}

void
sharedb_env_pin(EnvObject *self)
{
    self->pins++;
}

void
sharedb_env_unpin(EnvObject *self)
{
    assert(self->pins > 0);
    self->pins--;
    if (self->pins == 0 && self->closed && !env_is_inherited(self)) {
        env_close_handle(self);
    }
}

void
sharedb_env_link_txn(EnvObject *self, TxnObject *txn)
{
    txn->prev_open = NULL;
    txn->next_open = self->txns;
    if (self->txns != NULL) {
        self->txns->prev_open = txn;
    }
    self->txns = txn;
}

void
sharedb_env_unlink_txn(EnvObject *self, TxnObject *txn)
{
    if (txn->prev_open != NULL) {
        txn->prev_open->next_open = txn->next_open;
    }
    else if (self->txns == txn) {
        self->txns = txn->next_open;
    }
    if (txn->next_open != NULL) {
        txn->next_open->prev_open = txn->prev_open;
    }
    txn->prev_open = NULL;
    txn->next_open = NULL;
}

/* Mark the environment closed and end the transactions that can end
   now.  The MDB_env closes when the last pin goes: at once if nothing
   else uses it. */
static void
env_close(EnvObject *self)
{
    int ended;

    if (self->closed) {
        return;
    }
    self->closed = 1;
    if (self->env == NULL) {
        env_unlink_open(self);
        return;
    }
    if (env_is_inherited(self)) {
        /* The handle's files, map and reader slots belong to the parent
           process's LMDB state, so the child leaves them alone. */
        self->env = NULL;
        self->read_pool_count = 0;
        env_unlink_open(self);
        return;
    }

    /* Ending a transaction unlinks it and its children, which breaks a
       walk along the list, so start again after each one that ends.
       The list is short. */
    do {
        ended = 0;
        for (TxnObject *txn = self->txns; txn != NULL;
             txn = txn->next_open) {
            if (sharedb_txn_end_for_close(txn)) {
                ended = 1;
                break;
            }
        }
    } while (ended);

    if (self->pins == 0) {
        env_close_handle(self);
    }
}

static void
raise_map_resized_again(EnvObject *self)
{
    PyErr_Format(self->state->lmdb_errors[MDB_MAP_RESIZED - MDB_KEYEXIST],
                 "mdb_txn_begin failed on %R: another process kept "
                 "growing the map; retry", self->path);
}

/* Begin or renew a read transaction with env pinned by the caller.
   Returns an LMDB code. */
static int
env_start_read(EnvObject *self, MDB_txn **txn)
{
    MDB_env *env = self->env;
    int rc;

    if (self->read_pool_count > 0) {
        /* Renewing a kept transaction only publishes the newest
           transaction id in its reader slot: no lock, no wait. */
        *txn = self->read_pool[--self->read_pool_count];
        rc = mdb_txn_renew(*txn);
        if (rc != 0) {
            mdb_txn_abort(*txn);
            *txn = NULL;
        }
        return rc;
    }

    /* A new transaction takes the reader-table mutex, which another
       process may hold, so the GIL is released; the pin keeps env open
       meanwhile. */
    Py_BEGIN_ALLOW_THREADS
    rc = mdb_txn_begin(env, NULL, MDB_RDONLY, txn);
    Py_END_ALLOW_THREADS
    if (rc != 0) {
        *txn = NULL;
    }
    return rc;
}

/* Free the reader slots of dead processes.  Returns the number freed,
   or -1 with an exception set. */
static int
env_reader_check(EnvObject *self)
{
    MDB_env *env = self->env;
    int dead = 0;
    int rc;

    if (self->flags & MDB_NOLOCK) {
        return 0;
    }
    sharedb_env_pin(self);
    Py_BEGIN_ALLOW_THREADS
    rc = mdb_reader_check(env, &dead);
    Py_END_ALLOW_THREADS
    sharedb_env_unpin(self);
    if (rc != 0) {
        sharedb_raise_lmdb(self->state, rc, "mdb_reader_check", self->path);
        return -1;
    }
    return dead;
}

MDB_txn *
sharedb_env_read_begin(EnvObject *self)
{
    MDB_txn *txn = NULL;
    int checked_readers = 0;
    int rc;

    for (int attempt = 0; attempt < 4; attempt++) {
        if (sharedb_env_check(self) < 0) {
            return NULL;
        }
        sharedb_env_pin(self);
        rc = env_start_read(self, &txn);
        if (rc == 0 && !self->closed) {
            self->live_txns++;
            return txn;
        }
        if (rc == 0) {
            /* close() ran while the GIL was released. */
            mdb_txn_abort(txn);
        }
        sharedb_env_unpin(self);
        if (rc == 0) {
            sharedb_env_check(self);
            return NULL;
        }

        if (rc == MDB_READERS_FULL && !checked_readers) {
            int dead;

            /* Slots of processes that died without closing the
               environment stay taken until a reader check frees them. */
            checked_readers = 1;
            dead = env_reader_check(self);
            if (dead < 0) {
                return NULL;
            }
            if (dead > 0) {
                continue;
            }
        }
        else if (rc == MDB_MAP_RESIZED) {
            if (sharedb_env_remap(self, rc) < 0) {
                return NULL;
            }
            continue;
        }
        if (rc == MDB_READERS_FULL && sharedb_env_check(self) == 0) {
            MDB_envinfo info;

            if (mdb_env_info(self->env, &info) != 0) {
                info.me_maxreaders = 0;
            }
            PyErr_Format(
                self->state->lmdb_errors[MDB_READERS_FULL - MDB_KEYEXIST],
                "all %u reader slots of %R are taken by read transactions "
                "of live processes; end some of them, or reopen the store "
                "with more slots (ShareDB's readers=, the Environment's "
                "max_readers=) when no process has it open, since the "
                "first process to open it sizes the table",
                info.me_maxreaders, self->path);
            return NULL;
        }
        if (sharedb_env_check(self) == 0) {
            sharedb_raise_lmdb(self->state, rc, "mdb_txn_begin",
                               self->path);
        }
        return NULL;
    }
    raise_map_resized_again(self);
    return NULL;
}

void
sharedb_env_read_end(EnvObject *self, MDB_txn *txn)
{
    self->live_txns--;
    if (env_is_inherited(self)) {
        /* The reader slot belongs to the parent process. */
        self->pins--;
        return;
    }
    if (!self->closed && self->read_pool_count < self->read_pool_limit) {
        mdb_txn_reset(txn);
        self->read_pool[self->read_pool_count++] = txn;
    }
    else {
        mdb_txn_abort(txn);
    }
    sharedb_env_unpin(self);
}

int
sharedb_env_check_writable(EnvObject *self)
{
    if (sharedb_env_check(self) < 0) {
        return -1;
    }
    if (self->flags & MDB_RDONLY) {
        PyErr_Format(self->state->readonly_error,
                     "Environment %R is read-only (opened with "
                     "readonly=True, on a read-only file system, or with a "
                     "data file this process cannot write), so it cannot "
                     "begin a write transaction", self->path);
        return -1;
    }
    if (sharedb_env_load_owner(self) == PyThread_get_thread_ident()) {
        PyErr_Format(self->state->lmdb_errors[MDB_BAD_TXN - MDB_KEYEXIST],
                     "this thread already has a write transaction open on "
                     "%R; LMDB allows one writer at a time, so commit or "
                     "abort it first, or begin a nested transaction with "
                     "parent=", self->path);
        return -1;
    }
    return 0;
}

int
sharedb_env_write_begin_nogil(EnvObject *self, MDB_txn *parent,
                              unsigned long thread, MDB_txn **txn)
{
    int rc = mdb_txn_begin(self->env, parent, 0, txn);

    if (rc == 0 && parent == NULL) {
        sharedb_env_store_owner(self, thread);
    }
    return rc;
}

int
sharedb_env_write_end_nogil(EnvObject *self, MDB_txn *txn, int top_level,
                            int commit)
{
    /* The mark is cleared while the writer lock is still held, so it
       cannot erase the mark of the writer that takes the lock next. */
    if (top_level) {
        sharedb_env_store_owner(self, 0);
    }
    if (commit) {
        return mdb_txn_commit(txn);
    }
    mdb_txn_abort(txn);
    return 0;
}

size_t
sharedb_env_map_size(EnvObject *self)
{
    MDB_envinfo info;

    if (self->env == NULL || mdb_env_info(self->env, &info) != 0) {
        return 0;
    }
    return info.me_mapsize;
}

int
sharedb_env_resize(EnvObject *self, size_t size, PyObject *error_class)
{
    MDB_env *env;
    int rc;

    if (sharedb_env_check(self) < 0) {
        return -1;
    }
    if (self->pins > 0) {
        PyErr_Format(error_class,
                     "the map of %R must be resized, which needs every "
                     "transaction and iterator of this process on it to "
                     "end first; end them, then retry", self->path);
        return -1;
    }

    /* No pins means no other thread uses the handle; the pin taken here
       keeps close() from closing it while the GIL is released. */
    env = self->env;
    sharedb_env_pin(self);
    Py_BEGIN_ALLOW_THREADS
    rc = mdb_env_set_mapsize(env, size);
    Py_END_ALLOW_THREADS
    sharedb_env_unpin(self);
    if (rc != 0) {
        sharedb_raise_lmdb(self->state, rc, "mdb_env_set_mapsize",
                           self->path);
        return -1;
    }
    return sharedb_env_check(self);
}

int
sharedb_env_remap(EnvObject *self, int rc)
{
    PyObject *error_class = self->state->lmdb_errors[rc - MDB_KEYEXIST];
    size_t size = 0;

    if (rc == MDB_MAP_FULL) {
        if (!self->map_grow) {
            sharedb_raise_lmdb(self->state, rc, "mdb_put", self->path);
            return -1;
        }
        size = sharedb_env_map_size(self);
        if (size == 0 || size >= MAX_MAP_SIZE / 2) {
            sharedb_raise_lmdb(self->state, rc, "mdb_put", self->path);
            return -1;
        }
        size *= 2;
    }

    /* A size of 0 adopts the size another process recorded. */
    return sharedb_env_resize(self, size, error_class);
}

int
sharedb_env_dbi(EnvObject *self, PyObject *arg, MDB_dbi *dbi)
{
    DatabaseObject *db;

    if (arg == NULL || arg == Py_None) {
        *dbi = self->main_dbi;
        return 0;
    }
    if (!PyObject_TypeCheck(arg, self->state->database_type)) {
        PyErr_Format(PyExc_TypeError,
                     "db must be a Database from Environment.open_db() or "
                     "None, not %.200s", Py_TYPE(arg)->tp_name);
        return -1;
    }
    db = (DatabaseObject *)arg;
    if (db->deleted) {
        PyErr_Format(self->state->lmdb_errors[MDB_BAD_DBI - MDB_KEYEXIST],
                     "database %R was deleted by drop(delete=True); open "
                     "it again with open_db()", db->name);
        return -1;
    }
    if (db->env != self) {
        PyErr_Format(PyExc_ValueError,
                     "database %R belongs to the environment %R, not to %R",
                     db->name, db->env->path, self->path);
        return -1;
    }
    *dbi = db->dbi;
    return 0;
}

void
sharedb_env_forget_db(EnvObject *self, PyObject *arg)
{
    (void)self;
    if (arg != NULL && arg != Py_None) {
        ((DatabaseObject *)arg)->deleted = 1;
    }
}

/* ------------------------------------------------------------------ */
/* Identity of a data file                                             */

/* Fill device and inode for the file at path.  Returns 1 if found, 0 if
   it does not exist, or -1 with OSError set. */
static int
file_identity(const char *path, unsigned long long *device,
              unsigned long long *inode)
{
#ifdef _WIN32
    BY_HANDLE_FILE_INFORMATION info;
    wchar_t *wide = NULL;
    HANDLE handle;
    int size;
    BOOL found;

    size = MultiByteToWideChar(CP_UTF8, 0, path, -1, NULL, 0);
    if (size <= 0) {
        PyErr_SetFromWindowsErr(0);
        return -1;
    }
    wide = PyMem_New(wchar_t, size);
    if (wide == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    MultiByteToWideChar(CP_UTF8, 0, path, -1, wide, size);
    Py_BEGIN_ALLOW_THREADS
    handle = CreateFileW(wide, 0,
                         FILE_SHARE_READ | FILE_SHARE_WRITE |
                         FILE_SHARE_DELETE,
                         NULL, OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS,
                         NULL);
    found = handle != INVALID_HANDLE_VALUE &&
            GetFileInformationByHandle(handle, &info);
    if (handle != INVALID_HANDLE_VALUE) {
        CloseHandle(handle);
    }
    Py_END_ALLOW_THREADS
    PyMem_Free(wide);
    if (!found) {
        DWORD error = GetLastError();

        if (error == ERROR_FILE_NOT_FOUND || error == ERROR_PATH_NOT_FOUND) {
            return 0;
        }
        PyErr_SetFromWindowsErr(error);
        return -1;
    }
    *device = info.dwVolumeSerialNumber;
    *inode = ((unsigned long long)info.nFileIndexHigh << 32) |
             info.nFileIndexLow;
    return 1;
#else
    struct stat status;
    int rc;

    Py_BEGIN_ALLOW_THREADS
    rc = stat(path, &status);
    Py_END_ALLOW_THREADS
    if (rc != 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            return 0;
        }
        PyErr_SetFromErrnoWithFilename(PyExc_OSError, path);
        return -1;
    }
    *device = (unsigned long long)status.st_dev;
    *inode = (unsigned long long)status.st_ino;
    return 1;
#endif
}

/* Longest wait, in milliseconds, for another thread to finish closing
   the environment of a file that is being opened again. */
#define CLOSE_WAIT_MS 10000

static void
sleep_one_millisecond(void)
{
#ifdef _WIN32
    Sleep(1);
#else
    struct timespec delay = {0, 1000000};

    nanosleep(&delay, NULL);
#endif
}

static EnvObject *
find_open_env(unsigned long long device, unsigned long long inode)
{
    unsigned long forks = sharedb_fork_count();

    for (EnvObject *env = open_envs; env != NULL; env = env->next_open) {
        /* Environments inherited from a parent process are unusable
           here, so opening their files again is allowed. */
        if (env->fork_count == forks && env->file_device == device &&
            env->file_inode == inode) {
            return env;
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Opening                                                             */

/* Create the directory of a subdir environment, as os.makedirs does. */
static int
make_directory(PyObject *path)
{
    PyObject *os;
    PyObject *result;

    os = PyImport_ImportModule("os");
    if (os == NULL) {
        return -1;
    }
    result = PyObject_CallMethod(os, "makedirs", "OiO", path, 0777,
                                 Py_True);
    Py_DECREF(os);
    if (result == NULL) {
        return -1;
    }
    Py_DECREF(result);
    return 0;
}

typedef struct {
    PyObject *path;
    Py_ssize_t map_size;
    int subdir;
    int readonly;
    int create;
    int max_readers;
    int max_dbs;
    int sync;
    int metasync;
    int map_async;
    int writemap;
    int readahead;
    int lock;
    int meminit;
    int mode;
    int map_grow;
} open_options;

static unsigned int
open_flags(const open_options *options)
{
    /* MDB_NOTLS ties reader slots to transactions, not to threads, so a
       thread may hold several read transactions and kept transactions
       can move between threads. */
    unsigned int flags = MDB_NOTLS;

    if (!options->subdir) {
        flags |= MDB_NOSUBDIR;
    }
    if (options->readonly) {
        flags |= MDB_RDONLY;
    }
    if (!options->sync) {
        flags |= MDB_NOSYNC;
    }
    if (!options->metasync) {
        flags |= MDB_NOMETASYNC;
    }
    if (options->map_async) {
        flags |= MDB_MAPASYNC;
    }
    if (options->writemap) {
        flags |= MDB_WRITEMAP;
    }
    if (!options->readahead) {
        flags |= MDB_NORDAHEAD;
    }
    if (!options->lock) {
        flags |= MDB_NOLOCK;
    }
    if (!options->meminit) {
        flags |= MDB_NOMEMINIT;
    }
    return flags;
}

/* Convert the integer options given as objects into options.  Each
   message names the option, the value given and the accepted range. */
static int
parse_int_options(open_options *options, PyObject *map_size,
                  PyObject *max_readers, PyObject *max_dbs, PyObject *mode)
{
    long long value;

    if (map_size != NULL) {
        if (sharedb_int_arg(map_size, "map_size", MAP_SIZE_ACCEPTED, 1,
                            (long long)MAX_MAP_SIZE, &value) < 0) {
            return -1;
        }
        options->map_size = (Py_ssize_t)value;
    }
    if (max_readers != NULL) {
        if (sharedb_int_arg(max_readers, "max_readers",
                            "an int from 1 to 2147483647", 1, INT_MAX,
                            &value) < 0) {
            return -1;
        }
        options->max_readers = (int)value;
    }
    if (max_dbs != NULL) {
        if (sharedb_int_arg(max_dbs, "max_dbs", "an int from 0 to 32765",
                            0, 32765, &value) < 0) {
            return -1;
        }
        options->max_dbs = (int)value;
    }
    if (mode != NULL) {
        if (sharedb_int_arg(mode, "mode",
                            "a permission mode, an int from 0 to 0o7777", 0,
                            07777, &value) < 0) {
            return -1;
        }
        options->mode = (int)value;
    }
    return 0;
}

static int
check_options(const open_options *options)
{
    if (!options->lock && !options->readonly) {
        PyErr_SetString(PyExc_ValueError,
                        "lock=False requires readonly=True: without the "
                        "lock file, writers and readers cannot see each "
                        "other, which corrupts reads");
        return -1;
    }
#ifdef _WIN32
    if (options->writemap && options->map_grow) {
        PyErr_SetString(PyExc_ValueError,
                        "map_grow=True cannot be combined with "
                        "writemap=True on Windows, where LMDB sizes the "
                        "file to the map");
        return -1;
    }
#endif
    return 0;
}

/* Return the path of the data file, which LMDB names data.mdb inside a
   subdir environment and takes as given otherwise. */
static PyObject *
data_file_path(PyObject *path_bytes, int subdir)
{
    if (!subdir) {
        return Py_NewRef(path_bytes);
    }
#ifdef _WIN32
    return PyBytes_FromFormat("%s\\data.mdb", PyBytes_AS_STRING(path_bytes));
#else
    return PyBytes_FromFormat("%s/data.mdb", PyBytes_AS_STRING(path_bytes));
#endif
}

/* Convert the path for LMDB, which takes UTF-8 on Windows and the
   file-system encoding elsewhere. */
static PyObject *
encode_path(PyObject *path)
{
#ifdef _WIN32
    return PyUnicode_AsUTF8String(path);
#else
    return PyUnicode_EncodeFSDefault(path);
#endif
}

/* Return 1 if path names a file that is not a directory, 0 if not, or
   -1 with an exception set. */
static int
path_is_file(PyObject *path)
{
    PyObject *os_path = PyImport_ImportModule("os.path");
    PyObject *result;
    int is_file;

    if (os_path == NULL) {
        return -1;
    }
    result = PyObject_CallMethod(os_path, "isfile", "O", path);
    Py_DECREF(os_path);
    if (result == NULL) {
        return -1;
    }
    is_file = PyObject_IsTrue(result);
    Py_DECREF(result);
    return is_file;
}

/* Raise OSError(code) for a subdir environment whose path is not a
   directory, pointing to subdir=False. */
static void
raise_path_not_directory(EnvObject *self, int code)
{
    PyObject *exc;

    exc = PyObject_CallFunction(
        PyExc_OSError, "isO", code,
        "the path of the environment is a file, not a directory; pass "
        "subdir=False to open the file itself as the data file",
        self->path);
    if (exc != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
}

static int
env_open_handle(EnvObject *self, const open_options *options,
                const char *path)
{
    MDB_env *env = NULL;
    int rc;

    rc = mdb_env_create(&env);
    if (rc != 0) {
        sharedb_raise_lmdb(self->state, rc, "mdb_env_create", self->path);
        return -1;
    }
    rc = mdb_env_set_mapsize(env, (size_t)options->map_size);
    if (rc == 0) {
        rc = mdb_env_set_maxreaders(env, (unsigned int)options->max_readers);
    }
    if (rc == 0) {
        rc = mdb_env_set_maxdbs(env, (MDB_dbi)options->max_dbs);
    }
    if (rc != 0) {
        mdb_env_close(env);
        sharedb_raise_lmdb(self->state, rc, "mdb_env_set_mapsize",
                           self->path);
        return -1;
    }

    /* Opening reads the meta pages and may wait for another process
       that is initializing the lock file. */
    Py_BEGIN_ALLOW_THREADS
    rc = mdb_env_open(env, path, self->flags, (mdb_mode_t)options->mode);
    Py_END_ALLOW_THREADS
    if (rc != 0) {
        /* LMDB requires closing a handle whose open failed. */
        mdb_env_close(env);
        if (rc == ENOTDIR && !(self->flags & MDB_NOSUBDIR)) {
            /* ENOTDIR also comes from a parent directory that is a
               file, which subdir=False would not help with. */
            int is_file = path_is_file(self->path);

            if (is_file > 0) {
                raise_path_not_directory(self, rc);
                return -1;
            }
            if (is_file < 0) {
                return -1;
            }
        }
        if (rc == ENOMEM) {
            sharedb_raise_lmdb_hint(
                self->state, rc, "mdb_env_open", self->path,
                "; the map the store needs, from map_size or from the last "
                "page its meta page names, is more than this process can "
                "reserve, and a damaged meta page can ask for that too");
            return -1;
        }
        sharedb_raise_lmdb(self->state, rc, "mdb_env_open", self->path);
        return -1;
    }
    self->env = env;
    return 0;
}

/* Order keys as LMDB's default comparison does: by their bytes, as
   unsigned, and a prefix before the longer key.  LMDB's own version
   calls memcmp(), whose setup costs more than the comparison of the
   short keys a store has; searching a B-tree compares a key some twenty
   times, so this is a large part of a lookup. */
static int
compare_keys(const MDB_val *a, const MDB_val *b)
{
    const unsigned char *left = (const unsigned char *)a->mv_data;
    const unsigned char *right = (const unsigned char *)b->mv_data;
    size_t common = a->mv_size < b->mv_size ? a->mv_size : b->mv_size;

    if (common > 16) {
        int difference = memcmp(left, right, common);

        if (difference != 0) {
            return difference;
        }
    }
    else {
        for (size_t i = 0; i < common; i++) {
            if (left[i] != right[i]) {
                return (int)left[i] - (int)right[i];
            }
        }
    }
    if (a->mv_size == b->mv_size) {
        return 0;
    }
    return a->mv_size < b->mv_size ? -1 : 1;
}

/* Use compare_keys for dbi, unless its flags ask for another order.
   Every program must use the same order on a database; this is LMDB's
   default order, so other programs that use the default stay correct.
   Returns an LMDB code. */
static int
use_fast_compare(MDB_txn *txn, MDB_dbi dbi)
{
    unsigned int flags;
    int rc = mdb_dbi_flags(txn, dbi, &flags);

    if (rc != 0 || (flags & (MDB_REVERSEKEY | MDB_INTEGERKEY))) {
        return rc;
    }
    return mdb_set_compare(txn, dbi, compare_keys);
}

/* Open the main database handle and free stale reader slots. */
static int
env_finish_open(EnvObject *self)
{
    MDB_txn *txn;
    int rc;

    MDB_stat stat;

    if (!(self->flags & MDB_NOLOCK) && env_reader_check(self) < 0) {
        return -1;
    }
    rc = mdb_env_stat(self->env, &stat);
    if (rc != 0) {
        sharedb_raise_lmdb(self->state, rc, "mdb_env_stat", self->path);
        return -1;
    }
    self->page_size = stat.ms_psize;
    self->max_key_size = mdb_env_get_maxkeysize(self->env);
    if (sharedb_env_check_length(self) < 0) {
        return -1;
    }
    txn = sharedb_env_read_begin(self);
    if (txn == NULL) {
        return -1;
    }
    rc = mdb_dbi_open(txn, NULL, 0, &self->main_dbi);
    if (rc == 0) {
        rc = use_fast_compare(txn, self->main_dbi);
    }
    sharedb_env_read_end(self, txn);
    if (rc != 0) {
        sharedb_raise_lmdb(self->state, rc, "mdb_dbi_open", self->path);
        return -1;
    }
    return 0;
}

static int
env_open(EnvObject *self, const open_options *options)
{
    PyObject *path_bytes = NULL;
    PyObject *data_path = NULL;
    unsigned long long device = 0;
    unsigned long long inode = 0;
    mdb_filehandle_t fd;
    int found;
    int result = -1;
    int locked = 0;

    self->flags = open_flags(options);
    self->map_grow = options->map_grow;
    if (options->subdir && options->create && !options->readonly) {
        if (make_directory(self->path) < 0) {
            if (PyErr_ExceptionMatches(PyExc_FileExistsError)) {
                PyErr_Clear();
                raise_path_not_directory(self, EEXIST);
            }
            return -1;
        }
    }
    path_bytes = encode_path(self->path);
    if (path_bytes == NULL) {
        return -1;
    }
    if (strlen(PyBytes_AS_STRING(path_bytes)) !=
        (size_t)PyBytes_GET_SIZE(path_bytes)) {
        PyErr_Format(PyExc_ValueError, "path %R contains a null byte",
                     self->path);
        goto done;
    }
    data_path = data_file_path(path_bytes, options->subdir);
    if (data_path == NULL) {
        goto done;
    }

    /* The lock keeps two threads from opening the same new file at once
       between the check and the registration below. */
    if (!PyThread_acquire_lock(open_lock, NOWAIT_LOCK)) {
        Py_BEGIN_ALLOW_THREADS
        PyThread_acquire_lock(open_lock, WAIT_LOCK);
        Py_END_ALLOW_THREADS
    }
    locked = 1;

    found = file_identity(PyBytes_AS_STRING(data_path), &device, &inode);
    if (found < 0) {
        goto done;
    }
    if (found) {
        EnvObject *other = find_open_env(device, inode);

        /* A closed environment whose handle a call of another thread
           still uses closes when that call ends; opening the file again
           before then would break LMDB's locks, so wait for it. */
        for (int waited = 0; other != NULL && other->closed &&
                             waited < CLOSE_WAIT_MS; waited++) {
            PyThread_release_lock(open_lock);
            Py_BEGIN_ALLOW_THREADS
            sleep_one_millisecond();
            PyThread_acquire_lock(open_lock, WAIT_LOCK);
            Py_END_ALLOW_THREADS
            other = find_open_env(device, inode);
        }
        if (other != NULL && other->closed) {
            PyErr_Format(self->state->error,
                         "%R is still being closed: a call of another "
                         "thread uses it; retry when that call ends",
                         self->path);
            goto done;
        }
        if (other != NULL) {
            PyErr_Format(self->state->error,
                         "the data file of %R is already open in this "
                         "process; LMDB's locks break when a process opens "
                         "an environment twice, so use the open "
                         "Environment", self->path);
            goto done;
        }
    }
    if (!options->create && !found) {
        int is_file = options->subdir ? path_is_file(self->path) : 0;

        if (is_file < 0) {
            goto done;
        }
        if (is_file) {
            raise_path_not_directory(self, ENOTDIR);
        }
        else {
            PyErr_Format(PyExc_FileNotFoundError,
                         "no LMDB environment at %R, and create=False",
                         self->path);
        }
        goto done;
    }
    if (env_open_handle(self, options, PyBytes_AS_STRING(path_bytes)) < 0) {
        goto done;
    }
    if (mdb_env_get_fd(self->env, &fd) != 0) {
        PyErr_SetString(PyExc_SystemError, "mdb_env_get_fd failed");
        goto done;
    }
    found = file_identity(PyBytes_AS_STRING(data_path), &device, &inode);
    if (found <= 0) {
        if (found == 0) {
            PyErr_Format(PyExc_FileNotFoundError,
                         "the data file of %R vanished while it was opened",
                         self->path);
        }
        goto done;
    }
    self->file_device = device;
    self->file_inode = inode;
    self->next_open = open_envs;
    open_envs = self;
    result = 0;

done:
    if (locked) {
        PyThread_release_lock(open_lock);
    }
    Py_XDECREF(path_bytes);
    Py_XDECREF(data_path);
    if (result < 0) {
        return -1;
    }
    return env_finish_open(self);
}

static PyObject *
env_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {
        "path", "map_size", "subdir", "readonly", "create", "max_readers",
        "max_dbs", "sync", "metasync", "map_async", "writemap",
        "readahead", "lock", "meminit", "mode", "map_grow", NULL,
    };
    open_options options = {
        .path = NULL, .map_size = DEFAULT_MAP_SIZE, .subdir = 1,
        .readonly = 0, .create = 1, .max_readers = 126, .max_dbs = 0,
        .sync = 1, .metasync = 1, .map_async = 0, .writemap = 0,
        .readahead = 1, .lock = 1, .meminit = 1, .mode = 0644,
        .map_grow = 0,
    };
    PyObject *map_size = NULL;
    PyObject *max_readers = NULL;
    PyObject *max_dbs = NULL;
    PyObject *mode = NULL;
    sharedb_state *state;
    EnvObject *self;

    state = sharedb_state_from_type(type);
    if (state == NULL) {
        return NULL;
    }
    if (!PyArg_ParseTupleAndKeywords(
            args, kwargs, "O&|$OpppOOpppppppOp:Environment", keywords,
            PyUnicode_FSDecoder, &options.path, &map_size,
            &options.subdir, &options.readonly, &options.create,
            &max_readers, &max_dbs, &options.sync,
            &options.metasync, &options.map_async, &options.writemap,
            &options.readahead, &options.lock, &options.meminit,
            &mode, &options.map_grow)) {
        return NULL;
    }
    if (parse_int_options(&options, map_size, max_readers, max_dbs,
                          mode) < 0 ||
        check_options(&options) < 0) {
        Py_DECREF(options.path);
        return NULL;
    }

    self = (EnvObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        Py_DECREF(options.path);
        return NULL;
    }
    self->module = PyType_GetModule(state->env_type);
    Py_XINCREF(self->module);
    self->state = state;
    self->path = options.path;
    self->fork_count = sharedb_fork_count();
    self->read_pool_limit = SHAREDB_READ_POOL_SIZE;
    if (env_open(self, &options) < 0) {
        env_close(self);
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

/* ------------------------------------------------------------------ */
/* Methods                                                             */

PyDoc_STRVAR(env_begin_doc,
"begin($self, /, write=False, parent=None)\n"
"--\n"
"\n"
"Begin a transaction.\n"
"\n"
"A write transaction waits for the writer lock, which one transaction\n"
"of all processes holds at a time; parent begins a nested write\n"
"transaction inside it.  Raises ClosedError, ReadonlyError for a write\n"
"in a read-only environment, BadTxnError if this thread already has a\n"
"write transaction open, ReadersFullError when no reader slot is free.");

static PyObject *
env_begin(EnvObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"write", "parent", NULL};
    PyObject *parent = Py_None;
    int write = 0;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|pO:begin", keywords,
                                     &write, &parent)) {
        return NULL;
    }
    if (parent != Py_None) {
        if (!PyObject_TypeCheck(parent, self->state->txn_type)) {
            PyErr_Format(PyExc_TypeError,
                         "parent must be a Transaction or None, not %.200s",
                         Py_TYPE(parent)->tp_name);
            return NULL;
        }
        if (((TxnObject *)parent)->env != self) {
            PyErr_SetString(PyExc_ValueError,
                            "parent belongs to another environment");
            return NULL;
        }
        if (!write) {
            PyErr_SetString(PyExc_ValueError,
                            "a nested transaction must be a write "
                            "transaction: pass write=True with parent");
            return NULL;
        }
        return (PyObject *)sharedb_txn_begin(self, (TxnObject *)parent, 1);
    }
    return (PyObject *)sharedb_txn_begin(self, NULL, write);
}

static PyObject *
stat_to_dict(const MDB_stat *stat)
{
    return Py_BuildValue(
        "{s:I,s:I,s:n,s:n,s:n,s:n}",
        "psize", stat->ms_psize,
        "depth", stat->ms_depth,
        "branch_pages", (Py_ssize_t)stat->ms_branch_pages,
        "leaf_pages", (Py_ssize_t)stat->ms_leaf_pages,
        "overflow_pages", (Py_ssize_t)stat->ms_overflow_pages,
        "entries", (Py_ssize_t)stat->ms_entries);
}

PyDoc_STRVAR(env_stat_doc,
"stat($self, /)\n"
"--\n"
"\n"
"Return the statistics of the main database as a dict.\n"
"\n"
"Keys: psize (page size in bytes), depth (of the B-tree),\n"
"branch_pages, leaf_pages, overflow_pages and entries.");

static PyObject *
env_stat(EnvObject *self, PyObject *Py_UNUSED(ignored))
{
    MDB_stat stat;
    MDB_txn *txn;
    int rc;

    txn = sharedb_env_read_begin(self);
    if (txn == NULL) {
        return NULL;
    }
    rc = mdb_stat(txn, self->main_dbi, &stat);
    sharedb_env_read_end(self, txn);
    if (rc != 0) {
        return sharedb_raise_lmdb(self->state, rc, "mdb_stat", self->path);
    }
    return stat_to_dict(&stat);
}

PyDoc_STRVAR(env_info_doc,
"info($self, /)\n"
"--\n"
"\n"
"Return facts about the environment as a dict.\n"
"\n"
"Keys: map_size (bytes), last_pgno (last page in use), last_txnid\n"
"(id of the last committed transaction), max_readers and num_readers\n"
"(reader slots ever used since the lock file was created).");

static PyObject *
env_info(EnvObject *self, PyObject *Py_UNUSED(ignored))
{
    MDB_envinfo info;
    int rc;

    if (sharedb_env_check(self) < 0) {
        return NULL;
    }
    rc = mdb_env_info(self->env, &info);
    if (rc != 0) {
        return sharedb_raise_lmdb(self->state, rc, "mdb_env_info",
                                  self->path);
    }
    return Py_BuildValue(
        "{s:n,s:n,s:n,s:I,s:I}",
        "map_size", (Py_ssize_t)info.me_mapsize,
        "last_pgno", (Py_ssize_t)info.me_last_pgno,
        "last_txnid", (Py_ssize_t)info.me_last_txnid,
        "max_readers", info.me_maxreaders,
        "num_readers", info.me_numreaders);
}

PyDoc_STRVAR(env_sync_doc,
"sync($self, /, force=False)\n"
"--\n"
"\n"
"Flush written data to disk.\n"
"\n"
"With force=False this does nothing if the environment was opened\n"
"with sync=False; force=True flushes in any mode and returns when the\n"
"data is on disk.  Raises ClosedError, or OSError if the flush fails.");

static PyObject *
env_sync(EnvObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"force", NULL};
    MDB_env *env;
    int force = 0;
    int rc;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|p:sync", keywords,
                                     &force)) {
        return NULL;
    }
    if (sharedb_env_check(self) < 0) {
        return NULL;
    }
    if (self->flags & MDB_RDONLY) {
        Py_RETURN_NONE;
    }
    env = self->env;
    sharedb_env_pin(self);
    Py_BEGIN_ALLOW_THREADS
    rc = mdb_env_sync(env, force);
    Py_END_ALLOW_THREADS
    sharedb_env_unpin(self);
    if (rc != 0) {
        return sharedb_raise_lmdb(self->state, rc, "mdb_env_sync",
                                  self->path);
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(env_set_sync_doc,
"set_sync($self, sync, /)\n"
"--\n"
"\n"
"Turn synchronous commits on or off.\n"
"\n"
"With sync=True each commit returns after its data is on disk.  The\n"
"change waits for the writer lock, so no commit of this process sees\n"
"it half done.  Raises ClosedError, ReadonlyError, BadTxnError if this\n"
"thread has a write transaction open.");

static PyObject *
env_set_sync(EnvObject *self, PyObject *arg)
{
    unsigned long thread = PyThread_get_thread_ident();
    MDB_txn *txn = NULL;
    int sync = PyObject_IsTrue(arg);
    int rc;

    if (sync < 0) {
        return NULL;
    }
    if (sharedb_env_check_writable(self) < 0) {
        return NULL;
    }

    /* mdb_env_set_flags() is not atomic; holding the writer lock keeps
       every commit of this process from reading the flags meanwhile. */
    sharedb_env_pin(self);
    Py_BEGIN_ALLOW_THREADS
    rc = sharedb_env_write_begin_nogil(self, NULL, thread, &txn);
    if (rc == 0) {
        rc = mdb_env_set_flags(self->env, MDB_NOSYNC, !sync);
        sharedb_env_write_end_nogil(self, txn, 1, 0);
    }
    Py_END_ALLOW_THREADS
    sharedb_env_unpin(self);
    if (rc != 0) {
        if (sharedb_env_check(self) < 0) {
            return NULL;
        }
        return sharedb_raise_lmdb(self->state, rc, "mdb_env_set_flags",
                                  self->path);
    }
    if (sync) {
        self->flags &= ~MDB_NOSYNC;
    }
    else {
        self->flags |= MDB_NOSYNC;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(env_set_mapsize_doc,
"set_mapsize($self, size, /)\n"
"--\n"
"\n"
"Set the map size, the maximum size of the data file, in bytes.\n"
"\n"
"LMDB rounds a size below the data in use up to it.  No transaction\n"
"of this process may be open.  Raises ClosedError, ValueError for a\n"
"size that is not positive, Error while transactions are open.");

static PyObject *
env_set_mapsize(EnvObject *self, PyObject *arg)
{
    long long size;
    MDB_env *env;
    int rc;

    if (sharedb_int_arg(arg, "size", MAP_SIZE_ACCEPTED, 1,
                        (long long)MAX_MAP_SIZE, &size) < 0) {
        return NULL;
    }
    if (sharedb_env_check(self) < 0) {
        return NULL;
    }
    if (self->pins > 0) {
        PyErr_Format(self->state->error,
                     "cannot resize the map of %R while transactions or "
                     "iterators of this process use it", self->path);
        return NULL;
    }
    env = self->env;
    sharedb_env_pin(self);
    Py_BEGIN_ALLOW_THREADS
    rc = mdb_env_set_mapsize(env, (size_t)size);
    Py_END_ALLOW_THREADS
    sharedb_env_unpin(self);
    if (rc != 0) {
        return sharedb_raise_lmdb(self->state, rc, "mdb_env_set_mapsize",
                                  self->path);
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(env_max_key_size_doc,
"max_key_size($self, /)\n"
"--\n"
"\n"
"Return the maximum size of a key in bytes (511 in this build).");

static PyObject *
env_max_key_size(EnvObject *self, PyObject *Py_UNUSED(ignored))
{
    if (sharedb_env_check(self) < 0) {
        return NULL;
    }
    return PyLong_FromLong(mdb_env_get_maxkeysize(self->env));
}

PyDoc_STRVAR(env_max_readers_doc,
"max_readers($self, /)\n"
"--\n"
"\n"
"Return the number of reader slots of the lock file.");

static PyObject *
env_max_readers(EnvObject *self, PyObject *Py_UNUSED(ignored))
{
    unsigned int readers;
    int rc;

    if (sharedb_env_check(self) < 0) {
        return NULL;
    }
    rc = mdb_env_get_maxreaders(self->env, &readers);
    if (rc != 0) {
        return sharedb_raise_lmdb(self->state, rc, "mdb_env_get_maxreaders",
                                  self->path);
    }
    return PyLong_FromUnsignedLong(readers);
}

/* Collects the lines mdb_reader_list() writes. */
static int
collect_reader_line(const char *line, void *context)
{
    PyObject *lines = (PyObject *)context;
    PyObject *text = PyUnicode_FromString(line);
    int rc;

    if (text == NULL) {
        return -1;
    }
    rc = PyList_Append(lines, text);
    Py_DECREF(text);
    return rc;
}

PyDoc_STRVAR(env_readers_doc,
"readers($self, /)\n"
"--\n"
"\n"
"Return the reader slots in use as a list of (pid, thread, txnid).\n"
"\n"
"txnid is None for a slot kept by an idle reader.  Slots of dead\n"
"processes stay listed until reader_check() frees them.");

static PyObject *
env_readers(EnvObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *lines = NULL;
    PyObject *result = NULL;
    PyObject *entry;
    Py_ssize_t i;

    if (sharedb_env_check(self) < 0) {
        return NULL;
    }
    lines = PyList_New(0);
    if (lines == NULL) {
        return NULL;
    }
    if (mdb_reader_list(self->env, collect_reader_line, lines) < 0) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_SystemError, "mdb_reader_list failed");
        }
        goto done;
    }
    result = PyList_New(0);
    if (result == NULL) {
        goto done;
    }
    for (i = 0; i < PyList_GET_SIZE(lines); i++) {
        const char *line = PyUnicode_AsUTF8(PyList_GET_ITEM(lines, i));
        long pid;
        unsigned long long thread;
        unsigned long long txnid;
        int fields;

        if (line == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        /* Lines look like "    1234 7f12ab 57" or "    1234 7f12ab -";
           the header and "(no active readers)" do not match. */
        fields = sscanf(line, "%ld %llx %llu", &pid, &thread, &txnid);
        if (fields < 2) {
            continue;
        }
        if (fields == 3) {
            entry = Py_BuildValue("(lKK)", pid, thread, txnid);
        }
        else {
            entry = Py_BuildValue("(lKO)", pid, thread, Py_None);
        }
        if (entry == NULL || PyList_Append(result, entry) < 0) {
            Py_XDECREF(entry);
            Py_CLEAR(result);
            goto done;
        }
        Py_DECREF(entry);
    }

done:
    Py_DECREF(lines);
    return result;
}

PyDoc_STRVAR(env_reader_check_doc,
"reader_check($self, /)\n"
"--\n"
"\n"
"Free the reader slots of processes that died; return how many.");

static PyObject *
env_reader_check_method(EnvObject *self, PyObject *Py_UNUSED(ignored))
{
    int dead;

    if (sharedb_env_check(self) < 0) {
        return NULL;
    }
    dead = env_reader_check(self);
    if (dead < 0) {
        return NULL;
    }
    return PyLong_FromLong(dead);
}

PyDoc_STRVAR(env_copy_doc,
"copy($self, /, path, compact=False)\n"
"--\n"
"\n"
"Write a consistent copy of the environment to path.\n"
"\n"
"The copy is a snapshot of the last committed transaction, taken\n"
"while other processes go on writing.  For a subdir environment path\n"
"is a directory, created if missing, that must not hold a data.mdb\n"
"already; otherwise it is the new data file.  compact=True leaves out\n"
"free pages and renumbers the rest.  Raises ClosedError, OSError.");

static PyObject *
env_copy(EnvObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"path", "compact", NULL};
    PyObject *target = NULL;
    PyObject *target_bytes = NULL;
    PyObject *result = NULL;
    unsigned int flags = 0;
    MDB_env *env;
    int compact = 0;
    int rc;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&|p:copy", keywords,
                                     PyUnicode_FSDecoder, &target,
                                     &compact)) {
        return NULL;
    }
    if (sharedb_env_check(self) < 0) {
        goto done;
    }
    if (!compact &&
        sharedb_env_load_owner(self) == PyThread_get_thread_ident()) {
        /* A plain copy takes the writer lock for a moment, to read the
           meta pages while no commit changes them. */
        PyErr_Format(self->state->lmdb_errors[MDB_BAD_TXN - MDB_KEYEXIST],
                     "this thread has a write transaction open on %R, and "
                     "copy() needs the writer lock for a moment; commit or "
                     "abort the transaction first, or copy with "
                     "compact=True", self->path);
        goto done;
    }
    if (!(self->flags & MDB_NOSUBDIR) && make_directory(target) < 0) {
        goto done;
    }
    target_bytes = encode_path(target);
    if (target_bytes == NULL) {
        goto done;
    }
    if (compact) {
        flags |= MDB_CP_COMPACT;
    }

    /* The copy runs its own read transaction on the map, so it counts
       as a live transaction: the map must not move meanwhile. */
    env = self->env;
    sharedb_env_pin(self);
    self->live_txns++;
    Py_BEGIN_ALLOW_THREADS
    rc = mdb_env_copy2(env, PyBytes_AS_STRING(target_bytes), flags);
    Py_END_ALLOW_THREADS
    self->live_txns--;
    sharedb_env_unpin(self);
    if (rc != 0) {
        sharedb_raise_lmdb(self->state, rc, "mdb_env_copy2", target);
        goto done;
    }
    result = Py_NewRef(Py_None);

done:
    Py_XDECREF(target);
    Py_XDECREF(target_bytes);
    return result;
}

PyDoc_STRVAR(env_open_db_doc,
"open_db($self, /, name=None, create=True)\n"
"--\n"
"\n"
"Return a handle to the named database name, or to the main database.\n"
"\n"
"name is bytes or str.  Named databases need max_dbs > 0 at open, and\n"
"their names are stored as keys of the main database.  create=True\n"
"creates a missing database.  Raises ClosedError, DbsFullError when\n"
"max_dbs are open, NotFoundError for a missing database with\n"
"create=False, IncompatibleError when the name is a plain record.");

static PyObject *
env_open_db(EnvObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"name", "create", NULL};
    unsigned long thread = PyThread_get_thread_ident();
    PyObject *name = Py_None;
    PyObject *name_bytes = NULL;
    DatabaseObject *db = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    int create = 1;
    int write;
    int rc;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|Op:open_db", keywords,
                                     &name, &create)) {
        return NULL;
    }
    if (sharedb_env_check(self) < 0) {
        return NULL;
    }
    if (name == Py_None) {
        name_bytes = Py_NewRef(Py_None);
    }
    else if (PyUnicode_Check(name)) {
        name_bytes = PyUnicode_AsUTF8String(name);
    }
    else if (PyBytes_Check(name)) {
        name_bytes = Py_NewRef(name);
    }
    else {
        PyErr_Format(PyExc_TypeError, "name must be str, bytes or None, "
                     "not %.200s", Py_TYPE(name)->tp_name);
        return NULL;
    }
    if (name_bytes == NULL) {
        return NULL;
    }
    if (name_bytes != Py_None &&
        (PyBytes_GET_SIZE(name_bytes) == 0 ||
         strlen(PyBytes_AS_STRING(name_bytes)) !=
         (size_t)PyBytes_GET_SIZE(name_bytes))) {
        PyErr_Format(PyExc_ValueError, "database name %R must be non-empty "
                     "and contain no null byte", name);
        goto done;
    }

    /* Handles opened by a transaction become visible to the others when
       it commits.  Creating needs a write transaction. */
    write = create && !(self->flags & MDB_RDONLY);
    if (write) {
        if (sharedb_env_check_writable(self) < 0) {
            goto done;
        }
        sharedb_env_pin(self);
        Py_BEGIN_ALLOW_THREADS
        rc = sharedb_env_write_begin_nogil(self, NULL, thread, &txn);
        Py_END_ALLOW_THREADS
        if (rc != 0) {
            sharedb_env_unpin(self);
            if (sharedb_env_check(self) == 0) {
                sharedb_raise_lmdb(self->state, rc, "mdb_txn_begin",
                                   self->path);
            }
            goto done;
        }
    }
    else {
        txn = sharedb_env_read_begin(self);
        if (txn == NULL) {
            goto done;
        }
    }
    rc = mdb_dbi_open(txn,
                      name_bytes == Py_None ? NULL
                                            : PyBytes_AS_STRING(name_bytes),
                      write ? MDB_CREATE : 0, &dbi);
    if (rc == 0) {
        rc = use_fast_compare(txn, dbi);
    }
    if (write) {
        int end_rc;

        Py_BEGIN_ALLOW_THREADS
        end_rc = sharedb_env_write_end_nogil(self, txn, 1, rc == 0);
        Py_END_ALLOW_THREADS
        sharedb_env_unpin(self);
        if (rc == 0) {
            rc = end_rc;
        }
    }
    else {
        /* A read transaction keeps new handles only when it commits. */
        int end_rc = mdb_txn_commit(txn);

        self->live_txns--;
        sharedb_env_unpin(self);
        if (rc == 0) {
            rc = end_rc;
        }
    }
    if (rc != 0) {
        if (sharedb_env_check(self) == 0) {
            sharedb_raise_lmdb(self->state, rc, "mdb_dbi_open", name);
        }
        goto done;
    }

    db = PyObject_New(DatabaseObject, self->state->database_type);
    if (db == NULL) {
        goto done;
    }
    db->env = (EnvObject *)Py_NewRef(self);
    db->name = Py_NewRef(name_bytes);
    db->dbi = dbi;
    db->deleted = 0;

done:
    Py_XDECREF(name_bytes);
    return (PyObject *)db;
}

PyDoc_STRVAR(env_set_alloc_limits_doc,
"_set_alloc_limits($self, insert, delete, /)\n"
"--\n"
"\n"
"Cap the data file, in bytes, for the writes of a ShareDB store: insert\n"
"for writes that add records, delete for the ones that only remove\n"
"them.  0 lifts a cap.  Raises ValueError for a negative size.");

static PyObject *
env_set_alloc_limits(EnvObject *self, PyObject *args)
{
    Py_ssize_t insert;
    Py_ssize_t delete;

    if (!PyArg_ParseTuple(args, "nn:_set_alloc_limits", &insert, &delete)) {
        return NULL;
    }
    if (insert < 0 || delete < 0) {
        PyErr_SetString(PyExc_ValueError, "limits must not be negative");
        return NULL;
    }
    if (sharedb_env_check(self) < 0) {
        return NULL;
    }
    /* A limit below one page still limits: to one page, which no write
       can fit in. */
    self->insert_limit = (size_t)insert / self->page_size;
    self->delete_limit = (size_t)delete / self->page_size;
    if (insert > 0 && self->insert_limit == 0) {
        self->insert_limit = 1;
    }
    if (delete > 0 && self->delete_limit == 0) {
        self->delete_limit = 1;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(env_close_doc,
"close($self, /)\n"
"--\n"
"\n"
"Close the environment.\n"
"\n"
"Open transactions are aborted and their cursors closed first; later\n"
"use of any of them raises ClosedError.  A write transaction open in\n"
"another thread is aborted when that thread next uses it.  Closing\n"
"twice does nothing.");

static PyObject *
env_close_method(EnvObject *self, PyObject *Py_UNUSED(ignored))
{
    env_close(self);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(env_enter_doc,
"__enter__($self, /)\n"
"--\n"
"\n"
"Return the environment.  Raises ClosedError if it is closed.");

PyDoc_STRVAR(env_exit_doc,
"__exit__($self, /, *args)\n"
"--\n"
"\n"
"Close the environment and return False.");

static PyObject *
env_enter(EnvObject *self, PyObject *Py_UNUSED(ignored))
{
    if (sharedb_env_check(self) < 0) {
        return NULL;
    }
    return Py_NewRef(self);
}

static PyObject *
env_exit(EnvObject *self, PyObject *Py_UNUSED(args))
{
    env_close(self);
    Py_RETURN_FALSE;
}

PyDoc_STRVAR(env_flags_doc,
"flags($self, /)\n"
"--\n"
"\n"
"Return the options the environment was opened with, as a dict.");

static PyObject *
env_flags(EnvObject *self, PyObject *Py_UNUSED(ignored))
{
    unsigned int flags = self->flags;

    return Py_BuildValue(
        "{s:O,s:O,s:O,s:O,s:O,s:O,s:O,s:O,s:O,s:O}",
        "subdir", (flags & MDB_NOSUBDIR) ? Py_False : Py_True,
        "readonly", (flags & MDB_RDONLY) ? Py_True : Py_False,
        "sync", (flags & MDB_NOSYNC) ? Py_False : Py_True,
        "metasync", (flags & MDB_NOMETASYNC) ? Py_False : Py_True,
        "map_async", (flags & MDB_MAPASYNC) ? Py_True : Py_False,
        "writemap", (flags & MDB_WRITEMAP) ? Py_True : Py_False,
        "readahead", (flags & MDB_NORDAHEAD) ? Py_False : Py_True,
        "lock", (flags & MDB_NOLOCK) ? Py_False : Py_True,
        "meminit", (flags & MDB_NOMEMINIT) ? Py_False : Py_True,
        "map_grow", self->map_grow ? Py_True : Py_False);
}

static PyObject *
env_get_path(EnvObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->path);
}

static PyObject *
env_get_closed(EnvObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->closed || self->env == NULL ||
                           env_is_inherited(self));
}

static PyObject *
env_get_readonly(EnvObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong((self->flags & MDB_RDONLY) != 0);
}

static PyObject *
env_repr(EnvObject *self)
{
    return PyUnicode_FromFormat("<sharedb.lmdb.Environment %R%s>",
                                self->path,
                                self->closed ? " (closed)" : "");
}

static int
env_traverse(EnvObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->module);
    return 0;
}

/* Warn about and close an environment collected while open.  Runs
   while the object is still alive, as warnings may refer to it. */
static void
env_finalize(EnvObject *self)
{
    PyObject *type;
    PyObject *value;
    PyObject *traceback;

    if (self->closed || self->env == NULL || env_is_inherited(self)) {
        env_close(self);
        return;
    }
    PyErr_Fetch(&type, &value, &traceback);
    if (PyErr_ResourceWarning((PyObject *)self, 1, "unclosed Environment %R",
                              self->path) < 0) {
        PyErr_WriteUnraisable((PyObject *)self);
    }
    env_close(self);
    PyErr_Restore(type, value, traceback);
}

static void
env_dealloc(EnvObject *self)
{
    PyTypeObject *type = Py_TYPE(self);

    if (PyObject_CallFinalizerFromDealloc((PyObject *)self) < 0) {
        /* The finalizer resurrected the object. */
        return;
    }
    PyObject_GC_UnTrack(self);
    /* Transactions hold a strong reference to their environment, so
       none is left open here. */
    env_close(self);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    Py_CLEAR(self->path);
    Py_CLEAR(self->module);
    type->tp_free(self);
    Py_DECREF(type);
}

PyDoc_STRVAR(env_verify_doc,
"verify($self, /)\n"
"--\n"
"\n"
"Check the data file of the last committed snapshot page by page.\n"
"\n"
"The check reads the file itself, not through the map, so a damaged\n"
"file cannot crash it.  It runs under a read transaction, so writers\n"
"in this and other processes may keep working.  Returns a dict:\n"
"problems (a list of str, empty for a sound file), pages,\n"
"branch_pages, leaf_pages, overflow_pages, free_pages,\n"
"unreachable_pages, entries, databases, last_pgno, txnid and\n"
"page_size.  Raises ClosedError, or OSError if the file cannot be\n"
"read.");

static PyObject *
env_verify(EnvObject *self, PyObject *Py_UNUSED(ignored))
{
    if (sharedb_env_check(self) < 0) {
        return NULL;
    }
    return sharedb_env_verify(self);
}

PyDoc_STRVAR(env_set_read_pool_doc,
"_set_read_pool($self, size, /)\n"
"--\n"
"\n"
"Keep at most size (0 or 1) reset read transactions for reuse.  With 0,\n"
"every read releases its reader slot when it ends, so a process that\n"
"exits without closing the environment leaves no slot behind.");

static PyObject *
env_set_read_pool(EnvObject *self, PyObject *arg)
{
    long size = PyLong_AsLong(arg);

    if (size == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (size < 0 || size > SHAREDB_READ_POOL_SIZE) {
        PyErr_Format(PyExc_ValueError,
                     "size must be 0 to %d, not %ld",
                     SHAREDB_READ_POOL_SIZE, size);
        return NULL;
    }
    if (sharedb_env_check(self) < 0) {
        return NULL;
    }
    self->read_pool_limit = (int)size;
    while (self->read_pool_count > self->read_pool_limit) {
        mdb_txn_abort(self->read_pool[--self->read_pool_count]);
    }
    Py_RETURN_NONE;
}

static PyMethodDef env_methods[] = {
    {"begin", (PyCFunction)(void (*)(void))env_begin,
     METH_VARARGS | METH_KEYWORDS, env_begin_doc},
    {"stat", (PyCFunction)env_stat, METH_NOARGS, env_stat_doc},
    {"info", (PyCFunction)env_info, METH_NOARGS, env_info_doc},
    {"sync", (PyCFunction)(void (*)(void))env_sync,
     METH_VARARGS | METH_KEYWORDS, env_sync_doc},
    {"set_sync", (PyCFunction)env_set_sync, METH_O, env_set_sync_doc},
    {"set_mapsize", (PyCFunction)env_set_mapsize, METH_O,
     env_set_mapsize_doc},
    {"max_key_size", (PyCFunction)env_max_key_size, METH_NOARGS,
     env_max_key_size_doc},
    {"max_readers", (PyCFunction)env_max_readers, METH_NOARGS,
     env_max_readers_doc},
    {"readers", (PyCFunction)env_readers, METH_NOARGS, env_readers_doc},
    {"reader_check", (PyCFunction)env_reader_check_method, METH_NOARGS,
     env_reader_check_doc},
    {"copy", (PyCFunction)(void (*)(void))env_copy,
     METH_VARARGS | METH_KEYWORDS, env_copy_doc},
    {"open_db", (PyCFunction)(void (*)(void))env_open_db,
     METH_VARARGS | METH_KEYWORDS, env_open_db_doc},
    {"flags", (PyCFunction)env_flags, METH_NOARGS, env_flags_doc},
    {"verify", (PyCFunction)env_verify, METH_NOARGS, env_verify_doc},
    {"_set_read_pool", (PyCFunction)env_set_read_pool, METH_O,
     env_set_read_pool_doc},
    {"_set_alloc_limits", (PyCFunction)env_set_alloc_limits, METH_VARARGS,
     env_set_alloc_limits_doc},
    {"close", (PyCFunction)env_close_method, METH_NOARGS, env_close_doc},
    {"__enter__", (PyCFunction)env_enter, METH_NOARGS,
     env_enter_doc},
    {"__exit__", (PyCFunction)env_exit, METH_VARARGS, env_exit_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef env_getset[] = {
    {"path", (getter)env_get_path, NULL, "The path given at open.", NULL},
    {"closed", (getter)env_get_closed, NULL,
     "True once the environment is closed or inherited through fork().",
     NULL},
    {"readonly", (getter)env_get_readonly, NULL,
     "True if opened with readonly=True.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef env_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(EnvObject, weakreflist),
     READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

PyDoc_STRVAR(env_doc,
"Environment(path, *, map_size=10485760, subdir=True, readonly=False,\n"
"            create=True, max_readers=126, max_dbs=0, sync=True,\n"
"            metasync=True, map_async=False, writemap=False,\n"
"            readahead=True, lock=True, meminit=True, mode=0o644,\n"
"            map_grow=False)\n"
"--\n"
"\n"
"Open an LMDB environment: a directory holding data.mdb and lock.mdb,\n"
"or with subdir=False a single data file with a -lock file beside it.\n"
"\n"
"map_size is the maximum size of the data in bytes; map_grow=True\n"
"doubles it once the write transaction that found it full ends.\n"
"max_readers sets the reader slots\n"
"shared by all processes, max_dbs the number of named databases.\n"
"sync=False skips the flush at each commit (an operating-system crash\n"
"may then undo the last commits), metasync=False skips only the flush\n"
"of the meta page, map_async=True flushes a writemap asynchronously,\n"
"writemap=True writes through a writable map, readahead=False tells\n"
"the OS not to read ahead (better for random access to large files),\n"
"lock=False (read-only only) skips the lock file, meminit=False skips\n"
"zeroing unused parts of written pages, and mode sets the permissions\n"
"of new files.  A data file may be open once per process.  An idle\n"
"environment keeps one reader slot for its next read transaction.\n"
"Raises\n"
"OSError, InvalidError for a file that is not LMDB, VersionMismatchError,\n"
"ValueError for invalid options, Error for a file already open here.");

static PyType_Slot env_slots[] = {
    {Py_tp_doc, (void *)env_doc},
    {Py_tp_new, env_new},
    {Py_tp_dealloc, env_dealloc},
    {Py_tp_finalize, env_finalize},
    {Py_tp_traverse, env_traverse},
    {Py_tp_repr, env_repr},
    {Py_tp_methods, env_methods},
    {Py_tp_getset, env_getset},
    {Py_tp_members, env_members},
    {0, NULL},
};

static PyType_Spec env_spec = {
    .name = "sharedb.lmdb.Environment",
    .basicsize = sizeof(EnvObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_IMMUTABLETYPE,
    .slots = env_slots,
};

/* ------------------------------------------------------------------ */
/* Database handles                                                    */

static PyObject *
database_repr(DatabaseObject *self)
{
    return PyUnicode_FromFormat("<sharedb.lmdb.Database %R of %R>",
                                self->name, self->env->path);
}

static PyObject *
database_get_name(DatabaseObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->name);
}

/* A Database refers only to its environment, which refers to no
   Database, so it takes no part in reference cycles. */
static void
database_dealloc(DatabaseObject *self)
{
    PyTypeObject *type = Py_TYPE(self);

    Py_CLEAR(self->env);
    Py_CLEAR(self->name);
    PyObject_Free(self);
    Py_DECREF(type);
}

static PyGetSetDef database_getset[] = {
    {"name", (getter)database_get_name, NULL,
     "The database name as bytes, or None for the main database.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(database_doc,
"A database of an Environment, from Environment.open_db().\n"
"\n"
"Pass it as db= to Transaction methods and Transaction.cursor().");

static PyType_Slot database_slots[] = {
    {Py_tp_doc, (void *)database_doc},
    {Py_tp_dealloc, database_dealloc},
    {Py_tp_repr, database_repr},
    {Py_tp_getset, database_getset},
    {0, NULL},
};

static PyType_Spec database_spec = {
    .name = "sharedb.lmdb.Database",
    .basicsize = sizeof(DatabaseObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = database_slots,
};

int
sharedb_env_setup_type(PyObject *module, sharedb_state *state)
{
    if (open_lock == NULL) {
        open_lock = PyThread_allocate_lock();
        if (open_lock == NULL) {
            PyErr_NoMemory();
            return -1;
        }
    }
    state->env_type = (PyTypeObject *)PyType_FromModuleAndSpec(
        module, &env_spec, NULL);
    if (state->env_type == NULL) {
        return -1;
    }
    if (PyModule_AddType(module, state->env_type) < 0) {
        return -1;
    }
    state->database_type = (PyTypeObject *)PyType_FromModuleAndSpec(
        module, &database_spec, NULL);
    if (state->database_type == NULL) {
        return -1;
    }
    return PyModule_AddType(module, state->database_type);
}
