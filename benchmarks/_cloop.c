/* The "C loop" system of the benchmark: the benchmark's operations written
 * directly against liblmdb, to show the cost of the storage engine alone.
 *
 * bench.py compiles this file with the vendored LMDB sources and runs it
 * once per round:
 *
 *     cloop DIR ORDERS OPS FLAGS
 *
 * DIR is an empty directory for the store. ORDERS is a file of
 * little-endian uint64 words: records, len_calls, then five counted lists
 * (count, keys...) in this order: load, get, contains, set, delete. OPS is
 * a comma-separated list of operations to run, from load, get, contains,
 * multiget, items, len, set, delete. FLAGS is a comma-separated list of
 * LMDB environment flags, from notls, nosync, nometasync, mapasync,
 * writemap, nordahead and nomeminit. bench.py passes the flags ShareDB
 * opens its stores with. One JSON object goes to stdout with,
 * for each operation, its seconds, count, checksum and errors, as
 * _worker.py reports them.
 *
 * Keys and values are the msgpack bytes the Python systems store: a key k
 * is the msgpack int k, its value the msgpack array [k, 2k, "abcdefgh"].
 * They are encoded before the timed loops, which only compare bytes and do
 * not decode values, so this is a lower bound on the work per operation.
 */

#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lmdb.h"

/* Room for the msgpack bytes of one key or value: a value is at most a
 * 1-byte array header, two 9-byte ints and a 9-byte string. */
#define SLOT 32

typedef struct {
    uint64_t count;
    uint64_t *keys;
} key_list;

typedef struct {
    uint64_t records;
    uint64_t len_calls;
    key_list load, get, contains, set, del;
    unsigned char *key_bytes;   /* SLOT bytes per key 0 .. records - 1 */
    unsigned char *value_bytes; /* SLOT bytes per key: [k, 2k, TEXT] */
    unsigned char *new_bytes;   /* SLOT bytes per key: [k, 2k, NEW_TEXT] */
    MDB_env *env;
    MDB_dbi dbi;
    int first_result;
} bench;

static void
fail(const char *what, int rc)
{
    fprintf(stderr, "cloop: %s failed: %s\n", what, mdb_strerror(rc));
    exit(1);
}

static void
check(const char *what, int rc)
{
    if (rc != MDB_SUCCESS) {
        fail(what, rc);
    }
}

static double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Write the msgpack encoding of a non-negative int, as msgpack-python
 * writes it: the shortest of fixint, uint8, uint16, uint32 and uint64. */
static size_t
pack_uint(uint64_t v, unsigned char *out)
{
    int size, i;

    if (v < 128) {
        out[0] = (unsigned char)v;
        return 1;
    }
    if (v < 256) {
        out[0] = 0xcc;
        size = 1;
    } else if (v < 65536) {
        out[0] = 0xcd;
        size = 2;
    } else if (v < 4294967296ULL) {
        out[0] = 0xce;
        size = 4;
    } else {
        out[0] = 0xcf;
        size = 8;
    }
    for (i = 0; i < size; i++) {
        out[1 + i] = (unsigned char)(v >> (8 * (size - 1 - i)));
    }
    return (size_t)size + 1;
}

/* Read back a key written by pack_uint; return -1 for any other bytes. */
static int64_t
unpack_uint(const unsigned char *data, size_t size)
{
    uint64_t v = 0;
    size_t i, width;

    if (size == 1 && data[0] < 128) {
        return data[0];
    }
    switch (size > 0 ? data[0] : 0) {
    case 0xcc: width = 1; break;
    case 0xcd: width = 2; break;
    case 0xce: width = 4; break;
    case 0xcf: width = 8; break;
    default: return -1;
    }
    if (size != width + 1) {
        return -1;
    }
    for (i = 0; i < width; i++) {
        v = (v << 8) | data[1 + i];
    }
    return (int64_t)v;
}

/* Each slot starts with its length byte, then the msgpack bytes. */
static void
pack_value(uint64_t k, const char *text, unsigned char *slot)
{
    size_t n = 1;

    slot[n++] = 0x93; /* fixarray of 3 */
    n += pack_uint(k, slot + n);
    n += pack_uint(2 * k, slot + n);
    slot[n++] = 0xa8; /* fixstr of 8 */
    memcpy(slot + n, text, 8);
    n += 8;
    slot[0] = (unsigned char)(n - 1);
}

static MDB_val
slot_val(unsigned char *slots, uint64_t k)
{
    MDB_val val;
    unsigned char *slot = slots + k * SLOT;

    val.mv_size = slot[0];
    val.mv_data = slot + 1;
    return val;
}

static int
same_bytes(const MDB_val *got, const MDB_val *expected)
{
    return got->mv_size == expected->mv_size &&
           memcmp(got->mv_data, expected->mv_data, got->mv_size) == 0;
}

static void
read_list(FILE *file, key_list *list, uint64_t limit)
{
    uint64_t i;

    if (fread(&list->count, 8, 1, file) != 1) {
        fprintf(stderr, "cloop: the orders file is truncated\n");
        exit(1);
    }
    list->keys = malloc((list->count ? list->count : 1) * 8);
    if (list->keys == NULL ||
        fread(list->keys, 8, list->count, file) != list->count) {
        fprintf(stderr, "cloop: cannot read %llu keys from the orders file\n",
                (unsigned long long)list->count);
        exit(1);
    }
    for (i = 0; i < list->count; i++) {
        if (list->keys[i] >= limit) {
            fprintf(stderr, "cloop: key %llu is out of range\n",
                    (unsigned long long)list->keys[i]);
            exit(1);
        }
    }
}

static void
report(bench *b, const char *op, double seconds, uint64_t count,
       uint64_t checksum, uint64_t errors)
{
    printf("%s\"%s\": {\"seconds\": %.9f, \"count\": %llu, \"checksum\": %llu, "
           "\"errors\": %llu}",
           b->first_result ? "" : ", ", op, seconds, (unsigned long long)count,
           (unsigned long long)checksum, (unsigned long long)errors);
    b->first_result = 0;
}

static uint64_t
entries(bench *b)
{
    MDB_stat stat;

    check("mdb_env_stat", mdb_env_stat(b->env, &stat));
    return stat.ms_entries;
}

static void
put_all(bench *b, const key_list *keys, unsigned char *values)
{
    MDB_txn *txn;
    MDB_val key, val;
    uint64_t i;

    check("mdb_txn_begin", mdb_txn_begin(b->env, NULL, 0, &txn));
    for (i = 0; i < keys->count; i++) {
        key = slot_val(b->key_bytes, keys->keys[i]);
        val = slot_val(values, keys->keys[i]);
        check("mdb_put", mdb_put(txn, b->dbi, &key, &val, 0));
    }
    check("mdb_txn_commit", mdb_txn_commit(txn));
}

static void
op_load(bench *b)
{
    double start = now();

    put_all(b, &b->load, b->value_bytes);
    double seconds = now() - start;
    uint64_t length = entries(b);
    report(b, "load", seconds, b->load.count, length, length != b->records);
}

/* One read snapshot per lookup: renew a reset read transaction, look up,
 * reset. This is the cheapest way LMDB offers to begin and end a read
 * transaction with MDB_NOTLS. */
static void
op_single_reads(bench *b, const char *op, const key_list *keys, int values)
{
    MDB_txn *txn;
    MDB_val key, val, expected;
    uint64_t i, k, checksum = 0, errors = 0;
    int rc;

    check("mdb_txn_begin", mdb_txn_begin(b->env, NULL, MDB_RDONLY, &txn));
    mdb_txn_reset(txn);
    double start = now();
    for (i = 0; i < keys->count; i++) {
        k = keys->keys[i];
        key = slot_val(b->key_bytes, k);
        check("mdb_txn_renew", mdb_txn_renew(txn));
        rc = mdb_get(txn, b->dbi, &key, &val);
        if (values) {
            expected = slot_val(b->value_bytes, k);
            if (rc == MDB_SUCCESS && same_bytes(&val, &expected)) {
                checksum += 3 * k;
            } else {
                errors++;
            }
        } else if (rc == MDB_SUCCESS) {
            checksum++;
            errors += k >= b->records;
        } else if (rc == MDB_NOTFOUND) {
            errors += k < b->records;
        } else {
            fail("mdb_get", rc);
        }
        mdb_txn_reset(txn);
    }
    double seconds = now() - start;
    mdb_txn_abort(txn);
    report(b, op, seconds, keys->count, checksum, errors);
}

static void
op_multiget(bench *b)
{
    MDB_txn *txn;
    MDB_val key, val, expected;
    uint64_t i, k, checksum = 0, errors = 0;

    double start = now();
    check("mdb_txn_begin", mdb_txn_begin(b->env, NULL, MDB_RDONLY, &txn));
    for (i = 0; i < b->get.count; i++) {
        k = b->get.keys[i];
        key = slot_val(b->key_bytes, k);
        expected = slot_val(b->value_bytes, k);
        if (mdb_get(txn, b->dbi, &key, &val) == MDB_SUCCESS &&
            same_bytes(&val, &expected)) {
            checksum += 3 * k;
        } else {
            errors++;
        }
    }
    mdb_txn_abort(txn);
    double seconds = now() - start;
    report(b, "multiget", seconds, b->get.count, checksum, errors);
}

static void
op_items(bench *b)
{
    MDB_txn *txn;
    MDB_cursor *cursor;
    MDB_val key, val, expected;
    uint64_t count = 0, checksum = 0, errors = 0;
    int64_t k;
    int rc;

    double start = now();
    check("mdb_txn_begin", mdb_txn_begin(b->env, NULL, MDB_RDONLY, &txn));
    check("mdb_cursor_open", mdb_cursor_open(txn, b->dbi, &cursor));
    while ((rc = mdb_cursor_get(cursor, &key, &val, MDB_NEXT)) == MDB_SUCCESS) {
        count++;
        k = unpack_uint(key.mv_data, key.mv_size);
        if (k < 0 || (uint64_t)k >= b->records) {
            errors++;
            continue;
        }
        expected = slot_val(b->value_bytes, (uint64_t)k);
        if (same_bytes(&val, &expected)) {
            checksum += 3 * (uint64_t)k;
        } else {
            errors++;
        }
    }
    if (rc != MDB_NOTFOUND) {
        fail("mdb_cursor_get", rc);
    }
    mdb_cursor_close(cursor);
    mdb_txn_abort(txn);
    double seconds = now() - start;
    errors += count != b->records;
    report(b, "items", seconds, count, checksum, errors);
}

static void
op_len(bench *b)
{
    uint64_t i, length = 0;

    double start = now();
    for (i = 0; i < b->len_calls; i++) {
        length = entries(b);
    }
    double seconds = now() - start;
    report(b, "len", seconds, b->len_calls, length, length != b->records);
}

/* One write transaction and commit per key, as db[k] = v does. */
static void
op_set(bench *b)
{
    MDB_txn *txn;
    MDB_val key, val, expected;
    uint64_t i, k, errors = 0;

    double start = now();
    for (i = 0; i < b->set.count; i++) {
        k = b->set.keys[i];
        key = slot_val(b->key_bytes, k);
        val = slot_val(b->new_bytes, k);
        check("mdb_txn_begin", mdb_txn_begin(b->env, NULL, 0, &txn));
        check("mdb_put", mdb_put(txn, b->dbi, &key, &val, 0));
        check("mdb_txn_commit", mdb_txn_commit(txn));
    }
    double seconds = now() - start;

    /* Read every overwritten value back, outside the timing. */
    check("mdb_txn_begin", mdb_txn_begin(b->env, NULL, MDB_RDONLY, &txn));
    for (i = 0; i < b->set.count; i++) {
        k = b->set.keys[i];
        key = slot_val(b->key_bytes, k);
        expected = slot_val(b->new_bytes, k);
        errors += mdb_get(txn, b->dbi, &key, &val) != MDB_SUCCESS ||
                  !same_bytes(&val, &expected);
    }
    mdb_txn_abort(txn);
    uint64_t length = entries(b);
    errors += length != b->records;
    report(b, "set", seconds, b->set.count, length, errors);
}

static void
op_delete(bench *b)
{
    MDB_txn *txn;
    MDB_val key, val;
    uint64_t i, errors = 0;
    int rc;

    double start = now();
    for (i = 0; i < b->del.count; i++) {
        key = slot_val(b->key_bytes, b->del.keys[i]);
        check("mdb_txn_begin", mdb_txn_begin(b->env, NULL, 0, &txn));
        rc = mdb_del(txn, b->dbi, &key, NULL);
        if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
            fail("mdb_del", rc);
        }
        check("mdb_txn_commit", mdb_txn_commit(txn));
    }
    double seconds = now() - start;

    /* Check the keys are gone, then put them back, outside the timing. */
    check("mdb_txn_begin", mdb_txn_begin(b->env, NULL, MDB_RDONLY, &txn));
    for (i = 0; i < b->del.count; i++) {
        key = slot_val(b->key_bytes, b->del.keys[i]);
        errors += mdb_get(txn, b->dbi, &key, &val) != MDB_NOTFOUND;
    }
    mdb_txn_abort(txn);
    uint64_t length = entries(b);
    errors += length != b->records - b->del.count;
    put_all(b, &b->del, b->value_bytes);
    errors += entries(b) != b->records;
    report(b, "delete", seconds, b->del.count, length, errors);
}

/* Return whether name is an item of the comma-separated list. */
static int
listed(const char *list, const char *name)
{
    size_t n = strlen(name);
    const char *p = list;

    while ((p = strstr(p, name)) != NULL) {
        if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0')) {
            return 1;
        }
        p += n;
    }
    return 0;
}

static unsigned int
env_flags(const char *names)
{
    static const struct {
        const char *name;
        unsigned int flag;
    } known[] = {
        {"notls", MDB_NOTLS},         {"nosync", MDB_NOSYNC},
        {"nometasync", MDB_NOMETASYNC}, {"mapasync", MDB_MAPASYNC},
        {"writemap", MDB_WRITEMAP},   {"nordahead", MDB_NORDAHEAD},
        {"nomeminit", MDB_NOMEMINIT},
    };
    unsigned int flags = 0;
    size_t i;

    for (i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (listed(names, known[i].name)) {
            flags |= known[i].flag;
        }
    }
    return flags;
}

int
main(int argc, char **argv)
{
    bench b;
    FILE *file;
    MDB_txn *txn;
    uint64_t k, limit;

    if (argc != 5) {
        fprintf(stderr, "usage: cloop DIR ORDERS OPS FLAGS\n");
        return 2;
    }
    memset(&b, 0, sizeof(b));
    b.first_result = 1;

    file = fopen(argv[2], "rb");
    if (file == NULL) {
        perror(argv[2]);
        return 1;
    }
    if (fread(&b.records, 8, 1, file) != 1 ||
        fread(&b.len_calls, 8, 1, file) != 1) {
        fprintf(stderr, "cloop: the orders file is truncated\n");
        return 1;
    }
    limit = b.records;
    read_list(file, &b.load, limit);
    read_list(file, &b.get, limit);
    /* The contains list also looks up absent keys above the records. */
    read_list(file, &b.contains, UINT64_MAX);
    read_list(file, &b.set, limit);
    read_list(file, &b.del, limit);
    fclose(file);

    /* Encode every key and value before any timing starts. The largest
     * contains key decides how many key slots are needed. */
    for (k = 0; k < b.contains.count; k++) {
        if (b.contains.keys[k] + 1 > limit) {
            limit = b.contains.keys[k] + 1;
        }
    }
    b.key_bytes = malloc(limit * SLOT);
    b.value_bytes = malloc(b.records * SLOT);
    b.new_bytes = malloc(b.records * SLOT);
    if (b.key_bytes == NULL || b.value_bytes == NULL || b.new_bytes == NULL) {
        fprintf(stderr, "cloop: out of memory for %llu records\n",
                (unsigned long long)b.records);
        return 1;
    }
    for (k = 0; k < limit; k++) {
        b.key_bytes[k * SLOT] =
            (unsigned char)pack_uint(k, b.key_bytes + k * SLOT + 1);
    }
    for (k = 0; k < b.records; k++) {
        pack_value(k, "abcdefgh", b.value_bytes + k * SLOT);
        pack_value(k, "ABCDEFGH", b.new_bytes + k * SLOT);
    }

    check("mdb_env_create", mdb_env_create(&b.env));
    /* 1 TiB of address space. The file only grows as pages are used:
     * without MDB_WRITEMAP as in any LMDB, and with it because the vendored
     * mdb.c grows the file with the data, as for ShareDB's uncapped map. */
    check("mdb_env_set_mapsize", mdb_env_set_mapsize(b.env, (size_t)1 << 40));
    check("mdb_env_open",
          mdb_env_open(b.env, argv[1], env_flags(argv[4]), 0644));
    check("mdb_txn_begin", mdb_txn_begin(b.env, NULL, 0, &txn));
    check("mdb_dbi_open", mdb_dbi_open(txn, NULL, 0, &b.dbi));
    check("mdb_txn_commit", mdb_txn_commit(txn));

    printf("{");
    if (listed(argv[3], "load")) {
        op_load(&b);
    }
    if (listed(argv[3], "get")) {
        op_single_reads(&b, "get", &b.get, 1);
    }
    if (listed(argv[3], "contains")) {
        op_single_reads(&b, "contains", &b.contains, 0);
    }
    if (listed(argv[3], "multiget")) {
        op_multiget(&b);
    }
    if (listed(argv[3], "items")) {
        op_items(&b);
    }
    if (listed(argv[3], "len")) {
        op_len(&b);
    }
    if (listed(argv[3], "set")) {
        op_set(&b);
    }
    if (listed(argv[3], "delete")) {
        op_delete(&b);
    }
    printf("}\n");
    mdb_env_close(b.env);
    return 0;
}
