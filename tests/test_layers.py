"""The package's layers import only downward (the order is the README's Layout section)."""

import ast
from pathlib import Path

import motion4d

ROOT = Path(motion4d.__file__).parent
LAYERS = ["atomic", "errors", "config_dict", "progress", "gaussians", "render", "data", "export", "metrics", "priors", "optim", "pipelines", "cli", "__main__"]
"""Bottom to top; ``atomic``, ``errors``, ``config_dict`` and ``progress`` are the base every layer may use."""
BASE = {"atomic", "errors", "config_dict", "progress"}


def _layer(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imported_layers(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "motion4d" and len(parts) > 1:
                found.add(parts[1])
    return found


def test_every_module_is_in_a_known_layer():
    unknown = {_layer(p) for p in ROOT.rglob("*.py")} - set(LAYERS) - {"__init__"}
    assert not unknown, f"modules outside the layer list: {sorted(unknown)} (add them to LAYERS and the README)"


def test_layers_import_only_downward():
    bad = []
    for path in sorted(ROOT.rglob("*.py")):
        layer = _layer(path)
        if layer == "__init__":
            continue
        for target in _imported_layers(path) - {layer}:
            if target not in LAYERS or (LAYERS.index(target) > LAYERS.index(layer) and target not in BASE) or (layer in BASE and target not in BASE):
                bad.append(f"{path.relative_to(ROOT)} imports motion4d.{target}")
    assert not bad, "upward imports:\n" + "\n".join(bad)
