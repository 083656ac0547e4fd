/* Checks of an LMDB data file that do not trust its contents.

   LMDB follows page numbers, offsets and sizes it reads from the file
   without checking them, so a damaged file can make it read outside the
   map and crash the process.  The walk here reads the data file with
   pread() into its own buffers and checks every number before using it.
   It checks page numbers against the file and node offsets and sizes
   against their page.  It also checks key order, the page counts each
   database records, and that no page is both in a tree and free.  The layout is LMDB 0.9's, for this
   platform's word size, as vendor/lmdb/mdb.c defines it. */

#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#ifdef _WIN32
#include <windows.h>
#else
#include <sys/stat.h>
#include <unistd.h>
#endif

#include "errors.h"
#include "verify.h"

/* ------------------------------------------------------------------ */
/* Layout                                                              */

/* The page header: the page number, a pad (the key size of LEAF2
   pages), the flags, and the bounds of the free space, which overflow
   pages replace with their page count. */
typedef struct {
    size_t pgno;
    uint16_t pad;
    uint16_t flags;
    uint16_t lower;
    uint16_t upper;
} page_header;

#define HEADER_SIZE (sizeof(size_t) + 8)

enum {
    PAGE_BRANCH = 0x01,
    PAGE_LEAF = 0x02,
    PAGE_OVERFLOW = 0x04,
    PAGE_META = 0x08,
    PAGE_LEAF2 = 0x20,
    PAGE_SUBPAGE = 0x40,
};

/* A node: two halves of its data size (or of a branch's child page
   number), flags (also the top of a 64-bit page number), key size, then
   the key and the data. */
#define NODE_SIZE 8

enum {
    NODE_BIGDATA = 0x01,    /* the data is on overflow pages */
    NODE_SUBDATA = 0x02,    /* the data is a database record */
    NODE_DUPDATA = 0x04,    /* the data is a set of duplicates */
};

/* A database record. */
typedef struct {
    uint32_t pad;
    uint16_t flags;
    uint16_t depth;
    size_t branch_pages;
    size_t leaf_pages;
    size_t overflow_pages;
    size_t entries;
    size_t root;
} db_record;

/* The meta record that follows the header of pages 0 and 1. */
typedef struct {
    uint32_t magic;
    uint32_t version;
    void *address;
    size_t map_size;
    db_record dbs[2];           /* the free-page database, the main one */
    size_t last_pgno;
    size_t txnid;
} meta_record;

#define META_MAGIC 0xBEEFC0DEu
#define DATA_VERSION 1u
#define NO_PAGE ((size_t)-1)
#define MAX_DEPTH 32            /* LMDB's cursor stack */
#define MAX_PROBLEMS 100

/* Database flags of mdb_dbi_open(). */
#define DB_REVERSEKEY 0x02
#define DB_DUPSORT 0x04
#define DB_INTEGERKEY 0x08

/* ------------------------------------------------------------------ */
/* The walk                                                            */

enum {
    PAGE_UNSEEN = 0,
    PAGE_USED = 1,
    PAGE_FREE = 2,
};

typedef struct {
    mdb_filehandle_t fd;
    size_t page_size;
    unsigned long long file_size;
    size_t last_pgno;
    unsigned char *state;       /* PAGE_* of each page up to last_pgno */
    char *problems[MAX_PROBLEMS];
    int problem_count;
    int problems_left_out;
    int read_failed;            /* errno of a failed read, or 0 */
    int little_endian;
    size_t pages;
    size_t branch_pages;
    size_t leaf_pages;
    size_t overflow_pages;
    size_t free_pages;
    size_t databases;
} verifier;

/* Counts of one database, compared with its record at the end. */
typedef struct {
    const char *name;
    int compare_keys;           /* keys must be in memcmp order */
    int is_free;                /* the free-page database */
    int dupsort;
    size_t branch_pages;
    size_t leaf_pages;
    size_t overflow_pages;
    size_t entries;
    int leaf_level;             /* level of the first leaf found */
} tree;

static void
report(verifier *v, const char *format, ...)
{
    va_list args;
    char *text;

    if (v->problem_count >= MAX_PROBLEMS) {
        v->problems_left_out++;
        return;
    }
    text = PyMem_RawMalloc(256);
    if (text == NULL) {
        v->problems_left_out++;
        return;
    }
    va_start(args, format);
    PyOS_vsnprintf(text, 256, format, args);
    va_end(args);
    v->problems[v->problem_count++] = text;
}

/* Read size bytes at offset into buffer.  Returns 0, or -1 after a
   short or failed read, which is reported. */
static int
read_at(verifier *v, void *buffer, size_t size, unsigned long long offset)
{
    size_t done = 0;

    while (done < size) {
#ifdef _WIN32
        OVERLAPPED position;
        DWORD count = 0;
        unsigned long long at = offset + done;

        memset(&position, 0, sizeof(position));
        position.Offset = (DWORD)at;
        position.OffsetHigh = (DWORD)(at >> 32);
        if (!ReadFile(v->fd, (char *)buffer + done, (DWORD)(size - done),
                      &count, &position)) {
            v->read_failed = (int)GetLastError();
            report(v, "reading %zu bytes at offset %llu failed", size,
                   offset);
            return -1;
        }
#else
        ssize_t count = pread(v->fd, (char *)buffer + done, size - done,
                              (off_t)(offset + done));

        if (count < 0) {
            if (errno == EINTR) {
                continue;
            }
            v->read_failed = errno;
            report(v, "reading %zu bytes at offset %llu failed: %s", size,
                   offset, strerror(errno));
            return -1;
        }
#endif
        if (count == 0) {
            report(v, "the data file ends at byte %llu, inside a page "
                   "that starts at byte %llu", v->file_size, offset);
            return -1;
        }
        done += (size_t)count;
    }
    return 0;
}

/* Read page pgno into buffer.  Returns -1 for a page number past the
   last page in use or past the end of the file. */
static int
read_page(verifier *v, size_t pgno, unsigned char *buffer, const char *what)
{
    if (pgno > v->last_pgno) {
        report(v, "%s points at page %zu, past the last page in use %zu",
               what, pgno, v->last_pgno);
        return -1;
    }
    if ((unsigned long long)(pgno + 1) * v->page_size > v->file_size) {
        report(v, "%s points at page %zu, past the end of the file", what,
               pgno);
        return -1;
    }
    return read_at(v, buffer, v->page_size,
                   (unsigned long long)pgno * v->page_size);
}

static page_header
header_of(const unsigned char *page)
{
    page_header header;

    memcpy(&header.pgno, page, sizeof(size_t));
    memcpy(&header.pad, page + sizeof(size_t), 2);
    memcpy(&header.flags, page + sizeof(size_t) + 2, 2);
    memcpy(&header.lower, page + sizeof(size_t) + 4, 2);
    memcpy(&header.upper, page + sizeof(size_t) + 6, 2);
    return header;
}

static uint32_t
overflow_count(const unsigned char *page)
{
    uint32_t count;

    memcpy(&count, page + sizeof(size_t) + 4, 4);
    return count;
}

static uint16_t
read_u16(const unsigned char *p)
{
    uint16_t value;

    memcpy(&value, p, 2);
    return value;
}

/* The fields of one node, read from its page. */
typedef struct {
    size_t size;                /* data size */
    size_t child;               /* child page of a branch node */
    uint16_t flags;
    uint16_t key_size;
    const unsigned char *key;
    const unsigned char *data;
} node;

static node
node_at(const verifier *v, const unsigned char *p)
{
    node n;
    uint16_t first = read_u16(p);
    uint16_t second = read_u16(p + 2);
    uint16_t low = v->little_endian ? first : second;
    uint16_t high = v->little_endian ? second : first;

    n.flags = read_u16(p + 4);
    n.key_size = read_u16(p + 6);
    n.size = (size_t)low | ((size_t)high << 16);
    n.child = n.size;
#if SIZE_MAX > 0xffffffffu
    n.child |= (size_t)n.flags << 32;
#endif
    n.key = p + NODE_SIZE;
    n.data = n.key + n.key_size;
    return n;
}

/* Order keys as LMDB's default comparison does. */
static int
compare_keys(const unsigned char *a, size_t a_size, const unsigned char *b,
             size_t b_size)
{
    size_t common = a_size < b_size ? a_size : b_size;
    int difference = memcmp(a, b, common);

    if (difference != 0) {
        return difference;
    }
    return (a_size > b_size) - (a_size < b_size);
}

/* A key bound of a subtree, borrowed from its parent's page. */
typedef struct {
    const unsigned char *key;
    size_t size;
    int set;
} bound;

/* Mark count pages from pgno as used by t.  Returns -1 for a page that
   is already used or out of range. */
static int
claim_pages(verifier *v, tree *t, size_t pgno, size_t count,
            const char *what)
{
    if (pgno > v->last_pgno || count > v->last_pgno - pgno + 1) {
        report(v, "%s of database %s: pages %zu to %zu are past the last "
               "page in use %zu", what, t->name, pgno, pgno + count - 1,
               v->last_pgno);
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        if (v->state[pgno + i] != PAGE_UNSEEN) {
            report(v, "%s of database %s: page %zu is reachable twice",
                   what, t->name, pgno + i);
            return -1;
        }
        v->state[pgno + i] = PAGE_USED;
    }
    v->pages += count;
    return 0;
}

/* Check the free-page list stored in the data of a free-database record,
   and mark its pages free. */
static void
claim_free_list(verifier *v, const unsigned char *data, size_t size)
{
    size_t count;

    if (size < sizeof(size_t) || size % sizeof(size_t) != 0) {
        report(v, "a free-page list has %zu bytes, not a whole number of "
               "page numbers", size);
        return;
    }
    memcpy(&count, data, sizeof(size_t));
    if (count > size / sizeof(size_t) - 1) {
        report(v, "a free-page list says it holds %zu pages, but it has "
               "room for %zu", count, size / sizeof(size_t) - 1);
        return;
    }
    for (size_t i = 1; i <= count; i++) {
        size_t pgno;

        memcpy(&pgno, data + i * sizeof(size_t), sizeof(size_t));
        if (pgno < 2 || pgno > v->last_pgno) {
            report(v, "the free-page list holds page %zu, outside pages 2 "
                   "to %zu", pgno, v->last_pgno);
            continue;
        }
        if (v->state[pgno] == PAGE_USED) {
            report(v, "page %zu is listed as free but is in use", pgno);
            continue;
        }
        if (v->state[pgno] == PAGE_FREE) {
            report(v, "page %zu is listed as free twice", pgno);
            continue;
        }
        v->state[pgno] = PAGE_FREE;
        v->free_pages++;
    }
}

static void walk_tree(verifier *v, const db_record *db, const char *name,
                      int is_free, int level);

/* Check the data of a big record: its overflow pages, and for the free
   database the page list they hold. */
static void
check_overflow(verifier *v, tree *t, const node *n, unsigned char *buffer)
{
    size_t pgno;
    size_t needed;
    page_header header;
    uint32_t count;

    memcpy(&pgno, n->data, sizeof(size_t));
    if (read_page(v, pgno, buffer, "a big record") < 0) {
        return;
    }
    header = header_of(buffer);
    count = overflow_count(buffer);
    needed = (HEADER_SIZE - 1 + n->size) / v->page_size + 1;
    if (header.pgno != pgno || !(header.flags & PAGE_OVERFLOW)) {
        report(v, "page %zu of database %s should be an overflow page "
               "(flags 0x%x, number %zu)", pgno, t->name, header.flags,
               header.pgno);
        return;
    }
    if (count < needed) {
        report(v, "the overflow pages at %zu of database %s hold %u pages, "
               "too few for %zu bytes", pgno, t->name, count, n->size);
        return;
    }
    if (claim_pages(v, t, pgno, count, "overflow pages") < 0) {
        return;
    }
    t->overflow_pages += count;
    v->overflow_pages += count;
    if (t->is_free) {
        unsigned char *list = PyMem_RawMalloc(n->size ? n->size : 1);

        if (list == NULL) {
            report(v, "out of memory reading a free-page list");
            return;
        }
        if (read_at(v, list, n->size,
                    (unsigned long long)pgno * v->page_size + HEADER_SIZE) == 0) {
            claim_free_list(v, list, n->size);
        }
        PyMem_RawFree(list);
    }
}

/* Check the duplicates of a dupsort record kept in a sub-page, which
   lies inside the record's data. */
static void
check_subpage(verifier *v, tree *t, const node *n)
{
    page_header header;
    size_t count;

    if (n->size < HEADER_SIZE) {
        report(v, "a sub-page of database %s has %zu bytes, less than a "
               "page header", t->name, n->size);
        return;
    }
    header = header_of(n->data);
    if (!(header.flags & PAGE_SUBPAGE) || header.lower < HEADER_SIZE ||
        header.lower > header.upper || header.upper > n->size) {
        report(v, "a sub-page of database %s has bad bounds (flags 0x%x, "
               "lower %u, upper %u, size %zu)", t->name, header.flags,
               header.lower, header.upper, n->size);
        return;
    }
    count = (header.lower - HEADER_SIZE) / 2;
    if (header.flags & PAGE_LEAF2) {
        if (header.pad == 0 ||
            (size_t)header.pad * count > n->size - HEADER_SIZE) {
            report(v, "a fixed-size sub-page of database %s overruns its "
                   "record", t->name);
            return;
        }
    }
    else {
        for (size_t i = 0; i < count; i++) {
            uint16_t offset = read_u16(n->data + HEADER_SIZE + 2 * i);
            node dup;

            if (offset < header.upper || offset > n->size - NODE_SIZE) {
                report(v, "a duplicate in a sub-page of database %s lies "
                       "outside it", t->name);
                return;
            }
            dup = node_at(v, n->data + offset);
            if ((size_t)offset + NODE_SIZE + dup.key_size > n->size) {
                report(v, "a duplicate in a sub-page of database %s "
                       "overruns it", t->name);
                return;
            }
        }
    }
    t->entries += count;
}

static void
check_leaf_node(verifier *v, tree *t, const node *n, size_t room,
                unsigned char *buffer, int level)
{
    if (n->flags & NODE_BIGDATA) {
        if (room < sizeof(size_t)) {
            report(v, "a big record of database %s overruns its page",
                   t->name);
            return;
        }
        check_overflow(v, t, n, buffer);
        t->entries++;
        return;
    }
    if (n->size > room) {
        report(v, "a record of database %s has %zu bytes of data, more "
               "than its page holds", t->name, n->size);
        return;
    }
    if ((n->flags & NODE_DUPDATA) && !(n->flags & NODE_SUBDATA)) {
        check_subpage(v, t, n);
        return;
    }
    if (n->flags & NODE_SUBDATA) {
        db_record sub;
        char name[80];

        if (n->size != sizeof(db_record)) {
            report(v, "a database record in database %s has %zu bytes, "
                   "not %zu", t->name, n->size, sizeof(db_record));
            return;
        }
        memcpy(&sub, n->data, sizeof(sub));
        if (n->flags & NODE_DUPDATA) {
            PyOS_snprintf(name, sizeof(name), "%s (duplicates)", t->name);
            walk_tree(v, &sub, name, 0, level);
            t->entries += sub.entries;
            return;
        }
        PyOS_snprintf(name, sizeof(name), "'%.*s'",
                      n->key_size > 40 ? 40 : (int)n->key_size,
                      (const char *)n->key);
        v->databases++;
        walk_tree(v, &sub, name, 0, level);
        t->entries++;
        return;
    }
    if (t->is_free) {
        claim_free_list(v, n->data, n->size);
    }
    t->entries++;
}

/* Check page pgno of tree t at level (1 for the root) and the subtree
   under it.  Its keys must lie in [low, high). */
static void
walk_page(verifier *v, tree *t, size_t pgno, int level, bound low,
          bound high)
{
    unsigned char *page;
    unsigned char *scratch = NULL;
    page_header header;
    size_t count;
    const unsigned char *previous = NULL;
    size_t previous_size = 0;

    if (level > MAX_DEPTH) {
        report(v, "database %s is deeper than %d levels at page %zu",
               t->name, MAX_DEPTH, pgno);
        return;
    }
    page = PyMem_RawMalloc(v->page_size);
    if (page == NULL) {
        report(v, "out of memory");
        return;
    }
    if (read_page(v, pgno, page, "a tree") < 0 ||
        claim_pages(v, t, pgno, 1, "a tree page") < 0) {
        goto done;
    }
    header = header_of(page);
    if (header.pgno != pgno) {
        report(v, "page %zu of database %s says it is page %zu", pgno,
               t->name, header.pgno);
        goto done;
    }
    if ((header.flags & (PAGE_BRANCH | PAGE_LEAF)) == 0 ||
        (header.flags & (PAGE_BRANCH | PAGE_LEAF)) ==
        (PAGE_BRANCH | PAGE_LEAF) ||
        (header.flags & (PAGE_OVERFLOW | PAGE_META | PAGE_SUBPAGE))) {
        report(v, "page %zu of database %s is not a branch or leaf page "
               "(flags 0x%x)", pgno, t->name, header.flags);
        goto done;
    }
    if (header.lower < HEADER_SIZE || header.lower > header.upper ||
        header.upper > v->page_size || (header.lower - HEADER_SIZE) % 2) {
        report(v, "page %zu of database %s has bad bounds (lower %u, "
               "upper %u)", pgno, t->name, header.lower, header.upper);
        goto done;
    }
    count = (header.lower - HEADER_SIZE) / 2;
    if (header.flags & PAGE_BRANCH) {
        t->branch_pages++;
        v->branch_pages++;
        if (count < 2 && level > 1) {
            report(v, "branch page %zu of database %s has %zu children",
                   pgno, t->name, count);
        }
    }
    else {
        t->leaf_pages++;
        v->leaf_pages++;
        if (t->leaf_level == 0) {
            t->leaf_level = level;
        }
        else if (t->leaf_level != level) {
            report(v, "leaf page %zu of database %s is at level %d, other "
                   "leaves at %d", pgno, t->name, level, t->leaf_level);
        }
        if (count == 0 && level > 1) {
            report(v, "leaf page %zu of database %s is empty", pgno,
                   t->name);
        }
    }
    if (header.flags & PAGE_LEAF2) {
        /* Fixed-size keys without nodes, in dupfixed sub-databases. */
        if (header.pad == 0 ||
            (size_t)header.pad * count > v->page_size - HEADER_SIZE) {
            report(v, "fixed-size page %zu of database %s overruns it",
                   pgno, t->name);
        }
        t->entries += count;
        goto done;
    }

    scratch = PyMem_RawMalloc(v->page_size);
    if (scratch == NULL) {
        report(v, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < count; i++) {
        uint16_t offset = read_u16(page + HEADER_SIZE + 2 * i);
        size_t room;
        node n;

        if (offset < header.upper || offset > v->page_size - NODE_SIZE) {
            report(v, "node %zu of page %zu of database %s lies outside "
                   "the page's nodes (offset %u)", i, pgno, t->name,
                   offset);
            goto done;
        }
        n = node_at(v, page + offset);
        if ((size_t)offset + NODE_SIZE + n.key_size > v->page_size) {
            report(v, "the key of node %zu of page %zu of database %s "
                   "overruns the page", i, pgno, t->name);
            goto done;
        }
        room = v->page_size - offset - NODE_SIZE - n.key_size;

        /* Branch pages leave their first key empty: it stands for
           everything below the second. */
        if (!((header.flags & PAGE_BRANCH) && i == 0) && t->compare_keys) {
            if (previous != NULL &&
                compare_keys(previous, previous_size, n.key,
                             n.key_size) >= 0) {
                report(v, "the keys of page %zu of database %s are out of "
                       "order at node %zu", pgno, t->name, i);
            }
            if ((low.set && compare_keys(n.key, n.key_size, low.key,
                                         low.size) < 0) ||
                (high.set && compare_keys(n.key, n.key_size, high.key,
                                          high.size) >= 0)) {
                report(v, "a key of page %zu of database %s lies outside "
                       "the range its parent gives", pgno, t->name);
            }
            previous = n.key;
            previous_size = n.key_size;
        }

        if (header.flags & PAGE_BRANCH) {
            bound child_low = low;
            bound child_high = high;

            if (i > 0) {
                child_low.key = n.key;
                child_low.size = n.key_size;
                child_low.set = 1;
            }
            if (i + 1 < count) {
                uint16_t next_offset = read_u16(page + HEADER_SIZE +
                                                2 * (i + 1));

                if (next_offset >= header.upper &&
                    next_offset <= v->page_size - NODE_SIZE) {
                    node next = node_at(v, page + next_offset);

                    if ((size_t)next_offset + NODE_SIZE + next.key_size <=
                        v->page_size) {
                        child_high.key = next.key;
                        child_high.size = next.key_size;
                        child_high.set = 1;
                    }
                }
            }
            walk_page(v, t, n.child, level + 1, child_low, child_high);
        }
        else {
            check_leaf_node(v, t, &n, room, scratch, level);
        }
    }

done:
    PyMem_RawFree(scratch);
    PyMem_RawFree(page);
}

static void
walk_tree(verifier *v, const db_record *db, const char *name, int is_free,
          int level)
{
    tree t;
    bound none = {NULL, 0, 0};

    memset(&t, 0, sizeof(t));
    t.name = name;
    t.is_free = is_free;
    t.dupsort = (db->flags & DB_DUPSORT) != 0;
    t.compare_keys = !is_free &&
                     !(db->flags & (DB_REVERSEKEY | DB_INTEGERKEY));
    if (level > MAX_DEPTH) {
        report(v, "databases are nested too deep at %s", name);
        return;
    }
    if (db->root == NO_PAGE) {
        if (db->entries != 0 || db->depth != 0) {
            report(v, "database %s is empty but records %zu entries and "
                   "depth %u", name, db->entries, db->depth);
        }
        return;
    }
    walk_page(v, &t, db->root, 1, none, none);
    if (t.leaf_level != db->depth) {
        report(v, "database %s records depth %u, but its leaves are at "
               "level %d", name, db->depth, t.leaf_level);
    }
    if (t.branch_pages != db->branch_pages ||
        t.leaf_pages != db->leaf_pages ||
        t.overflow_pages != db->overflow_pages) {
        report(v, "database %s records %zu branch, %zu leaf and %zu "
               "overflow pages, but has %zu, %zu and %zu", name,
               db->branch_pages, db->leaf_pages, db->overflow_pages,
               t.branch_pages, t.leaf_pages, t.overflow_pages);
    }
    if (!is_free && t.entries != db->entries) {
        report(v, "database %s records %zu entries, but has %zu", name,
               db->entries, t.entries);
    }
}

/* ------------------------------------------------------------------ */
/* Meta pages                                                          */

/* Read the meta record of page pgno (0 or 1).  Returns -1 if it cannot
   be read or is not an LMDB meta page of this format. */
static int
read_meta(verifier *v, size_t pgno, meta_record *meta)
{
    unsigned char buffer[HEADER_SIZE + sizeof(meta_record)];
    page_header header;

    if (read_at(v, buffer, sizeof(buffer),
                (unsigned long long)pgno * v->page_size) < 0) {
        return -1;
    }
    header = header_of(buffer);
    memcpy(meta, buffer + HEADER_SIZE, sizeof(*meta));
    if (!(header.flags & PAGE_META) || meta->magic != META_MAGIC ||
        meta->version != DATA_VERSION) {
        report(v, "page %zu is not an LMDB %zu-bit meta page of data "
               "version %u", pgno, sizeof(size_t) * 8, DATA_VERSION);
        return -1;
    }
    return 0;
}

static long long file_size_of(mdb_filehandle_t fd);

/* Set up v for env's data file with the given last page.  Returns 0,
   1 after reporting a last page that the file cannot account for (the
   walk is then skipped), or -1 with an exception set. */
static int
verifier_init(verifier *v, EnvObject *env, size_t last_pgno)
{
    long long size;
    unsigned long long bound;

    memset(v, 0, sizeof(*v));
    {
        const uint16_t one = 1;

        v->little_endian = *(const unsigned char *)&one == 1;
    }
    if (mdb_env_get_fd(env->env, &v->fd) != 0) {
        PyErr_SetString(PyExc_SystemError, "mdb_env_get_fd failed");
        return -1;
    }
    size = file_size_of(v->fd);
    if (size < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    v->file_size = (unsigned long long)size;
    v->page_size = env->page_size;
    v->last_pgno = last_pgno;

    /* Pages past the end of the file can only be free ones, listed by
       number in the file, so a larger last page is damage.  Checked
       before the page table below is allocated from it. */
    bound = v->file_size / v->page_size + v->file_size / sizeof(size_t) + 2;
    if ((unsigned long long)last_pgno > bound) {
        report(v, "the meta page gives %zu as the last page in use, more "
               "than a data file of %llu bytes can account for", last_pgno,
               v->file_size);
        return 1;
    }
    v->state = PyMem_RawCalloc(last_pgno + 1, 1);
    if (v->state == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    v->state[0] = PAGE_USED;
    if (last_pgno >= 1) {
        v->state[1] = PAGE_USED;
    }
    return 0;
}

static void
verifier_free(verifier *v)
{
    for (int i = 0; i < v->problem_count; i++) {
        PyMem_RawFree(v->problems[i]);
    }
    PyMem_RawFree(v->state);
}

static long long
file_size_of(mdb_filehandle_t fd)
{
#ifdef _WIN32
    LARGE_INTEGER size;

    return GetFileSizeEx(fd, &size) ? (long long)size.QuadPart : -1;
#else
    struct stat status;

    return fstat(fd, &status) == 0 ? (long long)status.st_size : -1;
#endif
}

/* Find the meta record of transaction txnid.  Returns -1 if neither
   meta page contains it. */
static int
find_meta(verifier *v, size_t txnid, meta_record *meta)
{
    meta_record metas[2];
    int usable[2];

    usable[0] = read_meta(v, 0, &metas[0]) == 0;
    usable[1] = read_meta(v, 1, &metas[1]) == 0;
    for (int i = 0; i < 2; i++) {
        if (usable[i] && metas[i].txnid == txnid) {
            *meta = metas[i];
            return 0;
        }
    }
    report(v, "neither meta page belongs to transaction %zu", txnid);
    return -1;
}

static PyObject *
problems_list(verifier *v)
{
    PyObject *list = PyList_New(0);

    if (list == NULL) {
        return NULL;
    }
    for (int i = 0; i < v->problem_count; i++) {
        PyObject *text = PyUnicode_DecodeUTF8(v->problems[i],
                                              strlen(v->problems[i]),
                                              "replace");

        if (text == NULL || PyList_Append(list, text) < 0) {
            Py_XDECREF(text);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(text);
    }
    if (v->problems_left_out > 0) {
        PyObject *text = PyUnicode_FromFormat("and %d more problems",
                                              v->problems_left_out);

        if (text == NULL || PyList_Append(list, text) < 0) {
            Py_XDECREF(text);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(text);
    }
    return list;
}

PyObject *
sharedb_env_verify(EnvObject *env)
{
    PyObject *problems = NULL;
    PyObject *result = NULL;
    MDB_envinfo info;
    MDB_txn *txn;
    meta_record meta;
    verifier v;
    size_t txnid;
    size_t unreachable = 0;
    int walk;
    int rc;

    /* The read transaction keeps its snapshot's pages from being reused
       by writers while the walk reads them. */
    memset(&meta, 0, sizeof(meta));
    txn = sharedb_env_read_begin(env);
    if (txn == NULL) {
        return NULL;
    }
    txnid = mdb_txn_id(txn);
    rc = mdb_env_info(env->env, &info);
    if (rc != 0) {
        sharedb_env_read_end(env, txn);
        return sharedb_raise_lmdb(env->state, rc, "mdb_env_info", env->path);
    }
    walk = verifier_init(&v, env, info.me_last_pgno);
    if (walk < 0) {
        sharedb_env_read_end(env, txn);
        return NULL;
    }

    /* The walk only reads the file into its own memory, and the pinned
       environment keeps the descriptor open. */
    Py_BEGIN_ALLOW_THREADS
    if (walk == 0 && find_meta(&v, txnid, &meta) == 0) {
        v.last_pgno = meta.last_pgno < info.me_last_pgno
                      ? meta.last_pgno : info.me_last_pgno;
        walk_tree(&v, &meta.dbs[1], "main", 0, 1);
        walk_tree(&v, &meta.dbs[0], "of free pages", 1, 1);
        for (size_t pgno = 2; pgno <= v.last_pgno; pgno++) {
            if (v.state[pgno] == PAGE_UNSEEN) {
                unreachable++;
            }
        }
    }
    Py_END_ALLOW_THREADS
    sharedb_env_read_end(env, txn);

    problems = problems_list(&v);
    if (problems != NULL) {
        result = Py_BuildValue(
            "{s:O,s:n,s:n,s:n,s:n,s:n,s:n,s:n,s:n,s:n,s:n,s:n}",
            "problems", problems,
            "pages", (Py_ssize_t)v.pages,
            "branch_pages", (Py_ssize_t)v.branch_pages,
            "leaf_pages", (Py_ssize_t)v.leaf_pages,
            "overflow_pages", (Py_ssize_t)v.overflow_pages,
            "free_pages", (Py_ssize_t)v.free_pages,
            "unreachable_pages", (Py_ssize_t)unreachable,
            "entries", (Py_ssize_t)meta.dbs[1].entries,
            "databases", (Py_ssize_t)v.databases,
            "last_pgno", (Py_ssize_t)v.last_pgno,
            "txnid", (Py_ssize_t)txnid,
            "page_size", (Py_ssize_t)v.page_size);
    }
    Py_XDECREF(problems);
    verifier_free(&v);
    return result;
}

int
sharedb_env_check_length(EnvObject *env)
{
    MDB_envinfo info;
    meta_record meta;
    verifier v;
    long long size;
    unsigned long long file_pages;
    int rc = mdb_env_info(env->env, &info);
    int status = 0;
    int walk;

    if (rc != 0) {
        sharedb_raise_lmdb(env->state, rc, "mdb_env_info", env->path);
        return -1;
    }
    if (mdb_env_get_fd(env->env, &v.fd) != 0) {
        PyErr_SetString(PyExc_SystemError, "mdb_env_get_fd failed");
        return -1;
    }
    size = file_size_of(v.fd);
    if (size < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    file_pages = (unsigned long long)size / env->page_size;
    if (file_pages > info.me_last_pgno) {
        return 0;
    }

    /* LMDB may leave the file shorter than its last page when the pages
       past the end are free, so only pages a tree reaches must be in
       the file. */
    walk = verifier_init(&v, env, info.me_last_pgno);
    if (walk < 0) {
        return -1;
    }
    Py_BEGIN_ALLOW_THREADS
    if (walk == 0 && find_meta(&v, info.me_last_txnid, &meta) == 0) {
        walk_tree(&v, &meta.dbs[1], "main", 0, 1);
        walk_tree(&v, &meta.dbs[0], "of free pages", 1, 1);
        for (size_t pgno = (size_t)file_pages; pgno <= v.last_pgno;
             pgno++) {
            if (v.state[pgno] != PAGE_FREE) {
                status = -1;
                break;
            }
        }
    }
    else {
        status = -1;
    }
    Py_END_ALLOW_THREADS
    if (status < 0 || v.problem_count > 0) {
        PyErr_Format(env->state->lmdb_errors[MDB_CORRUPTED - MDB_KEYEXIST],
                     "the data file of %R is truncated or damaged: it has "
                     "%lld bytes, but its last committed page ends at byte "
                     "%llu%s%s; restore it from a backup", env->path, size,
                     ((unsigned long long)info.me_last_pgno + 1) *
                     env->page_size,
                     v.problem_count > 0 ? ", and " : "",
                     v.problem_count > 0 ? v.problems[0] : "");
        status = -1;
    }
    verifier_free(&v);
    return status;
}
