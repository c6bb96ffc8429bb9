"""genrad's packages form layers: no import cycle, and no import from a lower layer up to a higher one.

The import graph is read from the source (`ast`), so imports inside functions count too; imports
under ``if TYPE_CHECKING:`` do not (they never run). An import of a package's own ancestors is
implied by Python's import system and is not an edge.
"""

from __future__ import annotations

import ast
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src"

# Lowest first: a module may import its own layer and those listed before it.
LAYERS = (
    ("genrad", "genrad.errors", "genrad.core", "genrad.paths", "genrad.progress", "genrad.provenance",
     "genrad.limits"),
    ("genrad.data",),
    ("genrad.radiomics",),
    ("genrad.models",),
    ("genrad.training",),
    ("genrad.synthesis",),
    ("genrad.evaluation",),
    ("genrad.scenarios",),
    ("genrad.report",),
    ("genrad.pipeline",),
    ("genrad.cli",),
)
# `Generator.fit` is the scikit-learn style entry point; it runs the training loop, imported on call.
UPWARD = {("genrad.models.base", "genrad.training.trainer")}


def _modules() -> dict[str, Path]:
    modules = {}
    for path in (SOURCE / "genrad").rglob("*.py"):
        parts = list(path.relative_to(SOURCE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _runtime_nodes(tree: ast.AST):
    """Every node except those under ``if TYPE_CHECKING:``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for child in node.orelse for n in [child, *_runtime_nodes(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in _runtime_nodes(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                submodules = {f"{base}.{alias.name}" for alias in node.names} & modules.keys()
                targets |= submodules or ({base} & modules.keys())
            elif isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names} & modules.keys()
        ancestors = {".".join(name.split(".")[:k]) for k in range(1, name.count(".") + 1)}
        graph[name] = targets - ancestors - {name}
    return graph


def _layer(module: str) -> int:
    for index, members in enumerate(LAYERS):
        if any(module == m or (m != "genrad" and module.startswith(m + ".")) for m in members):
            return index
    raise AssertionError(f"{module} is in no layer of tests/test_layers.py: add its package to LAYERS")


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_graph_sees_genrad():
    graph = import_graph()
    assert {"genrad.models.base", "genrad.cli.main", "genrad.core"} <= graph.keys()
    assert "genrad.core" in graph["genrad.models.base"]


def test_no_import_cycle():
    assert _cycle(import_graph()) is None


def test_a_cycle_is_found():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_points_up_a_layer():
    upward = sorted(
        (source, target)
        for source, targets in import_graph().items()
        for target in targets
        if _layer(target) > _layer(source) and (source, target) not in UPWARD
    )
    assert upward == []


def test_evaluation_modules_stay_small() -> None:
    """`genrad.evaluation` is split by job: no module of it over 400 lines."""
    root = Path(__file__).resolve().parents[1] / "src" / "genrad" / "evaluation"
    sizes = {str(path.relative_to(root)): len(path.read_text(encoding="utf-8").splitlines()) for path in root.rglob("*.py")}
    assert not {name: n for name, n in sizes.items() if n > 400}
