"""Shared fixtures. `tiny_run`: the tiny end-to-end workflow (tests/tiny_config.yaml), run once per test session
and shared by the tests that need a finished run (test_workflow.py, test_report.py), also across pytest-xdist
workers (a file lock in the session's shared temporary directory)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from filelock import FileLock

REPO = Path(__file__).resolve().parents[1]


@dataclass
class TinyRun:
    dir: Path                 # the run's working directory (-d)
    returncode: int
    log_tail: str             # the end of snakemake's stdout + stderr
    seconds: float
    report: Path              # a copy of results/report/report.html taken right after the run (tests may rerun)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> TinyRun:
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent                      # shared by all workers of this session
    run_dir, done = base / "tiny_run", base / "tiny_run.json"
    with FileLock(str(base / "tiny_run.lock")):
        if not done.exists():
            import time

            run_dir.mkdir(exist_ok=True)
            start = time.perf_counter()
            out = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", "2",
                                  "--configfile", str(REPO / "tests" / "tiny_config.yaml"), "-d", str(run_dir)],
                                 cwd=run_dir, capture_output=True, text=True, timeout=1500)
            seconds = time.perf_counter() - start
            report = base / "tiny_report" / "report.html"
            html = run_dir / "results" / "report" / "report.html"
            if html.exists():
                report.parent.mkdir(exist_ok=True)
                shutil.copy(html, report)
            done.write_text(json.dumps({"returncode": out.returncode, "seconds": seconds, "report": str(report),
                                        "log_tail": (out.stdout + out.stderr)[-4000:]}))
    info = json.loads(done.read_text())
    return TinyRun(dir=run_dir, returncode=info["returncode"], log_tail=info["log_tail"], seconds=info["seconds"],
                   report=Path(info["report"]))
