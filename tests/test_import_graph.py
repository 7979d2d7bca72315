"""The package's picture has no cycles: a lower floor never imports a higher one, even inside a
function (a late import hides a cycle from Python, not from a reader)."""

import ast
from pathlib import Path

import minillama

PACKAGE = Path(minillama.__file__).parent


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, modules: set[str], root: Path = PACKAGE) -> set[str]:
    """The minillama modules that ``path`` imports anywhere (top level or inside a function);
    ``from pkg import name`` counts as importing ``pkg.name`` when that is a module."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            out.add(source)
            out |= {f"{source}.{a.name}" for a in node.names}
    return {m for m in out if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    graph = {module_name(p): imports(p, modules) for p in paths}
    # a package's __init__ re-exporting its modules is not a floor above them
    for pkg in [m for m, p in zip(graph, paths) if p.name == "__init__.py"]:
        for m in graph:
            graph[m].discard(pkg) if m.startswith(pkg + ".") else None
        graph[pkg] = {m for m in graph[pkg] if not m.startswith(pkg + ".")}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a list of modules (first = last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state and (found := visit(n)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle_through_a_late_import(tmp_path):
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    (tmp_path / "x.py").write_text("def f():\n    from .y import g\n")  # a late, relative import still counts
    (tmp_path / "y.py").write_text("from minillama import model\n")
    pkg = tmp_path.name
    assert imports(tmp_path / "x.py", {f"{pkg}.x", f"{pkg}.y"}, root=tmp_path) == {f"{pkg}.y"}
    assert imports(tmp_path / "y.py", {f"{pkg}.x", "minillama.model"}, root=tmp_path) == {"minillama.model"}


def test_minillama_has_no_import_cycle():
    graph = import_graph()
    assert "minillama.model" in graph and graph["minillama.training.trainer"], "the graph was not built"
    cycle = find_cycle(graph)
    assert cycle is None, ("import cycle: " + " -> ".join(cycle)
                           + "; move what both modules need into a lower module that imports neither")
