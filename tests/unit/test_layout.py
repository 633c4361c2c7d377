"""The code's layout rules, checked on its syntax: stage names live in the stage declarations only, and no
module imports another that imports it back (at its top or lazily, inside a function)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from harmonic_service.stages import STAGE_NAMES

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "functions"
STAGE_PACKAGE = FUNCTIONS / "harmonic_service" / "stages"
# Where a stage's name may not be spelled in code: everything the stage table drives.
CHECKED = [FUNCTIONS / "harmonic_service", ROOT / "infra", ROOT / "local"]


def _python_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*.py") if "__pycache__" not in path.parts)


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring constants of a module, its classes and functions."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def stage_names_in_code(path: Path, root: Path = ROOT) -> list[str]:
    """`file:line name` for each string literal naming a stage, except docstrings, dict keys and subscripts
    (result keys such as ``result["features"]`` name a result section, not a stage)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    allowed = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            allowed.update(id(key) for key in node.keys if key is not None)
        elif isinstance(node, ast.Subscript):
            allowed.add(id(node.slice))
    return [
        f"{path.relative_to(root)}:{node.lineno} {node.value}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value in STAGE_NAMES and id(node) not in allowed
    ]


def test_no_module_outside_the_stage_declarations_spells_a_stage_name() -> None:
    found = [
        hit
        for folder in CHECKED
        for path in _python_files(folder)
        if STAGE_PACKAGE not in path.parents
        for hit in stage_names_in_code(path)
    ]
    assert found == []


def test_the_check_finds_a_stage_name_in_code(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""Mentions denoise in a docstring."""\n'
        'RESULT = {"denoise": 1}\n'
        'x = RESULT["denoise"]\n'
        'if x == "denoise":\n'
        "    pass\n"
    )
    assert stage_names_in_code(sample, root=tmp_path) == ["sample.py:4 denoise"]


# --- import cycles ------------------------------------------------------------------------------------------


def _module_name(path: Path, base: Path) -> str:
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    modules = {_module_name(p, FUNCTIONS): p for p in _python_files(FUNCTIONS / "harmonic_service")}
    modules.update({_module_name(p, ROOT): p for p in _python_files(ROOT / "local")})
    modules.update({_module_name(p, ROOT): p for p in _python_files(ROOT / "infra")})
    return modules


def import_edges(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules `name` imports, at its top or inside a function (a lazy import is a cycle too);
    imports for type checkers only (under ``if TYPE_CHECKING:``) do not count."""
    tree = ast.parse(path.read_text())
    typing_only = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for child in ast.walk(node)
    }
    edges: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            edges.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{name}: use absolute imports"
            base = node.module or ""
            if base in known:
                edges.add(base)
            edges.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in known)
    edges.discard(name)
    return edges


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `graph` (module → modules it imports), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for following in sorted(graph.get(node, ())):
            if state.get(following) == 1:
                return [*stack[stack.index(following) :], following]
            if following not in state and (cycle := visit(following)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycles() -> None:
    modules = _modules()
    known = set(modules)
    graph = {name: import_edges(name, path, known) for name, path in modules.items()}
    # a package imports its submodules' names; a submodule importing its own package is the usual layout
    for name in graph:
        graph[name] = {target for target in graph[name] if not name.startswith(f"{target}.")}
    assert find_cycle(graph) is None


@pytest.mark.parametrize(
    ("graph", "cyclic"),
    [({"a": {"b"}, "b": {"c"}, "c": {"a"}}, True), ({"a": {"b"}, "b": {"c"}, "c": set()}, False)],
)
def test_the_cycle_finder(graph: dict[str, set[str]], cyclic: bool) -> None:
    assert (find_cycle(graph) is not None) == cyclic
