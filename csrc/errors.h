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

/* Like sharedb_raise_lmdb(), with hint appended to the message: what the
   code means for this call and what to do. */
PyObject *sharedb_raise_lmdb_hint(sharedb_state *state, int rc,
                                  const char *call, PyObject *context,
                                  const char *hint);

/* Set ClosedError with message what, formatted as by PyErr_Format.
   Always returns NULL. */
PyObject *sharedb_raise_closed(sharedb_state *state, const char *format,
                               ...);

/* Objects shown in error messages are cut to this many characters, so
   that a message about a huge value stays readable. */
#define SHAREDB_DESCRIBE_LIMIT 200

/* Return repr(obj) cut to SHAREDB_DESCRIBE_LIMIT characters, or a
   placeholder naming its type if repr() fails.  Returns a new reference,
   or NULL with an exception set. */
PyObject *sharedb_describe(PyObject *obj);

/* Convert value, the int argument or attribute called name, into *out.
   accepted completes "<name> must be ..." in the messages, for example
   "an int from 1 to 126".  Raises TypeError for a bool or an object
   without __index__, and ValueError for an int outside minimum to
   maximum.  Returns -1 with the exception set. */
int sharedb_int_arg(PyObject *value, const char *name, const char *accepted,
                    long long minimum, long long maximum, long long *out);

#endif /* SHAREDB_ERRORS_H */
