"""Fuzz ShareDB with damaged data files and count the crashes.

The script builds a few sound stores (the seeds). For each case it
copies one seed and damages its data.mdb in one of the ways in
DAMAGE_KINDS. A forked child process then runs lmdb.verify(), open,
len(), items(), get(), multiget(), a write and items() again on the
copy. A child may
raise any Python exception. A child killed by a signal is a crash, and a
child that outlives --timeout is a hang. The summary counts the outcomes
per damage kind, and the damaged files of crashes and hangs are kept
under --keep, where --replay runs them again in a fresh interpreter with
faulthandler on, or under gdb with --gdb.

    python tests/fuzz_files.py --count 10000 --seed 1 --keep /tmp/kept
    python tests/fuzz_files.py --replay /tmp/kept --gdb

Exits with status 1 if any case crashed or hung, else 0. The damage
offsets assume the 64-bit LMDB page layout: a 16-byte page header and
the page size stored in the meta page.
"""

from __future__ import annotations

import argparse
import collections
import faulthandler
import json
import os
import random
import re
import resource
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field

import sharedb

SUFFIX = ".ShareDB"
PAGE_HEADER = 16
# Page 0 stores the page size in the pad field of its free-page database
# record, at this offset. The last page number and the txnid end the meta
# record, right after the two 48-byte database records.
PAGE_SIZE_OFFSET = PAGE_HEADER + 24
META_LAST_PGNO_OFFSET = PAGE_HEADER + 24 + 2 * 48
META_END = META_LAST_PGNO_OFFSET + 16

DAMAGE_KINDS = (
    "truncate",
    "truncate_mid_page",
    "truncate_to_pages",
    "empty",
    "flip_anywhere",
    "flip_meta",
    "flip_page_header",
    "random_page",
    "zero_page",
    "swap_pages",
)

# A child's memory cap (RLIMIT_DATA), so that a length read from damaged
# bytes ends in MemoryError instead of filling the machine. Shared file
# maps, such as the LMDB map, do not count against it.
CHILD_DATA_LIMIT = 2 << 30


def limit_child_memory() -> None:
    """Cap the memory of this child at CHILD_DATA_LIMIT.  Under
    AddressSanitizer (.ci/sanitize sets SHAREDB_SANITIZED) the shadow
    memory alone exceeds the cap, so the sanitizer's own limit on one
    allocation replaces it there."""
    if not os.environ.get("SHAREDB_SANITIZED"):
        resource.setrlimit(resource.RLIMIT_DATA, (CHILD_DATA_LIMIT, CHILD_DATA_LIMIT))

# Keys that every seed contains and every child reads with get() and multiget().
PROBE_KEYS = ("k00000", "k00001", "k00100", "k00999", "big00003", "absent")


# Seeds -----------------------------------------------------------------


@dataclass
class Seed:
    """A sound store to damage: its files as bytes, and its layout."""

    name: str
    files: dict[str, bytes]
    page_size: int
    last_pgno: int


def build_seed_stores(directory: str) -> list[Seed]:
    """Create the seed stores under directory and read their files."""
    rng = random.Random(0)
    blueprints = [
        # Small values only: one or a few leaf pages.
        ("small-pickle-plain", "pickle", False, 1000, 0, 0.0),
        # Values over a page, so the records sit on overflow pages.
        ("overflow-msgpack-zlib", "msgpack", True, 1000, 40, 0.0),
        # Several thousand keys: a tree with branch pages.
        ("branch-pickle-zlib", "pickle", True, 6000, 0, 0.0),
        # Deleted keys and values leave free pages and a free-page tree.
        ("freed-msgpack-plain", "msgpack", False, 4000, 30, 0.6),
        # All of the above with the default serializer.
        ("mixed-pickle-plain", "pickle", False, 5000, 30, 0.3),
    ]
    seeds = []
    for name, serial, compress, small_count, big_count, delete_share in blueprints:
        base = os.path.join(directory, name)
        db = sharedb.ShareDB(base, serial=serial, compress=compress)
        db.multiset(
            (f"k{i:05d}", [i, f"value {i}", i * 0.5]) for i in range(small_count)
        )
        for i in range(big_count):
            # Random bytes do not compress, so these stay over a page.
            db[f"big{i:05d}"] = rng.randbytes(rng.randrange(5000, 20000))
        if delete_share:
            doomed = [
                f"k{i:05d}" for i in range(small_count) if rng.random() < delete_share
            ]
            doomed = [key for key in doomed if key not in PROBE_KEYS]
            doomed += [f"big{i:05d}" for i in range(4, big_count, 2)]
            db.multiremove(doomed)
        db.close()
        store_dir = base + SUFFIX
        files = {}
        for file_name in sorted(os.listdir(store_dir)):
            with open(os.path.join(store_dir, file_name), "rb") as file:
                files[file_name] = file.read()
        page_size, last_pgno = read_layout(files["data.mdb"])
        seeds.append(Seed(name, files, page_size, last_pgno))
    return seeds


def read_layout(data: bytes) -> tuple[int, int]:
    """Return the page size and the last used page number of a sound file."""
    (page_size,) = struct.unpack_from("=I", data, PAGE_SIZE_OFFSET)
    newest = (-1, 0)
    for pgno in (0, 1):
        start = pgno * page_size + META_LAST_PGNO_OFFSET
        last_pgno, txnid = struct.unpack_from("=QQ", data, start)
        newest = max(newest, (txnid, last_pgno))
    return page_size, newest[1]


# Damage ----------------------------------------------------------------


def flip_bytes(
    data: bytearray, rng: random.Random, low: int, high: int, count: int
) -> list:
    """XOR count random bytes in data[low:high] with nonzero masks."""
    edits = []
    for _ in range(count):
        offset = rng.randrange(low, min(high, len(data)))
        mask = rng.randrange(1, 256)
        data[offset] ^= mask
        edits.append([offset, mask])
    return edits


def damage(seed: Seed, kind: str, rng: random.Random) -> tuple[bytes, dict]:
    """Return a damaged copy of the seed's data.mdb and what was done."""
    data = bytearray(seed.files["data.mdb"])
    page = seed.page_size
    pages = seed.last_pgno + 1
    detail: dict = {}
    if kind == "truncate":
        size = rng.randrange(1, len(data))
        del data[size:]
        detail["size"] = size
    elif kind == "truncate_mid_page":
        size = rng.randrange(pages) * page + rng.randrange(1, page)
        del data[size:]
        detail["size"] = size
    elif kind == "truncate_to_pages":
        size = rng.randrange(1, 5) * page
        del data[size:]
        detail["size"] = size
    elif kind == "empty":
        del data[:]
    elif kind == "flip_anywhere":
        detail["flips"] = flip_bytes(data, rng, 0, len(data), rng.randint(1, 16))
    elif kind == "flip_meta":
        # Mostly the header and meta record, where every byte counts,
        # because the rest of pages 0 and 1 is unused.
        high = META_END if rng.random() < 0.8 else page
        flips = []
        for _ in range(rng.randint(1, 4)):
            start = rng.choice((0, page))
            flips += flip_bytes(data, rng, start, start + high, 1)
        detail["flips"] = flips
    elif kind == "flip_page_header":
        pgno = rng.randrange(2, pages)
        start = pgno * page
        detail["pgno"] = pgno
        detail["flips"] = flip_bytes(
            data, rng, start, start + PAGE_HEADER, rng.randint(1, 3)
        )
    elif kind in ("random_page", "zero_page"):
        # The meta pages too, now and then.
        pgno = rng.randrange(pages) if rng.random() < 0.1 else rng.randrange(2, pages)
        filler = rng.randbytes(page) if kind == "random_page" else bytes(page)
        data[pgno * page : (pgno + 1) * page] = filler
        detail["pgno"] = pgno
    elif kind == "swap_pages":
        low = 0 if rng.random() < 0.1 else 2
        first, second = rng.sample(range(low, pages), 2)
        a = bytes(data[first * page : (first + 1) * page])
        b = bytes(data[second * page : (second + 1) * page])
        data[first * page : (first + 1) * page] = b
        data[second * page : (second + 1) * page] = a
        detail["pgnos"] = [first, second]
    else:
        raise ValueError(f"unknown damage kind {kind!r}")
    return bytes(data), detail


def write_store(base: str, seed: Seed, data: bytes) -> None:
    """Write the seed's files, with data as data.mdb, to base + '.ShareDB'."""
    store_dir = base + SUFFIX
    if os.path.lexists(store_dir):
        shutil.rmtree(store_dir)
    os.makedirs(store_dir)
    for file_name, content in seed.files.items():
        if file_name == "data.mdb":
            content = data
        with open(os.path.join(store_dir, file_name), "wb") as file:
            file.write(content)


# The child -------------------------------------------------------------


def error_line(step: str, exc: BaseException) -> str:
    message = " ".join(str(exc).split())[:300]
    return f"error {step} {type(exc).__name__} {message}"


def exercise(base: str, report) -> None:
    """Run every operation of the fuzz on the store at base.

    report(line) is called before each step and with each exception, so
    that the parent learns the step a crash happened in.
    """
    store_dir = base + SUFFIX
    report("step verify")
    try:
        result = sharedb.lmdb.verify(store_dir)
        report(f"verify {len(result['problems'])}")
    except Exception as exc:
        report(error_line("verify", exc))

    report("step open")
    try:
        db = sharedb.ShareDB(base)
    except Exception as exc:
        report(error_line("open", exc))
        return

    def read_all() -> None:
        for _ in db.items():
            pass

    def get_some() -> None:
        for key in PROBE_KEYS:
            db.get(key)

    def write() -> None:
        db["new"] = 1
        db.sync()

    steps = [
        ("len", lambda: len(db)),
        ("items", read_all),
        ("get", get_some),
        ("multiget", lambda: list(db.multiget(PROBE_KEYS))),
        ("write", write),
        ("items_after_write", read_all),
        ("close", db.close),
    ]
    # Each step runs even if an earlier one raised, since a write on a
    # damaged tree reaches code that reads do not.
    for name, step in steps:
        report(f"step {name}")
        try:
            step()
        except Exception as exc:
            report(error_line(name, exc))


def run_child(base: str, pipe_write: int, stderr_path: str, timeout: float) -> None:
    """Exercise the store in this forked process, then _exit()."""
    status = 0
    try:
        stderr_fd = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(stderr_fd, 2)
        os.close(stderr_fd)
        faulthandler.enable(all_threads=True)
        # Where a hung child is stuck, written before the parent kills it.
        faulthandler.dump_traceback_later(timeout * 0.9)
        limit_child_memory()
        # The pipe carries one short line per os.write(), so a crash loses
        # nothing that was reported before it.
        exercise(base, lambda line: os.write(pipe_write, (line + "\n").encode()))
        os.write(pipe_write, b"done\n")
    except BaseException:
        traceback.print_exc()
        status = 3
    finally:
        os._exit(status)


# The parent ------------------------------------------------------------


@dataclass
class Case:
    number: int
    seed: Seed
    kind: str
    detail: dict
    data: bytes
    base: str = ""
    pid: int = 0
    pipe_read: int = -1
    stderr_path: str = ""
    started: float = 0.0
    output: bytearray = field(default_factory=bytearray)


@dataclass
class Outcome:
    """How one case ended, from the lines its child reported."""

    number: int
    kind: str
    result: str  # "clean", "exception", "crash" or "hang"
    label: str  # the exception class, signal name or "clean"
    step: str  # the last step started
    errors: list[tuple[str, str]]
    verify_problems: int | None
    # The message of each exception, by "step: class".
    messages: dict[str, str]


def parse_outcome(case: Case, status: int | None) -> Outcome:
    """Classify a finished case. A status of None means it was killed as hung."""
    step = ""
    errors = []
    messages: dict[str, str] = {}
    verify_problems = None
    done = False
    for line in case.output.decode(errors="replace").splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] == "step":
            step = words[1]
        elif words[0] == "error" and len(words) >= 3:
            errors.append((words[1], words[2]))
            message = line.split(None, 3)[3:]
            messages.setdefault(
                f"{words[1]}: {words[2]}", message[0] if message else ""
            )
        elif words[0] == "verify":
            verify_problems = int(words[1])
        elif words[0] == "done":
            done = True

    if status is None:
        result, label = "hang", "hang"
    elif os.WIFSIGNALED(status):
        result, label = "crash", signal.Signals(os.WTERMSIG(status)).name
    elif os.WEXITSTATUS(status) != 0 or not done:
        # The child exited early without a signal, for example from an
        # exception outside the steps: a crash labeled with its status.
        result, label = "crash", f"exit {os.WEXITSTATUS(status)}"
    elif errors:
        result, label = "exception", errors[0][1]
    else:
        result, label = "clean", "clean"
    return Outcome(
        case.number, case.kind, result, label, step, errors, verify_problems, messages
    )


def start_case(case: Case, slot_dir: str, timeout: float) -> None:
    case.base = os.path.join(slot_dir, "store")
    case.stderr_path = os.path.join(slot_dir, "stderr.txt")
    write_store(case.base, case.seed, case.data)
    pipe_read, pipe_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(pipe_read)
        run_child(case.base, pipe_write, case.stderr_path, timeout)
    os.close(pipe_write)
    case.pid = pid
    case.pipe_read = pipe_read
    case.started = time.monotonic()


def finish_case(case: Case, status: int | None) -> Outcome:
    os.close(case.pipe_read)
    return parse_outcome(case, status)


def keep_case(case: Case, outcome: Outcome, keep_dir: str) -> str:
    """Save a failing case's damaged store and description for --replay."""
    case_dir = os.path.join(keep_dir, f"case-{case.number:05d}")
    write_store(os.path.join(case_dir, "store"), case.seed, case.data)
    try:
        with open(case.stderr_path, encoding="utf-8", errors="replace") as file:
            stderr_text = file.read()
    except OSError:
        stderr_text = ""
    description = {
        "case": case.number,
        "seed_store": case.seed.name,
        "kind": case.kind,
        "detail": case.detail,
        "result": outcome.result,
        "signal": outcome.label,
        "step": outcome.step,
        "errors": outcome.errors,
        "messages": outcome.messages,
        "stderr": stderr_text[-4000:],
    }
    with open(os.path.join(case_dir, "case.json"), "w", encoding="utf-8") as file:
        json.dump(description, file, indent=1)
    return case_dir


def run_cases(args, seeds: list[Seed], work_dir: str) -> list[Outcome]:
    """Damage and exercise args.count cases, args.workers at a time."""
    rng = random.Random(args.seed)
    pending = collections.deque(range(args.count))
    free_slots = [os.path.join(work_dir, f"slot{i}") for i in range(args.workers)]
    for slot in free_slots:
        os.makedirs(slot)
    running: dict[int, tuple[Case, str]] = {}
    outcomes: list[Outcome] = []
    started_at = time.monotonic()

    try:
        while pending or running:
            while pending and free_slots:
                number = pending.popleft()
                # Every case draws from the generator, so that case N is the
                # same damage whichever cases --only selects.
                seed = rng.choice(seeds)
                kind = rng.choice(DAMAGE_KINDS)
                data, detail = damage(seed, kind, rng)
                if args.only is not None and number not in args.only:
                    continue
                case = Case(number, seed, kind, detail, data)
                slot = free_slots.pop()
                start_case(case, slot, args.timeout)
                running[case.pipe_read] = (case, slot)

            if not running:
                continue
            now = time.monotonic()
            wait = min(case.started + args.timeout - now for case, _ in running.values())
            readable, _, _ = select.select(list(running), [], [], max(wait, 0.0))
            finished: list[tuple[int, int | None]] = []
            for fd in readable:
                case, _ = running[fd]
                chunk = os.read(fd, 65536)
                if chunk:
                    case.output += chunk
                else:
                    _, status = os.waitpid(case.pid, 0)
                    finished.append((fd, status))
            now = time.monotonic()
            for fd, (case, _) in running.items():
                if now - case.started > args.timeout and fd not in dict(finished):
                    os.kill(case.pid, signal.SIGKILL)
                    os.waitpid(case.pid, 0)
                    finished.append((fd, None))

            for fd, status in finished:
                case, slot = running.pop(fd)
                outcome = finish_case(case, status)
                outcomes.append(outcome)
                free_slots.append(slot)
                failed = outcome.result in ("crash", "hang")
                if failed or args.only is not None:
                    where = keep_case(case, outcome, args.keep) if args.keep else "not kept"
                    # An exception is reported at the step that raised it, and a
                    # crash or hang at the last step that started.
                    step = outcome.errors[0][0] if outcome.result == "exception" else outcome.step
                    print(
                        f"case {case.number}: {outcome.result} {outcome.label} in "
                        f"{step} ({case.seed.name}, {case.kind}): {where}",
                        flush=True,
                    )
            if args.progress and len(outcomes) % args.progress == 0 and finished:
                elapsed = time.monotonic() - started_at
                print(f"{len(outcomes)} cases in {elapsed:.0f} s", flush=True)
    finally:
        # Children still running after an error or Ctrl-C in this loop.
        for case, _ in running.values():
            os.kill(case.pid, signal.SIGKILL)
            os.waitpid(case.pid, 0)
    return outcomes


# The summary -----------------------------------------------------------


def summarize(outcomes: list[Outcome]) -> dict:
    by_kind: dict[str, collections.Counter] = {}
    for outcome in outcomes:
        counter = by_kind.setdefault(outcome.kind, collections.Counter())
        counter["cases"] += 1
        counter[outcome.result] += 1
        if outcome.result == "clean" and outcome.verify_problems == 0:
            counter["verify_missed"] += 1
    labels = collections.Counter(
        f"{outcome.result}: {outcome.label}" for outcome in outcomes
    )
    failing_steps = collections.Counter(
        f"{outcome.result} {outcome.label} in {outcome.step}"
        for outcome in outcomes
        if outcome.result in ("crash", "hang")
    )
    errors_by_step = collections.Counter(
        f"{step}: {name}" for outcome in outcomes for step, name in outcome.errors
    )
    examples: dict[str, str] = {}
    for outcome in outcomes:
        for label, message in outcome.messages.items():
            examples.setdefault(label, f"case {outcome.number}: {message}")
    return {
        "cases": len(outcomes),
        "crashes": sum(outcome.result == "crash" for outcome in outcomes),
        "hangs": sum(outcome.result == "hang" for outcome in outcomes),
        "by_kind": {kind: dict(counter) for kind, counter in sorted(by_kind.items())},
        "outcomes": dict(labels.most_common()),
        "crashes_by_step": dict(failing_steps.most_common()),
        "errors_by_step": dict(errors_by_step.most_common()),
        "error_examples": examples,
    }


def print_summary(summary: dict) -> None:
    columns = ("cases", "clean", "exception", "crash", "hang", "verify_missed")
    print()
    print(f"{'damage kind':<20}" + "".join(f"{name:>14}" for name in columns))
    for kind, counts in summary["by_kind"].items():
        print(f"{kind:<20}" + "".join(f"{counts.get(name, 0):>14}" for name in columns))
    print(
        "(verify_missed: the case opened and read cleanly and verify() found no problem)"
    )
    for title, key in (
        ("Outcomes (the first exception of a case)", "outcomes"),
        ("Crashes and hangs by step", "crashes_by_step"),
        ("Exceptions by step", "errors_by_step"),
    ):
        print()
        print(title)
        for label, count in summary[key].items():
            print(f"  {count:>7}  {label}")
            if key == "errors_by_step":
                print(
                    f"           e.g. {summary['error_examples'].get(label, '')[:160]}"
                )
    print()
    print(
        f"{summary['cases']} cases, {summary['crashes']} crashed, "
        f"{summary['hangs']} hung"
    )


# Replay ----------------------------------------------------------------


def find_kept_cases(path: str) -> list[str]:
    """Return the case directories at path: a case.json, a case or a --keep."""
    if os.path.isfile(path):
        return [os.path.dirname(os.path.abspath(path))]
    if os.path.isfile(os.path.join(path, "case.json")):
        return [path]
    cases = sorted(
        os.path.join(path, name)
        for name in os.listdir(path)
        if os.path.isfile(os.path.join(path, name, "case.json"))
    )
    if not cases:
        raise SystemExit(
            f"no case.json found in {path}; pass a directory made by --keep"
        )
    return cases


# Frames of a replayed backtrace to print: the LMDB and extension frames
# and the first few of the interpreter.
BACKTRACE_LINES = 10


def top_native_frames(gdb_output: str, limit: int = 4) -> list[str]:
    """Return the names of the first C functions in a gdb backtrace."""
    frames = []
    for line in gdb_output.splitlines():
        match = re.match(
            r"#\d+\s+(?:0x[0-9a-f]+ in )?(\S+) \(.*?\)(?: at (\S+))?", line
        )
        if match:
            name = match.group(1)
            location = match.group(2)
            frames.append(f"{name} {location}" if location else name)
    return frames[:limit]


def replay(args) -> int:
    """Run kept cases again, each in a new interpreter, and print how they end."""
    script = os.path.abspath(__file__)
    crashed = 0
    groups: collections.Counter = collections.Counter()
    for case_dir in find_kept_cases(args.replay):
        with open(os.path.join(case_dir, "case.json"), encoding="utf-8") as file:
            description = json.load(file)
        with tempfile.TemporaryDirectory(prefix="fuzz-replay-") as scratch:
            base = os.path.join(scratch, "store")
            shutil.copytree(os.path.join(case_dir, "store" + SUFFIX), base + SUFFIX)
            command = [
                sys.executable,
                "-X",
                "faulthandler",
                script,
                "--run-one",
                base,
                "--timeout",
                str(args.timeout),
            ]
            if args.gdb:
                command = [
                    "gdb",
                    "-batch",
                    "-nx",
                    "-ex",
                    "run",
                    "-ex",
                    "bt",
                    "--args",
                    *command,
                ]
            try:
                finished = subprocess.run(
                    command, capture_output=True, text=True, timeout=args.timeout + 30
                )
            except subprocess.TimeoutExpired:
                print(f"{case_dir}: timed out after {args.timeout + 30} s")
                crashed += 1
                continue
        output = finished.stdout + finished.stderr
        if args.gdb:
            signal_match = re.search(r"received signal (SIG\w+)", output)
            ended = signal_match.group(1) if signal_match else "no signal"
        elif finished.returncode < 0:
            ended = signal.Signals(-finished.returncode).name
        else:
            ended = f"exit {finished.returncode}"
        step_match = re.findall(r"^step (\w+)$", finished.stdout, re.MULTILINE)
        step = step_match[-1] if step_match else "?"
        print(
            f"== {case_dir}: {description['kind']} of {description['seed_store']}, "
            f"{ended} in {step} (fuzz run: {description['signal']} in {description['step']})"
        )
        if ended != "exit 0" and ended != "no signal":
            crashed += 1
        if args.gdb:
            frames = top_native_frames(output)
            groups[" <- ".join(frames) or "no backtrace"] += 1
            frame_lines = [line for line in output.splitlines() if line.startswith("#")]
            print("\n".join(frame_lines[:BACKTRACE_LINES]))
        else:
            print(finished.stderr.rstrip())
    if args.gdb:
        print()
        print("Cases by innermost C frames")
        for frames, count in groups.most_common():
            print(f"  {count:>5}  {frames}")
    return 1 if crashed else 0


def run_one(base: str, timeout: float) -> int:
    """Exercise one store in this process, printing each step to stdout."""
    faulthandler.enable(all_threads=True)
    # A hang prints where it is stuck and exits with status 1.
    faulthandler.dump_traceback_later(timeout, exit=True)
    limit_child_memory()
    exercise(base, lambda line: print(line, flush=True))
    print("done", flush=True)
    return 0


# Main ------------------------------------------------------------------


def parse_case_numbers(text: str) -> set[int]:
    try:
        return {int(word) for word in text.split(",")}
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid case numbers {text!r}; give integers separated by commas"
        ) from None


def parse_arguments(argv: list[str] | None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--count", type=int, default=1000, help="number of damaged files (default 1000)"
    )
    parser.add_argument(
        "--seed", type=int, default=1, help="seed of the random damage (default 1)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        choices=(1, 2),
        help="child processes at once (default 2)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=20.0,
        help="seconds before a child counts as hung and is killed (default 20)",
    )
    parser.add_argument(
        "--keep",
        metavar="DIR",
        help="directory to save the crashing and hanging cases in",
    )
    parser.add_argument(
        "--json", metavar="FILE", help="also write the summary to FILE as JSON"
    )
    parser.add_argument(
        "--progress",
        type=int,
        default=0,
        metavar="N",
        help="print a progress line every N cases (default never)",
    )
    parser.add_argument(
        "--work-dir",
        metavar="DIR",
        help="directory for the seeds and damaged copies (default a new temporary one)",
    )
    parser.add_argument(
        "--replay",
        metavar="FILE_OR_DIR",
        help="run the cases kept by --keep again instead of fuzzing",
    )
    parser.add_argument(
        "--gdb",
        action="store_true",
        help="with --replay, run each case under gdb and print its C backtrace",
    )
    parser.add_argument(
        "--only",
        metavar="N,N,...",
        type=parse_case_numbers,
        help="run only these case numbers of the --seed sequence, and keep "
        "them all under --keep whatever their outcome",
    )
    parser.add_argument("--run-one", metavar="BASE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.count < 0:
        parser.error(f"--count must be at least 0, not {args.count}")
    if args.timeout <= 0:
        parser.error(f"--timeout must be more than 0 seconds, not {args.timeout}")
    if args.gdb and not args.replay:
        parser.error("--gdb needs --replay")
    if args.gdb and shutil.which("gdb") is None:
        parser.error("--gdb: gdb not found on PATH")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    if args.run_one:
        return run_one(args.run_one, args.timeout)
    if args.replay:
        return replay(args)

    print(f"sharedb {sharedb.__version__} from {os.path.dirname(sharedb.__file__)}")
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
    work_dir = tempfile.mkdtemp(prefix="fuzz-files-", dir=args.work_dir)
    try:
        seeds = build_seed_stores(os.path.join(work_dir, "seeds"))
        for seed in seeds:
            print(
                f"seed {seed.name}: {len(seed.files['data.mdb'])} bytes, "
                f"{seed.last_pgno + 1} pages of {seed.page_size}"
            )
        started = time.monotonic()
        outcomes = run_cases(args, seeds, work_dir)
        elapsed = time.monotonic() - started
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)

    summary = summarize(outcomes)
    summary["seconds"] = round(elapsed, 1)
    print_summary(summary)
    print(f"{elapsed:.0f} s with {args.workers} workers")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(summary, file, indent=1)
    return 1 if summary["crashes"] or summary["hangs"] else 0


if __name__ == "__main__":
    sys.exit(main())
