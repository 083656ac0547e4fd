"""Markdown tables of the benchmark's results."""

from __future__ import annotations

SYSTEM_LABELS = {
    "sharedb": "ShareDB",
    "sharedb202": "ShareDB 2.0.2",
    "lmdb": "lmdb+msgpack",
    "lmdb_wm": "lmdb+msgpack writemap",
    "dict": "dict",
    "c": "C loop",
}

OPERATION_LABELS = {
    "load": "load: multiset, 1 txn (records/s)",
    "get": "get: db[k]",
    "get_method": "get: db.get(k)",
    "contains": "contains: k in db",
    "multiget": "multiget (keys/s)",
    "items": "items: list(db.items()) (records/s)",
    "len": "len(db) (calls/s)",
    "set": "set: db[k] = v, 1 commit each",
    "delete": "delete: del db[k], 1 commit each",
}


def rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def ratio(numerator: float | None, denominator: float | None) -> str:
    if numerator is None or not denominator:
        return "n/a"
    return f"{numerator / denominator:.2f}x"


def table(header: list[str], rows: list[list[str]], numeric_from: int = 1) -> str:
    """Return a Markdown table; columns from numeric_from on align right."""
    align = ["---" if i < numeric_from else "--:" for i in range(len(header))]
    lines = [header, align, *rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def main_table(
    systems: list[str],
    medians: dict[str, dict[str, float]],
    wrong: set[tuple[str, str]],
) -> str:
    """Return the table of median operations per second with ShareDB's
    ratios to each other system (ShareDB's rate divided by theirs).

    Cells of (system, operation) pairs in wrong are marked WRONG: the
    system returned wrong data there, so its rate means nothing.
    """
    others = [s for s in systems if s != "sharedb"] if "sharedb" in systems else []
    header = ["operation (ops/s, median)"] + [SYSTEM_LABELS[s] for s in systems]
    header += [f"ShareDB / {SYSTEM_LABELS[s]}" for s in others]
    rows = []
    for op, label in OPERATION_LABELS.items():
        row = [label]
        for system in systems:
            cell = rate(medians[system].get(op))
            if (system, op) in wrong:
                cell += " WRONG"
            row.append(cell)
        for system in others:
            row.append(ratio(medians["sharedb"].get(op), medians[system].get(op)))
        rows.append(row)
    return table(header, rows)


def mib(kib: int | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:,.1f}"
