"""The shape of the code, checked from its source: the engine boundary, no import cycles,
CLI command modules that stand alone, and one rule for the default client.

The imports are read with ast (nothing is imported to check them), every import
counts, also one inside a function, except those under `if TYPE_CHECKING:`
(they never run). Each check is also run on a small planted package, so a test
that could never fail would show.
"""

from __future__ import annotations

import ast
import inspect
from dataclasses import dataclass
from pathlib import Path

import pytest

import lab
from lab.checks.probes import source_node
from lab.checks.run import run_check
from lab.errors import UsageError
from lab.topology import load_text
from lab.trace.journey import default_client

LAB_ROOT = Path(lab.__file__).resolve().parent
ENGINE_PACKAGE = "lab.backends.docker"     # the only package that may import the engine's SDK
ENGINE_SDK = "docker"
CLUSTER_PACKAGE = "lab.backends.kubernetes"   # the only package that may import the Kubernetes client
CLUSTER_SDK = "kubernetes"
CLI_PACKAGE = "lab.cli"


# --- reading a package's imports ----------------------------------------------------------


@dataclass(frozen=True)
class Import:
    module: str      # the importing module
    target: str      # the module it imports (a submodule when `from pkg import submodule`)
    line: int


def module_names(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under root (a package named `package`)."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _is_type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _import_nodes(tree: ast.AST):
    """Every import statement, at any depth, except under `if TYPE_CHECKING:`."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        for child in ast.iter_child_nodes(node):
            if _is_type_checking(child):
                stack.extend(child.orelse)
            else:
                stack.append(child)


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports_of(root: Path, package: str) -> list[Import]:
    """Every import made by the package's modules (of anything: the standard library too)."""
    names = module_names(root, package)
    found = []
    for module, path in names.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in _import_nodes(tree):
            if isinstance(node, ast.Import):
                found += [Import(module, alias.name, node.lineno) for alias in node.names]
                continue
            base = _absolute(node, module, path.name == "__init__.py")
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append(Import(module, sub if sub in names else base, node.lineno))
    return sorted(found, key=lambda imp: (imp.module, imp.line, imp.target))


def import_graph(root: Path, package: str) -> dict[str, dict[str, int]]:
    """module -> {module of the same package it imports: line}."""
    names = module_names(root, package)
    graph: dict[str, dict[str, int]] = {name: {} for name in names}
    for imp in imports_of(root, package):
        if imp.target in names and imp.target != imp.module:
            graph[imp.module].setdefault(imp.target, imp.line)
    return graph


def find_cycle(graph: dict[str, dict[str, int]]) -> list[str] | None:
    """One import cycle as its path (first module repeated at the end), or None."""
    state: dict[str, str] = {}          # module -> "open" (on the current path) or "done"
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = "open"
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def describe(cycle: list[str], graph: dict[str, dict[str, int]], names: dict[str, Path]) -> str:
    steps = [f"{a} imports {b} ({names[a].name}:{graph[a][b]})" for a, b in zip(cycle, cycle[1:])]
    return "import cycle: " + " -> ".join(cycle) + "\n  " + "\n  ".join(steps)


def engine_imports(root: Path, package: str, allowed: str, sdk: str) -> list[str]:
    """'module:line' for every import of the engine's SDK outside the allowed package."""
    return [f"{imp.module}:{imp.line}" for imp in imports_of(root, package)
            if (imp.target == sdk or imp.target.startswith(sdk + "."))
            and not (imp.module == allowed or imp.module.startswith(allowed + "."))]


def command_modules(root: Path, package: str, cli: str) -> set[str]:
    """The CLI modules that define commands (they list them in COMMANDS for app.py)."""
    found = set()
    for module, path in module_names(root, package).items():
        if not module.startswith(cli + "."):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if any(isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "COMMANDS" for t in node.targets)
               for node in tree.body):
            found.add(module)
    return found


def cli_crossings(root: Path, package: str, cli: str) -> list[str]:
    """'a imports b' for a command module importing another one, or the group that assembles them."""
    commands = command_modules(root, package, cli)
    assembly = {cli, f"{cli}.app"}
    return [f"{imp.module} imports {imp.target} (line {imp.line})" for imp in imports_of(root, package)
            if imp.module in commands and imp.target != imp.module
            and (imp.target in commands or imp.target in assembly)]


# --- the checks on lab/ ---------------------------------------------------------------------


def test_only_the_docker_backend_imports_docker():
    assert engine_imports(LAB_ROOT, "lab", ENGINE_PACKAGE, ENGINE_SDK) == []


def test_only_the_kubernetes_backend_imports_the_kubernetes_client():
    assert engine_imports(LAB_ROOT, "lab", CLUSTER_PACKAGE, CLUSTER_SDK) == []


def test_the_kubernetes_client_is_imported_only_inside_functions_outside_its_package():
    """The client is an optional extra: a module-level import of the backend anywhere outside
    lab.backends.kubernetes would make every command need it."""
    assert engine_imports(LAB_ROOT, "lab", "lab.backends", CLUSTER_PACKAGE) == []
    tree = ast.parse((LAB_ROOT / "backends" / "__init__.py").read_text(encoding="utf-8"))
    top_level = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert not [n for n in top_level if "kubernetes" in (getattr(n, "module", "") or "")]


def test_outside_lab_backends_nothing_reaches_into_the_docker_backend():
    """The CLI, traces and checks see the Backend protocol; only lab.backends.open_backend
    (the one place the engine connection is made) names the Docker implementation."""
    assert engine_imports(LAB_ROOT, "lab", "lab.backends", ENGINE_PACKAGE) == []


def test_lab_has_no_import_cycles():
    graph = import_graph(LAB_ROOT, "lab")
    cycle = find_cycle(graph)
    assert cycle is None, describe(cycle, graph, module_names(LAB_ROOT, "lab"))


def test_cli_command_modules_do_not_import_each_other():
    commands = command_modules(LAB_ROOT, "lab", CLI_PACKAGE)
    assert {"lab.cli.runtime", "lab.cli.trace", "lab.cli.check", "lab.cli.dns"} <= commands   # the scan sees them
    assert cli_crossings(LAB_ROOT, "lab", CLI_PACKAGE) == []


def test_every_command_module_is_assembled_into_the_group():
    from lab.cli import app, main

    assembled = {module.__name__ for module in app.COMMAND_MODULES}
    assert assembled == command_modules(LAB_ROOT, "lab", CLI_PACKAGE)
    listed = {command.name for module in app.COMMAND_MODULES for command in module.COMMANDS}
    assert listed == set(main.commands)


# --- each check can fail: planted packages ----------------------------------------------------


def _plant(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "planted"
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_a_planted_cycle_through_a_function_level_import_is_found_with_its_path(tmp_path):
    root = _plant(tmp_path, {
        "__init__.py": "",
        "a.py": "from planted import b\n",
        "b.py": "import planted.c\n",
        "c.py": "def late():\n    from planted.a import thing\n    return thing\n",
        "d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from planted.a import x\n",
    })
    graph = import_graph(root, "planted")
    cycle = find_cycle(graph)
    assert cycle == ["planted.a", "planted.b", "planted.c", "planted.a"]
    text = describe(cycle, graph, module_names(root, "planted"))
    assert "planted.c imports planted.a (c.py:2)" in text
    assert graph["planted.d"] == {}            # under TYPE_CHECKING: never runs, no edge


def test_a_package_without_cycles_passes(tmp_path):
    root = _plant(tmp_path, {"__init__.py": "from planted.a import x\n", "a.py": "from . import b\nx = 1\n",
                             "b.py": "import os\n"})
    graph = import_graph(root, "planted")
    assert graph["planted.a"] == {"planted.b": 1}     # a relative import, resolved
    assert find_cycle(graph) is None


def test_a_planted_engine_import_outside_the_backend_is_flagged(tmp_path):
    root = _plant(tmp_path, {
        "__init__.py": "",
        "backends/__init__.py": "",
        "backends/docker/__init__.py": "import docker\n",
        "trace/__init__.py": "",
        "trace/dns.py": "def f():\n    import docker.errors\n",
        "trace/ok.py": "import dockerfile_parser\n",     # a different module whose name starts alike
    })
    assert engine_imports(root, "planted", "planted.backends.docker", "docker") == ["planted.trace.dns:2"]


def test_a_command_module_importing_another_is_flagged(tmp_path):
    root = _plant(tmp_path, {
        "__init__.py": "",
        "cli/__init__.py": "from planted.cli.app import main\n",
        "cli/app.py": "from planted.cli import one, two\n",
        "cli/common.py": "X = 1\n",
        "cli/one.py": "from planted.cli.common import X\nCOMMANDS = []\n",
        "cli/two.py": "from planted.cli.one import COMMANDS as C\nfrom planted.cli import main\nCOMMANDS = []\n",
    })
    assert command_modules(root, "planted", "planted.cli") == {"planted.cli.one", "planted.cli.two"}
    assert cli_crossings(root, "planted", "planted.cli") == [
        "planted.cli.two imports planted.cli.one (line 1)", "planted.cli.two imports planted.cli (line 2)"]


# --- one rule for the default client ----------------------------------------------------------

TWO_CLIENTS = """
name: rule
networks:
  home: {subnet: 198.18.60.0/24}
nodes:
  zed:    {kind: client, networks: {home: 198.18.60.10}}
  web:    {kind: app, networks: {home: 198.18.60.20}}
  alpha:  {kind: client, networks: {home: 198.18.60.11}}
checks:
  - name: web answers
    http: http://{web}:8000/
"""

NO_CLIENT = """
name: lonely
networks:
  home: {subnet: 198.18.61.0/24}
nodes:
  web:    {kind: app, networks: {home: 198.18.61.20}}
checks:
  - name: web answers
    http: http://{web}:8000/
"""


def test_the_default_client_is_the_first_client_in_the_file_for_trace_check_and_dig(tmp_path):
    lab = load_text(TWO_CLIENTS)
    assert lab.default_client() == "zed"          # the file's order, not the alphabet
    assert default_client(lab) == "zed"            # lab trace
    assert source_node(lab, lab.spec.checks[0]) == "zed"     # lab check
    assert _dig_default(tmp_path, TWO_CLIENTS) == "zed"      # lab dig


def test_a_lab_without_a_client_has_no_default_and_each_command_says_so(tmp_path):
    lab = load_text(NO_CLIENT)
    assert lab.default_client() is None
    with pytest.raises(UsageError, match="--from NODE"):
        default_client(lab)
    result = run_check(_NoEngine(), lab, lab.spec.checks[0])
    assert not result.passed and "add `from: NODE`" in result.seen
    with pytest.raises(UsageError, match="--from NODE"):
        _dig_default(tmp_path, NO_CLIENT)


def test_dig_without_from_says_what_to_do_when_the_labs_file_is_gone(tmp_path):
    from lab.errors import RuntimeFailure

    with pytest.raises(RuntimeFailure, match="not a readable topology file: name the node that asks with --from"):
        _dig_default(tmp_path, TWO_CLIENTS, remove_file=True)


class _NoEngine:
    """A backend that must not be reached (the rule is decided before any engine call)."""

    def __getattr__(self, name):
        raise AssertionError(f"the engine was asked ({name}) before the default client was known")


def _dig_default(tmp_path: Path, text: str, remove_file: bool = False) -> str:
    """`lab dig`'s choice: it reads the running lab's topology file, which a listing names."""
    from lab.backends.protocol import LabSummary
    from lab.cli.dns import _default_client

    file = tmp_path / "lab.yaml"
    file.write_text(text, encoding="utf-8")
    name = load_text(text).name
    if remove_file:
        file.unlink()

    class OneLab:
        def list_labs(self):
            return [LabSummary(name, 3, 3, str(file))]

    return _default_client(OneLab(), name)


# --- the backends are Backends ---------------------------------------------------------------


def _operations(cls) -> dict[str, list[str]]:
    return {name: list(inspect.signature(value).parameters) for name, value in vars(cls).items()
            if callable(value) and not name.startswith("_")}


def test_the_docker_backend_offers_every_operation_of_the_protocol_with_its_parameters():
    from lab.backends.docker.backend import DockerBackend
    from lab.backends.protocol import Backend

    wanted, offered = _operations(Backend), _operations(DockerBackend)
    assert {"up", "down", "status", "exec", "logs", "stop", "start", "list_labs", "read_file",
            "capture"} <= set(wanted)
    missing = {name: params for name, params in wanted.items() if offered.get(name) != params}
    assert missing == {}, f"DockerBackend lacks or differs from the protocol in: {missing}"
    assert set(offered) - set(wanted) == set(), "an operation callers cannot rely on: put it in the protocol"


def test_the_kubernetes_backend_offers_every_operation_of_the_protocol_with_its_parameters():
    from lab.backends.kubernetes.backend import KubernetesBackend
    from lab.backends.protocol import Backend

    wanted, offered = _operations(Backend), _operations(KubernetesBackend)
    missing = {name: params for name, params in wanted.items() if offered.get(name) != params}
    assert missing == {}, f"KubernetesBackend lacks or differs from the protocol in: {missing}"
    assert set(offered) - set(wanted) == set(), "an operation callers cannot rely on: put it in the protocol"
