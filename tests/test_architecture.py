"""What may import what, read from the source with `ast` (nothing is imported, nothing is run).

The layers, bottom up: `engine.errors`, `engine.spec` and `engine.core` (the store, keys, plans
and the runner, which is handed its stage registry and knows no stage); above them the stage kinds,
the pipeline that resolves a spec with them, the executors, review, report and export; the
application layer; the CLI on top. A rule here is a line of docs/architecture.md that a test holds.
"""
from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parent.parent / "engine"
MOST_LINES = 320
# What core may never import, at module level or inside a function: what sits above it.
ABOVE_CORE = ("engine.pipeline", "engine.stages", "engine.app", "engine.cli", "engine.review", "engine.report",
              "engine.export", "engine.api", "engine.executors", "engine.tasks", "engine.training",
              "engine.dataprep", "engine.checks", "engine.corpora")
CLI_MAY_IMPORT = ("engine.app", "engine.errors", "engine.cli")


def _modules() -> dict[str, Path]:
    """Every module of engine/ by dotted name (a package by its own name); vendored files aside."""
    found = {}
    for path in sorted(ENGINE.rglob("*.py")):
        relative = path.relative_to(ENGINE.parent).with_suffix("")
        if "vendor" in relative.parts:
            continue
        parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _statements(tree: ast.Module, module_level: bool):
    """Import statements: those run when the module is imported (top level, `try` and `if` blocks
    but `if TYPE_CHECKING`), or every one, function bodies included."""
    if not module_level:
        yield from (node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom)))
        return
    todo = list(tree.body)
    while todo:
        node = todo.pop(0)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and not _is_type_checking(node):
            todo.extend(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            todo.extend(node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body])
        elif isinstance(node, ast.With):
            todo.extend(node.body)


def imports(name: str, module_level: bool = False) -> set[str]:
    """The engine modules `name` imports: `from engine.core import store` and `from engine.core.store
    import Store` both name engine.core.store (and not the package engine.core, which Python
    imports first either way: a package's own imports are its __init__'s edges)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in _statements(ast.parse(path.read_text(encoding="utf-8")), module_level):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join(anchor + ([base] if base else []))
        submodules = {f"{base}.{alias.name}" for alias in node.names} & set(MODULES)
        found.update(submodules)
        if len(submodules) < len(node.names):  # a name defined in `base` itself, not a submodule of it
            found.add(base)
    return {module for module in found if module == "engine" or module.startswith("engine.")}


def _within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_the_module_list_is_read():
    assert "engine.core.runner" in MODULES and "engine.cli" in MODULES and len(MODULES) > 50


def test_core_imports_nothing_above_it():
    wrong = {f"{name} imports {module}" for name in MODULES if _within(name, ("engine.core",))
             for module in imports(name) if _within(module, ABOVE_CORE)}
    assert not wrong, "engine.core reaches up (hand it what it needs instead):\n" + "\n".join(sorted(wrong))


def test_the_cli_imports_only_the_application_layer():
    wrong = {f"{name} imports {module}" for name in MODULES if _within(name, ("engine.cli",))
             for module in imports(name) if module != "engine" and not _within(module, CLI_MAY_IMPORT)}
    assert not wrong, "engine.cli goes around the application layer:\n" + "\n".join(sorted(wrong))


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph (a list of names, the first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle_among_engine_modules():
    graph = {name: {m for m in imports(name, module_level=True) if m in MODULES and m != name} for name in MODULES}
    cycle = _cycle(graph)
    assert cycle is None, "module-level import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_module_is_over_320_lines():
    long = {}
    for name, path in MODULES.items():
        relative = path.relative_to(ENGINE).as_posix()
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MOST_LINES:
            long[relative] = lines
    assert not long, f"modules over {MOST_LINES} lines (split each along an idea): {long}"
