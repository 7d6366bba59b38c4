"""The layers of the package, as the README's "Layout" draws them, hold: imports only run down.

Face (cli, render, demo, authorize) -> Engine (runner, scheduler, service) -> Checks -> Rules
(x509, subscriptions, s3) / Greengrass / AWS -> Model (config, report, errors); Transports beside
the checks, Log (log, secrets) at the side. Read from the source with ``ast`` (nothing is
imported), so a new module that breaks a rule fails here, naming the import.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "agent"

LAYER_OF = {
    "cli": "face",
    "render": "face",
    "demo": "face",
    "authorize": "face",
    "runner": "engine",
    "scheduler": "engine",
    "service": "engine",
    "checks": "checks",
    "x509": "rules",
    "subscriptions": "rules",
    "s3": "rules",
    "system": "rules",
    "greengrass": "greengrass",
    "aws": "aws",
    "transports": "transports",
    "fleet": "fleet",
    "config": "model",
    "report": "model",
    "errors": "model",
    "log": "log",
    "secrets": "log",
    "printable": "log",
    "safe_write": "log",
    "pkcs11": "pkcs11",
}

FORBIDDEN = {
    "aws": {"checks", "rules", "engine", "face", "transports"},
    "rules": {"checks", "aws", "engine", "face", "transports"},
    "checks": {"transports", "engine", "face"},
    "transports": {"checks", "rules", "engine", "face"},
    "greengrass": {"checks", "rules", "aws", "engine", "face", "transports"},
    "model": {"checks", "rules", "aws", "greengrass", "transports", "engine", "face", "fleet"},
    "log": {"checks", "rules", "aws", "greengrass", "transports", "engine", "face", "fleet"},
}
"""Layer -> the layers it must not import ("from aws into checks" is aws importing checks)."""


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, root: Path = PACKAGE) -> Iterator[str]:
    """Every ``agent.*`` module ``path`` (a file of the package at ``root``) imports, at the top
    or inside a function."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("agent."))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "agent":
                yield from (f"agent.{a.name}" for a in node.names)
            elif target.startswith("agent."):
                yield target


def layer(module: str) -> str:
    top = module.split(".")[1] if "." in module else ""
    return LAYER_OF.get(top, "package")


def graph() -> dict[str, set[str]]:
    return {module_name(p): set(imports(p)) for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_top_level_module_has_a_layer() -> None:
    tops = {p.stem for p in PACKAGE.glob("*.py")} | {
        p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()
    }
    assert tops - {"__init__", "__main__"} <= set(LAYER_OF), "give the new module a layer"


@pytest.mark.parametrize("source_layer", sorted(FORBIDDEN))
def test_no_import_runs_against_the_layers(source_layer: str) -> None:
    against = [
        f"{module} -> {target}"
        for module, targets in graph().items()
        if layer(module) == source_layer
        for target in sorted(targets)
        if layer(target) in FORBIDDEN[source_layer]
    ]
    assert against == []


def test_no_import_cycle() -> None:
    edges = graph()
    # Only modules: `import agent.x` of a package counts as importing its __init__.
    known = set(edges)
    edges = {m: {t for t in ts if t in known and t != m} for m, ts in edges.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(edges[module]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    """The scan itself: relative and absolute imports resolve to the modules they name."""
    source = "from ..checks import base\nfrom agent.report import Status\nimport agent.x509.der\n"
    copy = tmp_path / "agent" / "aws" / "_layers_probe.py"
    copy.parent.mkdir(parents=True)
    copy.write_text(source)
    found = set(imports(copy, tmp_path / "agent"))
    assert found == {"agent.checks", "agent.report", "agent.x509.der"}
    assert layer("agent.checks") in FORBIDDEN["aws"]
