"""Damaged data files must raise exceptions, never crash or hang.

Runs tests/fuzz_files.py, which damages copies of sound stores and opens
and reads each copy in a forked child, and checks its JSON summary. The
default run damages 150 files, and the slow one 10,000. The cases that
crash or hang are kept under tmp_path for fuzz_files.py --replay.
"""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzz_files.py")


def load_damage_kinds():
    spec = importlib.util.spec_from_file_location("fuzz_files", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    # dataclasses looks the module up in sys.modules while it runs.
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module.DAMAGE_KINDS


def run_fuzz(tmp_path, count, timeout):
    """Run the fuzz script on count files and return its summary and output."""
    summary_path = tmp_path / "summary.json"
    environment = dict(os.environ)
    # The script imports the sharedb that this test run imports.
    environment["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    finished = subprocess.run(
        [
            sys.executable,
            SCRIPT,
            "--count",
            str(count),
            "--seed",
            "1",
            "--keep",
            str(tmp_path / "kept"),
            "--json",
            str(summary_path),
            "--work-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
    )
    assert summary_path.exists(), finished.stdout + finished.stderr
    summary = json.loads(summary_path.read_text())
    return summary, finished


def check_summary(summary, finished, count):
    report = finished.stdout[-6000:]
    assert summary["cases"] == count, report
    # Every kind of damage ran, and some of them were caught as errors.
    assert sorted(summary["by_kind"]) == sorted(load_damage_kinds()), report
    assert any(label.startswith("exception:") for label in summary["outcomes"]), report
    assert summary["crashes"] == 0, report
    assert summary["hangs"] == 0, report
    assert finished.returncode == 0, report


def test_damaged_files_fuzz_quick(tmp_path):
    summary, finished = run_fuzz(tmp_path, 150, timeout=600)
    check_summary(summary, finished, 150)


@pytest.mark.slow
def test_damaged_files_fuzz_long(tmp_path):
    summary, finished = run_fuzz(tmp_path, 10_000, timeout=4 * 3600)
    check_summary(summary, finished, 10_000)
