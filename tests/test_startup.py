"""``--version`` and a usage error answer without loading the heavy libraries."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO, modules_loaded_by

HEAVY = {"pydantic", "yaml", "structlog", "cryptography", "awscrt", "awsiot"}


def test_the_module_probe_sees_what_is_loaded() -> None:
    # The control for every "loads nothing" assertion built on modules_loaded_by.
    loaded = modules_loaded_by("import yaml", ["yaml", "json.decoder"])
    assert "yaml" in loaded and "yaml.cyaml" in loaded
    assert modules_loaded_by("import json", ["json.decoder"]) == ["json.decoder"]


def test_the_cli_module_loads_no_heavy_library() -> None:
    assert modules_loaded_by("import agent.cli", HEAVY) == []


def test_version_answers() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "agent", "--version"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.startswith("gg-health-agent ")
