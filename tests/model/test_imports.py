"""One place per idea: evaluation, serving and monitoring reach the model through ``llmops.model``, never through
``llmops.train``; training uses ``llmops.model`` too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "plugins" / "llmops"


def imported(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def _imports_of(package: str) -> dict[str, set[str]]:
    return {str(p.relative_to(PACKAGE)): imported(p) for p in sorted((PACKAGE / package).rglob("*.py"))}


@pytest.mark.parametrize("package", ["evaluate", "serving", "monitoring", "model"])
def test_does_not_import_train(package):
    offenders = {f: sorted(n for n in names if n == "llmops.train" or n.startswith("llmops.train."))
                 for f, names in _imports_of(package).items()}
    assert {f: n for f, n in offenders.items() if n} == {}


def test_train_imports_the_model_package():
    names = set().union(*_imports_of("train").values())
    assert any(n == "llmops.model" or n.startswith("llmops.model.") for n in names)
