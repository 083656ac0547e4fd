/* Exception classes of sharedb.lmdb and the mapping from LMDB codes. */

#include <stdarg.h>
#include <string.h>

#include "errors.h"

typedef struct {
    int code;
    const char *name;           /* class name in sharedb.lmdb */
    PyObject **extra_base;      /* a builtin the class also derives from */
    const char *doc;
} error_spec;

/* Indexed by code - MDB_KEYEXIST.  The extra bases let callers catch the
   builtin that describes the failure: a full map is a MemoryError, as
   ShareDB 2.0.2 raised, and a size LMDB rejects is a ValueError. */
static const error_spec lmdb_error_specs[SHAREDB_LMDB_ERROR_COUNT] = {
    {MDB_KEYEXIST, "KeyExistsError", NULL,
     "The key is already present and overwriting was not allowed."},
    {MDB_NOTFOUND, "NotFoundError", NULL,
     "No record matches the key, or the cursor is past the end."},
    {MDB_PAGE_NOTFOUND, "PageNotFoundError", NULL,
     "A page the B-tree points at is missing: the file is damaged."},
    {MDB_CORRUPTED, "CorruptedError", NULL,
     "A page has the wrong type: the file is damaged."},
    {MDB_PANIC, "PanicError", NULL,
     "The environment had a fatal error; close it and open it again."},
    {MDB_VERSION_MISMATCH, "VersionMismatchError", NULL,
     "The lock file or data file comes from another LMDB version."},
    {MDB_INVALID, "InvalidError", NULL,
     "The file is not an LMDB data file."},
    {MDB_MAP_FULL, "MapFullError", &PyExc_MemoryError,
     "The map size of the environment is reached."},
    {MDB_DBS_FULL, "DbsFullError", NULL,
     "The maximum number of named databases is reached."},
    {MDB_READERS_FULL, "ReadersFullError", NULL,
     "Every reader slot of the environment is in use."},
    {MDB_TLS_FULL, "TlsFullError", NULL,
     "Too many thread-local storage keys are in use (Windows only)."},
    {MDB_TXN_FULL, "TxnFullError", NULL,
     "The transaction has too many dirty pages; commit smaller batches."},
    {MDB_CURSOR_FULL, "CursorFullError", NULL,
     "The cursor stack is too deep (internal LMDB error)."},
    {MDB_PAGE_FULL, "PageFullError", NULL,
     "A page has no room left (internal LMDB error)."},
    {MDB_MAP_RESIZED, "MapResizedError", NULL,
     "Another process grew the map beyond this process's mapping."},
    {MDB_INCOMPATIBLE, "IncompatibleError", NULL,
     "The operation does not fit the database's flags."},
    {MDB_BAD_RSLOT, "BadRslotError", NULL,
     "A reader slot was reused in a way LMDB does not allow."},
    {MDB_BAD_TXN, "BadTxnError", NULL,
     "The transaction must be aborted, has a child, or is invalid."},
    {MDB_BAD_VALSIZE, "BadValsizeError", &PyExc_ValueError,
     "A key or database name is empty or longer than LMDB accepts."},
    {MDB_BAD_DBI, "BadDbiError", NULL,
     "The database handle was changed or closed unexpectedly."},
};

/* Create sharedb.lmdb.<name> with class attributes code (the LMDB
   return code, or None when code is 0) and call (None); instances raised
   for an LMDB call set both. */
static PyObject *
new_error_class(PyObject *module, const char *name, PyObject *base,
                PyObject *extra_base, int code, const char *doc)
{
    PyObject *bases = NULL;
    PyObject *attributes = NULL;
    PyObject *cls = NULL;
    char qualified[64];

    PyOS_snprintf(qualified, sizeof(qualified), "sharedb.lmdb.%s", name);
    if (extra_base != NULL) {
        bases = PyTuple_Pack(2, base, extra_base);
    }
    else {
        bases = PyTuple_Pack(1, base);
    }
    if (bases == NULL) {
        return NULL;
    }
    if (code != 0) {
        attributes = Py_BuildValue("{s:i,s:O}", "code", code, "call",
                                   Py_None);
    }
    else {
        attributes = Py_BuildValue("{s:O,s:O}", "code", Py_None, "call",
                                   Py_None);
    }
    if (attributes == NULL) {
        Py_DECREF(bases);
        return NULL;
    }
    cls = PyErr_NewExceptionWithDoc(qualified, doc, bases, attributes);
    Py_DECREF(bases);
    Py_DECREF(attributes);
    if (cls == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(module, name, cls) < 0) {
        Py_DECREF(cls);
        return NULL;
    }
    return cls;
}

int
sharedb_errors_setup(PyObject *module, sharedb_state *state)
{
    state->error = new_error_class(
        module, "Error", PyExc_Exception, NULL, 0,
        "Base class of the errors LMDB reports.\n\n"
        "code is the LMDB return code of the class, or None for Error,\n"
        "ClosedError and ReadonlyError.  call names the LMDB function\n"
        "that failed, or is None when a check of the binding raised the\n"
        "error.");
    if (state->error == NULL) {
        return -1;
    }

    state->closed_error = new_error_class(
        module, "ClosedError", state->error, PyExc_RuntimeError, 0,
        "The environment is closed, or the transaction or cursor ended.");
    if (state->closed_error == NULL) {
        return -1;
    }

    state->readonly_error = new_error_class(
        module, "ReadonlyError", state->error, NULL, 0,
        "A write was attempted in a read-only environment or "
        "transaction.");
    if (state->readonly_error == NULL) {
        return -1;
    }

    for (int i = 0; i < SHAREDB_LMDB_ERROR_COUNT; i++) {
        const error_spec *spec = &lmdb_error_specs[i];
        PyObject *extra = spec->extra_base ? *spec->extra_base : NULL;

        assert(spec->code == MDB_KEYEXIST + i);
        state->lmdb_errors[i] = new_error_class(module, spec->name,
                                                state->error, extra,
                                                spec->code, spec->doc);
        if (state->lmdb_errors[i] == NULL) {
            return -1;
        }
    }

    /* A TypeError too, as ShareDB 2.0.2 raised for keys LMDB rejected. */
    state->key_too_long_error = new_error_class(
        module, "KeyTooLongError",
        state->lmdb_errors[MDB_BAD_VALSIZE - MDB_KEYEXIST],
        PyExc_TypeError, MDB_BAD_VALSIZE,
        "A packed key is longer than the maximum key size of LMDB.");
    if (state->key_too_long_error == NULL) {
        return -1;
    }
    return 0;
}

int
sharedb_errors_traverse(sharedb_state *state, visitproc visit, void *arg)
{
    Py_VISIT(state->error);
    Py_VISIT(state->closed_error);
    Py_VISIT(state->readonly_error);
    Py_VISIT(state->key_too_long_error);
    for (int i = 0; i < SHAREDB_LMDB_ERROR_COUNT; i++) {
        Py_VISIT(state->lmdb_errors[i]);
    }
    return 0;
}

void
sharedb_errors_clear(sharedb_state *state)
{
    Py_CLEAR(state->error);
    Py_CLEAR(state->closed_error);
    Py_CLEAR(state->readonly_error);
    Py_CLEAR(state->key_too_long_error);
    for (int i = 0; i < SHAREDB_LMDB_ERROR_COUNT; i++) {
        Py_CLEAR(state->lmdb_errors[i]);
    }
}

/* Raise an OSError subclass for the system error code rc.  Calling
   OSError with (errno, strerror, filename) makes Python pick the subclass,
   such as FileNotFoundError for ENOENT.  On Windows LMDB returns
   GetLastError() codes, which Python maps to errno itself. */
static PyObject *
raise_os_error(int rc, const char *call, PyObject *context)
{
    PyObject *filename = NULL;

    if (context != NULL && PyUnicode_Check(context)) {
        filename = context;
    }
#ifdef _WIN32
    (void)call;
    return PyErr_SetExcFromWindowsErrWithFilenameObject(PyExc_OSError, rc,
                                                        filename);
#else
    PyObject *exc;
    PyObject *message;

    message = PyUnicode_FromFormat("%s failed: %s", call, strerror(rc));
    if (message == NULL) {
        return NULL;
    }
    if (filename != NULL) {
        exc = PyObject_CallFunction(PyExc_OSError, "iOO", rc, message,
                                    filename);
    }
    else {
        exc = PyObject_CallFunction(PyExc_OSError, "iO", rc, message);
    }
    Py_DECREF(message);
    if (exc == NULL) {
        return NULL;
    }
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
    return NULL;
#endif
}

/* The advice added to the message of an error that means a damaged data
   file. */
static const char *
damage_hint(int rc)
{
    if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND) {
        return "; the data file is damaged: sharedb.lmdb.verify() lists "
               "what is wrong, and a backup restores it";
    }
    return "";
}

PyObject *
sharedb_raise_lmdb(sharedb_state *state, int rc, const char *call,
                   PyObject *context)
{
    return sharedb_raise_lmdb_hint(state, rc, call, context, "");
}

PyObject *
sharedb_raise_lmdb_hint(sharedb_state *state, int rc, const char *call,
                        PyObject *context, const char *hint)
{
    PyObject *cls;
    PyObject *message = NULL;
    PyObject *exc = NULL;
    PyObject *value = NULL;

    if (rc == ENOMEM) {
        /* Formatted directly, with as few objects as possible, since
           memory may really be exhausted. */
        if (context == NULL) {
            return PyErr_NoMemory();
        }
        return PyErr_Format(PyExc_MemoryError, "%s failed on %R: %s%s",
                            call, context, strerror(rc), hint);
    }
    if (rc < MDB_KEYEXIST || rc > MDB_LAST_ERRCODE) {
        if (rc > 0) {
            return raise_os_error(rc, call, context);
        }
        cls = state->error;
    }
    else {
        cls = state->lmdb_errors[rc - MDB_KEYEXIST];
    }

    /* mdb_strerror() returns "MDB_MAP_FULL: Environment mapsize limit
       reached" and the like, so the message carries the code's name.  A
       key shown as context is cut to 200 characters. */
    if (context != NULL) {
        PyObject *shown = PyObject_Repr(context);

        if (shown != NULL && PyUnicode_GET_LENGTH(shown) > 200) {
            Py_SETREF(shown, PyUnicode_Substring(shown, 0, 200));
            if (shown != NULL) {
                Py_SETREF(shown, PyUnicode_FromFormat("%U...", shown));
            }
        }
        if (shown == NULL) {
            goto done;
        }
        message = PyUnicode_FromFormat("%s failed on %U: %s%s%s", call,
                                       shown, mdb_strerror(rc),
                                       damage_hint(rc), hint);
        Py_DECREF(shown);
    }
    else {
        message = PyUnicode_FromFormat("%s failed: %s%s%s", call,
                                       mdb_strerror(rc), damage_hint(rc),
                                       hint);
    }
    if (message == NULL) {
        goto done;
    }
    exc = PyObject_CallOneArg(cls, message);
    if (exc == NULL) {
        goto done;
    }
    value = PyLong_FromLong(rc);
    if (value == NULL || PyObject_SetAttrString(exc, "code", value) < 0) {
        goto done;
    }
    Py_CLEAR(value);
    value = PyUnicode_FromString(call);
    if (value == NULL || PyObject_SetAttrString(exc, "call", value) < 0) {
        goto done;
    }
    PyErr_SetObject(cls, exc);

done:
    Py_XDECREF(message);
    Py_XDECREF(exc);
    Py_XDECREF(value);
    return NULL;
}

PyObject *
sharedb_raise_closed(sharedb_state *state, const char *format, ...)
{
    va_list args;
    PyObject *message;

    va_start(args, format);
    message = PyUnicode_FromFormatV(format, args);
    va_end(args);
    if (message != NULL) {
        PyErr_SetObject(state->closed_error, message);
        Py_DECREF(message);
    }
    return NULL;
}

PyObject *
sharedb_describe(PyObject *obj)
{
    PyObject *text = PyObject_Repr(obj);
    PyObject *cut;

    if (text == NULL) {
        /* repr() can fail, for an int of more digits than
           sys.get_int_max_str_digits() allows among others. */
        PyErr_Clear();
        if (PyLong_Check(obj)) {
            PyObject *bits = PyObject_CallMethod(obj, "bit_length", NULL);

            if (bits != NULL) {
                text = PyUnicode_FromFormat("<an int of %S bits>", bits);
                Py_DECREF(bits);
                return text;
            }
            PyErr_Clear();
        }
        return PyUnicode_FromFormat("<%s object>", Py_TYPE(obj)->tp_name);
    }
    if (PyUnicode_GET_LENGTH(text) <= SHAREDB_DESCRIBE_LIMIT) {
        return text;
    }
    cut = PyUnicode_Substring(text, 0, SHAREDB_DESCRIBE_LIMIT);
    Py_DECREF(text);
    if (cut == NULL) {
        return NULL;
    }
    text = PyUnicode_FromFormat("%U...", cut);
    Py_DECREF(cut);
    return text;
}

int
sharedb_int_arg(PyObject *value, const char *name, const char *accepted,
                long long minimum, long long maximum, long long *out)
{
    PyObject *index;
    PyObject *shown;
    long long number;
    int overflow;

    if (PyBool_Check(value) || !PyIndex_Check(value)) {
        shown = sharedb_describe(value);
        if (shown != NULL) {
            PyErr_Format(PyExc_TypeError, "%s must be %s, not %U of %R",
                         name, accepted, shown, (PyObject *)Py_TYPE(value));
            Py_DECREF(shown);
        }
        return -1;
    }
    index = PyNumber_Index(value);
    if (index == NULL) {
        return -1;
    }
    number = PyLong_AsLongLongAndOverflow(index, &overflow);
    Py_DECREF(index);
    if (number == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (overflow != 0 || number < minimum || number > maximum) {
        shown = sharedb_describe(value);
        if (shown != NULL) {
            PyErr_Format(PyExc_ValueError, "%s must be %s, not %U", name,
                         accepted, shown);
            Py_DECREF(shown);
        }
        return -1;
    }
    *out = number;
    return 0;
}
