"""The layers import downwards only: contracts at the floor, the quanxuan command on the roof, and the daily job
(training/) and the service (serving/) side by side, never importing each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"contracts", "features", "recsys", "training", "serving", "cli"}
MAY_IMPORT = {
    "contracts": set(),
    "features": {"contracts"},
    "recsys": {"contracts", "features"},
    "training": {"contracts", "features", "recsys"},
    "serving": {"contracts", "features", "recsys"},
    "cli": {"contracts", "features", "recsys", "training", "serving"},
}


def imported_layers(path: Path) -> set[str]:
    """Our top-level packages a module imports anywhere in it (imports inside functions included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & OURS


@pytest.mark.parametrize("layer", sorted(MAY_IMPORT))
def test_a_layer_imports_only_the_layers_below_it(layer: str) -> None:
    wrong = {}
    for path in sorted((ROOT / layer).rglob("*.py")):
        above = imported_layers(path) - MAY_IMPORT[layer] - {layer}
        if above:
            wrong[str(path.relative_to(ROOT))] = sorted(above)
    assert wrong == {}, f"{layer}/ imports layers it must not: {wrong}"


def test_the_checker_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from serving.app import create_app\n    import training.daily\n", "utf-8")
    assert imported_layers(module) == {"serving", "training"}
