"""The configuration package is the model: it imports nothing above it, and its light parts stay
light (reading YAML or checking a topic does not load pydantic)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO, modules_loaded_by

MODEL = ("agent.config", "agent.report", "agent.errors", "agent.log", "agent.secrets")


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "agent" or name.startswith("agent.")}


def test_the_config_package_imports_only_the_model() -> None:
    above = {
        f"{path.name} -> {name}"
        for path in sorted((REPO / "agent" / "config").glob("*.py"))
        for name in _imports(path)
        if not any(name == m or name.startswith(m + ".") for m in MODEL)
    }
    assert above == set()


def test_reading_files_and_checking_names_load_no_pydantic() -> None:
    assert modules_loaded_by("import agent.config.files, agent.config.names", ["pydantic"]) == []


def test_the_old_names_still_import_from_the_package() -> None:
    from agent.config import AgentConfig, build_config, validate_publish_topic
    from agent.config.models import AgentConfig as Model

    assert AgentConfig is Model and build_config({}).transport.value == "ipc"
    assert validate_publish_topic("dt/x") == "dt/x"
