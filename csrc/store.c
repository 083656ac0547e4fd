/* sharedb._lmdb.Store: the C core of the ShareDB class. */

#include <stdint.h>
#include <string.h>

#include "codec.h"
#include "cursor.h"
#include "errors.h"
#include "store.h"
#include "txn.h"

/* Largest sync_threshold, the limit of buffer_size in ShareDB(), which
   sharedb/_config.py sets as MAX_SYNC_THRESHOLD; and the accepted values
   as error messages state them. */
#define MAX_SYNC_THRESHOLD (1LL << 62)
#define SYNC_THRESHOLD_ACCEPTED \
    "a positive int of at most 4611686018427387904 (writes between syncs)"

/* Retries of a write whose map had to be resized first. */
#define MAX_REMAPS 16

/* ------------------------------------------------------------------ */
/* Argument parsing                                                    */

/* Parse a METH_FASTCALL | METH_KEYWORDS call into values[], in the order
   of names[].  The first required arguments must be given; the others
   keep the value the caller stored.  Returns -1 with TypeError set. */
static int
parse_args(const char *function, PyObject *const *args, Py_ssize_t nargs,
           PyObject *kwnames, const char *const *names, Py_ssize_t count,
           Py_ssize_t required, PyObject **values)
{
    Py_ssize_t given = nargs;
    Py_ssize_t i;

    if (nargs > count) {
        PyErr_Format(PyExc_TypeError,
                     "%s() takes at most %zd arguments (%zd given)",
                     function, count, nargs);
        return -1;
    }
    for (i = 0; i < nargs; i++) {
        values[i] = args[i];
    }
    if (kwnames != NULL) {
        Py_ssize_t keyword_count = PyTuple_GET_SIZE(kwnames);

        for (Py_ssize_t k = 0; k < keyword_count; k++) {
            PyObject *name = PyTuple_GET_ITEM(kwnames, k);
            Py_ssize_t slot = -1;

            for (i = 0; i < count; i++) {
                if (PyUnicode_CompareWithASCIIString(name, names[i]) == 0) {
                    slot = i;
                    break;
                }
            }
            if (slot < 0) {
                PyErr_Format(PyExc_TypeError,
                             "%s() got an unexpected keyword argument %R",
                             function, name);
                return -1;
            }
            if (slot < nargs) {
                PyErr_Format(PyExc_TypeError,
                             "%s() got multiple values for argument '%s'",
                             function, names[slot]);
                return -1;
            }
            values[slot] = args[nargs + k];
            given++;
        }
    }
    for (i = 0; i < required; i++) {
        if (values[i] == NULL) {
            PyErr_Format(PyExc_TypeError,
                         "%s() missing required argument '%s'", function,
                         names[i]);
            return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* State of the store                                                  */

static PyObject *
store_raise_closed(StoreObject *self)
{
    PyObject *text;

    if (!self->attached) {
        /* Made by __new__() alone, or by a subclass whose __init__() does
           not call ShareDB.__init__(). */
        return sharedb_raise_closed(
            self->state, "this %.200s object is not open: ShareDB.__init__ "
            "did not run; open a store with ShareDB(path), or call "
            "super().__init__(path) from the __init__ of a subclass",
            Py_TYPE(self)->tp_name);
    }
    text = PyObject_Repr((PyObject *)self);

    if (text == NULL) {
        return NULL;
    }
    sharedb_raise_closed(self->state, "Access to %U has been closed or "
                         "dropped", text);
    Py_DECREF(text);
    return NULL;
}

/* Return a new reference to the environment of an open store, reopened
   first if this process is a child forked since it was opened.  Returns
   NULL with an exception set if the store is closed. */
static EnvObject *
store_env(StoreObject *self)
{
    if (self->env == NULL) {
        return (EnvObject *)store_raise_closed(self);
    }
    if (self->env->fork_count != sharedb_fork_count()) {
        PyObject *result = PyObject_CallMethod((PyObject *)self,
                                               "_reopen_after_fork", NULL);

        if (result == NULL) {
            return NULL;
        }
        Py_DECREF(result);
        if (self->env == NULL) {
            return (EnvObject *)store_raise_closed(self);
        }
    }
    if (self->env->closed) {
        return (EnvObject *)store_raise_closed(self);
    }
    return (EnvObject *)Py_NewRef(self->env);
}

/* After a failed call on env: if the environment was closed meanwhile,
   by this object or another on the same store, raise the store's own
   message instead of the environment's. */
static void
store_reword_closed(StoreObject *self, EnvObject *env)
{
    if (env->closed || env->env == NULL) {
        PyErr_Clear();
        store_raise_closed(self);
    }
}

/* Return str(obj) cut to SHAREDB_DESCRIBE_LIMIT characters. */
static PyObject *
describe(PyObject *obj)
{
    PyObject *text = PyObject_Str(obj);
    PyObject *cut;

    if (text == NULL) {
        PyErr_Clear();
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

/* Replace the current exception by exception_class("Given <name>=<obj>
   of <type>, raised: <message>"), chained to it, as ShareDB 2.0.2
   worded such errors.  With exception_class NULL the exception, which
   came from the caller's code, is kept as it is, with a note (Python
   3.11 and later) that names obj.  An exception that is not an
   Exception, such as KeyboardInterrupt, is always kept as it is. */
static void
reraise_given_as(PyObject *exception_class, PyObject *name, PyObject *obj)
{
    PyObject *type;
    PyObject *value;
    PyObject *traceback;
    PyObject *text = NULL;
    PyObject *message = NULL;

    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (value == NULL || !PyObject_TypeCheck(value, (PyTypeObject *)
                                             PyExc_Exception)) {
        PyErr_Restore(type, value, traceback);
        return;
    }
    if (traceback != NULL) {
        PyException_SetTraceback(value, traceback);
    }
    text = describe(obj);
    if (text == NULL) {
        PyErr_Restore(type, value, traceback);
        return;
    }
    if (exception_class == NULL) {
#if PY_VERSION_HEX >= 0x030B0000
        PyObject *note = PyUnicode_FromFormat("while reading %U=%U of %R",
                                              name, text,
                                              (PyObject *)Py_TYPE(obj));
        PyObject *added = NULL;

        if (note != NULL) {
            added = PyObject_CallMethod(value, "add_note", "O", note);
            Py_DECREF(note);
        }
        if (added == NULL) {
            PyErr_Clear();
        }
        Py_XDECREF(added);
#endif
        Py_DECREF(text);
        PyErr_Restore(type, value, traceback);
        return;
    }
    message = PyUnicode_FromFormat("Given %U=%U of %R, raised: %S", name,
                                   text, (PyObject *)Py_TYPE(obj), value);
    Py_DECREF(text);
    if (message == NULL) {
        goto done;
    }
    PyErr_SetObject(exception_class, message);
    Py_DECREF(message);
    /* _PyErr_ChainExceptions is private, so chain by hand. */
    {
        PyObject *new_type;
        PyObject *new_value;
        PyObject *new_traceback;

        PyErr_Fetch(&new_type, &new_value, &new_traceback);
        PyErr_NormalizeException(&new_type, &new_value, &new_traceback);
        PyException_SetCause(new_value, Py_NewRef(value));
        PyException_SetContext(new_value, Py_NewRef(value));
        PyErr_Restore(new_type, new_value, new_traceback);
    }

done:
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(traceback);
}

/* reraise_given_as() with the argument name given as a C string. */
static void
reraise_given(PyObject *exception_class, const char *name, PyObject *obj)
{
    PyObject *label = PyUnicode_FromString(name);

    if (label == NULL) {
        /* The MemoryError replaces the error being reworded. */
        return;
    }
    reraise_given_as(exception_class, label, obj);
    Py_DECREF(label);
}

/* Return the class that a failure to pack a key or value of a batch is
   raised as.  A KeyTooLongError stays one, so that callers catch it as
   they do for a single key.  Every other error becomes a TypeError, as
   in ShareDB 2.0.2.  Returns a borrowed reference. */
static PyObject *
batch_error_class(StoreObject *self)
{
    if (PyErr_ExceptionMatches(self->state->key_too_long_error)) {
        return self->state->key_too_long_error;
    }
    return PyExc_TypeError;
}

/* ------------------------------------------------------------------ */
/* Packing keys and values                                             */

/* Bytes of a packed key or value: in buffer for msgpack, or in the
   bytes object owner for pickle and compressed values. */
typedef struct {
    sharedb_buffer buffer;
    PyObject *owner;
    const char *data;
    Py_ssize_t size;

    /* For a pickled key with equal parts: the bytes ShareDB 2.0.2 wrote
       when those parts were separate objects, looked for when the
       canonical bytes are absent; or NULL. */
    PyObject *legacy;
} packed;

static void
packed_init(packed *p)
{
    sharedb_buffer_init(&p->buffer);
    p->owner = NULL;
    p->data = NULL;
    p->size = 0;
    p->legacy = NULL;
}

static void
packed_release(packed *p)
{
    sharedb_buffer_release(&p->buffer);
    Py_CLEAR(p->owner);
    Py_CLEAR(p->legacy);
}

static inline MDB_val
packed_legacy_val(const packed *p)
{
    MDB_val val;

    val.mv_size = (size_t)PyBytes_GET_SIZE(p->legacy);
    val.mv_data = PyBytes_AS_STRING(p->legacy);
    return val;
}

static void
packed_use_buffer(packed *p)
{
    p->data = p->buffer.data;
    p->size = p->buffer.length;
}

static int
packed_use_bytes(packed *p, PyObject *bytes)
{
    if (!PyBytes_Check(bytes)) {
        PyErr_Format(PyExc_TypeError, "serializer returned %.200s, not "
                     "bytes", Py_TYPE(bytes)->tp_name);
        Py_DECREF(bytes);
        return -1;
    }
    Py_XSETREF(p->owner, bytes);
    p->data = PyBytes_AS_STRING(bytes);
    p->size = PyBytes_GET_SIZE(bytes);
    return 0;
}

/* True for the key types whose pickle bytes are canonical as they are:
   a lone int, float, str, bytes or bool pickles the same way whatever
   its identity. */
static int
is_atomic_key(PyObject *key)
{
    PyTypeObject *type = Py_TYPE(key);

    return type == &PyUnicode_Type || type == &PyLong_Type ||
           type == &PyBytes_Type || type == &PyFloat_Type ||
           type == &PyBool_Type;
}

static PyObject *
pickle_dumps(StoreObject *self, PyObject *obj)
{
    PyObject *args[2] = {obj, self->pickle_protocol};

    return PyObject_Vectorcall(self->pickle_dumps, args, 2, NULL);
}

static PyObject *
zlib_call(PyObject *function, const char *data, Py_ssize_t size)
{
    PyObject *view;
    PyObject *result;

    view = PyMemoryView_FromMemory((char *)data, size, PyBUF_READ);
    if (view == NULL) {
        return NULL;
    }
    result = PyObject_CallOneArg(function, view);
    Py_DECREF(view);
    return result;
}

static int
check_not_none(PyObject *obj, const char *what)
{
    if (obj == Py_None) {
        PyErr_Format(PyExc_TypeError,
                     "ShareDB cannot use <class 'NoneType'> objects as %s",
                     what);
        return -1;
    }
    return 0;
}

/* Pack key into out.  Raises TypeError for None or a key that cannot be
   packed, and KeyTooLongError past LMDB's maximum key size. */
static int
pack_key(StoreObject *self, EnvObject *env, PyObject *key, packed *out)
{
    int max_size;

    if (check_not_none(key, "keys") < 0) {
        return -1;
    }
    if (self->serial == SHAREDB_SERIAL_MSGPACK) {
        if (sharedb_msgpack_pack(self->state, key, &out->buffer,
                                 SHAREDB_PACK_CANONICAL) < 0) {
            reraise_given(PyExc_TypeError, "key", key);
            return -1;
        }
        packed_use_buffer(out);
    }
    else {
        PyObject *bytes;

        if (is_atomic_key(key)) {
            bytes = pickle_dumps(self, key);
        }
        else {
            bytes = PyObject_CallOneArg(self->pickle_key, key);
        }
        if (bytes == NULL) {
            reraise_given(PyExc_TypeError, "key", key);
            return -1;
        }
        Py_CLEAR(out->legacy);
        if (PyTuple_Check(bytes) && PyTuple_GET_SIZE(bytes) == 2 &&
            PyBytes_Check(PyTuple_GET_ITEM(bytes, 1))) {
            /* (canonical bytes, bytes ShareDB 2.0.2 may have written) */
            PyObject *pair = bytes;

            out->legacy = Py_NewRef(PyTuple_GET_ITEM(pair, 1));
            bytes = Py_NewRef(PyTuple_GET_ITEM(pair, 0));
            Py_DECREF(pair);
        }
        if (packed_use_bytes(out, bytes) < 0) {
            return -1;
        }
    }

    max_size = env->max_key_size;
    if (out->size > max_size) {
        PyObject *text = describe(key);

        if (text != NULL) {
            PyErr_Format(self->state->key_too_long_error,
                         "key=%U of %R packs to %zd bytes, more than the "
                         "maximum key size of %d bytes", text,
                         (PyObject *)Py_TYPE(key), out->size, max_size);
            Py_DECREF(text);
        }
        return -1;
    }
    return 0;
}

/* True if value holds only builtin types that pickle reads back without
   importing anything, so a round trip cannot fail.  Deep or large
   values are checked by a real round trip instead. */
static int
is_plain_value(PyObject *value, int depth, Py_ssize_t *budget)
{
    PyTypeObject *type = Py_TYPE(value);

    if (--*budget < 0 || depth > 50) {
        return 0;
    }
    if (value == Py_None || type == &PyBool_Type || type == &PyLong_Type ||
        type == &PyFloat_Type || type == &PyUnicode_Type ||
        type == &PyBytes_Type || type == &PyByteArray_Type ||
        type == &PyComplex_Type) {
        return 1;
    }
    if (type == &PyList_Type || type == &PyTuple_Type) {
        Py_ssize_t size = PySequence_Fast_GET_SIZE(value);

        for (Py_ssize_t i = 0; i < size; i++) {
            PyObject *item = PySequence_Fast_GET_ITEM(value, i);

            if (!is_plain_value(item, depth + 1, budget)) {
                return 0;
            }
            /* A list can shrink while the walk runs other code; none
               runs here, but stay within its current size anyway. */
            if (i + 1 >= PySequence_Fast_GET_SIZE(value)) {
                break;
            }
        }
        return 1;
    }
    if (type == &PyDict_Type) {
        Py_ssize_t position = 0;
        PyObject *key;
        PyObject *item;

        while (PyDict_Next(value, &position, &key, &item)) {
            if (!is_plain_value(key, depth + 1, budget) ||
                !is_plain_value(item, depth + 1, budget)) {
                return 0;
            }
        }
        return 1;
    }
    /* Sets and everything else get the round trip. */
    return 0;
}

/* Pack value into out, compressed if the store compresses.  A pickle
   that might not load back (it refers to classes or functions) is
   loaded once here, so that it fails now rather than at read time. */
static int
pack_value(StoreObject *self, PyObject *value, packed *out)
{
    if (check_not_none(value, "values") < 0) {
        return -1;
    }
    if (self->serial == SHAREDB_SERIAL_MSGPACK) {
        if (sharedb_msgpack_pack(self->state, value, &out->buffer, 0) < 0) {
            goto failed;
        }
        packed_use_buffer(out);
    }
    else {
        PyObject *bytes = pickle_dumps(self, value);
        Py_ssize_t budget = 10000;

        if (bytes == NULL) {
            goto failed;
        }
        if (packed_use_bytes(out, bytes) < 0) {
            return -1;
        }
        if (!is_plain_value(value, 0, &budget)) {
            PyObject *copy = PyObject_CallOneArg(self->pickle_loads,
                                                 out->owner);

            if (copy == NULL) {
                PyObject *type;
                PyObject *error;
                PyObject *traceback;

                PyErr_Fetch(&type, &error, &traceback);
                PyErr_NormalizeException(&type, &error, &traceback);
                PyErr_Format(PyExc_TypeError,
                             "the pickle of this value cannot be loaded "
                             "back (%S), so it is not stored", error);
                Py_XDECREF(type);
                Py_XDECREF(error);
                Py_XDECREF(traceback);
                goto failed;
            }
            Py_DECREF(copy);
        }
    }

    if (self->compress) {
        PyObject *compressed = zlib_call(self->zlib_compress, out->data,
                                         out->size);

        if (compressed == NULL || packed_use_bytes(out, compressed) < 0) {
            goto failed;
        }
    }
    return 0;

failed:
    reraise_given(PyExc_TypeError, "value", value);
    return -1;
}

/* ------------------------------------------------------------------ */
/* Decoding                                                            */

static PyObject *
decode_bytes(StoreObject *self, const char *data, Py_ssize_t size)
{
    if (self->serial == SHAREDB_SERIAL_MSGPACK) {
        return sharedb_msgpack_unpack(self->state, data, size);
    }
    else {
        PyObject *bytes = PyBytes_FromStringAndSize(data, size);
        PyObject *result;

        if (bytes == NULL) {
            return NULL;
        }
        result = PyObject_CallOneArg(self->pickle_loads, bytes);
        Py_DECREF(bytes);
        return result;
    }
}

/* Replace the current exception by a TypeError that shows the start of
   the stored bytes that failed to decode. */
static void
raise_decode_error(const char *what, const char *data, Py_ssize_t size)
{
    PyObject *type;
    PyObject *error;
    PyObject *traceback;
    PyObject *start;

    PyErr_Fetch(&type, &error, &traceback);
    PyErr_NormalizeException(&type, &error, &traceback);
    start = PyBytes_FromStringAndSize(data, size < 20 ? size : 20);
    if (start != NULL) {
        PyErr_Format(PyExc_TypeError,
                     "a stored %s of %zd bytes starting with %R cannot be "
                     "read: %S", what, size, start, error);
        Py_DECREF(start);
    }
    Py_XDECREF(type);
    Py_XDECREF(error);
    Py_XDECREF(traceback);
}

/* Decode a stored key.  data points into the map, so the caller keeps
   its transaction live until this returns. */
static PyObject *
decode_key(StoreObject *self, const MDB_val *val)
{
    PyObject *key = decode_bytes(self, (const char *)val->mv_data,
                                 (Py_ssize_t)val->mv_size);

    if (key == NULL) {
        raise_decode_error("key", (const char *)val->mv_data,
                           (Py_ssize_t)val->mv_size);
    }
    return key;
}

/* Decode a stored value, decompressing it first if needed. */
static PyObject *
decode_value(StoreObject *self, const MDB_val *val)
{
    const char *data = (const char *)val->mv_data;
    Py_ssize_t size = (Py_ssize_t)val->mv_size;
    PyObject *result;

    if (self->compress) {
        PyObject *plain = zlib_call(self->zlib_decompress, data, size);

        if (plain == NULL) {
            raise_decode_error("value", data, size);
            return NULL;
        }
        result = decode_bytes(self, PyBytes_AS_STRING(plain),
                              PyBytes_GET_SIZE(plain));
        Py_DECREF(plain);
    }
    else {
        result = decode_bytes(self, data, size);
    }
    if (result == NULL) {
        raise_decode_error("value", data, size);
    }
    return result;
}

/* ------------------------------------------------------------------ */
/* Write transactions                                                  */

/* Packed records of a batch, kept in one block of memory so that they
   can be written with the GIL released. */
typedef struct {
    size_t key_offset;
    size_t key_size;
    size_t value_offset;
    size_t value_size;
    size_t legacy_offset;       /* legacy bytes of a pickled key */
    size_t legacy_size;         /* 0 if it has none */
} batch_entry;

typedef struct {
    char *data;
    size_t size;
    size_t capacity;
    batch_entry *entries;
    size_t count;
    size_t entry_capacity;

    /* Indexes of entries in key order, without repeated keys: of equal
       keys only the last given is kept.  Set by batch_sort(). */
    size_t *order;
    size_t unique;
} batch;

static void
batch_free(batch *b)
{
    PyMem_RawFree(b->data);
    PyMem_RawFree(b->entries);
    PyMem_RawFree(b->order);
    memset(b, 0, sizeof(*b));
}

/* Order byte strings as LMDB orders keys: unsigned bytes, then length.
   Store keys are short, so a plain loop beats calling memcmp(). */
static int
compare_bytes(const void *left, size_t left_size, const void *right,
              size_t right_size)
{
    const unsigned char *a = (const unsigned char *)left;
    const unsigned char *b = (const unsigned char *)right;
    size_t common = left_size < right_size ? left_size : right_size;

    for (size_t i = 0; i < common; i++) {
        if (a[i] != b[i]) {
            return (int)a[i] - (int)b[i];
        }
    }
    if (left_size == right_size) {
        return 0;
    }
    return left_size < right_size ? -1 : 1;
}

static int
compare_entries(const batch *b, size_t left, size_t right)
{
    const batch_entry *a = &b->entries[left];
    const batch_entry *z = &b->entries[right];

    return compare_bytes(b->data + a->key_offset, a->key_size,
                         b->data + z->key_offset, z->key_size);
}

/* An entry to sort: the first 8 bytes of its key as a big-endian number,
   so that most comparisons are one integer comparison on a compact
   array, and its index. */
typedef struct {
    uint64_t prefix;
    size_t index;
} sort_item;

static inline uint64_t
key_prefix(const unsigned char *key, size_t size)
{
    uint64_t prefix = 0;

    for (size_t i = 0; i < 8; i++) {
        prefix = (prefix << 8) | (i < size ? key[i] : 0);
    }
    return prefix;
}

static inline int
compare_items(const batch *b, const sort_item *left, const sort_item *right)
{
    if (left->prefix != right->prefix) {
        return left->prefix < right->prefix ? -1 : 1;
    }
    return compare_entries(b, left->index, right->index);
}

/* Sort items by prefix with an LSD radix sort, a byte at a time from the
   last, skipping bytes that are equal in every item.  It is stable, so
   items with equal prefixes keep their order.  spare has room for count
   items; returns the array that holds the result. */
static sort_item *
radix_sort(sort_item *items, sort_item *spare, size_t count)
{
    size_t histogram[8][256];

    memset(histogram, 0, sizeof(histogram));
    for (size_t i = 0; i < count; i++) {
        uint64_t prefix = items[i].prefix;

        for (int byte = 0; byte < 8; byte++) {
            histogram[byte][(prefix >> (8 * byte)) & 0xff]++;
        }
    }
    for (int byte = 0; byte < 8; byte++) {
        size_t *counts = histogram[byte];
        size_t offset = 0;
        sort_item *swap;

        if (counts[(items[0].prefix >> (8 * byte)) & 0xff] == count) {
            continue;
        }
        for (int digit = 0; digit < 256; digit++) {
            size_t number = counts[digit];

            counts[digit] = offset;
            offset += number;
        }
        for (size_t i = 0; i < count; i++) {
            size_t digit = (items[i].prefix >> (8 * byte)) & 0xff;

            spare[counts[digit]++] = items[i];
        }
        swap = items;
        items = spare;
        spare = swap;
    }
    return items;
}

/* Finish the order of items sorted by prefix: keys longer than 8 bytes
   can share one, so each run of equal prefixes is sorted by the whole
   key, keeping the order of equal keys.  The runs are short, so an
   insertion sort does.
   NOTE: pickled keys of one length share their first 8 bytes, so a
   batch of pickled ints is one run and this sort is quadratic in it
   (about 18 s for 80,000 keys); a merge sort of long runs would fix it. */
static void
sort_equal_prefixes(const batch *b, sort_item *items, size_t count)
{
    for (size_t i = 1; i < count; i++) {
        sort_item item = items[i];
        size_t j = i;

        while (j > 0 && items[j - 1].prefix == item.prefix &&
               compare_entries(b, items[j - 1].index, item.index) > 0) {
            items[j] = items[j - 1];
            j--;
        }
        items[j] = item;
    }
}

/* Sort the entries of b by key, keeping the order of equal keys, and if
   dedupe is set drop all but the last of equal keys.  Writing records in
   key order
   lets LMDB find each one from the previous one's page instead of from
   the root, and append to the end of the tree when the keys are new.
   Touches no Python object, so it runs with the GIL released.  Returns
   0, or ENOMEM. */
static int
batch_sort(batch *b, int dedupe)
{
    size_t count = b->count;
    size_t slots = count ? count : 1;
    sort_item *items = PyMem_RawMalloc(slots * sizeof(sort_item));
    sort_item *spare = PyMem_RawMalloc(slots * sizeof(sort_item));
    sort_item *sorted;
    size_t *order = PyMem_RawMalloc(slots * sizeof(size_t));
    size_t kept = 0;
    int in_order = 1;

    if (items == NULL || spare == NULL || order == NULL) {
        PyMem_RawFree(items);
        PyMem_RawFree(spare);
        PyMem_RawFree(order);
        return ENOMEM;
    }
    for (size_t i = 0; i < count; i++) {
        const batch_entry *entry = &b->entries[i];

        items[i].prefix = key_prefix(
            (const unsigned char *)b->data + entry->key_offset,
            entry->key_size);
        items[i].index = i;
        if (i > 0 && in_order &&
            compare_items(b, &items[i - 1], &items[i]) > 0) {
            in_order = 0;
        }
    }
    sorted = items;
    if (!in_order) {
        sorted = radix_sort(items, spare, count);
        sort_equal_prefixes(b, sorted, count);
    }

    /* Equal keys are adjacent, in the order given: keep the last. */
    for (size_t i = 0; i < count; i++) {
        if (dedupe && i + 1 < count &&
            compare_items(b, &sorted[i], &sorted[i + 1]) == 0) {
            continue;
        }
        order[kept++] = sorted[i].index;
    }
    PyMem_RawFree(items);
    PyMem_RawFree(spare);
    b->order = order;
    b->unique = kept;
    return 0;
}

/* Append bytes to the block and return their offset, or (size_t)-1
   with MemoryError set. */
static size_t
batch_append(batch *b, const char *data, Py_ssize_t size)
{
    size_t offset = b->size;

    if ((size_t)size > b->capacity - b->size) {
        size_t capacity = b->capacity ? b->capacity : 4096;
        char *grown;

        while ((size_t)size > capacity - b->size) {
            if (capacity > ((size_t)PY_SSIZE_T_MAX) / 2) {
                PyErr_NoMemory();
                return (size_t)-1;
            }
            capacity *= 2;
        }
        grown = PyMem_RawRealloc(b->data, capacity);
        if (grown == NULL) {
            PyErr_NoMemory();
            return (size_t)-1;
        }
        b->data = grown;
        b->capacity = capacity;
    }
    memcpy(b->data + offset, data, (size_t)size);
    b->size += (size_t)size;
    return offset;
}

static int
batch_add(batch *b, const packed *key, const packed *value)
{
    batch_entry *entry;

    if (b->count == b->entry_capacity) {
        size_t capacity = b->entry_capacity ? b->entry_capacity * 2 : 256;
        batch_entry *grown;

        if (capacity > ((size_t)PY_SSIZE_T_MAX) / sizeof(batch_entry)) {
            PyErr_NoMemory();
            return -1;
        }
        grown = PyMem_RawRealloc(b->entries, capacity * sizeof(*grown));
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        b->entries = grown;
        b->entry_capacity = capacity;
    }
    entry = &b->entries[b->count];
    entry->key_offset = batch_append(b, key->data, key->size);
    if (entry->key_offset == (size_t)-1) {
        return -1;
    }
    entry->key_size = (size_t)key->size;
    entry->value_offset = 0;
    entry->value_size = 0;
    entry->legacy_offset = 0;
    entry->legacy_size = 0;
    if (key->legacy != NULL) {
        entry->legacy_offset = batch_append(
            b, PyBytes_AS_STRING(key->legacy), PyBytes_GET_SIZE(key->legacy));
        if (entry->legacy_offset == (size_t)-1) {
            return -1;
        }
        entry->legacy_size = (size_t)PyBytes_GET_SIZE(key->legacy);
    }
    if (value != NULL) {
        entry->value_offset = batch_append(b, value->data, value->size);
        if (entry->value_offset == (size_t)-1) {
            return -1;
        }
        entry->value_size = (size_t)value->size;
    }
    b->count++;
    return 0;
}

/* One write transaction's work, run with the GIL released.  run()
   returns an LMDB code and sets changed if the transaction must be
   committed; it touches no Python object. */
typedef struct write_op write_op;
struct write_op {
    int (*run)(write_op *op, MDB_txn *txn, MDB_dbi dbi);
    const char *call;           /* LMDB call named in error messages */
    int frees_space;            /* deletes only, so it may use the room a
                                   capped store keeps for deletes */
    const packed *key;
    const packed *value;
    const batch *records;
    size_t first;               /* range of records to write */
    size_t end;
    int changed;
    Py_ssize_t writes;          /* records written or deleted */
    int found;                  /* the key was present */
    MDB_val found_key;          /* copies from PyMem_RawMalloc */
    MDB_val found_value;
};

static void
write_op_clear_found(write_op *op)
{
    PyMem_RawFree(op->found_key.mv_data);
    PyMem_RawFree(op->found_value.mv_data);
    op->found_key.mv_data = NULL;
    op->found_value.mv_data = NULL;
    op->found_key.mv_size = 0;
    op->found_value.mv_size = 0;
    op->found = 0;
}

/* Copy a record out of the map without the GIL.  Returns ENOMEM on
   failure. */
static int
copy_val(MDB_val *copy, const MDB_val *val)
{
    copy->mv_data = PyMem_RawMalloc(val->mv_size ? val->mv_size : 1);
    if (copy->mv_data == NULL) {
        return ENOMEM;
    }
    memcpy(copy->mv_data, val->mv_data, val->mv_size);
    copy->mv_size = val->mv_size;
    return 0;
}

static inline MDB_val
packed_val(const packed *p)
{
    MDB_val val;

    val.mv_size = (size_t)p->size;
    val.mv_data = (void *)p->data;
    return val;
}

/* Delete the record under the legacy bytes of key, if any: it becomes
   the record under the canonical bytes.  Returns an LMDB code. */
static int
delete_legacy(const packed *key, MDB_txn *txn, MDB_dbi dbi, int *deleted)
{
    MDB_val legacy;
    int rc;

    *deleted = 0;
    if (key->legacy == NULL) {
        return 0;
    }
    legacy = packed_legacy_val(key);
    rc = mdb_del(txn, dbi, &legacy, NULL);
    if (rc == MDB_NOTFOUND) {
        return 0;
    }
    *deleted = rc == 0;
    return rc;
}

static int
run_put(write_op *op, MDB_txn *txn, MDB_dbi dbi)
{
    MDB_val key = packed_val(op->key);
    MDB_val value = packed_val(op->value);
    int deleted;
    int rc = delete_legacy(op->key, txn, dbi, &deleted);

    if (rc == 0) {
        rc = mdb_put(txn, dbi, &key, &value, 0);
    }
    op->changed = rc == 0;
    op->writes = 1;
    return rc;
}

static int
run_delete(write_op *op, MDB_txn *txn, MDB_dbi dbi)
{
    MDB_val key = packed_val(op->key);
    int deleted;
    int rc = mdb_del(txn, dbi, &key, NULL);

    if (rc == MDB_NOTFOUND) {
        rc = 0;
    }
    else if (rc == 0) {
        op->changed = 1;
    }
    if (rc == 0) {
        rc = delete_legacy(op->key, txn, dbi, &deleted);
        op->changed |= deleted;
    }
    op->writes = op->changed;
    return rc;
}

static int
run_pop(write_op *op, MDB_txn *txn, MDB_dbi dbi)
{
    MDB_val key = packed_val(op->key);
    MDB_val value;
    int rc = mdb_get(txn, dbi, &key, &value);

    if (rc == MDB_NOTFOUND && op->key->legacy != NULL) {
        key = packed_legacy_val(op->key);
        rc = mdb_get(txn, dbi, &key, &value);
    }
    if (rc == MDB_NOTFOUND) {
        return 0;
    }
    if (rc == 0) {
        rc = copy_val(&op->found_value, &value);
    }
    if (rc == 0) {
        op->found = 1;
        rc = mdb_del(txn, dbi, &key, NULL);
    }
    op->changed = rc == 0;
    op->writes = 1;
    return rc;
}

static int
run_setdefault(write_op *op, MDB_txn *txn, MDB_dbi dbi)
{
    MDB_val key = packed_val(op->key);
    MDB_val value;
    int rc = mdb_get(txn, dbi, &key, &value);

    if (rc == MDB_NOTFOUND && op->key->legacy != NULL) {
        MDB_val legacy = packed_legacy_val(op->key);

        rc = mdb_get(txn, dbi, &legacy, &value);
    }
    if (rc == 0) {
        op->found = 1;
        return copy_val(&op->found_value, &value);
    }
    if (rc != MDB_NOTFOUND) {
        return rc;
    }
    value = packed_val(op->value);
    rc = mdb_put(txn, dbi, &key, &value, 0);
    op->changed = rc == 0;
    op->writes = 1;
    return rc;
}

static int
run_pop_first(write_op *op, MDB_txn *txn, MDB_dbi dbi)
{
    MDB_cursor *cursor;
    MDB_val key;
    MDB_val value;
    int rc = mdb_cursor_open(txn, dbi, &cursor);

    if (rc != 0) {
        return rc;
    }
    rc = mdb_cursor_get(cursor, &key, &value, MDB_FIRST);
    if (rc == MDB_NOTFOUND) {
        mdb_cursor_close(cursor);
        return 0;
    }
    if (rc == 0) {
        rc = copy_val(&op->found_key, &key);
    }
    if (rc == 0) {
        rc = copy_val(&op->found_value, &value);
    }
    if (rc == 0) {
        op->found = 1;
        rc = mdb_cursor_del(cursor, 0);
    }
    mdb_cursor_close(cursor);
    op->changed = rc == 0;
    op->writes = 1;
    return rc;
}

static int
run_clear(write_op *op, MDB_txn *txn, MDB_dbi dbi)
{
    int rc = mdb_drop(txn, dbi, 0);

    op->changed = rc == 0;
    return rc;
}

/* Delete up to op->end - op->first records from the start of the
   store, for clear() in parts when one transaction cannot free them all. */
static int
run_delete_first(write_op *op, MDB_txn *txn, MDB_dbi dbi)
{
    size_t count = op->end - op->first;
    MDB_cursor *cursor;
    MDB_val key;
    MDB_val value;
    int rc = mdb_cursor_open(txn, dbi, &cursor);

    op->writes = 0;
    if (rc != 0) {
        return rc;
    }
    while (rc == 0 && (size_t)op->writes < count) {
        rc = mdb_cursor_get(cursor, &key, &value, MDB_FIRST);
        if (rc == 0) {
            rc = mdb_cursor_del(cursor, 0);
        }
        if (rc == 0) {
            op->writes++;
        }
    }
    mdb_cursor_close(cursor);
    if (rc == MDB_NOTFOUND) {
        rc = 0;
    }
    op->changed = rc == 0 && op->writes > 0;
    return rc;
}

static inline MDB_val
entry_key(const batch *records, size_t index)
{
    const batch_entry *entry = &records->entries[records->order[index]];
    MDB_val key;

    key.mv_size = entry->key_size;
    key.mv_data = records->data + entry->key_offset;
    return key;
}

static inline MDB_val
entry_value(const batch *records, size_t index)
{
    const batch_entry *entry = &records->entries[records->order[index]];
    MDB_val value;

    value.mv_size = entry->value_size;
    value.mv_data = records->data + entry->value_offset;
    return value;
}

/* Delete the records under the legacy bytes of the keys op->first to
   op->end, adding them to op->writes.  Returns an LMDB code. */
static int
delete_legacy_batch(write_op *op, MDB_txn *txn, MDB_dbi dbi)
{
    const batch *records = op->records;

    for (size_t i = op->first; i < op->end; i++) {
        const batch_entry *entry = &records->entries[records->order[i]];
        MDB_val legacy;
        int rc;

        if (entry->legacy_size == 0) {
            continue;
        }
        legacy.mv_size = entry->legacy_size;
        legacy.mv_data = records->data + entry->legacy_offset;
        rc = mdb_del(txn, dbi, &legacy, NULL);
        if (rc == MDB_NOTFOUND) {
            continue;
        }
        if (rc != 0) {
            return rc;
        }
        op->writes++;
    }
    return 0;
}

/* Write the records op->first to op->end, in key order, through one
   cursor; when every key comes after the last one stored, append them,
   which skips the searches and fills the pages. */
static int
run_put_batch(write_op *op, MDB_txn *txn, MDB_dbi dbi)
{
    const batch *records = op->records;
    MDB_cursor *cursor;
    MDB_val last_key;
    MDB_val last_value;
    unsigned int flags = 0;
    int rc;

    if (op->first >= op->end) {
        return 0;
    }
    /* Records under legacy bytes go first, and their keys with them. */
    rc = delete_legacy_batch(op, txn, dbi);
    op->writes = 0;
    if (rc != 0) {
        return rc;
    }
    rc = mdb_cursor_open(txn, dbi, &cursor);
    if (rc != 0) {
        return rc;
    }
    rc = mdb_cursor_get(cursor, &last_key, &last_value, MDB_LAST);
    if (rc == MDB_NOTFOUND) {
        flags = MDB_APPEND;
        rc = 0;
    }
    else if (rc == 0) {
        MDB_val first = entry_key(records, op->first);

        if (compare_bytes(first.mv_data, first.mv_size, last_key.mv_data,
                          last_key.mv_size) > 0) {
            flags = MDB_APPEND;
        }
    }
    for (size_t i = op->first; rc == 0 && i < op->end; i++) {
        MDB_val key = entry_key(records, i);
        MDB_val value = entry_value(records, i);

        rc = mdb_cursor_put(cursor, &key, &value, flags);
    }
    mdb_cursor_close(cursor);
    if (rc != 0) {
        return rc;
    }
    op->changed = 1;
    op->writes = (Py_ssize_t)(op->end - op->first);
    return 0;
}

/* Delete the records op->first to op->end, in key order, through one
   cursor. */
static int
run_delete_batch(write_op *op, MDB_txn *txn, MDB_dbi dbi)
{
    const batch *records = op->records;
    MDB_cursor *cursor;
    int rc;

    if (op->first >= op->end) {
        return 0;
    }
    rc = mdb_cursor_open(txn, dbi, &cursor);
    if (rc != 0) {
        return rc;
    }
    for (size_t i = op->first; i < op->end; i++) {
        MDB_val key = entry_key(records, i);
        MDB_val value;

        rc = mdb_cursor_get(cursor, &key, &value, MDB_SET);
        if (rc == MDB_NOTFOUND) {
            rc = 0;
            continue;
        }
        if (rc == 0) {
            rc = mdb_cursor_del(cursor, 0);
        }
        if (rc != 0) {
            break;
        }
        op->writes++;
    }
    mdb_cursor_close(cursor);
    if (rc == 0) {
        rc = delete_legacy_batch(op, txn, dbi);
    }
    if (rc != 0) {
        return rc;
    }
    op->changed = op->writes > 0;
    return 0;
}

/* A key no store record can have: msgpack keys are one whole msgpack
   object, which b"\x00" followed by more bytes is not, and pickle keys
   start with b"\x80". */
static const char ADVANCE_KEY[] = "\0sharedb:advance";

/* Change nothing, in a transaction that still commits: LMDB reuses the
   pages a transaction frees only two commits later, so after a large
   delete a capped store may need one more commit before new records
   fit. */
static int
run_advance(write_op *op, MDB_txn *txn, MDB_dbi dbi)
{
    MDB_val key;
    MDB_val value;
    MDB_val copy;
    int rc;

    key.mv_size = sizeof(ADVANCE_KEY) - 1;
    key.mv_data = (void *)ADVANCE_KEY;
    rc = mdb_get(txn, dbi, &key, &value);
    if (rc == 0) {
        /* Written by something else through the binding: keep it. */
        rc = copy_val(&copy, &value);
        if (rc == 0) {
            rc = mdb_put(txn, dbi, &key, &copy, 0);
            PyMem_RawFree(copy.mv_data);
        }
    }
    else if (rc == MDB_NOTFOUND) {
        value.mv_size = 0;
        value.mv_data = (void *)"";
        rc = mdb_put(txn, dbi, &key, &value, 0);
        if (rc == 0) {
            rc = mdb_del(txn, dbi, &key, NULL);
        }
    }
    op->changed = rc == 0;
    return rc;
}

static Py_ssize_t store_len(StoreObject *self);

/* Raise MapFullError for op, which did not fit below the cap of env.
   Deleting records is suggested only where it can make room: not for a
   write that deletes, nor one larger than the cap, nor on an empty
   store. */
static PyObject *
raise_map_full(StoreObject *self, EnvObject *env, const write_op *op)
{
    PyObject *map_full_error =
        self->state->lmdb_errors[MDB_MAP_FULL - MDB_KEYEXIST];
    size_t limit = env->insert_limit * env->page_size;
    size_t size = 0;
    Py_ssize_t records = -1;
    PyObject *text;

    if (op->value != NULL) {
        size = (size_t)op->key->size + (size_t)op->value->size;
    }
    else if (op->records != NULL) {
        size = op->records->size;
    }
    if (!op->frees_space) {
        records = store_len(self);
        if (records < 0) {
            /* Only chooses the advice; the full map is the error. */
            PyErr_Clear();
        }
    }
    text = PyObject_Repr((PyObject *)self);
    if (text == NULL) {
        return NULL;
    }
    if (op->frees_space) {
        PyErr_Format(map_full_error,
                     "%U is full: a delete needs free pages too, because "
                     "LMDB copies each page it changes, and the room kept "
                     "below map_size for deletes is used up; reopen the "
                     "store with a larger map_size", text);
    }
    else if (limit > 0 && size > limit) {
        PyErr_Format(map_full_error,
                     "%U is full: the write of %zu bytes is larger than "
                     "the %zu bytes its map size limit leaves for records, "
                     "so deleting records cannot make room; reopen the "
                     "store with a larger map_size", text, size, limit);
    }
    else if (records == 0) {
        PyErr_Format(map_full_error,
                     "%U is full: the write needs more than its map size "
                     "limit even with no records stored; reopen the store "
                     "with a larger map_size", text);
    }
    else {
        PyErr_Format(map_full_error,
                     "%U is full: the write needs more than its map size "
                     "limit; delete records, or reopen the store with a "
                     "larger map_size", text);
    }
    Py_DECREF(text);
    return NULL;
}

/* Flush to disk if sync_threshold writes accumulated. */
static int
store_count_writes(StoreObject *self, EnvObject *env, Py_ssize_t writes)
{
    MDB_env *handle = env->env;
    int rc;

    self->pending_writes += writes;
    if (self->sync_threshold <= 0 ||
        self->pending_writes < self->sync_threshold) {
        return 0;
    }
    self->pending_writes = 0;
    if (env->flags & MDB_RDONLY) {
        return 0;
    }
    sharedb_env_pin(env);
    Py_BEGIN_ALLOW_THREADS
    rc = mdb_env_sync(handle, 1);
    Py_END_ALLOW_THREADS
    sharedb_env_unpin(env);
    if (rc != 0) {
        sharedb_raise_lmdb(self->state, rc, "mdb_env_sync", env->path);
        return -1;
    }
    return 0;
}

/* Run op in one write transaction.  Returns an LMDB code. */
static int
store_run_write(EnvObject *env, write_op *op)
{
    unsigned long thread = PyThread_get_thread_ident();
    size_t limit = op->frees_space ? env->delete_limit : env->insert_limit;
    MDB_txn *txn = NULL;
    int rc;

    /* Everything in this region is C memory the GIL does not guard:
       packed bytes owned by the caller and the pinned environment.
       Beginning waits for the writer lock of all processes; the page
       limit is set while the lock is held, since only the writer's page
       allocator reads it. */
    sharedb_env_pin(env);
    Py_BEGIN_ALLOW_THREADS
    rc = sharedb_env_write_begin_nogil(env, NULL, thread, &txn);
    if (rc == 0) {
        mdb_env_set_alloclimit(env->env, limit);
        /* Writes that may add pages to an uncapped store leave room at
           the end of the data file for deletes, which a full disk would
           otherwise stop too. */
        mdb_env_set_growreserve(env->env, !op->frees_space && limit == 0);
        rc = op->run(op, txn, env->main_dbi);
        mdb_env_set_growreserve(env->env, 0);
        if (rc == 0 && op->changed) {
            rc = sharedb_env_write_end_nogil(env, txn, 1, 1);
        }
        else {
            sharedb_env_write_end_nogil(env, txn, 1, 0);
        }
    }
    Py_END_ALLOW_THREADS
    sharedb_env_unpin(env);
    return rc;
}

/* Commit a transaction that changes nothing.  Returns an LMDB code. */
static int
store_advance(EnvObject *env)
{
    write_op op;

    memset(&op, 0, sizeof(op));
    op.run = run_advance;
    op.frees_space = 1;
    return store_run_write(env, &op);
}

/* Ask the Python side to read the saved map size again, in case another
   process raised the cap.  Returns 1 if the limits grew, 0 if not. */
static int
store_cap_raised(StoreObject *self, EnvObject *env)
{
    size_t before = env->insert_limit;
    PyObject *result;

    if (before == 0) {
        return 0;
    }
    result = PyObject_CallMethod((PyObject *)self, "_reload_map_size", NULL);
    if (result == NULL) {
        PyErr_Clear();
        return 0;
    }
    Py_DECREF(result);
    return env->insert_limit > before;
}

/* Run op in a write transaction, retrying when LMDB asks for a larger
   map or a capped store needs one more commit to reuse freed pages.
   Returns an LMDB code, with no exception set. */
static int
store_try_write(StoreObject *self, EnvObject *env, write_op *op,
                int *remap_error)
{
    int advanced = 0;
    int reloaded = 0;

    *remap_error = 0;
    for (int attempt = 0; attempt < MAX_REMAPS; attempt++) {
        int rc;

        op->changed = 0;
        op->writes = 0;
        write_op_clear_found(op);
        rc = store_run_write(env, op);
        if (rc == 0) {
            return 0;
        }
        write_op_clear_found(op);
        if (rc == MDB_MAP_RESIZED || (rc == MDB_MAP_FULL && env->map_grow)) {
            if (sharedb_env_remap(env, rc) < 0) {
                *remap_error = 1;
                return rc;
            }
            continue;
        }
        /* A full disk (ENOSPC) gets the same retry as a full map: pages
           freed by the last commit may be all the room there is. */
        if (rc != MDB_MAP_FULL && rc != ENOSPC) {
            return rc;
        }
        if (!advanced) {
            advanced = 1;
            if (store_advance(env) == 0) {
                continue;
            }
        }
        if (rc == MDB_MAP_FULL && !reloaded) {
            reloaded = 1;
            if (store_cap_raised(self, env)) {
                continue;
            }
        }
        return rc;
    }
    return MDB_MAP_FULL;
}

/* Delete op's records in ever smaller transactions when they do not fit
   in one: a capped store that is full has only the room it keeps for
   deletes.  Returns an LMDB code. */
static int
store_delete_in_parts(StoreObject *self, EnvObject *env, write_op *op)
{
    size_t end = op->end;
    size_t part = (op->end - op->first + 1) / 2;
    Py_ssize_t deleted = 0;
    int remap_error;
    int rc = 0;

    while (op->first < end) {
        op->end = op->first + part < end ? op->first + part : end;
        rc = store_try_write(self, env, op, &remap_error);
        if ((rc == MDB_MAP_FULL || rc == ENOSPC) && part > 1) {
            part /= 2;
            continue;
        }
        if (rc != 0) {
            break;
        }
        deleted += op->writes;
        op->first = op->end;
    }
    op->writes = deleted;
    op->changed = deleted > 0;
    return rc;
}

/* Empty the store in several transactions, from its first key on, when
   dropping every page at once needs more room than a full map or a full
   disk has left.  Returns an LMDB code. */
static int
store_clear_in_parts(StoreObject *self, EnvObject *env, write_op *op,
                     int *remap_error)
{
    size_t part = 1 << 14;
    Py_ssize_t deleted = 0;
    int rc;

    op->run = run_delete_first;
    op->call = "mdb_cursor_del";
    for (;;) {
        op->first = 0;
        op->end = part;
        rc = store_try_write(self, env, op, remap_error);
        if ((rc == MDB_MAP_FULL || rc == ENOSPC) && part > 1) {
            part /= 2;
            continue;
        }
        if (rc != 0) {
            break;
        }
        deleted += op->writes;
        if ((size_t)op->writes < part) {
            break;
        }
        if (part < (1 << 20)) {
            part *= 2;
        }
    }
    op->writes = deleted;
    op->changed = deleted > 0;
    return rc;
}

/* Run op in a write transaction, resizing the map and retrying when
   LMDB asks for it.  Returns -1 with an exception set on failure. */
static int
store_write(StoreObject *self, EnvObject *env, write_op *op)
{
    int remap_error;
    int rc;

    if (sharedb_env_check_writable(env) < 0) {
        store_reword_closed(self, env);
        return -1;
    }
    rc = store_try_write(self, env, op, &remap_error);
    if ((rc == MDB_MAP_FULL || rc == ENOSPC) && op->records != NULL &&
        op->frees_space && op->end - op->first > 1) {
        /* NOTE: a batch delete that does not fit in the room of a full
           capped store, or of a full disk, is split into several
           transactions; a failure midway leaves the parts before it
           deleted. */
        rc = store_delete_in_parts(self, env, op);
    }
    else if ((rc == MDB_MAP_FULL || rc == ENOSPC) && op->run == run_clear) {
        /* NOTE: clear() then deletes in several transactions.  A failure
           midway leaves the first keys deleted and the rest in place. */
        rc = store_clear_in_parts(self, env, op, &remap_error);
    }
    if (rc == 0) {
        if (!op->changed) {
            op->writes = 0;
        }
        return store_count_writes(self, env, op->writes);
    }
    if (remap_error) {
        store_reword_closed(self, env);
        return -1;
    }
    if (rc == MDB_MAP_FULL) {
        raise_map_full(self, env, op);
    }
    else if (sharedb_env_check(env) == 0) {
        sharedb_raise_lmdb(self->state, rc, op->call, env->path);
    }
    else {
        store_reword_closed(self, env);
    }
    return -1;
}

static void
write_op_init(write_op *op, int (*run)(write_op *, MDB_txn *, MDB_dbi),
              const char *call)
{
    memset(op, 0, sizeof(*op));
    op->run = run;
    op->call = call;
}

/* ------------------------------------------------------------------ */
/* Reading single keys                                                 */

/* Look key up.  On success *found says whether it is present and, if
   result is not NULL, *result holds the decoded value.  Returns -1
   with an exception set on failure. */
static int
store_lookup(StoreObject *self, PyObject *key, int *found,
             PyObject **result)
{
    EnvObject *env;
    MDB_txn *txn;
    packed packed_key;
    MDB_val key_val;
    MDB_val value;
    int status = -1;
    int rc;

    env = store_env(self);
    if (env == NULL) {
        return -1;
    }
    packed_init(&packed_key);
    if (pack_key(self, env, key, &packed_key) < 0) {
        goto done;
    }

    /* The single lookup keeps the GIL: the page is usually in memory,
       and releasing and taking the GIL back costs more than mdb_get(). */
    txn = sharedb_env_read_begin(env);
    if (txn == NULL) {
        store_reword_closed(self, env);
        goto done;
    }
    key_val = packed_val(&packed_key);
    rc = mdb_get(txn, env->main_dbi, &key_val, &value);
    if (rc == MDB_NOTFOUND && packed_key.legacy != NULL) {
        key_val = packed_legacy_val(&packed_key);
        rc = mdb_get(txn, env->main_dbi, &key_val, &value);
    }
    if (rc == 0) {
        *found = 1;
        status = 0;
        if (result != NULL) {
            /* The live transaction keeps value mapped while decoding
               runs, whatever code the garbage collector runs. */
            *result = decode_value(self, &value);
            if (*result == NULL) {
                status = -1;
            }
        }
    }
    else if (rc == MDB_NOTFOUND) {
        *found = 0;
        status = 0;
    }
    else {
        sharedb_raise_lmdb(self->state, rc, "mdb_get", env->path);
    }
    sharedb_env_read_end(env, txn);

done:
    packed_release(&packed_key);
    Py_DECREF(env);
    return status;
}

static PyObject *
raise_absent(PyObject *key)
{
    PyObject *message = PyUnicode_FromFormat("key=%S of %R is absent", key,
                                             (PyObject *)Py_TYPE(key));

    if (message != NULL) {
        PyErr_SetObject(PyExc_KeyError, message);
        Py_DECREF(message);
    }
    return NULL;
}

PyDoc_STRVAR(store_get_doc,
"get($self, /, key, default=None)\n"
"--\n"
"\n"
"Return the value of key, or default if key is absent.\n"
"\n"
"Raises TypeError for None or a key that cannot be serialized,\n"
"KeyTooLongError for a key that packs to more than 511 bytes, and\n"
"RuntimeError on a closed store.");

static PyObject *
store_get(StoreObject *self, PyObject *const *args, Py_ssize_t nargs,
          PyObject *kwnames)
{
    static const char *const names[] = {"key", "default"};
    PyObject *values[2] = {NULL, Py_None};
    PyObject *result = NULL;
    int found;

    if (parse_args("get", args, nargs, kwnames, names, 2, 1, values) < 0) {
        return NULL;
    }
    if (store_lookup(self, values[0], &found, &result) < 0) {
        return NULL;
    }
    if (!found) {
        return Py_NewRef(values[1]);
    }
    return result;
}

static PyObject *
store_subscript(StoreObject *self, PyObject *key)
{
    PyObject *result = NULL;
    int found;

    if (store_lookup(self, key, &found, &result) < 0) {
        return NULL;
    }
    if (!found) {
        return raise_absent(key);
    }
    return result;
}

static int
store_contains(StoreObject *self, PyObject *key)
{
    int found;

    if (store_lookup(self, key, &found, NULL) < 0) {
        return -1;
    }
    return found;
}

PyDoc_STRVAR(store_has_key_doc,
"has_key($self, /, key)\n"
"--\n"
"\n"
"Return True if key is present.\n"
"\n"
"Raises the errors of get().");

static PyObject *
store_has_key(StoreObject *self, PyObject *const *args, Py_ssize_t nargs,
              PyObject *kwnames)
{
    static const char *const names[] = {"key"};
    PyObject *values[1] = {NULL};
    int found;

    if (parse_args("has_key", args, nargs, kwnames, names, 1, 1,
                   values) < 0) {
        return NULL;
    }
    found = store_contains(self, values[0]);

    if (found < 0) {
        return NULL;
    }
    return PyBool_FromLong(found);
}

PyDoc_STRVAR(store_length_doc,
"length($self, /)\n"
"--\n"
"\n"
"Return the number of records, read from LMDB's statistics.");

static Py_ssize_t
store_len(StoreObject *self)
{
    EnvObject *env = store_env(self);
    MDB_stat stat;
    MDB_txn *txn;
    int rc;

    if (env == NULL) {
        return -1;
    }
    txn = sharedb_env_read_begin(env);
    if (txn == NULL) {
        store_reword_closed(self, env);
        Py_DECREF(env);
        return -1;
    }
    rc = mdb_stat(txn, env->main_dbi, &stat);
    sharedb_env_read_end(env, txn);
    if (rc != 0) {
        sharedb_raise_lmdb(self->state, rc, "mdb_stat", env->path);
        Py_DECREF(env);
        return -1;
    }
    if (stat.ms_entries > (size_t)PY_SSIZE_T_MAX) {
        /* More records than pages could hold. */
        PyErr_Format(
            self->state->lmdb_errors[MDB_CORRUPTED - MDB_KEYEXIST],
            "the meta page of %R counts %zu records, more than the file "
            "can hold; the data file is damaged: sharedb.lmdb.verify() "
            "lists what is wrong, and a backup restores it", env->path,
            stat.ms_entries);
        Py_DECREF(env);
        return -1;
    }
    Py_DECREF(env);
    return (Py_ssize_t)stat.ms_entries;
}

static PyObject *
store_length(StoreObject *self, PyObject *Py_UNUSED(ignored))
{
    Py_ssize_t length = store_len(self);

    if (length < 0) {
        return NULL;
    }
    return PyLong_FromSsize_t(length);
}

/* ------------------------------------------------------------------ */
/* Writing single keys                                                 */

static int
store_set_item(StoreObject *self, PyObject *key, PyObject *value)
{
    EnvObject *env = store_env(self);
    packed packed_key;
    packed packed_value;
    write_op op;
    int status = -1;

    if (env == NULL) {
        return -1;
    }
    packed_init(&packed_key);
    packed_init(&packed_value);
    if (pack_key(self, env, key, &packed_key) < 0) {
        goto done;
    }
    if (value == NULL) {
        write_op_init(&op, run_delete, "mdb_del");
        op.frees_space = 1;
    }
    else {
        if (pack_value(self, value, &packed_value) < 0) {
            goto done;
        }
        write_op_init(&op, run_put, "mdb_put");
        op.value = &packed_value;
    }
    op.key = &packed_key;
    status = store_write(self, env, &op);

done:
    packed_release(&packed_key);
    packed_release(&packed_value);
    Py_DECREF(env);
    return status;
}

PyDoc_STRVAR(store_set_doc,
"set($self, /, key, val)\n"
"--\n"
"\n"
"Store val under key in its own transaction and return the store.\n"
"\n"
"Raises TypeError for None or an object that cannot be serialized\n"
"(or, for pickle, loaded back), KeyTooLongError, MapFullError (a\n"
"MemoryError) when a capped store is full, RuntimeError when closed.");

static PyObject *
store_set(StoreObject *self, PyObject *const *args, Py_ssize_t nargs,
          PyObject *kwnames)
{
    static const char *const names[] = {"key", "val"};
    PyObject *values[2] = {NULL, NULL};

    if (parse_args("set", args, nargs, kwnames, names, 2, 2, values) < 0) {
        return NULL;
    }
    if (store_set_item(self, values[0], values[1]) < 0) {
        return NULL;
    }
    return Py_NewRef(self);
}

PyDoc_STRVAR(store_remove_doc,
"remove($self, /, key)\n"
"--\n"
"\n"
"Delete key if present and return the store.  An absent key is not an\n"
"error.\n"
"\n"
"Raises TypeError, KeyTooLongError, RuntimeError when closed.");

static PyObject *
store_remove(StoreObject *self, PyObject *const *args, Py_ssize_t nargs,
             PyObject *kwnames)
{
    static const char *const names[] = {"key"};
    PyObject *values[1] = {NULL};

    if (parse_args("remove", args, nargs, kwnames, names, 1, 1,
                   values) < 0) {
        return NULL;
    }
    if (store_set_item(self, values[0], NULL) < 0) {
        return NULL;
    }
    return Py_NewRef(self);
}

static int
store_ass_subscript(StoreObject *self, PyObject *key, PyObject *value)
{
    return store_set_item(self, key, value);
}

/* Decode the copied value of a finished write_op. */
static PyObject *
decode_found_value(StoreObject *self, write_op *op)
{
    return decode_value(self, &op->found_value);
}

PyDoc_STRVAR(store_pop_doc,
"pop($self, /, key, default=...)\n"
"--\n"
"\n"
"Delete key and return its value, in one transaction.\n"
"\n"
"Returns default if key is absent and default is given; raises\n"
"KeyError if key is absent and default is not given.  Raises the\n"
"errors of set() too.");

static PyObject *
store_pop(StoreObject *self, PyObject *const *args, Py_ssize_t nargs,
          PyObject *kwnames)
{
    static const char *const names[] = {"key", "default"};
    PyObject *values[2] = {NULL, NULL};
    PyObject *result = NULL;
    EnvObject *env;
    packed packed_key;
    write_op op;

    if (parse_args("pop", args, nargs, kwnames, names, 2, 1, values) < 0) {
        return NULL;
    }
    env = store_env(self);
    if (env == NULL) {
        return NULL;
    }
    packed_init(&packed_key);
    write_op_init(&op, run_pop, "mdb_del");
    op.frees_space = 1;
    if (pack_key(self, env, values[0], &packed_key) < 0) {
        goto done;
    }
    op.key = &packed_key;
    if (store_write(self, env, &op) < 0) {
        goto done;
    }
    if (op.found) {
        result = decode_found_value(self, &op);
    }
    else if (values[1] != NULL) {
        result = Py_NewRef(values[1]);
    }
    else {
        raise_absent(values[0]);
    }

done:
    write_op_clear_found(&op);
    packed_release(&packed_key);
    Py_DECREF(env);
    return result;
}

PyDoc_STRVAR(store_setdefault_doc,
"setdefault($self, /, key, default=None)\n"
"--\n"
"\n"
"Return the value of key; if absent, store default and return it.\n"
"\n"
"The check and the insert are one transaction.  Raises TypeError if\n"
"key is absent and default is None, and the errors of set().");

static PyObject *
store_setdefault(StoreObject *self, PyObject *const *args,
                 Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"key", "default"};
    PyObject *values[2] = {NULL, Py_None};
    PyObject *result = NULL;
    EnvObject *env;
    packed packed_key;
    packed packed_value;
    write_op op;

    if (parse_args("setdefault", args, nargs, kwnames, names, 2, 1,
                   values) < 0) {
        return NULL;
    }
    if (values[1] == Py_None) {
        /* None cannot be stored, so this only reads. */
        int found;

        if (store_lookup(self, values[0], &found, &result) < 0) {
            return NULL;
        }
        if (!found) {
            check_not_none(values[1], "values");
            return NULL;
        }
        return result;
    }
    env = store_env(self);
    if (env == NULL) {
        return NULL;
    }
    packed_init(&packed_key);
    packed_init(&packed_value);
    write_op_init(&op, run_setdefault, "mdb_put");
    if (pack_key(self, env, values[0], &packed_key) < 0 ||
        pack_value(self, values[1], &packed_value) < 0) {
        goto done;
    }
    op.key = &packed_key;
    op.value = &packed_value;
    if (store_write(self, env, &op) < 0) {
        goto done;
    }
    if (op.found) {
        result = decode_found_value(self, &op);
    }
    else {
        result = Py_NewRef(values[1]);
    }

done:
    write_op_clear_found(&op);
    packed_release(&packed_key);
    packed_release(&packed_value);
    Py_DECREF(env);
    return result;
}

PyDoc_STRVAR(store_pop_first_doc,
"_pop_first($self, /)\n"
"--\n"
"\n"
"Delete the first record in key order and return it as (key, value).\n"
"\n"
"Raises KeyError on an empty store.");

static PyObject *
store_pop_first(StoreObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *key = NULL;
    PyObject *value = NULL;
    PyObject *result = NULL;
    EnvObject *env = store_env(self);
    write_op op;

    if (env == NULL) {
        return NULL;
    }
    write_op_init(&op, run_pop_first, "mdb_cursor_del");
    op.frees_space = 1;
    if (store_write(self, env, &op) < 0) {
        goto done;
    }
    if (!op.found) {
        PyErr_SetString(PyExc_KeyError, "popitem(): ShareDB is empty");
        goto done;
    }
    key = decode_key(self, &op.found_key);
    if (key == NULL) {
        goto done;
    }
    value = decode_found_value(self, &op);
    if (value == NULL) {
        goto done;
    }
    result = PyTuple_Pack(2, key, value);

done:
    write_op_clear_found(&op);
    Py_XDECREF(key);
    Py_XDECREF(value);
    Py_DECREF(env);
    return result;
}

PyDoc_STRVAR(store_clear_doc,
"clear($self, /)\n"
"--\n"
"\n"
"Delete every record in one transaction and return the store.\n"
"\n"
"When the map or the disk is too full for that transaction, the\n"
"records are deleted in several, from the first key on.");

static PyObject *
store_clear(StoreObject *self, PyObject *Py_UNUSED(ignored))
{
    EnvObject *env = store_env(self);
    write_op op;
    int status;

    if (env == NULL) {
        return NULL;
    }
    write_op_init(&op, run_clear, "mdb_drop");
    op.frees_space = 1;
    status = store_write(self, env, &op);
    Py_DECREF(env);
    if (status < 0) {
        return NULL;
    }
    self->pending_writes = 0;
    return Py_NewRef(self);
}

PyDoc_STRVAR(store_sync_doc,
"sync($self, /)\n"
"--\n"
"\n"
"Flush written data to disk, returning when it is there, and return\n"
"the store.");

static PyObject *
store_sync(StoreObject *self, PyObject *Py_UNUSED(ignored))
{
    EnvObject *env = store_env(self);
    MDB_env *handle;
    int rc = 0;

    if (env == NULL) {
        return NULL;
    }
    if (!(env->flags & MDB_RDONLY)) {
        handle = env->env;
        sharedb_env_pin(env);
        Py_BEGIN_ALLOW_THREADS
        rc = mdb_env_sync(handle, 1);
        Py_END_ALLOW_THREADS
        sharedb_env_unpin(env);
    }
    if (rc != 0) {
        sharedb_raise_lmdb(self->state, rc, "mdb_env_sync", env->path);
        Py_DECREF(env);
        return NULL;
    }
    Py_DECREF(env);
    self->pending_writes = 0;
    return Py_NewRef(self);
}

/* ------------------------------------------------------------------ */
/* Batch writes                                                        */

/* Split item into key and value as "for key, val in kv_iter" does. */
static int
unpack_pair(PyObject *item, PyObject **key, PyObject **value)
{
    PyObject *iterator;
    PyObject *extra;

    if (PyTuple_CheckExact(item) && PyTuple_GET_SIZE(item) == 2) {
        *key = Py_NewRef(PyTuple_GET_ITEM(item, 0));
        *value = Py_NewRef(PyTuple_GET_ITEM(item, 1));
        return 0;
    }
    iterator = PyObject_GetIter(item);
    if (iterator == NULL) {
        PyErr_Format(PyExc_TypeError,
                     "cannot unpack non-iterable %.200s object",
                     Py_TYPE(item)->tp_name);
        return -1;
    }
    *key = PyIter_Next(iterator);
    *value = *key != NULL ? PyIter_Next(iterator) : NULL;
    if (*value == NULL) {
        Py_CLEAR(*key);
        Py_DECREF(iterator);
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError,
                            "not enough values to unpack (expected 2)");
        }
        return -1;
    }
    extra = PyIter_Next(iterator);
    Py_DECREF(iterator);
    if (extra != NULL || PyErr_Occurred()) {
        Py_XDECREF(extra);
        Py_CLEAR(*key);
        Py_CLEAR(*value);
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError,
                            "too many values to unpack (expected 2)");
        }
        return -1;
    }
    return 0;
}

/* Pack every item of iterable into records: (key, value) pairs if pairs
   is set, else keys.  Errors are raised as ShareDB 2.0.2 did: "Given
   <name>=<shown> of <type>, raised: <error>", where shown is the object
   the caller passed, from which iterable was made. */
static int
pack_batch(StoreObject *self, EnvObject *env, PyObject *iterable,
           int pairs, const char *name, PyObject *shown, batch *records)
{
    PyObject *iterator = PyObject_GetIter(iterable);
    PyObject *item;
    packed packed_key;
    packed packed_value;
    int status = 0;

    if (iterator == NULL) {
        reraise_given(PyExc_TypeError, name, shown);
        return -1;
    }
    packed_init(&packed_key);
    packed_init(&packed_value);
    while (status == 0 && (item = PyIter_Next(iterator)) != NULL) {
        PyObject *key = item;
        PyObject *value = NULL;

        if (pairs && unpack_pair(item, &key, &value) < 0) {
            Py_DECREF(item);
            reraise_given(PyExc_TypeError, name, shown);
            status = -1;
            break;
        }
        status = pack_key(self, env, key, &packed_key);
        if (status == 0 && pairs) {
            status = pack_value(self, value, &packed_value);
        }
        if (status == 0) {
            status = batch_add(records, &packed_key,
                               pairs ? &packed_value : NULL);
        }
        else {
            reraise_given(batch_error_class(self), name, shown);
        }
        packed_key.buffer.length = 0;
        packed_value.buffer.length = 0;
        if (pairs) {
            Py_DECREF(key);
            Py_DECREF(value);
        }
        Py_DECREF(item);
    }
    if (status == 0 && PyErr_Occurred()) {
        /* The caller's iterator raised: its error goes on as it is. */
        reraise_given(NULL, name, shown);
        status = -1;
    }
    packed_release(&packed_key);
    packed_release(&packed_value);
    Py_DECREF(iterator);
    return status;
}

/* Write the packed records in one transaction: store them if pairs is
   set, else delete them.  Returns -1 with an exception set on failure. */
static int
store_commit_batch(StoreObject *self, EnvObject *env, batch *records,
                   int pairs)
{
    write_op op;
    int rc;

    /* The batch is C memory of this call only. */
    Py_BEGIN_ALLOW_THREADS
    rc = batch_sort(records, 1);
    Py_END_ALLOW_THREADS
    if (rc != 0) {
        PyErr_NoMemory();
        return -1;
    }
    write_op_init(&op, pairs ? run_put_batch : run_delete_batch,
                  pairs ? "mdb_put" : "mdb_del");
    op.records = records;
    op.first = 0;
    op.end = records->unique;
    op.frees_space = !pairs;
    return store_write(self, env, &op);
}

static PyObject *
store_write_batch(StoreObject *self, PyObject *iterable, int pairs)
{
    EnvObject *env = store_env(self);
    batch records;
    int status = -1;

    if (env == NULL) {
        return NULL;
    }
    memset(&records, 0, sizeof(records));

    /* Every record is packed before the write transaction begins, so no
       code of the caller runs while the writer lock is held. */
    if (pack_batch(self, env, iterable, pairs,
                   pairs ? "kv_iter" : "key_iter", iterable,
                   &records) == 0) {
        status = store_commit_batch(self, env, &records, pairs);
    }
    batch_free(&records);
    Py_DECREF(env);
    if (status < 0) {
        return NULL;
    }
    return Py_NewRef(self);
}

/* Pack the pairs of the keyword arguments of update(), in the order they
   were given, into records.  An error names the keyword whose pair
   failed. */
static int
pack_keywords(StoreObject *self, EnvObject *env, PyObject *kwargs,
              batch *records)
{
    Py_ssize_t position = 0;
    PyObject *name;
    PyObject *value;
    packed packed_key;
    packed packed_value;
    int status = 0;

    packed_init(&packed_key);
    packed_init(&packed_value);
    /* kwargs is the dict of this call, which no other code can reach,
       so it cannot change while packing runs the caller's code. */
    while (status == 0 && PyDict_Next(kwargs, &position, &name, &value)) {
        Py_INCREF(name);
        Py_INCREF(value);
        status = pack_key(self, env, name, &packed_key);
        if (status == 0) {
            status = pack_value(self, value, &packed_value);
        }
        if (status == 0) {
            status = batch_add(records, &packed_key, &packed_value);
        }
        else {
            reraise_given_as(batch_error_class(self), name, value);
        }
        packed_key.buffer.length = 0;
        packed_value.buffer.length = 0;
        Py_DECREF(name);
        Py_DECREF(value);
    }
    packed_release(&packed_key);
    packed_release(&packed_value);
    return status;
}

PyDoc_STRVAR(store_update_pairs_doc,
"_update_pairs($self, pairs, other, kwargs, /)\n"
"--\n"
"\n"
"Store the (key, value) pairs of the iterable pairs, made from the\n"
"argument other of update(), then those of the dict kwargs, in one\n"
"transaction, and return the store.\n"
"\n"
"Errors name other, or the keyword whose pair failed.");

static PyObject *
store_update_pairs(StoreObject *self, PyObject *const *args,
                   Py_ssize_t nargs)
{
    EnvObject *env;
    batch records;
    int status = -1;

    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError,
                     "_update_pairs() takes 3 arguments (%zd given)", nargs);
        return NULL;
    }
    if (!PyDict_Check(args[2])) {
        PyErr_Format(PyExc_TypeError,
                     "_update_pairs() needs a dict of keyword arguments, "
                     "not %.200s", Py_TYPE(args[2])->tp_name);
        return NULL;
    }
    env = store_env(self);
    if (env == NULL) {
        return NULL;
    }
    memset(&records, 0, sizeof(records));
    if (pack_batch(self, env, args[0], 1, "other", args[1], &records) == 0 &&
        pack_keywords(self, env, args[2], &records) == 0) {
        status = store_commit_batch(self, env, &records, 1);
    }
    batch_free(&records);
    Py_DECREF(env);
    if (status < 0) {
        return NULL;
    }
    return Py_NewRef(self);
}

PyDoc_STRVAR(store_multiset_doc,
"multiset($self, /, kv_iter)\n"
"--\n"
"\n"
"Store every (key, value) pair of kv_iter in one transaction and\n"
"return the store.\n"
"\n"
"If any pair fails, none is stored.  A key given twice keeps its last\n"
"value.  Raises the errors of set() as \"Given kv_iter=...\".");

static PyObject *
store_multiset(StoreObject *self, PyObject *const *args, Py_ssize_t nargs,
               PyObject *kwnames)
{
    static const char *const names[] = {"kv_iter"};
    PyObject *values[1] = {NULL};

    if (parse_args("multiset", args, nargs, kwnames, names, 1, 1,
                   values) < 0) {
        return NULL;
    }
    return store_write_batch(self, values[0], 1);
}

PyDoc_STRVAR(store_multiremove_doc,
"multiremove($self, /, key_iter)\n"
"--\n"
"\n"
"Delete every key of key_iter in one transaction and return the\n"
"store.  Absent keys are skipped.\n"
"\n"
"Raises the errors of remove() as \"Given key_iter=...\".");

static PyObject *
store_multiremove(StoreObject *self, PyObject *const *args,
                  Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"key_iter"};
    PyObject *values[1] = {NULL};

    if (parse_args("multiremove", args, nargs, kwnames, names, 1, 1,
                   values) < 0) {
        return NULL;
    }
    return store_write_batch(self, values[0], 0);
}

/* ------------------------------------------------------------------ */
/* Iterators                                                           */

/* multiget() and has_multikey() read keys ahead and look them up in key
   order: the more keys a lookup covers, the more of them share a page
   with the key before, which LMDB then searches without starting from
   the root.  The first lookup reads FIRST_LOOKAHEAD keys, and each next
   one twice as many, up to MAX_LOOKAHEAD, so that a short call reads
   little ahead and a long one gets dense lookups. */
#define FIRST_LOOKAHEAD 256
#define MAX_LOOKAHEAD 65536

enum {
    ITER_MULTIGET,          /* values of the keys of an iterable */
    ITER_HAS_MULTIKEY,      /* membership of the keys of an iterable */
    ITER_KEYS,              /* scans of the whole store */
    ITER_VALUES,
    ITER_ITEMS,
};

typedef struct {
    PyObject_HEAD
    StoreObject *store;         /* strong */
    int kind;                   /* ITER_* */
    int reverse;                /* scan from the last key backward */
    PyObject *source;           /* iterable given by the caller, or NULL */
    PyObject *iterator;         /* iter(source), or NULL */
    PyObject *default_value;    /* for ITER_MULTIGET */
    TxnObject *txn;             /* snapshot, from the first next() */
    CursorObject *cursor;
    int finished;
    int running;                /* a next() call is in progress */

    /* Results of the keys read ahead from iterator, handed out one per
       step, and the error to raise after them, if any. */
    PyObject **results;         /* from PyMem_Malloc */
    size_t lookahead;           /* keys the next lookup reads */
    Py_ssize_t result_count;
    Py_ssize_t result_next;
    PyObject *error_type;
    PyObject *error_value;
    PyObject *error_traceback;
} StoreIterObject;

static PyObject *
store_make_iter(StoreObject *self, int kind, PyObject *source,
                PyObject *default_value, int reverse)
{
    StoreIterObject *iter;
    EnvObject *env;

    /* Checked at once so that a closed store raises here, and again at
       every step. */
    env = store_env(self);
    if (env == NULL) {
        return NULL;
    }
    Py_DECREF(env);
    iter = PyObject_GC_New(StoreIterObject, self->state->store_iter_type);
    if (iter == NULL) {
        return NULL;
    }
    iter->store = (StoreObject *)Py_NewRef(self);
    iter->kind = kind;
    iter->reverse = reverse;
    iter->source = Py_XNewRef(source);
    iter->iterator = NULL;
    iter->default_value = Py_XNewRef(default_value);
    iter->txn = NULL;
    iter->cursor = NULL;
    iter->finished = 0;
    iter->running = 0;
    iter->results = NULL;
    iter->lookahead = FIRST_LOOKAHEAD;
    iter->result_count = 0;
    iter->result_next = 0;
    iter->error_type = NULL;
    iter->error_value = NULL;
    iter->error_traceback = NULL;
    PyObject_GC_Track(iter);
    if (source != NULL) {
        iter->iterator = PyObject_GetIter(source);
        if (iter->iterator == NULL) {
            reraise_given(PyExc_TypeError, "key_iter", source);
            Py_DECREF(iter);
            return NULL;
        }
    }
    return (PyObject *)iter;
}

static void store_iter_clear_results(StoreIterObject *self);

/* End the snapshot; the reader slot goes back to the pool. */
static void
store_iter_finish(StoreIterObject *self)
{
    CursorObject *cursor = self->cursor;
    TxnObject *txn = self->txn;

    self->finished = 1;
    self->cursor = NULL;
    self->txn = NULL;
    store_iter_clear_results(self);
    Py_XDECREF(cursor);
    if (txn != NULL) {
        sharedb_txn_abort(txn, "the iteration finished");
        Py_DECREF(txn);
    }
}

/* Begin the snapshot at the first step.  Returns -1 on failure. */
static int
store_iter_start(StoreIterObject *self)
{
    EnvObject *env = store_env(self->store);

    if (env == NULL) {
        return -1;
    }
    self->txn = sharedb_txn_begin(env, NULL, 0);
    if (self->txn != NULL) {
        self->cursor = sharedb_cursor_open(self->txn, env->main_dbi);
        if (self->cursor == NULL) {
            Py_CLEAR(self->txn);
        }
    }
    Py_DECREF(env);
    return self->txn != NULL ? 0 : -1;
}

/* Check the snapshot before a step: the store may have been closed by
   code that ran since the last one. */
static int
store_iter_check(StoreIterObject *self)
{
    EnvObject *env = self->txn->env;

    if (env->fork_count != sharedb_fork_count()) {
        sharedb_raise_closed(self->store->state,
                             "this iteration began before fork(), in "
                             "another process; start a new one here");
        return -1;
    }
    if (self->store->env == NULL || self->txn->txn == NULL || env->closed) {
        store_raise_closed(self->store);
        return -1;
    }
    return sharedb_txn_check(self->txn);
}

/* Drop the results not handed out, their memory and any saved error. */
static void
store_iter_clear_results(StoreIterObject *self)
{
    for (Py_ssize_t i = self->result_next; i < self->result_count; i++) {
        Py_CLEAR(self->results[i]);
    }
    PyMem_Free(self->results);
    self->results = NULL;
    self->result_count = 0;
    self->result_next = 0;
    Py_CLEAR(self->error_type);
    Py_CLEAR(self->error_value);
    Py_CLEAR(self->error_traceback);
}

static void
store_iter_save_error(StoreIterObject *self)
{
    Py_CLEAR(self->error_type);
    Py_CLEAR(self->error_value);
    Py_CLEAR(self->error_traceback);
    PyErr_Fetch(&self->error_type, &self->error_value,
                &self->error_traceback);
}

static PyObject *
store_iter_raise_saved(StoreIterObject *self)
{
    PyErr_Restore(self->error_type, self->error_value,
                  self->error_traceback);
    self->error_type = NULL;
    self->error_value = NULL;
    self->error_traceback = NULL;
    return NULL;
}

/* Read up to self->lookahead keys of the iterator and pack them into
   keys.  An error stops the reading: it is saved, to be raised after the
   results of the keys before it.  Returns -1 only if the store is
   closed. */
static int
store_iter_read_keys(StoreIterObject *self, batch *keys)
{
    StoreObject *store = self->store;
    packed packed_key;
    int status = 0;
    int failed = 0;

    packed_init(&packed_key);
    while (keys->count < self->lookahead) {
        PyObject *key = PyIter_Next(self->iterator);

        if (key == NULL) {
            if (PyErr_Occurred()) {
                /* The caller's iterator raised: its error goes on as it
                   is. */
                reraise_given(NULL, "key_iter", self->source);
                failed = 1;
            }
            break;
        }
        if (store->env == NULL) {
            Py_DECREF(key);
            store_raise_closed(store);
            status = -1;
            break;
        }
        packed_key.buffer.length = 0;
        if (pack_key(store, self->txn->env, key, &packed_key) < 0) {
            Py_DECREF(key);
            reraise_given(batch_error_class(store), "key_iter",
                          self->source);
            failed = 1;
            break;
        }
        Py_DECREF(key);
        if (batch_add(keys, &packed_key, NULL) < 0) {
            failed = 1;
            break;
        }
    }
    packed_release(&packed_key);
    if (failed) {
        store_iter_save_error(self);
    }
    if (self->lookahead < MAX_LOOKAHEAD) {
        self->lookahead *= 2;
    }
    return status;
}

/* Bytes of stored values after which a lookup reads fewer keys ahead,
   to bound the results held at once. */
#define LOOKAHEAD_BYTES (8 << 20)

/* Look up keys in key order, then decode the values in the order the
   keys came, into the slot of each key.  Key order lets LMDB find most
   keys from the page of the key before.  Decoding in the caller's order
   allocates the objects in the order the caller keeps and frees them,
   so CPython's allocator stays in the cache.  Returns 0, or -1 with an
   exception set.  A value that fails to decode ends the results before
   it, and its error is saved. */
static int
store_iter_look_up(StoreIterObject *self, batch *keys)
{
    StoreObject *store = self->store;
    TxnObject *txn = self->txn;
    MDB_cursor *cursor = self->cursor->cursor;
    PyObject **results;
    MDB_val *values;
    size_t count = keys->count;
    size_t bytes = 0;
    int rc = 0;

    results = PyMem_New(PyObject *, count);
    values = PyMem_New(MDB_val, count);
    if (results == NULL || values == NULL || batch_sort(keys, 0) != 0) {
        PyMem_Free(results);
        PyMem_Free(values);
        PyErr_NoMemory();
        return -1;
    }

    /* The values point into the map; the busy transaction keeps them
       there until decoding, which runs whatever code the garbage
       collector runs, is done. */
    txn->busy = 1;
    for (size_t i = 0; i < keys->unique; i++) {
        size_t index = keys->order[i];
        MDB_val key = entry_key(keys, i);
        MDB_val value;

        rc = mdb_cursor_get(cursor, &key, &value, MDB_SET_KEY);
        if (rc == MDB_NOTFOUND &&
            keys->entries[index].legacy_size != 0) {
            MDB_val legacy;

            legacy.mv_size = keys->entries[index].legacy_size;
            legacy.mv_data = keys->data + keys->entries[index].legacy_offset;
            rc = mdb_get(txn->txn, txn->env->main_dbi, &legacy, &value);
        }
        if (rc == MDB_NOTFOUND) {
            rc = 0;
            value.mv_data = NULL;       /* absent */
            value.mv_size = 0;
        }
        else if (rc != 0) {
            break;
        }
        values[index] = value;
    }
    if (rc != 0) {
        txn->busy = 0;
        self->cursor->positioned = SHAREDB_CURSOR_UNPLACED;
        PyMem_Free(results);
        PyMem_Free(values);
        sharedb_raise_lmdb(store->state, rc, "mdb_cursor_get",
                           txn->env->path);
        return -1;
    }
    for (size_t index = 0; index < count; index++) {
        PyObject *result;

        if (values[index].mv_data == NULL) {
            result = Py_NewRef(self->kind == ITER_HAS_MULTIKEY
                               ? Py_False : self->default_value);
        }
        else if (self->kind == ITER_HAS_MULTIKEY) {
            result = Py_NewRef(Py_True);
        }
        else {
            bytes += values[index].mv_size;
            result = decode_value(store, &values[index]);
            if (result == NULL) {
                /* The results before this key are handed out, then
                   this error is raised. */
                store_iter_save_error(self);
                count = index;
                break;
            }
        }
        results[index] = result;
    }
    txn->busy = 0;
    self->cursor->positioned = SHAREDB_CURSOR_UNPLACED;
    PyMem_Free(values);
    if (bytes > LOOKAHEAD_BYTES && self->lookahead > FIRST_LOOKAHEAD) {
        self->lookahead /= 4;
    }
    PyMem_Free(self->results);
    self->results = results;
    self->result_count = (Py_ssize_t)count;
    self->result_next = 0;
    return 0;
}

/* Hand out the next result of multiget() or has_multikey(), reading and
   looking up the next keys when the results run out. */
static PyObject *
store_iter_lookup(StoreIterObject *self)
{
    Py_ssize_t index;
    PyObject *result;

    if (self->result_next >= self->result_count) {
        batch keys;
        int status;

        if (self->error_type != NULL) {
            return store_iter_raise_saved(self);
        }
        if (store_iter_check(self) < 0) {
            return NULL;
        }
        memset(&keys, 0, sizeof(keys));
        status = store_iter_read_keys(self, &keys);
        if (status == 0 && keys.count > 0) {
            status = store_iter_check(self);
            if (status == 0) {
                status = store_iter_look_up(self, &keys);
            }
        }
        batch_free(&keys);
        if (status < 0) {
            return NULL;
        }
        if (self->result_next >= self->result_count) {
            if (self->error_type != NULL) {
                return store_iter_raise_saved(self);
            }
            return NULL;
        }
    }

    index = self->result_next++;
    result = self->results[index];
    self->results[index] = NULL;
    return result;
}

static PyObject *
store_iter_scan(StoreIterObject *self)
{
    StoreObject *store = self->store;
    CursorObject *cursor = self->cursor;
    PyObject *key = NULL;
    PyObject *value = NULL;
    PyObject *result = NULL;
    MDB_cursor_op op;
    MDB_val key_val;
    MDB_val value_val;
    int rc;

    if (store_iter_check(self) < 0) {
        return NULL;
    }
    if (cursor->cursor == NULL) {
        sharedb_raise_closed(store->state, "the cursor of the iteration "
                             "was closed");
        return NULL;
    }
    if (cursor->positioned != SHAREDB_CURSOR_ON_RECORD) {
        op = self->reverse ? MDB_LAST : MDB_FIRST;
    }
    else {
        op = self->reverse ? MDB_PREV : MDB_NEXT;
    }
    self->txn->busy = 1;
    rc = mdb_cursor_get(cursor->cursor, &key_val, &value_val, op);
    if (rc == MDB_NOTFOUND) {
        self->txn->busy = 0;
        return NULL;
    }
    if (rc != 0) {
        self->txn->busy = 0;
        return sharedb_raise_lmdb(store->state, rc, "mdb_cursor_get",
                                  self->txn->env->path);
    }
    cursor->positioned = SHAREDB_CURSOR_ON_RECORD;
    if (self->kind != ITER_VALUES) {
        key = decode_key(store, &key_val);
        if (key == NULL) {
            goto done;
        }
    }
    if (self->kind != ITER_KEYS) {
        value = decode_value(store, &value_val);
        if (value == NULL) {
            goto done;
        }
    }
    if (self->kind == ITER_ITEMS) {
        result = PyTuple_New(2);
        if (result != NULL) {
            /* The tuple takes over both references. */
            PyTuple_SET_ITEM(result, 0, key);
            PyTuple_SET_ITEM(result, 1, value);
            key = NULL;
            value = NULL;
        }
    }
    else if (self->kind == ITER_KEYS) {
        result = key;
        key = NULL;
    }
    else {
        result = value;
        value = NULL;
    }

done:
    self->txn->busy = 0;
    Py_XDECREF(key);
    Py_XDECREF(value);
    return result;
}

static PyObject *
store_iter_next(StoreIterObject *self)
{
    PyObject *result;

    if (self->finished) {
        return NULL;
    }
    /* Decoding a value can run Python code, which may call next() on
       this iterator again, here or from another thread.  That call
       raises and leaves the running one its transaction and cursor. */
    if (self->running) {
        PyErr_SetString(PyExc_ValueError,
                        "this iterator is already running a next() call");
        return NULL;
    }
    self->running = 1;
    if (self->txn == NULL && store_iter_start(self) < 0) {
        store_iter_finish(self);
        self->running = 0;
        return NULL;
    }
    if (self->kind >= ITER_KEYS) {
        result = store_iter_scan(self);
    }
    else {
        result = store_iter_lookup(self);
    }
    if (result == NULL) {
        store_iter_finish(self);
    }
    self->running = 0;
    return result;
}

static int
store_iter_traverse(StoreIterObject *self, visitproc visit, void *arg)
{
    for (Py_ssize_t i = self->result_next; i < self->result_count; i++) {
        Py_VISIT(self->results[i]);
    }
    Py_VISIT(self->error_value);
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->store);
    Py_VISIT(self->source);
    Py_VISIT(self->iterator);
    Py_VISIT(self->default_value);
    return 0;
}

static int
store_iter_clear(StoreIterObject *self)
{
    store_iter_clear_results(self);
    Py_CLEAR(self->source);
    Py_CLEAR(self->iterator);
    Py_CLEAR(self->default_value);
    Py_CLEAR(self->store);
    return 0;
}

static void
store_iter_dealloc(StoreIterObject *self)
{
    PyTypeObject *type = Py_TYPE(self);

    PyObject_GC_UnTrack(self);
    store_iter_finish(self);
    store_iter_clear(self);
    PyObject_GC_Del(self);
    Py_DECREF(type);
}

static PyType_Slot store_iter_slots[] = {
    {Py_tp_dealloc, store_iter_dealloc},
    {Py_tp_traverse, store_iter_traverse},
    {Py_tp_clear, store_iter_clear},
    {Py_tp_iter, PyObject_SelfIter},
    {Py_tp_iternext, store_iter_next},
    {0, NULL},
};

static PyType_Spec store_iter_spec = {
    .name = "sharedb._lmdb.StoreIterator",
    .basicsize = sizeof(StoreIterObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = store_iter_slots,
};

PyDoc_STRVAR(store_multiget_doc,
"multiget($self, /, key_iter, default=None)\n"
"--\n"
"\n"
"Return an iterator of the values of the keys of key_iter, or default\n"
"for absent keys, read from one snapshot taken at the first step.");

static PyObject *
store_multiget(StoreObject *self, PyObject *const *args, Py_ssize_t nargs,
               PyObject *kwnames)
{
    static const char *const names[] = {"key_iter", "default"};
    PyObject *values[2] = {NULL, Py_None};

    if (parse_args("multiget", args, nargs, kwnames, names, 2, 1,
                   values) < 0) {
        return NULL;
    }
    return store_make_iter(self, ITER_MULTIGET, values[0], values[1], 0);
}

PyDoc_STRVAR(store_has_multikey_doc,
"has_multikey($self, /, key_iter)\n"
"--\n"
"\n"
"Return an iterator of booleans, True for each key of key_iter that is\n"
"present, read from one snapshot taken at the first step.");

static PyObject *
store_has_multikey(StoreObject *self, PyObject *const *args,
                   Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"key_iter"};
    PyObject *values[1] = {NULL};

    if (parse_args("has_multikey", args, nargs, kwnames, names, 1, 1,
                   values) < 0) {
        return NULL;
    }
    return store_make_iter(self, ITER_HAS_MULTIKEY, values[0], NULL, 0);
}

PyDoc_STRVAR(store_keys_doc,
"keys($self, /)\n"
"--\n"
"\n"
"Return an iterator of the keys in key order, from one snapshot taken\n"
"at the first step; writes meanwhile do not change what it yields.");

static PyObject *
store_keys(StoreObject *self, PyObject *Py_UNUSED(ignored))
{
    return store_make_iter(self, ITER_KEYS, NULL, NULL, 0);
}

PyDoc_STRVAR(store_values_doc,
"values($self, /)\n"
"--\n"
"\n"
"Return an iterator of the values in key order, from one snapshot.");

static PyObject *
store_values(StoreObject *self, PyObject *Py_UNUSED(ignored))
{
    return store_make_iter(self, ITER_VALUES, NULL, NULL, 0);
}

PyDoc_STRVAR(store_items_doc,
"items($self, /)\n"
"--\n"
"\n"
"Return an iterator of (key, value) pairs in key order, from one\n"
"snapshot.");

static PyObject *
store_items(StoreObject *self, PyObject *Py_UNUSED(ignored))
{
    return store_make_iter(self, ITER_ITEMS, NULL, NULL, 0);
}

static PyObject *
store_iter(StoreObject *self)
{
    return store_make_iter(self, ITER_KEYS, NULL, NULL, 0);
}

PyDoc_STRVAR(store_reversed_doc,
"__reversed__($self, /)\n"
"--\n"
"\n"
"Return an iterator of the keys in reverse key order, from one\n"
"snapshot.");

static PyObject *
store_reversed(StoreObject *self, PyObject *Py_UNUSED(ignored))
{
    return store_make_iter(self, ITER_KEYS, NULL, NULL, 1);
}

/* ------------------------------------------------------------------ */
/* Attaching to an environment                                         */

PyDoc_STRVAR(store_attach_doc,
"_attach($self, env, serial, compress, sync_threshold, pickle_key,\n"
"        dumps, loads, protocol, zlib_compress, zlib_decompress, /)\n"
"--\n"
"\n"
"Connect the store to an open Environment.\n"
"\n"
"serial is 'msgpack' or 'pickle'.  pickle_key(key) returns the pickle\n"
"bytes of a key that is not an int, float, str, bytes or bool; dumps,\n"
"loads and protocol are pickle's; the zlib functions compress values.");

static PyObject *
store_attach(StoreObject *self, PyObject *args)
{
    PyObject *env;
    PyObject *serial;
    PyObject *callables[6];
    Py_ssize_t sync_threshold;
    int compress;
    int serial_kind;

    if (!PyArg_ParseTuple(args, "O!UpnOOOOOO:_attach",
                          self->state->env_type, &env, &serial, &compress,
                          &sync_threshold, &callables[0], &callables[1],
                          &callables[2], &callables[3], &callables[4],
                          &callables[5])) {
        return NULL;
    }
    if (PyUnicode_CompareWithASCIIString(serial, "msgpack") == 0) {
        serial_kind = SHAREDB_SERIAL_MSGPACK;
        if (sharedb_codec_load(self->state) < 0) {
            return NULL;
        }
    }
    else if (PyUnicode_CompareWithASCIIString(serial, "pickle") == 0) {
        serial_kind = SHAREDB_SERIAL_PICKLE;
    }
    else {
        PyErr_Format(PyExc_ValueError,
                     "serial must be 'msgpack' or 'pickle', not %R", serial);
        return NULL;
    }
    Py_XSETREF(self->env, (EnvObject *)Py_NewRef(env));
    self->attached = 1;
    self->serial = serial_kind;
    self->compress = compress;
    self->sync_threshold = sync_threshold;
    Py_XSETREF(self->pickle_key, Py_NewRef(callables[0]));
    Py_XSETREF(self->pickle_dumps, Py_NewRef(callables[1]));
    Py_XSETREF(self->pickle_loads, Py_NewRef(callables[2]));
    Py_XSETREF(self->pickle_protocol, Py_NewRef(callables[3]));
    Py_XSETREF(self->zlib_compress, Py_NewRef(callables[4]));
    Py_XSETREF(self->zlib_decompress, Py_NewRef(callables[5]));
    Py_RETURN_NONE;
}

PyDoc_STRVAR(store_detach_doc,
"_detach($self, /)\n"
"--\n"
"\n"
"Disconnect the store from its Environment and return it, or None if\n"
"it was not attached.  Every data method raises RuntimeError after.");

static PyObject *
store_detach(StoreObject *self, PyObject *Py_UNUSED(ignored))
{
    EnvObject *env = self->env;

    self->env = NULL;
    if (env == NULL) {
        Py_RETURN_NONE;
    }
    return (PyObject *)env;
}

static PyObject *
store_get_env(StoreObject *self, void *Py_UNUSED(closure))
{
    if (self->env == NULL) {
        Py_RETURN_NONE;
    }
    return Py_NewRef(self->env);
}

static PyObject *
store_get_is_alive(StoreObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->env != NULL && !self->env->closed);
}

static PyObject *
store_get_pending_writes(StoreObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(self->pending_writes);
}

static int
store_set_pending_writes(StoreObject *self, PyObject *value,
                         void *Py_UNUSED(closure))
{
    long long count;

    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError,
                        "pending_writes cannot be deleted");
        return -1;
    }
    if (sharedb_int_arg(value, "pending_writes",
                        "an int of 0 or more (writes since the last sync)",
                        0, PY_SSIZE_T_MAX, &count) < 0) {
        return -1;
    }
    self->pending_writes = (Py_ssize_t)count;
    return 0;
}

static PyObject *
store_get_sync_threshold(StoreObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(self->sync_threshold);
}

static int
store_set_sync_threshold(StoreObject *self, PyObject *value,
                         void *Py_UNUSED(closure))
{
    long long threshold;

    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError,
                        "sync_threshold cannot be deleted");
        return -1;
    }
    if (sharedb_int_arg(value, "sync_threshold", SYNC_THRESHOLD_ACCEPTED, 1,
                        MAX_SYNC_THRESHOLD, &threshold) < 0) {
        return -1;
    }
    self->sync_threshold = (Py_ssize_t)threshold;
    return 0;
}

static int
store_traverse(StoreObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->module);
    Py_VISIT(self->env);
    Py_VISIT(self->pickle_key);
    Py_VISIT(self->pickle_dumps);
    Py_VISIT(self->pickle_loads);
    Py_VISIT(self->pickle_protocol);
    Py_VISIT(self->zlib_compress);
    Py_VISIT(self->zlib_decompress);
    return 0;
}

static int
store_clear_refs(StoreObject *self)
{
    Py_CLEAR(self->env);
    Py_CLEAR(self->pickle_key);
    Py_CLEAR(self->pickle_dumps);
    Py_CLEAR(self->pickle_loads);
    Py_CLEAR(self->pickle_protocol);
    Py_CLEAR(self->zlib_compress);
    Py_CLEAR(self->zlib_decompress);
    return 0;
}

static PyObject *
store_new(PyTypeObject *type, PyObject *Py_UNUSED(args),
          PyObject *Py_UNUSED(kwargs))
{
    sharedb_state *state = sharedb_state_from_type(type);
    StoreObject *self;

    if (state == NULL) {
        return NULL;
    }
    self = (StoreObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->state = state;
    self->module = Py_XNewRef(PyType_GetModule(state->store_type));
    self->sync_threshold = 100000;
    return (PyObject *)self;
}

static void
store_dealloc(StoreObject *self)
{
    PyTypeObject *type = Py_TYPE(self);

    PyObject_GC_UnTrack(self);
    store_clear_refs(self);
    Py_CLEAR(self->module);
    type->tp_free(self);
    Py_DECREF(type);
}

static PyMethodDef store_methods[] = {
    {"get", (PyCFunction)(void (*)(void))store_get,
     METH_FASTCALL | METH_KEYWORDS, store_get_doc},
    {"has_key", (PyCFunction)(void (*)(void))store_has_key,
     METH_FASTCALL | METH_KEYWORDS, store_has_key_doc},
    {"set", (PyCFunction)(void (*)(void))store_set,
     METH_FASTCALL | METH_KEYWORDS, store_set_doc},
    {"remove", (PyCFunction)(void (*)(void))store_remove,
     METH_FASTCALL | METH_KEYWORDS, store_remove_doc},
    {"length", (PyCFunction)store_length, METH_NOARGS, store_length_doc},
    {"pop", (PyCFunction)(void (*)(void))store_pop,
     METH_FASTCALL | METH_KEYWORDS, store_pop_doc},
    {"setdefault", (PyCFunction)(void (*)(void))store_setdefault,
     METH_FASTCALL | METH_KEYWORDS, store_setdefault_doc},
    {"_pop_first", (PyCFunction)store_pop_first, METH_NOARGS,
     store_pop_first_doc},
    {"clear", (PyCFunction)store_clear, METH_NOARGS, store_clear_doc},
    {"sync", (PyCFunction)store_sync, METH_NOARGS, store_sync_doc},
    {"multiset", (PyCFunction)(void (*)(void))store_multiset,
     METH_FASTCALL | METH_KEYWORDS, store_multiset_doc},
    {"multiremove", (PyCFunction)(void (*)(void))store_multiremove,
     METH_FASTCALL | METH_KEYWORDS, store_multiremove_doc},
    {"multiget", (PyCFunction)(void (*)(void))store_multiget,
     METH_FASTCALL | METH_KEYWORDS, store_multiget_doc},
    {"has_multikey", (PyCFunction)(void (*)(void))store_has_multikey,
     METH_FASTCALL | METH_KEYWORDS, store_has_multikey_doc},
    {"keys", (PyCFunction)store_keys, METH_NOARGS, store_keys_doc},
    {"values", (PyCFunction)store_values, METH_NOARGS, store_values_doc},
    {"items", (PyCFunction)store_items, METH_NOARGS, store_items_doc},
    {"__reversed__", (PyCFunction)store_reversed, METH_NOARGS,
     store_reversed_doc},
    {"_update_pairs", (PyCFunction)(void (*)(void))store_update_pairs,
     METH_FASTCALL, store_update_pairs_doc},
    {"_attach", (PyCFunction)store_attach, METH_VARARGS, store_attach_doc},
    {"_detach", (PyCFunction)store_detach, METH_NOARGS, store_detach_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef store_getset[] = {
    {"_env", (getter)store_get_env, NULL,
     "The Environment, or None when closed.", NULL},
    {"is_alive", (getter)store_get_is_alive, NULL,
     "True until the store is closed or dropped.", NULL},
    {"pending_writes", (getter)store_get_pending_writes,
     (setter)store_set_pending_writes,
     "Writes since the last sync.", NULL},
    {"sync_threshold", (getter)store_get_sync_threshold,
     (setter)store_set_sync_threshold,
     "Number of writes after which the store syncs by itself.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(store_doc,
"Store()\n"
"--\n"
"\n"
"Base class of sharedb.ShareDB that holds its per-key methods.");

static PyType_Slot store_slots[] = {
    {Py_tp_doc, (void *)store_doc},
    {Py_tp_new, store_new},
    {Py_tp_dealloc, store_dealloc},
    {Py_tp_traverse, store_traverse},
    {Py_tp_clear, store_clear_refs},
    {Py_tp_iter, store_iter},
    {Py_tp_methods, store_methods},
    {Py_tp_getset, store_getset},
    {Py_mp_length, store_len},
    {Py_mp_subscript, store_subscript},
    {Py_mp_ass_subscript, store_ass_subscript},
    {Py_sq_length, store_len},
    {Py_sq_contains, store_contains},
    {0, NULL},
};

static PyType_Spec store_spec = {
    .name = "sharedb._lmdb.Store",
    .basicsize = sizeof(StoreObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_IMMUTABLETYPE,
    .slots = store_slots,
};

int
sharedb_store_setup_type(PyObject *module, sharedb_state *state)
{
    state->store_type = (PyTypeObject *)PyType_FromModuleAndSpec(
        module, &store_spec, NULL);
    if (state->store_type == NULL) {
        return -1;
    }
    if (PyModule_AddType(module, state->store_type) < 0) {
        return -1;
    }
    state->store_iter_type = (PyTypeObject *)PyType_FromModuleAndSpec(
        module, &store_iter_spec, NULL);
    if (state->store_iter_type == NULL) {
        return -1;
    }
    return 0;
}
