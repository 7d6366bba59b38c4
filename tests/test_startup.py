"""``--version`` and a usage error answer without loading the heavy libraries."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

HEAVY = {"pydantic", "yaml", "structlog", "cryptography", "awscrt", "awsiot"}


def test_the_cli_module_loads_no_heavy_library() -> None:
    code = (
        "import sys, agent.cli\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({sorted(HEAVY)!r})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


def test_version_answers() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "agent", "--version"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.startswith("gg-health-agent ")
