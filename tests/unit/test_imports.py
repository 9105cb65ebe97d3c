"""No import cycle between the modules of lib/, counting imports made inside functions too."""
import ast
from pathlib import Path

LIB = Path(__file__).resolve().parents[2] / "lib"


def module_name(path: Path) -> str:
    parts = path.relative_to(LIB.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(node: ast.AST, module: str, is_package: bool, modules: set[str]) -> list[str]:
    """The lib modules one import statement names."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:  # relative: resolved against this module's package
        package = module.split(".") if is_package else module.split(".")[:-1]
        base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    # `from lib import slack` imports the module lib.slack; `from lib.store import open_store` imports lib.store.
    names = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in modules]
    return names or [base]


def import_graph() -> dict[str, set[str]]:
    files = {module_name(path): path for path in LIB.rglob("*.py")}
    modules = set(files)
    graph = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        targets = set()
        for node in ast.walk(tree):  # every statement, inside functions and classes too
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                targets.update(imported(node, module, path.name == "__init__.py", modules))
        # Importing lib.store.psycopg runs lib.store's __init__ first: an edge to each enclosing subpackage.
        targets |= {".".join(t.split(".")[:i]) for t in targets for i in range(2, t.count(".") + 1)}
        graph[module] = {t for t in targets if t in modules and t != module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path of modules (first == last), or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_graph_sees_lib_modules_and_function_level_imports():
    graph = import_graph()
    assert "lib.store" in graph and "lib.store.psycopg" in graph and "lib" in graph
    assert "lib.slack" in graph["lib.scout"], "from lib import slack is an edge to lib.slack"
    assert "lib.runner" in graph["lib.cli"], "imports inside functions count"
    assert "lib.store" in graph["lib.store.psycopg"]


def test_no_import_cycle_in_lib():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_llm_client_knows_neither_the_battle_nor_the_simulator():
    graph = import_graph()
    assert not graph["lib.llm"] & {"lib.battle", "lib.simulator", "lib.app"}
    assert not graph["lib.budget"] & {"lib.llm", "lib.battle", "lib.simulator", "lib.app"}


if __name__ == "__main__":  # python -m tests.unit.test_imports: the graph, and the first cycle if any
    graph = import_graph()
    for name in sorted(graph):
        print(f"{name} -> {', '.join(sorted(graph[name])) or '-'}")
    print("cycle:", " -> ".join(find_cycle(graph) or ["none"]))


# The query layer: lib/store/queries.py, and the parts split off it by concern.
QUERY_LAYER = ("queries.py", "proposal_queries.py", "money.py", "scout_queries.py")


def test_no_module_outside_the_query_layer_names_a_sql_function():
    import re

    from lib.store.migrations import functions_sql

    functions = set(re.findall(r"create or replace function (\w+)\(", functions_sql()))
    for path in LIB.rglob("*.py"):
        if path.name in QUERY_LAYER:
            continue
        named = {name for name in functions if re.search(rf"\b{name}\b", path.read_text())}
        assert not named, f"{path.relative_to(LIB.parent)} names SQL functions {sorted(named)}"


def test_the_canary_only_decides():
    """The canary's rule knows no settings, store or Slack: lib.followups gathers, records and alerts."""
    assert not {t for t in import_graph()["lib.canary"] if t.startswith("lib")}
