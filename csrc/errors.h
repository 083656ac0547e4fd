/* Exception classes of sharedb.lmdb and the mapping from LMDB codes. */

#ifndef SHAREDB_ERRORS_H
#define SHAREDB_ERRORS_H

#include "module.h"

/* Create Error, ClosedError and one subclass per LMDB error code, store
   them in state and add them to module.  Returns -1 on failure. */
int sharedb_errors_setup(PyObject *module, sharedb_state *state);

int sharedb_errors_traverse(sharedb_state *state, visitproc visit,
                            void *arg);
void sharedb_errors_clear(sharedb_state *state);

/* Set the exception for the failed LMDB call named call, which returned
   rc.  LMDB codes raise their own subclass of Error and system codes an
   OSError subclass chosen by errno.  context, if not NULL, is the path or
   key involved and appears in the message.  Always returns NULL. */
PyObject *sharedb_raise_lmdb(sharedb_state *state, int rc, const char *call,
                             PyObject *context);

/* Set ClosedError with message what, formatted as by PyErr_Format.
   Always returns NULL. */
PyObject *sharedb_raise_closed(sharedb_state *state, const char *format,
                               ...);

#endif /* SHAREDB_ERRORS_H */
