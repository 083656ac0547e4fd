"""Share one ShareDB store between a pool of worker processes.

The parent process stores a list of jobs, each worker opens the same
store, reads its jobs and writes its results back, and the parent reads
every result. Run it with `python examples/worker_pool.py`. The store is
created in a temporary directory, which is deleted at the end.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import tempfile

from sharedb import ShareDB

WORKERS = 4
JOBS = 2_000

# The store of this worker process, opened by open_store().
_store: ShareDB | None = None


def open_store(path: str) -> None:
    """Open the store in a worker. The pool runs this once per process."""
    global _store
    _store = ShareDB(path)


def run_job(number: int) -> None:
    """Hash the text of job number and store the digest and this pid."""
    assert _store is not None, "open_store() runs first in every worker"
    text: str = _store[("job", number)]
    digest = hashlib.sha256(text.encode()).hexdigest()
    _store[("result", number)] = (digest, os.getpid())


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="sharedb-pool-") as work:
        path = os.path.join(work, "jobs")
        store = ShareDB(path)
        store.multiset((("job", number), f"text {number}") for number in range(JOBS))

        # spawn starts each worker as a new interpreter, as on Windows and
        # macOS. With fork, a ShareDB inherited from the parent works too,
        # because it reopens the store in the child on first use.
        context = multiprocessing.get_context("spawn")
        with context.Pool(WORKERS, initializer=open_store, initargs=(path,)) as pool:
            pool.map(run_job, range(JOBS), chunksize=50)
            # Let the workers exit on their own rather than be terminated.
            pool.close()
            pool.join()

        results = list(store.multiget(("result", number) for number in range(JOBS)))
        for number, (digest, _) in enumerate(results):
            expected = hashlib.sha256(f"text {number}".encode()).hexdigest()
            if digest != expected:
                raise SystemExit(f"job {number}: wrong digest {digest}")
        writers = {pid for _, pid in results}
        print(f"{len(results)} results written by {len(writers)} processes")
        print(f"records in the store: {len(store)}")
        store.close()


if __name__ == "__main__":
    main()
