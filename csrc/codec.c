/* msgpack encoder and decoder for keys and values, written from the
   msgpack specification.  Only ext records go through the msgpack
   package.  msgpack.packb packs ExtType and Timestamp objects and
   msgpack.unpackb decodes ext records, so those types behave exactly as
   in msgpack-python. */

/* Python.h, included by codec.h, must come before the system headers
   because it sets feature-test macros. */
#include "codec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Packing an object nested inside more than this many containers raises
   ValueError("recursion limit exceeded."), at the same depth as
   msgpack.packb of msgpack-python 1.2.4.  The decoder uses the same
   bound, so it reads back everything the encoder writes.  The bound also
   keeps the recursion of both shallow on the C stack. */
enum {
    NEST_LIMIT = 1024,
};

/* The largest length a msgpack str, bin, array or map header can hold. */
static const unsigned long long MAX_ITEM_LENGTH = 0xffffffffULL;

/* ---------------------------------------------------------------------
   Growable buffer. */

void
sharedb_buffer_release(sharedb_buffer *buffer)
{
    if (buffer->data != buffer->inline_data) {
        PyMem_Free(buffer->data);
    }
    sharedb_buffer_init(buffer);
}

int
sharedb_buffer_reserve(sharedb_buffer *buffer, Py_ssize_t extra)
{
    Py_ssize_t needed;
    Py_ssize_t capacity;
    char *data;

    if (extra < 0) {
        PyErr_SetString(PyExc_SystemError,
                        "sharedb_buffer_reserve: negative size");
        return -1;
    }
    if (extra <= buffer->capacity - buffer->length) {
        return 0;
    }
    if (extra > PY_SSIZE_T_MAX - buffer->length) {
        PyErr_NoMemory();
        return -1;
    }
    needed = buffer->length + extra;
    if (buffer->capacity > PY_SSIZE_T_MAX / 2) {
        capacity = PY_SSIZE_T_MAX;
    }
    else {
        capacity = buffer->capacity * 2;
    }
    if (capacity < needed) {
        capacity = needed;
    }

    if (buffer->data == buffer->inline_data) {
        data = PyMem_Malloc((size_t)capacity);
        if (data != NULL) {
            memcpy(data, buffer->inline_data, (size_t)buffer->length);
        }
    }
    else {
        data = PyMem_Realloc(buffer->data, (size_t)capacity);
    }
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    buffer->data = data;
    buffer->capacity = capacity;
    return 0;
}

int
sharedb_buffer_append(sharedb_buffer *buffer, const void *bytes,
                      Py_ssize_t size)
{
    if (sharedb_buffer_reserve(buffer, size) < 0) {
        return -1;
    }
    if (size > 0) {
        memcpy(buffer->data + buffer->length, bytes, (size_t)size);
    }
    buffer->length += size;
    return 0;
}

/* Extend the buffer by size bytes and return a pointer to them, or NULL
   with MemoryError set.  The caller must write all size bytes. */
static inline unsigned char *
buffer_extend(sharedb_buffer *buffer, Py_ssize_t size)
{
    unsigned char *tail;

    if (size > buffer->capacity - buffer->length
        && sharedb_buffer_reserve(buffer, size) < 0)
    {
        return NULL;
    }
    tail = (unsigned char *)buffer->data + buffer->length;
    buffer->length += size;
    return tail;
}

/* ---------------------------------------------------------------------
   Big-endian loads and stores. */

static inline void
store_u16(unsigned char *p, uint16_t value)
{
    p[0] = (unsigned char)(value >> 8);
    p[1] = (unsigned char)value;
}

static inline void
store_u32(unsigned char *p, uint32_t value)
{
    p[0] = (unsigned char)(value >> 24);
    p[1] = (unsigned char)(value >> 16);
    p[2] = (unsigned char)(value >> 8);
    p[3] = (unsigned char)value;
}

static inline void
store_u64(unsigned char *p, uint64_t value)
{
    store_u32(p, (uint32_t)(value >> 32));
    store_u32(p + 4, (uint32_t)value);
}

static inline uint16_t
load_u16(const unsigned char *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t
load_u32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16)
           | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static inline uint64_t
load_u64(const unsigned char *p)
{
    return ((uint64_t)load_u32(p) << 32) | load_u32(p + 4);
}

/* ---------------------------------------------------------------------
   Encoder. */

typedef struct {
    sharedb_state *state;
    sharedb_buffer *out;
    int flags;
} packer;

/* Position of one map entry written to the output, for the canonical
   sort.  key is filled in only once all entries are written, because the
   output may move while it grows. */
typedef struct {
    const unsigned char *key;
    Py_ssize_t offset;          /* of the key, from the start of out */
    Py_ssize_t key_length;
    Py_ssize_t entry_length;    /* key and value */
} map_entry;

static int pack_object(packer *packer, PyObject *obj, int depth,
                       int in_key);

static inline int
write_byte(sharedb_buffer *out, unsigned char byte)
{
    unsigned char *p = buffer_extend(out, 1);

    if (p == NULL) {
        return -1;
    }
    p[0] = byte;
    return 0;
}

static inline int
write_tag_u8(sharedb_buffer *out, unsigned char tag, uint8_t value)
{
    unsigned char *p = buffer_extend(out, 2);

    if (p == NULL) {
        return -1;
    }
    p[0] = tag;
    p[1] = value;
    return 0;
}

static inline int
write_tag_u16(sharedb_buffer *out, unsigned char tag, uint16_t value)
{
    unsigned char *p = buffer_extend(out, 3);

    if (p == NULL) {
        return -1;
    }
    p[0] = tag;
    store_u16(p + 1, value);
    return 0;
}

static inline int
write_tag_u32(sharedb_buffer *out, unsigned char tag, uint32_t value)
{
    unsigned char *p = buffer_extend(out, 5);

    if (p == NULL) {
        return -1;
    }
    p[0] = tag;
    store_u32(p + 1, value);
    return 0;
}

static inline int
write_tag_u64(sharedb_buffer *out, unsigned char tag, uint64_t value)
{
    unsigned char *p = buffer_extend(out, 9);

    if (p == NULL) {
        return -1;
    }
    p[0] = tag;
    store_u64(p + 1, value);
    return 0;
}

static int
pack_unsigned(sharedb_buffer *out, unsigned long long value)
{
    if (value < 0x80) {
        return write_byte(out, (unsigned char)value);
    }
    if (value <= 0xff) {
        return write_tag_u8(out, 0xcc, (uint8_t)value);
    }
    if (value <= 0xffff) {
        return write_tag_u16(out, 0xcd, (uint16_t)value);
    }
    if (value <= 0xffffffffULL) {
        return write_tag_u32(out, 0xce, (uint32_t)value);
    }
    return write_tag_u64(out, 0xcf, (uint64_t)value);
}

static int
pack_signed(sharedb_buffer *out, long long value)
{
    if (value >= 0) {
        return pack_unsigned(out, (unsigned long long)value);
    }
    if (value >= -32) {
        return write_byte(out, (unsigned char)(0xe0 | (value + 32)));
    }
    if (value >= INT8_MIN) {
        return write_tag_u8(out, 0xd0, (uint8_t)value);
    }
    if (value >= INT16_MIN) {
        return write_tag_u16(out, 0xd1, (uint16_t)value);
    }
    if (value >= INT32_MIN) {
        return write_tag_u32(out, 0xd2, (uint32_t)value);
    }
    return write_tag_u64(out, 0xd3, (uint64_t)value);
}

static int
raise_int_out_of_range(void)
{
    PyErr_SetString(PyExc_OverflowError, "Integer value out of range");
    return -1;
}

static int
pack_int(sharedb_buffer *out, PyObject *obj)
{
    int overflow;
    long long value;
    unsigned long long unsigned_value;

    value = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (overflow == 0) {
        if (value == -1 && PyErr_Occurred()) {
            return -1;
        }
        return pack_signed(out, value);
    }
    if (overflow < 0) {
        return raise_int_out_of_range();
    }
    unsigned_value = PyLong_AsUnsignedLongLong(obj);
    if (unsigned_value == (unsigned long long)-1 && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
            PyErr_Clear();
            return raise_int_out_of_range();
        }
        return -1;
    }
    return pack_unsigned(out, unsigned_value);
}

static int
pack_float(sharedb_buffer *out, double value)
{
    uint64_t bits;

    memcpy(&bits, &value, sizeof(bits));
    return write_tag_u64(out, 0xcb, bits);
}

static int
pack_str(sharedb_buffer *out, PyObject *obj)
{
    Py_ssize_t length;
    const char *utf8;
    unsigned char *p;

    /* The UTF-8 form is cached on the str object, so packing the same
       key again does not encode it again.  Lone surrogates raise
       UnicodeEncodeError here. */
    utf8 = PyUnicode_AsUTF8AndSize(obj, &length);
    if (utf8 == NULL) {
        return -1;
    }
    if ((unsigned long long)length > MAX_ITEM_LENGTH) {
        PyErr_SetString(PyExc_ValueError, "unicode string is too large");
        return -1;
    }
    if (length < 32) {
        p = buffer_extend(out, 1 + length);
        if (p == NULL) {
            return -1;
        }
        p[0] = (unsigned char)(0xa0 | length);
        memcpy(p + 1, utf8, (size_t)length);
        return 0;
    }
    if (length <= 0xff) {
        if (write_tag_u8(out, 0xd9, (uint8_t)length) < 0) {
            return -1;
        }
    }
    else if (length <= 0xffff) {
        if (write_tag_u16(out, 0xda, (uint16_t)length) < 0) {
            return -1;
        }
    }
    else if (write_tag_u32(out, 0xdb, (uint32_t)length) < 0) {
        return -1;
    }
    return sharedb_buffer_append(out, utf8, length);
}

/* Write a bin record.  The caller has checked that length fits in the
   32-bit length field. */
static int
pack_bin(sharedb_buffer *out, const void *data, Py_ssize_t length)
{
    if (length <= 0xff) {
        if (write_tag_u8(out, 0xc4, (uint8_t)length) < 0) {
            return -1;
        }
    }
    else if (length <= 0xffff) {
        if (write_tag_u16(out, 0xc5, (uint16_t)length) < 0) {
            return -1;
        }
    }
    else if (write_tag_u32(out, 0xc6, (uint32_t)length) < 0) {
        return -1;
    }
    return sharedb_buffer_append(out, data, length);
}

static int
pack_bytes_like(sharedb_buffer *out, PyObject *obj)
{
    const char *data;
    Py_ssize_t length;

    if (PyBytes_Check(obj)) {
        data = PyBytes_AS_STRING(obj);
        length = PyBytes_GET_SIZE(obj);
    }
    else {
        data = PyByteArray_AS_STRING(obj);
        length = PyByteArray_GET_SIZE(obj);
    }
    if ((unsigned long long)length > MAX_ITEM_LENGTH) {
        PyErr_Format(PyExc_ValueError, "%.200s object is too large",
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    return pack_bin(out, data, length);
}

/* Pack the bytes of a memoryview.  PyBUF_SIMPLE raises BufferError for a
   view that is not C-contiguous, as msgpack-python does. */
static int
pack_memoryview(sharedb_buffer *out, PyObject *obj)
{
    Py_buffer view;
    int result;

    if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    if ((unsigned long long)view.len > MAX_ITEM_LENGTH) {
        PyErr_SetString(PyExc_ValueError, "memoryview is too large");
        result = -1;
    }
    else {
        result = pack_bin(out, view.buf, view.len);
    }
    PyBuffer_Release(&view);
    return result;
}

static int
pack_array_header(sharedb_buffer *out, Py_ssize_t length)
{
    if ((unsigned long long)length > MAX_ITEM_LENGTH) {
        /* NOTE: this message follows msgpack-python's pattern; a list
           this long was never built to check its exact wording. */
        PyErr_SetString(PyExc_ValueError, "list is too large");
        return -1;
    }
    if (length < 16) {
        return write_byte(out, (unsigned char)(0x90 | length));
    }
    if (length <= 0xffff) {
        return write_tag_u16(out, 0xdc, (uint16_t)length);
    }
    return write_tag_u32(out, 0xdd, (uint32_t)length);
}

static int
pack_map_header(sharedb_buffer *out, Py_ssize_t length)
{
    if ((unsigned long long)length > MAX_ITEM_LENGTH) {
        PyErr_SetString(PyExc_ValueError, "dict is too large");
        return -1;
    }
    if (length < 16) {
        return write_byte(out, (unsigned char)(0x80 | length));
    }
    if (length <= 0xffff) {
        return write_tag_u16(out, 0xde, (uint16_t)length);
    }
    return write_tag_u32(out, 0xdf, (uint32_t)length);
}

/* Reject obj as a map key.  A list would decode as a tuple in key
   position, which is not equal to it, and a decoded dict is not hashable,
   so neither dict would read back equal. */
static int
raise_bad_key(PyObject *obj)
{
    PyErr_Format(PyExc_TypeError,
                 "can not serialize '%.200s' object as a map key",
                 Py_TYPE(obj)->tp_name);
    return -1;
}

/* Pack ExtType and Timestamp objects with msgpack.packb, which writes
   them exactly as msgpack-python does. */
static int
pack_ext(packer *packer, PyObject *obj)
{
    PyObject *keywords = NULL;
    PyObject *packed = NULL;
    PyObject *args[2] = {obj, Py_True};
    int result = -1;

    keywords = Py_BuildValue("(s)", "use_bin_type");
    if (keywords == NULL) {
        goto done;
    }
    packed = PyObject_Vectorcall(packer->state->codec.packb, args, 1,
                                 keywords);
    if (packed == NULL) {
        goto done;
    }
    if (!PyBytes_Check(packed)) {
        PyErr_Format(PyExc_TypeError,
                     "msgpack.packb() returned '%.200s', not bytes",
                     Py_TYPE(packed)->tp_name);
        goto done;
    }
    result = sharedb_buffer_append(packer->out, PyBytes_AS_STRING(packed),
                                   PyBytes_GET_SIZE(packed));

done:
    Py_XDECREF(keywords);
    Py_XDECREF(packed);
    return result;
}

/* Pack the items of a list or tuple.  The length is read again on every
   step because packing an item can run Python code that shrinks a list,
   and each item is kept alive while it is packed. */
static int
pack_sequence(packer *packer, PyObject *obj, int depth, int in_key)
{
    Py_ssize_t length = Py_SIZE(obj);
    int is_list = PyList_Check(obj);
    PyObject *item;
    int result;

    if (pack_array_header(packer->out, length) < 0) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < length; i++) {
        if (i >= Py_SIZE(obj)) {
            PyErr_SetString(PyExc_RuntimeError,
                            "list changed size during packing");
            return -1;
        }
        if (is_list) {
            item = PyList_GET_ITEM(obj, i);
        }
        else {
            item = PyTuple_GET_ITEM(obj, i);
        }
        Py_INCREF(item);
        result = pack_object(packer, item, depth + 1, in_key);
        Py_DECREF(item);
        if (result < 0) {
            return -1;
        }
    }
    return 0;
}

static int
compare_bytes(const unsigned char *a, Py_ssize_t a_length,
              const unsigned char *b, Py_ssize_t b_length)
{
    Py_ssize_t common = a_length < b_length ? a_length : b_length;
    int order = memcmp(a, b, (size_t)common);

    if (order != 0) {
        return order;
    }
    return (a_length > b_length) - (a_length < b_length);
}

/* Order entries by their packed key, then by their packed value, so that
   entries with equal packed keys (two NaN keys, say) still sort the same
   way every time and qsort's instability cannot show in the output. */
static int
compare_entries(const void *a, const void *b)
{
    const map_entry *left = a;
    const map_entry *right = b;
    int order;

    order = compare_bytes(left->key, left->key_length, right->key,
                          right->key_length);
    if (order != 0) {
        return order;
    }
    return compare_bytes(left->key + left->key_length,
                         left->entry_length - left->key_length,
                         right->key + right->key_length,
                         right->entry_length - right->key_length);
}

/* Reorder the count entries just written to out, starting at offset
   start, by the bytes of their packed keys. */
static int
sort_entries(sharedb_buffer *out, map_entry *entries, Py_ssize_t count,
             Py_ssize_t start)
{
    Py_ssize_t total = out->length - start;
    unsigned char *sorted;
    unsigned char *p;

    for (Py_ssize_t i = 0; i < count; i++) {
        entries[i].key = (unsigned char *)out->data + entries[i].offset;
    }
    qsort(entries, (size_t)count, sizeof(map_entry), compare_entries);

    sorted = PyMem_Malloc((size_t)total);
    if (sorted == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    p = sorted;
    for (Py_ssize_t i = 0; i < count; i++) {
        memcpy(p, entries[i].key, (size_t)entries[i].entry_length);
        p += entries[i].entry_length;
    }
    memcpy(out->data + start, sorted, (size_t)total);
    PyMem_Free(sorted);
    return 0;
}

static int
pack_entry(packer *packer, PyObject *key, PyObject *value, int depth,
           map_entry *entry)
{
    sharedb_buffer *out = packer->out;
    Py_ssize_t start = out->length;

    if (pack_object(packer, key, depth + 1, 1) < 0) {
        return -1;
    }
    if (entry != NULL) {
        entry->offset = start;
        entry->key_length = out->length - start;
    }
    if (pack_object(packer, value, depth + 1, 0) < 0) {
        return -1;
    }
    if (entry != NULL) {
        entry->entry_length = out->length - start;
    }
    return 0;
}

static map_entry *
new_entries(packer *packer, Py_ssize_t count)
{
    map_entry *entries;

    if (!(packer->flags & SHAREDB_PACK_CANONICAL) || count < 2) {
        return NULL;
    }
    entries = PyMem_New(map_entry, (size_t)count);
    if (entries == NULL) {
        PyErr_NoMemory();
    }
    return entries;
}

static int
raise_dict_changed(void)
{
    PyErr_SetString(PyExc_RuntimeError,
                    "dictionary changed size during iteration");
    return -1;
}

/* Pack an exact dict from its own storage.  Packing a key or value can
   run Python code, so each pair is kept alive while it is packed.  The
   size is checked after every entry, and a dict that changes size raises
   RuntimeError, as iterating it in Python would. */
static int
pack_dict(packer *packer, PyObject *dict, int depth)
{
    Py_ssize_t count = PyDict_GET_SIZE(dict);
    Py_ssize_t start;
    Py_ssize_t position = 0;
    Py_ssize_t index = 0;
    PyObject *key;
    PyObject *value;
    map_entry *entries = NULL;
    int result = -1;

    if (pack_map_header(packer->out, count) < 0) {
        return -1;
    }
    entries = new_entries(packer, count);
    if (entries == NULL && PyErr_Occurred()) {
        return -1;
    }
    start = packer->out->length;
    while (PyDict_Next(dict, &position, &key, &value)) {
        if (index >= count) {
            raise_dict_changed();
            goto done;
        }
        Py_INCREF(key);
        Py_INCREF(value);
        result = pack_entry(packer, key, value, depth,
                            entries != NULL ? &entries[index] : NULL);
        Py_DECREF(key);
        Py_DECREF(value);
        if (result < 0) {
            goto done;
        }
        result = -1;
        index++;
        if (PyDict_GET_SIZE(dict) != count) {
            raise_dict_changed();
            goto done;
        }
    }
    if (index != count) {
        raise_dict_changed();
        goto done;
    }
    if (entries != NULL
        && sort_entries(packer->out, entries, count, start) < 0)
    {
        goto done;
    }
    result = 0;

done:
    PyMem_Free(entries);
    return result;
}

/* Pack a dict subclass from the list its items() method returns, as
   msgpack-python does, so that an OrderedDict packs in its own order.
   The header counts the pairs items() returned, so the output stays
   valid even if the subclass's __len__ disagrees with them. */
static int
pack_dict_subclass(packer *packer, PyObject *dict, int depth)
{
    PyObject *items;
    PyObject *pair;
    Py_ssize_t count;
    Py_ssize_t start;
    map_entry *entries = NULL;
    int result = -1;

    /* items holds a reference to every pair, so Python code run while
       packing cannot free them. */
    items = PyMapping_Items(dict);
    if (items == NULL) {
        return -1;
    }
    count = PyList_GET_SIZE(items);
    if (pack_map_header(packer->out, count) < 0) {
        goto done;
    }
    entries = new_entries(packer, count);
    if (entries == NULL && PyErr_Occurred()) {
        goto done;
    }
    start = packer->out->length;
    for (Py_ssize_t i = 0; i < count; i++) {
        pair = PyList_GET_ITEM(items, i);
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
            PyErr_Format(PyExc_TypeError,
                         "items() of '%.200s' must return (key, value) "
                         "pairs", Py_TYPE(dict)->tp_name);
            goto done;
        }
        if (pack_entry(packer, PyTuple_GET_ITEM(pair, 0),
                       PyTuple_GET_ITEM(pair, 1), depth,
                       entries != NULL ? &entries[i] : NULL) < 0)
        {
            goto done;
        }
    }
    if (entries != NULL
        && sort_entries(packer->out, entries, count, start) < 0)
    {
        goto done;
    }
    result = 0;

done:
    PyMem_Free(entries);
    Py_DECREF(items);
    return result;
}

/* Count one level of C recursion before packing the items of a
   container.  NEST_LIMIT already bounds the recursion, so this only
   guards a caller that is itself deep in C calls.  Python 3.10 and 3.11
   count Python frames in the same budget, 1000 by default, which would
   raise RecursionError before NEST_LIMIT, so they skip the check.
   NOTE: Python 3.12 and later have a separate C budget, but a debug
   build's can be below NEST_LIMIT and raise RecursionError where
   msgpack-python packs. */
static inline int
enter_container(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    if (Py_EnterRecursiveCall(" while packing msgpack")) {
        return -1;
    }
#endif
    return 0;
}

static inline void
leave_container(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    Py_LeaveRecursiveCall();
#endif
}

/* Pack a list or tuple.  Only here can an ExtType reach the encoder,
   because msgpack.ExtType is a tuple subclass.  msgpack-python tests for
   ExtType before it tests for tuples, and so does this function. */
static int
pack_list_or_tuple(packer *packer, PyObject *obj, int depth, int in_key)
{
    int result;

    if (PyTuple_Check(obj)) {
        if (!PyTuple_CheckExact(obj)) {
            if (sharedb_codec_load(packer->state) < 0) {
                return -1;
            }
            if (PyObject_TypeCheck(
                    obj, (PyTypeObject *)packer->state->codec.ext_type))
            {
                return pack_ext(packer, obj);
            }
        }
    }
    else if (in_key) {
        return raise_bad_key(obj);
    }

    if (enter_container() < 0) {
        return -1;
    }
    result = pack_sequence(packer, obj, depth, in_key);
    leave_container();
    return result;
}

static int
pack_any_dict(packer *packer, PyObject *obj, int depth, int in_key)
{
    int result;

    if (in_key) {
        return raise_bad_key(obj);
    }
    if (enter_container() < 0) {
        return -1;
    }
    if (PyDict_CheckExact(obj)) {
        result = pack_dict(packer, obj, depth);
    }
    else {
        result = pack_dict_subclass(packer, obj, depth);
    }
    leave_container();
    return result;
}

/* Pack an object of a type outside the builtin families: a Timestamp,
   or an error. */
static int
pack_other(packer *packer, PyObject *obj)
{
    if (sharedb_codec_load(packer->state) < 0) {
        return -1;
    }
    /* msgpack-python packs only exact Timestamp objects, and raises
       TypeError for subclasses. */
    if (Py_IS_TYPE(obj, (PyTypeObject *)packer->state->codec.timestamp_type)) {
        return pack_ext(packer, obj);
    }
    PyErr_Format(PyExc_TypeError, "can not serialize '%.200s' object",
                 Py_TYPE(obj)->tp_name);
    return -1;
}

/* Append the encoding of obj, which sits inside depth containers.
   in_key is true inside a map key, where lists and dicts are rejected
   and tuples pass the flag on to their items.

   No class can derive from two of the builtin types tested below, so
   their families exclude one another.  The order of the tests therefore
   matters only for bool, tested before int, and for ExtType, tested
   before tuple. */
static int
pack_object(packer *packer, PyObject *obj, int depth, int in_key)
{
    sharedb_buffer *out = packer->out;

    if (depth > NEST_LIMIT) {
        PyErr_SetString(PyExc_ValueError, "recursion limit exceeded.");
        return -1;
    }
    if (obj == Py_None) {
        return write_byte(out, 0xc0);
    }
    if (obj == Py_True) {
        return write_byte(out, 0xc3);
    }
    if (obj == Py_False) {
        return write_byte(out, 0xc2);
    }
    if (PyLong_Check(obj)) {
        return pack_int(out, obj);
    }
    if (PyUnicode_Check(obj)) {
        return pack_str(out, obj);
    }
    if (PyFloat_Check(obj)) {
        return pack_float(out, PyFloat_AS_DOUBLE(obj));
    }
    if (PyBytes_Check(obj) || PyByteArray_Check(obj)) {
        return pack_bytes_like(out, obj);
    }
    if (PyList_Check(obj) || PyTuple_Check(obj)) {
        return pack_list_or_tuple(packer, obj, depth, in_key);
    }
    if (PyDict_Check(obj)) {
        return pack_any_dict(packer, obj, depth, in_key);
    }
    if (PyMemoryView_Check(obj)) {
        return pack_memoryview(out, obj);
    }
    return pack_other(packer, obj);
}

int
sharedb_msgpack_pack(sharedb_state *state, PyObject *obj,
                     sharedb_buffer *out, int flags)
{
    packer packer = {state, out, flags};

    return pack_object(&packer, obj, 0, 0);
}

/* ---------------------------------------------------------------------
   Decoder.

   position only moves forward and never passes end.  Every read first
   checks that enough bytes remain, comparing lengths with end - position
   rather than forming position + length, which could overflow. */

typedef struct {
    sharedb_state *state;
    const unsigned char *start;
    const unsigned char *position;
    const unsigned char *end;
} unpacker;

static PyObject *unpack_object(unpacker *unpacker, int depth, int in_key);

static inline Py_ssize_t
remaining(const unpacker *unpacker)
{
    return unpacker->end - unpacker->position;
}

static PyObject *
raise_truncated(const unpacker *unpacker, unsigned long long needed)
{
    PyErr_Format(PyExc_ValueError,
                 "msgpack data is truncated: %llu bytes needed at offset "
                 "%zd, %zd available", needed,
                 (Py_ssize_t)(unpacker->position - unpacker->start),
                 remaining(unpacker));
    return NULL;
}

/* Return a pointer to the next size bytes and step over them, or NULL
   with ValueError set if the data ends first. */
static inline const unsigned char *
take(unpacker *unpacker, unsigned long long size)
{
    const unsigned char *p = unpacker->position;

    if (size > (unsigned long long)remaining(unpacker)) {
        raise_truncated(unpacker, size);
        return NULL;
    }
    unpacker->position += size;
    return p;
}

/* Strings up to this many bytes go through the string cache. */
#define CACHED_STRING_MAX 32

/* Decode an ASCII str of length bytes at p, through the cache of the
   codec. */
static PyObject *
decode_short_ascii(unpacker *unpacker, const unsigned char *p,
                   Py_ssize_t length)
{
    PyObject **slot;
    PyObject *text;
    uint32_t hash = 2166136261u;

    /* FNV-1a of the bytes picks the slot. */
    for (Py_ssize_t i = 0; i < length; i++) {
        hash = (hash ^ p[i]) * 16777619u;
    }
    slot = &unpacker->state->codec.strings[hash &
                                           (SHAREDB_STRING_CACHE_SIZE - 1)];
    text = *slot;
    if (text != NULL && PyUnicode_GET_LENGTH(text) == length &&
        memcmp(PyUnicode_1BYTE_DATA(text), p, (size_t)length) == 0) {
        return Py_NewRef(text);
    }
    text = PyUnicode_New(length, 127);
    if (text == NULL) {
        return NULL;
    }
    memcpy(PyUnicode_1BYTE_DATA(text), p, (size_t)length);
    Py_XSETREF(*slot, Py_NewRef(text));
    return text;
}

static PyObject *
unpack_str(unpacker *unpacker, unsigned long long length)
{
    const unsigned char *p = take(unpacker, length);
    unsigned char high = 0;

    if (p == NULL) {
        return NULL;
    }
    if (length <= CACHED_STRING_MAX) {
        for (unsigned long long i = 0; i < length; i++) {
            high |= p[i];
        }
        if (high < 0x80) {
            return decode_short_ascii(unpacker, p, (Py_ssize_t)length);
        }
    }
    return PyUnicode_DecodeUTF8((const char *)p, (Py_ssize_t)length, NULL);
}

static PyObject *
unpack_bin(unpacker *unpacker, unsigned long long length)
{
    const unsigned char *p = take(unpacker, length);

    if (p == NULL) {
        return NULL;
    }
    return PyBytes_FromStringAndSize((const char *)p, (Py_ssize_t)length);
}

/* Decode the ext record that began at record_start and whose data of
   length bytes follows the position, by handing the whole record to
   msgpack.unpackb. */
static PyObject *
unpack_ext(unpacker *unpacker, const unsigned char *record_start,
           unsigned long long length)
{
    PyObject *record = NULL;
    PyObject *keywords = NULL;
    PyObject *result = NULL;
    PyObject *args[3];

    /* The type byte comes before the data. */
    if (take(unpacker, length + 1) == NULL) {
        return NULL;
    }
    if (sharedb_codec_load(unpacker->state) < 0) {
        return NULL;
    }
    record = PyBytes_FromStringAndSize(
        (const char *)record_start, unpacker->position - record_start);
    if (record == NULL) {
        goto done;
    }
    keywords = Py_BuildValue("(ss)", "raw", "strict_map_key");
    if (keywords == NULL) {
        goto done;
    }
    args[0] = record;
    args[1] = Py_False;
    args[2] = Py_False;
    result = PyObject_Vectorcall(unpacker->state->codec.unpackb, args, 1,
                                 keywords);

done:
    Py_XDECREF(record);
    Py_XDECREF(keywords);
    return result;
}

/* Decode an array as a list, or as a tuple inside a map key, where a
   list could not serve as a dict key. */
static PyObject *
unpack_array(unpacker *unpacker, unsigned long long length, int depth,
             int in_key)
{
    PyObject *array;
    PyObject *item;

    /* Every item takes at least one byte, so a longer array is
       truncated.  This also bounds the allocation by the input size. */
    if (length > (unsigned long long)remaining(unpacker)) {
        return raise_truncated(unpacker, length);
    }
    if (in_key) {
        array = PyTuple_New((Py_ssize_t)length);
    }
    else {
        array = PyList_New((Py_ssize_t)length);
    }
    if (array == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < (Py_ssize_t)length; i++) {
        item = unpack_object(unpacker, depth + 1, in_key);
        if (item == NULL) {
            Py_DECREF(array);
            return NULL;
        }
        if (in_key) {
            PyTuple_SET_ITEM(array, i, item);
        }
        else {
            PyList_SET_ITEM(array, i, item);
        }
    }
    return array;
}

static PyObject *
unpack_map(unpacker *unpacker, unsigned long long length, int depth)
{
    PyObject *dict;
    PyObject *key = NULL;
    PyObject *value = NULL;

    /* Every entry takes at least two bytes. */
    if (length > (unsigned long long)remaining(unpacker) / 2) {
        return raise_truncated(unpacker, length * 2);
    }
    dict = PyDict_New();
    if (dict == NULL) {
        return NULL;
    }
    for (unsigned long long i = 0; i < length; i++) {
        key = unpack_object(unpacker, depth + 1, 1);
        if (key == NULL) {
            goto error;
        }
        value = unpack_object(unpacker, depth + 1, 0);
        if (value == NULL) {
            goto error;
        }
        if (PyDict_SetItem(dict, key, value) < 0) {
            goto error;
        }
        Py_CLEAR(key);
        Py_CLEAR(value);
    }
    return dict;

error:
    Py_XDECREF(key);
    Py_XDECREF(value);
    Py_DECREF(dict);
    return NULL;
}

/* Return the int value, from the codec's cache when it holds it. */
static PyObject *
decode_int(unpacker *unpacker, long long value)
{
    sharedb_codec *codec = &unpacker->state->codec;
    size_t index = (size_t)((unsigned long long)value &
                            (SHAREDB_INT_CACHE_SIZE - 1));
    PyObject *number;

    if (value >= -5 && value <= 256) {
        /* CPython keeps these ints already. */
        return PyLong_FromLongLong(value);
    }
    if (codec->ints[index] != NULL && codec->int_values[index] == value) {
        return Py_NewRef(codec->ints[index]);
    }
    number = PyLong_FromLongLong(value);
    if (number != NULL) {
        Py_XSETREF(codec->ints[index], Py_NewRef(number));
        codec->int_values[index] = value;
    }
    return number;
}

/* Decode the fixed-width scalar whose tag is tag. */
static PyObject *
unpack_number(unpacker *unpacker, unsigned char tag)
{
    static const unsigned char widths[] = {4, 8, 1, 2, 4, 8, 1, 2, 4, 8};
    const unsigned char *p;
    uint64_t bits;
    float single;
    double value;

    /* Tags 0xca to 0xd3 are float32, float64, uint8 to uint64 and int8
       to int64. */
    p = take(unpacker, widths[tag - 0xca]);
    if (p == NULL) {
        return NULL;
    }
    switch (tag) {
    case 0xca:
        bits = load_u32(p);
        memcpy(&single, &bits, sizeof(single));
        return PyFloat_FromDouble((double)single);
    case 0xcb:
        bits = load_u64(p);
        memcpy(&value, &bits, sizeof(value));
        return PyFloat_FromDouble(value);
    case 0xcc:
        return PyLong_FromLong(p[0]);
    case 0xcd:
        return decode_int(unpacker, load_u16(p));
    case 0xce:
        return decode_int(unpacker, load_u32(p));
    case 0xcf:
        bits = load_u64(p);
        if (bits > (uint64_t)INT64_MAX) {
            return PyLong_FromUnsignedLongLong(bits);
        }
        return decode_int(unpacker, (long long)bits);
    case 0xd0:
        return PyLong_FromLong((int8_t)p[0]);
    case 0xd1:
        return decode_int(unpacker, (int16_t)load_u16(p));
    case 0xd2:
        return decode_int(unpacker, (int32_t)load_u32(p));
    default:
        return decode_int(unpacker, (int64_t)load_u64(p));
    }
}

/* Read the big-endian length of width bytes that follows a tag. */
static int
read_length(unpacker *unpacker, int width, unsigned long long *length)
{
    const unsigned char *p = take(unpacker, width);

    if (p == NULL) {
        return -1;
    }
    if (width == 1) {
        *length = p[0];
    }
    else if (width == 2) {
        *length = load_u16(p);
    }
    else {
        *length = load_u32(p);
    }
    return 0;
}

/* Decode the object at the position, which sits inside depth containers.
   in_key is true inside a map key. */
static PyObject *
unpack_object(unpacker *unpacker, int depth, int in_key)
{
    const unsigned char *record_start = unpacker->position;
    const unsigned char *p;
    unsigned long long length;
    unsigned char tag;

    if (depth > NEST_LIMIT) {
        PyErr_Format(PyExc_ValueError,
                     "msgpack data is nested deeper than %d levels",
                     NEST_LIMIT);
        return NULL;
    }
    p = take(unpacker, 1);
    if (p == NULL) {
        return NULL;
    }
    tag = p[0];

    if (tag <= 0x7f) {
        return PyLong_FromLong(tag);
    }
    if (tag >= 0xe0) {
        return PyLong_FromLong((signed char)tag);
    }
    if (tag <= 0x8f) {
        return unpack_map(unpacker, tag & 0x0f, depth);
    }
    if (tag <= 0x9f) {
        return unpack_array(unpacker, tag & 0x0f, depth, in_key);
    }
    if (tag <= 0xbf) {
        return unpack_str(unpacker, tag & 0x1f);
    }
    if (tag >= 0xca && tag <= 0xd3) {
        return unpack_number(unpacker, tag);
    }
    if (tag >= 0xd4 && tag <= 0xd8) {
        /* fixext 1, 2, 4, 8 and 16. */
        return unpack_ext(unpacker, record_start, 1ULL << (tag - 0xd4));
    }

    switch (tag) {
    case 0xc0:
        Py_RETURN_NONE;
    case 0xc2:
        Py_RETURN_FALSE;
    case 0xc3:
        Py_RETURN_TRUE;
    case 0xc4:
    case 0xc5:
    case 0xc6:
        if (read_length(unpacker, 1 << (tag - 0xc4), &length) < 0) {
            return NULL;
        }
        return unpack_bin(unpacker, length);
    case 0xc7:
    case 0xc8:
    case 0xc9:
        if (read_length(unpacker, 1 << (tag - 0xc7), &length) < 0) {
            return NULL;
        }
        return unpack_ext(unpacker, record_start, length);
    case 0xd9:
    case 0xda:
    case 0xdb:
        if (read_length(unpacker, 1 << (tag - 0xd9), &length) < 0) {
            return NULL;
        }
        return unpack_str(unpacker, length);
    case 0xdc:
    case 0xdd:
        if (read_length(unpacker, 2 << (tag - 0xdc), &length) < 0) {
            return NULL;
        }
        return unpack_array(unpacker, length, depth, in_key);
    case 0xde:
    case 0xdf:
        if (read_length(unpacker, 2 << (tag - 0xde), &length) < 0) {
            return NULL;
        }
        return unpack_map(unpacker, length, depth);
    default:
        /* 0xc1 is the only byte msgpack leaves unused. */
        PyErr_Format(PyExc_ValueError,
                     "invalid msgpack data: reserved byte 0x%02x at "
                     "offset %zd", tag,
                     (Py_ssize_t)(record_start - unpacker->start));
        return NULL;
    }
}

PyObject *
sharedb_msgpack_unpack(sharedb_state *state, const char *data,
                       Py_ssize_t size)
{
    unpacker unpacker;
    PyObject *result;

    unpacker.state = state;
    unpacker.start = (const unsigned char *)data;
    unpacker.position = unpacker.start;
    unpacker.end = unpacker.start + size;

    result = unpack_object(&unpacker, 0, 0);
    if (result == NULL) {
        return NULL;
    }
    if (unpacker.position != unpacker.end) {
        PyErr_Format(PyExc_ValueError,
                     "msgpack data has %zd bytes of extra data after the "
                     "object, which ends at offset %zd",
                     remaining(&unpacker),
                     (Py_ssize_t)(unpacker.position - unpacker.start));
        Py_DECREF(result);
        return NULL;
    }
    return result;
}

/* ---------------------------------------------------------------------
   Module functions. */

PyDoc_STRVAR(msgpack_pack_doc,
"msgpack_pack($module, obj, /, canonical=False)\n"
"--\n"
"\n"
"Return the msgpack encoding of obj, the same bytes as\n"
"msgpack.packb(obj, use_bin_type=True) unless canonical is true, which\n"
"sorts the entries of every map by their packed keys.\n"
"\n"
"Raises TypeError for an object msgpack cannot encode or a map key that\n"
"would not decode as a dict key, OverflowError for an int outside\n"
"[-2**63, 2**64), ValueError past 1024 levels of nesting or for a length\n"
"over 2**32 - 1, UnicodeEncodeError for a str with lone surrogates and\n"
"RuntimeError for a dict or list that changes size while it is packed.");

static PyObject *
codec_msgpack_pack(PyObject *module, PyObject *const *args,
                   Py_ssize_t nargs, PyObject *kwnames)
{
    sharedb_state *state = sharedb_state_from_module(module);
    Py_ssize_t keyword_count = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    PyObject *canonical = NULL;
    PyObject *name;
    PyObject *result = NULL;
    sharedb_buffer buffer;
    int flags = 0;
    int truth;

    if (nargs < 1 || nargs > 2) {
        PyErr_Format(PyExc_TypeError,
                     "msgpack_pack() takes 1 or 2 positional arguments "
                     "but %zd were given", nargs);
        return NULL;
    }
    if (nargs == 2) {
        canonical = args[1];
    }
    for (Py_ssize_t i = 0; i < keyword_count; i++) {
        name = PyTuple_GET_ITEM(kwnames, i);
        if (PyUnicode_CompareWithASCIIString(name, "canonical") != 0) {
            PyErr_Format(PyExc_TypeError,
                         "msgpack_pack() got an unexpected keyword "
                         "argument '%S'", name);
            return NULL;
        }
        if (canonical != NULL) {
            PyErr_SetString(PyExc_TypeError,
                            "msgpack_pack() got multiple values for "
                            "argument 'canonical'");
            return NULL;
        }
        canonical = args[nargs + i];
    }
    if (canonical != NULL) {
        truth = PyObject_IsTrue(canonical);
        if (truth < 0) {
            return NULL;
        }
        if (truth) {
            flags |= SHAREDB_PACK_CANONICAL;
        }
    }
    if (sharedb_codec_load(state) < 0) {
        return NULL;
    }

    sharedb_buffer_init(&buffer);
    if (sharedb_msgpack_pack(state, args[0], &buffer, flags) == 0) {
        result = PyBytes_FromStringAndSize(buffer.data, buffer.length);
    }
    sharedb_buffer_release(&buffer);
    return result;
}

PyDoc_STRVAR(msgpack_unpack_doc,
"msgpack_unpack($module, data, /)\n"
"--\n"
"\n"
"Decode the single msgpack object that fills the bytes-like data, as\n"
"msgpack.unpackb(data, raw=False, strict_map_key=False) does, except\n"
"that arrays inside map keys decode as tuples.\n"
"\n"
"Raises ValueError for truncated, malformed or trailing data or nesting\n"
"deeper than 1024 levels, UnicodeDecodeError for a str that is not\n"
"UTF-8 and TypeError for a map key that is not hashable.  Errors that\n"
"msgpack.unpackb raises for an invalid ext record pass through.");

static PyObject *
codec_msgpack_unpack(PyObject *module, PyObject *const *args,
                     Py_ssize_t nargs, PyObject *kwnames)
{
    sharedb_state *state = sharedb_state_from_module(module);
    Py_buffer view;
    PyObject *result;

    if (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0) {
        PyErr_SetString(PyExc_TypeError,
                        "msgpack_unpack() takes no keyword arguments");
        return NULL;
    }
    if (nargs != 1) {
        PyErr_Format(PyExc_TypeError,
                     "msgpack_unpack() takes exactly one argument "
                     "(%zd given)", nargs);
        return NULL;
    }
    if (sharedb_codec_load(state) < 0) {
        return NULL;
    }
    /* Holding the buffer keeps a bytearray from being resized while ext
       callbacks run Python code. */
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    result = sharedb_msgpack_unpack(state, view.buf, view.len);
    PyBuffer_Release(&view);
    return result;
}

PyMethodDef sharedb_codec_methods[] = {
    {"msgpack_pack", (PyCFunction)(void (*)(void))codec_msgpack_pack,
     METH_FASTCALL | METH_KEYWORDS, msgpack_pack_doc},
    {"msgpack_unpack", (PyCFunction)(void (*)(void))codec_msgpack_unpack,
     METH_FASTCALL | METH_KEYWORDS, msgpack_unpack_doc},
    {NULL, NULL, 0, NULL},
};
