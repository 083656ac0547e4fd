/* msgpack encoding and decoding of keys and values.

   The encoder writes the same bytes as msgpack.packb(obj, use_bin_type=True)
   from msgpack-python 1.x, so stores stay readable by plain msgpack.  The
   decoder reads what msgpack.unpackb(data, raw=False, use_list=True,
   strict_map_key=False) reads, except that an array used as a map key
   comes back as a tuple, so that every dict the encoder accepts reads back
   equal. */

#ifndef SHAREDB_CODEC_H
#define SHAREDB_CODEC_H

#include "module.h"

/* Size of the storage inside sharedb_buffer.  It holds any valid key
   (LMDB's maximum key size is 511 bytes) and most values without a heap
   allocation. */
#define SHAREDB_BUFFER_INLINE 512

/* Growable byte buffer.  data points at inline_data until the contents
   outgrow it, then at memory from PyMem_Malloc. */
typedef struct {
    char *data;
    Py_ssize_t length;
    Py_ssize_t capacity;
    char inline_data[SHAREDB_BUFFER_INLINE];
} sharedb_buffer;

static inline void
sharedb_buffer_init(sharedb_buffer *buffer)
{
    buffer->data = buffer->inline_data;
    buffer->length = 0;
    buffer->capacity = SHAREDB_BUFFER_INLINE;
}

/* Free heap storage, if any, and leave the buffer empty and usable. */
void sharedb_buffer_release(sharedb_buffer *buffer);

/* Make room for extra more bytes.  Returns -1 with MemoryError set. */
int sharedb_buffer_reserve(sharedb_buffer *buffer, Py_ssize_t extra);

int sharedb_buffer_append(sharedb_buffer *buffer, const void *bytes,
                          Py_ssize_t size);

/* Flags of sharedb_msgpack_pack. */
enum {
    /* Write map entries sorted by the bytes of their packed keys, so that
       equal dicts pack to equal bytes whatever their insertion order. */
    SHAREDB_PACK_CANONICAL = 1,
};

/* Append the msgpack encoding of obj to out.  Returns 0, or -1 with an
   exception set: TypeError for an object msgpack cannot encode or a map
   key that could not be read back as a dict key, OverflowError for an int
   outside [-2**63, 2**64), ValueError for an object inside more than 1024
   containers (msgpack-python's limit), UnicodeEncodeError for a str with
   lone surrogates, RuntimeError for a dict or list that changes size
   while it is packed.  On failure out may hold a partial encoding. */
int sharedb_msgpack_pack(sharedb_state *state, PyObject *obj,
                         sharedb_buffer *out, int flags);

/* Decode the single msgpack object that fills data[0:size].  Returns a
   new reference, or NULL with ValueError for truncated, malformed or
   trailing data or nesting deeper than 1024 levels, UnicodeDecodeError
   for a str that is not UTF-8, TypeError for an unhashable map key, and
   what msgpack.unpackb raises for a bad ext record. */
PyObject *sharedb_msgpack_unpack(sharedb_state *state, const char *data,
                                 Py_ssize_t size);

/* Module-level functions msgpack_pack(obj, canonical=False) and
   msgpack_unpack(data), which expose the codec for tests. */
extern PyMethodDef sharedb_codec_methods[];

#endif /* SHAREDB_CODEC_H */
