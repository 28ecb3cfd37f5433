"""Mutants of valid topologies, and the pipeline every mutant must survive.

Shared by the fuzz test of the suite (tests/unit/test_fuzz_pipeline.py, small and
fast) and the long fuzz run by hand (bench/fuzz_topology.py). A mutant is a
valid file with a few edits a person (or a broken generator) could make: text
spliced in, including YAML 1.1 traps and hostile constructs, or values replaced
with odd ones. Whatever it is, `lab` must end with a lab or with its own error.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import strategies as st

from lab.errors import LabError
from lab.export.compose import compose_files, compose_text
from lab.graph.html import to_html
from lab.graph.model import build_graph
from lab.graph.text import to_dot, to_mermaid
from lab.plan import LabState, make_plan
from lab.topology import TopologyError, load_text

ROOT = Path(__file__).resolve().parents[1]
VALID = [(ROOT / "topology" / "default.yaml").read_text(),
         (ROOT / "topology" / "minimal.yaml").read_text(),
         (ROOT / "tests" / "fixtures" / "valid-small.yaml").read_text()]

# Values that have broken (or could break) a loader or a layer after it.
ODD_VALUES = [
    "22:23", "1:30", "yes", "no", "on", "off", "0755", "0b101", "2024-05-01", "true", "~", "null",
    "0.0.0.0/0", "128.0.0.0/1", "10.0.0.0/8", "255.255.255.254", "198.18.0.0/31", "-1", "0",
    "65536", "99999999999999999999", "1e400", ".inf", ".nan", "'٣'", "8٠٠٠", "lb:٣", "'\\x1b[31m'",
    "any", "@", "*", "'{lbb}'", "'http://{lb}/'", "'.'", "'a..b'", "A", "CNAME", "'0 5 70000 www'",
    "&a [*a]", "*nope", "!!python/object:os.system x", "!!timestamp x", "[[[[[[[[[[", "{a: {b: {c:",
    "'unclosed", "\"\\u0000\"", "|\n  block", ">-\n  folded", "<<: *x", "? [a]\n: b",
]
SPLICES = ["\n---\n", "\t", "\x00", "\udc80", "&x ", "*x", "<<: ", ": ", "- ", "# ", "'", '"',
           "[" * 50, "{", "}", "]", ",", "\n  ", "\n    extra: 1", "\n  new:\n    kind: client\n"]


NAMES = ["lb", "app", "app-2", "db", "web", "home", "dmz", "lan", "router", "fw", "resolver",
         "root-1", "any", "shop.test", "test", "@", "www", "backbone", "ns"]
tree_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-70000, 70000), st.integers(),
              st.sampled_from(NAMES), st.sampled_from(ODD_VALUES), st.text(max_size=10)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from(NAMES + ["kind", "networks", "port"]),
                                            inner, max_size=3)),
    max_leaves=6)


def _paths(data, prefix=()):
    yield prefix
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        yield from _paths(value, (*prefix, key))


def _edit_tree(draw, text: str) -> str:
    """Replace, delete or rename one part of the parsed file; dump it back to YAML."""
    tree = yaml.safe_load(text)
    path = draw(st.sampled_from(list(_paths(tree))[1:]))
    parent = tree
    for step in path[:-1]:
        parent = parent[step]
    action = draw(st.sampled_from(["replace", "delete", "rename", "copy"]))
    if action == "replace":
        parent[path[-1]] = draw(tree_values)
    elif action == "delete":
        del parent[path[-1]]
    elif action == "rename" and isinstance(parent, dict):
        parent[draw(st.sampled_from(NAMES))] = parent.pop(path[-1])
    elif action == "copy" and isinstance(parent, dict):
        parent[draw(st.sampled_from(NAMES))] = parent[path[-1]]
    return yaml.safe_dump(tree, sort_keys=False, allow_unicode=True)


@st.composite
def mutants(draw) -> str:
    """A valid file with 1-3 edits: a value replaced in the text or in the parsed tree, or a
    fragment spliced in."""
    text = draw(st.sampled_from(VALID))
    for _ in range(draw(st.integers(0, 2))):
        text = _edit_tree(draw, text)   # first, while the file is plain YAML PyYAML can load
    for _ in range(draw(st.integers(0 if text not in VALID else 1, 2))):
        if draw(st.booleans()):
            text = _replace_a_value(draw, text)
        else:
            position = draw(st.integers(0, len(text)))
            cut = draw(st.integers(0, 6))
            insert = draw(st.one_of(st.sampled_from(SPLICES), st.sampled_from(ODD_VALUES),
                                    st.text(max_size=6)))
            text = text[:position] + insert + text[position + cut:]
    return text


def _replace_a_value(draw, text: str) -> str:
    """Swap what follows one ': ' (or '- ') on some line for an odd value."""
    lines = text.split("\n")
    candidates = [i for i, line in enumerate(lines) if ": " in line or line.lstrip().startswith("- ")]
    if not candidates:
        return text
    index = draw(st.sampled_from(candidates))
    head, sep, _ = lines[index].partition(": ") if ": " in lines[index] else lines[index].partition("- ")
    lines[index] = head + sep + draw(st.sampled_from(ODD_VALUES))
    return "\n".join(lines)


def run_pipeline(text: str) -> str:
    """validate, plan, graph and export one file; 'valid' or 'invalid'. Any other exception
    (a bug) propagates; so does a TopologyError without a usable position."""
    try:
        lab = load_text(text, "mutant.yaml")
    except TopologyError as error:
        assert error.problems, "a TopologyError carries at least one problem"
        for problem in error.problems:
            assert problem.line >= 1 and problem.column >= 1 and problem.message
            assert "Traceback" not in problem.message and "pydantic" not in problem.message
        return "invalid"
    try:
        plan = make_plan(lab, LabState())
        graph = build_graph(lab)
        to_mermaid(graph), to_dot(graph), to_html(graph)
        compose_text(plan, "lab-files", "mutant.yaml"), compose_files(plan, "lab-files")
    except LabError:
        return "invalid"   # the project's own error, with its own message
    return "valid"
