"""`make bench` still runs: every measurement of docs/benchmarks.md, at toy scale.

The bench is not a test of speed (these machines are noisy; figures are read, not asserted) but
code that goes through the agent's internals: a change of an internal API must not leave it
broken until the next person runs it.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO

ROWS = (
    "start-up: `gg-health-agent --version`",
    "start-up: import of the check path",
    "one-shot `check`",
    "`run`: first report after start",
    "`run` as a component: CPU per cycle",
    "`run` as a component: RSS",
    "`run --transport stdout` (local debug",
    "`run --transport stdout --only certificate`",
    "`run`: S3/STS requests",
    "S3 probes of 50 artifacts",
    "20 certificates: CLI `check --only certificate --format json` (fresh process)",
    "20 certificates: CLI `check --only certificate --format text` (fresh process)",
    "20 certificates: CLI unchanged re-check with `certificates.cacheFile`",
    "20 certificates: CLI `duration_ms`",
    "20 certificates: first check (in process)",
    "20 certificates: unchanged re-check (in process)",
)


@pytest.mark.peer
def test_the_bench_measures_every_row() -> None:
    done = subprocess.run(
        [sys.executable, "scripts/bench.py", "--runs", "1", "--cycles", "2", "--certs", "20"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")][1:]
    labels = [row.split("|")[1].strip() for row in rows]
    for wanted in ROWS:
        assert any(label.startswith(wanted) for label in labels), (wanted, labels)
    figures = {row.split("|")[1].strip(): row.split("|")[2].strip() for row in rows}
    assert all(figures.values()), figures  # every row has a measured figure
