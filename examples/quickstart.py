"""Use a ShareDB store as a dict that lives on disk, in one process.

Run it with `python examples/quickstart.py`. The store is created in a
temporary directory, which is deleted at the end.
"""

from __future__ import annotations

import os
import tempfile

from sharedb import ShareDB


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="sharedb-quickstart-") as work:
        path = os.path.join(work, "books")

        # msgpack keeps the records readable from other languages, and
        # lists and tuples both come back as lists.
        with ShareDB(path, serial="msgpack") as books:
            books["dune"] = {"author": "Frank Herbert", "year": 1965}
            books["emma"] = {"author": "Jane Austen", "year": 1815}
            # One transaction for the whole batch.
            books.multiset(
                (f"volume:{number:03d}", {"pages": 100 + number})
                for number in range(1, 101)
            )
            print("records:", len(books))
            print("dune was published in", books["dune"]["year"])
            print("has 'ulysses':", "ulysses" in books)
            print("ulysses:", books.get("ulysses", "not stored"))

            # keys(), values() and items() read one snapshot, in key order.
            volumes = [key for key in books.keys() if key.startswith("volume:")]
            first_volumes = volumes[:3]
            print("first volumes:", first_volumes)
            pages = sum(value["pages"] for value in books.multiget(first_volumes))
            print("pages in them:", pages)

            removed = books.pop("emma")
            print("removed a book by", removed["author"])
            books.multiremove(f"volume:{number:03d}" for number in range(1, 51))
            print("records left:", len(books))

        # The records outlive the object: open the store again.
        with ShareDB(path) as reopened:
            print("after reopening:", len(reopened), "records,", reopened.serial)
            reopened.drop()


if __name__ == "__main__":
    main()
