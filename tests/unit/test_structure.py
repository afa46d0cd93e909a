"""The package's shape, checked from its source: the import graph is the architecture.

No import cycles, between modules or between packages; the tracers never reach up into the lab,
the host, traffic or the findings built on top of them, and their backends stand side by side;
imports inside functions are few and each says why it pays; the process-wide speed tricks
(no collector, no interpreter teardown) stay at the command-line entry point.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "netlab"
#: the most imports inside function bodies the package may have (issue 19: at most 30)
MOST_LAZY = 30


def _name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
TREES = {name: ast.parse(path.read_text(), str(path)) for name, path in MODULES.items()}


def _targets(node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The netlab modules an import statement loads (``from pkg import sub`` loads ``pkg.sub``);
    the package imports absolutely only (no ``from . import``), which the first test checks."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
    yield from (name for name in names if name in MODULES)


def test_imports_are_absolute() -> None:
    relative = [m for m, tree in TREES.items() for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level]
    assert relative == []


def _in_function(tree: ast.Module) -> set[ast.AST]:
    return {
        sub
        for fn in ast.walk(tree)
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
        for sub in ast.walk(fn)
        if isinstance(sub, ast.Import | ast.ImportFrom)
    }


def _graph() -> dict[str, set[str]]:
    """module -> the netlab modules it imports anywhere (top level, TYPE_CHECKING, functions)."""
    return {
        module: {
            target
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for target in _targets(node)
            if target != module
        }
        for module, tree in TREES.items()
    }


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (as a path that returns to its start), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_package_has_no_import_cycle() -> None:
    assert _cycle(_graph()) is None


def test_the_cycle_finder_finds_one() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def package(module: str) -> str:
    """The unit of architecture a module belongs to: its package under netlab (``netlab.tracers``
    for ``netlab.tracers.backends.tracefs``), or itself for a module directly in netlab."""
    return ".".join(module.split(".")[:2])


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The import graph between packages; ``netlab`` itself (the lazy public names) is left out."""
    out: dict[str, set[str]] = {}
    for module, targets in graph.items():
        if module == "netlab":
            continue
        out.setdefault(package(module), set()).update(
            package(t) for t in targets if t != "netlab" and package(t) != package(module)
        )
    return out


def test_no_package_imports_itself_round_about() -> None:
    """A circle between packages is one even when no module is in it: tracers importing the host,
    which imported tracers' placement, was such a circle."""
    assert _cycle(package_graph(_graph())) is None


def test_the_package_cycle_finder_sees_a_circle_no_module_is_in() -> None:
    modules = {
        "netlab.tracers.backends.tracefs": {"netlab.host"},
        "netlab.host": {"netlab.tracers.placement.attribution"},
        "netlab.tracers.placement.attribution": set(),
    }
    assert _cycle(modules) is None
    assert _cycle(package_graph(modules)) == ["netlab.host", "netlab.tracers", "netlab.host"]


def test_tracer_backends_do_not_import_each_other() -> None:
    """What two backends share lives below them (placement, kernel, decode), never in one of them."""
    prefix = "netlab.tracers.backends."
    leaning = sorted(
        f"{module} -> {target}"
        for module, targets in _graph().items()
        if module.startswith(prefix)
        for target in targets
        if target.startswith(prefix)
    )
    assert leaning == []


@pytest.mark.parametrize(
    ("below", "above"),
    [
        # the tracers see what they trace only as a netlab.scope.Scope
        *(
            ("netlab.tracers", f"netlab.{above}")
            for above in (
                "host",
                "lab",
                "bringup",
                "plan",
                "model",
                "cli",
                "findings",
                "tracing",
                "traffic",
                "workshop",
            )
        ),
        # the findings are what a trace adds, not how it runs
        ("netlab.findings", "netlab.tracing"),
        ("netlab.tracing", "netlab.pytest_plugin"),
        ("netlab.tracing", "netlab.cli"),
        # a packet's headers live below both (netlab.headers): traffic is not above and below tracers
        ("netlab.traffic", "netlab.tracers"),
        ("netlab.traffic", "netlab.findings"),
        ("netlab.headers", "netlab.tracers"),
        ("netlab.headers", "netlab.traffic"),
        ("netlab.workshop", "netlab.cli"),
        ("netlab.runtime", "netlab.lab"),
        ("netlab.model", "netlab.apply"),
        ("netlab.plan", "netlab.apply"),
    ],
)
def test_a_lower_layer_does_not_import_a_higher_one(below: str, above: str) -> None:
    graph = _graph()
    climbs = sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        if module == below or module.startswith(below + ".")
        for target in targets
        if target == above or target.startswith(above + ".")
    )
    assert climbs == []


def test_nothing_imports_pytest_internals() -> None:
    """pytest's private modules change without notice; the plugin is fixtures and public hooks."""
    private = sorted(
        f"{module}:{node.lineno}"
        for module, tree in TREES.items()
        for node in ast.walk(tree)
        if (isinstance(node, ast.ImportFrom) and (node.module or "").startswith("_pytest"))
        or (isinstance(node, ast.Import) and any(a.name.startswith("_pytest") for a in node.names))
    )
    assert private == []


def test_imports_inside_functions_are_few_and_each_says_why() -> None:
    lazy: list[str] = []
    unexplained: list[str] = []
    for module, tree in TREES.items():
        lines = MODULES[module].read_text().splitlines()
        statements = sorted(_in_function(tree), key=lambda n: n.lineno)  # type: ignore[attr-defined]
        for node in statements:
            assert isinstance(node, ast.Import | ast.ImportFrom)
            where = f"{module}:{node.lineno}"
            lazy.append(where)
            # the reason is on the statement's line, or on the first of a run of lazy imports
            first = node.lineno
            while first - 1 >= 1 and any(getattr(n, "lineno", 0) == first - 1 for n in statements):
                first -= 1
            if "# lazy:" not in lines[first - 1]:
                unexplained.append(where)
    assert len(lazy) <= MOST_LAZY, lazy
    assert unexplained == []


def _calls(tree: ast.Module, owner: str, attribute: str) -> list[int]:
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == attribute
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == owner
    ]


def test_process_wide_speed_tricks_stay_at_the_entry_point() -> None:
    """Ending without the interpreter's teardown and switching the collector off are for a whole
    process that runs one command; the library never does either (the trace analysis pauses the
    collector in a scope that restores it, :func:`netlab.tracers.placement.correlate.without_collection`)."""
    exits = {module for module, tree in TREES.items() if _calls(tree, "os", "_exit")}
    collector = {module for module, tree in TREES.items() if _calls(tree, "gc", "disable")}
    assert exits <= {"netlab.cli.entry"}
    assert collector <= {"netlab.cli.entry", "netlab.tracers.placement.correlate"}
    assert not [m for m, tree in TREES.items() if "sys.modules[" in ast.unparse(tree)]


def test_each_constant_is_defined_once() -> None:
    """A module-level constant (an upper-case name bound to a literal) of one value is defined in
    one module; the others import it (regexes and struct layouts private to a parser are apart)."""
    seen: dict[tuple[str, str], list[str]] = {}
    for module, tree in TREES.items():
        for node in tree.body:
            if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
                continue
            name = node.targets[0].id
            if not name.isupper() or name.startswith("_"):
                continue
            try:
                value = repr(ast.literal_eval(node.value))
            except ValueError:
                continue
            seen.setdefault((name, value), []).append(module)
    assert {key: where for key, where in seen.items() if len(where) > 1} == {}


def test_the_shell_scripts_import_modules_that_exist() -> None:
    """``python -c '...'`` in the shell scripts is code no type checker reads: its imports must
    still name modules the package has (a move once left bootstrap building no native walker)."""
    root = SRC.parent
    snippets = [
        code
        for script in [*root.joinpath("scripts").glob("*.sh"), root / ".ci" / "run"]
        for code in re.findall(r"-c '([^']*)'", script.read_text())
    ]
    imports = [
        part.strip() for code in snippets for part in code.split(";") if part.strip().startswith(("from ", "import "))
    ]
    assert imports
    for statement in imports:
        exec(compile(statement, "<script>", "exec"), {})
