/* Checks of an LMDB data file that do not trust its contents. */

#ifndef SHAREDB_VERIFY_H
#define SHAREDB_VERIFY_H

#include "env.h"

/* Walk every page of the last committed snapshot of env, reading the
   data file with bounds checks instead of through LMDB, and return a
   dict: problems (a list of str, empty for a sound file), pages,
   branch_pages, leaf_pages, overflow_pages, free_pages,
   unreachable_pages, entries, databases, last_pgno, txnid, page_size.
   Returns NULL with an exception set if the file cannot be read. */
PyObject *sharedb_env_verify(EnvObject *env);

/* Check, at open, that the data file holds every page the snapshot can
   reach: LMDB reads pages through the map, and a page past the end of
   the file raises SIGBUS.  Returns -1 with CorruptedError set
   otherwise. */
int sharedb_env_check_length(EnvObject *env);

#endif /* SHAREDB_VERIFY_H */
