"""The shape of the code: which top-level package may import which.

infra (shared infrastructure) imports none of ours; quality (curation logic) only infra
and no Ray; serving only infra; jobs anything below it; finesift (the Python API) sits on
top. Every import counts, including those inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("infra", "quality", "serving", "jobs", "finesift")
ALLOWED = {
    "infra": set(),
    "quality": {"infra"},
    "serving": {"infra"},
    "jobs": {"infra", "quality", "serving"},
    "finesift": {"infra", "jobs"},
}


def imports(package: str) -> dict[str, set[str]]:
    """Module path -> every module name it imports (absolute), for one package."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[str(path.relative_to(ROOT))] = names
    return found


def test_top_level_packages_import_only_downwards():
    wrong = []
    for package in PACKAGES:
        for module, names in imports(package).items():
            for name in names:
                top = name.split(".")[0]
                if top in PACKAGES and top != package and top not in ALLOWED[package]:
                    wrong.append(f"{module} imports {name}")
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def test_the_allowed_imports_have_no_cycle():
    # Depth-first search over the package graph: the rule itself must be a hierarchy.
    state: dict[str, str] = {}

    def visit(node: str) -> None:
        state[node] = "open"
        for nxt in ALLOWED[node]:
            assert state.get(nxt) != "open", f"cycle through {node} -> {nxt}"
            if nxt not in state:
                visit(nxt)
        state[node] = "done"

    for package in PACKAGES:
        if package not in state:
            visit(package)


@pytest.mark.parametrize("package", ["quality", "infra"])
def test_curation_logic_and_infrastructure_import_no_ray_data_at_module_level(package):
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:  # module level: importing the package must not start Ray
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "ray"]
    assert not offenders


def test_quality_never_imports_ray():
    uses = [
        f"{module}: {name}"
        for module, names in imports("quality").items()
        for name in names
        if name.split(".")[0] == "ray"
    ]
    assert not uses, uses


def test_only_the_runner_of_curation_imports_ray_data():
    uses = sorted(
        module
        for module, names in imports("jobs").items()
        if module.startswith("jobs/curation/")
        and any(n == "ray" or n.startswith("ray.data") for n in names)
    )
    assert uses == ["jobs/curation/runner.py"]
