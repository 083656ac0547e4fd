/* sharedb._lmdb: module definition, state and fork tracking. */

#include "module.h"
#include "codec.h"
#include "cursor.h"
#include "env.h"
#include "errors.h"
#include "store.h"
#include "txn.h"

#ifndef _WIN32
#include <pthread.h>
#endif

/* Incremented in the child after every fork().  A plain counter is
   enough: the child handler runs in the only thread of the new process. */
static volatile unsigned long fork_count = 0;

#ifndef _WIN32
static void
count_fork_in_child(void)
{
    fork_count++;
}
#endif

unsigned long
sharedb_fork_count(void)
{
    return fork_count;
}

/* pthread_atfork() handlers cannot be removed, so they are registered
   once per process, not once per module object. */
static int
register_fork_handler(void)
{
#ifndef _WIN32
    static int registered = 0;

    if (!registered) {
        int rc = pthread_atfork(NULL, NULL, count_fork_in_child);

        if (rc != 0) {
            errno = rc;
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        registered = 1;
    }
#endif
    return 0;
}

sharedb_state *
sharedb_state_from_type(PyTypeObject *type)
{
#if PY_VERSION_HEX >= 0x030B0000
    PyObject *module = PyType_GetModuleByDef(type, &sharedb_module_def);

    if (module == NULL) {
        return NULL;
    }
    return sharedb_state_from_module(module);
#else
    PyObject *mro = type->tp_mro;

    if (mro != NULL) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(mro); i++) {
            PyTypeObject *base = (PyTypeObject *)PyTuple_GET_ITEM(mro, i);
            PyObject *module;

            if (!(base->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
                continue;
            }
            module = PyType_GetModule(base);
            if (module == NULL) {
                PyErr_Clear();
                continue;
            }
            if (PyModule_GetDef(module) == &sharedb_module_def) {
                return sharedb_state_from_module(module);
            }
        }
    }
    PyErr_Format(PyExc_TypeError, "%s is not a subclass of a "
                 "sharedb._lmdb type", type->tp_name);
    return NULL;
#endif
}

int
sharedb_codec_load(sharedb_state *state)
{
    PyObject *msgpack = NULL;
    int result = -1;

    if (state->codec.unpackb != NULL) {
        return 0;
    }
    msgpack = PyImport_ImportModule("msgpack");
    if (msgpack == NULL) {
        return -1;
    }
    state->codec.ext_type = PyObject_GetAttrString(msgpack, "ExtType");
    if (state->codec.ext_type == NULL) {
        goto done;
    }
    state->codec.timestamp_type = PyObject_GetAttrString(msgpack,
                                                         "Timestamp");
    if (state->codec.timestamp_type == NULL) {
        goto done;
    }
    state->codec.packb = PyObject_GetAttrString(msgpack, "packb");
    if (state->codec.packb == NULL) {
        goto done;
    }
    /* unpackb is set last: it marks the codec as loaded. */
    state->codec.unpackb = PyObject_GetAttrString(msgpack, "unpackb");
    if (state->codec.unpackb == NULL) {
        goto done;
    }
    result = 0;

done:
    if (result < 0) {
        Py_CLEAR(state->codec.ext_type);
        Py_CLEAR(state->codec.timestamp_type);
        Py_CLEAR(state->codec.packb);
    }
    Py_DECREF(msgpack);
    return result;
}

static int
add_lmdb_constants(PyObject *module)
{
    int major;
    int minor;
    int patch;
    const char *text = mdb_version(&major, &minor, &patch);
    PyObject *version;

    version = Py_BuildValue("(iii)", major, minor, patch);
    if (version == NULL) {
        return -1;
    }
    if (PyModule_AddObjectRef(module, "LMDB_VERSION", version) < 0) {
        Py_DECREF(version);
        return -1;
    }
    Py_DECREF(version);
    if (PyModule_AddStringConstant(module, "LMDB_VERSION_STRING",
                                   text) < 0) {
        return -1;
    }
    return 0;
}

static int
module_exec(PyObject *module)
{
    sharedb_state *state = sharedb_state_from_module(module);

    if (register_fork_handler() < 0) {
        return -1;
    }
    if (sharedb_errors_setup(module, state) < 0) {
        return -1;
    }
    if (sharedb_env_setup_type(module, state) < 0) {
        return -1;
    }
    if (sharedb_txn_setup_type(module, state) < 0) {
        return -1;
    }
    if (sharedb_cursor_setup_type(module, state) < 0) {
        return -1;
    }
    if (sharedb_store_setup_type(module, state) < 0) {
        return -1;
    }
    if (add_lmdb_constants(module) < 0) {
        return -1;
    }
    return 0;
}

static int
module_traverse(PyObject *module, visitproc visit, void *arg)
{
    sharedb_state *state = sharedb_state_from_module(module);

    Py_VISIT(state->env_type);
    Py_VISIT(state->database_type);
    Py_VISIT(state->txn_type);
    Py_VISIT(state->cursor_type);
    Py_VISIT(state->cursor_iter_type);
    Py_VISIT(state->store_type);
    Py_VISIT(state->store_iter_type);
    Py_VISIT(state->codec.ext_type);
    Py_VISIT(state->codec.timestamp_type);
    Py_VISIT(state->codec.packb);
    Py_VISIT(state->codec.unpackb);
    for (int i = 0; i < SHAREDB_STRING_CACHE_SIZE; i++) {
        Py_VISIT(state->codec.strings[i]);
    }
    for (int i = 0; i < SHAREDB_INT_CACHE_SIZE; i++) {
        Py_VISIT(state->codec.ints[i]);
    }
    return sharedb_errors_traverse(state, visit, arg);
}

static int
module_clear(PyObject *module)
{
    sharedb_state *state = sharedb_state_from_module(module);

    Py_CLEAR(state->env_type);
    Py_CLEAR(state->database_type);
    Py_CLEAR(state->txn_type);
    Py_CLEAR(state->cursor_type);
    Py_CLEAR(state->cursor_iter_type);
    Py_CLEAR(state->store_type);
    Py_CLEAR(state->store_iter_type);
    Py_CLEAR(state->codec.ext_type);
    Py_CLEAR(state->codec.timestamp_type);
    Py_CLEAR(state->codec.packb);
    Py_CLEAR(state->codec.unpackb);
    for (int i = 0; i < SHAREDB_STRING_CACHE_SIZE; i++) {
        Py_CLEAR(state->codec.strings[i]);
    }
    for (int i = 0; i < SHAREDB_INT_CACHE_SIZE; i++) {
        Py_CLEAR(state->codec.ints[i]);
    }
    sharedb_errors_clear(state);
    return 0;
}

static void
module_free(void *module)
{
    module_clear((PyObject *)module);
}

/* NOTE: no Py_mod_gil slot, so a free-threaded build enables the GIL
   when it imports this module: the objects rely on the GIL to guard
   their state. */
static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, module_exec},
#if PY_VERSION_HEX >= 0x030C0000
    {Py_mod_multiple_interpreters, Py_MOD_MULTIPLE_INTERPRETERS_SUPPORTED},
#endif
    {0, NULL},
};

PyDoc_STRVAR(module_doc,
"LMDB bindings and the store core of ShareDB.\n"
"\n"
"This module is private: import sharedb.lmdb or sharedb instead.");

PyModuleDef sharedb_module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "sharedb._lmdb",
    .m_doc = module_doc,
    .m_size = sizeof(sharedb_state),
    .m_methods = sharedb_codec_methods,
    .m_slots = module_slots,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
    .m_free = module_free,
};

PyMODINIT_FUNC
PyInit__lmdb(void)
{
    return PyModuleDef_Init(&sharedb_module_def);
}
