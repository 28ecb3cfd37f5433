"""The topology language: load a YAML file into a validated, resolved Lab.

No Docker and no subprocess in this package: it is pure, so every mistake is
found before a single container starts.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from lab.topology.addressing import allocate_dual
from lab.topology.checks import check_meaning
from lab.topology.copies import copy_name, copy_texts
from lab.topology.errors import Problem, TopologyError
from lab.topology.flows import check_dns_flows
from lab.topology.lab import Instance, Lab, build_lab
from lab.topology.structure import validate_structure
from lab.topology.yaml_source import Source, parse_yaml, read_text, read_yaml

DEFAULT_TOPOLOGY = Path(__file__).resolve().parents[2] / "topology" / "default.yaml"


def default_topology_path() -> Path:
    """topology/default.yaml of the current directory if there is one, else the project's."""
    here = Path("topology") / "default.yaml"
    return here if here.is_file() else DEFAULT_TOPOLOGY

__all__ = ["Instance", "Lab", "Problem", "TopologyError", "load_copies", "load_copy", "load_topology", "load_text",
           "DEFAULT_TOPOLOGY", "default_topology_path"]


def _resolve(source: Source) -> Lab:
    try:
        spec = validate_structure(source)
    except TopologyError as error:
        raise TopologyError([*source.problems, *error.problems]) from None
    if source.problems:
        raise TopologyError(source.problems)
    problems = check_meaning(spec, source)
    if problems:
        raise TopologyError(problems)
    addresses, gateways, addresses6, gateways6, problems = allocate_dual(spec, source)
    if problems:
        raise TopologyError(problems)
    lab = build_lab(spec, source.file, addresses, gateways, addresses6, gateways6)
    problems = check_dns_flows(lab, source)
    if problems:
        raise TopologyError(problems)
    return lab


def load_text(text: str, file: str = "<text>") -> Lab:
    """Load a topology from YAML text (used by tests and generated topologies)."""
    return _resolve(parse_yaml(text, file))


def load_copy(path: Path | str, index: int, count: int | None = None, owner: str = "") -> Lab:
    """Classroom copy number index of the topology file at path (lab/topology/copies.py), checked
    like any topology; its problems point at the file's own lines (a copy keeps them all)."""
    return load_copies(path, [(index, owner)], count)[0]


def load_copies(path: Path | str, wanted: list[tuple[int, str]], count: int | None = None) -> list[Lab]:
    """The copies (number, owner) of one file: the file read, the original checked and the copies'
    room worked out once for all of them, not once a copy."""
    text = read_text(path)
    original = _resolve(parse_yaml(text, str(path)))
    texts = copy_texts(text, original, count or max(index for index, _ in wanted))
    return [dataclasses.replace(_resolve(parse_yaml(texts[copy_name(original.name, index)], str(path))),
                                copy=index, owner=owner) for index, owner in wanted]


def load_topology(path: Path | str | None = None) -> Lab:
    """Load and fully validate a topology file; raise TopologyError with every problem."""
    return _resolve(read_yaml(path if path is not None else default_topology_path()))
