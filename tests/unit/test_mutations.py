"""Property: whatever a person does to a valid file, loading ends in a topology or a TopologyError.

Never any other exception: a KeyError or a pydantic traceback would mean a
mistake that the user is not told about in their own terms.
"""

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab.topology import TopologyError, load_text

ROOT = Path(__file__).resolve().parents[2]
VALID = [(ROOT / "topology" / name).read_text() for name in ("default.yaml", "minimal.yaml")]
VALID.append((ROOT / "tests" / "fixtures" / "valid-small.yaml").read_text())

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.text(max_size=12),
                    st.sampled_from(["lb", "app", "db", "home", "dmz", "router", "any", "@",
                                     "198.18.0.5", "100.64.10.1", "10.0.0.0/8", "tcp", "-1"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                      st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=6)


def paths(data, prefix=()):
    yield prefix
    if isinstance(data, dict):
        for key, value in data.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from paths(value, (*prefix, i))


def apply(data, path, action, new_value, new_key):
    if not path:
        return new_value if action == "replace" else data
    parent = data
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if action == "delete":
        del parent[last]
    elif action == "replace":
        parent[last] = new_value
    elif action == "add" and isinstance(parent[last], dict):
        parent[last][new_key] = new_value
    elif action == "rename" and isinstance(parent, dict):
        parent[new_key] = parent.pop(last)
    return data


def load_or_topology_error(text: str) -> None:
    try:
        load_text(text, "mutant.yaml")
    except TopologyError as error:
        assert error.problems, "a TopologyError must carry at least one problem"
        for problem in error.problems:
            assert problem.line >= 1 and problem.column >= 1 and problem.message


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VALID), st.data())
def test_structural_mutations_load_or_raise_topology_error(text, data):
    tree = yaml.safe_load(text)
    for _ in range(data.draw(st.integers(1, 3))):
        all_paths = list(paths(tree))
        path = data.draw(st.sampled_from(all_paths))
        action = data.draw(st.sampled_from(["delete", "replace", "add", "rename"]))
        tree = apply(tree, path, action, data.draw(values), data.draw(st.text(max_size=8)))
    load_or_topology_error(yaml.safe_dump(tree, sort_keys=False))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(VALID), st.data())
def test_text_mutations_load_or_raise_topology_error(text, data):
    position = data.draw(st.integers(0, len(text)))
    cut = data.draw(st.integers(0, 5))
    insert = data.draw(st.text(alphabet=" \t\n:-[]{}#'\"&*!|>%@`,abc123", max_size=4))
    load_or_topology_error(text[:position] + insert + text[position + cut:])
