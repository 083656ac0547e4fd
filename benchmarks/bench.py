"""Benchmark ShareDB against ShareDB 2.0.2, lmdb+msgpack, dict and a C loop.

    python benchmarks/bench.py                     # 100,000 records, 5 rounds
    python benchmarks/bench.py --records 1000000
    python benchmarks/bench.py --systems sharedb,lmdb --rounds 7 --json out.json

Run it with a Python that imports this repository's sharedb. The first run
creates virtualenvs for ShareDB 2.0.2 and for the lmdb package under
benchmarks/.venvs/ with pip, and later runs reuse them. Every system runs
in a new worker process per round (_worker.py, or the C program
_cloop.c), and rounds rotate the order of the systems. The tables on
stdout give the median over rounds; --json writes every round's numbers.
See benchmarks/README.md for what each system and operation means.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from pathlib import Path
from typing import Any

import _report as report
import _setup as setup
import _workload as workload

DEFAULT_SYSTEMS = ("sharedb", "sharedb202", "lmdb", "dict", "c")
# lmdb_wm runs the lmdb binding with writemap=True; it is not a default.
ALL_SYSTEMS = DEFAULT_SYSTEMS + ("lmdb_wm",)

# Virtualenv of each system that does not run with sys.executable.
VENV_OF = {"sharedb202": "sharedb202", "lmdb": "lmdb", "lmdb_wm": "lmdb"}

# Flags ShareDB opened stores with before it wrote through the map, used
# for the C loop if the flags of a new store cannot be read.
FALLBACK_FLAGS = ["notls", "nosync", "nordahead"]
WORKER = setup.BENCH_DIR / "_worker.py"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class WorkerError(Exception):
    """A worker process failed; the message contains its stderr."""


# -- Running workers -----------------------------------------------------------


def reader_gets(args: argparse.Namespace, system: str) -> int:
    """Return the gets per reader process of system in the parallel test.

    dict readers do 4 times as many gets as ShareDB's, so that a few
    milliseconds between the readers' starts weigh little in both, though a
    dict get is several times faster.
    """
    return args.reader_gets * (4 if system == "dict" else 1)


def reader_seed(seed: int, index: int) -> int:
    """Return the seed of reader index's key order, so readers differ."""
    return seed * 100 + index


class Runner:
    """Starts the worker processes of every selected system."""

    def __init__(self, args: argparse.Namespace, base_dir: Path) -> None:
        self.args = args
        self.base_dir = base_dir
        self.pythons: dict[str, str] = {}
        self.cloop: Path | None = None
        self.cloop_flags: list[str] = FALLBACK_FLAGS

    def worker_env(self, system: str) -> dict[str, str]:
        env = dict(os.environ)
        if system in VENV_OF:
            # Keep each virtualenv isolated from paths meant for the
            # driver's interpreter.
            env.pop("PYTHONPATH", None)
        return env

    def job_dir(self, name: str) -> Path:
        path = self.base_dir / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def run_worker(self, system: str, job: dict) -> dict:
        """Run one job in a new worker process and return its result."""
        proc = subprocess.run(
            [self.pythons[system], str(WORKER)],
            input=json.dumps(job) + "\n",
            capture_output=True,
            text=True,
            env=self.worker_env(system),
        )
        if proc.returncode != 0:
            raise WorkerError(
                f"the {report.SYSTEM_LABELS[system]} worker failed on a "
                f"{job['mode']} job with exit status {proc.returncode}:\n"
                f"{proc.stderr}"
            )
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def run_cloop(
        self,
        directory: Path,
        records: int,
        len_calls: int,
        lists: list[list[int]],
        ops: str,
    ) -> dict:
        """Run the C program and return its per-operation results in the
        workers' format.

        lists are the load, get, contains, set and delete keys, in that
        order; ops names the operations to run, comma-separated.
        """
        words = array("Q", [records, len_calls])
        for keys in lists:
            words.append(len(keys))
            words.extend(keys)
        if sys.byteorder != "little":
            words.byteswap()
        orders = directory / "orders.bin"
        with orders.open("wb") as out:
            words.tofile(out)
        store = directory / "store"
        store.mkdir()
        proc = subprocess.run(
            [str(self.cloop), str(store), str(orders), ops, ",".join(self.cloop_flags)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise WorkerError(
                f"the C loop failed with exit status {proc.returncode}:\n{proc.stderr}"
            )
        ops_out = json.loads(proc.stdout)
        for result in ops_out.values():
            count = result["errors"]
            result["errors"] = [f"{count} wrong results"] if count else []
        flags = "|".join("MDB_" + name.upper() for name in self.cloop_flags)
        return {"ops": ops_out, "versions": {"lmdb": "vendored", "flags": flags}}

    def run_round(self, system: str, seed: int, round_index: int) -> dict:
        args = self.args
        directory = self.job_dir(f"{system}-round{round_index}")
        try:
            if system == "c":
                plan = workload.Plan(args.records, seed, args.write_sample)
                lists = [
                    plan.load_order,
                    plan.get_order,
                    plan.contains_order,
                    plan.set_keys,
                    plan.delete_keys,
                ]
                ops = "load,get,contains,multiget,items,len,set,delete"
                return self.run_cloop(
                    directory, args.records, args.len_calls, lists, ops
                )
            job = {
                "mode": "round",
                "system": system,
                "dir": str(directory),
                "records": args.records,
                "seed": seed,
                "write_sample": args.write_sample,
                "len_calls": args.len_calls,
            }
            return self.run_worker(system, job)
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    def run_big(self, system: str, seed: int) -> dict:
        args = self.args
        directory = self.job_dir(f"{system}-big")
        try:
            if system == "c":
                load_order, read_keys = workload.big_plan(
                    args.big_records, seed, args.big_reads
                )
                lists = [load_order, read_keys, [], [], []]
                return self.run_cloop(directory, args.big_records, 0, lists, "load,get")
            job = {
                "mode": "big",
                "system": system,
                "dir": str(directory),
                "records": args.big_records,
                "seed": seed,
                "reads": args.big_reads,
            }
            return self.run_worker(system, job)
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    def run_readers(
        self, system: str, directory: Path, count: int, seed: int
    ) -> list[dict]:
        """Start count reader processes of system on the store in directory,
        let them all start reading at once, and return their results."""
        procs = []
        try:
            for index in range(count):
                proc = subprocess.Popen(
                    [self.pythons[system], str(WORKER)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    env=self.worker_env(system),
                )
                procs.append(proc)
                job = {
                    "mode": "reader",
                    "system": system,
                    "dir": str(directory),
                    "records": self.args.records,
                    "seed": reader_seed(seed, index),
                    "reads": reader_gets(self.args, system),
                }
                proc.stdin.write(json.dumps(job) + "\n")
                proc.stdin.flush()
            # Every reader has opened the store and built its keys before
            # any of them starts the timed reads.
            for proc in procs:
                if not proc.stdout.readline():
                    raise WorkerError("a reader exited before it was ready")
            for proc in procs:
                proc.stdin.write("go\n")
                proc.stdin.flush()
            results = []
            for proc in procs:
                line = proc.stdout.readline()
                if proc.wait() != 0 or not line:
                    raise WorkerError(
                        f"a reader failed with exit status {proc.returncode}"
                    )
                results.append(json.loads(line))
            return results
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()


# -- The main comparison -----------------------------------------------------


def per_second(op_result: dict) -> float:
    # A loop faster than the clock's resolution counts as 1 ns.
    return op_result["count"] / max(op_result["seconds"], 1e-9)


def rotated(systems: list[str], round_index: int) -> list[str]:
    shift = round_index % len(systems)
    return systems[shift:] + systems[:shift]


def check_round(
    system: str,
    round_no: int,
    result: dict,
    plan_digest: str,
    expected: dict[str, int],
    failures: list[str],
    wrong: set[tuple[str, str]],
) -> None:
    """Record every error a worker reported, every checksum that differs
    from a correct system's, and a key order that differs from the
    driver's."""
    label = report.SYSTEM_LABELS[system]
    digest = result.get("digest")
    if digest is not None and digest != plan_digest:
        failures.append(f"round {round_no}, {label}: used other keys than the plan")
        wrong.update((system, op) for op in result["ops"])
    for op, op_result in result["ops"].items():
        problems = list(op_result["errors"])
        if op_result["checksum"] != expected[op]:
            problems.append(
                f"checksum {op_result['checksum']}, expected {expected[op]}"
            )
        if problems:
            wrong.add((system, op))
            failures.append(f"round {round_no}, {label}, {op}: {problems[0]}")


def run_comparison(runner: Runner, systems: list[str], data: dict) -> tuple:
    """Run the interleaved rounds; return (medians, wrong cells, failures)."""
    args = runner.args
    expected = workload.expected_checksums(
        args.records, args.write_sample, args.len_calls
    )
    rates: dict[str, dict[str, list[float]]] = {s: {} for s in systems}
    failures: list[str] = []
    wrong: set[tuple[str, str]] = set()
    for round_index in range(args.rounds):
        seed = args.seed + round_index
        order = rotated(systems, round_index)
        plan_digest = workload.Plan(args.records, seed, args.write_sample).digest()
        round_data: dict[str, Any] = {
            "round": round_index + 1,
            "seed": seed,
            "order": order,
            "results": {},
        }
        timings = []
        for system in order:
            started = time.perf_counter()
            result = runner.run_round(system, seed, round_index)
            timings.append(f"{system} {time.perf_counter() - started:.1f}s")
            data["versions"].setdefault(system, result["versions"])
            check_round(
                system,
                round_index + 1,
                result,
                plan_digest,
                expected,
                failures,
                wrong,
            )
            for op, op_result in result["ops"].items():
                op_result["ops_per_s"] = per_second(op_result)
                rates[system].setdefault(op, []).append(op_result["ops_per_s"])
            round_data["results"][system] = result["ops"]
        data["rounds"].append(round_data)
        log(f"round {round_index + 1}/{args.rounds}: " + ", ".join(timings))
    medians = {
        system: {op: statistics.median(values) for op, values in ops.items()}
        for system, ops in rates.items()
    }
    data["medians"] = medians
    return medians, wrong, failures


# -- Measurements without targets ---------------------------------------------


def make_shared_store(runner: Runner) -> Path:
    directory = runner.job_dir("shared-store")
    job = {
        "mode": "make",
        "system": "sharedb",
        "dir": str(directory),
        "records": runner.args.records,
        "seed": runner.args.seed,
    }
    result = runner.run_worker("sharedb", job)
    if result["errors"]:
        raise WorkerError(f"making the shared store failed: {result['errors']}")
    return directory


def parallel_reads(runner: Runner, directory: Path, failures: list[str]) -> dict:
    """Measure aggregate gets/s of 1 and of 2 readers at once, for ShareDB
    and, as the machine's reference, for a dict in each process.

    The aggregate rate is all gets divided by the time from the first
    reader's start to the last reader's end.
    """
    args = runner.args
    systems = ("sharedb", "dict")
    runner.pythons.setdefault("dict", sys.executable)
    aggregates = {system: {1: [], 2: []} for system in systems}
    for round_index in range(args.rounds):
        counts = (1, 2) if round_index % 2 == 0 else (2, 1)
        for system, count in itertools.product(systems, counts):
            results = runner.run_readers(
                system, directory, count, args.seed + round_index
            )
            for index, result in enumerate(results):
                keys = workload.read_order(
                    args.records,
                    reader_seed(args.seed + round_index, index),
                    reader_gets(args, system),
                )
                if result["errors"] or result["checksum"] != workload.value_checksum(
                    keys
                ):
                    failures.append(
                        f"parallel reads: reader {index} read wrong values: "
                        f"{result['errors'] or 'checksum differs'}"
                    )
            span = max(r["end"] for r in results) - min(r["start"] for r in results)
            aggregates[system][count].append(sum(r["count"] for r in results) / span)
    medians = {
        system: {count: statistics.median(v) for count, v in by_count.items()}
        for system, by_count in aggregates.items()
    }
    return {"rounds": aggregates, "median": medians}


def resident_memory(runner: Runner, directory: Path, failures: list[str]) -> dict:
    job = {
        "mode": "rss",
        "system": "sharedb",
        "dir": str(directory),
        "records": runner.args.records,
        "seed": runner.args.seed,
    }
    result = runner.run_worker("sharedb", job)
    expected = workload.value_checksum(list(range(runner.args.records)))
    if result["checksum"] != expected:
        failures.append("resident memory: the reader read wrong values")
    return result


def big_runs(runner: Runner, systems: list[str], failures: list[str]) -> dict:
    args = runner.args
    out: dict[str, dict] = {}
    expected_reads = workload.big_plan(args.big_records, args.seed, args.big_reads)[1]
    expected_digest = workload.key_digest(expected_reads)
    expected = {
        "load": args.big_records,
        "get": workload.value_checksum(expected_reads),
    }
    del expected_reads
    for system in systems:
        log(f"big: {report.SYSTEM_LABELS[system]} with {args.big_records:,} records")
        result = runner.run_big(system, args.seed)
        check_round(
            system,
            0,
            {"ops": result["ops"], "digest": result.get("digest")},
            expected_digest,
            expected,
            failures,
            set(),
        )
        out[system] = {
            op: dict(r, ops_per_s=per_second(r)) for op, r in result["ops"].items()
        }
    return out


# -- Output ------------------------------------------------------------------


def machine_info(store_dir: Path) -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "store_dir": str(store_dir),
    }


def print_versions(versions: dict[str, dict[str, str]]) -> None:
    for system, found in versions.items():
        text = ", ".join(f"{name} {value}" for name, value in found.items())
        print(f"- {report.SYSTEM_LABELS[system]}: {text}")


def print_extras(extras: dict[str, Any], args: argparse.Namespace) -> None:
    if "parallel_reads" in extras:
        median = extras["parallel_reads"]["median"]
        print(
            f"\n### Readers in parallel ({args.reader_gets:,} random gets each "
            f"for ShareDB, {reader_gets(args, 'dict'):,} for dict; median of "
            f"{args.rounds})\n"
        )
        rows = []
        for count in (1, 2):
            row = [f"{count} process" + ("es" if count > 1 else "")]
            for system in ("sharedb", "dict"):
                row.append(report.rate(median[system][count]))
                row.append(report.ratio(median[system][count], median[system][1]))
            rows.append(row)
        header = [
            "readers",
            "ShareDB gets/s",
            "vs 1 process",
            "dict gets/s (reference)",
            "vs 1 process",
        ]
        print(report.table(header, rows))
        print(
            "\nEach dict reader builds its own dict: its scaling is what this "
            "machine gives the same Python loop without a store."
        )
    if "rss" in extras:
        rss = extras["rss"]
        print(
            f"\n### Resident memory of a ShareDB reader ({args.records:,} records, "
            f"data.mdb {rss['data_bytes'] / 2**20:,.1f} MiB)\n"
        )
        rows = []
        labels = {
            "started": "after imports",
            "opened": "after opening the store",
            "after_gets": "after a get of every key",
        }
        for stage, label in labels.items():
            status = rss["stages"][stage]
            rows.append(
                [label]
                + [report.mib(status.get(k)) for k in ("VmRSS", "RssAnon", "RssFile")]
            )
        print(report.table(["stage", "VmRSS MiB", "RssAnon MiB", "RssFile MiB"], rows))
        print(
            "\nRssFile counts pages of data.mdb mapped by this process. They "
            "are page cache, shared by every process that maps the store, and "
            "the store was just written, so reads found them in memory."
        )
    if "big" in extras:
        big = extras["big"]
        print(
            f"\n### {args.big_records:,} records (one round; gets of "
            f"{min(args.big_reads, args.big_records):,} random keys)\n"
        )
        systems = list(big)
        header = ["operation (ops/s)"] + [report.SYSTEM_LABELS[s] for s in systems]
        rows = []
        for op, label in (("load", "load: multiset, 1 txn"), ("get", "get: db[k]")):
            rows.append(
                [label] + [report.rate(big[s][op]["ops_per_s"]) for s in systems]
            )
        print(report.table(header, rows))


# -- Command line ------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--records",
        type=int,
        default=100_000,
        help="records in the store (default 100,000)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="rounds per system; tables give the median (default 5)",
    )
    parser.add_argument(
        "--systems",
        default=",".join(DEFAULT_SYSTEMS),
        help="comma-separated systems to run, from "
        + ", ".join(ALL_SYSTEMS)
        + " (default: all but lmdb_wm)",
    )
    parser.add_argument(
        "--dir",
        help="directory to create the stores in; a new directory is made "
        "inside it and deleted at the end (default: the system's temporary "
        "directory, /tmp on Linux)",
    )
    parser.add_argument(
        "--venv-dir",
        default=str(setup.BENCH_DIR / ".venvs"),
        help="directory of the virtualenvs for ShareDB 2.0.2 and lmdb",
    )
    parser.add_argument("--json", help="write every round's numbers to this file")
    parser.add_argument(
        "--write-sample",
        type=int,
        default=20_000,
        help="keys that set and delete each write, at most --records (default 20,000)",
    )
    parser.add_argument(
        "--len-calls",
        type=int,
        default=100_000,
        help="len(db) calls per round (default 100,000)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=20240601,
        help="seed of round 1's key orders; round i uses seed + i - 1",
    )
    parser.add_argument(
        "--reader-gets",
        type=int,
        default=1_000_000,
        help="gets per ShareDB process in the parallel-readers measurement "
        "(default 1,000,000)",
    )
    parser.add_argument(
        "--skip-extras",
        action="store_true",
        help="skip the parallel-readers and resident-memory measurements",
    )
    parser.add_argument(
        "--big",
        action="store_true",
        help="also time load and random gets of a store of --big-records",
    )
    parser.add_argument(
        "--big-records",
        type=int,
        default=10_000_000,
        help="records of the --big store (default 10,000,000)",
    )
    parser.add_argument(
        "--big-reads",
        type=int,
        default=1_000_000,
        help="random gets of distinct keys in --big (default 1,000,000)",
    )
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and check the command line; exit with a usage error if an
    option is invalid."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = [s for s in args.systems if s not in ALL_SYSTEMS]
    if unknown or not args.systems:
        parser.error(f"unknown systems {unknown}; choose from {', '.join(ALL_SYSTEMS)}")
    for name in ("records", "rounds", "len_calls", "reader_gets", "big_records"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.write_sample < 1 or args.big_reads < 1:
        parser.error("--write-sample and --big-reads must be at least 1")
    return args


def lmdb_flag_names(flags: dict[str, bool]) -> list[str]:
    """Return the C loop's names of the LMDB flags in an Environment.flags()
    dict of sharedb.lmdb."""
    # ShareDB opens every environment with MDB_NOTLS, which flags() omits.
    names = ["notls"]
    for name, key, when in (
        ("nosync", "sync", False),
        ("nometasync", "metasync", False),
        ("mapasync", "map_async", True),
        ("writemap", "writemap", True),
        ("nordahead", "readahead", False),
        ("nomeminit", "meminit", False),
    ):
        if key in flags and flags[key] == when:
            names.append(name)
    return names


def sharedb_flags(runner: Runner) -> list[str]:
    """Return the LMDB flags of a new ShareDB store, as C loop names."""
    directory = runner.job_dir("flags")
    try:
        job = {"mode": "flags", "system": "sharedb", "dir": str(directory)}
        flags = runner.run_worker("sharedb", job)["flags"]
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    if flags is None:
        log(f"cannot read ShareDB's LMDB flags; the C loop uses {FALLBACK_FLAGS}")
        return FALLBACK_FLAGS
    return lmdb_flag_names(flags)


def set_up_systems(runner: Runner, systems: list[str], work_dir: Path) -> list[str]:
    """Prepare each system; return the systems that can run. Only the C loop
    may be skipped; any other failure raises SetupError."""
    ready = []
    for system in systems:
        if system in VENV_OF:
            runner.pythons[system] = str(
                setup.ensure_venv(Path(runner.args.venv_dir), VENV_OF[system], log)
            )
        elif system != "c":
            if system == "sharedb":
                log(f"ShareDB: {sys.executable}, sharedb in {setup.check_sharedb()}")
            runner.pythons[system] = sys.executable
        else:
            try:
                runner.cloop = setup.compile_cloop(work_dir)
            except setup.SetupError as exc:
                log(f"skipping the C loop: {exc}")
                continue
            # The C loop opens its store as ShareDB does, which needs a
            # ShareDB worker even when ShareDB itself is not compared.
            setup.check_sharedb()
            runner.pythons.setdefault("sharedb", sys.executable)
            runner.cloop_flags = sharedb_flags(runner)
        ready.append(system)
    return ready


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    if args.dir:
        Path(args.dir).mkdir(parents=True, exist_ok=True)
    base_dir = Path(tempfile.mkdtemp(prefix="sharedb-bench-", dir=args.dir))
    data: dict[str, Any] = {
        "config": {k: v for k, v in vars(args).items()},
        "machine": machine_info(base_dir),
        "versions": {},
        "rounds": [],
    }
    failures: list[str] = []
    extras: dict[str, Any] = {}
    try:
        runner = Runner(args, base_dir)
        systems = set_up_systems(runner, args.systems, base_dir)
        if args.rounds < 5:
            log(f"note: {args.rounds} rounds; use at least 5 for reported numbers")
        medians, wrong, failures = run_comparison(runner, systems, data)
        if "sharedb" in systems and not args.skip_extras:
            log("measuring parallel readers and resident memory")
            shared = make_shared_store(runner)
            extras["parallel_reads"] = parallel_reads(runner, shared, failures)
            extras["rss"] = resident_memory(runner, shared, failures)
            shutil.rmtree(shared, ignore_errors=True)
        if args.big:
            extras["big"] = big_runs(runner, systems, failures)
    except (setup.SetupError, WorkerError) as exc:
        log(f"error: {exc}")
        return 2
    finally:
        shutil.rmtree(base_dir, ignore_errors=True)
    elapsed = time.perf_counter() - started
    data["load_average"] = {"start": load_before, "end": os.getloadavg()[0]}

    machine = data["machine"]
    print(
        f"## ShareDB benchmark: {args.records:,} records, median of "
        f"{args.rounds} rounds\n"
    )
    print(
        f"{machine['cpu']}, {machine['cpus']} CPUs, {machine['platform']}; "
        f"stores under {base_dir.parent}; run time {elapsed:.0f} s; 1-minute "
        f"load average {load_before:.2f} at the start and "
        f"{data['load_average']['end']:.2f} at the end (other processes "
        f"competing for the CPUs make rates lower and noisier)\n"
    )
    print_versions(data["versions"])
    print()
    print(report.main_table(systems, medians, wrong))
    print(
        f"\nRatios are ShareDB's rate divided by the other system's. set and "
        f"delete time {min(args.write_sample, args.records):,} single-commit "
        f"writes; contains looks up every key and "
        f"{workload.absent_count(args.records):,} absent ones; len is "
        f"{args.len_calls:,} calls."
    )
    print_extras(extras, args)
    data["extras"] = extras
    data["failures"] = failures
    data["elapsed_seconds"] = elapsed
    if args.json:
        with open(args.json, "w") as out:
            json.dump(data, out, indent=1)
    if failures:
        print("\n### Failures\n")
        for failure in failures:
            print(f"- {failure}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
