"""Set up the systems of the benchmark: virtualenvs and the C loop binary."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
VENDOR_LMDB = REPO_DIR / "vendor" / "lmdb"

# Packages of each virtualenv, installed from PyPI by pip. ShareDB 2.0.2 is
# published under our distribution name (import name ShareDB), so it can
# only live in a virtualenv of its own. It pulls in the lmdb package.
VENV_REQUIREMENTS = {
    "sharedb202": ["sharedb==2.0.2", "msgpack"],
    "lmdb": ["lmdb", "msgpack"],
}

# Imports that must succeed in each virtualenv before it is used.
VENV_IMPORTS = {
    "sharedb202": "from ShareDB import ShareDB; import msgpack",
    "lmdb": "import lmdb, msgpack",
}


class SetupError(Exception):
    """A system could not be set up. The message names the fix."""


def venv_python(venv: Path) -> Path:
    if sys.platform == "win32":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def _stamp(name: str) -> str:
    """Return the record of what a virtualenv was built from. A venv whose
    stamp differs (other packages, other Python) is rebuilt."""
    return json.dumps(
        {
            "requirements": VENV_REQUIREMENTS[name],
            "python": platform.python_version(),
            "base": getattr(sys, "_base_executable", sys.executable),
        },
        sort_keys=True,
    )


def ensure_venv(root: Path, name: str, log) -> Path:
    """Create the virtualenv root/name with its packages, or reuse it.

    Returns the path of its Python. Raises SetupError if venv or pip fails.
    """
    venv = root / name
    python = venv_python(venv)
    stamp_path = venv / "bench-stamp.json"
    if python.exists() and stamp_path.exists():
        if stamp_path.read_text() == _stamp(name):
            return python
    log(f"creating virtualenv {venv} with {' '.join(VENV_REQUIREMENTS[name])}")
    if venv.exists():
        shutil.rmtree(venv)
    root.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, "-m", "venv", str(venv)], f"python -m venv {venv}")
    _run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *VENV_REQUIREMENTS[name],
        ],
        f"pip install into {venv}",
    )
    _run([str(python), "-c", VENV_IMPORTS[name]], f"the imports of {venv}")
    stamp_path.write_text(_stamp(name))
    return python


def _run(command: list[str], description: str) -> None:
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SetupError(
            f"{description} failed with exit status {proc.returncode}:\n"
            f"{proc.stdout}{proc.stderr}"
        )


def check_sharedb() -> str:
    """Return the directory of the sharedb package this interpreter imports.

    Raises SetupError if there is none, since the ShareDB system runs with
    sys.executable.
    """
    import importlib.util

    spec = importlib.util.find_spec("sharedb")
    if spec is None or spec.origin is None:
        raise SetupError(
            f"{sys.executable} cannot import sharedb; install this repository "
            f"into it first (pip install -e {REPO_DIR})"
        )
    return os.path.dirname(spec.origin)


def find_compiler() -> str | None:
    """Return the C compiler named by $CC, else cc or gcc, else None."""
    for name in (os.environ.get("CC"), "cc", "gcc"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def compile_cloop(out_dir: Path) -> Path:
    """Compile _cloop.c with the vendored LMDB sources into out_dir.

    Returns the binary's path. Raises SetupError if no compiler is found or
    the compile fails.
    """
    compiler = find_compiler()
    if compiler is None:
        raise SetupError("no C compiler found (set CC, or install cc or gcc)")
    binary = out_dir / "cloop"
    command = [
        compiler,
        "-O2",
        "-I",
        str(VENDOR_LMDB),
        str(BENCH_DIR / "_cloop.c"),
        str(VENDOR_LMDB / "mdb.c"),
        str(VENDOR_LMDB / "midl.c"),
        "-o",
        str(binary),
        "-lpthread",
    ]
    _run(command, "compiling the C loop")
    return binary
